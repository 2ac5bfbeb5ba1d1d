//! Back-pressure. An instance works on at most `server.max_in_flight` requests at once;
//! connections beyond that wait in the listen backlog and the workers' queues, and a
//! request arriving while every slot is taken is answered at once with 503 and
//! `Retry-After`, rather than queued behind work the hub cannot finish in time. Nothing
//! has been done for a shed request, so a retry is always safe; requests already in
//! flight complete, with their audit events, unaffected.

use std::sync::Arc;

use actix_web::body::BoxBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse, ResponseError};
use serde_json::json;
use tokio::sync::Semaphore;

use crate::web_edge::error_pages::PageError;

/// Seconds a shed client is asked to wait.
const RETRY_AFTER_SECS: &str = "1";

/// The request slots of one instance.
#[derive(Debug)]
pub(crate) struct InFlight {
    slots: Arc<Semaphore>,
}

impl InFlight {
    pub(crate) fn new(max_in_flight: usize) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(max_in_flight.max(1))),
        }
    }
}

/// Probes and metrics always answer, so that an overloaded instance is seen as alive and
/// busy rather than dead. So do the hub's key set and metadata, served from memory: peers
/// need them to finish journeys already in flight (an IdP checks the hub's client
/// assertion against `/jwks` before it answers the callback's code exchange; an RP checks
/// the ID token), and shedding them turned those journeys into failures.
fn exempt(path: &str) -> bool {
    matches!(
        path,
        "/healthz" | "/readyz" | "/metrics" | "/jwks" | "/.well-known/openid-configuration"
    )
}

/// Whether the caller is a program expecting an OAuth JSON error rather than a page.
fn wants_json(path: &str) -> bool {
    matches!(path, "/token" | "/par" | "/userinfo" | "/jwks") || path.starts_with("/audit/")
}

/// Holds a slot for the request's whole handling, or sheds it.
pub(crate) async fn shed(
    req: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(in_flight) = req.app_data::<web::Data<InFlight>>().cloned() else {
        return next.call(req).await;
    };
    if exempt(req.path()) {
        return next.call(req).await;
    }
    let Ok(slot) = in_flight.slots.clone().try_acquire_owned() else {
        tracing::warn!(path = req.path(), "overloaded: request shed with 503");
        let mut response = if wants_json(req.path()) {
            HttpResponse::ServiceUnavailable().json(json!({
                "error": "temporarily_unavailable",
                "error_description": "The hub is busy; try again shortly",
            }))
        } else {
            PageError::Unavailable.error_response()
        };
        let headers = response.headers_mut();
        headers.insert(
            actix_web::http::header::RETRY_AFTER,
            actix_web::http::header::HeaderValue::from_static(RETRY_AFTER_SECS),
        );
        headers.insert(
            actix_web::http::header::CACHE_CONTROL,
            actix_web::http::header::HeaderValue::from_static("no-store"),
        );
        return Ok(req.into_response(response));
    };
    let response = next.call(req).await;
    drop(slot);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_are_never_shed_and_apis_get_json() {
        assert!(exempt("/healthz") && exempt("/readyz") && exempt("/metrics"));
        assert!(exempt("/jwks") && exempt("/.well-known/openid-configuration"));
        assert!(!exempt("/authorize") && !exempt("/token") && !exempt("/idp/callback"));
        assert!(wants_json("/token") && wants_json("/audit/v1/events"));
        assert!(!wants_json("/idp/callback"));
    }
}
