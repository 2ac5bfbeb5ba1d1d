//! Keys a peer publishes at a `jwks_uri`: at the hub, a relying party's (client
//! assertions, request objects), an identity provider's (ID tokens) and a matching
//! service's (its signed answers); at a matching service, the hub's (signed requests).
//! One cache for all of them, so they follow a peer's key rotation alike.
//!
//! They are cached: refreshed after the response's `Cache-Control` max-age (bounded,
//! default one hour), refetched early when a token names a key id not seen yet (rotation)
//! but at most once per [`JwksTiming::min_refetch`] so forged key ids cannot make the hub
//! hammer the peer, and kept when a refresh fails so an outage at the peer does not lock
//! it out at once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;
use url::Url;

/// Largest JWKS document accepted from a `jwks_uri` unless [`RemoteJwks::with_max_bytes`]
/// says otherwise.
const MAX_JWKS_BYTES: usize = 64 * 1024;

/// Why the peer's keys could not be had (not: why a token was rejected).
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    /// The peer has neither `jwks` nor `jwks_uri` (a configuration the caller allowed).
    #[error("no jwks configured")]
    NotConfigured,
    /// The fetch failed (connection, timeout, HTTP status).
    #[error("jwks_uri unreachable: {0}")]
    Unreachable(#[from] reqwest::Error),
    /// The document is larger than the cache accepts.
    #[error("jwks_uri document too large")]
    TooLarge,
    /// The document is not a usable JWKS.
    #[error("jwks invalid: {0}")]
    Invalid(#[from] token::TokenError),
    /// Keys configured inline could not be used (reported by the caller).
    #[error("jwks invalid: {0}")]
    Unusable(String),
    /// The last fetch failed less than [`JwksTiming::min_refetch`] ago.
    #[error("jwks_uri failed recently; not retried yet")]
    CoolingDown,
}

/// Why a JWT the peer signed was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    /// The peer's keys are unavailable.
    #[error("{0}")]
    Keys(#[from] KeysError),
    /// The token itself is bad (signature, algorithm, claims, ...).
    #[error("{0}")]
    Token(#[from] token::TokenError),
}

/// How long keys from a `jwks_uri` are trusted and how often it may be fetched.
#[derive(Debug, Clone, Copy)]
pub struct JwksTiming {
    /// Used when the response has no `Cache-Control: max-age`.
    pub default_max_age: Duration,
    /// Bounds applied to the response's max-age.
    pub min_max_age: Duration,
    pub max_max_age: Duration,
    /// Shortest time between two fetches not due to expiry (unknown key ids, failures).
    pub min_refetch: Duration,
}

impl Default for JwksTiming {
    fn default() -> Self {
        Self {
            default_max_age: Duration::from_secs(3600),
            min_max_age: Duration::from_secs(60),
            max_max_age: Duration::from_secs(24 * 3600),
            min_refetch: Duration::from_secs(30),
        }
    }
}

impl JwksTiming {
    /// How long a response with these headers may be used.
    fn max_age(&self, headers: &reqwest::header::HeaderMap) -> Duration {
        let stated = headers
            .get_all(reqwest::header::CACHE_CONTROL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .find_map(|directive| {
                let directive = directive.trim().to_ascii_lowercase();
                let secs = directive.strip_prefix("max-age=")?;
                secs.trim_matches('"').parse::<u64>().ok()
            });
        stated
            .map(Duration::from_secs)
            .unwrap_or(self.default_max_age)
            .clamp(self.min_max_age, self.max_max_age)
    }
}

/// Keys fetched from a `jwks_uri`, with the cache state.
#[derive(Debug)]
pub struct RemoteJwks {
    uri: Url,
    timing: JwksTiming,
    max_bytes: usize,
    state: Mutex<RemoteState>,
}

#[derive(Debug, Default)]
struct RemoteState {
    current: Option<Current>,
    /// The last fetch made because a token named an unknown key id.
    last_refetch: Option<Instant>,
    /// The last fetch that failed.
    last_failure: Option<Instant>,
}

#[derive(Debug)]
struct Current {
    keys: Arc<token::VerificationKeys>,
    stale_at: Instant,
}

impl RemoteJwks {
    /// A cache of `uri`'s keys, empty until first used.
    pub fn new(uri: Url, timing: JwksTiming) -> Self {
        Self {
            uri,
            timing,
            max_bytes: MAX_JWKS_BYTES,
            state: Mutex::new(RemoteState::default()),
        }
    }

    /// Accepts JWKS documents of up to `max_bytes`.
    pub fn with_max_bytes(mut self, max_bytes: usize) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// Where the keys come from.
    pub fn uri(&self) -> &Url {
        &self.uri
    }

    /// Keys fetched from this `jwks_uri` by another request (an identity provider's
    /// discovery fetches its JWKS), with that response's headers: held as if fetched here.
    pub async fn offer(&self, keys: token::VerificationKeys, headers: &reqwest::header::HeaderMap) {
        let stale_at = Instant::now() + self.timing.max_age(headers);
        self.state.lock().await.current = Some(Current {
            keys: Arc::new(keys),
            stale_at,
        });
    }

    /// Verifies a JWT the peer signed: algorithm allow-list, signature, `exp`, and `iss` /
    /// `aud` as `expect` says. A key id not in the cached keys triggers one (rate-limited)
    /// refetch.
    pub async fn verify<C: serde::de::DeserializeOwned>(
        &self,
        http: &reqwest::Client,
        jwt: &str,
        expect: &token::Expect,
    ) -> Result<C, JwtError> {
        let (keys, fresh) = self.keys(http, false).await?;
        match keys.verify(jwt, expect) {
            Err(e @ token::TokenError::UnknownKeyId(_)) if !fresh => {
                let (keys, refetched) = self.keys(http, true).await?;
                if refetched {
                    Ok(keys.verify(jwt, expect)?)
                } else {
                    Err(e.into())
                }
            }
            other => Ok(other?),
        }
    }

    /// The keys, and whether they were fetched by this call. Fetches when there are none,
    /// when they are past their max-age, or (with `unknown_kid`) to look for a new key.
    /// Fetches for unknown key ids, and any fetch after a failure, happen at most once
    /// per `min_refetch`: what an attacker can trigger is bounded. A failed refresh
    /// keeps the last good keys.
    pub async fn keys(
        &self,
        http: &reqwest::Client,
        unknown_kid: bool,
    ) -> Result<(Arc<token::VerificationKeys>, bool), KeysError> {
        // Held across the fetch: concurrent requests wait for one fetch instead of each
        // starting their own.
        let mut state = self.state.lock().await;
        let now = Instant::now();
        let cooled =
            |t: Option<Instant>| t.is_none_or(|t| now.duration_since(t) >= self.timing.min_refetch);
        let (due, refetch) = match &state.current {
            None => (true, false),
            Some(c) if now >= c.stale_at => (true, false),
            Some(_) => (unknown_kid, true),
        };
        let allowed = cooled(state.last_failure) && (!refetch || cooled(state.last_refetch));
        if !(due && allowed) {
            return match &state.current {
                Some(c) => Ok((c.keys.clone(), false)),
                None => Err(KeysError::CoolingDown),
            };
        }
        if refetch {
            state.last_refetch = Some(now);
        }
        let fetched = self.fetch(http).await;
        if fetched.is_err() {
            state.last_failure = Some(now);
        }
        match fetched {
            Ok((keys, max_age)) => {
                let keys = Arc::new(keys);
                state.current = Some(Current {
                    keys: keys.clone(),
                    stale_at: now + max_age,
                });
                Ok((keys, true))
            }
            Err(e) => match &state.current {
                Some(c) => {
                    tracing::warn!(error = %e, uri = %self.uri, "jwks_uri refresh failed; keeping the last good keys");
                    Ok((c.keys.clone(), false))
                }
                None => Err(e),
            },
        }
    }

    async fn fetch(
        &self,
        http: &reqwest::Client,
    ) -> Result<(token::VerificationKeys, Duration), KeysError> {
        let mut response = http
            .get(self.uri.clone())
            .send()
            .await?
            .error_for_status()?;
        let max_age = self.timing.max_age(response.headers());
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            if body.len() + chunk.len() > self.max_bytes {
                return Err(KeysError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        let keys = token::VerificationKeys::from_jwks_json(&String::from_utf8_lossy(&body))?;
        Ok((keys, max_age))
    }
}

#[cfg(any(test, feature = "test-support"))]
pub mod test_support;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::test_support::{signed_by, start, timing, Published, ANY};
    use super::*;
    use std::sync::atomic::Ordering;

    use actix_web::web;

    #[test]
    fn max_age_comes_from_cache_control_within_bounds() {
        let t = JwksTiming::default();
        let headers = |v: &str| {
            let mut h = reqwest::header::HeaderMap::new();
            h.insert("cache-control", v.parse().unwrap());
            h
        };
        assert_eq!(
            t.max_age(&reqwest::header::HeaderMap::new()),
            Duration::from_secs(3600)
        );
        assert_eq!(
            t.max_age(&headers("public, Max-Age=600")),
            Duration::from_secs(600)
        );
        assert_eq!(t.max_age(&headers("max-age=5")), Duration::from_secs(60));
        assert_eq!(
            t.max_age(&headers("max-age=99999999")),
            Duration::from_secs(24 * 3600)
        );
        assert_eq!(
            t.max_age(&headers("no-cache, max-age=oops")),
            Duration::from_secs(3600)
        );
    }

    #[tokio::test]
    async fn refreshes_after_max_age_and_keeps_last_good_keys_when_the_refresh_fails() {
        let old = token::SigningKey::generate().unwrap();
        let new = token::SigningKey::generate().unwrap();
        let published = web::Data::new(Published::default());
        *published.jwks.lock().unwrap() = Some(old.jwks());
        *published.cache_control.lock().unwrap() = Some("max-age=0".into());
        let remote = RemoteJwks::new(start(published.clone()), timing(0));
        let http = reqwest::Client::new();

        let (keys, fetched) = remote.keys(&http, false).await.unwrap();
        assert!(fetched);
        keys.verify::<serde_json::Value>(&signed_by(&old), &ANY)
            .unwrap();

        // Past max-age (1 ms here): refetched, and the new document is used.
        *published.jwks.lock().unwrap() = Some(new.jwks());
        tokio::time::sleep(Duration::from_millis(5)).await;
        let (keys, fetched) = remote.keys(&http, false).await.unwrap();
        assert!(fetched);
        keys.verify::<serde_json::Value>(&signed_by(&new), &ANY)
            .unwrap();

        // The RP's endpoint fails: the last good keys still verify.
        *published.jwks.lock().unwrap() = None;
        tokio::time::sleep(Duration::from_millis(5)).await;
        let before = published.fetches.load(Ordering::SeqCst);
        let (keys, fetched) = remote.keys(&http, false).await.unwrap();
        assert!(!fetched);
        assert_eq!(published.fetches.load(Ordering::SeqCst), before + 1);
        keys.verify::<serde_json::Value>(&signed_by(&new), &ANY)
            .unwrap();
    }

    #[tokio::test]
    async fn unknown_key_ids_refetch_at_most_once_per_interval() {
        let old = token::SigningKey::generate().unwrap();
        let published = web::Data::new(Published::default());
        *published.jwks.lock().unwrap() = Some(old.jwks());
        let remote = RemoteJwks::new(start(published.clone()), timing(60_000));
        let http = reqwest::Client::new();
        remote.keys(&http, false).await.unwrap();
        assert_eq!(published.fetches.load(Ordering::SeqCst), 1);
        // The first unknown kid refetches (the RP may have rotated its key)...
        let (_, fetched) = remote.keys(&http, true).await.unwrap();
        assert!(fetched);
        // ...but many more within the interval cause no further fetch.
        for _ in 0..20 {
            let (_, fetched) = remote.keys(&http, true).await.unwrap();
            assert!(!fetched);
        }
        assert_eq!(published.fetches.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_failing_jwks_uri_is_not_retried_within_the_interval() {
        let published = web::Data::new(Published::default());
        let remote = RemoteJwks::new(start(published.clone()), timing(60_000));
        let http = reqwest::Client::new();
        assert!(matches!(
            remote.keys(&http, false).await,
            Err(KeysError::Unreachable(_))
        ));
        for unknown_kid in [false, true] {
            assert!(matches!(
                remote.keys(&http, unknown_kid).await,
                Err(KeysError::CoolingDown)
            ));
        }
        assert_eq!(published.fetches.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_flood_of_unknown_key_ids_causes_at_most_one_refetch_per_interval() {
        let published_key = token::SigningKey::generate().unwrap();
        let published = web::Data::new(Published::default());
        *published.jwks.lock().unwrap() = Some(published_key.jwks());
        let remote = RemoteJwks::new(start(published.clone()), timing(60_000));
        let http = reqwest::Client::new();
        remote
            .verify::<serde_json::Value>(&http, &signed_by(&published_key), &ANY)
            .await
            .unwrap();
        for _ in 0..20 {
            let forged = token::SigningKey::generate().unwrap();
            assert!(matches!(
                remote
                    .verify::<serde_json::Value>(&http, &signed_by(&forged), &ANY)
                    .await,
                Err(JwtError::Token(token::TokenError::UnknownKeyId(_)))
            ));
        }
        // The first fetch, and one refetch for the first unknown key id.
        assert_eq!(published.fetches.load(Ordering::SeqCst), 2);
        remote
            .verify::<serde_json::Value>(&http, &signed_by(&published_key), &ANY)
            .await
            .unwrap();
    }
}
