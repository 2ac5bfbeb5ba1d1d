//! The hub's pages in a real browser: headless Chromium (Debian's `chromium` package at
//! `/usr/bin/chromium`) driven by `tests/browser/journeys.mjs` with `playwright-core` (which
//! downloads no browser) and `axe-core`, both pinned by `tests/browser/package-lock.json`.
//!
//! Each scenario is one test with its own hub and its own browser. The walk goes through
//! every hub page a citizen meets: the identity-provider picker, the demo IdP's login and
//! back to the RP; the cycle-3 question (an invalid answer first, so its error state is
//! shown, then a valid one) and back to the RP; the error pages (404, a bad link's 400, 429,
//! a journey timed out), the information pages, and a journey whose first IdP fails.
//! On each hub page: axe-core at WCAG 2.2 AA, `lang`, `<title>`, a full-page screenshot
//! (under `target/browser-screenshots/`, with `<scenario>.json`: what was recorded).
//!
//! What the pages must have is in [`HUB_PAGES`] and `govuk_template_problems`;
//! how the walk finds its way on them (form actions, field names, roles) is in `PAGES` at
//! the top of `journeys.mjs`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpResponse, HttpServer};
use serde_json::{json, Value};

use crate::programs::NodeProject;
use crate::util::*;

static BROWSER_PROJECT: NodeProject = NodeProject::new(
    "tests/browser",
    "the browser tests (tests/browser.rs, docs/interop.md)",
);

/// Debian's Chromium (`apt-get install chromium`); `HUB_TEST_CHROMIUM` names another.
const CHROMIUM: &str = "/usr/bin/chromium";
/// Each navigation and each action in the browser gets at most this long.
const STEP_TIMEOUT_MS: u64 = 30_000;
/// A whole scenario, browser start included (it takes seconds; this is a backstop).
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(150);

/// Every hub page the walks record (`journey/page`, as `journeys.mjs` names them) and the
/// HTTP status it must come with.
const HUB_PAGES: &[(&str, u16)] = &[
    ("errors/not-found", 404),
    ("errors/bad-link", 400),
    ("errors/too-many-requests", 429),
    ("info/start", 200),
    ("info/accessibility", 200),
    ("info/privacy", 200),
    ("info/cookies", 200),
    ("errors/timed-out", 200),
    ("match/picker", 200),
    ("match/picker-error", 422),
    ("match/no-account", 200),
    ("cycle3/picker", 200),
    ("cycle3/question", 200),
    ("cycle3/question-error", 422),
    ("problem/picker", 200),
    ("problem/idp-problem", 200),
    ("problem/choose-another", 200),
];

/// Pages walked with the pointer only (the keyboard walk takes the main paths).
fn pointer_only(id: &str) -> bool {
    id.starts_with("problem/") || id == "match/picker-error" || id == "match/no-account"
}

/// The answers the walk gives on the cycle-3 page: Chris's NINO (he has two records; it
/// tells them apart), after one that is not a NINO at all.
const CYCLE3_INVALID: &str = "QQ12345";
const CYCLE3_VALID: &str = "QQ445566C";

/// The RPs of the journeys (registered with [`StandInRp`]'s redirect URI): one like
/// [`RP_MATCH`], one like [`RP_CYCLE3`].
const RP_BROWSER_MATCH: &str = "rp-browser-match";
const RP_BROWSER_CYCLE3: &str = "rp-browser-cycle3";
/// The RP of the journey whose first identity provider fails.
const RP_BROWSER_PROBLEM: &str = "rp-browser-problem";

/// How a scenario's citizen gets about.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Input {
    /// Clicks and typing.
    Pointer,
    /// Tab, arrow keys, Space, Enter and typing; no clicks.
    Keyboard,
}

struct Scenario {
    name: &'static str,
    input: Input,
    javascript: bool,
    /// Asked for with `ui_locales` on the authorization requests and `?lang=` on every URL
    /// the browser opens directly.
    lang: Option<&'static str>,
    error_pages: bool,
}

/// A walk's hub, what the browser recorded, and what the RP got back.
struct Walk {
    hub: TestHub,
    rp: StandInRp,
    report: Value,
    /// Each journey's name and the authorization request it starts from.
    requests: Vec<(&'static str, AuthRequest)>,
    started: Instant,
}

/// The RPs' redirect URI: a page for the browser to land on, and the query of each request
/// that arrived there.
struct StandInRp {
    callback: String,
    arrivals: Arrivals,
}

/// The query of each request at the RP's redirect URI.
type Arrivals = Arc<Mutex<Vec<HashMap<String, String>>>>;

const STAND_IN_RP_PAGE: &str = "<!doctype html><html lang=\"en\"><title>The service</title>\
    <h1>Back at the service</h1></html>";

impl StandInRp {
    fn start() -> Self {
        let (listener, origin) = free_listener();
        listener.set_nonblocking(true).expect("nonblocking");
        let arrivals = Arrivals::default();
        let data = web::Data::new(arrivals.clone());
        let server = HttpServer::new(move || {
            App::new().app_data(data.clone()).route(
                "/callback",
                web::get().to(
                    |query: web::Query<HashMap<String, String>>,
                     arrivals: web::Data<Arrivals>| async move {
                        arrivals.lock().expect("lock").push(query.into_inner());
                        HttpResponse::Ok()
                            .content_type("text/html; charset=utf-8")
                            .body(STAND_IN_RP_PAGE)
                    },
                ),
            )
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(1)
        .listen(listener)
        .expect("listen")
        .run();
        tokio::spawn(server);
        Self {
            callback: format!("{origin}/callback"),
            arrivals,
        }
    }

    fn arrivals(&self) -> Vec<HashMap<String, String>> {
        self.arrivals.lock().expect("lock").clone()
    }
}

fn chromium() -> String {
    let chromium = std::env::var("HUB_TEST_CHROMIUM").unwrap_or_else(|_| CHROMIUM.into());
    assert!(
        std::path::Path::new(&chromium).exists(),
        "Chromium is required for the browser tests (tests/browser.rs) and {chromium} does \
         not exist: install it (Debian, Ubuntu: `apt-get install chromium`; `make test` does \
         it when run as root), or set HUB_TEST_CHROMIUM to a Chromium or Chrome binary"
    );
    chromium
}

/// `target/browser-screenshots` (of the cargo target directory in use).
fn screenshot_dir() -> PathBuf {
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(&tmp).join("browser-screenshots")
}

/// Spawns a hub, runs the scenario in the browser, and returns what it recorded.
async fn walk(scenario: &Scenario) -> Walk {
    let chromium = chromium();
    BROWSER_PROJECT.ready();
    let started = Instant::now();
    let rp = StandInRp::start();
    // One authorization request a minute per RP: each journey makes one, and the test
    // makes [`RP_CREATE`]'s itself, so the browser meets the 429 page there.
    let hub = spawn_hub_on(
        free_listener().0,
        Options {
            settings: Some(
                json!({"rate_limits": {"per_client_per_minute": 1, "per_client_burst": 1}}),
            ),
            ..Default::default()
        },
        Extra {
            relying_parties: vec![
                rp_settings(RP_BROWSER_MATCH, &rp.callback, json!({})),
                rp_settings(
                    RP_BROWSER_CYCLE3,
                    &rp.callback,
                    json!({"cycle3_attribute": "nino"}),
                ),
                rp_settings(RP_BROWSER_PROBLEM, &rp.callback, json!({})),
            ],
            ..Default::default()
        },
    )
    .await;
    let request = |client_id: &str| {
        let request = AuthRequest::new(client_id).set("redirect_uri", Some(&rp.callback));
        match scenario.lang {
            Some(lang) => request.set("ui_locales", Some(lang)),
            None => request,
        }
    };
    // Two identity providers offer P1: the walk picks the second one on the picker.
    let pointer = scenario.input == Input::Pointer;
    let mut requests = vec![
        (
            "match",
            request(RP_BROWSER_MATCH).set("acr_values", Some("P1")),
        ),
        ("cycle3", request(RP_BROWSER_CYCLE3)),
    ];
    if pointer {
        requests.push((
            "problem",
            request(RP_BROWSER_PROBLEM).set("acr_values", Some("P1")),
        ));
    }
    let info_pages: Vec<Value> = ["start", "accessibility", "privacy", "cookies"]
        .iter()
        .map(|name| {
            let path = if *name == "start" { "" } else { name };
            json!({"name": name, "url": format!("{}/{path}", hub.url)})
        })
        .collect();
    let mut journeys = vec![
        json!({"name": "match", "start": requests[0].1.url(&hub), "person": "alice",
               "idp": {"id": IDP_BASIC, "name": "Basic IdP"}, "cycle3": null, "extras": pointer}),
        json!({"name": "cycle3", "start": requests[1].1.url(&hub), "person": "chris",
               "idp": {"id": IDP_MAIN, "name": "Main IdP"},
               "cycle3": {"invalid": CYCLE3_INVALID, "valid": CYCLE3_VALID}}),
    ];
    if pointer {
        journeys.push(json!({"name": "problem", "start": requests[2].1.url(&hub),
            "person": "alice", "idp": {"id": IDP_BASIC, "name": "Basic IdP"}, "cycle3": null,
            "then": {"id": IDP_MAIN, "name": "Main IdP"}}));
    }
    // A second hub whose journeys expire after a second, for the timed-out page.
    let short_lived = if scenario.error_pages {
        let hub = spawn_hub_on(
            free_listener().0,
            Options {
                journey_ttl_secs: Some(1),
                ..Default::default()
            },
            Extra {
                relying_parties: vec![rp_settings(RP_BROWSER_MATCH, &rp.callback, json!({}))],
                ..Default::default()
            },
        )
        .await;
        Some(hub)
    } else {
        None
    };
    let timed_out = short_lived.as_ref().map(|short| {
        let start = request(RP_BROWSER_MATCH).url(short);
        json!({"start": start, "wait_ms": 2500})
    });
    let mut error_pages = Vec::new();
    if scenario.error_pages {
        let limited = AuthRequest::new(RP_CREATE).url(&hub);
        let first = hub.http.get(&limited).send().await.expect("authorize");
        assert_eq!(first.status(), 200, "{RP_CREATE}'s one request this minute");
        error_pages = vec![
            json!({"name": "not-found", "url": format!("{}/no-such-page", hub.url)}),
            json!({"name": "bad-link", "url": AuthRequest::new("no-such-service").url(&hub)}),
            json!({"name": "too-many-requests", "url": limited}),
        ];
    }
    let input = json!({
        "chromium": chromium,
        "hub": hub.url,
        "other_hubs": short_lived.iter().map(|h| h.url.clone()).collect::<Vec<_>>(),
        "rp_callback": rp.callback,
        "screenshots": screenshot_dir(),
        "timeout_ms": STEP_TIMEOUT_MS,
        "scenarios": [{
            "name": scenario.name,
            "input": match scenario.input { Input::Pointer => "pointer", Input::Keyboard => "keyboard" },
            "javascript": scenario.javascript,
            "lang": scenario.lang,
            "error_pages": error_pages,
            "info_pages": if scenario.error_pages { info_pages } else { Vec::new() },
            "timed_out": timed_out,
            "journeys": journeys,
        }],
    });
    let output = BROWSER_PROJECT
        .json("journeys.mjs", &[&input.to_string()], SCENARIO_TIMEOUT)
        .await;
    let report = output["scenarios"][scenario.name].clone();
    eprintln!(
        "{} in {:?} (Chromium {}):\n{}",
        scenario.name,
        started.elapsed(),
        output["chromium"],
        serde_json::to_string_pretty(&summary(&report)).unwrap_or_default()
    );
    Walk {
        hub,
        rp,
        report,
        requests,
        started,
    }
}

/// Path, status, lang, title and violations of each page: what the test log shows.
fn summary(report: &Value) -> Value {
    let pages = report["pages"].as_array().cloned().unwrap_or_default();
    pages
        .iter()
        .map(|p| {
            json!(format!(
                "{} {} {} lang={} title={} violations={}",
                p["id"].as_str().unwrap_or(""),
                p["path"].as_str().unwrap_or(""),
                p["status"],
                p["lang"],
                p["title"],
                p["violations"]
            ))
        })
        .collect()
}

impl Walk {
    fn pages(&self) -> &[Value] {
        self.report["pages"].as_array().map_or(&[], Vec::as_slice)
    }

    /// Every journey reached the RP's redirect URI with a code for its own request, from
    /// this hub (as the browser saw it, and as the RP got it).
    fn assert_journeys_reached_the_rp(&self) {
        let journeys = self.report["journeys"].as_array().expect("journeys");
        let names: Vec<&str> = journeys.iter().filter_map(|j| j["name"].as_str()).collect();
        let expected: Vec<&str> = self.requests.iter().map(|(name, _)| *name).collect();
        assert_eq!(names, expected, "journeys walked");
        let arrivals = self.rp.arrivals();
        for (journey, (name, request)) in journeys.iter().zip(&self.requests) {
            assert_eq!(
                journey["reached_rp"],
                json!(true),
                "journey {name} did not reach the RP: {} (screenshot {}-{name}-failed.png \
                 in {})",
                journey["error"],
                self.report["scenario"],
                screenshot_dir().display()
            );
            let callback = &journey["callback"];
            assert!(
                callback["code"].as_str().is_some_and(|c| !c.is_empty()),
                "journey {name}: no code at the RP: {callback}"
            );
            assert_eq!(callback["state"], json!(request.state), "journey {name}");
            assert_eq!(callback["iss"], json!(self.hub.url), "journey {name}");
            let at_rp: Vec<_> = arrivals
                .iter()
                .filter(|a| a.get("state") == Some(&request.state))
                .collect();
            assert_eq!(at_rp.len(), 1, "journey {name}: the RP got {arrivals:?}");
            assert_eq!(
                at_rp[0].get("code"),
                callback["code"].as_str().map(String::from).as_ref()
            );
        }
        // The picker's choice was honoured: Alice went through the Basic IdP (the second
        // radio), Chris through the Main IdP.
        assert_eq!(
            journeys[0]["idp_origin"],
            json!(origin(self.hub.idp_basic.issuer()))
        );
        assert_eq!(
            journeys[1]["idp_origin"],
            json!(origin(self.hub.idp_main.issuer()))
        );
        // The journey whose first IdP failed went on with the one chosen next.
        let problem = journeys.len() > 2;
        if problem {
            assert_eq!(
                journeys[2]["idp_origin"],
                json!(origin(self.hub.idp_main.issuer()))
            );
        }
        let twice = usize::from(problem);
        assert_eq!(self.hub.idp_basic.authorization_requests().len(), 1 + twice);
        assert_eq!(self.hub.idp_main.authorization_requests().len(), 1 + twice);
    }

    /// Exactly the expected hub pages, each with its status, GOV.UK's page template in the
    /// scenario's language, and no axe violation.
    fn assert_pages(&self, scenario: &Scenario) {
        let (error_pages, lang) = (scenario.error_pages, scenario.lang);
        let ids: Vec<&str> = self
            .pages()
            .iter()
            .filter_map(|p| p["id"].as_str())
            .collect();
        let pointer = scenario.input == Input::Pointer;
        let expected: Vec<&str> = HUB_PAGES
            .iter()
            .map(|(id, _)| *id)
            .filter(|id| error_pages || !(id.starts_with("errors/") || id.starts_with("info/")))
            .filter(|id| pointer || !pointer_only(id))
            .collect();
        assert_eq!(ids, expected, "hub pages recorded");
        let mut problems = Vec::new();
        for page in self.pages() {
            let id = page["id"].as_str().unwrap_or("");
            let status = HUB_PAGES.iter().find(|(p, _)| *p == id).map(|(_, s)| *s);
            if page["status"].as_u64() != status.map(u64::from) {
                problems.push(format!(
                    "{id}: status {} (expected {status:?})",
                    page["status"]
                ));
            }
            if page["title"].as_str().is_none_or(|t| t.trim().is_empty()) {
                problems.push(format!("{id}: no <title>"));
            }
            let expected_lang = lang.unwrap_or("en");
            if page["lang"].as_str() != Some(expected_lang) {
                problems.push(format!(
                    "{id}: lang={}, expected {expected_lang}",
                    page["lang"]
                ));
            }
            // "Page - Service name - GOV.UK", the service named in the page's language.
            let service = if expected_lang == "cy" {
                "Profi eich hunaniaeth"
            } else {
                "Prove your identity"
            };
            let title = page["title"].as_str().unwrap_or("");
            let start_page = id == "info/start" && title == format!("{service} - GOV.UK");
            if !start_page && !title.ends_with(&format!(" - {service} - GOV.UK")) {
                problems.push(format!("{id}: title {title:?}"));
            }
            problems.extend(govuk_template_problems(id, page, expected_lang));
            if page["scripting"] != json!(scenario.javascript) {
                problems.push(format!(
                    "{id}: JavaScript {} in the browser, expected {}",
                    page["scripting"], scenario.javascript
                ));
            }
            problems.extend(axe_problems(page));
            let screenshot = screenshot_dir().join(page["screenshot"].as_str().unwrap_or("-"));
            if !screenshot.is_file() {
                problems.push(format!("{id}: no screenshot {}", screenshot.display()));
            }
        }
        assert!(
            problems.is_empty(),
            "hub pages in the browser ({}):\n{}",
            screenshot_dir().display(),
            problems.join("\n")
        );
        eprintln!("walk and checks took {:?}", self.started.elapsed());
    }
}

/// What the page lacks of GOV.UK's page template: GOV.UK Frontend's stylesheet, header,
/// footer (with the accessibility statement, privacy notice and cookies), skip link, and
/// the link to the other language.
fn govuk_template_problems(id: &str, page: &Value, lang: &str) -> Vec<String> {
    let govuk = &page["govuk"];
    let mut problems: Vec<String> = ["stylesheet", "header", "footer", "skip_link"]
        .iter()
        .filter(|part| govuk[**part] != json!(true))
        .map(|part| format!("{id}: no GOV.UK {part}"))
        .collect();
    let other = if lang == "cy" { "en" } else { "cy" };
    if govuk["language_links"] != json!([other]) {
        problems.push(format!("{id}: language toggle {}", govuk["language_links"]));
    }
    for link in ["/accessibility", "/privacy", "/cookies"] {
        if !govuk["footer_links"]
            .as_array()
            .is_some_and(|links| links.iter().any(|l| l == link))
        {
            problems.push(format!("{id}: no {link} in the footer"));
        }
    }
    problems
}

/// The page's axe violations (any fails the test), or that axe checked nothing.
fn axe_problems(page: &Value) -> Vec<String> {
    let id = page["id"].as_str().unwrap_or("");
    if page["passed"].as_array().is_none_or(Vec::is_empty) {
        return vec![format!("{id}: axe checked nothing: {}", page["passed"])];
    }
    let violations = page["violations"].as_array().cloned().unwrap_or_default();
    violations
        .iter()
        .map(|v| {
            format!(
                "{id}: axe {} ({}, {} element(s): {}): {}",
                v["id"], v["impact"], v["nodes"], v["targets"], v["help"]
            )
        })
        .collect()
}

fn origin(url: &url::Url) -> String {
    url.origin().ascii_serialization()
}

async fn run(scenario: Scenario) {
    let walk = walk(&scenario).await;
    walk.assert_journeys_reached_the_rp();
    walk.assert_pages(&scenario);
}

/// Clicks and typing, with JavaScript: every hub page, and both journeys back to the RP.
#[tokio::test]
async fn every_hub_page_passes_axe_in_chromium() {
    run(Scenario {
        name: "default",
        input: Input::Pointer,
        javascript: true,
        lang: None,
        error_pages: true,
    })
    .await;
}

/// Tab, arrow keys, Space and Enter only: the picker (the second identity provider chosen
/// with an arrow key), the demo IdP and the cycle-3 question, to the RP.
#[tokio::test]
async fn the_journeys_work_with_the_keyboard_alone() {
    run(Scenario {
        name: "keyboard",
        input: Input::Keyboard,
        javascript: true,
        lang: None,
        error_pages: false,
    })
    .await;
}

/// JavaScript disabled: the pages' plain forms still get the citizen to the RP.
#[tokio::test]
async fn the_journeys_work_without_javascript() {
    run(Scenario {
        name: "nojs",
        input: Input::Pointer,
        javascript: false,
        lang: None,
        error_pages: true,
    })
    .await;
}

/// The same walk asking for Welsh (`ui_locales=cy`, `?lang=cy`): every page in Welsh,
/// `lang="cy"`, with a link to the English page.
#[tokio::test]
async fn the_walk_in_welsh() {
    run(Scenario {
        name: "cy",
        input: Input::Pointer,
        javascript: true,
        lang: Some("cy"),
        error_pages: true,
    })
    .await;
}
