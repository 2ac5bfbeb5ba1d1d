//! `scripts/test.sh` (what `make test` runs) on a PostgreSQL server that other runs share.

use std::path::Path;
use std::process::Command;

use crate::util::postgres_admin_url;

/// `psql -Atc sql` on the admin database; stdout.
fn psql(sql: &str) -> String {
    let out = Command::new("psql")
        .arg(postgres_admin_url())
        .args(["-Atc", sql])
        .output()
        .expect("psql is needed for this test (scripts/test.sh uses it too)");
    assert!(out.status.success(), "psql {sql}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

fn exists(db: &str) -> bool {
    psql(&format!(
        "select count(*) from pg_database where datname = '{db}'"
    ))
    .trim()
        == "1"
}

/// Another run's scratch databases, in progress on the same server, survive this run's
/// cleanup; this run's own are dropped. The cargo that `test.sh` runs is a stand-in that
/// creates a database named as the test harness names them (`store::test_support`).
#[test]
fn the_test_script_drops_its_own_scratch_databases_and_no_one_elses() {
    let tag = uuid_like();
    let others = [
        format!("hub_test_{tag}"),        // a plain `cargo test` elsewhere
        format!("hub_test_r{tag}_{tag}"), // another `make test`
    ];
    for db in &others {
        psql(&format!("create database \"{db}\""));
    }

    let dir = tempfile::tempdir().unwrap();
    let created = dir.path().join("created");
    let cargo = dir.path().join("cargo");
    std::fs::write(
        &cargo,
        format!(
            "#!/usr/bin/env bash\n\
             set -eu\n\
             db=\"hub_test_${{HUB_TEST_RUN:-}}_stub{tag}\"\n\
             echo \"$db\" > {created}\n\
             psql \"$DATABASE_URL\" -qc \"create database \\\"$db\\\"\" 2>/dev/null || true\n",
            created = created.display()
        ),
    )
    .unwrap();
    make_executable(&cargo);

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/test.sh");
    let out = Command::new(&script)
        .env("CARGO", &cargo)
        .env("DATABASE_URL", postgres_admin_url())
        .env("REDIS_URL", crate::util::redis_url())
        .env("HUB_TEST_SERVICES_NO_INSTALL", "1")
        .env_remove("HUB_TEST_SERVICES_STARTED")
        .env_remove("HUB_TEST_RUN")
        .output()
        .unwrap();
    let own = std::fs::read_to_string(&created).unwrap();
    let own = own.trim();
    let survivors: Vec<bool> = others.iter().map(|db| exists(db)).collect();
    let own_left = exists(own);
    for db in others.iter().map(String::as_str).chain([own]) {
        psql(&format!("drop database if exists \"{db}\" with (force)"));
    }

    assert!(out.status.success(), "{out:?}");
    assert_eq!(survivors, [true, true], "other runs' databases {others:?}");
    assert!(!own_left, "this run's database {own} was left behind");
}

/// 16 hex digits, unique enough to name a database no one else has.
fn uuid_like() -> String {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 8];
    ring::rand::SystemRandom::new().fill(&mut bytes).unwrap();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}
