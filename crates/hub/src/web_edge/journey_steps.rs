//! The citizen's steps at the hub over HTTP: choose an IdP, cancel, come back from it,
//! answer cycle 3. Each handler reads the browser's session cookie and the form or
//! query, runs the step in the journey engine, and turns its outcome into a response.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::journey_pages::respond;
use super::{browser_session, now};
use crate::journey::engine::{
    Cycle3Answer, IdpResponse, JourneyEngine, JourneyForm, Journeys, Refusal, View,
};
use crate::journey::JourneyId;
use crate::web_edge::error_pages::PageError;

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
