//! The verification log: every step leaves its event, auditors query and export it,
//! proofs verify offline, tampering in the database is detected.

use reqwest::StatusCode;
use serde_json::Value;

use crate::util::*;

/// The events of one journey, as an unrestricted auditor sees them.
async fn journey_events(hub: &TestHub, journey_id: &str) -> Vec<Value> {
    let token = hub.auditor_token(AUDITOR_ALL, None).await;
    let (status, body) = hub
        .audit_get(&token, &format!("/events?journey={journey_id}&limit=100"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    body["events"].as_array().unwrap().clone()
}

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

/// The journey id of the last journey started at the hub (from the log itself).
async fn last_journey(hub: &TestHub) -> String {
    let token = hub.auditor_token(AUDITOR_ALL, None).await;
    let (_, body) = hub
        .audit_get(&token, "/events?type=journey_started&limit=1000")
        .await;
    let body: Value = serde_json::from_str(&body).unwrap();
    body["events"].as_array().unwrap().last().unwrap()["journey_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_matched_journey_leaves_every_step_in_the_log() {
    let hub = spawn_hub().await;
    let request = AuthRequest::new(RP_MATCH);
    let code = hub.code_for(&request, "alice").await;
    let (_, tokens) = hub
        .redeem(RP_MATCH, &secret_of(RP_MATCH), &code, &request.verifier)
        .await;
    let claims = hub
        .verify_id_token(tokens["id_token"].as_str().unwrap(), RP_MATCH)
        .await;
    hub.userinfo(tokens["access_token"].as_str().unwrap()).await;
    let events = journey_events(&hub, &last_journey(&hub).await).await;
    assert_eq!(
        types(&events),
        [
            "journey_started",
            "idp_selected",
            "idp_returned",
            "matching",
            "assertion_issued",
            "tokens_issued",
            "userinfo_served"
        ]
    );
    let matching = &events[3];
    assert_eq!(
        (
            matching["match_cycle"].as_u64(),
            matching["outcome"].as_str()
        ),
        (Some(1), Some("match"))
    );
    let issued = &events[4];
    assert_eq!(
        issued["subject"], claims["sub"],
        "the pairwise id, as the RP got it"
    );
    assert_eq!(issued["rp"], RP_MATCH);
    assert_eq!(issued["idp"], IDP_MAIN);
    assert_eq!(
        (
            issued["level_requested"].as_str(),
            issued["level_achieved"].as_str()
        ),
        (Some("P2"), Some("P2"))
    );
    let indices: Vec<u64> = events
        .iter()
        .map(|e| e["index"].as_u64().unwrap())
        .collect();
    assert!(indices.windows(2).all(|w| w[0] < w[1]), "log order");
}

#[tokio::test]
async fn cycle3_created_and_failed_journeys_leave_their_events() {
    let hub = spawn_hub().await;
    hub.cycle3_journey(&AuthRequest::new(RP_CYCLE3)).await;
    let events = journey_events(&hub, &last_journey(&hub).await).await;
    assert_eq!(
        types(&events),
        [
            "journey_started",
            "idp_selected",
            "idp_returned",
            "matching",
            "cycle3_asked",
            "cycle3_answered",
            "matching",
            "assertion_issued"
        ]
    );
    assert_eq!(
        (
            events[3]["outcome"].as_str(),
            events[6]["match_cycle"].as_u64()
        ),
        (Some("ambiguous"), Some(3))
    );

    hub.id_token_for(RP_CREATE, "bob").await;
    let created = journey_events(&hub, &last_journey(&hub).await).await;
    assert!(
        types(&created).contains(&"account_created"),
        "{:?}",
        types(&created)
    );

    // A cancel at the IdP is in the log when it happens; the journey fails (and the RP
    // hears of it) when the citizen goes back to the service.
    let browser = Browser::new();
    let cancelled_at_idp = hub
        .journey(
            &browser,
            &AuthRequest::new(RP_MATCH),
            AtIdp::person("alice").simulate("cancel"),
        )
        .await;
    let journey = last_journey(&hub).await;
    let waiting = journey_events(&hub, &journey).await;
    assert_eq!(
        types(&waiting),
        ["journey_started", "idp_selected", "idp_returned"]
    );
    assert_eq!(waiting[2]["outcome"], "user_cancelled");
    browser.back_to_service(cancelled_at_idp).await.rp();
    let cancelled = journey_events(&hub, &journey).await;
    assert_eq!(
        types(&cancelled),
        [
            "journey_started",
            "idp_selected",
            "idp_returned",
            "journey_failed"
        ]
    );
    assert_eq!(cancelled[3]["outcome"], "user_cancelled");
}

#[tokio::test]
async fn the_auditor_api_needs_a_token_with_audit_read() {
    let hub = spawn_hub().await;
    let response = hub
        .http
        .get(format!("{}/audit/v1/events", hub.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let (status, _) = hub.audit_get("not-a-token", "/events").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let reports_only = hub.auditor_token(AUDITOR_REPORTS, Some("reports")).await;
    for path in [
        "/events",
        "/export.jsonl",
        "/export.csv",
        "/checkpoint",
        "/proof/inclusion?index=0",
        "/proof/consistency?first=0&second=0",
    ] {
        let (status, _) = hub.audit_get(&reports_only, path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
    }
    let response = hub
        .http
        .post(format!("{}/token", hub.url))
        .basic_auth(AUDITOR_RP_MATCH, Some(secret_of(AUDITOR_RP_MATCH)))
        .form(&[("grant_type", "client_credentials"), ("scope", "reports")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::BAD_REQUEST,
        "a scope the client may not have"
    );
    let response = hub
        .http
        .post(format!("{}/token", hub.url))
        .basic_auth(AUDITOR_ALL, Some("not-the-secret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::UNAUTHORIZED,
        "a wrong secret"
    );
    // Every refusal is in the log, as a failed client authentication at /token is.
    let refused = outcomes(&hub.events_of_type("request_rejected").await);
    let count = |outcome: &str| refused.iter().filter(|o| *o == outcome).count();
    assert_eq!(count("auditor_token_invalid"), 2, "{refused:?}");
    assert_eq!(count("auditor_scope_insufficient"), 6, "{refused:?}");
    assert_eq!(count("auditor_auth_failed"), 1, "{refused:?}");
    let (status, spec) = hub.audit_get("", "/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert!(serde_json::from_str::<Value>(&spec).unwrap()["paths"]["/events"].is_object());
}

#[tokio::test]
async fn an_auditor_limited_to_one_rp_sees_nothing_of_another() {
    let hub = spawn_hub().await;
    hub.id_token_for(RP_MATCH, "alice").await;
    hub.id_token_for(RP_CREATE, "bob").await;
    let all = hub.auditor_token(AUDITOR_ALL, None).await;
    let limited = hub.auditor_token(AUDITOR_RP_MATCH, None).await;

    let (_, body) = hub.audit_get(&limited, "/events?limit=1000").await;
    let events: Value = serde_json::from_str(&body).unwrap();
    let events = events["events"].as_array().unwrap();
    assert!(!events.is_empty());
    assert!(events.iter().all(|e| e["rp"] == RP_MATCH), "{events:?}");
    let (_, body) = hub
        .audit_get(&limited, &format!("/events?rp={RP_CREATE}"))
        .await;
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["events"],
        serde_json::json!([])
    );
    for path in ["/export.jsonl", "/export.csv"] {
        let (status, body) = hub.audit_get(&limited, path).await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            body.contains(RP_MATCH) && !body.contains(RP_CREATE),
            "{path}: {body}"
        );
    }
    let (_, body) = hub
        .audit_get(
            &all,
            &format!("/events?rp={RP_CREATE}&type=assertion_issued"),
        )
        .await;
    let other = serde_json::from_str::<Value>(&body).unwrap()["events"][0]["index"]
        .as_u64()
        .unwrap();
    let (status, _) = hub
        .audit_get(&limited, &format!("/proof/inclusion?index={other}"))
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "no proof revealing another RP's event"
    );
    let (status, _) = hub
        .audit_get(&all, &format!("/proof/inclusion?index={other}"))
        .await;
    assert_eq!(status, StatusCode::OK);
}

/// Writes an export, the checkpoint and the JWKS to files and runs `hub audit verify`.
async fn verify_offline(
    hub: &TestHub,
    token: &str,
    tamper: impl Fn(String) -> String,
) -> (bool, String) {
    let response = hub
        .http
        .get(format!("{}/audit/v1/export.jsonl", hub.url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let size = response.headers()["audit-checkpoint-tree-size"]
        .to_str()
        .unwrap()
        .to_owned();
    let export = response.text().await.unwrap();
    let (status, checkpoint) = hub
        .audit_get(token, &format!("/checkpoint?tree_size={size}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{checkpoint}");
    let jwks = hub.get_text("/jwks").await;
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    std::fs::write(path("events.jsonl"), tamper(export)).unwrap();
    std::fs::write(path("checkpoint.json"), checkpoint).unwrap();
    std::fs::write(path("jwks.json"), jwks).unwrap();
    hub_audit_verify(dir.path())
}

/// Runs `hub audit verify` on `events.jsonl`, `checkpoint.json` and `jwks.json` in `dir`.
fn hub_audit_verify(dir: &std::path::Path) -> (bool, String) {
    hub_audit_in(
        dir,
        &[
            "verify",
            "--export",
            "{events.jsonl}",
            "--checkpoint",
            "{checkpoint.json}",
            "--jwks",
            "{jwks.json}",
        ],
    )
}

/// Runs `hub audit <args>`, where `{name}` in `args` is the file `name` in `dir`; returns
/// whether it succeeded and what it printed.
fn hub_audit_in(dir: &std::path::Path, args: &[&str]) -> (bool, String) {
    let args = args.iter().map(|a| match a.strip_prefix('{') {
        Some(name) => dir.join(name.trim_end_matches('}')).into_os_string(),
        None => a.into(),
    });
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_hub"))
        .arg("audit")
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// [`hub_audit_in`] a fresh directory holding `files` ((name, content) pairs).
fn hub_audit_with_files(args: &[&str], files: &[(&str, &str)]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in files {
        std::fs::write(dir.path().join(name), content).unwrap();
    }
    hub_audit_in(dir.path(), args)
}

#[tokio::test]
async fn exports_verify_offline_and_tampering_is_detected() {
    let hub = spawn_hub().await;
    hub.id_token_for(RP_MATCH, "alice").await;
    hub.id_token_for(RP_CREATE, "bob").await;
    let all = hub.auditor_token(AUDITOR_ALL, None).await;
    let limited = hub.auditor_token(AUDITOR_RP_MATCH, None).await;

    let (ok, text) = verify_offline(&hub, &all, |e| e).await;
    assert!(ok && text.contains("complete log"), "{text}");
    let (ok, text) = verify_offline(&hub, &limited, |e| e).await;
    assert!(ok && text.contains("proved included"), "{text}");

    let altered = |e: String| e.replacen("\"matched\"", "\"no_match\"", 1);
    assert!(
        !verify_offline(&hub, &all, altered).await.0,
        "altered event"
    );
    let deleted = |e: String| {
        e.lines()
            .enumerate()
            .filter(|(i, _)| *i != 2)
            .map(|(_, l)| format!("{l}\n"))
            .collect()
    };
    assert!(
        !verify_offline(&hub, &all, deleted).await.0,
        "deleted event"
    );
    let swapped = |e: String| {
        let mut lines: Vec<&str> = e.lines().collect();
        lines.swap(1, 2);
        lines.join("\n") + "\n"
    };
    assert!(
        !verify_offline(&hub, &all, swapped).await.0,
        "reordered events"
    );
    assert!(
        !verify_offline(&hub, &limited, altered).await.0,
        "altered event in a partial export"
    );
}

/// A proof asked for a tree larger than the log is a bad argument (400), on both proof
/// endpoints, never "unavailable" (503).
#[tokio::test]
async fn proofs_for_a_tree_beyond_the_log_are_bad_requests() {
    let hub = spawn_hub().await;
    let token = hub.auditor_token(AUDITOR_ALL, None).await;
    hub.id_token_for(RP_MATCH, "alice").await;
    let (_, checkpoint) = hub.audit_get(&token, "/checkpoint").await;
    let size = serde_json::from_str::<audit::Checkpoint>(&checkpoint)
        .unwrap()
        .tree_size;
    let (status, _) = hub
        .audit_get(
            &token,
            &format!("/proof/inclusion?index=0&tree_size={size}"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "a tree the log has");
    let beyond = size + 1_000;
    for path in [
        format!("/proof/inclusion?index=0&tree_size={beyond}"),
        format!("/proof/inclusion?index={size}&tree_size={beyond}"),
        format!("/proof/consistency?first=1&second={beyond}"),
        format!("/proof/inclusion?index={size}&tree_size={size}"),
    ] {
        let (status, body) = hub.audit_get(&token, &path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["error"], "invalid_request", "{path}");
    }
    let (_, spec) = hub.audit_get("", "/openapi.json").await;
    let spec: Value = serde_json::from_str(&spec).unwrap();
    for path in ["/proof/inclusion", "/proof/consistency"] {
        assert!(
            spec["paths"][path]["get"]["responses"]["400"].is_object(),
            "{path} documents its 400"
        );
    }
}

#[tokio::test]
async fn consistency_between_checkpoints_verifies() {
    let hub = spawn_hub().await;
    let token = hub.auditor_token(AUDITOR_ALL, None).await;
    hub.id_token_for(RP_MATCH, "alice").await;
    let (_, first) = hub.audit_get(&token, "/checkpoint").await;
    hub.id_token_for(RP_MATCH, "dana").await;
    let (_, second) = hub.audit_get(&token, "/checkpoint").await;
    let jwks = hub.get_text("/jwks").await;
    let keys = token::VerificationKeys::from_jwks_json(&jwks).unwrap();
    let first: audit::Checkpoint = serde_json::from_str(&first).unwrap();
    let second: audit::Checkpoint = serde_json::from_str(&second).unwrap();
    let (r1, r2) = (first.verify(&keys).unwrap(), second.verify(&keys).unwrap());
    assert!(first.tree_size < second.tree_size);
    let (_, proof) = hub
        .audit_get(
            &token,
            &format!(
                "/proof/consistency?first={}&second={}",
                first.tree_size, second.tree_size
            ),
        )
        .await;
    let proof: Value = serde_json::from_str(&proof).unwrap();
    let proof: Vec<audit::Hash> = proof["proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD
                .decode(h.as_str().unwrap())
                .unwrap()
                .try_into()
                .unwrap()
        })
        .collect();
    audit::verify_consistency(first.tree_size, second.tree_size, &r1, &r2, &proof).unwrap();
    let mut forged = r1;
    forged[0] ^= 1;
    assert!(
        audit::verify_consistency(first.tree_size, second.tree_size, &forged, &r2, &proof).is_err()
    );
}

#[tokio::test]
async fn tampering_in_the_database_is_detected_offline_and_by_the_hubs_own_check() {
    let tamperings = [
        (
            "altered",
            vec![
                r#"UPDATE audit_events SET body = REPLACE(body, '"instance":"', '"instance":"forged-') WHERE seq = 3"#,
            ],
        ),
        ("deleted", vec!["DELETE FROM audit_events WHERE seq = 2"]),
        (
            "reordered",
            vec![
                "UPDATE audit_events SET seq = -1 WHERE seq = 1",
                "UPDATE audit_events SET seq = 1 WHERE seq = 2",
                "UPDATE audit_events SET seq = 2 WHERE seq = -1",
            ],
        ),
    ];
    for (kind, statements) in tamperings {
        let hub = spawn_hub().await;
        hub.id_token_for(RP_MATCH, "alice").await;
        let token = hub.auditor_token(AUDITOR_ALL, None).await;
        assert!(
            verify_offline(&hub, &token, |e| e).await.0,
            "{kind}: clean before"
        );
        let db = store::Database::open(&hub.database_url).await.unwrap();
        assert!(db
            .audit_self_check(&hub.published_keys().await)
            .await
            .unwrap()
            .is_clean());
        for sql in statements {
            db.execute_raw(sql).await.unwrap();
        }
        let (ok, text) = verify_offline(&hub, &token, |e| e).await;
        assert!(!ok, "{kind}: hub audit verify must fail: {text}");
        assert!(
            !db.audit_self_check(&hub.published_keys().await)
                .await
                .unwrap()
                .is_clean(),
            "{kind}: self-check must fail"
        );
    }
}

/// `hub audit check` against the hub's database: a summary for a person, `--json` for
/// scripts, and a non-zero exit listing each problem once the log is altered.
#[tokio::test]
async fn hub_audit_check_reports_for_people_and_scripts() {
    let hub = spawn_hub().await;
    hub.id_token_for(RP_MATCH, "alice").await;
    let check = |json: bool| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_hub"));
        command
            .args(["audit", "check"])
            .env_remove("HUB_CONFIG")
            .env("HUB_DATABASE__URL", &hub.database_url)
            .env("HUB_DATA__DIR", hub.data_dir.path());
        if json {
            command.arg("--json");
        }
        let output = command.output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        (output.status.success(), stdout)
    };
    let (ok, text) = check(false);
    assert!(ok, "{text}");
    assert!(text.contains("intact"), "{text}");
    assert!(!text.contains("AuditCheckReport"), "no Debug dump: {text}");
    let (ok, json) = check(true);
    assert!(ok, "{json}");
    let report: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(report["intact"], true);
    assert!(report["events_checked"].as_u64().unwrap() >= 3, "{report}");
    assert_eq!(report["problems"], serde_json::json!([]));

    let db = store::Database::open(&hub.database_url).await.unwrap();
    db.execute_raw(
        r#"UPDATE audit_events SET body = REPLACE(body, '"instance":"', '"instance":"forged-') WHERE seq = 1"#,
    )
        .await
        .unwrap();
    let (ok, text) = check(false);
    assert!(!ok);
    assert!(text.contains("DOES NOT VERIFY"), "{text}");
    assert!(text.contains("at 1: leaf_hash_mismatch"), "{text}");
    let (ok, json) = check(true);
    assert!(!ok);
    let report: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(report["intact"], false);
    assert_eq!(
        report["problems"][0]["kind"], "leaf_hash_mismatch",
        "{report}"
    );
    assert_eq!(report["problems"][0]["seq"], 1);
}

#[tokio::test]
async fn no_personal_data_in_any_event() {
    let hub = spawn_hub().await;
    for (rp, person) in [
        (RP_MATCH, "alice"),
        (RP_CREATE, "bob"),
        (RP_MATCH, "dana"),
        (RP_CREATE, "erik"),
    ] {
        hub.id_token_for(rp, person).await;
    }
    hub.cycle3_journey(&AuthRequest::new(RP_CYCLE3)).await;
    let token = hub.auditor_token(AUDITOR_ALL, None).await;
    let (_, export) = hub.audit_get(&token, "/export.jsonl").await;
    let export = export.to_lowercase();
    assert!(export.contains("assertion_issued"));
    for person in devkit::test_people() {
        let mut personal = vec![person.full_name(), person.family_name.clone()];
        personal.extend(person.birthdate.clone());
        for address in person.address.iter().chain(&person.previous_addresses) {
            personal.push(address.postcode.clone());
            personal.extend(address.lines.iter().cloned());
        }
        for value in personal {
            assert!(
                !export.contains(&format!("\"{}\"", value.to_lowercase())),
                "{value} in the log"
            );
            assert!(
                !export.contains(&format!(" {}", value.to_lowercase())),
                "{value} in the log"
            );
        }
        assert!(
            !export.contains(&format!("\"{}\"", person.subject)),
            "IdP subject in the log"
        );
    }
    assert!(!export.contains("qq445566c"));
}

#[tokio::test]
async fn pruning_archives_first_and_the_tree_stays_verifiable() {
    let hub = spawn_hub().await;
    hub.id_token_for(RP_MATCH, "alice").await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let cutoff_time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    hub.id_token_for(RP_MATCH, "dana").await;
    let all = hub.auditor_token(AUDITOR_ALL, None).await;
    let (_, before) = hub.audit_get(&all, "/events?limit=1000").await;
    let before: Value = serde_json::from_str(&before).unwrap();
    let old: Vec<u64> = before["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["time"].as_str().unwrap() < cutoff_time.as_str())
        .map(|e| e["index"].as_u64().unwrap())
        .collect();
    assert!(!old.is_empty());

    let settings = hub::Settings::load(None)
        .unwrap()
        .with(serde_json::json!({"data": {"dir": hub.data_dir.path()}, "database": {"url": hub.database_url}}))
        .unwrap();
    let (keys, _) = hub::app::load_or_create_keys(&settings).unwrap();
    let jwks = keys.jwks();
    let seal = hub::app::log_seal(keys).unwrap();
    let db = store::Database::open(&hub.database_url).await.unwrap();
    let archive = tempfile::tempdir().unwrap();
    let report = hub::verification_log::retention::prune(
        &db,
        &seal,
        &jwks,
        "test",
        &cutoff_time,
        archive.path(),
    )
    .await
    .unwrap();
    assert_eq!(report.archived, old.len() as u64);

    // The archive verifies offline, on its own.
    let (ok, text) = hub_audit_verify(archive.path());
    assert!(ok, "{text}");
    let archived = std::fs::read_to_string(archive.path().join("events.jsonl")).unwrap();
    assert_eq!(archived.lines().count(), old.len());

    // Pruned events are gone from the API; later ones still prove against new checkpoints.
    let (_, after) = hub.audit_get(&all, "/events?limit=1000").await;
    let after: Value = serde_json::from_str(&after).unwrap();
    let indices: Vec<u64> = after["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["index"].as_u64().unwrap())
        .collect();
    assert!(indices.iter().all(|i| !old.contains(i)));
    let latest = *indices.last().unwrap();
    let (status, _) = hub
        .audit_get(&all, &format!("/proof/inclusion?index={latest}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = hub
        .audit_get(&all, &format!("/proof/inclusion?index={}", old[0]))
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a pruned event has no content to prove"
    );
    assert!(db
        .audit_self_check(&hub.published_keys().await)
        .await
        .unwrap()
        .is_clean());
}

#[tokio::test]
async fn checkpoints_are_read_without_side_effects_and_published_in_the_log() {
    let hub = spawn_hub().await;
    hub.id_token_for(RP_MATCH, "alice").await;
    let all = hub.auditor_token(AUDITOR_ALL, None).await;
    let db = store::Database::open(&hub.database_url).await.unwrap();
    let keys = hub.published_keys().await;

    // Reading the current checkpoint signs and stores nothing: it is the head's seal.
    let size = db.audit_size().await.unwrap();
    let (status, first) = hub.audit_get(&all, "/checkpoint").await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let (_, again) = hub.audit_get(&all, "/checkpoint").await;
    assert_eq!(first, again, "the same checkpoint until the log grows");
    let current: audit::Checkpoint = serde_json::from_str(&first).unwrap();
    assert_eq!(current.tree_size, size);
    current.verify(&keys).expect("signed by the hub");
    assert!(db.checkpoints().await.unwrap().is_empty());
    assert_eq!(db.audit_size().await.unwrap(), size);

    // Publishing stores it and records it in the log; with nothing new, once only.
    let settings = hub::Settings::load(None)
        .unwrap()
        .with(serde_json::json!({"data": {"dir": hub.data_dir.path()}, "database": {"url": hub.database_url}}))
        .unwrap();
    let (signing_keys, _) = hub::app::load_or_create_keys(&settings).unwrap();
    let seal = hub::app::log_seal(signing_keys).unwrap();
    let published = hub::verification_log::checkpoints::publish(&db, &seal, "test")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(published, current);
    let again = hub::verification_log::checkpoints::publish(&db, &seal, "test")
        .await
        .unwrap();
    assert_eq!(again, Some(current.clone()), "nothing new since: not again");
    let (status, list) = hub.audit_get(&all, "/checkpoints").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let list: Value = serde_json::from_str(&list).unwrap();
    assert_eq!(list["checkpoints"], serde_json::json!([current]));
    let records = hub.events_of_type("checkpoint_published").await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["checkpoint"], serde_json::json!(current));
    let report = db.audit_self_check(&keys).await.unwrap();
    assert!(report.is_clean(), "{report:?}");

    // Deleting the published checkpoint is noticed, through the log's record of it.
    db.execute_raw("DELETE FROM audit_checkpoints")
        .await
        .unwrap();
    let report = db.audit_self_check(&keys).await.unwrap();
    assert_eq!(
        report.problems.iter().map(|p| p.kind).collect::<Vec<_>>(),
        vec![store::AuditProblemKind::CheckpointMissing]
    );
}

#[tokio::test]
async fn auditors_verify_inclusion_and_consistency_proofs_offline() {
    let hub = spawn_hub().await;
    hub.id_token_for(RP_MATCH, "alice").await;
    let token = hub.auditor_token(AUDITOR_ALL, None).await;
    let (_, first) = hub.audit_get(&token, "/checkpoint").await;
    let first_size = serde_json::from_str::<Value>(&first).unwrap()["tree_size"]
        .as_u64()
        .unwrap();
    hub.id_token_for(RP_MATCH, "dana").await;
    let (_, second) = hub.audit_get(&token, "/checkpoint").await;
    let second_size = serde_json::from_str::<Value>(&second).unwrap()["tree_size"]
        .as_u64()
        .unwrap();
    assert!(second_size > first_size + 1);
    let jwks = hub.get_text("/jwks").await;

    let (status, inclusion) = hub
        .audit_get(
            &token,
            &format!("/proof/inclusion?index={first_size}&tree_size={second_size}"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{inclusion}");
    let verify_inclusion = |proof: &str, checkpoint: &str| {
        hub_audit_with_files(
            &[
                "verify-inclusion",
                "--proof",
                "{proof.json}",
                "--checkpoint",
                "{checkpoint.json}",
                "--jwks",
                "{jwks.json}",
            ],
            &[
                ("proof.json", proof),
                ("checkpoint.json", checkpoint),
                ("jwks.json", &jwks),
            ],
        )
    };
    let (ok, text) = verify_inclusion(&inclusion, &second);
    assert!(ok, "{text}");
    assert!(text.contains(&format!("event {first_size} (")), "{text}");
    let mut altered: Value = serde_json::from_str(&inclusion).unwrap();
    altered["event"]["rp"] = "another-service".into();
    let (ok, text) = verify_inclusion(&altered.to_string(), &second);
    assert!(!ok, "an altered event must not verify");
    assert!(text.contains("not proved to be in the log"), "{text}");
    let (ok, text) = verify_inclusion(&inclusion, &first);
    assert!(!ok, "a proof for another size must not verify");
    assert!(text.contains("the proof is for tree size"), "{text}");

    let (status, consistency) = hub
        .audit_get(
            &token,
            &format!("/proof/consistency?first={first_size}&second={second_size}"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{consistency}");
    let verify_consistency = |proof: &str, first: &str, second: &str| {
        hub_audit_with_files(
            &[
                "verify-consistency",
                "--proof",
                "{proof.json}",
                "--first",
                "{first.json}",
                "--second",
                "{second.json}",
                "--jwks",
                "{jwks.json}",
            ],
            &[
                ("proof.json", proof),
                ("first.json", first),
                ("second.json", second),
                ("jwks.json", &jwks),
            ],
        )
    };
    let (ok, text) = verify_consistency(&consistency, &first, &second);
    assert!(ok, "{text}");
    assert!(text.contains("consistent"), "{text}");
    let mut forked: Value = serde_json::from_str(&consistency).unwrap();
    forked["proof"][0] = audit::encode_hash(&[7; 32]).into();
    let (ok, text) = verify_consistency(&forked.to_string(), &first, &second);
    assert!(!ok, "a forged proof must not verify");
    assert!(text.contains("not proved to have only grown"), "{text}");
    let (ok, _) = verify_consistency(&consistency, &second, &first);
    assert!(!ok, "checkpoints swapped must not verify");
}

#[tokio::test]
async fn checkpoints_are_served_as_signed_notes_for_witnesses() {
    let hub = spawn_hub().await;
    hub.id_token_for(RP_MATCH, "alice").await;
    let token = hub.auditor_token(AUDITOR_ALL, None).await;
    let (status, log) = hub.audit_get(&token, "/log").await;
    assert_eq!(status, StatusCode::OK, "{log}");
    let log: Value = serde_json::from_str(&log).unwrap();
    let origin = log["origin"].as_str().unwrap();
    let port = hub.url.rsplit(':').next().unwrap();
    assert_eq!(origin, format!("127.0.0.1:{port}/verification-log"));
    let verifier = audit::NoteVerifier::parse(log["note_verifier_key"].as_str().unwrap()).unwrap();

    for query in ["", "&tree_size=1"] {
        let (_, json) = hub.audit_get(&token, &format!("/checkpoint?{query}")).await;
        let json: audit::Checkpoint = serde_json::from_str(&json).unwrap();
        let (status, note) = hub
            .audit_get(&token, &format!("/checkpoint?format=note{query}"))
            .await;
        assert_eq!(status, StatusCode::OK, "{note}");
        let checkpoint = audit::verify_checkpoint_note(&note, &verifier, origin).unwrap();
        assert_eq!(checkpoint.tree_size, json.tree_size);
        assert_eq!(audit::encode_hash(&checkpoint.root), json.root_hash);
        let forged = note.replacen(
            &format!("\n{}\n", json.tree_size),
            &format!("\n{}\n", json.tree_size + 1),
            1,
        );
        assert!(audit::verify_checkpoint_note(&forged, &verifier, origin).is_err());
    }
    let (status, _) = hub.audit_get(&token, "/checkpoint?format=xml").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = hub
        .http
        .get(format!("{}/audit/v1/checkpoint?format=note", hub.url))
        .send()
        .await
        .map(|r| (r.status(), ()))
        .unwrap();
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // The key is the one under data.dir/keys that `hub audit note-key` prints.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_hub"))
        .args(["audit", "note-key"])
        .env_remove("HUB_CONFIG")
        .env("HUB_DATA__DIR", hub.data_dir.path())
        .env("HUB_SERVER__PUBLIC_URL", &hub.url)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "verifier key: {}",
            log["note_verifier_key"].as_str().unwrap()
        )),
        "{stdout}"
    );
}
