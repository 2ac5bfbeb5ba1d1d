//! Limits: request rates per source address and per client, request size, slow clients,
//! slow and dead identity providers (timeouts and the circuit breaker).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::util::*;

async fn hub_with(settings: Value) -> TestHub {
    spawn_hub_with(Options {
        settings: Some(settings),
        ..Default::default()
    })
    .await
}

fn retry_after(response: &reqwest::Response) -> u64 {
    response
        .headers()
        .get("retry-after")
        .expect("Retry-After")
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn authorize_is_limited_per_source_address_with_a_page_and_retry_after() {
    let hub = hub_with(json!({"rate_limits": {"per_ip_per_minute": 1, "per_ip_burst": 3}})).await;
    for _ in 0..3 {
        let response = hub
            .http
            .get(AuthRequest::new(RP_MATCH).url(&hub))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    let refused = hub
        .http
        .get(AuthRequest::new(RP_CREATE).url(&hub))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait = retry_after(&refused);
    assert!((1..=60).contains(&wait), "Retry-After {wait}");
    assert!(refused
        .headers()
        .get("content-type")
        .is_some_and(|c| c.to_str().unwrap().starts_with("text/html")));
    assert!(refused.text().await.unwrap().contains("too many attempts"));

    // Each endpoint has its own budget per address; other routes have none.
    let (status, body) = hub.redeem(RP_MATCH, &secret_of(RP_MATCH), "x", "y").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    for _ in 0..5 {
        let jwks = hub.http.get(format!("{}/jwks", hub.url)).send().await;
        assert_eq!(jwks.unwrap().status(), StatusCode::OK);
    }
}

#[tokio::test]
async fn token_is_limited_per_client_with_an_oauth_error() {
    let hub =
        hub_with(json!({"rate_limits": {"per_client_per_minute": 1, "per_client_burst": 2}})).await;
    for _ in 0..2 {
        let (status, body) = hub.redeem(RP_MATCH, &secret_of(RP_MATCH), "x", "y").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"], "invalid_grant");
    }
    let refused = hub
        .http
        .post(format!("{}/token", hub.url))
        .basic_auth(RP_MATCH, Some(secret_of(RP_MATCH)))
        .form(&[("grant_type", "authorization_code"), ("code", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(retry_after(&refused) >= 1);
    assert_eq!(refused.headers().get("cache-control").unwrap(), "no-store");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");

    // Another client has its own budget.
    let (status, _) = hub.redeem(RP_CREATE, &secret_of(RP_CREATE), "x", "y").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // A client named only in the form (private_key_jwt) is counted too, and the handler
    // still reads the whole form after the limiter did.
    let jwt_token = |jti: &str| {
        let assertion = hub.client_assertion(jti);
        hub.http
            .post(format!("{}/token", hub.url))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", "x"),
                ("redirect_uri", TEST_RP_CALLBACK),
                ("code_verifier", "y"),
                ("client_id", RP_JWT),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", &assertion),
            ])
            .send()
    };
    for jti in ["a", "b"] {
        let response = jwt_token(jti).await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            body["error"], "invalid_grant",
            "authenticated, then the code"
        );
    }
    let response = jwt_token("c").await.unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);

    // Names that are not registered get no bucket: only the address limit applies.
    for _ in 0..5 {
        let (status, body) = hub.redeem("nobody", "x", "x", "y").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    }
}

#[tokio::test]
async fn forwarded_for_is_believed_only_from_trusted_proxies() {
    let limits = json!({"per_ip_per_minute": 1, "per_ip_burst": 1});
    let authorize = |hub: &TestHub, from: &str| {
        hub.http
            .get(AuthRequest::new(RP_MATCH).url(hub))
            .header("x-forwarded-for", format!("198.51.100.77, {from}"))
            .send()
    };

    let behind_proxy = hub_with(json!({
        "rate_limits": limits,
        "server": {"trusted_proxies": ["127.0.0.0/8"]},
    }))
    .await;
    let first = authorize(&behind_proxy, "203.0.113.1").await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let other_citizen = authorize(&behind_proxy, "203.0.113.2").await.unwrap();
    assert_eq!(other_citizen.status(), StatusCode::OK, "a bucket each");
    let again = authorize(&behind_proxy, "203.0.113.1").await.unwrap();
    assert_eq!(again.status(), StatusCode::TOO_MANY_REQUESTS);

    let direct = hub_with(json!({"rate_limits": limits})).await;
    let first = authorize(&direct, "203.0.113.1").await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let spoofed = authorize(&direct, "203.0.113.2").await.unwrap();
    assert_eq!(
        spoofed.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "an untrusted peer cannot pick its own bucket"
    );
}

#[tokio::test]
async fn oversized_requests_are_refused_cleanly() {
    let hub = hub_with(json!({"server": {"max_header_bytes": 8192}})).await;
    let big_header = hub
        .http
        .get(format!("{}/healthz", hub.url))
        .header("x-padding", "a".repeat(10_000))
        .send()
        .await
        .unwrap();
    assert_eq!(
        big_header.status(),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    );
    // actix-http closes the connection after a head over 128 KiB: a client of its own.
    let huge_header = reqwest::Client::new()
        .get(format!("{}/healthz", hub.url))
        .header("x-padding", "a".repeat(200_000))
        .send()
        .await;
    if let Ok(response) = huge_header {
        assert_eq!(
            response.status(),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "or the connection is closed"
        );
    }

    let big_body = "code=".to_owned() + &"a".repeat(100_000);
    for path in ["/token", "/journey/idp", "/authorize"] {
        let response = hub
            .http
            .post(format!("{}{path}", hub.url))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(big_body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE, "{path}");
    }
}

#[tokio::test]
async fn deeply_nested_json_in_requests_is_refused_cleanly() {
    let hub = spawn_hub().await;
    let nested = "[".repeat(5000) + &"]".repeat(5000);
    let request = AuthRequest::new(RP_MATCH)
        .set("acr_values", None)
        .set("vtr", Some(&nested));
    let params = Browser::new().get(&request.url(&hub)).await.rp();
    assert_eq!(params["error"], "invalid_request");

    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let assertion = format!(
        "{}.{}.{}",
        b64(r#"{"alg":"ES256"}"#),
        b64(&format!(r#"{{"iss":"{RP_JWT}","x":{nested}}}"#)),
        b64("sig")
    );
    let response = hub
        .http
        .post(format!("{}/token", hub.url))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", "x"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", &assertion),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
}

#[tokio::test]
async fn a_client_that_sends_its_request_too_slowly_is_cut_off() {
    let hub = hub_with(json!({"server": {"client_request_timeout_ms": 300}})).await;
    let address = hub.url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHo")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .expect("the hub closes the connection");
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        read.is_err() || answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
}

/// An "identity provider" that accepts connections and closes them at once, counting them.
async fn dead_idp() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = connections.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    (url, connections)
}

/// An "identity provider" that accepts connections and never answers.
async fn silent_idp() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    url
}

fn idp_at(id: &str, issuer: &str) -> Value {
    json!({"id": id, "name": id, "issuer": issuer, "client_id": "hub",
           "token_endpoint_auth_method": "client_secret_basic", "client_secret": "x",
           "max_level": "P2"})
}

async fn hub_with_idp(idp: Value, settings: Value) -> TestHub {
    spawn_hub_on(
        free_listener().0,
        Options {
            settings: Some(settings),
            ..Default::default()
        },
        Extra {
            identity_providers: vec![idp],
            ..Default::default()
        },
    )
    .await
}

/// What the picker says of an identity provider that cannot be used right now.
const SHOWN_UNAVAILABLE: &str = "shown unavailable";

/// A journey sent straight to `idp`, then back to the service from the hub's page that
/// says the IdP is unavailable: the reason it ends with. While the IdP's breaker is open
/// the hint is not followed: the picker shows the IdP as unavailable
/// ([`SHOWN_UNAVAILABLE`]).
async fn journey_via(hub: &TestHub, idp: &str) -> String {
    let request = AuthRequest::new(RP_MATCH).set("idp_hint", Some(idp));
    let browser = Browser::new();
    let (status, url, page) = browser.get(&request.url(hub)).await.page();
    assert_eq!(status, StatusCode::OK);
    if page.contains("Not available right now") {
        assert!(!page.contains(&format!("value=\"{idp}\"")), "{page}");
        return SHOWN_UNAVAILABLE.into();
    }
    assert!(page.contains("is not available at the moment"), "{page}");
    let params = browser
        .back_to_service(Landing::Page {
            status,
            url,
            body: page,
        })
        .await
        .rp();
    assert_eq!(params["error"], "temporarily_unavailable");
    params["reason"].clone()
}

async fn metric(hub: &TestHub, series: &str) -> Option<f64> {
    let text = hub.get_text("/metrics").await;
    text.lines()
        .find_map(|l| l.strip_prefix(series))
        .and_then(|v| v.trim().parse().ok())
}

#[tokio::test]
async fn a_dead_idp_trips_the_breaker_and_is_then_not_called_at_all() {
    let (issuer, connections) = dead_idp().await;
    let hub = hub_with_idp(
        idp_at("idp-dead", &issuer),
        json!({"circuit_breaker": {"failure_threshold": 3, "window_secs": 60, "open_secs": 3600}}),
    )
    .await;
    let state = r#"hub_idp_circuit_state{idp="idp-dead"}"#;
    assert_eq!(metric(&hub, state).await, Some(0.0), "closed at start");
    for _ in 0..3 {
        assert_eq!(journey_via(&hub, "idp-dead").await, "idp_unavailable");
    }
    assert_eq!(metric(&hub, state).await, Some(1.0), "open");
    let tried = connections.load(Ordering::SeqCst);
    assert!(tried >= 3, "each failing journey tried the IdP: {tried}");

    for _ in 0..4 {
        assert_eq!(journey_via(&hub, "idp-dead").await, SHOWN_UNAVAILABLE);
    }
    assert_eq!(
        connections.load(Ordering::SeqCst),
        tried,
        "no connection while the breaker is open"
    );

    // Other IdPs are unaffected.
    let code = hub.code_for(&AuthRequest::new(RP_MATCH), "alice").await;
    assert!(!code.is_empty());
}

#[tokio::test]
async fn after_the_cool_down_one_trial_call_goes_through() {
    let (issuer, connections) = dead_idp().await;
    let hub = hub_with_idp(
        idp_at("idp-dead", &issuer),
        json!({"circuit_breaker": {"failure_threshold": 2, "window_secs": 60, "open_secs": 1}}),
    )
    .await;
    for _ in 0..2 {
        journey_via(&hub, "idp-dead").await;
    }
    let tripped = connections.load(Ordering::SeqCst);
    assert_eq!(journey_via(&hub, "idp-dead").await, SHOWN_UNAVAILABLE);
    assert_eq!(connections.load(Ordering::SeqCst), tripped, "open");

    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(journey_via(&hub, "idp-dead").await, "idp_unavailable");
    let after_trial = connections.load(Ordering::SeqCst);
    assert!(after_trial > tripped, "the trial call reached the IdP");
    assert_eq!(journey_via(&hub, "idp-dead").await, SHOWN_UNAVAILABLE);
    assert_eq!(
        connections.load(Ordering::SeqCst),
        after_trial,
        "the failed trial opened the breaker again"
    );
}

#[tokio::test]
async fn a_silent_idp_times_out_within_the_configured_time() {
    let issuer = silent_idp().await;
    let hub = hub_with_idp(
        idp_at("idp-silent", &issuer),
        json!({"journey": {"idp_timeout_secs": 1}}),
    )
    .await;
    let started = Instant::now();
    assert_eq!(journey_via(&hub, "idp-silent").await, "idp_unavailable");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "{took:?}"
    );
}

#[tokio::test]
async fn overload_is_met_with_503_and_retry_after_and_work_in_flight_completes() {
    // One slot, taken by a journey whose IdP never answers (until the 2 s timeout).
    let issuer = silent_idp().await;
    let hub = hub_with_idp(
        idp_at("idp-silent", &issuer),
        json!({"server": {"max_in_flight": 1}, "journey": {"idp_timeout_secs": 2}}),
    )
    .await;
    let request = AuthRequest::new(RP_MATCH).set("idp_hint", Some("idp-silent"));
    let busy = {
        let url = request.url(&hub);
        tokio::spawn(async move {
            let browser = Browser::new();
            let unavailable = browser.get(&url).await;
            browser.back_to_service(unavailable).await.rp()
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let picker = AuthRequest::new(RP_MATCH).url(&hub);
    let shed = hub.http.get(&picker).send().await.unwrap();
    assert_eq!(shed.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(retry_after(&shed), 1);
    let token = hub
        .http
        .post(format!("{}/token", hub.url))
        .form(&[("grant_type", "authorization_code")])
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = token.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    let health = hub
        .http
        .get(format!("{}/healthz", hub.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK, "probes are never shed");
    // Peers need the keys and metadata to finish journeys in flight.
    for path in ["/jwks", "/.well-known/openid-configuration"] {
        let served = hub
            .http
            .get(format!("{}{path}", hub.url))
            .send()
            .await
            .unwrap();
        assert_eq!(served.status(), StatusCode::OK, "{path} is never shed");
    }
    // The journey in flight was not harmed: it ends as it would have, with its events.
    let params = busy.await.unwrap();
    assert_eq!(params["reason"], "idp_unavailable", "{params:?}");
    let again = hub.http.get(&picker).send().await.unwrap();
    assert_eq!(
        again.status(),
        StatusCode::OK,
        "served again once the slot is free"
    );
}
