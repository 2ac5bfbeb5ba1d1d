//! A virtual user: a browser (own cookie jar, redirects followed by hand so each hop is
//! timed and the RP's redirect URI is intercepted rather than requested) plus the RP's
//! back channel (token, userinfo).

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::LOCATION;
use reqwest::{RequestBuilder, StatusCode};
use serde::Deserialize;
use url::Url;

use crate::authorization::{
    is_redirect_uri, AuthorizationRequest, AuthorizationResponse, Endpoints,
};
use crate::config::{Flow, LoadConfig};
use crate::cookie_jar::FreshJar;
use crate::form::Form;
use crate::id_token::IdTokenCheck;
use crate::step::{Failure, Step};

/// What every virtual user of a run shares (read only).
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: LoadConfig,
    pub(crate) endpoints: Endpoints,
    pub(crate) id_token_check: Option<IdTokenCheck>,
}

/// Where a redirect must lead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Landing {
    /// Somewhere other than the RP: the journey goes on.
    Onward,
    /// The RP's redirect URI, with the authorization response.
    Rp,
    /// Either: an OP may skip a consent it already holds.
    Either,
}

/// A response read to its end.
struct Answer {
    /// The URL requested (redirects are never followed by the client).
    url: Url,
    status: StatusCode,
    /// Resolved against `url`.
    location: Option<Url>,
    body: Vec<u8>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: Option<String>,
    id_token: Option<String>,
}

#[derive(Deserialize)]
struct OAuthError {
    error: String,
}

#[derive(Deserialize)]
struct Userinfo {
    sub: Option<String>,
}

#[derive(Debug)]
pub(crate) struct VirtualUser {
    shared: Arc<Shared>,
    /// The browser: cookies, never follows redirects itself.
    browser: reqwest::Client,
    cookies: Arc<FreshJar>,
    /// The RP's server-side client: no cookies.
    rp: reqwest::Client,
    /// Latencies of the current journey's successful steps.
    steps: Vec<(Step, Duration)>,
}

impl VirtualUser {
    pub(crate) fn new(shared: Arc<Shared>) -> Result<Self, reqwest::Error> {
        let timeout = shared.config.request_timeout;
        let client = || {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(timeout)
                .connect_timeout(timeout)
                .tcp_nodelay(true)
        };
        let cookies = Arc::new(FreshJar::default());
        Ok(Self {
            browser: client().cookie_provider(Arc::clone(&cookies)).build()?,
            cookies,
            rp: client().build()?,
            shared,
            steps: Vec::with_capacity(Step::COUNT),
        })
    }

    /// The successful steps of the last journey, with their latencies.
    pub(crate) fn steps(&self) -> &[(Step, Duration)] {
        &self.steps
    }

    /// Runs one complete journey, as a new citizen (empty cookie jar); returns how it
    /// ended and how long it took.
    pub(crate) async fn journey(&mut self) -> (Result<(), Failure>, Duration) {
        let started = self.new_citizen();
        let outcome = match self.shared.config.flow {
            Flow::Hub => self.hub_journey().await,
            Flow::OidcProvider => self.oidc_provider_flow().await,
        };
        (outcome, started.elapsed())
    }

    /// Starts a hub journey as a new citizen and leaves it at the IdP's door: authorize ->
    /// picker -> choose the IdP, whose redirect is not followed. The hub keeps the journey
    /// waiting for the IdP's callback, as it does while a citizen logs in there; returns
    /// how that ended and how long it took.
    pub(crate) async fn park(&mut self) -> (Result<(), Failure>, Duration) {
        let started = self.new_citizen();
        let shared = Arc::clone(&self.shared);
        let request = AuthorizationRequest::new(&shared.config, &shared.endpoints);
        let outcome = self.choose_idp(&request).await.map(drop);
        (outcome, started.elapsed())
    }

    /// Forgets the last journey (its steps, the browser's cookies); returns the new one's
    /// start.
    fn new_citizen(&mut self) -> Instant {
        self.steps.clear();
        self.cookies.empty();
        Instant::now()
    }

    /// authorize -> picker -> IdP login page -> IdP login -> hub callback (matching) ->
    /// code at the RP -> token -> userinfo.
    async fn hub_journey(&mut self) -> Result<(), Failure> {
        let shared = Arc::clone(&self.shared);
        let config = &shared.config;
        let request = AuthorizationRequest::new(config, &shared.endpoints);
        let at_idp = self.choose_idp(&request).await?;

        let (login_url, login) = self
            .page(Step::IdpLoginPage, self.browser.get(at_idp))
            .await?;
        let form = Form::find(&login, "/login")
            .ok_or_else(|| Failure::new(Step::IdpLoginPage, "no_login_form"))?;
        if !form.offers("subject", &config.person) {
            return Err(Failure::new(Step::IdpLoginPage, "unknown_person"));
        }
        let action = form_action(Step::IdpLoginPage, &login_url, &form)?;
        let post = self
            .browser
            .post(action)
            .form(&form.fields(&[("simulate", "normal"), ("subject", &config.person)]));
        let callback = self.redirect(Step::IdpLogin, post, Landing::Onward).await?;

        let get = self.browser.get(callback);
        let at_rp = self.redirect(Step::Callback, get, Landing::Rp).await?;
        let code = self.code(Step::Callback, &at_rp, &request)?;
        self.redeem(&code, &request).await
    }

    /// The hub's half before the IdP: authorize -> picker -> POST the chosen IdP; returns
    /// the IdP's authorization URL the hub redirected to.
    async fn choose_idp(&mut self, request: &AuthorizationRequest) -> Result<Url, Failure> {
        let shared = Arc::clone(&self.shared);
        let config = &shared.config;
        let get = self.browser.get(request.url.clone());
        let (picker_url, picker) = self.page(Step::Authorize, get).await?;
        let form = Form::find(&picker, "/journey/idp")
            .ok_or_else(|| Failure::new(Step::Authorize, "no_picker_form"))?;
        if !form.offers("idp", &config.idp) {
            return Err(Failure::new(Step::Authorize, "idp_not_offered"));
        }
        let action = form_action(Step::Authorize, &picker_url, &form)?;
        let post = self
            .browser
            .post(action)
            .form(&form.fields(&[("idp", &config.idp)]));
        self.redirect(Step::ChooseIdp, post, Landing::Onward).await
    }

    /// authorize -> login interaction -> (consent interaction) -> code at the RP -> token
    /// -> userinfo, as `tests/interop/op.mjs` serves them.
    async fn oidc_provider_flow(&mut self) -> Result<(), Failure> {
        let shared = Arc::clone(&self.shared);
        let config = &shared.config;
        let request = AuthorizationRequest::new(config, &shared.endpoints);

        let get = self.browser.get(request.url.clone());
        let interaction = self.redirect(Step::Authorize, get, Landing::Onward).await?;

        let (login_url, login) = self
            .page(Step::LoginPage, self.browser.get(interaction))
            .await?;
        let form = Form::find(&login, "/login")
            .ok_or_else(|| Failure::new(Step::LoginPage, "no_login_form"))?;
        let action = form_action(Step::LoginPage, &login_url, &form)?;
        let post = self
            .browser
            .post(action)
            .form(&form.fields(&[("login", &config.person)]));
        let resume = self.redirect(Step::Login, post, Landing::Onward).await?;

        let get = self.browser.get(resume);
        let mut next = self
            .redirect(Step::LoginResume, get, Landing::Either)
            .await?;
        let mut last = Step::LoginResume;
        if !is_redirect_uri(&next, &config.redirect_uri) {
            let (consent_url, consent) =
                self.page(Step::ConsentPage, self.browser.get(next)).await?;
            let form = Form::find(&consent, "/confirm")
                .ok_or_else(|| Failure::new(Step::ConsentPage, "no_consent_form"))?;
            let action = form_action(Step::ConsentPage, &consent_url, &form)?;
            let post = self.browser.post(action).form(&form.fields(&[]));
            let resume = self.redirect(Step::Consent, post, Landing::Onward).await?;
            let get = self.browser.get(resume);
            next = self.redirect(Step::ConsentResume, get, Landing::Rp).await?;
            last = Step::ConsentResume;
        }
        let code = self.code(last, &next, &request)?;
        self.redeem(&code, &request).await
    }

    /// The RP's half: the code for tokens (ID token present, optionally verified), then
    /// userinfo with the access token.
    async fn redeem(&mut self, code: &str, request: &AuthorizationRequest) -> Result<(), Failure> {
        let shared = Arc::clone(&self.shared);
        let config = &shared.config;
        let post = self
            .rp
            .post(shared.endpoints.token_endpoint.clone())
            .basic_auth(
                form_encoded(&config.client_id),
                Some(form_encoded(&config.client_secret)),
            )
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", config.redirect_uri.as_str()),
                ("code_verifier", &request.verifier),
            ]);
        let (answer, took) = self.send(Step::Token, post).await?;
        if answer.status != StatusCode::OK {
            return Err(Failure::new(Step::Token, error_detail(&answer)));
        }
        let tokens: TokenResponse = serde_json::from_slice(&answer.body)
            .map_err(|_| Failure::new(Step::Token, "not_json"))?;
        let id_token = tokens
            .id_token
            .ok_or_else(|| Failure::new(Step::Token, "no_id_token"))?;
        let access_token = tokens
            .access_token
            .ok_or_else(|| Failure::new(Step::Token, "no_access_token"))?;
        self.steps.push((Step::Token, took));
        let subject = match &shared.id_token_check {
            Some(check) => Some(
                check
                    .check(&id_token, &request.nonce)
                    .map_err(|detail| Failure::new(Step::Token, detail))?,
            ),
            None => None,
        };

        let get = self
            .rp
            .get(shared.endpoints.userinfo_endpoint.clone())
            .bearer_auth(&access_token);
        let (answer, took) = self.send(Step::Userinfo, get).await?;
        if answer.status != StatusCode::OK {
            return Err(Failure::new(Step::Userinfo, error_detail(&answer)));
        }
        let userinfo: Userinfo = serde_json::from_slice(&answer.body)
            .map_err(|_| Failure::new(Step::Userinfo, "not_json"))?;
        let sub = userinfo
            .sub
            .ok_or_else(|| Failure::new(Step::Userinfo, "no_sub"))?;
        if subject.is_some_and(|s| s != sub) {
            return Err(Failure::new(Step::Userinfo, "sub_mismatch"));
        }
        self.steps.push((Step::Userinfo, took));
        Ok(())
    }

    /// The code from the authorization response at the RP's redirect URI.
    fn code(
        &self,
        step: Step,
        at_rp: &Url,
        request: &AuthorizationRequest,
    ) -> Result<String, Failure> {
        let response = AuthorizationResponse::from_redirect(at_rp);
        if let Some(error) = response.error {
            return Err(Failure::new(step, error));
        }
        if response.state.as_deref() != Some(request.state.as_str()) {
            return Err(Failure::new(step, "state_mismatch"));
        }
        if response
            .iss
            .as_deref()
            .is_some_and(|iss| iss != self.shared.endpoints.issuer)
        {
            return Err(Failure::new(step, "iss_mismatch"));
        }
        response.code.ok_or_else(|| Failure::new(step, "no_code"))
    }

    /// Sends `request` and reads the whole response.
    async fn send(
        &self,
        step: Step,
        request: RequestBuilder,
    ) -> Result<(Answer, Duration), Failure> {
        let started = Instant::now();
        let response = request
            .send()
            .await
            .map_err(|e| Failure::transport(step, &e))?;
        let url = response.url().clone();
        let status = response.status();
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|l| l.to_str().ok())
            .and_then(|l| response.url().join(l).ok());
        let body = response
            .bytes()
            .await
            .map_err(|e| Failure::transport(step, &e))?
            .to_vec();
        Ok((
            Answer {
                url,
                status,
                location,
                body,
            },
            started.elapsed(),
        ))
    }

    /// A step that must answer 200 with a page: the page's URL and text.
    async fn page(
        &mut self,
        step: Step,
        request: RequestBuilder,
    ) -> Result<(Url, String), Failure> {
        let (answer, took) = self.send(step, request).await?;
        if answer.status != StatusCode::OK {
            return Err(Failure::new(step, self.unexpected(&answer)));
        }
        self.steps.push((step, took));
        let page = String::from_utf8_lossy(&answer.body).into_owned();
        Ok((answer.url, page))
    }

    /// A step that must answer with a redirect to `landing`: where it leads.
    async fn redirect(
        &mut self,
        step: Step,
        request: RequestBuilder,
        landing: Landing,
    ) -> Result<Url, Failure> {
        let (answer, took) = self.send(step, request).await?;
        if !answer.status.is_redirection() {
            return Err(Failure::new(step, self.unexpected(&answer)));
        }
        let Some(location) = answer.location else {
            return Err(Failure::new(step, "no_location"));
        };
        let at_rp = is_redirect_uri(&location, &self.shared.config.redirect_uri);
        match (landing, at_rp) {
            (Landing::Onward, true) => {
                let response = AuthorizationResponse::from_redirect(&location);
                return Err(Failure::new(
                    step,
                    response
                        .error
                        .unwrap_or_else(|| "early_redirect".to_owned()),
                ));
            }
            (Landing::Rp, false) => return Err(Failure::new(step, "unexpected_redirect")),
            _ => {}
        }
        self.steps.push((step, took));
        Ok(location)
    }

    /// The detail for an answer the step did not expect: an OIDC error sent to the RP, or
    /// the status code.
    fn unexpected(&self, answer: &Answer) -> String {
        answer
            .location
            .as_ref()
            .filter(|l| is_redirect_uri(l, &self.shared.config.redirect_uri))
            .and_then(|l| AuthorizationResponse::from_redirect(l).error)
            .unwrap_or_else(|| answer.status.as_str().to_owned())
    }
}

/// The form's action as an absolute URL.
fn form_action(step: Step, page_url: &Url, form: &Form) -> Result<Url, Failure> {
    page_url
        .join(&form.action)
        .map_err(|_| Failure::new(step, "bad_form_action"))
}

/// An error response's OAuth `error`, else its status code.
fn error_detail(answer: &Answer) -> String {
    serde_json::from_slice::<OAuthError>(&answer.body)
        .map(|e| e.error)
        .unwrap_or_else(|_| answer.status.as_str().to_owned())
}

/// RFC 6749 2.3.1: client id and secret are form-encoded before HTTP Basic.
fn form_encoded(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}
