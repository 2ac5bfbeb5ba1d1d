//! The hub's own error pages, where it cannot (or must not) send the browser back to the
//! relying party, and the redirect every other outcome becomes.

use actix_web::http::StatusCode;
use actix_web::HttpResponse;

use super::pages::{html, ErrorPage};
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
    #[error("not found")]
    NotFound,
    /// An authorization request refused where no registered redirect URI is known (a
    /// pushed request that is gone, a request object that does not verify).
    #[error("authorization request refused: {}", .0.code())]
    Refused(Reason),
}

impl PageError {
    fn parts(self) -> (StatusCode, &'static str, &'static str, &'static str) {
        match self {
            Self::UnknownClient => (StatusCode::BAD_REQUEST, "There is a problem with the service you came from", "The service that sent you here is not registered with the hub.", "unknown_client"),
            Self::BadRedirectUri => (StatusCode::BAD_REQUEST, "There is a problem with the service you came from", "The service sent you here with an address the hub does not recognise, so we have not sent you back to it.", "invalid_redirect_uri"),
            Self::NoJourney => (StatusCode::BAD_REQUEST, "Your session has ended", "We could not find your identity check in this browser. It may have expired, or cookies may be blocked.", "no_journey"),
            Self::UnknownState => (StatusCode::BAD_REQUEST, "Your session has ended", "We did not expect this response from the identity provider. It may be old, or from another browser.", "unknown_state"),
            Self::BadCsrf => (StatusCode::BAD_REQUEST, "This page has expired", "The form you sent has expired or came from somewhere else.", "invalid_form"),
            Self::BadRequest => (StatusCode::BAD_REQUEST, "Sorry, there is a problem", "The request was not valid.", "bad_request"),
            Self::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "Sorry, the service is unavailable", "Please try again later.", "temporarily_unavailable"),
            Self::NotFound => (StatusCode::NOT_FOUND, "Page not found", "There is no page at this address.", "not_found"),
            Self::Refused(reason) => (StatusCode::BAD_REQUEST, "There is a problem with the service you came from", "The service sent you here with a sign-in request the hub could not accept. Go back to the service and try again.", reason.code()),
        }
    }
}

impl actix_web::ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        self.parts().0
    }

    fn error_response(&self) -> HttpResponse {
        let (status, heading, message, code) = self.parts();
        html(
            status,
            &ErrorPage {
                heading,
                message,
                code,
            },
        )
    }
}
