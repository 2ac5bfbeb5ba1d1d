//! The OAuth clients of the hub's own APIs (auditors at `/audit/v1`, operators at
//! `/admin/v1`): their client-credentials tokens at `/token`, the grant each token stands
//! for, and the JSON errors both APIs answer with.
//!
//! Both kinds of token are kept in one place, so a token shown to the other API is
//! refused for its scope (403), not as unknown (401).

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::json;
use store::SessionStore;

use super::token_endpoint::{basic_credentials, OAuthError};
use crate::config::Secret;
use crate::verification_log::trail::AuditTrail;

const CLIENT_TOKENS: &str = "auditor_token";

/// A client as configured (`[[auditors]]`, `[[operators]]`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ServiceClient<'a> {
    pub(crate) client_id: &'a str,
    pub(crate) secret: &'a Secret,
    /// Scopes it may be granted.
    pub(crate) scopes: &'a [String],
    /// Relying parties whose events it may see (`None`: all).
    pub(crate) rps: Option<&'a [String]>,
}

/// What a client's access token stands for.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ClientGrant {
    pub(crate) client_id: String,
    pub(crate) scopes: Vec<String>,
    /// `None`: every relying party.
    #[serde(default)]
    pub(crate) rps: Option<Vec<String>>,
}

/// The client among `clients` whose id and secret the request's Basic credentials give.
pub(crate) fn authenticated<'a>(
    req: &HttpRequest,
    clients: impl IntoIterator<Item = ServiceClient<'a>>,
) -> Option<ServiceClient<'a>> {
    let (id, secret) = basic_credentials(req)?;
    clients.into_iter().find(|c| {
        c.client_id == id && token::secrets_equal(c.secret.expose().as_bytes(), secret.as_bytes())
    })
}

/// Issues `client` an access token for `scope` (default: every scope it may have),
/// valid `ttl`, after `event` (which names the client) is in the log.
pub(crate) async fn issue(
    sessions: &Arc<dyn SessionStore>,
    trail: &AuditTrail,
    client: ServiceClient<'_>,
    scope: Option<&str>,
    ttl: Duration,
    event: audit::Event,
) -> Result<HttpResponse, OAuthError> {
    let scopes: Vec<String> = match scope {
        Some(s) => s.split_whitespace().map(str::to_owned).collect(),
        None => client.scopes.to_vec(),
    };
    if scopes.iter().any(|s| !client.scopes.contains(s)) {
        return Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "Scope not allowed for this client",
        ));
    }
    let grant = ClientGrant {
        client_id: client.client_id.to_owned(),
        scopes: scopes.clone(),
        rps: client.rps.map(<[String]>::to_vec),
    };
    let access_token = token::random_opaque(32);
    let json = serde_json::to_string(&grant).map_err(|_| OAuthError::unavailable())?;
    sessions
        .put(CLIENT_TOKENS, &access_token, json, ttl)
        .await
        .map_err(|_| OAuthError::unavailable())?;
    trail
        .record(event)
        .await
        .map_err(|_| OAuthError::unavailable())?;
    Ok(HttpResponse::Ok()
        .insert_header(("cache-control", "no-store"))
        .json(json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": ttl.as_secs(),
            "scope": scopes.join(" "),
        })))
}

/// The grant of the request's bearer token: 401 without a valid token, 403 without
/// `scope`. Each refusal is a `request_rejected` event, its outcome
/// `{kind}_token_invalid` or `{kind}_scope_insufficient`.
pub(crate) async fn grant(
    sessions: &Arc<dyn SessionStore>,
    trail: &AuditTrail,
    req: &HttpRequest,
    scope: &'static str,
    refusals: [&'static str; 2],
) -> Result<ClientGrant, ApiError> {
    let result = bearer_grant(sessions, req, scope).await;
    let outcome = match result.as_ref().map_err(|e| e.status) {
        Err(StatusCode::UNAUTHORIZED) => Some(refusals[0]),
        Err(StatusCode::FORBIDDEN) => Some(refusals[1]),
        _ => None,
    };
    if let Some(outcome) = outcome {
        trail.rejected(None, None, outcome).await;
    }
    result
}

async fn bearer_grant(
    sessions: &Arc<dyn SessionStore>,
    req: &HttpRequest,
    scope: &'static str,
) -> Result<ClientGrant, ApiError> {
    let unauthorized = || ApiError {
        status: StatusCode::UNAUTHORIZED,
        error: "invalid_token",
        description: "A valid bearer token is required".into(),
        scope,
    };
    let token = req
        .headers()
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(unauthorized)?;
    let json = sessions
        .get(CLIENT_TOKENS, token)
        .await
        .map_err(ApiError::unavailable)?
        .ok_or_else(unauthorized)?;
    let grant: ClientGrant = serde_json::from_str(&json).map_err(ApiError::unavailable)?;
    if !grant.scopes.iter().any(|s| s == scope) {
        return Err(ApiError {
            status: StatusCode::FORBIDDEN,
            error: "insufficient_scope",
            description: format!("The {scope} scope is required"),
            scope,
        });
    }
    Ok(grant)
}

/// An error of the auditor or admin API, as JSON (`error`, `error_description`).
#[derive(Debug)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) error: &'static str,
    pub(crate) description: String,
    /// The scope the API needs, named in `WWW-Authenticate` on 401 and 403.
    pub(crate) scope: &'static str,
}

impl ApiError {
    /// A backend (the log, the registry, the session store) is unavailable: 503, logged.
    pub(crate) fn unavailable(e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "API unavailable");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "Temporarily unavailable: retry",
        )
    }

    pub(crate) fn new(
        status: StatusCode,
        error: &'static str,
        description: impl Into<String>,
    ) -> Self {
        Self {
            status,
            error,
            description: description.into(),
            scope: "",
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error, self.description)
    }
}

impl std::error::Error for ApiError {}

impl actix_web::ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }
    fn error_response(&self) -> HttpResponse {
        let mut r = HttpResponse::build(self.status);
        if self.status == StatusCode::UNAUTHORIZED {
            r.insert_header(("www-authenticate", "Bearer"));
        }
        if self.status == StatusCode::FORBIDDEN {
            r.insert_header((
                "www-authenticate",
                format!(
                    "Bearer error=\"insufficient_scope\", scope=\"{}\"",
                    self.scope
                ),
            ));
        }
        r.insert_header(("cache-control", "no-store"))
            .json(json!({"error": self.error, "error_description": self.description}))
    }
}
