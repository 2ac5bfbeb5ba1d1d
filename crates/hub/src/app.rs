//! Builds the hub from settings: keys, storage, registries, and the actix-web server.

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{web, App, HttpServer};
use store::{Database, MemorySessionStore, RedisSessionStore, SessionStore};
use tracing_actix_web::TracingLogger;
use url::Url;

use crate::audit_trail::AuditTrail;
use crate::config::Settings;
use crate::level::Levels;
use crate::metrics::Metrics;
use crate::relying_party::RelyingParty;
use crate::upstream::IdentityProvider;

/// Errors starting the hub.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("keys: {0}")]
    Keys(#[from] token::TokenError),
    #[error("database: {0}")]
    Store(#[from] store::StoreError),
    #[error("sessions.url {0:?} is not supported (use \"memory\" or \"redis://...\")")]
    Sessions(String),
    #[error("http client: {0}")]
    Http(#[from] reqwest::Error),
    #[error("server: {0}")]
    Io(#[from] std::io::Error),
}

/// Shared, read-mostly state of one hub instance.
#[derive(Debug)]
pub struct Hub {
    pub settings: Settings,
    /// The issuer identifier: the public URL without a trailing slash.
    pub issuer: String,
    pub levels: Levels,
    pub relying_parties: HashMap<String, RelyingParty>,
    pub identity_providers: Vec<IdentityProvider>,
    pub signing_key: token::SigningKey,
    pub pairwise: token::PairwiseSecret,
    pub db: Database,
    pub sessions: Arc<dyn SessionStore>,
    /// For IdPs and RP JWKS: no redirects followed, bounded time.
    pub http: reqwest::Client,
    pub metrics: Metrics,
    /// The verification log writer of this instance.
    pub audit: AuditTrail,
}

impl Hub {
    /// Opens storage (refusing an unmigrated or newer schema), connects the session
    /// store, loads (or creates) the keys.
    pub async fn build(settings: Settings) -> Result<Self, StartError> {
        let db = Database::open(&settings.database.url).await?;
        db.require_current_schema().await?;
        let (signing_key, pairwise) = load_or_create_keys(&settings)?;
        let instance =
            settings.audit.instance.clone().unwrap_or_else(|| {
                format!("hub-{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
            });
        let audit = AuditTrail::start(db.clone(), instance, settings.audit.max_batch);
        let sessions: Arc<dyn SessionStore> = match settings.sessions.url.as_str() {
            "memory" => Arc::new(MemorySessionStore::new()),
            url if url.starts_with("redis://") || url.starts_with("rediss://") => {
                Arc::new(RedisSessionStore::connect(url, &settings.sessions.key_prefix).await?)
            }
            other => return Err(StartError::Sessions(other.to_owned())),
        };
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(settings.journey.idp_timeout_secs))
            .build()?;
        Ok(Self {
            issuer: settings
                .server
                .public_url
                .as_str()
                .trim_end_matches('/')
                .to_owned(),
            levels: Levels::new(settings.levels.order.clone()),
            relying_parties: settings
                .relying_parties
                .iter()
                .map(|rp| (rp.client_id.clone(), RelyingParty::new(rp.clone())))
                .collect(),
            identity_providers: settings
                .identity_providers
                .iter()
                .cloned()
                .map(IdentityProvider::new)
                .collect(),
            signing_key,
            pairwise,
            db,
            sessions,
            http,
            metrics: Metrics::new(),
            audit,
            settings,
        })
    }

    /// `{issuer}{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.issuer, path)
    }

    /// Where identity providers send the citizen back.
    pub fn idp_callback_url(&self) -> Url {
        Url::parse(&self.url("/idp/callback"))
            .unwrap_or_else(|_| self.settings.server.public_url.clone())
    }

    pub fn identity_provider(&self, id: &str) -> Option<&IdentityProvider> {
        self.identity_providers.iter().find(|i| i.settings.id == id)
    }

    /// Whether cookies get the `Secure` attribute (when the hub is served over https).
    pub fn secure_cookies(&self) -> bool {
        self.settings.server.public_url.scheme() == "https"
    }
}

/// The signing key and pairwise secret under `data.dir/keys/`, created on first use.
/// Every instance of a deployment must see the same files (a shared volume, or files
/// provisioned with `hub keys init` and distributed as secrets) so that all sign alike.
pub fn load_or_create_keys(
    settings: &Settings,
) -> Result<(token::SigningKey, token::PairwiseSecret), StartError> {
    let keys_dir = settings.data.dir.join("keys");
    let signing_key = token::SigningKey::load_or_generate(&keys_dir.join("signing-key.p8"))?;
    let pairwise = token::PairwiseSecret::load_or_generate(&keys_dir.join("pairwise.secret"))?;
    Ok((signing_key, pairwise))
}

/// A running hub bound to a port, as `zero2prod`'s `Application`.
pub struct Application {
    port: u16,
    server: Server,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl Application {
    /// Builds the hub and binds `listener` (use port 0 in tests).
    pub async fn build(settings: Settings, listener: TcpListener) -> Result<Self, StartError> {
        let hub = web::Data::new(Hub::build(settings).await?);
        let port = listener.local_addr()?.port();
        tokio::spawn(crate::audit_checkpoints::run(hub.clone()));
        let server = serve(hub, listener)?;
        Ok(Self { port, server })
    }

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

fn serve(hub: web::Data<Hub>, listener: TcpListener) -> std::io::Result<Server> {
    let body_limit = hub.settings.server.max_body_bytes;
    let server = HttpServer::new(move || {
        App::new()
            .wrap_fn(crate::web_edge::measure)
            .wrap(TracingLogger::default())
            .app_data(hub.clone())
            .app_data(
                web::FormConfig::default()
                    .limit(body_limit)
                    .error_handler(crate::web_edge::form_error),
            )
            .app_data(web::QueryConfig::default().error_handler(crate::web_edge::query_error))
            .app_data(web::PayloadConfig::default().limit(body_limit))
            .configure(crate::web_edge::routes)
    })
    .listen(listener)?
    .run();
    Ok(server)
}
