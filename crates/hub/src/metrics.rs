//! Prometheus metrics served at `/metrics`: journeys by outcome, latency of each step
//! (HTTP route), identity provider calls and errors, database pool usage.

use std::time::Instant;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// The hub's metrics, registered in their own registry (no global state).
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    journeys: IntCounterVec,
    requests: HistogramVec,
    idp_calls: HistogramVec,
    idp_errors: IntCounterVec,
    idp_circuit: IntGaugeVec,
    idp_refused: IntCounterVec,
    pool: IntGaugeVec,
}

const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

impl Metrics {
    /// Creates and registers every metric; infallible for these static definitions.
    pub fn new() -> Self {
        let registry = Registry::new_custom(Some("hub".into()), None).unwrap_or_default();
        let journeys = IntCounterVec::new(
            Opts::new(
                "journeys_total",
                "Journeys ended, by outcome (matched, created, no_match or a failure reason)",
            ),
            &["outcome"],
        );
        let requests = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "Time to answer each journey step, by route",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["route", "method", "status"],
        );
        let idp_calls = HistogramVec::new(
            HistogramOpts::new(
                "idp_request_duration_seconds",
                "Calls to identity providers, by operation",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["idp", "operation"],
        );
        let idp_errors = IntCounterVec::new(
            Opts::new(
                "idp_errors_total",
                "Failed calls to identity providers, by kind",
            ),
            &["idp", "kind"],
        );
        let pool = IntGaugeVec::new(
            Opts::new("db_pool_connections", "Database pool connections, by state"),
            &["state"],
        );
        let idp_circuit = IntGaugeVec::new(
            Opts::new(
                "idp_circuit_state",
                "Circuit breaker of each identity provider: 0 closed, 1 open, 2 half-open",
            ),
            &["idp"],
        );
        let idp_refused = IntCounterVec::new(
            Opts::new(
                "idp_calls_refused_total",
                "Calls to identity providers refused by an open circuit breaker",
            ),
            &["idp"],
        );
        let metrics = match (
            journeys,
            requests,
            idp_calls,
            idp_errors,
            idp_circuit,
            idp_refused,
            pool,
        ) {
            (
                Ok(journeys),
                Ok(requests),
                Ok(idp_calls),
                Ok(idp_errors),
                Ok(idp_circuit),
                Ok(idp_refused),
                Ok(pool),
            ) => Self {
                registry,
                journeys,
                requests,
                idp_calls,
                idp_errors,
                idp_circuit,
                idp_refused,
                pool,
            },
            _ => unreachable!("static metric definitions are valid"),
        };
        for collector in metrics.collectors() {
            if let Err(e) = metrics.registry.register(collector) {
                tracing::error!(error = %e, "metric registration failed");
            }
        }
        metrics
    }

    fn collectors(&self) -> Vec<Box<dyn prometheus::core::Collector>> {
        vec![
            Box::new(self.journeys.clone()),
            Box::new(self.requests.clone()),
            Box::new(self.idp_calls.clone()),
            Box::new(self.idp_errors.clone()),
            Box::new(self.idp_circuit.clone()),
            Box::new(self.idp_refused.clone()),
            Box::new(self.pool.clone()),
        ]
    }

    /// A journey ended with `outcome`.
    pub fn journey_ended(&self, outcome: &str) {
        self.journeys.with_label_values(&[outcome]).inc();
    }

    /// An HTTP request to `route` took `started.elapsed()`.
    pub fn request(&self, route: &str, method: &str, status: u16, started: Instant) {
        self.requests
            .with_label_values(&[route, method, &status.to_string()])
            .observe(started.elapsed().as_secs_f64());
    }

    /// A call to an identity provider finished.
    pub fn idp_call(&self, idp: &str, operation: &str, started: Instant, error: Option<&str>) {
        self.idp_calls
            .with_label_values(&[idp, operation])
            .observe(started.elapsed().as_secs_f64());
        if let Some(kind) = error {
            self.idp_errors.with_label_values(&[idp, kind]).inc();
        }
    }

    /// The gauge and counter of `idp`'s circuit breaker.
    pub(crate) fn idp_breaker(
        &self,
        idp: &str,
    ) -> crate::identity_provider::breaker::BreakerMetrics {
        crate::identity_provider::breaker::BreakerMetrics {
            state: self.idp_circuit.with_label_values(&[idp]),
            refused: self.idp_refused.with_label_values(&[idp]),
        }
    }

    /// The text exposition format, with the pool gauges read now.
    pub fn render(&self, pool: store::PoolState) -> String {
        self.pool
            .with_label_values(&["open"])
            .set(i64::from(pool.connections));
        self.pool
            .with_label_values(&["idle"])
            .set(i64::from(pool.idle));
        let mut buffer = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut buffer) {
            tracing::error!(error = %e, "metrics encoding failed");
        }
        String::from_utf8(buffer).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
