//! What a run measured, as a table for people and JSON for scripts (same figures).

use std::collections::BTreeMap;
use std::fmt;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Schedule lag p99 above which an open-loop run did not keep to its schedule.
pub const LAG_WARNING_MS: f64 = 10.0;

/// Latency percentiles of one step, or of whole journeys, in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Samples recorded.
    pub count: u64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    /// From a histogram of microseconds.
    pub(crate) fn of(histogram: &Histogram<u64>) -> Self {
        let ms = |micros: u64| micros as f64 / 1000.0;
        Self {
            count: histogram.len(),
            mean_ms: rounded(histogram.mean() / 1000.0, 3),
            p50_ms: ms(histogram.value_at_quantile(0.50)),
            p95_ms: ms(histogram.value_at_quantile(0.95)),
            p99_ms: ms(histogram.value_at_quantile(0.99)),
            max_ms: ms(histogram.max()),
        }
    }
}

/// `value` to `decimals` places: no false precision in the report, and figures that
/// survive a JSON round trip exactly (short decimals parse back to the same `f64`).
pub(crate) fn rounded(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

/// One step's latencies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepLatency {
    /// e.g. `authorize`, `callback`, `token`.
    pub step: String,
    #[serde(flatten)]
    pub latency: Latency,
}

/// CPU and memory of one server process over the measured window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessUsage {
    pub pid: u32,
    pub name: String,
    /// User + system CPU seconds spent in the window; `None` if the process exited.
    pub cpu_secs: Option<f64>,
    /// `VmHWM` at the end: the process's peak resident set since it started.
    pub peak_rss_kib: Option<u64>,
    /// `VmRSS` at the end.
    pub rss_kib: Option<u64>,
}

/// The result of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// `hub` or `oidc-provider`.
    pub flow: String,
    /// The OP's issuer.
    pub target: String,
    pub users: usize,
    pub warmup_secs: f64,
    /// Length of the measured window.
    pub elapsed_secs: f64,
    /// Journeys started in the window (completed + failed).
    pub journeys: u64,
    pub completed: u64,
    pub failed: u64,
    /// Completed journeys per second of the window.
    pub journeys_per_sec: f64,
    /// Failed journeys by kind (`step:detail`).
    pub errors: BTreeMap<String, u64>,
    /// Whole journeys (completed ones only), from their actual start.
    pub journey: Latency,
    /// Completed journeys: the latency the OP under test added, the sum of the steps it
    /// served (all but the demo IdP's login page and form). Issue 7's "latency added by
    /// the hub".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub journey_at_op: Option<Latency>,
    /// Open-loop runs (`--rate`): journey starts per second asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_per_sec: Option<f64>,
    /// Open-loop runs: actual minus due start of every journey in the window. A p99 above
    /// [`LAG_WARNING_MS`] means the users could not keep to the schedule (too few of them,
    /// or the generator short of CPU), so the offered load was lower than asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_lag: Option<Latency>,
    /// In journey order; a step's latency counts whenever it succeeded.
    pub steps: Vec<StepLatency>,
    pub processes: Vec<ProcessUsage>,
    /// Sum over the processes; `None` when none was measured.
    pub cpu_secs_total: Option<f64>,
    /// Total CPU milliseconds / completed journeys.
    pub cpu_ms_per_journey: Option<f64>,
    /// Sum of the processes' peak resident sets.
    pub peak_rss_kib_total: Option<u64>,
}

impl Report {
    /// The latencies of `step`, if the run has it.
    pub fn step(&self, step: &str) -> Option<&Latency> {
        self.steps
            .iter()
            .find(|s| s.step == step)
            .map(|s| &s.latency)
    }

    /// Pretty-printed JSON.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string_pretty(self)
    }

    /// Why the figures of an open-loop run understate the load asked for: the schedule lag's
    /// p99 exceeded [`LAG_WARNING_MS`].
    pub fn lag_warning(&self) -> Option<String> {
        let lag = self.schedule_lag.as_ref()?;
        (lag.p99_ms > LAG_WARNING_MS).then(|| {
            format!(
                "schedule lag p99 {:.2} ms (max {:.2} ms) exceeds {LAG_WARNING_MS} ms: starts fell \
                 behind the schedule; add --users (now {}) or lower --rate",
                lag.p99_ms, lag.max_ms, self.users
            )
        })
    }
}

/// The result of a park run (`--park N`): journeys left in flight at the identity
/// provider, so the memory the deployment spends on each waiting journey can be read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParkReport {
    /// Always `hub`: only the brokered journey waits at an IdP.
    pub flow: String,
    /// The hub's issuer.
    pub target: String,
    pub users: usize,
    /// Journeys asked for.
    pub requested: u64,
    /// Journeys the hub now holds, waiting for an IdP callback that will not come.
    pub parked: u64,
    pub failed: u64,
    /// From the first authorization request to the last redirect to the IdP.
    pub elapsed_secs: f64,
    pub parked_per_sec: f64,
    /// Failed parks by kind (`step:detail`).
    pub errors: BTreeMap<String, u64>,
    /// Time to park one journey (authorize + choose_idp), parked ones only.
    pub park: Latency,
    /// `authorize` and `choose_idp`.
    pub steps: Vec<StepLatency>,
    /// CPU over the park run; memory read once the last journey was parked.
    pub processes: Vec<ProcessUsage>,
    pub cpu_secs_total: Option<f64>,
    /// Total CPU milliseconds / parked journeys.
    pub cpu_ms_per_park: Option<f64>,
    pub peak_rss_kib_total: Option<u64>,
    /// Sum of the processes' resident sets with the journeys parked.
    pub rss_kib_total: Option<u64>,
}

impl ParkReport {
    /// Pretty-printed JSON.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string_pretty(self)
    }
}

/// Sum of the processes' CPU seconds; `None` when none was measured.
pub(crate) fn cpu_secs_total(processes: &[ProcessUsage]) -> Option<f64> {
    (!processes.is_empty()).then(|| processes.iter().filter_map(|p| p.cpu_secs).sum())
}

/// Sum of the processes' peak resident sets; `None` when none was measured.
pub(crate) fn peak_rss_kib_total(processes: &[ProcessUsage]) -> Option<u64> {
    (!processes.is_empty()).then(|| processes.iter().filter_map(|p| p.peak_rss_kib).sum())
}

/// Sum of the processes' current resident sets; `None` when none was measured.
pub(crate) fn rss_kib_total(processes: &[ProcessUsage]) -> Option<u64> {
    (!processes.is_empty()).then(|| processes.iter().filter_map(|p| p.rss_kib).sum())
}

/// CPU milliseconds per item (journey or park); `None` without CPU figures or items.
pub(crate) fn cpu_ms_per(cpu_secs_total: Option<f64>, items: u64) -> Option<f64> {
    cpu_secs_total
        .filter(|_| items > 0)
        .map(|secs| rounded(secs * 1000.0 / items as f64, 3))
}

/// `count` per second of `elapsed_secs` (zero for an empty window).
pub(crate) fn per_sec(count: u64, elapsed_secs: f64) -> f64 {
    if elapsed_secs > 0.0 {
        rounded(count as f64 / elapsed_secs, 2)
    } else {
        0.0
    }
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or_else(|| "-".to_owned(), |k| format!("{:.1}", k as f64 / 1024.0))
}

fn latency_header(f: &mut fmt::Formatter<'_>) -> fmt::Result {
    writeln!(
        f,
        "{:<16} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "latency (ms)", "count", "mean", "p50", "p95", "p99", "max"
    )
}

fn latency_row(f: &mut fmt::Formatter<'_>, name: &str, l: &Latency) -> fmt::Result {
    writeln!(
        f,
        "{:<16} {:>8} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
        name, l.count, l.mean_ms, l.p50_ms, l.p95_ms, l.p99_ms, l.max_ms
    )
}

fn errors_table(f: &mut fmt::Formatter<'_>, errors: &BTreeMap<String, u64>) -> fmt::Result {
    if errors.is_empty() {
        return Ok(());
    }
    writeln!(f)?;
    writeln!(f, "{:<40} {:>8}", "errors", "count")?;
    for (kind, count) in errors {
        writeln!(f, "{kind:<40} {count:>8}")?;
    }
    Ok(())
}

/// Per process CPU and memory, then the totals (when any process was measured).
fn process_table(
    f: &mut fmt::Formatter<'_>,
    processes: &[ProcessUsage],
    cpu_secs_total: Option<f64>,
    peak_rss_kib_total: Option<u64>,
) -> fmt::Result {
    writeln!(f)?;
    writeln!(
        f,
        "{:<16} {:>8} {:>9} {:>14} {:>9}",
        "process", "pid", "cpu s", "peak rss MiB", "rss MiB"
    )?;
    for p in processes {
        let cpu = p
            .cpu_secs
            .map_or_else(|| "exited".to_owned(), |c| format!("{c:.2}"));
        writeln!(
            f,
            "{:<16} {:>8} {:>9} {:>14} {:>9}",
            p.name,
            p.pid,
            cpu,
            mib(p.peak_rss_kib),
            mib(p.rss_kib)
        )?;
    }
    if let Some(total) = cpu_secs_total {
        writeln!(
            f,
            "{:<16} {:>8} {:>9.2} {:>14}",
            "total",
            "",
            total,
            mib(peak_rss_kib_total)
        )?;
    }
    Ok(())
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} flow against {}: {} users, {:.1} s measured after {:.1} s warmup",
            self.flow, self.target, self.users, self.elapsed_secs, self.warmup_secs
        )?;
        if let Some(rate) = self.rate_per_sec {
            writeln!(f, "open loop: {rate} journey starts/s scheduled")?;
        }
        writeln!(
            f,
            "journeys: {} completed, {} failed, {:.1} journeys/s",
            self.completed, self.failed, self.journeys_per_sec
        )?;
        writeln!(f)?;
        latency_header(f)?;
        for step in &self.steps {
            latency_row(f, &step.step, &step.latency)?;
        }
        latency_row(f, "journey", &self.journey)?;
        if let Some(at_op) = &self.journey_at_op {
            latency_row(f, "journey at the OP", at_op)?;
        }
        if let Some(lag) = &self.schedule_lag {
            latency_row(f, "schedule lag", lag)?;
        }
        errors_table(f, &self.errors)?;
        if !self.processes.is_empty() {
            process_table(
                f,
                &self.processes,
                self.cpu_secs_total,
                self.peak_rss_kib_total,
            )?;
            match self.cpu_ms_per_journey {
                Some(ms) => writeln!(f, "CPU per journey: {ms:.3} ms")?,
                None => writeln!(f, "CPU per journey: - (no journey completed)")?,
            }
        }
        Ok(())
    }
}

impl fmt::Display for ParkReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} flow against {}: {} users parked journeys at the IdP in {:.1} s",
            self.flow, self.target, self.users, self.elapsed_secs
        )?;
        writeln!(
            f,
            "parked: {} of {}, {} failed, {:.1} parked/s",
            self.parked, self.requested, self.failed, self.parked_per_sec
        )?;
        writeln!(f)?;
        latency_header(f)?;
        for step in &self.steps {
            latency_row(f, &step.step, &step.latency)?;
        }
        latency_row(f, "park", &self.park)?;
        errors_table(f, &self.errors)?;
        if !self.processes.is_empty() {
            process_table(
                f,
                &self.processes,
                self.cpu_secs_total,
                self.peak_rss_kib_total,
            )?;
            writeln!(
                f,
                "rss with the journeys parked: {} MiB",
                mib(self.rss_kib_total)
            )?;
            match self.cpu_ms_per_park {
                Some(ms) => writeln!(f, "CPU per parked journey: {ms:.3} ms")?,
                None => writeln!(f, "CPU per parked journey: - (none parked)")?,
            }
        }
        Ok(())
    }
}
