//! A journey step's outcome as the citizen's browser gets it: a redirect, or the page of
//! the step in the citizen's language.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use url::Url;

use super::error_pages::{see_other, PageError};
use super::language::Lang;
use super::pages::{
    cycle3_messages, html, journey_address, journey_page, Cycle3, IdpProblem, NoAccount, Page,
    Picker, PickerEntry, TimedOut, UnavailableEntry,
};
use super::{lasting_cookie, secure_cookies};
use crate::identity_provider::lifecycle::Availability;
use crate::journey::engine::{IdpChoice, Outcome, Refusal, StepPage};

/// The cookie naming the identity provider this browser chose last, for the picker's
/// "you used this company last time".
pub(crate) const LAST_IDP_COOKIE: &str = "hub_last_idp";

/// The response for a step's outcome, in the request's language.
pub(crate) fn respond(
    req: &HttpRequest,
    outcome: Result<Outcome, Refusal>,
) -> Result<HttpResponse, PageError> {
    respond_in(req, Lang::of(req, None), outcome)
}

/// The response for a step's outcome, in `lang`.
pub(crate) fn respond_in(
    req: &HttpRequest,
    lang: Lang,
    outcome: Result<Outcome, Refusal>,
) -> Result<HttpResponse, PageError> {
    let page = |step: &StepPage| Page::new(lang, journey_page(step.journey.as_str()));
    Ok(match outcome? {
        Outcome::Redirect(url) => see_other(url.as_str()),
        Outcome::ToIdp { url, idp } => to_idp(req, &url, idp),
        Outcome::ChooseIdp {
            page: step,
            idps,
            unchosen,
        } => picker(req, lang, &step, &idps, unchosen),
        Outcome::NoAccount(step) => {
            let here = journey_address("/journey/no-account", step.journey.as_str());
            let no_account = NoAccount {
                page: Page::new(lang, here),
                rp_name: &step.rp_name,
                journey: step.journey.as_str(),
                csrf: &step.csrf,
            };
            html(StatusCode::OK, &no_account)
        }
        Outcome::AskCycle3 {
            page: step,
            attribute,
            invalid_answer,
        } => {
            let invalid = invalid_answer.is_some();
            let question = Cycle3 {
                page: page(&step).with_error(invalid),
                journey: step.journey.as_str(),
                csrf: &step.csrf,
                attribute: cycle3_messages(&attribute),
                value: invalid_answer.as_deref().unwrap_or_default(),
            };
            html(status(invalid), &question)
        }
        Outcome::IdpProblem {
            page: step,
            idp,
            unavailable,
        } => {
            let problem = IdpProblem {
                page: page(&step),
                rp_name: &step.rp_name,
                journey: step.journey.as_str(),
                csrf: &step.csrf,
                idp_id: &idp.id,
                idp_name: &idp.name,
                unavailable,
            };
            html(StatusCode::OK, &problem)
        }
        Outcome::TimedOut(step) => {
            let timed_out = TimedOut {
                page: page(&step),
                rp_name: &step.rp_name,
                journey: step.journey.as_str(),
                csrf: &step.csrf,
            };
            html(StatusCode::OK, &timed_out)
        }
        Outcome::Refused(refusal) => return Err(refusal.into()),
    })
}

/// 422 for a form sent back with an error, as GOV.UK services answer it.
fn status(invalid: bool) -> StatusCode {
    if invalid {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    }
}

/// To the identity provider, remembering it for the picker next time.
fn to_idp(req: &HttpRequest, url: &Url, idp: String) -> HttpResponse {
    let mut response = see_other(url.as_str());
    let _ = response.add_cookie(&lasting_cookie(LAST_IDP_COOKIE, idp, secure_cookies(req)));
    response
}

fn picker(
    req: &HttpRequest,
    lang: Lang,
    step: &StepPage,
    idps: &[IdpChoice],
    unchosen: bool,
) -> HttpResponse {
    let last = req.cookie(LAST_IDP_COOKIE).map(|c| c.value().to_owned());
    let in_lang = |en: &Option<String>, cy: &Option<String>| match lang {
        Lang::Cy => cy.clone().or_else(|| en.clone()),
        Lang::En => en.clone(),
    };
    let (open, closed): (Vec<&IdpChoice>, Vec<&IdpChoice>) = idps
        .iter()
        .partition(|idp| idp.availability.is_selectable());
    let unavailable = closed
        .into_iter()
        .map(|idp| UnavailableEntry {
            name: idp.name.clone(),
            message: match &idp.availability {
                Availability::Unavailable {
                    message,
                    message_cy,
                } => in_lang(message, message_cy),
                _ => None,
            },
        })
        .collect();
    let idps = open
        .into_iter()
        .map(|idp| PickerEntry {
            id: idp.id.clone(),
            name: idp.name.clone(),
            description: in_lang(&idp.description, &idp.description_cy),
            last_used: last.as_deref() == Some(idp.id.as_str()),
            sign_in_only: idp.availability == Availability::SignInOnly,
        })
        .collect();
    // The picker's own address: after an identity provider failed, the journey's current
    // page is the problem page, not the picker.
    let here = format!("{}&step=choose", journey_page(step.journey.as_str()));
    let picker = Picker {
        page: Page::new(lang, here).with_error(unchosen),
        rp_name: &step.rp_name,
        journey: step.journey.as_str(),
        csrf: &step.csrf,
        idps,
        unavailable,
    };
    html(status(unchosen), &picker)
}
