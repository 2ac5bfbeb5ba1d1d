//! Database behaviour against real SQLite files.
#![allow(clippy::unwrap_used)]

use matching::{Address, DepartmentRecord, MatchingDataset, RecordId};
use store::{Database, StoreError};

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

async fn open_migrated(dir: &tempfile::TempDir) -> Database {
    let url = format!(
        "sqlite://{}",
        dir.path().join("nested/dir/hub.db").display()
    );
    let db = Database::open(&url).await.unwrap();
    db.migrate().await.unwrap();
    db
}

fn ids(records: &[DepartmentRecord]) -> Vec<&str> {
    records.iter().map(|r| r.record_id.0.as_str()).collect()
}

#[tokio::test]
async fn migrate_twice_is_idempotent_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_migrated(&dir).await;
    db.migrate().await.unwrap();
    db.import_records("rp", &[record("D1", "Smith", Some("1980-04-10"))])
        .await
        .unwrap();
    drop(db);

    let db = open_migrated(&dir).await;
    db.ping().await.unwrap();
    assert_eq!(db.count_records("rp").await.unwrap(), 1);
}

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
async fn candidates_are_scoped_to_rp_and_date_of_birth() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_migrated(&dir).await;
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
    assert_eq!(written, 4);
    db.import_records("rp-b", &[record("B1", "Smith", Some("1980-04-10"))])
        .await
        .unwrap();

    let found = db
        .candidates_by_date_of_birth("rp-a", "1980-04-10")
        .await
        .unwrap();
    assert_eq!(ids(&found), vec!["A1", "A2"]);
    assert_eq!(found[1].dataset.surnames, vec!["Smith"]);
    assert_eq!(
        found[1].dataset.addresses[0].postcode.as_deref(),
        Some("LS1 4AB")
    );

    let found = db
        .candidates_by_date_of_birth("rp-b", "1980-04-10")
        .await
        .unwrap();
    assert_eq!(ids(&found), vec!["B1"]);
    assert!(db
        .candidates_by_date_of_birth("rp-c", "1980-04-10")
        .await
        .unwrap()
        .is_empty());
    assert!(db
        .candidates_by_date_of_birth("rp-a", "1999-12-31")
        .await
        .unwrap()
        .is_empty());
    assert!(db
        .candidates_by_date_of_birth("rp-a", "not a date")
        .await
        .unwrap()
        .is_empty());

    assert_eq!(db.count_records("rp-a").await.unwrap(), 4);
    assert_eq!(db.count_records("rp-b").await.unwrap(), 1);
    assert_eq!(db.count_records("nobody").await.unwrap(), 0);
}

#[tokio::test]
async fn import_upserts() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_migrated(&dir).await;
    db.import_records("rp", &[record("D1", "Old", Some("1980-04-10"))])
        .await
        .unwrap();
    // Same id again, with a new date of birth: replaced, not duplicated.
    db.import_records("rp", &[record("D1", "New", Some("1990-01-02"))])
        .await
        .unwrap();
    assert_eq!(db.count_records("rp").await.unwrap(), 1);
    assert!(db
        .candidates_by_date_of_birth("rp", "1980-04-10")
        .await
        .unwrap()
        .is_empty());
    let found = db
        .candidates_by_date_of_birth("rp", "1990-01-02")
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].dataset.surnames, vec!["New"]);

    // A repeated id within one batch: the last occurrence wins.
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
    assert_eq!(written, 1);
    let found = db
        .candidates_by_date_of_birth("rp", "1990-01-02")
        .await
        .unwrap();
    assert_eq!(ids(&found), vec!["D1", "D2"]);
    assert_eq!(found[1].dataset.surnames, vec!["Last"]);
}

#[tokio::test]
async fn large_import_spans_several_statements() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_migrated(&dir).await;
    let records: Vec<_> = (0..1234)
        .map(|i| record(&format!("R{i:05}"), "Smith", Some("1980-04-10")))
        .collect();
    assert_eq!(db.import_records("rp", &records).await.unwrap(), 1234);
    assert_eq!(db.count_records("rp").await.unwrap(), 1234);
}

#[tokio::test]
async fn empty_ids_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_migrated(&dir).await;
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
}

#[tokio::test]
async fn record_links_round_trip_per_rp_idp_subject() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_migrated(&dir).await;
    assert_eq!(db.record_link("rp", "idp", "sub").await.unwrap(), None);

    db.save_record_link("rp", "idp", "sub", &RecordId("D1".into()))
        .await
        .unwrap();
    assert_eq!(
        db.record_link("rp", "idp", "sub").await.unwrap(),
        Some(RecordId("D1".into()))
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
        Some(RecordId("D2".into()))
    );
    assert_eq!(
        db.record_link("rp2", "idp", "sub").await.unwrap(),
        Some(RecordId("X9".into()))
    );
}

#[tokio::test]
async fn queries_before_migration_are_database_errors_not_unavailability() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(&format!("sqlite://{}", dir.path().join("x.db").display()))
        .await
        .unwrap();
    let err = db.count_records("rp").await.unwrap_err();
    assert!(matches!(err, StoreError::Database(_)), "{err:?}");
    assert!(!err.is_unavailable());
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
        Database::open("postgres://localhost/hub").await,
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
    assert_eq!(
        clone
            .candidates_by_date_of_birth("rp", "1980-04-10")
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(format!("{db:?}").contains("Memory"));
}

#[tokio::test]
async fn pragmas_are_applied() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_migrated(&dir).await;
    db.ping().await.unwrap();
    // WAL mode leaves a -wal file next to the database once something was written.
    db.save_record_link("rp", "idp", "s", &RecordId("D".into()))
        .await
        .unwrap();
    assert!(dir.path().join("nested/dir/hub.db-wal").exists());
}
