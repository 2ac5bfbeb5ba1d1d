//! Public keys of a peer of the matching protocol (the hub's keys at a matching service,
//! a matching service's keys at the hub): inline, from a file, or fetched from a
//! `jwks_uri` and refetched when a token names a key id not seen yet (key rotation),
//! at most once per [`MIN_REFRESH`] so forged kids cannot make us hammer the peer.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;
use url::Url;

/// Shortest time between two fetches of a `jwks_uri` caused by unknown key ids.
const MIN_REFRESH: Duration = Duration::from_secs(30);

/// Largest JWKS document accepted.
const MAX_JWKS_BYTES: usize = 64 * 1024;

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
    #[error("jwks_uri unreachable: {0}")]
    Fetch(#[from] reqwest::Error),
    #[error("jwks too large")]
    TooLarge,
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

#[derive(Debug)]
struct Cached {
    keys: token::VerificationKeys,
    fetched: Instant,
}

/// A peer's verification keys, loaded on first use and cached.
#[derive(Debug)]
pub(crate) struct KeySource {
    origin: JwksOrigin,
    cached: Mutex<Option<Cached>>,
}

impl KeySource {
    pub(crate) fn new(origin: JwksOrigin) -> Self {
        Self {
            origin,
            cached: Mutex::new(None),
        }
    }

    async fn load(
        &self,
        http: &reqwest::Client,
    ) -> Result<token::VerificationKeys, KeySourceError> {
        match &self.origin {
            JwksOrigin::Inline(v) => Ok(token::VerificationKeys::from_jwks(v)?),
            JwksOrigin::File(path) => Ok(token::VerificationKeys::from_jwks_json(
                &tokio::fs::read_to_string(path).await?,
            )?),
            JwksOrigin::Uri(uri) => {
                let mut response = http.get(uri.clone()).send().await?.error_for_status()?;
                let mut body = Vec::new();
                while let Some(chunk) = response.chunk().await? {
                    if body.len() + chunk.len() > MAX_JWKS_BYTES {
                        return Err(KeySourceError::TooLarge);
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(token::VerificationKeys::from_jwks_json(
                    &String::from_utf8_lossy(&body),
                )?)
            }
        }
    }

    /// The keys, loading them on first use; with `refresh`, reloads a `jwks_uri` unless
    /// it was fetched less than [`MIN_REFRESH`] ago.
    async fn keys(
        &self,
        http: &reqwest::Client,
        refresh: bool,
    ) -> Result<(token::VerificationKeys, bool), KeySourceError> {
        let mut cached = self.cached.lock().await;
        let stale = match &*cached {
            None => true,
            Some(c) => {
                refresh
                    && matches!(self.origin, JwksOrigin::Uri(_))
                    && c.fetched.elapsed() >= MIN_REFRESH
            }
        };
        if stale {
            let keys = self.load(http).await?;
            *cached = Some(Cached {
                keys: keys.clone(),
                fetched: Instant::now(),
            });
            return Ok((keys, true));
        }
        match &*cached {
            Some(c) => Ok((c.keys.clone(), false)),
            None => Err(KeySourceError::Invalid(token::TokenError::InvalidJwks(
                "no keys loaded".into(),
            ))),
        }
    }

    /// Loads the keys now, so a configuration mistake shows at start-up (inline and file
    /// sources only; a `jwks_uri` peer may not be up yet).
    pub(crate) async fn preload(&self, http: &reqwest::Client) -> Result<(), KeySourceError> {
        if matches!(self.origin, JwksOrigin::Uri(_)) {
            return Ok(());
        }
        self.keys(http, false).await.map(|_| ())
    }

    /// Verifies a compact JWS of `typ` with the peer's keys (algorithm allow-list, `exp`,
    /// `iss`, `aud` as `expect` says). An unknown key id triggers one refetch.
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
        let (keys, fresh) = self.keys(http, false).await?;
        match keys.verify(jwt, expect) {
            Err(token::TokenError::UnknownKeyId(_)) if !fresh => {
                let (keys, _) = self.keys(http, true).await?;
                keys.verify(jwt, expect).map_err(VerifyError::Token)
            }
            other => other.map_err(VerifyError::Token),
        }
    }
}
