//! Expiry warnings: operators learn weeks ahead that something the hub depends on will
//! expire, instead of from failing journeys on the day.
//!
//! Each thing with an end date is an [`Expiry`]: the hub's current signing key (due for
//! rotation `keys.rotate_after_days` after it was created: a key has no expiry of its
//! own), the TLS certificate it serves (its leaf's notAfter), and whatever other parts
//! add through [`Expiries::track`] (identity providers' certifications, relying parties'
//! keys). [`Expiries`] exports each as `hub_expiry_timestamp_seconds{kind, subject}`, so
//! alert rules compute `... - time()`, and [`run`] logs a warning for each item within
//! `expiry.warn_days` of its end, at start and then every `expiry.check_interval_secs`.
//! The rule itself ([`due`]) takes the time as an argument.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use prometheus::IntGaugeVec;

const DAY_SECS: i64 = 24 * 60 * 60;

/// What kind of thing expires; the `kind` label of the gauge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ExpiryKind {
    /// The hub's current signing key, due for rotation.
    SigningKey,
    /// The leaf certificate of `server.tls.cert_path`.
    TlsCertificate,
    /// An identity provider's certification for its level of assurance.
    IdpCertification,
    /// A key a relying party signs with (client assertions, request objects).
    RpKey,
}

impl ExpiryKind {
    /// The label value: `signing_key`, `tls_certificate`, `idp_certification`, `rp_key`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SigningKey => "signing_key",
            Self::TlsCertificate => "tls_certificate",
            Self::IdpCertification => "idp_certification",
            Self::RpKey => "rp_key",
        }
    }

    /// What the operator should do about it, for the warning.
    fn action(self) -> &'static str {
        match self {
            Self::SigningKey => "rotate the signing keys (hub keys rotate)",
            Self::TlsCertificate => "renew the certificate, then restart each instance",
            Self::IdpCertification => "have the identity provider's certification renewed",
            Self::RpKey => "ask the relying party to publish a new key",
        }
    }
}

impl std::fmt::Display for ExpiryKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing that expires: its kind, which one (a kid, a certificate's name, an IdP or
/// RP id: public names only, since it becomes a metric label and a log field), and when
/// (Unix seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expiry {
    pub kind: ExpiryKind,
    pub subject: String,
    pub expires_at: i64,
}

impl Expiry {
    /// Seconds left at `now`; negative once past.
    pub fn remaining(&self, now: i64) -> i64 {
        self.expires_at.saturating_sub(now)
    }
}

/// The rule: the items that warrant a warning at `now`, those that expire within
/// `warn_days` or already have, soonest first.
pub fn due(items: &[Expiry], now: i64, warn_days: u64) -> Vec<&Expiry> {
    let window = i64::try_from(warn_days)
        .unwrap_or(i64::MAX)
        .saturating_mul(DAY_SECS);
    let mut due: Vec<&Expiry> = items
        .iter()
        .filter(|item| item.remaining(now) <= window)
        .collect();
    due.sort_by_key(|item| item.expires_at);
    due
}

/// The current signing key `kid`, created at `created_at`, is due for rotation
/// `rotate_after_days` later.
pub fn signing_key(kid: &str, created_at: i64, rotate_after_days: u64) -> Expiry {
    let age = i64::try_from(rotate_after_days)
        .unwrap_or(i64::MAX)
        .saturating_mul(DAY_SECS);
    Expiry {
        kind: ExpiryKind::SigningKey,
        subject: kid.to_owned(),
        expires_at: created_at.saturating_add(age),
    }
}

/// A certificate file whose expiry could not be read.
#[derive(Debug, thiserror::Error)]
#[error("certificate {}: {reason}", path.display())]
pub struct CertificateUnreadable {
    path: PathBuf,
    reason: String,
}

/// The expiry of the leaf (first) certificate in the PEM file at `path`, named after its
/// common name (else its first DNS name, else the file).
pub fn tls_certificate(path: &Path) -> Result<Expiry, CertificateUnreadable> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::CertificateDer;
    let unreadable = |reason: String| CertificateUnreadable {
        path: path.to_path_buf(),
        reason,
    };
    let leaf = CertificateDer::pem_file_iter(path)
        .map_err(|e| unreadable(e.to_string()))?
        .next()
        .ok_or_else(|| unreadable("no certificate found".into()))?
        .map_err(|e| unreadable(e.to_string()))?;
    let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref())
        .map_err(|e| unreadable(e.to_string()))?;
    let common_name = cert
        .subject()
        .iter_common_name()
        .find_map(|cn| cn.as_str().ok().map(str::to_owned));
    let dns_name = || {
        let names = cert.subject_alternative_name().ok().flatten()?;
        names
            .value
            .general_names
            .iter()
            .find_map(|name| match name {
                x509_parser::extensions::GeneralName::DNSName(dns) => Some((*dns).to_owned()),
                _ => None,
            })
    };
    Ok(Expiry {
        kind: ExpiryKind::TlsCertificate,
        subject: common_name
            .or_else(dns_name)
            .unwrap_or_else(|| path.display().to_string()),
        expires_at: cert.validity().not_after.timestamp(),
    })
}

/// The earliest notAfter of the certificates (`x5c`) in a relying party's inline JWKS:
/// when it must have published a new key. `None` when its keys carry no certificate.
pub fn rp_keys(client_id: &str, jwks: &serde_json::Value) -> Option<Expiry> {
    use base64::Engine as _;
    let certificates = jwks["keys"]
        .as_array()?
        .iter()
        .filter_map(|key| key["x5c"].as_array()?.first()?.as_str())
        .filter_map(|der| base64::engine::general_purpose::STANDARD.decode(der).ok());
    let earliest = certificates
        .filter_map(|der| {
            let (_, cert) = x509_parser::parse_x509_certificate(&der).ok()?;
            Some(cert.validity().not_after.timestamp())
        })
        .min()?;
    Some(Expiry {
        kind: ExpiryKind::RpKey,
        subject: client_id.to_owned(),
        expires_at: earliest,
    })
}

/// The expiries this instance watches: exported as the gauge, warned about by [`run`].
#[derive(Debug)]
pub struct Expiries {
    items: Mutex<BTreeMap<(ExpiryKind, String), i64>>,
    gauge: IntGaugeVec,
    warn_days: u64,
}

impl Expiries {
    /// Watches nothing yet; `gauge` is the metrics' (`Metrics::expiry_gauge`).
    pub(crate) fn new(gauge: IntGaugeVec, warn_days: u64) -> Self {
        Self {
            items: Mutex::new(BTreeMap::new()),
            gauge,
            warn_days,
        }
    }

    /// Adds `items`, or updates those already watched (same kind and subject): how any
    /// part of the hub, such as the registry of identity providers and relying parties,
    /// has its own expiries exported and warned about.
    pub fn track(&self, items: impl IntoIterator<Item = Expiry>) {
        let mut watched = self.items.lock().unwrap_or_else(PoisonError::into_inner);
        for item in items {
            self.gauge
                .with_label_values(&[item.kind.as_str(), &item.subject])
                .set(item.expires_at);
            watched.insert((item.kind, item.subject), item.expires_at);
        }
    }

    /// Replaces everything watched of `kind` with `items` (a reloaded registry): an item
    /// no longer listed leaves the gauge too.
    pub fn replace(&self, kind: ExpiryKind, items: impl IntoIterator<Item = Expiry>) {
        {
            let mut watched = self.items.lock().unwrap_or_else(PoisonError::into_inner);
            watched.retain(|(k, subject), _| {
                let keep = *k != kind;
                if !keep {
                    let _ = self.gauge.remove_label_values(&[k.as_str(), subject]);
                }
                keep
            });
        }
        self.track(items);
    }

    /// Everything watched, by kind and subject.
    pub fn items(&self) -> Vec<Expiry> {
        let watched = self.items.lock().unwrap_or_else(PoisonError::into_inner);
        watched
            .iter()
            .map(|((kind, subject), expires_at)| Expiry {
                kind: *kind,
                subject: subject.clone(),
                expires_at: *expires_at,
            })
            .collect()
    }

    /// Logs a warning for each item [`due`] at `now`, and returns them.
    pub fn warn_due(&self, now: i64) -> Vec<Expiry> {
        let items = self.items();
        let due: Vec<Expiry> = due(&items, now, self.warn_days)
            .into_iter()
            .cloned()
            .collect();
        for item in &due {
            let remaining = item.remaining(now);
            let expires_at = chrono::DateTime::from_timestamp(item.expires_at, 0)
                .map(|t| t.to_rfc3339())
                .unwrap_or_default();
            let days_left = remaining.div_euclid(DAY_SECS);
            let message = if remaining <= 0 {
                "expired"
            } else {
                "expires soon"
            };
            tracing::warn!(
                kind = %item.kind,
                subject = %item.subject,
                expires_at = %expires_at,
                days_left,
                action = item.kind.action(),
                "{message}"
            );
        }
        due
    }
}

/// Runs forever: brings the items that change while the hub runs up to date (`refresh`:
/// the signing key after a rotation, the registry's parties), warns about what is due
/// now, then again every `every`.
pub(crate) async fn run(
    expiries: Arc<Expiries>,
    every: Duration,
    refresh: impl Fn(&Expiries) + Send + 'static,
) {
    loop {
        refresh(&expiries);
        expiries.warn_due(crate::clock::now());
        tokio::time::sleep(every.max(Duration::from_secs(1))).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;

    const NOW: i64 = 1_750_000_000;

    fn item(kind: ExpiryKind, subject: &str, days: i64) -> Expiry {
        Expiry {
            kind,
            subject: subject.into(),
            expires_at: NOW + days * DAY_SECS,
        }
    }

    #[test]
    fn items_within_the_window_or_past_warn_soonest_first() {
        let items = [
            item(ExpiryKind::TlsCertificate, "hub.example", 29),
            item(ExpiryKind::SigningKey, "kid-1", 31),
            item(ExpiryKind::RpKey, "rp-1", -2),
            item(ExpiryKind::IdpCertification, "idp-1", 30),
        ];
        let subjects: Vec<&str> = due(&items, NOW, 30)
            .iter()
            .map(|i| i.subject.as_str())
            .collect();
        assert_eq!(subjects, ["rp-1", "hub.example", "idp-1"]);
        assert!(due(&items, NOW, 0).iter().all(|i| i.remaining(NOW) <= 0));
        assert_eq!(due(&items, NOW - 40 * DAY_SECS, 30).len(), 0);
    }

    #[test]
    fn a_signing_key_is_due_its_rotation_age_after_creation() {
        let key = signing_key("kid-1", NOW - 80 * DAY_SECS, 90);
        assert_eq!(key.kind, ExpiryKind::SigningKey);
        assert_eq!(key.remaining(NOW), 10 * DAY_SECS);
        assert_eq!(due(std::slice::from_ref(&key), NOW, 30), [&key]);
        assert!(due(&[key], NOW, 5).is_empty());
    }

    #[test]
    fn the_gauge_holds_each_expiry_and_a_replaced_kind_drops_its_old_items() {
        let metrics = Metrics::new();
        let expiries = Expiries::new(metrics.expiry_gauge(), 30);
        expiries.track([
            item(ExpiryKind::SigningKey, "kid-1", 10),
            item(ExpiryKind::IdpCertification, "idp-1", 100),
            item(ExpiryKind::IdpCertification, "idp-2", 5),
        ]);
        let gauge = |kind: ExpiryKind, subject: &str| {
            metrics
                .expiry_gauge()
                .get_metric_with_label_values(&[kind.as_str(), subject])
                .map(|g| g.get())
                .ok()
        };
        assert_eq!(
            gauge(ExpiryKind::SigningKey, "kid-1"),
            Some(NOW + 10 * DAY_SECS)
        );
        let warned: Vec<String> = expiries
            .warn_due(NOW)
            .into_iter()
            .map(|i| i.subject)
            .collect();
        assert_eq!(warned, ["idp-2", "kid-1"]);

        expiries.replace(
            ExpiryKind::IdpCertification,
            [item(ExpiryKind::IdpCertification, "idp-1", 50)],
        );
        assert_eq!(
            gauge(ExpiryKind::IdpCertification, "idp-1"),
            Some(NOW + 50 * DAY_SECS)
        );
        let text = metrics.render(store::PoolState::default());
        assert!(!text.contains("idp-2"), "{text}");
        assert!(
            text.contains(&format!(
                "hub_expiry_timestamp_seconds{{kind=\"signing_key\",subject=\"kid-1\"}} {}",
                NOW + 10 * DAY_SECS
            )),
            "{text}"
        );
        assert_eq!(expiries.items().len(), 2);
    }

    fn certificate_file(dir: &Path, common_name: Option<&str>) -> PathBuf {
        let mut params =
            rcgen::CertificateParams::new(vec!["hub.example".to_owned()]).expect("params");
        params.not_after = rcgen::date_time_ymd(2030, 1, 2);
        params.distinguished_name = rcgen::DistinguishedName::new();
        if let Some(cn) = common_name {
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, cn);
        }
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("certificate");
        let path = dir.join(format!("{}.pem", common_name.unwrap_or("no-cn")));
        std::fs::write(&path, cert.pem()).expect("write");
        path
    }

    #[test]
    fn a_certificate_expiry_is_its_leafs_not_after() {
        let dir = tempfile::tempdir().expect("tempdir");
        let named = tls_certificate(&certificate_file(dir.path(), Some("hub.example.gov.uk")))
            .expect("certificate");
        assert_eq!(
            named,
            Expiry {
                kind: ExpiryKind::TlsCertificate,
                subject: "hub.example.gov.uk".into(),
                expires_at: 1_893_542_400, // 2030-01-02T00:00:00Z
            }
        );
        let unnamed = tls_certificate(&certificate_file(dir.path(), None)).expect("certificate");
        assert_eq!(unnamed.subject, "hub.example");

        let path = dir.path().join("cert.pem");
        std::fs::write(&path, "not a certificate").expect("write");
        let err = tls_certificate(&path).expect_err("no certificate");
        assert!(err.to_string().contains("cert.pem"), "{err}");
        assert!(tls_certificate(&dir.path().join("missing.pem")).is_err());
    }
}
