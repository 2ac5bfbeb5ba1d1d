//! HTML rendering shared by both servers (askama templates, HTML-escaped by default).

use actix_web::http::{header, StatusCode};
use actix_web::HttpResponse;
use askama::Template;

/// A page with a heading and an explanation: errors and dead ends that must still tell the
/// user what happened and what to do next.
#[derive(Template)]
#[template(path = "message.html")]
pub(crate) struct MessagePage<'a> {
    pub(crate) site_name: &'a str,
    pub(crate) heading: &'a str,
    pub(crate) message: &'a str,
    pub(crate) detail: Option<&'a str>,
    pub(crate) back_link: Option<&'a str>,
}

/// Renders a template with headers suited to pages carrying codes or personal data:
/// never cached, never framed, no referrer leaking query strings.
pub(crate) fn html<T: Template>(status: StatusCode, page: &T) -> HttpResponse {
    match page.render() {
        Ok(body) => HttpResponse::build(status)
            .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((header::X_FRAME_OPTIONS, "DENY"))
            .insert_header((header::REFERRER_POLICY, "no-referrer"))
            .insert_header((
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
            ))
            .body(body),
        Err(e) => {
            tracing::error!(error = %e, "template rendering failed");
            HttpResponse::InternalServerError()
                .insert_header((header::CONTENT_TYPE, "text/plain; charset=utf-8"))
                .body("Sorry, something went wrong showing this page.")
        }
    }
}

/// Shortcut for [`MessagePage`].
pub(crate) fn message(
    status: StatusCode,
    site_name: &str,
    heading: &str,
    message: &str,
    detail: Option<&str>,
    back_link: Option<&str>,
) -> HttpResponse {
    html(
        status,
        &MessagePage {
            site_name,
            heading,
            message,
            detail,
            back_link,
        },
    )
}
