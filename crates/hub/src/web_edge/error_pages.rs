//! The hub's own error pages, where it cannot (or must not) send the browser back to the
//! relying party, and the redirect every other outcome becomes.
//!
//! An error becomes a response where the request is out of reach (actix-web's
//! `ResponseError`), so [`localize`] renders it again in the request's language, with a
//! language toggle that shows the same page.

use actix_web::body::BoxBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse};

use super::language::Lang;
use super::pages::{html, without_lang, ErrorPage, Link, Page};
use crate::reason::Reason;

/// A 303 to `url`.
pub(crate) fn see_other(url: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header(("location", url))
        .insert_header(("cache-control", "no-store"))
        .finish()
}

/// Problems the hub answers with its own page, because it cannot (or must not) redirect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PageError {
    #[error("unknown client")]
    UnknownClient,
    #[error("redirect URI not registered")]
    BadRedirectUri,
    #[error("no journey in this browser")]
    NoJourney,
    #[error("unknown or expired sign-in response")]
    UnknownState,
    #[error("form expired")]
    BadCsrf,
    #[error("bad request")]
    BadRequest,
    #[error("temporarily unavailable")]
    Unavailable,
    #[error("too many requests")]
    TooManyRequests,
    #[error("not found")]
    NotFound,
    /// An authorization request refused where no registered redirect URI is known (a
    /// pushed request that is gone, a request object that does not verify).
    #[error("authorization request refused: {}", .0.code())]
    Refused(Reason),
}

/// How an error page reads: status, catalogue ids, reference code, and whether the way
/// forward is to try the same address again (else the start page).
struct Wording {
    status: StatusCode,
    title: &'static str,
    body: &'static str,
    code: &'static str,
    /// The citizen came from a service and should start again there.
    start_again: bool,
    try_again: bool,
}

impl PageError {
    fn wording(self) -> Wording {
        let page = |status, title, body, code, start_again, try_again| Wording {
            status,
            title,
            body,
            code,
            start_again,
            try_again,
        };
        let bad = StatusCode::BAD_REQUEST;
        match self {
            Self::UnknownClient => page(
                bad,
                "error-unknown-client-title",
                "error-unknown-client-body",
                "unknown_client",
                true,
                false,
            ),
            Self::BadRedirectUri => page(
                bad,
                "error-bad-redirect-title",
                "error-bad-redirect-body",
                "invalid_redirect_uri",
                true,
                false,
            ),
            Self::Refused(reason) => page(
                bad,
                "error-refused-title",
                "error-refused-body",
                reason.code(),
                true,
                false,
            ),
            Self::NoJourney => page(
                bad,
                "error-no-journey-title",
                "error-no-journey-body",
                "no_journey",
                true,
                false,
            ),
            Self::UnknownState => page(
                bad,
                "error-unknown-state-title",
                "error-unknown-state-body",
                "unknown_state",
                true,
                false,
            ),
            Self::BadCsrf => page(
                bad,
                "error-bad-form-title",
                "error-bad-form-body",
                "invalid_form",
                true,
                false,
            ),
            Self::BadRequest => page(
                bad,
                "error-bad-request-title",
                "error-bad-request-body",
                "bad_request",
                true,
                false,
            ),
            Self::Unavailable => page(
                StatusCode::SERVICE_UNAVAILABLE,
                "error-unavailable-title",
                "error-unavailable-body",
                "temporarily_unavailable",
                false,
                true,
            ),
            Self::TooManyRequests => page(
                StatusCode::TOO_MANY_REQUESTS,
                "error-too-many-title",
                "error-too-many-body",
                "rate_limited",
                false,
                true,
            ),
            Self::NotFound => page(
                StatusCode::NOT_FOUND,
                "error-not-found-title",
                "error-not-found-body",
                "not_found",
                false,
                false,
            ),
        }
    }

    /// The page in `lang`; `here` is the address that asked for it when it can be asked
    /// for again (a GET), for "Try again" and the language toggle.
    fn render(self, lang: Lang, here: Option<String>) -> HttpResponse {
        let wording = self.wording();
        let page = Page::new(lang, here.clone().unwrap_or_else(|| "/".into()));
        let next = match here.filter(|_| wording.try_again) {
            Some(href) => Link {
                href,
                text: page.t("error-try-again"),
            },
            None => Link {
                href: "/".into(),
                text: page.t("error-go-to-start"),
            },
        };
        let mut response = html(
            wording.status,
            &ErrorPage {
                page,
                title: wording.title,
                body: wording.body,
                code: wording.code.to_owned(),
                start_again: wording.start_again,
                next,
            },
        );
        response.extensions_mut().insert(self);
        response
    }
}

impl actix_web::ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        self.wording().status
    }

    /// In English: [`localize`] renders it again for the request.
    fn error_response(&self) -> HttpResponse {
        self.render(Lang::En, None)
    }
}

/// The address of `req` if a GET asked for it (without `lang`) and it may be linked to
/// again: not a relying party's request or an identity provider's response, whose
/// query the page must not echo (and whose one-time values are spent).
/// Only a path of this site: `//host/..` (or `/\host`) would make a link to another.
fn here(req: &HttpRequest) -> Option<String> {
    let path = req.path();
    let echoes_a_peer = matches!(path, "/authorize" | "/idp/callback");
    let own_path = path.starts_with('/') && !path.starts_with("//") && !path.contains('\\');
    (req.method() == Method::GET && !echoes_a_peer && own_path)
        .then(|| without_lang(path, req.query_string()))
}

/// The middleware: an error page in the request's language. The headers the error's
/// response carried (`Retry-After`, cookies) are kept.
pub(crate) async fn localize(
    req: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let res = next.call(req).await?;
    let Some(error) = res.response().extensions().get::<PageError>().copied() else {
        return Ok(res);
    };
    let lang = Lang::of(res.request(), None);
    let rendered = error.render(lang, here(res.request()));
    // The original response keeps its status, headers and error (for the request log);
    // only its body is replaced.
    Ok(res.map_body(|_, _| rendered.into_body()))
}
