//! The registry of relying parties and identity providers, changed while the hub runs:
//! the admin API (its checks, its authentication, its OpenAPI document), the log of every
//! change, and what citizens see of an identity provider's lifecycle on the picker.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::util::*;

const RP_NEW: &str = "rp-new";

/// A picker for `request` in a fresh browser: its page.
async fn picker(hub: &TestHub, request: &AuthRequest) -> String {
    let (status, _, page) = Browser::new().get(&request.url(hub)).await.page();
    assert_eq!(status, StatusCode::OK, "{page}");
    page
}

fn offers(page: &str, idp: &str) -> bool {
    page.contains(&format!("value=\"{idp}\""))
}

/// A P1 journey of RP_MATCH: both demo IdPs may serve it.
fn p1_request() -> AuthRequest {
    AuthRequest::new(RP_MATCH).set("acr_values", Some("P1"))
}

#[tokio::test]
async fn a_relying_party_registered_through_the_api_completes_a_journey_at_once() {
    let hub = spawn_hub().await;
    let before = hub.get_text("/healthz").await;
    assert!(!before.is_empty());
    let document = rp_settings(RP_NEW, TEST_RP_CALLBACK, json!({"account_creation": true}));
    let (status, entry) = hub.admin("POST", "/relying-parties", Some(document)).await;
    assert_eq!(status, StatusCode::CREATED, "{entry}");
    assert_eq!(entry["status"], "active");
    assert_eq!(entry["updated_by"], OPERATOR);
    assert_eq!(entry["settings"]["client_secret"], "[REDACTED]");

    let request = AuthRequest::new(RP_NEW);
    let code = hub.code_for(&request, "alice").await;
    let (status, tokens) = hub
        .redeem(RP_NEW, &secret_of(RP_NEW), &code, &request.verifier)
        .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let id_token = tokens["id_token"].as_str().expect("id_token");
    let claims = hub.verify_id_token(id_token, RP_NEW).await;
    assert_eq!(claims["match"]["status"], "created", "{claims}");
    let access_token = tokens["access_token"].as_str().expect("access_token");
    assert_eq!(hub.userinfo(access_token).await.0, StatusCode::OK);

    let changes = hub.events_of_type("registry_changed").await;
    let added = changes
        .iter()
        .find(|e| e["rp"] == RP_NEW)
        .unwrap_or_else(|| panic!("no registry_changed for {RP_NEW}: {changes:?}"));
    assert_eq!(added["outcome"], "added");
    assert_eq!(added["actor"], OPERATOR);
    assert!(added["fields"]
        .as_array()
        .is_some_and(|f| f.contains(&json!("redirect_uris"))));
    // The configuration's own parties were seeded, and logged as such.
    assert!(changes
        .iter()
        .any(|e| e["rp"] == RP_MATCH && e["actor"] == "config" && e["outcome"] == "added"));

    // Disabled: refused at once, at /authorize and at /token.
    let (status, _) = hub
        .admin("POST", &format!("/relying-parties/{RP_NEW}/disable"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = Browser::new().get(&request.url(&hub)).await.page();
    assert_eq!(status, StatusCode::BAD_REQUEST, "a disabled RP is unknown");
    let (status, _) = hub.userinfo(access_token).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "its tokens no longer answer"
    );
    // Disabling it again changes nothing, and logs nothing.
    let (_, before) = hub
        .admin("GET", &format!("/relying-parties/{RP_NEW}"), None)
        .await;
    let (status, again) = hub
        .admin("POST", &format!("/relying-parties/{RP_NEW}/disable"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["revision"], before["revision"]);
    let (status, _) = hub
        .admin("POST", &format!("/relying-parties/{RP_NEW}/retire"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = hub
        .admin("POST", &format!("/relying-parties/{RP_NEW}/enable"), None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "retiring is final: {body}");
}

#[tokio::test]
async fn bad_admin_input_gets_a_clear_400_and_changes_nothing() {
    let hub = spawn_hub().await;
    let (_, before) = hub.admin("GET", "/relying-parties", None).await;
    let good = || rp_settings(RP_NEW, "https://service.example/callback", json!({}));
    let with = |patch: Value| {
        let mut doc = good();
        doc.as_object_mut()
            .expect("object")
            .extend(patch.as_object().expect("object").clone());
        doc
    };
    let bad = [
        (with(json!({"colour": "blue"})), "unknown field"),
        (
            with(json!({"redirect_uris": ["http://service.example/cb"]})),
            "https",
        ),
        (with(json!({"redirect_uris": ["/callback"]})), "absolute"),
        (
            with(json!({"redirect_uris": ["https://service.example/cb#frag"]})),
            "fragment",
        ),
        (with(json!({"jwks_uri": "not a url"})), "jwks_uri"),
        (with(json!({"client_id": "has space"})), "client_id"),
        (with(json!({"default_level": "P9"})), "default_level"),
        (with(json!({"client_secret": null})), "client_secret"),
        (
            with(json!({"client_secret": "[REDACTED]"})),
            "client_secret",
        ),
        (
            with(
                json!({"matching_service": {"url": "http://matching.example/", "jwks_uri": "https://matching.example/jwks"}}),
            ),
            "matching_service.url",
        ),
    ];
    for (document, expected) in bad {
        let (status, body) = hub
            .admin("POST", "/relying-parties", Some(document.clone()))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{document}: {body}");
        assert_eq!(body["error"], "invalid_request");
        let description = body["error_description"].as_str().unwrap_or_default();
        assert!(
            description.contains(expected),
            "{expected:?} not in {description:?}"
        );
    }
    let duplicate = rp_settings(RP_MATCH, TEST_RP_CALLBACK, json!({}));
    let (status, body) = hub.admin("POST", "/relying-parties", Some(duplicate)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body["error_description"]
        .as_str()
        .is_some_and(|d| d.contains("already exists")));
    for (patch, expected) in [
        (json!({"client_id": "renamed"}), StatusCode::BAD_REQUEST),
        (
            json!({"redirect_uris": ["http://evil.example/cb"]}),
            StatusCode::BAD_REQUEST,
        ),
        (json!(["not", "an", "object"]), StatusCode::BAD_REQUEST),
        (json!({"unknown": 1}), StatusCode::BAD_REQUEST),
    ] {
        let (status, body) = hub
            .admin(
                "PATCH",
                &format!("/relying-parties/{RP_MATCH}"),
                Some(patch),
            )
            .await;
        assert_eq!(status, expected, "{body}");
    }
    let (status, _) = hub
        .admin(
            "PATCH",
            "/relying-parties/nobody",
            Some(json!({"name": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let token = hub.admin_token().await;
    let not_json = hub
        .http
        .post(format!("{}/admin/v1/identity-providers", hub.url))
        .bearer_auth(token)
        .body("{not json")
        .send()
        .await
        .expect("request");
    assert_eq!(not_json.status(), StatusCode::BAD_REQUEST);

    let (_, after) = hub.admin("GET", "/relying-parties", None).await;
    assert_eq!(before, after, "nothing changed");
    // The journey of an RP whose update was refused still works.
    hub.code_for(&AuthRequest::new(RP_MATCH), "alice").await;
}

#[tokio::test]
async fn the_admin_api_requires_an_operator_with_the_admin_scope() {
    let hub = spawn_hub().await;
    let url = format!("{}/admin/v1/relying-parties", hub.url);
    let anonymous = hub.http.get(&url).send().await.expect("request");
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let auditor = hub.auditor_token(AUDITOR_ALL, None).await;
    let audited = hub
        .http
        .get(&url)
        .bearer_auth(auditor)
        .send()
        .await
        .expect("request");
    assert_eq!(audited.status(), StatusCode::FORBIDDEN);
    let wrong_secret = hub
        .http
        .post(format!("{}/token", hub.url))
        .basic_auth(OPERATOR, Some("guess"))
        .form(&[("grant_type", "client_credentials"), ("scope", "admin")])
        .send()
        .await
        .expect("token request");
    assert_eq!(wrong_secret.status(), StatusCode::UNAUTHORIZED);
    let rejected = hub.events_of_type("request_rejected").await;
    for outcome in ["operator_token_invalid", "operator_auth_failed"] {
        assert!(
            outcomes(&rejected).contains(&outcome.to_owned()),
            "{outcome}"
        );
    }
    hub.admin_token().await;
    let issued = hub.events_of_type("operator_token_issued").await;
    assert_eq!(issued.len(), 1);
    assert_eq!(issued[0]["actor"], OPERATOR);
}

/// Every operation the OpenAPI document describes is a route of the hub (answered by the
/// admin API, in JSON), and every admin route is in the document.
#[tokio::test]
async fn the_openapi_document_describes_the_admin_routes() {
    let hub = spawn_hub().await;
    let spec: Value =
        serde_json::from_str(&hub.get_text("/admin/v1/openapi.json").await).expect("openapi JSON");
    assert_eq!(spec["openapi"], "3.1.0");
    let mut documented = Vec::new();
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for method in ["get", "post", "patch", "put", "delete"] {
            if item.get(method).is_some() {
                documented.push(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    documented.sort();
    let mut routes: Vec<String> = ["relying-parties", "identity-providers"]
        .iter()
        .flat_map(|kind| {
            [
                format!("GET /{kind}"),
                format!("POST /{kind}"),
                format!("GET /{kind}/{{id}}"),
                format!("PATCH /{kind}/{{id}}"),
                format!("POST /{kind}/{{id}}/{{action}}"),
            ]
        })
        .chain(["GET /openapi.json".to_owned()])
        .collect();
    routes.sort();
    assert_eq!(documented, routes);
    let token = hub.admin_token().await;
    for operation in &documented {
        let (method, path) = operation.split_once(' ').expect("operation");
        let path = path
            .replace("{id}", "nobody")
            .replace("{action}", "disable");
        let response = hub
            .http
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).expect("method"),
                format!("{}/admin/v1{path}", hub.url),
            )
            .bearer_auth(&token)
            .json(&json!({}))
            .send()
            .await
            .expect("request");
        let status = response.status();
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{operation}");
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert!(
            status.is_success() || body["error"].is_string(),
            "{operation}: {status} is not the admin API's own answer"
        );
        if status.is_client_error() {
            let documented_statuses = &spec["paths"][operation.split_once(' ').expect("op").1]
                [method.to_lowercase()]["responses"];
            assert!(
                documented_statuses[status.as_str()].is_object(),
                "{operation}: {status} is not documented"
            );
        }
    }
    let undocumented = hub
        .http
        .delete(format!("{}/admin/v1/relying-parties/{RP_MATCH}", hub.url))
        .bearer_auth(&token)
        .send()
        .await
        .expect("request");
    assert!(undocumented.status().is_client_error());
}

#[tokio::test]
async fn the_picker_follows_each_identity_providers_lifecycle() {
    let hub = spawn_hub().await;
    let page = picker(&hub, &p1_request()).await;
    assert!(
        offers(&page, IDP_MAIN) && offers(&page, IDP_BASIC),
        "{page}"
    );

    let path = format!("/identity-providers/{IDP_BASIC}");
    let patch = |p: Value| hub.admin("PATCH", &path, Some(p));
    let (status, body) = patch(json!({"temporarily_unavailable": "Back at 6pm"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let page = picker(&hub, &p1_request()).await;
    assert!(
        !offers(&page, IDP_BASIC),
        "not selectable while unavailable"
    );
    assert!(
        page.contains("Not available right now") && page.contains("Back at 6pm"),
        "{page}"
    );
    // Chosen anyway (a page from before the notice): the picker again, no journey to it.
    let browser = Browser::new();
    let (_, url, page) = browser.get(&p1_request().url(&hub)).await.page();
    let crafted = page.replace(
        &format!("value=\"{IDP_MAIN}\""),
        &format!("value=\"{IDP_BASIC}\""),
    );
    let (status, _, again) = browser
        .submit(&url, &crafted, "/journey/idp", &[("idp", IDP_BASIC)])
        .await
        .page();
    assert_eq!(status, StatusCode::OK);
    assert!(again.contains("Back at 6pm"), "{again}");

    patch(json!({"temporarily_unavailable": null, "registration_until": "2020-01-01T00:00:00Z"}))
        .await;
    let page = picker(&hub, &p1_request()).await;
    assert!(offers(&page, IDP_BASIC));
    assert!(
        page.contains("Only for people who already have an account"),
        "{page}"
    );

    patch(json!({"registration_until": null, "relying_parties": ["another-service"]})).await;
    assert!(
        !offers(&picker(&hub, &p1_request()).await, IDP_BASIC),
        "onboarding others only"
    );
    patch(json!({"relying_parties": [RP_MATCH]})).await;
    assert!(
        offers(&picker(&hub, &p1_request()).await, IDP_BASIC),
        "onboarding this RP"
    );

    patch(json!({"relying_parties": null, "certified_until": "2021-01-01T00:00:00Z"})).await;
    assert!(
        !offers(&picker(&hub, &p1_request()).await, IDP_BASIC),
        "certification lapsed"
    );
    patch(json!({"certified_until": null, "authentication_until": "2021-01-01T00:00:00Z"})).await;
    assert!(
        !offers(&picker(&hub, &p1_request()).await, IDP_BASIC),
        "left the scheme"
    );
    patch(json!({"authentication_until": null})).await;

    hub.admin(
        "POST",
        &format!("/identity-providers/{IDP_BASIC}/disable"),
        None,
    )
    .await;
    assert!(
        !offers(&picker(&hub, &p1_request()).await, IDP_BASIC),
        "disabled"
    );
    hub.admin(
        "POST",
        &format!("/identity-providers/{IDP_BASIC}/enable"),
        None,
    )
    .await;
    assert!(
        offers(&picker(&hub, &p1_request()).await, IDP_BASIC),
        "enabled again"
    );
    let changes = hub.events_of_type("registry_changed").await;
    let basic: Vec<String> = changes
        .iter()
        .filter(|e| e["idp"] == IDP_BASIC && e["actor"] == OPERATOR)
        .map(|e| e["outcome"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(basic.len(), 9, "{basic:?}");
    assert_eq!(&basic[7..], ["disabled", "enabled"]);
}

/// A citizen who is at an identity provider when an operator disables it comes back to
/// the hub's problem page (choose another company, or go back), never to an assertion.
#[tokio::test]
async fn a_journey_at_an_identity_provider_disabled_meanwhile_fails_cleanly() {
    let hub = spawn_hub().await;
    let browser = Browser::new();
    let request = AuthRequest::new(RP_MATCH);
    let (_, url, page) = browser.get(&request.url(&hub)).await.page();
    let (status, login_url, login) = browser
        .submit(&url, &page, "/journey/idp", &[("idp", IDP_MAIN)])
        .await
        .page();
    assert_eq!(status, StatusCode::OK, "{login}");
    let (status, _) = hub
        .admin(
            "POST",
            &format!("/identity-providers/{IDP_MAIN}/disable"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, problem_url, problem) = hub
        .login(&browser, &login_url, &login, AtIdp::person("alice"))
        .await
        .page();
    assert_eq!(status, StatusCode::OK);
    assert_idp_problem_page(&problem);
    // "Try again" with a company no longer on offer: the picker, without it.
    let (status, picker_url, picker) = browser
        .submit(&problem_url, &problem, "/journey/idp", &[])
        .await
        .page();
    assert_eq!(status, StatusCode::OK, "{picker}");
    assert!(!offers(&picker, IDP_MAIN), "{picker}");
    let params = browser
        .submit(&picker_url, &picker, "/journey/cancel", &[])
        .await
        .rp();
    assert_eq!(
        params.get("error").map(String::as_str),
        Some("temporarily_unavailable")
    );
    assert!(hub.events_of_type("assertion_issued").await.is_empty());
}

/// `hub rp ...` and `hub idp ...` against a running hub, as an operator uses them.
#[tokio::test]
async fn the_cli_changes_the_registry_of_a_running_hub() {
    let hub = spawn_hub().await;
    // Async: the hub it talks to runs on this test's runtime.
    let cli = |args: &[&str], secret: &str| {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_hub"));
        command
            .args(args)
            .env_remove("HUB_CONFIG")
            .env("HUB_ADMIN_URL", &hub.url)
            .env("HUB_ADMIN_CLIENT_ID", OPERATOR)
            .env("HUB_ADMIN_CLIENT_SECRET", secret);
        async move {
            let output = command.output().await.expect("run hub");
            (
                output.status.success(),
                String::from_utf8_lossy(&output.stdout).into_owned(),
                String::from_utf8_lossy(&output.stderr).into_owned(),
            )
        }
    };
    let secret = secret_of(OPERATOR);
    let file = hub.data_dir.path().join("rp-cli.toml");
    std::fs::write(
        &file,
        format!(
            "client_id = \"rp-cli\"\nname = \"Service from the CLI\"\nredirect_uris = [\"{TEST_RP_CALLBACK}\"]\n\
             token_endpoint_auth_method = \"client_secret_basic\"\nclient_secret = \"{}\"\n\
             default_level = \"P2\"\naccount_creation = true\n",
            secret_of("rp-cli")
        ),
    )
    .expect("write document");
    let (ok, out, err) = cli(
        &["rp", "add", file.to_str().expect("path"), "--json"],
        &secret,
    )
    .await;
    assert!(ok, "{out}{err}");
    let added: Value = serde_json::from_str(&out).expect("--json output");
    assert_eq!(added["id"], "rp-cli");
    assert_eq!(added["settings"]["client_secret"], "[REDACTED]");
    let request = AuthRequest::new("rp-cli");
    let code = hub.code_for(&request, "alice").await;
    assert!(!code.is_empty());

    // Its department records load like a configured relying party's.
    let csv = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/demo-records.csv");
    let import = tokio::process::Command::new(env!("CARGO_BIN_EXE_hub"))
        .args(["records", "import", "--rp", "rp-cli"])
        .arg(&csv)
        .env_remove("HUB_CONFIG")
        .env("HUB_DATABASE__URL", &hub.database_url)
        .env("HUB_DATA__DIR", hub.data_dir.path())
        .output()
        .await
        .expect("run hub records import");
    assert!(
        import.status.success(),
        "{}",
        String::from_utf8_lossy(&import.stderr)
    );

    let (ok, out, _) = cli(&["rp", "list"], &secret).await;
    assert!(ok);
    assert!(
        out.lines()
            .any(|l| l.starts_with("rp-cli") && l.contains("active")),
        "{out}"
    );
    let (ok, out, err) = cli(
        &[
            "idp",
            "update",
            IDP_BASIC,
            "--set",
            "temporarily_unavailable=Back at 6pm",
        ],
        &secret,
    )
    .await;
    assert!(ok, "{out}{err}");
    assert!(picker(&hub, &p1_request()).await.contains("Back at 6pm"));
    let (ok, _, _) = cli(&["idp", "disable", IDP_BASIC], &secret).await;
    assert!(ok);
    let (ok, out, _) = cli(&["idp", "show", IDP_BASIC, "--json"], &secret).await;
    assert!(ok);
    let shown: Value = serde_json::from_str(&out).expect("--json output");
    assert_eq!(shown["status"], "disabled");

    // Refusals name the problem and exit non-zero.
    let (ok, _, err) = cli(&["rp", "add", file.to_str().expect("path")], &secret).await;
    assert!(!ok);
    assert!(
        err.contains("409") && err.contains("already exists"),
        "{err}"
    );
    let (ok, _, err) = cli(&["rp", "list"], "wrong secret").await;
    assert!(!ok);
    assert!(err.contains("refused the operator's credentials"), "{err}");
}

/// An identity provider's certification end date, set through the API, is exported
/// among the expiries (and warned about ahead of time).
#[tokio::test]
async fn an_identity_providers_certification_end_is_an_expiry_metric() {
    let hub = spawn_hub_with(Options {
        settings: Some(json!({"expiry": {"check_interval_secs": 1}})),
        ..Default::default()
    })
    .await;
    let (status, body) = hub
        .admin(
            "PATCH",
            &format!("/identity-providers/{IDP_MAIN}"),
            Some(json!({"certified_until": "2031-01-01T00:00:00Z"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let series =
        format!("hub_expiry_timestamp_seconds{{kind=\"idp_certification\",subject=\"{IDP_MAIN}\"}} 1924992000");
    for _ in 0..40 {
        if hub.get_text("/metrics").await.contains(&series) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("no {series} in /metrics");
}
