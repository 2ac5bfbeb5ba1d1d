//! Database behaviour against real SQLite files and a real PostgreSQL: each
//! backend-neutral test runs its one body on both.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use crate::common::{fresh_databases, migrated_databases, Backend, TestDb};
use matching::{Address, DepartmentRecord, MatchingDataset, RecordId};
use store::{Database, DatabaseOptions, PoolState, SchemaStatus, StoreError};

fn record(id: &str, surname: &str, dob: Option<&str>) -> DepartmentRecord {
    DepartmentRecord {
        record_id: RecordId(id.to_owned()),
        dataset: MatchingDataset {
            first_name: Some("Alex".to_owned()),
            surnames: vec![surname.to_owned()],
            date_of_birth: dob.map(str::to_owned),
            addresses: vec![Address {
                lines: vec!["1 High Street".to_owned()],
                postcode: Some("LS1 4AB".to_owned()),
                current: true,
            }],
            ..MatchingDataset::default()
        },
    }
}

fn ids(records: &[DepartmentRecord]) -> Vec<&str> {
    records.iter().map(|r| r.record_id.0.as_str()).collect()
}

/// A query dataset with only these fields set.
fn query(surname: Option<&str>, dob: Option<&str>, postcode: Option<&str>) -> MatchingDataset {
    MatchingDataset {
        first_name: Some("Alex".to_owned()),
        surnames: surname.map(str::to_owned).into_iter().collect(),
        date_of_birth: dob.map(str::to_owned),
        addresses: postcode
            .map(|p| Address {
                lines: Vec::new(),
                postcode: Some(p.to_owned()),
                current: true,
            })
            .into_iter()
            .collect(),
        ..MatchingDataset::default()
    }
}

/// The candidates the hub would retrieve for `q` (default policy limit).
async fn candidates(db: &Database, rp: &str, q: &MatchingDataset) -> Vec<DepartmentRecord> {
    db.candidates_by_blocking_keys(rp, &matching::query_blocking_keys(q), 1000)
        .await
        .unwrap()
}

/// The candidates sharing this date of birth (and nothing else).
async fn by_dob(db: &Database, rp: &str, dob: &str) -> Vec<DepartmentRecord> {
    candidates(db, rp, &query(None, Some(dob), None)).await
}

// ---- both backends ---------------------------------------------------------

#[tokio::test]
async fn migrate_twice_is_idempotent_and_survives_reopen() {
    for t in migrated_databases().await {
        let db = &t.db;
        db.migrate().await.unwrap();
        db.import_records("rp", &[record("D1", "Smith", Some("1980-04-10"))])
            .await
            .unwrap();

        let again = t.reopen().await;
        again.migrate().await.unwrap();
        again.ping().await.unwrap();
        assert_eq!(again.count_records("rp").await.unwrap(), 1, "{}", t.backend);
        assert_eq!(again.schema_status().await.unwrap(), SchemaStatus::UpToDate);
        drop(again);
        t.cleanup().await;
    }
}

#[tokio::test]
async fn candidates_are_scoped_to_rp_and_keys() {
    for t in migrated_databases().await {
        let db = &t.db;
        let written = db
            .import_records(
                "rp-a",
                &[
                    record("A2", "Smith", Some("1980-04-10")),
                    record("A1", "Jones", Some("1980-04-10")),
                    record("A3", "Smith", Some("1975-01-01")),
                    record("A4", "NoDate", None),
                ],
            )
            .await
            .unwrap();
        assert_eq!(written, 4, "{}", t.backend);
        db.import_records("rp-b", &[record("B1", "Smith", Some("1980-04-10"))])
            .await
            .unwrap();

        let found = by_dob(db, "rp-a", "1980-04-10").await;
        assert_eq!(ids(&found), vec!["A1", "A2"], "{}", t.backend);
        assert_eq!(found[1].dataset.surnames, vec!["Smith"]);
        assert_eq!(
            found[1].dataset.addresses[0].postcode.as_deref(),
            Some("LS1 4AB")
        );

        let found = by_dob(db, "rp-b", "1980-04-10").await;
        assert_eq!(ids(&found), vec!["B1"], "{}", t.backend);
        for (rp, dob) in [
            ("rp-c", "1980-04-10"),
            ("rp-a", "1999-12-31"),
            ("rp-a", "not a date"),
        ] {
            assert!(
                by_dob(db, rp, dob).await.is_empty(),
                "{}: {rp} {dob}",
                t.backend
            );
        }
        assert!(db
            .candidates_by_blocking_keys("rp-a", &[], 10)
            .await
            .unwrap()
            .is_empty());

        assert_eq!(db.count_records("rp-a").await.unwrap(), 4, "{}", t.backend);
        assert_eq!(db.count_records("rp-b").await.unwrap(), 1);
        assert_eq!(db.count_records("nobody").await.unwrap(), 0);
        t.cleanup().await;
    }
}

#[tokio::test]
async fn import_upserts() {
    for t in migrated_databases().await {
        let db = &t.db;
        db.import_records("rp", &[record("D1", "Old", Some("1980-04-10"))])
            .await
            .unwrap();
        // Same id again, with a new date of birth: replaced, not duplicated.
        db.import_records("rp", &[record("D1", "New", Some("1990-01-02"))])
            .await
            .unwrap();
        assert_eq!(db.count_records("rp").await.unwrap(), 1, "{}", t.backend);
        assert!(by_dob(db, "rp", "1980-04-10").await.is_empty());
        let found = by_dob(db, "rp", "1990-01-02").await;
        assert_eq!(found.len(), 1, "{}", t.backend);
        assert_eq!(found[0].dataset.surnames, vec!["New"]);

        // A repeated id within one batch: the last occurrence wins (and
        // PostgreSQL is not asked to update one row twice in a statement).
        let written = db
            .import_records(
                "rp",
                &[
                    record("D2", "First", Some("1990-01-02")),
                    record("D2", "Last", Some("1990-01-02")),
                ],
            )
            .await
            .unwrap();
        assert_eq!(written, 1, "{}", t.backend);
        let found = by_dob(db, "rp", "1990-01-02").await;
        assert_eq!(ids(&found), vec!["D1", "D2"], "{}", t.backend);
        assert_eq!(found[1].dataset.surnames, vec!["Last"]);
        t.cleanup().await;
    }
}

#[tokio::test]
async fn large_import_spans_several_statements() {
    for t in migrated_databases().await {
        let records: Vec<_> = (0..2345)
            .map(|i| record(&format!("R{i:05}"), "Smith", Some("1980-04-10")))
            .collect();
        assert_eq!(t.db.import_records("rp", &records).await.unwrap(), 2345);
        assert_eq!(
            t.db.count_records("rp").await.unwrap(),
            2345,
            "{}",
            t.backend
        );
        // Re-importing the lot updates in place.
        assert_eq!(t.db.import_records("rp", &records).await.unwrap(), 2345);
        assert_eq!(
            t.db.count_records("rp").await.unwrap(),
            2345,
            "{}",
            t.backend
        );
        t.cleanup().await;
    }
}

#[tokio::test]
async fn empty_ids_are_rejected() {
    for t in migrated_databases().await {
        let db = &t.db;
        let err = db
            .import_records("rp", &[record("ok", "A", None), record(" ", "B", None)])
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::InvalidInput(_)), "{err}");
        assert_eq!(db.count_records("rp").await.unwrap(), 0, "nothing written");
        assert!(matches!(
            db.import_records("", &[record("x", "A", None)]).await,
            Err(StoreError::InvalidInput(_))
        ));
        t.cleanup().await;
    }
}

#[tokio::test]
async fn record_links_round_trip_per_rp_idp_subject() {
    for t in migrated_databases().await {
        let db = &t.db;
        assert_eq!(db.record_link("rp", "idp", "sub").await.unwrap(), None);

        db.save_record_link("rp", "idp", "sub", &RecordId("D1".into()))
            .await
            .unwrap();
        assert_eq!(
            db.record_link("rp", "idp", "sub").await.unwrap(),
            Some(RecordId("D1".into())),
            "{}",
            t.backend
        );
        // Each part of the key matters.
        assert_eq!(db.record_link("rp2", "idp", "sub").await.unwrap(), None);
        assert_eq!(db.record_link("rp", "idp2", "sub").await.unwrap(), None);
        assert_eq!(db.record_link("rp", "idp", "sub2").await.unwrap(), None);

        db.save_record_link("rp2", "idp", "sub", &RecordId("X9".into()))
            .await
            .unwrap();
        // Saving again replaces the link.
        db.save_record_link("rp", "idp", "sub", &RecordId("D2".into()))
            .await
            .unwrap();
        assert_eq!(
            db.record_link("rp", "idp", "sub").await.unwrap(),
            Some(RecordId("D2".into())),
            "{}",
            t.backend
        );
        assert_eq!(
            db.record_link("rp2", "idp", "sub").await.unwrap(),
            Some(RecordId("X9".into()))
        );
        assert!(matches!(
            db.save_record_link("rp", "idp", " ", &RecordId("D3".into()))
                .await,
            Err(StoreError::InvalidInput(_))
        ));
        t.cleanup().await;
    }
}

#[tokio::test]
async fn queries_before_migration_are_database_errors_not_unavailability() {
    for t in fresh_databases().await {
        let err = t.db.count_records("rp").await.unwrap_err();
        assert!(
            matches!(err, StoreError::Database(_)),
            "{}: {err:?}",
            t.backend
        );
        assert!(!err.is_unavailable());
        t.cleanup().await;
    }
}

#[tokio::test]
async fn schema_status_pending_current_and_newer() {
    for t in fresh_databases().await {
        let db = &t.db;
        // Fresh: every migration pending, and checking does not create
        // diesel's bookkeeping table.
        let SchemaStatus::Pending(pending) = db.schema_status().await.unwrap() else {
            panic!(
                "{}: a fresh database must have pending migrations",
                t.backend
            );
        };
        assert!(!pending.is_empty());
        assert_eq!(
            db.schema_status().await.unwrap(),
            SchemaStatus::Pending(pending)
        );
        let err = db.require_current_schema().await.unwrap_err();
        assert!(matches!(err, StoreError::Schema(_)), "{err:?}");
        assert!(!err.is_unavailable());
        assert!(
            err.to_string()
                .starts_with("database is not migrated: run `hub migrate`"),
            "{err}"
        );

        db.migrate().await.unwrap();
        assert_eq!(db.schema_status().await.unwrap(), SchemaStatus::UpToDate);
        db.require_current_schema().await.unwrap();

        // A newer hub migrated this database further.
        t.execute_raw("INSERT INTO __diesel_schema_migrations (version) VALUES ('29991231235959')")
            .await;
        assert_eq!(
            db.schema_status().await.unwrap(),
            SchemaStatus::Newer(vec!["29991231235959".into()]),
            "{}",
            t.backend
        );
        let err = db.require_current_schema().await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "database schema is newer than this hub (unknown migrations 29991231235959): \
             upgrade the hub"
        );
        // Migrating does not "fix" a newer schema, and does not fail on it.
        db.migrate().await.unwrap();
        assert!(matches!(
            db.schema_status().await.unwrap(),
            SchemaStatus::Newer(_)
        ));
        t.cleanup().await;
    }
}

#[tokio::test]
async fn undecodable_dataset_fails_the_query() {
    for t in migrated_databases().await {
        t.db.import_records("rp", &[record("ok", "A", Some("1980-04-10"))])
            .await
            .unwrap();
        t.execute_raw(
            "INSERT INTO department_records (rp_id, record_id, dataset, keyed) \
             VALUES ('rp', 'bad', '{not json', 1)",
        )
        .await;
        // Not under the query's keys: not read, no error.
        assert_eq!(ids(&by_dob(&t.db, "rp", "1980-04-10").await), vec!["ok"]);
        t.execute_raw(
            "INSERT INTO department_record_keys (rp_id, blocking_key, record_id) \
             VALUES ('rp', 'd:1980-04-10', 'bad')",
        )
        .await;
        let keys = matching::query_blocking_keys(&query(None, Some("1980-04-10"), None));
        let err =
            t.db.candidates_by_blocking_keys("rp", &keys, 1000)
                .await
                .unwrap_err();
        assert!(
            matches!(err, StoreError::Corrupt(_)),
            "{}: {err:?}",
            t.backend
        );
        // The message names the record, never its content.
        assert!(err.to_string().contains("bad"), "{err}");
        t.cleanup().await;
    }
}

#[tokio::test]
async fn pool_state_counts_connections() {
    for t in migrated_databases().await {
        let state = t.db.pool_state();
        assert!(state.connections >= 1, "{}: {state:?}", t.backend);
        assert_eq!(state.idle, state.connections, "{}: all idle", t.backend);
        // Several queries at once open more connections, all idle again after.
        let (a, b, c) = tokio::join!(
            t.db.count_records("a"),
            t.db.count_records("b"),
            t.db.count_records("c")
        );
        assert_eq!((a.unwrap(), b.unwrap(), c.unwrap()), (0, 0, 0));
        let state = t.db.pool_state();
        assert!(state.connections <= DatabaseOptions::default().max_connections);
        assert_eq!(state.idle, state.connections, "{}: {state:?}", t.backend);
        t.cleanup().await;
    }
}

/// The one migrations directory must also revert cleanly on both backends
/// (`diesel migration redo` during development, rollbacks in operations).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_revert_and_reapply_on_both_backends() {
    use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
    use diesel_async::{AsyncConnection, AsyncPgConnection};
    use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
    const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations");

    fn redo<C: MigrationHarness<C::Backend> + diesel::Connection>(conn: &mut C) -> usize {
        let reverted = conn.revert_all_migrations(MIGRATIONS).unwrap().len();
        assert_eq!(
            conn.run_pending_migrations(MIGRATIONS).unwrap().len(),
            reverted
        );
        reverted
    }

    for t in migrated_databases().await {
        t.db.import_records("rp", &[record("D1", "Smith", Some("1980-04-10"))])
            .await
            .unwrap();
        let reverted = match t.backend {
            Backend::Sqlite => {
                use diesel::Connection;
                let path = t.url.trim_start_matches("sqlite://").to_owned();
                tokio::task::spawn_blocking(move || {
                    redo(&mut diesel::SqliteConnection::establish(&path).unwrap())
                })
                .await
                .unwrap()
            }
            Backend::Postgres => {
                let conn = AsyncPgConnection::establish(&t.url).await.unwrap();
                tokio::task::spawn_blocking(move || {
                    redo(&mut AsyncConnectionWrapper::<AsyncPgConnection>::from(conn))
                })
                .await
                .unwrap()
            }
        };
        assert!(reverted > 0, "{}", t.backend);
        assert_eq!(t.db.schema_status().await.unwrap(), SchemaStatus::UpToDate);
        assert_eq!(t.db.count_records("rp").await.unwrap(), 0, "{}", t.backend);
        t.cleanup().await;
    }
}

// ---- blocking keys (both backends) -----------------------------------------

/// A record under keys of every kind: `d:` (date of birth), `sy:` (surname
/// code + year and month of birth) and `ps:` (postcode + surname code).
fn keyed_record(id: &str, surname: &str, dob: &str, postcode: &str) -> DepartmentRecord {
    let mut r = record(id, surname, Some(dob));
    r.dataset.addresses[0].postcode = Some(postcode.to_owned());
    r
}

#[tokio::test]
async fn each_key_kind_finds_the_record() {
    let target = keyed_record("T1", "Okonkwo", "1980-04-10", "LS1 4AB");
    let kinds: Vec<String> = matching::record_blocking_keys(&target.dataset)
        .iter()
        .map(|k| k.split(':').next().unwrap().to_owned())
        .collect();
    for kind in ["d", "sy", "ps"] {
        assert!(kinds.iter().any(|k| k == kind), "no {kind}: key: {kinds:?}");
    }
    for t in migrated_databases().await {
        let db = &t.db;
        db.import_records(
            "rp",
            &[
                target.clone(),
                keyed_record("N1", "Smith", "1962-07-01", "M1 1AA"),
            ],
        )
        .await
        .unwrap();
        let cases = [
            // Only the date of birth agrees: the `d:` key.
            ("d", query(Some("Zzyzx"), Some("1980-04-10"), None)),
            // Day and month swapped by the IdP: the query's swapped `sy:` variant.
            (
                "sy swapped",
                query(Some("Okonkwo"), Some("1980-10-04"), None),
            ),
            // Day wrong, same year and month, surname right: the `sy:` key.
            ("sy", query(Some("Okonkwo"), Some("1980-04-01"), None)),
            // No date at all, surname and postcode: the `ps:` key.
            ("ps", query(Some("okonkwo"), None, Some("ls14ab"))),
        ];
        for (kind, q) in &cases {
            let found = candidates(db, "rp", q).await;
            assert_eq!(ids(&found), vec!["T1"], "{}: {kind}", t.backend);
            assert_eq!(found[0].dataset, target.dataset, "{}: {kind}", t.backend);
        }
        // Nothing shared: nothing found.
        let stranger = query(Some("Zzyzx"), Some("2001-02-03"), Some("SW1A 1AA"));
        assert!(candidates(db, "rp", &stranger).await.is_empty());
        t.cleanup().await;
    }
}

#[tokio::test]
async fn records_of_other_rps_never_come_back() {
    for t in migrated_databases().await {
        let db = &t.db;
        let same = keyed_record("X", "Smith", "1980-04-10", "LS1 4AB");
        db.import_records(
            "rp-a",
            &[keyed_record("A", "Smith", "1980-04-10", "LS1 4AB")],
        )
        .await
        .unwrap();
        db.import_records("rp-b", std::slice::from_ref(&same))
            .await
            .unwrap();
        let keys = matching::query_blocking_keys(&same.dataset);
        for (rp, expected) in [("rp-a", vec!["A"]), ("rp-b", vec!["X"]), ("rp-c", vec![])] {
            let found = db
                .candidates_by_blocking_keys(rp, &keys, 1000)
                .await
                .unwrap();
            assert_eq!(ids(&found), expected, "{}: {rp}", t.backend);
        }
        t.cleanup().await;
    }
}

#[tokio::test]
async fn reimport_replaces_the_keys() {
    for t in migrated_databases().await {
        let db = &t.db;
        let old = keyed_record("D1", "Okonkwo", "1980-04-10", "LS1 4AB");
        let new = keyed_record("D1", "Baptiste", "1991-05-06", "M1 1AA");
        // Imported again unchanged (a department's monthly refresh): still found by
        // every key, once.
        for _ in 0..2 {
            db.import_records("rp", std::slice::from_ref(&old))
                .await
                .unwrap();
        }
        assert_eq!(ids(&candidates(db, "rp", &old.dataset).await), vec!["D1"]);
        for q in [
            query(None, Some("1980-04-10"), None),
            query(Some("Okonkwo"), Some("1980-04-01"), None),
            query(Some("Okonkwo"), None, Some("LS1 4AB")),
        ] {
            assert_eq!(ids(&candidates(db, "rp", &q).await), vec!["D1"]);
        }
        // Moved: the keys of the old postcode go, the others stay.
        let mut moved = old.clone();
        moved.dataset.addresses[0].postcode = Some("YO1 7HH".into());
        db.import_records("rp", std::slice::from_ref(&moved))
            .await
            .unwrap();
        let at = |postcode: &str| query(Some("Okonkwo"), None, Some(postcode));
        assert!(
            candidates(db, "rp", &at("LS1 4AB")).await.is_empty(),
            "{}",
            t.backend
        );
        assert_eq!(ids(&candidates(db, "rp", &at("YO1 7HH")).await), vec!["D1"]);
        let by_date = query(None, Some("1980-04-10"), None);
        assert_eq!(ids(&candidates(db, "rp", &by_date).await), vec!["D1"]);
        db.import_records("rp", std::slice::from_ref(&new))
            .await
            .unwrap();
        // No old key finds it any more, whichever kind.
        for q in [
            query(None, Some("1980-04-10"), None),
            query(Some("Okonkwo"), Some("1980-04-01"), None),
            query(Some("Okonkwo"), None, Some("LS1 4AB")),
        ] {
            assert!(candidates(db, "rp", &q).await.is_empty(), "{}", t.backend);
        }
        let found = candidates(db, "rp", &new.dataset).await;
        assert_eq!(ids(&found), vec!["D1"], "{}", t.backend);
        assert_eq!(found[0].dataset.surnames, vec!["Baptiste"]);
        // A record that lost every key is stored but never a candidate.
        db.import_records("rp", &[record("D1", "", None)])
            .await
            .unwrap();
        assert!(candidates(db, "rp", &new.dataset).await.is_empty());
        assert_eq!(db.count_records("rp").await.unwrap(), 1);
        t.cleanup().await;
    }
}

#[tokio::test]
async fn reimport_replaces_a_record_whose_stored_dataset_does_not_decode() {
    for t in migrated_databases().await {
        let db = &t.db;
        let old = keyed_record("D1", "Okonkwo", "1980-04-10", "LS1 4AB");
        db.import_records("rp", std::slice::from_ref(&old))
            .await
            .unwrap();
        // Its keys can no longer be derived from what is stored.
        t.execute_raw("UPDATE department_records SET dataset = '{not json'")
            .await;
        let new = keyed_record("D1", "Baptiste", "1991-05-06", "M1 1AA");
        db.import_records("rp", std::slice::from_ref(&new))
            .await
            .unwrap();
        assert!(
            candidates(db, "rp", &old.dataset).await.is_empty(),
            "{}",
            t.backend
        );
        let found = candidates(db, "rp", &new.dataset).await;
        assert_eq!(ids(&found), vec!["D1"], "{}", t.backend);
        t.cleanup().await;
    }
}

#[tokio::test]
async fn more_than_limit_returns_limit_plus_one() {
    for t in migrated_databases().await {
        let db = &t.db;
        // Five records under one date of birth, inserted out of order, each
        // also found through its surname and postcode keys (returned once).
        let records: Vec<_> = ["R3", "R1", "R5", "R2", "R4"]
            .iter()
            .map(|id| keyed_record(id, "Smith", "1980-04-10", "LS1 4AB"))
            .collect();
        db.import_records("rp", &records).await.unwrap();
        let keys = matching::query_blocking_keys(&records[0].dataset);
        assert!(keys.len() >= 3, "{keys:?}");
        for (limit, expected) in [
            (0, vec!["R1"]),
            (2, vec!["R1", "R2", "R3"]),
            (4, vec!["R1", "R2", "R3", "R4", "R5"]),
            (5, vec!["R1", "R2", "R3", "R4", "R5"]),
            (1000, vec!["R1", "R2", "R3", "R4", "R5"]),
        ] {
            let found = db
                .candidates_by_blocking_keys("rp", &keys, limit)
                .await
                .unwrap();
            assert_eq!(ids(&found), expected, "{}: limit {limit}", t.backend);
        }
        t.cleanup().await;
    }
}

/// `n` distinct surnames with distinct sound-alike codes (consonant patterns).
fn many_surnames(n: usize) -> Vec<String> {
    const C: &[char] = &['b', 'd', 'f', 'g', 'k', 'l', 'm', 'n', 'p', 'r', 's', 't'];
    let mut names = Vec::with_capacity(n);
    'all: for a in C {
        for b in C {
            for c in C {
                if names.len() == n {
                    break 'all;
                }
                names.push(format!("{}a{b}o{c}ell", a.to_ascii_uppercase()));
            }
        }
    }
    names
}

/// `n` distinct well-formed postcodes.
fn many_postcodes(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            format!(
                "{}{} {}AB",
                ["LS", "YO", "M", "B"][i % 4],
                i / 40 + 1,
                i / 4 % 10
            )
        })
        .collect()
}

/// A query with hundreds of surnames and postcodes has more blocking keys than SQLite
/// binds in one statement (32,766): both look-ups still find exactly the records the keys
/// lead to, in `record_id` order and within the limit, on both backends.
#[tokio::test]
async fn a_query_with_more_keys_than_sqlite_binds_finds_its_records() {
    let surnames = many_surnames(300);
    let postcodes = many_postcodes(300);
    // A query's own keys are bounded (`matching::MAX_QUERY_KEYS`); the store must not
    // depend on that: every postcode + surname key of 300 x 300 people.
    let mut keys = std::collections::BTreeSet::new();
    for surname in &surnames {
        for postcode in &postcodes {
            let mut d = query(Some(surname), None, None);
            d.addresses = vec![Address {
                lines: Vec::new(),
                postcode: Some(postcode.clone()),
                current: false,
            }];
            keys.extend(matching::record_blocking_keys(&d));
        }
    }
    let keys: Vec<String> = keys.into_iter().collect();
    assert!(keys.len() > 40_000, "only {} keys", keys.len());
    // Found through keys far apart in the list (so in different chunks), and one not at all.
    let records = vec![
        keyed_record("R3", &surnames[0], "1990-01-01", &postcodes[0]),
        keyed_record("R1", &surnames[299], "1990-01-01", &postcodes[299]),
        keyed_record("R2", &surnames[150], "1990-01-01", &postcodes[7]),
        keyed_record("R0", "Okonkwo", "1990-01-01", "SW1A 1AA"),
    ];
    for t in migrated_databases().await {
        let db = &t.db;
        db.import_records("rp", &records).await.unwrap();
        for (limit, expected) in [(1000, vec!["R1", "R2", "R3"]), (1, vec!["R1", "R2"])] {
            let found = db
                .candidates_by_blocking_keys("rp", &keys, limit)
                .await
                .unwrap_or_else(|e| panic!("{}: {e}", t.backend));
            assert_eq!(ids(&found), expected, "{}: limit {limit}", t.backend);
            let found = db
                .link_or_candidates("rp", "idp", "sub", &keys, limit)
                .await
                .unwrap_or_else(|e| panic!("{}: {e}", t.backend));
            let store::LinkOrCandidates::Candidates(found) = found else {
                panic!("{}: no link yet, but {found:?}", t.backend);
            };
            assert_eq!(ids(&found), expected, "{}: limit {limit}", t.backend);
        }
        db.save_record_link("rp", "idp", "sub", &RecordId("R2".into()))
            .await
            .unwrap();
        let found = db
            .link_or_candidates("rp", "idp", "sub", &keys, 1000)
            .await
            .unwrap();
        assert!(
            matches!(found, store::LinkOrCandidates::Linked(ref r) if r.0 == "R2"),
            "{}: {found:?}",
            t.backend
        );
        t.cleanup().await;
    }
}

/// Cycles 0 and 1 in one statement: with no link, exactly the candidates (same order and
/// limit); once the subject is linked, the link alone, whatever the keys find; links of
/// another RP, IdP or subject do not count.
#[tokio::test]
async fn link_or_candidates_gives_the_link_or_else_the_candidates() {
    use store::LinkOrCandidates;
    for t in migrated_databases().await {
        let db = &t.db;
        let records: Vec<_> = ["R3", "R1", "R2"]
            .iter()
            .map(|id| keyed_record(id, "Smith", "1980-04-10", "LS1 4AB"))
            .collect();
        db.import_records("rp", &records).await.unwrap();
        let keys = matching::query_blocking_keys(&records[0].dataset);
        for limit in [1, 1000] {
            let found = db
                .link_or_candidates("rp", "idp", "sub", &keys, limit)
                .await
                .unwrap();
            let expected = db
                .candidates_by_blocking_keys("rp", &keys, limit)
                .await
                .unwrap();
            let LinkOrCandidates::Candidates(found) = found else {
                panic!("{}: no link yet, but {found:?}", t.backend);
            };
            assert_eq!(ids(&found), ids(&expected), "{}: limit {limit}", t.backend);
            assert_eq!(found[0].dataset, expected[0].dataset);
        }
        for (rp, idp, sub) in [
            ("rp2", "idp", "sub"),
            ("rp", "idp2", "sub"),
            ("rp", "idp", "sub2"),
        ] {
            db.save_record_link(rp, idp, sub, &RecordId("X9".into()))
                .await
                .unwrap();
        }
        let found = db
            .link_or_candidates("rp", "idp", "sub", &keys, 1000)
            .await
            .unwrap();
        assert!(
            matches!(found, LinkOrCandidates::Candidates(ref c) if c.len() == 3),
            "{}: {found:?}",
            t.backend
        );
        db.save_record_link("rp", "idp", "sub", &RecordId("R2".into()))
            .await
            .unwrap();
        for keys in [keys.clone(), vec!["no-such-key".to_owned()], Vec::new()] {
            let found = db
                .link_or_candidates("rp", "idp", "sub", &keys, 1)
                .await
                .unwrap();
            assert!(
                matches!(found, LinkOrCandidates::Linked(ref r) if r.0 == "R2"),
                "{}: {keys:?}: {found:?}",
                t.backend
            );
        }
        t.cleanup().await;
    }
}

/// Runs only the migrations before the blocking keys one, the way a database
/// of the previous hub version looks.
async fn migrate_before_keys(t: &TestDb) {
    use diesel::migration::MigrationSource;
    use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
    use diesel_async::{AsyncConnection, AsyncPgConnection};
    use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
    const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations");

    fn up_to_keys<C: MigrationHarness<C::Backend> + diesel::Connection>(conn: &mut C)
    where
        EmbeddedMigrations: MigrationSource<C::Backend>,
    {
        let all = MigrationSource::<C::Backend>::migrations(&MIGRATIONS).unwrap();
        let before = all
            .iter()
            .filter(|m| m.name().to_string().as_str() < "2026-12-02-000000")
            .count();
        for _ in 0..before {
            conn.run_next_migration(MIGRATIONS).unwrap();
        }
    }
    match t.backend {
        Backend::Sqlite => {
            use diesel::Connection;
            let path = t.url.trim_start_matches("sqlite://").to_owned();
            tokio::task::spawn_blocking(move || {
                up_to_keys(&mut diesel::SqliteConnection::establish(&path).unwrap())
            })
            .await
            .unwrap();
        }
        Backend::Postgres => {
            let conn = AsyncPgConnection::establish(&t.url).await.unwrap();
            tokio::task::spawn_blocking(move || {
                up_to_keys(&mut AsyncConnectionWrapper::<AsyncPgConnection>::from(conn))
            })
            .await
            .unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_imported_before_the_keys_are_backfilled() {
    for t in fresh_databases().await {
        migrate_before_keys(&t).await;
        assert!(matches!(
            t.db.schema_status().await.unwrap(),
            SchemaStatus::Pending(p) if !p.is_empty()
        ));
        // The previous version's rows: more than one backfill batch (5,000),
        // all the same person but for the record id, plus one in another RP.
        let target = keyed_record("", "Okonkwo", "1980-04-10", "LS1 4AB");
        let json = serde_json::to_string(&target.dataset)
            .unwrap()
            .replace('\'', "''");
        t.execute_raw(&format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5003) \
             INSERT INTO department_records (rp_id, record_id, date_of_birth, dataset) \
             SELECT 'rp', 'R' || (100000 + i), '1980-04-10', '{json}' FROM n"
        ))
        .await;
        t.execute_raw(&format!(
            "INSERT INTO department_records (rp_id, record_id, date_of_birth, dataset) \
             VALUES ('rp-b', 'B1', '1980-04-10', '{json}')"
        ))
        .await;

        t.db.migrate().await.unwrap();
        assert_eq!(t.db.schema_status().await.unwrap(), SchemaStatus::UpToDate);
        t.db.require_current_schema().await.unwrap();
        assert_eq!(t.db.count_records("rp").await.unwrap(), 5003);
        // Found through each key kind, in either RP.
        for q in [
            query(None, Some("1980-04-10"), None),
            query(Some("Okonkwo"), Some("1980-04-01"), None),
            query(Some("Okonkwo"), None, Some("LS1 4AB")),
        ] {
            let found =
                t.db.candidates_by_blocking_keys("rp", &matching::query_blocking_keys(&q), 6000)
                    .await
                    .unwrap();
            assert_eq!(found.len(), 5003, "{}", t.backend);
            assert_eq!(found[0].record_id.0, "R100001");
            assert_eq!(found[0].dataset, target.dataset);
            assert_eq!(ids(&candidates(&t.db, "rp-b", &q).await), vec!["B1"]);
        }
        // Done once: migrating again finds nothing to do and changes nothing.
        t.db.migrate().await.unwrap();
        assert_eq!(by_dob(&t.db, "rp-b", "1980-04-10").await.len(), 1);
        t.cleanup().await;
    }
}

#[tokio::test]
async fn unkeyed_records_block_serving_until_migrated_and_corrupt_ones_fail_it() {
    for t in migrated_databases().await {
        t.db.import_records(
            "rp",
            &[keyed_record("D1", "Smith", "1980-04-10", "LS1 4AB")],
        )
        .await
        .unwrap();
        // As if the key scheme changed: a migration marks every record unkeyed.
        t.execute_raw("UPDATE department_records SET keyed = 0")
            .await;
        t.execute_raw("DELETE FROM department_record_keys").await;
        let err = t.db.require_current_schema().await.unwrap_err();
        assert!(
            matches!(err, StoreError::Schema(_)),
            "{}: {err:?}",
            t.backend
        );
        assert!(err.to_string().contains("hub migrate"), "{err}");
        assert!(by_dob(&t.db, "rp", "1980-04-10").await.is_empty());

        // A record that does not decode stops the backfill, naming it.
        t.execute_raw(
            "INSERT INTO department_records (rp_id, record_id, dataset, keyed) \
             VALUES ('rp', 'bad', '{not json', 0)",
        )
        .await;
        let err = t.db.migrate().await.unwrap_err();
        assert!(
            matches!(err, StoreError::Corrupt(_)),
            "{}: {err:?}",
            t.backend
        );
        assert!(err.to_string().contains("bad"), "{err}");
        assert!(t.db.require_current_schema().await.is_err());

        t.execute_raw("DELETE FROM department_records WHERE record_id = 'bad'")
            .await;
        t.db.migrate().await.unwrap();
        t.db.require_current_schema().await.unwrap();
        assert_eq!(ids(&by_dob(&t.db, "rp", "1980-04-10").await), vec!["D1"]);
        t.cleanup().await;
    }
}

// ---- PostgreSQL ------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_migrations_apply_once() {
    let t = TestDb::postgres().await;
    // Several hub instances running `hub migrate` at the same moment.
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let db = t.reopen().await;
        tasks.push(tokio::spawn(async move { db.migrate().await }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(t.db.schema_status().await.unwrap(), SchemaStatus::UpToDate);
    t.cleanup().await;
}

#[tokio::test]
async fn postgres_accepts_both_schemes_and_hides_the_password() {
    let t = TestDb::postgres().await;
    // Trust authentication ignores the password; it must not be shown anyway.
    let with_password = t
        .url
        .replacen("postgres://postgres@", "postgresql://postgres:s3cret@", 1);
    assert_ne!(
        with_password, t.url,
        "test assumes the default user in the url"
    );
    let db = Database::open(&with_password).await.unwrap();
    db.ping().await.unwrap();
    let shown = format!("{db:?}");
    assert!(shown.contains("postgres"), "{shown}");
    assert!(!shown.contains("s3cret"), "{shown}");
    drop(db);
    t.cleanup().await;
}

#[tokio::test]
async fn unreachable_postgres_is_unavailable_quickly() {
    let started = Instant::now();
    let err = Database::open("postgres://postgres@127.0.0.1:1/test")
        .await
        .unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
    assert!(err.to_string().contains("127.0.0.1:1"), "{err}");
    // An unresponsive server: the open gives up after the acquire timeout.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("postgres://postgres@{}/test", silent.local_addr().unwrap());
    let options = DatabaseOptions {
        max_connections: 2,
        acquire_timeout: Duration::from_millis(500),
        ..DatabaseOptions::default()
    };
    let err = Database::open_with(&url, options).await.unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn postgres_pool_reports_usage() {
    let t = TestDb::postgres().await;
    let db = Database::open_with(
        &t.url,
        DatabaseOptions {
            max_connections: 1,
            acquire_timeout: Duration::from_millis(200),
            ..DatabaseOptions::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        db.pool_state(),
        PoolState {
            connections: 1,
            idle: 1
        }
    );
    drop(db);
    t.cleanup().await;
}

/// A PostgreSQL connection is driven by the runtime that opened it; used from another
/// thread, every statement would wake the opening thread. So a thread never borrows
/// another thread's idle connection: it opens its own, on its own runtime, and keeps it.
#[tokio::test]
async fn each_thread_uses_postgres_connections_of_its_own() {
    let t = TestDb::postgres().await.migrated().await;
    let db = Database::open(&t.url).await.unwrap();
    let opened = db.pool_state();
    assert_eq!(opened.connections, 1, "{opened:?}");
    // Another thread with its own runtime, as each hub worker has: the idle connection
    // above is not lent to it.
    // (This runtime stays free meanwhile, so that lending it would work, and show.)
    let elsewhere = db.clone();
    let (sender, receiver) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let state = runtime.block_on(async {
            for _ in 0..3 {
                assert_eq!(elsewhere.count_records("rp").await.unwrap(), 0);
            }
            elsewhere.pool_state()
        });
        let _ = sender.send(state);
    });
    let state = receiver.await.unwrap();
    assert_eq!(
        state,
        PoolState {
            connections: 2,
            idle: 2
        },
        "one connection per thread"
    );
    // This thread still has its own, and opens no other.
    assert_eq!(db.count_records("rp").await.unwrap(), 0);
    assert_eq!(db.pool_state().connections, 2);
    drop(db);
    t.cleanup().await;
}

// ---- SQLite ----------------------------------------------------------------

#[tokio::test]
async fn bare_path_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bare.db");
    let db = Database::open(path.to_str().unwrap()).await.unwrap();
    db.migrate().await.unwrap();
    assert!(path.exists());
    assert_eq!(db.count_records("rp").await.unwrap(), 0);
}

#[tokio::test]
async fn unopenable_database_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    // A directory where the file should be: SQLite cannot open it.
    let path = dir.path().join("is-a-dir");
    std::fs::create_dir(&path).unwrap();
    let err = Database::open(&format!("sqlite://{}", path.display()))
        .await
        .unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
    assert!(matches!(
        Database::open("mysql://localhost/hub").await,
        Err(StoreError::InvalidUrl(_))
    ));
}

#[tokio::test]
async fn in_memory_database_keeps_its_data() {
    let db = Database::open("sqlite::memory:").await.unwrap();
    db.migrate().await.unwrap();
    db.import_records("rp", &[record("M1", "Smith", Some("1980-04-10"))])
        .await
        .unwrap();
    assert_eq!(db.count_records("rp").await.unwrap(), 1);
    let clone = db.clone();
    assert_eq!(by_dob(&clone, "rp", "1980-04-10").await.len(), 1);
    assert!(format!("{db:?}").contains("Memory"));
}

#[tokio::test]
async fn pragmas_are_applied() {
    let t = TestDb::sqlite().await.migrated().await;
    assert_eq!(t.backend, Backend::Sqlite);
    t.db.ping().await.unwrap();
    // WAL mode leaves a -wal file next to the database once something was written.
    t.db.save_record_link("rp", "idp", "s", &RecordId("D".into()))
        .await
        .unwrap();
    let path = t.url.trim_start_matches("sqlite://");
    assert!(std::path::Path::new(&format!("{path}-wal")).exists());
}
