//! `journey-load`: drives complete journeys against a running hub (or `oidc-provider`)
//! and prints latency percentiles, errors by kind and the servers' CPU per journey.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use journey_load::{parse_duration, Flow, LoadConfig, ProcessSelection, Stop, DEMO_REDIRECT_URI};
use url::Url;

/// Journey load generator: N virtual users (a browser with its own cookie jar plus an RP
/// each) drive complete journeys against a running deployment. Defaults fit `hub demo`.
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut config = LoadConfig::new(cli.flow, cli.hub, cli.redirect_uri);
    config.users = cli.users;
    config.stop = match (cli.journeys, cli.duration) {
        (Some(n), _) => Stop::Journeys(n),
        (None, Some(d)) => Stop::After(d),
        (None, None) => Stop::After(Duration::from_secs(30)),
    };
    config.warmup = cli.warmup;
    config.person = cli.person;
    config.idp = cli.idp;
    config.client_id = cli.client_id;
    config.client_secret = cli.client_secret;
    config.scope = cli.scope;
    config.acr_values = cli.acr_values;
    config.verify = cli.verify;
    config.request_timeout = cli.timeout;
    config.processes = ProcessSelection {
        pids: cli.pids,
        names: cli.process_names,
    };

    let report = journey_load::run(config).await.context("load run")?;
    print!("{report}");
    if let Some(path) = cli.json {
        let json = report.to_json().context("report as JSON")?;
        std::fs::write(&path, json + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
