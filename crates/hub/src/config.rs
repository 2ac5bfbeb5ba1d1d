//! Typed configuration: one loader, defaults in `config/default.toml`, an optional
//! deployment file on top, then `HUB_`-prefixed environment overrides
//! (`HUB_DATABASE__URL=sqlite://...`: a double underscore separates sections).

use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Env, Format, Json, Serialized, Toml};
use figment::Figment;
use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};
use url::Url;

pub use matching_service::{
    MatchingServiceSettings, RemoteMatchingSettings, ServiceConfig, ServiceRelyingParty,
};

/// Everything the hub needs to run; see `docs/configuration.md`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settings {
    pub server: ServerSettings,
    pub data: DataSettings,
    pub database: DatabaseSettings,
    pub sessions: SessionSettings,
    pub journey: JourneySettings,
    pub levels: LevelSettings,
    #[serde(default)]
    pub relying_parties: Vec<RelyingPartySettings>,
    #[serde(default)]
    pub identity_providers: Vec<IdentityProviderSettings>,
    #[serde(default)]
    pub demo: DemoSettings,
    #[serde(default)]
    pub audit: AuditSettings,
    /// OAuth clients of auditors (client credentials, scope `audit:read`).
    #[serde(default)]
    pub auditors: Vec<AuditorSettings>,
    /// OAuth clients of operators (client credentials, scope `admin`): the admin API and
    /// the `hub rp` / `hub idp` commands.
    #[serde(default)]
    pub operators: Vec<OperatorSettings>,
    #[serde(default)]
    pub registry: RegistrySettings,
    /// Only for `hub matching-service`: the standalone matching service a department runs
    /// next to its own records (docs/matching-service.md). The hub itself ignores it.
    #[serde(default)]
    pub matching_service: Option<MatchingServiceSettings>,
    #[serde(default)]
    pub rate_limits: RateLimitSettings,
    #[serde(default)]
    pub circuit_breaker: CircuitBreakerSettings,
    #[serde(default)]
    pub keys: KeySettings,
    #[serde(default)]
    pub expiry: ExpirySettings,
}

/// Warnings ahead of expiry (keys, certificates): a `warn` log line per item this close
/// to its expiry, at start and then every `check_interval_secs`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpirySettings {
    /// Items expiring within this many days are logged as warnings.
    #[serde(default = "default_warn_days")]
    pub warn_days: u64,
    /// How often the items are checked again.
    #[serde(default = "default_expiry_check_interval")]
    pub check_interval_secs: u64,
}

fn default_warn_days() -> u64 {
    30
}

fn default_expiry_check_interval() -> u64 {
    3600
}

impl Default for ExpirySettings {
    fn default() -> Self {
        Self {
            warn_days: default_warn_days(),
            check_interval_secs: default_expiry_check_interval(),
        }
    }
}

/// The verification log.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditSettings {
    /// Names this instance in every event it appends (default: a random id per start).
    #[serde(default)]
    pub instance: Option<String>,
    /// How often a signed checkpoint is made when the log has grown.
    #[serde(default = "default_checkpoint_interval")]
    pub checkpoint_interval_secs: u64,
    /// How often the hub re-verifies the whole stored log (0 = only at `hub audit check`).
    #[serde(default)]
    pub self_check_interval_secs: u64,
    /// Largest number of events written in one transaction.
    #[serde(default = "default_audit_batch")]
    pub max_batch: usize,
    /// Events older than this may be pruned by `hub audit prune` (after archiving).
    #[serde(default = "default_retention_days")]
    pub retention_days: u64,
    /// The log's identity in its checkpoint notes (C2SP tlog-checkpoint), which witnesses
    /// pin with its key: a schema-less URL, no spaces or `+`. Default: the public URL's
    /// host, port and path, then `/verification-log`. Never change it once witnesses
    /// follow the log.
    #[serde(default)]
    pub origin: Option<String>,
}

fn default_retention_days() -> u64 {
    7 * 365
}

fn default_checkpoint_interval() -> u64 {
    60
}

fn default_audit_batch() -> usize {
    256
}

impl Default for AuditSettings {
    fn default() -> Self {
        Self {
            instance: None,
            checkpoint_interval_secs: default_checkpoint_interval(),
            self_check_interval_secs: 0,
            max_batch: default_audit_batch(),
            retention_days: default_retention_days(),
            origin: None,
        }
    }
}

/// A secret of the configuration (a client secret): its `Debug` is `[REDACTED]`, so a
/// settings dump or a log line cannot leak it; [`Secret::expose`] is called only where
/// the value is compared or sent.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(SecretString);

impl Secret {
    /// The value itself, for the one place that uses it.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[REDACTED]")
    }
}

/// Settings serialise only to be layered again ([`Settings::with`]), so the value is
/// written as it is.
impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.expose())
    }
}

/// An auditor's OAuth client.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditorSettings {
    pub client_id: String,
    pub client_secret: Secret,
    /// Scopes this client may be granted (default `["audit:read"]`).
    #[serde(default = "default_auditor_scopes")]
    pub scopes: Vec<String>,
    /// Relying parties whose events this auditor may see (absent: all).
    #[serde(default)]
    pub rps: Option<Vec<String>>,
}

fn default_auditor_scopes() -> Vec<String> {
    vec!["audit:read".into()]
}

/// An operator's OAuth client, for the admin API.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorSettings {
    pub client_id: String,
    pub client_secret: Secret,
    /// Scopes this client may be granted (default `["admin"]`).
    #[serde(default = "default_operator_scopes")]
    pub scopes: Vec<String>,
}

fn default_operator_scopes() -> Vec<String> {
    vec!["admin".into()]
}

/// The registry of relying parties and identity providers in the database.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrySettings {
    /// How often each instance checks the registry's revision for changes made elsewhere.
    #[serde(default = "default_registry_poll_ms")]
    pub poll_interval_ms: u64,
}

fn default_registry_poll_ms() -> u64 {
    1000
}

impl Default for RegistrySettings {
    fn default() -> Self {
        Self {
            poll_interval_ms: default_registry_poll_ms(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerSettings {
    /// Address to listen on, e.g. `127.0.0.1:8080`.
    pub bind: String,
    /// The hub's public base URL; it is also the OIDC issuer identifier.
    pub public_url: Url,
    /// Largest request body accepted, in bytes.
    #[serde(default = "default_body_limit")]
    pub max_body_bytes: usize,
    /// Largest total size of a request's header names and values, in bytes (431 above).
    /// actix-http itself refuses more than 96 headers or a 128 KiB request head.
    #[serde(default = "default_header_limit")]
    pub max_header_bytes: usize,
    /// Time a client has to send a complete request head (slow-loris defence).
    #[serde(default = "default_client_request_timeout_ms")]
    pub client_request_timeout_ms: u64,
    /// Time allowed for a client to acknowledge the end of a connection.
    #[serde(default = "default_client_disconnect_timeout_ms")]
    pub client_disconnect_timeout_ms: u64,
    /// Idle keep-alive connections are closed after this long.
    #[serde(default = "default_keep_alive_secs")]
    pub keep_alive_secs: u64,
    /// Threads serving requests; 0 for one per CPU core. Each is a
    /// single-threaded event loop; the verification log's writer runs on the
    /// first one, and one thread keeps the whole hub on one event loop.
    #[serde(default)]
    pub workers: usize,
    /// Open connections per worker thread; more wait in the listen backlog.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Requests an instance works on at once; one more is answered 503 with
    /// `Retry-After` (back-pressure instead of unbounded queueing).
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// TLS handshakes in progress per worker thread (they are CPU-bound).
    #[serde(default = "default_max_connection_rate")]
    pub max_connection_rate: usize,
    /// Peers (addresses or CIDR ranges) whose `X-Forwarded-For` is believed when the hub
    /// decides a request's source address (for rate limits). Empty: the TCP peer.
    #[serde(default)]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Serve HTTPS directly with these files; absent, plain HTTP (behind a TLS proxy).
    #[serde(default)]
    pub tls: Option<TlsSettings>,
}

fn default_body_limit() -> usize {
    64 * 1024
}

fn default_header_limit() -> usize {
    32 * 1024
}

fn default_client_request_timeout_ms() -> u64 {
    5000
}

fn default_client_disconnect_timeout_ms() -> u64 {
    1000
}

fn default_keep_alive_secs() -> u64 {
    5
}

fn default_max_in_flight() -> usize {
    512
}

fn default_max_connections() -> usize {
    25_000
}

fn default_max_connection_rate() -> usize {
    256
}

/// The certificate and key the hub serves HTTPS with (PEM files).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// The certificate chain, leaf first.
    pub cert_path: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key_path: PathBuf,
}

/// Per-instance request rate limits on `/authorize`, `/par` and `/token` (token buckets:
/// the burst at once, refilled at the per-minute rate).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSettings {
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Requests per minute from one source address to one endpoint.
    #[serde(default = "default_per_ip_per_minute")]
    pub per_ip_per_minute: u32,
    /// Requests one source address may make at once before its per-minute rate applies.
    #[serde(default = "default_per_ip_burst")]
    pub per_ip_burst: u32,
    /// Requests per minute naming one registered client, over all three endpoints.
    #[serde(default = "default_per_client_per_minute")]
    pub per_client_per_minute: u32,
    /// Requests naming one client allowed at once before its per-minute rate applies.
    #[serde(default = "default_per_client_burst")]
    pub per_client_burst: u32,
}

fn default_true() -> bool {
    true
}

fn default_per_ip_per_minute() -> u32 {
    1200
}

fn default_per_client_per_minute() -> u32 {
    6000
}

fn default_per_ip_burst() -> u32 {
    300
}

fn default_per_client_burst() -> u32 {
    1000
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            per_ip_per_minute: default_per_ip_per_minute(),
            per_ip_burst: default_per_ip_burst(),
            per_client_per_minute: default_per_client_per_minute(),
            per_client_burst: default_per_client_burst(),
        }
    }
}

/// The per-IdP circuit breaker: after `failure_threshold` consecutive calls that found
/// the IdP unavailable within `window_secs`, the hub stops calling it for `open_secs`,
/// then lets one trial call through.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CircuitBreakerSettings {
    /// 0 turns the breaker off.
    #[serde(default = "default_failure_threshold")]
    pub failure_threshold: u32,
    #[serde(default = "default_failure_window_secs")]
    pub window_secs: u64,
    #[serde(default = "default_open_secs")]
    pub open_secs: u64,
}

fn default_failure_threshold() -> u32 {
    5
}

fn default_failure_window_secs() -> u64 {
    60
}

fn default_open_secs() -> u64 {
    30
}

impl Default for CircuitBreakerSettings {
    fn default() -> Self {
        Self {
            failure_threshold: default_failure_threshold(),
            window_secs: default_failure_window_secs(),
            open_secs: default_open_secs(),
        }
    }
}

/// The hub's signing keys under `data.dir/keys/`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySettings {
    /// How often a running instance reads the key files again, to follow `hub keys
    /// rotate` and `hub keys retire-previous` without a restart. 0 turns it off (the keys
    /// then change only at a restart).
    #[serde(default = "default_key_reload_interval")]
    pub reload_interval_secs: u64,
    /// Days after its creation at which the current signing key is due for rotation (a
    /// key has no expiry of its own; expiry warnings count towards this).
    #[serde(default = "default_rotate_after_days")]
    pub rotate_after_days: u64,
}

fn default_rotate_after_days() -> u64 {
    90
}

fn default_key_reload_interval() -> u64 {
    5
}

impl Default for KeySettings {
    fn default() -> Self {
        Self {
            reload_interval_secs: default_key_reload_interval(),
            rotate_after_days: default_rotate_after_days(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DataSettings {
    /// Directory for the signing key and pairwise secret (and the SQLite file by default).
    pub dir: PathBuf,
}

#[derive(Clone, Serialize, Deserialize)]
pub struct DatabaseSettings {
    /// `sqlite://path/to/hub.db` or `postgres://user@host:port/db`.
    pub url: String,
    /// Most connections this instance opens to the database (on PostgreSQL, shared out
    /// among the request workers: each has a pool of its own).
    #[serde(default = "default_database_connections")]
    pub max_connections: u32,
    /// How long a request waits for a free connection before it is answered 503.
    #[serde(default = "default_acquire_timeout_ms")]
    pub acquire_timeout_ms: u64,
}

/// The URL without its password, which it may hold.
impl std::fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseSettings")
            .field("url", &store::redact_url(&self.url))
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout_ms", &self.acquire_timeout_ms)
            .finish()
    }
}

fn default_database_connections() -> u32 {
    8
}

fn default_acquire_timeout_ms() -> u64 {
    5000
}

#[derive(Clone, Serialize, Deserialize)]
pub struct SessionSettings {
    /// `memory` (in-process, one instance) or `redis://host:port[/db]` (shared by instances).
    pub url: String,
    /// Prefix of every Redis key, so several deployments can share one Redis.
    #[serde(default = "default_key_prefix")]
    pub key_prefix: String,
}

/// The URL without its password, which it may hold.
impl std::fmt::Debug for SessionSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionSettings")
            .field("url", &store::redact_url(&self.url))
            .field("key_prefix", &self.key_prefix)
            .finish()
    }
}

fn default_key_prefix() -> String {
    "hub".into()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JourneySettings {
    /// How long a citizen may take over a journey (default 90 minutes).
    pub ttl_secs: u64,
    /// Authorization code lifetime (single use).
    pub code_ttl_secs: u64,
    pub access_token_ttl_secs: u64,
    pub id_token_ttl_secs: u64,
    /// Timeout for each call to an identity provider.
    pub idp_timeout_secs: u64,
    /// Time allowed to open a connection to an identity provider (within the timeout).
    #[serde(default = "default_idp_connect_timeout_ms")]
    pub idp_connect_timeout_ms: u64,
}

fn default_idp_connect_timeout_ms() -> u64 {
    2000
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LevelSettings {
    /// Levels of assurance, lowest first.
    pub order: Vec<String>,
}

/// How a relying party authenticates at `/token`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RpAuthMethod {
    ClientSecretBasic,
    PrivateKeyJwt,
}

/// What the hub does when no record matches and account creation is off.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum NoMatchResponse {
    /// `access_denied` with reason `no_match` (default).
    #[default]
    Error,
    /// An assertion whose match claim says `no_match`.
    Assertion,
}

/// A relying party: a configuration section, and the document the admin API takes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelyingPartySettings {
    pub client_id: String,
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub token_endpoint_auth_method: RpAuthMethod,
    #[serde(default)]
    pub client_secret: Option<Secret>,
    /// Inline JWKS (for `private_key_jwt`).
    #[serde(default)]
    pub jwks: Option<serde_json::Value>,
    /// Where to fetch the JWKS (for `private_key_jwt`).
    #[serde(default)]
    pub jwks_uri: Option<Url>,
    /// Pairwise sector; RPs sharing a sector see the same `sub`. Defaults to the client id.
    #[serde(default)]
    pub sector: Option<String>,
    /// Level requested when the RP sends neither `acr_values` nor `vtr`.
    pub default_level: String,
    /// Cycle-3 attribute asked of the citizen (`nino`, `driving_licence`, ...).
    #[serde(default)]
    pub cycle3_attribute: Option<String>,
    /// Thresholds of the matching decision rule (docs/matching.md); safe defaults.
    #[serde(default)]
    pub matching: matching::MatchPolicy,
    /// Return verified attributes with outcome `created` when nothing matches.
    #[serde(default)]
    pub account_creation: bool,
    #[serde(default)]
    pub no_match_response: NoMatchResponse,
    /// Run cycles 1 and 3 at this remote matching service instead of in the hub (absent:
    /// in the hub, against imported records). Cycle 0 always stays in the hub.
    #[serde(default)]
    pub matching_service: Option<RemoteMatchingSettings>,
    /// Claims `/userinfo` may release to this RP.
    #[serde(default = "default_userinfo_claims")]
    pub userinfo_claims: Vec<String>,
    /// Accept this RP's authorization requests only through `/par` (RFC 9126), so their
    /// parameters never travel through the browser.
    #[serde(default)]
    pub require_pushed_authorization_requests: bool,
}

fn default_userinfo_claims() -> Vec<String> {
    [
        "given_name",
        "middle_name",
        "family_name",
        "birthdate",
        "gender",
        "address",
    ]
    .iter()
    .map(|c| (*c).to_owned())
    .collect()
}

/// How the hub authenticates itself at an identity provider's token endpoint.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum IdpAuthMethod {
    ClientSecretBasic,
    PrivateKeyJwt,
}

/// An identity provider: a configuration section, and the document the admin API takes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityProviderSettings {
    /// Stable id used in links, pairwise ids and `idp_hint`.
    pub id: String,
    pub name: String,
    /// One sentence the picker shows under the name (what the company is, who it suits).
    #[serde(default)]
    pub description: Option<String>,
    /// The description in Welsh (the English one is shown when it is missing).
    #[serde(default)]
    pub description_cy: Option<String>,
    /// Issuer identifier, exactly as the IdP's discovery document states it.
    pub issuer: String,
    pub client_id: String,
    pub token_endpoint_auth_method: IdpAuthMethod,
    #[serde(default)]
    pub client_secret: Option<Secret>,
    /// Highest level this IdP is certified for.
    pub max_level: String,
    /// The IdP honours the OIDC `claims` request parameter for the ID token (OIDC Core
    /// §5.5): the hub asks for the matching dataset in the ID token and reads it from
    /// there, without calling userinfo (one call to the IdP per journey instead of two).
    /// An ID token that carries none of it is followed by the userinfo call after all.
    #[serde(default)]
    pub claims_in_id_token: bool,
    /// The certification of `max_level` lapses at this time: the IdP is no longer offered
    /// after it, and expiry warnings name it before.
    #[serde(default)]
    pub certified_until: Option<chrono::DateTime<chrono::Utc>>,
    /// Shown on the picker, unselectable, with this message while set (planned
    /// maintenance, an incident at the IdP).
    #[serde(default)]
    pub temporarily_unavailable: Option<String>,
    /// The message in Welsh (the English one is shown when it is missing).
    #[serde(default)]
    pub temporarily_unavailable_cy: Option<String>,
    /// After this time, offered only to citizens who already have an account with it.
    #[serde(default)]
    pub registration_until: Option<chrono::DateTime<chrono::Utc>>,
    /// After this time, not offered at all (the IdP leaves the scheme).
    #[serde(default)]
    pub authentication_until: Option<chrono::DateTime<chrono::Utc>>,
    /// During onboarding: only these relying parties (client ids) are offered it. Absent:
    /// every relying party.
    #[serde(default)]
    pub relying_parties: Option<Vec<String>>,
}

/// Ports and file of the `hub-demo` binary (crates/devkit).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DemoSettings {
    pub idp_bind: String,
    pub rp_bind: String,
    pub records_csv: Option<PathBuf>,
}

impl Default for DemoSettings {
    fn default() -> Self {
        Self {
            idp_bind: "127.0.0.1:8081".into(),
            rp_bind: "127.0.0.1:8082".into(),
            records_csv: None,
        }
    }
}

/// Errors loading configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Invalid(#[from] Box<figment::Error>),
    #[error("configuration: {0}")]
    Inconsistent(String),
}

impl Settings {
    /// Built-in defaults (the content of `config/default.toml`), so the binary runs
    /// even without the file.
    pub const DEFAULTS: &'static str = include_str!("../../../config/default.toml");

    /// Defaults, then `file` if given (TOML, or JSON when it ends in `.json`), then `HUB_*`
    /// environment variables.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::new().merge(Toml::string(Self::DEFAULTS));
        if let Some(file) = file {
            figment = match file.extension().and_then(|e| e.to_str()) {
                Some("json") => figment.merge(Json::file_exact(file)),
                _ => figment.merge(Toml::file_exact(file)),
            };
        }
        let settings: Settings = figment
            .merge(Env::prefixed("HUB_").split("__"))
            .extract()
            .map_err(Box::new)?;
        settings.validate()?;
        Ok(settings)
    }

    /// Overlays `patch` (any serialisable subset) on these settings; used by tests.
    pub fn with<T: Serialize>(self, patch: T) -> Result<Self, ConfigError> {
        let settings: Settings = Figment::from(Serialized::defaults(self))
            .merge(Serialized::defaults(patch))
            .extract()
            .map_err(Box::new)?;
        settings.validate()?;
        Ok(settings)
    }

    /// Whether `rp` is a relying party of this configuration: one the hub serves, or one a
    /// matching service configured here answers for (so `hub records import` can load
    /// records into either).
    pub fn knows_relying_party(&self, rp: &str) -> bool {
        self.relying_parties.iter().any(|r| r.client_id == rp)
            || self
                .matching_service
                .as_ref()
                .is_some_and(|s| s.policy_for(rp).is_some())
    }

    /// The relying party `hub match batch` and `hub match evaluate` run for: a hub relying
    /// party (its policy and cycle-3 attribute), or one a matching service configured here
    /// answers for.
    pub fn batch_rp(&self, rp: &str) -> Option<matching_service::batch::BatchRp> {
        if let Some(r) = self.relying_parties.iter().find(|r| r.client_id == rp) {
            return Some(matching_service::batch::BatchRp {
                client_id: r.client_id.clone(),
                policy: r.matching.clone(),
                cycle3_attribute: r.cycle3_attribute.clone(),
            });
        }
        matching_service::batch::BatchRp::for_service(self.matching_service.as_ref()?, rp)
    }

    /// What `hub matching-service` runs with: the `[matching_service]` section (`None`
    /// without one), the records database and the data directory.
    pub fn matching_service_config(&self) -> Option<ServiceConfig> {
        Some(ServiceConfig {
            service: self.matching_service.clone()?,
            database_url: self.database.url.clone(),
            database_options: self.database_options(),
            data_dir: self.data.dir.clone(),
        })
    }

    /// The verification log's origin: `audit.origin`, or the public URL's host, port and
    /// path followed by `/verification-log`.
    pub fn log_origin(&self) -> String {
        if let Some(origin) = &self.audit.origin {
            return origin.clone();
        }
        let url = &self.server.public_url;
        let host = url.host_str().unwrap_or("hub");
        let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
        let path = url.path().trim_end_matches('/');
        format!("{host}{port}{path}/verification-log")
    }

    /// The request worker threads `hub serve` runs: `server.workers`, or one per core.
    pub fn worker_threads(&self) -> usize {
        match self.server.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }

    /// Pool options for `database.url`: the configured bounds, with PostgreSQL's
    /// connections shared out among the request workers that query.
    pub fn database_options(&self) -> store::DatabaseOptions {
        store::DatabaseOptions {
            max_connections: self.database.max_connections,
            acquire_timeout: Duration::from_millis(self.database.acquire_timeout_ms),
            query_threads: u32::try_from(self.worker_threads()).unwrap_or(u32::MAX),
        }
    }

    /// Cross-field checks that serde cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Inconsistent(m));
        if self.levels.order.is_empty() {
            return bad("levels.order is empty".into());
        }
        if self.database.max_connections == 0 || self.database.acquire_timeout_ms == 0 {
            return bad(
                "database.max_connections and acquire_timeout_ms must be at least 1".into(),
            );
        }
        for rp in &self.relying_parties {
            rp.check(&self.levels.order).map_err(|e| {
                ConfigError::Inconsistent(format!("relying party {}: {e}", rp.client_id))
            })?;
        }
        if let Some(Err(e)) = self.matching_service.as_ref().map(|s| s.validate()) {
            return bad(e.to_string());
        }
        if let Err(e) = audit::KeyName::new(&self.log_origin()) {
            return bad(format!("audit.origin: {e}"));
        }
        if self.keys.rotate_after_days == 0 || self.expiry.check_interval_secs == 0 {
            return bad(
                "keys.rotate_after_days and expiry.check_interval_secs must be at least 1".into(),
            );
        }
        if self.server.tls.is_some() && self.server.public_url.scheme() != "https" {
            return bad("server.tls is set but server.public_url is not https".into());
        }
        let limits = &self.rate_limits;
        if limits.enabled
            && [
                limits.per_ip_per_minute,
                limits.per_ip_burst,
                limits.per_client_per_minute,
                limits.per_client_burst,
            ]
            .contains(&0)
        {
            return bad("rate_limits: every rate and burst must be positive".into());
        }
        for idp in &self.identity_providers {
            idp.check(&self.levels.order).map_err(|e| {
                ConfigError::Inconsistent(format!("identity provider {}: {e}", idp.id))
            })?;
        }
        if self
            .auditors
            .iter()
            .any(|a| a.scopes.iter().any(|s| s == "admin"))
        {
            return bad("auditors: the admin scope is for [[operators]] only".into());
        }
        if self
            .operators
            .iter()
            .any(|o| o.scopes.iter().any(|s| s != "admin"))
        {
            return bad("operators: the only scope an operator may have is admin".into());
        }
        if let Some(shared) = self.operators.iter().find(|o| {
            self.auditors.iter().any(|a| a.client_id == o.client_id)
                || self
                    .relying_parties
                    .iter()
                    .any(|r| r.client_id == o.client_id)
        }) {
            return bad(format!(
                "operators: client id {} is also an auditor's or a relying party's",
                shared.client_id
            ));
        }
        if self.registry.poll_interval_ms == 0 {
            return bad("registry.poll_interval_ms must be at least 1".into());
        }
        Ok(())
    }
}

impl RelyingPartySettings {
    /// What makes a relying party usable, against the deployment's levels (`levels`).
    pub fn check(&self, levels: &[String]) -> Result<(), String> {
        if !levels.contains(&self.default_level) {
            return Err("unknown default_level".into());
        }
        match self.token_endpoint_auth_method {
            RpAuthMethod::ClientSecretBasic if self.client_secret.is_none() => {
                return Err("client_secret missing".into())
            }
            RpAuthMethod::PrivateKeyJwt if self.jwks.is_none() && self.jwks_uri.is_none() => {
                return Err("jwks or jwks_uri missing".into())
            }
            _ => {}
        }
        if self.redirect_uris.is_empty() {
            return Err("no redirect_uris".into());
        }
        if let Some(Err(e)) = self.jwks.as_ref().map(token::VerificationKeys::from_jwks) {
            return Err(format!("jwks: {e}"));
        }
        if let Err(e) = self.matching.validate() {
            return Err(format!("matching.{e}"));
        }
        if let Some(Err(e)) = self.matching_service.as_ref().map(|r| r.validate()) {
            return Err(e.to_string());
        }
        Ok(())
    }
}

impl IdentityProviderSettings {
    /// What makes an identity provider usable, against the deployment's levels.
    pub fn check(&self, levels: &[String]) -> Result<(), String> {
        if !levels.contains(&self.max_level) {
            return Err("unknown max_level".into());
        }
        if Url::parse(&self.issuer).is_err() {
            return Err("issuer is not a URL".into());
        }
        if self.token_endpoint_auth_method == IdpAuthMethod::ClientSecretBasic
            && self.client_secret.is_none()
        {
            return Err("client_secret missing".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pool follows the worker count an operator sets: with one worker, that
    /// worker may use every connection.
    #[test]
    fn database_connections_are_shared_among_the_configured_workers() {
        let defaults = Settings::load(None).unwrap();
        let options = defaults.database_options();
        assert_eq!(options.max_connections, 8);
        assert_eq!(options.acquire_timeout, Duration::from_secs(5));
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(options.query_threads as usize, cores);
        let one_worker = defaults
            .with(serde_json::json!({"server": {"workers": 1}, "database": {"max_connections": 6}}))
            .unwrap();
        let options = one_worker.database_options();
        assert_eq!((options.query_threads, options.max_connections), (1, 6));
        let none = one_worker.with(serde_json::json!({"database": {"max_connections": 0}}));
        assert!(none.is_err());
    }

    /// The admin scope is for operators only, and an operator's client id is its own.
    #[test]
    fn operators_and_auditors_do_not_share_scopes_or_ids() {
        let defaults = Settings::load(None).unwrap();
        let client = |id: &str, scopes: &[&str]| serde_json::json!({"client_id": id, "client_secret": "s", "scopes": scopes});
        let auditor_admin =
            serde_json::json!({"auditors": [client("a", &["audit:read", "admin"])]});
        assert!(defaults.clone().with(auditor_admin).is_err());
        let operator_reader = serde_json::json!({"operators": [client("o", &["audit:read"])]});
        assert!(defaults.clone().with(operator_reader).is_err());
        let shared = serde_json::json!({
            "auditors": [client("x", &["audit:read"])],
            "operators": [client("x", &["admin"])],
        });
        assert!(defaults.clone().with(shared).is_err());
        let fine = serde_json::json!({"operators": [client("o", &["admin"])]});
        assert!(defaults.with(fine).is_ok());
    }

    /// A settings dump (a `Debug` in a log line, an error) shows no secret, and layering
    /// settings keeps them.
    #[test]
    fn secrets_never_reach_debug_output() {
        let settings = Settings::load(None)
            .unwrap()
            .with(serde_json::json!({
                "database": {"url": "postgres://hub:db-pass-1@db:5432/hub"},
                "sessions": {"url": "redis://:redis-pass-2@cache:6379/0"},
                "auditors": [{"client_id": "a", "client_secret": "auditor-pass-3"}],
                "relying_parties": [{
                    "client_id": "rp", "name": "RP", "redirect_uris": ["https://rp/cb"],
                    "token_endpoint_auth_method": "client_secret_basic",
                    "client_secret": "rp-pass-4", "default_level": "P2"
                }],
            }))
            .unwrap();
        let dump = format!("{settings:?}");
        for secret in ["db-pass-1", "redis-pass-2", "auditor-pass-3", "rp-pass-4"] {
            assert!(!dump.contains(secret), "{secret} in {dump}");
        }
        assert!(dump.contains("postgres://hub:***@db:5432/hub"), "{dump}");
        let layered = settings
            .with(serde_json::json!({"server": {"workers": 1}}))
            .unwrap();
        assert_eq!(layered.auditors[0].client_secret.expose(), "auditor-pass-3");
        let rp = &layered.relying_parties[0];
        assert_eq!(
            rp.client_secret.as_ref().map(Secret::expose),
            Some("rp-pass-4")
        );
    }
}
