//! The hub's HTTP server: the actix-web app around a built [`Hub`], its middleware in
//! order, and TLS.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};
use tracing_actix_web::TracingLogger;

use super::admin_api::AdminApi;
use super::browser_security::BrowserSecurity;
use super::health::Backends;
use super::rate_limit::RateLimits;
use super::request_shape::MaxHeaderBytes;
use crate::app::{Hub, StartError};
use crate::config::{Settings, TlsSettings};

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
        let hub = Hub::build(settings).await?;
        let port = listener.local_addr()?.port();
        let expiries = hub.expiries.clone();
        let expiry_check = Duration::from_secs(hub.settings.expiry.check_interval_secs);
        if let Some(tls) = &hub.settings.server.tls {
            // Unreadable, the certificate stops `serve` below with its own message.
            if let Ok(certificate) = crate::expiry::tls_certificate(&tls.cert_path) {
                expiries.track([certificate]);
            }
        }
        tokio::spawn(crate::verification_log::checkpoints::run(hub.log.clone()));
        tokio::spawn(crate::registry::live::follow(
            hub.registrar.registry.clone(),
            Duration::from_millis(hub.settings.registry.poll_interval_ms),
        ));
        let reload_every = hub.settings.keys.reload_interval_secs;
        if reload_every > 0 {
            tokio::spawn(crate::signing_keys::follow_key_files(
                hub.keys.clone(),
                crate::app::keys_dir(&hub.settings),
                Duration::from_secs(reload_every),
            ));
        }
        let refresh = expiry_sources(&hub);
        let server = serve(hub, listener)?;
        tokio::spawn(crate::expiry::run(expiries, expiry_check, refresh));
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

/// What the expiry check reads again each time: the signing key in use (it rotates
/// without a restart) and the registry's parties.
fn expiry_sources(hub: &Hub) -> impl Fn(&crate::expiry::Expiries) + Send + 'static {
    let registry = hub.registrar.registry.clone();
    let keys_dir = crate::app::keys_dir(&hub.settings);
    let settings = hub.settings.clone();
    move |expiries| {
        if let Ok(keys) = token::SigningKeys::load(&keys_dir) {
            let key = crate::app::signing_key_expiry(&settings, &keys);
            expiries.replace(crate::expiry::ExpiryKind::SigningKey, key);
        }
        let parties = registry.expiries();
        for kind in [
            crate::expiry::ExpiryKind::IdpCertification,
            crate::expiry::ExpiryKind::RpKey,
        ] {
            let of_kind = parties.iter().filter(|e| e.kind == kind).cloned();
            expiries.replace(kind, of_kind.collect::<Vec<_>>());
        }
    }
}

/// Each route's handler extracts only the parts it uses: the OP side, the journey
/// engine's context, the verification log, the health checks' backends.
fn serve(hub: Hub, listener: TcpListener) -> Result<Server, StartError> {
    let server_settings = hub.settings.server.clone();
    let workers = hub.settings.worker_threads();
    let body_limit = server_settings.max_body_bytes;
    let tls = server_settings.tls.as_ref().map(tls_config).transpose()?;
    let security = web::Data::new(BrowserSecurity::new(&hub.settings));
    let limits = web::Data::new(RateLimits::new(
        &hub.settings,
        hub.registrar.registry.clone(),
    ));
    let admin = web::Data::new(AdminApi {
        registrar: hub.registrar,
        operators: hub.settings.operators.clone(),
        sessions: hub.sessions.clone(),
        token_ttl: Duration::from_secs(hub.settings.journey.access_token_ttl_secs),
    });
    let in_flight = web::Data::new(crate::web_edge::overload::InFlight::new(
        server_settings.max_in_flight,
    ));
    let max_header_bytes = web::Data::new(MaxHeaderBytes(server_settings.max_header_bytes));
    let op = web::Data::from(hub.op);
    let journeys = web::Data::from(hub.journeys);
    let log = web::Data::from(hub.log);
    let backends = web::Data::new(Backends {
        db: hub.db,
        sessions: hub.sessions,
    });
    let metrics = web::Data::new(hub.metrics);
    let server = HttpServer::new(move || {
        App::new()
            .wrap(from_fn(crate::web_edge::request_shape::well_formed))
            .wrap(from_fn(crate::web_edge::rate_limit::throttle))
            .wrap(from_fn(crate::web_edge::overload::shed))
            .wrap(from_fn(crate::web_edge::error_pages::localize))
            .wrap(from_fn(crate::web_edge::language::remember))
            .wrap(from_fn(crate::web_edge::browser_security::secure_responses))
            .wrap_fn(crate::web_edge::measure)
            .wrap(TracingLogger::<crate::telemetry::RequestSpan>::new())
            .app_data(op.clone())
            .app_data(journeys.clone())
            .app_data(log.clone())
            .app_data(admin.clone())
            .app_data(backends.clone())
            .app_data(metrics.clone())
            .app_data(max_header_bytes.clone())
            .app_data(security.clone())
            .app_data(limits.clone())
            .app_data(in_flight.clone())
            .app_data(
                web::FormConfig::default()
                    .limit(body_limit)
                    .error_handler(crate::web_edge::form_error),
            )
            .app_data(web::QueryConfig::default().error_handler(crate::web_edge::query_error))
            .app_data(web::PayloadConfig::default().limit(body_limit))
            .app_data(web::JsonConfig::default().limit(body_limit))
            .configure(crate::web_edge::routes)
    })
    .client_request_timeout(Duration::from_millis(
        server_settings.client_request_timeout_ms,
    ))
    .client_disconnect_timeout(Duration::from_millis(
        server_settings.client_disconnect_timeout_ms,
    ))
    .keep_alive(Duration::from_secs(server_settings.keep_alive_secs))
    .max_connections(server_settings.max_connections)
    .max_connection_rate(server_settings.max_connection_rate)
    // The count the database pools are shared out by (`Settings::database_options`).
    .workers(workers);
    let server = match tls {
        Some(config) => server.listen_rustls_0_23(listener, config)?,
        None => server.listen(listener)?,
    };
    Ok(server.run())
}

/// The rustls configuration for `[server.tls]` (ring as the crypto provider, TLS 1.2 and
/// 1.3 with rustls's safe defaults).
fn tls_config(tls: &TlsSettings) -> Result<rustls::ServerConfig, StartError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let bad = |what: &str, path: &std::path::Path, e: &dyn std::fmt::Display| {
        StartError::Tls(format!("{what} {}: {e}", path.display()))
    };
    let certs = CertificateDer::pem_file_iter(&tls.cert_path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| bad("certificate", &tls.cert_path, &e))?;
    if certs.is_empty() {
        return Err(bad("certificate", &tls.cert_path, &"no certificate found"));
    }
    let key = PrivateKeyDer::from_pem_file(&tls.key_path)
        .map_err(|e| bad("private key", &tls.key_path, &e))?;
    rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| StartError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| bad("certificate and key", &tls.cert_path, &e))
}
