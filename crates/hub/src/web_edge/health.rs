//! Liveness, readiness and metrics for load balancers, orchestrators and Prometheus.

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::app::Hub;

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
pub(crate) async fn readyz(hub: web::Data<Hub>) -> HttpResponse {
    let (db, sessions) = tokio::join!(hub.db.ping(), hub.sessions.ping());
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
pub(crate) async fn metrics(hub: web::Data<Hub>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(hub.metrics.render(hub.db.pool_state()))
}
