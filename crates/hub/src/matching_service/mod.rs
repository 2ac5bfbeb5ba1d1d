//! The standalone matching service (`hub matching-service`): what a department runs next
//! to its own records when it does not hand them to the hub, like Verify's matching
//! service adapter. The hub sends it signed match requests; it verifies them, runs the
//! same engine as the hub against its own database, and answers with a decision signed
//! by its own key. Protocol: docs/matching-service.md.
//!
//! Routes: `POST /match`, `GET /jwks` (its public keys, for the hub's `jwks_uri`),
//! `GET /healthz`.

pub(crate) mod keys;
pub(crate) mod protocol;

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::Mutex;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::http::StatusCode;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use store::Database;
use tracing_actix_web::TracingLogger;

use crate::config::{MatchingServiceSettings, Settings};
use crate::matching_step::{decide_locally, Cycle};
use keys::{JwksOrigin, KeySource, VerifyError};
use protocol::{
    token_error_code, MatchRequest, MatchResponse, CONTENT_TYPE, MAX_LIFETIME_SECS, REQUEST_TYP,
    RESPONSE_TYP,
};

/// Errors starting the matching service.
#[derive(Debug, thiserror::Error)]
pub enum ServiceStartError {
    #[error("configuration has no [matching_service] section")]
    NotConfigured,
    #[error("keys: {0}")]
    Keys(#[from] token::TokenError),
    #[error("the hub's JWKS: {0}")]
    HubKeys(String),
    #[error("database: {0}")]
    Store(#[from] store::StoreError),
    #[error("http client: {0}")]
    Http(#[from] reqwest::Error),
    #[error("server: {0}")]
    Io(#[from] std::io::Error),
}

/// Remembers the `jti` of accepted requests until they expire, so a captured request
/// cannot be played again. In memory: each instance of a service keeps its own (requests
/// live at most [`MAX_LIFETIME_SECS`], so the map stays small).
#[derive(Debug, Default)]
struct ReplayCache {
    seen: Mutex<HashMap<String, i64>>,
}

impl ReplayCache {
    /// True when `jti` is new (and now remembered until `exp`).
    fn first_use(&self, jti: &str, exp: i64, now: i64, leeway: i64) -> bool {
        let mut seen = match self.seen.lock() {
            Ok(seen) => seen,
            Err(poisoned) => poisoned.into_inner(),
        };
        if seen.len() >= 1024 {
            seen.retain(|_, e| *e + leeway >= now);
        }
        if seen.contains_key(jti) {
            return false;
        }
        seen.insert(jti.to_owned(), exp);
        true
    }
}

/// Shared state of one matching-service instance.
#[derive(Debug)]
pub struct MatchingService {
    settings: MatchingServiceSettings,
    identifier: String,
    db: Database,
    signing_key: token::SigningKey,
    hub_keys: KeySource,
    http: reqwest::Client,
    replay: ReplayCache,
}

/// The service's own signing key (ES256), under `matching_service.keys_dir` (default
/// `data.dir/matching-service-keys`), created on first start with mode 0600.
pub fn load_or_create_key(settings: &Settings) -> Result<token::SigningKey, ServiceStartError> {
    let service = settings
        .matching_service
        .as_ref()
        .ok_or(ServiceStartError::NotConfigured)?;
    let dir = service
        .keys_dir
        .clone()
        .unwrap_or_else(|| settings.data.dir.join("matching-service-keys"));
    Ok(token::SigningKey::load_or_generate(
        &dir.join("signing-key.p8"),
    )?)
}

impl MatchingService {
    /// Opens the database (refusing an unmigrated schema), loads the keys.
    pub async fn build(settings: &Settings) -> Result<Self, ServiceStartError> {
        let service = settings
            .matching_service
            .clone()
            .ok_or(ServiceStartError::NotConfigured)?;
        let signing_key = load_or_create_key(settings)?;
        let db = Database::open_with(&settings.database.url, settings.database_options()).await?;
        db.require_current_schema().await?;
        let origin = match (
            &service.hub_jwks,
            &service.hub_jwks_path,
            &service.hub_jwks_uri,
        ) {
            (Some(jwks), _, _) => JwksOrigin::Inline(jwks.clone()),
            (None, Some(path), _) => JwksOrigin::File(path.clone()),
            (None, None, Some(uri)) => JwksOrigin::Uri(uri.clone()),
            (None, None, None) => {
                return Err(ServiceStartError::HubKeys("not configured".into()));
            }
        };
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(5))
            .build()?;
        let hub_keys = KeySource::new(origin);
        hub_keys
            .preload(&http)
            .await
            .map_err(|e| ServiceStartError::HubKeys(e.to_string()))?;
        Ok(Self {
            identifier: service.identifier(),
            settings: service,
            db,
            signing_key,
            hub_keys,
            http,
            replay: ReplayCache::default(),
        })
    }

    /// The public keys the hub verifies responses with.
    pub fn jwks(&self) -> serde_json::Value {
        self.signing_key.jwks()
    }
}

/// A running matching service bound to a port.
pub struct ServiceApp {
    port: u16,
    server: Server,
}

impl std::fmt::Debug for ServiceApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceApp")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl ServiceApp {
    /// Builds the service and binds `listener` (port 0 in tests).
    pub async fn build(
        settings: &Settings,
        listener: TcpListener,
    ) -> Result<Self, ServiceStartError> {
        let service = web::Data::new(MatchingService::build(settings).await?);
        let port = listener.local_addr()?.port();
        let body_limit = service.settings.max_body_bytes;
        let server = HttpServer::new(move || {
            App::new()
                .wrap(TracingLogger::default())
                .app_data(service.clone())
                .app_data(web::PayloadConfig::default().limit(body_limit))
                .route("/match", web::post().to(match_endpoint))
                .route("/jwks", web::get().to(jwks))
                .route("/healthz", web::get().to(healthz))
                .default_service(web::to(|| async {
                    error(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
                }))
        })
        .listen(listener)?
        .run();
        Ok(Self { port, server })
    }

    /// The port it listens on (the one the OS chose for port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Runs until stopped (graceful shutdown on SIGTERM/SIGINT).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }

    /// The server handle, for callers that spawn it.
    pub fn into_server(self) -> Server {
        self.server
    }
}

/// An error answer: `{"error", "error_description"}` (codes, never request content).
fn error(status: StatusCode, code: &str, description: &str) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header(("cache-control", "no-store"))
        .json(serde_json::json!({"error": code, "error_description": description}))
}

async fn jwks(service: web::Data<MatchingService>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("cache-control", "max-age=300"))
        .json(service.jwks())
}

async fn healthz(service: web::Data<MatchingService>) -> HttpResponse {
    match service.db.ping().await {
        Ok(()) => HttpResponse::Ok().json(serde_json::json!({"status": "ok"})),
        Err(e) => {
            tracing::error!(error = %e, "database unavailable");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "database unavailable",
            )
        }
    }
}

/// POST /match: a signed request in, a signed decision out.
async fn match_endpoint(
    service: web::Data<MatchingService>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let media_type = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    if media_type.as_deref() != Some(CONTENT_TYPE) {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "invalid_request",
            "the body must be a compact JWS of type application/jwt",
        );
    }
    let Ok(jws) = std::str::from_utf8(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the body is not UTF-8",
        );
    };
    match answer(&service, jws.trim()).await {
        Ok(response) => response,
        Err(rejection) => {
            tracing::warn!(code = rejection.code, "match request refused");
            error(rejection.status, rejection.code, rejection.description)
        }
    }
}

/// Why a request was refused.
struct Rejection {
    status: StatusCode,
    code: &'static str,
    description: &'static str,
}

fn unauthorized(code: &'static str) -> Rejection {
    Rejection {
        status: StatusCode::UNAUTHORIZED,
        code,
        description: "the request is not a valid signed match request from the hub",
    }
}

fn bad_request(description: &'static str) -> Rejection {
    Rejection {
        status: StatusCode::BAD_REQUEST,
        code: "invalid_request",
        description,
    }
}

fn unavailable() -> Rejection {
    Rejection {
        status: StatusCode::SERVICE_UNAVAILABLE,
        code: "temporarily_unavailable",
        description: "matching is temporarily unavailable",
    }
}

async fn answer(service: &MatchingService, jws: &str) -> Result<HttpResponse, Rejection> {
    let leeway = service.settings.leeway_secs;
    let expect = token::Expect {
        issuer: Some(service.settings.hub_issuer.clone()),
        audience: vec![service.identifier.clone()],
        leeway_secs: leeway,
    };
    let request: MatchRequest = service
        .hub_keys
        .verify(&service.http, jws, REQUEST_TYP, &expect)
        .await
        .map_err(|e| match e {
            VerifyError::Keys(e) => {
                tracing::error!(error = %e, "the hub's keys are unavailable");
                unavailable()
            }
            VerifyError::Token(e) => unauthorized(token_error_code(&e)),
        })?;
    let now = protocol::unix_now();
    if !protocol::lifetime_ok(request.iat, request.exp, now, leeway as i64) {
        return Err(unauthorized("lifetime"));
    }
    if request.jti.is_empty() || request.jti.len() > 256 {
        return Err(unauthorized("invalid_jti"));
    }
    if !service
        .replay
        .first_use(&request.jti, request.exp, now, leeway as i64)
    {
        return Err(unauthorized("replayed"));
    }
    let Some(policy) = service.settings.policy_for(&request.rp) else {
        return Err(Rejection {
            status: StatusCode::FORBIDDEN,
            code: "unknown_rp",
            description: "this service does not match for that relying party",
        });
    };
    let cycle = match (request.cycle, &request.attribute, &request.value) {
        (1, _, _) => Cycle::One,
        (3, Some(attribute), Some(value)) => Cycle::Three { attribute, value },
        (3, _, _) => return Err(bad_request("cycle 3 needs attribute and value")),
        _ => return Err(bad_request("cycle must be 1 or 3")),
    };
    let decision = decide_locally(&service.db, &request.rp, policy, &request.dataset, cycle)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "matching store unavailable");
            unavailable()
        })?;
    tracing::info!(
        rp = %request.rp,
        cycle = request.cycle,
        outcome = %decision.outcome,
        reasons = ?decision.reasons,
        "match request answered"
    );
    let response = MatchResponse {
        iss: service.identifier.clone(),
        aud: request.iss,
        iat: now,
        exp: now + MAX_LIFETIME_SECS,
        in_response_to: request.jti,
        decision,
    };
    let signed = service
        .signing_key
        .sign_typed(&response, RESPONSE_TYP)
        .map_err(|e| {
            tracing::error!(error = %e, "could not sign the response");
            unavailable()
        })?;
    Ok(HttpResponse::Ok()
        .content_type(CONTENT_TYPE)
        .insert_header(("cache-control", "no-store"))
        .body(signed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jti_is_accepted_once() {
        let cache = ReplayCache::default();
        assert!(cache.first_use("a", 160, 100, 5));
        assert!(!cache.first_use("a", 160, 100, 5));
        assert!(cache.first_use("b", 160, 100, 5));
    }
}
