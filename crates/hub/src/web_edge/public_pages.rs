//! The pages anyone may open: the start page, and the accessibility statement, privacy
//! notice and cookies page every page's footer links to.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};

use super::language::Lang;
use super::pages::{html, without_lang, Accessibility, Cookies, Page, Privacy, Start};
use super::{secure_cookies, session_cookie_name};

fn page(req: &HttpRequest) -> Page {
    Page::new(
        Lang::of(req, None),
        without_lang(req.path(), req.query_string()),
    )
}

/// GET /: where a citizen who came without a service lands.
pub(crate) async fn start(req: HttpRequest) -> HttpResponse {
    html(StatusCode::OK, &Start { page: page(&req) })
}

/// GET /accessibility
pub(crate) async fn accessibility(req: HttpRequest) -> HttpResponse {
    html(StatusCode::OK, &Accessibility { page: page(&req) })
}

/// GET /privacy
pub(crate) async fn privacy(req: HttpRequest) -> HttpResponse {
    html(StatusCode::OK, &Privacy { page: page(&req) })
}

/// GET /cookies
pub(crate) async fn cookies(req: HttpRequest) -> HttpResponse {
    let session_cookie = session_cookie_name(secure_cookies(&req));
    html(
        StatusCode::OK,
        &Cookies {
            page: page(&req),
            session_cookie,
        },
    )
}
