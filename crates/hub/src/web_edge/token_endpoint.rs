//! `/token`: authenticates the RP (`client_secret_basic` or `private_key_jwt`), checks
//! the code (single use, 60 s, same client and redirect URI, PKCE S256) and issues tokens.

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::Deserialize;
use serde_json::json;

use super::now;
use crate::config::RpAuthMethod;
use crate::relying_party::assertion::{self, CodeGrant, Redemption};
use crate::relying_party::provider::OpenIdProvider;
use crate::relying_party::{RelyingParty, RpJwtError};
use crate::verification_log::VerificationLog;
use audit::EventType;

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const CLIENT_ASSERTION_JTIS: &str = "client_assertion_jti";
/// Client assertions may live at most this long: an hour, what common client libraries
/// issue (Authlib's default is 3,600 s). Safe because each `jti` is single use and
/// remembered for as long as its assertion is valid ([`replay_window`]).
const MAX_ASSERTION_LIFETIME: i64 = 3600;
/// The `jti` is kept this much longer than the assertion's `exp`: the signature check
/// allows a few seconds of clock skew.
const JTI_GRACE_SECS: u64 = 10;

#[derive(Debug, Deserialize)]
pub(crate) struct TokenForm {
    grant_type: Option<String>,
    code: Option<String>,
    redirect_uri: Option<String>,
    code_verifier: Option<String>,
    client_id: Option<String>,
    client_assertion_type: Option<String>,
    client_assertion: Option<String>,
    /// Only its presence matters (refused: the hub takes secrets in the Basic header).
    client_secret: Option<secrecy::SecretString>,
    scope: Option<String>,
}

impl TokenForm {
    fn credentials(&self) -> ClientCredentials<'_> {
        ClientCredentials {
            client_id: self.client_id.as_deref(),
            client_assertion_type: self.client_assertion_type.as_deref(),
            client_assertion: self.client_assertion.as_deref(),
            client_secret_in_body: self.client_secret.is_some(),
        }
    }
}

/// An OAuth error response (RFC 6749 §5.2).
#[derive(Debug)]
pub(crate) struct OAuthError {
    status: StatusCode,
    error: &'static str,
    description: &'static str,
}

impl OAuthError {
    pub(crate) fn new(status: StatusCode, error: &'static str, description: &'static str) -> Self {
        Self {
            status,
            error,
            description,
        }
    }
    pub(crate) fn invalid_client(description: &'static str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalid_client", description)
    }
    fn invalid_grant(description: &'static str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_grant", description)
    }
    fn invalid_request(description: &'static str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }
    pub(crate) fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "Try again later",
        )
    }

    pub(crate) fn response(&self) -> HttpResponse {
        let mut r = HttpResponse::build(self.status);
        r.insert_header(("cache-control", "no-store"));
        if self.status == StatusCode::UNAUTHORIZED {
            r.insert_header(("www-authenticate", "Basic realm=\"hub\""));
        }
        r.json(json!({"error": self.error, "error_description": self.description}))
    }
}

/// Parses `Authorization: Basic` (client id and secret are form-urlencoded, RFC 6749 §2.3.1).
pub(crate) fn basic_credentials(req: &HttpRequest) -> Option<(String, String)> {
    let header = req.headers().get("authorization")?.to_str().ok()?;
    let encoded = header
        .strip_prefix("Basic ")
        .or_else(|| header.strip_prefix("basic "))?;
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let decode = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    };
    Some((decode(id)?, decode(secret)?))
}

/// True when the request carries an `Authorization: Basic` header, whether or not it
/// parses: a client authentication method in use.
fn has_basic_header(req: &HttpRequest) -> bool {
    req.headers()
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.get(..6))
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("basic "))
}

/// How many client authentication methods the request uses: the Basic header, a client
/// assertion (either of its parameters) and a secret in the body. RFC 6749 §2.3: "The
/// client MUST NOT use more than one authentication method in each request."
fn methods_used(req: &HttpRequest, credentials: &ClientCredentials<'_>) -> usize {
    [
        has_basic_header(req),
        credentials.client_assertion.is_some() || credentials.client_assertion_type.is_some(),
        credentials.client_secret_in_body,
    ]
    .into_iter()
    .filter(|used| *used)
    .count()
}

/// Claims we read from a `private_key_jwt` client assertion.
#[derive(Debug, Deserialize)]
struct AssertionClaims {
    iss: String,
    sub: String,
    aud: Audience,
    jti: String,
    exp: i64,
    #[serde(default)]
    iat: Option<i64>,
}

/// A JWT's `aud`: one string or an array of them (RFC 7519 §4.1.3).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    /// True when every audience named is one of `accepted` (and at least one is named):
    /// an assertion also addressed to someone else could be replayed there, or here.
    fn only(&self, accepted: &[String]) -> bool {
        let named: &[String] = match self {
            Self::One(one) => std::slice::from_ref(one),
            Self::Many(many) => many,
        };
        !named.is_empty() && named.iter().all(|aud| accepted.contains(aud))
    }
}

/// The client authentication parameters of a request to `/token` or `/par` (the
/// `Authorization: Basic` header is read from the request itself).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientCredentials<'a> {
    pub(crate) client_id: Option<&'a str>,
    pub(crate) client_assertion_type: Option<&'a str>,
    pub(crate) client_assertion: Option<&'a str>,
    /// `client_secret_post` is never accepted, so only its presence matters.
    pub(crate) client_secret_in_body: bool,
}

/// A refused client authentication: the error for the client, and what the verification
/// log records (the RP only when it is a registered one, never an attacker's string).
struct Refusal {
    rp: Option<String>,
    /// `None` when nothing was refused (the hub could not check).
    outcome: Option<&'static str>,
    error: OAuthError,
}

impl Refusal {
    fn failed(rp: Option<&RelyingParty>) -> Self {
        Self::new(rp, "client_auth_failed", "Client authentication failed")
    }

    fn new(rp: Option<&RelyingParty>, outcome: &'static str, description: &'static str) -> Self {
        Self {
            rp: rp.map(|rp| rp.client_id().to_string()),
            outcome: Some(outcome),
            error: OAuthError::invalid_client(description),
        }
    }

    /// More than one client authentication method in one request: `invalid_request`
    /// (RFC 6749 §2.3), whichever of them would have succeeded.
    fn several_methods() -> Self {
        Self {
            rp: None,
            outcome: Some("client_auth_methods_mixed"),
            error: OAuthError::invalid_request(MIXED_METHODS),
        }
    }
}

const MIXED_METHODS: &str = "Use exactly one client authentication method";

/// Authenticates the client with the one method it registered (`client_secret_basic` or
/// `private_key_jwt`), at `/token` and `/par` alike; a request using more than one method
/// is `invalid_request`. Every refusal is recorded in the verification log as
/// `request_rejected`.
pub(crate) async fn authenticate(
    op: &OpenIdProvider,
    req: &HttpRequest,
    credentials: ClientCredentials<'_>,
) -> Result<Arc<RelyingParty>, OAuthError> {
    match identify(op, req, credentials).await {
        Ok(rp) => Ok(rp),
        Err(refusal) => {
            if let Some(outcome) = refusal.outcome {
                op.trail
                    .rejected(refusal.rp.as_deref(), None, outcome)
                    .await;
            }
            Err(refusal.error)
        }
    }
}

async fn identify(
    op: &OpenIdProvider,
    req: &HttpRequest,
    credentials: ClientCredentials<'_>,
) -> Result<Arc<RelyingParty>, Refusal> {
    if methods_used(req, &credentials) > 1 {
        return Err(Refusal::several_methods());
    }
    if credentials.client_secret_in_body {
        return Err(Refusal::new(
            None,
            "client_auth_failed",
            "client_secret_post is not allowed",
        ));
    }
    if let Some((id, secret)) = basic_credentials(req) {
        let rp = op.relying_party(&id).ok_or_else(|| Refusal::failed(None))?;
        let expected = rp
            .settings
            .client_secret
            .as_ref()
            .map_or("", |s| s.expose());
        if rp.settings.token_endpoint_auth_method != RpAuthMethod::ClientSecretBasic
            || !token::secrets_equal(expected.as_bytes(), secret.as_bytes())
            || credentials.client_id.is_some_and(|c| c != id)
        {
            return Err(Refusal::failed(Some(&rp)));
        }
        return Ok(rp);
    }
    let (Some(kind), Some(assertion)) = (
        credentials.client_assertion_type,
        credentials.client_assertion,
    ) else {
        return Err(Refusal::new(
            None,
            "client_auth_failed",
            "Client authentication required",
        ));
    };
    if kind != JWT_BEARER {
        return Err(Refusal::new(
            None,
            "client_auth_failed",
            "Unsupported client_assertion_type",
        ));
    }
    private_key_jwt(op, credentials.client_id, assertion).await
}

async fn private_key_jwt(
    op: &OpenIdProvider,
    client_id: Option<&str>,
    assertion: &str,
) -> Result<Arc<RelyingParty>, Refusal> {
    // Read the unverified issuer only to choose whose keys to verify with.
    let claimed = token::unverified_issuer(assertion).ok_or_else(|| Refusal::failed(None))?;
    let rp = op
        .relying_party(&claimed)
        .ok_or_else(|| Refusal::failed(None))?;
    if client_id.is_some_and(|c| c != claimed)
        || rp.settings.token_endpoint_auth_method != RpAuthMethod::PrivateKeyJwt
    {
        return Err(Refusal::failed(Some(&rp)));
    }
    // The assertion may name the issuer or the endpoint it is sent to; both endpoints
    // that authenticate clients are accepted at either, as RFC 7523 allows. Nothing else:
    // an `aud` array that also names another party is refused.
    let accepted = [op.url("/token"), op.url("/par"), op.issuer.clone()];
    let expect = token::Expect {
        issuer: Some(claimed.clone()),
        audience: accepted.to_vec(),
        leeway_secs: 5,
    };
    let claims: AssertionClaims = rp.verify(&op.http, assertion, &expect).await.map_err(|e| {
        match &e {
            RpJwtError::Keys(e) => {
                tracing::warn!(error = %e, client_id = %claimed, "client keys unavailable")
            }
            RpJwtError::Token(e) => {
                tracing::info!(error = %e, client_id = %claimed, "client assertion rejected")
            }
        }
        Refusal::failed(Some(&rp))
    })?;
    let now = now();
    let lifetime = claims.exp - claims.iat.unwrap_or(now);
    if claims.sub != claims.iss
        || !claims.aud.only(&accepted)
        || claims.exp - now > MAX_ASSERTION_LIFETIME
        || lifetime > MAX_ASSERTION_LIFETIME
    {
        return Err(Refusal::failed(Some(&rp)));
    }
    let ttl = replay_window(claims.exp, now);
    let fresh = op
        .sessions
        .put_if_absent(
            CLIENT_ASSERTION_JTIS,
            &format!("{claimed}:{}", claims.jti),
            "1".into(),
            ttl,
        )
        .await
        .map_err(|_| Refusal {
            rp: None,
            outcome: None,
            error: OAuthError::unavailable(),
        })?;
    if !fresh {
        tracing::warn!(client_id = %claimed, "client assertion replayed");
        return Err(Refusal::new(
            Some(&rp),
            "client_assertion_replayed",
            "Client authentication failed",
        ));
    }
    Ok(rp)
}

/// How long an assertion's `jti` stays in the replay store: until the assertion has
/// expired (plus the clock-skew grace), so it cannot be used twice while it is valid.
fn replay_window(exp: i64, now: i64) -> Duration {
    Duration::from_secs((exp - now).max(1) as u64 + JTI_GRACE_SECS)
}

pub(crate) async fn token(
    op: web::Data<OpenIdProvider>,
    log: web::Data<VerificationLog>,
    admin: web::Data<super::admin_api::AdminApi>,
    req: HttpRequest,
    form: web::Form<TokenForm>,
) -> HttpResponse {
    let result = match form.grant_type.as_deref() {
        Some("client_credentials") => {
            if methods_used(&req, &form.credentials()) > 1 {
                op.trail
                    .rejected(None, None, "client_auth_methods_mixed")
                    .await;
                return OAuthError::invalid_request(MIXED_METHODS).response();
            }
            let client = basic_credentials(&req).map(|(id, _)| id);
            if client.is_some_and(|id| admin.is_operator(&id)) {
                super::admin_api::operator_token(&admin, &req, form.scope.as_deref()).await
            } else {
                super::audit_api::auditor_token(&log, &req, form.scope.as_deref()).await
            }
        }
        _ => exchange(&op, &req, &form).await,
    };
    result.unwrap_or_else(|e| e.response())
}

async fn exchange(
    op: &OpenIdProvider,
    req: &HttpRequest,
    form: &TokenForm,
) -> Result<HttpResponse, OAuthError> {
    let rp = authenticate(op, req, form.credentials()).await?;
    let result = redeem(op, &rp, form).await;
    if let Err(e) = &result {
        if e.error == "invalid_grant" {
            // Replays and stolen codes are what auditors look for.
            let mut event = op.trail.event(EventType::TokenRejected);
            event.rp = Some(rp.client_id().to_string());
            event.outcome = Some(e.error.to_owned());
            op.trail
                .record(event)
                .await
                .map_err(|_| OAuthError::unavailable())?;
        }
    }
    result
}

/// The authorization code grant for an authenticated relying party.
async fn redeem(
    op: &OpenIdProvider,
    rp: &RelyingParty,
    form: &TokenForm,
) -> Result<HttpResponse, OAuthError> {
    if form.grant_type.as_deref() != Some("authorization_code") {
        return Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "Only authorization_code is supported",
        ));
    }
    let code = form
        .code
        .as_deref()
        .ok_or_else(|| OAuthError::invalid_request("code is required"))?;
    let (grant, access_token) = match assertion::redeem_code(op, code)
        .await
        .map_err(|_| OAuthError::unavailable())?
    {
        Redemption::Granted {
            grant,
            access_token,
        } => (grant, access_token),
        Redemption::Invalid => {
            return Err(OAuthError::invalid_grant(
                "The code is invalid, expired or already used",
            ))
        }
    };
    // The access token is stored but not yet handed out: any failure from here on
    // withdraws it.
    let id_token = match check_redemption(rp, form, &grant).and_then(|()| {
        assertion::sign_id_token(op, &grant, now()).map_err(|e| {
            tracing::error!(error = %e, "ID token signing failed");
            OAuthError::unavailable()
        })
    }) {
        Ok(id_token) => id_token,
        Err(e) => {
            assertion::revoke_access_token(op, &access_token).await;
            return Err(e);
        }
    };
    let mut event = op.trail.event(EventType::TokensIssued);
    event.journey_id = Some(grant.journey_id.clone());
    event.rp = Some(grant.client_id.to_string());
    event.level_achieved = Some(grant.acr.clone());
    event.subject = Some(grant.sub.to_string());
    event.outcome = Some(grant.match_claim.status.as_str().to_owned());
    if op.trail.record(event).await.is_err() {
        assertion::revoke_access_token(op, &access_token).await;
        return Err(OAuthError::unavailable());
    }
    tracing::debug!(journey = %grant.journey_id, client_id = %grant.client_id, "tokens issued");
    Ok(HttpResponse::Ok()
        .insert_header(("cache-control", "no-store"))
        .insert_header(("pragma", "no-cache"))
        .json(json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": op.lifetimes.access_token.as_secs(),
            "id_token": id_token,
            "scope": grant.scope.join(" "),
        })))
}

/// The code was issued to this client, for this redirect URI, and the PKCE verifier
/// matches its challenge.
fn check_redemption(
    rp: &RelyingParty,
    form: &TokenForm,
    grant: &CodeGrant,
) -> Result<(), OAuthError> {
    if grant.client_id != *rp.client_id() {
        return Err(OAuthError::invalid_grant(
            "The code was issued to another client",
        ));
    }
    if form.redirect_uri.as_deref() != Some(grant.redirect_uri.as_str()) {
        return Err(OAuthError::invalid_grant(
            "redirect_uri does not match the authorization request",
        ));
    }
    let verifier = form
        .code_verifier
        .as_deref()
        .ok_or_else(|| OAuthError::invalid_grant("code_verifier is required"))?;
    if !token::secrets_equal(
        token::pkce_s256(verifier).as_bytes(),
        grant.code_challenge.as_bytes(),
    ) {
        return Err(OAuthError::invalid_grant("PKCE verification failed"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_decoded() {
        let value = format!("Basic {}", STANDARD.encode("my%20rp:s%3Acret"));
        let req = actix_web::test::TestRequest::default()
            .insert_header(("authorization", value))
            .to_http_request();
        assert_eq!(
            basic_credentials(&req),
            Some(("my rp".to_owned(), "s:cret".to_owned()))
        );
    }

    #[test]
    fn a_jti_is_remembered_while_its_assertion_is_valid() {
        let now = 1_800_000_000;
        let window = replay_window(now + MAX_ASSERTION_LIFETIME, now);
        assert!(window >= Duration::from_secs(MAX_ASSERTION_LIFETIME as u64));
        assert!(
            replay_window(now - 3, now) > Duration::from_secs(5),
            "leeway"
        );
    }

    #[test]
    fn an_audience_is_accepted_only_if_it_names_no_one_else() {
        let accepted = ["https://hub".to_owned(), "https://hub/token".to_owned()];
        let aud = |json: serde_json::Value| serde_json::from_value::<Audience>(json).unwrap();
        assert!(aud(json!("https://hub/token")).only(&accepted));
        assert!(aud(json!(["https://hub", "https://hub/token"])).only(&accepted));
        assert!(!aud(json!(["https://hub/token", "https://rp.example"])).only(&accepted));
        assert!(!aud(json!("https://rp.example")).only(&accepted));
        assert!(!aud(json!([])).only(&accepted));
    }
}
