//! The admin API (`/admin/v1/...`): operators register, change, disable, enable and retire
//! relying parties and identity providers while the hub runs. Described by the OpenAPI
//! document it serves; `hub rp ...` and `hub idp ...` are its command-line client.
//!
//! Operators authenticate with OAuth client credentials at the hub's own `/token` (scope
//! `admin`). Every change is a `registry_changed` event in the verification log naming
//! the operator's client; a request without a valid token or scope is a
//! `request_rejected` one (a refused change writes nothing, and its answer says why).

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use audit::EventType;
use serde_json::{json, Value};
use store::SessionStore;

use super::service_clients::{self, ApiError, ServiceClient};
use super::token_endpoint::OAuthError;
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

/// `grant_type=client_credentials` at `/token` for operators' clients.
pub(crate) async fn operator_token(
    admin: &AdminApi,
    req: &HttpRequest,
    scope: Option<&str>,
) -> Result<HttpResponse, OAuthError> {
    let trail = &admin.registrar.trail;
    let operators = admin.operators.iter().map(|o| ServiceClient {
        client_id: &o.client_id,
        secret: &o.client_secret,
        scopes: &o.scopes,
        rps: None,
    });
    let Some(operator) = service_clients::authenticated(req, operators) else {
        trail.rejected(None, None, "operator_auth_failed").await;
        return Err(OAuthError::invalid_client("Client authentication failed"));
    };
    let mut event = trail.event(EventType::OperatorTokenIssued);
    event.actor = Some(operator.client_id.to_owned());
    service_clients::issue(
        &admin.sessions,
        trail,
        operator,
        scope,
        admin.token_ttl,
        event,
    )
    .await
}

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> Self {
        let (status, error) = match &e {
            AdminError::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
            AdminError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            AdminError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            AdminError::Unavailable(_) => return ApiError::unavailable(e),
        };
        ApiError::new(status, error, e.to_string())
    }
}

/// The operator calling (its client id): 401 without a valid token, 403 without the
/// `admin` scope; each refusal is logged.
async fn operator(admin: &AdminApi, req: &HttpRequest) -> Result<String, ApiError> {
    let refusals = ["operator_token_invalid", "operator_scope_insufficient"];
    let trail = &admin.registrar.trail;
    let grant = service_clients::grant(&admin.sessions, trail, req, ADMIN_SCOPE, refusals).await?;
    Ok(grant.client_id)
}

/// An entry as the API shows it: its settings without secrets, and its bookkeeping.
fn view<S: Registrable>(entry: &Entry<S>) -> Value {
    let mut settings = serde_json::to_value(&entry.settings).unwrap_or_default();
    if let Some(secret) = settings.get_mut("client_secret").filter(|s| !s.is_null()) {
        *secret = json!(crate::registry::REDACTED);
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
        ApiError::new(
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
            return Err(ApiError::new(
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
