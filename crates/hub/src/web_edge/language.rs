//! The citizen's language: English or Welsh (Cymraeg), and the message catalogues
//! (`locales/en.ftl`, `locales/cy.ftl`, Fluent syntax) every page's text comes from.
//!
//! Chosen, first match wins: `?lang=` (the language toggle on every page), the `ui_locales`
//! a relying party sent to `/authorize` (OIDC Core §3.1.2.1), the `hub_lang` cookie those
//! two set, the browser's `Accept-Language`; else English.

use std::sync::OnceLock;

use actix_web::body::BoxBody;
use actix_web::cookie::Cookie;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::HttpRequest;
use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource};

/// The cookie that keeps the citizen's choice of language.
pub(crate) const LANG_COOKIE: &str = "hub_lang";

const ENGLISH: &str = include_str!("../../locales/en.ftl");
const WELSH: &str = include_str!("../../locales/cy.ftl");

/// A language the pages are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lang {
    En,
    Cy,
}

impl Lang {
    pub(crate) const ALL: [Lang; 2] = [Lang::En, Lang::Cy];

    /// The BCP 47 tag, as in `lang="cy"` and `ui_locales_supported`.
    pub(crate) fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Cy => "cy",
        }
    }

    /// The language's name in itself, for the toggle.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Lang::En => "English",
            Lang::Cy => "Cymraeg",
        }
    }

    /// A language tag (`cy`, `cy-GB`, `en-GB`...), by its primary subtag.
    pub(crate) fn from_tag(tag: &str) -> Option<Lang> {
        let id: unic_langid::LanguageIdentifier = tag.trim().parse().ok()?;
        match id.language.as_str() {
            "en" => Some(Lang::En),
            "cy" => Some(Lang::Cy),
            _ => None,
        }
    }

    /// The first supported language of a space-separated `ui_locales` list.
    pub(crate) fn from_ui_locales(list: &str) -> Option<Lang> {
        list.split_whitespace().find_map(Lang::from_tag)
    }

    /// The supported language the browser prefers most (`Accept-Language`, by q-value).
    fn from_accept_language(value: &str) -> Option<Lang> {
        let mut best: Option<(f32, Lang)> = None;
        for item in value.split(',') {
            let mut parts = item.split(';');
            let Some(lang) = parts.next().and_then(Lang::from_tag) else {
                continue;
            };
            let q = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            if q > 0.0 && best.is_none_or(|(b, _)| q > b) {
                best = Some((q, lang));
            }
        }
        best.map(|(_, lang)| lang)
    }

    /// The language of `req` (see the module's documentation); `ui_locales` only at
    /// `/authorize`.
    pub(crate) fn of(req: &HttpRequest, ui_locales: Option<&str>) -> Lang {
        requested(req)
            .or_else(|| ui_locales.and_then(Lang::from_ui_locales))
            .or_else(|| {
                req.cookie(LANG_COOKIE)
                    .and_then(|c| Lang::from_tag(c.value()))
            })
            .or_else(|| {
                req.headers()
                    .get(header::ACCEPT_LANGUAGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(Lang::from_accept_language)
            })
            .unwrap_or(Lang::En)
    }

    /// The cookie keeping this choice (a year, this site only).
    pub(crate) fn cookie(self, secure: bool) -> Cookie<'static> {
        super::lasting_cookie(LANG_COOKIE, self.code().to_owned(), secure)
    }

    fn bundle(self) -> &'static FluentBundle<FluentResource> {
        static BUNDLES: OnceLock<[FluentBundle<FluentResource>; 2]> = OnceLock::new();
        let bundles = BUNDLES.get_or_init(|| [bundle(Lang::En, ENGLISH), bundle(Lang::Cy, WELSH)]);
        match self {
            Lang::En => &bundles[0],
            Lang::Cy => &bundles[1],
        }
    }

    /// The message `id` in this language, with `args` for its placeables. A message
    /// missing from the catalogue shows its id (a test checks that none is missing).
    pub(crate) fn text(self, id: &str, args: &[(&str, &str)]) -> String {
        let bundle = self.bundle();
        let Some(pattern) = bundle.get_message(id).and_then(|m| m.value()) else {
            tracing::error!(id, lang = self.code(), "message missing from the catalogue");
            return id.to_owned();
        };
        let mut fluent_args = FluentArgs::new();
        for (name, value) in args {
            fluent_args.set(*name, *value);
        }
        let mut errors = Vec::new();
        let text = bundle.format_pattern(pattern, Some(&fluent_args), &mut errors);
        if !errors.is_empty() {
            tracing::error!(
                id,
                lang = self.code(),
                ?errors,
                "message could not be formatted"
            );
        }
        text.into_owned()
    }
}

/// The middleware: a language chosen with `?lang=` is kept in the `hub_lang` cookie.
pub(crate) async fn remember(
    req: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let chosen = requested(req.request()).filter(|_| !req.path().starts_with("/assets/"));
    let secure = super::secure_cookies(req.request());
    let mut res = next.call(req).await?;
    if let Some(lang) = chosen {
        let _ = res.response_mut().add_cookie(&lang.cookie(secure));
    }
    Ok(res)
}

/// `?lang=` of the request, when it names a supported language.
pub(crate) fn requested(req: &HttpRequest) -> Option<Lang> {
    url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(name, _)| name == "lang")
        .and_then(|(_, value)| Lang::from_tag(&value))
}

fn bundle(lang: Lang, source: &str) -> FluentBundle<FluentResource> {
    let resource =
        FluentResource::try_new(source.to_owned()).unwrap_or_else(|(resource, errors)| {
            tracing::error!(lang = lang.code(), ?errors, "message catalogue has errors");
            resource
        });
    let id: unic_langid::LanguageIdentifier = lang.code().parse().unwrap_or_default();
    let mut bundle = FluentBundle::new_concurrent(vec![id]);
    // No Unicode isolation marks around arguments: the pages are left-to-right only.
    bundle.set_use_isolating(false);
    if let Err(errors) = bundle.add_resource(resource) {
        tracing::error!(
            lang = lang.code(),
            ?errors,
            "duplicate messages in the catalogue"
        );
    }
    bundle
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(source: &str) -> Vec<String> {
        let resource = FluentResource::try_new(source.to_owned()).expect("catalogue parses");
        let mut ids: Vec<String> = resource
            .entries()
            .filter_map(|entry| match entry {
                fluent_syntax::ast::Entry::Message(m) => Some(m.id.name.to_owned()),
                _ => None,
            })
            .collect();
        ids.sort();
        ids
    }

    #[test]
    fn every_message_is_in_both_languages() {
        let (english, welsh) = (ids(ENGLISH), ids(WELSH));
        let missing_in_welsh: Vec<_> = english.iter().filter(|id| !welsh.contains(id)).collect();
        let missing_in_english: Vec<_> = welsh.iter().filter(|id| !english.contains(id)).collect();
        assert!(
            missing_in_welsh.is_empty(),
            "not in cy.ftl: {missing_in_welsh:?}"
        );
        assert!(
            missing_in_english.is_empty(),
            "not in en.ftl: {missing_in_english:?}"
        );
        assert!(english.len() > 20);
    }

    #[test]
    fn messages_format_with_their_arguments() {
        let text = Lang::Cy.text("picker-lede", &[("service", "Gwasanaeth")]);
        assert!(text.contains("Gwasanaeth"), "{text}");
        assert!(!text.contains('\u{2068}'), "no isolation marks");
    }

    #[test]
    fn languages_come_from_tags_lists_and_q_values() {
        assert_eq!(Lang::from_tag("cy-GB"), Some(Lang::Cy));
        assert_eq!(Lang::from_tag("fr"), None);
        assert_eq!(Lang::from_ui_locales("fr-CA cy en"), Some(Lang::Cy));
        assert_eq!(
            Lang::from_accept_language("en-GB;q=0.8, cy;q=0.9, fr"),
            Some(Lang::Cy)
        );
        assert_eq!(Lang::from_accept_language("fr, de;q=0.5"), None);
        assert_eq!(
            Lang::from_accept_language("cy;q=0, en;q=0.1"),
            Some(Lang::En)
        );
    }
}
