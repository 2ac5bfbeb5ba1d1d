//! A circuit breaker per identity provider.
//!
//! When an IdP is down, every journey that reaches it would hold a worker for the whole
//! call timeout before failing. After `failure_threshold` consecutive calls found it
//! unavailable (within `window_secs`), the breaker opens: for `open_secs` the hub does not
//! call that IdP at all and journeys fail at once with `idp_unavailable`. Then it is
//! half-open: one trial call goes through; success closes it, failure opens it again.
//!
//! Only "unavailable" outcomes (unreachable, timed out, 5xx) count as failures: an IdP that
//! answers with something the hub refuses is up, and the journey's own error says why.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use prometheus::{IntCounter, IntGauge};

use crate::config::CircuitBreakerSettings;

/// The breaker refuses calls for now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("circuit open: the identity provider failed repeatedly and is not being called")]
pub(crate) struct CircuitOpen;

/// Where a breaker is, as exported in `hub_idp_circuit_state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Calls go through; `failures` consecutive failures since `since`.
    Closed { failures: u32, since: Instant },
    /// No calls until `until`.
    Open { until: Instant },
    /// One trial call is in flight; everything else is refused until it ends.
    HalfOpen,
}

impl State {
    fn gauge_value(self) -> i64 {
        match self {
            State::Closed { .. } => 0,
            State::Open { .. } => 1,
            State::HalfOpen => 2,
        }
    }
}

/// Prometheus handles for one IdP's breaker.
#[derive(Debug, Clone)]
pub(crate) struct BreakerMetrics {
    /// 0 closed, 1 open, 2 half-open.
    pub state: IntGauge,
    /// Calls refused without contacting the IdP.
    pub refused: IntCounter,
}

/// One IdP's breaker. Cheap to consult: one uncontended mutex per call.
#[derive(Debug)]
pub(crate) struct IdpBreaker {
    settings: CircuitBreakerSettings,
    state: Mutex<State>,
    metrics: Option<BreakerMetrics>,
}

/// Permission for one call. Report its outcome with [`Permit::finish`]; a permit dropped
/// unfinished (the request was cancelled) counts as neither success nor failure.
#[derive(Debug)]
#[must_use = "report the call's outcome with finish()"]
pub(crate) struct Permit<'a> {
    breaker: &'a IdpBreaker,
    trial: bool,
    finished: bool,
}

impl Permit<'_> {
    /// Records the call's outcome: `unavailable` when the IdP could not be used at all.
    pub(crate) fn finish(self, unavailable: bool) {
        self.finish_at(unavailable, Instant::now());
    }

    fn finish_at(mut self, unavailable: bool, now: Instant) {
        self.finished = true;
        self.breaker.record(self.trial, unavailable, now);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.finished && self.trial {
            // The trial never finished: let the next call try again.
            self.breaker.set(State::Open {
                until: Instant::now(),
            });
        }
    }
}

impl IdpBreaker {
    pub(crate) fn new(settings: CircuitBreakerSettings, metrics: Option<BreakerMetrics>) -> Self {
        let breaker = Self {
            settings,
            state: Mutex::new(State::Closed {
                failures: 0,
                since: Instant::now(),
            }),
            metrics,
        };
        if let Some(m) = &breaker.metrics {
            m.state.set(0);
        }
        breaker
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the state inconsistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set(&self, state: State) {
        *self.lock() = state;
        self.observe(state);
    }

    fn observe(&self, state: State) {
        if let Some(m) = &self.metrics {
            m.state.set(state.gauge_value());
        }
    }

    fn refused(&self) -> CircuitOpen {
        if let Some(m) = &self.metrics {
            m.refused.inc();
        }
        CircuitOpen
    }

    fn enabled(&self) -> bool {
        self.settings.failure_threshold > 0
    }

    /// Whether a call would be refused now, without taking the half-open trial: for steps
    /// that need no call themselves but should not send the citizen to a dead IdP.
    pub(crate) fn check(&self) -> Result<(), CircuitOpen> {
        self.check_at(Instant::now())
    }

    fn check_at(&self, now: Instant) -> Result<(), CircuitOpen> {
        match *self.lock() {
            State::Open { until } if now < until => Err(self.refused()),
            State::HalfOpen => Err(self.refused()),
            _ => Ok(()),
        }
    }

    /// Whether calls are refused now, without counting a refusal or taking the trial:
    /// what the picker shows (an IdP that is due its trial call is offered again).
    pub(crate) fn is_open(&self) -> bool {
        match *self.lock() {
            State::Open { until } => Instant::now() < until,
            State::HalfOpen => true,
            State::Closed { .. } => false,
        }
    }

    /// Asks to make one call.
    pub(crate) fn admit(&self) -> Result<Permit<'_>, CircuitOpen> {
        self.admit_at(Instant::now())
    }

    fn admit_at(&self, now: Instant) -> Result<Permit<'_>, CircuitOpen> {
        let mut state = self.lock();
        let trial = match *state {
            State::Closed { .. } => false,
            State::Open { until } if now >= until => {
                *state = State::HalfOpen;
                true
            }
            State::Open { .. } | State::HalfOpen => {
                drop(state);
                return Err(self.refused());
            }
        };
        let current = *state;
        drop(state);
        self.observe(current);
        Ok(Permit {
            breaker: self,
            trial,
            finished: false,
        })
    }

    fn record(&self, trial: bool, unavailable: bool, now: Instant) {
        if !self.enabled() {
            return;
        }
        let open = State::Open {
            until: now + Duration::from_secs(self.settings.open_secs),
        };
        let mut state = self.lock();
        let next = match (*state, unavailable) {
            (_, false) => State::Closed {
                failures: 0,
                since: now,
            },
            _ if trial => open,
            (State::Closed { failures, since }, true) => {
                let window = Duration::from_secs(self.settings.window_secs);
                let failures = if failures == 0 || now.duration_since(since) > window {
                    1
                } else {
                    failures + 1
                };
                let since = if failures == 1 { now } else { since };
                if failures >= self.settings.failure_threshold {
                    tracing::warn!(
                        failures,
                        open_secs = self.settings.open_secs,
                        "identity provider circuit opened"
                    );
                    open
                } else {
                    State::Closed { failures, since }
                }
            }
            // A call admitted before the breaker opened: it is open already.
            (other, true) => other,
        };
        *state = next;
        drop(state);
        self.observe(next);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(threshold: u32) -> IdpBreaker {
        IdpBreaker::new(
            CircuitBreakerSettings {
                failure_threshold: threshold,
                window_secs: 60,
                open_secs: 30,
            },
            None,
        )
    }

    fn fail(b: &IdpBreaker, now: Instant) {
        b.admit_at(now).unwrap().finish_at(true, now);
    }

    #[test]
    fn opens_after_threshold_consecutive_failures_and_refuses() {
        let b = breaker(3);
        let t0 = Instant::now();
        fail(&b, t0);
        fail(&b, t0);
        assert!(b.check_at(t0).is_ok());
        fail(&b, t0);
        assert_eq!(b.admit_at(t0).err(), Some(CircuitOpen));
        assert_eq!(b.check_at(t0 + Duration::from_secs(29)), Err(CircuitOpen));
    }

    #[test]
    fn a_success_resets_the_count() {
        let b = breaker(2);
        let t0 = Instant::now();
        fail(&b, t0);
        b.admit_at(t0).unwrap().finish(false);
        fail(&b, t0);
        assert!(b.admit_at(t0).is_ok());
    }

    #[test]
    fn failures_outside_the_window_start_a_new_count() {
        let b = breaker(2);
        let t0 = Instant::now();
        fail(&b, t0);
        fail(&b, t0 + Duration::from_secs(61));
        assert!(b.check_at(t0 + Duration::from_secs(61)).is_ok());
    }

    #[test]
    fn half_open_lets_exactly_one_trial_through() {
        let b = breaker(1);
        let t0 = Instant::now();
        fail(&b, t0);
        let later = t0 + Duration::from_secs(30);
        assert!(b.check_at(later).is_ok(), "cool-down over");
        let trial = b.admit_at(later).unwrap();
        assert!(trial.trial);
        assert_eq!(b.admit_at(later).err(), Some(CircuitOpen));
        trial.finish(false);
        assert!(b.admit_at(later).is_ok(), "a good trial closes it");
    }

    #[test]
    fn a_failed_trial_reopens() {
        let b = breaker(1);
        let t0 = Instant::now();
        fail(&b, t0);
        let later = t0 + Duration::from_secs(30);
        fail(&b, later);
        assert_eq!(
            b.check_at(later + Duration::from_secs(29)),
            Err(CircuitOpen)
        );
    }

    #[test]
    fn an_abandoned_trial_lets_the_next_call_try() {
        let b = breaker(1);
        let t0 = Instant::now();
        fail(&b, t0);
        let later = t0 + Duration::from_secs(30);
        drop(b.admit_at(later).unwrap());
        assert!(b.admit_at(Instant::now().max(later)).unwrap().trial);
    }

    #[test]
    fn threshold_zero_never_opens() {
        let b = breaker(0);
        let t0 = Instant::now();
        for _ in 0..10 {
            fail(&b, t0);
        }
        assert!(b.admit_at(t0).is_ok());
    }
}
