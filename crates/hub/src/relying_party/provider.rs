//! The hub as the OpenID Provider of relying parties: who they are, the keys and
//! secrets that sign and derive what they receive, and where codes and tokens are kept.

use std::sync::Arc;
use std::time::Duration;

use store::SessionStore;

use super::RelyingParty;
use crate::journey::store::JourneyStore;
use crate::level::Levels;
use crate::registry::live::LiveRegistry;
use crate::verification_log::trail::AuditTrail;

/// How long what the hub hands a relying party stays valid.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lifetimes {
    pub(crate) code: Duration,
    pub(crate) access_token: Duration,
    pub(crate) id_token: Duration,
}

/// Everything the OP side (`/authorize`, `/par`, `/token`, `/userinfo`, discovery)
/// reads; the journey engine uses it to issue the code that ends a journey.
pub(crate) struct OpenIdProvider {
    /// The issuer identifier: the public URL without a trailing slash.
    pub(crate) issuer: String,
    /// The registered parties, as this instance last read them.
    pub(crate) registry: Arc<LiveRegistry>,
    pub(crate) levels: Levels,
    /// The hub's signing keys as they are now: the current one signs ID tokens, and
    /// all published ones are served at `/jwks` (one snapshot per use).
    pub(crate) keys: token::LiveKeys,
    pub(crate) pairwise: token::PairwiseSecret,
    /// Codes, access tokens and pushed requests.
    pub(crate) sessions: Arc<dyn SessionStore>,
    /// A completed journey is saved with its code, in one write.
    pub(crate) journeys: JourneyStore,
    /// Fetches RPs' `jwks_uri`: no redirects followed, bounded time.
    pub(crate) http: reqwest::Client,
    pub(crate) lifetimes: Lifetimes,
    /// The journey's lifetime, given to each journey started at `/authorize`.
    pub(crate) journey_ttl: Duration,
    pub(crate) trail: AuditTrail,
}

impl std::fmt::Debug for OpenIdProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenIdProvider")
            .field("issuer", &self.issuer)
            .field("relying_parties", &self.registry.relying_party_count())
            .finish_non_exhaustive()
    }
}

impl OpenIdProvider {
    /// `{issuer}{path}`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{}", self.issuer, path)
    }

    /// An active relying party: one disabled or retired since is not served, even for a
    /// journey or code it started before.
    pub(crate) fn relying_party(&self, client_id: &str) -> Option<Arc<RelyingParty>> {
        self.registry.relying_party(client_id)
    }
}
