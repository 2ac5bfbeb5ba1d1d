//! Liveness, readiness and metrics for load balancers, orchestrators and Prometheus.

use actix_web::{web, HttpResponse};
use serde_json::json;

use std::sync::Arc;

use store::{Database, SessionStore};

use crate::metrics::Metrics;

/// What readiness and metrics look at: the stores a journey cannot finish without.
#[derive(Clone)]
pub(crate) struct Backends {
    pub(crate) db: Database,
    pub(crate) sessions: Arc<dyn SessionStore>,
}

/// The process is up.
pub(crate) async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

fn state(result: &Result<(), store::StoreError>, dependency: &str) -> &'static str {
    match result {
        Ok(()) => "ok",
        Err(e) => {
            tracing::warn!(error = %e, dependency, "not ready");
            "unreachable"
        }
    }
}

/// The hub can reach what it needs to finish journeys: the database and the session store.
pub(crate) async fn readyz(backends: web::Data<Backends>) -> HttpResponse {
    let (db, sessions) = tokio::join!(backends.db.ping(), backends.sessions.ping());
    let ready = db.is_ok() && sessions.is_ok();
    let body = json!({
        "status": if ready { "ready" } else { "unavailable" },
        "database": state(&db, "database"),
        "sessions": state(&sessions, "sessions"),
    });
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// Prometheus text exposition.
pub(crate) async fn metrics(
    backends: web::Data<Backends>,
    metrics: web::Data<Metrics>,
) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(metrics.render(backends.db.pool_state()))
}
