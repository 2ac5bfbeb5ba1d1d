//! The citizen's pages over HTTP: the language they are in, and what they remember. (How
//! they look and read in a browser is tests/browser.rs.)

use reqwest::StatusCode;

use crate::util::*;

fn lang_of(page: &str) -> &str {
    let start = page
        .find("<html lang=\"")
        .map(|i| i + "<html lang=\"".len());
    start
        .and_then(|s| page[s..].split('"').next())
        .unwrap_or("")
}

#[tokio::test]
async fn the_language_comes_from_the_toggle_the_rp_the_cookie_or_the_browser() {
    let hub = spawn_hub().await;

    // The browser's Accept-Language.
    let welsh_browser = hub
        .http
        .get(AuthRequest::new(RP_MATCH).url(&hub))
        .header("accept-language", "cy-GB,cy;q=0.9,en;q=0.5")
        .send()
        .await
        .unwrap();
    let page = welsh_browser.text().await.unwrap();
    assert_eq!(lang_of(&page), "cy");
    assert!(
        page.contains("Dewiswch gwmni i brofi eich hunaniaeth"),
        "{page}"
    );

    // The RP's ui_locales, kept in a cookie for the rest of the visit.
    let browser = Browser::new();
    let request = AuthRequest::new(RP_MATCH).set("ui_locales", Some("fr cy"));
    let (_, url, picker) = browser.get(&request.url(&hub)).await.page();
    assert_eq!(lang_of(&picker), "cy");
    let (_, _, cookies) = browser.get(&format!("{}/cookies", hub.url)).await.page();
    assert_eq!(lang_of(&cookies), "cy", "remembered");

    // The toggle: the same journey page, in English, and remembered.
    let journey = form_fields(&url, &picker, "/journey/idp")
        .1
        .into_iter()
        .find(|(name, _)| name == "journey")
        .map(|(_, value)| value)
        .unwrap();
    let english = format!("{}/journey?journey={journey}&lang=en", hub.url);
    let (status, _, picker) = browser.get(&english).await.page();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(lang_of(&picker), "en");
    assert!(picker.contains("Choose a company to prove your identity"));
    let (_, _, start) = browser.get(&format!("{}/", hub.url)).await.page();
    assert_eq!(lang_of(&start), "en", "the toggle's choice is remembered");

    // Unsupported languages fall back to English.
    let (_, _, page) = Browser::new()
        .get(&format!("{}/privacy?lang=fr", hub.url))
        .await
        .page();
    assert_eq!(lang_of(&page), "en");
}

#[tokio::test]
async fn the_picker_preselects_nothing_and_remembers_the_company_used_last_time() {
    let hub = spawn_hub().await;
    let browser = Browser::new();
    let (_, _, picker) = browser
        .get(&AuthRequest::new(RP_MATCH).url(&hub))
        .await
        .page();
    assert!(
        !picker.contains("checked"),
        "nothing preselected:\n{picker}"
    );
    assert!(!picker.contains("last time"), "{picker}");
    assert!(!picker.contains("P2"), "no jargon about levels:\n{picker}");

    hub.journey(
        &browser,
        &AuthRequest::new(RP_MATCH),
        AtIdp::person("alice"),
    )
    .await
    .rp();
    let (_, _, picker) = browser
        .get(&AuthRequest::new(RP_MATCH).url(&hub))
        .await
        .page();
    let html = scraper::Html::parse_document(&picker);
    let hint = scraper::Selector::parse(&format!("#idp-{IDP_MAIN}-item-hint")).unwrap();
    let hint = html
        .select(&hint)
        .next()
        .map(|h| h.text().collect::<String>())
        .unwrap_or_default();
    assert!(
        hint.contains("The main test company."),
        "its description: {picker}"
    );
    assert!(hint.contains("You used this company last time"), "{picker}");
    assert!(!picker.contains("checked"), "still nothing preselected");
}

#[tokio::test]
async fn every_page_a_citizen_can_reach_has_a_way_forward() {
    let hub = spawn_hub().await;
    for (path, status) in [
        ("/no-such-page", StatusCode::NOT_FOUND),
        ("/authorize?client_id=nobody", StatusCode::BAD_REQUEST),
        ("/journey?journey=unknown", StatusCode::BAD_REQUEST),
        ("/idp/callback?state=forged&code=x", StatusCode::BAD_REQUEST),
    ] {
        let (got, _, page) = Browser::new()
            .get(&format!("{}{path}", hub.url))
            .await
            .page();
        assert_eq!(got, status, "{path}");
        let html = scraper::Html::parse_document(&page);
        let main_links = scraper::Selector::parse("main a[href]").unwrap();
        assert!(
            html.select(&main_links).next().is_some(),
            "{path}: no way forward:\n{page}"
        );
    }
}

#[tokio::test]
async fn trying_an_unavailable_company_again_keeps_the_way_forward() {
    let hub = spawn_hub_with(Options {
        include_down_idp: true,
        ..Default::default()
    })
    .await;
    let browser = Browser::new();
    let (_, url, picker) = browser
        .get(&AuthRequest::new(RP_MATCH).url(&hub))
        .await
        .page();
    let (status, url, problem) = browser
        .submit(&url, &picker, "/journey/idp", &[("idp", IDP_DOWN)])
        .await
        .page();
    assert_eq!(status, StatusCode::OK);
    assert_idp_problem_page(&problem);
    // "Try again" with the same company, still down: the same page, not the end.
    let again = browser.submit(&url, &problem, "/journey/idp", &[]).await;
    let params = browser.back_to_service(again).await.rp();
    assert_eq!(params["reason"], "idp_unavailable");
}

#[tokio::test]
async fn no_hub_page_links_to_another_site() {
    let hub = spawn_hub().await;
    for path in ["//evil.example/x", "/%2F%2Fevil.example/x"] {
        let (status, _, page) = Browser::new()
            .get(&format!("{}{path}", hub.url))
            .await
            .page();
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert!(!page.contains("\"//evil.example"), "{path}:\n{page}");
    }
}
