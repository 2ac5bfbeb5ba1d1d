//! Entry points for the fuzz targets in `fuzz/` (docs/fuzzing.md).
//!
//! This module exists only so that the fuzz crate, which sees the hub as a library, can
//! reach parsing and validation code that is otherwise private. It is not API: it is
//! hidden from the docs and may change with any commit.
//!
//! Each function takes raw bytes, runs them through the hub's own parsing and checks
//! against a fixed relying party and the default levels, and returns nothing. No input
//! may make them panic; the assertions state what an accepted request must look like,
//! so a failing one is a bug in the hub, not in the harness.

use std::sync::LazyLock;

use serde_json::json;

use crate::journey::RpRequest;
use crate::level::Levels;
use crate::reason::Reason;
use crate::relying_party::RelyingParty;
use crate::web_edge::authorization_request::{registered_redirect_uri, validate, AuthorizeParams};
use crate::web_edge::request_object::{
    accept, RequestObjectClaims, RequestObjectError, LEEWAY_SECS, MAX_LIFETIME_SECS,
};
use crate::web_edge::request_shape::decodes_to_utf8;

/// The fixed relying party's client id and its one registered redirect URI.
const CLIENT_ID: &str = "fuzz-rp";
const REDIRECT_URI: &str = "https://rp.example/callback";
/// The fixed "now" request objects are checked at, so runs are reproducible.
const NOW: i64 = 1_700_000_000;

struct Fixture {
    rp: RelyingParty,
    levels: Levels,
}

/// Built from the same config types as a real RP, through serde so that new optional
/// settings do not break it. Fixed data: it either always builds or never does.
static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let settings = serde_json::from_value(json!({
        "client_id": CLIENT_ID,
        "name": "Fuzz RP",
        "redirect_uris": [REDIRECT_URI],
        "token_endpoint_auth_method": "private_key_jwt",
        "default_level": "P1",
    }))
    .unwrap_or_else(|e| panic!("fixed fuzzing RP settings do not deserialise: {e}"));
    Fixture {
        rp: RelyingParty::new(settings),
        levels: Levels::new(["P0", "P1", "P2", "P3"].map(str::to_owned).to_vec()),
    }
});

/// `input` as the query string (`GET /authorize`) or form body (`POST /authorize`) of
/// an authorization request.
pub fn authorization_request(input: &[u8]) {
    let _ = authorize(input);
}

/// `input` as the JSON payload of a request object whose signature verified.
pub fn request_object(input: &[u8]) {
    let _ = request_object_payload(input);
}

/// What `/authorize` makes of `input`: `None` when it is refused before validation.
fn authorize(input: &[u8]) -> Option<Result<RpRequest, Reason>> {
    // The request_shape middleware refuses what does not percent-decode to UTF-8 before
    // `web::Query` / `web::Form` (serde_urlencoded) see it.
    if !decodes_to_utf8(input) {
        return None;
    }
    let params: AuthorizeParams = serde_urlencoded::from_bytes(input).ok()?;
    checked(params)
}

/// What a verified request object carrying `input` as its payload comes to.
fn request_object_payload(
    input: &[u8],
) -> Option<Result<Result<RpRequest, Reason>, RequestObjectError>> {
    let claims: RequestObjectClaims = serde_json::from_slice(input).ok()?;
    let (params, single_use) = match accept(claims, CLIENT_ID, NOW) {
        Ok(accepted) => accepted,
        Err(e) => return Some(Err(e)),
    };
    assert_eq!(params.client_id.as_deref(), Some(CLIENT_ID));
    assert!(params.request.is_none() && params.request_uri.is_none());
    if let Some(single_use) = single_use {
        // A jti is remembered no longer than a request object may live.
        let most = MAX_LIFETIME_SECS + LEEWAY_SECS;
        assert!(
            single_use.ttl.as_secs() <= most.unsigned_abs(),
            "{single_use:?}"
        );
    }
    checked(params).map(Ok)
}

/// The redirect URI and validation checks both endpoints run, and what an accepted
/// request must look like.
fn checked(params: AuthorizeParams) -> Option<Result<RpRequest, Reason>> {
    let Fixture { rp, levels } = &*FIXTURE;
    let redirect_uri = registered_redirect_uri(rp, &params)?;
    let result = validate(levels, rp, redirect_uri, params);
    if let Ok(request) = &result {
        assert_eq!(request.client_id.as_str(), CLIENT_ID);
        assert_eq!(request.redirect_uri.as_str(), REDIRECT_URI);
        assert!((43..=128).contains(&request.code_challenge.len()));
        assert!(request.scope.iter().any(|s| s == "openid"));
        assert!(levels.parse(request.minimum_level.as_str()).is_some());
    }
    Some(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn a_valid_query_reaches_the_accepted_path() {
        let query = format!(
            "client_id={CLIENT_ID}&redirect_uri=https%3A%2F%2Frp.example%2Fcallback\
             &response_type=code&scope=openid+profile&state=s&nonce=n\
             &code_challenge={CHALLENGE}&code_challenge_method=S256&acr_values=P2"
        );
        let request = authorize(query.as_bytes())
            .and_then(Result::ok)
            .map(|r| r.minimum_level.to_string());
        assert_eq!(request.as_deref(), Some("P2"));
        assert!(authorize(b"state=%C3%28").is_none(), "not UTF-8");
        authorization_request(b"");
    }

    #[test]
    fn valid_claims_reach_the_accepted_path() {
        let claims = json!({
            "iss": CLIENT_ID, "aud": "https://hub.example", "client_id": CLIENT_ID,
            "iat": NOW, "exp": NOW + 300, "jti": "j1",
            "redirect_uri": REDIRECT_URI, "response_type": "code", "scope": "openid",
            "code_challenge": CHALLENGE, "code_challenge_method": "S256",
            "vtr": ["Cl.Cm.P2"],
        });
        let result = request_object_payload(claims.to_string().as_bytes());
        let level = result
            .and_then(|r| r.ok())
            .and_then(Result::ok)
            .map(|r| r.minimum_level.to_string());
        assert_eq!(level.as_deref(), Some("P2"));
        request_object(b"{}");
    }
}
