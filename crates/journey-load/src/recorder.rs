//! Each virtual user's own latency histograms and error counts, merged at the end: no
//! shared state (no lock) on the hot path.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::step::{Failure, Step};

/// Highest latency recorded exactly: an hour, in microseconds (longer ones saturate).
const MAX_MICROS: u64 = 3_600_000_000;
/// Three significant figures: 0.1% precision at any latency.
const SIGNIFICANT_FIGURES: u8 = 3;

/// Latencies in microseconds.
pub(crate) fn new_histogram() -> Histogram<u64> {
    // Not input-dependent: constant bounds that hdrhistogram accepts.
    #[allow(clippy::expect_used)]
    Histogram::new_with_bounds(1, MAX_MICROS, SIGNIFICANT_FIGURES)
        .expect("constant histogram bounds are valid")
}

fn micros(elapsed: Duration) -> u64 {
    u64::try_from(elapsed.as_micros())
        .unwrap_or(u64::MAX)
        .max(1)
}

/// What the recorded journeys of one or more virtual users came to.
#[derive(Debug, Clone)]
pub(crate) struct Recorder {
    /// Indexed by [`Step::index`]; a step's latency is recorded whenever the step
    /// succeeded, even if a later one failed.
    pub(crate) steps: Vec<Histogram<u64>>,
    /// Complete journeys only.
    pub(crate) journeys: Histogram<u64>,
    /// Complete journeys only: the sum of the steps the OP under test served
    /// ([`Step::served_by_op`]), the latency it added to the journey.
    pub(crate) at_op: Histogram<u64>,
    pub(crate) completed: u64,
    pub(crate) errors: BTreeMap<String, u64>,
    /// Open-loop runs: how late each journey started against its schedule, in
    /// microseconds (zero when on time), for every journey, completed or not.
    pub(crate) lags: Histogram<u64>,
}

impl Default for Recorder {
    fn default() -> Self {
        Self {
            steps: (0..Step::COUNT).map(|_| new_histogram()).collect(),
            journeys: new_histogram(),
            at_op: new_histogram(),
            completed: 0,
            errors: BTreeMap::new(),
            lags: new_histogram(),
        }
    }
}

impl Recorder {
    /// Records one journey: its successful steps' latencies, then its outcome.
    pub(crate) fn record(
        &mut self,
        steps: &[(Step, Duration)],
        outcome: &Result<(), Failure>,
        elapsed: Duration,
    ) {
        for (step, took) in steps {
            if let Some(histogram) = self.steps.get_mut(step.index()) {
                histogram.saturating_record(micros(*took));
            }
        }
        match outcome {
            Ok(()) => {
                self.completed += 1;
                self.journeys.saturating_record(micros(elapsed));
                let at_op = steps
                    .iter()
                    .filter(|(step, _)| step.served_by_op())
                    .map(|(_, took)| *took)
                    .sum();
                self.at_op.saturating_record(micros(at_op));
            }
            Err(failure) => *self.errors.entry(failure.to_string()).or_insert(0) += 1,
        }
    }

    /// Records how late a paced journey started.
    pub(crate) fn record_lag(&mut self, lag: Duration) {
        // Unlike latencies, zero is the expected value, so it is kept as zero.
        let micros = u64::try_from(lag.as_micros()).unwrap_or(u64::MAX);
        self.lags.saturating_record(micros);
    }

    /// Adds another user's figures to these.
    pub(crate) fn merge(&mut self, other: &Recorder) {
        for (mine, theirs) in self.steps.iter_mut().zip(&other.steps) {
            // Same bounds on both sides, so adding cannot fail.
            let _ = mine.add(theirs);
        }
        let _ = self.journeys.add(&other.journeys);
        let _ = self.at_op.add(&other.at_op);
        let _ = self.lags.add(&other.lags);
        self.completed += other.completed;
        for (kind, count) in &other.errors {
            *self.errors.entry(kind.clone()).or_insert(0) += count;
        }
    }

    pub(crate) fn failed(&self) -> u64 {
        self.errors.values().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_adds_samples_and_errors() {
        let mut a = Recorder::default();
        let steps = [(Step::Authorize, Duration::from_millis(2))];
        a.record(&steps, &Ok(()), Duration::from_millis(5));
        let mut b = Recorder::default();
        b.record(
            &steps,
            &Err(Failure::new(Step::Token, "invalid_client")),
            Duration::from_millis(3),
        );
        b.record(
            &[],
            &Err(Failure::new(Step::Authorize, "connect")),
            Duration::ZERO,
        );
        a.merge(&b);
        assert_eq!(a.completed, 1);
        assert_eq!(a.failed(), 2);
        assert_eq!(a.steps[Step::Authorize.index()].len(), 2);
        assert_eq!(a.journeys.len(), 1);
        assert_eq!(a.errors["token:invalid_client"], 1);
        let p50 = a.steps[Step::Authorize.index()].value_at_quantile(0.5);
        assert!((1995..=2005).contains(&p50), "{p50}");
    }

    #[test]
    fn the_ops_share_of_a_journey_leaves_out_the_identity_providers_steps() {
        let mut r = Recorder::default();
        let steps = [
            (Step::Authorize, Duration::from_millis(2)),
            (Step::IdpLoginPage, Duration::from_millis(40)),
            (Step::IdpLogin, Duration::from_millis(50)),
            (Step::Callback, Duration::from_millis(7)),
        ];
        r.record(&steps, &Ok(()), Duration::from_millis(100));
        r.record(
            &steps,
            &Err(Failure::new(Step::Token, "invalid_grant")),
            Duration::from_millis(100),
        );
        assert_eq!(r.at_op.len(), 1, "failed journeys are not counted");
        let p50 = r.at_op.value_at_quantile(0.5);
        assert!((8_990..=9_010).contains(&p50), "{p50}");
    }

    #[test]
    fn lags_of_zero_are_kept_and_merged() {
        let mut a = Recorder::default();
        a.record_lag(Duration::ZERO);
        let mut b = Recorder::default();
        b.record_lag(Duration::from_millis(12));
        a.merge(&b);
        assert_eq!(a.lags.len(), 2);
        assert_eq!(a.lags.min(), 0);
        assert!(
            (11_990..=12_010).contains(&a.lags.max()),
            "{}",
            a.lags.max()
        );
    }
}
