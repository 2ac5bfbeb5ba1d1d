//! The citizen's steps at the hub: choose an IdP, come back from it, answer cycle 3.
//!
//! Every handler loads the journey named in its form (or by the IdP's `state`), checks it
//! belongs to this browser, then attempts one state transition.

use std::time::Instant;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::{browser_session, now};
use crate::app::Hub;
use crate::failure::{see_other, PageError};
use crate::journey::{Journey, JourneyState, VerifiedIdentity};
use crate::journeys;
use crate::matching_step::{self, Next};
use crate::pages::{cycle3_wording, html, Cycle3};
use crate::reason::Reason;
use crate::upstream::UpstreamError;
use audit::EventType;

/// Fields common to the hub's journey forms.
#[derive(Debug, Deserialize)]
pub(crate) struct JourneyForm {
    journey: String,
    csrf: String,
    #[serde(default)]
    idp: Option<String>,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    action: Option<String>,
}

/// Loads the journey a form refers to and checks the browser and the CSRF token.
async fn journey_for_form(
    hub: &Hub,
    req: &HttpRequest,
    form: &JourneyForm,
) -> Result<Journey, PageError> {
    let browser = browser_session(req).ok_or(PageError::NoJourney)?;
    let journey = journeys::load(hub, &form.journey)
        .await
        .map_err(|_| PageError::Unavailable)?
        .ok_or(PageError::NoJourney)?;
    if !token::secrets_equal(journey.browser.as_bytes(), browser.as_bytes())
        || !token::secrets_equal(journey.csrf.as_bytes(), form.csrf.as_bytes())
    {
        let rp = journey.request.client_id.clone();
        hub.audit
            .rejected(Some(&rp), Some(&journey.id), "csrf")
            .await;
        return Err(PageError::BadCsrf);
    }
    Ok(journey)
}

/// Sends the browser to `idp_id` for this journey.
pub(crate) async fn send_to_idp(hub: &Hub, journey: &mut Journey, idp_id: &str) -> HttpResponse {
    let Some(idp) = hub.identity_provider(idp_id) else {
        return actix_web::ResponseError::error_response(&PageError::BadRequest);
    };
    let level = journey.request.minimum_level.to_string();
    let started = Instant::now();
    let request = idp
        .authorization_url(&hub.http, &hub.idp_callback_url(), &level)
        .await;
    let failure = request.as_ref().err().map(UpstreamError::kind);
    hub.metrics
        .idp_call(idp_id, "authorization_request", started, failure);
    let (url, upstream) = match request {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(error = %e, idp = idp_id, "identity provider unavailable");
            return journeys::fail(hub, journey, Reason::IdpUnavailable).await;
        }
    };
    let state = upstream.state.clone();
    if journey.select_idp(upstream).is_err() {
        return journeys::fail(hub, journey, Reason::JourneyFinished).await;
    }
    // The stored journey and the log entry do not depend on each other: both are
    // awaited at once, and the browser goes on only if both are written.
    let selected = hub.audit.journey_event(EventType::IdpSelected, journey);
    let (saved, logged) = tokio::join!(
        journeys::save_with_upstream_state(hub, journey, &state),
        hub.audit.record(selected),
    );
    if let Err(e) = saved {
        tracing::error!(error = %e, "session store unavailable");
        return journeys::fail(hub, journey, Reason::HubUnavailable).await;
    }
    if logged.is_err() {
        return journeys::fail(hub, journey, Reason::HubUnavailable).await;
    }
    tracing::debug!(journey = %journey.id, idp = idp_id, "sent to identity provider");
    see_other(url.as_str())
}

/// POST /journey/idp: the picker's choice.
pub(crate) async fn choose_idp(
    hub: web::Data<Hub>,
    req: HttpRequest,
    form: web::Form<JourneyForm>,
) -> Result<HttpResponse, PageError> {
    let mut journey = journey_for_form(&hub, &req, &form).await?;
    if journey.is_expired(now()) {
        return Ok(journeys::fail(&hub, &mut journey, Reason::JourneyExpired).await);
    }
    let eligible = super::authorize::eligible_idps(&hub, &journey.request);
    let idp_id = form
        .idp
        .as_deref()
        .filter(|id| eligible.iter().any(|i| i.settings.id == *id))
        .ok_or(PageError::BadRequest)?;
    Ok(send_to_idp(&hub, &mut journey, idp_id).await)
}

/// POST /journey/cancel (the picker's cancel): back to the RP with `access_denied` /
/// `user_cancelled`, described as a cancel at the hub.
pub(crate) async fn cancel(
    hub: web::Data<Hub>,
    req: HttpRequest,
    form: web::Form<JourneyForm>,
) -> Result<HttpResponse, PageError> {
    let mut journey = journey_for_form(&hub, &req, &form).await?;
    let reason = if journey.state.is_finished() {
        Reason::JourneyFinished
    } else {
        Reason::UserCancelledAtHub
    };
    Ok(journeys::fail(&hub, &mut journey, reason).await)
}

/// The IdP's authorization response.
#[derive(Debug, Deserialize)]
pub(crate) struct CallbackParams {
    state: Option<String>,
    code: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
    iss: Option<String>,
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

/// GET /idp/callback.
pub(crate) async fn idp_callback(
    hub: web::Data<Hub>,
    req: HttpRequest,
    params: web::Query<CallbackParams>,
) -> Result<HttpResponse, PageError> {
    let p = params.into_inner();
    let Some(state) = p.state.as_deref() else {
        hub.audit.rejected(None, None, "idp_state_missing").await;
        return Err(PageError::UnknownState);
    };
    let journey = journeys::take_by_upstream_state(&hub, state)
        .await
        .map_err(|_| PageError::Unavailable)?;
    let Some(mut journey) = journey else {
        hub.audit.rejected(None, None, "idp_state_unknown").await;
        return Err(PageError::UnknownState);
    };
    let _deferring = hub.audit.deferral_scope(&journey);
    // The state was issued to another browser: a forged or injected response (CSRF).
    let same_browser = browser_session(&req)
        .is_some_and(|b| token::secrets_equal(journey.browser.as_bytes(), b.as_bytes()));
    if !same_browser {
        tracing::warn!(journey = %journey.id, "identity provider response in another browser");
        let rp = journey.request.client_id.clone();
        hub.audit
            .rejected(Some(&rp), Some(&journey.id), "idp_state_other_browser")
            .await;
        return Err(PageError::UnknownState);
    }
    let Some(upstream) = journey.upstream().filter(|u| u.state == state).cloned() else {
        return Ok(journeys::fail(&hub, &mut journey, Reason::JourneyFinished).await);
    };
    if journey.is_expired(now()) {
        return Ok(journeys::fail(&hub, &mut journey, Reason::JourneyExpired).await);
    }
    let Some(idp) = hub.identity_provider(&upstream.idp_id) else {
        return Ok(journeys::fail(&hub, &mut journey, Reason::IdpError).await);
    };
    if let Err(e) = idp.check_response_issuer(&hub.http, p.iss.as_deref()).await {
        tracing::warn!(journey = %journey.id, idp = %idp.settings.id, error = %e, "identity provider response refused");
        let rp = journey.request.client_id.clone();
        hub.audit
            .rejected(Some(&rp), Some(&journey.id), "idp_issuer_mismatch")
            .await;
        let reason = if matches!(e, UpstreamError::Unavailable(_)) {
            Reason::IdpUnavailable
        } else {
            Reason::IdpError
        };
        return Ok(journeys::fail(&hub, &mut journey, reason).await);
    }
    if let Some(error) = p.error.as_deref() {
        let reason = idp_error_reason(error, p.error_description.as_deref());
        let mut returned = hub.audit.journey_event(EventType::IdpReturned, &journey);
        returned.outcome = Some(reason.code().to_owned());
        let _ = hub.audit.record(returned).await;
        return Ok(journeys::fail(&hub, &mut journey, reason).await);
    }
    let Some(code) = p.code.as_deref() else {
        return Ok(journeys::fail(&hub, &mut journey, Reason::IdpError).await);
    };
    let started = Instant::now();
    let callback = hub.idp_callback_url();
    let redeemed = idp
        .redeem(&hub.http, &callback, code, &upstream, &hub.signing_key)
        .await;
    let failure = redeemed.as_ref().err().map(UpstreamError::kind);
    hub.metrics
        .idp_call(&idp.settings.id, "redeem", started, failure);
    let assertion = match redeemed {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(error = %e, journey = %journey.id, idp = %idp.settings.id, "identity provider response rejected");
            let reason = if matches!(e, UpstreamError::Unavailable(_)) {
                Reason::IdpUnavailable
            } else {
                Reason::IdpError
            };
            return Ok(journeys::fail(&hub, &mut journey, reason).await);
        }
    };
    // The achieved level is what the IdP asserted, capped at what it is certified for.
    let certified = hub.levels.parse(&idp.settings.max_level);
    let asserted = assertion.acr.as_deref().and_then(|a| hub.levels.parse(a));
    let achieved = match (asserted, certified) {
        (Some(a), Some(c)) => Some(if hub.levels.satisfies(&c, &a) { a } else { c }),
        _ => None,
    };
    let Some(level) = achieved.filter(|l| hub.levels.satisfies(l, &journey.request.minimum_level))
    else {
        return Ok(journeys::fail(&hub, &mut journey, Reason::LevelTooLow).await);
    };
    let identity = VerifiedIdentity {
        idp_id: idp.settings.id.clone(),
        idp_subject: assertion.subject,
        level,
        auth_time: assertion.auth_time.unwrap_or_else(now),
        dataset: assertion.dataset,
    };
    if journey.idp_returned(identity).is_err() {
        return Ok(journeys::fail(&hub, &mut journey, Reason::JourneyFinished).await);
    }
    let mut returned = hub.audit.journey_event(EventType::IdpReturned, &journey);
    returned.outcome = Some("success".into());
    // Appended with the matching event (or the failure) that always follows.
    hub.audit.defer(&journey, returned);
    tracing::debug!(journey = %journey.id, idp = %idp.settings.id, "identity provider returned");
    Ok(run_matching(&hub, &mut journey).await)
}

/// idp_returned -> matching -> (completed | cycle3_asked | failed).
async fn run_matching(hub: &Hub, journey: &mut Journey) -> HttpResponse {
    let Some(rp) = hub.relying_parties.get(&journey.request.client_id) else {
        return journeys::fail(hub, journey, Reason::HubUnavailable).await;
    };
    let identity: VerifiedIdentity = match journey.start_matching() {
        Ok(i) => i.clone(),
        Err(_) => return journeys::fail(hub, journey, Reason::JourneyFinished).await,
    };
    let next = matching_step::first_attempt(hub, rp, journey, &identity).await;
    proceed(hub, journey, next).await
}

async fn proceed(hub: &Hub, journey: &mut Journey, next: Next) -> HttpResponse {
    match next {
        Next::Complete { claim, link } => journeys::complete(hub, journey, claim, link).await,
        Next::Fail(reason) => journeys::fail(hub, journey, reason).await,
        Next::AskCycle3(attribute) => {
            if journey.ask_cycle3(attribute.clone()).is_err() {
                return journeys::fail(hub, journey, Reason::JourneyFinished).await;
            }
            if journeys::save(hub, journey).await.is_err() {
                return journeys::fail(hub, journey, Reason::HubUnavailable).await;
            }
            let mut asked = hub.audit.journey_event(EventType::Cycle3Asked, journey);
            asked.match_cycle = Some(3);
            asked.outcome = Some(attribute.clone());
            if hub.audit.record(asked).await.is_err() {
                return journeys::fail(hub, journey, Reason::HubUnavailable).await;
            }
            cycle3_page(journey, &attribute, None, StatusCode::OK)
        }
    }
}

fn cycle3_page(
    journey: &Journey,
    attribute: &str,
    error: Option<&str>,
    status: StatusCode,
) -> HttpResponse {
    let (label, hint) = cycle3_wording(attribute);
    html(
        status,
        &Cycle3 {
            journey: &journey.id,
            csrf: &journey.csrf,
            label,
            hint,
            error,
        },
    )
}

/// POST /journey/cycle3: the citizen's answer, or "I don't have this".
pub(crate) async fn answer_cycle3(
    hub: web::Data<Hub>,
    req: HttpRequest,
    form: web::Form<JourneyForm>,
) -> Result<HttpResponse, PageError> {
    let mut journey = journey_for_form(&hub, &req, &form).await?;
    let _deferring = hub.audit.deferral_scope(&journey);
    if journey.is_expired(now()) {
        return Ok(journeys::fail(&hub, &mut journey, Reason::JourneyExpired).await);
    }
    let JourneyState::Cycle3Asked {
        attribute,
        identity,
    } = &journey.state
    else {
        return Ok(journeys::fail(&hub, &mut journey, Reason::JourneyFinished).await);
    };
    let (attribute, identity) = (attribute.clone(), identity.clone());
    let Some(rp) = hub.relying_parties.get(&journey.request.client_id) else {
        return Ok(journeys::fail(&hub, &mut journey, Reason::HubUnavailable).await);
    };
    let skip = form.action.as_deref() == Some("skip");
    let value = form.value.as_deref().unwrap_or("").trim();
    if !skip && matching::normalise_attribute(&attribute, value).is_err() {
        let (label, _) = cycle3_wording(&attribute);
        let message = format!("Enter a valid {}", label.to_lowercase());
        return Ok(cycle3_page(
            &journey,
            &attribute,
            Some(&message),
            StatusCode::UNPROCESSABLE_ENTITY,
        ));
    }
    if journey.cycle3_answered().is_err() {
        return Ok(journeys::fail(&hub, &mut journey, Reason::JourneyFinished).await);
    }
    let mut answered = hub.audit.journey_event(EventType::Cycle3Answered, &journey);
    answered.match_cycle = Some(3);
    answered.outcome = Some(if skip { "declined" } else { "answered" }.into());
    if hub.audit.record(answered).await.is_err() {
        return Ok(journeys::fail(&hub, &mut journey, Reason::HubUnavailable).await);
    }
    let next = if skip {
        tracing::info!(journey = %journey.id, cycle = 3, "cycle-3 question declined");
        matching_step::no_match(rp)
    } else {
        matching_step::cycle3(&hub, rp, &journey, &identity, &attribute, value).await
    };
    Ok(proceed(&hub, &mut journey, next).await)
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
