//! The timed steps of a journey and how a failed one is classified.

use std::fmt;

use crate::config::Flow;

/// One timed request (and its response body) of a journey.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    /// RP's authorization request: the hub's picker, or the OP's redirect to its login.
    Authorize,
    /// Hub: POST the picker form, redirected to the IdP.
    ChooseIdp,
    /// Hub: the IdP's login page.
    IdpLoginPage,
    /// Hub: POST the IdP's login form, redirected to the hub's callback.
    IdpLogin,
    /// Hub: the callback from the IdP; the hub redeems, matches and redirects to the RP.
    Callback,
    /// oidc-provider: its login interaction page.
    LoginPage,
    /// oidc-provider: POST the login form.
    Login,
    /// oidc-provider: back at the authorization endpoint after login.
    LoginResume,
    /// oidc-provider: its consent interaction page.
    ConsentPage,
    /// oidc-provider: POST the consent form.
    Consent,
    /// oidc-provider: back at the authorization endpoint after consent.
    ConsentResume,
    /// RP redeems the code.
    Token,
    /// RP reads userinfo with the access token.
    Userinfo,
}

impl Step {
    pub(crate) const COUNT: usize = 13;

    /// The name in reports and error kinds.
    pub fn name(self) -> &'static str {
        match self {
            Step::Authorize => "authorize",
            Step::ChooseIdp => "choose_idp",
            Step::IdpLoginPage => "idp_login_page",
            Step::IdpLogin => "idp_login",
            Step::Callback => "callback",
            Step::LoginPage => "login_page",
            Step::Login => "login",
            Step::LoginResume => "login_resume",
            Step::ConsentPage => "consent_page",
            Step::Consent => "consent",
            Step::ConsentResume => "consent_resume",
            Step::Token => "token",
            Step::Userinfo => "userinfo",
        }
    }

    /// Whether the OP under test serves this step: every step but the demo IdP's own pages.
    /// A journey's latency added by the OP is the sum of these steps (the hub's callback
    /// counts whole, its back-channel calls to the IdP included).
    pub fn served_by_op(self) -> bool {
        !matches!(self, Step::IdpLoginPage | Step::IdpLogin)
    }

    /// Dense index for per-step arrays.
    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// The steps of `flow` in journey order.
    pub fn of(flow: Flow) -> &'static [Step] {
        match flow {
            Flow::Hub => &[
                Step::Authorize,
                Step::ChooseIdp,
                Step::IdpLoginPage,
                Step::IdpLogin,
                Step::Callback,
                Step::Token,
                Step::Userinfo,
            ],
            Flow::OidcProvider => &[
                Step::Authorize,
                Step::LoginPage,
                Step::Login,
                Step::LoginResume,
                Step::ConsentPage,
                Step::Consent,
                Step::ConsentResume,
                Step::Token,
                Step::Userinfo,
            ],
        }
    }
}

/// Why a journey did not complete: the step and what went wrong there (an HTTP status, an
/// OAuth `error` code, `connect`, `timeout`, or a missing field). Its display is the error
/// kind counted in reports, e.g. `callback:503` or `token:invalid_grant`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub step: Step,
    pub detail: String,
}

impl Failure {
    pub(crate) fn new(step: Step, detail: impl Into<String>) -> Self {
        Self {
            step,
            detail: detail.into(),
        }
    }

    /// Classifies a transport error: no status, so what failed.
    pub(crate) fn transport(step: Step, error: &reqwest::Error) -> Self {
        let detail = if error.is_timeout() {
            "timeout"
        } else if error.is_connect() {
            "connect"
        } else if error.is_body() || error.is_decode() {
            "body"
        } else {
            "request"
        };
        Self::new(step, detail)
    }

    /// Whether the server could not be reached at all (the virtual user backs off).
    pub(crate) fn is_connect(&self) -> bool {
        self.detail == "connect"
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.step.name(), self.detail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_are_dense_and_names_unique() {
        let all = [Flow::Hub, Flow::OidcProvider]
            .iter()
            .flat_map(|f| Step::of(*f).iter().copied())
            .collect::<Vec<_>>();
        for step in &all {
            assert!(step.index() < Step::COUNT);
        }
        let mut names: Vec<_> = all.iter().map(|s| s.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Step::COUNT);
    }

    #[test]
    fn only_the_identity_providers_pages_are_not_the_ops() {
        let hub: Vec<_> = Step::of(Flow::Hub)
            .iter()
            .filter(|s| s.served_by_op())
            .map(|s| s.name())
            .collect();
        assert_eq!(
            hub,
            ["authorize", "choose_idp", "callback", "token", "userinfo"]
        );
        assert!(Step::of(Flow::OidcProvider)
            .iter()
            .all(|s| s.served_by_op()));
    }

    #[test]
    fn a_failure_displays_as_its_kind() {
        assert_eq!(
            Failure::new(Step::Token, "invalid_grant").to_string(),
            "token:invalid_grant"
        );
    }
}
