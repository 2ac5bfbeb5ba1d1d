//! `journey-load`: drives complete journeys against a running hub (or `oidc-provider`)
//! and prints latency percentiles, errors by kind and the servers' CPU per journey; or
//! (`--park N`) leaves N journeys in flight at the IdP so their memory can be read.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use journey_load::{
    parse_duration, parse_rate, Flow, LoadConfig, ProcessSelection, Stop, DEMO_REDIRECT_URI,
};
use url::Url;

/// Journey load generator: N virtual users (a browser with its own cookie jar plus an RP
/// each) drive complete journeys against a running deployment. Defaults fit `hub-demo`.
#[derive(Debug, Parser)]
#[command(name = "journey-load", version)]
struct Cli {
    /// Issuer URL of the OP under load (the hub, or oidc-provider with --flow oidc-provider).
    #[arg(
        long,
        default_value = "http://127.0.0.1:8080",
        visible_alias = "issuer"
    )]
    hub: Url,
    /// hub (brokered journey via the devkit demo IdP) or oidc-provider (tests/interop/op.mjs).
    #[arg(long, default_value = "hub")]
    flow: Flow,
    /// Concurrent virtual users.
    #[arg(long, default_value_t = 8)]
    users: usize,
    /// Measure for this long (e.g. 30s, 2m); journeys under way at the end are finished.
    #[arg(long, value_parser = parse_duration, conflicts_with = "journeys")]
    duration: Option<Duration>,
    /// Measure exactly this many journeys instead of a duration.
    #[arg(long)]
    journeys: Option<u64>,
    /// Unrecorded journeys first, for this long (e.g. 5s).
    #[arg(long, value_parser = parse_duration, default_value = "0s")]
    warmup: Duration,
    /// Open loop: start this many journeys per second in total, on one schedule shared by
    /// the users (warmup included); reports how late starts were. Default: closed loop.
    #[arg(long, value_parser = parse_rate)]
    rate: Option<f64>,
    /// Instead of complete journeys, leave this many in flight at the IdP (hub flow):
    /// authorize, picker, choose the IdP, then stop, `--users` at a time.
    #[arg(long, conflicts_with_all = ["duration", "journeys", "warmup", "rate", "verify"])]
    park: Option<u64>,
    /// With --park: after the report, keep running (holding no connection) until Ctrl+C,
    /// so the hub's and the session store's memory can be read meanwhile.
    #[arg(long, requires = "park")]
    hold: bool,
    /// Test person who logs in at the IdP (a devkit subject, or an op.mjs account).
    #[arg(long, default_value = "alice")]
    person: String,
    /// IdP chosen on the hub's picker (hub flow).
    #[arg(long, default_value = "demo-idp")]
    idp: String,
    #[arg(long, default_value = "demo-rp")]
    client_id: String,
    /// client_secret_basic secret (or set JOURNEY_LOAD_CLIENT_SECRET).
    #[arg(
        long,
        env = "JOURNEY_LOAD_CLIENT_SECRET",
        default_value = "demo-rp-secret",
        hide_env_values = true
    )]
    client_secret: String,
    /// Registered redirect URI; never requested: the virtual user intercepts the redirect.
    #[arg(long, default_value = DEMO_REDIRECT_URI)]
    redirect_uri: Url,
    #[arg(long, default_value = "openid profile address")]
    scope: String,
    #[arg(long, default_value = "P2")]
    acr_values: String,
    /// Verify every ID token (signature, iss, aud, exp, nonce): costs the generator CPU.
    #[arg(long)]
    verify: bool,
    /// Per HTTP request.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    timeout: Duration,
    /// A server process to measure (repeatable).
    #[arg(long = "pid")]
    pids: Vec<u32>,
    /// Measure every process with this name (/proc/*/comm or argv 0; repeatable).
    #[arg(long = "process-name")]
    process_names: Vec<String>,
    /// Also write the report as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

impl Cli {
    /// The library's configuration; what the binary itself does (`--json`, `--park`,
    /// `--hold`) stays on the command line.
    fn config(&self) -> LoadConfig {
        let mut config = LoadConfig::new(self.flow, self.hub.clone(), self.redirect_uri.clone());
        config.users = self.users;
        config.stop = match (self.journeys, self.duration) {
            (Some(n), _) => Stop::Journeys(n),
            (None, Some(d)) => Stop::After(d),
            (None, None) => Stop::After(Duration::from_secs(30)),
        };
        config.rate = self.rate;
        config.warmup = self.warmup;
        config.person = self.person.clone();
        config.idp = self.idp.clone();
        config.client_id = self.client_id.clone();
        config.client_secret = self.client_secret.clone();
        config.scope = self.scope.clone();
        config.acr_values = self.acr_values.clone();
        config.verify = self.verify;
        config.request_timeout = self.timeout;
        config.processes = ProcessSelection {
            pids: self.pids.clone(),
            names: self.process_names.clone(),
        };
        config
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.park {
        Some(journeys) => park(&cli, journeys).await,
        None => measure(&cli).await,
    }
}

/// Complete journeys: the report, and a warning when an open loop fell behind schedule.
async fn measure(cli: &Cli) -> anyhow::Result<()> {
    let report = journey_load::run(cli.config()).await.context("load run")?;
    print!("{report}");
    if let Some(warning) = report.lag_warning() {
        eprintln!("warning: {warning}");
    }
    if let Some(path) = &cli.json {
        write_json(path, report.to_json())?;
    }
    Ok(())
}

/// Parked journeys: the report, then with `--hold` a wait for Ctrl+C. The line announcing
/// the wait comes last, so a script may read memory figures as soon as it appears.
async fn park(cli: &Cli, journeys: u64) -> anyhow::Result<()> {
    let report = journey_load::park(cli.config(), journeys)
        .await
        .context("park run")?;
    print!("{report}");
    if let Some(path) = &cli.json {
        write_json(path, report.to_json())?;
    }
    if cli.hold {
        println!("parked {} journeys; holding until Ctrl+C", report.parked);
        tokio::signal::ctrl_c()
            .await
            .context("waiting for Ctrl+C")?;
    }
    Ok(())
}

fn write_json(path: &Path, json: serde_json::Result<String>) -> anyhow::Result<()> {
    let json = json.context("report as JSON")?;
    std::fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))
}
