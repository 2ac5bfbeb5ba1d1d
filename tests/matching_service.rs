//! Matching at a remote matching service (`hub matching-service`): journeys through it,
//! every way a response can be bad (each ends on `matching_unavailable`, audited, with
//! nothing issued), and the service refusing bad requests.

use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

use actix_web::{web, App, HttpResponse, HttpServer};
use base64::Engine;
use hub::Settings;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::util::*;

/// A relying party whose cycles 1 and 3 run at a matching service (asks for a NINO).
const RP_REMOTE: &str = "rp-remote";

fn bind() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let url = format!("http://{}", l.local_addr().expect("addr"));
    (l, url)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A real matching service on port 0 with its own SQLite database holding the demo records
/// for [`RP_REMOTE`].
struct Service {
    url: String,
    _dir: tempfile::TempDir,
}

/// Starts a matching service that trusts `hub_jwks` (a JWKS value, or a `jwks_uri`).
async fn spawn_service(hub_issuer: &str, hub_jwks: Value) -> Service {
    let (l, url) = bind();
    let dir = tempfile::tempdir().unwrap();
    let mut section = json!({
        "bind": "127.0.0.1:0",
        "public_url": url,
        "hub_issuer": hub_issuer,
        "relying_parties": [{"client_id": RP_REMOTE}],
        "max_body_bytes": 16384,
    });
    match hub_jwks {
        Value::String(uri) => section["hub_jwks_uri"] = json!(uri),
        jwks => section["hub_jwks"] = jwks,
    }
    let settings = Settings::load(None)
        .unwrap()
        .with(json!({
            "data": {"dir": dir.path()},
            "database": {"url": format!("sqlite://{}", dir.path().join("service.db").display())},
            "matching_service": section,
        }))
        .unwrap();
    let db = store::Database::open(&settings.database.url).await.unwrap();
    db.migrate().await.unwrap();
    let csv = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/demo-records.csv");
    let report = hub::records::import_file(&db, RP_REMOTE, &csv)
        .await
        .unwrap();
    assert!(report.rejected.is_empty());
    let config = settings.matching_service_config().unwrap();
    let app = matching_service::ServiceApp::build(&config, l)
        .await
        .unwrap();
    tokio::spawn(app.into_server());
    Service { url, _dir: dir }
}

/// A hub (on `hub_l`) whose [`RP_REMOTE`] matches at `remote` (the RP's `matching_service`).
/// The hub's own database has no records for that RP, so only the service can match.
async fn spawn_hub_matching_at(hub_l: TcpListener, remote: Value) -> TestHub {
    let issuer = format!("http://{}", hub_l.local_addr().unwrap());
    let data_dir = tempfile::tempdir().unwrap();
    let peers = start_peers(&issuer, false).await;
    let storage = storage_settings(Backend::of_this_run(), data_dir.path()).await;
    let mut settings = hub_settings(&peers, &issuer, data_dir.path(), storage, None);
    settings.relying_parties.push(
        serde_json::from_value(json!({
            "client_id": RP_REMOTE,
            "name": "Remote matching service",
            "redirect_uris": [TEST_RP_CALLBACK],
            "token_endpoint_auth_method": "client_secret_basic",
            "client_secret": secret_of(RP_REMOTE),
            "default_level": "P2",
            "cycle3_attribute": "nino",
            "matching_service": remote,
        }))
        .unwrap(),
    );
    settings.validate().unwrap();
    prepare_database(&settings).await;
    let database_url = settings.database.url.clone();
    let app = hub::Application::build(settings, hub_l).await.unwrap();
    tokio::spawn(app.into_server());
    peers.into_test_hub(issuer, data_dir, database_url)
}

/// A hub and a real matching service that know each other's keys by `jwks_uri`.
async fn hub_with_service() -> (TestHub, Service) {
    let (hub_l, issuer) = bind();
    let service = spawn_service(&issuer, json!(format!("{issuer}/jwks"))).await;
    let hub = spawn_hub_matching_at(
        hub_l,
        json!({"url": service.url, "jwks_uri": format!("{}/jwks", service.url)}),
    )
    .await;
    (hub, service)
}

/// The events of [`RP_REMOTE`]'s journeys, as an unrestricted auditor sees them.
async fn remote_rp_events(hub: &TestHub) -> Vec<Value> {
    let token = hub.auditor_token(AUDITOR_ALL, None).await;
    let (status, body) = hub
        .audit_get(&token, &format!("/events?rp={RP_REMOTE}&limit=1000"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    body["events"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_journey_matches_at_the_remote_service() {
    let (hub, _service) = hub_with_service().await;
    let claims = hub.id_token_for(RP_REMOTE, "alice").await;
    assert_eq!(
        claims["match"],
        json!({"status": "matched", "record_id": "123"})
    );
    let events = remote_rp_events(&hub).await;
    let matching = events
        .iter()
        .find(|e| e["type"] == "matching")
        .expect("matching event");
    assert_eq!(matching["match_cycle"], 1);
    assert_eq!(matching["outcome"], "match");
    // Cycle 0 stays in the hub: the second time, the stored link answers.
    let again = hub.id_token_for(RP_REMOTE, "alice").await;
    assert_eq!(again["match"]["record_id"], "123");
    let events = remote_rp_events(&hub).await;
    assert!(events
        .iter()
        .any(|e| e["type"] == "matching" && e["match_cycle"] == 0));
}

#[tokio::test]
async fn twins_are_told_apart_by_cycle3_at_the_remote_service() {
    let (hub, _service) = hub_with_service().await;
    let request = AuthRequest::new(RP_REMOTE);
    let params = hub.cycle3_journey(&request).await;
    let claims = hub
        .claims_for(RP_REMOTE, &params["code"], &request.verifier)
        .await;
    assert_eq!(
        claims["match"],
        json!({"status": "matched", "record_id": "C-202"})
    );
}

#[tokio::test]
async fn no_match_at_the_remote_service_is_no_match() {
    let (hub, _service) = hub_with_service().await;
    let browser = Browser::new();
    let (_, url, page) = hub
        .journey(&browser, &AuthRequest::new(RP_REMOTE), AtIdp::person("bob"))
        .await
        .page();
    let params = browser
        .submit(&url, &page, "/journey/cycle3", &[("action", "skip")])
        .await
        .rp();
    assert_eq!(params["reason"], "no_match");
}

// ---------------------------------------------------------------------------------------
// A fake service that answers badly, in one of several ways chosen by the URL path.

struct Fake {
    url: String,
    /// The JWKS the hub is told the service signs with.
    jwks: Value,
}

fn fake_response(mode: &str, request: &Value, key: &token::SigningKey) -> HttpResponse {
    let now = now();
    let claims = |outcome: &str, record: Value, in_response_to: &Value| {
        json!({"iss": request["aud"], "aud": request["iss"], "iat": now, "exp": now + 30,
               "in_response_to": in_response_to,
               "decision": {"id": null, "outcome": outcome, "record_id": record, "score": 40.0,
                            "reasons": ["fake"]}})
    };
    let good = claims("match", json!("123"), &request["jti"]);
    let jwt = |body: String| {
        HttpResponse::Ok()
            .content_type("application/jwt")
            .body(body)
    };
    match mode {
        "good" | "slow" => jwt(key.sign_typed(&good, "match-response+jwt").unwrap()),
        "tampered" => {
            // A genuine no_match, edited into a match: the signature no longer fits.
            let genuine = key
                .sign_typed(
                    &claims("no_match", Value::Null, &request["jti"]),
                    "match-response+jwt",
                )
                .unwrap();
            let parts: Vec<&str> = genuine.split('.').collect();
            let edited = b64(good.to_string().as_bytes());
            jwt(format!("{}.{}.{}", parts[0], edited, parts[2]))
        }
        "alg-none" => jwt(format!(
            "{}.{}.",
            b64(br#"{"alg":"none","typ":"match-response+jwt"}"#),
            b64(good.to_string().as_bytes())
        )),
        "plain-json" => HttpResponse::Ok().json(&good),
        "wrong-key" => {
            let other = token::SigningKey::generate().unwrap();
            jwt(other.sign_typed(&good, "match-response+jwt").unwrap())
        }
        "other-request" => jwt(key
            .sign_typed(
                &claims("match", json!("123"), &json!("an-older-request")),
                "match-response+jwt",
            )
            .unwrap()),
        "wrong-typ" => jwt(key.sign(&good).unwrap()),
        "error-status" => HttpResponse::ServiceUnavailable().finish(),
        _ => HttpResponse::NotFound().finish(),
    }
}

async fn spawn_fake() -> Fake {
    let (l, url) = bind();
    let key = web::Data::new(token::SigningKey::generate().unwrap());
    let jwks = key.jwks();
    let server = HttpServer::new(move || {
        App::new().app_data(key.clone()).route(
            "/{mode}/match",
            web::post().to(
                |mode: web::Path<String>, body: String, key: web::Data<token::SigningKey>| async move {
                    let request = jwt_payload(&body);
                    if mode.as_str() == "slow" {
                        tokio::time::sleep(Duration::from_secs(3)).await;
                    }
                    fake_response(&mode, &request, &key)
                },
            ),
        )
    })
    .workers(1)
    .listen(l)
    .unwrap()
    .run();
    tokio::spawn(server);
    Fake { url, jwks }
}

impl Fake {
    /// The hub's `matching_service` settings for the fake answering in `mode`.
    fn remote(&self, mode: &str) -> Value {
        json!({"url": format!("{}/{mode}", self.url), "jwks": self.jwks})
    }
}

/// Alice's journey at [`RP_REMOTE`] matching at `remote` must end at the RP with
/// `matching_unavailable`, audited with `reason`, and nothing issued.
async fn assert_matching_unavailable(remote: Value, reason: &str) {
    let (hub_l, _) = bind();
    let hub = spawn_hub_matching_at(hub_l, remote).await;
    let request = AuthRequest::new(RP_REMOTE);
    let params = hub
        .journey(&Browser::new(), &request, AtIdp::person("alice"))
        .await
        .rp();
    assert_eq!(params["error"], "temporarily_unavailable", "{params:?}");
    assert_eq!(params["reason"], "matching_unavailable");
    assert_eq!(params["state"], request.state);
    assert!(!params.contains_key("code"), "nothing issued");
    let events = remote_rp_events(&hub).await;
    let matching = events
        .iter()
        .find(|e| e["type"] == "matching")
        .unwrap_or_else(|| panic!("no matching event: {events:?}"));
    assert_eq!(matching["outcome"], "unavailable");
    assert_eq!(matching["match_cycle"], 1);
    assert_eq!(matching["reasons"], json!([reason]), "{matching}");
    assert!(events
        .iter()
        .any(|e| e["type"] == "journey_failed" && e["outcome"] == "matching_unavailable"));
    assert!(
        !events.iter().any(|e| e["type"] == "assertion_issued"),
        "{events:?}"
    );
}

#[tokio::test]
async fn the_fake_service_is_trusted_when_it_answers_properly() {
    // The control for the tests below: the same fake, answering properly, matches.
    let fake = spawn_fake().await;
    let (hub_l, _) = bind();
    let hub = spawn_hub_matching_at(hub_l, fake.remote("good")).await;
    let claims = hub.id_token_for(RP_REMOTE, "alice").await;
    assert_eq!(claims["match"]["record_id"], "123");
}

#[tokio::test]
async fn a_tampered_response_is_rejected() {
    let fake = spawn_fake().await;
    assert_matching_unavailable(fake.remote("tampered"), "matching_service:bad_signature").await;
}

#[tokio::test]
async fn an_unsigned_response_is_rejected() {
    let fake = spawn_fake().await;
    assert_matching_unavailable(
        fake.remote("alg-none"),
        "matching_service:disallowed_algorithm",
    )
    .await;
    let fake = spawn_fake().await;
    assert_matching_unavailable(fake.remote("plain-json"), "matching_service:malformed").await;
}

#[tokio::test]
async fn a_response_signed_by_another_key_is_rejected() {
    let fake = spawn_fake().await;
    assert_matching_unavailable(fake.remote("wrong-key"), "matching_service:unknown_key").await;
}

#[tokio::test]
async fn a_response_to_another_request_is_rejected() {
    let fake = spawn_fake().await;
    assert_matching_unavailable(
        fake.remote("other-request"),
        "matching_service:not_in_response_to_request",
    )
    .await;
    let fake = spawn_fake().await;
    assert_matching_unavailable(fake.remote("wrong-typ"), "matching_service:malformed").await;
}

#[tokio::test]
async fn the_service_down_slow_or_failing_ends_the_journey_cleanly() {
    let (closed, url) = bind();
    drop(closed);
    let jwks = token::SigningKey::generate().unwrap().jwks();
    assert_matching_unavailable(
        json!({"url": url, "jwks": jwks}),
        "matching_service:unreachable",
    )
    .await;
    let fake = spawn_fake().await;
    let mut slow = fake.remote("slow");
    slow["timeout_ms"] = json!(300);
    assert_matching_unavailable(slow, "matching_service:timeout").await;
    assert_matching_unavailable(fake.remote("error-status"), "matching_service:status=503").await;
}

// ---------------------------------------------------------------------------------------
// The service refuses requests that are not fresh, signed requests from the hub.

const HUB: &str = "https://hub.test";

struct Caller {
    key: token::SigningKey,
    service: Service,
    http: reqwest::Client,
}

impl Caller {
    async fn new() -> Self {
        let key = token::SigningKey::generate().unwrap();
        let service = spawn_service(HUB, key.jwks()).await;
        Self {
            key,
            service,
            http: reqwest::Client::new(),
        }
    }

    fn claims(&self, jti: &str) -> Value {
        let now = now();
        json!({"iss": HUB, "aud": self.service.url, "iat": now, "exp": now + 60, "jti": jti,
               "rp": RP_REMOTE, "cycle": 1,
               "dataset": {"first_name": "Alice", "surnames": ["Smith"], "date_of_birth": "1980-04-10",
                           "addresses": [{"postcode": "LS1 4AB", "current": true}]}})
    }

    fn sign(&self, claims: &Value) -> String {
        self.key.sign_typed(claims, "match-request+jwt").unwrap()
    }

    async fn post(&self, content_type: &str, body: String) -> (StatusCode, String) {
        let response = self
            .http
            .post(format!("{}/match", self.service.url))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        (response.status(), response.text().await.unwrap())
    }

    async fn send(&self, jws: String) -> (StatusCode, String) {
        self.post("application/jwt", jws).await
    }
}

fn error_code(body: &str) -> String {
    serde_json::from_str::<Value>(body).unwrap()["error"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn the_service_answers_a_signed_request_with_a_signed_decision() {
    let caller = Caller::new().await;
    let (status, body) = caller.send(caller.sign(&caller.claims("r-1"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let jwks: Value = caller
        .http
        .get(format!("{}/jwks", caller.service.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let keys = token::VerificationKeys::from_jwks(&jwks).unwrap();
    let claims: Value = keys
        .verify(
            &body,
            &token::Expect {
                issuer: Some(caller.service.url.clone()),
                audience: vec![HUB.into()],
                leeway_secs: 0,
            },
        )
        .unwrap();
    assert_eq!(claims["in_response_to"], "r-1");
    assert_eq!(claims["decision"]["outcome"], "match");
    assert_eq!(claims["decision"]["record_id"], "123");
    assert!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap() <= 60);
    let header = jwt_payload(&format!("x.{}", body.split('.').next().unwrap()));
    assert_eq!(header["typ"], "match-response+jwt");

    let health = caller
        .http
        .get(format!("{}/healthz", caller.service.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_service_refuses_unsigned_expired_misaddressed_and_replayed_requests() {
    let caller = Caller::new().await;
    let claims = caller.claims("r-2");

    // Unsigned: alg none, and plain JSON.
    let none = format!(
        "{}.{}.",
        b64(br#"{"alg":"none","typ":"match-request+jwt"}"#),
        b64(claims.to_string().as_bytes())
    );
    let (status, body) = caller.send(none).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(error_code(&body), "disallowed_algorithm");
    let (status, _) = caller.send(claims.to_string()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = caller.post("application/json", claims.to_string()).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // Signed by someone else.
    let stranger = token::SigningKey::generate().unwrap();
    let (status, _) = caller
        .send(stranger.sign_typed(&claims, "match-request+jwt").unwrap())
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Another kind of token from the hub's key.
    let (status, _) = caller.send(caller.key.sign(&claims).unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Expired, and living too long.
    let mut expired = caller.claims("r-3");
    expired["iat"] = json!(now() - 120);
    expired["exp"] = json!(now() - 60);
    let (status, body) = caller.send(caller.sign(&expired)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&body), "expired");
    let mut long = caller.claims("r-4");
    long["exp"] = json!(now() + 3600);
    let (status, body) = caller.send(caller.sign(&long)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&body), "lifetime");

    // Addressed to another service, or from another issuer.
    let mut wrong_aud = caller.claims("r-5");
    wrong_aud["aud"] = json!("https://other-service.test");
    let (status, body) = caller.send(caller.sign(&wrong_aud)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&body), "wrong_audience");
    let mut wrong_iss = caller.claims("r-6");
    wrong_iss["iss"] = json!("https://not-the-hub.test");
    let (status, _) = caller.send(caller.sign(&wrong_iss)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Replayed.
    let once = caller.sign(&caller.claims("r-7"));
    let (status, _) = caller.send(once.clone()).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = caller.send(once).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&body), "replayed");

    // Well signed but not answerable.
    let mut other_rp = caller.claims("r-8");
    other_rp["rp"] = json!("rp-unknown");
    let (status, _) = caller.send(caller.sign(&other_rp)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let mut bad_cycle = caller.claims("r-9");
    bad_cycle["cycle"] = json!(2);
    let (status, _) = caller.send(caller.sign(&bad_cycle)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let mut cycle3_without_value = caller.claims("r-10");
    cycle3_without_value["cycle"] = json!(3);
    let (status, _) = caller.send(caller.sign(&cycle3_without_value)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Too large.
    let (status, _) = caller.send("a".repeat(20_000)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}

/// Kills the child process it holds when dropped (a failed assertion must not leak it).
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_hub_binary_runs_a_matching_service() {
    let dir = tempfile::tempdir().unwrap();
    let (probe, url) = bind();
    drop(probe);
    let config = dir.path().join("matching.toml");
    let hub_key = token::SigningKey::generate().unwrap();
    std::fs::write(dir.path().join("hub-jwks.json"), hub_key.jwks().to_string()).unwrap();
    std::fs::write(
        &config,
        format!(
            r#"
[data]
dir = "{dir}"

[database]
url = "sqlite://{dir}/service.db"

[matching_service]
bind = "{bind}"
public_url = "{url}"
hub_issuer = "{HUB}"
hub_jwks_path = "{dir}/hub-jwks.json"

[[matching_service.relying_parties]]
client_id = "{RP_REMOTE}"
"#,
            dir = dir.path().display(),
            bind = url.trim_start_matches("http://"),
        ),
    )
    .unwrap();
    let hub = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_hub"))
            .arg("--config")
            .arg(&config)
            .args(args)
            .env_remove("HUB_CONFIG")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("run hub")
    };
    assert!(hub(&["migrate"]).wait().unwrap().success());
    let _service = Child(hub(&["matching-service"]));
    let http = reqwest::Client::new();
    let mut healthy = false;
    for _ in 0..100 {
        if let Ok(r) = http.get(format!("{url}/healthz")).send().await {
            healthy = r.status() == StatusCode::OK;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(healthy, "the matching service did not come up");
    let jwks: Value = http
        .get(format!("{url}/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    token::VerificationKeys::from_jwks(&jwks).unwrap();
    assert!(
        dir.path()
            .join("matching-service-keys/signing-key.p8")
            .exists(),
        "its own key, under data.dir"
    );
    // A request signed by the hub's key (trusted from the file) is answered.
    let now = now();
    let request = hub_key
        .sign_typed(
            &json!({"iss": HUB, "aud": url, "iat": now, "exp": now + 60, "jti": "cli-1",
                    "rp": RP_REMOTE, "cycle": 1, "dataset": {}}),
            "match-request+jwt",
        )
        .unwrap();
    let response = http
        .post(format!("{url}/match"))
        .header("content-type", "application/jwt")
        .body(request)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/jwt"
    );
}
