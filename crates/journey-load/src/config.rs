//! What a load run does: the flow, the target, the virtual users, when it stops.

use std::time::Duration;

use url::Url;

/// Which protocol dance a virtual user performs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// A complete brokered journey through the hub and the devkit demo IdP.
    Hub,
    /// A plain code flow against panva's `oidc-provider` as run by
    /// `tests/interop/op.mjs` (login, then consent, interactions).
    OidcProvider,
}

impl Flow {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Flow::Hub => "hub",
            Flow::OidcProvider => "oidc-provider",
        }
    }
}

impl std::str::FromStr for Flow {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "hub" => Ok(Flow::Hub),
            "oidc-provider" => Ok(Flow::OidcProvider),
            other => Err(ConfigError::Flow(other.to_owned())),
        }
    }
}

/// When the measured phase ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Start no journey after this long; journeys under way are finished.
    After(Duration),
    /// Exactly this many journeys (completed or failed).
    Journeys(u64),
}

/// The server processes whose CPU and memory are reported.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessSelection {
    /// Explicit process ids.
    pub pids: Vec<u32>,
    /// Names matched against `/proc/<pid>/comm` or the file name of the command (argv 0).
    pub names: Vec<String>,
}

impl ProcessSelection {
    /// Whether any process is to be measured.
    pub fn is_empty(&self) -> bool {
        self.pids.is_empty() && self.names.is_empty()
    }
}

/// Everything one run needs.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    pub flow: Flow,
    /// Issuer of the OP under load (the hub, or `oidc-provider`): its discovery document is
    /// read once, so endpoints need not be given.
    pub issuer: Url,
    /// Concurrent virtual users, each a browser with its own cookie jar plus an RP.
    pub users: usize,
    pub stop: Stop,
    /// Open loop: journey starts per second in total, on one schedule shared by the users
    /// (warmup included). `None`: closed loop, each user starts its next journey as soon as
    /// its last one ends.
    pub rate: Option<f64>,
    /// Journeys run but not recorded first, so caches, pools and JITs are warm.
    pub warmup: Duration,
    /// The test person who logs in at the IdP (devkit subject, or op.mjs account).
    pub person: String,
    /// The IdP chosen on the hub's picker (hub flow only).
    pub idp: String,
    pub client_id: String,
    pub client_secret: String,
    /// Registered redirect URI: never requested, the virtual user intercepts the redirect.
    pub redirect_uri: Url,
    pub scope: String,
    pub acr_values: String,
    /// Verify each ID token's signature, issuer, audience and nonce (off in the hot loop).
    pub verify: bool,
    /// Per HTTP request.
    pub request_timeout: Duration,
    pub processes: ProcessSelection,
}

impl LoadConfig {
    /// A run of `flow` against `issuer` with the demo's defaults: one user, ten journeys,
    /// `alice` at the demo IdP for the demo RP (whose redirect URI is [`DEMO_REDIRECT_URI`])
    /// at level P2.
    pub fn new(flow: Flow, issuer: Url, redirect_uri: Url) -> Self {
        Self {
            flow,
            issuer,
            users: 1,
            stop: Stop::Journeys(10),
            rate: None,
            warmup: Duration::ZERO,
            person: "alice".into(),
            idp: "demo-idp".into(),
            client_id: "demo-rp".into(),
            client_secret: "demo-rp-secret".into(),
            redirect_uri,
            scope: "openid profile address".into(),
            acr_values: "P2".into(),
            verify: false,
            request_timeout: Duration::from_secs(10),
            processes: ProcessSelection::default(),
        }
    }
}

/// The demo RP's registered redirect URI (`config/demo.toml`).
pub const DEMO_REDIRECT_URI: &str = "http://127.0.0.1:8082/callback";

/// Invalid command-line values.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("unknown flow {0:?}: expected hub or oidc-provider")]
    Flow(String),
    #[error("invalid duration {0:?}: expected e.g. 500ms, 30s, 2m or 1h")]
    Duration(String),
    #[error("invalid rate {0:?}: expected journeys per second above zero, e.g. 150 or 0.5")]
    Rate(String),
}

/// Parses `500ms`, `30s`, `2m`, `1h` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, ConfigError> {
    let text = text.trim();
    let invalid = || ConfigError::Duration(text.to_owned());
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().map_err(|_| invalid())?;
    let secs = match unit.trim() {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(invalid()),
    };
    Duration::try_from_secs_f64(secs).map_err(|_| invalid())
}

/// Parses a `--rate`: journeys per second, finite and above zero.
pub fn parse_rate(text: &str) -> Result<f64, ConfigError> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|rate| crate::pacing::is_valid_rate(*rate))
        .ok_or_else(|| ConfigError::Rate(text.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5 parsecs").is_err());
    }

    #[test]
    fn rates_parse_as_positive_numbers() {
        assert_eq!(parse_rate("150").unwrap(), 150.0);
        assert_eq!(parse_rate("0.5").unwrap(), 0.5);
        for bad in ["0", "-3", "fast", "inf", "NaN"] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn flows_parse_by_name() {
        assert_eq!("hub".parse::<Flow>().unwrap(), Flow::Hub);
        assert_eq!("oidc-provider".parse::<Flow>().unwrap(), Flow::OidcProvider);
        assert!("keycloak".parse::<Flow>().is_err());
    }
}
