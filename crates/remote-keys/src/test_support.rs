//! A JWKS endpoint a test controls, and tokens to check against it: for the tests of this
//! crate and of the crates that use it (feature `test-support`).

#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex as StdMutex;
use std::time::Duration;

use actix_web::{web, App, HttpResponse, HttpServer};
use url::Url;

use crate::JwksTiming;

/// A JWKS endpoint the test controls: the document (or a 500 when `None`), the
/// `Cache-Control` header, and a count of fetches.
#[derive(Debug, Default)]
pub struct Published {
    pub jwks: StdMutex<Option<serde_json::Value>>,
    pub cache_control: StdMutex<Option<String>>,
    pub fetches: AtomicUsize,
}

async fn serve(published: web::Data<Published>) -> HttpResponse {
    published.fetches.fetch_add(1, Ordering::SeqCst);
    let jwks = published.jwks.lock().unwrap().clone();
    let cache_control = published.cache_control.lock().unwrap().clone();
    match jwks {
        Some(jwks) => {
            let mut r = HttpResponse::Ok();
            if let Some(cc) = cache_control {
                r.insert_header(("cache-control", cc));
            }
            r.json(jwks)
        }
        None => HttpResponse::InternalServerError().finish(),
    }
}

/// Serves `published` at `http://127.0.0.1:{port}/jwks` (on the running Tokio runtime).
pub fn start(published: web::Data<Published>) -> Url {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = Url::parse(&format!("http://{}/jwks", listener.local_addr().unwrap())).unwrap();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(published.clone())
            .route("/jwks", web::get().to(serve))
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    url
}

/// Timing for tests: max-age bounds of 1 ms to 1 h, unknown kids refetched at most once
/// per `min_refetch_ms`.
pub fn timing(min_refetch_ms: u64) -> JwksTiming {
    JwksTiming {
        default_max_age: Duration::from_secs(3600),
        min_max_age: Duration::from_millis(1),
        max_max_age: Duration::from_secs(3600),
        min_refetch: Duration::from_millis(min_refetch_ms),
    }
}

/// A token signed by `key` that expires in 2096.
pub fn signed_by(key: &token::SigningKey) -> String {
    key.sign(&serde_json::json!({"exp": 4_000_000_000u64}))
        .unwrap()
}

/// Expects nothing of the claims.
pub const ANY: token::Expect = token::Expect {
    issuer: None,
    audience: Vec::new(),
    leeway_secs: 0,
};
