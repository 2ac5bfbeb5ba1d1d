//! An identity provider under an attacker's control (or a broken one): it answers every
//! authorization request at once for Alice, and its token endpoint returns whatever ID
//! token the test's [`Trick`] calls for. Honest, it completes journeys, so each attack
//! test differs from a passing journey by the trick alone.

use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use actix_web::{web, App, HttpResponse, HttpServer};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use url::Url;

/// What the IdP does wrong.
#[derive(Clone, Debug, PartialEq)]
pub enum Trick {
    Honest,
    /// `alg: none`, no signature.
    AlgNone,
    /// HS256 with its own public JWK as the HMAC key.
    Hs256WithPublicKey,
    /// `aud` names another client.
    ForeignAudience,
    /// `exp` in the past.
    Expired,
    /// `iat` (and `nbf`) an hour ahead.
    NotYetValid,
    /// The nonce of another authorization request.
    WrongNonce,
    /// Returns this ID token (taken from another IdP) as its own.
    Substitute(String),
    /// Sends the authorization response with another IdP's `iss` (RFC 9207).
    ResponseIssuer(String),
    /// Sends the authorization response without `iss`, though its metadata promises it.
    NoResponseIssuer,
    /// A userinfo body of this many bytes.
    HugeUserinfo(usize),
    /// A userinfo body nested this deep.
    NestedUserinfo(usize),
}

#[derive(Default)]
struct Seen {
    /// Authorization requests: state, nonce, redirect URI.
    requests: Vec<(String, String, String)>,
    /// Calls to the token endpoint.
    token_calls: usize,
    /// ID tokens it issued.
    issued: Vec<String>,
}

struct State {
    issuer: String,
    client_id: String,
    key: token::SigningKey,
    trick: Mutex<Trick>,
    seen: Mutex<Seen>,
}

/// A running hostile IdP.
#[derive(Clone)]
pub struct HostileIdp {
    state: Arc<State>,
}

impl HostileIdp {
    /// Starts on `listener` as an IdP whose client at the hub is `client_id`.
    pub fn start(listener: TcpListener, client_id: &str) -> Self {
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(State {
            issuer,
            client_id: client_id.to_owned(),
            key: token::SigningKey::generate().unwrap(),
            trick: Mutex::new(Trick::Honest),
            seen: Mutex::new(Seen::default()),
        });
        let data = web::Data::from(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route(
                    "/.well-known/openid-configuration",
                    web::get().to(discovery),
                )
                .route("/jwks", web::get().to(jwks))
                .route("/authorize", web::get().to(authorize))
                .route("/token", web::post().to(token_endpoint))
                .route("/userinfo", web::get().to(userinfo))
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        tokio::spawn(server);
        Self { state }
    }

    pub fn issuer(&self) -> &str {
        &self.state.issuer
    }

    /// The hub's settings entry for this IdP (`client_secret_basic`, certified to P2).
    pub fn settings(&self, id: &str) -> Value {
        json!({"id": id, "name": format!("IdP {id}"), "issuer": self.state.issuer,
               "client_id": self.state.client_id, "token_endpoint_auth_method": "client_secret_basic",
               "client_secret": "hostile-secret", "max_level": "P2"})
    }

    pub fn play(&self, trick: Trick) {
        *self.state.trick.lock().unwrap() = trick;
    }

    pub fn token_calls(&self) -> usize {
        self.state.seen.lock().unwrap().token_calls
    }

    /// The last ID token it issued (to take to another IdP for substitution).
    pub fn last_id_token(&self) -> Option<String> {
        self.state.seen.lock().unwrap().issued.last().cloned()
    }
}

async fn discovery(s: web::Data<State>) -> HttpResponse {
    let i = &s.issuer;
    HttpResponse::Ok().json(json!({
        "issuer": i,
        "authorization_endpoint": format!("{i}/authorize"),
        "token_endpoint": format!("{i}/token"),
        "userinfo_endpoint": format!("{i}/userinfo"),
        "jwks_uri": format!("{i}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "authorization_response_iss_parameter_supported": true,
    }))
}

async fn jwks(s: web::Data<State>) -> HttpResponse {
    HttpResponse::Ok().json(s.key.jwks())
}

/// Answers at once, for Alice, with a fresh code.
async fn authorize(s: web::Data<State>, q: web::Query<Vec<(String, String)>>) -> HttpResponse {
    let get = |name: &str| {
        q.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let (state, nonce, redirect) = (get("state"), get("nonce"), get("redirect_uri"));
    s.seen
        .lock()
        .unwrap()
        .requests
        .push((state.clone(), nonce, redirect.clone()));
    let mut url = Url::parse(&redirect).unwrap();
    {
        let mut pairs = url.query_pairs_mut();
        pairs.append_pair("code", &token::random_opaque(16));
        pairs.append_pair("state", &state);
        match &*s.trick.lock().unwrap() {
            Trick::ResponseIssuer(other) => {
                pairs.append_pair("iss", other);
            }
            Trick::NoResponseIssuer => {}
            _ => {
                pairs.append_pair("iss", &s.issuer);
            }
        }
    }
    HttpResponse::SeeOther()
        .insert_header(("location", url.as_str()))
        .finish()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A compact JWS with `header` over `claims`, HMAC-SHA256 keyed with `key`.
fn hs256(header: &Value, claims: &Value, key: &[u8]) -> String {
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let tag = ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key),
        input.as_bytes(),
    );
    format!("{input}.{}", b64(tag.as_ref()))
}

fn id_token(s: &State, trick: &Trick, nonce: &str) -> String {
    let now = now();
    let mut claims = json!({
        "iss": s.issuer, "sub": "alice", "aud": s.client_id, "nonce": nonce,
        "iat": now, "exp": now + 300, "acr": "P2",
    });
    match trick {
        Trick::ForeignAudience => claims["aud"] = json!("some-other-client"),
        Trick::Expired => {
            claims["iat"] = json!(now - 900);
            claims["exp"] = json!(now - 600);
        }
        Trick::NotYetValid => {
            claims["iat"] = json!(now + 3600);
            claims["nbf"] = json!(now + 3600);
            claims["exp"] = json!(now + 3900);
        }
        Trick::WrongNonce => claims["nonce"] = json!("a-nonce-from-another-request"),
        _ => {}
    }
    match trick {
        Trick::AlgNone => format!(
            "{}.{}.",
            b64(br#"{"alg":"none","typ":"JWT"}"#),
            b64(claims.to_string().as_bytes())
        ),
        Trick::Hs256WithPublicKey => {
            let jwk = s.key.public_jwk();
            let header = json!({"alg": "HS256", "kid": s.key.kid(), "typ": "JWT"});
            hs256(&header, &claims, jwk.to_string().as_bytes())
        }
        Trick::Substitute(other) => other.clone(),
        _ => s.key.sign(&claims).unwrap(),
    }
}

async fn token_endpoint(s: web::Data<State>) -> HttpResponse {
    let trick = s.trick.lock().unwrap().clone();
    let nonce = {
        let mut seen = s.seen.lock().unwrap();
        seen.token_calls += 1;
        seen.requests
            .last()
            .map(|r| r.1.clone())
            .unwrap_or_default()
    };
    let id_token = id_token(&s, &trick, &nonce);
    s.seen.lock().unwrap().issued.push(id_token.clone());
    HttpResponse::Ok().json(json!({
        "access_token": token::random_opaque(16),
        "token_type": "Bearer",
        "expires_in": 300,
        "id_token": id_token,
    }))
}

async fn userinfo(s: web::Data<State>) -> HttpResponse {
    let alice = json!({
        "sub": "alice", "given_name": "Alice", "family_name": "Smith",
        "birthdate": "1980-04-10", "gender": "female",
        "address": {"street_address": "12 High Street\nLeeds", "postal_code": "LS1 4AB"},
    });
    match &*s.trick.lock().unwrap() {
        Trick::HugeUserinfo(bytes) => {
            let mut body = alice;
            body["padding"] = json!("x".repeat(*bytes));
            HttpResponse::Ok().json(body)
        }
        Trick::NestedUserinfo(depth) => {
            let body = format!(
                r#"{{"sub":"alice","deep":{}{}}}"#,
                "[".repeat(*depth),
                "]".repeat(*depth)
            );
            HttpResponse::Ok()
                .content_type("application/json")
                .body(body)
        }
        _ => HttpResponse::Ok().json(alice),
    }
}
