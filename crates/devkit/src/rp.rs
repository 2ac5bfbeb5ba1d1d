//! The demo relying party: a pretend government service that signs users in through the hub
//! with the `openidconnect` crate, an independent certified-style client library.
//!
//! It exists to prove, in the demo and in the integration tests, that a plain OIDC client
//! can use the hub unmodified (discovery, PKCE S256, state, nonce, `acr_values`,
//! `client_secret_basic`, ID token verification against the hub's JWKS, userinfo), and to
//! show what a service gets back: the match outcome, the level, the verified claims.
//!
//! Routes, relative to `base_url`: `/` (start page), `/login` (redirects to the hub),
//! `/callback` (the redirect URI). Flows in progress are kept in memory, keyed by the
//! HttpOnly cookie `demo_rp_session` and the `state` value, so two tabs can run at once.

use std::collections::HashMap;
use std::error::Error as StdError;
use std::fmt;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::Server;
use actix_web::http::{header, StatusCode};
use actix_web::web;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer};
use askama::Template;
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreErrorResponseType, CoreGenderClaim, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm, CoreProviderMetadata,
    CoreResponseType, CoreRevocableToken, CoreRevocationErrorResponse,
    CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AccessToken, AdditionalClaims, AuthenticationContextClass, AuthenticationFlow,
    AuthorizationCode, Client, ClientId, ClientSecret, CsrfToken, EmptyExtraTokenFields,
    EndpointMaybeSet, EndpointNotSet, EndpointSet, IdTokenFields, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RequestTokenError,
    Scope, StandardErrorResponse, StandardTokenResponse, UserInfoClaims,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::Url;

use crate::forms::{lock, now_secs, parse_params};
use crate::pages;

/// Name of the session cookie holding the id of the flows in progress.
pub const SESSION_COOKIE: &str = "demo_rp_session";
const SITE_NAME: &str = "Demo government service";
/// How long a started sign-in may take before it is forgotten.
const FLOW_TTL_SECS: u64 = 1800;
/// Sign-ins in progress kept per browser (tabs), oldest dropped first.
const MAX_FLOWS_PER_SESSION: usize = 10;

/// How the demo RP reaches the hub and who it is there.
#[derive(Clone)]
pub struct RpConfig {
    /// Where this RP is served, e.g. `http://127.0.0.1:PORT`; routes live under its path.
    pub base_url: Url,
    /// The hub's issuer identifier (discovery is done against it).
    pub hub_issuer: Url,
    /// This RP's client id at the hub.
    pub client_id: String,
    /// This RP's client secret at the hub (sent with `client_secret_basic`).
    pub client_secret: String,
    /// Space-separated levels to request, e.g. `"P2"`.
    pub acr_values: String,
}

impl fmt::Debug for RpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RpConfig")
            .field("base_url", &self.base_url.as_str())
            .field("hub_issuer", &self.hub_issuer.as_str())
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("acr_values", &self.acr_values)
            .finish()
    }
}

/// A running demo RP. Holds what a test needs to register it at the hub.
#[derive(Debug)]
pub struct DemoRp {
    redirect_uri: Url,
}

impl DemoRp {
    /// Builds the RP on an already bound listener (so tests can bind every port before
    /// writing configuration). The hub is only contacted when a user starts a sign-in, so the
    /// hub may start after the RP. The returned [`Server`] runs when spawned or awaited.
    pub fn start(listener: TcpListener, config: RpConfig) -> std::io::Result<(DemoRp, Server)> {
        let state = Arc::new(RpState::new(config)?);
        let prefix = state.prefix.clone();
        let redirect_uri = state.redirect_uri.clone();
        let data = web::Data::from(state);
        listener.set_nonblocking(true)?;
        let server = HttpServer::new(move || {
            App::new().app_data(data.clone()).service(
                web::scope(&prefix)
                    .route("/", web::get().to(home))
                    .route("/login", web::get().to(login))
                    .route("/callback", web::get().to(callback)),
            )
        })
        .workers(2)
        .disable_signals()
        .shutdown_timeout(1)
        .listen(listener)?
        .run();
        Ok((DemoRp { redirect_uri }, server))
    }

    /// The redirect URI to register at the hub: `base_url` + `/callback`.
    pub fn redirect_uri(&self) -> Url {
        self.redirect_uri.clone()
    }
}

/// The hub's ID token extension: which department record matched.
#[derive(Clone, Debug, Deserialize, Serialize)]
struct HubClaims {
    #[serde(rename = "match", default, skip_serializing_if = "Option::is_none")]
    match_outcome: Option<MatchClaim>,
}
impl AdditionalClaims for HubClaims {}

#[derive(Clone, Debug, Deserialize, Serialize)]
struct MatchClaim {
    status: String,
    #[serde(default)]
    record_id: Option<String>,
}

/// Userinfo claims beyond the OIDC standard ones that the hub may return.
#[derive(Clone, Debug, Deserialize, Serialize)]
struct UserInfoExtra {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    previous_family_names: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    previous_addresses: Option<Value>,
}
impl AdditionalClaims for UserInfoExtra {}

type HubIdTokenFields = IdTokenFields<
    HubClaims,
    EmptyExtraTokenFields,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;
type HubTokenResponse = StandardTokenResponse<HubIdTokenFields, CoreTokenType>;
type HubClient = Client<
    HubClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    HubTokenResponse,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

struct Flow {
    pkce_verifier: String,
    nonce: String,
    created: u64,
}

struct RpState {
    config: RpConfig,
    prefix: String,
    redirect_uri: Url,
    secure_cookie: bool,
    http: reqwest::Client,
    metadata: Mutex<Option<CoreProviderMetadata>>,
    /// session id -> state -> flow
    flows: Mutex<HashMap<String, HashMap<String, Flow>>>,
}

impl RpState {
    fn new(config: RpConfig) -> std::io::Result<Self> {
        let base = config.base_url.as_str().trim_end_matches('/');
        let redirect_uri = Url::parse(&format!("{base}/callback"))
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let prefix = config.base_url.path().trim_end_matches('/').to_owned();
        let http = reqwest::Client::builder()
            // Following redirects from the hub's back channel would open SSRF.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(std::io::Error::other)?;
        Ok(Self {
            secure_cookie: config.base_url.scheme() == "https",
            config,
            prefix,
            redirect_uri,
            http,
            metadata: Mutex::default(),
            flows: Mutex::default(),
        })
    }

    fn path(&self, p: &str) -> String {
        format!("{}{p}", self.prefix)
    }

    /// The hub's metadata, discovered once and then cached. The issuer is tried as written
    /// without and then with a trailing slash, since discovery compares it byte for byte.
    async fn metadata(&self) -> Result<CoreProviderMetadata, String> {
        if let Some(m) = lock(&self.metadata).clone() {
            return Ok(m);
        }
        let written = self.config.hub_issuer.as_str();
        let mut candidates = vec![written.trim_end_matches('/').to_owned()];
        if candidates[0] != written {
            candidates.push(written.to_owned());
        }
        let mut last_error = String::new();
        for candidate in candidates {
            let issuer = IssuerUrl::new(candidate).map_err(|e| e.to_string())?;
            match CoreProviderMetadata::discover_async(issuer, &self.http).await {
                Ok(m) => {
                    *lock(&self.metadata) = Some(m.clone());
                    return Ok(m);
                }
                Err(e) => last_error = error_chain(&e),
            }
        }
        Err(last_error)
    }

    fn client(&self, metadata: CoreProviderMetadata) -> HubClient {
        HubClient::from_provider_metadata(
            metadata,
            ClientId::new(self.config.client_id.clone()),
            Some(ClientSecret::new(self.config.client_secret.clone())),
        )
        .set_redirect_uri(RedirectUrl::from_url(self.redirect_uri.clone()))
    }

    fn error_page(
        &self,
        status: StatusCode,
        heading: &str,
        message: &str,
        detail: Option<&str>,
    ) -> HttpResponse {
        let home = self.path("/");
        pages::message(status, SITE_NAME, heading, message, detail, Some(&home))
    }
}

/// Formats an error with its causes, which is where the library puts the useful part.
fn error_chain(e: &dyn StdError) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
}

#[derive(Template)]
#[template(path = "rp_home.html")]
struct HomePage<'a> {
    site_name: &'a str,
    login_path: &'a str,
}

async fn home(data: web::Data<RpState>) -> HttpResponse {
    let login_path = data.path("/login");
    pages::html(
        StatusCode::OK,
        &HomePage {
            site_name: SITE_NAME,
            login_path: &login_path,
        },
    )
}

async fn login(req: HttpRequest, data: web::Data<RpState>) -> HttpResponse {
    let metadata = match data.metadata().await {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(error = %e, "demo RP: hub discovery failed");
            return data.error_page(
                StatusCode::BAD_GATEWAY,
                "The identity hub cannot be reached",
                "We could not contact the identity hub. Try again later.",
                Some(&e),
            );
        }
    };
    let client = data.client(metadata);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = client
        .authorize_url(
            AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .set_pkce_challenge(challenge)
        .add_scope(Scope::new("profile".to_owned()))
        .add_scope(Scope::new("address".to_owned()));
    for acr in data.config.acr_values.split_whitespace() {
        request = request.add_auth_context_value(AuthenticationContextClass::new(acr.to_owned()));
    }
    let (url, csrf, nonce) = request.url();

    let now = now_secs();
    let existing = req.cookie(SESSION_COOKIE).map(|c| c.value().to_owned());
    let session_id = {
        let mut flows = lock(&data.flows);
        flows.retain(|_, f| {
            f.retain(|_, flow| flow.created + FLOW_TTL_SECS > now);
            !f.is_empty()
        });
        // Only reuse a session id this server issued (no session fixation).
        let sid = existing
            .filter(|s| flows.contains_key(s))
            .unwrap_or_else(|| token::random_opaque(32));
        let session = flows.entry(sid.clone()).or_default();
        while session.len() >= MAX_FLOWS_PER_SESSION {
            let oldest = session
                .iter()
                .min_by_key(|(_, f)| f.created)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => session.remove(&k),
                None => break,
            };
        }
        session.insert(
            csrf.secret().clone(),
            Flow {
                pkce_verifier: verifier.secret().clone(),
                nonce: nonce.secret().clone(),
                created: now,
            },
        );
        sid
    };
    let cookie = Cookie::build(SESSION_COOKIE, session_id)
        .path(if data.prefix.is_empty() {
            "/"
        } else {
            &data.prefix
        })
        .http_only(true)
        .secure(data.secure_cookie)
        .same_site(SameSite::Lax)
        .finish();
    HttpResponse::Found()
        .insert_header((header::LOCATION, url.as_str()))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .cookie(cookie)
        .finish()
}

#[derive(Template)]
#[template(path = "rp_failure.html")]
struct FailurePage<'a> {
    site_name: &'a str,
    summary: &'a str,
    description: Option<&'a str>,
    home_path: &'a str,
}

#[derive(Template)]
#[template(path = "rp_result.html")]
struct ResultPage<'a> {
    site_name: &'a str,
    heading: &'a str,
    outcome: &'a str,
    acr: &'a str,
    subject: &'a str,
    claims: Vec<(String, String)>,
    home_path: &'a str,
}

async fn callback(req: HttpRequest, data: web::Data<RpState>) -> HttpResponse {
    let params = match parse_params(req.query_string().as_bytes()) {
        Ok(p) => p,
        Err(e) => {
            return data.error_page(
                StatusCode::BAD_REQUEST,
                "Sign-in failed",
                "The response from the identity hub was malformed.",
                Some(&e),
            )
        }
    };
    let get = |k: &str| params.get(k).map(String::as_str);
    let session_id = req.cookie(SESSION_COOKIE).map(|c| c.value().to_owned());
    // The flow is single use whatever happens next.
    let flow = match (&session_id, get("state")) {
        (Some(sid), Some(state)) => {
            let mut flows = lock(&data.flows);
            let flow = flows.get_mut(sid).and_then(|f| f.remove(state));
            if flows.get(sid).is_some_and(HashMap::is_empty) {
                flows.remove(sid);
            }
            flow
        }
        _ => None,
    };

    if let Some(error) = get("error") {
        let mut summary = format!("Verification failed: {error}");
        if let Some(reason) = get("reason") {
            summary.push_str(&format!(" ({reason})"));
        }
        let home = data.path("/");
        return pages::html(
            StatusCode::OK,
            &FailurePage {
                site_name: SITE_NAME,
                summary: &summary,
                description: get("error_description"),
                home_path: &home,
            },
        );
    }

    let Some(flow) = flow else {
        return data.error_page(
            StatusCode::BAD_REQUEST,
            "Sign-in expired",
            "This sign-in has expired, was already completed, or was started in another browser. Start again.",
            None,
        );
    };
    let Some(code) = get("code") else {
        return data.error_page(
            StatusCode::BAD_REQUEST,
            "Sign-in failed",
            "The identity hub did not return an authorization code.",
            None,
        );
    };
    match complete(&data, flow, code, get("iss")).await {
        Ok(r) => r,
        Err((message, detail)) => {
            tracing::warn!(error = %detail, "demo RP: sign-in failed");
            data.error_page(
                StatusCode::BAD_GATEWAY,
                "Sign-in failed",
                message,
                Some(&detail),
            )
        }
    }
}

type StepError = (&'static str, String);

async fn complete(
    data: &RpState,
    flow: Flow,
    code: &str,
    iss: Option<&str>,
) -> Result<HttpResponse, StepError> {
    let metadata = data
        .metadata()
        .await
        .map_err(|e| ("We could not contact the identity hub.", e))?;
    // RFC 9207: a response naming another issuer is a mix-up attack.
    if let Some(iss) = iss {
        if iss != metadata.issuer().as_str() {
            return Err((
                "The response came from an unexpected issuer.",
                format!("iss {iss:?} is not {:?}", metadata.issuer().as_str()),
            ));
        }
    }
    let client = data.client(metadata);
    let token_response = client
        .exchange_code(AuthorizationCode::new(code.to_owned()))
        .map_err(|e| ("The identity hub has no token endpoint.", error_chain(&e)))?
        .set_pkce_verifier(PkceCodeVerifier::new(flow.pkce_verifier))
        .request_async(&data.http)
        .await
        .map_err(|e| {
            let detail = match &e {
                RequestTokenError::ServerResponse(r) => match r.error_description() {
                    Some(d) => format!("{}: {d}", r.error().as_ref()),
                    None => r.error().as_ref().to_owned(),
                },
                other => error_chain(other),
            };
            ("The identity hub refused to exchange the code.", detail)
        })?;
    let id_token = token_response.extra_fields().id_token().ok_or_else(|| {
        (
            "The identity hub returned no ID token.",
            "id_token missing".to_owned(),
        )
    })?;
    let verifier = client.id_token_verifier();
    let claims = id_token
        .claims(&verifier, &Nonce::new(flow.nonce))
        .map_err(|e| ("The identity hub's ID token is not valid.", error_chain(&e)))?;

    let subject = claims.subject().clone();
    let acr = claims
        .auth_context_ref()
        .map(|a| a.as_str().to_owned())
        .unwrap_or_else(|| "not stated".to_owned());
    let outcome = match &claims.additional_claims().match_outcome {
        Some(m) => match (m.status.as_str(), m.record_id.as_deref()) {
            ("matched", Some(id)) => format!("Matched record {id}"),
            ("matched", None) => "Matched record (no record id given)".to_owned(),
            ("created", _) => "Account created".to_owned(),
            ("no_match", _) => "No matching record".to_owned(),
            (other, _) => format!("Match outcome: {other}"),
        },
        None => "The identity hub did not say whether a record matched".to_owned(),
    };

    let userinfo: UserInfoClaims<UserInfoExtra, CoreGenderClaim> = client
        .user_info(
            AccessToken::new(token_response.access_token().secret().clone()),
            Some(subject.clone()),
        )
        .map_err(|e| {
            (
                "The identity hub has no userinfo endpoint.",
                error_chain(&e),
            )
        })?
        .request_async(&data.http)
        .await
        .map_err(|e| {
            (
                "The identity hub did not return your details.",
                error_chain(&e),
            )
        })?;
    let json = serde_json::to_value(&userinfo).map_err(|e| {
        (
            "The identity hub's details could not be read.",
            e.to_string(),
        )
    })?;

    let home = data.path("/");
    Ok(pages::html(
        StatusCode::OK,
        &ResultPage {
            site_name: SITE_NAME,
            heading: "Identity verified",
            outcome: &outcome,
            acr: &acr,
            subject: subject.as_str(),
            claims: claim_rows(&json),
            home_path: &home,
        },
    ))
}

/// Claim names in display order with their labels; others follow under their own name.
const CLAIM_LABELS: &[(&str, &str)] = &[
    ("sub", "Subject"),
    ("name", "Full name"),
    ("given_name", "Given name"),
    ("middle_name", "Middle names"),
    ("family_name", "Family name"),
    ("birthdate", "Date of birth"),
    ("gender", "Gender"),
    ("address", "Address"),
    ("previous_family_names", "Previous family names"),
    ("previous_addresses", "Previous addresses"),
];

fn claim_rows(json: &Value) -> Vec<(String, String)> {
    let Some(obj) = json.as_object() else {
        return Vec::new();
    };
    let mut rows: Vec<(String, String)> = CLAIM_LABELS
        .iter()
        .filter_map(|(k, label)| obj.get(*k).map(|v| ((*label).to_owned(), display_value(v))))
        .collect();
    rows.extend(
        obj.iter()
            .filter(|(k, _)| !CLAIM_LABELS.iter().any(|(known, _)| known == k))
            .map(|(k, v)| (k.clone(), display_value(v))),
    );
    rows
}

/// Plain text for a claim value (newlines shown as line breaks by the page's CSS).
fn display_value(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) if items.is_empty() => "none".to_owned(),
        Value::Array(items) => items
            .iter()
            .map(display_value)
            .collect::<Vec<_>>()
            .join("\n\n"),
        Value::Object(map) => {
            let order = [
                "formatted",
                "street_address",
                "locality",
                "region",
                "postal_code",
                "country",
            ];
            let mut parts: Vec<String> = order
                .iter()
                .filter_map(|k| map.get(*k))
                .map(display_value)
                .collect();
            parts.extend(
                map.iter()
                    .filter(|(k, _)| !order.contains(&k.as_str()))
                    .map(|(k, v)| format!("{k}: {}", display_value(v))),
            );
            parts.join("\n")
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn claims_render_in_order_with_addresses_as_lines() {
        let rows = claim_rows(&json!({
            "sub": "abc", "family_name": "Smith", "given_name": "Alice",
            "address": {"street_address": "12 High Street\nLeeds", "postal_code": "LS1 4AB"},
            "previous_family_names": [], "custom": 3
        }));
        let labels: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
        assert_eq!(
            labels,
            [
                "Subject",
                "Given name",
                "Family name",
                "Address",
                "Previous family names",
                "custom"
            ]
        );
        assert_eq!(rows[3].1, "12 High Street\nLeeds\nLS1 4AB");
        assert_eq!(rows[4].1, "none");
    }

    #[test]
    fn result_page_escapes_claims() {
        let page = ResultPage {
            site_name: SITE_NAME,
            heading: "Identity verified",
            outcome: "Matched record <b>1</b>",
            acr: "P2",
            subject: "s",
            claims: vec![("Given name".into(), "<script>alert(1)</script>".into())],
            home_path: "/",
        };
        let html = page.render().expect("renders");
        assert!(!html.contains("<script>"));
        assert!(html.contains("&lt;script&gt;") || html.contains("&#60;script&#62;"));
        assert!(html.contains("lang=\"en\""));
    }

    /// The RP is an ordinary OIDC client: run it against the demo IdP standing in for the hub
    /// (no `match` claim there; the hub's own tests cover that part).
    #[tokio::test]
    async fn rp_signs_in_against_a_real_op_and_shows_errors() {
        use crate::idp::{ClientAuth, DemoIdp, IdpClient, IdpConfig};
        use reqwest::StatusCode;

        let idp_listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let rp_listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let idp_base = format!(
            "http://127.0.0.1:{}",
            idp_listener.local_addr().expect("addr").port()
        );
        let rp_base = format!(
            "http://127.0.0.1:{}",
            rp_listener.local_addr().expect("addr").port()
        );
        let (rp, rp_server) = DemoRp::start(
            rp_listener,
            RpConfig {
                base_url: Url::parse(&rp_base).expect("url"),
                // Written with a trailing slash: discovery must still succeed.
                hub_issuer: Url::parse(&format!("{idp_base}/")).expect("url"),
                client_id: "rp".into(),
                client_secret: "s e+c:r%t".into(),
                acr_values: "P1".into(),
            },
        )
        .expect("rp");
        assert_eq!(rp.redirect_uri().as_str(), format!("{rp_base}/callback"));
        let (_idp, idp_server) = DemoIdp::start(
            idp_listener,
            IdpConfig {
                issuer: Url::parse(&idp_base).expect("url"),
                name: "Stand-in hub".into(),
                max_level: "P2".into(),
                levels: vec!["P0".into(), "P1".into(), "P2".into()],
                clients: vec![IdpClient {
                    client_id: "rp".into(),
                    redirect_uris: vec![rp.redirect_uri().to_string()],
                    auth: ClientAuth::Secret("s e+c:r%t".into()),
                }],
                people: crate::test_people(),
            },
        )
        .expect("idp");
        tokio::spawn(rp_server);
        tokio::spawn(idp_server);
        let browser = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .cookie_store(true)
            .build()
            .expect("client");
        let location = |r: &reqwest::Response| -> String {
            r.headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .expect("location")
                .to_owned()
        };

        let home = browser
            .get(format!("{rp_base}/"))
            .send()
            .await
            .expect("home");
        assert!(home
            .text()
            .await
            .expect("body")
            .contains("Prove your identity"));

        let sign_in = |subject: &'static str, simulate: &'static str| {
            let browser = browser.clone();
            let rp_base = rp_base.clone();
            async move {
                let r = browser
                    .get(format!("{rp_base}/login"))
                    .send()
                    .await
                    .expect("login");
                assert_eq!(r.status(), StatusCode::FOUND);
                assert!(r
                    .headers()
                    .get("set-cookie")
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|c| c.starts_with("demo_rp_session=") && c.contains("HttpOnly")));
                let authorize = location(&r);
                assert!(authorize.contains("acr_values=P1"), "{authorize}");
                assert!(
                    authorize.contains("code_challenge_method=S256"),
                    "{authorize}"
                );
                let page = browser.get(&authorize).send().await.expect("authorize");
                let html = page.text().await.expect("body");
                let marker = "name=\"request_id\" value=\"";
                let start = html.find(marker).expect("field") + marker.len();
                let request_id =
                    html[start..start + html[start..].find('"').expect("quote")].to_owned();
                let idp_base = authorize
                    .split("/authorize")
                    .next()
                    .expect("base")
                    .to_owned();
                let r = browser
                    .post(format!("{idp_base}/login"))
                    .form(&[
                        ("request_id", request_id.as_str()),
                        ("subject", subject),
                        ("simulate", simulate),
                    ])
                    .send()
                    .await
                    .expect("idp login");
                let callback = location(&r);
                let r = browser.get(&callback).send().await.expect("callback");
                (r.status(), r.text().await.expect("body"), callback)
            }
        };

        let (status, html, _) = sign_in("alice", "normal").await;
        assert_eq!(status, StatusCode::OK, "{html}");
        assert!(html.contains("Identity verified"), "{html}");
        assert!(html.contains("<strong id=\"acr\">P1</strong>"), "{html}");
        assert!(html.contains("Alice"));
        assert!(html.contains("LS1 4AB"));

        let (status, html, callback) = sign_in("alice", "cancel").await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            html.contains("Verification failed: access_denied"),
            "{html}"
        );
        assert!(html.contains("user cancelled"));
        // The same response again: the flow is gone, but an error response is still shown.
        let again = browser.get(&callback).send().await.expect("callback");
        assert!(again
            .text()
            .await
            .expect("body")
            .contains("Verification failed"));

        // The hub's reason code is shown next to the error.
        let r = browser
            .get(format!(
                "{rp_base}/callback?error=access_denied&error_description=x&reason=user_cancelled&state=nope"
            ))
            .send()
            .await
            .expect("callback");
        assert!(r
            .text()
            .await
            .expect("body")
            .contains("Verification failed: access_denied (user_cancelled)"));

        // A code with an unknown state is refused without calling the hub.
        let r = browser
            .get(format!("{rp_base}/callback?code=abc&state=forged"))
            .send()
            .await
            .expect("callback");
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert!(r.text().await.expect("body").contains("Sign-in expired"));
    }
}
