//! The identity provider's response: its checks (mix-up defence, the code redeemed, the
//! ID token and level), and what happens when the IdP failed: the journey waits on the
//! hub's page instead of ending (no dead end).

use audit::EventType;

use super::{same_browser, IdpResponse, JourneyEngine, Outcome, Refusal};
use crate::identity_provider::{IdentityProvider, UpstreamError};
use crate::journey::{Journey, VerifiedIdentity};
use crate::level::Level;
use crate::reason::Reason;

impl JourneyEngine<'_> {
    /// The identity provider's response: the code redeemed, the identity checked and
    /// matched, then the RP's answer (or the cycle-3 question).
    pub(crate) async fn idp_returned(&self, response: IdpResponse<'_>) -> Result<Outcome, Refusal> {
        let j = self.journeys;
        let Some(state) = response.state else {
            j.trail.rejected(None, None, "idp_state_missing").await;
            return Err(Refusal::UnknownState);
        };
        let journey = j
            .store
            .take_by_upstream_state(state)
            .await
            .map_err(|_| Refusal::Unavailable)?;
        let Some(mut journey) = journey else {
            j.trail.rejected(None, None, "idp_state_unknown").await;
            return Err(Refusal::UnknownState);
        };
        // The state was issued to another browser: a forged or injected response (CSRF).
        if !same_browser(&journey, response.browser) {
            tracing::warn!(journey = %journey.id, "identity provider response in another browser");
            self.rejected(&journey, "idp_state_other_browser").await;
            return Err(Refusal::UnknownState);
        }
        let Some(upstream) = journey.upstream().filter(|u| u.state == state).cloned() else {
            return self.fail(&mut journey, Reason::JourneyFinished).await;
        };
        if journey.is_expired(self.now) {
            return Ok(Outcome::TimedOut(self.page(&journey)));
        }
        let Some(idp) = j.idps.get(&upstream.idp_id) else {
            // Disabled or retired while the citizen was there: its answer is not used,
            // and the citizen may choose another company.
            let idp_id = upstream.idp_id.clone();
            return Ok(self
                .idp_failed(&mut journey, &idp_id, Reason::IdpUnavailable, true)
                .await);
        };
        let idp_id = idp.settings.id.as_str();
        if let Err(e) = j.idps.check_response_issuer(&idp, response.iss).await {
            tracing::warn!(journey = %journey.id, idp = idp_id, error = %e, "identity provider response refused");
            self.rejected(&journey, "idp_issuer_mismatch").await;
            return Ok(self
                .idp_failed(&mut journey, idp_id, upstream_reason(&e), true)
                .await);
        }
        if let Some(error) = response.error {
            let reason = idp_error_reason(error, response.error_description);
            return Ok(self.idp_failed(&mut journey, idp_id, reason, true).await);
        }
        let Some(code) = response.code else {
            return Ok(self
                .idp_failed(&mut journey, idp_id, Reason::IdpError, true)
                .await);
        };
        let assertion = match j.idps.redeem(&idp, code, &upstream, self.now).await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, journey = %journey.id, idp = idp_id, "identity provider response rejected");
                return Ok(self
                    .idp_failed(&mut journey, idp_id, upstream_reason(&e), true)
                    .await);
            }
        };
        let Some(level) = self.achieved_level(&idp, assertion.acr.as_deref(), &journey) else {
            return Ok(self
                .idp_failed(&mut journey, idp_id, Reason::LevelTooLow, true)
                .await);
        };
        let identity = VerifiedIdentity {
            idp_id: idp.settings.id.clone(),
            idp_subject: assertion.subject,
            level,
            auth_time: assertion.auth_time.unwrap_or(self.now),
            dataset: assertion.dataset,
        };
        if journey.idp_returned(identity).is_err() {
            return self.fail(&mut journey, Reason::JourneyFinished).await;
        }
        let mut returned = j.trail.journey_event(EventType::IdpReturned, &journey);
        returned.outcome = Some("success".into());
        // Appended with the matching event (or the failure) that always follows.
        self.hold(returned);
        tracing::debug!(journey = %journey.id, idp = %idp.settings.id, "identity provider returned");
        self.run_matching(&mut journey).await
    }

    /// The level proved: what the IdP asserted, capped at what it is certified for, if it
    /// meets what the RP asked for.
    fn achieved_level(
        &self,
        idp: &IdentityProvider,
        acr: Option<&str>,
        journey: &Journey,
    ) -> Option<Level> {
        let levels = &self.journeys.op.levels;
        let certified = self.journeys.idps.certified(idp)?;
        let asserted = levels.parse(acr?)?;
        let achieved = if levels.satisfies(&certified, &asserted) {
            asserted
        } else {
            certified
        };
        levels
            .satisfies(&achieved, &journey.request.minimum_level)
            .then_some(achieved)
    }

    /// `idp` could not prove the identity (or be reached): the journey waits on the hub's
    /// page for the citizen to try again, choose another or go back. The failure is in
    /// the log (`idp_returned`, or `idp_selected` when the IdP was never reached, with the
    /// reason as outcome); the RP hears of it only if the citizen goes back.
    pub(super) async fn idp_failed(
        &self,
        journey: &mut Journey,
        idp: &str,
        reason: Reason,
        reached: bool,
    ) -> Outcome {
        let j = self.journeys;
        tracing::info!(journey = %journey.id, idp, reason = reason.code(), "identity provider failed");
        if journey.idp_failed(idp, reason).is_err() {
            return self.ended(journey, Reason::JourneyFinished).await;
        }
        let kind = if reached {
            EventType::IdpReturned
        } else {
            EventType::IdpSelected
        };
        let mut event = j.trail.journey_event(kind, journey);
        event.outcome = Some(reason.code().to_owned());
        let (saved, logged) = tokio::join!(j.store.save(journey), self.record(event));
        if saved.is_err() || logged.is_err() {
            return self.ended(journey, Reason::HubUnavailable).await;
        }
        Outcome::IdpProblem {
            page: self.page(journey),
            idp: self.choice(idp),
            unavailable: reason == Reason::IdpUnavailable,
        }
    }
}

fn upstream_reason(e: &UpstreamError) -> Reason {
    if matches!(e, UpstreamError::Unavailable(_)) {
        Reason::IdpUnavailable
    } else {
        Reason::IdpError
    }
}

/// Maps an IdP's error response to the reason sent to the RP. IdPs signal a citizen's
/// cancellation as `access_denied` with a description mentioning "cancel".
fn idp_error_reason(error: &str, description: Option<&str>) -> Reason {
    match error {
        "access_denied"
            if description.is_some_and(|d| d.to_ascii_lowercase().contains("cancel")) =>
        {
            Reason::UserCancelled
        }
        "access_denied" | "login_required" | "interaction_required" => Reason::IdpAccessDenied,
        "temporarily_unavailable" => Reason::IdpUnavailable,
        "unmet_authentication_requirements" => Reason::LevelTooLow,
        _ => Reason::IdpError,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idp_errors_map_to_reasons() {
        assert_eq!(
            idp_error_reason("access_denied", Some("user cancelled")),
            Reason::UserCancelled
        );
        assert_eq!(
            idp_error_reason("access_denied", None),
            Reason::IdpAccessDenied
        );
        assert_eq!(
            idp_error_reason("temporarily_unavailable", None),
            Reason::IdpUnavailable
        );
        assert_eq!(idp_error_reason("server_error", None), Reason::IdpError);
    }
}
