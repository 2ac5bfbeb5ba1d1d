//! The demo IdP is a real OP: these tests drive it over HTTP like a relying party would.

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use reqwest::StatusCode;
use serde_json::{json, Value};
use url::Url;

use super::{ClientAuth, DemoIdp, IdpClient, IdpConfig};
use crate::test_people;

const CLIENT: &str = "hub";
const SECRET: &str = "hub-secret";
const REDIRECT: &str = "http://127.0.0.1:1/idp/callback";
const JWT_CLIENT: &str = "hub-jwt";

struct Op {
    idp: DemoIdp,
    base: String,
    http: reqwest::Client,
}

fn bind() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").expect("bind")
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

async fn start(extra_clients: Vec<IdpClient>) -> Op {
    let listener = bind();
    let port = listener.local_addr().expect("addr").port();
    let issuer = Url::parse(&format!("http://127.0.0.1:{port}")).expect("url");
    let mut clients = vec![IdpClient {
        client_id: CLIENT.into(),
        redirect_uris: vec![REDIRECT.into()],
        auth: ClientAuth::Secret(SECRET.into()),
    }];
    clients.extend(extra_clients);
    let config = IdpConfig {
        issuer,
        name: "Demo IdP <Test & Co>".into(),
        max_level: "P2".into(),
        levels: vec!["P0".into(), "P1".into(), "P2".into(), "P3".into()],
        clients,
        people: test_people(),
    };
    let (idp, server) = DemoIdp::start(listener, config).expect("start");
    tokio::spawn(server);
    Op {
        idp,
        base: format!("http://127.0.0.1:{port}"),
        http: http(),
    }
}

/// What a client keeps between the authorization request and the token request.
struct Pending {
    verifier: String,
    state: String,
    nonce: String,
}

fn query(url: &Url) -> HashMap<String, String> {
    url.query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

impl Op {
    fn authorize_url(&self, extra: &[(&str, &str)]) -> (Url, Pending) {
        let pending = Pending {
            verifier: token::random_opaque(32),
            state: token::random_opaque(16),
            nonce: token::random_opaque(16),
        };
        let challenge = token::pkce_s256(&pending.verifier);
        let mut params: Vec<(&str, &str)> = vec![
            ("response_type", "code"),
            ("client_id", CLIENT),
            ("redirect_uri", REDIRECT),
            ("scope", "openid profile address"),
            ("state", &pending.state),
            ("nonce", &pending.nonce),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ];
        for (k, v) in extra {
            params.retain(|(pk, _)| pk != k);
            if !v.is_empty() {
                params.push((k, v));
            }
        }
        let url =
            Url::parse_with_params(&format!("{}/authorize", self.base), &params).expect("url");
        (url, pending)
    }

    /// GET /authorize, expecting the login page; returns its request id and the page.
    async fn login_page(&self, url: &Url) -> (String, String) {
        let resp = self.http.get(url.clone()).send().await.expect("authorize");
        assert_eq!(resp.status(), StatusCode::OK);
        let html = resp.text().await.expect("body");
        let marker = "name=\"request_id\" value=\"";
        let start = html.find(marker).expect("request_id field") + marker.len();
        let end = start + html[start..].find('"').expect("end quote");
        (html[start..end].to_owned(), html)
    }

    /// POST /login; returns the redirect back to the client.
    async fn login(&self, request_id: &str, subject: &str, simulate: &str) -> Url {
        let resp = self
            .http
            .post(format!("{}/login", self.base))
            .form(&[
                ("request_id", request_id),
                ("subject", subject),
                ("simulate", simulate),
            ])
            .send()
            .await
            .expect("login");
        assert_eq!(resp.status(), StatusCode::SEE_OTHER);
        location(&resp)
    }

    /// Authorize and log in; returns the redirect query parameters.
    async fn run(
        &self,
        extra: &[(&str, &str)],
        subject: &str,
        simulate: &str,
    ) -> (HashMap<String, String>, Pending) {
        let (url, pending) = self.authorize_url(extra);
        let (request_id, _) = self.login_page(&url).await;
        let back = self.login(&request_id, subject, simulate).await;
        assert!(back.as_str().starts_with(REDIRECT), "{back}");
        (query(&back), pending)
    }

    async fn code_for(&self, subject: &str) -> (String, Pending) {
        let (q, pending) = self.run(&[], subject, "normal").await;
        assert_eq!(q.get("state"), Some(&pending.state));
        (q["code"].clone(), pending)
    }

    async fn exchange_basic(&self, code: &str, verifier: &str, secret: &str) -> reqwest::Response {
        self.http
            .post(format!("{}/token", self.base))
            .basic_auth(CLIENT, Some(secret))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", verifier),
            ])
            .send()
            .await
            .expect("token")
    }

    async fn jwks(&self) -> token::VerificationKeys {
        let jwks: Value = self
            .http
            .get(format!("{}/jwks", self.base))
            .send()
            .await
            .expect("jwks")
            .json()
            .await
            .expect("json");
        token::VerificationKeys::from_jwks(&jwks).expect("keys")
    }

    async fn userinfo(&self, access_token: &str) -> reqwest::Response {
        self.http
            .get(format!("{}/userinfo", self.base))
            .bearer_auth(access_token)
            .send()
            .await
            .expect("userinfo")
    }
}

fn location(resp: &reqwest::Response) -> Url {
    let loc = resp
        .headers()
        .get("location")
        .expect("Location header")
        .to_str()
        .expect("ascii");
    Url::parse(loc).expect("absolute Location")
}

async fn oauth_error(resp: reqwest::Response) -> (StatusCode, String, String) {
    let status = resp.status();
    let body: Value = resp.json().await.expect("json error");
    (
        status,
        body["error"].as_str().unwrap_or_default().to_owned(),
        body["error_description"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

#[tokio::test]
async fn discovery_document_describes_the_op() {
    let op = start(vec![]).await;
    let d: Value = op
        .http
        .get(format!("{}/.well-known/openid-configuration", op.base))
        .send()
        .await
        .expect("discovery")
        .json()
        .await
        .expect("json");
    assert_eq!(d["issuer"], json!(op.base));
    assert_eq!(
        d["authorization_endpoint"],
        json!(format!("{}/authorize", op.base))
    );
    assert_eq!(d["token_endpoint"], json!(format!("{}/token", op.base)));
    assert_eq!(
        d["userinfo_endpoint"],
        json!(format!("{}/userinfo", op.base))
    );
    assert_eq!(d["jwks_uri"], json!(format!("{}/jwks", op.base)));
    assert_eq!(d["response_types_supported"], json!(["code"]));
    assert_eq!(d["claims_parameter_supported"], json!(true));
    assert_eq!(d["subject_types_supported"], json!(["public"]));
    assert_eq!(d["id_token_signing_alg_values_supported"], json!(["ES256"]));
    assert_eq!(
        d["token_endpoint_auth_methods_supported"],
        json!([
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt"
        ])
    );
    assert_eq!(d["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(d["acr_values_supported"], json!(["P0", "P1", "P2"]));
    assert_eq!(
        d["authorization_response_iss_parameter_supported"],
        json!(true)
    );
    assert!(d["claims_supported"]
        .as_array()
        .expect("claims")
        .contains(&json!("previous_addresses")));

    let jwks: Value = op
        .http
        .get(format!("{}/jwks", op.base))
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("json");
    assert_eq!(jwks["keys"][0]["kty"], json!("EC"));
    assert!(
        jwks["keys"][0].get("d").is_none(),
        "no private key material"
    );
}

#[tokio::test]
async fn code_flow_with_client_secret_basic_verifies_and_releases_userinfo() {
    let op = start(vec![]).await;
    let (url, pending) = op.authorize_url(&[("acr_values", "P2")]);
    let (request_id, html) = op.login_page(&url).await;
    assert!(html.contains("lang=\"en\""));
    assert!(html.contains("Log in as Alice Smith"));
    assert!(html.contains("name=\"simulate\" value=\"lower_level\""));
    assert!(html.contains("P0, P1, P2"));
    // The IdP's name is configuration, shown escaped.
    assert!(
        html.contains("Demo IdP &lt;Test &amp; Co&gt;")
            || html.contains("Demo IdP &#60;Test &#38; Co&#62;")
    );
    assert!(!html.contains("<Test & Co>"));
    assert_eq!(op.idp.authorization_requests(), vec![url.clone()]);

    let back = op.login(&request_id, "alice", "normal").await;
    let q = query(&back);
    assert_eq!(q.get("state"), Some(&pending.state));
    assert_eq!(q.get("iss"), Some(&op.base));
    let code = q["code"].clone();

    let resp = op.exchange_basic(&code, &pending.verifier, SECRET).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["token_type"], json!("Bearer"));
    assert_eq!(body["scope"], json!("openid profile address"));
    assert!(body["expires_in"].as_u64().is_some_and(|e| e > 0));
    let id_token = body["id_token"].as_str().expect("id_token");
    let access_token = body["access_token"].as_str().expect("access_token");

    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(id_token.split('.').next().expect("header"))
            .expect("b64"),
    )
    .expect("json");
    assert_eq!(header["alg"], json!("ES256"));
    assert!(header["kid"].is_string());

    let keys = op.jwks().await;
    let claims: Value = keys
        .verify(
            id_token,
            &token::Expect {
                issuer: Some(op.base.clone()),
                audience: vec![CLIENT.into()],
                leeway_secs: 0,
            },
        )
        .expect("ID token verifies against the JWKS");
    assert_eq!(claims["sub"], json!("alice"));
    assert_eq!(claims["aud"], json!(CLIENT));
    assert_eq!(claims["nonce"], json!(pending.nonce));
    assert_eq!(claims["acr"], json!("P2"));
    let iat = claims["iat"].as_u64().expect("iat");
    assert_eq!(claims["exp"].as_u64(), Some(iat + 300));
    assert!(claims["auth_time"].as_u64().is_some_and(|t| t <= iat));
    // Verification with a wrong audience fails: the token is bound to the client.
    assert!(keys
        .verify::<Value>(
            id_token,
            &token::Expect {
                issuer: Some(op.base.clone()),
                audience: vec!["someone-else".into()],
                leeway_secs: 0,
            },
        )
        .is_err());

    let resp = op.userinfo(access_token).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let info: Value = resp.json().await.expect("json");
    assert_eq!(
        info,
        json!({
            "sub": "alice",
            "given_name": "Alice",
            "family_name": "Smith",
            "birthdate": "1980-04-10",
            "gender": "female",
            "address": {"street_address": "12 High Street\nLeeds", "postal_code": "LS1 4AB"},
            "previous_family_names": [],
            "previous_addresses": [],
        })
    );
    // POST with the token in the body works too (RFC 6750 section 2.2).
    let resp = op
        .http
        .post(format!("{}/userinfo", op.base))
        .form(&[("access_token", access_token)])
        .send()
        .await
        .expect("userinfo");
    assert_eq!(resp.status(), StatusCode::OK);

    // The code is single use, and replaying it revokes the access token it produced.
    let (status, error, _) =
        oauth_error(op.exchange_basic(&code, &pending.verifier, SECRET).await).await;
    assert_eq!(
        (status, error.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );
    assert_eq!(
        op.userinfo(access_token).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

/// The `claims` request parameter (OIDC Core §5.5): the claims asked for in the ID token
/// are in it, with the values userinfo gives; nothing else is added; a malformed
/// parameter is refused.
#[tokio::test]
async fn claims_requested_for_the_id_token_are_in_it() {
    let op = start(vec![]).await;
    let wanted = r#"{"id_token":{"family_name":null,"birthdate":{"essential":true},"address":null,"email":null},"userinfo":{"gender":null}}"#;
    let (q, pending) = op.run(&[("claims", wanted)], "alice", "normal").await;
    let resp = op
        .exchange_basic(&q["code"], &pending.verifier, SECRET)
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.expect("json");
    let expect = token::Expect {
        issuer: Some(op.base.clone()),
        audience: vec![CLIENT.into()],
        leeway_secs: 0,
    };
    let id_token = body["id_token"].as_str().expect("id_token");
    let claims: Value = op.jwks().await.verify(id_token, &expect).expect("verifies");
    let access_token = body["access_token"].as_str().expect("access_token");
    let info: Value = op.userinfo(access_token).await.json().await.expect("json");
    for name in ["family_name", "birthdate", "address"] {
        assert!(
            claims[name].is_string() || claims[name].is_object(),
            "{name}"
        );
        assert_eq!(claims[name], info[name], "{name}");
    }
    for name in ["given_name", "gender", "email", "previous_addresses"] {
        assert!(
            claims.get(name).is_none(),
            "{name} was not asked for the ID token"
        );
    }
    // Without the parameter, the ID token carries no personal data.
    let (code, pending) = op.code_for("alice").await;
    let resp = op.exchange_basic(&code, &pending.verifier, SECRET).await;
    let body: Value = resp.json().await.expect("json");
    let claims: Value = op
        .jwks()
        .await
        .verify(body["id_token"].as_str().expect("id_token"), &expect)
        .expect("verifies");
    assert!(claims.get("family_name").is_none() && claims.get("birthdate").is_none());
    for bad in ["not json", "[1]", r#"{"id_token":["family_name"]}"#] {
        let (url, _) = op.authorize_url(&[("claims", bad)]);
        let resp = op.http.get(url).send().await.expect("authorize");
        assert_eq!(resp.status(), StatusCode::FOUND, "{bad}");
        assert_eq!(query(&location(&resp))["error"], "invalid_request", "{bad}");
    }
}

#[tokio::test]
async fn client_secret_post_and_bad_secrets() {
    let op = start(vec![]).await;
    let (code, pending) = op.code_for("bob").await;

    let resp = op.exchange_basic(&code, &pending.verifier, "wrong").await;
    assert!(resp.headers().contains_key("www-authenticate"));
    let (status, error, _) = oauth_error(resp).await;
    assert_eq!(
        (status, error.as_str()),
        (StatusCode::UNAUTHORIZED, "invalid_client")
    );

    let form = |secret: &'static str| {
        vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code.clone()),
            ("redirect_uri", REDIRECT.to_owned()),
            ("code_verifier", pending.verifier.clone()),
            ("client_id", CLIENT.to_owned()),
            ("client_secret", secret.to_owned()),
        ]
    };
    let resp = op
        .http
        .post(format!("{}/token", op.base))
        .form(&form("also-wrong"))
        .send()
        .await
        .expect("token");
    let (status, error, _) = oauth_error(resp).await;
    assert_eq!(
        (status, error.as_str()),
        (StatusCode::UNAUTHORIZED, "invalid_client")
    );

    // No client authentication at all.
    let resp = op
        .http
        .post(format!("{}/token", op.base))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", CLIENT),
        ])
        .send()
        .await
        .expect("token");
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    // Two methods at once is ambiguous.
    let resp = op
        .http
        .post(format!("{}/token", op.base))
        .basic_auth(CLIENT, Some(SECRET))
        .form(&form(SECRET))
        .send()
        .await
        .expect("token");
    let (status, error, _) = oauth_error(resp).await;
    assert_eq!(
        (status, error.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_request")
    );

    // Failed client authentication did not burn the code: the real client still redeems it.
    let resp = op
        .http
        .post(format!("{}/token", op.base))
        .form(&form(SECRET))
        .send()
        .await
        .expect("token");
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.expect("json");
    let info: Value = op
        .userinfo(body["access_token"].as_str().expect("at"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(info["given_name"], json!("Robert"));
    assert_eq!(info["gender"], json!("male"));
}

#[tokio::test]
async fn wrong_pkce_verifier_and_redirect_uri_fail() {
    let op = start(vec![]).await;
    let (code, _) = op.code_for("alice").await;
    let other = token::random_opaque(32);
    let (status, error, _) = oauth_error(op.exchange_basic(&code, &other, SECRET).await).await;
    assert_eq!(
        (status, error.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );

    let (code, pending) = op.code_for("alice").await;
    let resp = op
        .http
        .post(format!("{}/token", op.base))
        .basic_auth(CLIENT, Some(SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:1/other"),
            ("code_verifier", &pending.verifier),
        ])
        .send()
        .await
        .expect("token");
    let (status, error, _) = oauth_error(resp).await;
    assert_eq!(
        (status, error.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );

    let (code, _) = op.code_for("alice").await;
    let resp = op
        .http
        .post(format!("{}/token", op.base))
        .basic_auth(CLIENT, Some(SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
        ])
        .send()
        .await
        .expect("token");
    let (status, error, _) = oauth_error(resp).await;
    assert_eq!(
        (status, error.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );

    let (status, error, _) = oauth_error(op.exchange_basic("made-up", &other, SECRET).await).await;
    assert_eq!(
        (status, error.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );
}

#[tokio::test]
async fn injected_failures_return_the_expected_error_parameters() {
    let op = start(vec![]).await;
    for (simulate, error, description) in [
        ("cancel", "access_denied", "user cancelled"),
        (
            "access_denied",
            "access_denied",
            "the identity provider could not verify this person",
        ),
        (
            "temporarily_unavailable",
            "temporarily_unavailable",
            "the identity provider is temporarily unavailable",
        ),
    ] {
        let (q, pending) = op.run(&[], "alice", simulate).await;
        assert_eq!(
            q.get("error").map(String::as_str),
            Some(error),
            "{simulate}"
        );
        assert_eq!(
            q.get("error_description").map(String::as_str),
            Some(description)
        );
        assert_eq!(q.get("state"), Some(&pending.state));
        assert_eq!(q.get("iss"), Some(&op.base));
        assert!(!q.contains_key("code"));
    }
    // The raw redirect carries `error_description=user cancelled`, form-encoded: the hub
    // reads an `access_denied` whose description mentions "cancel" as `user_cancelled`.
    let (url, _) = op.authorize_url(&[]);
    let (request_id, _) = op.login_page(&url).await;
    let back = op.login(&request_id, "", "cancel").await;
    assert!(back
        .as_str()
        .contains("error=access_denied&error_description=user+cancelled"));
}

async fn asserted_acr(op: &Op, acr_values: &str, simulate: &str) -> String {
    let (q, pending) = op
        .run(&[("acr_values", acr_values)], "chris", simulate)
        .await;
    let body: Value = op
        .exchange_basic(&q["code"], &pending.verifier, SECRET)
        .await
        .json()
        .await
        .expect("json");
    let claims: Value = op
        .jwks()
        .await
        .verify(
            body["id_token"].as_str().expect("id_token"),
            &token::Expect {
                issuer: Some(op.base.clone()),
                audience: vec![CLIENT.into()],
                leeway_secs: 0,
            },
        )
        .expect("verifies");
    claims["acr"].as_str().expect("acr").to_owned()
}

#[tokio::test]
async fn levels_follow_acr_values_and_max_level() {
    let op = start(vec![]).await;
    assert_eq!(asserted_acr(&op, "P2", "normal").await, "P2");
    assert_eq!(asserted_acr(&op, "P1", "normal").await, "P1");
    assert_eq!(asserted_acr(&op, "P1 P3", "normal").await, "P1");
    assert_eq!(asserted_acr(&op, "", "normal").await, "P2");
    assert_eq!(asserted_acr(&op, "P2", "lower_level").await, "P1");
    assert_eq!(asserted_acr(&op, "P0", "lower_level").await, "P0");

    // Only levels above what the IdP can reach: refused straight away, no login page.
    let (url, pending) = op.authorize_url(&[("acr_values", "P3")]);
    let resp = op.http.get(url).send().await.expect("authorize");
    assert_eq!(resp.status(), StatusCode::FOUND);
    let q = query(&location(&resp));
    assert_eq!(q.get("error").map(String::as_str), Some("access_denied"));
    assert_eq!(
        q.get("error_description").map(String::as_str),
        Some("level not available")
    );
    assert_eq!(q.get("state"), Some(&pending.state));
    assert_eq!(q.get("iss"), Some(&op.base));
}

#[tokio::test]
async fn bad_authorization_requests() {
    let op = start(vec![]).await;
    // Unknown client or unregistered redirect URI: an error page, never a redirect.
    for extra in [
        [("client_id", "nobody"), ("scope", "openid")],
        [
            ("redirect_uri", "http://127.0.0.1:1/idp/callback/x"),
            ("scope", "openid"),
        ],
        [
            ("redirect_uri", "https://evil.example/cb"),
            ("scope", "openid"),
        ],
    ] {
        let (url, _) = op.authorize_url(&extra);
        let resp = op.http.get(url).send().await.expect("authorize");
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        assert!(!resp.headers().contains_key("location"));
        assert!(resp.text().await.expect("body").contains("<h1>"));
    }
    for (extra, error) in [
        (vec![("code_challenge", "")], "invalid_request"),
        (vec![("code_challenge_method", "plain")], "invalid_request"),
        (vec![("code_challenge_method", "")], "invalid_request"),
        (vec![("nonce", "")], "invalid_request"),
        (
            vec![("response_type", "token")],
            "unsupported_response_type",
        ),
        (vec![("scope", "profile")], "invalid_scope"),
        (vec![("request", "eyJ.x.y")], "request_not_supported"),
        (vec![("prompt", "none")], "login_required"),
    ] {
        let (url, pending) = op.authorize_url(&extra);
        let resp = op.http.get(url).send().await.expect("authorize");
        assert_eq!(resp.status(), StatusCode::FOUND, "{extra:?}");
        let q = query(&location(&resp));
        assert_eq!(q.get("error").map(String::as_str), Some(error), "{extra:?}");
        assert_eq!(q.get("state"), Some(&pending.state));
        assert_eq!(q.get("iss"), Some(&op.base));
    }
    // Missing state: still an error, without one.
    let (url, _) = op.authorize_url(&[("state", "")]);
    let resp = op.http.get(url).send().await.expect("authorize");
    let q = query(&location(&resp));
    assert_eq!(q.get("error").map(String::as_str), Some("invalid_request"));
    assert!(!q.contains_key("state"));
    // Repeated parameters are rejected.
    let (mut url, _) = op.authorize_url(&[]);
    url.query_pairs_mut().append_pair("client_id", CLIENT);
    assert_eq!(
        op.http.get(url).send().await.expect("authorize").status(),
        StatusCode::BAD_REQUEST
    );
    // Every request was recorded, good or bad.
    assert_eq!(op.idp.authorization_requests().len(), 13);
}

#[tokio::test]
async fn authorization_by_post_and_login_request_is_single_use() {
    let op = start(vec![]).await;
    let (url, pending) = op.authorize_url(&[]);
    let resp = op
        .http
        .post(format!("{}/authorize", op.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(url.query().expect("query").to_owned())
        .send()
        .await
        .expect("authorize");
    assert_eq!(resp.status(), StatusCode::OK);
    let html = resp.text().await.expect("body");
    let marker = "name=\"request_id\" value=\"";
    let start = html.find(marker).expect("field") + marker.len();
    let request_id = &html[start..start + html[start..].find('"').expect("quote")];
    assert_eq!(op.idp.authorization_requests(), vec![url]);

    // No person chosen: an error page, and the request stays usable.
    let resp = op
        .http
        .post(format!("{}/login", op.base))
        .form(&[("request_id", request_id), ("simulate", "normal")])
        .send()
        .await
        .expect("login");
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let back = op.login(request_id, "dana", "normal").await;
    assert_eq!(query(&back).get("state"), Some(&pending.state));

    let resp = op
        .http
        .post(format!("{}/login", op.base))
        .form(&[
            ("request_id", request_id),
            ("subject", "dana"),
            ("simulate", "normal"),
        ])
        .send()
        .await
        .expect("login");
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(resp.text().await.expect("body").contains("expired"));
}

#[tokio::test]
async fn userinfo_shapes_and_bad_tokens() {
    let op = start(vec![]).await;
    let (code, pending) = op.code_for("dana").await;
    let body: Value = op
        .exchange_basic(&code, &pending.verifier, SECRET)
        .await
        .json()
        .await
        .expect("json");
    let info: Value = op
        .userinfo(body["access_token"].as_str().expect("at"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        info["previous_addresses"],
        json!([{"street_address": "4 Old Road\nSwansea", "postal_code": "SA1 1AA"}])
    );
    assert!(info.get("gender").is_none());

    let (code, pending) = op.code_for("erik").await;
    let body: Value = op
        .exchange_basic(&code, &pending.verifier, SECRET)
        .await
        .json()
        .await
        .expect("json");
    let info: Value = op
        .userinfo(body["access_token"].as_str().expect("at"))
        .await
        .json()
        .await
        .expect("json");
    assert!(info.get("address").is_none());
    assert_eq!(info["birthdate"], json!("1970-03-03"));

    let resp = op.userinfo("not-a-token").await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let challenge = resp
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .expect("challenge")
        .to_owned();
    assert!(
        challenge.starts_with("Bearer") && challenge.contains("invalid_token"),
        "{challenge}"
    );

    let resp = op
        .http
        .get(format!("{}/userinfo", op.base))
        .send()
        .await
        .expect("userinfo");
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(resp.headers().contains_key("www-authenticate"));
}

/// Serves a client's JWKS with `Cache-Control: max-age=300`, as the hub publishes its
/// keys, and counts the fetches.
fn serve_jwks(jwks: Value) -> (Url, Arc<AtomicUsize>) {
    let listener = bind();
    let port = listener.local_addr().expect("addr").port();
    let fetches = Arc::new(AtomicUsize::new(0));
    let counted = fetches.clone();
    let server = actix_web::HttpServer::new(move || {
        let jwks = jwks.clone();
        let counted = counted.clone();
        actix_web::App::new().route(
            "/jwks",
            actix_web::web::get().to(move || {
                let jwks = jwks.clone();
                counted.fetch_add(1, Ordering::SeqCst);
                async move {
                    actix_web::HttpResponse::Ok()
                        .insert_header(("cache-control", "public, max-age=300"))
                        .json(jwks)
                }
            }),
        )
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .expect("listen")
    .run();
    tokio::spawn(server);
    let url = Url::parse(&format!("http://127.0.0.1:{port}/jwks")).expect("url");
    (url, fetches)
}

#[tokio::test]
async fn private_key_jwt_client_authentication() {
    let client_key = token::SigningKey::generate().expect("key");
    let (jwks_uri, fetches) = serve_jwks(client_key.jwks());
    let op = start(vec![IdpClient {
        client_id: JWT_CLIENT.into(),
        redirect_uris: vec![REDIRECT.into()],
        auth: ClientAuth::PrivateKeyJwt { jwks_uri },
    }])
    .await;
    let now = crate::forms::now_secs();
    let assertion = |aud: &str, jti: &str, exp: u64| {
        client_key
            .sign(&json!({
                "iss": JWT_CLIENT, "sub": JWT_CLIENT, "aud": aud,
                "jti": jti, "iat": now, "exp": exp,
            }))
            .expect("sign")
    };
    let token_endpoint = format!("{}/token", op.base);
    let exchange = |code: String, verifier: String, assertion: String| {
        let http = op.http.clone();
        let endpoint = token_endpoint.clone();
        async move {
            http.post(endpoint)
                .form(&[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", REDIRECT),
                    ("code_verifier", &verifier),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ),
                    ("client_assertion", &assertion),
                ])
                .send()
                .await
                .expect("token")
        }
    };
    let code_for_jwt_client = || async {
        let (q, pending) = op
            .run(&[("client_id", JWT_CLIENT)], "alice", "normal")
            .await;
        (q["code"].clone(), pending.verifier)
    };

    let (code, verifier) = code_for_jwt_client().await;
    let resp = exchange(
        code,
        verifier,
        assertion(&token_endpoint, "jti-1", now + 60),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.expect("json");
    let claims: Value = op
        .jwks()
        .await
        .verify(
            body["id_token"].as_str().expect("id_token"),
            &token::Expect {
                issuer: Some(op.base.clone()),
                audience: vec![JWT_CLIENT.into()],
                leeway_secs: 0,
            },
        )
        .expect("verifies");
    assert_eq!(claims["sub"], json!("alice"));

    // The issuer is an accepted audience too.
    let (code, verifier) = code_for_jwt_client().await;
    let resp = exchange(code, verifier, assertion(&op.base, "jti-2", now + 60)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        fetches.load(Ordering::SeqCst),
        1,
        "the keys are kept for their max-age"
    );

    for (assertion, why) in [
        (
            assertion(&token_endpoint, "jti-1", now + 60),
            "replayed jti",
        ),
        (
            assertion("https://elsewhere.example/token", "jti-3", now + 60),
            "wrong audience",
        ),
        (assertion(&token_endpoint, "jti-4", now - 120), "expired"),
        (
            token::SigningKey::generate()
                .expect("key")
                .sign(
                    &json!({"iss": JWT_CLIENT, "sub": JWT_CLIENT, "aud": token_endpoint,
                              "jti": "jti-5", "exp": now + 60}),
                )
                .expect("sign"),
            "signed by another key",
        ),
    ] {
        let (code, verifier) = code_for_jwt_client().await;
        let before = fetches.load(Ordering::SeqCst);
        let (status, error, description) =
            oauth_error(exchange(code, verifier, assertion).await).await;
        assert_eq!(
            (status, error.as_str()),
            (StatusCode::UNAUTHORIZED, "invalid_client"),
            "{why}: {description}"
        );
        if why == "signed by another key" {
            // The client may have rotated: its keys are fetched again before refusing.
            assert_eq!(fetches.load(Ordering::SeqCst), before + 1, "{why}");
        }
    }

    // A private_key_jwt client cannot fall back to a secret.
    let (code, verifier) = code_for_jwt_client().await;
    let resp = op
        .http
        .post(&token_endpoint)
        .header(
            "authorization",
            format!(
                "Basic {}",
                STANDARD.encode(format!("{JWT_CLIENT}:anything"))
            ),
        )
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
        ])
        .send()
        .await
        .expect("token");
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[test]
fn invalid_configuration_is_refused() {
    let config = IdpConfig {
        issuer: Url::parse("http://127.0.0.1:1").expect("url"),
        name: "x".into(),
        max_level: "P9".into(),
        levels: vec!["P0".into(), "P1".into()],
        clients: vec![],
        people: test_people(),
    };
    let err = super::IdpState::new(config).err().expect("refused");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}

#[test]
fn test_people_are_the_documented_ones() {
    let people = test_people();
    let subjects: Vec<&str> = people.iter().map(|p| p.subject.as_str()).collect();
    assert_eq!(subjects, ["alice", "bob", "chris", "dana", "erik"]);
    assert_eq!(people[0].full_name(), "Alice Smith");
    assert_eq!(people[1].full_name(), "Robert Brown");
    assert!(people[4].address.is_none());
    assert_eq!(people[3].previous_addresses[0].postcode, "SA1 1AA");
}

#[test]
fn max_age_is_read_from_cache_control_unless_caching_is_refused() {
    use super::max_age_secs;
    assert_eq!(max_age_secs("public, max-age=300"), Some(300));
    assert_eq!(max_age_secs("max-age=60"), Some(60));
    assert_eq!(max_age_secs("no-store, max-age=60"), None);
    assert_eq!(max_age_secs("no-cache"), None);
    assert_eq!(max_age_secs("public"), None);
    assert_eq!(max_age_secs("max-age=soon"), None);
}
