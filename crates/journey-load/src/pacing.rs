//! Open-loop arrivals (`--rate R`). In a closed loop a slower server is offered less load
//! (each user waits for its journey to end before starting the next), which hides queueing
//! from the latencies. Here journey starts follow one schedule shared by every virtual
//! user, start `i` due at `t0 + i/R`, so the offered load holds whatever the server does;
//! a start that no user was free to make on time starts late, and that lateness (the
//! schedule lag) is recorded so a reader can tell whether the generator kept up.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// One phase's schedule of journey starts (warmup and measured window have one each).
#[derive(Debug)]
pub(crate) struct Schedule {
    /// Starts per second, finite and positive (checked by [`crate::run`]).
    rate: f64,
    /// The next start no user has claimed yet.
    next: AtomicU64,
}

impl Schedule {
    pub(crate) fn new(rate: f64) -> Self {
        Self {
            rate,
            next: AtomicU64::new(0),
        }
    }

    /// Claims the next start of the schedule that began at `t0` and returns when it is
    /// due; `None` when it falls at or after `deadline` (the phase is over) or beyond what
    /// the clock can represent. A user claims only when it is free, so at most one start
    /// per user is claimed ahead of time.
    pub(crate) fn claim(&self, t0: Instant, deadline: Option<Instant>) -> Option<Instant> {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        let offset = Duration::try_from_secs_f64(i as f64 / self.rate).ok()?;
        let due = t0.checked_add(offset)?;
        match deadline {
            Some(end) if due >= end => None,
            _ => Some(due),
        }
    }
}

/// Waits until `due`; returns how late the start is (zero if on time).
pub(crate) async fn start_at(due: Instant) -> Duration {
    if due > Instant::now() {
        tokio::time::sleep_until(due.into()).await;
    }
    Instant::now().saturating_duration_since(due)
}

/// Whether `rate` can pace a run: a finite number of journeys per second above zero.
pub(crate) fn is_valid_rate(rate: f64) -> bool {
    rate.is_finite() && rate > 0.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_are_due_every_one_over_rate_until_the_deadline() {
        let schedule = Schedule::new(20.0);
        let t0 = Instant::now();
        let end = t0 + Duration::from_secs(1);
        let dues: Vec<Instant> = std::iter::from_fn(|| schedule.claim(t0, Some(end))).collect();
        assert_eq!(dues.len(), 20, "starts at 0, 50, ..., 950 ms");
        assert_eq!(dues[0], t0);
        assert_eq!(dues[3] - t0, Duration::from_millis(150));
        assert!(schedule.claim(t0, Some(end)).is_none(), "the phase is over");
    }

    #[test]
    fn without_a_deadline_the_schedule_goes_on() {
        let schedule = Schedule::new(1000.0);
        let t0 = Instant::now();
        let last = (0..5000).filter_map(|_| schedule.claim(t0, None)).last();
        assert_eq!(
            last.map(|due| due - t0),
            Some(Duration::from_micros(4_999_000))
        );
    }

    #[tokio::test]
    async fn a_start_due_in_the_past_is_late_by_the_difference() {
        let due = Instant::now() - Duration::from_millis(30);
        let lag = start_at(due).await;
        assert!(lag >= Duration::from_millis(30), "{lag:?}");
        let lag = start_at(Instant::now() + Duration::from_millis(5)).await;
        assert!(lag < Duration::from_millis(30), "{lag:?}");
    }

    #[test]
    fn only_finite_positive_rates_pace() {
        assert!(is_valid_rate(150.0) && is_valid_rate(0.5));
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(!is_valid_rate(bad), "{bad}");
        }
    }
}
