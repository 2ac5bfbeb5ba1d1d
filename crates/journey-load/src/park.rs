//! Parking journeys (`--park N`): citizens spend minutes at their identity provider, and
//! all that time the hub stores their journey waiting for the IdP's callback. Starting N
//! journeys and leaving each at the IdP's door puts N such journeys in the store at once,
//! so the memory each one costs (session store, hub RSS) can be read while they wait.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Instant;

use crate::config::{Flow, LoadConfig};
use crate::process_usage::{self, Window};
use crate::recorder::Recorder;
use crate::report::{self, rounded, Latency, ParkReport, ProcessUsage, StepLatency};
use crate::step::Step;
use crate::virtual_user::{Shared, VirtualUser};
use crate::{back_off_if_down, join, prepare, take_ticket, virtual_users, LoadError};

/// The steps of a parked journey, in order.
const PARK_STEPS: [Step; 2] = [Step::Authorize, Step::ChooseIdp];

/// Starts `journeys` hub journeys with `config.users` users at a time and leaves each in
/// flight at the identity provider (authorize, picker, choose the IdP; the redirect to the
/// IdP is not followed). Measures the processes' CPU over the run and their memory once
/// the last one is parked. `config`'s duration, journey count, warmup, rate and
/// verification do not apply. When it returns no connection is left open: the hub holds
/// the journeys until their TTL.
pub async fn park(mut config: LoadConfig, journeys: u64) -> Result<ParkReport, LoadError> {
    if config.flow != Flow::Hub {
        return Err(LoadError::ParkNeedsHub(config.flow.name()));
    }
    // No token is ever issued, so there is no key to fetch.
    config.verify = false;
    let shared = prepare(config).await?;
    let window = Window::open(process_usage::select(&shared.config.processes)?)?;
    let tickets = Arc::new(AtomicU64::new(journeys));
    let started = Instant::now();
    let tasks: Vec<_> = virtual_users(&shared)?
        .into_iter()
        .map(|user| tokio::spawn(park_some(user, Arc::clone(&tickets))))
        .collect();
    let recorder = join(tasks).await?;
    let elapsed_secs = started.elapsed().as_secs_f64();
    Ok(park_report(
        &shared,
        journeys,
        &recorder,
        elapsed_secs,
        window.close(),
    ))
}

/// One user's share: parks journeys while any is left to park.
async fn park_some(mut user: VirtualUser, tickets: Arc<AtomicU64>) -> Recorder {
    let mut recorder = Recorder::default();
    while take_ticket(&tickets) {
        let (outcome, elapsed) = user.park().await;
        recorder.record(user.steps(), &outcome, elapsed);
        back_off_if_down(&outcome).await;
    }
    recorder
}

fn park_report(
    shared: &Shared,
    requested: u64,
    recorder: &Recorder,
    elapsed_secs: f64,
    processes: Vec<ProcessUsage>,
) -> ParkReport {
    let config = &shared.config;
    let parked = recorder.completed;
    let steps = PARK_STEPS
        .iter()
        .filter_map(|step| {
            Some(StepLatency {
                step: step.name().to_owned(),
                latency: Latency::of(recorder.steps.get(step.index())?),
            })
        })
        .collect();
    let cpu_secs_total = report::cpu_secs_total(&processes);
    ParkReport {
        flow: config.flow.name().to_owned(),
        target: config.issuer.to_string(),
        users: config.users,
        requested,
        parked,
        failed: recorder.failed(),
        elapsed_secs: rounded(elapsed_secs, 3),
        parked_per_sec: report::per_sec(parked, elapsed_secs),
        errors: recorder.errors.clone(),
        park: Latency::of(&recorder.journeys),
        steps,
        cpu_ms_per_park: report::cpu_ms_per(cpu_secs_total, parked),
        peak_rss_kib_total: report::peak_rss_kib_total(&processes),
        rss_kib_total: report::rss_kib_total(&processes),
        cpu_secs_total,
        processes,
    }
}
