//! Builds the hub from settings: keys, storage, registries. The HTTP server around it is
//! `web_edge::server`.

use std::sync::Arc;
use std::time::Duration;

use store::{Database, LogSeal, MemorySessionStore, RedisSessionStore, SessionStore};
use url::Url;

use crate::config::Settings;
use crate::expiry::Expiries;
use crate::identity_provider::client::IdpClient;
use crate::journey::engine::Journeys;
use crate::journey::matching_step::Matcher;
use crate::journey::store::JourneyStore;
use crate::level::Levels;
use crate::metrics::Metrics;
use crate::registry::admin::Registrar;
use crate::registry::live::{LiveRegistry, PartyContext};
use crate::relying_party::provider::{Lifetimes, OpenIdProvider};
use crate::verification_log::trail::AuditTrail;
use crate::verification_log::VerificationLog;

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
    #[error("tls: {0}")]
    Tls(String),
    #[error("verification log: {0}")]
    Audit(#[from] audit::AuditError),
    #[error("registry: {0}")]
    Registry(String),
}

/// One hub instance, built: the parts the web edge hands each route (the OP side, the
/// journey engine's context, the verification log), and the stores its health checks
/// ping.
#[derive(Debug)]
pub struct Hub {
    pub(crate) settings: Settings,
    /// The signing keys every part signs and publishes with, reloaded from the key
    /// files while the hub runs (`signing_keys::follow_key_files`).
    pub(crate) keys: token::LiveKeys,
    pub(crate) op: Arc<OpenIdProvider>,
    pub(crate) journeys: Arc<Journeys>,
    pub(crate) log: Arc<VerificationLog>,
    pub(crate) registrar: Arc<Registrar>,
    pub(crate) db: Database,
    pub(crate) sessions: Arc<dyn SessionStore>,
    pub(crate) metrics: Metrics,
    pub(crate) expiries: Arc<Expiries>,
}

impl Hub {
    /// Opens storage (refusing an unmigrated or newer schema), connects the session
    /// store, loads (or creates) the keys.
    pub async fn build(settings: Settings) -> Result<Self, StartError> {
        let db = Database::open_with(&settings.database.url, settings.database_options()).await?;
        db.require_current_schema().await?;
        let (signing_keys, pairwise) = load_or_create_keys(&settings)?;
        let metrics = Metrics::new();
        metrics.pool_capacity(settings.database.max_connections);
        let expiries = Arc::new(Expiries::new(
            metrics.expiry_gauge(),
            settings.expiry.warn_days,
        ));
        expiries.track(signing_key_expiry(&settings, &signing_keys));
        let keys = token::LiveKeys::new(signing_keys)?;
        let seal = LogSeal::new(keys.clone());
        let note = Arc::new(log_note_signer(&settings)?);
        if db.seal_unsealed_head(&seal).await? {
            tracing::warn!("sealed a verification log written before seals existed, as found");
        }
        let instance =
            settings.audit.instance.clone().unwrap_or_else(|| {
                format!("hub-{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
            });
        let trail = AuditTrail::start(
            db.clone(),
            seal.clone(),
            instance,
            settings.audit.max_batch,
            metrics.audit_append(),
        );
        let sessions = session_store(&settings).await?;
        let http = outbound_http(&settings)?;
        let issuer = settings
            .server
            .public_url
            .as_str()
            .trim_end_matches('/')
            .to_owned();
        let levels = Levels::new(settings.levels.order.clone());
        let journey = &settings.journey;
        let store = JourneyStore::new(sessions.clone(), Duration::from_secs(journey.ttl_secs));
        let registrar = Arc::new(registry(&settings, &db, &trail, &metrics).await?);
        let op = Arc::new(OpenIdProvider {
            issuer: issuer.clone(),
            registry: registrar.registry.clone(),
            levels: levels.clone(),
            keys: keys.clone(),
            pairwise,
            sessions: sessions.clone(),
            journeys: store.clone(),
            http: http.clone(),
            lifetimes: Lifetimes {
                code: Duration::from_secs(journey.code_ttl_secs),
                access_token: Duration::from_secs(journey.access_token_ttl_secs),
                id_token: Duration::from_secs(journey.id_token_ttl_secs),
            },
            journey_ttl: Duration::from_secs(journey.ttl_secs),
            trail: trail.clone(),
        });
        let idps = IdpClient::new(
            registrar.registry.clone(),
            levels,
            http,
            idp_callback_url(&settings, &issuer),
            keys.clone(),
            metrics.clone(),
        );
        let journeys = Arc::new(Journeys {
            store,
            idps,
            op: op.clone(),
            matcher: Matcher::new(db.clone(), issuer, keys.clone(), trail.clone()),
            trail: trail.clone(),
            metrics: metrics.clone(),
        });
        let log = Arc::new(VerificationLog {
            db: db.clone(),
            seal,
            note,
            trail,
            settings: settings.audit.clone(),
            auditors: settings.auditors.clone(),
            sessions: sessions.clone(),
            token_ttl: Duration::from_secs(journey.access_token_ttl_secs),
        });
        Ok(Self {
            keys,
            op,
            journeys,
            log,
            registrar,
            db,
            sessions,
            metrics,
            expiries,
            settings,
        })
    }

    /// The expiries this instance exports and warns about (`crate::expiry`): parts that
    /// know of more (IdP certifications, RP keys) add theirs with `Expiries::track`.
    pub fn expiries(&self) -> &Arc<Expiries> {
        &self.expiries
    }
}

/// The current signing key's due rotation, if its creation time is known.
pub(crate) fn signing_key_expiry(
    settings: &Settings,
    keys: &token::SigningKeys,
) -> Option<crate::expiry::Expiry> {
    let created = keys.current_created_at()?;
    let created = created
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_secs()).ok())?;
    Some(crate::expiry::signing_key(
        keys.current().kid(),
        created,
        settings.keys.rotate_after_days,
    ))
}

async fn session_store(settings: &Settings) -> Result<Arc<dyn SessionStore>, StartError> {
    Ok(match settings.sessions.url.as_str() {
        "memory" => Arc::new(MemorySessionStore::new()),
        url if url.starts_with("redis://") || url.starts_with("rediss://") => {
            Arc::new(RedisSessionStore::connect(url, &settings.sessions.key_prefix).await?)
        }
        other => return Err(StartError::Sessions(other.to_owned())),
    })
}

/// For IdPs and RP JWKS: no redirects followed, bounded time.
fn outbound_http(settings: &Settings) -> Result<reqwest::Client, StartError> {
    let timeout = Duration::from_secs(settings.journey.idp_timeout_secs);
    Ok(reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(
            Duration::from_millis(settings.journey.idp_connect_timeout_ms).min(timeout),
        )
        .timeout(timeout)
        .build()?)
}

/// The registry as stored, with the configuration file's parties brought in.
async fn registry(
    settings: &Settings,
    db: &Database,
    trail: &AuditTrail,
    metrics: &Metrics,
) -> Result<Registrar, StartError> {
    let context = PartyContext {
        circuit_breaker: settings.circuit_breaker.clone(),
        metrics: metrics.clone(),
    };
    let registry = LiveRegistry::load(db.clone(), context)
        .await
        .map_err(|e| StartError::Registry(e.to_string()))?;
    let registrar = Registrar {
        db: db.clone(),
        trail: trail.clone(),
        registry: Arc::new(registry),
        levels: settings.levels.order.clone(),
    };
    registrar
        .seed(settings)
        .await
        .map_err(|e| StartError::Registry(e.to_string()))?;
    Ok(registrar)
}

/// Where identity providers send the citizen back.
fn idp_callback_url(settings: &Settings, issuer: &str) -> Url {
    Url::parse(&format!("{issuer}/idp/callback"))
        .unwrap_or_else(|_| settings.server.public_url.clone())
}

/// How long relying parties may cache `/jwks` (its `Cache-Control: max-age`). Short,
/// so that retiring a key (`hub keys retire-previous`) reaches them within minutes;
/// rotation does not depend on it being short, since the next key is published long
/// before it signs.
pub const JWKS_MAX_AGE: Duration = Duration::from_secs(300);

/// How long a next key must have existed before `hub keys rotate` promotes it: well
/// beyond [`JWKS_MAX_AGE`], for relying parties that cache longer than told, and so
/// that rotating twice in a row cannot make an unpublished key sign.
pub const MIN_NEXT_KEY_AGE: Duration = Duration::from_secs(60 * 60);

/// `data.dir/keys/`: the signing keys (token::SigningKeys documents the files) and the
/// pairwise secret.
pub fn keys_dir(settings: &Settings) -> std::path::PathBuf {
    settings.data.dir.join("keys")
}

/// The signing keys and pairwise secret under `data.dir/keys/`, created on first use (a
/// new deployment gets a current and a next signing key). Every instance of a deployment
/// must see the same files (a shared volume, or files provisioned with `hub keys init`
/// and distributed as secrets) so that all sign and publish alike.
pub fn load_or_create_keys(
    settings: &Settings,
) -> Result<(token::SigningKeys, token::PairwiseSecret), StartError> {
    let keys_dir = keys_dir(settings);
    let signing_keys = token::SigningKeys::load_or_generate(&keys_dir)?;
    let pairwise = token::PairwiseSecret::load_or_generate(&keys_dir.join("pairwise.secret"))?;
    Ok((signing_keys, pairwise))
}

/// The verification log's seal from the hub's keys, for the commands that append
/// outside a running hub (`hub audit prune`): the current key signs, and every
/// published key is accepted on what the log already holds.
pub fn log_seal(signing_keys: token::SigningKeys) -> Result<LogSeal, StartError> {
    Ok(LogSeal::new(token::LiveKeys::new(signing_keys)?))
}

/// The file under `data.dir/keys/` of the Ed25519 key that signs checkpoint notes.
pub const LOG_NOTE_KEY_FILE: &str = "log-note.ed25519";

/// The verification log's note signer: the key in [`LOG_NOTE_KEY_FILE`] (created on first
/// use), named after the log's origin. Witnesses pin its verifier key, so it does not
/// rotate with the JOSE signing keys; every instance must share the file.
pub fn log_note_signer(settings: &Settings) -> Result<audit::NoteSigner, StartError> {
    let key = token::Ed25519Key::load_or_generate(&keys_dir(settings).join(LOG_NOTE_KEY_FILE))?;
    Ok(audit::NoteSigner::new(&settings.log_origin(), key)?)
}

/// `hub keys init`: creates whatever is missing of the current and next signing keys,
/// the pairwise secret and the log's note key.
pub fn init_keys(
    settings: &Settings,
) -> Result<(token::SigningKeys, audit::NoteSigner), StartError> {
    let keys_dir = keys_dir(settings);
    let signing_keys = token::SigningKeys::init(&keys_dir)?;
    token::PairwiseSecret::load_or_generate(&keys_dir.join("pairwise.secret"))?;
    Ok((signing_keys, log_note_signer(settings)?))
}

/// `hub keys rotate`: previous := current, current := next, next := fresh (or, with no
/// next key yet, only stages one). Replaces the files atomically; every running instance
/// reloads them within `keys.reload_interval_secs`, and until then signs with a key the
/// others publish (the one they have as previous, or as next). `min_next_age` is
/// [`MIN_NEXT_KEY_AGE`] unless forced.
pub fn rotate_keys(
    settings: &Settings,
    min_next_age: Duration,
) -> Result<token::Rotation, StartError> {
    Ok(token::SigningKeys::rotate(
        &keys_dir(settings),
        min_next_age,
    )?)
}

/// `hub keys retire-previous`: stops publishing the previous signing key (its kid, if
/// there was one): running instances drop it at their next reload, and tokens it signed
/// stop verifying once relying parties' caches expire.
pub fn retire_previous_key(settings: &Settings) -> Result<Option<String>, StartError> {
    Ok(token::SigningKeys::retire_previous(&keys_dir(settings))?)
}
