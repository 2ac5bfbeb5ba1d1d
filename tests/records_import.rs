//! `hub records import`: the `hub` binary's exit status and summary.

use std::path::Path;
use std::process::{Command, Output};

/// Runs `hub records import --rp rp-import FILE` with a configuration of one relying party.
fn import(dir: &Path, name: &str, content: &str) -> Output {
    let config = dir.join("hub.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[data]
dir = "{dir}"

[database]
url = "sqlite://{dir}/import.db"

[[relying_parties]]
client_id = "rp-import"
name = "Import"
redirect_uris = ["http://127.0.0.1:9/callback"]
token_endpoint_auth_method = "client_secret_basic"
client_secret = "secret"
default_level = "P2"
"#,
            dir = dir.display()
        ),
    )
    .unwrap();
    let file = dir.join(name);
    std::fs::write(&file, content).unwrap();
    Command::new(env!("CARGO_BIN_EXE_hub"))
        .arg("--config")
        .arg(&config)
        .args(["records", "import", "--rp", "rp-import"])
        .arg(&file)
        .env_remove("HUB_CONFIG")
        .output()
        .expect("run hub")
}

/// An import that reads no record exits non-zero and says why; one that stores records
/// without a valid date of birth says how many.
#[test]
fn records_import_fails_when_nothing_is_read_and_counts_invalid_dates_of_birth() {
    let dir = tempfile::tempdir().unwrap();
    for (name, content, why) in [
        ("empty.csv", "", "empty file"),
        (
            "no-id.csv",
            "first_name,surname\nAnn,Lee\n",
            "no record_id column",
        ),
        (
            "semicolons.csv",
            "record_id;surname\nD1;Lee\n",
            "other than commas",
        ),
        ("header.csv", "record_id,surname\n", "no rows"),
        (
            "bad.csv",
            "record_id,surname\nD1\n",
            "all 1 rows were rejected",
        ),
    ] {
        let out = import(dir.path(), name, content);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name}: succeeded:\n{stderr}");
        assert!(stderr.contains("nothing imported"), "{name}: {stderr}");
        assert!(stderr.contains(why), "{name}: {why:?} in {stderr}");
    }
    let out = import(
        dir.path(),
        "good.csv",
        "record_id,surname,date_of_birth\nD1,Lee,1980-04-10\nD2,Ng,1980-02-30\n",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("imported 2 records, rejected 0 rows"),
        "{stdout}"
    );
    assert!(
        stdout.contains("1 of them without a valid date of birth"),
        "{stdout}"
    );
}
