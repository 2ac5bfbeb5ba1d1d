//! Pushed authorization requests (RFC 9126), signed request objects (RFC 9101) and the
//! cache of RP keys from a `jwks_uri`: the hub acts only on what the RP itself pushed or
//! signed, once, and every refusal is in the verification log.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine;
use reqwest::StatusCode;
use serde_json::{json, Value};
use url::Url;

use crate::util::*;

/// Must push its requests (`require_pushed_authorization_requests`).
const RP_PAR_ONLY: &str = "rp-par-only";
/// Authenticates with `private_key_jwt`, keys at a `jwks_uri` the test serves.
const RP_ROTATING: &str = "rp-rotating";
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const REQUEST_OBJECT_TYP: &str = "oauth-authz-req+jwt";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A JWKS document the test can change while the hub runs (the RP's `jwks_uri`).
#[derive(Clone)]
struct JwksServer {
    url: String,
    jwks: Arc<Mutex<Value>>,
    fetches: Arc<AtomicUsize>,
}

impl JwksServer {
    fn start(jwks: Value) -> Self {
        use actix_web::{web, App, HttpResponse, HttpServer};
        let (listener, origin) = free_listener();
        let jwks = Arc::new(Mutex::new(jwks));
        let fetches = Arc::new(AtomicUsize::new(0));
        let (served, counted) = (jwks.clone(), fetches.clone());
        let server = HttpServer::new(move || {
            let (served, counted) = (served.clone(), counted.clone());
            App::new().route(
                "/jwks",
                web::get().to(move || {
                    counted.fetch_add(1, Ordering::SeqCst);
                    let body = served.lock().unwrap().clone();
                    async move { HttpResponse::Ok().json(body) }
                }),
            )
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        tokio::spawn(server);
        Self {
            url: format!("{origin}/jwks"),
            jwks,
            fetches,
        }
    }

    fn publish(&self, jwks: Value) {
        *self.jwks.lock().unwrap() = jwks;
    }
}

/// A hub with the standard RPs plus [`RP_PAR_ONLY`] and [`RP_ROTATING`] (keys at `jwks`).
async fn spawn(jwks: &JwksServer) -> TestHub {
    let (hub_l, _) = free_listener();
    spawn_hub_on(
        hub_l,
        Options::default(),
        Extra {
            relying_parties: vec![
                rp_settings(
                    RP_PAR_ONLY,
                    TEST_RP_CALLBACK,
                    json!({"require_pushed_authorization_requests": true}),
                ),
                rp_settings(
                    RP_ROTATING,
                    TEST_RP_CALLBACK,
                    json!({"token_endpoint_auth_method": "private_key_jwt", "client_secret": null,
                           "jwks_uri": jwks.url}),
                ),
            ],
            ..Extra::default()
        },
    )
    .await
}

async fn spawn_default() -> TestHub {
    let unused = JwksServer::start(token::SigningKey::generate().unwrap().jwks());
    spawn(&unused).await
}

/// How a test client authenticates at `/par`.
enum Auth<'a> {
    Secret(&'a str),
    WrongSecret(&'a str),
    Assertion(&'a str, String),
    Nothing,
}

/// A `private_key_jwt` client assertion for `client_id` signed with `key`, for `aud`.
fn assertion(key: &token::SigningKey, client_id: &str, aud: &str) -> String {
    key.sign(&json!({"iss": client_id, "sub": client_id, "aud": aud,
        "jti": token::random_opaque(12), "iat": now(), "exp": now() + 60}))
        .unwrap()
}

/// POST /par: status and JSON body.
async fn push(hub: &TestHub, auth: Auth<'_>, fields: &[(String, String)]) -> (StatusCode, Value) {
    let mut fields = fields.to_vec();
    let mut request = hub.http.post(format!("{}/par", hub.url));
    match auth {
        Auth::Secret(id) => request = request.basic_auth(id, Some(secret_of(id))),
        Auth::WrongSecret(id) => request = request.basic_auth(id, Some("wrong")),
        Auth::Assertion(id, jwt) => {
            fields.retain(|(k, _)| k != "client_id");
            fields.extend([
                ("client_id".to_owned(), id.to_owned()),
                ("client_assertion_type".to_owned(), JWT_BEARER.to_owned()),
                ("client_assertion".to_owned(), jwt),
            ]);
        }
        Auth::Nothing => {}
    }
    let response = request.form(&fields).send().await.unwrap();
    let status = response.status();
    if status.is_client_error() {
        assert_eq!(
            response.headers()["cache-control"],
            "no-store",
            "OAuth errors are not cached"
        );
    }
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Pushes `request` for its client with its secret; the `request_uri`.
async fn pushed(hub: &TestHub, request: &AuthRequest) -> String {
    let (status, body) = push(hub, Auth::Secret(&request.client_id), &request.params).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["request_uri"].as_str().unwrap().to_owned()
}

/// `/authorize` with these query parameters.
fn authorize_url(hub: &TestHub, query: &[(&str, &str)]) -> String {
    let mut url = Url::parse(&format!("{}/authorize", hub.url)).unwrap();
    url.query_pairs_mut().extend_pairs(query);
    url.into()
}

/// The claims of a valid request object for `request` (its parameters as members).
fn request_claims(hub: &TestHub, request: &AuthRequest) -> Value {
    let mut claims = json!({"iss": request.client_id, "aud": hub.url, "exp": now() + 300,
        "iat": now(), "nbf": now(), "jti": token::random_opaque(12)});
    for (k, v) in &request.params {
        claims[k] = json!(v);
    }
    claims
}

fn request_object(key: &token::SigningKey, claims: &Value) -> String {
    key.sign_typed(claims, REQUEST_OBJECT_TYP).unwrap()
}

/// The browser at the picker with `url`, then at the IdP as Alice: the code.
async fn code_via(hub: &TestHub, url: &str, expected_state: &str) -> String {
    let browser = Browser::new();
    let (status, page_url, picker) = browser.get(url).await.page();
    assert_eq!(status, StatusCode::OK, "picker expected:\n{picker}");
    let params = hub
        .choose_and_login(&browser, &page_url, &picker, AtIdp::person("alice"))
        .await
        .rp();
    assert_eq!(
        params.get("state").map(String::as_str),
        Some(expected_state)
    );
    assert_eq!(params.get("iss"), Some(&hub.url));
    params.get("code").expect("code").clone()
}

/// POST /token for [`RP_JWT`] with a fresh client assertion.
async fn redeem_with_assertion(hub: &TestHub, code: &str, verifier: &str) -> (StatusCode, Value) {
    let response = hub
        .http
        .post(format!("{}/token", hub.url))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", TEST_RP_CALLBACK),
            ("code_verifier", verifier),
            ("client_id", RP_JWT),
            ("client_assertion_type", JWT_BEARER),
            (
                "client_assertion",
                &hub.client_assertion(&token::random_opaque(12)),
            ),
        ])
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

/// The `request_rejected` events with `outcome`, as `(rp, outcome)`.
async fn rejections(hub: &TestHub, outcome: &str) -> Vec<(Option<String>, String)> {
    hub.events_of_type("request_rejected")
        .await
        .into_iter()
        .filter(|e| e["outcome"] == outcome)
        .map(|e| (e["rp"].as_str().map(str::to_owned), outcome.to_owned()))
        .collect()
}

async fn journeys_started(hub: &TestHub) -> usize {
    hub.events_of_type("journey_started").await.len()
}

/// A refusal on a hub page (no redirect): the page's reference code is `code`.
async fn refused_on_page(url: &str, code: &str) {
    let (status, _, body) = Browser::new().get(url).await.page();
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body.contains(&format!("Reference: {code}")),
        "expected {code}:\n{body}"
    );
}

#[tokio::test]
async fn discovery_advertises_par_and_signed_request_objects() {
    let hub = spawn_default().await;
    let doc: Value = hub
        .http
        .get(format!("{}/.well-known/openid-configuration", hub.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        doc["pushed_authorization_request_endpoint"],
        format!("{}/par", hub.url)
    );
    assert_eq!(doc["require_pushed_authorization_requests"], false);
    assert_eq!(doc["request_parameter_supported"], true);
    assert_eq!(doc["request_uri_parameter_supported"], false);
    let algs = doc["request_object_signing_alg_values_supported"]
        .as_array()
        .unwrap();
    assert!(algs.contains(&json!("ES256")));
    assert!(!algs.contains(&json!("none")) && !algs.contains(&json!("HS256")));
}

#[tokio::test]
async fn a_pushed_request_leads_to_tokens_and_the_query_cannot_alter_it() {
    let hub = spawn_default().await;
    let request = AuthRequest::new(RP_MATCH);
    let (status, body) = push(&hub, Auth::Secret(RP_MATCH), &request.params).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["expires_in"], 60);
    let request_uri = body["request_uri"].as_str().unwrap();
    assert!(request_uri.starts_with("urn:ietf:params:oauth:request_uri:"));
    // Parameters in the query besides client_id are ignored (RFC 9126 §4).
    let url = authorize_url(
        &hub,
        &[
            ("client_id", RP_MATCH),
            ("request_uri", request_uri),
            ("state", "from-the-browser"),
            ("acr_values", "P0"),
        ],
    );
    let code = code_via(&hub, &url, &request.state).await;
    let claims = hub.claims_for(RP_MATCH, &code, &request.verifier).await;
    assert_eq!(claims["nonce"], json!(request.nonce));
    assert_eq!(claims["acr"], "P2", "the pushed level, not the query's");
    assert_eq!(claims["match"]["status"], "matched");
}

#[tokio::test]
async fn a_request_uri_is_single_use() {
    let hub = spawn_default().await;
    let request = AuthRequest::new(RP_MATCH);
    let request_uri = pushed(&hub, &request).await;
    let url = authorize_url(
        &hub,
        &[("client_id", RP_MATCH), ("request_uri", &request_uri)],
    );
    let (status, _, _) = Browser::new().get(&url).await.page();
    assert_eq!(status, StatusCode::OK, "first use shows the picker");
    refused_on_page(&url, "request_uri_invalid").await;
    assert_eq!(
        journeys_started(&hub).await,
        1,
        "only the first use started one"
    );
    assert_eq!(
        rejections(&hub, "request_uri_unknown").await,
        [(Some(RP_MATCH.to_owned()), "request_uri_unknown".to_owned())]
    );
}

#[tokio::test]
async fn an_unknown_request_uri_is_refused_on_a_page_or_at_a_registered_redirect_uri() {
    let hub = spawn_default().await;
    let unknown = format!(
        "urn:ietf:params:oauth:request_uri:{}",
        token::random_opaque(32)
    );
    refused_on_page(
        &authorize_url(&hub, &[("client_id", RP_MATCH), ("request_uri", &unknown)]),
        "request_uri_invalid",
    )
    .await;
    // The query names a redirect URI the RP registered: safe to send the error there.
    let params = Browser::new()
        .get(&authorize_url(
            &hub,
            &[
                ("client_id", RP_MATCH),
                ("request_uri", &unknown),
                ("redirect_uri", TEST_RP_CALLBACK),
                ("state", "s-1"),
            ],
        ))
        .await
        .rp();
    assert_eq!(params["error"], "invalid_request_uri");
    assert_eq!(params["reason"], "request_uri_invalid");
    assert_eq!(params["state"], "s-1");
    assert!(!params.contains_key("code"));
    // Any other request_uri (one the RP hosts) is not supported.
    refused_on_page(
        &authorize_url(
            &hub,
            &[
                ("client_id", RP_MATCH),
                ("request_uri", "https://rp.example/request.jwt"),
            ],
        ),
        "request_uri_not_supported",
    )
    .await;
    assert_eq!(journeys_started(&hub).await, 0);
    assert_eq!(rejections(&hub, "request_uri_unknown").await.len(), 2);
    assert_eq!(rejections(&hub, "request_uri_not_supported").await.len(), 1);
}

#[tokio::test]
async fn an_expired_request_uri_is_refused() {
    let hub = spawn_default().await;
    let request_uri = pushed(&hub, &AuthRequest::new(RP_MATCH)).await;
    tokio::time::sleep(std::time::Duration::from_secs(61)).await;
    refused_on_page(
        &authorize_url(
            &hub,
            &[("client_id", RP_MATCH), ("request_uri", &request_uri)],
        ),
        "request_uri_invalid",
    )
    .await;
    assert_eq!(journeys_started(&hub).await, 0);
    assert_eq!(rejections(&hub, "request_uri_unknown").await.len(), 1);
}

#[tokio::test]
async fn a_request_uri_pushed_by_another_client_is_refused_and_not_spent() {
    let hub = spawn_default().await;
    let request = AuthRequest::new(RP_MATCH);
    let request_uri = pushed(&hub, &request).await;
    refused_on_page(
        &authorize_url(
            &hub,
            &[("client_id", RP_CREATE), ("request_uri", &request_uri)],
        ),
        "request_uri_invalid",
    )
    .await;
    assert_eq!(journeys_started(&hub).await, 0);
    assert_eq!(
        rejections(&hub, "request_uri_wrong_client").await,
        [(
            Some(RP_CREATE.to_owned()),
            "request_uri_wrong_client".to_owned()
        )]
    );
    // Its owner can still use it.
    let url = authorize_url(
        &hub,
        &[("client_id", RP_MATCH), ("request_uri", &request_uri)],
    );
    code_via(&hub, &url, &request.state).await;
}

#[tokio::test]
async fn an_rp_that_requires_par_is_refused_at_plain_authorize() {
    let hub = spawn_default().await;
    let request = AuthRequest::new(RP_PAR_ONLY);
    let params = Browser::new().get(&request.url(&hub)).await.rp();
    assert_eq!(params["error"], "invalid_request");
    assert_eq!(params["reason"], "par_required");
    assert_eq!(params["state"], request.state);
    assert!(!params.contains_key("code"));
    assert_eq!(journeys_started(&hub).await, 0);
    assert_eq!(
        rejections(&hub, "par_required").await,
        [(Some(RP_PAR_ONLY.to_owned()), "par_required".to_owned())]
    );
    // Pushed, the same request goes through.
    let request_uri = pushed(&hub, &request).await;
    let url = authorize_url(
        &hub,
        &[("client_id", RP_PAR_ONLY), ("request_uri", &request_uri)],
    );
    let code = code_via(&hub, &url, &request.state).await;
    hub.claims_for(RP_PAR_ONLY, &code, &request.verifier).await;
}

#[tokio::test]
async fn a_pushed_request_with_bad_client_authentication_is_invalid_client() {
    let hub = spawn_default().await;
    let request = AuthRequest::new(RP_MATCH);
    for auth in [
        Auth::WrongSecret(RP_MATCH),
        Auth::Nothing,
        // A secret client cannot authenticate with an assertion, nor vice versa.
        Auth::Assertion(
            RP_MATCH,
            assertion(&hub.rp_jwt_key, RP_MATCH, &format!("{}/par", hub.url)),
        ),
        Auth::WrongSecret(RP_JWT),
        // The body's client_id must be the authenticated client.
        Auth::Secret(RP_CREATE),
    ] {
        let (status, body) = push(&hub, auth, &request.params).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(body["error"], "invalid_client");
        assert!(body.get("request_uri").is_none());
    }
    assert_eq!(rejections(&hub, "client_auth_failed").await.len(), 5);
}

#[tokio::test]
async fn pushed_requests_are_checked_like_authorization_requests() {
    let hub = spawn_default().await;
    let cases = [
        (
            AuthRequest::new(RP_MATCH).set("code_challenge_method", Some("plain")),
            "invalid_request",
            "pkce_required",
        ),
        (
            AuthRequest::new(RP_MATCH).set("redirect_uri", Some("https://evil.example/cb")),
            "invalid_request",
            "invalid_redirect_uri",
        ),
        (
            AuthRequest::new(RP_MATCH).set("scope", Some("profile")),
            "invalid_scope",
            "invalid_scope",
        ),
        (
            AuthRequest::new(RP_MATCH).set("response_mode", Some("form_post")),
            "invalid_request",
            "unsupported_response_mode",
        ),
        (
            AuthRequest::new(RP_MATCH)
                .set("request_uri", Some("urn:ietf:params:oauth:request_uri:abc")),
            "invalid_request",
            "request_uri_at_par",
        ),
    ];
    for (request, error, outcome) in cases {
        let (status, body) = push(&hub, Auth::Secret(RP_MATCH), &request.params).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{outcome}: {body}");
        assert_eq!(body["error"], error, "{outcome}: {body}");
        assert!(body.get("request_uri").is_none());
        assert_eq!(rejections(&hub, outcome).await.len(), 1, "{outcome}");
    }
    let response = hub
        .http
        .post(format!("{}/par", hub.url))
        .basic_auth(RP_MATCH, Some(secret_of(RP_MATCH)))
        .form(&[("state", "x".repeat(200_000))])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn a_signed_request_object_at_authorize_leads_to_tokens() {
    let hub = spawn_default().await;
    let request = AuthRequest::new(RP_JWT);
    let jwt = request_object(&hub.rp_jwt_key, &request_claims(&hub, &request));
    // Only the request object's parameters count, not the query's duplicates.
    let url = authorize_url(
        &hub,
        &[
            ("client_id", RP_JWT),
            ("request", &jwt),
            ("state", "from-the-browser"),
            ("nonce", "from-the-browser"),
        ],
    );
    let code = code_via(&hub, &url, &request.state).await;
    let (status, tokens) = redeem_with_assertion(&hub, &code, &request.verifier).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let claims = hub
        .verify_id_token(tokens["id_token"].as_str().unwrap(), RP_JWT)
        .await;
    assert_eq!(claims["nonce"], json!(request.nonce));
}

#[tokio::test]
async fn a_signed_request_object_can_be_pushed() {
    let hub = spawn_default().await;
    let request = AuthRequest::new(RP_JWT);
    let jwt = request_object(&hub.rp_jwt_key, &request_claims(&hub, &request));
    let client_auth = assertion(&hub.rp_jwt_key, RP_JWT, &format!("{}/par", hub.url));
    let (status, body) = push(
        &hub,
        Auth::Assertion(RP_JWT, client_auth),
        &[("request".to_owned(), jwt)],
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let url = authorize_url(
        &hub,
        &[
            ("client_id", RP_JWT),
            ("request_uri", body["request_uri"].as_str().unwrap()),
        ],
    );
    let code = code_via(&hub, &url, &request.state).await;
    let (status, tokens) = redeem_with_assertion(&hub, &code, &request.verifier).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
}

/// A valid request object, and variants of it that must all be refused, each named.
fn bad_request_objects(hub: &TestHub) -> (String, Vec<(&'static str, String)>) {
    let request = AuthRequest::new(RP_JWT);
    let claims = request_claims(hub, &request);
    let with = |patch: Value| {
        let mut c = claims.clone();
        for (k, v) in patch.as_object().unwrap() {
            c[k] = v.clone();
        }
        request_object(&hub.rp_jwt_key, &c)
    };
    let unsigned = format!(
        "{}.{}.",
        b64(json!({"alg": "none", "typ": REQUEST_OBJECT_TYP})
            .to_string()
            .as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    // HS256 with the RP's public key as the secret: the classic algorithm confusion.
    let hs256 = {
        let signing_input = format!(
            "{}.{}",
            b64(
                json!({"alg": "HS256", "typ": REQUEST_OBJECT_TYP, "kid": hub.rp_jwt_key.kid()})
                    .to_string()
                    .as_bytes()
            ),
            b64(claims.to_string().as_bytes())
        );
        let secret = hub.rp_jwt_key.public_jwk().to_string();
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
        let tag = ring::hmac::sign(&key, signing_input.as_bytes());
        format!("{signing_input}.{}", b64(tag.as_ref()))
    };
    let valid = request_object(&hub.rp_jwt_key, &claims);
    let bad = vec![
        ("alg none", unsigned),
        ("HS256 keyed with the public key", hs256),
        (
            "wrong aud",
            with(json!({"aud": "https://another-op.example"})),
        ),
        (
            "expired",
            with(json!({"exp": now() - 120, "iat": now() - 400})),
        ),
        (
            "lifetime over 10 minutes",
            with(json!({"exp": now() + 3600})),
        ),
        ("wrong iss", with(json!({"iss": RP_MATCH}))),
        ("client_id mismatch", with(json!({"client_id": RP_MATCH}))),
        ("no client_id", with(json!({"client_id": null}))),
        (
            "another key",
            token::SigningKey::generate()
                .unwrap()
                .sign_typed(&claims, REQUEST_OBJECT_TYP)
                .unwrap(),
        ),
        (
            "wrong typ",
            hub.rp_jwt_key.sign_typed(&claims, "JWT").unwrap(),
        ),
    ];
    (valid, bad)
}

#[tokio::test]
async fn bad_request_objects_are_invalid_request_object() {
    let hub = spawn_default().await;
    let par_auth = || {
        Auth::Assertion(
            RP_JWT,
            assertion(&hub.rp_jwt_key, RP_JWT, &format!("{}/par", hub.url)),
        )
    };
    let (valid, cases) = bad_request_objects(&hub);
    for (name, jwt) in &cases {
        // No registered redirect URI in the query: a hub page.
        refused_on_page(
            &authorize_url(&hub, &[("client_id", RP_JWT), ("request", jwt)]),
            "invalid_request_object",
        )
        .await;
        // With one: an error redirect to it.
        let params = Browser::new()
            .get(&authorize_url(
                &hub,
                &[
                    ("client_id", RP_JWT),
                    ("request", jwt),
                    ("redirect_uri", TEST_RP_CALLBACK),
                    ("state", "s-2"),
                ],
            ))
            .await
            .rp();
        assert_eq!(params["error"], "invalid_request_object", "{name}");
        assert!(!params.contains_key("code"), "{name}");
        // And at /par.
        let (status, body) = push(&hub, par_auth(), &[("request".to_owned(), jwt.clone())]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name}: {body}");
        assert_eq!(body["error"], "invalid_request_object", "{name}: {body}");
    }
    // An RP with no keys registered cannot use request objects at all.
    let request = AuthRequest::new(RP_MATCH);
    let mut claims = request_claims(&hub, &request);
    claims["iss"] = json!(RP_MATCH);
    refused_on_page(
        &authorize_url(
            &hub,
            &[
                ("client_id", RP_MATCH),
                ("request", &request_object(&hub.rp_jwt_key, &claims)),
            ],
        ),
        "invalid_request_object",
    )
    .await;
    assert_eq!(journeys_started(&hub).await, 0, "nothing started");
    assert_eq!(
        rejections(&hub, "invalid_request_object").await.len(),
        3 * cases.len() + 1
    );
    // The unaltered request object is accepted: each refusal was for its alteration.
    let (status, _, picker) = Browser::new()
        .get(&authorize_url(
            &hub,
            &[("client_id", RP_JWT), ("request", &valid)],
        ))
        .await
        .page();
    assert_eq!(status, StatusCode::OK, "{picker}");
    assert_eq!(journeys_started(&hub).await, 1);
}

#[tokio::test]
async fn a_replayed_request_object_is_invalid_request_object() {
    let hub = spawn_default().await;
    let request = AuthRequest::new(RP_JWT);
    let jwt = request_object(&hub.rp_jwt_key, &request_claims(&hub, &request));
    let url = authorize_url(&hub, &[("client_id", RP_JWT), ("request", &jwt)]);
    let (status, _, _) = Browser::new().get(&url).await.page();
    assert_eq!(status, StatusCode::OK, "first use shows the picker");
    refused_on_page(&url, "invalid_request_object").await;
    assert_eq!(journeys_started(&hub).await, 1);
    assert_eq!(
        rejections(&hub, "request_object_replayed").await,
        [(
            Some(RP_JWT.to_owned()),
            "request_object_replayed".to_owned()
        )]
    );
}

#[tokio::test]
async fn a_replayed_client_assertion_is_invalid_client_and_audited() {
    let hub = spawn_default().await;
    let request = AuthRequest::new(RP_JWT);
    let client_auth = assertion(&hub.rp_jwt_key, RP_JWT, &hub.url);
    let (status, body) = push(
        &hub,
        Auth::Assertion(RP_JWT, client_auth.clone()),
        &request.params,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = push(&hub, Auth::Assertion(RP_JWT, client_auth), &request.params).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"], "invalid_client");
    assert!(body.get("request_uri").is_none());
    assert_eq!(
        rejections(&hub, "client_assertion_replayed").await,
        [(
            Some(RP_JWT.to_owned()),
            "client_assertion_replayed".to_owned()
        )]
    );
    // The same at /token: the code is not spent by the refused attempt.
    let code = hub.code_for(&request, "alice").await;
    let used = hub.client_assertion("once");
    let redeem = |assertion: String| {
        let (http, url) = (hub.http.clone(), format!("{}/token", hub.url));
        let (code, verifier) = (code.clone(), request.verifier.clone());
        async move {
            let response = http
                .post(url)
                .form(&[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", TEST_RP_CALLBACK),
                    ("code_verifier", &verifier),
                    ("client_assertion_type", JWT_BEARER),
                    ("client_assertion", &assertion),
                ])
                .send()
                .await
                .unwrap();
            let status = response.status();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    // Spend the assertion's jti at /par first, then replay it at /token.
    let (status, _) = push(
        &hub,
        Auth::Assertion(RP_JWT, used.clone()),
        &AuthRequest::new(RP_JWT).params,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = redeem(used).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"], "invalid_client");
    assert!(body.get("id_token").is_none());
    assert_eq!(rejections(&hub, "client_assertion_replayed").await.len(), 2);
    let (status, body) = redeem(hub.client_assertion("fresh")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn a_key_rotated_at_the_rp_jwks_uri_is_accepted_without_restart() {
    let old = token::SigningKey::generate().unwrap();
    let new = token::SigningKey::generate().unwrap();
    let jwks = JwksServer::start(old.jwks());
    let hub = spawn(&jwks).await;
    let par = format!("{}/par", hub.url);
    let request = AuthRequest::new(RP_ROTATING);
    let (status, body) = push(
        &hub,
        Auth::Assertion(RP_ROTATING, assertion(&old, RP_ROTATING, &par)),
        &request.params,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // The RP rotates: only the new key is published from now on.
    jwks.publish(new.jwks());
    let request = AuthRequest::new(RP_ROTATING);
    let jwt = request_object(&new, &request_claims(&hub, &request));
    let (status, body) = push(
        &hub,
        Auth::Assertion(RP_ROTATING, assertion(&new, RP_ROTATING, &par)),
        &[("request".to_owned(), jwt)],
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "new kid accepted: {body}");
    let url = authorize_url(
        &hub,
        &[
            ("client_id", RP_ROTATING),
            ("request_uri", body["request_uri"].as_str().unwrap()),
        ],
    );
    code_via(&hub, &url, &request.state).await;

    // The retired key no longer authenticates.
    let (status, body) = push(
        &hub,
        Auth::Assertion(RP_ROTATING, assertion(&old, RP_ROTATING, &par)),
        &AuthRequest::new(RP_ROTATING).params,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    // Nor does a key the RP never published, and probing with unknown kids does not make
    // the hub fetch the RP's JWKS again (at most one refetch per 30 s).
    for _ in 0..3 {
        let stranger = token::SigningKey::generate().unwrap();
        let (status, _) = push(
            &hub,
            Auth::Assertion(RP_ROTATING, assertion(&stranger, RP_ROTATING, &par)),
            &AuthRequest::new(RP_ROTATING).params,
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(rejections(&hub, "client_auth_failed").await.len(), 4);
    assert_eq!(
        jwks.fetches.load(Ordering::SeqCst),
        2,
        "the first load and one refetch for the new kid"
    );
}
