//! The demo identity provider: a real OpenID Provider (authorization code flow, PKCE S256,
//! RFC 9207 `iss`, ES256 ID tokens) with fixed test people.
//!
//! It exists so the hub can be demonstrated and tested against an IdP that behaves like a
//! certified one over real HTTP, including the unhappy paths, which its login page can
//! simulate on demand.
//!
//! Endpoints, relative to the issuer: `/.well-known/openid-configuration`, `/jwks`,
//! `/authorize` (GET or POST), `/login` (POST, the login form), `/token`, `/userinfo`.
//! All state is in memory: restarting the IdP forgets codes and tokens.

use std::collections::HashMap;
use std::fmt;
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::http::{header, StatusCode};
use actix_web::web::{self, Bytes};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer};
use askama::Template;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use url::Url;

use crate::forms::{form_decode, lock, now_secs, parse_params};
use crate::pages;
use crate::{PostalAddress, TestPerson};

/// How long the login page may stay open before the pending request is forgotten.
const PENDING_TTL_SECS: u64 = 600;
/// Authorization codes are short-lived (RFC 9700: single use, short lifetime).
const CODE_TTL_SECS: u64 = 120;
/// Lifetime of ID tokens and access tokens.
const TOKEN_TTL_SECS: u64 = 300;
/// Longest client assertion lifetime accepted, which bounds the `jti` replay cache.
const MAX_ASSERTION_LIFETIME_SECS: u64 = 3600;
/// Clock skew allowed on client assertions.
const LEEWAY_SECS: u64 = 30;
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Everything the demo IdP needs to run: who it is, what it can assert, whom it serves.
#[derive(Clone, Debug)]
pub struct IdpConfig {
    /// Issuer identifier, e.g. `http://127.0.0.1:PORT`. Endpoints live under its path. In
    /// `iss` values and the discovery document it is written without a trailing slash.
    pub issuer: Url,
    /// Display name shown on the login page.
    pub name: String,
    /// Highest level of assurance this IdP is certified for (one of `levels`).
    pub max_level: String,
    /// All levels known, ordered low to high, e.g. `["P0", "P1", "P2", "P3"]`.
    pub levels: Vec<String>,
    /// Registered relying parties (normally just the hub).
    pub clients: Vec<IdpClient>,
    /// People one can log in as, usually [`crate::test_people`].
    pub people: Vec<TestPerson>,
}

/// A registered client: exact redirect URIs and how it authenticates at `/token`.
#[derive(Clone, Debug)]
pub struct IdpClient {
    /// The `client_id`.
    pub client_id: String,
    /// Redirect URIs, compared exactly (no prefix or wildcard matching).
    pub redirect_uris: Vec<String>,
    /// Client authentication method at the token endpoint.
    pub auth: ClientAuth,
}

/// How a client proves its identity at the token endpoint.
#[derive(Clone)]
pub enum ClientAuth {
    /// Shared secret, sent with `client_secret_basic` or `client_secret_post`.
    Secret(String),
    /// `private_key_jwt`: a signed assertion verified against the client's published keys.
    PrivateKeyJwt {
        /// Where the client publishes its JWKS (fetched at each token request).
        jwks_uri: Url,
    },
}

impl fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Secret(_) => f.write_str("Secret(<redacted>)"),
            Self::PrivateKeyJwt { jwks_uri } => f
                .debug_struct("PrivateKeyJwt")
                .field("jwks_uri", &jwks_uri.as_str())
                .finish(),
        }
    }
}

/// A running demo IdP: its issuer, and what it has seen, so tests can assert on what the
/// hub sent (e.g. that the RP's identity never reaches the IdP).
pub struct DemoIdp {
    issuer: Url,
    state: Arc<IdpState>,
}

impl fmt::Debug for DemoIdp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DemoIdp")
            .field("issuer", &self.issuer.as_str())
            .finish_non_exhaustive()
    }
}

impl DemoIdp {
    /// Builds the IdP on an already bound listener (so tests can bind port 0 for every
    /// server before writing any configuration). The returned [`Server`] does nothing until
    /// the caller spawns or awaits it; OS signals are left to the caller.
    pub fn start(listener: TcpListener, config: IdpConfig) -> std::io::Result<(DemoIdp, Server)> {
        let state = Arc::new(IdpState::new(config)?);
        let prefix = state.prefix.clone();
        let data = web::Data::from(state.clone());
        listener.set_nonblocking(true)?;
        let server = HttpServer::new(move || {
            App::new().app_data(data.clone()).service(
                web::scope(&prefix)
                    .route(
                        "/.well-known/openid-configuration",
                        web::get().to(discovery),
                    )
                    .route("/jwks", web::get().to(jwks))
                    .route("/authorize", web::get().to(authorize_get))
                    .route("/authorize", web::post().to(authorize_post))
                    .route("/login", web::post().to(login))
                    .route("/token", web::post().to(token))
                    .route("/userinfo", web::get().to(userinfo))
                    .route("/userinfo", web::post().to(userinfo)),
            )
        })
        .workers(2)
        .disable_signals()
        .shutdown_timeout(1)
        .listen(listener)?
        .run();
        let idp = DemoIdp {
            issuer: state.config.issuer.clone(),
            state,
        };
        Ok((idp, server))
    }

    /// The issuer URL as configured.
    pub fn issuer(&self) -> &Url {
        &self.issuer
    }

    /// Every authorization request URL received so far (GET, or POST rebuilt as a query),
    /// oldest first.
    pub fn authorization_requests(&self) -> Vec<Url> {
        lock(&self.state.recorded).clone()
    }

    /// How many requests reached the userinfo endpoint so far.
    pub fn userinfo_requests(&self) -> usize {
        self.state.userinfo_requests.load(Ordering::Relaxed)
    }

    /// Rotates the ID-token signing key as a certified IdP does: a new key (and key id)
    /// signs from now on, and the JWKS publishes only it. Returns the new key id.
    pub fn rotate_signing_key(&self) -> std::io::Result<String> {
        let key = token::SigningKey::generate().map_err(std::io::Error::other)?;
        let kid = key.kid().to_owned();
        *lock(&self.state.key) = Arc::new(key);
        Ok(kid)
    }
}

struct Endpoints {
    authorize: String,
    login: String,
    token: String,
    userinfo: String,
    jwks: String,
}

struct PendingAuthorization {
    client_id: String,
    redirect_uri: String,
    state: String,
    nonce: String,
    code_challenge: String,
    scope: String,
    /// Claims the `claims` request parameter asked for in the ID token.
    id_token_claims: Vec<String>,
    level_index: usize,
    expires_at: u64,
}

struct CodeGrant {
    client_id: String,
    redirect_uri: String,
    code_challenge: String,
    nonce: String,
    subject: String,
    acr: String,
    auth_time: u64,
    scope: String,
    id_token_claims: Vec<String>,
    expires_at: u64,
}

struct AccessGrant {
    subject: String,
    expires_at: u64,
}

struct IdpState {
    config: IdpConfig,
    /// Issuer as written in tokens and metadata: no trailing slash.
    issuer: String,
    /// Path prefix the routes are mounted under ("" for a bare host).
    prefix: String,
    endpoints: Endpoints,
    max_index: usize,
    /// Signs ID tokens; the JWKS publishes only this key (see [`DemoIdp::rotate_signing_key`]).
    key: Mutex<Arc<token::SigningKey>>,
    http: reqwest::Client,
    pending: Mutex<HashMap<String, PendingAuthorization>>,
    codes: Mutex<HashMap<String, CodeGrant>>,
    /// Redeemed codes -> the access token issued, so a replayed code revokes it (RFC 6749 4.1.2).
    redeemed: Mutex<HashMap<String, (String, u64)>>,
    access_tokens: Mutex<HashMap<String, AccessGrant>>,
    used_jtis: Mutex<HashMap<(String, String), u64>>,
    /// `private_key_jwt` clients' keys, kept for the `max-age` their `jwks_uri` gave, as
    /// a certified IdP keeps them: client id -> (keys, kept until, Unix seconds).
    client_keys: Mutex<HashMap<String, (token::VerificationKeys, u64)>>,
    recorded: Mutex<Vec<Url>>,
    userinfo_requests: AtomicUsize,
}

fn invalid_config(msg: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidInput, msg)
}

impl IdpState {
    fn new(config: IdpConfig) -> std::io::Result<Self> {
        if !matches!(config.issuer.scheme(), "http" | "https")
            || config.issuer.query().is_some()
            || config.issuer.fragment().is_some()
        {
            return Err(invalid_config(format!(
                "demo IdP issuer must be an http(s) URL without query or fragment: {}",
                config.issuer
            )));
        }
        let max_index = config
            .levels
            .iter()
            .position(|l| *l == config.max_level)
            .ok_or_else(|| {
                invalid_config(format!(
                    "demo IdP max_level {:?} is not one of the levels {:?}",
                    config.max_level, config.levels
                ))
            })?;
        for c in &config.clients {
            for r in &c.redirect_uris {
                Url::parse(r).map_err(|e| {
                    invalid_config(format!("client {} redirect URI {r:?}: {e}", c.client_id))
                })?;
            }
        }
        let issuer = config.issuer.as_str().trim_end_matches('/').to_owned();
        let prefix = config.issuer.path().trim_end_matches('/').to_owned();
        let endpoints = Endpoints {
            authorize: format!("{issuer}/authorize"),
            login: format!("{issuer}/login"),
            token: format!("{issuer}/token"),
            userinfo: format!("{issuer}/userinfo"),
            jwks: format!("{issuer}/jwks"),
        };
        let key = token::SigningKey::generate().map_err(std::io::Error::other)?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(std::io::Error::other)?;
        Ok(Self {
            config,
            issuer,
            prefix,
            endpoints,
            max_index,
            key: Mutex::new(Arc::new(key)),
            http,
            pending: Mutex::default(),
            codes: Mutex::default(),
            redeemed: Mutex::default(),
            access_tokens: Mutex::default(),
            used_jtis: Mutex::default(),
            client_keys: Mutex::default(),
            recorded: Mutex::default(),
            userinfo_requests: AtomicUsize::new(0),
        })
    }

    fn signing_key(&self) -> Arc<token::SigningKey> {
        lock(&self.key).clone()
    }

    fn client(&self, client_id: &str) -> Option<&IdpClient> {
        self.config
            .clients
            .iter()
            .find(|c| c.client_id == client_id)
    }

    fn person(&self, subject: &str) -> Option<&TestPerson> {
        self.config.people.iter().find(|p| p.subject == subject)
    }

    fn page_error(&self, status: StatusCode, heading: &str, message: &str) -> HttpResponse {
        pages::message(status, &self.config.name, heading, message, None, None)
    }

    /// Redirects back to the client with the given parameters plus RFC 9207 `iss`.
    fn redirect(
        &self,
        redirect_uri: &str,
        params: &[(&str, &str)],
        status: StatusCode,
    ) -> HttpResponse {
        let Ok(mut url) = Url::parse(redirect_uri) else {
            return self.page_error(
                StatusCode::BAD_REQUEST,
                "Cannot return to the service",
                "The service's return address is not valid.",
            );
        };
        {
            let mut q = url.query_pairs_mut();
            for (k, v) in params {
                q.append_pair(k, v);
            }
            q.append_pair("iss", &self.issuer);
        }
        HttpResponse::build(status)
            .insert_header((header::LOCATION, url.as_str()))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((header::REFERRER_POLICY, "no-referrer"))
            .finish()
    }

    fn redirect_error(
        &self,
        redirect_uri: &str,
        state: Option<&str>,
        error: &str,
        description: &str,
        status: StatusCode,
    ) -> HttpResponse {
        let mut params = vec![("error", error), ("error_description", description)];
        if let Some(s) = state {
            params.push(("state", s));
        }
        self.redirect(redirect_uri, &params, status)
    }

    fn available_levels(&self) -> &[String] {
        &self.config.levels[..=self.max_index]
    }
}

async fn discovery(data: web::Data<IdpState>) -> HttpResponse {
    let mut claims: Vec<&str> = vec![
        "sub",
        "iss",
        "aud",
        "exp",
        "iat",
        "auth_time",
        "nonce",
        "acr",
    ];
    claims.extend(USERINFO_CLAIMS);
    HttpResponse::Ok().json(json!({
        "issuer": data.issuer,
        "authorization_endpoint": data.endpoints.authorize,
        "token_endpoint": data.endpoints.token,
        "userinfo_endpoint": data.endpoints.userinfo,
        "jwks_uri": data.endpoints.jwks,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "token_endpoint_auth_methods_supported":
            ["client_secret_basic", "client_secret_post", "private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["ES256", "ES384", "RS256", "PS256"],
        "code_challenge_methods_supported": ["S256"],
        "acr_values_supported": data.available_levels(),
        "scopes_supported": ["openid", "profile", "address"],
        "claims_supported": claims,
        "claims_parameter_supported": true,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "authorization_response_iss_parameter_supported": true,
    }))
}

const USERINFO_CLAIMS: [&str; 8] = [
    "given_name",
    "middle_name",
    "family_name",
    "birthdate",
    "gender",
    "address",
    "previous_family_names",
    "previous_addresses",
];

async fn jwks(data: web::Data<IdpState>) -> HttpResponse {
    HttpResponse::Ok().json(data.signing_key().jwks())
}

async fn authorize_get(req: HttpRequest, data: web::Data<IdpState>) -> HttpResponse {
    authorize(&data, req.query_string().as_bytes())
}

async fn authorize_post(body: Bytes, data: web::Data<IdpState>) -> HttpResponse {
    authorize(&data, &body)
}

fn authorize(data: &IdpState, raw: &[u8]) -> HttpResponse {
    let query = String::from_utf8_lossy(raw);
    if let Ok(url) = Url::parse(&format!("{}?{}", data.endpoints.authorize, query)) {
        lock(&data.recorded).push(url);
    }
    let params = match parse_params(raw) {
        Ok(p) => p,
        Err(e) => return data.page_error(StatusCode::BAD_REQUEST, "Invalid sign-in request", &e),
    };
    let get = |k: &str| params.get(k).map(String::as_str);

    // Until client and redirect URI are known good, never redirect (open redirector).
    let Some(client) = get("client_id").and_then(|id| data.client(id)) else {
        return data.page_error(
            StatusCode::BAD_REQUEST,
            "Unknown service",
            "The service that sent you here is not registered with this identity provider.",
        );
    };
    let Some(redirect_uri) =
        get("redirect_uri").filter(|r| client.redirect_uris.iter().any(|u| u == r))
    else {
        return data.page_error(
            StatusCode::BAD_REQUEST,
            "Invalid return address",
            "The service asked to return you to an address it has not registered.",
        );
    };
    let state = get("state");
    let fail = |error: &str, description: &str| {
        data.redirect_error(redirect_uri, state, error, description, StatusCode::FOUND)
    };

    if params.contains_key("request") {
        return fail("request_not_supported", "request objects are not supported");
    }
    if params.contains_key("request_uri") {
        return fail("request_uri_not_supported", "request_uri is not supported");
    }
    if get("response_type") != Some("code") {
        return fail(
            "unsupported_response_type",
            "only response_type=code is supported",
        );
    }
    if get("response_mode").is_some_and(|m| m != "query") {
        return fail("invalid_request", "only response_mode=query is supported");
    }
    let scope = get("scope").unwrap_or_default();
    if !scope.split(' ').any(|s| s == "openid") {
        return fail("invalid_scope", "scope must include openid");
    }
    if get("prompt").is_some_and(|p| p.split(' ').any(|v| v == "none")) {
        return fail(
            "login_required",
            "the demo identity provider always shows its login page",
        );
    }
    let Some(state) = state else {
        return fail("invalid_request", "state is required");
    };
    let Some(nonce) = get("nonce") else {
        return fail("invalid_request", "nonce is required");
    };
    let Some(code_challenge) = get("code_challenge") else {
        return fail("invalid_request", "code_challenge is required (PKCE S256)");
    };
    if get("code_challenge_method") != Some("S256") {
        return fail("invalid_request", "code_challenge_method must be S256");
    }
    if code_challenge.len() != 43
        || !code_challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return fail(
            "invalid_request",
            "code_challenge is not a base64url SHA-256 value",
        );
    }
    let id_token_claims = match get("claims").map(requested_id_token_claims) {
        None => Vec::new(),
        Some(Ok(names)) => names,
        Some(Err(e)) => return fail("invalid_request", &e),
    };
    let level_index = match get("acr_values") {
        None => data.max_index,
        Some(acr) => {
            let reachable = acr
                .split_whitespace()
                .filter_map(|v| data.config.levels.iter().position(|l| l == v))
                .filter(|i| *i <= data.max_index)
                .max();
            match reachable {
                Some(i) => i,
                None => return fail("access_denied", "level not available"),
            }
        }
    };

    let request_id = token::random_opaque(24);
    let now = now_secs();
    {
        let mut pending = lock(&data.pending);
        pending.retain(|_, p| p.expires_at > now);
        pending.insert(
            request_id.clone(),
            PendingAuthorization {
                client_id: client.client_id.clone(),
                redirect_uri: redirect_uri.to_owned(),
                state: state.to_owned(),
                nonce: nonce.to_owned(),
                code_challenge: code_challenge.to_owned(),
                scope: scope.to_owned(),
                id_token_claims,
                level_index,
                expires_at: now + PENDING_TTL_SECS,
            },
        );
    }
    let people = data
        .config
        .people
        .iter()
        .map(|p| PersonView {
            subject: p.subject.clone(),
            name: p.full_name(),
            birthdate: p.birthdate.clone().unwrap_or_else(|| "unknown".to_owned()),
        })
        .collect();
    pages::html(
        StatusCode::OK,
        &LoginPage {
            site_name: &data.config.name,
            login_action: &data.endpoints.login,
            request_id: &request_id,
            target_level: &data.config.levels[level_index],
            available_levels: data.available_levels().join(", "),
            simulations: SIMULATIONS,
            people,
        },
    )
}

/// The login page. Form fields posted to `/login`: `request_id` (hidden), `simulate`
/// (radio) and `subject` (the "Log in as ..." submit buttons).
#[derive(Template)]
#[template(path = "idp_login.html")]
struct LoginPage<'a> {
    site_name: &'a str,
    login_action: &'a str,
    request_id: &'a str,
    target_level: &'a str,
    available_levels: String,
    simulations: &'static [Simulation],
    people: Vec<PersonView>,
}

struct PersonView {
    subject: String,
    name: String,
    birthdate: String,
}

struct Simulation {
    value: &'static str,
    label: &'static str,
}

const SIMULATIONS: &[Simulation] = &[
    Simulation {
        value: "normal",
        label: "Normal: verify the person at the level requested",
    },
    Simulation {
        value: "cancel",
        label: "The user cancels",
    },
    Simulation {
        value: "access_denied",
        label: "The identity provider refuses (access_denied)",
    },
    Simulation {
        value: "temporarily_unavailable",
        label: "The identity provider is unavailable (temporarily_unavailable)",
    },
    Simulation {
        value: "lower_level",
        label: "Verify at one level below the one requested",
    },
];

async fn login(body: Bytes, data: web::Data<IdpState>) -> HttpResponse {
    let params = match parse_params(&body) {
        Ok(p) => p,
        Err(e) => return data.page_error(StatusCode::BAD_REQUEST, "Invalid form", &e),
    };
    let get = |k: &str| params.get(k).map(String::as_str);
    let expired = || {
        data.page_error(
            StatusCode::BAD_REQUEST,
            "This sign-in has expired",
            "This sign-in request has expired or has already been used. Go back to the service and start again.",
        )
    };
    let Some(request_id) = get("request_id") else {
        return expired();
    };
    let simulate = get("simulate").unwrap_or("normal");
    let subject = get("subject");
    let now = now_secs();
    if lock(&data.pending)
        .get(request_id)
        .is_none_or(|p| p.expires_at <= now)
    {
        return expired();
    }
    let error = match simulate {
        "normal" | "lower_level" => None,
        "cancel" => Some(("access_denied", "user cancelled")),
        "access_denied" => Some((
            "access_denied",
            "the identity provider could not verify this person",
        )),
        "temporarily_unavailable" => Some((
            "temporarily_unavailable",
            "the identity provider is temporarily unavailable",
        )),
        _ => {
            return data.page_error(
                StatusCode::BAD_REQUEST,
                "Invalid choice",
                "Choose one of the listed simulations.",
            )
        }
    };
    let person = match (error, subject.and_then(|s| data.person(s))) {
        (Some(_), p) => p,
        (None, Some(p)) => Some(p),
        (None, None) => {
            return data.page_error(
                StatusCode::BAD_REQUEST,
                "Choose a person",
                "Choose one of the listed test people to log in as. Go back and try again.",
            )
        }
    };
    let Some(pending) = lock(&data.pending).remove(request_id) else {
        return expired();
    };
    if let Some((code, description)) = error {
        return data.redirect_error(
            &pending.redirect_uri,
            Some(&pending.state),
            code,
            description,
            StatusCode::SEE_OTHER,
        );
    }
    let Some(person) = person else {
        return expired();
    };
    let level_index = if simulate == "lower_level" {
        pending.level_index.saturating_sub(1)
    } else {
        pending.level_index
    };
    let code = token::random_opaque(32);
    {
        let mut codes = lock(&data.codes);
        codes.retain(|_, c| c.expires_at > now);
        codes.insert(
            code.clone(),
            CodeGrant {
                client_id: pending.client_id,
                redirect_uri: pending.redirect_uri.clone(),
                code_challenge: pending.code_challenge,
                nonce: pending.nonce,
                subject: person.subject.clone(),
                acr: data.config.levels[level_index].clone(),
                auth_time: now,
                scope: pending.scope,
                id_token_claims: pending.id_token_claims,
                expires_at: now + CODE_TTL_SECS,
            },
        );
    }
    data.redirect(
        &pending.redirect_uri,
        &[("code", &code), ("state", &pending.state)],
        StatusCode::SEE_OTHER,
    )
}

/// An OAuth error response from the token endpoint.
struct OAuthError {
    status: StatusCode,
    error: &'static str,
    description: String,
}

impl OAuthError {
    fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            error,
            description: description.into(),
        }
    }

    fn request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    fn client(description: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalid_client", description)
    }

    fn grant(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_grant", description)
    }

    fn response(&self) -> HttpResponse {
        let mut b = HttpResponse::build(self.status);
        b.insert_header((header::CACHE_CONTROL, "no-store"));
        if self.status == StatusCode::UNAUTHORIZED {
            b.insert_header((header::WWW_AUTHENTICATE, "Basic realm=\"demo-idp\""));
        }
        b.json(json!({"error": self.error, "error_description": self.description}))
    }
}

async fn token(req: HttpRequest, body: Bytes, data: web::Data<IdpState>) -> HttpResponse {
    match token_inner(&req, &body, &data).await {
        Ok(r) => r,
        Err(e) => e.response(),
    }
}

async fn token_inner(
    req: &HttpRequest,
    body: &[u8],
    data: &IdpState,
) -> Result<HttpResponse, OAuthError> {
    let params = parse_params(body).map_err(OAuthError::request)?;
    let client = authenticate_client(req, &params, data).await?;
    let get = |k: &str| params.get(k).map(String::as_str);
    match get("grant_type") {
        Some("authorization_code") => {}
        Some(_) => {
            return Err(OAuthError::new(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "only authorization_code is supported",
            ))
        }
        None => return Err(OAuthError::request("grant_type is required")),
    }
    let code = get("code").ok_or_else(|| OAuthError::request("code is required"))?;
    let now = now_secs();
    let grant = lock(&data.codes)
        .remove(code)
        .filter(|g| g.expires_at > now);
    let Some(grant) = grant else {
        // A replayed code revokes what it first produced.
        if let Some((access_token, _)) = lock(&data.redeemed).remove(code) {
            lock(&data.access_tokens).remove(&access_token);
        }
        return Err(OAuthError::grant(
            "the code is invalid, expired or already used",
        ));
    };
    if grant.client_id != client.client_id {
        return Err(OAuthError::grant("the code was issued to another client"));
    }
    if get("redirect_uri") != Some(grant.redirect_uri.as_str()) {
        return Err(OAuthError::grant(
            "redirect_uri does not match the authorization request",
        ));
    }
    let verifier =
        get("code_verifier").ok_or_else(|| OAuthError::grant("code_verifier is required"))?;
    let verifier_ok = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
        && token::secrets_equal(
            token::pkce_s256(verifier).as_bytes(),
            grant.code_challenge.as_bytes(),
        );
    if !verifier_ok {
        return Err(OAuthError::grant(
            "code_verifier does not match the code_challenge",
        ));
    }

    let mut claims = json!({
        "iss": data.issuer,
        "sub": grant.subject,
        "aud": client.client_id,
        "exp": now + TOKEN_TTL_SECS,
        "iat": now,
        "auth_time": grant.auth_time,
        "nonce": grant.nonce,
        "acr": grant.acr,
    });
    if let (Some(person), Value::Object(claims)) = (data.person(&grant.subject), &mut claims) {
        if let Value::Object(released) = userinfo_claims(person) {
            for (name, value) in released {
                if grant.id_token_claims.contains(&name) {
                    claims.insert(name, value);
                }
            }
        }
    }
    let id_token = data.signing_key().sign(&claims).map_err(|e| {
        tracing::error!(error = %e, "demo IdP could not sign an ID token");
        OAuthError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "could not sign the ID token",
        )
    })?;
    let access_token = token::random_opaque(32);
    {
        let mut tokens = lock(&data.access_tokens);
        tokens.retain(|_, t| t.expires_at > now);
        tokens.insert(
            access_token.clone(),
            AccessGrant {
                subject: grant.subject,
                expires_at: now + TOKEN_TTL_SECS,
            },
        );
    }
    {
        let mut redeemed = lock(&data.redeemed);
        redeemed.retain(|_, (_, exp)| *exp > now);
        redeemed.insert(
            code.to_owned(),
            (access_token.clone(), now + TOKEN_TTL_SECS),
        );
    }
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": TOKEN_TTL_SECS,
            "id_token": id_token,
            "scope": grant.scope,
        })))
}

/// Claims of a `private_key_jwt` client assertion (RFC 7523).
#[derive(Deserialize)]
struct AssertionClaims {
    sub: String,
    exp: u64,
    jti: Option<String>,
}

async fn authenticate_client(
    req: &HttpRequest,
    params: &HashMap<String, String>,
    data: &IdpState,
) -> Result<IdpClient, OAuthError> {
    let basic = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .map(|(_, creds)| creds.trim());
    let post = params.get("client_secret");
    let jwt =
        params.contains_key("client_assertion") || params.contains_key("client_assertion_type");
    let methods = usize::from(basic.is_some()) + usize::from(post.is_some()) + usize::from(jwt);
    if methods > 1 {
        return Err(OAuthError::request(
            "use exactly one client authentication method",
        ));
    }
    let param_client_id = params.get("client_id").map(String::as_str);

    let (client_id, secret) = if let Some(creds) = basic {
        let decoded = STANDARD
            .decode(creds)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| OAuthError::client("malformed Basic credentials"))?;
        let (id, secret) = decoded
            .split_once(':')
            .ok_or_else(|| OAuthError::client("malformed Basic credentials"))?;
        let id =
            form_decode(id).ok_or_else(|| OAuthError::client("malformed Basic credentials"))?;
        let secret =
            form_decode(secret).ok_or_else(|| OAuthError::client("malformed Basic credentials"))?;
        if param_client_id.is_some_and(|p| p != id) {
            return Err(OAuthError::request(
                "client_id does not match the credentials",
            ));
        }
        (id, secret)
    } else if let Some(secret) = post {
        let id = param_client_id.ok_or_else(|| OAuthError::request("client_id is required"))?;
        (id.to_owned(), secret.clone())
    } else if jwt {
        return authenticate_private_key_jwt(params, param_client_id, data).await;
    } else {
        return Err(OAuthError::client("client authentication is required"));
    };
    let client = data
        .client(&client_id)
        .ok_or_else(|| OAuthError::client("unknown client or wrong secret"))?;
    match &client.auth {
        ClientAuth::Secret(expected)
            if token::secrets_equal(expected.as_bytes(), secret.as_bytes()) =>
        {
            Ok(client.clone())
        }
        ClientAuth::Secret(_) => Err(OAuthError::client("unknown client or wrong secret")),
        ClientAuth::PrivateKeyJwt { .. } => {
            Err(OAuthError::client("this client must use private_key_jwt"))
        }
    }
}

async fn authenticate_private_key_jwt(
    params: &HashMap<String, String>,
    param_client_id: Option<&str>,
    data: &IdpState,
) -> Result<IdpClient, OAuthError> {
    if params.get("client_assertion_type").map(String::as_str) != Some(JWT_BEARER) {
        return Err(OAuthError::client(format!(
            "client_assertion_type must be {JWT_BEARER}"
        )));
    }
    let assertion = params
        .get("client_assertion")
        .ok_or_else(|| OAuthError::client("client_assertion is required"))?;
    // Which client claims to be calling: the parameter, else the (not yet verified) issuer.
    let client_id = match param_client_id {
        Some(id) => id.to_owned(),
        None => unverified_issuer(assertion)
            .ok_or_else(|| OAuthError::client("malformed client_assertion"))?,
    };
    let client = data
        .client(&client_id)
        .ok_or_else(|| OAuthError::client("unknown client"))?;
    let ClientAuth::PrivateKeyJwt { jwks_uri } = &client.auth else {
        return Err(OAuthError::client(
            "this client must authenticate with its secret",
        ));
    };
    let expect = token::Expect {
        issuer: Some(client_id.clone()),
        audience: vec![
            data.endpoints.token.clone(),
            data.issuer.clone(),
            format!("{}/", data.issuer),
        ],
        leeway_secs: LEEWAY_SECS,
    };
    // Kept keys first; if they do not verify (the client may have rotated), fetched ones.
    let kept = kept_client_keys(data, &client_id);
    let verified = match kept.map(|keys| keys.verify::<AssertionClaims>(assertion, &expect)) {
        Some(Ok(claims)) => Ok(claims),
        _ => fetch_client_keys(data, &client_id, jwks_uri)
            .await?
            .verify(assertion, &expect),
    };
    let claims =
        verified.map_err(|e| OAuthError::client(format!("client_assertion rejected: {e}")))?;
    if claims.sub != client_id {
        return Err(OAuthError::client(
            "client_assertion sub must be the client_id",
        ));
    }
    let now = now_secs();
    if claims.exp + LEEWAY_SECS <= now {
        return Err(OAuthError::client("client_assertion has expired"));
    }
    if claims.exp > now + MAX_ASSERTION_LIFETIME_SECS {
        return Err(OAuthError::client("client_assertion lives too long"));
    }
    let jti = claims
        .jti
        .ok_or_else(|| OAuthError::client("client_assertion must have a jti"))?;
    {
        let mut used = lock(&data.used_jtis);
        used.retain(|_, exp| *exp + LEEWAY_SECS > now);
        if used.insert((client_id, jti), claims.exp).is_some() {
            return Err(OAuthError::client("client_assertion was already used"));
        }
    }
    Ok(client.clone())
}

fn unverified_issuer(jwt: &str) -> Option<String> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    v.get("iss")
        .or_else(|| v.get("sub"))?
        .as_str()
        .map(str::to_owned)
}

fn bearer_error(error: Option<&str>, description: &str) -> HttpResponse {
    let challenge = match error {
        Some(e) => {
            format!("Bearer realm=\"demo-idp\", error=\"{e}\", error_description=\"{description}\"")
        }
        None => "Bearer realm=\"demo-idp\"".to_owned(),
    };
    let status = if error == Some("invalid_request") {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::UNAUTHORIZED
    };
    HttpResponse::build(status)
        .insert_header((header::WWW_AUTHENTICATE, challenge))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({"error": error.unwrap_or("invalid_token"), "error_description": description}))
}

async fn userinfo(req: HttpRequest, body: Bytes, data: web::Data<IdpState>) -> HttpResponse {
    data.userinfo_requests.fetch_add(1, Ordering::Relaxed);
    let header_token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim().to_owned());
    let body_token = if req.method() == actix_web::http::Method::POST {
        match parse_params(&body) {
            Ok(mut p) => p.remove("access_token"),
            Err(e) => return bearer_error(Some("invalid_request"), &e),
        }
    } else {
        None
    };
    let access_token = match (header_token, body_token) {
        (Some(_), Some(_)) => {
            return bearer_error(
                Some("invalid_request"),
                "send the access token one way only",
            )
        }
        (Some(t), None) | (None, Some(t)) => t,
        (None, None) => return bearer_error(None, "an access token is required"),
    };
    let now = now_secs();
    let subject = lock(&data.access_tokens)
        .get(&access_token)
        .filter(|g| g.expires_at > now)
        .map(|g| g.subject.clone());
    let Some(person) = subject.as_deref().and_then(|s| data.person(s)) else {
        return bearer_error(
            Some("invalid_token"),
            "the access token is invalid or expired",
        );
    };
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(userinfo_claims(person))
}

fn address_claim(a: &PostalAddress) -> Value {
    json!({"street_address": a.lines.join("\n"), "postal_code": a.postcode})
}

/// The matching dataset of a person as standard OIDC claims plus two extensions
/// (`previous_family_names`, `previous_addresses`) that the hub needs for matching.
fn userinfo_claims(p: &TestPerson) -> Value {
    let mut m = Map::new();
    m.insert("sub".into(), json!(p.subject));
    m.insert("given_name".into(), json!(p.given_name));
    if !p.middle_names.is_empty() {
        m.insert("middle_name".into(), json!(p.middle_names.join(" ")));
    }
    m.insert("family_name".into(), json!(p.family_name));
    if let Some(b) = &p.birthdate {
        m.insert("birthdate".into(), json!(b));
    }
    if let Some(g) = &p.gender {
        m.insert("gender".into(), json!(g));
    }
    if let Some(a) = &p.address {
        m.insert("address".into(), address_claim(a));
    }
    m.insert(
        "previous_family_names".into(),
        json!(p.previous_family_names),
    );
    m.insert(
        "previous_addresses".into(),
        Value::Array(p.previous_addresses.iter().map(address_claim).collect()),
    );
    Value::Object(m)
}

/// The names of the `claims` request parameter's `id_token` member (OIDC Core §5.5) that
/// this IdP releases; other members and unknown claims are ignored, as §5.5 allows.
fn requested_id_token_claims(claims: &str) -> Result<Vec<String>, String> {
    let request: Value =
        serde_json::from_str(claims).map_err(|_| "claims is not JSON".to_owned())?;
    let Value::Object(request) = request else {
        return Err("claims is not a JSON object".into());
    };
    Ok(match request.get("id_token") {
        Some(Value::Object(wanted)) => wanted
            .keys()
            .filter(|name| USERINFO_CLAIMS.contains(&name.as_str()))
            .cloned()
            .collect(),
        Some(_) => return Err("claims.id_token is not a JSON object".into()),
        None => Vec::new(),
    })
}

/// A client's keys kept from an earlier fetch, if still within their `max-age`.
fn kept_client_keys(data: &IdpState, client_id: &str) -> Option<token::VerificationKeys> {
    let kept = lock(&data.client_keys);
    kept.get(client_id)
        .filter(|(_, until)| *until > now_secs())
        .map(|(keys, _)| keys.clone())
}

/// Fetches a client's keys from its `jwks_uri` and keeps them for the `max-age` of the
/// response's `Cache-Control` (not at all without one).
async fn fetch_client_keys(
    data: &IdpState,
    client_id: &str,
    jwks_uri: &Url,
) -> Result<token::VerificationKeys, OAuthError> {
    let fetched: Result<(Value, u64), reqwest::Error> = async {
        let response = data
            .http
            .get(jwks_uri.clone())
            .send()
            .await?
            .error_for_status()?;
        let max_age = response
            .headers()
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(max_age_secs)
            .unwrap_or(0);
        Ok((response.json().await?, max_age))
    }
    .await;
    let (jwks, max_age) = fetched.map_err(|e| {
        tracing::warn!(client_id = %client_id, error = %e, "could not fetch client JWKS");
        OAuthError::client("could not fetch the client's keys")
    })?;
    let keys = token::VerificationKeys::from_jwks(&jwks)
        .map_err(|e| OAuthError::client(format!("client keys unusable: {e}")))?;
    if max_age > 0 {
        lock(&data.client_keys).insert(client_id.to_owned(), (keys.clone(), now_secs() + max_age));
    }
    Ok(keys)
}

/// `max-age` of a `Cache-Control` value, unless it also says `no-store` or `no-cache`.
fn max_age_secs(cache_control: &str) -> Option<u64> {
    let directives: Vec<&str> = cache_control.split(',').map(str::trim).collect();
    if directives
        .iter()
        .any(|d| d.eq_ignore_ascii_case("no-store") || d.eq_ignore_ascii_case("no-cache"))
    {
        return None;
    }
    directives
        .iter()
        .find_map(|d| d.strip_prefix("max-age="))
        .and_then(|secs| secs.parse().ok())
}

#[cfg(test)]
mod tests;
