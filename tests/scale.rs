//! The production shape: several `hub serve` processes behind a load balancer, sharing
//! PostgreSQL and Redis; and what happens when an instance, Redis or PostgreSQL goes away.
//!
//! These tests always use PostgreSQL and Redis (`DATABASE_URL`, `REDIS_URL`).

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::proxy::Proxy;
use crate::util::*;

/// `hub serve` processes behind a round-robin [`Proxy`] that is their public URL.
struct Cluster {
    hub: TestHub,
    proxy: Proxy,
    instances: Vec<Instance>,
    database_url: String,
}

struct Instance {
    addr: SocketAddr,
    child: Child,
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

async fn wait_healthy(http: &reqwest::Client, addr: SocketAddr, child: &mut Child) {
    for _ in 0..200 {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("hub instance at {addr} exited: {status}");
        }
        if let Ok(r) = http.get(format!("http://{addr}/readyz")).send().await {
            if r.status() == StatusCode::OK {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("hub instance at {addr} did not become ready");
}

async fn spawn_cluster(n: usize) -> Cluster {
    let addrs: Vec<SocketAddr> = (0..n).map(|_| free_addr()).collect();
    let proxy = Proxy::start(addrs.clone()).await;
    let issuer = format!("http://{}", proxy.addr());
    let data_dir = tempfile::tempdir().expect("tempdir");
    let peers = start_peers(&issuer, false).await;
    let storage = storage_settings(Backend::Production, data_dir.path()).await;
    let settings = hub_settings(&peers, &issuer, data_dir.path(), storage, None);
    prepare_database(&settings).await;
    // Provisioned once, shared by every instance (as a mounted secret would be).
    hub::app::load_or_create_keys(&settings).expect("keys");
    let config = data_dir.path().join("hub.json");
    std::fs::write(&config, serde_json::to_vec(&settings).expect("json")).expect("write config");
    let database_url = settings.database.url.clone();
    let http = reqwest::Client::new();
    let mut instances = Vec::new();
    for (i, addr) in addrs.iter().enumerate() {
        let log =
            std::fs::File::create(data_dir.path().join(format!("hub-{i}.log"))).expect("log file");
        let mut child = Command::new(env!("CARGO_BIN_EXE_hub"))
            .args(["--config", config.to_str().expect("utf-8 path"), "serve"])
            .env("HUB_SERVER__BIND", addr.to_string())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start hub process");
        wait_healthy(&http, *addr, &mut child).await;
        instances.push(Instance { addr: *addr, child });
    }
    Cluster {
        hub: peers.into_test_hub(issuer, data_dir, database_url.clone()),
        proxy,
        instances,
        database_url,
    }
}

/// Rows that must survive an instance dying: department records and the verification log.
async fn recorded(database_url: &str) -> (i64, u64) {
    let db = store::Database::open(database_url).await.expect("db");
    (
        db.count_records(RP_MATCH).await.expect("count"),
        db.audit_size().await.expect("log size"),
    )
}

/// One journey of `client_id` whose every request may land on a different instance.
async fn round_robin_journey(hub: &TestHub, client_id: &str, person: &str) -> Value {
    let request = AuthRequest::new(client_id);
    let code = hub
        .code_in(&Browser::without_keep_alive(), &request, person)
        .await;
    hub.claims_for(client_id, &code, &request.verifier).await
}

#[tokio::test]
async fn journeys_complete_with_steps_spread_over_three_instances() {
    let cluster = spawn_cluster(3).await;
    for person in ["alice", "dana", "alice", "dana", "alice", "dana"] {
        let claims = round_robin_journey(&cluster.hub, RP_MATCH, person).await;
        assert_eq!(claims["match"]["status"], "matched", "{person}");
    }
    let forwarded = cluster.proxy.forwarded();
    assert!(
        forwarded.iter().all(|n| *n >= 6),
        "every instance served steps: {forwarded:?}"
    );
}

#[tokio::test]
async fn a_code_redeemed_concurrently_at_two_instances_succeeds_once() {
    let cluster = spawn_cluster(2).await;
    for _ in 0..5 {
        let request = AuthRequest::new(RP_MATCH);
        let code = cluster.hub.code_for(&request, "alice").await;
        let redeem = |addr: SocketAddr| {
            let (code, verifier) = (code.clone(), request.verifier.clone());
            async move {
                reqwest::Client::new()
                    .post(format!("http://{addr}/token"))
                    .basic_auth(RP_MATCH, Some(secret_of(RP_MATCH)))
                    .form(&[
                        ("grant_type", "authorization_code"),
                        ("code", code.as_str()),
                        ("redirect_uri", TEST_RP_CALLBACK),
                        ("code_verifier", verifier.as_str()),
                    ])
                    .send()
                    .await
                    .expect("token request")
                    .status()
            }
        };
        let (a, b) = tokio::join!(
            redeem(cluster.instances[0].addr),
            redeem(cluster.instances[1].addr)
        );
        let ok = [a, b].iter().filter(|s| **s == StatusCode::OK).count();
        assert_eq!(ok, 1, "exactly one redemption succeeds: {a} {b}");
        assert!([a, b].contains(&StatusCode::BAD_REQUEST));
    }
}

#[tokio::test]
async fn journeys_resume_on_another_instance_after_one_is_killed() {
    let mut cluster = spawn_cluster(3).await;
    let (records_before, log_before) = recorded(&cluster.database_url).await;
    let first = round_robin_journey(&cluster.hub, RP_MATCH, "alice").await;
    // Ten journeys reach the picker, spread over all instances...
    let mut started = Vec::new();
    for _ in 0..10 {
        let browser = Browser::without_keep_alive();
        let request = AuthRequest::new(RP_MATCH);
        let (status, url, picker) = browser.get(&request.url(&cluster.hub)).await.page();
        assert_eq!(status, StatusCode::OK);
        started.push((browser, request, url, picker));
    }
    // ...then one instance dies without warning.
    let victim = cluster.instances.remove(0);
    drop(victim); // SIGKILL
    for (browser, request, url, picker) in started {
        let params = cluster
            .hub
            .choose_and_login(&browser, &url, &picker, AtIdp::person("alice"))
            .await
            .rp();
        let claims = cluster
            .hub
            .claims_for(RP_MATCH, &params["code"], &request.verifier)
            .await;
        assert_eq!(claims["match"]["record_id"], "123");
        assert_eq!(
            claims["sub"], first["sub"],
            "every instance derives the same pairwise id"
        );
    }
    let (records_after, log_after) = recorded(&cluster.database_url).await;
    assert_eq!(records_after, records_before, "no record lost");
    assert!(
        log_after >= log_before + 10 * 5,
        "every step of every journey logged: {log_before} -> {log_after}"
    );
    let db = store::Database::open(&cluster.database_url)
        .await
        .expect("db");
    let check = db
        .audit_self_check(&cluster.hub.published_keys().await)
        .await
        .expect("self-check");
    assert!(check.is_clean(), "{check:?}");
}

#[tokio::test]
async fn two_hundred_parallel_journeys_over_three_instances_are_all_correct() {
    let cluster = spawn_cluster(3).await;
    let people = [("alice", "123"), ("dana", "D-301")];
    let runs = (0..200).map(|i| {
        let hub = &cluster.hub;
        let (person, record) = people[i % people.len()];
        async move {
            let claims = round_robin_journey(hub, RP_MATCH, person).await;
            assert_eq!(claims["match"]["record_id"], record, "{person}");
            (person, claims["sub"].as_str().expect("sub").to_owned())
        }
    });
    let results = futures::future::join_all(runs).await;
    for (person, _) in people {
        let subs: std::collections::HashSet<_> = results
            .iter()
            .filter(|(p, _)| *p == person)
            .map(|(_, s)| s)
            .collect();
        assert_eq!(subs.len(), 1, "{person} has one pairwise id at one RP");
    }
    // Three instances appended to one log concurrently: one total order, no gaps.
    let db = store::Database::open(&cluster.database_url)
        .await
        .expect("db");
    let check = db
        .audit_self_check(&cluster.hub.published_keys().await)
        .await
        .expect("self-check");
    assert!(check.is_clean(), "{check:?}");
    assert!(db.audit_size().await.expect("size") >= 200 * 5);
}

/// A hub (in process) whose Redis or PostgreSQL connection goes through a proxy we cut.
async fn hub_behind(cut: &str) -> (TestHub, Proxy) {
    let data_dir = tempfile::tempdir().expect("tempdir");
    let storage = storage_settings(Backend::Production, data_dir.path()).await;
    let (proxy, storage) = match cut {
        "redis" => {
            let url = url::Url::parse(&redis_url()).expect("redis url");
            let target: SocketAddr = format!(
                "{}:{}",
                url.host_str().unwrap_or("127.0.0.1"),
                url.port().unwrap_or(6379)
            )
            .parse()
            .expect("redis addr");
            let proxy = Proxy::start(vec![target]).await;
            let mut storage = storage;
            storage["sessions"]["url"] = json!(format!("redis://{}", proxy.addr()));
            (proxy, storage)
        }
        _ => {
            let mut db =
                url::Url::parse(storage["database"]["url"].as_str().expect("db url")).expect("url");
            let target: SocketAddr = format!(
                "{}:{}",
                db.host_str().unwrap_or("127.0.0.1"),
                db.port().unwrap_or(5432)
            )
            .parse()
            .expect("addr");
            let proxy = Proxy::start(vec![target]).await;
            db.set_port(Some(proxy.addr().port())).expect("port");
            let mut storage = storage;
            storage["database"]["url"] = json!(db.as_str());
            (proxy, storage)
        }
    };
    let hub = spawn_hub_with(Options {
        storage: Some(storage),
        backend: Some(Backend::Production),
        ..Default::default()
    })
    .await;
    drop(data_dir);
    (hub, proxy)
}

/// Polls `/readyz` until it answers `status` (state changes take a moment to be seen).
async fn wait_readiness(hub: &TestHub, status: StatusCode) -> Value {
    let mut last = Value::Null;
    for _ in 0..100 {
        let (now, body) = readiness(hub).await;
        if now == status {
            return body;
        }
        last = body;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("readiness never became {status}: {last}");
}

async fn readiness(hub: &TestHub) -> (StatusCode, Value) {
    let r = hub
        .http
        .get(format!("{}/readyz", hub.url))
        .send()
        .await
        .expect("readyz");
    let status = r.status();
    (status, r.json().await.expect("json"))
}

#[tokio::test]
async fn redis_outage_fails_closed_and_recovers_without_restart() {
    let (hub, redis) = hub_behind("redis").await;
    let request = AuthRequest::new(RP_MATCH);
    let code = hub.code_for(&request, "alice").await;

    redis.set_up(false);
    let body = wait_readiness(&hub, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(body["sessions"], "unreachable");
    let params = Browser::new()
        .get(&AuthRequest::new(RP_MATCH).url(&hub))
        .await
        .rp();
    assert_eq!(
        params["error"], "temporarily_unavailable",
        "no journey can start: {params:?}"
    );
    let (status, body) = hub
        .redeem(RP_MATCH, &secret_of(RP_MATCH), &code, &request.verifier)
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"], "temporarily_unavailable");
    assert!(body.get("id_token").is_none());

    redis.set_up(true);
    wait_readiness(&hub, StatusCode::OK).await;
    // The log (in PostgreSQL, up all along) has the failure the RP received (auditor
    // tokens live in Redis, so it is read now).
    let failed = hub.events_of_type("journey_failed").await;
    assert!(
        failed.iter().any(|e| e["outcome"] == "hub_unavailable"),
        "{failed:?}"
    );
    let claims = hub.id_token_for(RP_MATCH, "alice").await;
    assert_eq!(claims["match"]["record_id"], "123");
}

#[tokio::test]
async fn postgres_outage_fails_closed_and_recovers_without_restart() {
    let (hub, postgres) = hub_behind("postgres").await;
    let browser = Browser::new();
    let request = AuthRequest::new(RP_MATCH);
    let (_, url, picker) = browser.get(&request.url(&hub)).await.page();

    postgres.set_up(false);
    // A refused connection is known at once: neither readiness nor a request waits out
    // database.acquire_timeout_ms (5 s) before it answers.
    let asked = std::time::Instant::now();
    let body = wait_readiness(&hub, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(body["database"], "unreachable");
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "{:?}",
        asked.elapsed()
    );
    // The verification log lives in PostgreSQL too: no step completes that it cannot record.
    let asked = std::time::Instant::now();
    let params = browser
        .submit(&url, &picker, "/journey/idp", &[("idp", IDP_MAIN)])
        .await
        .rp();
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "{:?}",
        asked.elapsed()
    );
    assert_eq!(params["error"], "temporarily_unavailable", "{params:?}");
    assert_eq!(params["reason"], "hub_unavailable");
    assert!(
        !params.contains_key("code"),
        "no assertion while records are unreachable"
    );

    postgres.set_up(true);
    wait_readiness(&hub, StatusCode::OK).await;
    let claims = hub.id_token_for(RP_MATCH, "alice").await;
    assert_eq!(claims["match"]["record_id"], "123");
}

#[tokio::test]
async fn metrics_count_journeys_and_steps() {
    let hub = spawn_hub().await;
    hub.id_token_for(RP_MATCH, "alice").await;
    Browser::new()
        .get(
            &AuthRequest::new(RP_MATCH)
                .set("acr_values", Some("P3"))
                .url(&hub),
        )
        .await
        .rp();
    let text = hub.get_text("/metrics").await;
    assert!(
        text.contains(r#"hub_journeys_total{outcome="matched"} 1"#),
        "{text}"
    );
    assert!(text.contains(r#"route="/idp/callback""#), "{text}");
    assert!(
        text.contains(
            r#"hub_idp_request_duration_seconds_count{idp="idp-main",operation="redeem"} 1"#
        ),
        "{text}"
    );
    assert!(text.contains("hub_db_pool_connections"), "{text}");
}

/// The picker page an instance shows for `request` when asked directly.
async fn picker_at(
    instance: SocketAddr,
    hub: &TestHub,
    request: &AuthRequest,
) -> (StatusCode, String) {
    let url = request
        .url(hub)
        .replacen(&hub.url, &format!("http://{instance}"), 1);
    let response = reqwest::Client::new()
        .get(url)
        .send()
        .await
        .expect("authorize");
    let status = response.status();
    (status, response.text().await.expect("page"))
}

/// Waits (up to five seconds) until every instance shows what `shows` accepts.
async fn until_every_instance(
    cluster: &Cluster,
    request: &AuthRequest,
    shows: impl Fn(StatusCode, &str) -> bool,
) {
    for instance in &cluster.instances {
        let mut seen = false;
        for _ in 0..50 {
            let (status, page) = picker_at(instance.addr, &cluster.hub, request).await;
            if shows(status, &page) {
                seen = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            seen,
            "instance {} did not follow the registry",
            instance.addr
        );
    }
}

#[tokio::test]
async fn registry_changes_reach_every_instance_without_restart() {
    let cluster = spawn_cluster(3).await;
    let hub = &cluster.hub;
    let document = rp_settings(
        "rp-live",
        TEST_RP_CALLBACK,
        json!({"account_creation": true}),
    );
    let (status, body) = hub.admin("POST", "/relying-parties", Some(document)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let request = AuthRequest::new("rp-live");
    until_every_instance(&cluster, &request, |status, _| status == StatusCode::OK).await;
    // Every step of these journeys may land on a different instance.
    for person in ["alice", "dana", "alice"] {
        let claims = round_robin_journey(hub, "rp-live", person).await;
        assert_eq!(claims["match"]["status"], "created", "{person}");
    }

    let p1 = AuthRequest::new(RP_MATCH).set("acr_values", Some("P1"));
    let offered = |page: &str| page.contains(&format!("value=\"{IDP_BASIC}\""));
    until_every_instance(&cluster, &p1, |_, page| offered(page)).await;
    let path = format!("/identity-providers/{IDP_BASIC}/disable");
    let (status, body) = hub.admin("POST", &path, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    until_every_instance(&cluster, &p1, |status, page| {
        status == StatusCode::OK && !offered(page)
    })
    .await;

    let changes = hub.events_of_type("registry_changed").await;
    let by_operator: Vec<String> = changes
        .iter()
        .filter(|e| e["actor"] == OPERATOR)
        .map(|e| {
            format!(
                "{} {}",
                e["outcome"].as_str().unwrap_or(""),
                e["rp"].as_str().or(e["idp"].as_str()).unwrap_or("")
            )
        })
        .collect();
    assert_eq!(by_operator, ["added rp-live", "disabled idp-basic"]);
    // Three instances seeded the same configuration: each party was added once.
    let seeded = changes
        .iter()
        .filter(|e| e["actor"] == "config" && e["rp"] == RP_MATCH)
        .count();
    assert_eq!(seeded, 1);
}
