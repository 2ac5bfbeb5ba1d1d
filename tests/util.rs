//! Test harness: `spawn_hub()` starts a hub (own SQLite file, own keys) with two demo IdPs
//! and the demo RP on port 0, and returns a [`TestHub`] with a browser and RP helpers.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::Path;

use base64::Engine;
use devkit::idp::{ClientAuth, DemoIdp, IdpClient, IdpConfig};
use devkit::rp::{DemoRp, RpConfig};
use hub::{Application, Settings};
use reqwest::StatusCode;
use serde_json::{json, Value};
use url::Url;

/// Redirect URI of the RPs the tests play themselves: nothing listens there; the browser
/// stops as soon as it is sent to it.
pub const TEST_RP_CALLBACK: &str = "http://127.0.0.1:9/callback";

/// Registered relying parties; each has the demo department records.
pub const RP_MATCH: &str = "rp-match"; // no cycle 3, no account creation
pub const RP_CREATE: &str = "rp-create"; // account creation on
pub const RP_CYCLE3: &str = "rp-cycle3"; // asks for a NINO, no account creation
pub const RP_JWT: &str = "rp-jwt"; // authenticates with private_key_jwt
pub const DEMO_RP: &str = "demo-rp";

/// Auditor clients: one sees everything, one only [`RP_MATCH`], one may also get other scopes.
pub const AUDITOR_ALL: &str = "auditor-all";
pub const AUDITOR_RP_MATCH: &str = "auditor-rp-match";
pub const AUDITOR_REPORTS: &str = "auditor-reports";
/// An operator's client (scope `admin`: the admin API).
pub const OPERATOR: &str = "operator";

pub const IDP_MAIN: &str = "idp-main"; // certified to P2; the hub uses private_key_jwt
pub const IDP_BASIC: &str = "idp-basic"; // certified to P1; the hub uses client_secret_basic
pub const IDP_DOWN: &str = "idp-down"; // certified to P2; nothing listens at its issuer

/// Where a hub keeps its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite file + in-process session store (the embedded default).
    Embedded,
    /// PostgreSQL (a scratch database per hub) + Redis (a scratch key prefix per hub).
    Production,
}

impl Backend {
    /// The backend of this test run: `HUB_TEST_BACKEND=postgres` selects production, so one
    /// suite runs on both (`scripts/test.sh` runs it twice).
    pub fn of_this_run() -> Self {
        match std::env::var("HUB_TEST_BACKEND").as_deref() {
            Ok("postgres") => Backend::Production,
            _ => Backend::Embedded,
        }
    }
}

/// PostgreSQL to create scratch databases in (`DATABASE_URL`).
pub fn postgres_admin_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// Redis for session stores (`REDIS_URL`).
pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// Database and session settings for a fresh hub on `backend`.
pub async fn storage_settings(backend: Backend, data_dir: &Path) -> Value {
    match backend {
        Backend::Embedded => json!({
            "database": {"url": format!("sqlite://{}", data_dir.join("hub.db").display())},
            "sessions": {"url": "memory"},
        }),
        Backend::Production => {
            let admin = postgres_admin_url();
            let db = store::test_support::scratch_postgres_database(&admin)
                .await
                .unwrap_or_else(|e| panic!("PostgreSQL at {admin} is needed for this test: {e}"));
            json!({
                "database": {"url": db},
                "sessions": {"url": redis_url(), "key_prefix": store::test_support::scratch_redis_prefix()},
            })
        }
    }
}

/// Knobs a test may turn.
#[derive(Default)]
pub struct Options {
    pub journey_ttl_secs: Option<u64>,
    pub include_down_idp: bool,
    /// Defaults to [`Backend::of_this_run`].
    pub backend: Option<Backend>,
    /// Replaces the `database` / `sessions` settings the backend would get (e.g. to go
    /// through a fault-injecting proxy).
    pub storage: Option<Value>,
    /// Settings laid over everything else (e.g. `{"rate_limits": {...}}`).
    pub settings: Option<Value>,
}

/// A running hub with its peers.
pub struct TestHub {
    pub url: String,
    pub idp_main: DemoIdp,
    pub idp_basic: DemoIdp,
    pub demo_rp_url: String,
    /// Signs `private_key_jwt` client assertions for [`RP_JWT`].
    pub rp_jwt_key: token::SigningKey,
    pub data_dir: tempfile::TempDir,
    pub http: reqwest::Client,
    /// The hub's database (to inspect or tamper with it).
    pub database_url: String,
    /// Keeps the down IdP's port reserved, so no other test's server can take it.
    _down_idp_port: Option<tokio::net::TcpSocket>,
}

fn listener() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").expect("bind loopback")
}

fn origin(l: &TcpListener) -> String {
    format!("http://{}", l.local_addr().expect("local addr"))
}

pub fn secret_of(client_id: &str) -> String {
    format!("{client_id}-secret")
}

fn rp(client_id: &str, redirect: &str, extra: Value) -> Value {
    let mut rp = json!({
        "client_id": client_id,
        "name": format!("Service {client_id}"),
        "redirect_uris": [redirect],
        "token_endpoint_auth_method": "client_secret_basic",
        "client_secret": secret_of(client_id),
        "default_level": "P2",
    });
    if let (Some(rp), Some(extra)) = (rp.as_object_mut(), extra.as_object()) {
        rp.extend(extra.clone());
    }
    rp
}

pub async fn spawn_hub() -> TestHub {
    spawn_hub_with(Options::default()).await
}

pub async fn spawn_hub_with(options: Options) -> TestHub {
    spawn_hub_on(listener(), options, Extra::default()).await
}

/// The hub's peers: two demo IdPs and the demo RP, started for a hub at `issuer`.
pub struct Peers {
    pub idp_main: DemoIdp,
    pub idp_basic: DemoIdp,
    pub demo_rp_url: String,
    pub rp_jwt_key: token::SigningKey,
    idps: Vec<Value>,
    down_idp_port: Option<tokio::net::TcpSocket>,
}

pub async fn start_peers(issuer: &str, include_down_idp: bool) -> Peers {
    let (main_l, basic_l, rp_l) = (listener(), listener(), listener());
    let callback = format!("{issuer}/idp/callback");
    let levels: Vec<String> = ["P0", "P1", "P2", "P3"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let (main_url, basic_url, rp_url) = (origin(&main_l), origin(&basic_l), origin(&rp_l));
    let idp = |url: &str, name: &str, max: &str, client_id: &str, auth: ClientAuth| IdpConfig {
        issuer: Url::parse(url).expect("url"),
        name: name.into(),
        max_level: max.into(),
        levels: levels.clone(),
        clients: vec![IdpClient {
            client_id: client_id.into(),
            redirect_uris: vec![callback.clone()],
            auth,
        }],
        people: devkit::test_people(),
    };
    let hub_jwks = Url::parse(&format!("{issuer}/jwks")).expect("url");
    let (idp_main, main_server) = DemoIdp::start(
        main_l,
        idp(
            &main_url,
            "Main IdP",
            "P2",
            "hub-at-main",
            ClientAuth::PrivateKeyJwt { jwks_uri: hub_jwks },
        ),
    )
    .expect("start main idp");
    let (idp_basic, basic_server) = DemoIdp::start(
        basic_l,
        idp(
            &basic_url,
            "Basic IdP",
            "P1",
            "hub-at-basic",
            ClientAuth::Secret("basic-secret".into()),
        ),
    )
    .expect("start basic idp");
    let (_demo_rp, rp_server) = DemoRp::start(
        rp_l,
        RpConfig {
            base_url: Url::parse(&rp_url).expect("url"),
            hub_issuer: Url::parse(issuer).expect("url"),
            client_id: DEMO_RP.into(),
            client_secret: secret_of(DEMO_RP),
            acr_values: "P2".into(),
        },
    )
    .expect("start demo rp");
    for server in [main_server, basic_server, rp_server] {
        tokio::spawn(server);
    }
    let mut idps = vec![
        json!({"id": IDP_MAIN, "name": "Main IdP", "description": "The main test company.", "description_cy": "Prif gwmni prawf.", "issuer": main_url, "client_id": "hub-at-main",
               "token_endpoint_auth_method": "private_key_jwt", "max_level": "P2",
               "claims_in_id_token": true}),
        json!({"id": IDP_BASIC, "name": "Basic IdP", "issuer": basic_url, "client_id": "hub-at-basic",
               "token_endpoint_auth_method": "client_secret_basic", "client_secret": "basic-secret", "max_level": "P1"}),
    ];
    let down_idp_port = include_down_idp.then(bound_not_listening);
    if let Some(port) = &down_idp_port {
        let down = format!("http://{}", port.local_addr().expect("local addr"));
        idps.insert(0, json!({"id": IDP_DOWN, "name": "Down IdP", "issuer": down, "client_id": "hub",
               "token_endpoint_auth_method": "client_secret_basic", "client_secret": "x", "max_level": "P2"}));
    }
    Peers {
        idp_main,
        idp_basic,
        demo_rp_url: rp_url,
        rp_jwt_key: token::SigningKey::generate().expect("key"),
        idps,
        down_idp_port,
    }
}

/// A loopback port that refuses connections for as long as the socket lives.
fn bound_not_listening() -> tokio::net::TcpSocket {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind("127.0.0.1:0".parse().expect("addr"))
        .expect("bind loopback");
    socket
}

impl Peers {
    pub fn into_test_hub(
        self,
        url: String,
        data_dir: tempfile::TempDir,
        database_url: String,
    ) -> TestHub {
        TestHub {
            url,
            idp_main: self.idp_main,
            idp_basic: self.idp_basic,
            demo_rp_url: self.demo_rp_url,
            rp_jwt_key: self.rp_jwt_key,
            data_dir,
            database_url,
            _down_idp_port: self.down_idp_port,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
        }
    }
}

/// Complete settings for a hub at `issuer` with these peers and storage.
pub fn hub_settings(
    peers: &Peers,
    issuer: &str,
    data_dir: &Path,
    storage: Value,
    journey_ttl_secs: Option<u64>,
) -> Settings {
    let demo_rp_callback = format!("{}/callback", peers.demo_rp_url);
    let patch = json!({
        "server": {"bind": "127.0.0.1:0", "public_url": issuer},
        "data": {"dir": data_dir},
        "journey": {"ttl_secs": journey_ttl_secs.unwrap_or(5400)},
        "relying_parties": [
            rp(RP_MATCH, TEST_RP_CALLBACK, json!({})),
            rp(RP_CREATE, TEST_RP_CALLBACK, json!({"account_creation": true})),
            rp(RP_CYCLE3, TEST_RP_CALLBACK, json!({"cycle3_attribute": "nino"})),
            rp(RP_JWT, TEST_RP_CALLBACK, json!({"token_endpoint_auth_method": "private_key_jwt",
                "client_secret": null, "jwks": peers.rp_jwt_key.jwks()})),
            rp(DEMO_RP, &demo_rp_callback, json!({"account_creation": true, "cycle3_attribute": "nino"})),
        ],
        "identity_providers": peers.idps,
        "auditors": [
            {"client_id": AUDITOR_ALL, "client_secret": secret_of(AUDITOR_ALL)},
            {"client_id": AUDITOR_RP_MATCH, "client_secret": secret_of(AUDITOR_RP_MATCH), "rps": [RP_MATCH]},
            {"client_id": AUDITOR_REPORTS, "client_secret": secret_of(AUDITOR_REPORTS), "scopes": ["audit:read", "reports"]},
        ],
        "operators": [{"client_id": OPERATOR, "client_secret": secret_of(OPERATOR)}],
        "registry": {"poll_interval_ms": 200},
    });
    Settings::load(None)
        .expect("defaults")
        .with(storage)
        .expect("storage settings")
        .with(patch)
        .expect("test settings")
}

/// Migrates the hub's database and loads the demo department records for every test RP.
pub async fn prepare_database(settings: &Settings) {
    let db = store::Database::open(&settings.database.url)
        .await
        .expect("db");
    db.migrate().await.expect("migrate");
    let csv = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/demo-records.csv");
    for rp in [RP_MATCH, RP_CREATE, RP_CYCLE3, RP_JWT, DEMO_RP] {
        let report = hub::records::import_file(&db, rp, &csv)
            .await
            .expect("import records");
        assert!(report.rejected.is_empty());
    }
}

/// Where a run of redirects ended.
#[derive(Debug)]
pub enum Landing {
    /// An HTML page (status, final URL, body).
    Page {
        status: StatusCode,
        url: Url,
        body: String,
    },
    /// The browser was sent to the test RP's redirect URI with these parameters.
    Rp(HashMap<String, String>),
}

impl Landing {
    pub fn page(self) -> (StatusCode, Url, String) {
        match self {
            Landing::Page { status, url, body } => (status, url, body),
            Landing::Rp(p) => panic!("expected a page, got RP callback {p:?}"),
        }
    }

    pub fn rp(self) -> HashMap<String, String> {
        match self {
            Landing::Rp(p) => p,
            Landing::Page { status, url, body } => {
                panic!("expected RP callback, got {status} page at {url}:\n{body}")
            }
        }
    }
}

/// A browser: cookie jar, follows redirects itself so it can stop at the test RP.
#[derive(Clone)]
pub struct Browser {
    client: reqwest::Client,
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

impl Browser {
    pub fn new() -> Self {
        Self::with(reqwest::Client::builder())
    }

    /// A new connection per request, so a round-robin load balancer spreads the steps of
    /// one journey over every instance.
    pub fn without_keep_alive() -> Self {
        Self::with(reqwest::Client::builder().pool_max_idle_per_host(0))
    }

    fn with(builder: reqwest::ClientBuilder) -> Self {
        let client = builder
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Self { client }
    }

    /// GET `url` and follow redirects.
    pub async fn get(&self, url: &str) -> Landing {
        let response = self.client.get(url).send().await.expect("GET");
        self.follow(response).await
    }

    /// POST a form and follow redirects.
    pub async fn post(&self, url: &str, fields: &[(String, String)]) -> Landing {
        let response = self
            .client
            .post(url)
            .form(fields)
            .send()
            .await
            .expect("POST");
        self.follow(response).await
    }

    async fn follow(&self, mut response: reqwest::Response) -> Landing {
        for _ in 0..20 {
            let status = response.status();
            if !status.is_redirection() {
                let url = response.url().clone();
                let body = response.text().await.expect("body");
                return Landing::Page { status, url, body };
            }
            let location = response
                .headers()
                .get("location")
                .expect("location")
                .to_str()
                .expect("ascii")
                .to_owned();
            let next = response.url().join(&location).expect("location url");
            if next.as_str().starts_with(TEST_RP_CALLBACK) {
                return Landing::Rp(next.query_pairs().into_owned().collect());
            }
            response = self.client.get(next).send().await.expect("GET redirect");
        }
        panic!("redirect loop");
    }

    /// On the hub's page after an identity provider failed (which offers to try again or
    /// choose another company), "Go back to the service": where the browser lands.
    pub async fn back_to_service(&self, landing: Landing) -> Landing {
        let (status, url, page) = landing.page();
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_idp_problem_page(&page);
        self.submit(&url, &page, "/journey/cancel", &[]).await
    }

    /// Fills in and submits the form of `page` whose action contains `action`: hidden
    /// fields and checked radios as the page has them, then `fields` on top (a submit
    /// button's name/value is just another field).
    pub async fn submit(
        &self,
        page_url: &Url,
        page: &str,
        action: &str,
        fields: &[(&str, &str)],
    ) -> Landing {
        let (target, mut values) = form_fields(page_url, page, action);
        for (k, v) in fields {
            values.retain(|(name, _)| name != k);
            values.push(((*k).to_owned(), (*v).to_owned()));
        }
        self.post(target.as_str(), &values).await
    }
}

/// The hub's page after an identity provider failed: try again, choose another company,
/// or go back to the service (no dead end).
pub fn assert_idp_problem_page(page: &str) {
    for way in [
        "action=\"/journey/idp\"",
        "step=choose",
        "action=\"/journey/cancel\"",
    ] {
        assert!(
            page.contains(way),
            "no {way} on the IdP problem page:\n{page}"
        );
    }
}

/// The action URL and default values of the form whose action contains `action`.
pub fn form_fields(page_url: &Url, page: &str, action: &str) -> (Url, Vec<(String, String)>) {
    let html = scraper::Html::parse_document(page);
    let form_sel = scraper::Selector::parse("form").expect("selector");
    let input_sel = scraper::Selector::parse("input").expect("selector");
    let form = html
        .select(&form_sel)
        .find(|f| f.value().attr("action").is_some_and(|a| a.contains(action)))
        .unwrap_or_else(|| panic!("no form with action {action} in:\n{page}"));
    let target = page_url
        .join(form.value().attr("action").unwrap_or(""))
        .expect("action url");
    let mut values = Vec::new();
    for input in form.select(&input_sel) {
        let el = input.value();
        let (Some(name), kind) = (el.attr("name"), el.attr("type").unwrap_or("text")) else {
            continue;
        };
        let include = match kind {
            "radio" | "checkbox" => el.attr("checked").is_some(),
            "submit" | "button" => false,
            _ => true,
        };
        if include {
            values.push((name.to_owned(), el.attr("value").unwrap_or("").to_owned()));
        }
    }
    (target, values)
}

/// One authorization request as a test RP makes it.
pub struct AuthRequest {
    pub client_id: String,
    pub verifier: String,
    pub state: String,
    pub nonce: String,
    pub params: Vec<(String, String)>,
}

impl AuthRequest {
    /// A valid request for `client_id` at level P2 (PKCE S256, state, nonce).
    pub fn new(client_id: &str) -> Self {
        let verifier = token::random_opaque(32);
        let state = token::random_opaque(8);
        let nonce = token::random_opaque(8);
        let params = vec![
            ("response_type".into(), "code".into()),
            ("client_id".into(), client_id.into()),
            ("redirect_uri".into(), TEST_RP_CALLBACK.into()),
            ("scope".into(), "openid profile address".into()),
            ("state".into(), state.clone()),
            ("nonce".into(), nonce.clone()),
            ("code_challenge".into(), token::pkce_s256(&verifier)),
            ("code_challenge_method".into(), "S256".into()),
            ("acr_values".into(), "P2".into()),
        ];
        Self {
            client_id: client_id.into(),
            verifier,
            state,
            nonce,
            params,
        }
    }

    /// Replaces (or with `None` removes) a parameter.
    pub fn set(mut self, name: &str, value: Option<&str>) -> Self {
        self.params.retain(|(k, _)| k != name);
        if let Some(v) = value {
            self.params.push((name.into(), v.into()));
        }
        self
    }

    pub fn url(&self, hub: &TestHub) -> String {
        let mut url = Url::parse(&format!("{}/authorize", hub.url)).expect("url");
        url.query_pairs_mut().extend_pairs(&self.params);
        url.into()
    }
}

/// What the citizen does at the demo IdP.
pub struct AtIdp<'a> {
    pub idp: &'a str,
    pub person: &'a str,
    pub simulate: &'a str,
}

impl<'a> AtIdp<'a> {
    pub fn person(person: &'a str) -> Self {
        Self {
            idp: IDP_MAIN,
            person,
            simulate: "normal",
        }
    }
    pub fn simulate(mut self, simulate: &'a str) -> Self {
        self.simulate = simulate;
        self
    }
    pub fn via(mut self, idp: &'a str) -> Self {
        self.idp = idp;
        self
    }
}

impl TestHub {
    /// Authorize -> picker -> IdP login -> back at the hub: where the browser lands.
    pub async fn journey(
        &self,
        browser: &Browser,
        request: &AuthRequest,
        at_idp: AtIdp<'_>,
    ) -> Landing {
        let (status, url, picker) = browser.get(&request.url(self)).await.page();
        assert_eq!(status, StatusCode::OK, "picker expected:\n{picker}");
        self.choose_and_login(browser, &url, &picker, at_idp).await
    }

    /// From the picker page: choose the IdP and log in there.
    pub async fn choose_and_login(
        &self,
        browser: &Browser,
        url: &Url,
        picker: &str,
        at_idp: AtIdp<'_>,
    ) -> Landing {
        let (status, login_url, login) = browser
            .submit(url, picker, "/journey/idp", &[("idp", at_idp.idp)])
            .await
            .page();
        assert_eq!(status, StatusCode::OK, "IdP login page expected:\n{login}");
        self.login(browser, &login_url, &login, at_idp).await
    }

    /// On the IdP's login page.
    pub async fn login(
        &self,
        browser: &Browser,
        login_url: &Url,
        login: &str,
        at_idp: AtIdp<'_>,
    ) -> Landing {
        browser
            .submit(
                login_url,
                login,
                "/login",
                &[("simulate", at_idp.simulate), ("subject", at_idp.person)],
            )
            .await
    }

    /// A complete journey that must end with a code; returns it.
    pub async fn code_for(&self, request: &AuthRequest, person: &str) -> String {
        self.code_in(&Browser::new(), request, person).await
    }

    /// [`TestHub::code_for`] in `browser` (e.g. one without keep-alive, so that behind a
    /// round-robin proxy every request may reach another instance).
    pub async fn code_in(&self, browser: &Browser, request: &AuthRequest, person: &str) -> String {
        let params = self
            .journey(browser, request, AtIdp::person(person))
            .await
            .rp();
        assert_eq!(params.get("state"), Some(&request.state), "state echoed");
        assert_eq!(params.get("iss"), Some(&self.url), "RFC 9207 iss");
        params
            .get("code")
            .unwrap_or_else(|| panic!("no code: {params:?}"))
            .clone()
    }

    /// Chris's journey at [`RP_CYCLE3`]: ambiguous at cycle 1, resolved by his NINO at cycle 3.
    pub async fn cycle3_journey(&self, request: &AuthRequest) -> HashMap<String, String> {
        self.cycle3_answer(request, "chris", "QQ445566C").await
    }

    /// `person`'s journey at a cycle-3 RP, answering the hub's question with `value`:
    /// the parameters the RP receives.
    pub async fn cycle3_answer(
        &self,
        request: &AuthRequest,
        person: &str,
        value: &str,
    ) -> HashMap<String, String> {
        let browser = Browser::new();
        let (_, url, page) = self
            .journey(&browser, request, AtIdp::person(person))
            .await
            .page();
        browser
            .submit(
                &url,
                &page,
                "/journey/cycle3",
                &[("value", value), ("action", "answer")],
            )
            .await
            .rp()
    }

    /// POST /token with client_secret_basic.
    pub async fn redeem(
        &self,
        client_id: &str,
        secret: &str,
        code: &str,
        verifier: &str,
    ) -> (StatusCode, Value) {
        let response = self
            .http
            .post(format!("{}/token", self.url))
            .basic_auth(client_id, Some(secret))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", TEST_RP_CALLBACK),
                ("code_verifier", verifier),
            ])
            .send()
            .await
            .expect("token request");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// The hub's published keys (`/jwks`): what its tokens, checkpoints and the
    /// verification log's seal verify with.
    /// The body of an unauthenticated GET of `path` (e.g. `/jwks`, `/metrics`).
    pub async fn get_text(&self, path: &str) -> String {
        self.http
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .expect("request")
            .text()
            .await
            .expect("body")
    }

    pub async fn published_keys(&self) -> token::VerificationKeys {
        let jwks: Value = self
            .http
            .get(format!("{}/jwks", self.url))
            .send()
            .await
            .expect("jwks")
            .json()
            .await
            .expect("json");
        token::VerificationKeys::from_jwks(&jwks).expect("hub jwks")
    }

    /// Verifies an ID token against the hub's published JWKS, as an RP would.
    pub async fn verify_id_token(&self, id_token: &str, audience: &str) -> Value {
        let keys = self.published_keys().await;
        let expect = token::Expect {
            issuer: Some(self.url.clone()),
            audience: vec![audience.into()],
            leeway_secs: 0,
        };
        keys.verify(id_token, &expect)
            .expect("ID token verifies against the hub's JWKS")
    }

    /// Redeems `code` with the client's secret and returns the verified ID token claims.
    pub async fn claims_for(&self, client_id: &str, code: &str, verifier: &str) -> Value {
        let (status, body) = self
            .redeem(client_id, &secret_of(client_id), code, verifier)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        self.verify_id_token(body["id_token"].as_str().expect("id_token"), client_id)
            .await
    }

    /// Full journey for `person` at `client_id` (secret auth) and the verified ID token claims.
    pub async fn id_token_for(&self, client_id: &str, person: &str) -> Value {
        let request = AuthRequest::new(client_id);
        let code = self.code_for(&request, person).await;
        let (status, body) = self
            .redeem(client_id, &secret_of(client_id), &code, &request.verifier)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let claims = self
            .verify_id_token(body["id_token"].as_str().expect("id_token"), client_id)
            .await;
        assert_eq!(claims["nonce"], json!(request.nonce));
        claims
    }

    pub async fn userinfo(&self, access_token: &str) -> (StatusCode, Value) {
        let response = self
            .http
            .get(format!("{}/userinfo", self.url))
            .bearer_auth(access_token)
            .send()
            .await
            .expect("userinfo");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// An auditor's access token (client credentials), for `scope` or the client's default.
    pub async fn auditor_token(&self, client_id: &str, scope: Option<&str>) -> String {
        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(scope) = scope {
            form.push(("scope", scope));
        }
        let response = self
            .http
            .post(format!("{}/token", self.url))
            .basic_auth(client_id, Some(secret_of(client_id)))
            .form(&form)
            .send()
            .await
            .expect("token request");
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.expect("json");
        body["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }

    /// An operator's access token for the admin API.
    pub async fn admin_token(&self) -> String {
        self.auditor_token(OPERATOR, Some("admin")).await
    }

    /// Calls the admin API at `path` (under `/admin/v1`) as the operator.
    pub async fn admin(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let token = self.admin_token().await;
        let url = format!("{}/admin/v1{path}", self.url);
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self.http.request(method, url).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("admin request");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// GET an auditor API path with `token`.
    pub async fn audit_get(&self, token: &str, path_and_query: &str) -> (StatusCode, String) {
        let response = self
            .http
            .get(format!("{}/audit/v1{path_and_query}", self.url))
            .bearer_auth(token)
            .send()
            .await
            .expect("audit request");
        let status = response.status();
        (status, response.text().await.expect("body"))
    }

    /// The verification log's events of `event_type`, as an unrestricted auditor sees
    /// them.
    pub async fn events_of_type(&self, event_type: &str) -> Vec<Value> {
        let token = self.auditor_token(AUDITOR_ALL, None).await;
        let (status, body) = self
            .audit_get(&token, &format!("/events?type={event_type}&limit=1000"))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let body: Value = serde_json::from_str(&body).expect("json");
        body["events"].as_array().expect("events").clone()
    }

    /// A `private_key_jwt` client assertion for [`RP_JWT`].
    pub fn client_assertion(&self, jti: &str) -> String {
        self.client_assertion_with(json!({"jti": jti}))
    }

    /// A client assertion for [`RP_JWT`] (valid for 60 s, `aud` the token endpoint, a
    /// fresh `jti`) with the members of `overrides` in place of those.
    pub fn client_assertion_with(&self, overrides: Value) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs() as i64;
        let mut claims = json!({"iss": RP_JWT, "sub": RP_JWT, "aud": format!("{}/token", self.url),
                                "jti": token::random_opaque(12), "iat": now, "exp": now + 60});
        for (name, value) in overrides.as_object().expect("an object of claims") {
            claims[name] = value.clone();
        }
        self.rp_jwt_key.sign(&claims).expect("sign")
    }

    /// POST /token with `form`, and `Authorization: Basic` when `basic` is given.
    pub async fn token_request(
        &self,
        basic: Option<(&str, &str)>,
        form: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        let mut request = self.http.post(format!("{}/token", self.url)).form(form);
        if let Some((id, secret)) = basic {
            request = request.basic_auth(id, Some(secret));
        }
        let response = request.send().await.expect("token request");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

/// Decodes a JWT payload without verifying (to inspect what a test got).
pub fn jwt_payload(jwt: &str) -> Value {
    let part = jwt.split('.').nth(1).expect("payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .expect("b64");
    serde_json::from_slice(&bytes).expect("json")
}

/// Relying parties and identity providers a test adds to the standard ones.
#[derive(Default)]
pub struct Extra {
    /// Each given the demo department records.
    pub relying_parties: Vec<Value>,
    pub identity_providers: Vec<Value>,
}

/// A test RP's settings (`client_secret_basic` with [`secret_of`], level P2) with `extra`
/// on top, for [`Extra::relying_parties`].
pub fn rp_settings(client_id: &str, redirect: &str, extra: Value) -> Value {
    rp(client_id, redirect, extra)
}

/// Like [`spawn_hub_with`], on a listener the test bound itself (so it knows the hub's
/// issuer before it starts peers that need it) and with `extra` RPs and IdPs.
pub async fn spawn_hub_on(hub_l: TcpListener, options: Options, extra: Extra) -> TestHub {
    let issuer = origin(&hub_l);
    let data_dir = tempfile::tempdir().expect("tempdir");
    let peers = start_peers(&issuer, options.include_down_idp).await;
    let backend = options.backend.unwrap_or_else(Backend::of_this_run);
    let storage = match options.storage {
        Some(storage) => storage,
        None => storage_settings(backend, data_dir.path()).await,
    };
    let settings = hub_settings(
        &peers,
        &issuer,
        data_dir.path(),
        storage,
        options.journey_ttl_secs,
    );
    let mut rps = serde_json::to_value(&settings.relying_parties).expect("rps");
    let mut idps = serde_json::to_value(&settings.identity_providers).expect("idps");
    let (Some(rps_list), Some(idps_list)) = (rps.as_array_mut(), idps.as_array_mut()) else {
        panic!("settings lists");
    };
    rps_list.extend(extra.relying_parties.iter().cloned());
    idps_list.extend(extra.identity_providers);
    let mut settings = settings
        .with(json!({"relying_parties": rps, "identity_providers": idps}))
        .expect("extra settings");
    if let Some(patch) = options.settings {
        settings = settings.with(patch).expect("test settings patch");
    }
    prepare_database(&settings).await;
    let db = store::Database::open(&settings.database.url)
        .await
        .expect("db");
    let csv = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/demo-records.csv");
    for rp in &extra.relying_parties {
        let client_id = rp["client_id"].as_str().expect("client_id");
        let report = hub::records::import_file(&db, client_id, &csv)
            .await
            .expect("import records");
        assert!(report.rejected.is_empty());
    }
    let database_url = settings.database.url.clone();
    let app = Application::build(settings, hub_l)
        .await
        .expect("build hub");
    tokio::spawn(app.into_server());
    peers.into_test_hub(issuer, data_dir, database_url)
}

/// A free loopback listener (port 0) and its `http://` origin.
pub fn free_listener() -> (TcpListener, String) {
    let l = listener();
    let url = origin(&l);
    (l, url)
}

/// The `outcome` of each event (empty where it has none), in log order.
pub fn outcomes(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["outcome"].as_str().unwrap_or("").to_owned())
        .collect()
}
