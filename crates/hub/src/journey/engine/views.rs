//! What the citizen's pages of a journey show: the journey's page data, the identity
//! providers on offer, and the current step of a journey shown again (a reload, the
//! language toggle, "choose another company").

use super::{JourneyEngine, Outcome, Refusal};
use crate::identity_provider::lifecycle::Availability;
use crate::identity_provider::IdentityProvider;
use crate::journey::{Journey, JourneyId, JourneyState};

/// What every journey page needs: its journey, the journey's anti-CSRF token for the
/// page's forms, and the service's name.
#[derive(Debug, Clone)]
pub(crate) struct StepPage {
    pub(crate) journey: JourneyId,
    pub(crate) csrf: String,
    pub(crate) rp_name: String,
}

/// An identity provider as the picker shows it.
#[derive(Debug, Clone)]
pub(crate) struct IdpChoice {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) description: Option<String>,
    pub(crate) description_cy: Option<String>,
    pub(crate) availability: Availability,
}

impl IdpChoice {
    fn of(idp: &IdentityProvider, availability: Availability) -> Self {
        Self {
            id: idp.settings.id.clone(),
            name: idp.settings.name.clone(),
            description: idp.settings.description.clone(),
            description_cy: idp.settings.description_cy.clone(),
            availability,
        }
    }
}

/// Which page of a journey a GET asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum View {
    /// Whatever the journey's current step shows.
    Current,
    /// The picker, also after an identity provider failed ("choose another company").
    Choose,
    /// What to do without an account at any of the companies.
    NoAccount,
}

impl JourneyEngine<'_> {
    pub(super) fn page(&self, journey: &Journey) -> StepPage {
        let rp_name = self
            .journeys
            .op
            .relying_party(journey.request.client_id.as_str())
            .map(|rp| rp.settings.name.clone())
            .unwrap_or_default();
        StepPage {
            journey: journey.id.clone(),
            csrf: journey.csrf.clone(),
            rp_name,
        }
    }

    /// The choice of `idp`, by id (an IdP no longer configured shows as its id).
    pub(super) fn choice(&self, idp: &str) -> IdpChoice {
        match self.journeys.idps.get(idp) {
            Some(idp) => IdpChoice::of(&idp, Availability::Open),
            None => IdpChoice {
                id: idp.to_owned(),
                name: idp.to_owned(),
                description: None,
                description_cy: None,
                availability: Availability::Open,
            },
        }
    }

    /// The picker: the identity providers that may serve this journey now (certified for
    /// its level, in the scheme, onboarded for its service), those that cannot be used
    /// right now shown as such.
    pub(super) fn picker(&self, journey: &Journey, unchosen: bool) -> Outcome {
        let request = &journey.request;
        let idps = self
            .journeys
            .idps
            .offers(
                &request.minimum_level,
                request.client_id.as_str(),
                crate::clock::utc(self.now),
            )
            .into_iter()
            .map(|offer| IdpChoice::of(&offer.idp, offer.availability))
            .collect();
        Outcome::ChooseIdp {
            page: self.page(journey),
            idps,
            unchosen,
        }
    }

    /// The page `view` of journey `id` in this `browser`, changing nothing: a journey
    /// that expired shows so, one that finished is gone.
    pub(crate) async fn show(
        &self,
        browser: Option<&str>,
        id: &JourneyId,
        view: View,
    ) -> Result<Outcome, Refusal> {
        let browser = browser.ok_or(Refusal::NoJourney)?;
        let journey = self
            .journeys
            .store
            .load(id)
            .await
            .map_err(|_| Refusal::Unavailable)?
            .filter(|journey| super::same_browser(journey, Some(browser)))
            .ok_or(Refusal::NoJourney)?;
        if journey.state.is_finished() {
            return Err(Refusal::NoJourney);
        }
        if journey.is_expired(self.now) {
            return Ok(Outcome::TimedOut(self.page(&journey)));
        }
        Ok(match (&journey.state, view) {
            (_, View::NoAccount) if journey.is_choosing() => {
                Outcome::NoAccount(self.page(&journey))
            }
            (JourneyState::IdpFailed { idp, reason }, View::Current) => Outcome::IdpProblem {
                page: self.page(&journey),
                idp: self.choice(idp),
                unavailable: *reason == crate::reason::Reason::IdpUnavailable,
            },
            (JourneyState::Cycle3Asked { attribute, .. }, _) => Outcome::AskCycle3 {
                page: self.page(&journey),
                attribute: attribute.clone(),
                invalid_answer: None,
            },
            _ if journey.is_choosing() => self.picker(&journey, false),
            // Between the identity provider's return and the answer to the RP.
            _ => return Err(Refusal::NoJourney),
        })
    }
}
