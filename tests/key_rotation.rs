//! Signing-key rotation end to end: a hub publishes its next key before that key signs
//! anything, `hub keys rotate` promotes it, and ID tokens signed before the rotation still
//! verify against the JWKS after it; a fleet of three instances follows two rotations and
//! a retirement without restart while journeys run through it. And an identity provider's
//! rotation: the running hub takes the IdP's new key on the first ID token signed with it.

use std::net::TcpListener;
use std::process::Command;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use hub::{Application, Settings};
use serde_json::Value;

use crate::util::*;

/// Starts a hub instance on `listener`; the handle stops it (as a restart would).
async fn start_instance(settings: Settings, listener: TcpListener) -> ServerHandle {
    let server = Application::build(settings, listener)
        .await
        .expect("build hub")
        .into_server();
    let handle = server.handle();
    tokio::spawn(server);
    handle
}

/// The hub's JWKS as an RP fetches it (a fresh connection, so never a stale one to a
/// stopped instance), and its kids in order.
async fn published(hub: &TestHub) -> (Value, Vec<String>) {
    let response = reqwest::get(format!("{}/jwks", hub.url))
        .await
        .expect("jwks");
    let cache_control = response.headers().get("cache-control").cloned();
    assert_eq!(
        cache_control.as_ref().and_then(|v| v.to_str().ok()),
        Some(format!("public, max-age={}", hub::app::JWKS_MAX_AGE.as_secs()).as_str())
    );
    let jwks: Value = response.json().await.expect("json");
    let kids = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kid"].as_str().expect("kid").to_owned())
        .collect();
    (jwks, kids)
}

/// A complete journey for `person` at [`RP_MATCH`]: the raw ID token.
async fn raw_id_token(hub: &TestHub, person: &str) -> String {
    let request = AuthRequest::new(RP_MATCH);
    let code = hub.code_for(&request, person).await;
    let (status, body) = hub
        .redeem(RP_MATCH, &secret_of(RP_MATCH), &code, &request.verifier)
        .await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    body["id_token"].as_str().expect("id_token").to_owned()
}

fn kid_of(jwt: &str) -> String {
    use base64::Engine as _;
    let header = jwt.split('.').next().expect("header");
    let header: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header)
            .expect("b64"),
    )
    .expect("json");
    header["kid"].as_str().expect("kid").to_owned()
}

fn verify_with(jwks: &Value, jwt: &str, hub: &TestHub) -> Result<Value, token::TokenError> {
    token::VerificationKeys::from_jwks(jwks)
        .expect("jwks")
        .verify(
            jwt,
            &token::Expect {
                issuer: Some(hub.url.clone()),
                audience: vec![RP_MATCH.into()],
                leeway_secs: 0,
            },
        )
}

#[tokio::test]
async fn rotation_publishes_the_next_key_first_and_old_tokens_keep_verifying() {
    let (listener, issuer) = free_listener();
    let address = listener.local_addr().expect("address");
    let data_dir = tempfile::tempdir().expect("tempdir");
    let peers = start_peers(&issuer, false).await;
    let storage = storage_settings(Backend::of_this_run(), data_dir.path()).await;
    // Reloading off: the keys change only at a restart (the fleet test below reloads).
    let settings = hub_settings(&peers, &issuer, data_dir.path(), storage, None)
        .with(serde_json::json!({"keys": {"reload_interval_secs": 0}}))
        .expect("settings");
    prepare_database(&settings).await;
    let first = start_instance(settings.clone(), listener).await;
    let hub = peers.into_test_hub(issuer, data_dir, settings.database.url.clone());

    // A new deployment publishes a current and a next key; only the current one signs.
    let (jwks_before, before) = published(&hub).await;
    assert_eq!(before.len(), 2, "{jwks_before}");
    let old_token = raw_id_token(&hub, "alice").await;
    assert_eq!(kid_of(&old_token), before[0]);
    let staged = before[1].clone();

    let rotation = hub::app::rotate_keys(&settings, Duration::ZERO).expect("rotate");
    let token::Rotation::Rotated {
        retired,
        previous,
        current,
        next,
    } = rotation
    else {
        panic!("expected a rotation, got {rotation:?}");
    };
    assert_eq!((retired, &previous, &current), (None, &before[0], &staged));
    assert!(!before.contains(&next));

    // The files changed; with reloading off, the instance keeps what it loaded until
    // restarted.
    assert_eq!(published(&hub).await.1, before);
    assert_eq!(kid_of(&raw_id_token(&hub, "alice").await), before[0]);

    // Restart on the same address (one step of a rolling restart).
    first.stop(false).await;
    let listener = TcpListener::bind(address).expect("rebind the hub's address");
    let _second = start_instance(settings.clone(), listener).await;

    let (jwks_after, after) = published(&hub).await;
    assert_eq!(after, [current, next, previous]);
    // Signed before the rotation, verified with the JWKS after it.
    let claims = verify_with(&jwks_after, &old_token, &hub).expect("old token verifies");
    assert_eq!(claims["aud"], RP_MATCH);

    // After the restart the former next key signs (ID tokens, and the client assertion
    // the IdP just checked against the new JWKS), and an RP that fetched the JWKS
    // before the rotation already knows it.
    let new_token = raw_id_token(&hub, "alice").await;
    assert_eq!(kid_of(&new_token), staged);
    verify_with(&jwks_before, &new_token, &hub).expect("next key was published in advance");
    hub.verify_id_token(&new_token, RP_MATCH).await;
}

fn hub_keys(data_dir: &std::path::Path, args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_hub"))
        .arg("keys")
        .args(args)
        .env("HUB_DATA__DIR", data_dir)
        .output()
        .expect("run hub");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[test]
fn hub_keys_rotate_refuses_an_unpublished_next_key_unless_forced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys_dir = dir.path().join("keys");
    let (ok, text) = hub_keys(dir.path(), &["init"]);
    assert!(ok, "{text}");
    let initial = token::SigningKeys::load_or_generate(&keys_dir).expect("keys");
    let staged = initial
        .next()
        .expect("init stages a next key")
        .kid()
        .to_owned();
    assert!(text.contains(&staged), "{text}");

    // The next key was created a moment ago: relying parties may not have it yet.
    let (ok, text) = hub_keys(dir.path(), &["rotate"]);
    assert!(!ok, "{text}");
    assert!(text.contains("must have been published"), "{text}");
    let unchanged = token::SigningKeys::load_or_generate(&keys_dir).expect("keys");
    assert_eq!(unchanged.jwks(), initial.jwks());

    let (ok, text) = hub_keys(dir.path(), &["rotate", "--force"]);
    assert!(ok, "{text}");
    let rotated = token::SigningKeys::load_or_generate(&keys_dir).expect("keys");
    assert_eq!(rotated.current().kid(), staged);
    assert_eq!(
        rotated.previous().expect("previous").kid(),
        initial.current().kid()
    );

    let (ok, text) = hub_keys(dir.path(), &["retire-previous"]);
    assert!(ok, "{text}");
    assert!(text.contains(initial.current().kid()), "{text}");
    let retired = token::SigningKeys::load_or_generate(&keys_dir).expect("keys");
    assert!(retired.previous().is_none());
    assert_eq!(retired.current().kid(), staged);
}

#[tokio::test]
async fn pruning_after_a_rotation_verifies_checkpoints_signed_with_the_previous_key() {
    let hub = spawn_hub().await;
    hub.id_token_for(RP_MATCH, "alice").await;
    let settings = Settings::load(None)
        .unwrap()
        .with(serde_json::json!({"data": {"dir": hub.data_dir.path()}, "database": {"url": hub.database_url}}))
        .unwrap();
    let db = store::Database::open(&hub.database_url).await.unwrap();
    let (before, _) = hub::app::load_or_create_keys(&settings).unwrap();
    // The current checkpoint (the head's seal) is signed before the rotation, and the
    // log does not grow after it until the prune's record, so pruning proves the archive
    // against it.
    let checkpoint = hub::verification_log::checkpoints::current(&db, before.current())
        .await
        .unwrap();
    assert_eq!(kid_of(&checkpoint.signature), before.current().kid());
    hub::app::rotate_keys(&settings, Duration::ZERO).unwrap();
    let (after, _) = hub::app::load_or_create_keys(&settings).unwrap();
    assert_ne!(after.current().kid(), before.current().kid());

    tokio::time::sleep(Duration::from_millis(20)).await;
    let cutoff = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let archive = tempfile::tempdir().unwrap();
    let jwks = after.jwks();
    let seal = hub::app::log_seal(after).unwrap();
    let report =
        hub::verification_log::retention::prune(&db, &seal, &jwks, "test", &cutoff, archive.path())
            .await
            .expect("the archive verifies with the previous key, which is still published");
    assert_eq!(report.checkpoint_size, checkpoint.tree_size);
    assert!(report.archived > 0);
    let archived_jwks: Value =
        serde_json::from_slice(&std::fs::read(archive.path().join("jwks.json")).unwrap()).unwrap();
    assert_eq!(archived_jwks, jwks);
    // The prune is recorded in the log, sealed with the new key over the old seal.
    let report = db
        .audit_self_check(seal.published().verification_keys())
        .await
        .unwrap();
    assert!(report.is_clean(), "{report:?}");
}

#[tokio::test]
async fn an_identity_provider_rotating_its_key_is_followed_without_restart() {
    let hub = spawn_hub().await;
    let before = hub.idp_main.authorization_requests().len();
    hub.code_for(&AuthRequest::new(RP_MATCH), "alice").await;
    assert_eq!(hub.idp_main.authorization_requests().len(), before + 1);

    // The IdP publishes a new key and retires the old one, as certified IdPs do; its next
    // ID token is signed with a key id the hub has not seen.
    let kid = hub.idp_main.rotate_signing_key().unwrap();
    let jwks: Value = reqwest::get(format!(
        "{}/jwks",
        hub.idp_main.issuer().as_str().trim_end_matches('/')
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(jwks["keys"].as_array().map(Vec::len), Some(1), "{jwks}");
    assert_eq!(jwks["keys"][0]["kid"], kid.as_str());

    let request = AuthRequest::new(RP_MATCH);
    let code = hub.code_for(&request, "alice").await;
    assert_eq!(hub.idp_main.authorization_requests().len(), before + 2);
    let (status, body) = hub
        .redeem(RP_MATCH, &secret_of(RP_MATCH), &code, &request.verifier)
        .await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
}

/// How often the fleet's instances read the key files in [`a_fleet_follows_two_rotations_and_a_retirement_without_restart`].
const RELOAD_SECS: u64 = 1;

/// A relying party's view of the hub's keys: the JWKS fetched once and fetched again
/// when an ID token names a kid it does not have (as real RP libraries do).
struct RelyingPartyKeys {
    jwks_uri: String,
    jwks: tokio::sync::Mutex<Value>,
    refetches: std::sync::atomic::AtomicUsize,
}

impl RelyingPartyKeys {
    async fn new(issuer: &str) -> Self {
        let jwks_uri = format!("{issuer}/jwks");
        let jwks = fresh_client().get(&jwks_uri).send().await.expect("jwks");
        Self {
            jwks: tokio::sync::Mutex::new(jwks.json().await.expect("json")),
            jwks_uri,
            refetches: Default::default(),
        }
    }

    /// Verifies `id_token` as [`RP_MATCH`] would: the claims.
    async fn verify(&self, id_token: &str, issuer: &str) -> Value {
        let kid = kid_of(id_token);
        let mut jwks = self.jwks.lock().await;
        let known = |jwks: &Value| {
            jwks["keys"]
                .as_array()
                .is_some_and(|keys| keys.iter().any(|k| k["kid"] == kid.as_str()))
        };
        if !known(&jwks) {
            self.refetches
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let response = fresh_client()
                .get(&self.jwks_uri)
                .send()
                .await
                .expect("jwks");
            *jwks = response.json().await.expect("json");
        }
        token::VerificationKeys::from_jwks(&jwks)
            .expect("jwks")
            .verify(
                id_token,
                &token::Expect {
                    issuer: Some(issuer.to_owned()),
                    audience: vec![RP_MATCH.into()],
                    leeway_secs: 0,
                },
            )
            .unwrap_or_else(|e| panic!("ID token signed by {kid} does not verify: {e}"))
    }
}

/// A client that opens a new connection per request, so a round-robin balancer spreads
/// its requests over every instance.
fn fresh_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// One journey at [`RP_MATCH`] whose every request (the RP's token request too) may land on
/// a different instance: the kid of its ID token, which the RP verified.
async fn fleet_journey(hub: &TestHub, rp: &RelyingPartyKeys, person: &str) -> String {
    let request = AuthRequest::new(RP_MATCH);
    let code = hub
        .code_in(&Browser::without_keep_alive(), &request, person)
        .await;
    let response = fresh_client()
        .post(format!("{}/token", hub.url))
        .basic_auth(RP_MATCH, Some(secret_of(RP_MATCH)))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", TEST_RP_CALLBACK),
            ("code_verifier", request.verifier.as_str()),
        ])
        .send()
        .await
        .expect("token request");
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    let id_token = body["id_token"].as_str().expect("id_token");
    let claims = rp.verify(id_token, &hub.url).await;
    assert_eq!(claims["nonce"], request.nonce.as_str());
    assert_eq!(claims["match"]["status"], "matched", "{claims}");
    kid_of(id_token)
}

/// The kids each instance publishes (asked directly, not through the balancer), once all
/// publish `expected`; panics if they do not within a few reload intervals.
async fn fleet_publishes(instances: &[std::net::SocketAddr], expected: &[String]) {
    for _ in 0..(RELOAD_SECS * 50) {
        let mut all = true;
        for addr in instances {
            let jwks: Value = fresh_client()
                .get(format!("http://{addr}/jwks"))
                .send()
                .await
                .expect("jwks")
                .json()
                .await
                .expect("json");
            let kids: Vec<&str> = jwks["keys"]
                .as_array()
                .expect("keys")
                .iter()
                .filter_map(|k| k["kid"].as_str())
                .collect();
            all &= kids == expected;
        }
        if all {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("not every instance publishes {expected:?}");
}

fn published_kids(settings: &Settings) -> Vec<String> {
    let keys = token::SigningKeys::load(&hub::app::keys_dir(settings)).expect("keys");
    keys.jwks()["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kid"].as_str().expect("kid").to_owned())
        .collect()
}

/// Three instances behind a round-robin balancer, sharing PostgreSQL, Redis and one key
/// directory (as a mounted volume), with journeys running through them all the time: `hub
/// keys rotate --force` twice, then `hub keys retire-previous`, and no instance restarts.
/// Every journey succeeds with its ID token verified against the published JWKS, and ID
/// tokens come signed by both promoted keys. Always on PostgreSQL and Redis (instances
/// share journeys only through Redis), like `scale.rs`.
#[tokio::test]
async fn a_fleet_follows_two_rotations_and_a_retirement_without_restart() {
    let listeners: Vec<TcpListener> = (0..3)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind"))
        .collect();
    let instances: Vec<std::net::SocketAddr> = listeners
        .iter()
        .map(|l| l.local_addr().expect("address"))
        .collect();
    let proxy = crate::proxy::Proxy::start(instances.clone()).await;
    let issuer = format!("http://{}", proxy.addr());
    let data_dir = tempfile::tempdir().expect("tempdir");
    let peers = start_peers(&issuer, false).await;
    let storage = storage_settings(Backend::Production, data_dir.path()).await;
    let settings = hub_settings(&peers, &issuer, data_dir.path(), storage, None)
        .with(serde_json::json!({"keys": {"reload_interval_secs": RELOAD_SECS}}))
        .expect("settings");
    prepare_database(&settings).await;
    hub::app::load_or_create_keys(&settings).expect("keys provisioned once");
    let mut handles = Vec::new();
    for listener in listeners {
        handles.push(start_instance(settings.clone(), listener).await);
    }
    let hub = std::sync::Arc::new(peers.into_test_hub(
        issuer.clone(),
        data_dir,
        settings.database.url.clone(),
    ));
    let rp = std::sync::Arc::new(RelyingPartyKeys::new(&issuer).await);
    let initial = published_kids(&settings);

    // Journeys all the time, from three citizens at once, each step on any instance.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mut drivers = tokio::task::JoinSet::new();
    for person in ["alice", "dana", "alice"] {
        let (hub, rp, stop, seen) = (hub.clone(), rp.clone(), stop.clone(), seen.clone());
        drivers.spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let kid = fleet_journey(&hub, &rp, person).await;
                seen.lock().unwrap().push(kid);
            }
        });
    }
    let journeys_done = || seen.lock().unwrap().len();
    let signed_by = |kid: &str| seen.lock().unwrap().iter().filter(|k| *k == kid).count();
    let wait_for_tokens_by = |kid: String| {
        let signed_by = &signed_by;
        async move {
            for _ in 0..600 {
                if signed_by(&kid) >= 3 {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            panic!("no ID tokens signed by {kid} within 30 s");
        }
    };
    wait_for_tokens_by(initial[0].clone()).await;

    let mut promoted = Vec::new();
    for _ in 0..2 {
        let rotation = hub::app::rotate_keys(&settings, Duration::ZERO).expect("rotate");
        let token::Rotation::Rotated { current, .. } = rotation else {
            panic!("expected a rotation, got {rotation:?}");
        };
        fleet_publishes(&instances, &published_kids(&settings)).await;
        // A few reload intervals with journeys running, then tokens by the new key.
        tokio::time::sleep(Duration::from_secs(3 * RELOAD_SECS)).await;
        wait_for_tokens_by(current.clone()).await;
        promoted.push(current);
    }
    let retired = hub::app::retire_previous_key(&settings)
        .expect("retire")
        .expect("a previous key");
    assert_eq!(retired, promoted[0]);
    let after = published_kids(&settings);
    assert_eq!(after.len(), 2, "current and next: {after:?}");
    fleet_publishes(&instances, &after).await;
    let before_last = journeys_done();
    tokio::time::sleep(Duration::from_secs(2 * RELOAD_SECS)).await;
    for _ in 0..600 {
        if journeys_done() >= before_last + 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    while let Some(driver) = drivers.join_next().await {
        driver.expect("every journey succeeds");
    }
    let seen = seen.lock().unwrap().clone();
    for kid in &promoted {
        assert!(seen.contains(kid), "no ID token signed by {kid}: {seen:?}");
    }
    assert!(
        seen.iter().skip(before_last).all(|k| *k == promoted[1]),
        "only the current key signs after the retirement: {seen:?}"
    );
    assert!(
        rp.refetches.load(std::sync::atomic::Ordering::Relaxed) >= 1,
        "the second promoted key was not in the JWKS the RP fetched at the start"
    );
    let forwarded = proxy.forwarded();
    assert!(
        forwarded.iter().all(|n| *n > 0),
        "every instance served: {forwarded:?}"
    );

    // The log's appends, sealed by whichever key each instance held, check out against
    // the keys published now.
    let jwks: Value = reqwest::get(format!("{issuer}/jwks"))
        .await
        .expect("jwks")
        .json()
        .await
        .expect("json");
    let keys = token::VerificationKeys::from_jwks(&jwks).expect("jwks");
    let db = store::Database::open(&settings.database.url)
        .await
        .expect("db");
    let report = db.audit_self_check(&keys).await.expect("self-check");
    assert!(report.is_clean(), "{report:?}");
    for handle in handles {
        handle.stop(false).await;
    }
}
