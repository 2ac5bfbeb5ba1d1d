//! The journey engine: the whole of each step a citizen takes at the hub. A step loads
//! the journey, checks that it belongs to this browser and has not expired, applies one
//! transition of the state machine ([`super::Journey`]), appends its events to the
//! verification log, saves the journey, and returns what happens next as an [`Outcome`].
//! No HTTP here: the web edge turns outcomes and [`Refusal`]s into responses, and passes
//! in the time.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use audit::{Event, EventType};
use matching::RecordId;
use url::Url;

use super::store::JourneyStore;
use super::{Journey, JourneyId, JourneyState, MatchClaim, MatchStatus, VerifiedIdentity};
use crate::identity_provider::client::IdpClient;
use crate::journey::matching_step::{self, Matcher, Next};
use crate::metrics::Metrics;
use crate::reason::{rp_error_url, Reason};
use crate::relying_party::assertion;
use crate::relying_party::provider::OpenIdProvider;
use crate::verification_log::trail::{AuditTrail, AuditUnavailable};

/// What the journey engine works with: where journeys are kept, the identity providers
/// it sends citizens to, matching, the OP side that issues the final code, and the log.
#[derive(Debug)]
pub(crate) struct Journeys {
    pub(crate) store: JourneyStore,
    pub(crate) idps: IdpClient,
    pub(crate) op: Arc<OpenIdProvider>,
    pub(crate) matcher: Matcher,
    pub(crate) trail: AuditTrail,
    pub(crate) metrics: Metrics,
}

mod idp_response;
mod views;

pub(crate) use views::{IdpChoice, StepPage, View};

/// What the browser sees next.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Go to this URL: the relying party with a code or an error.
    Redirect(Url),
    /// Go to identity provider `idp` at `url`.
    ToIdp { url: Url, idp: String },
    /// The identity-provider picker; `unchosen`: sent without a choice.
    ChooseIdp {
        page: StepPage,
        idps: Vec<IdpChoice>,
        unchosen: bool,
    },
    /// What to do without an account at any of the identity providers.
    NoAccount(StepPage),
    /// The cycle-3 question; `invalid_answer`: what the citizen typed, not valid.
    AskCycle3 {
        page: StepPage,
        attribute: String,
        invalid_answer: Option<String>,
    },
    /// The identity provider failed: try again, choose another, or go back to the RP.
    IdpProblem {
        page: StepPage,
        idp: IdpChoice,
        unavailable: bool,
    },
    /// The journey expired: the citizen goes back to the RP from a page that says so.
    TimedOut(StepPage),
    /// The hub's own page: the journey ended but its redirect URI is unusable.
    Refused(Refusal),
}

/// A step refused on the hub's own page, because the browser cannot be sent back to the
/// relying party (no journey of its own, a forged form or response, a store down).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// No journey of this name in this browser (expired beyond recall, cookies blocked).
    NoJourney,
    /// The form's anti-CSRF token or browser does not match its journey.
    BadForm,
    /// An identity provider response with an unknown, used or foreign `state`.
    UnknownState,
    /// A choice the journey does not offer.
    BadRequest,
    /// The session store could not be read.
    Unavailable,
    /// The journey's redirect URI does not parse (it was validated at `/authorize`).
    BadRedirectUri,
}

/// The hub's anti-forgery check of a journey form: the journey it names, the browser
/// session that sent it and its anti-CSRF token.
#[derive(Debug, Clone, Copy)]
pub(crate) struct JourneyForm<'a> {
    pub(crate) browser: Option<&'a str>,
    pub(crate) journey: &'a str,
    pub(crate) csrf: &'a str,
}

/// The identity provider's authorization response, as it arrived.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IdpResponse<'a> {
    pub(crate) browser: Option<&'a str>,
    pub(crate) state: Option<&'a str>,
    pub(crate) code: Option<&'a str>,
    pub(crate) error: Option<&'a str>,
    pub(crate) error_description: Option<&'a str>,
    pub(crate) iss: Option<&'a str>,
}

/// The citizen's answer to the cycle-3 question.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Cycle3Answer<'a> {
    Value(&'a str),
    /// "I don't have this".
    Declined,
}

/// Runs one journey step against the hub's stores at time `now` (Unix seconds).
#[derive(Debug)]
pub(crate) struct JourneyEngine<'a> {
    journeys: &'a Journeys,
    now: i64,
    /// The step's events not yet appended: each goes into the log with the event that
    /// ends the step (one commit to wait for). Dropped with the step if it never gets
    /// there (its client went away): then the step issued nothing either.
    held: Mutex<Vec<Event>>,
}

impl<'a> JourneyEngine<'a> {
    pub(crate) fn new(journeys: &'a Journeys, now: i64) -> Self {
        Self {
            journeys,
            now,
            held: Mutex::new(Vec::new()),
        }
    }

    fn held(&self) -> MutexGuard<'_, Vec<Event>> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Holds `event` back until the step records its next one. Only for events that are
    /// always followed by another within the step, and that issue nothing themselves.
    fn hold(&self, event: Event) {
        self.held().push(event);
    }

    /// Appends the held events and `event`, in order, and waits until they are durable.
    async fn record(&self, event: Event) -> Result<(), AuditUnavailable> {
        let mut events = std::mem::take(&mut *self.held());
        events.push(event);
        self.journeys.trail.record_all(events).await
    }

    /// A journey accepted at `/authorize`: straight to `idp` (an `idp_hint` the journey
    /// may use), else saved for the picker. Either way its start is in the log.
    pub(crate) async fn start(&self, mut journey: Journey, idp: Option<&str>) -> Outcome {
        let j = self.journeys;
        let started = j.trail.journey_event(EventType::JourneyStarted, &journey);
        if let Some(idp) = idp {
            // Sending the browser on always records an event of the journey (selected or
            // failed): the start goes into the log with it, in one append.
            self.hold(started);
            return self.send_to_idp(&mut journey, idp).await;
        }
        // Neither write needs the other: wait for both at once.
        let (logged, saved) = tokio::join!(j.trail.record(started), j.store.save(&journey));
        if logged.is_err() || saved.is_err() {
            tracing::info!(journey = %journey.id, reason = Reason::HubUnavailable.code(), step = journey.state.name(), "journey failed");
            // The start is in the log (or the log is down): so is the failure.
            if logged.is_ok() {
                let mut failed = j.trail.journey_event(EventType::JourneyFailed, &journey);
                failed.outcome = Some(Reason::HubUnavailable.code().to_owned());
                let _ = j.trail.record(failed).await;
            }
            return match self.back_to_rp(&journey, Reason::HubUnavailable) {
                Ok(url) => Outcome::Redirect(url),
                Err(refusal) => Outcome::Refused(refusal),
            };
        }
        self.picker(&journey, false)
    }

    /// The picker's choice (none: the picker again, with an error).
    pub(crate) async fn choose_idp(
        &self,
        form: JourneyForm<'_>,
        idp: Option<&str>,
    ) -> Result<Outcome, Refusal> {
        let mut journey = self.journey_for_form(form).await?;
        if journey.is_expired(self.now) {
            return Ok(Outcome::TimedOut(self.page(&journey)));
        }
        let Some(idp) = idp else {
            if !journey.is_choosing() {
                return self.fail(&mut journey, Reason::JourneyFinished).await;
            }
            return Ok(self.picker(&journey, true));
        };
        let request = &journey.request;
        let offers = self.journeys.idps.offers(
            &request.minimum_level,
            request.client_id.as_str(),
            crate::clock::utc(self.now),
        );
        match offers.iter().find(|o| o.idp.settings.id == idp) {
            Some(offer) if offer.availability.is_selectable() => {}
            // It became unavailable, or was withdrawn, since the page was shown (the
            // picker, or "try again" after it failed): the picker says what is on offer now.
            _ if journey.is_choosing() => return Ok(self.picker(&journey, false)),
            _ => return Err(Refusal::BadRequest),
        }
        Ok(self.send_to_idp(&mut journey, idp).await)
    }

    /// "Go back to the service": back to the RP with why. From the picker, a cancel at
    /// the hub; after an identity provider failed, its failure; after expiry, the expiry.
    pub(crate) async fn cancel(&self, form: JourneyForm<'_>) -> Result<Outcome, Refusal> {
        let mut journey = self.journey_for_form(form).await?;
        let reason = match &journey.state {
            state if state.is_finished() => Reason::JourneyFinished,
            _ if journey.is_expired(self.now) => Reason::JourneyExpired,
            JourneyState::IdpFailed { reason, .. } => *reason,
            _ => Reason::UserCancelledAtHub,
        };
        self.fail(&mut journey, reason).await
    }

    /// The citizen's answer to the cycle-3 question, or "I don't have this".
    pub(crate) async fn answer_cycle3(
        &self,
        form: JourneyForm<'_>,
        answer: Cycle3Answer<'_>,
    ) -> Result<Outcome, Refusal> {
        let j = self.journeys;
        let mut journey = self.journey_for_form(form).await?;
        if journey.is_expired(self.now) {
            return Ok(Outcome::TimedOut(self.page(&journey)));
        }
        let JourneyState::Cycle3Asked {
            attribute,
            identity,
        } = &journey.state
        else {
            return self.fail(&mut journey, Reason::JourneyFinished).await;
        };
        let (attribute, identity) = (attribute.clone(), identity.clone());
        let Some(rp) = j.op.relying_party(journey.request.client_id.as_str()) else {
            return self.fail(&mut journey, Reason::HubUnavailable).await;
        };
        let value = match answer {
            Cycle3Answer::Value(value) => Some(value.trim()),
            Cycle3Answer::Declined => None,
        };
        if let Some(value) = value {
            if matching::normalise_attribute(&attribute, value).is_err() {
                return Ok(Outcome::AskCycle3 {
                    page: self.page(&journey),
                    attribute,
                    invalid_answer: Some(value.to_owned()),
                });
            }
        }
        if journey.cycle3_answered().is_err() {
            return self.fail(&mut journey, Reason::JourneyFinished).await;
        }
        let mut answered = j.trail.journey_event(EventType::Cycle3Answered, &journey);
        answered.match_cycle = Some(3);
        answered.outcome = Some(
            if value.is_some() {
                "answered"
            } else {
                "declined"
            }
            .into(),
        );
        if self.record(answered).await.is_err() {
            return self.fail(&mut journey, Reason::HubUnavailable).await;
        }
        let mut events = Vec::new();
        let next = match value {
            Some(value) => {
                let journey = &journey;
                let matcher = &j.matcher;
                matching_step::cycle3(
                    matcher,
                    &rp,
                    journey,
                    &mut events,
                    &identity,
                    &attribute,
                    value,
                )
                .await
            }
            None => {
                tracing::info!(journey = %journey.id, cycle = 3, "cycle-3 question declined");
                matching_step::no_match(&rp)
            }
        };
        self.held().extend(events);
        self.proceed(&mut journey, next).await
    }

    /// Loads the journey a form names and checks its browser and anti-CSRF token.
    async fn journey_for_form(&self, form: JourneyForm<'_>) -> Result<Journey, Refusal> {
        let browser = form.browser.ok_or(Refusal::NoJourney)?;
        let journey = self
            .journeys
            .store
            .load(&JourneyId::from(form.journey))
            .await
            .map_err(|_| Refusal::Unavailable)?
            .ok_or(Refusal::NoJourney)?;
        if !same_browser(&journey, Some(browser))
            || !token::secrets_equal(journey.csrf.as_bytes(), form.csrf.as_bytes())
        {
            self.rejected(&journey, "csrf").await;
            return Err(Refusal::BadForm);
        }
        Ok(journey)
    }

    /// Sends the browser to `idp_id` for this journey.
    async fn send_to_idp(&self, journey: &mut Journey, idp_id: &str) -> Outcome {
        let j = self.journeys;
        let Some(idp) = j.idps.get(idp_id) else {
            return self.ended(journey, Reason::IdpError).await;
        };
        let level = &journey.request.minimum_level;
        let (url, upstream) = match j.idps.authorization_request(&idp, level).await {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, idp = idp_id, "identity provider unavailable");
                return self
                    .idp_failed(journey, idp_id, Reason::IdpUnavailable, false)
                    .await;
            }
        };
        let state = upstream.state.clone();
        if journey.select_idp(upstream).is_err() {
            return self.ended(journey, Reason::JourneyFinished).await;
        }
        // The stored journey and the log entry do not depend on each other: both are
        // awaited at once, and the browser goes on only if both are written.
        let selected = j.trail.journey_event(EventType::IdpSelected, journey);
        let (saved, logged) = tokio::join!(
            j.store.save_with_upstream_state(journey, &state),
            self.record(selected),
        );
        if let Err(e) = saved {
            tracing::error!(error = %e, "session store unavailable");
            return self.ended(journey, Reason::HubUnavailable).await;
        }
        if logged.is_err() {
            return self.ended(journey, Reason::HubUnavailable).await;
        }
        tracing::debug!(journey = %journey.id, idp = idp_id, "sent to identity provider");
        Outcome::ToIdp {
            url,
            idp: idp_id.to_owned(),
        }
    }

    /// idp_returned -> matching -> (completed | cycle3_asked | failed).
    async fn run_matching(&self, journey: &mut Journey) -> Result<Outcome, Refusal> {
        let j = self.journeys;
        let Some(rp) = j.op.relying_party(journey.request.client_id.as_str()) else {
            return self.fail(journey, Reason::HubUnavailable).await;
        };
        let identity: VerifiedIdentity = match journey.start_matching() {
            Ok(i) => i.clone(),
            Err(_) => return self.fail(journey, Reason::JourneyFinished).await,
        };
        let mut events = Vec::new();
        let next =
            matching_step::first_attempt(&j.matcher, &rp, journey, &mut events, &identity).await;
        self.held().extend(events);
        self.proceed(journey, next).await
    }

    async fn proceed(&self, journey: &mut Journey, next: Next) -> Result<Outcome, Refusal> {
        let j = self.journeys;
        match next {
            Next::Complete { claim, link } => self.complete(journey, claim, link).await,
            Next::Fail(reason) => self.fail(journey, reason).await,
            Next::AskCycle3(attribute) => {
                if journey.ask_cycle3(attribute.clone()).is_err() {
                    return self.fail(journey, Reason::JourneyFinished).await;
                }
                if j.store.save(journey).await.is_err() {
                    return self.fail(journey, Reason::HubUnavailable).await;
                }
                let mut asked = j.trail.journey_event(EventType::Cycle3Asked, journey);
                asked.match_cycle = Some(3);
                asked.outcome = Some(attribute.clone());
                if self.record(asked).await.is_err() {
                    return self.fail(journey, Reason::HubUnavailable).await;
                }
                Ok(Outcome::AskCycle3 {
                    page: self.page(journey),
                    attribute,
                    invalid_answer: None,
                })
            }
        }
    }

    /// Ends the journey with `reason` (see [`Self::ended`]).
    async fn fail(&self, journey: &mut Journey, reason: Reason) -> Result<Outcome, Refusal> {
        Ok(self.ended(journey, reason).await)
    }

    /// Sends the browser back to the RP with `reason`, marking the journey failed when it
    /// was still under way. A finished journey keeps its state (Back button, replays).
    async fn ended(&self, journey: &mut Journey, reason: Reason) -> Outcome {
        let j = self.journeys;
        tracing::info!(journey = %journey.id, reason = reason.code(), step = journey.state.name(), "journey failed");
        let mut event = j.trail.journey_event(EventType::JourneyFailed, journey);
        event.outcome = Some(reason.code().to_owned());
        if journey.fail(reason).is_ok() {
            j.metrics.journey_ended(reason.code());
            if let Err(e) = j.store.save(journey).await {
                tracing::warn!(error = %e, journey = %journey.id, "could not record failed journey");
            }
        }
        // A failure issues nothing, so it still goes back to the RP if the log is down.
        let _ = self.record(event).await;
        match self.back_to_rp(journey, reason) {
            Ok(url) => Outcome::Redirect(url),
            Err(refusal) => Outcome::Refused(refusal),
        }
    }

    /// Completes the journey: stores the single-use code, logs the assertion (with the
    /// step's held events), and sends the browser to the RP. Fails closed: if the
    /// code, the journey or the log entry cannot be stored, no code leaves the hub.
    /// `link`, a record newly matched, is saved once the decision is in the log, without
    /// holding up the response.
    async fn complete(
        &self,
        journey: &mut Journey,
        outcome: MatchClaim,
        link: Option<RecordId>,
    ) -> Result<Outcome, Refusal> {
        let j = self.journeys;
        let Some(identity) = journey.identity().cloned() else {
            return self.fail(journey, Reason::JourneyFinished).await;
        };
        if journey.complete(outcome.clone()).is_err() {
            return self.fail(journey, Reason::JourneyFinished).await;
        }
        let issued = match assertion::issue_code(&j.op, journey, &identity, &outcome).await {
            Ok(issued) => issued,
            Err(e) => {
                tracing::error!(error = %e, journey = %journey.id, "could not issue code");
                // Logs the failure (with the held events); the journey, already
                // completed in memory, keeps its stored state.
                return self.fail(journey, Reason::HubUnavailable).await;
            }
        };
        if outcome.status == MatchStatus::Created {
            let created = j.trail.journey_event(EventType::AccountCreated, journey);
            self.hold(created);
        }
        let mut assertion = j.trail.journey_event(EventType::AssertionIssued, journey);
        assertion.outcome = Some(outcome.status.as_str().to_owned());
        assertion.subject = Some(issued.sub.to_string());
        if self.record(assertion).await.is_err() {
            assertion::discard_code(&j.op, &issued.code).await;
            return self
                .back_to_rp(journey, Reason::HubUnavailable)
                .map(Outcome::Redirect);
        }
        if let Some(record) = link {
            j.matcher.save_link_behind(journey, &identity, record);
        }
        tracing::info!(journey = %journey.id, status = ?outcome.status, "assertion issued");
        j.metrics.journey_ended(outcome.status.as_str());
        Ok(Outcome::Redirect(issued.url))
    }

    /// The RP's redirect URI with `reason`, leaving the journey as it is.
    fn back_to_rp(&self, journey: &Journey, reason: Reason) -> Result<Url, Refusal> {
        let request = &journey.request;
        rp_error_url(
            &request.redirect_uri,
            request.state.as_deref(),
            &self.journeys.op.issuer,
            reason,
        )
        .ok_or(Refusal::BadRedirectUri)
    }

    async fn rejected(&self, journey: &Journey, outcome: &str) {
        let rp = journey.request.client_id.as_str();
        self.journeys
            .trail
            .rejected(Some(rp), Some(journey.id.as_str()), outcome)
            .await;
    }
}

fn same_browser(journey: &Journey, browser: Option<&str>) -> bool {
    browser.is_some_and(|b| token::secrets_equal(journey.browser.as_bytes(), b.as_bytes()))
}
