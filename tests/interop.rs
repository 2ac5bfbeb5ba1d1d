//! Interoperability with independent OpenID Connect implementations (Node.js peers pinned
//! by `tests/interop/package-lock.json`, Python ones by `tests/interop/python/requirements.txt`;
//! see docs/interop.md):
//!
//! - panva's `openid-client` as a relying party of the hub (`tests/interop/rp.mjs`):
//!   discovery, PKCE S256, `client_secret_basic` and `private_key_jwt`, pushed
//!   authorization requests (RFC 9126) and signed request objects (RFC 9101), ID token
//!   validation, userinfo, and the errors it must see as standard OIDC errors;
//! - panva's `oidc-provider` as an upstream identity provider of the hub
//!   (`tests/interop/op.mjs`): its discovery, keys (RS256 ID tokens), token endpoint (with
//!   the hub's client secret or `private_key_jwt`), userinfo and errors;
//! - Authlib (Python) as a relying party of the hub (`tests/interop/python/rp_authlib.py`):
//!   PKCE S256, `private_key_jwt` with its default hour-long assertions and
//!   `client_secret_basic`, ID token validation, userinfo, a replayed code;
//! - a witness-side check of the verification log's checkpoint notes written from the C2SP
//!   specifications with Python's `cryptography` (`tests/interop/python/note_witness.py`).
//!
//! Node.js and Python 3 (with venv) are required: without them these tests fail and say
//! what to install.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use url::Url;

use crate::programs::{run_blocking, script_json, NodeProject, INSTALL_TIMEOUT};
use crate::util::*;

/// Each node or Python run, and each wait for a node process, gets at most this long.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(30);
/// In the interop venv: the Python and lock file it was built from.
const VENV_STAMP: &str = "interop-stamp.txt";

/// An RP with a client secret that needs form-encoding.
const RP_INTEROP_BASIC: &str = "rp-interop-basic";
/// The RP that authenticates with `private_key_jwt` using a key `rp.mjs` holds.
const RP_INTEROP_JWT: &str = "rp-interop-jwt";
/// The hub's client id at `oidc-provider`, and the IdP id the hub gives it.
const HUB_AT_OP: &str = "hub-at-oidc-provider";
const IDP_OP: &str = "idp-oidc-provider";

fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop")
}

/// The Node.js peers (`tests/interop/package-lock.json`).
static NODE_PEERS: NodeProject =
    NodeProject::new("tests/interop", "the interop tests (docs/interop.md)");

/// Node.js is there and `tests/interop/node_modules` matches the lock file (see
/// [`NodeProject::ready`]). Call it first thing in a test.
fn node_ready() -> &'static Path {
    NODE_PEERS.ready()
}

/// Python 3 is there and a venv holds exactly what `tests/interop/python/requirements.txt`
/// pins (with hashes). The venv lives in the target directory and is reused while its stamp
/// (the Python and the lock file) still matches, else rebuilt: at most once per test process.
/// Returns its `python`. Call it first thing in a test (it may block its thread for the
/// install).
fn python_ready() -> &'static Path {
    static READY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let ready = READY.get_or_init(|| {
        let install = "Python >= 3.11 with the venv module (and its ensurepip) is required \
            for the Authlib interop tests (tests/interop/python, docs/interop.md): install it \
            (Debian, Ubuntu: apt-get install python3 python3-venv) and make sure `python3` \
            is on PATH";
        let python = run_blocking(
            std::process::Command::new("python3").args(["-c", PYTHON_PROBE]),
            SCRIPT_TIMEOUT,
        )
        .map_err(|e| format!("{install}. ({e})"))?;
        let lock = python_dir().join("requirements.txt");
        let pins = std::fs::read_to_string(&lock).map_err(|e| format!("{lock:?}: {e}"))?;
        let stamp = format!("{}\n{pins}", python.trim());
        let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("interop-venv");
        if venv_stamp(&venv).as_ref() != Some(&stamp) {
            build_venv(&venv, &lock, &stamp).map_err(|e| {
                format!("making the interop venv failed (pip needs PyPI or its cache): {e}")
            })?;
        }
        Ok(venv.join("bin/python"))
    });
    match ready {
        Ok(python) => python,
        Err(e) => panic!("{e}"),
    }
}

/// Prints which Python this is (for the venv's stamp); fails unless it can make a venv.
const PYTHON_PROBE: &str = "import sys, venv, ensurepip
print(sys.executable, sys.version)
sys.exit(0 if sys.version_info >= (3, 11) else 'Python >= 3.11 is needed')";

/// `pip install` of a lock file: every package pinned with its hashes, wheels only.
const PIP_INSTALL: [&str; 9] = [
    "-m",
    "pip",
    "install",
    "--require-hashes",
    "--only-binary=:all:",
    "--no-input",
    "--disable-pip-version-check",
    "--quiet",
    "-r",
];

/// What a venv was built from, if it is complete.
fn venv_stamp(venv: &Path) -> Option<String> {
    std::fs::read_to_string(venv.join(VENV_STAMP)).ok()
}

fn python_dir() -> PathBuf {
    interop_dir().join("python")
}

/// Creates the venv beside `venv`, installs the lock into it with `--require-hashes` (wheels
/// only: nothing is compiled), then moves it into place, so that another test process
/// never uses a half-built one.
fn build_venv(venv: &Path, lock: &Path, stamp: &str) -> Result<(), String> {
    let building = venv.with_extension(format!("building-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&building);
    run_blocking(
        std::process::Command::new("python3")
            .args(["-m", "venv"])
            .arg(&building),
        INSTALL_TIMEOUT,
    )?;
    run_blocking(
        std::process::Command::new(building.join("bin/python"))
            .args(PIP_INSTALL)
            .arg(lock),
        INSTALL_TIMEOUT,
    )?;
    std::fs::write(building.join(VENV_STAMP), stamp).map_err(|e| format!("{building:?}: {e}"))?;
    let _ = std::fs::remove_dir_all(venv);
    if let Err(e) = std::fs::rename(&building, venv) {
        // Another test process may have put its venv there first; fine if it is the same.
        let _ = std::fs::remove_dir_all(&building);
        if venv_stamp(venv).as_deref() != Some(stamp) {
            return Err(format!("{building:?} -> {venv:?}: {e}"));
        }
    }
    Ok(())
}

/// Runs `node <script> <args>` in `tests/interop` (see [`script_json`]).
async fn node_json(script: &str, args: &[&str]) -> Value {
    NODE_PEERS.json(script, args, SCRIPT_TIMEOUT).await
}

/// Runs `<venv>/bin/python <script> <args>` in `tests/interop/python` (see [`script_json`]).
async fn python_json(script: &str, args: &[&str]) -> Value {
    let python = python_ready();
    script_json(python, &python_dir(), script, args, SCRIPT_TIMEOUT).await
}

/// `oidc-provider` running in a node process (killed on drop; its stderr is printed if the
/// test fails).
struct OidcProvider {
    issuer: String,
    stderr: Arc<Mutex<String>>,
    _child: tokio::process::Child,
}

impl OidcProvider {
    /// Starts `op.mjs` for a hub at `hub_url` with `config` (see the script). A start that
    /// does not report within [`SCRIPT_TIMEOUT`] is tried once more with a fresh process: the
    /// peer's start-up is not what these tests are about, and on a loaded machine it has
    /// been seen to stall.
    async fn start(hub_url: &str, config: Value) -> Self {
        let dir = node_ready();
        let mut config = config;
        config["redirect_uri"] = json!(format!("{hub_url}/idp/callback"));
        config["client_id"] = json!(HUB_AT_OP);
        let first = match Self::try_start(dir, &config).await {
            Ok(op) => return op,
            Err(e) => e,
        };
        eprintln!("oidc-provider: first start failed, trying once more:\n{first}");
        Self::try_start(dir, &config)
            .await
            .unwrap_or_else(|second| panic!("{first}\nand on the second try, {second}"))
    }

    /// One start of `op.mjs`; `Err` says how it failed, with what it printed on stderr.
    async fn try_start(dir: &Path, config: &Value) -> Result<Self, String> {
        let mut child = tokio::process::Command::new("node")
            .arg("op.mjs")
            .arg(config.to_string())
            .current_dir(dir)
            // Held open: the script exits when it closes.
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("node op.mjs: {e}"));
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err_pipe = child.stderr.take().expect("stderr");
        let sink = stderr.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err_pipe.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                if let Ok(mut s) = sink.lock() {
                    s.push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            }
        });
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let first = tokio::time::timeout(SCRIPT_TIMEOUT, lines.next_line()).await;
        let err_text = || stderr.lock().map(|s| s.clone()).unwrap_or_default();
        let line = match first {
            Ok(Ok(Some(line))) => line,
            other => {
                return Err(format!(
                    "oidc-provider did not start ({other:?}):\n{}",
                    err_text()
                ))
            }
        };
        // Keep reading stdout (oidc-provider logs notices there) so it never sees EPIPE.
        let sink = stderr.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Ok(mut s) = sink.lock() {
                    s.push_str(&line);
                    s.push('\n');
                }
            }
        });
        let started: Value = serde_json::from_str(&line)
            .map_err(|e| format!("op.mjs printed {line:?} ({e}):\n{}", err_text()))?;
        let issuer = started["issuer"].as_str().expect("issuer").to_owned();
        Ok(Self {
            issuer,
            stderr,
            _child: child,
        })
    }

    /// The hub's `[[identity_providers]]` entry for it.
    fn idp_settings(&self, auth: Value) -> Value {
        let mut idp = json!({"id": IDP_OP, "name": "oidc-provider IdP", "issuer": self.issuer,
            "client_id": HUB_AT_OP, "max_level": "P2"});
        if let (Some(idp), Some(auth)) = (idp.as_object_mut(), auth.as_object()) {
            idp.extend(auth.clone());
        }
        idp
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let stderr = self.stderr.lock().map(|s| s.clone()).unwrap_or_default();
            eprintln!("--- oidc-provider ({}) stderr ---\n{stderr}", self.issuer);
        }
    }
}

/// How `rp.mjs` or `rp_authlib.py` authenticates at the hub's token endpoint.
enum RpAuth {
    /// Client id and secret.
    SecretBasic(&'static str, String),
    /// The RP's P-256 key (PKCS#8 DER file) and its kid.
    PrivateKeyJwt(PathBuf, String),
}

/// What both RP scripts take: the hub, the client id and how it authenticates.
fn rp_input(hub: &TestHub, auth: RpAuth) -> Value {
    let mut input = match auth {
        RpAuth::SecretBasic(client_id, secret) => json!({
            "client_id": client_id, "auth": "client_secret_basic",
            "client_secret": secret,
        }),
        RpAuth::PrivateKeyJwt(key_file, kid) => json!({
            "client_id": RP_INTEROP_JWT, "auth": "private_key_jwt",
            "key_file": key_file, "kid": kid,
        }),
    };
    input["issuer"] = json!(hub.url);
    input["redirect_uri"] = json!(TEST_RP_CALLBACK);
    input
}

/// The input of an RP script's callback step: what its authorization step returned, and the
/// URL the browser was sent back to.
fn callback_input(input: &Value, started: &Value, callback_url: &str, replay: bool) -> Value {
    let mut input = input.clone();
    for k in ["state", "nonce", "code_verifier"] {
        input[k] = started[k].clone();
    }
    input["callback_url"] = json!(callback_url);
    input["replay"] = json!(replay);
    input
}

/// The `openid-client` relying party: its client id and authentication.
struct OpenIdClient {
    input: Value,
}

impl OpenIdClient {
    fn new(hub: &TestHub, auth: RpAuth) -> Self {
        Self {
            input: rp_input(hub, auth),
        }
    }

    /// The same client sending its authorization requests through `/par` (`"par"`) or as a
    /// signed request object (`"jar"`, with its `private_key_jwt` key).
    fn with_request_mode(mut self, mode: &str) -> Self {
        self.input["request_mode"] = json!(mode);
        self
    }

    /// Discovery and the authorization request: `{authorization_url, state, nonce, code_verifier}`.
    async fn authorize(&self) -> Value {
        node_json("rp.mjs", &["authorize", &self.input.to_string()]).await
    }

    /// The code exchange, ID token validation, userinfo and (with `replay`) the code redeemed again.
    async fn callback(&self, started: &Value, callback_url: &str, replay: bool) -> Value {
        let input = callback_input(&self.input, started, callback_url, replay);
        node_json("rp.mjs", &["callback", &input.to_string()]).await
    }
}

/// The Authlib relying party (`rp_authlib.py`): the same input as [`OpenIdClient`].
struct Authlib {
    input: Value,
}

impl Authlib {
    fn new(hub: &TestHub, auth: RpAuth) -> Self {
        Self {
            input: rp_input(hub, auth),
        }
    }

    /// Discovery and the authorization request: `{authorization_url, state, nonce, code_verifier}`.
    async fn authorize(&self) -> Value {
        python_json("rp_authlib.py", &["authorize", &self.input.to_string()]).await
    }

    /// The code exchange, ID token validation, userinfo and (with `replay`) the code redeemed
    /// again; with `private_key_jwt`, the claims of the client assertions Authlib signed.
    async fn callback(&self, started: &Value, callback_url: &str, replay: bool) -> Value {
        let input = callback_input(&self.input, started, callback_url, replay);
        python_json("rp_authlib.py", &["callback", &input.to_string()]).await
    }
}

/// The URL the browser was sent to at the test RP's redirect URI.
fn callback_url(params: &std::collections::HashMap<String, String>) -> String {
    let mut url = Url::parse(TEST_RP_CALLBACK).expect("url");
    url.query_pairs_mut().extend_pairs(params);
    url.into()
}

/// openid-client's authorization URL -> picker -> demo IdP -> back at the RP.
async fn browse_demo_idp(hub: &TestHub, authorization_url: &str, person: &str) -> String {
    let browser = Browser::new();
    let (status, url, picker) = browser.get(authorization_url).await.page();
    assert_eq!(status, StatusCode::OK, "picker expected:\n{picker}");
    let params = hub
        .choose_and_login(&browser, &url, &picker, AtIdp::person(person))
        .await
        .rp();
    callback_url(&params)
}

/// The RP libraries the hub is tested with, and how each reports what the hub sent.
#[derive(Clone, Copy)]
enum Library {
    OpenIdClient,
    Authlib,
}

impl Library {
    fn name(self) -> &'static str {
        match self {
            Library::OpenIdClient => "openid-client",
            Library::Authlib => "Authlib",
        }
    }

    /// The error type the library raises for an OAuth error response from `/token`.
    fn token_error(self) -> &'static str {
        match self {
            Library::OpenIdClient => "ResponseBodyError",
            Library::Authlib => "OAuthError",
        }
    }
}

/// Checks what an RP library returned for Alice's journey (`started`: its authorization
/// step; `result`: its callback step, with the code replayed): the ID token the hub
/// signed, the token response, userinfo, and the replay refused as `invalid_grant`.
async fn assert_alice_journey(
    hub: &TestHub,
    library: Library,
    client_id: &str,
    started: &Value,
    result: &Value,
) {
    let name = library.name();
    assert!(result.get("error").is_none(), "{name}: {result}");
    let claims = &result["id_token_claims"];
    let id_token = result["id_token"].as_str().expect("id_token");
    assert_eq!(
        claims,
        &hub.verify_id_token(id_token, client_id).await,
        "{name} read the claims the hub signed"
    );
    assert_eq!(claims["iss"], json!(hub.url), "{result}");
    assert_eq!(claims["aud"], json!(client_id), "{result}");
    assert_eq!(claims["nonce"], started["nonce"], "{result}");
    assert_eq!(claims["acr"], "P2", "{result}");
    assert_eq!(claims["match"]["status"], "matched", "{result}");
    assert_eq!(claims["match"]["record_id"], "123", "{result}");
    let token_type = result["token"]["token_type"].as_str().unwrap_or_default();
    assert!(token_type.eq_ignore_ascii_case("bearer"), "{result}");
    let userinfo = &result["userinfo"];
    assert_eq!(userinfo["sub"], claims["sub"], "{result}");
    assert_eq!(userinfo["given_name"], "Alice", "{result}");
    assert_eq!(userinfo["family_name"], "Smith", "{result}");
    assert_eq!(userinfo["birthdate"], "1980-04-10", "{result}");
    assert_eq!(
        (
            result["replay"]["error"]["name"].as_str(),
            result["replay"]["error"]["error"].as_str()
        ),
        (Some(library.token_error()), Some("invalid_grant")),
        "a replayed code is an invalid_grant error in {name}: {result}"
    );
}

/// The start of a journey by an RP library: its authorization URL is the hub's.
fn assert_at_the_hub<'a>(hub: &TestHub, started: &'a Value) -> &'a str {
    let authorization_url = started["authorization_url"].as_str().expect("url");
    assert!(
        authorization_url.starts_with(&format!("{}/authorize?", hub.url)),
        "{started}"
    );
    authorization_url
}

/// A full openid-client journey for Alice; checks everything openid-client returned.
/// Returns what the authorization step returned.
async fn openid_client_journey(hub: &TestHub, rp: &OpenIdClient, client_id: &str) -> Value {
    let started = rp.authorize().await;
    let authorization_url = assert_at_the_hub(hub, &started);
    assert_eq!(
        started["server"]["authorization_response_iss_parameter_supported"],
        json!(true),
        "the hub advertises RFC 9207 iss, so openid-client checks it"
    );
    let callback = browse_demo_idp(hub, authorization_url, "alice").await;
    let result = rp.callback(&started, &callback, true).await;
    assert_alice_journey(hub, Library::OpenIdClient, client_id, &started, &result).await;
    started
}

/// The names of the query parameters of `url`.
fn query_names(url: &str) -> Vec<String> {
    let mut names: Vec<String> = Url::parse(url)
        .expect("url")
        .query_pairs()
        .map(|(k, _)| k.into_owned())
        .collect();
    names.sort();
    names
}

/// openid-client pushes the request to `/par` (its `buildAuthorizationUrlWithPAR`) for an
/// RP the hub requires to; only `client_id` and `request_uri` go through the browser.
#[tokio::test]
async fn openid_client_journey_with_pushed_authorization_request() {
    node_ready();
    let secret = secret_of(RP_INTEROP_BASIC);
    let (hub_l, _) = free_listener();
    let hub = spawn_hub_on(
        hub_l,
        Options::default(),
        Extra {
            relying_parties: vec![rp_settings(
                RP_INTEROP_BASIC,
                TEST_RP_CALLBACK,
                json!({"require_pushed_authorization_requests": true}),
            )],
            ..Extra::default()
        },
    )
    .await;
    let rp = OpenIdClient::new(&hub, RpAuth::SecretBasic(RP_INTEROP_BASIC, secret))
        .with_request_mode("par");
    let started = openid_client_journey(&hub, &rp, RP_INTEROP_BASIC).await;
    assert_eq!(
        started["server"]["pushed_authorization_request_endpoint"],
        json!(format!("{}/par", hub.url))
    );
    let url = started["authorization_url"].as_str().expect("url");
    assert_eq!(query_names(url), ["client_id", "request_uri"], "{url}");
}

/// A hub with [`RP_INTEROP_JWT`] registered for `private_key_jwt`, and the RP's side of it:
/// its key (in the returned directory, which must outlive the journey).
async fn hub_with_private_key_jwt_rp() -> (TestHub, RpAuth, tempfile::TempDir) {
    let keys = tempfile::tempdir().expect("tempdir");
    let key_file = keys.path().join("rp-es256.p8");
    let key = token::SigningKey::load_or_generate(&key_file).expect("RP key");
    let (hub_l, _) = free_listener();
    let hub = spawn_hub_on(
        hub_l,
        Options::default(),
        Extra {
            relying_parties: vec![rp_settings(
                RP_INTEROP_JWT,
                TEST_RP_CALLBACK,
                json!({"token_endpoint_auth_method": "private_key_jwt", "client_secret": null,
                       "jwks": key.jwks()}),
            )],
            ..Extra::default()
        },
    )
    .await;
    let auth = RpAuth::PrivateKeyJwt(key_file, key.kid().to_owned());
    (hub, auth, keys)
}

/// openid-client signs the request as a request object (its
/// `buildAuthorizationUrlWithJAR`) with the key it also authenticates with.
#[tokio::test]
async fn openid_client_journey_with_signed_request_object() {
    node_ready();
    let (hub, auth, _keys) = hub_with_private_key_jwt_rp().await;
    let rp = OpenIdClient::new(&hub, auth).with_request_mode("jar");
    let started = openid_client_journey(&hub, &rp, RP_INTEROP_JWT).await;
    assert_eq!(
        started["server"]["request_parameter_supported"],
        json!(true)
    );
    let url = started["authorization_url"].as_str().expect("url");
    assert_eq!(query_names(url), ["client_id", "request"], "{url}");
}

/// With a secret that needs form-encoding in the Basic header (RFC 6749 §2.3.1), which
/// openid-client does.
#[tokio::test]
async fn openid_client_journey_with_client_secret_basic() {
    node_ready();
    let secret = "s3cret: with+special/chars=&%20 and ü";
    let (hub_l, _) = free_listener();
    let hub = spawn_hub_on(
        hub_l,
        Options::default(),
        Extra {
            relying_parties: vec![rp_settings(
                RP_INTEROP_BASIC,
                TEST_RP_CALLBACK,
                json!({"client_secret": secret}),
            )],
            ..Extra::default()
        },
    )
    .await;
    let rp = OpenIdClient::new(&hub, RpAuth::SecretBasic(RP_INTEROP_BASIC, secret.into()));
    openid_client_journey(&hub, &rp, RP_INTEROP_BASIC).await;
}

#[tokio::test]
async fn openid_client_journey_with_private_key_jwt() {
    node_ready();
    let (hub, auth, _keys) = hub_with_private_key_jwt_rp().await;
    let rp = OpenIdClient::new(&hub, auth);
    openid_client_journey(&hub, &rp, RP_INTEROP_JWT).await;
}

#[tokio::test]
async fn openid_client_sees_access_denied_as_an_oidc_error() {
    node_ready();
    let hub = spawn_hub().await;
    let rp = OpenIdClient::new(&hub, RpAuth::SecretBasic(RP_MATCH, secret_of(RP_MATCH)));
    let started = rp.authorize().await;
    // Bob has no department record and RP_MATCH creates no accounts.
    let callback = browse_demo_idp(
        &hub,
        started["authorization_url"].as_str().expect("url"),
        "bob",
    )
    .await;
    let result = rp.callback(&started, &callback, false).await;
    let error = &result["error"];
    assert_eq!(error["name"], "AuthorizationResponseError", "{result}");
    assert_eq!(
        error["code"], "OAUTH_AUTHORIZATION_RESPONSE_ERROR",
        "{result}"
    );
    assert_eq!(error["error"], "access_denied", "{result}");
}

/// A full Authlib journey for Alice; checks everything Authlib returned against what the
/// hub signed. Returns the callback step's result.
async fn authlib_journey(hub: &TestHub, rp: &Authlib, client_id: &str) -> Value {
    let started = rp.authorize().await;
    let authorization_url = assert_at_the_hub(hub, &started);
    assert_eq!(
        query_names(authorization_url),
        [
            "acr_values",
            "client_id",
            "code_challenge",
            "code_challenge_method",
            "nonce",
            "redirect_uri",
            "response_type",
            "scope",
            "state"
        ],
        "{authorization_url}"
    );
    let callback = browse_demo_idp(hub, authorization_url, "alice").await;
    let result = rp.callback(&started, &callback, true).await;
    assert_alice_journey(hub, Library::Authlib, client_id, &started, &result).await;
    result
}

/// Authlib with `private_key_jwt` as it comes: its assertions are valid for an hour, which
/// the hub accepts, and each carries a new `jti` (the replay is refused for the code, not
/// for the assertion).
#[tokio::test]
async fn authlib_journey_with_private_key_jwt() {
    python_ready();
    let (hub, auth, _keys) = hub_with_private_key_jwt_rp().await;
    let rp = Authlib::new(&hub, auth);
    let result = authlib_journey(&hub, &rp, RP_INTEROP_JWT).await;
    let assertions = result["client_assertions"].as_array().expect("assertions");
    assert_eq!(assertions.len(), 2, "the exchange and the replay: {result}");
    for a in assertions {
        assert_eq!(a["iss"], RP_INTEROP_JWT, "{a}");
        assert_eq!(a["sub"], RP_INTEROP_JWT, "{a}");
        assert_eq!(a["aud"], json!(format!("{}/token", hub.url)), "{a}");
        let lifetime = a["exp"].as_i64().zip(a["iat"].as_i64()).map(|(e, i)| e - i);
        assert_eq!(lifetime, Some(3600), "Authlib's default lifetime: {a}");
    }
    assert_ne!(assertions[0]["jti"], assertions[1]["jti"], "{result}");
}

/// Authlib sends the client id and secret in the Basic header without form-encoding them,
/// which is the same for a secret of unreserved characters such as this one.
#[tokio::test]
async fn authlib_journey_with_client_secret_basic() {
    python_ready();
    let hub = spawn_hub().await;
    let rp = Authlib::new(&hub, RpAuth::SecretBasic(RP_MATCH, secret_of(RP_MATCH)));
    let result = authlib_journey(&hub, &rp, RP_MATCH).await;
    assert!(result.get("client_assertions").is_none(), "{result}");
}

/// A hub with `oidc-provider` as an extra IdP; the hub authenticates there with
/// `private_key_jwt` or else `client_secret_basic`.
async fn hub_behind_oidc_provider(private_key_jwt: bool) -> (TestHub, OidcProvider) {
    hub_behind_oidc_provider_with(private_key_jwt, json!({})).await
}

/// As [`hub_behind_oidc_provider`], with `settings` added to the hub's entry for it.
async fn hub_behind_oidc_provider_with(
    private_key_jwt: bool,
    settings: Value,
) -> (TestHub, OidcProvider) {
    let (hub_l, hub_url) = free_listener();
    let (op_config, hub_side) = if private_key_jwt {
        (
            json!({"auth": "private_key_jwt", "jwks_uri": format!("{hub_url}/jwks")}),
            json!({"token_endpoint_auth_method": "private_key_jwt"}),
        )
    } else {
        let secret = "hub-secret-at-oidc-provider";
        (
            json!({"auth": "client_secret_basic", "client_secret": secret}),
            json!({"token_endpoint_auth_method": "client_secret_basic", "client_secret": secret}),
        )
    };
    let op = OidcProvider::start(&hub_url, op_config).await;
    let mut hub_side = hub_side;
    if let (Some(entry), Some(extra)) = (hub_side.as_object_mut(), settings.as_object()) {
        entry.extend(extra.clone());
    }
    let hub = spawn_hub_on(
        hub_l,
        Options::default(),
        Extra {
            identity_providers: vec![op.idp_settings(hub_side)],
            ..Extra::default()
        },
    )
    .await;
    (hub, op)
}

/// Authorize at the hub (`authorization_url`) -> picker -> oidc-provider: its login page.
async fn to_oidc_provider_login(
    op: &OidcProvider,
    browser: &Browser,
    authorization_url: &str,
) -> (Url, String) {
    let (status, url, picker) = browser.get(authorization_url).await.page();
    assert_eq!(status, StatusCode::OK, "picker expected:\n{picker}");
    let (status, login_url, login) = browser
        .submit(&url, &picker, "/journey/idp", &[("idp", IDP_OP)])
        .await
        .page();
    assert_eq!(status, StatusCode::OK, "login page expected:\n{login}");
    assert!(
        login_url.as_str().starts_with(&op.issuer),
        "at {login_url}:\n{login}"
    );
    (login_url, login)
}

/// Authorize at the hub -> picker -> oidc-provider: login as `account`, consent -> back at
/// the RP: the parameters it got.
async fn through_oidc_provider(
    op: &OidcProvider,
    authorization_url: &str,
    account: &str,
) -> std::collections::HashMap<String, String> {
    let browser = Browser::new();
    let (login_url, login) = to_oidc_provider_login(op, &browser, authorization_url).await;
    let (status, consent_url, consent) = browser
        .submit(&login_url, &login, "/login", &[("login", account)])
        .await
        .page();
    assert_eq!(status, StatusCode::OK, "consent page expected:\n{consent}");
    browser
        .submit(&consent_url, &consent, "/confirm", &[])
        .await
        .rp()
}

async fn oidc_provider_journey(private_key_jwt: bool) {
    node_ready();
    let (hub, op) = hub_behind_oidc_provider(private_key_jwt).await;
    let request = AuthRequest::new(RP_MATCH);
    let params = through_oidc_provider(&op, &request.url(&hub), "alice").await;
    assert_eq!(params.get("state"), Some(&request.state), "{params:?}");
    assert_eq!(params.get("iss"), Some(&hub.url), "{params:?}");
    let code = params
        .get("code")
        .unwrap_or_else(|| panic!("no code: {params:?}"));
    let claims = hub.claims_for(RP_MATCH, code, &request.verifier).await;
    assert_eq!(claims["match"]["status"], "matched", "{claims}");
    assert_eq!(claims["match"]["record_id"], "123", "{claims}");
    assert_eq!(claims["acr"], "P2", "{claims}");
    assert_eq!(claims["nonce"], json!(request.nonce), "{claims}");
    drop(op);
}

#[tokio::test]
async fn oidc_provider_as_idp_with_client_secret_basic() {
    oidc_provider_journey(false).await;
}

#[tokio::test]
async fn oidc_provider_as_idp_with_private_key_jwt() {
    oidc_provider_journey(true).await;
}

/// oidc-provider honours the `claims` request parameter: with `claims_in_id_token` the hub
/// asks it for the matching dataset in the ID token, matches on that, and never calls its
/// userinfo endpoint. Without the setting it does (once per journey).
#[tokio::test]
async fn oidc_provider_gives_the_dataset_in_its_id_token_when_asked() {
    node_ready();
    for (in_id_token, userinfo_calls) in [(true, 0), (false, 1)] {
        let settings = json!({"claims_in_id_token": in_id_token});
        let (hub, op) = hub_behind_oidc_provider_with(true, settings).await;
        let request = AuthRequest::new(RP_MATCH);
        let params = through_oidc_provider(&op, &request.url(&hub), "alice").await;
        let code = params
            .get("code")
            .unwrap_or_else(|| panic!("no code: {params:?}"));
        let claims = hub.claims_for(RP_MATCH, code, &request.verifier).await;
        assert_eq!(claims["match"]["status"], "matched", "{claims}");
        assert_eq!(claims["match"]["record_id"], "123", "{claims}");
        let count: Value = hub
            .http
            .get(format!("{}/test/userinfo-requests", op.issuer))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            count["count"], userinfo_calls,
            "claims_in_id_token = {in_id_token}"
        );
    }
}

#[tokio::test]
async fn cancelling_or_denying_at_oidc_provider_then_going_back_is_an_oidc_error_at_the_rp() {
    node_ready();
    let (hub, op) = hub_behind_oidc_provider(false).await;

    let browser = Browser::new();
    let request = AuthRequest::new(RP_MATCH);
    let (login_url, login) = to_oidc_provider_login(&op, &browser, &request.url(&hub)).await;
    let cancelled = browser.submit(&login_url, &login, "/cancel", &[]).await;
    let params = browser.back_to_service(cancelled).await.rp();
    assert_eq!(
        params.get("error").map(String::as_str),
        Some("access_denied")
    );
    assert_eq!(
        params.get("reason").map(String::as_str),
        Some("user_cancelled")
    );
    assert_eq!(params.get("state"), Some(&request.state));
    assert_eq!(params.get("iss"), Some(&hub.url));
    assert!(!params.contains_key("code"), "{params:?}");

    let browser = Browser::new();
    let request = AuthRequest::new(RP_MATCH);
    let (login_url, login) = to_oidc_provider_login(&op, &browser, &request.url(&hub)).await;
    let (_, consent_url, consent) = browser
        .submit(&login_url, &login, "/login", &[("login", "alice")])
        .await
        .page();
    let denied = browser.submit(&consent_url, &consent, "/deny", &[]).await;
    let params = browser.back_to_service(denied).await.rp();
    assert_eq!(
        params.get("error").map(String::as_str),
        Some("access_denied")
    );
    assert_eq!(
        params.get("reason").map(String::as_str),
        Some("idp_access_denied")
    );
    assert_eq!(params.get("state"), Some(&request.state));
    assert!(!params.contains_key("code"), "{params:?}");
}

/// Certified peers on both sides: openid-client -> hub -> oidc-provider and back.
#[tokio::test]
async fn openid_client_through_the_hub_to_oidc_provider() {
    node_ready();
    let (hub, op) = hub_behind_oidc_provider(true).await;
    let rp = OpenIdClient::new(&hub, RpAuth::SecretBasic(RP_MATCH, secret_of(RP_MATCH)));
    let started = rp.authorize().await;
    let params = through_oidc_provider(
        &op,
        started["authorization_url"].as_str().expect("url"),
        "alice",
    )
    .await;
    let result = rp.callback(&started, &callback_url(&params), false).await;
    assert!(result.get("error").is_none(), "openid-client: {result}");
    let claims = &result["id_token_claims"];
    assert_eq!(claims["match"]["record_id"], "123", "{result}");
    assert_eq!(claims["acr"], "P2", "{result}");
    assert_eq!(result["userinfo"]["given_name"], "Alice", "{result}");
    assert_eq!(
        result["userinfo"]["address"]["postal_code"], "LS1 4AB",
        "{result}"
    );
}

/// The verification log's checkpoint notes verify with an implementation of the C2SP
/// signed-note and tlog-checkpoint specifications that shares no code with the hub, as a
/// witness's would; an altered note does not.
#[tokio::test]
async fn checkpoint_notes_verify_as_a_witness_checks_them() {
    python_ready();
    let hub = spawn_hub().await;
    hub.id_token_for(RP_MATCH, "alice").await;
    let token = hub.auditor_token(AUDITOR_ALL, None).await;
    let (_, log) = hub.audit_get(&token, "/log").await;
    let log: Value = serde_json::from_str(&log).expect("log");
    let (_, checkpoint) = hub.audit_get(&token, "/checkpoint").await;
    let checkpoint: Value = serde_json::from_str(&checkpoint).expect("checkpoint");
    let (status, note) = hub
        .audit_get(
            &token,
            &format!(
                "/checkpoint?format=note&tree_size={}",
                checkpoint["tree_size"]
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{note}");
    let witness = |note: &str| {
        let input = json!({
            "note": note,
            "verifier_key": log["note_verifier_key"],
            "origin": log["origin"],
        });
        async move { python_json("note_witness.py", &[&input.to_string()]).await }
    };
    let result = witness(&note).await;
    assert_eq!(result["verified"], true, "{result}\n{note}");
    assert_eq!(result["tree_size"], checkpoint["tree_size"], "{result}");
    assert_eq!(result["root_hash"], checkpoint["root_hash"], "{result}");

    let root = checkpoint["root_hash"].as_str().expect("root");
    let other_root = audit::encode_hash(&[0; 32]);
    let result = witness(&note.replacen(root, &other_root, 1)).await;
    assert_eq!(result["verified"], false, "an altered root: {result}");
}
