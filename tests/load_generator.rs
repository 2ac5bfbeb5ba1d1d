//! The journey load generator (crates/journey-load) against an in-process hub: it counts
//! complete journeys, times every step, classifies failures and reads CPU from /proc.

use std::time::Duration;

use journey_load::{Flow, LoadConfig, ProcessSelection, Report, Stop};
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
