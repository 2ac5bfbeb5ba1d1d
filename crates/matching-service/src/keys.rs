//! Public keys of a peer of the matching protocol (the hub's keys at a matching service,
//! a matching service's keys at the hub): inline, from a file, or from a `jwks_uri`
//! through the cache every peer's `jwks_uri` goes through ([`remote_keys::RemoteJwks`]:
//! kept for the response's bounded `Cache-Control` max-age, refetched when a token names
//! a key id not seen yet at most once per 30 s, the last good keys kept when a refresh
//! fails).

use std::path::PathBuf;

use remote_keys::{JwksTiming, JwtError, RemoteJwks};
use tokio::sync::OnceCell;
use url::Url;

/// Where a peer's JWKS comes from.
#[derive(Debug, Clone)]
pub(crate) enum JwksOrigin {
    Inline(serde_json::Value),
    File(PathBuf),
    Uri(Url),
}

/// Why a peer's keys could not be had (not: why a token was rejected).
#[derive(Debug, thiserror::Error)]
pub enum KeySourceError {
    #[error("jwks file unreadable: {0}")]
    File(#[from] std::io::Error),
    #[error("{0}")]
    Remote(#[from] remote_keys::KeysError),
    #[error("jwks invalid: {0}")]
    Invalid(#[from] token::TokenError),
}

/// Why a peer's token was not accepted.
#[derive(Debug, thiserror::Error)]
pub(crate) enum VerifyError {
    /// The peer's keys are unavailable: our problem or the peer's, not the token's.
    #[error("{0}")]
    Keys(#[from] KeySourceError),
    /// The token itself is bad (signature, algorithm, claims, ...).
    #[error("{0}")]
    Token(token::TokenError),
}

impl From<JwtError> for VerifyError {
    fn from(e: JwtError) -> Self {
        match e {
            JwtError::Keys(e) => Self::Keys(e.into()),
            JwtError::Token(e) => Self::Token(e),
        }
    }
}

/// A peer's verification keys.
#[derive(Debug)]
pub(crate) enum KeySource {
    /// Inline or from a file: loaded on first use and kept (a new file takes a restart).
    Fixed {
        origin: JwksOrigin,
        keys: OnceCell<token::VerificationKeys>,
    },
    /// From a `jwks_uri`, cached.
    Remote(RemoteJwks),
}

impl KeySource {
    pub(crate) fn new(origin: JwksOrigin) -> Self {
        match origin {
            JwksOrigin::Uri(uri) => Self::Remote(RemoteJwks::new(uri, JwksTiming::default())),
            origin => Self::Fixed {
                origin,
                keys: OnceCell::new(),
            },
        }
    }

    /// The inline or file keys, loaded on first use.
    async fn fixed<'a>(
        origin: &JwksOrigin,
        keys: &'a OnceCell<token::VerificationKeys>,
    ) -> Result<&'a token::VerificationKeys, KeySourceError> {
        keys.get_or_try_init(|| async {
            match origin {
                JwksOrigin::Inline(v) => Ok(token::VerificationKeys::from_jwks(v)?),
                JwksOrigin::File(path) => Ok(token::VerificationKeys::from_jwks_json(
                    &tokio::fs::read_to_string(path).await?,
                )?),
                JwksOrigin::Uri(_) => Err(KeySourceError::Invalid(token::TokenError::InvalidJwks(
                    "a jwks_uri is not fixed keys".into(),
                ))),
            }
        })
        .await
    }

    /// Loads the keys now, so a configuration mistake shows at start-up (inline and file
    /// sources only; a `jwks_uri` peer may not be up yet).
    pub(crate) async fn preload(&self) -> Result<(), KeySourceError> {
        match self {
            Self::Fixed { origin, keys } => Self::fixed(origin, keys).await.map(|_| ()),
            Self::Remote(_) => Ok(()),
        }
    }

    /// Verifies a compact JWS of `typ` with the peer's keys (algorithm allow-list, `exp`,
    /// `iss`, `aud` as `expect` says). For a `jwks_uri`, an unknown key id triggers one
    /// (rate-limited) refetch.
    pub(crate) async fn verify<C: serde::de::DeserializeOwned>(
        &self,
        http: &reqwest::Client,
        jwt: &str,
        typ: &str,
        expect: &token::Expect,
    ) -> Result<C, VerifyError> {
        if token::unverified_typ(jwt).as_deref() != Some(typ) {
            return Err(VerifyError::Token(token::TokenError::Malformed(format!(
                "typ is not {typ}"
            ))));
        }
        match self {
            Self::Fixed { origin, keys } => Self::fixed(origin, keys)
                .await?
                .verify(jwt, expect)
                .map_err(VerifyError::Token),
            Self::Remote(remote) => Ok(remote.verify(http, jwt, expect).await?),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::atomic::Ordering;

    use actix_web::web;
    use remote_keys::test_support::{start, Published};

    use super::*;

    fn signed(key: &token::SigningKey, typ: &str) -> String {
        key.sign_typed(&serde_json::json!({"exp": 4_000_000_000u64}), typ)
            .unwrap()
    }

    const ANY: token::Expect = token::Expect {
        issuer: None,
        audience: Vec::new(),
        leeway_secs: 0,
    };

    #[tokio::test]
    async fn a_jwks_uri_peer_rotating_its_key_is_followed() {
        let (old, new) = (
            token::SigningKey::generate().unwrap(),
            token::SigningKey::generate().unwrap(),
        );
        let published = web::Data::new(Published::default());
        *published.jwks.lock().unwrap() = Some(old.jwks());
        let source = KeySource::new(JwksOrigin::Uri(start(published.clone())));
        let http = reqwest::Client::new();
        source
            .verify::<serde_json::Value>(&http, &signed(&old, "t"), "t", &ANY)
            .await
            .unwrap();
        *published.jwks.lock().unwrap() = Some(new.jwks());
        source
            .verify::<serde_json::Value>(&http, &signed(&new, "t"), "t", &ANY)
            .await
            .unwrap();
        assert_eq!(published.fetches.load(Ordering::SeqCst), 2);
        // The wrong typ is refused before any key is looked at.
        assert!(matches!(
            source
                .verify::<serde_json::Value>(&http, &signed(&new, "other"), "t", &ANY)
                .await,
            Err(VerifyError::Token(_))
        ));
    }

    #[tokio::test]
    async fn inline_keys_are_never_fetched() {
        let key = token::SigningKey::generate().unwrap();
        let source = KeySource::new(JwksOrigin::Inline(key.jwks()));
        source.preload().await.unwrap();
        let http = reqwest::Client::new();
        source
            .verify::<serde_json::Value>(&http, &signed(&key, "t"), "t", &ANY)
            .await
            .unwrap();
        let stranger = token::SigningKey::generate().unwrap();
        assert!(matches!(
            source
                .verify::<serde_json::Value>(&http, &signed(&stranger, "t"), "t", &ANY)
                .await,
            Err(VerifyError::Token(token::TokenError::UnknownKeyId(_)))
        ));
        let missing = KeySource::new(JwksOrigin::File("/nonexistent/jwks.json".into()));
        assert!(matches!(
            missing.preload().await,
            Err(KeySourceError::File(_))
        ));
    }
}
