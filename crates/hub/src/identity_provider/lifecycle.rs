//! An identity provider's place in the scheme over time, as operators set it in the
//! registry: onboarding (offered to some relying parties only), registration closing,
//! leaving the scheme, certification lapsing, and temporary unavailability; and whether
//! the hub can reach it now (its circuit breaker).

use chrono::{DateTime, Utc};

use super::IdentityProvider;

/// How the picker offers an identity provider to one journey, now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Availability {
    Open,
    /// Registration has closed: only for citizens who already have an account there.
    SignInOnly,
    /// Shown but not selectable: an operator's notice (its message, English and Welsh),
    /// or no message when the hub cannot reach it (its circuit breaker is open).
    Unavailable {
        message: Option<String>,
        message_cy: Option<String>,
    },
}

impl Availability {
    /// Whether a citizen may choose it.
    pub(crate) fn is_selectable(&self) -> bool {
        !matches!(self, Self::Unavailable { .. })
    }
}

impl IdentityProvider {
    /// How it can serve a journey of relying party `rp` at `now`; `None` when it is not
    /// to be offered at all: it has left the scheme, its certification has lapsed, or it
    /// is onboarding other relying parties only.
    pub(crate) fn availability(&self, rp: &str, now: DateTime<Utc>) -> Option<Availability> {
        let s = &self.settings;
        let passed = |until: Option<DateTime<Utc>>| until.is_some_and(|t| t <= now);
        if passed(s.authentication_until) || passed(s.certified_until) {
            return None;
        }
        if s.relying_parties
            .as_ref()
            .is_some_and(|allowed| !allowed.iter().any(|a| a == rp))
        {
            return None;
        }
        if let Some(message) = &s.temporarily_unavailable {
            return Some(Availability::Unavailable {
                message: Some(message.clone()),
                message_cy: s.temporarily_unavailable_cy.clone(),
            });
        }
        if self.is_circuit_open() {
            return Some(Availability::Unavailable {
                message: None,
                message_cy: None,
            });
        }
        if passed(s.registration_until) {
            return Some(Availability::SignInOnly);
        }
        Some(Availability::Open)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn idp(extra: serde_json::Value) -> IdentityProvider {
        let mut doc = serde_json::json!({
            "id": "idp", "name": "IdP", "issuer": "https://idp.example", "client_id": "hub",
            "token_endpoint_auth_method": "private_key_jwt", "max_level": "P2"
        });
        doc.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        IdentityProvider::new(serde_json::from_value(doc).unwrap())
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn dates_close_registration_then_authentication() {
        let idp = idp(serde_json::json!({
            "registration_until": "2027-01-01T00:00:00Z",
            "authentication_until": "2027-06-01T00:00:00Z"
        }));
        let offer = |t| idp.availability("rp", at(t));
        assert_eq!(offer("2026-12-31T23:59:59Z"), Some(Availability::Open));
        assert_eq!(
            offer("2027-01-01T00:00:00Z"),
            Some(Availability::SignInOnly)
        );
        assert_eq!(offer("2027-06-01T00:00:00Z"), None);
    }

    #[test]
    fn a_lapsed_certification_or_another_rps_onboarding_hides_it() {
        let lapsed = idp(serde_json::json!({"certified_until": "2026-01-01T00:00:00Z"}));
        assert_eq!(lapsed.availability("rp", at("2026-06-01T00:00:00Z")), None);
        let onboarding = idp(serde_json::json!({"relying_parties": ["pilot"]}));
        assert_eq!(
            onboarding.availability("rp", at("2026-06-01T00:00:00Z")),
            None
        );
        assert_eq!(
            onboarding.availability("pilot", at("2026-06-01T00:00:00Z")),
            Some(Availability::Open)
        );
    }

    #[test]
    fn a_notice_makes_it_unselectable_with_its_message() {
        let idp = idp(serde_json::json!({"temporarily_unavailable": "Back at 6pm"}));
        let offer = idp.availability("rp", at("2026-06-01T00:00:00Z")).unwrap();
        assert!(!offer.is_selectable());
        assert_eq!(
            offer,
            Availability::Unavailable {
                message: Some("Back at 6pm".into()),
                message_cy: None
            }
        );
    }
}
