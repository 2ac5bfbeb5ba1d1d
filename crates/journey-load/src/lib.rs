//! The journey load generator (issue 7): virtual users, each a browser plus an RP, drive
//! complete journeys against a running deployment, and the run reports journeys per
//! second, errors by kind, per-step and per-journey latency percentiles (HDR histograms),
//! and the server processes' CPU and memory from `/proc`, so the cost of one journey is
//! known in CPU milliseconds independently of the machine's other load.
//!
//! The same generator drives panva's `oidc-provider` ([`Flow::OidcProvider`]) so the hub
//! can be compared with a plain OP on the same machine in the same run. See
//! docs/performance.md for the command line.

mod authorization;
pub mod balancer;
mod config;
mod cookie_jar;
mod form;
mod id_token;
mod pacing;
mod park;
mod process_usage;
mod recorder;
mod report;
mod step;
mod virtual_user;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{watch, Barrier};

pub use config::{
    parse_duration, parse_rate, ConfigError, Flow, LoadConfig, ProcessSelection, Stop,
    DEMO_REDIRECT_URI,
};
pub use park::park;
pub use process_usage::ProcessError;
pub use report::{Latency, ParkReport, ProcessUsage, Report, StepLatency, LAG_WARNING_MS};
pub use step::{Failure, Step};

use authorization::Endpoints;
use id_token::IdTokenCheck;
use pacing::Schedule;
use process_usage::Window;
use recorder::Recorder;
use report::rounded;
use virtual_user::{Shared, VirtualUser};

/// After a connection failure a virtual user waits this long, so a server that is down
/// is not met with a busy loop.
const CONNECT_BACKOFF: Duration = Duration::from_millis(20);

/// Why a run could not be made (failed journeys are not errors: they are reported).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("at least one virtual user is needed")]
    NoUsers,
    #[error("invalid rate {0}: journeys per second must be a finite number above zero")]
    Rate(f64),
    #[error("parking needs the hub flow: {0} has no identity provider to leave a journey at")]
    ParkNeedsHub(&'static str),
    #[error("cannot build an HTTP client: {0}")]
    Client(reqwest::Error),
    #[error("discovery document at {url}: {source}")]
    Discovery { url: String, source: reqwest::Error },
    #[error("JWKS at {url}: {source}")]
    Jwks { url: String, source: reqwest::Error },
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error("a virtual user stopped: {0}")]
    VirtualUser(tokio::task::JoinError),
}

/// Runs the load described by `config` and measures it.
///
/// Warmup journeys run first and are not recorded; then every user waits, the processes'
/// CPU counters are read, and the measured phase starts for all users at once. It ends
/// when the duration has passed (journeys under way are finished) or the number of
/// journeys has been started, and the counters are read again when the last one ends.
/// With a rate, both phases start journeys on a schedule (see [`LoadConfig::rate`]).
pub async fn run(config: LoadConfig) -> Result<Report, LoadError> {
    if let Some(rate) = config.rate.filter(|r| !pacing::is_valid_rate(*r)) {
        return Err(LoadError::Rate(rate));
    }
    let shared = prepare(config).await?;
    let watched = process_usage::select(&shared.config.processes)?;
    let users = shared.config.users;
    let plan = Arc::new(Plan::new(&shared.config));
    let virtual_users = virtual_users(&shared)?;

    let warmed = Arc::new(Barrier::new(users + 1));
    let (go, started) = watch::channel(None::<Instant>);
    let tasks: Vec<_> = virtual_users
        .into_iter()
        .map(|user| {
            tokio::spawn(drive(
                user,
                Arc::clone(&plan),
                Arc::clone(&warmed),
                started.clone(),
            ))
        })
        .collect();

    warmed.wait().await;
    let window = Window::open(watched)?;
    let window_start = Instant::now();
    // No receiver left only if every user ended, which the joins below report.
    let _ = go.send(Some(window_start));

    let recorder = join(tasks).await?;
    let elapsed = window_start.elapsed();
    Ok(report(&shared, &recorder, elapsed, window.close()))
}

/// What every run needs before its users start: an HTTP client, the OP's endpoints from
/// its discovery document and, to verify ID tokens, its keys.
async fn prepare(config: LoadConfig) -> Result<Arc<Shared>, LoadError> {
    if config.users == 0 {
        return Err(LoadError::NoUsers);
    }
    let http = reqwest::Client::builder()
        .timeout(config.request_timeout)
        .build()
        .map_err(LoadError::Client)?;
    let endpoints = discover(&http, &config).await?;
    let id_token_check = if config.verify {
        let url = endpoints.jwks_uri.to_string();
        let fetch = async {
            http.get(endpoints.jwks_uri.clone())
                .send()
                .await?
                .error_for_status()?
                .json::<jsonwebtoken::jwk::JwkSet>()
                .await
        };
        let jwks = fetch
            .await
            .map_err(|source| LoadError::Jwks { url, source })?;
        Some(IdTokenCheck::new(
            &jwks,
            &endpoints.issuer,
            &config.client_id,
        ))
    } else {
        None
    };
    Ok(Arc::new(Shared {
        config,
        endpoints,
        id_token_check,
    }))
}

/// One virtual user per `--users`, each with its own connections and cookie jar.
fn virtual_users(shared: &Arc<Shared>) -> Result<Vec<VirtualUser>, LoadError> {
    (0..shared.config.users)
        .map(|_| VirtualUser::new(Arc::clone(shared)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(LoadError::Client)
}

/// Waits for every user and adds up their figures.
async fn join(tasks: Vec<tokio::task::JoinHandle<Recorder>>) -> Result<Recorder, LoadError> {
    let mut recorder = Recorder::default();
    for task in tasks {
        recorder.merge(&task.await.map_err(LoadError::VirtualUser)?);
    }
    Ok(recorder)
}

async fn discover(http: &reqwest::Client, config: &LoadConfig) -> Result<Endpoints, LoadError> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        config.issuer.as_str().trim_end_matches('/')
    );
    let fetch = async {
        http.get(&url)
            .send()
            .await?
            .error_for_status()?
            .json::<Endpoints>()
            .await
    };
    fetch
        .await
        .map_err(|source| LoadError::Discovery { url, source })
}

/// When the users of a run start their journeys, shared by all of them.
#[derive(Debug)]
struct Plan {
    /// When the users were started: the warmup (and its schedule) begins here.
    run_start: Instant,
    warmup: Duration,
    stop: Stop,
    /// Journeys left to start with [`Stop::Journeys`].
    tickets: AtomicU64,
    /// Open loop only.
    pacing: Option<Pacing>,
}

/// The schedules of an open-loop run: one per phase, each starting at its phase's start.
#[derive(Debug)]
struct Pacing {
    warmup: Schedule,
    measured: Schedule,
}

/// When a user may start its next journey.
#[derive(Debug, Clone, Copy)]
enum Start {
    /// Closed loop: at once.
    Now,
    /// Open loop: at this scheduled time.
    Due(Instant),
}

impl Start {
    /// Waits until the journey may start; for a scheduled start, returns how late it is.
    async fn wait(self) -> Option<Duration> {
        match self {
            Start::Now => None,
            Start::Due(due) => Some(pacing::start_at(due).await),
        }
    }
}

impl Plan {
    fn new(config: &LoadConfig) -> Self {
        let run_start = Instant::now();
        Self {
            run_start,
            warmup: config.warmup,
            stop: config.stop,
            tickets: AtomicU64::new(match config.stop {
                Stop::Journeys(n) => n,
                Stop::After(_) => 0,
            }),
            pacing: config.rate.map(|rate| Pacing {
                warmup: Schedule::new(rate),
                measured: Schedule::new(rate),
            }),
        }
    }

    /// The next warmup journey's start, or `None` once the warmup is over.
    fn warmup_start(&self) -> Option<Start> {
        match &self.pacing {
            None => (self.run_start.elapsed() < self.warmup).then_some(Start::Now),
            // A warmup too long for the clock to represent its end has none.
            Some(pacing) => pacing
                .warmup
                .claim(self.run_start, self.run_start.checked_add(self.warmup))
                .map(Start::Due),
        }
    }

    /// The next measured journey's start, or `None` once the window is over: its duration
    /// has passed (for a paced run, the next start would be due after it) or every journey
    /// has been started.
    fn measured_start(&self, window_start: Instant) -> Option<Start> {
        match self.stop {
            Stop::Journeys(_) if !self.take_ticket() => return None,
            Stop::After(d) if self.pacing.is_none() && window_start.elapsed() >= d => return None,
            _ => {}
        }
        let Some(pacing) = &self.pacing else {
            return Some(Start::Now);
        };
        let deadline = match self.stop {
            Stop::After(d) => window_start.checked_add(d),
            Stop::Journeys(_) => None,
        };
        pacing
            .measured
            .claim(window_start, deadline)
            .map(Start::Due)
    }

    fn take_ticket(&self) -> bool {
        take_ticket(&self.tickets)
    }
}

/// Takes one of the journeys left to start, if any is left: users share the count.
fn take_ticket(tickets: &AtomicU64) -> bool {
    tickets
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
        .is_ok()
}

/// One virtual user's life: warmup journeys, the wait for the others, recorded journeys.
async fn drive(
    mut user: VirtualUser,
    plan: Arc<Plan>,
    warmed: Arc<Barrier>,
    mut started: watch::Receiver<Option<Instant>>,
) -> Recorder {
    let mut recorder = Recorder::default();
    while let Some(start) = plan.warmup_start() {
        start.wait().await;
        let (outcome, _) = user.journey().await;
        back_off_if_down(&outcome).await;
    }
    warmed.wait().await;
    let window_start = match started.wait_for(Option::is_some).await {
        Ok(start) => start.unwrap_or_else(Instant::now),
        // The run was abandoned before measuring (a process could not be read).
        Err(_) => return recorder,
    };
    while let Some(start) = plan.measured_start(window_start) {
        let lag = start.wait().await;
        let (outcome, elapsed) = user.journey().await;
        recorder.record(user.steps(), &outcome, elapsed);
        if let Some(lag) = lag {
            recorder.record_lag(lag);
        }
        back_off_if_down(&outcome).await;
    }
    recorder
}

async fn back_off_if_down(outcome: &Result<(), Failure>) {
    if outcome.as_ref().is_err_and(Failure::is_connect) {
        tokio::time::sleep(CONNECT_BACKOFF).await;
    }
}

fn report(
    shared: &Shared,
    recorder: &Recorder,
    elapsed: Duration,
    processes: Vec<ProcessUsage>,
) -> Report {
    let config = &shared.config;
    let elapsed_secs = elapsed.as_secs_f64();
    let failed = recorder.failed();
    let steps = Step::of(config.flow)
        .iter()
        .filter_map(|step| {
            let histogram = recorder.steps.get(step.index())?;
            // oidc-provider's consent steps do not happen once consent is remembered.
            (!histogram.is_empty() || config.flow == Flow::Hub).then(|| StepLatency {
                step: step.name().to_owned(),
                latency: Latency::of(histogram),
            })
        })
        .collect();
    let cpu_secs_total = report::cpu_secs_total(&processes);
    Report {
        flow: config.flow.name().to_owned(),
        target: config.issuer.to_string(),
        users: config.users,
        warmup_secs: rounded(config.warmup.as_secs_f64(), 3),
        elapsed_secs: rounded(elapsed_secs, 3),
        journeys: recorder.completed + failed,
        completed: recorder.completed,
        failed,
        journeys_per_sec: report::per_sec(recorder.completed, elapsed_secs),
        errors: recorder.errors.clone(),
        journey: Latency::of(&recorder.journeys),
        journey_at_op: Some(Latency::of(&recorder.at_op)),
        rate_per_sec: config.rate,
        schedule_lag: config.rate.map(|_| Latency::of(&recorder.lags)),
        steps,
        cpu_ms_per_journey: report::cpu_ms_per(cpu_secs_total, recorder.completed),
        peak_rss_kib_total: report::peak_rss_kib_total(&processes),
        cpu_secs_total,
        processes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(flow: Flow) -> LoadConfig {
        let nowhere = url::Url::parse("http://127.0.0.1:9").unwrap();
        LoadConfig::new(flow, nowhere.clone(), nowhere)
    }

    #[tokio::test]
    async fn a_rate_that_cannot_pace_is_refused_before_any_request() {
        let mut config = config(Flow::Hub);
        config.rate = Some(0.0);
        assert!(matches!(run(config).await, Err(LoadError::Rate(_))));
    }

    #[tokio::test]
    async fn only_the_hub_flow_parks() {
        let error = park(config(Flow::OidcProvider), 1).await.unwrap_err();
        assert!(matches!(error, LoadError::ParkNeedsHub("oidc-provider")));
        assert!(error.to_string().contains("hub flow"), "{error}");
    }
}
