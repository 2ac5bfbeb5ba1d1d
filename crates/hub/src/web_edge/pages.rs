//! Server-rendered pages: askama templates under `templates/` (auto-escaped) in GOV.UK
//! Frontend's page template, every text from the message catalogue of the page's
//! language (`web_edge::language`).

use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use askama::Template;

use super::assets;
use super::language::Lang;

/// What every page shares: its language, its address (for the language toggle) and
/// whether it shows a validation error (the title then starts with "Error:").
#[derive(Debug, Clone)]
pub(crate) struct Page {
    lang: Lang,
    /// This page's path and query without `lang`: the toggle adds `lang=` to it.
    here: String,
    pub(crate) has_error: bool,
}

/// A link of the language toggle.
#[derive(Debug)]
pub(crate) struct LanguageLink {
    pub(crate) code: &'static str,
    pub(crate) name: &'static str,
    pub(crate) href: String,
    pub(crate) current: bool,
}

impl Page {
    /// A page in `lang` that `here` (a GET address, without `lang`) shows again.
    pub(crate) fn new(lang: Lang, here: impl Into<String>) -> Self {
        Self {
            lang,
            here: here.into(),
            has_error: false,
        }
    }

    pub(crate) fn with_error(mut self, has_error: bool) -> Self {
        self.has_error = has_error;
        self
    }

    pub(crate) fn lang(&self) -> &'static str {
        self.lang.code()
    }

    /// The message `id`.
    pub(crate) fn t(&self, id: &str) -> String {
        self.lang.text(id, &[])
    }

    /// The message `id` with one argument.
    pub(crate) fn t_with(&self, id: &str, name: &str, value: &str) -> String {
        self.lang.text(id, &[(name, value)])
    }

    /// The URL of an asset, with its content hash.
    pub(crate) fn asset(&self, name: &str) -> String {
        assets::url(name)
    }

    pub(crate) fn languages(&self) -> Vec<LanguageLink> {
        let separator = if self.here.contains('?') { '&' } else { '?' };
        Lang::ALL
            .iter()
            .map(|&lang| LanguageLink {
                code: lang.code(),
                name: lang.name(),
                href: format!("{}{separator}lang={}", self.here, lang.code()),
                current: lang == self.lang,
            })
            .collect()
    }
}

/// `here` without its `lang` parameter, for [`Page::new`].
pub(crate) fn without_lang(path: &str, query: &str) -> String {
    let kept: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .filter(|(name, _)| name != "lang")
        .map(|(n, v)| (n.into_owned(), v.into_owned()))
        .collect();
    if kept.is_empty() {
        return path.to_owned();
    }
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(kept)
        .finish();
    format!("{path}?{query}")
}

/// The address that shows a journey's current step again (after a form was posted).
pub(crate) fn journey_page(journey: &str) -> String {
    journey_address("/journey", journey)
}

/// `path?journey=...`: a page of this journey.
pub(crate) fn journey_address(path: &str, journey: &str) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("journey", journey)
        .finish();
    format!("{path}?{query}")
}

/// An identity provider offered on the picker.
#[derive(Debug)]
pub(crate) struct PickerEntry {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) description: Option<String>,
    /// The company this browser chose last time.
    pub(crate) last_used: bool,
    /// Registration has closed: only for people with an account there.
    pub(crate) sign_in_only: bool,
}

/// A company the picker shows but does not offer right now, and why.
#[derive(Debug)]
pub(crate) struct UnavailableEntry {
    pub(crate) name: String,
    /// The operator's notice; without one the page's own words.
    pub(crate) message: Option<String>,
}

#[derive(Template, Debug)]
#[template(path = "picker.html")]
pub(crate) struct Picker<'a> {
    pub(crate) page: Page,
    pub(crate) rp_name: &'a str,
    pub(crate) journey: &'a str,
    pub(crate) csrf: &'a str,
    pub(crate) idps: Vec<PickerEntry>,
    pub(crate) unavailable: Vec<UnavailableEntry>,
}

#[derive(Template, Debug)]
#[template(path = "no_account.html")]
pub(crate) struct NoAccount<'a> {
    pub(crate) page: Page,
    pub(crate) rp_name: &'a str,
    pub(crate) journey: &'a str,
    pub(crate) csrf: &'a str,
}

#[derive(Template, Debug)]
#[template(path = "cycle3.html")]
pub(crate) struct Cycle3<'a> {
    pub(crate) page: Page,
    pub(crate) journey: &'a str,
    pub(crate) csrf: &'a str,
    /// The catalogue's prefix for this attribute's label, hint and error.
    pub(crate) attribute: &'static str,
    /// What the citizen typed, shown again after an error.
    pub(crate) value: &'a str,
}

impl Cycle3<'_> {
    /// The attribute's `part` (`label`, `hint`, `error`) in the page's language.
    pub(crate) fn text(&self, part: &str) -> String {
        self.page.t(&format!("{}-{part}", self.attribute))
    }
}

#[derive(Template, Debug)]
#[template(path = "idp_problem.html")]
pub(crate) struct IdpProblem<'a> {
    pub(crate) page: Page,
    pub(crate) rp_name: &'a str,
    pub(crate) journey: &'a str,
    pub(crate) csrf: &'a str,
    pub(crate) idp_id: &'a str,
    pub(crate) idp_name: &'a str,
    /// Its site could not be reached (rather than: it did not prove the identity).
    pub(crate) unavailable: bool,
}

impl IdpProblem<'_> {
    /// "X is not available at the moment" or "X could not prove your identity".
    pub(crate) fn heading(&self) -> String {
        let id = if self.unavailable {
            "idp-unavailable-title"
        } else {
            "idp-problem-title"
        };
        self.page.t_with(id, "company", self.idp_name)
    }
}

#[derive(Template, Debug)]
#[template(path = "timed_out.html")]
pub(crate) struct TimedOut<'a> {
    pub(crate) page: Page,
    pub(crate) rp_name: &'a str,
    pub(crate) journey: &'a str,
    pub(crate) csrf: &'a str,
}

#[derive(Template, Debug)]
#[template(path = "start.html")]
pub(crate) struct Start {
    pub(crate) page: Page,
}

#[derive(Template, Debug)]
#[template(path = "accessibility.html")]
pub(crate) struct Accessibility {
    pub(crate) page: Page,
}

#[derive(Template, Debug)]
#[template(path = "privacy.html")]
pub(crate) struct Privacy {
    pub(crate) page: Page,
}

#[derive(Template, Debug)]
#[template(path = "cookies.html")]
pub(crate) struct Cookies {
    pub(crate) page: Page,
    /// The session cookie's name (`__Host-` prefixed over https).
    pub(crate) session_cookie: &'static str,
}

/// A way forward from an error page.
#[derive(Debug)]
pub(crate) struct Link {
    pub(crate) href: String,
    pub(crate) text: String,
}

#[derive(Template, Debug)]
#[template(path = "error.html")]
pub(crate) struct ErrorPage {
    pub(crate) page: Page,
    /// Catalogue ids of the heading and the explanation.
    pub(crate) title: &'static str,
    pub(crate) body: &'static str,
    pub(crate) code: String,
    /// Shown when the citizen came from a service: start again there.
    pub(crate) start_again: bool,
    pub(crate) next: Link,
}

/// The cycle-3 question's catalogue prefix for `attribute`.
pub(crate) fn cycle3_messages(attribute: &str) -> &'static str {
    match attribute {
        "nino" => "nino",
        "driving_licence" => "driving-licence",
        _ => "reference",
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_toggle_keeps_the_page_and_replaces_the_language() {
        let here = without_lang("/journey", "journey=j1&lang=en");
        assert_eq!(here, "/journey?journey=j1");
        let links = Page::new(Lang::En, here).languages();
        assert_eq!(links[1].href, "/journey?journey=j1&lang=cy");
        assert!(links[0].current && !links[1].current);
        assert_eq!(without_lang("/", "lang=cy"), "/");
    }

    #[test]
    fn every_page_has_the_govuk_template_in_its_language() {
        let page = Start {
            page: Page::new(Lang::Cy, "/"),
        };
        let body = page.render().expect("renders");
        assert!(body.contains("<html lang=\"cy\""), "{body}");
        assert!(
            body.contains("<title>Profi eich hunaniaeth - GOV.UK</title>"),
            "{body}"
        );
        assert!(body.contains("govuk-skip-link"));
        assert!(body.contains("govuk-header"));
        assert!(body.contains("govuk-footer"));
        assert!(body.contains("href=\"/?lang=en\""), "the toggle");
    }
}
