//! The attack suite (docs/security.md): each test is one attack, and each must be refused
//! with the right OIDC error or hub page, with nothing issued and an audit event left.
//! Attacks on PAR, request objects and client assertions are in `par_jar.rs`, on the
//! browser (XSS, CSRF on forms, framing) in `browser_security.rs`.

mod hostile_idp;

use std::collections::HashMap;
use std::net::TcpListener;

use reqwest::StatusCode;
use serde_json::Value;
use url::Url;

use crate::util::*;
use hostile_idp::{HostileIdp, Trick};

const IDP_HOSTILE: &str = "idp-hostile";
const IDP_OTHER: &str = "idp-hostile-other";

/// No code and no token has left the hub.
async fn assert_nothing_issued(hub: &TestHub) {
    assert!(
        hub.events_of_type("assertion_issued").await.is_empty(),
        "a code was issued"
    );
    assert!(
        hub.events_of_type("tokens_issued").await.is_empty(),
        "tokens were issued"
    );
}

/// The request was refused by the check named `outcome`, and the log says so.
async fn assert_rejected(hub: &TestHub, outcome: &str) {
    let seen = outcomes(&hub.events_of_type("request_rejected").await);
    assert!(
        seen.iter().any(|o| o == outcome),
        "no request_rejected {outcome}: {seen:?}"
    );
}

/// The journey went back to the RP as `error` / `reason`, and `journey_failed` logged it.
async fn assert_journey_refused(
    hub: &TestHub,
    params: &HashMap<String, String>,
    error: &str,
    reason: &str,
) {
    assert!(
        !params.contains_key("code"),
        "a code reached the RP: {params:?}"
    );
    assert_eq!(
        params.get("error").map(String::as_str),
        Some(error),
        "{params:?}"
    );
    assert_eq!(
        params.get("reason").map(String::as_str),
        Some(reason),
        "{params:?}"
    );
    let failed = outcomes(&hub.events_of_type("journey_failed").await);
    assert!(
        failed.iter().any(|o| o == reason),
        "journey_failed {reason} not logged: {failed:?}"
    );
    assert_nothing_issued(hub).await;
}

/// A hub with two hostile IdPs besides the demo ones.
async fn hub_with_hostile_idps() -> (TestHub, HostileIdp, HostileIdp) {
    let (hub_l, _) = free_listener();
    let hostile = HostileIdp::start(bind(), "hub-at-hostile");
    let other = HostileIdp::start(bind(), "hub-at-other");
    let extra = Extra {
        identity_providers: vec![hostile.settings(IDP_HOSTILE), other.settings(IDP_OTHER)],
        ..Extra::default()
    };
    let hub = spawn_hub_on(hub_l, Options::default(), extra).await;
    (hub, hostile, other)
}

fn bind() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").unwrap()
}

/// A journey at [`RP_MATCH`] through `idp` (which answers at once): what the RP receives.
async fn journey_via(hub: &TestHub, idp: &str) -> HashMap<String, String> {
    let browser = Browser::new();
    let request = AuthRequest::new(RP_MATCH);
    let (status, url, picker) = browser.get(&request.url(hub)).await.page();
    assert_eq!(status, StatusCode::OK, "{picker}");
    let failed = browser
        .submit(&url, &picker, "/journey/idp", &[("idp", idp)])
        .await;
    match failed {
        Landing::Rp(params) => params,
        page => browser.back_to_service(page).await.rp(),
    }
}

/// An ID token trick at the hostile IdP: the journey fails as `idp_error`.
async fn refused_id_token(trick: Trick) {
    let (hub, hostile, _) = hub_with_hostile_idps().await;
    hostile.play(trick.clone());
    let params = journey_via(&hub, IDP_HOSTILE).await;
    assert_eq!(
        hostile.token_calls(),
        1,
        "{trick:?}: the code was redeemed once"
    );
    assert_journey_refused(&hub, &params, "server_error", "idp_error").await;
}

#[tokio::test]
async fn an_honest_hostile_idp_completes_a_journey() {
    // The control: without a trick the same IdP gets Alice a code, so each refusal below
    // is the trick's doing.
    let (hub, _, _) = hub_with_hostile_idps().await;
    let params = journey_via(&hub, IDP_HOSTILE).await;
    assert!(params.contains_key("code"), "{params:?}");
}

#[tokio::test]
async fn id_token_with_alg_none_is_refused() {
    refused_id_token(Trick::AlgNone).await;
}

#[tokio::test]
async fn id_token_hs256_keyed_with_the_public_key_is_refused() {
    refused_id_token(Trick::Hs256WithPublicKey).await;
}

#[tokio::test]
async fn id_token_for_another_audience_is_refused() {
    refused_id_token(Trick::ForeignAudience).await;
}

#[tokio::test]
async fn expired_id_token_is_refused() {
    refused_id_token(Trick::Expired).await;
}

#[tokio::test]
async fn id_token_not_yet_valid_is_refused() {
    refused_id_token(Trick::NotYetValid).await;
}

#[tokio::test]
async fn id_token_with_another_requests_nonce_is_refused() {
    refused_id_token(Trick::WrongNonce).await;
}

#[tokio::test]
async fn id_token_substituted_from_another_idp_is_refused() {
    // A genuine ID token, issued by another IdP for the hub's client there...
    let (first, _, other) = hub_with_hostile_idps().await;
    assert!(journey_via(&first, IDP_OTHER).await.contains_key("code"));
    let genuine = other.last_id_token().unwrap();
    // ...passed off by a hostile IdP as its own (on a hub with a fresh log).
    let (hub, hostile, _) = hub_with_hostile_idps().await;
    hostile.play(Trick::Substitute(genuine));
    let params = journey_via(&hub, IDP_HOSTILE).await;
    assert_journey_refused(&hub, &params, "server_error", "idp_error").await;
}

#[tokio::test]
async fn idp_mix_up_response_from_another_issuer_is_refused() {
    let (hub, hostile, other) = hub_with_hostile_idps().await;
    hostile.play(Trick::ResponseIssuer(other.issuer().to_owned()));
    let params = journey_via(&hub, IDP_HOSTILE).await;
    assert_eq!(
        hostile.token_calls() + other.token_calls(),
        0,
        "no code was redeemed"
    );
    assert_journey_refused(&hub, &params, "server_error", "idp_error").await;
    assert_rejected(&hub, "idp_issuer_mismatch").await;
}

#[tokio::test]
async fn idp_response_without_the_promised_iss_is_refused() {
    let (hub, hostile, _) = hub_with_hostile_idps().await;
    hostile.play(Trick::NoResponseIssuer);
    let params = journey_via(&hub, IDP_HOSTILE).await;
    assert_eq!(hostile.token_calls(), 0, "no code was redeemed");
    assert_journey_refused(&hub, &params, "server_error", "idp_error").await;
    assert_rejected(&hub, "idp_issuer_mismatch").await;
}

#[tokio::test]
async fn oversized_userinfo_from_an_idp_is_refused() {
    refused_id_token(Trick::HugeUserinfo(4 * 1024 * 1024)).await;
}

#[tokio::test]
async fn deeply_nested_userinfo_from_an_idp_is_refused() {
    refused_id_token(Trick::NestedUserinfo(100_000)).await;
}

/// A browser that stops at every redirect, so a test can hold the IdP's response.
struct Hand {
    client: reqwest::Client,
}

impl Hand {
    fn new() -> Self {
        let client = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self { client }
    }

    async fn get(&self, url: &str) -> reqwest::Response {
        self.client.get(url).send().await.unwrap()
    }

    async fn post(&self, url: &Url, fields: &[(String, String)]) -> reqwest::Response {
        self.client
            .post(url.clone())
            .form(fields)
            .send()
            .await
            .unwrap()
    }

    /// Authorize -> picker -> the main demo IdP -> login as `person`: the URL of the
    /// IdP's response to the hub (not followed).
    async fn idp_response(&self, hub: &TestHub, request: &AuthRequest, person: &str) -> Url {
        let picker_url = Url::parse(&request.url(hub)).unwrap();
        let picker = self.get(picker_url.as_str()).await.text().await.unwrap();
        let (action, mut fields) = form_fields(&picker_url, &picker, "/journey/idp");
        fields.retain(|(k, _)| k != "idp");
        fields.push(("idp".into(), IDP_MAIN.into()));
        let to_idp = location(&self.post(&action, &fields).await);
        let login = self.get(to_idp.as_str()).await.text().await.unwrap();
        let (action, mut fields) = form_fields(&to_idp, &login, "/login");
        fields.retain(|(k, _)| k != "subject" && k != "simulate");
        fields.push(("subject".into(), person.into()));
        fields.push(("simulate".into(), "normal".into()));
        let back = location(&self.post(&action, &fields).await);
        assert!(back.path().ends_with("/idp/callback"), "{back}");
        back
    }

    /// Follows redirects from `url` until the test RP: what it receives.
    /// Follows `url` to the RP; from the hub's page after an identity provider failed,
    /// by going back to the service.
    async fn finish(&self, url: &Url) -> HashMap<String, String> {
        let mut next = url.clone();
        for _ in 0..10 {
            if next.as_str().starts_with(TEST_RP_CALLBACK) {
                return next.query_pairs().into_owned().collect();
            }
            let mut response = self.get(next.as_str()).await;
            if response.status() == StatusCode::OK {
                let page_url = response.url().clone();
                let page = response.text().await.unwrap();
                assert_idp_problem_page(&page);
                let (action, fields) = form_fields(&page_url, &page, "/journey/cancel");
                response = self.post(&action, &fields).await;
            }
            assert!(
                response.status().is_redirection(),
                "{} at {next}",
                response.status()
            );
            next = location(&response);
        }
        panic!("redirect loop");
    }
}

fn location(response: &reqwest::Response) -> Url {
    let location = response.headers()["location"].to_str().unwrap();
    response.url().join(location).unwrap()
}

fn param(url: &Url, name: &str) -> String {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .unwrap()
}

#[tokio::test]
async fn code_injected_at_the_idp_callback_is_refused() {
    let hub = spawn_hub().await;
    // The attacker signs in as himself and keeps the IdP's response.
    let attacker = Hand::new();
    let stolen = attacker
        .idp_response(&hub, &AuthRequest::new(RP_MATCH), "bob")
        .await;
    // The victim's own journey: the attacker swaps his code into her response.
    let victim = Hand::new();
    let mut response = victim
        .idp_response(&hub, &AuthRequest::new(RP_MATCH), "alice")
        .await;
    let (state, iss) = (param(&response, "state"), param(&response, "iss"));
    response
        .query_pairs_mut()
        .clear()
        .append_pair("code", &param(&stolen, "code"))
        .append_pair("state", &state)
        .append_pair("iss", &iss);
    // PKCE binds the code to the attacker's journey: the IdP will not redeem it here.
    let params = victim.finish(&response).await;
    assert_journey_refused(&hub, &params, "server_error", "idp_error").await;
}

#[tokio::test]
async fn idp_response_replayed_in_another_browser_is_refused() {
    let hub = spawn_hub().await;
    let victim = Hand::new();
    let response = victim
        .idp_response(&hub, &AuthRequest::new(RP_MATCH), "alice")
        .await;
    // Login CSRF: the response is delivered to the attacker's browser (or the attacker
    // gets the victim's browser to deliver his).
    let attacker = Hand::new();
    attacker.get(&AuthRequest::new(RP_MATCH).url(&hub)).await;
    let landed = attacker.get(response.as_str()).await;
    assert_eq!(landed.status(), StatusCode::BAD_REQUEST);
    assert!(landed.headers().get("location").is_none());
    assert!(landed.text().await.unwrap().contains("unknown_state"));
    assert_rejected(&hub, "idp_state_other_browser").await;
    // The state was single use: the victim's own delivery is refused too.
    let again = victim.get(response.as_str()).await;
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    assert_rejected(&hub, "idp_state_unknown").await;
    assert_nothing_issued(&hub).await;
}

#[tokio::test]
async fn replayed_authorization_code_is_refused_and_logged() {
    let hub = spawn_hub().await;
    let request = AuthRequest::new(RP_MATCH);
    let code = hub.code_for(&request, "alice").await;
    let secret = secret_of(RP_MATCH);
    let (first, _) = hub
        .redeem(RP_MATCH, &secret, &code, &request.verifier)
        .await;
    assert_eq!(first, StatusCode::OK);
    let (second, body) = hub
        .redeem(RP_MATCH, &secret, &code, &request.verifier)
        .await;
    assert_eq!(second, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(
        hub.events_of_type("tokens_issued").await.len(),
        1,
        "issued once only"
    );
    assert_eq!(
        outcomes(&hub.events_of_type("token_rejected").await),
        ["invalid_grant"]
    );
}

#[tokio::test]
async fn pkce_downgrades_are_refused() {
    let hub = spawn_hub().await;
    // At /authorize: `plain`, no method, or no challenge at all.
    for (method, challenge) in [
        (Some("plain"), Some("x".repeat(43))),
        (None, Some("x".repeat(43))),
        (Some("S256"), None),
    ] {
        let request = AuthRequest::new(RP_MATCH)
            .set("code_challenge_method", method)
            .set("code_challenge", challenge.as_deref());
        let params = Browser::new().get(&request.url(&hub)).await.rp();
        assert_eq!(params["error"], "invalid_request", "{method:?}");
        assert_eq!(params["reason"], "pkce_required");
    }
    assert!(hub.events_of_type("journey_started").await.is_empty());
    let refused = outcomes(&hub.events_of_type("request_rejected").await);
    assert_eq!(refused, ["pkce_required"; 3]);
    // At /token: no verifier, or one that does not hash to the challenge.
    let request = AuthRequest::new(RP_MATCH);
    let code = hub.code_for(&request, "alice").await;
    let response = hub
        .http
        .post(format!("{}/token", hub.url))
        .basic_auth(RP_MATCH, Some(secret_of(RP_MATCH)))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", TEST_RP_CALLBACK),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    let (status, body) = hub
        .redeem(
            RP_MATCH,
            &secret_of(RP_MATCH),
            &code,
            &token::random_opaque(32),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    assert!(hub.events_of_type("tokens_issued").await.is_empty());
    assert_eq!(hub.events_of_type("token_rejected").await.len(), 2);
}

#[tokio::test]
async fn redirect_uri_variants_are_never_redirected_to() {
    let hub = spawn_hub().await;
    let registered = TEST_RP_CALLBACK; // http://127.0.0.1:9/callback
    let variants = [
        "http://127.0.0.1:9/callbackx",
        "http://127.0.0.1:9/callback/",
        "http://127.0.0.1:9/callback/../evil",
        "http://127.0.0.1:9/callback?next=https://evil.example",
        "http://127.0.0.1:9/callback#fragment",
        "HTTP://127.0.0.1:9/CALLBACK",
        "http://127.0.0.1:9/Callback",
        "http://127.0.0.1:9@evil.example/callback",
        "http://evil.example@127.0.0.1:9/callback",
        "http://127.0.0.1:9/%63allback",
        "http://127.0.0.1:9/callback%2F..%2Fevil",
        "https://127.0.0.1:9/callback",
        "http://127.0.0.1:90/callback",
        "//evil.example/callback",
        "http://127.0.0.1:9/callback ",
    ];
    for variant in variants {
        assert_ne!(variant, registered);
        let request = AuthRequest::new(RP_MATCH).set("redirect_uri", Some(variant));
        let response = hub.http.get(request.url(&hub)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{variant}");
        assert!(response.headers().get("location").is_none(), "{variant}");
        let page = response.text().await.unwrap();
        assert!(page.contains("invalid_redirect_uri"), "{variant}: {page}");
        assert!(!page.contains("evil.example"), "{variant}: echoed");
    }
    let refused = outcomes(&hub.events_of_type("request_rejected").await);
    assert_eq!(
        refused,
        vec!["invalid_redirect_uri".to_owned(); variants.len()]
    );
    assert!(hub.events_of_type("journey_started").await.is_empty());
}

#[tokio::test]
async fn invalid_utf8_gets_a_clear_error() {
    let hub = spawn_hub().await;
    for path in [
        "/authorize?client_id=%FF%FE&response_type=code",
        "/authorize?client_id=rp-match&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcallback&state=%C3%28",
        "/idp/callback?state=%FF&code=%FE",
    ] {
        let response = hub.http.get(format!("{}{path}", hub.url)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path}");
        assert!(response.headers().get("location").is_none(), "{path}");
    }
    let response = hub
        .http
        .post(format!("{}/token", hub.url))
        .basic_auth(RP_MATCH, Some(secret_of(RP_MATCH)))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(b"grant_type=authorization_code&code=\xff\xfe".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_nothing_issued(&hub).await;
}

#[tokio::test]
async fn sql_metacharacters_in_every_parameter_are_inert() {
    let hub = spawn_hub().await;
    let payloads = [
        "' OR '1'='1",
        "'; DROP TABLE audit_events; --",
        "\" OR \"\"=\"",
        "1; SELECT pg_sleep(5)",
        "%' --",
    ];
    let names = [
        "client_id",
        "redirect_uri",
        "response_type",
        "scope",
        "state",
        "nonce",
        "code_challenge",
        "code_challenge_method",
        "acr_values",
        "vtr",
        "idp_hint",
        "prompt",
    ];
    for payload in payloads {
        for name in names {
            let request = AuthRequest::new(RP_MATCH).set(name, Some(payload));
            let response = hub.http.get(request.url(&hub)).send().await.unwrap();
            assert!(!response.status().is_server_error(), "{name}={payload}");
        }
        for path in ["/idp/callback?state=", "/idp/callback?code=x&state="] {
            let url = format!("{}{path}{}", hub.url, urlencode(payload));
            let response = hub.http.get(url).send().await.unwrap();
            assert_eq!(
                response.status(),
                StatusCode::BAD_REQUEST,
                "{path}{payload}"
            );
        }
        let (status, body) = hub
            .redeem(RP_MATCH, &secret_of(RP_MATCH), payload, payload)
            .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_grant"))
        );
        let (status, _) = hub.redeem(payload, payload, "code", "verifier").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let token = hub.auditor_token(AUDITOR_ALL, None).await;
        for path in ["/events", "/export.jsonl", "/export.csv"] {
            for filter in [
                "rp",
                "journey",
                "type",
                "from",
                "to",
                "cursor",
                "idp",
                "outcome",
                "tree_size",
            ] {
                let query = format!("{path}?{filter}={}", urlencode(payload));
                let (status, body) = hub.audit_get(&token, &query).await;
                assert!(!status.is_server_error(), "{query}: {body}");
            }
        }
    }
    // Nothing was dropped or leaked: a journey still works and the log still verifies.
    let claims = hub.id_token_for(RP_MATCH, "alice").await;
    assert_eq!(claims["match"]["status"], "matched", "{claims}");
    assert_log_intact(&hub).await;
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The log still serves a checkpoint and holds the one issuance the test caused.
async fn assert_log_intact(hub: &TestHub) {
    let token = hub.auditor_token(AUDITOR_ALL, None).await;
    let (status, body) = hub.audit_get(&token, "/checkpoint").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(hub.events_of_type("tokens_issued").await.len(), 1);
}
