//! Expiry warnings: a hub whose TLS certificate expires within the warning window exports
//! when it and the signing key expire (`hub_expiry_timestamp_seconds`).

use chrono::Datelike as _;
use serde_json::Value;

use crate::tls::spawn_tls_hub_with;

/// The value of the series `name{labels}` in a Prometheus text exposition.
fn sample(exposition: &str, series: &str) -> Option<f64> {
    exposition
        .lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

#[tokio::test]
async fn metrics_show_when_the_certificate_and_the_signing_key_expire() {
    // A certificate that expires in 10 days, inside the default 30-day window.
    let expires = (chrono::Utc::now() + chrono::Duration::days(10)).date_naive();
    let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    params.not_after =
        rcgen::date_time_ymd(expires.year(), expires.month() as u8, expires.day() as u8);
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "hub.test");
    let signing_key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&signing_key).unwrap();
    let (hub, https) = spawn_tls_hub_with(rcgen::CertifiedKey { cert, signing_key }).await;

    let exposition = https
        .get(format!("{}/metrics", hub.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let not_after = expires.and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp();
    assert_eq!(
        sample(
            &exposition,
            r#"hub_expiry_timestamp_seconds{kind="tls_certificate",subject="hub.test"}"#
        ),
        Some(not_after as f64),
        "{exposition}"
    );

    // The current signing key (first in the JWKS) was created at start: due in 90 days.
    let jwks: Value = https
        .get(format!("{}/jwks", hub.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kid = jwks["keys"][0]["kid"].as_str().unwrap();
    let due = sample(
        &exposition,
        &format!(r#"hub_expiry_timestamp_seconds{{kind="signing_key",subject="{kid}"}}"#),
    )
    .unwrap_or_else(|| panic!("no signing key expiry in {exposition}"));
    let expected = (chrono::Utc::now() + chrono::Duration::days(90)).timestamp() as f64;
    assert!((due - expected).abs() < 600.0, "{due} vs {expected}");

    // Whatever the running hub exposes is among the names the registry declares (the
    // list `ops_kit` checks the dashboard and alert rules against).
    let declared = hub::metrics::Metrics::new().series();
    for line in exposition.lines().filter(|l| !l.starts_with('#')) {
        let name = line.split(['{', ' ']).next().unwrap_or_default();
        assert!(
            declared.iter().any(|d| d.name == name),
            "{name} is exposed but not declared"
        );
    }
}
