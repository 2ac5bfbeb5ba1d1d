//! The journey load generator (crates/journey-load) against an in-process hub: it counts
//! complete journeys, times every step, classifies failures and reads CPU from /proc; it
//! paces journey starts at a rate (open loop) and parks journeys in flight at the IdP.

use std::collections::HashSet;
use std::time::Duration;

use journey_load::{Flow, LoadConfig, LoadError, ParkReport, ProcessSelection, Report, Stop};
use url::Url;

use crate::util::{secret_of, spawn_hub, TestHub, IDP_MAIN, RP_MATCH, TEST_RP_CALLBACK};

const HUB_STEPS: [&str; 7] = [
    "authorize",
    "choose_idp",
    "idp_login_page",
    "idp_login",
    "callback",
    "token",
    "userinfo",
];

/// `journeys` journeys by `users` users: alice at the main demo IdP for [`RP_MATCH`].
fn load(hub: &TestHub, users: usize, journeys: u64, secret: String) -> LoadConfig {
    let mut config = LoadConfig::new(
        Flow::Hub,
        Url::parse(&hub.url).unwrap(),
        Url::parse(TEST_RP_CALLBACK).unwrap(),
    );
    config.users = users;
    config.stop = Stop::Journeys(journeys);
    config.person = "alice".into();
    config.idp = IDP_MAIN.into();
    config.client_id = RP_MATCH.into();
    config.client_secret = secret;
    config.request_timeout = Duration::from_secs(5);
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_journeys_by_four_users_all_complete_and_are_timed() {
    let hub = spawn_hub().await;
    let mut config = load(&hub, 4, 20, secret_of(RP_MATCH));
    config.verify = true;
    config.processes = ProcessSelection {
        pids: vec![std::process::id()],
        names: vec![],
    };

    let report = journey_load::run(config).await.unwrap();

    assert_eq!(report.errors, Default::default(), "{report}");
    assert_eq!(
        (report.journeys, report.completed, report.failed),
        (20, 20, 0)
    );
    assert_eq!(report.journey.count, 20);
    let steps: Vec<&str> = report.steps.iter().map(|s| s.step.as_str()).collect();
    assert_eq!(steps, HUB_STEPS);
    for step in &report.steps {
        let l = &step.latency;
        assert_eq!(l.count, 20, "{}", step.step);
        assert!(
            0.0 < l.p50_ms && l.p50_ms <= l.p95_ms && l.p95_ms <= l.p99_ms && l.p99_ms <= l.max_ms
        );
    }
    assert!(report.journey.p50_ms >= report.step("callback").unwrap().p50_ms);
    // The hub's share: at least its slowest step, at most the whole journey.
    let at_hub = report.journey_at_op.as_ref().unwrap();
    assert_eq!(at_hub.count, 20);
    assert!(at_hub.p50_ms >= report.step("callback").unwrap().p50_ms);
    assert!(at_hub.max_ms <= report.journey.max_ms);
    assert!(report.journeys_per_sec > 0.0);

    // The hub runs in this test's process, so its CPU is this process's.
    let [process] = report.processes.as_slice() else {
        panic!("one process expected: {:?}", report.processes);
    };
    assert_eq!(process.pid, std::process::id());
    assert!(process.cpu_secs.unwrap() > 0.0);
    assert!(process.peak_rss_kib.unwrap() >= process.rss_kib.unwrap());
    assert!(report.cpu_ms_per_journey.unwrap() > 0.0);
    assert_eq!(report.cpu_secs_total, process.cpu_secs);

    let json = report.to_json().unwrap();
    let back: Report = serde_json::from_str(&json).unwrap();
    assert_eq!(back, report);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["completed"], 20);
    assert_eq!(value["steps"][5]["step"], "token");
    assert!(value["steps"][5]["p99_ms"].is_number());
    assert!(value["cpu_ms_per_journey"].is_number());
    assert!(
        value.get("schedule_lag").is_none(),
        "a closed loop has no schedule"
    );

    let table = report.to_string();
    for step in HUB_STEPS {
        assert!(table.contains(step), "{table}");
    }
    assert!(table.contains("CPU per journey"), "{table}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_client_secret_fails_every_journey_at_the_token_endpoint() {
    let hub = spawn_hub().await;
    let config = load(&hub, 2, 6, "not-the-secret".into());

    let report = journey_load::run(config).await.unwrap();

    assert_eq!(
        (report.journeys, report.completed, report.failed),
        (6, 0, 6)
    );
    assert_eq!(
        report.errors,
        [("token:invalid_client".to_owned(), 6)]
            .into_iter()
            .collect()
    );
    assert_eq!(report.journey.count, 0);
    assert_eq!(
        report.step("callback").unwrap().count,
        6,
        "steps before the failure are timed"
    );
    assert_eq!(report.step("token").unwrap().count, 0);
    assert!(report.processes.is_empty());
    assert_eq!(report.cpu_ms_per_journey, None);
    assert!(report.to_string().contains("token:invalid_client"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_run_with_warmup_records_only_the_measured_window() {
    let hub = spawn_hub().await;
    let mut config = load(&hub, 2, 0, secret_of(RP_MATCH));
    config.stop = Stop::After(Duration::from_millis(700));
    config.warmup = Duration::from_millis(300);

    let report = journey_load::run(config).await.unwrap();

    assert_eq!(report.failed, 0, "{report}");
    assert!(report.completed > 0, "{report}");
    assert_eq!(report.journey.count, report.completed);
    assert!(report.elapsed_secs >= 0.7, "{report}");
    assert_eq!(report.warmup_secs, 0.3);
}

#[tokio::test]
async fn an_unknown_person_is_a_classified_failure_not_a_crash() {
    let hub = spawn_hub().await;
    let mut config = load(&hub, 1, 2, secret_of(RP_MATCH));
    config.person = "nobody-at-all".into();

    let report = journey_load::run(config).await.unwrap();

    assert_eq!(
        report.errors,
        [("idp_login_page:unknown_person".to_owned(), 2)]
            .into_iter()
            .collect()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paced_second_at_twenty_per_second_starts_twenty_journeys_and_reports_their_lag() {
    let hub = spawn_hub().await;
    let mut config = load(&hub, 4, 0, secret_of(RP_MATCH));
    config.stop = Stop::After(Duration::from_secs(1));
    config.rate = Some(20.0);

    let report = journey_load::run(config).await.unwrap();

    assert_eq!(report.failed, 0, "{report}");
    // Starts due at 0, 50, ..., 950 ms; a closed loop of 4 users would make many more.
    assert!((16..=24).contains(&report.completed), "{report}");
    assert!(
        report.elapsed_secs >= 0.9,
        "spread over the second: {report}"
    );
    assert_eq!(report.rate_per_sec, Some(20.0));
    let lag = report.schedule_lag.as_ref().expect("lag figures");
    assert_eq!(lag.count, report.journeys, "one lag per journey started");
    assert!(0.0 <= lag.p99_ms && lag.p99_ms <= lag.max_ms, "{lag:?}");

    let table = report.to_string();
    assert!(table.contains("schedule lag"), "{table}");
    let json = report.to_json().unwrap();
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["rate_per_sec"], 20.0);
    assert!(value["schedule_lag"]["p99_ms"].is_number(), "{json}");
    assert!(value["schedule_lag"]["max_ms"].is_number(), "{json}");
    assert_eq!(serde_json::from_str::<Report>(&json).unwrap(), report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paced_warmup_and_a_paced_count_start_only_their_scheduled_journeys() {
    let hub = spawn_hub().await;
    let mut config = load(&hub, 3, 6, secret_of(RP_MATCH));
    config.rate = Some(20.0);
    config.warmup = Duration::from_millis(300);

    let report = journey_load::run(config).await.unwrap();

    assert_eq!(
        (report.journeys, report.completed, report.failed),
        (6, 6, 0),
        "{report}"
    );
    assert!(
        report.elapsed_secs >= 0.25,
        "last start due at 250 ms: {report}"
    );
    assert_eq!(report.schedule_lag.as_ref().map(|l| l.count), Some(6));
    // Warmup starts due at 0, 50, ..., 250 ms, then the 6 measured ones.
    assert_eq!(hub.events_of_type("journey_started").await.len(), 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_journeys_parked_by_five_users_wait_at_the_idp() {
    let hub = spawn_hub().await;
    let mut config = load(&hub, 5, 0, secret_of(RP_MATCH));
    config.processes = ProcessSelection {
        pids: vec![std::process::id()],
        names: vec![],
    };

    let report = journey_load::park(config, 30).await.unwrap();

    assert_eq!(
        (report.requested, report.parked, report.failed),
        (30, 30, 0),
        "{report}"
    );
    assert!(report.errors.is_empty(), "{report}");
    assert_eq!(report.park.count, 30);
    let steps: Vec<(&str, u64)> = report
        .steps
        .iter()
        .map(|s| (s.step.as_str(), s.latency.count))
        .collect();
    assert_eq!(steps, [("authorize", 30), ("choose_idp", 30)]);
    assert!(report.elapsed_secs > 0.0 && report.parked_per_sec > 0.0);
    let [process] = report.processes.as_slice() else {
        panic!("one process expected: {:?}", report.processes);
    };
    assert_eq!(report.rss_kib_total, process.rss_kib);
    assert!(report.cpu_ms_per_park.unwrap() > 0.0);

    // The hub holds 30 distinct journeys that chose the IdP; none came back from it.
    let selected = hub.events_of_type("idp_selected").await;
    let journeys: HashSet<&str> = selected
        .iter()
        .filter_map(|e| e["journey_id"].as_str())
        .collect();
    assert_eq!((selected.len(), journeys.len()), (30, 30));
    assert!(hub.events_of_type("idp_returned").await.is_empty());
    assert!(hub.events_of_type("assertion_issued").await.is_empty());

    let table = report.to_string();
    assert!(table.contains("parked: 30 of 30"), "{table}");
    let json = report.to_json().unwrap();
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        (value["parked"].as_u64(), value["failed"].as_u64()),
        (Some(30), Some(0))
    );
    assert_eq!(serde_json::from_str::<ParkReport>(&json).unwrap(), report);
}

#[tokio::test]
async fn parking_is_refused_for_a_flow_without_an_idp() {
    let hub = spawn_hub().await;
    let mut config = load(&hub, 1, 0, secret_of(RP_MATCH));
    config.flow = Flow::OidcProvider;

    let error = journey_load::park(config, 1).await.unwrap_err();

    assert!(
        matches!(error, LoadError::ParkNeedsHub("oidc-provider")),
        "{error}"
    );
    assert!(hub.events_of_type("journey_started").await.is_empty());
}
