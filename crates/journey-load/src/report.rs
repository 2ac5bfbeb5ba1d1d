//! What a run measured, as a table for people and JSON for scripts (same figures).

use std::collections::BTreeMap;
use std::fmt;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

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
    /// Whole journeys (completed ones only).
    pub journey: Latency,
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
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or_else(|| "-".to_owned(), |k| format!("{:.1}", k as f64 / 1024.0))
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} flow against {}: {} users, {:.1} s measured after {:.1} s warmup",
            self.flow, self.target, self.users, self.elapsed_secs, self.warmup_secs
        )?;
        writeln!(
            f,
            "journeys: {} completed, {} failed, {:.1} journeys/s",
            self.completed, self.failed, self.journeys_per_sec
        )?;
        writeln!(f)?;
        writeln!(
            f,
            "{:<16} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "latency (ms)", "count", "mean", "p50", "p95", "p99", "max"
        )?;
        let row = |f: &mut fmt::Formatter<'_>, name: &str, l: &Latency| {
            writeln!(
                f,
                "{:<16} {:>8} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
                name, l.count, l.mean_ms, l.p50_ms, l.p95_ms, l.p99_ms, l.max_ms
            )
        };
        for step in &self.steps {
            row(f, &step.step, &step.latency)?;
        }
        row(f, "journey", &self.journey)?;
        if !self.errors.is_empty() {
            writeln!(f)?;
            writeln!(f, "{:<40} {:>8}", "errors", "count")?;
            for (kind, count) in &self.errors {
                writeln!(f, "{kind:<40} {count:>8}")?;
            }
        }
        if !self.processes.is_empty() {
            writeln!(f)?;
            writeln!(
                f,
                "{:<16} {:>8} {:>9} {:>14} {:>9}",
                "process", "pid", "cpu s", "peak rss MiB", "rss MiB"
            )?;
            for p in &self.processes {
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
            if let Some(total) = self.cpu_secs_total {
                writeln!(
                    f,
                    "{:<16} {:>8} {:>9.2} {:>14}",
                    "total",
                    "",
                    total,
                    mib(self.peak_rss_kib_total)
                )?;
            }
            match self.cpu_ms_per_journey {
                Some(ms) => writeln!(f, "CPU per journey: {ms:.3} ms")?,
                None => writeln!(f, "CPU per journey: - (no journey completed)")?,
            }
        }
        Ok(())
    }
}
