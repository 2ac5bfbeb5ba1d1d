//! The hub's side of every identity provider: the configured providers, the HTTP client
//! that reaches them, the callback they return to and the key the hub authenticates
//! with. Each call is timed in the metrics.

use std::time::Instant;

use url::Url;

use super::{IdentityProvider, IdpAssertion, UpstreamError};
use crate::journey::UpstreamRequest;
use crate::level::{Level, Levels};
use crate::metrics::Metrics;

/// What the journey engine needs to send a citizen to an identity provider and to read
/// what it asserted.
#[derive(Debug)]
pub(crate) struct IdpClient {
    providers: Vec<IdentityProvider>,
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
        providers: Vec<IdentityProvider>,
        levels: Levels,
        http: reqwest::Client,
        callback: Url,
        keys: token::LiveKeys,
        metrics: Metrics,
    ) -> Self {
        Self {
            providers,
            levels,
            http,
            callback,
            keys,
            metrics,
        }
    }

    pub(crate) fn get(&self, id: &str) -> Option<&IdentityProvider> {
        self.providers.iter().find(|i| i.settings.id == id)
    }

    /// IdPs certified for `minimum` or above, in configured order: the ones the picker
    /// offers and a choice or hint may name.
    pub(crate) fn eligible(&self, minimum: &Level) -> Vec<&IdentityProvider> {
        self.providers
            .iter()
            .filter(|idp| {
                self.certified(idp)
                    .is_some_and(|max| self.levels.satisfies(&max, minimum))
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
