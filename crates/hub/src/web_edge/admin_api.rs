//! The admin API (`/admin/v1/...`): operators register, change, disable, enable and retire
//! relying parties and identity providers while the hub runs. Described by the OpenAPI
//! document it serves; `hub rp ...` and `hub idp ...` are its command-line client.
//!
//! Operators authenticate with OAuth client credentials at the hub's own `/token` (scope
//! `admin`). Every change is a `registry_changed` event in the verification log naming
//! the operator's client; every refused request a `request_rejected` one.

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use audit::EventType;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use store::SessionStore;

use super::token_endpoint::{basic_credentials, OAuthError};
use crate::config::OperatorSettings;
use crate::registry::admin::{AdminError, Registrar};
use crate::registry::{Entry, Registrable, Registration, Status};

/// The scope every admin route requires.
pub(crate) const ADMIN_SCOPE: &str = "admin";

/// What the admin API's routes use.
#[derive(Debug)]
pub(crate) struct AdminApi {
    pub(crate) registrar: Arc<Registrar>,
    pub(crate) operators: Vec<OperatorSettings>,
    pub(crate) sessions: Arc<dyn SessionStore>,
    pub(crate) token_ttl: Duration,
}

impl AdminApi {
    /// Whether `client_id` is an operator's client (its token request is handled here).
    pub(crate) fn is_operator(&self, client_id: &str) -> bool {
        self.operators.iter().any(|o| o.client_id == client_id)
    }
}

/// What an operator's access token stands for (stored beside auditors' grants, whose
/// form it shares: an operator's grant limits no relying parties).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct OperatorGrant {
    client_id: String,
    scopes: Vec<String>,
}

/// `grant_type=client_credentials` at `/token` for operators' clients.
pub(crate) async fn operator_token(
    admin: &AdminApi,
    req: &HttpRequest,
    scope: Option<&str>,
) -> Result<HttpResponse, OAuthError> {
    let trail = &admin.registrar.trail;
    let known = basic_credentials(req).and_then(|(id, secret)| {
        admin.operators.iter().find(|o| {
            o.client_id == id
                && token::secrets_equal(o.client_secret.expose().as_bytes(), secret.as_bytes())
        })
    });
    let Some(operator) = known else {
        trail.rejected(None, None, "operator_auth_failed").await;
        return Err(OAuthError::invalid_client("Client authentication failed"));
    };
    let scopes: Vec<String> = match scope {
        Some(s) => s.split_whitespace().map(str::to_owned).collect(),
        None => operator.scopes.clone(),
    };
    if scopes.iter().any(|s| !operator.scopes.contains(s)) {
        return Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "Scope not allowed for this client",
        ));
    }
    let grant = OperatorGrant {
        client_id: operator.client_id.clone(),
        scopes: scopes.clone(),
    };
    let access_token = token::random_opaque(32);
    let json = serde_json::to_string(&grant).map_err(|_| OAuthError::unavailable())?;
    admin
        .sessions
        .put(
            super::audit_api::CLIENT_TOKENS,
            &access_token,
            json,
            admin.token_ttl,
        )
        .await
        .map_err(|_| OAuthError::unavailable())?;
    let mut event = trail.event(EventType::OperatorTokenIssued);
    event.actor = Some(operator.client_id.clone());
    trail
        .record(event)
        .await
        .map_err(|_| OAuthError::unavailable())?;
    Ok(HttpResponse::Ok()
        .insert_header(("cache-control", "no-store"))
        .json(json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": admin.token_ttl.as_secs(),
            "scope": scopes.join(" "),
        })))
}

/// Errors of the admin API, as JSON.
#[derive(Debug)]
pub(crate) struct ApiError(StatusCode, &'static str, String);

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> Self {
        let status = match &e {
            AdminError::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
            AdminError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            AdminError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            AdminError::Unavailable(_) => {
                tracing::error!(error = %e, "admin API unavailable");
                (StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable")
            }
        };
        Self(status.0, status.1, e.to_string())
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.1, self.2)
    }
}

impl std::error::Error for ApiError {}

impl actix_web::ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.0
    }
    fn error_response(&self) -> HttpResponse {
        let mut r = HttpResponse::build(self.0);
        if self.0 == StatusCode::UNAUTHORIZED {
            r.insert_header(("www-authenticate", "Bearer realm=\"admin\""));
        }
        if self.0 == StatusCode::FORBIDDEN {
            r.insert_header((
                "www-authenticate",
                "Bearer error=\"insufficient_scope\", scope=\"admin\"",
            ));
        }
        r.insert_header(("cache-control", "no-store"))
            .json(json!({"error": self.1, "error_description": self.2}))
    }
}

/// The operator calling: 401 without a valid token, 403 without the `admin` scope; each
/// refusal is logged.
async fn operator(admin: &AdminApi, req: &HttpRequest) -> Result<String, ApiError> {
    let result = operator_grant(admin, req).await;
    if let Err(ApiError(status, ..)) = &result {
        let outcome = match *status {
            StatusCode::UNAUTHORIZED => Some("operator_token_invalid"),
            StatusCode::FORBIDDEN => Some("operator_scope_insufficient"),
            _ => None,
        };
        if let Some(outcome) = outcome {
            admin.registrar.trail.rejected(None, None, outcome).await;
        }
    }
    result
}

async fn operator_grant(admin: &AdminApi, req: &HttpRequest) -> Result<String, ApiError> {
    let unauthorized = || {
        ApiError(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "A valid bearer token is required".into(),
        )
    };
    let token = req
        .headers()
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(unauthorized)?;
    let json = admin
        .sessions
        .get(super::audit_api::CLIENT_TOKENS, token)
        .await
        .map_err(|e| ApiError::from(AdminError::Unavailable(e.to_string())))?
        .ok_or_else(unauthorized)?;
    let grant: OperatorGrant = serde_json::from_str(&json)
        .map_err(|e| ApiError::from(AdminError::Unavailable(e.to_string())))?;
    if !grant.scopes.iter().any(|s| s == ADMIN_SCOPE) {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            "The admin scope is required".into(),
        ));
    }
    Ok(grant.client_id)
}

/// An entry as the API shows it: its settings without secrets, and its bookkeeping.
fn view<S: Registrable>(entry: &Entry<S>) -> Value {
    let mut settings = serde_json::to_value(&entry.settings).unwrap_or_default();
    if let Some(secret) = settings.get_mut("client_secret").filter(|s| !s.is_null()) {
        *secret = json!("[REDACTED]");
    }
    json!({
        "id": entry.settings.id(),
        "status": entry.status,
        "source": entry.source,
        "revision": entry.revision,
        "updated_at": entry.updated_at,
        "updated_by": entry.updated_by,
        "settings": settings,
    })
}

fn json_body(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!("the body is not JSON: {e}"),
        )
    })
}

/// `GET .../{kind}`: every entry, retired ones included.
pub(crate) async fn list<S: Registration + 'static>(
    admin: web::Data<AdminApi>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    operator(&admin, &req).await?;
    let entries = admin.registrar.list::<S>().await?;
    let items: Vec<Value> = entries.iter().map(view).collect();
    Ok(HttpResponse::Ok().json(json!({ "items": items })))
}

/// `GET .../{kind}/{id}`.
pub(crate) async fn show<S: Registration + 'static>(
    admin: web::Data<AdminApi>,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    operator(&admin, &req).await?;
    let entry = admin.registrar.show::<S>(&id).await?;
    Ok(HttpResponse::Ok().json(view(&entry)))
}

/// `POST .../{kind}`: registers a party (201), or 400 / 409 and nothing changes.
pub(crate) async fn add<S: Registration + 'static>(
    admin: web::Data<AdminApi>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let actor = operator(&admin, &req).await?;
    let entry = admin.registrar.add::<S>(json_body(&body)?, &actor).await?;
    Ok(HttpResponse::Created().json(view(&entry)))
}

/// `PATCH .../{kind}/{id}`: a JSON merge patch (RFC 7396) of its settings.
pub(crate) async fn update<S: Registration + 'static>(
    admin: web::Data<AdminApi>,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let actor = operator(&admin, &req).await?;
    let entry = admin
        .registrar
        .update::<S>(&id, json_body(&body)?, &actor)
        .await?;
    Ok(HttpResponse::Ok().json(view(&entry)))
}

/// `POST .../{kind}/{id}/{disable|enable|retire}`.
pub(crate) async fn set_status<S: Registration + 'static>(
    admin: web::Data<AdminApi>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let actor = operator(&admin, &req).await?;
    let (id, action) = path.into_inner();
    let status = match action.as_str() {
        "disable" => Status::Disabled,
        "enable" => Status::Active,
        "retire" => Status::Retired,
        _ => {
            return Err(ApiError(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no action {action:?}"),
            ))
        }
    };
    let entry = admin.registrar.set_status::<S>(&id, status, &actor).await?;
    Ok(HttpResponse::Ok().json(view(&entry)))
}

/// GET /admin/v1/openapi.json.
pub(crate) async fn openapi() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(include_str!("../../openapi/admin-v1.json"))
}

/// The admin routes of one kind of party under `path`.
pub(crate) fn party_routes<S: Registration + 'static>(path: &str) -> actix_web::Scope {
    web::scope(path)
        .route("", web::get().to(list::<S>))
        .route("", web::post().to(add::<S>))
        .route("/{id}", web::get().to(show::<S>))
        .route("/{id}", web::patch().to(update::<S>))
        .route("/{id}/{action}", web::post().to(set_status::<S>))
}
