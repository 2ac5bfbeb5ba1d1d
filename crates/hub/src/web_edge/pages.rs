//! Server-rendered pages (askama templates under `templates/`, auto-escaped).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;

/// The hub's only stylesheet. Pages have no inline style, so the Content-Security-Policy
/// can refuse inline styles (and scripts) outright.
const STYLESHEET: &str = include_str!("../../templates/hub.css");

/// Changes with the stylesheet's content: pages link `/assets/hub.css?v=VERSION`, so a
/// browser may keep it for a year and still gets a new one after a deploy.
pub(crate) const STYLESHEET_VERSION: u64 = fnv1a(STYLESHEET.as_bytes());

const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    hash
}

/// GET /assets/hub.css: cached for a year when asked for by its current version.
pub(crate) async fn stylesheet(req: HttpRequest) -> HttpResponse {
    let current = format!("v={STYLESHEET_VERSION}");
    let cache = if req.query_string() == current {
        "public, max-age=31536000, immutable"
    } else {
        "public, max-age=300"
    };
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header(("cache-control", cache))
        .body(STYLESHEET)
}

/// An identity provider offered on the picker.
#[derive(Debug)]
pub(crate) struct PickerEntry {
    pub id: String,
    pub name: String,
}

#[derive(Template, Debug)]
#[template(path = "picker.html")]
pub(crate) struct Picker<'a> {
    pub rp_name: &'a str,
    pub level: &'a str,
    pub journey: &'a str,
    pub csrf: &'a str,
    pub idps: Vec<PickerEntry>,
}

#[derive(Template, Debug)]
#[template(path = "cycle3.html")]
pub(crate) struct Cycle3<'a> {
    pub journey: &'a str,
    pub csrf: &'a str,
    pub label: &'a str,
    pub hint: &'a str,
    pub error: Option<&'a str>,
}

#[derive(Template, Debug)]
#[template(path = "error.html")]
pub(crate) struct ErrorPage<'a> {
    pub heading: &'a str,
    pub message: &'a str,
    pub code: &'a str,
}

/// Renders `page` as an HTML response with `status`; a template failure becomes a bare 500.
pub(crate) fn html<T: Template>(status: StatusCode, page: &T) -> HttpResponse {
    match page.render() {
        Ok(body) => HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .insert_header(("cache-control", "no-store"))
            .body(body),
        Err(e) => {
            tracing::error!(error = %e, "template rendering failed");
            HttpResponse::InternalServerError().body("Something went wrong.")
        }
    }
}

/// Label and hint for the cycle-3 question about `attribute`.
pub(crate) fn cycle3_wording(attribute: &str) -> (&'static str, &'static str) {
    match attribute {
        "nino" => (
            "National Insurance number",
            "It's on your National Insurance card, payslip or P60. For example, QQ 12 34 56 C.",
        ),
        "driving_licence" => (
            "Driving licence number",
            "It's the long number in section 5 of your photocard driving licence.",
        ),
        _ => (
            "Reference number",
            "The reference number the service gave you.",
        ),
    }
}
