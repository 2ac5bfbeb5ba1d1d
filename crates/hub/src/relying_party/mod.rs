//! A registered relying party: redirect URIs, client authentication, matching options, and
//! the public keys it signs client assertions and request objects with.
//!
//! Keys from a `jwks_uri` are cached as [`remote_keys`] says.

pub(crate) mod assertion;
mod identifiers;
pub(crate) mod provider;

pub(crate) use identifiers::{ClientId, RedirectUri};

use std::sync::Arc;

use crate::config::RelyingPartySettings;
use matching_service::RemoteMatching;
pub(crate) use remote_keys::JwtError as RpJwtError;
use remote_keys::{JwksTiming, KeysError, RemoteJwks};

/// A relying party from configuration, with its verification keys.
#[derive(Debug)]
pub(crate) struct RelyingParty {
    pub settings: RelyingPartySettings,
    /// `settings.client_id`, made once.
    client_id: ClientId,
    keys: RpKeys,
    /// The client of its remote matching service, when cycles 1 and 3 run there.
    pub(crate) remote_matching: Option<RemoteMatching>,
}

/// Where an RP's keys come from.
#[derive(Debug)]
enum RpKeys {
    None,
    /// Inline `jwks`: parsed once, never refreshed.
    Inline(Arc<token::VerificationKeys>),
    /// Inline `jwks` that cannot be used (configuration validation normally prevents it).
    Unusable(String),
    Remote(Box<RemoteJwks>),
}

impl RelyingParty {
    pub(crate) fn new(settings: RelyingPartySettings) -> Self {
        let keys = match (&settings.jwks, &settings.jwks_uri) {
            (Some(jwks), _) => match token::VerificationKeys::from_jwks(jwks) {
                Ok(keys) => RpKeys::Inline(Arc::new(keys)),
                Err(e) => RpKeys::Unusable(e.to_string()),
            },
            (None, Some(uri)) => RpKeys::Remote(Box::new(RemoteJwks::new(
                uri.clone(),
                JwksTiming::default(),
            ))),
            (None, None) => RpKeys::None,
        };
        Self {
            client_id: ClientId::new(settings.client_id.clone()),
            remote_matching: settings
                .matching_service
                .as_ref()
                .map(|remote| RemoteMatching::new(remote.clone())),
            settings,
            keys,
        }
    }

    pub(crate) fn client_id(&self) -> &ClientId {
        &self.client_id
    }

    /// `uri` if it is exactly one this RP registered (no prefix or pattern matching).
    pub(crate) fn registered_redirect_uri(&self, uri: &str) -> Option<RedirectUri> {
        RedirectUri::registered(&self.settings.redirect_uris, uri)
    }

    /// The sector for pairwise identifiers.
    pub(crate) fn sector(&self) -> &str {
        self.settings
            .sector
            .as_deref()
            .unwrap_or(self.client_id.as_str())
    }

    /// Verifies a JWT the RP signed (client assertion, request object) with its registered
    /// keys: algorithm allow-list, signature, `exp`, and `iss` / `aud` as `expect` says.
    /// A key id not in the cached `jwks_uri` keys triggers one (rate-limited) refetch.
    pub(crate) async fn verify<C: serde::de::DeserializeOwned>(
        &self,
        http: &reqwest::Client,
        jwt: &str,
        expect: &token::Expect,
    ) -> Result<C, RpJwtError> {
        match &self.keys {
            RpKeys::None => Err(KeysError::NotConfigured.into()),
            RpKeys::Unusable(e) => Err(KeysError::Unusable(e.clone()).into()),
            RpKeys::Inline(keys) => Ok(keys.verify(jwt, expect)?),
            RpKeys::Remote(remote) => remote.verify(http, jwt, expect).await,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::sync::atomic::Ordering;

    use actix_web::web;

    use remote_keys::test_support::{signed_by, start, timing, Published, ANY};

    #[tokio::test]
    async fn a_relying_party_verifies_a_rotated_key_without_restart() {
        let old = token::SigningKey::generate().unwrap();
        let new = token::SigningKey::generate().unwrap();
        let published = web::Data::new(Published::default());
        *published.jwks.lock().unwrap() = Some(old.jwks());
        let rp = RelyingParty {
            settings: serde_json::from_value(serde_json::json!({
                "client_id": "rp", "name": "RP", "redirect_uris": ["https://rp/cb"],
                "token_endpoint_auth_method": "private_key_jwt", "default_level": "P1"}))
            .unwrap(),
            client_id: ClientId::new("rp".to_owned()),
            keys: RpKeys::Remote(Box::new(RemoteJwks::new(
                start(published.clone()),
                timing(0),
            ))),
            remote_matching: None,
        };
        let http = reqwest::Client::new();
        rp.verify::<serde_json::Value>(&http, &signed_by(&old), &ANY)
            .await
            .unwrap();
        *published.jwks.lock().unwrap() = Some(new.jwks());
        rp.verify::<serde_json::Value>(&http, &signed_by(&new), &ANY)
            .await
            .unwrap();
        assert_eq!(published.fetches.load(Ordering::SeqCst), 2);
        // A key nobody publishes is still refused.
        let stranger = token::SigningKey::generate().unwrap();
        assert!(matches!(
            rp.verify::<serde_json::Value>(&http, &signed_by(&stranger), &ANY)
                .await,
            Err(RpJwtError::Token(token::TokenError::UnknownKeyId(_)))
        ));
    }
}
