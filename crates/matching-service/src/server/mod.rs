//! The standalone matching service (`hub matching-service`): what a department runs next
//! to its own records when it does not hand them to the hub, like Verify's matching
//! service adapter. The hub sends it signed match requests; it verifies them, runs the
//! same engine as the hub against its own database, and answers with a decision signed
//! by its own key. Protocol: docs/matching-service.md.
//!
//! Routes: `POST /match`, `GET /jwks` (its public keys, for the hub's `jwks_uri`),
//! `GET /healthz`.

mod answer;
mod replay;

use std::net::TcpListener;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::http::StatusCode;
use actix_web::{web, App, HttpResponse, HttpServer};
use store::Database;
use tracing_actix_web::TracingLogger;

use crate::keys::{JwksOrigin, KeySource};
use crate::settings::{MatchingServiceSettings, ServiceConfig};
use replay::ReplayCache;

/// Errors starting the matching service.
#[derive(Debug, thiserror::Error)]
pub enum ServiceStartError {
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
pub fn load_or_create_key(config: &ServiceConfig) -> Result<token::SigningKey, ServiceStartError> {
    Ok(token::SigningKey::load_or_generate(
        &config.keys_dir().join("signing-key.p8"),
    )?)
}

impl MatchingService {
    /// Opens the database (refusing an unmigrated schema), loads the keys.
    pub async fn build(config: &ServiceConfig) -> Result<Self, ServiceStartError> {
        let service = config.service.clone();
        let signing_key = load_or_create_key(config)?;
        let db = Database::open_with(&config.database_url, config.database_options.clone()).await?;
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
            .preload()
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
        config: &ServiceConfig,
        listener: TcpListener,
    ) -> Result<Self, ServiceStartError> {
        let service = web::Data::new(MatchingService::build(config).await?);
        let port = listener.local_addr()?.port();
        let body_limit = service.settings.max_body_bytes;
        let server = HttpServer::new(move || {
            App::new()
                .wrap(TracingLogger::default())
                .app_data(service.clone())
                .app_data(web::PayloadConfig::default().limit(body_limit))
                .route("/match", web::post().to(answer::match_endpoint))
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
