//! `hub-demo`: the hub, the demo IdP and the demo RP in one process on three ports,
//! wired to each other from the hub's settings. It lives here, not in the hub, so that the
//! production `hub` binary links no demo code.

use std::net::TcpListener;

use actix_web::dev::Server;
use hub::config::{IdpAuthMethod, Settings};
use hub::records;
use hub::{Application, StartError};
use url::Url;

use crate::idp::{ClientAuth, DemoIdp, IdpClient, IdpConfig};
use crate::rp::{DemoRp, RpConfig};

/// The three running servers and where to find them.
pub struct Demo {
    pub hub_url: Url,
    pub idp_url: Url,
    pub rp_url: Url,
    pub servers: Vec<Server>,
}

impl std::fmt::Debug for Demo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Demo")
            .field("rp_url", &self.rp_url.as_str())
            .finish_non_exhaustive()
    }
}

/// Errors starting the demo.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    Start(#[from] StartError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("demo configuration: {0}")]
    Config(String),
    #[error("demo records: {0}")]
    Records(#[from] records::ImportError),
}

fn bind(addr: &str) -> Result<TcpListener, DemoError> {
    TcpListener::bind(addr).map_err(|source| DemoError::Bind {
        addr: addr.to_owned(),
        source,
    })
}

fn base_url(listener: &TcpListener) -> Result<Url, DemoError> {
    let addr = listener.local_addr().map_err(|source| DemoError::Bind {
        addr: "?".into(),
        source,
    })?;
    Url::parse(&format!("http://{addr}")).map_err(|e| DemoError::Config(e.to_string()))
}

/// Starts the demo. The first configured IdP and RP are played by the devkit servers.
pub async fn start(settings: Settings) -> Result<Demo, DemoError> {
    let hub_listener = bind(&settings.server.bind)?;
    let mut demo = start_peers(&settings)?;
    // The demo is the embedded default: it migrates its own database and loads records.
    let db = store::Database::open(&settings.database.url)
        .await
        .map_err(StartError::from)?;
    db.migrate().await.map_err(StartError::from)?;
    if let (Some(path), Some(rp)) = (&settings.demo.records_csv, settings.relying_parties.first()) {
        let report = records::import_file(&db, &rp.client_id, path).await?;
        tracing::info!(
            imported = report.imported,
            rejected = report.rejected.len(),
            "demo records loaded"
        );
    }
    let hub = Application::build(settings, hub_listener).await?;
    demo.servers.insert(0, hub.into_server());
    Ok(demo)
}

/// Starts only the demo IdP and RP, for a hub run separately (`hub-demo --peers-only`
/// beside `hub serve`): benchmarks then see the hub's process alone.
pub fn start_peers(settings: &Settings) -> Result<Demo, DemoError> {
    let idp_settings = settings
        .identity_providers
        .first()
        .cloned()
        .ok_or_else(|| DemoError::Config("no identity provider configured".into()))?;
    let rp_settings = settings
        .relying_parties
        .first()
        .cloned()
        .ok_or_else(|| DemoError::Config("no relying party configured".into()))?;
    let idp_listener = bind(&settings.demo.idp_bind)?;
    let rp_listener = bind(&settings.demo.rp_bind)?;
    let hub_url = settings.server.public_url.clone();
    let idp_url = base_url(&idp_listener)?;
    let rp_url = base_url(&rp_listener)?;
    let callback = format!("{}/idp/callback", hub_url.as_str().trim_end_matches('/'));
    let auth = match idp_settings.token_endpoint_auth_method {
        IdpAuthMethod::ClientSecretBasic => ClientAuth::Secret(
            idp_settings
                .client_secret
                .as_ref()
                .map_or_else(String::new, |s| s.expose().to_owned()),
        ),
        IdpAuthMethod::PrivateKeyJwt => ClientAuth::PrivateKeyJwt {
            jwks_uri: hub_url
                .join("jwks")
                .map_err(|e| DemoError::Config(e.to_string()))?,
        },
    };
    let (_idp, idp_server) = DemoIdp::start(
        idp_listener,
        IdpConfig {
            issuer: idp_url.clone(),
            name: idp_settings.name.clone(),
            max_level: idp_settings.max_level.clone(),
            levels: settings.levels.order.clone(),
            clients: vec![IdpClient {
                client_id: idp_settings.client_id.clone(),
                redirect_uris: vec![callback],
                auth,
            }],
            people: crate::test_people(),
        },
    )
    .map_err(|source| DemoError::Bind {
        addr: settings.demo.idp_bind.clone(),
        source,
    })?;
    let (_rp, rp_server) = DemoRp::start(
        rp_listener,
        RpConfig {
            base_url: rp_url.clone(),
            hub_issuer: hub_url.clone(),
            client_id: rp_settings.client_id.clone(),
            client_secret: rp_settings
                .client_secret
                .as_ref()
                .map_or_else(String::new, |s| s.expose().to_owned()),
            acr_values: rp_settings.default_level.clone(),
        },
    )
    .map_err(|source| DemoError::Bind {
        addr: settings.demo.rp_bind.clone(),
        source,
    })?;
    Ok(Demo {
        hub_url,
        idp_url,
        rp_url,
        servers: vec![idp_server, rp_server],
    })
}
