//! Prometheus metrics served at `/metrics`: journeys by outcome, latency of each step
//! (HTTP route), identity provider calls and errors, verification-log appends, database
//! pool usage, and when keys and certificates expire. `ops/` (the Grafana dashboard and
//! the alert rules) queries these names; `tests/ops_kit.rs` keeps the two in step.

use std::time::Instant;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// The prefix of every metric name.
const NAMESPACE: &str = "hub";

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
    audit_append: Histogram,
    audit_failures: IntCounter,
    pool: IntGaugeVec,
    pool_max: IntGauge,
    expiry: IntGaugeVec,
}

const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// One series the hub can expose: its full name and label names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Series {
    pub name: String,
    pub labels: Vec<String>,
}

/// What the verification log's writer reports for each batch it appends.
#[derive(Debug, Clone)]
pub struct AuditAppendMetrics {
    duration: Histogram,
    failures: IntCounter,
}

impl AuditAppendMetrics {
    /// A batch append that began at `started` ended, durable or `failed`.
    pub(crate) fn appended(&self, started: Instant, failed: bool) {
        self.duration.observe(started.elapsed().as_secs_f64());
        if failed {
            self.failures.inc();
        }
    }
}

impl Metrics {
    /// Creates and registers every metric; infallible for these static definitions.
    pub fn new() -> Self {
        let metrics = match Self::define() {
            Ok(metrics) => metrics,
            Err(e) => unreachable!("static metric definitions are valid: {e}"),
        };
        for collector in metrics.collectors() {
            if let Err(e) = metrics.registry.register(collector) {
                tracing::error!(error = %e, "metric registration failed");
            }
        }
        metrics
    }

    fn define() -> prometheus::Result<Self> {
        let registry = Registry::new_custom(Some(NAMESPACE.into()), None).unwrap_or_default();
        let latency = |name: &str, help: &str| {
            HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec())
        };
        Ok(Self {
            registry,
            journeys: IntCounterVec::new(
                Opts::new(
                    "journeys_total",
                    "Journeys ended, by outcome (matched, created, no_match or a failure reason)",
                ),
                &["outcome"],
            )?,
            requests: HistogramVec::new(
                latency(
                    "http_request_duration_seconds",
                    "Time to answer each journey step, by route",
                ),
                &["route", "method", "status"],
            )?,
            idp_calls: HistogramVec::new(
                latency(
                    "idp_request_duration_seconds",
                    "Calls to identity providers, by operation",
                ),
                &["idp", "operation"],
            )?,
            idp_errors: IntCounterVec::new(
                Opts::new(
                    "idp_errors_total",
                    "Failed calls to identity providers, by kind",
                ),
                &["idp", "kind"],
            )?,
            idp_circuit: IntGaugeVec::new(
                Opts::new(
                    "idp_circuit_state",
                    "Circuit breaker of each identity provider: 0 closed, 1 open, 2 half-open",
                ),
                &["idp"],
            )?,
            idp_refused: IntCounterVec::new(
                Opts::new(
                    "idp_calls_refused_total",
                    "Calls to identity providers refused by an open circuit breaker",
                ),
                &["idp"],
            )?,
            audit_append: Histogram::with_opts(latency(
                "audit_append_duration_seconds",
                "Time to append one batch of events to the verification log (until durable)",
            ))?,
            audit_failures: IntCounter::new(
                "audit_append_failures_total",
                "Batches the verification log could not append (their steps failed closed)",
            )?,
            pool: IntGaugeVec::new(
                Opts::new("db_pool_connections", "Database pool connections, by state"),
                &["state"],
            )?,
            pool_max: IntGauge::new(
                "db_pool_max_connections",
                "Most database connections this instance may open (database.max_connections)",
            )?,
            expiry: IntGaugeVec::new(
                Opts::new(
                    "expiry_timestamp_seconds",
                    "When a key or certificate expires or is due for rotation (Unix time)",
                ),
                &["kind", "subject"],
            )?,
        })
    }

    fn collectors(&self) -> Vec<Box<dyn prometheus::core::Collector>> {
        vec![
            Box::new(self.journeys.clone()),
            Box::new(self.requests.clone()),
            Box::new(self.idp_calls.clone()),
            Box::new(self.idp_errors.clone()),
            Box::new(self.idp_circuit.clone()),
            Box::new(self.idp_refused.clone()),
            Box::new(self.audit_append.clone()),
            Box::new(self.audit_failures.clone()),
            Box::new(self.pool.clone()),
            Box::new(self.pool_max.clone()),
            Box::new(self.expiry.clone()),
        ]
    }

    /// Every series this registry can expose, whether or not it has values yet
    /// (histograms as their `_bucket`, `_sum` and `_count` series), with its label
    /// names, so that what queries them (the dashboard and alert rules under `ops/`) can
    /// be checked against the code.
    pub fn series(&self) -> Vec<Series> {
        let mut series = Vec::new();
        for collector in self.collectors() {
            let labels: Vec<String> = collector
                .desc()
                .iter()
                .flat_map(|d| d.variable_labels.iter().cloned())
                .collect();
            for family in collector.collect() {
                let name = format!("{NAMESPACE}_{}", family.name());
                let histogram = family.get_field_type() == prometheus::proto::MetricType::HISTOGRAM;
                if !histogram {
                    series.push(Series {
                        name,
                        labels: labels.clone(),
                    });
                    continue;
                }
                for suffix in ["_bucket", "_sum", "_count"] {
                    let mut labels = labels.clone();
                    if suffix == "_bucket" {
                        labels.push("le".into());
                    }
                    series.push(Series {
                        name: format!("{name}{suffix}"),
                        labels,
                    });
                }
            }
        }
        series.sort_by(|a, b| a.name.cmp(&b.name));
        series
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

    /// The histogram and counter of the verification log's appends.
    pub(crate) fn audit_append(&self) -> AuditAppendMetrics {
        AuditAppendMetrics {
            duration: self.audit_append.clone(),
            failures: self.audit_failures.clone(),
        }
    }

    /// The most connections this instance may open (for pool saturation).
    pub(crate) fn pool_capacity(&self, max_connections: u32) {
        self.pool_max.set(i64::from(max_connections));
    }

    /// The gauge of expiry times, by kind and subject (`crate::expiry`).
    pub(crate) fn expiry_gauge(&self) -> IntGaugeVec {
        self.expiry.clone()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_names_include_every_metric_and_each_histogram_series() {
        let series = Metrics::new().series();
        let find = |name: &str| series.iter().find(|s| s.name == name);
        let bucket = find("hub_audit_append_duration_seconds_bucket").expect("bucket");
        assert_eq!(bucket.labels, ["le"]);
        assert!(find("hub_audit_append_duration_seconds_count").is_some());
        assert!(find("hub_audit_append_duration_seconds").is_none());
        let expiry = find("hub_expiry_timestamp_seconds").expect("expiry gauge");
        assert_eq!(expiry.labels, ["kind", "subject"]);
        let requests = find("hub_http_request_duration_seconds_bucket").expect("requests");
        assert_eq!(requests.labels, ["route", "method", "status", "le"]);
        assert!(find("hub_journeys_total").is_some());
    }
}
