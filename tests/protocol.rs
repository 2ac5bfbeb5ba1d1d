//! The OpenID Provider surface: discovery, authorization request checks, token endpoint
//! and userinfo, including the attacks RFC 9700 asks us to reject.

use reqwest::StatusCode;
use serde_json::Value;

use crate::util::*;

#[tokio::test]
async fn discovery_describes_the_hub() {
    let hub = spawn_hub().await;
    let doc: Value = hub
        .http
        .get(format!("{}/.well-known/openid-configuration", hub.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["issuer"], hub.url);
    assert_eq!(doc["token_endpoint"], format!("{}/token", hub.url));
    assert_eq!(
        doc["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
    assert_eq!(
        doc["subject_types_supported"],
        serde_json::json!(["pairwise"])
    );
    assert_eq!(doc["ui_locales_supported"], serde_json::json!(["en", "cy"]));
    let jwks: Value = hub
        .http
        .get(doc["jwks_uri"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"][0]["alg"], "ES256");
    assert!(
        jwks["keys"][0].get("d").is_none(),
        "no private key material published"
    );
}

#[tokio::test]
async fn a_replayed_code_is_invalid_grant_and_revokes_the_first_tokens() {
    let hub = spawn_hub().await;
    let request = AuthRequest::new(RP_MATCH);
    let code = hub.code_for(&request, "alice").await;
    let (status, first) = hub
        .redeem(RP_MATCH, &secret_of(RP_MATCH), &code, &request.verifier)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, again) = hub
        .redeem(RP_MATCH, &secret_of(RP_MATCH), &code, &request.verifier)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(again["error"], "invalid_grant");
    let (status, _) = hub.userinfo(first["access_token"].as_str().unwrap()).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "tokens from a replayed code are revoked"
    );
}

#[tokio::test]
async fn a_wrong_pkce_verifier_is_invalid_grant() {
    let hub = spawn_hub().await;
    let request = AuthRequest::new(RP_MATCH);
    let code = hub.code_for(&request, "alice").await;
    let (status, body) = hub
        .redeem(
            RP_MATCH,
            &secret_of(RP_MATCH),
            &code,
            &token::random_opaque(32),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
    // The code is spent: a second attempt with the right verifier fails too.
    let (status, _) = hub
        .redeem(RP_MATCH, &secret_of(RP_MATCH), &code, &request.verifier)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

/// The code is exchanged for a stored access token before the request's checks; a
/// request that then fails withdraws it, so nothing never handed out stays in Redis.
#[tokio::test]
async fn a_failed_redemption_leaves_no_access_token_stored() {
    let scratch = tempfile::tempdir().unwrap();
    let storage = storage_settings(Backend::Production, scratch.path()).await;
    let prefix = storage["sessions"]["key_prefix"]
        .as_str()
        .unwrap()
        .to_owned();
    let hub = spawn_hub_with(Options {
        backend: Some(Backend::Production),
        storage: Some(storage),
        ..Options::default()
    })
    .await;
    let client = redis::Client::open(redis_url()).unwrap();
    let mut redis = client.get_multiplexed_async_connection().await.unwrap();
    let pattern = format!("{prefix}:access_token:*");
    let mut stored_tokens = async || -> usize {
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(&pattern)
            .query_async(&mut redis)
            .await
            .unwrap();
        keys.len()
    };
    let request = AuthRequest::new(RP_MATCH);
    let code = hub.code_for(&request, "alice").await;
    let wrong_verifier = token::random_opaque(32);
    let (status, _) = hub
        .redeem(RP_MATCH, &secret_of(RP_MATCH), &code, &wrong_verifier)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(stored_tokens().await, 0);
    // A redemption that succeeds keeps its one.
    let request = AuthRequest::new(RP_MATCH);
    let code = hub.code_for(&request, "alice").await;
    let (status, body) = hub
        .redeem(RP_MATCH, &secret_of(RP_MATCH), &code, &request.verifier)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(stored_tokens().await, 1);
}

#[tokio::test]
async fn a_wrong_client_secret_is_invalid_client() {
    let hub = spawn_hub().await;
    let request = AuthRequest::new(RP_MATCH);
    let code = hub.code_for(&request, "alice").await;
    let (status, body) = hub
        .redeem(RP_MATCH, "wrong", &code, &request.verifier)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "invalid_client");
}

#[tokio::test]
async fn a_code_cannot_be_redeemed_by_another_client() {
    let hub = spawn_hub().await;
    let request = AuthRequest::new(RP_MATCH);
    let code = hub.code_for(&request, "alice").await;
    let (status, body) = hub
        .redeem(RP_CREATE, &secret_of(RP_CREATE), &code, &request.verifier)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test]
async fn an_unregistered_redirect_uri_is_shown_on_a_hub_page_never_redirected_to() {
    let hub = spawn_hub().await;
    for uri in [
        "https://evil.example/cb",
        "http://127.0.0.1:9/callback/extra",
        "http://127.0.0.1:9/callback?x=1",
    ] {
        let request = AuthRequest::new(RP_MATCH).set("redirect_uri", Some(uri));
        let response = hub.http.get(request.url(&hub)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{uri}");
        assert!(response.headers().get("location").is_none(), "{uri}");
        assert!(response
            .text()
            .await
            .unwrap()
            .contains("an address we do not recognise"));
    }
    let unknown = AuthRequest::new("nobody");
    let response = hub.http.get(unknown.url(&hub)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.headers().get("location").is_none());
}

#[tokio::test]
async fn authorization_requests_without_pkce_s256_are_refused() {
    let hub = spawn_hub().await;
    for request in [
        AuthRequest::new(RP_MATCH).set("code_challenge", None),
        AuthRequest::new(RP_MATCH).set("code_challenge_method", Some("plain")),
        AuthRequest::new(RP_MATCH).set("code_challenge_method", None),
    ] {
        let params = Browser::new().get(&request.url(&hub)).await.rp();
        assert_eq!(params["error"], "invalid_request");
        assert_eq!(params["reason"], "pkce_required");
    }
}

/// Only `response_mode=query` is supported: `form_post`, `fragment` or `jwt` are refused
/// (in the query, where the RP's library also looks for errors), not silently answered
/// in the query as if the RP had not asked.
#[tokio::test]
async fn response_modes_other_than_query_are_refused() {
    let hub = spawn_hub().await;
    for mode in ["form_post", "fragment", "jwt", "query.jwt"] {
        let request = AuthRequest::new(RP_MATCH).set("response_mode", Some(mode));
        let params = Browser::new().get(&request.url(&hub)).await.rp();
        assert_eq!(params["error"], "invalid_request", "{mode}");
        assert_eq!(params["reason"], "unsupported_response_mode", "{mode}");
        assert_eq!(params["state"], request.state, "{mode}");
    }
    let request = AuthRequest::new(RP_MATCH).set("response_mode", Some("query"));
    let (status, _, _) = Browser::new().get(&request.url(&hub)).await.page();
    assert_eq!(status, StatusCode::OK, "query is the default: the picker");
}

#[tokio::test]
async fn other_bad_authorization_requests_get_standard_errors() {
    let hub = spawn_hub().await;
    let cases = [
        (
            AuthRequest::new(RP_MATCH).set("response_type", Some("token")),
            "unsupported_response_type",
        ),
        (
            AuthRequest::new(RP_MATCH).set("scope", Some("profile")),
            "invalid_scope",
        ),
        (
            AuthRequest::new(RP_MATCH).set("acr_values", Some("LOA9")),
            "invalid_request",
        ),
        (
            AuthRequest::new(RP_MATCH).set("prompt", Some("none")),
            "login_required",
        ),
        (
            AuthRequest::new(RP_MATCH).set("request", Some("eyJ.x.y")),
            "invalid_request_object",
        ),
    ];
    for (request, error) in cases {
        let params = Browser::new().get(&request.url(&hub)).await.rp();
        assert_eq!(params["error"], error);
        assert_eq!(params["state"], request.state);
    }
}

#[tokio::test]
async fn private_key_jwt_authenticates_and_assertions_are_single_use() {
    let hub = spawn_hub().await;
    let redeem = |code: String, verifier: String, assertion: String| {
        let http = hub.http.clone();
        let url = format!("{}/token", hub.url);
        async move {
            let response = http
                .post(url)
                .form(&[
                    ("grant_type", "authorization_code"),
                    ("code", code.as_str()),
                    ("redirect_uri", TEST_RP_CALLBACK),
                    ("code_verifier", verifier.as_str()),
                    ("client_id", RP_JWT),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ),
                    ("client_assertion", assertion.as_str()),
                ])
                .send()
                .await
                .unwrap();
            let status = response.status();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    let request = AuthRequest::new(RP_JWT);
    let code = hub.code_for(&request, "alice").await;
    let assertion = hub.client_assertion("jti-1");
    let (status, body) = redeem(code, request.verifier.clone(), assertion.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let claims = hub
        .verify_id_token(body["id_token"].as_str().unwrap(), RP_JWT)
        .await;
    assert_eq!(claims["aud"], RP_JWT);

    let request = AuthRequest::new(RP_JWT);
    let code = hub.code_for(&request, "alice").await;
    let (status, body) = redeem(code.clone(), request.verifier.clone(), assertion).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "replayed assertion: {body}"
    );
    let forged = token::SigningKey::generate()
        .unwrap()
        .sign(&jwt_payload(&hub.client_assertion("jti-2")))
        .unwrap();
    let (status, _) = redeem(code.clone(), request.verifier.clone(), forged).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "assertion signed by another key"
    );
    let (status, _) = redeem(
        code,
        request.verifier.clone(),
        hub.client_assertion("jti-3"),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "client authentication failures do not spend the code"
    );
}

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// RFC 6749 §2.3: one client authentication method per request. A valid Basic header
/// with another client's valid assertion, or with a secret in the body too, is
/// `invalid_request` (and audited); the code is not spent.
#[tokio::test]
async fn two_client_authentication_methods_in_one_request_are_invalid_request() {
    let hub = spawn_hub().await;
    let request = AuthRequest::new(RP_MATCH);
    let code = hub.code_for(&request, "alice").await;
    let secret = secret_of(RP_MATCH);
    let grant = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", TEST_RP_CALLBACK),
        ("code_verifier", request.verifier.as_str()),
    ];
    let assertion = hub.client_assertion("jti-mixed");
    let with_assertion = [
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", assertion.as_str()),
    ];
    let with_secret = [("client_secret", secret.as_str())];
    for extra in [&with_assertion[..], &with_secret[..]] {
        let form: Vec<_> = grant.iter().chain(extra).copied().collect();
        let (status, body) = hub.token_request(Some((RP_MATCH, &secret)), &form).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{extra:?}: {body}");
        assert_eq!(body["error"], "invalid_request", "{extra:?}: {body}");
    }
    let auditor = secret_of(AUDITOR_ALL);
    let (status, body) = hub
        .token_request(
            Some((AUDITOR_ALL, &auditor)),
            &[
                ("grant_type", "client_credentials"),
                ("client_secret", auditor.as_str()),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "auditor: {body}");
    assert_eq!(body["error"], "invalid_request", "auditor: {body}");

    let mixed = hub
        .events_of_type("request_rejected")
        .await
        .into_iter()
        .filter(|e| e["outcome"] == "client_auth_methods_mixed")
        .count();
    assert_eq!(mixed, 3, "each refusal is in the verification log");
    let (status, body) = hub.token_request(Some((RP_MATCH, &secret)), &grant).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "one method redeems the code: {body}"
    );
}

/// POST /token redeeming `code` for [`RP_JWT`], authenticated by `assertion`.
async fn redeem_with_assertion(
    hub: &TestHub,
    request: &AuthRequest,
    code: &str,
    assertion: &str,
) -> (StatusCode, Value) {
    hub.token_request(
        None,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", TEST_RP_CALLBACK),
            ("code_verifier", &request.verifier),
            ("client_id", RP_JWT),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", assertion),
        ],
    )
    .await
}

/// A client assertion's `aud` names the hub only: its issuer, token endpoint or PAR
/// endpoint. An array that also names anyone else is refused, as is a foreign string.
#[tokio::test]
async fn a_client_assertion_addressed_to_anyone_else_too_is_refused() {
    let hub = spawn_hub().await;
    let (token, par) = (format!("{}/token", hub.url), format!("{}/par", hub.url));
    let with_aud = |aud: &Value| hub.client_assertion_with(serde_json::json!({ "aud": aud }));
    let request = AuthRequest::new(RP_JWT);
    let code = hub.code_for(&request, "alice").await;
    for aud in [
        serde_json::json!([token, "https://elsewhere.example/token"]),
        serde_json::json!([hub.url, par, "https://elsewhere.example"]),
        serde_json::json!("https://elsewhere.example/token"),
        serde_json::json!([]),
    ] {
        let (status, body) = redeem_with_assertion(&hub, &request, &code, &with_aud(&aud)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "aud {aud}: {body}");
        assert_eq!(body["error"], "invalid_client", "aud {aud}: {body}");
    }
    let ours = serde_json::json!([hub.url, token, par]);
    let (status, body) = redeem_with_assertion(&hub, &request, &code, &with_aud(&ours)).await;
    assert_eq!(status, StatusCode::OK, "the hub's own names: {body}");
    let request = AuthRequest::new(RP_JWT);
    let code = hub.code_for(&request, "alice").await;
    let issuer = serde_json::json!(hub.url);
    let (status, body) = redeem_with_assertion(&hub, &request, &code, &with_aud(&issuer)).await;
    assert_eq!(status, StatusCode::OK, "the issuer: {body}");
}

/// Client assertions valid for an hour (Authlib's default) authenticate, once; longer
/// ones are refused.
#[tokio::test]
async fn an_hour_long_client_assertion_authenticates_once() {
    let hub = spawn_hub().await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let request = AuthRequest::new(RP_JWT);
    let code = hub.code_for(&request, "alice").await;
    let too_long = hub.client_assertion_with(serde_json::json!({"iat": now, "exp": now + 7200}));
    let (status, body) = redeem_with_assertion(&hub, &request, &code, &too_long).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "two hours: {body}");
    let hour = hub.client_assertion_with(serde_json::json!({"iat": now, "exp": now + 3600}));
    let (status, body) = redeem_with_assertion(&hub, &request, &code, &hour).await;
    assert_eq!(status, StatusCode::OK, "an hour: {body}");

    let request = AuthRequest::new(RP_JWT);
    let code = hub.code_for(&request, "alice").await;
    let (status, body) = redeem_with_assertion(&hub, &request, &code, &hour).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the same assertion again: {body}"
    );
}

#[tokio::test]
async fn a_secret_cannot_stand_in_for_a_registered_private_key_jwt() {
    let hub = spawn_hub().await;
    let request = AuthRequest::new(RP_JWT);
    let code = hub.code_for(&request, "alice").await;
    let (status, body) = hub
        .redeem(RP_JWT, "anything", &code, &request.verifier)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "invalid_client");
}

#[tokio::test]
async fn userinfo_without_a_valid_token_is_401() {
    let hub = spawn_hub().await;
    let (status, _) = hub.userinfo("not-a-token").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let response = hub
        .http
        .get(format!("{}/userinfo", hub.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.headers().get("www-authenticate").is_some());
}

#[tokio::test]
async fn oversized_and_malformed_bodies_get_clear_errors() {
    let hub = spawn_hub().await;
    let big = "x".repeat(200_000);
    let response = hub
        .http
        .post(format!("{}/token", hub.url))
        .form(&[("code", big.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let response = hub
        .http
        .post(format!("{}/journey/idp", hub.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("%%%")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let response = hub
        .http
        .get(format!("{}/no-such-page", hub.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn health_and_readiness() {
    let hub = spawn_hub().await;
    let r = hub
        .http
        .get(format!("{}/healthz", hub.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r: Value = hub
        .http
        .get(format!("{}/readyz", hub.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["database"], "ok");
}

#[tokio::test]
async fn the_hub_refuses_to_start_on_an_unmigrated_database() {
    let data_dir = tempfile::tempdir().unwrap();
    let mut storage = storage_settings(Backend::of_this_run(), data_dir.path()).await;
    storage["data"] = serde_json::json!({"dir": data_dir.path()});
    let settings = hub::Settings::load(None).unwrap().with(storage).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let err = hub::Application::build(settings, listener)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("hub migrate"), "{err}");
}
