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
    parse_duration, ConfigError, Flow, LoadConfig, ProcessSelection, Stop, DEMO_REDIRECT_URI,
};
pub use process_usage::ProcessError;
pub use report::{Latency, ProcessUsage, Report, StepLatency};
pub use step::{Failure, Step};

use authorization::Endpoints;
use id_token::IdTokenCheck;
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
pub async fn run(config: LoadConfig) -> Result<Report, LoadError> {
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
    let watched = process_usage::select(&config.processes)?;

    let users = config.users;
    let stop = config.stop;
    let warmup_until = Instant::now() + config.warmup;
    let shared = Arc::new(Shared {
        config,
        endpoints,
        id_token_check,
    });
    let virtual_users = (0..users)
        .map(|_| VirtualUser::new(Arc::clone(&shared)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(LoadError::Client)?;

    let warmed = Arc::new(Barrier::new(users + 1));
    let (go, started) = watch::channel(None::<Instant>);
    let tickets = Arc::new(AtomicU64::new(match stop {
        Stop::Journeys(n) => n,
        Stop::After(_) => 0,
    }));
    let tasks: Vec<_> = virtual_users
        .into_iter()
        .map(|user| {
            tokio::spawn(drive(
                user,
                warmup_until,
                Arc::clone(&warmed),
                started.clone(),
                stop,
                Arc::clone(&tickets),
            ))
        })
        .collect();

    warmed.wait().await;
    let cpu_before = watched
        .iter()
        .map(|w| process_usage::cpu(w.pid))
        .collect::<Result<Vec<_>, _>>()?;
    let window_start = Instant::now();
    // No receiver left only if every user ended, which the joins below report.
    let _ = go.send(Some(window_start));

    let mut recorder = Recorder::default();
    for task in tasks {
        recorder.merge(&task.await.map_err(LoadError::VirtualUser)?);
    }
    let elapsed = window_start.elapsed();

    let processes: Vec<ProcessUsage> = watched
        .iter()
        .zip(&cpu_before)
        .map(|(w, before)| {
            let cpu_secs = process_usage::cpu(w.pid)
                .ok()
                .map(|after| rounded((after.cpu_secs - before.cpu_secs).max(0.0), 3));
            let memory = process_usage::memory(w.pid).ok();
            ProcessUsage {
                pid: w.pid,
                name: w.name.clone(),
                cpu_secs,
                peak_rss_kib: memory.map(|m| m.peak_rss_kib),
                rss_kib: memory.map(|m| m.rss_kib),
            }
        })
        .collect();
    Ok(report(&shared, &recorder, elapsed, processes))
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

/// One virtual user's life: warmup journeys, the wait for the others, recorded journeys.
async fn drive(
    mut user: VirtualUser,
    warmup_until: Instant,
    warmed: Arc<Barrier>,
    mut started: watch::Receiver<Option<Instant>>,
    stop: Stop,
    tickets: Arc<AtomicU64>,
) -> Recorder {
    let mut recorder = Recorder::default();
    while Instant::now() < warmup_until {
        let (outcome, _) = user.journey().await;
        back_off_if_down(&outcome).await;
    }
    warmed.wait().await;
    let window_start = match started.wait_for(Option::is_some).await {
        Ok(start) => start.unwrap_or_else(Instant::now),
        // The run was abandoned before measuring (a process could not be read).
        Err(_) => return recorder,
    };
    let take_ticket = || {
        tickets
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok()
    };
    loop {
        let go_on = match stop {
            Stop::After(duration) => window_start.elapsed() < duration,
            Stop::Journeys(_) => take_ticket(),
        };
        if !go_on {
            break;
        }
        let (outcome, elapsed) = user.journey().await;
        recorder.record(user.steps(), &outcome, elapsed);
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
    let cpu_secs_total =
        (!processes.is_empty()).then(|| processes.iter().filter_map(|p| p.cpu_secs).sum::<f64>());
    let peak_rss_kib_total = (!processes.is_empty())
        .then(|| processes.iter().filter_map(|p| p.peak_rss_kib).sum::<u64>());
    let cpu_ms_per_journey = cpu_secs_total
        .filter(|_| recorder.completed > 0)
        .map(|secs| rounded(secs * 1000.0 / recorder.completed as f64, 3));
    Report {
        flow: config.flow.name().to_owned(),
        target: config.issuer.to_string(),
        users: config.users,
        warmup_secs: rounded(config.warmup.as_secs_f64(), 3),
        elapsed_secs: rounded(elapsed_secs, 3),
        journeys: recorder.completed + failed,
        completed: recorder.completed,
        failed,
        journeys_per_sec: if elapsed_secs > 0.0 {
            rounded(recorder.completed as f64 / elapsed_secs, 2)
        } else {
            0.0
        },
        errors: recorder.errors.clone(),
        journey: Latency::of(&recorder.journeys),
        steps,
        processes,
        cpu_secs_total,
        cpu_ms_per_journey,
        peak_rss_kib_total,
    }
}
