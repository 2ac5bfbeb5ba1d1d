//! The wire protocol between the hub and a matching service (docs/matching-service.md):
//! a signed request (`match-request+jwt`) answered by a signed response
//! (`match-response+jwt`) bound to it by `in_response_to`.

use matching::{Decision, MatchingDataset};
use serde::{Deserialize, Serialize};

/// `typ` of a request: so no other token the hub signs (ID tokens, client assertions)
/// can be presented as one.
pub const REQUEST_TYP: &str = "match-request+jwt";
/// `typ` of a response.
pub const RESPONSE_TYP: &str = "match-response+jwt";
/// Media type of both bodies.
pub const CONTENT_TYPE: &str = "application/jwt";
/// Longest lifetime (`exp - iat`) of a request or response, in seconds. It also bounds
/// how long a request id must be remembered to refuse replays.
pub const MAX_LIFETIME_SECS: i64 = 60;

/// The claims of a match request, signed by the hub.
///
/// `Debug` leaves out the matching dataset and the cycle-3 value.
#[derive(Serialize, Deserialize)]
pub struct MatchRequest {
    /// The hub's issuer identifier.
    pub iss: String,
    /// The service's identifier.
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    /// Unique per request: replay protection at the service, binding of the response.
    pub jti: String,
    /// The relying party whose records are searched.
    pub rp: String,
    /// 1 or 3.
    pub cycle: u8,
    pub dataset: MatchingDataset,
    /// Cycle 3: the attribute type (`nino`, `driving_licence`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribute: Option<String>,
    /// Cycle 3: the value the citizen gave.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

impl std::fmt::Debug for MatchRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MatchRequest")
            .field("iss", &self.iss)
            .field("aud", &self.aud)
            .field("iat", &self.iat)
            .field("exp", &self.exp)
            .field("jti", &self.jti)
            .field("rp", &self.rp)
            .field("cycle", &self.cycle)
            .field("attribute", &self.attribute)
            .finish_non_exhaustive()
    }
}

/// The claims of a match response, signed by the service.
#[derive(Debug, Serialize, Deserialize)]
pub struct MatchResponse {
    /// The service's identifier.
    pub iss: String,
    /// The hub's issuer identifier.
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    /// The `jti` of the request this answers.
    pub in_response_to: String,
    pub decision: Decision,
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Whether `iat`/`exp` describe a token that is not from the future and lives at most
/// [`MAX_LIFETIME_SECS`] (`exp` itself is checked by the signature verification).
pub fn lifetime_ok(iat: i64, exp: i64, now: i64, leeway: i64) -> bool {
    iat <= now + leeway && exp >= iat && exp - iat <= MAX_LIFETIME_SECS
}

/// A short, stable code for why a peer's token was refused: safe for logs, audit
/// reasons and error bodies (token errors can quote claim values; these codes cannot).
pub fn token_error_code(e: &token::TokenError) -> &'static str {
    use token::TokenError as E;
    match e {
        E::Malformed(_) => "malformed",
        E::DisallowedAlgorithm(_) => "disallowed_algorithm",
        E::UnknownKeyId(_) | E::AmbiguousKey | E::KeyAlgorithmMismatch { .. } => "unknown_key",
        E::BadSignature => "bad_signature",
        E::Expired => "expired",
        E::NotYetValid => "not_yet_valid",
        E::WrongIssuer => "wrong_issuer",
        E::WrongAudience => "wrong_audience",
        E::MissingClaim(_) => "missing_claim",
        E::InvalidClaims(_) => "invalid_claims",
        _ => "invalid_token",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetime_is_bounded() {
        assert!(lifetime_ok(100, 160, 100, 5));
        assert!(!lifetime_ok(100, 161, 100, 5));
        assert!(!lifetime_ok(200, 230, 100, 5), "from the future");
        assert!(!lifetime_ok(100, 90, 100, 5));
    }

    #[test]
    fn typ_is_read_from_the_header() {
        let key = token::SigningKey::generate().expect("key");
        let jwt = key
            .sign_typed(&serde_json::json!({"exp": 1}), REQUEST_TYP)
            .expect("sign");
        assert_eq!(token::unverified_typ(&jwt).as_deref(), Some(REQUEST_TYP));
    }
}
