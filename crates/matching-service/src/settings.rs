//! The service's own settings: what the `[matching_service]` section of a configuration
//! file holds, and the few shared sections it also runs with ([`ServiceConfig`]).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use url::Url;

/// The standalone matching service (`hub matching-service`). It uses `database.url` of the
/// same configuration for its records, so `hub migrate` and `hub records import` work on it
/// unchanged.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchingServiceSettings {
    /// Address to listen on, e.g. `0.0.0.0:8090`.
    pub bind: String,
    /// The service's identifier: the `aud` hub requests must carry and the `iss` of its
    /// responses. The hub's `matching_service.url` for this service must be the same URL.
    pub public_url: Url,
    /// The hub's issuer identifier, required as `iss` of every request.
    pub hub_issuer: String,
    /// The hub's JWKS, inline.
    #[serde(default)]
    pub hub_jwks: Option<serde_json::Value>,
    /// The hub's JWKS, from a file.
    #[serde(default)]
    pub hub_jwks_path: Option<PathBuf>,
    /// The hub's JWKS, fetched from its `/jwks` (refetched when an unknown kid appears).
    #[serde(default)]
    pub hub_jwks_uri: Option<Url>,
    /// Where the service keeps its own ES256 signing key (default `data.dir/matching-service-keys`).
    #[serde(default)]
    pub keys_dir: Option<PathBuf>,
    /// The policy used for every relying party without its own.
    #[serde(default)]
    pub matching: matching::MatchPolicy,
    /// The relying parties this service answers for (requests for others are refused).
    #[serde(default)]
    pub relying_parties: Vec<ServiceRelyingParty>,
    /// Largest `/match` request body accepted, in bytes.
    #[serde(default = "default_body_limit")]
    pub max_body_bytes: usize,
    /// Allowed clock skew between hub and service, in seconds.
    #[serde(default = "default_leeway")]
    pub leeway_secs: u64,
}

fn default_body_limit() -> usize {
    64 * 1024
}

fn default_leeway() -> u64 {
    5
}

/// A relying party a matching service answers for, optionally with its own policy.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceRelyingParty {
    /// The relying party's client id at the hub (the `rp` claim of requests).
    pub client_id: String,
    /// Overrides `matching_service.matching` for this relying party.
    #[serde(default)]
    pub matching: Option<matching::MatchPolicy>,
}

/// A `[matching_service]` section that cannot run (messages name the configuration keys).
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("matching_service: set exactly one of hub_jwks, hub_jwks_path, hub_jwks_uri")]
    HubKeys,
    #[error("matching_service: relying_parties is empty")]
    NoRelyingParties,
    #[error("matching_service: matching.{0}")]
    Policy(matching::PolicyError),
    #[error("matching_service relying party {client_id}: matching.{error}")]
    RelyingPartyPolicy {
        client_id: String,
        error: matching::PolicyError,
    },
}

impl MatchingServiceSettings {
    /// The service's identifier (`public_url` without a trailing slash).
    pub fn identifier(&self) -> String {
        self.public_url.as_str().trim_end_matches('/').to_owned()
    }

    /// The policy for `rp`, or `None` when the service does not answer for it.
    pub fn policy_for(&self, rp: &str) -> Option<&matching::MatchPolicy> {
        self.relying_parties
            .iter()
            .find(|r| r.client_id == rp)
            .map(|r| r.matching.as_ref().unwrap_or(&self.matching))
    }

    /// Cross-field checks that serde cannot express.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let sources = [
            self.hub_jwks.is_some(),
            self.hub_jwks_path.is_some(),
            self.hub_jwks_uri.is_some(),
        ];
        if sources.iter().filter(|s| **s).count() != 1 {
            return Err(SettingsError::HubKeys);
        }
        if self.relying_parties.is_empty() {
            return Err(SettingsError::NoRelyingParties);
        }
        self.matching.validate().map_err(SettingsError::Policy)?;
        for rp in &self.relying_parties {
            if let Some(Err(error)) = rp.matching.as_ref().map(matching::MatchPolicy::validate) {
                return Err(SettingsError::RelyingPartyPolicy {
                    client_id: rp.client_id.clone(),
                    error,
                });
            }
        }
        Ok(())
    }
}

/// What one matching service runs with: its section, and what it shares with the rest of
/// the configuration file (the records database, the data directory its key defaults to).
#[derive(Clone)]
pub struct ServiceConfig {
    pub service: MatchingServiceSettings,
    /// `database.url`: where the department's records are.
    pub database_url: String,
    pub database_options: store::DatabaseOptions,
    /// `data.dir`, the parent of the default `keys_dir`.
    pub data_dir: PathBuf,
}

/// The database URL without its password, which it may hold.
impl std::fmt::Debug for ServiceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceConfig")
            .field("service", &self.service)
            .field("database_url", &store::redact_url(&self.database_url))
            .field("data_dir", &self.data_dir)
            .finish_non_exhaustive()
    }
}

impl ServiceConfig {
    /// Where the service's signing key lives: `keys_dir`, or `data.dir/matching-service-keys`.
    pub fn keys_dir(&self) -> PathBuf {
        self.service
            .keys_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("matching-service-keys"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn section(patch: serde_json::Value) -> MatchingServiceSettings {
        let mut value = serde_json::json!({
            "bind": "127.0.0.1:0",
            "public_url": "https://matching.example/",
            "hub_issuer": "https://hub.example",
            "hub_jwks_uri": "https://hub.example/jwks",
            "relying_parties": [{"client_id": "rp"}],
        });
        for (k, v) in patch.as_object().unwrap() {
            value[k] = v.clone();
        }
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn defaults_and_derived_values() {
        let s = section(serde_json::json!({}));
        assert_eq!((s.max_body_bytes, s.leeway_secs), (65536, 5));
        assert_eq!(s.identifier(), "https://matching.example");
        assert!(s.policy_for("rp").is_some() && s.policy_for("other").is_none());
        let config = ServiceConfig {
            service: s,
            database_url: "sqlite://x.db".into(),
            database_options: store::DatabaseOptions::default(),
            data_dir: "/data".into(),
        };
        assert_eq!(
            config.keys_dir(),
            PathBuf::from("/data/matching-service-keys")
        );
    }

    #[test]
    fn invalid_sections_are_refused_naming_their_keys() {
        let refused = |patch| section(patch).validate().unwrap_err().to_string();
        assert!(section(serde_json::json!({})).validate().is_ok());
        assert_eq!(
            refused(serde_json::json!({"hub_jwks": {"keys": []}})),
            "matching_service: set exactly one of hub_jwks, hub_jwks_path, hub_jwks_uri"
        );
        assert_eq!(
            refused(serde_json::json!({"relying_parties": []})),
            "matching_service: relying_parties is empty"
        );
        assert!(refused(serde_json::json!({"matching": {"threshold": 1.0}}))
            .starts_with("matching_service: matching.threshold"));
        let rp = serde_json::json!({"relying_parties": [
            {"client_id": "rp", "matching": {"threshold": 1.0}}
        ]});
        assert!(refused(rp).starts_with("matching_service relying party rp: matching.threshold"));
    }
}
