//! The citizen's steps at the hub over HTTP: choose an IdP, cancel, come back from it,
//! answer cycle 3. Each handler reads the browser's session cookie and the form or
//! query, runs the step in the journey engine, and turns its outcome into a response.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::{browser_session, now};
use crate::journey::engine::Journeys;
use crate::journey::engine::{
    Cycle3Answer, IdpResponse, JourneyEngine, JourneyForm, Outcome, Refusal,
};
use crate::web_edge::error_pages::{see_other, PageError};
use crate::web_edge::pages::{cycle3_wording, html, Cycle3};

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

/// The response for a step's outcome.
pub(crate) fn respond(outcome: Result<Outcome, Refusal>) -> Result<HttpResponse, PageError> {
    match outcome? {
        Outcome::Redirect(url) => Ok(see_other(url.as_str())),
        Outcome::ChooseIdp => Err(PageError::BadRequest),
        Outcome::AskCycle3 {
            journey,
            csrf,
            attribute,
            invalid_answer,
        } => {
            let (label, hint) = cycle3_wording(&attribute);
            let error = invalid_answer.then(|| format!("Enter a valid {}", label.to_lowercase()));
            let status = if invalid_answer {
                StatusCode::UNPROCESSABLE_ENTITY
            } else {
                StatusCode::OK
            };
            let page = Cycle3 {
                journey: &journey,
                csrf: &csrf,
                label,
                hint,
                error: error.as_deref(),
            };
            Ok(html(status, &page))
        }
        Outcome::Refused(refusal) => Err(refusal.into()),
    }
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
    respond(
        engine
            .choose_idp(form.form(browser.as_deref()), form.idp.as_deref())
            .await,
    )
}

/// POST /journey/cancel (the picker's cancel): back to the RP with `access_denied` /
/// `user_cancelled`, described as a cancel at the hub.
pub(crate) async fn cancel(
    journeys: web::Data<Journeys>,
    req: HttpRequest,
    form: web::Form<JourneyFormFields>,
) -> Result<HttpResponse, PageError> {
    let browser = browser_session(&req);
    let engine = JourneyEngine::new(&journeys, now());
    respond(engine.cancel(form.form(browser.as_deref())).await)
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
    respond(
        JourneyEngine::new(&journeys, now())
            .idp_returned(response)
            .await,
    )
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
    respond(
        engine
            .answer_cycle3(form.form(browser.as_deref()), answer)
            .await,
    )
}
