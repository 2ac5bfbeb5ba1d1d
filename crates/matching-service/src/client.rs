//! The hub's client of one relying party's remote matching service: a signed request out,
//! a response accepted only when its signature, `typ`, issuer, audience, lifetime and
//! `in_response_to` all check out and its decision is consistent. Anything else is a
//! [`RemoteFailure`], never a guess.

use std::time::Duration;

use matching::{Decision, MatchingDataset, Outcome};
use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;
use url::Url;

use crate::keys::{JwksOrigin, KeySource, KeySourceError, VerifyError};
use crate::local::Cycle;
use crate::protocol::{
    self, token_error_code, MatchRequest, MatchResponse, CONTENT_TYPE, MAX_LIFETIME_SECS,
    REQUEST_TYP, RESPONSE_TYP,
};

/// Largest response body accepted from a matching service.
const MAX_RESPONSE_BYTES: usize = 256 * 1024;
/// Clock skew allowed on a matching service's response.
const RESPONSE_LEEWAY_SECS: u64 = 5;

/// Where a relying party's cycles 1 and 3 run when they do not run in the hub: a remote
/// matching service next to the department's records (docs/matching-service.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteMatchingSettings {
    /// The service's base URL: requests go to `{url}/match`, carry it (without a trailing
    /// slash) as `aud`, and responses must carry it as `iss`.
    pub url: Url,
    /// The service's JWKS, inline.
    #[serde(default)]
    pub jwks: Option<serde_json::Value>,
    /// Where to fetch the service's JWKS (refetched when an unknown kid appears).
    #[serde(default)]
    pub jwks_uri: Option<Url>,
    /// Total time allowed for one call, connection included.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_timeout_ms() -> u64 {
    3000
}

/// A relying party's `matching_service` that cannot be used (messages name its keys).
#[derive(Debug, thiserror::Error)]
pub enum RemoteSettingsError {
    #[error("matching_service needs jwks or jwks_uri")]
    NoKeys,
    #[error("matching_service.timeout_ms must be positive")]
    NoTime,
}

impl RemoteMatchingSettings {
    /// The service's identifier: `url` without a trailing slash.
    pub fn identifier(&self) -> String {
        self.url.as_str().trim_end_matches('/').to_owned()
    }

    /// Cross-field checks that serde cannot express.
    pub fn validate(&self) -> Result<(), RemoteSettingsError> {
        if self.jwks.is_none() && self.jwks_uri.is_none() {
            return Err(RemoteSettingsError::NoKeys);
        }
        if self.timeout_ms == 0 {
            return Err(RemoteSettingsError::NoTime);
        }
        Ok(())
    }
}

/// Why a remote matching service gave no usable decision. Messages carry no personal data.
#[derive(Debug, thiserror::Error)]
pub enum RemoteFailure {
    #[error("signing the request: {0}")]
    Signing(token::TokenError),
    #[error("matching service http client: {0}")]
    Client(reqwest::Error),
    #[error("matching service unreachable: {0}")]
    Transport(reqwest::Error),
    #[error("matching service answered status {0}")]
    Status(u16),
    #[error("matching service response too large")]
    TooLarge,
    #[error("matching service keys: {0}")]
    Keys(KeySourceError),
    #[error("matching service response rejected: {}", token_error_code(.0))]
    Rejected(token::TokenError),
    #[error("matching service response lifetime too long")]
    Lifetime,
    #[error("matching service response answers another request")]
    NotOurs,
    #[error("matching service decision inconsistent")]
    Inconsistent,
}

impl RemoteFailure {
    /// The audit reason code: `matching_service:<why>`.
    pub fn code(&self) -> String {
        let why = match self {
            Self::Signing(_) => "signing",
            Self::Client(_) => "client",
            Self::Transport(e) if e.is_timeout() => "timeout",
            Self::Transport(_) => "unreachable",
            Self::Status(status) => return format!("matching_service:status={status}"),
            Self::TooLarge => "too_large",
            Self::Keys(_) => "keys_unavailable",
            Self::Rejected(e) => token_error_code(e),
            Self::Lifetime => "lifetime",
            Self::NotOurs => "not_in_response_to_request",
            Self::Inconsistent => "inconsistent_decision",
        };
        format!("matching_service:{why}")
    }
}

/// Who is asking: the hub's issuer identifier and the key its requests are signed with.
#[derive(Debug, Clone, Copy)]
pub struct Requester<'a> {
    pub issuer: &'a str,
    pub signing_key: &'a token::SigningKey,
}

/// The hub's client of one relying party's remote matching service.
#[derive(Debug)]
pub struct RemoteMatching {
    settings: RemoteMatchingSettings,
    identifier: String,
    keys: KeySource,
    http: OnceCell<reqwest::Client>,
}

impl RemoteMatching {
    pub fn new(settings: RemoteMatchingSettings) -> Self {
        let origin = match (&settings.jwks, &settings.jwks_uri) {
            (Some(jwks), _) => JwksOrigin::Inline(jwks.clone()),
            (None, Some(uri)) => JwksOrigin::Uri(uri.clone()),
            // Refused by `validate`; an empty set rejects every response.
            (None, None) => JwksOrigin::Inline(serde_json::json!({"keys": []})),
        };
        Self {
            identifier: settings.identifier(),
            keys: KeySource::new(origin),
            settings,
            http: OnceCell::new(),
        }
    }

    /// A client with connect and total timeouts, no redirects (built on first use).
    async fn http(&self) -> Result<&reqwest::Client, RemoteFailure> {
        self.http
            .get_or_try_init(|| async {
                let total = Duration::from_millis(self.settings.timeout_ms);
                reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .connect_timeout(total.min(Duration::from_secs(2)))
                    .timeout(total)
                    .build()
                    .map_err(RemoteFailure::Client)
            })
            .await
    }

    /// Sends one signed request for relying party `rp` and returns the verified decision.
    pub async fn decide(
        &self,
        requester: Requester<'_>,
        rp: &str,
        dataset: &MatchingDataset,
        cycle: Cycle<'_>,
    ) -> Result<Decision, RemoteFailure> {
        let http = self.http().await?;
        let now = protocol::unix_now();
        let jti = token::random_opaque(24);
        let (attribute, value) = match cycle {
            Cycle::One => (None, None),
            Cycle::Three { attribute, value } => {
                (Some(attribute.to_owned()), Some(value.to_owned()))
            }
        };
        let request = MatchRequest {
            iss: requester.issuer.to_owned(),
            aud: self.identifier.clone(),
            iat: now,
            exp: now + MAX_LIFETIME_SECS,
            jti: jti.clone(),
            rp: rp.to_owned(),
            cycle: cycle.number(),
            dataset: dataset.clone(),
            attribute,
            value,
        };
        let jws = requester
            .signing_key
            .sign_typed(&request, REQUEST_TYP)
            .map_err(RemoteFailure::Signing)?;
        let endpoint = format!("{}/match", self.identifier);
        let mut response = http
            .post(endpoint)
            .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE)
            .header(reqwest::header::ACCEPT, CONTENT_TYPE)
            .body(jws)
            .send()
            .await
            .map_err(RemoteFailure::Transport)?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(RemoteFailure::Status(response.status().as_u16()));
        }
        if response
            .content_length()
            .is_some_and(|l| l > MAX_RESPONSE_BYTES as u64)
        {
            return Err(RemoteFailure::TooLarge);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(RemoteFailure::Transport)? {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(RemoteFailure::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        let body = String::from_utf8_lossy(&body);
        let expect = token::Expect {
            issuer: Some(self.identifier.clone()),
            audience: vec![requester.issuer.to_owned()],
            leeway_secs: RESPONSE_LEEWAY_SECS,
        };
        let answer: MatchResponse = self
            .keys
            .verify(http, body.trim(), RESPONSE_TYP, &expect)
            .await
            .map_err(|e| match e {
                VerifyError::Keys(e) => RemoteFailure::Keys(e),
                VerifyError::Token(e) => RemoteFailure::Rejected(e),
            })?;
        if !protocol::lifetime_ok(
            answer.iat,
            answer.exp,
            protocol::unix_now(),
            RESPONSE_LEEWAY_SECS as i64,
        ) {
            return Err(RemoteFailure::Lifetime);
        }
        if !token::secrets_equal(answer.in_response_to.as_bytes(), jti.as_bytes()) {
            return Err(RemoteFailure::NotOurs);
        }
        let decision = answer.decision;
        let consistent = match decision.outcome {
            Outcome::Match => decision.record_id.as_ref().is_some_and(|r| !r.0.is_empty()),
            Outcome::NoMatch | Outcome::Ambiguous => decision.record_id.is_none(),
        };
        if !consistent {
            return Err(RemoteFailure::Inconsistent);
        }
        Ok(decision)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn settings_default_and_refuse_a_service_that_cannot_be_trusted() {
        let settings: RemoteMatchingSettings =
            serde_json::from_value(serde_json::json!({"url": "https://matching.example/"}))
                .unwrap();
        assert_eq!(settings.timeout_ms, 3000);
        assert_eq!(settings.identifier(), "https://matching.example");
        assert_eq!(
            settings.validate().unwrap_err().to_string(),
            "matching_service needs jwks or jwks_uri"
        );
        let settings = RemoteMatchingSettings {
            jwks: Some(serde_json::json!({"keys": []})),
            timeout_ms: 0,
            ..settings
        };
        assert_eq!(
            settings.validate().unwrap_err().to_string(),
            "matching_service.timeout_ms must be positive"
        );
    }

    #[test]
    fn failures_have_stable_audit_codes() {
        assert_eq!(
            RemoteFailure::Status(503).code(),
            "matching_service:status=503"
        );
        assert_eq!(
            RemoteFailure::NotOurs.code(),
            "matching_service:not_in_response_to_request"
        );
        assert_eq!(
            RemoteFailure::Rejected(token::TokenError::BadSignature).code(),
            "matching_service:bad_signature"
        );
    }
}
