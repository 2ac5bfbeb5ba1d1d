//! Signed request objects (JAR, RFC 9101): the `request` parameter at `/authorize` and
//! `/par`. A request object must be signed with one of the RP's registered keys, name the
//! RP as `iss` and `client_id` and the hub as `aud`, and live briefly; only the
//! parameters inside it are used, so nothing the browser could alter counts.

use std::time::Duration;

use serde::Deserialize;

use super::authorization_request::AuthorizeParams;
use super::now;
use crate::relying_party::provider::OpenIdProvider;
use crate::relying_party::{RelyingParty, RpJwtError};

/// The `typ` RFC 9101 §10.8 registers (the `application/` prefix may be left out).
pub(crate) const REQUEST_OBJECT_TYP: &str = "oauth-authz-req+jwt";
/// Session-store namespace of the `jti`s of used request objects.
const REQUEST_OBJECT_JTIS: &str = "request_object_jti";
/// A request object may be valid for at most this long (FAPI 2.0 asks for short lives).
pub(crate) const MAX_LIFETIME_SECS: i64 = 600;
/// Allowed clock skew between the RP and the op.
pub(crate) const LEEWAY_SECS: i64 = 5;

/// Why a request object was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RequestObjectError {
    #[error("does not verify: {0}")]
    Unverified(#[from] RpJwtError),
    #[error("typ is not {REQUEST_OBJECT_TYP}")]
    WrongType,
    #[error("client_id claim missing or not the requesting client")]
    ClientIdMismatch,
    #[error("expired, lifetime too long, or issued in the future")]
    Lifetime,
    #[error("claim {0} is not acceptable")]
    Claim(&'static str),
    #[error("jti already used")]
    Replayed,
    #[error("session store: {0}")]
    Unavailable(#[from] store::StoreError),
}

impl RequestObjectError {
    /// The outcome the verification log records (codes only, never claim values).
    pub(crate) fn audit_outcome(&self) -> &'static str {
        match self {
            Self::Replayed => "request_object_replayed",
            _ => "invalid_request_object",
        }
    }
}

/// The claims of a request object: the authorization request parameters as JSON
/// members, and the JWT claims that protect them.
#[derive(Debug, Deserialize)]
pub(crate) struct RequestObjectClaims {
    exp: i64,
    #[serde(default)]
    iat: Option<i64>,
    #[serde(default)]
    nbf: Option<i64>,
    #[serde(default)]
    jti: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    ui_locales: Option<String>,
    #[serde(default)]
    redirect_uri: Option<String>,
    #[serde(default)]
    response_type: Option<String>,
    #[serde(default)]
    response_mode: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    nonce: Option<String>,
    #[serde(default)]
    code_challenge: Option<String>,
    #[serde(default)]
    code_challenge_method: Option<String>,
    #[serde(default)]
    acr_values: Option<String>,
    /// A JSON array of vectors, or the same array as a string (as in a query).
    #[serde(default)]
    vtr: Option<serde_json::Value>,
    #[serde(default)]
    idp_hint: Option<String>,
    #[serde(default)]
    prompt: Option<String>,
    /// Nesting is not allowed (RFC 9101 §4).
    #[serde(default)]
    request: Option<serde_json::Value>,
    #[serde(default)]
    request_uri: Option<serde_json::Value>,
}

/// A request object's `jti`, and how long it must be remembered to refuse a replay.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct SingleUse {
    pub(crate) jti: String,
    pub(crate) ttl: Duration,
}

/// Verifies `jwt` as a request object of `rp` and returns the authorization request it
/// carries. A request object's `jti`, when present, is single use.
pub(crate) async fn verify(
    op: &OpenIdProvider,
    rp: &RelyingParty,
    jwt: &str,
) -> Result<AuthorizeParams, RequestObjectError> {
    let client_id = rp.client_id().as_str();
    if let Some(typ) = token::unverified_typ(jwt) {
        let typ = typ.to_ascii_lowercase();
        if typ.strip_prefix("application/").unwrap_or(&typ) != REQUEST_OBJECT_TYP {
            return Err(RequestObjectError::WrongType);
        }
    }
    let expect = token::Expect {
        issuer: Some(client_id.to_owned()),
        audience: vec![op.issuer.clone()],
        leeway_secs: LEEWAY_SECS as u64,
    };
    let claims: RequestObjectClaims = rp.verify(&op.http, jwt, &expect).await?;
    let (params, single_use) = accept(claims, client_id, now())?;
    if let Some(SingleUse { jti, ttl }) = single_use {
        let fresh = op
            .sessions
            .put_if_absent(
                REQUEST_OBJECT_JTIS,
                &format!("{client_id}:{jti}"),
                "1".into(),
                ttl,
            )
            .await?;
        if !fresh {
            return Err(RequestObjectError::Replayed);
        }
    }
    Ok(params)
}

/// The checks on the claims of a request object whose signature, `iss` and `aud`
/// verified, at time `now`: kept pure (no keys, no replay cache) so they can be unit
/// tested and fuzzed. Returns the authorization request and the `jti` to spend.
///
/// Times are signed and RP-chosen (`iat` is not checked by the signature verification),
/// so arithmetic on them saturates instead of overflowing.
pub(crate) fn accept(
    claims: RequestObjectClaims,
    client_id: &str,
    now: i64,
) -> Result<(AuthorizeParams, Option<SingleUse>), RequestObjectError> {
    if claims.client_id.as_deref() != Some(client_id) {
        return Err(RequestObjectError::ClientIdMismatch);
    }
    let issued = claims.iat.or(claims.nbf).unwrap_or(now);
    if claims.exp < now.saturating_sub(LEEWAY_SECS)
        || claims.exp.saturating_sub(now) > MAX_LIFETIME_SECS
        || claims.exp.saturating_sub(issued) > MAX_LIFETIME_SECS
        || claims
            .iat
            .is_some_and(|iat| iat > now.saturating_add(LEEWAY_SECS))
    {
        return Err(RequestObjectError::Lifetime);
    }
    if claims.request.is_some() || claims.request_uri.is_some() {
        return Err(RequestObjectError::Claim("request"));
    }
    let vtr = match claims.vtr {
        None => None,
        Some(serde_json::Value::String(s)) => Some(s),
        Some(v @ serde_json::Value::Array(_)) => Some(v.to_string()),
        Some(_) => return Err(RequestObjectError::Claim("vtr")),
    };
    let single_use = claims.jti.map(|jti| SingleUse {
        jti,
        ttl: Duration::from_secs(
            u64::try_from(claims.exp.saturating_sub(now)).unwrap_or(0) + LEEWAY_SECS as u64,
        ),
    });
    let params = AuthorizeParams {
        client_id: claims.client_id,
        redirect_uri: claims.redirect_uri,
        response_type: claims.response_type,
        response_mode: claims.response_mode,
        scope: claims.scope,
        state: claims.state,
        nonce: claims.nonce,
        code_challenge: claims.code_challenge,
        code_challenge_method: claims.code_challenge_method,
        acr_values: claims.acr_values,
        vtr,
        idp_hint: claims.idp_hint,
        prompt: claims.prompt,
        ui_locales: claims.ui_locales,
        request: None,
        request_uri: None,
    };
    Ok((params, single_use))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const NOW: i64 = 1_700_000_000;

    fn claims(extra: serde_json::Value) -> RequestObjectClaims {
        let mut claims = json!({
            "iss": "rp", "aud": "https://hub.example", "client_id": "rp",
            "iat": NOW, "exp": NOW + 60,
            "redirect_uri": "https://rp.example/cb", "response_type": "code",
            "scope": "openid", "state": "s",
        });
        for (k, v) in extra.as_object().unwrap() {
            claims[k] = v.clone();
        }
        serde_json::from_value(claims).unwrap()
    }

    fn refused(extra: serde_json::Value) -> RequestObjectError {
        accept(claims(extra), "rp", NOW).unwrap_err()
    }

    #[test]
    fn accepted_claims_become_the_parameters() {
        let (params, single_use) = accept(claims(json!({"jti": "j1"})), "rp", NOW).unwrap();
        assert_eq!(params.client_id.as_deref(), Some("rp"));
        assert_eq!(
            params.redirect_uri.as_deref(),
            Some("https://rp.example/cb")
        );
        assert_eq!(params.state.as_deref(), Some("s"));
        assert!(params.request.is_none() && params.request_uri.is_none());
        let single_use = single_use.unwrap();
        assert_eq!(single_use.jti, "j1");
        assert_eq!(single_use.ttl, Duration::from_secs(60 + LEEWAY_SECS as u64));
        let (_, single_use) = accept(claims(json!({})), "rp", NOW).unwrap();
        assert_eq!(single_use, None, "no jti, nothing to remember");
    }

    #[test]
    fn client_id_must_be_the_requesting_client() {
        assert!(matches!(
            refused(json!({"client_id": "other"})),
            RequestObjectError::ClientIdMismatch
        ));
        assert!(matches!(
            refused(json!({"client_id": null})),
            RequestObjectError::ClientIdMismatch
        ));
    }

    #[test]
    fn lifetime_is_short_and_not_from_the_future() {
        let too_long = json!({"exp": NOW + MAX_LIFETIME_SECS + 1});
        assert!(matches!(refused(too_long), RequestObjectError::Lifetime));
        let issued_long_before = json!({"iat": NOW - 1000, "exp": NOW + 60});
        assert!(matches!(
            refused(issued_long_before),
            RequestObjectError::Lifetime
        ));
        let nbf_long_before = json!({"iat": null, "nbf": NOW - 1000});
        assert!(matches!(
            refused(nbf_long_before),
            RequestObjectError::Lifetime
        ));
        let future = json!({"iat": NOW + LEEWAY_SECS + 1});
        assert!(matches!(refused(future), RequestObjectError::Lifetime));
        assert!(accept(claims(json!({"iat": NOW + LEEWAY_SECS})), "rp", NOW).is_ok());
    }

    /// Regression (found reviewing `accept` for the `request_object` fuzz target, crash
    /// confirmed with it): times at the ends of i64 made `exp - now` and `exp - iat`
    /// overflow, a panic in debug builds; in release an RP-signed `iat` far in the past
    /// wrapped around and passed the lifetime check.
    #[test]
    fn extreme_times_are_refused_not_overflowed() {
        for extreme in [
            json!({"exp": i64::MIN}),
            json!({"exp": i64::MAX}),
            json!({"iat": i64::MIN}),
            json!({"iat": i64::MAX}),
            json!({"iat": null, "nbf": i64::MIN}),
            json!({"exp": i64::MIN, "iat": i64::MAX}),
        ] {
            let e = refused(extreme.clone());
            assert!(matches!(e, RequestObjectError::Lifetime), "{extreme}: {e}");
        }
        assert!(matches!(
            accept(claims(json!({"exp": NOW - 1})), "rp", NOW + LEEWAY_SECS + 1),
            Err(RequestObjectError::Lifetime)
        ));
        let within_leeway = claims(json!({"exp": NOW - LEEWAY_SECS, "jti": "j"}));
        let (_, single_use) = accept(within_leeway, "rp", NOW).unwrap();
        assert_eq!(
            single_use.unwrap().ttl,
            Duration::from_secs(LEEWAY_SECS as u64)
        );
    }

    #[test]
    fn nested_requests_are_refused() {
        for nested in [
            json!({"request": "eyJ..."}),
            json!({"request_uri": "urn:x"}),
        ] {
            assert!(matches!(
                refused(nested),
                RequestObjectError::Claim("request")
            ));
        }
    }

    #[test]
    fn vtr_is_a_string_or_an_array() {
        let vtr = |v: serde_json::Value| {
            accept(claims(json!({ "vtr": v })), "rp", NOW).map(|(p, _)| p.vtr)
        };
        assert_eq!(
            vtr(json!(r#"["Cl.P2"]"#)).unwrap().as_deref(),
            Some(r#"["Cl.P2"]"#)
        );
        assert_eq!(
            vtr(json!(["Cl.P2", "P1"])).unwrap().as_deref(),
            Some(r#"["Cl.P2","P1"]"#)
        );
        for other in [json!(2), json!({"v": "P2"}), json!(true)] {
            assert!(matches!(vtr(other), Err(RequestObjectError::Claim("vtr"))));
        }
        assert_eq!(vtr(serde_json::Value::Null).unwrap(), None);
    }
}
