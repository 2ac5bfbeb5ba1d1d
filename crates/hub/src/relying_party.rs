//! A registered relying party: redirect URIs, client authentication, matching options.

use tokio::sync::OnceCell;

use crate::config::RelyingPartySettings;
use crate::matching_step::RemoteMatching;

/// A relying party from configuration, with its verification keys once loaded.
#[derive(Debug)]
pub struct RelyingParty {
    pub settings: RelyingPartySettings,
    keys: OnceCell<token::VerificationKeys>,
    /// The client of its remote matching service, when cycles 1 and 3 run there.
    pub(crate) remote_matching: Option<RemoteMatching>,
}

/// Why the RP's keys could not be had.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    #[error("no jwks configured")]
    NotConfigured,
    #[error("jwks_uri unreachable: {0}")]
    Unreachable(#[from] reqwest::Error),
    #[error("jwks invalid: {0}")]
    Invalid(#[from] token::TokenError),
}

impl RelyingParty {
    pub fn new(settings: RelyingPartySettings) -> Self {
        Self {
            remote_matching: settings
                .matching_service
                .as_ref()
                .map(|remote| RemoteMatching::new(remote.clone())),
            settings,
            keys: OnceCell::new(),
        }
    }

    /// True only for an exact, registered redirect URI (no prefix or pattern matching).
    pub fn accepts_redirect_uri(&self, uri: &str) -> bool {
        self.settings.redirect_uris.iter().any(|r| r == uri)
    }

    /// The sector for pairwise identifiers.
    pub fn sector(&self) -> &str {
        self.settings
            .sector
            .as_deref()
            .unwrap_or(&self.settings.client_id)
    }

    /// Keys for `private_key_jwt`: inline JWKS, or fetched once from `jwks_uri`.
    pub async fn keys(
        &self,
        http: &reqwest::Client,
    ) -> Result<&token::VerificationKeys, KeysError> {
        self.keys
            .get_or_try_init(|| async {
                if let Some(jwks) = &self.settings.jwks {
                    return Ok(token::VerificationKeys::from_jwks(jwks)?);
                }
                let Some(uri) = &self.settings.jwks_uri else {
                    return Err(KeysError::NotConfigured);
                };
                let body = http
                    .get(uri.clone())
                    .send()
                    .await?
                    .error_for_status()?
                    .text()
                    .await?;
                Ok(token::VerificationKeys::from_jwks_json(&body)?)
            })
            .await
    }
}
