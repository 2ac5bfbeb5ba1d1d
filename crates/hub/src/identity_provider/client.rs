//! The hub's side of every identity provider: the configured providers, the HTTP client
//! that reaches them, the callback they return to and the key the hub authenticates
//! with. Each call is timed in the metrics.

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use url::Url;

use super::lifecycle::Availability;
use super::{IdentityProvider, IdpAssertion, UpstreamError};
use crate::journey::UpstreamRequest;
use crate::level::{Level, Levels};
use crate::metrics::Metrics;
use crate::registry::live::LiveRegistry;

/// An identity provider the picker shows a journey, and how.
#[derive(Debug, Clone)]
pub(crate) struct Offer {
    pub(crate) idp: Arc<IdentityProvider>,
    pub(crate) availability: Availability,
}

/// What the journey engine needs to send a citizen to an identity provider and to read
/// what it asserted.
#[derive(Debug)]
pub(crate) struct IdpClient {
    /// The active identity providers (the registry).
    registry: Arc<LiveRegistry>,
    levels: Levels,
    http: reqwest::Client,
    /// Where identity providers send the citizen back (`{issuer}/idp/callback`).
    callback: Url,
    /// The hub's keys: the current one signs `private_key_jwt` client assertions.
    keys: token::LiveKeys,
    metrics: Metrics,
}

impl IdpClient {
    pub(crate) fn new(
        registry: Arc<LiveRegistry>,
        levels: Levels,
        http: reqwest::Client,
        callback: Url,
        keys: token::LiveKeys,
        metrics: Metrics,
    ) -> Self {
        Self {
            registry,
            levels,
            http,
            callback,
            keys,
            metrics,
        }
    }

    /// An active identity provider, by id.
    pub(crate) fn get(&self, id: &str) -> Option<Arc<IdentityProvider>> {
        self.registry.identity_provider_by_id(id)
    }

    /// What the picker shows a journey of relying party `rp` for `minimum` at `now`: the
    /// active IdPs certified for `minimum` or above that may serve `rp` now, in the
    /// registry's order, each open, for sign-in only, or shown as unavailable.
    pub(crate) fn offers(&self, minimum: &Level, rp: &str, now: DateTime<Utc>) -> Vec<Offer> {
        self.registry
            .identity_providers()
            .into_iter()
            .filter(|idp| {
                self.certified(idp)
                    .is_some_and(|max| self.levels.satisfies(&max, minimum))
            })
            .filter_map(|idp| {
                let availability = idp.availability(rp, now)?;
                Some(Offer { idp, availability })
            })
            .collect()
    }

    /// The level `idp` is certified to (its `max_level`).
    pub(crate) fn certified(&self, idp: &IdentityProvider) -> Option<Level> {
        self.levels.parse(&idp.settings.max_level)
    }

    /// The authorization request sending a citizen to `idp` for `level`.
    pub(crate) async fn authorization_request(
        &self,
        idp: &IdentityProvider,
        level: &Level,
    ) -> Result<(Url, UpstreamRequest), UpstreamError> {
        let started = Instant::now();
        let request = idp
            .authorization_url(&self.http, &self.callback, level.as_str())
            .await;
        self.timed(idp, "authorization_request", started, &request);
        request
    }

    /// RFC 9207: the response's `iss` is `idp`'s.
    pub(crate) async fn check_response_issuer(
        &self,
        idp: &IdentityProvider,
        iss: Option<&str>,
    ) -> Result<(), UpstreamError> {
        idp.check_response_issuer(&self.http, iss).await
    }

    /// Redeems the code `idp` returned, at time `now`.
    pub(crate) async fn redeem(
        &self,
        idp: &IdentityProvider,
        code: &str,
        upstream: &UpstreamRequest,
        now: i64,
    ) -> Result<IdpAssertion, UpstreamError> {
        let started = Instant::now();
        let redeemed = idp
            .redeem(
                &self.http,
                &self.callback,
                code,
                upstream,
                &self.keys.signer(),
                now,
            )
            .await;
        self.timed(idp, "redeem", started, &redeemed);
        redeemed
    }

    fn timed<T>(
        &self,
        idp: &IdentityProvider,
        call: &str,
        started: Instant,
        result: &Result<T, UpstreamError>,
    ) {
        let failure = result.as_ref().err().map(UpstreamError::kind);
        self.metrics
            .idp_call(&idp.settings.id, call, started, failure);
    }
}
