//! The HTTP edge: routes, and the single place where errors become responses.

mod admin_api;
pub(crate) mod assets;
mod audit_api;
pub(crate) mod authorization_request;
mod authorize;
pub(crate) mod browser_security;
mod discovery;
pub(crate) mod error_pages;
mod health;
mod journey_pages;
mod journey_steps;
pub(crate) mod language;
pub(crate) mod overload;
mod pages;
mod public_pages;
mod pushed_authorization;
pub(crate) mod rate_limit;
pub(crate) mod request_object;
pub(crate) mod request_shape;
pub(crate) mod server;
mod service_clients;
mod token_endpoint;
mod userinfo;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::error::{QueryPayloadError, UrlencodedError};
use std::time::Instant;

use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::{web, HttpRequest, HttpResponse};

pub(crate) use crate::clock::now;
use crate::config::{IdentityProviderSettings, RelyingPartySettings};
use crate::metrics::Metrics;
use crate::web_edge::browser_security::BrowserSecurity;
use crate::web_edge::error_pages::PageError;

/// Name of the cookie identifying a browser's session at the hub, over plain http.
pub(crate) const SESSION_COOKIE: &str = "hub_session";
/// Its name over https: browsers accept a `__Host-` cookie only if it is `Secure`, set by
/// this very host, for `/` and without `Domain`, so a sibling subdomain cannot plant or
/// shadow it (session fixation).
pub(crate) const SECURE_SESSION_COOKIE: &str = "__Host-hub_session";

pub(crate) fn session_cookie_name(secure: bool) -> &'static str {
    if secure {
        SECURE_SESSION_COOKIE
    } else {
        SESSION_COOKIE
    }
}

pub(crate) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/.well-known/openid-configuration",
        web::get().to(discovery::configuration),
    )
    .route("/jwks", web::get().to(discovery::jwks))
    .route("/assets/{name:.+}", web::get().to(assets::serve))
    .route("/", web::get().to(public_pages::start))
    .route("/accessibility", web::get().to(public_pages::accessibility))
    .route("/privacy", web::get().to(public_pages::privacy))
    .route("/cookies", web::get().to(public_pages::cookies))
    .route("/authorize", web::get().to(authorize::authorize_get))
    .route("/authorize", web::post().to(authorize::authorize_post))
    .route("/journey", web::get().to(journey_steps::show))
    .route(
        "/journey/no-account",
        web::get().to(journey_steps::no_account),
    )
    .route("/journey/idp", web::post().to(journey_steps::choose_idp))
    .route("/journey/cancel", web::post().to(journey_steps::cancel))
    .route(
        "/journey/cycle3",
        web::post().to(journey_steps::answer_cycle3),
    )
    .route("/idp/callback", web::get().to(journey_steps::idp_callback))
    .route("/par", web::post().to(pushed_authorization::push))
    .route("/token", web::post().to(token_endpoint::token))
    .route("/userinfo", web::get().to(userinfo::userinfo))
    .route("/userinfo", web::post().to(userinfo::userinfo))
    .route("/healthz", web::get().to(health::healthz))
    .route("/readyz", web::get().to(health::readyz))
    .route("/metrics", web::get().to(health::metrics))
    .service(
        web::scope("/audit/v1")
            .route("/events", web::get().to(audit_api::events))
            .route("/export.jsonl", web::get().to(audit_api::export_jsonl))
            .route("/export.csv", web::get().to(audit_api::export_csv))
            .route("/log", web::get().to(audit_api::log))
            .route("/checkpoint", web::get().to(audit_api::checkpoint))
            .route("/checkpoints", web::get().to(audit_api::checkpoints))
            .route("/proof/inclusion", web::get().to(audit_api::inclusion))
            .route("/proof/consistency", web::get().to(audit_api::consistency))
            .route("/openapi.json", web::get().to(audit_api::openapi)),
    )
    .service(
        web::scope("/admin/v1")
            .route("/openapi.json", web::get().to(admin_api::openapi))
            .service(admin_api::party_routes::<RelyingPartySettings>(
                "/relying-parties",
            ))
            .service(admin_api::party_routes::<IdentityProviderSettings>(
                "/identity-providers",
            )),
    )
    .default_service(web::to(not_found));
}

async fn not_found() -> Result<HttpResponse, PageError> {
    Err(PageError::NotFound)
}

pub(crate) fn form_error(err: UrlencodedError, _req: &HttpRequest) -> actix_web::Error {
    tracing::info!(error = %err, "rejected form body");
    match err {
        UrlencodedError::Overflow { .. } | UrlencodedError::UnknownLength => {
            actix_web::error::InternalError::from_response(
                err,
                HttpResponse::PayloadTooLarge().body("Request body too large."),
            )
            .into()
        }
        _ => PageError::BadRequest.into(),
    }
}

pub(crate) fn query_error(err: QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    tracing::info!(error = %err, "rejected query string");
    PageError::BadRequest.into()
}

/// Records each request's latency by route pattern (a journey step) in the metrics.
pub(crate) fn measure(
    req: ServiceRequest,
    srv: &(impl Service<ServiceRequest, Response = ServiceResponse, Error = actix_web::Error> + 'static),
) -> impl std::future::Future<Output = Result<ServiceResponse, actix_web::Error>> + 'static {
    let started = Instant::now();
    let metrics = req.app_data::<web::Data<Metrics>>().cloned();
    let method = req.method().to_string();
    let call = srv.call(req);
    async move {
        let res = call.await?;
        if let Some(metrics) = metrics {
            let route = res
                .request()
                .match_pattern()
                .unwrap_or_else(|| "unmatched".into());
            metrics.request(&route, &method, res.status().as_u16(), started);
        }
        Ok(res)
    }
}

/// The browser session id from the cookie, if any.
pub(crate) fn browser_session(req: &HttpRequest) -> Option<String> {
    let secure = secure_cookies(req);
    req.cookie(session_cookie_name(secure))
        .map(|c| c.value().to_owned())
        .filter(|v| !v.is_empty())
}

/// The session cookie: HttpOnly, SameSite=Lax (it must survive the top-level return
/// from the IdP), no Domain; Secure and `__Host-` prefixed when the hub is served over
/// https (browsers drop Secure cookies on plain http, as the demo and tests use).
pub(crate) fn session_cookie(req: &HttpRequest, value: String) -> Cookie<'static> {
    let secure = secure_cookies(req);
    Cookie::build(session_cookie_name(secure), value)
        .path("/")
        .http_only(true)
        .secure(secure)
        .same_site(SameSite::Lax)
        .finish()
}

/// A cookie kept for a year (a preference, not a session): this site only, HttpOnly,
/// SameSite=Lax, Secure over https.
pub(crate) fn lasting_cookie(name: &'static str, value: String, secure: bool) -> Cookie<'static> {
    Cookie::build(name, value)
        .path("/")
        .http_only(true)
        .secure(secure)
        .same_site(SameSite::Lax)
        .max_age(actix_web::cookie::time::Duration::days(365))
        .finish()
}

/// Whether the hub is served over https, so its cookies are `Secure`.
pub(crate) fn secure_cookies(req: &HttpRequest) -> bool {
    req.app_data::<web::Data<BrowserSecurity>>()
        .is_some_and(|security| security.secure_cookies())
}
