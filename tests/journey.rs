//! Whole journeys, happy and unhappy, through the hub.

use reqwest::StatusCode;
use serde_json::json;

use crate::util::*;

#[tokio::test]
async fn matched_person_gets_a_signed_assertion_with_record_and_level() {
    let hub = spawn_hub().await;
    let request = AuthRequest::new(RP_MATCH);
    let code = hub.code_for(&request, "alice").await;
    let (status, body) = hub
        .redeem(RP_MATCH, &secret_of(RP_MATCH), &code, &request.verifier)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    let claims = hub
        .verify_id_token(body["id_token"].as_str().unwrap(), RP_MATCH)
        .await;
    assert_eq!(
        claims["match"],
        json!({"status": "matched", "record_id": "123"})
    );
    assert_eq!(claims["acr"], "P2");
    assert_eq!(claims["nonce"], json!(request.nonce));
    assert!(claims["auth_time"].as_i64().unwrap() > 0);
    assert!(claims.get("vot").is_none(), "vot only when vtr was used");
    let sub = claims["sub"].as_str().unwrap();
    assert_ne!(sub, "alice", "the IdP's subject never reaches the RP");

    let (status, info) = hub.userinfo(body["access_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(info["sub"], sub);
    assert_eq!(info["given_name"], "Alice");
    assert_eq!(info["family_name"], "Smith");
    assert_eq!(info["birthdate"], "1980-04-10");
    assert_eq!(info["address"]["postal_code"], "LS1 4AB");
}

#[tokio::test]
async fn unmatched_person_is_created_when_the_rp_allows_it() {
    let hub = spawn_hub().await;
    let claims = hub.id_token_for(RP_CREATE, "bob").await;
    // No record: the claim is absent, not `null` (absent claims are omitted).
    assert_eq!(claims["match"], json!({"status": "created"}));
}

#[tokio::test]
async fn unmatched_person_without_account_creation_goes_back_with_no_match() {
    let hub = spawn_hub().await;
    let request = AuthRequest::new(RP_MATCH);
    let params = hub
        .journey(&Browser::new(), &request, AtIdp::person("bob"))
        .await
        .rp();
    assert_eq!(params["error"], "access_denied");
    assert_eq!(params["reason"], "no_match");
    assert_eq!(params["state"], request.state);
    assert_eq!(params["iss"], hub.url);
    assert!(!params.contains_key("code"));
}

#[tokio::test]
async fn cycle3_resolves_an_ambiguous_match() {
    let hub = spawn_hub().await;
    let browser = Browser::new();
    let request = AuthRequest::new(RP_CYCLE3);
    let (status, url, page) = hub
        .journey(&browser, &request, AtIdp::person("chris"))
        .await
        .page();
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("National Insurance number"), "{page}");
    // A malformed answer is asked again, not held against the citizen.
    let (status, url2, again) = browser
        .submit(
            &url,
            &page,
            "/journey/cycle3",
            &[("value", "not a nino"), ("action", "answer")],
        )
        .await
        .page();
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    // GOV.UK's error pattern: the title says so, the summary links to the field, the
    // field is marked invalid and keeps what was typed.
    assert!(again.contains("<title>Error: "), "{again}");
    assert!(again.contains("govuk-error-summary"), "{again}");
    assert!(again.contains("href=\"#value\""), "{again}");
    assert!(again.contains("aria-invalid=\"true\""), "{again}");
    assert!(again.contains("value=\"not a nino\""), "{again}");
    assert!(
        again.contains("Enter your National Insurance number in the correct format"),
        "{again}"
    );
    let params = browser
        .submit(
            &url2,
            &again,
            "/journey/cycle3",
            &[("value", "qq 44 55 66 c"), ("action", "answer")],
        )
        .await
        .rp();
    let claims = hub
        .claims_for(RP_CYCLE3, &params["code"], &request.verifier)
        .await;
    assert_eq!(
        claims["match"],
        json!({"status": "matched", "record_id": "C-202"})
    );
}

#[tokio::test]
async fn cycle3_with_a_wrong_answer_is_no_match() {
    let hub = spawn_hub().await;
    let request = AuthRequest::new(RP_CYCLE3);
    let params = hub.cycle3_answer(&request, "chris", "QQ999999D").await;
    assert_eq!(params["error"], "access_denied");
    assert_eq!(params["reason"], "no_match");
}

#[tokio::test]
async fn cycle3_declined_is_no_match() {
    let hub = spawn_hub().await;
    let browser = Browser::new();
    let (_, url, page) = hub
        .journey(
            &browser,
            &AuthRequest::new(RP_CYCLE3),
            AtIdp::person("chris"),
        )
        .await
        .page();
    let params = browser
        .submit(&url, &page, "/journey/cycle3", &[("action", "skip")])
        .await
        .rp();
    assert_eq!(params["reason"], "no_match");
}

#[tokio::test]
async fn ambiguous_match_without_cycle3_is_never_a_guess() {
    let hub = spawn_hub().await;
    let params = hub
        .journey(
            &Browser::new(),
            &AuthRequest::new(RP_MATCH),
            AtIdp::person("chris"),
        )
        .await
        .rp();
    assert_eq!(params["reason"], "no_match");
}

#[tokio::test]
async fn people_who_moved_match_on_a_previous_address() {
    let hub = spawn_hub().await;
    let dana = hub.id_token_for(RP_MATCH, "dana").await;
    assert_eq!(
        dana["match"]["record_id"], "D-301",
        "matched on a previous address"
    );
}

#[tokio::test]
async fn name_and_date_of_birth_alone_need_cycle3() {
    let hub = spawn_hub().await;
    // Erik's IdP asserts no address: name and date of birth alone are not enough.
    let params = hub
        .journey(
            &Browser::new(),
            &AuthRequest::new(RP_MATCH),
            AtIdp::person("erik"),
        )
        .await
        .rp();
    assert_eq!(params["reason"], "no_match");
    // With his NINO at cycle 3 he is found.
    let request = AuthRequest::new(RP_CYCLE3);
    let params = hub.cycle3_answer(&request, "erik", "QQ 99 00 11 A").await;
    let code = params
        .get("code")
        .unwrap_or_else(|| panic!("no code: {params:?}"));
    let claims = hub.claims_for(RP_CYCLE3, code, &request.verifier).await;
    assert_eq!(claims["match"]["record_id"], "E-401");
}

#[tokio::test]
async fn a_level_no_idp_is_certified_for_is_an_error_at_the_rp() {
    let hub = spawn_hub().await;
    let request = AuthRequest::new(RP_MATCH).set("acr_values", Some("P3"));
    let params = Browser::new().get(&request.url(&hub)).await.rp();
    assert_eq!(params["error"], "access_denied");
    assert_eq!(params["reason"], "level_not_available");
    assert_eq!(params["state"], request.state);
    let failed = hub.events_of_type("journey_failed").await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["outcome"], "level_not_available");
    assert_eq!(failed[0]["rp"], RP_MATCH);
}

#[tokio::test]
async fn the_picker_offers_only_idps_certified_for_the_level() {
    let hub = spawn_hub().await;
    let (_, _, p2) = Browser::new()
        .get(&AuthRequest::new(RP_MATCH).url(&hub))
        .await
        .page();
    assert!(p2.contains(IDP_MAIN) && !p2.contains(IDP_BASIC), "{p2}");
    let low = AuthRequest::new(RP_MATCH).set("acr_values", Some("P1"));
    let (_, _, p1) = Browser::new().get(&low.url(&hub)).await.page();
    assert!(p1.contains(IDP_MAIN) && p1.contains(IDP_BASIC), "{p1}");
}

#[tokio::test]
async fn a_p1_journey_through_a_secret_authenticated_idp_completes() {
    let hub = spawn_hub().await;
    let request = AuthRequest::new(RP_MATCH).set("acr_values", Some("P1"));
    let params = hub
        .journey(
            &Browser::new(),
            &request,
            AtIdp::person("alice").via(IDP_BASIC),
        )
        .await
        .rp();
    let claims = hub
        .claims_for(RP_MATCH, &params["code"], &request.verifier)
        .await;
    assert_eq!(claims["acr"], "P1");
}

/// The main IdP is configured with `claims_in_id_token`: the hub asks for the matching
/// dataset in its ID token (the `claims` parameter) and makes no userinfo call there. The
/// basic IdP is asked through userinfo. Both lead to the same match and the same
/// attributes for the RP.
#[tokio::test]
async fn the_dataset_comes_from_the_id_token_of_an_idp_that_sends_it_there() {
    let hub = spawn_hub().await;
    let mut released = Vec::new();
    for idp in [IDP_MAIN, IDP_BASIC] {
        let request = AuthRequest::new(RP_MATCH).set("acr_values", Some("P1"));
        let params = hub
            .journey(&Browser::new(), &request, AtIdp::person("alice").via(idp))
            .await
            .rp();
        let (status, body) = hub
            .redeem(
                RP_MATCH,
                &secret_of(RP_MATCH),
                &params["code"],
                &request.verifier,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let claims = hub
            .verify_id_token(body["id_token"].as_str().unwrap(), RP_MATCH)
            .await;
        assert_eq!(claims["match"]["status"], "matched", "{claims}");
        let (status, mut info) = hub.userinfo(body["access_token"].as_str().unwrap()).await;
        assert_eq!(status, StatusCode::OK);
        info.as_object_mut().unwrap().remove("sub");
        released.push((claims["match"].clone(), info));
    }
    assert_eq!(released[0], released[1]);
    let info = &released[0].1;
    assert!(
        info["family_name"].is_string() && info["birthdate"].is_string(),
        "{info}"
    );
    assert_eq!(hub.idp_main.userinfo_requests(), 0);
    assert_eq!(hub.idp_basic.userinfo_requests(), 1);
    let claims_parameter = |idp: &devkit::idp::DemoIdp| {
        idp.authorization_requests()
            .iter()
            .any(|url| url.query_pairs().any(|(k, _)| k == "claims"))
    };
    assert!(claims_parameter(&hub.idp_main));
    assert!(!claims_parameter(&hub.idp_basic));
}

#[tokio::test]
async fn an_idp_asserting_a_lower_level_is_rejected() {
    let hub = spawn_hub().await;
    let browser = Browser::new();
    let failed = hub
        .journey(
            &browser,
            &AuthRequest::new(RP_MATCH),
            AtIdp::person("alice").simulate("lower_level"),
        )
        .await;
    let params = browser.back_to_service(failed).await.rp();
    assert_eq!(params["error"], "access_denied");
    assert_eq!(params["reason"], "level_too_low");
}

#[tokio::test]
async fn cancelling_at_the_idp_returns_access_denied_with_reason() {
    let hub = spawn_hub().await;
    let request = AuthRequest::new(RP_MATCH);
    let browser = Browser::new();
    let failed = hub
        .journey(
            &browser,
            &request,
            AtIdp::person("alice").simulate("cancel"),
        )
        .await;
    let params = browser.back_to_service(failed).await.rp();
    assert_eq!(params["error"], "access_denied");
    assert_eq!(params["reason"], "user_cancelled");
    assert_eq!(
        params["error_description"],
        "The user cancelled at the identity provider"
    );
    assert_eq!(params["state"], request.state);
}

#[tokio::test]
async fn idp_errors_map_to_standard_errors() {
    let hub = spawn_hub().await;
    let browser = Browser::new();
    let denied = hub
        .journey(
            &browser,
            &AuthRequest::new(RP_MATCH),
            AtIdp::person("alice").simulate("access_denied"),
        )
        .await;
    let denied = browser.back_to_service(denied).await.rp();
    assert_eq!(
        (denied["error"].as_str(), denied["reason"].as_str()),
        ("access_denied", "idp_access_denied")
    );
    let browser = Browser::new();
    let down = hub
        .journey(
            &browser,
            &AuthRequest::new(RP_MATCH),
            AtIdp::person("alice").simulate("temporarily_unavailable"),
        )
        .await;
    let down = browser.back_to_service(down).await.rp();
    assert_eq!(
        (down["error"].as_str(), down["reason"].as_str()),
        ("temporarily_unavailable", "idp_unavailable")
    );
}

#[tokio::test]
async fn an_unreachable_idp_offers_another_company_or_going_back() {
    let hub = spawn_hub_with(Options {
        include_down_idp: true,
        ..Default::default()
    })
    .await;
    let request = AuthRequest::new(RP_MATCH);
    let down = |browser: &Browser| {
        let (hub, request) = (&hub, &request);
        let browser = browser.clone();
        async move {
            let (_, url, picker) = browser.get(&request.url(hub)).await.page();
            browser
                .submit(&url, &picker, "/journey/idp", &[("idp", IDP_DOWN)])
                .await
        }
    };
    // Going back: the RP hears why.
    let browser = Browser::new();
    let problem = down(&browser).await;
    let params = browser.back_to_service(problem).await.rp();
    assert_eq!(params["error"], "temporarily_unavailable");
    assert_eq!(params["reason"], "idp_unavailable");

    // Another company: the same journey goes on to a code.
    let browser = Browser::new();
    let (status, url, page) = down(&browser).await.page();
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("is not available at the moment"), "{page}");
    assert_idp_problem_page(&page);
    let html = scraper::Html::parse_document(&page);
    let choose = scraper::Selector::parse("a[href*='step=choose']").unwrap();
    let href = html
        .select(&choose)
        .next()
        .unwrap()
        .value()
        .attr("href")
        .unwrap();
    let (status, url, picker) = browser.get(url.join(href).unwrap().as_str()).await.page();
    assert_eq!(status, StatusCode::OK, "{picker}");
    let params = hub
        .choose_and_login(&browser, &url, &picker, AtIdp::person("alice"))
        .await
        .rp();
    assert!(params.contains_key("code"), "{params:?}");
    assert_eq!(params["state"], request.state);
}

#[tokio::test]
async fn the_same_person_has_one_sub_per_rp_and_different_subs_across_rps() {
    let hub = spawn_hub().await;
    let first = hub.id_token_for(RP_MATCH, "alice").await;
    let second = hub.id_token_for(RP_MATCH, "alice").await;
    let elsewhere = hub.id_token_for(RP_CREATE, "alice").await;
    assert_eq!(first["sub"], second["sub"]);
    assert_ne!(first["sub"], elsewhere["sub"]);
    assert_eq!(
        second["match"]["record_id"], "123",
        "cycle 0 reuses the stored link"
    );
}

#[tokio::test]
async fn the_idp_is_never_told_which_rp_the_user_came_from() {
    let hub = spawn_hub().await;
    let request = AuthRequest::new(RP_MATCH);
    hub.code_for(&request, "alice").await;
    let seen = hub.idp_main.authorization_requests();
    assert_eq!(seen.len(), 1);
    let text = seen[0].as_str();
    for secret in [
        RP_MATCH,
        "Service",
        TEST_RP_CALLBACK,
        "127.0.0.1%3A9",
        &request.state,
        &request.nonce,
        &request.verifier,
    ] {
        assert!(!text.contains(secret), "IdP request leaks {secret}: {text}");
    }
    let params: std::collections::HashMap<_, _> = seen[0].query_pairs().into_owned().collect();
    assert_eq!(params["client_id"], "hub-at-main");
    assert_eq!(params["redirect_uri"], format!("{}/idp/callback", hub.url));
    assert_eq!(params["code_challenge_method"], "S256");
}

#[tokio::test]
async fn idp_hint_skips_the_picker() {
    let hub = spawn_hub().await;
    let browser = Browser::new();
    let request = AuthRequest::new(RP_MATCH).set("idp_hint", Some(IDP_MAIN));
    let (status, login_url, login) = browser.get(&request.url(&hub)).await.page();
    assert_eq!(status, StatusCode::OK);
    assert!(
        login_url
            .as_str()
            .starts_with(hub.idp_main.issuer().as_str()),
        "at the IdP: {login_url}"
    );
    let params = hub
        .login(&browser, &login_url, &login, AtIdp::person("alice"))
        .await
        .rp();
    assert!(params.contains_key("code"));
    // The start, held back, went into the log with the IdP's selection, before it.
    let started = hub.events_of_type("journey_started").await;
    let selected = hub.events_of_type("idp_selected").await;
    assert_eq!((started.len(), selected.len()), (1, 1));
    assert_eq!(started[0]["journey_id"], selected[0]["journey_id"]);
    assert_eq!(selected[0]["idp"], IDP_MAIN);
    assert!(started[0]["index"].as_u64() < selected[0]["index"].as_u64());
}

#[tokio::test]
async fn vtr_requests_get_a_vot() {
    let hub = spawn_hub().await;
    let request = AuthRequest::new(RP_MATCH)
        .set("acr_values", None)
        .set("vtr", Some(r#"["Cl.Cm.P2"]"#));
    let code = hub.code_for(&request, "alice").await;
    let claims = hub.claims_for(RP_MATCH, &code, &request.verifier).await;
    assert_eq!(claims["vot"], "Cl.Cm.P2");
    assert_eq!(claims["acr"], "P2");
}

#[tokio::test]
async fn back_button_after_completion_ends_at_the_rp_not_in_a_second_assertion() {
    let hub = spawn_hub().await;
    let browser = Browser::new();
    let request = AuthRequest::new(RP_MATCH);
    let (_, url, picker) = browser.get(&request.url(&hub)).await.page();
    let done = hub
        .choose_and_login(&browser, &url, &picker, AtIdp::person("alice"))
        .await
        .rp();
    assert!(done.contains_key("code"));
    // The citizen presses Back to the picker and submits it again.
    let again = browser
        .submit(&url, &picker, "/journey/idp", &[("idp", IDP_MAIN)])
        .await
        .rp();
    assert_eq!(again["error"], "access_denied");
    assert_eq!(again["reason"], "journey_finished");
    assert!(!again.contains_key("code"));
}

#[tokio::test]
async fn two_tabs_run_two_journeys_in_one_browser() {
    let hub = spawn_hub().await;
    let browser = Browser::new();
    let (first, second) = (AuthRequest::new(RP_MATCH), AuthRequest::new(RP_MATCH));
    let (_, url1, picker1) = browser.get(&first.url(&hub)).await.page();
    let (_, url2, picker2) = browser.get(&second.url(&hub)).await.page();
    let done2 = hub
        .choose_and_login(&browser, &url2, &picker2, AtIdp::person("alice"))
        .await
        .rp();
    let done1 = hub
        .choose_and_login(&browser, &url1, &picker1, AtIdp::person("alice"))
        .await
        .rp();
    assert_eq!(done1["state"], first.state);
    assert_eq!(done2["state"], second.state);
    assert!(done1.contains_key("code") && done2.contains_key("code"));
}

#[tokio::test]
async fn an_idp_callback_with_an_unknown_state_ends_on_a_hub_page() {
    let hub = spawn_hub().await;
    let response = hub
        .http
        .get(format!("{}/idp/callback?state=forged&code=x", hub.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.headers().get("location").is_none());
    assert!(response
        .text()
        .await
        .unwrap()
        .contains("Your session has ended"));
}

#[tokio::test]
async fn a_callback_from_another_browser_is_refused() {
    let hub = spawn_hub().await;
    let browser = Browser::new();
    let (_, url, picker) = browser
        .get(&AuthRequest::new(RP_MATCH).url(&hub))
        .await
        .page();
    let (_, login_url, login) = browser
        .submit(&url, &picker, "/journey/idp", &[("idp", IDP_MAIN)])
        .await
        .page();
    // The IdP's response is replayed in an attacker's browser (login CSRF).
    let (target, fields) = form_fields(&login_url, &login, "/login");
    let mut fields = fields;
    fields.push(("subject".into(), "alice".into()));
    let attacker = Browser::new();
    let (status, _, body) = attacker.post(target.as_str(), &fields).await.page();
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn an_expired_journey_says_so_then_goes_back_to_the_rp() {
    let hub = spawn_hub_with(Options {
        journey_ttl_secs: Some(1),
        ..Default::default()
    })
    .await;
    let browser = Browser::new();
    let request = AuthRequest::new(RP_MATCH);
    let (_, url, picker) = browser.get(&request.url(&hub)).await.page();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (status, url, page) = browser
        .submit(&url, &picker, "/journey/idp", &[("idp", IDP_MAIN)])
        .await
        .page();
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Your session has timed out"), "{page}");
    let params = browser
        .submit(&url, &page, "/journey/cancel", &[])
        .await
        .rp();
    assert_eq!(params["reason"], "journey_expired");
    assert_eq!(params["state"], request.state);
}

#[tokio::test]
async fn cancelling_on_the_picker_goes_back_to_the_rp() {
    let hub = spawn_hub().await;
    let browser = Browser::new();
    let (_, url, picker) = browser
        .get(&AuthRequest::new(RP_MATCH).url(&hub))
        .await
        .page();
    let params = browser
        .submit(&url, &picker, "/journey/cancel", &[])
        .await
        .rp();
    assert_eq!(params["error"], "access_denied");
    assert_eq!(params["reason"], "user_cancelled");
    assert_eq!(
        params["error_description"], "The user cancelled at the hub",
        "the citizen never reached an identity provider"
    );
}

#[tokio::test]
async fn a_forged_form_is_refused() {
    let hub = spawn_hub().await;
    let browser = Browser::new();
    let (_, url, picker) = browser
        .get(&AuthRequest::new(RP_MATCH).url(&hub))
        .await
        .page();
    let (status, _, body) = browser
        .submit(&url, &picker, "/journey/idp", &[("csrf", "forged")])
        .await
        .page();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("This page has expired"));
    let (status, _, _) = Browser::new()
        .submit(&url, &picker, "/journey/idp", &[])
        .await
        .page();
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "no journey cookie in another browser"
    );
}

#[tokio::test]
async fn the_demo_rp_shows_the_matched_record() {
    let hub = spawn_hub().await;
    let browser = Browser::new();
    let (status, url, home) = browser.get(&format!("{}/", hub.demo_rp_url)).await.page();
    assert_eq!(status, StatusCode::OK);
    assert!(home.contains("Prove your identity"));
    let (target, fields) = form_fields(&url, &home, "/login");
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&fields)
        .finish();
    let (_, picker_url, picker) = browser.get(&format!("{target}?{query}")).await.page();
    let (_, result_url, result) = hub
        .choose_and_login(&browser, &picker_url, &picker, AtIdp::person("alice"))
        .await
        .page();
    assert!(result_url.as_str().starts_with(&hub.demo_rp_url));
    assert!(result.contains("Matched record 123"), "{result}");
}

#[tokio::test]
async fn the_demo_rp_shows_the_reason_of_a_failure() {
    let hub = spawn_hub().await;
    let browser = Browser::new();
    let (_, picker_url, picker) = browser
        .get(&format!("{}/login", hub.demo_rp_url))
        .await
        .page();
    let cancelled = hub
        .choose_and_login(
            &browser,
            &picker_url,
            &picker,
            AtIdp::person("alice").simulate("cancel"),
        )
        .await;
    let (_, _, result) = browser.back_to_service(cancelled).await.page();
    assert!(
        result.contains("access_denied (user_cancelled)"),
        "{result}"
    );
}
