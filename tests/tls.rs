//! The hub serving HTTPS itself (`[server.tls]`), with a self-signed certificate.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::util::*;

/// A hub at `https://127.0.0.1:PORT` with a fresh self-signed certificate, and a client
/// that trusts only that certificate.
async fn spawn_tls_hub() -> (TestHub, reqwest::Client) {
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    spawn_tls_hub_with(certified).await
}

/// A hub at `https://127.0.0.1:PORT` serving `certified` (which must name 127.0.0.1),
/// and a client that trusts only that certificate.
pub async fn spawn_tls_hub_with(
    certified: rcgen::CertifiedKey<rcgen::KeyPair>,
) -> (TestHub, reqwest::Client) {
    let (listener, http_origin) = free_listener();
    let issuer = http_origin.replace("http://", "https://");
    let data_dir = tempfile::tempdir().unwrap();
    let cert_path = data_dir.path().join("cert.pem");
    let key_path = data_dir.path().join("key.pem");
    std::fs::write(&cert_path, certified.cert.pem()).unwrap();
    std::fs::write(&key_path, certified.signing_key.serialize_pem()).unwrap();

    let peers = start_peers(&issuer, false).await;
    let storage = storage_settings(Backend::of_this_run(), data_dir.path()).await;
    let settings = hub_settings(&peers, &issuer, data_dir.path(), storage, None)
        .with(json!({"server": {"tls": {"cert_path": cert_path, "key_path": key_path}}}))
        .unwrap();
    prepare_database(&settings).await;
    let database_url = settings.database.url.clone();
    let app = hub::Application::build(settings, listener).await.unwrap();
    tokio::spawn(app.into_server());

    let client = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(certified.cert.pem().as_bytes()).unwrap(),
        )
        .redirect(reqwest::redirect::Policy::none())
        .https_only(true)
        .build()
        .unwrap();
    (peers.into_test_hub(issuer, data_dir, database_url), client)
}

#[tokio::test]
async fn the_hub_serves_https_with_hsts_and_a_host_prefixed_secure_cookie() {
    let (hub, https) = spawn_tls_hub().await;
    assert!(hub.url.starts_with("https://127.0.0.1:"));

    let discovery = https
        .get(format!("{}/.well-known/openid-configuration", hub.url))
        .send()
        .await
        .unwrap();
    assert_eq!(discovery.status(), StatusCode::OK);
    assert_eq!(
        discovery
            .headers()
            .get("strict-transport-security")
            .expect("HSTS over https"),
        "max-age=31536000; includeSubDomains"
    );
    let document: Value = discovery.json().await.unwrap();
    assert_eq!(document["issuer"], hub.url);
    assert_eq!(document["token_endpoint"], format!("{}/token", hub.url));

    let picker = https
        .get(AuthRequest::new(RP_MATCH).url(&hub))
        .send()
        .await
        .unwrap();
    assert_eq!(picker.status(), StatusCode::OK);
    let cookie = picker
        .headers()
        .get("set-cookie")
        .expect("session cookie")
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.starts_with("__Host-hub_session="), "{cookie}");
    let attributes: Vec<String> = cookie
        .split(';')
        .skip(1)
        .map(|a| a.trim().to_ascii_lowercase())
        .collect();
    for required in ["secure", "httponly", "samesite=lax", "path=/"] {
        assert!(
            attributes.iter().any(|a| a == required),
            "{required}: {cookie}"
        );
    }
    assert!(
        !attributes.iter().any(|a| a.starts_with("domain")),
        "{cookie}"
    );

    // The prefixed cookie is the one the hub reads back: a form post with it reaches the
    // journey (a wrong CSRF token is refused as such, not as "no journey").
    let session = cookie.split(';').next().unwrap().to_owned();
    let page = picker.text().await.unwrap();
    let (target, mut fields) = form_fields(
        &url::Url::parse(&hub.url).unwrap(),
        &page,
        "/journey/cancel",
    );
    let response = https
        .post(target.as_str())
        .header("cookie", &session)
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "cancelled");
    fields.retain(|(k, _)| k != "csrf");
    fields.push(("csrf".into(), "forged".into()));
    let plain_name = session.replacen("__Host-", "", 1);
    let response = https
        .post(target.as_str())
        .header("cookie", &plain_name)
        .form(&fields)
        .send()
        .await
        .unwrap();
    let body = response.text().await.unwrap();
    assert!(
        body.contains("no_journey"),
        "an unprefixed cookie is not the session over https: {body}"
    );

    let plain = reqwest::Client::new()
        .get(format!(
            "{}/healthz",
            hub.url.replace("https://", "http://")
        ))
        .send()
        .await;
    assert!(
        plain.map(|r| r.status() != StatusCode::OK).unwrap_or(true),
        "no plain HTTP on the TLS port"
    );
}

#[tokio::test]
async fn unusable_tls_settings_stop_the_hub_at_start() {
    let data_dir = tempfile::tempdir().unwrap();
    let (listener, http_origin) = free_listener();
    let issuer = http_origin.replace("http://", "https://");
    let peers = start_peers(&issuer, false).await;
    let storage = storage_settings(Backend::of_this_run(), data_dir.path()).await;
    let base = hub_settings(&peers, &issuer, data_dir.path(), storage, None);
    prepare_database(&base).await;

    let missing = base
        .clone()
        .with(json!({"server": {"tls": {"cert_path": "/nonexistent/cert.pem", "key_path": "/nonexistent/key.pem"}}}))
        .unwrap();
    let error = hub::Application::build(missing, listener)
        .await
        .expect_err("no certificate file");
    assert!(error.to_string().contains("tls"), "{error}");

    let http_public_url = base.with(json!({
        "server": {"public_url": http_origin, "tls": {"cert_path": "c", "key_path": "k"}}
    }));
    assert!(
        http_public_url.is_err(),
        "TLS with a plain-http public URL is a configuration error"
    );
}
