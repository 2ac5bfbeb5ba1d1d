//! The audit log against real SQLite files and a real PostgreSQL: appends,
//! proofs checked with the `audit` crate's verifiers, concurrency across
//! instances, auditor queries, checkpoints and the self-check's detection of
//! tampering done behind the store's back.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::time::{Duration, Instant};

use crate::common::{migrated_databases, Backend, TestDb};
use audit::{Checkpoint, Event, EventType, Hash, MemoryTree, NodeSource};
use store::{
    AppendedRange, AuditCheckReport, AuditFilter, AuditProblemKind, Database, DatabaseOptions,
    LogSeal, StoreError,
};

/// A distinct event: `n` makes its id and time unique (time = base + n seconds).
fn event(n: u64, rp: Option<&str>, event_type: EventType, journey: &str) -> Event {
    Event {
        id: format!("00000000-0000-4000-8000-{n:012x}"),
        time: time_of(n),
        journey_id: Some(journey.to_owned()),
        event_type,
        rp: rp.map(str::to_owned),
        idp: Some(
            if n.is_multiple_of(2) {
                "idp-even"
            } else {
                "idp-odd"
            }
            .to_owned(),
        ),
        level_requested: Some("LEVEL_2".to_owned()),
        level_achieved: None,
        outcome: Some(
            if n.is_multiple_of(3) {
                "matched"
            } else {
                "success"
            }
            .to_owned(),
        ),
        subject: None,
        match_cycle: None,
        reasons: vec![],
        instance: "hub-test".to_owned(),
        checkpoint: None,
        pruned_below: None,
        actor: None,
        fields: None,
    }
}

fn time_of(n: u64) -> String {
    let (h, m, s) = (n / 3600, (n / 60) % 60, n % 60);
    format!("2026-11-22T{:02}:{m:02}:{s:02}.000Z", 8 + h)
}

fn events(range: std::ops::Range<u64>) -> Vec<Event> {
    range
        .map(|n| {
            let rp = ["rp-a", "rp-b", "rp-c"][(n % 3) as usize];
            event(
                n,
                Some(rp),
                EventType::JourneyStarted,
                &format!("j{}", n / 4),
            )
        })
        .collect()
}

fn tree_of(events: &[Event]) -> MemoryTree {
    let mut tree = MemoryTree::new();
    for e in events {
        tree.push(audit::leaf_hash(&e.canonical_bytes()));
    }
    tree
}

fn b64(hash: &Hash) -> String {
    audit::encode_hash(hash)
}

/// What `hub audit prune` appends before it prunes below `below` (dated long
/// ago, so that it moves no time range).
fn prune_record(below: u64) -> Event {
    Event {
        time: time_of(0),
        pruned_below: Some(below),
        ..Event::new(EventType::LogPruned, "test")
    }
}

/// The hub's keys in these tests: one key for every database, as one hub.
fn seal() -> &'static LogSeal {
    static SEAL: std::sync::OnceLock<LogSeal> = std::sync::OnceLock::new();
    SEAL.get_or_init(|| LogSeal::generate().unwrap())
}

fn checkpoint(size: u64, root: &Hash) -> Checkpoint {
    Checkpoint::sign(size, root, time_of(size), &seal().key()).unwrap()
}

/// Every event in the log, read through the paged query.
async fn all_events(db: &Database, filter: &AuditFilter, page: u32) -> Vec<(u64, Event)> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let batch = db.audit_events(filter, after, page).await.unwrap();
        assert!(batch.len() <= page as usize);
        let Some(last) = batch.last() else {
            return out;
        };
        after = Some(last.0);
        out.extend(batch);
    }
}

// ---- appends, roots and proofs --------------------------------------------

#[tokio::test]
async fn batches_append_in_order_and_every_proof_verifies() {
    for t in migrated_databases().await {
        let db = &t.db;
        let b = t.backend;
        assert_eq!(db.audit_size().await.unwrap(), 0);
        assert_eq!(db.audit_root(0).await.unwrap(), audit::empty_root(), "{b}");
        assert_eq!(
            db.append_audit_events(&[], seal()).await.unwrap(),
            AppendedRange {
                first_seq: 0,
                size: 0
            }
        );

        let all = events(0..45);
        let mut start = 0;
        for len in [1, 2, 3, 7, 1, 16, 10, 5] {
            let range = db
                .append_audit_events(&all[start..start + len], seal())
                .await
                .unwrap();
            assert_eq!(range.seqs(), start as u64..(start + len) as u64, "{b}");
            start += len;
            assert_eq!(db.audit_size().await.unwrap(), start as u64);
        }
        assert_eq!(start, all.len());
        assert_eq!(db.audit_event(17).await.unwrap().as_ref(), Some(&all[17]));
        assert_eq!(db.audit_event(45).await.unwrap(), None);

        let sizes = [1u64, 2, 3, 4, 5, 7, 8, 9, 13, 16, 17, 31, 32, 33, 44, 45];
        let mut roots = Vec::new();
        for &size in &sizes {
            let expected = audit::root(size, &tree_of(&all[..size as usize])).unwrap();
            let root = db.audit_root(size).await.unwrap();
            assert_eq!(root, expected, "{b}: root at {size}");
            for (index, e) in all[..size as usize].iter().enumerate() {
                let index = index as u64;
                let proof = db.audit_inclusion_proof(index, size).await.unwrap();
                let leaf = audit::leaf_hash(&e.canonical_bytes());
                audit::verify_inclusion(&leaf, index, size, &proof, &root)
                    .unwrap_or_else(|err| panic!("{b}: inclusion {index} in {size}: {err}"));
            }
            roots.push((size, root));
        }
        for &(first, first_root) in &roots {
            for &(second, second_root) in roots.iter().filter(|r| r.0 >= first) {
                let proof = db.audit_consistency_proof(first, second).await.unwrap();
                audit::verify_consistency(first, second, &first_root, &second_root, &proof)
                    .unwrap_or_else(|err| panic!("{b}: consistency {first} -> {second}: {err}"));
            }
        }

        // A proof never verifies against the wrong leaf or root.
        let proof = db.audit_inclusion_proof(3, 45).await.unwrap();
        let wrong = audit::leaf_hash(&all[4].canonical_bytes());
        assert!(audit::verify_inclusion(&wrong, 3, 45, &proof, &roots[15].1).is_err());

        for err in [
            db.audit_root(46).await.unwrap_err(),
            db.audit_inclusion_proof(45, 45).await.unwrap_err(),
            db.audit_inclusion_proof(0, 46).await.unwrap_err(),
            db.audit_consistency_proof(9, 8).await.unwrap_err(),
            db.audit_consistency_proof(8, 46).await.unwrap_err(),
        ] {
            assert!(matches!(err, StoreError::InvalidInput(_)), "{b}: {err:?}");
        }
        assert!(
            db.audit_self_check(seal().published().verification_keys())
                .await
                .unwrap()
                .is_clean(),
            "{b}"
        );
        t.cleanup().await;
    }
}

#[tokio::test]
async fn large_batch_spans_several_statements_and_pages_cap_at_1000() {
    for t in migrated_databases().await {
        let db = &t.db;
        let all = events(0..2300);
        db.append_audit_events(&all[..1], seal()).await.unwrap();
        // More rows than one INSERT takes (events and nodes).
        let range = db.append_audit_events(&all[1..], seal()).await.unwrap();
        assert_eq!(range.seqs(), 1..2300);

        let page = db
            .audit_events(&AuditFilter::default(), None, 5000)
            .await
            .unwrap();
        assert_eq!(page.len(), 1000, "{}", t.backend);
        assert_eq!(page[999].0, 999);
        let read = all_events(db, &AuditFilter::default(), 1000).await;
        assert_eq!(read.len(), 2300);
        assert!(read
            .iter()
            .enumerate()
            .all(|(i, (seq, e))| *seq == i as u64 && *e == all[i]));
        assert!(db
            .audit_events(&AuditFilter::default(), None, 0)
            .await
            .unwrap()
            .is_empty());

        let root = db.audit_root(2300).await.unwrap();
        assert_eq!(root, audit::root(2300, &tree_of(&all)).unwrap());
        let report = db
            .audit_self_check(seal().published().verification_keys())
            .await
            .unwrap();
        assert!(report.is_clean(), "{}: {report:?}", t.backend);
        assert_eq!(report.events_checked, 2300);
        assert_eq!(report.nodes_checked, 2300 - u64::from(2300u64.count_ones()));
        t.cleanup().await;
    }
}

#[tokio::test]
async fn invalid_events_are_refused_whole() {
    for t in migrated_databases().await {
        let db = &t.db;
        let mut batch = events(0..3);
        batch[2].time = "yesterday".to_owned();
        let err = db.append_audit_events(&batch, seal()).await.unwrap_err();
        assert!(matches!(err, StoreError::InvalidInput(_)), "{err:?}");

        db.append_audit_events(&events(0..3), seal()).await.unwrap();
        // A duplicate id rolls back the whole batch, head included.
        let err = db
            .append_audit_events(&events(2..5), seal())
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Database(_)), "{err:?}");
        assert_eq!(db.audit_size().await.unwrap(), 3, "{}", t.backend);
        assert_eq!(
            db.append_audit_events(&events(3..5), seal())
                .await
                .unwrap()
                .seqs(),
            3..5
        );
        assert!(db
            .audit_self_check(seal().published().verification_keys())
            .await
            .unwrap()
            .is_clean());
        t.cleanup().await;
    }
}

// ---- concurrency -----------------------------------------------------------

/// 8 tasks x 50 events, on two `Database` handles (two hub instances), in
/// batches of 1 to 4: one gapless order, each task's events in its order.
async fn concurrent_appends(t: &TestDb) {
    let instances = [t.db.clone(), t.reopen().await];
    let mut tasks = Vec::new();
    for task in 0..8u64 {
        let db = instances[(task % 2) as usize].clone();
        tasks.push(tokio::spawn(async move {
            let mine: Vec<Event> = (0..50)
                .map(|i| {
                    event(
                        task * 1000 + i,
                        Some("rp-a"),
                        EventType::Matching,
                        &format!("task{task}"),
                    )
                })
                .collect();
            let mut seqs = Vec::new();
            let mut start = 0;
            while start < mine.len() {
                let len = (1 + (start + task as usize) % 4).min(mine.len() - start);
                let range = db
                    .append_audit_events(&mine[start..start + len], seal())
                    .await
                    .unwrap();
                assert_eq!(range.size - range.first_seq, len as u64);
                seqs.extend(range.seqs());
                start += len;
            }
            seqs
        }));
    }
    let mut claimed = Vec::new();
    for task in tasks {
        let seqs = task.await.unwrap();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]));
        claimed.extend(seqs);
    }
    claimed.sort_unstable();
    assert_eq!(claimed, (0..400).collect::<Vec<_>>(), "{}", t.backend);

    let db = &t.db;
    assert_eq!(db.audit_size().await.unwrap(), 400);
    let read = all_events(db, &AuditFilter::default(), 1000).await;
    assert_eq!(
        read.iter().map(|r| r.0).collect::<Vec<_>>(),
        (0..400).collect::<Vec<_>>()
    );
    let ids: HashSet<&str> = read.iter().map(|r| r.1.id.as_str()).collect();
    assert_eq!(ids.len(), 400, "{}: duplicates", t.backend);
    for task in 0..8 {
        let journey: Vec<&Event> = read
            .iter()
            .map(|r| &r.1)
            .filter(|e| e.journey_id.as_deref() == Some(&format!("task{task}")))
            .collect();
        assert_eq!(journey.len(), 50);
        assert!(journey.windows(2).all(|w| w[0].id < w[1].id), "task order");
    }
    let in_order: Vec<Event> = read.into_iter().map(|r| r.1).collect();
    let expected = audit::root(400, &tree_of(&in_order)).unwrap();
    assert_eq!(db.audit_root(400).await.unwrap(), expected, "{}", t.backend);
    let report = db
        .audit_self_check(seal().published().verification_keys())
        .await
        .unwrap();
    assert!(report.is_clean(), "{}: {report:?}", t.backend);
    assert_eq!(report.events_checked, 400);
}

/// A handle that finds the log already written (a restarted instance) reads
/// the head once and then appends from its tip in one statement; when another
/// instance has appended meanwhile, it notices and reads the head again.
#[tokio::test]
async fn appends_continue_from_the_tip_and_notice_other_instances_on_postgres() {
    let t = TestDb::postgres().await.migrated().await;
    let all = events(0..60);
    let first = Database::open(&t.url).await.unwrap();
    for chunk in all[..37].chunks(5) {
        first.append_audit_events(chunk, seal()).await.unwrap();
    }
    assert_eq!(first.audit_tip_size().await, Some(37));
    // Another instance starts on a log of 37 (its frontier spans three levels).
    let second = Database::open(&t.url).await.unwrap();
    assert_eq!(second.audit_tip_size().await, None);
    second
        .append_audit_events(&all[37..38], seal())
        .await
        .unwrap();
    assert_eq!(
        second.audit_tip_size().await,
        Some(38),
        "the head read leaves a tip"
    );
    second
        .append_audit_events(&all[38..41], seal())
        .await
        .unwrap();
    assert_eq!(second.audit_tip_size().await, Some(41));
    // The first instance's tip (37) is stale: its append lands at 41.
    let range = first
        .append_audit_events(&all[41..50], seal())
        .await
        .unwrap();
    assert_eq!(range.seqs(), 41..50);
    assert_eq!(first.audit_tip_size().await, Some(50));
    second
        .append_audit_events(&all[50..60], seal())
        .await
        .unwrap();
    assert_eq!(second.audit_tip_size().await, Some(60));

    let expected = audit::root(60, &tree_of(&all)).unwrap();
    assert_eq!(first.audit_root(60).await.unwrap(), expected);
    let report = first
        .audit_self_check(seal().published().verification_keys())
        .await
        .unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.events_checked, 60);
    drop((first, second));
    t.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_from_two_instances_are_gapless_on_postgres() {
    let t = TestDb::postgres().await.migrated().await;
    concurrent_appends(&t).await;
    t.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_from_two_instances_are_gapless_on_sqlite() {
    let t = TestDb::sqlite().await.migrated().await;
    concurrent_appends(&t).await;
    t.cleanup().await;
}

// ---- auditor queries -------------------------------------------------------

#[tokio::test]
async fn filters_restrict_and_pages_follow_the_cursor() {
    for t in migrated_databases().await {
        let db = &t.db;
        let b = t.backend;
        let mut all = events(0..60);
        all[7].event_type = EventType::TokensIssued;
        all[40].event_type = EventType::TokensIssued;
        all[50].rp = None;
        all[50].event_type = EventType::AuditorTokenIssued;
        for chunk in all.chunks(9) {
            db.append_audit_events(chunk, seal()).await.unwrap();
        }
        let expect = |pred: &dyn Fn(&Event) -> bool| -> Vec<u64> {
            (0..60u64).filter(|&i| pred(&all[i as usize])).collect()
        };
        let run = |filter: AuditFilter, page: u32| async move {
            all_events(db, &filter, page)
                .await
                .into_iter()
                .map(|r| r.0)
                .collect::<Vec<u64>>()
        };
        let rp_is = |e: &Event, rps: &[&str]| e.rp.as_deref().is_some_and(|r| rps.contains(&r));

        // RP restriction (an auditor scoped to some RPs), combined with `rp`.
        let scoped = |rps: &[&str]| AuditFilter {
            rps: Some(rps.iter().map(|s| (*s).to_owned()).collect()),
            ..AuditFilter::default()
        };
        assert_eq!(
            run(scoped(&["rp-a", "rp-c"]), 7).await,
            expect(&|e| rp_is(e, &["rp-a", "rp-c"])),
            "{b}"
        );
        assert_eq!(
            run(scoped(&["rp-b"]), 1000).await,
            expect(&|e| rp_is(e, &["rp-b"]))
        );
        assert!(run(scoped(&[]), 1000).await.is_empty(), "{b}: empty list");
        assert!(run(scoped(&["nobody"]), 1000).await.is_empty());
        let inside = AuditFilter {
            rp: Some("rp-c".into()),
            ..scoped(&["rp-a", "rp-c"])
        };
        assert_eq!(run(inside, 4).await, expect(&|e| rp_is(e, &["rp-c"])));
        let outside = AuditFilter {
            rp: Some("rp-b".into()),
            ..scoped(&["rp-a"])
        };
        assert!(run(outside, 1000).await.is_empty(), "{b}: rp outside rps");

        // Time range [from, to), bounds in any offset.
        let range = AuditFilter {
            from: Some("2026-11-22T09:00:10+01:00".into()),
            to: Some(time_of(25).replace(".000Z", "Z")),
            ..AuditFilter::default()
        };
        assert_eq!(run(range, 6).await, (10..25).collect::<Vec<_>>(), "{b}");
        let bad = AuditFilter {
            from: Some("last tuesday".into()),
            ..AuditFilter::default()
        };
        let err = db.audit_events(&bad, None, 10).await.unwrap_err();
        assert!(matches!(err, StoreError::InvalidInput(_)), "{err:?}");

        // Type, journey, IdP, outcome, and a conjunction.
        let of_type = |t: &str| AuditFilter {
            event_type: Some(t.into()),
            ..AuditFilter::default()
        };
        assert_eq!(run(of_type("tokens_issued"), 1).await, vec![7, 40], "{b}");
        assert_eq!(run(of_type("auditor_token_issued"), 5).await, vec![50]);
        let journey = AuditFilter {
            journey_id: Some("j3".into()),
            ..AuditFilter::default()
        };
        assert_eq!(run(journey, 3).await, vec![12, 13, 14, 15]);
        let combined = AuditFilter {
            idp: Some("idp-even".into()),
            outcome: Some("matched".into()),
            rps: Some(vec!["rp-a".into()]),
            ..AuditFilter::default()
        };
        assert_eq!(
            run(combined, 2).await,
            expect(&|e| e.idp.as_deref() == Some("idp-even")
                && e.outcome.as_deref() == Some("matched")
                && rp_is(e, &["rp-a"]))
        );

        // The cursor is exclusive; a page is in seq order.
        let page = db
            .audit_events(&scoped(&["rp-b", "rp-a"]), Some(4), 3)
            .await
            .unwrap();
        assert_eq!(page.iter().map(|r| r.0).collect::<Vec<_>>(), vec![6, 7, 9]);
        assert_eq!(page[0].1, all[6]);
        t.cleanup().await;
    }
}

/// Instances stamp events before appending them, so along seq the times go
/// back and forth: a time range must still return exactly its events, even
/// though it is answered from a seq window.
#[tokio::test]
async fn time_ranges_are_exact_when_times_are_out_of_order() {
    for t in migrated_databases().await {
        let db = &t.db;
        let b = t.backend;
        // Nominally 10 s apart, each up to 35 s early or late (deterministic).
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut jitter = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % 71) as i64 - 35
        };
        let base = 1_795_000_000_i64; // 2026-11-18
        let all: Vec<Event> = (0..90u64)
            .map(|n| {
                let secs = base + 10 * n as i64 + jitter();
                let time = chrono::DateTime::from_timestamp(secs, 0)
                    .unwrap()
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
                Event {
                    time,
                    ..event(
                        n,
                        Some(["rp-a", "rp-b"][(n % 2) as usize]),
                        EventType::Matching,
                        "j",
                    )
                }
            })
            .collect();
        for chunk in all.chunks(7) {
            db.append_audit_events(chunk, seal()).await.unwrap();
        }
        let instant = |offset: i64| {
            chrono::DateTime::from_timestamp(base + offset, 0)
                .unwrap()
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        };
        let mut bounds: Vec<Option<String>> = vec![None];
        bounds.extend(
            [-100, -36, 0, 1, 95, 300, 301, 455, 880, 899, 925, 2000].map(|o| Some(instant(o))),
        );
        for from in &bounds {
            for to in &bounds {
                for rps in [None, Some(vec!["rp-b".to_owned()])] {
                    let filter = AuditFilter {
                        from: from.clone(),
                        to: to.clone(),
                        rps: rps.clone(),
                        ..AuditFilter::default()
                    };
                    let got: Vec<u64> = all_events(db, &filter, 4)
                        .await
                        .into_iter()
                        .map(|r| r.0)
                        .collect();
                    let expected: Vec<u64> = (0..90u64)
                        .filter(|&n| {
                            let e = &all[n as usize];
                            from.as_ref()
                                .is_none_or(|f| e.time.as_str() >= f.replace('Z', ".000Z").as_str())
                                && to.as_ref().is_none_or(|t| {
                                    e.time.as_str() < t.replace('Z', ".000Z").as_str()
                                })
                                && rps
                                    .as_ref()
                                    .is_none_or(|r| r.contains(e.rp.as_ref().unwrap()))
                        })
                        .collect();
                    assert_eq!(got, expected, "{b}: {from:?}..{to:?} {rps:?}");
                }
            }
        }
        assert!(
            db.audit_self_check(seal().published().verification_keys())
                .await
                .unwrap()
                .is_clean(),
            "{b}"
        );
        t.cleanup().await;
    }
}

// ---- checkpoints -------------------------------------------------------------

#[tokio::test]
async fn checkpoints_are_kept_and_must_match_the_log() {
    for t in migrated_databases().await {
        let db = &t.db;
        assert_eq!(db.latest_checkpoint().await.unwrap(), None);
        let all = events(0..20);
        db.append_audit_events(&all[..12], seal()).await.unwrap();
        let cp12 = checkpoint(12, &db.audit_root(12).await.unwrap());
        db.save_checkpoint(&cp12).await.unwrap();
        db.save_checkpoint(&cp12).await.unwrap();
        db.append_audit_events(&all[12..], seal()).await.unwrap();
        let cp20 = checkpoint(20, &db.audit_root(20).await.unwrap());
        db.save_checkpoint(&cp20).await.unwrap();
        let cp5 = checkpoint(5, &db.audit_root(5).await.unwrap());
        db.save_checkpoint(&cp5).await.unwrap();

        assert_eq!(db.latest_checkpoint().await.unwrap(), Some(cp20.clone()));
        assert_eq!(db.checkpoints().await.unwrap(), vec![cp5, cp12, cp20]);

        for bad in [
            checkpoint(7, &[7; 32]),
            checkpoint(21, &audit::empty_root()),
            Checkpoint {
                root_hash: "not base64!".into(),
                ..checkpoint(3, &[0; 32])
            },
        ] {
            let err = db.save_checkpoint(&bad).await.unwrap_err();
            assert!(
                matches!(err, StoreError::InvalidInput(_)),
                "{}: {err:?}",
                t.backend
            );
        }
        assert_eq!(db.checkpoints().await.unwrap().len(), 3);
        let report = db
            .audit_self_check(seal().published().verification_keys())
            .await
            .unwrap();
        assert!(report.is_clean(), "{report:?}");
        assert_eq!(report.checkpoints_checked, 3);
        t.cleanup().await;
    }
}

// ---- self-check ------------------------------------------------------------

/// 37 events in a few batches with checkpoints at 18 and 37, checked clean;
/// then `tamper` behind the store's back; returns the new report per backend.
async fn tampered(tamper: impl Fn(&TestDb) -> Vec<String>) -> Vec<(Backend, AuditCheckReport)> {
    pruned_then_tampered(0, tamper).await
}

/// [`tampered`], with the events below `before` pruned (checked clean) first.
async fn pruned_then_tampered(
    before: u64,
    tamper: impl Fn(&TestDb) -> Vec<String>,
) -> Vec<(Backend, AuditCheckReport)> {
    let mut out = Vec::new();
    for t in migrated_databases().await {
        let db = &t.db;
        let all = events(0..37);
        for chunk in all.chunks(6) {
            db.append_audit_events(chunk, seal()).await.unwrap();
            let size = db.audit_size().await.unwrap();
            if size == 18 || size == 37 {
                let root = db.audit_root(size).await.unwrap();
                db.save_checkpoint(&checkpoint(size, &root)).await.unwrap();
            }
        }
        let clean = db
            .audit_self_check(seal().published().verification_keys())
            .await
            .unwrap();
        assert!(clean.is_clean(), "{}: {clean:?}", t.backend);
        assert_eq!(
            (
                clean.head_size,
                clean.events_checked,
                clean.nodes_checked,
                clean.checkpoints_checked
            ),
            (37, 37, 34, 2)
        );
        if before > 0 {
            // As `hub audit prune` does: the record first, then the prune.
            db.append_audit_events(&[prune_record(before)], seal())
                .await
                .unwrap();
            assert_eq!(db.prune_audit_events_before(before).await.unwrap(), before);
            let clean = db
                .audit_self_check(seal().published().verification_keys())
                .await
                .unwrap();
            assert!(clean.is_clean(), "{}: {clean:?}", t.backend);
            assert_eq!((clean.events_checked, clean.pruned), (38, before));
        }
        for statement in tamper(&t) {
            t.execute_raw(&statement).await;
        }
        let report = db
            .audit_self_check(seal().published().verification_keys())
            .await
            .unwrap();
        out.push((t.backend, report));
        t.cleanup().await;
    }
    out
}

fn kinds(report: &AuditCheckReport) -> Vec<(AuditProblemKind, u64)> {
    report.problems.iter().map(|p| (p.kind, p.seq)).collect()
}

fn body_of(n: u64) -> String {
    String::from_utf8(events(0..37)[n as usize].canonical_bytes()).unwrap()
}

fn leaf_hex(body: &str) -> String {
    audit::leaf_hash(body.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn self_check_detects_an_altered_body() {
    for (b, report) in tampered(|_| {
        vec![
            "UPDATE audit_events SET body = replace(body, 'LEVEL_2', 'LEVEL_1') WHERE seq = 5"
                .into(),
        ]
    })
    .await
    {
        // The tree is recomputed from the bodies: the altered content is also
        // not what the nodes and checkpoints committed to.
        let found = kinds(&report);
        assert_eq!(
            found[..2],
            [
                (AuditProblemKind::LeafHashMismatch, 5),
                (AuditProblemKind::NodeMismatch, 5)
            ],
            "{b}: {report:?}"
        );
        assert!(
            found.contains(&(AuditProblemKind::CheckpointMismatch, 18)),
            "{b}"
        );
        assert!(
            found.contains(&(AuditProblemKind::CheckpointMismatch, 37)),
            "{b}"
        );
    }
}

#[tokio::test]
async fn self_check_detects_an_altered_body_with_its_leaf_hash() {
    // Rewritten consistently at the row level: the tree catches it.
    let forged = body_of(5).replace("LEVEL_2", "LEVEL_1");
    for (b, report) in tampered(|_| {
        vec![format!(
            "UPDATE audit_events SET body = '{forged}', leaf_hash = '{}' WHERE seq = 5",
            leaf_hex(&forged)
        )]
    })
    .await
    {
        let found = kinds(&report);
        assert_eq!(
            found[0],
            (AuditProblemKind::NodeMismatch, 5),
            "{b}: {report:?}"
        );
        assert!(
            found.contains(&(AuditProblemKind::CheckpointMismatch, 18)),
            "{b}"
        );
        assert!(
            found.contains(&(AuditProblemKind::CheckpointMismatch, 37)),
            "{b}"
        );
    }
}

#[tokio::test]
async fn self_check_detects_a_deleted_row() {
    for (b, report) in tampered(|_| vec!["DELETE FROM audit_events WHERE seq = 12".into()]).await {
        let found = kinds(&report);
        assert_eq!(found[0], (AuditProblemKind::Gap, 12), "{b}: {report:?}");
        assert!(
            found.contains(&(AuditProblemKind::CountMismatch, 37)),
            "{b}"
        );
    }
    // The last rows deleted and the head moved back: the checkpoint remembers.
    for (b, report) in tampered(|_| {
        vec![
            "DELETE FROM audit_events WHERE seq >= 30".into(),
            "DELETE FROM audit_nodes WHERE (idx + 1) * (1 << level) > 30".into(),
            "UPDATE audit_head SET size = 30, \
             max_time = (SELECT max_time FROM audit_events WHERE seq = 29)"
                .into(),
        ]
    })
    .await
    {
        assert_eq!(
            kinds(&report),
            vec![
                (AuditProblemKind::SealMismatch, 30),
                (AuditProblemKind::CheckpointBeyondHead, 37)
            ],
            "{b}: {report:?}"
        );
    }
}

#[tokio::test]
async fn self_check_detects_swapped_bodies() {
    let (b3, b4) = (body_of(3), body_of(4));
    for (b, report) in tampered(|_| {
        vec![
            format!("UPDATE audit_events SET body = '{b4}' WHERE seq = 3"),
            format!("UPDATE audit_events SET body = '{b3}' WHERE seq = 4"),
        ]
    })
    .await
    {
        let found = kinds(&report);
        assert!(
            found.contains(&(AuditProblemKind::LeafHashMismatch, 3)),
            "{b}: {report:?}"
        );
        assert!(
            found.contains(&(AuditProblemKind::LeafHashMismatch, 4)),
            "{b}"
        );
    }
    // Whole rows swapped (body, hash and columns): the order is in the tree.
    let all = events(0..37);
    let row = |n: usize, id: &str| {
        let e = &all[n];
        let body = body_of(n as u64);
        format!(
            "UPDATE audit_events SET id = '{id}', body = '{body}', leaf_hash = '{}', \
             rp_id = '{}', journey_id = '{}', outcome = '{}', idp_id = '{}', time = '{}'",
            leaf_hex(&body),
            e.rp.as_deref().unwrap(),
            e.journey_id.as_deref().unwrap(),
            e.outcome.as_deref().unwrap(),
            e.idp.as_deref().unwrap(),
            e.time
        )
    };
    for (b, report) in tampered(|_| {
        vec![
            format!("{} WHERE seq = 3", row(4, "temporary")),
            format!("{} WHERE seq = 4", row(3, &all[3].id)),
            format!("UPDATE audit_events SET id = '{}' WHERE seq = 3", all[4].id),
        ]
    })
    .await
    {
        let found = kinds(&report);
        assert!(
            found.contains(&(AuditProblemKind::NodeMismatch, 3)),
            "{b}: {report:?}"
        );
        assert!(!found
            .iter()
            .any(|k| k.0 == AuditProblemKind::LeafHashMismatch));
        assert!(
            found.contains(&(AuditProblemKind::CheckpointMismatch, 37)),
            "{b}"
        );
    }
}

#[tokio::test]
async fn execute_raw_reports_affected_rows() {
    for t in migrated_databases().await {
        t.db.append_audit_events(&events(0..3), seal())
            .await
            .unwrap();
        let n =
            t.db.execute_raw("UPDATE audit_events SET outcome = 'x' WHERE seq < 2")
                .await
                .unwrap();
        assert_eq!(n, 2, "{}", t.backend);
        let report =
            t.db.audit_self_check(seal().published().verification_keys())
                .await
                .unwrap();
        assert_eq!(
            kinds(&report),
            vec![
                (AuditProblemKind::ColumnMismatch, 0),
                (AuditProblemKind::ColumnMismatch, 1)
            ]
        );
        t.cleanup().await;
    }
}

#[tokio::test]
async fn self_check_detects_an_altered_leaf_hash() {
    for (b, report) in tampered(|_| {
        vec![format!(
            "UPDATE audit_events SET leaf_hash = '{}' WHERE seq = 7",
            "0".repeat(64)
        )]
    })
    .await
    {
        assert_eq!(
            kinds(&report),
            vec![(AuditProblemKind::LeafHashMismatch, 7)],
            "{b}: {report:?}"
        );
    }
}

#[tokio::test]
async fn self_check_detects_an_altered_node() {
    // Node (2, 1) covers leaves 4..8, written when leaf 7 was appended.
    for (b, report) in tampered(|_| {
        vec![format!(
            "UPDATE audit_nodes SET hash = '{}' WHERE level = 2 AND idx = 1",
            "ab".repeat(32)
        )]
    })
    .await
    {
        assert_eq!(
            kinds(&report),
            vec![(AuditProblemKind::NodeMismatch, 7)],
            "{b}: {report:?}"
        );
        assert!(report.problems[0].detail.contains("(2, 1)"));
    }
    for (b, report) in
        tampered(|_| vec!["DELETE FROM audit_nodes WHERE level = 1 AND idx = 9".into()]).await
    {
        assert_eq!(
            kinds(&report),
            vec![
                (AuditProblemKind::NodeMissing, 19),
                (AuditProblemKind::CountMismatch, 37)
            ],
            "{b}: {report:?}"
        );
    }
}

#[tokio::test]
async fn self_check_detects_altered_columns_and_checkpoints() {
    for (b, report) in tampered(|_| {
        vec![
            // Hide an event from an auditor scoped to rp-a.
            "UPDATE audit_events SET rp_id = 'rp-z' WHERE seq = 9".into(),
            format!(
                "UPDATE audit_checkpoints SET root_hash = '{}' WHERE tree_size = 18",
                b64(&[1; 32])
            ),
            // Time range queries rely on the head's bookkeeping.
            "UPDATE audit_head SET max_lag_ms = 5".into(),
        ]
    })
    .await
    {
        let found = kinds(&report);
        assert_eq!(
            found,
            vec![
                (AuditProblemKind::CheckpointSignature, 18),
                (AuditProblemKind::ColumnMismatch, 9),
                (AuditProblemKind::CheckpointMismatch, 18),
                (AuditProblemKind::HeadMismatch, 37)
            ],
            "{b}: {report:?}"
        );
        assert!(report.problems[1].detail.contains("rp_id"));
        assert!(
            !report.problems[0].detail.contains("rp-z"),
            "no stored values"
        );
    }
}

// ---- retention -------------------------------------------------------------

/// Row states counted through `execute_raw` (a no-op UPDATE reports the rows
/// its WHERE matched), since the store has no API that reads pruned rows.
async fn count_rows(db: &Database, condition: &str) -> usize {
    db.execute_raw(&format!(
        "UPDATE audit_events SET pruned = pruned WHERE {condition}"
    ))
    .await
    .unwrap()
}

#[tokio::test]
async fn seq_at_finds_where_a_retention_period_cuts_the_log() {
    for t in migrated_databases().await {
        let db = &t.db;
        let b = t.backend;
        assert_eq!(db.audit_seq_at(&time_of(5)).await.unwrap(), 0, "{b}: empty");
        db.append_audit_events(&events(0..40), seal())
            .await
            .unwrap();
        for (time, expected) in [
            ("2026-11-22T07:00:00Z".to_owned(), 0),
            (time_of(0), 0),
            (time_of(10), 10),
            ("2026-11-22T08:00:10.500Z".to_owned(), 11),
            // Any offset; sub-milliseconds are dropped (event 10 is kept).
            ("2026-11-22T09:00:10.0004+01:00".to_owned(), 10),
            (time_of(39), 39),
            ("2026-11-22T08:00:39.001Z".to_owned(), 40),
            ("2027-01-01T00:00:00Z".to_owned(), 40),
        ] {
            assert_eq!(
                db.audit_seq_at(&time).await.unwrap(),
                expected,
                "{b}: {time}"
            );
        }
        let err = db.audit_seq_at("last year").await.unwrap_err();
        assert!(matches!(err, StoreError::InvalidInput(_)), "{err:?}");

        // Out of order: event 41 is stamped before event 40, so a cut between
        // them must keep both (the seq bound is the first max_time reaching it).
        let late = |n: u64, secs: u64| Event {
            time: time_of(secs),
            ..event(n, Some("rp-a"), EventType::Matching, "late")
        };
        db.append_audit_events(&[late(40, 100), late(41, 90), late(42, 110)], seal())
            .await
            .unwrap();
        assert_eq!(db.audit_seq_at(&time_of(95)).await.unwrap(), 40, "{b}");
        assert_eq!(db.audit_seq_at(&time_of(105)).await.unwrap(), 42, "{b}");
        t.cleanup().await;
    }
}

#[tokio::test]
async fn pruning_hides_old_events_and_keeps_the_tree_verifiable() {
    for t in migrated_databases().await {
        let db = &t.db;
        let b = t.backend;
        let all = events(0..45);
        for chunk in all[..40].chunks(7) {
            db.append_audit_events(chunk, seal()).await.unwrap();
        }
        for size in [16, 40] {
            let root = db.audit_root(size).await.unwrap();
            db.save_checkpoint(&checkpoint(size, &root)).await.unwrap();
        }
        let mut roots = vec![audit::empty_root()];
        for size in 1..=40 {
            roots.push(db.audit_root(size).await.unwrap());
        }

        // Beyond the log: refused, nothing pruned.
        let err = db.prune_audit_events_before(41).await.unwrap_err();
        assert!(matches!(err, StoreError::InvalidInput(_)), "{b}: {err:?}");
        assert_eq!(db.audit_pruned_below().await.unwrap(), 0);
        assert_eq!(db.audit_event(0).await.unwrap().as_ref(), Some(&all[0]));

        let cut = db.audit_seq_at(&time_of(25)).await.unwrap();
        assert_eq!(cut, 25);
        assert_eq!(db.prune_audit_events_before(cut).await.unwrap(), 25, "{b}");
        assert_eq!(db.audit_pruned_below().await.unwrap(), 25);
        // Idempotent, and an earlier bound changes nothing.
        for again in [25, 10, 0] {
            assert_eq!(db.prune_audit_events_before(again).await.unwrap(), 0);
        }
        assert_eq!(db.audit_pruned_below().await.unwrap(), 25, "{b}");

        // The rows stay, blanked; the later ones are untouched.
        assert_eq!(
            count_rows(
                db,
                "seq < 25 AND pruned = 1 AND body = '' AND journey_id IS NULL \
                 AND rp_id IS NULL AND idp_id IS NULL AND outcome IS NULL \
                 AND id <> '' AND event_type = 'journey_started' AND time <= max_time"
            )
            .await,
            25,
            "{b}"
        );
        assert_eq!(
            count_rows(
                db,
                "seq >= 25 AND pruned = 0 AND body <> '' AND rp_id IS NOT NULL"
            )
            .await,
            15
        );

        // Reads skip pruned events.
        assert_eq!(db.audit_event(24).await.unwrap(), None, "{b}");
        assert_eq!(db.audit_event(25).await.unwrap().as_ref(), Some(&all[25]));
        let read = all_events(db, &AuditFilter::default(), 7).await;
        assert_eq!(
            read,
            (25..40u64)
                .map(|i| (i, all[i as usize].clone()))
                .collect::<Vec<_>>(),
            "{b}"
        );
        let seqs = |filter: AuditFilter, after: Option<u64>| async move {
            db.audit_events(&filter, after, 1000)
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.0)
                .collect::<Vec<u64>>()
        };
        assert_eq!(
            seqs(AuditFilter::default(), Some(3)).await,
            (25..40).collect::<Vec<_>>()
        );
        let journey = |j: &str| AuditFilter {
            journey_id: Some(j.into()),
            ..AuditFilter::default()
        };
        assert!(seqs(journey("j2"), None).await.is_empty(), "{b}");
        assert_eq!(seqs(journey("j6"), None).await, vec![25, 26, 27]);
        let rps = AuditFilter {
            rps: Some(vec!["rp-a".into(), "rp-c".into()]),
            ..AuditFilter::default()
        };
        assert_eq!(
            seqs(rps, None).await,
            (25..40).filter(|n| n % 3 != 1).collect::<Vec<_>>()
        );
        let of_type = AuditFilter {
            event_type: Some("journey_started".into()),
            idp: Some("idp-even".into()),
            ..AuditFilter::default()
        };
        assert_eq!(
            seqs(of_type, None).await,
            (25..40).filter(|n| n % 2 == 0).collect::<Vec<_>>()
        );
        let range = AuditFilter {
            from: Some(time_of(20)),
            to: Some(time_of(30)),
            ..AuditFilter::default()
        };
        assert_eq!(seqs(range, None).await, (25..30).collect::<Vec<_>>(), "{b}");

        // Roots and proofs need only hashes: unchanged, for every index.
        for size in 1..=40u64 {
            assert_eq!(db.audit_root(size).await.unwrap(), roots[size as usize]);
        }
        for index in [0u64, 7, 24, 25, 31, 39] {
            let proof = db.audit_inclusion_proof(index, 40).await.unwrap();
            let leaf = audit::leaf_hash(&all[index as usize].canonical_bytes());
            audit::verify_inclusion(&leaf, index, 40, &proof, &roots[40])
                .unwrap_or_else(|err| panic!("{b}: inclusion {index}: {err}"));
        }
        for (first, second) in [(1, 40), (10, 25), (16, 30), (24, 26), (25, 40), (0, 40)] {
            let proof = db.audit_consistency_proof(first, second).await.unwrap();
            audit::verify_consistency(
                first,
                second,
                &roots[first as usize],
                &roots[second as usize],
                &proof,
            )
            .unwrap_or_else(|err| panic!("{b}: consistency {first} -> {second}: {err}"));
        }

        // The log goes on: appends, checkpoints and the self-check.
        db.append_audit_events(&all[40..], seal()).await.unwrap();
        let root = db.audit_root(45).await.unwrap();
        assert_eq!(root, audit::root(45, &tree_of(&all)).unwrap(), "{b}");
        db.save_checkpoint(&checkpoint(45, &root)).await.unwrap();
        let report = db
            .audit_self_check(seal().published().verification_keys())
            .await
            .unwrap();
        // Pruned here by the store alone: the log holds no record of it.
        assert_eq!(
            kinds(&report),
            vec![(AuditProblemKind::PruneUnrecorded, 25)],
            "{b}: {report:?}"
        );
        assert_eq!(
            (
                report.events_checked,
                report.pruned,
                report.checkpoints_checked
            ),
            (45, 25, 3)
        );

        // Everything pruned: nothing left to read, the tree intact.
        assert_eq!(db.prune_audit_events_before(45).await.unwrap(), 20, "{b}");
        assert!(all_events(db, &AuditFilter::default(), 10).await.is_empty());
        assert_eq!(db.audit_event(44).await.unwrap(), None);
        assert_eq!(db.audit_root(45).await.unwrap(), root);
        db.append_audit_events(&[prune_record(45)], seal())
            .await
            .unwrap();
        let report = db
            .audit_self_check(seal().published().verification_keys())
            .await
            .unwrap();
        assert!(report.is_clean(), "{b}: {report:?}");
        assert_eq!(report.pruned, 45);
        t.cleanup().await;
    }
}

#[tokio::test]
async fn self_check_detects_an_altered_leaf_hash_of_a_pruned_event() {
    // No body to compare with: the tree and the checkpoints catch it.
    for (b, report) in pruned_then_tampered(10, |_| {
        vec![format!(
            "UPDATE audit_events SET leaf_hash = '{}' WHERE seq = 5",
            "0".repeat(64)
        )]
    })
    .await
    {
        let found = kinds(&report);
        assert_eq!(
            found[0],
            (AuditProblemKind::NodeMismatch, 5),
            "{b}: {report:?}"
        );
        assert!(
            found.contains(&(AuditProblemKind::CheckpointMismatch, 18)),
            "{b}"
        );
        assert!(
            found.contains(&(AuditProblemKind::CheckpointMismatch, 37)),
            "{b}"
        );
        assert!(!found
            .iter()
            .any(|k| k.0 == AuditProblemKind::LeafHashMismatch));
        assert_eq!(report.pruned, 10);
    }
}

#[tokio::test]
async fn self_check_detects_pruned_rows_that_are_not_retention() {
    // A pruned event that still holds personal data.
    let body3 = body_of(3);
    for (b, report) in pruned_then_tampered(10, |_| {
        vec![
            format!("UPDATE audit_events SET body = '{body3}' WHERE seq = 3"),
            "UPDATE audit_events SET rp_id = 'rp-a' WHERE seq = 4".into(),
        ]
    })
    .await
    {
        assert_eq!(
            kinds(&report),
            vec![
                (AuditProblemKind::PruneMismatch, 3),
                (AuditProblemKind::PruneMismatch, 4)
            ],
            "{b}: {report:?}"
        );
        assert!(report.problems[1].detail.contains("rp_id"));
    }
    // A blank body not marked pruned.
    for (b, report) in pruned_then_tampered(10, |_| {
        vec!["UPDATE audit_events SET body = '' WHERE seq = 20".into()]
    })
    .await
    {
        let found = kinds(&report);
        assert_eq!(
            found[..2],
            [
                (AuditProblemKind::PruneMismatch, 20),
                (AuditProblemKind::LeafHashMismatch, 20)
            ],
            "{b}: {report:?}"
        );
    }
    // One event "pruned" in the middle of the log, exactly as pruning does it:
    // the tree still holds, but it is hiding an event, not retention.
    for (b, report) in pruned_then_tampered(10, |_| {
        vec![
            "UPDATE audit_events SET body = '', journey_id = NULL, rp_id = NULL, \
             idp_id = NULL, outcome = NULL, pruned = 1 WHERE seq IN (30, 31, 33)"
                .into(),
        ]
    })
    .await
    {
        assert_eq!(
            kinds(&report),
            vec![
                (AuditProblemKind::PruneMismatch, 30),
                (AuditProblemKind::PruneMismatch, 33)
            ],
            "{b}: {report:?}"
        );
        assert!(report.problems[0].detail.contains("30..32"), "{b}");
    }
    // The head's bound raised to hide events 10 and 11 from every query.
    for (b, report) in pruned_then_tampered(10, |_| {
        vec!["UPDATE audit_head SET pruned_below = 12".into()]
    })
    .await
    {
        assert_eq!(
            kinds(&report),
            vec![
                (AuditProblemKind::PruneMismatch, 10),
                (AuditProblemKind::PruneMismatch, 11),
                (AuditProblemKind::PruneUnrecorded, 12)
            ],
            "{b}: {report:?}"
        );
    }
}

/// Prunes in steps while other tasks append and the self-check runs: no
/// deadlock or lock timeout, and the self-check never mistakes a prune that
/// commits while it reads for damage.
async fn prune_while_appending(t: &TestDb) {
    let db = &t.db;
    db.append_audit_events(&events(0..100), seal())
        .await
        .unwrap();
    let mut appenders = Vec::new();
    for task in 0..3u64 {
        let db = t.reopen().await;
        appenders.push(tokio::spawn(async move {
            for batch in 0..10u64 {
                let from = 1000 + task * 100 + batch * 5;
                let mine: Vec<Event> = (from..from + 5)
                    .map(|n| event(n, Some("rp-b"), EventType::Matching, "busy"))
                    .collect();
                db.append_audit_events(&mine, seal()).await.unwrap();
            }
        }));
    }
    let checker = {
        let db = t.reopen().await;
        tokio::spawn(async move {
            for _ in 0..5 {
                let report = db
                    .audit_self_check(seal().published().verification_keys())
                    .await
                    .unwrap();
                assert!(report.is_clean(), "{report:?}");
            }
        })
    };
    let mut total = 0;
    for step in 1..=10u64 {
        let cut = db.audit_seq_at(&time_of(step * 10)).await.unwrap();
        assert_eq!(cut, step * 10);
        db.append_audit_events(&[prune_record(cut)], seal())
            .await
            .unwrap();
        total += db.prune_audit_events_before(cut).await.unwrap();
    }
    for task in appenders {
        task.await.unwrap();
    }
    checker.await.unwrap();
    assert_eq!(total, 100, "{}", t.backend);
    assert_eq!(db.audit_size().await.unwrap(), 260);
    let report = db
        .audit_self_check(seal().published().verification_keys())
        .await
        .unwrap();
    assert!(report.is_clean(), "{}: {report:?}", t.backend);
    assert_eq!((report.events_checked, report.pruned), (260, 100));
    assert_eq!(
        all_events(db, &AuditFilter::default(), 1000).await.len(),
        160
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pruning_alongside_appends_on_postgres() {
    let t = TestDb::postgres().await.migrated().await;
    prune_while_appending(&t).await;
    t.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pruning_alongside_appends_on_sqlite() {
    let t = TestDb::sqlite().await.migrated().await;
    prune_while_appending(&t).await;
    t.cleanup().await;
}

// ---- availability ----------------------------------------------------------

#[tokio::test]
async fn lost_postgres_is_unavailable() {
    let t = TestDb::postgres().await.migrated().await;
    let db = Database::open_with(
        &t.url,
        DatabaseOptions {
            max_connections: 2,
            acquire_timeout: Duration::from_millis(500),
            ..DatabaseOptions::default()
        },
    )
    .await
    .unwrap();
    db.append_audit_events(&events(0..2), seal()).await.unwrap();
    // The database goes away under the pool (connections closed by the server).
    store::test_support::drop_scratch_postgres_database(
        &crate::common::postgres_admin_url(),
        &t.url,
    )
    .await
    .unwrap();
    let err = db
        .append_audit_events(&events(2..4), seal())
        .await
        .unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
    let err = db.audit_root(1).await.unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
    let err = db
        .audit_self_check(seal().published().verification_keys())
        .await
        .unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
    drop(db);
    t.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locked_sqlite_is_unavailable() {
    use diesel::connection::SimpleConnection;
    use diesel::Connection;
    let t = TestDb::sqlite().await.migrated().await;
    let path = t.url.trim_start_matches("sqlite://").to_owned();
    // Another process holds the write lock past the busy timeout (5 s).
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let mut conn = diesel::SqliteConnection::establish(&path).unwrap();
        conn.batch_execute("BEGIN IMMEDIATE").unwrap();
        locked_tx.send(()).unwrap();
        release_rx.recv().unwrap();
        conn.batch_execute("ROLLBACK").unwrap();
    });
    locked_rx.recv().unwrap();
    let started = Instant::now();
    let err =
        t.db.append_audit_events(&events(0..1), seal())
            .await
            .unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
    assert!(started.elapsed() >= Duration::from_secs(4));
    release_tx.send(()).unwrap();
    holder.join().unwrap();
    assert_eq!(
        t.db.append_audit_events(&events(0..1), seal())
            .await
            .unwrap()
            .size,
        1
    );
    t.cleanup().await;
}

// ---- throughput (cargo test -p store --features test-support --release -- --ignored --nocapture) ----

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "benchmark: prints appends per second on PostgreSQL"]
async fn append_throughput_on_postgres() {
    let t = TestDb::postgres().await.migrated().await;
    let mut next = 0u64;
    for (batch, calls) in [(1u64, 2000u64), (10, 500), (100, 100)] {
        let started = Instant::now();
        for _ in 0..calls {
            db_append(&t.db, next..next + batch).await;
            next += batch;
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "postgres, 1 task, batch {batch:>3}: {:>8.0} appends/s, {:>8.0} events/s",
            calls as f64 / secs,
            (calls * batch) as f64 / secs
        );
    }
    // Several instances contending for the head lock.
    for batch in [1u64, 10, 100] {
        let calls_per_task = 2000 / batch / 4;
        let started = Instant::now();
        let mut tasks = Vec::new();
        for task in 0..8u64 {
            let db = if task % 2 == 0 {
                t.db.clone()
            } else {
                t.reopen().await
            };
            let base = next + task * calls_per_task * batch;
            tasks.push(tokio::spawn(async move {
                for call in 0..calls_per_task {
                    let from = base + call * batch;
                    db_append(&db, from..from + batch).await;
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        next += 8 * calls_per_task * batch;
        let secs = started.elapsed().as_secs_f64();
        println!(
            "postgres, 8 tasks on 2 handles, batch {batch:>3}: {:>8.0} appends/s, {:>8.0} events/s",
            (8 * calls_per_task) as f64 / secs,
            (8 * calls_per_task * batch) as f64 / secs
        );
    }
    let started = Instant::now();
    let report =
        t.db.audit_self_check(seal().published().verification_keys())
            .await
            .unwrap();
    assert!(report.is_clean(), "{report:?}");
    println!(
        "self-check of {} events: {:.2} s",
        report.events_checked,
        started.elapsed().as_secs_f64()
    );
    t.cleanup().await;
}

async fn db_append(db: &Database, range: std::ops::Range<u64>) {
    let batch: Vec<Event> = range
        .map(|n| event(n, Some("rp-a"), EventType::IdpReturned, "bench"))
        .collect();
    db.append_audit_events(&batch, seal()).await.unwrap();
}

// ---- tampering by someone who recomputes the tree -------------------------------

/// SQL that replaces the whole log with `events`, every leaf hash, node and
/// the head's counts recomputed to match: what someone with write access to
/// the database, and the tree's algorithm, can do. Only signatures stop it.
fn forge_log(events: &[Event]) -> Vec<String> {
    let quote = |s: &str| format!("'{}'", s.replace('\'', "''"));
    let opt = |s: &Option<String>| s.as_deref().map_or("NULL".to_owned(), quote);
    let mut sql = vec!["DELETE FROM audit_events".to_owned()];
    for (seq, e) in events.iter().enumerate() {
        let body = String::from_utf8(e.canonical_bytes()).unwrap();
        sql.push(format!(
            "INSERT INTO audit_events (seq, id, time, max_time, journey_id, event_type, rp_id, \
             idp_id, outcome, body, leaf_hash, pruned) VALUES ({seq}, {}, {}, {}, {}, {}, {}, {}, \
             {}, {}, {}, 0)",
            quote(&e.id),
            quote(&e.time),
            quote(&e.time),
            opt(&e.journey_id),
            quote(e.event_type.as_str()),
            opt(&e.rp),
            opt(&e.idp),
            opt(&e.outcome),
            quote(&body),
            quote(&leaf_hex(&body)),
        ));
    }
    sql.push("DELETE FROM audit_nodes".to_owned());
    let tree = tree_of(events);
    let n = events.len() as u64;
    for level in 1..u64::BITS {
        for idx in 0..(n >> level) {
            let hex: String = tree
                .node(level, idx)
                .unwrap()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            sql.push(format!(
                "INSERT INTO audit_nodes (level, idx, hash) VALUES ({level}, {idx}, '{hex}')"
            ));
        }
    }
    let last = events.last().map_or("NULL".to_owned(), |e| quote(&e.time));
    sql.push(format!(
        "UPDATE audit_head SET size = {n}, max_time = {last}, max_lag_ms = 0"
    ));
    sql
}

#[tokio::test]
async fn self_check_detects_a_rewritten_event_with_its_tree_and_checkpoint() {
    // Event 9 rewritten, the tree recomputed, and the checkpoints' plain root_hash
    // replaced: only the signatures (checkpoints and the head's seal) tell.
    for (b, report) in tampered(|_| {
        let mut all = events(0..37);
        all[9].outcome = Some("no_match".into());
        let tree = tree_of(&all);
        let mut sql = forge_log(&all);
        for size in [18u64, 37] {
            sql.push(format!(
                "UPDATE audit_checkpoints SET root_hash = '{}' WHERE tree_size = {size}",
                b64(&audit::root(size, &tree).unwrap())
            ));
        }
        sql
    })
    .await
    {
        assert_eq!(
            kinds(&report),
            vec![
                (AuditProblemKind::CheckpointSignature, 18),
                (AuditProblemKind::CheckpointSignature, 37),
                (AuditProblemKind::SealMismatch, 37),
            ],
            "{b}: {report:?}"
        );
    }
}

#[tokio::test]
async fn self_check_detects_events_appended_or_deleted_behind_the_hub() {
    // A forged event appended after the last one, the tree extended to match.
    for (b, report) in tampered(|_| {
        let mut all = events(0..38);
        all[37].outcome = Some("forged".into());
        forge_log(&all)
    })
    .await
    {
        assert_eq!(
            kinds(&report),
            vec![(AuditProblemKind::SealMismatch, 38)],
            "{b}: {report:?}"
        );
    }
    // The last events deleted (after the last checkpoint would be the same), the
    // head and nodes recomputed: consistent, but not what was sealed.
    for (b, report) in tampered(|_| forge_log(&events(0..33))).await {
        assert_eq!(
            kinds(&report),
            vec![
                (AuditProblemKind::SealMismatch, 33),
                (AuditProblemKind::CheckpointBeyondHead, 37)
            ],
            "{b}: {report:?}"
        );
    }
}

#[tokio::test]
async fn appends_refuse_to_build_on_a_log_changed_behind_the_hub() {
    for t in migrated_databases().await {
        let db = &t.db;
        db.append_audit_events(&events(0..5), seal()).await.unwrap();
        let mut forged = events(0..6);
        forged[5].outcome = Some("forged".into());
        for statement in forge_log(&forged) {
            t.execute_raw(&statement).await;
        }
        // A handle that reads the head, as another instance would.
        let other = t.reopen().await;
        let err = other
            .append_audit_events(&events(6..7), seal())
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Seal(_)), "{}: {err:?}", t.backend);
        assert_eq!(other.audit_size().await.unwrap(), 6, "{}", t.backend);
        // Signed by a key that is not the hub's: refused as well.
        let stranger = LogSeal::generate().unwrap();
        let err = db.append_audit_events(&events(6..7), &stranger).await;
        assert!(err.is_err(), "{}", t.backend);
        t.cleanup().await;
    }
}

#[tokio::test]
async fn self_check_detects_deleted_published_checkpoints() {
    for t in migrated_databases().await {
        let db = &t.db;
        db.append_audit_events(&events(0..10), seal())
            .await
            .unwrap();
        // Published as the hub does: stored, then recorded in the log.
        let published = db.audit_seal().await.unwrap().unwrap();
        db.save_checkpoint(&published).await.unwrap();
        let record = Event {
            time: time_of(10),
            checkpoint: Some(published.clone()),
            ..Event::new(EventType::CheckpointPublished, "test")
        };
        db.append_audit_events(&[record], seal()).await.unwrap();
        let clean = db
            .audit_self_check(seal().published().verification_keys())
            .await
            .unwrap();
        assert!(clean.is_clean(), "{}: {clean:?}", t.backend);
        t.execute_raw("DELETE FROM audit_checkpoints").await;
        let report = db
            .audit_self_check(seal().published().verification_keys())
            .await
            .unwrap();
        assert_eq!(
            kinds(&report),
            vec![(AuditProblemKind::CheckpointMissing, 10)],
            "{}: {report:?}",
            t.backend
        );
        t.cleanup().await;
    }
}

#[tokio::test]
async fn self_check_detects_events_blanked_as_if_pruned() {
    // Events 0..12 blanked and the head's bound set, as a prune would, but no
    // `log_pruned` event records it.
    for (b, report) in tampered(|_| {
        vec![
            "UPDATE audit_events SET body = '', journey_id = NULL, rp_id = NULL, \
             idp_id = NULL, outcome = NULL, pruned = 1 WHERE seq < 12"
                .into(),
            "UPDATE audit_head SET pruned_below = 12".into(),
        ]
    })
    .await
    {
        assert_eq!(
            kinds(&report),
            vec![(AuditProblemKind::PruneUnrecorded, 12)],
            "{b}: {report:?}"
        );
    }
}
