//! What browsers are told about the hub's responses, its cookie, its forms, and that
//! nothing an attacker puts in a request comes back as markup.

use reqwest::header::{HeaderMap, CACHE_CONTROL, SET_COOKIE};
use reqwest::StatusCode;

use crate::util::*;

/// Markup an attacker slips into parameters the hub might echo.
const PAYLOAD: &str = "<script>alert(1)</script><img src=x onerror=alert(2)>";

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header in {headers:?}"))
        .to_str()
        .unwrap()
}

fn assert_confined(headers: &HeaderMap, what: &str) {
    let csp = header(headers, "content-security-policy");
    for directive in [
        "default-src 'none'",
        "style-src 'self'",
        "script-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
    ] {
        assert!(csp.contains(directive), "{what}: {directive} in {csp}");
    }
    assert!(!csp.contains("unsafe"), "{what}: no unsafe-* in {csp}");
    assert!(
        !csp.contains("'nonce-") && !csp.contains("'sha"),
        "{what}: no inline script, whatever its nonce or hash"
    );
    assert_eq!(header(headers, "x-frame-options"), "DENY", "{what}");
    assert_eq!(
        header(headers, "x-content-type-options"),
        "nosniff",
        "{what}"
    );
    assert_eq!(header(headers, "referrer-policy"), "no-referrer", "{what}");
    assert_eq!(
        header(headers, "cross-origin-opener-policy"),
        "same-origin",
        "{what}"
    );
    assert!(
        headers.get("strict-transport-security").is_none(),
        "{what}: no HSTS on plain http"
    );
}

#[tokio::test]
async fn every_response_carries_the_browser_security_headers() {
    let hub = spawn_hub().await;
    let get = |path: &str| hub.http.get(format!("{}{path}", hub.url)).send();
    let picker = hub
        .http
        .get(AuthRequest::new(RP_MATCH).url(&hub))
        .send()
        .await
        .unwrap();
    assert_eq!(picker.status(), StatusCode::OK);
    let token = hub
        .http
        .post(format!("{}/token", hub.url))
        .form(&[("grant_type", "authorization_code")])
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), StatusCode::UNAUTHORIZED);
    let not_found = get("/no/such/page").await.unwrap();
    assert_eq!(not_found.status(), StatusCode::NOT_FOUND);
    let jwks = get("/jwks").await.unwrap();
    let discovery = get("/.well-known/openid-configuration").await.unwrap();
    let health = get("/healthz").await.unwrap();

    for (what, response) in [
        ("picker", &picker),
        ("token error", &token),
        ("404 page", &not_found),
        ("jwks", &jwks),
        ("discovery", &discovery),
        ("healthz", &health),
    ] {
        assert_confined(response.headers(), what);
    }
    for (what, response) in [
        ("picker", &picker),
        ("token error", &token),
        ("404 page", &not_found),
    ] {
        assert_eq!(
            header(response.headers(), "cache-control"),
            "no-store",
            "{what}"
        );
    }
    assert_eq!(
        header(jwks.headers(), "cache-control"),
        "public, max-age=300",
        "public keys stay cacheable"
    );
    assert!(
        discovery.headers().get(CACHE_CONTROL).is_none(),
        "discovery is left to HTTP caching defaults"
    );
}

#[tokio::test]
async fn pages_have_no_inline_script_or_style_and_assets_are_cached_long() {
    let hub = spawn_hub().await;
    let browser = Browser::new();
    let (_, _, picker) = browser
        .get(&AuthRequest::new(RP_MATCH).url(&hub))
        .await
        .page();
    let (_, _, error_page) = browser
        .get(&format!("{}/authorize?client_id=nobody", hub.url))
        .await
        .page();
    for page in [&picker, &error_page] {
        let lower = page.to_lowercase();
        assert!(!lower.contains("<style"), "no inline stylesheet:\n{page}");
        assert!(!lower.contains(" style="), "no style attribute:\n{page}");
        let html = scraper::Html::parse_document(page);
        let scripts = scraper::Selector::parse("script").unwrap();
        for script in html.select(&scripts) {
            let src = script.value().attr("src").unwrap_or_default();
            assert!(
                src.starts_with("/assets/"),
                "only the hub's own scripts:\n{page}"
            );
            assert!(
                script.inner_html().trim().is_empty(),
                "no inline script:\n{page}"
            );
        }
        let all = scraper::Selector::parse("*").unwrap();
        for element in html.select(&all) {
            assert!(
                element
                    .value()
                    .attrs()
                    .all(|(name, _)| !name.starts_with("on")),
                "no event handler attribute:\n{page}"
            );
        }
    }
    let html = scraper::Html::parse_document(&picker);
    let link = scraper::Selector::parse("link[rel=stylesheet]").unwrap();
    let href = html
        .select(&link)
        .next()
        .and_then(|l| l.value().attr("href"))
        .expect("a stylesheet link")
        .to_owned();
    assert!(
        href.starts_with("/assets/govuk-frontend.min.css?v="),
        "{href}"
    );

    let css = hub
        .http
        .get(format!("{}{href}", hub.url))
        .send()
        .await
        .unwrap();
    assert_eq!(css.status(), StatusCode::OK);
    assert_eq!(
        header(css.headers(), "content-type"),
        "text/css; charset=utf-8"
    );
    assert_eq!(
        header(css.headers(), "cache-control"),
        "public, max-age=31536000, immutable"
    );
    assert!(css.text().await.unwrap().contains(".govuk-template"));

    let stale = hub
        .http
        .get(format!("{}/assets/govuk-frontend.min.css?v=1", hub.url))
        .send()
        .await
        .unwrap();
    assert_eq!(
        header(stale.headers(), "cache-control"),
        "public, max-age=300",
        "another version's URL is not pinned for a year"
    );
}

#[tokio::test]
async fn the_session_cookie_is_http_only_lax_and_host_only() {
    let hub = spawn_hub().await;
    let response = hub
        .http
        .get(AuthRequest::new(RP_MATCH).url(&hub))
        .send()
        .await
        .unwrap();
    let cookie = header(response.headers(), SET_COOKIE.as_str());
    assert!(cookie.starts_with("hub_session="), "{cookie}");
    let attributes: Vec<String> = cookie
        .split(';')
        .skip(1)
        .map(|a| a.trim().to_ascii_lowercase())
        .collect();
    for expected in ["httponly", "samesite=lax", "path=/"] {
        assert!(
            attributes.iter().any(|a| a == expected),
            "{expected} in {cookie}"
        );
    }
    assert!(
        !attributes.iter().any(|a| a.starts_with("domain")),
        "no Domain: {cookie}"
    );
    assert!(
        !attributes.iter().any(|a| a == "secure"),
        "plain http hub: browsers would drop a Secure cookie ({cookie}); see tls.rs for https"
    );
}

#[tokio::test]
async fn every_form_carries_a_csrf_token_and_forms_without_the_right_one_are_refused() {
    let hub = spawn_hub().await;
    let browser = Browser::new();
    let (_, url, picker) = browser
        .get(&AuthRequest::new(RP_CYCLE3).url(&hub))
        .await
        .page();
    let (_, cycle3_url, cycle3) = hub
        .choose_and_login(&browser, &url, &picker, AtIdp::person("chris"))
        .await
        .page();
    let form = scraper::Selector::parse("form").unwrap();
    let csrf = scraper::Selector::parse("input[type=hidden][name=csrf]").unwrap();
    let mut forms = 0;
    for page in [&picker, &cycle3] {
        let html = scraper::Html::parse_document(page);
        for f in html.select(&form) {
            forms += 1;
            assert_eq!(f.value().attr("method"), Some("post"), "{page}");
            let token = f.select(&csrf).next().and_then(|i| i.value().attr("value"));
            assert!(
                token.is_some_and(|t| t.len() >= 16),
                "form {:?} has a csrf token",
                f.value().attr("action")
            );
        }
    }
    assert_eq!(forms, 3, "picker (choose, cancel) and cycle 3");

    // A second picker in the same browser: its forms' posts, without and with a wrong token.
    let (_, url, picker) = browser
        .get(&AuthRequest::new(RP_MATCH).url(&hub))
        .await
        .page();
    for action in ["/journey/idp", "/journey/cancel"] {
        let (target, fields) = form_fields(&url, &picker, action);
        let without: Vec<(String, String)> = fields
            .iter()
            .filter(|(k, _)| k != "csrf")
            .cloned()
            .collect();
        let (status, _, body) = browser.post(target.as_str(), &without).await.page();
        assert_eq!(status, StatusCode::BAD_REQUEST, "{action} without csrf");
        assert!(!body.contains("name=\"idp\""), "not the next step");

        let (status, _, body) = browser
            .submit(&url, &picker, action, &[("csrf", "forged-token-value")])
            .await
            .page();
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "{action} with a wrong csrf"
        );
        assert!(body.contains("invalid_form"), "{body}");
    }
    let (status, _, body) = browser
        .submit(
            &cycle3_url,
            &cycle3,
            "/journey/cycle3",
            &[("csrf", "forged-token-value"), ("value", "QQ445566C")],
        )
        .await
        .page();
    assert_eq!(status, StatusCode::BAD_REQUEST, "cycle 3 with a wrong csrf");
    assert!(body.contains("invalid_form"), "{body}");

    // The right token still works: the refusals changed nothing.
    let params = browser
        .submit(&url, &picker, "/journey/cancel", &[])
        .await
        .rp();
    assert_eq!(params["reason"], "user_cancelled");
}

/// Asserts `body` does not contain the payload's markup.
fn assert_inert(body: &str, what: &str) {
    let lower = body.to_lowercase();
    assert!(
        !lower.contains("<script>alert") && !lower.contains("<img src=x"),
        "{what} reflects markup:\n{body}"
    );
}

#[tokio::test]
async fn markup_in_parameters_is_never_reflected_unescaped() {
    let hub = spawn_hub().await;
    let browser = Browser::new();

    // Failures shown on hub pages: unknown client, unregistered redirect URI.
    for request in [
        AuthRequest::new(RP_MATCH).set("client_id", Some(PAYLOAD)),
        AuthRequest::new(RP_MATCH)
            .set(
                "redirect_uri",
                Some(&format!("https://evil.example/{PAYLOAD}")),
            )
            .set("state", Some(PAYLOAD)),
    ] {
        let (status, _, body) = browser.get(&request.url(&hub)).await.page();
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_inert(&body, "authorize error page");
    }

    // Failures redirected to the RP: the state travels percent-encoded in the Location
    // header and arrives intact, never as markup.
    let request = AuthRequest::new(RP_MATCH)
        .set("response_type", Some("token"))
        .set("state", Some(PAYLOAD));
    let response = hub.http.get(request.url(&hub)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let location = header(response.headers(), "location");
    assert!(
        !location.contains('<') && !location.contains('>'),
        "{location}"
    );
    let params = browser.get(&request.url(&hub)).await.rp();
    assert_eq!(params["state"], PAYLOAD, "state comes back exactly");
    assert_eq!(params["error"], "unsupported_response_type");

    // An IdP callback with markup everywhere and no journey: a hub page.
    let (status, _, body) = browser
        .get(&format!(
            "{}/idp/callback?state={p}&error=access_denied&error_description={p}&code={p}",
            hub.url,
            p = urlencode(PAYLOAD)
        ))
        .await
        .page();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_inert(&body, "callback error page");

    // The IdP's own error_description never reaches the RP: the hub sends its own words.
    let (_, url, picker) = browser
        .get(&AuthRequest::new(RP_MATCH).url(&hub))
        .await
        .page();
    let (_, login_url, _) = browser
        .submit(&url, &picker, "/journey/idp", &[("idp", IDP_MAIN)])
        .await
        .page();
    let upstream_state = login_url
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .expect("state sent to the IdP");
    let callback = format!(
        "{}/idp/callback?state={}&error=access_denied&error_description={}&iss={}",
        hub.url,
        urlencode(&upstream_state),
        urlencode(PAYLOAD),
        urlencode(hub.idp_main.issuer().as_str().trim_end_matches('/'))
    );
    // Nor the hub's page that offers another company.
    let (status, url, page) = browser.get(&callback).await.page();
    assert_eq!(status, StatusCode::OK);
    assert_inert(&page, "identity provider problem page");
    let params = browser
        .back_to_service(Landing::Page {
            status,
            url,
            body: page,
        })
        .await
        .rp();
    assert_eq!(params["error"], "access_denied");
    assert!(
        !params["error_description"].contains('<'),
        "{:?}",
        params["error_description"]
    );

    // A cycle-3 answer that is markup: refused with the hub's own message, not echoed.
    let page = {
        let b = Browser::new();
        let (_, url, page) = hub
            .journey(&b, &AuthRequest::new(RP_CYCLE3), AtIdp::person("chris"))
            .await
            .page();
        let (status, _, body) = b
            .submit(
                &url,
                &page,
                "/journey/cycle3",
                &[("value", PAYLOAD), ("action", "answer")],
            )
            .await
            .page();
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        body
    };
    assert_inert(&page, "cycle 3 page");
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn invalid_utf8_in_queries_and_forms_gets_a_client_error_not_a_500() {
    let hub = spawn_hub().await;
    let browser = Browser::new();
    let (status, _, body) = browser
        .get(&format!(
            "{}/authorize?client_id=%FF%FE&redirect_uri=%C0%AF",
            hub.url
        ))
        .await
        .page();
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _, _) = browser
        .get(&format!("{}/idp/callback?state=%FF%FE%FD", hub.url))
        .await
        .page();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // A valid request whose state is not UTF-8 is refused on a page, not "repaired" with
    // U+FFFD and sent back to the RP altered.
    let request = AuthRequest::new(RP_MATCH);
    let response = hub
        .http
        .get(
            format!("{}&state=%C3%28", request.url(&hub))
                .replace(&format!("state={}&", request.state), ""),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.headers().get("location").is_none());

    for path in ["/journey/idp", "/token", "/authorize"] {
        let response = hub
            .http
            .post(format!("{}{path}", hub.url))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(b"journey=%FF%FE&csrf=\xff\xfe&grant_type=\xc0\xaf&client_id=%80".to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path}");
        if path == "/token" {
            let body: serde_json::Value = response.json().await.unwrap();
            assert_eq!(body["error"], "invalid_request");
        }
    }

    // Raw non-UTF-8 bytes in the request line itself.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = hub.url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream
        .write_all(
            b"GET /authorize?client_id=\xff\xfe HTTP/1.1\r\nHost: hub\r\nConnection: close\r\n\r\n",
        )
        .await
        .unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 4"), "{answer}");
}
