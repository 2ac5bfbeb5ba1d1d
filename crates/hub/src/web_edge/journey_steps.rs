//! The citizen's steps at the hub over HTTP: choose an IdP, cancel, come back from it,
//! answer cycle 3. Each handler reads the browser's session cookie and the form or
//! query, runs the step in the journey engine, and turns its outcome into a response.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use actix_web::cookie::{Cookie, SameSite};

use super::language::Lang;
use super::pages::{
    cycle3_messages, html, journey_page, Cycle3, IdpProblem, NoAccount, Page, Picker, PickerEntry,
    TimedOut,
};
use super::{browser_session, now, secure_cookies};
use crate::journey::engine::{
    Cycle3Answer, IdpChoice, IdpResponse, JourneyEngine, JourneyForm, Journeys, Outcome, Refusal,
    StepPage, View,
};
use crate::journey::JourneyId;
use crate::web_edge::error_pages::{see_other, PageError};

/// Fields of the hub's journey forms.
#[derive(Debug, Deserialize)]
pub(crate) struct JourneyFormFields {
    journey: String,
    csrf: String,
    #[serde(default)]
    idp: Option<String>,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    action: Option<String>,
}

impl JourneyFormFields {
    fn form<'a>(&'a self, browser: Option<&'a str>) -> JourneyForm<'a> {
        JourneyForm {
            browser,
            journey: &self.journey,
            csrf: &self.csrf,
        }
    }
}

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
    let description = |idp: &IdpChoice| match lang {
        Lang::Cy => idp
            .description_cy
            .clone()
            .or_else(|| idp.description.clone()),
        Lang::En => idp.description.clone(),
    };
    Ok(match outcome? {
        Outcome::Redirect(url) => see_other(url.as_str()),
        Outcome::ToIdp { url, idp } => {
            let mut response = see_other(url.as_str());
            let cookie = Cookie::build(LAST_IDP_COOKIE, idp)
                .path("/")
                .http_only(true)
                .secure(secure_cookies(req))
                .same_site(SameSite::Lax)
                .max_age(actix_web::cookie::time::Duration::days(365))
                .finish();
            let _ = response.add_cookie(&cookie);
            response
        }
        Outcome::ChooseIdp {
            page: step,
            idps,
            unchosen,
        } => {
            let last = req.cookie(LAST_IDP_COOKIE).map(|c| c.value().to_owned());
            let idps = idps
                .iter()
                .map(|idp| PickerEntry {
                    id: idp.id.clone(),
                    name: idp.name.clone(),
                    description: description(idp),
                    last_used: last.as_deref() == Some(idp.id.as_str()),
                })
                .collect();
            let status = if unchosen {
                StatusCode::UNPROCESSABLE_ENTITY
            } else {
                StatusCode::OK
            };
            // The picker's own address: after an identity provider failed, the journey's
            // current page is the problem page, not the picker.
            let here = format!("{}&step=choose", journey_page(step.journey.as_str()));
            let picker = Picker {
                page: Page::new(lang, here).with_error(unchosen),
                rp_name: &step.rp_name,
                journey: step.journey.as_str(),
                csrf: &step.csrf,
                idps,
            };
            html(status, &picker)
        }
        Outcome::NoAccount(step) => {
            let here = format!("/journey/no-account?{}", journey_query(&step));
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
            let status = if invalid_answer.is_some() {
                StatusCode::UNPROCESSABLE_ENTITY
            } else {
                StatusCode::OK
            };
            let question = Cycle3 {
                page: page(&step).with_error(invalid_answer.is_some()),
                journey: step.journey.as_str(),
                csrf: &step.csrf,
                attribute: cycle3_messages(&attribute),
                value: invalid_answer.as_deref().unwrap_or_default(),
            };
            html(status, &question)
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

fn journey_query(step: &StepPage) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("journey", step.journey.as_str())
        .finish()
}

impl From<Refusal> for PageError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::NoJourney => Self::NoJourney,
            Refusal::BadForm => Self::BadCsrf,
            Refusal::UnknownState => Self::UnknownState,
            Refusal::BadRequest => Self::BadRequest,
            Refusal::Unavailable => Self::Unavailable,
            Refusal::BadRedirectUri => Self::BadRedirectUri,
        }
    }
}

/// POST /journey/idp: the picker's choice.
pub(crate) async fn choose_idp(
    journeys: web::Data<Journeys>,
    req: HttpRequest,
    form: web::Form<JourneyFormFields>,
) -> Result<HttpResponse, PageError> {
    let browser = browser_session(&req);
    let engine = JourneyEngine::new(&journeys, now());
    let outcome = engine
        .choose_idp(form.form(browser.as_deref()), form.idp.as_deref())
        .await;
    respond(&req, outcome)
}

/// POST /journey/cancel ("go back to the service"): back to the RP with an OIDC error
/// (`user_cancelled` from the picker, the identity provider's failure after one).
pub(crate) async fn cancel(
    journeys: web::Data<Journeys>,
    req: HttpRequest,
    form: web::Form<JourneyFormFields>,
) -> Result<HttpResponse, PageError> {
    let browser = browser_session(&req);
    let engine = JourneyEngine::new(&journeys, now());
    respond(&req, engine.cancel(form.form(browser.as_deref())).await)
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

/// GET /idp/callback.
pub(crate) async fn idp_callback(
    journeys: web::Data<Journeys>,
    req: HttpRequest,
    params: web::Query<CallbackParams>,
) -> Result<HttpResponse, PageError> {
    let browser = browser_session(&req);
    let response = IdpResponse {
        browser: browser.as_deref(),
        state: params.state.as_deref(),
        code: params.code.as_deref(),
        error: params.error.as_deref(),
        error_description: params.error_description.as_deref(),
        iss: params.iss.as_deref(),
    };
    let outcome = JourneyEngine::new(&journeys, now())
        .idp_returned(response)
        .await;
    respond(&req, outcome)
}

/// POST /journey/cycle3: the citizen's answer, or "I don't have this".
pub(crate) async fn answer_cycle3(
    journeys: web::Data<Journeys>,
    req: HttpRequest,
    form: web::Form<JourneyFormFields>,
) -> Result<HttpResponse, PageError> {
    let browser = browser_session(&req);
    let answer = match form.action.as_deref() {
        Some("skip") => Cycle3Answer::Declined,
        _ => Cycle3Answer::Value(form.value.as_deref().unwrap_or("")),
    };
    let engine = JourneyEngine::new(&journeys, now());
    let outcome = engine
        .answer_cycle3(form.form(browser.as_deref()), answer)
        .await;
    respond(&req, outcome)
}

/// The journey a page shows: `?journey=`, and `step=choose` for the picker.
#[derive(Debug, Deserialize)]
pub(crate) struct JourneyQuery {
    journey: String,
    #[serde(default)]
    step: Option<String>,
}

/// GET /journey: the journey's current page again (a reload, the language toggle), or
/// with `step=choose` the picker ("choose another company").
pub(crate) async fn show(
    journeys: web::Data<Journeys>,
    req: HttpRequest,
    query: web::Query<JourneyQuery>,
) -> Result<HttpResponse, PageError> {
    let view = match query.step.as_deref() {
        Some("choose") => View::Choose,
        _ => View::Current,
    };
    show_view(&journeys, &req, &query.journey, view).await
}

/// GET /journey/no-account: what to do without an account at any of the companies.
pub(crate) async fn no_account(
    journeys: web::Data<Journeys>,
    req: HttpRequest,
    query: web::Query<JourneyQuery>,
) -> Result<HttpResponse, PageError> {
    show_view(&journeys, &req, &query.journey, View::NoAccount).await
}

async fn show_view(
    journeys: &Journeys,
    req: &HttpRequest,
    journey: &str,
    view: View,
) -> Result<HttpResponse, PageError> {
    let browser = browser_session(req);
    let outcome = JourneyEngine::new(journeys, now())
        .show(browser.as_deref(), &JourneyId::from(journey), view)
        .await;
    respond(req, outcome)
}
