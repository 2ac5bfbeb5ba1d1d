//! `hub match batch`: the `hub` binary on a small file with malformed lines.

use std::path::Path;
use std::process::Command;

use matching::{DepartmentRecord, RecordId};
use serde_json::{json, Value};

fn hub(config: &Path, args: &[&str]) -> std::process::Output {
    let output = Command::new(env!("CARGO_BIN_EXE_hub"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("HUB_CONFIG")
        .output()
        .expect("run hub");
    assert!(
        output.status.success(),
        "hub {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[tokio::test]
async fn batch_mode_writes_one_decision_per_line_and_survives_bad_lines() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hub.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[data]
dir = "{dir}"

[database]
url = "sqlite://{dir}/batch.db"

[[relying_parties]]
client_id = "rp-batch"
name = "Batch"
redirect_uris = ["http://127.0.0.1:9/callback"]
token_endpoint_auth_method = "client_secret_basic"
client_secret = "secret"
default_level = "P2"
cycle3_attribute = "nino"
"#,
            dir = dir.path().display()
        ),
    )
    .unwrap();
    let records = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/demo-records.csv");
    hub(&config, &["migrate"]);
    hub(
        &config,
        &[
            "records",
            "import",
            "--rp",
            "rp-batch",
            records.to_str().unwrap(),
        ],
    );

    let alice = json!({"id": "q-alice", "first_name": "Alice", "surnames": ["Smith"],
        "date_of_birth": "1980-04-10", "addresses": [{"postcode": "ls1 4ab", "current": true}]});
    let chris = json!({"id": "q-chris", "first_name": "Chris", "surnames": ["Taylor"],
        "date_of_birth": "1990-06-15", "addresses": [{"postcode": "BS1 5AA", "current": true}]});
    let mut chris_nino = chris.clone();
    chris_nino["id"] = json!("q-chris-nino");
    chris_nino["attributes"] = json!({"nino": "QQ445566C"});
    let nobody = json!({"id": "q-nobody", "first_name": "Nobody", "surnames": ["Known"],
        "date_of_birth": "2001-01-01"});
    let input = dir.path().join("queries.jsonl");
    std::fs::write(
        &input,
        [
            alice.to_string(),
            r#"{"id": "q-broken", "first_name": "Alice""#.to_owned(),
            chris_nino.to_string(),
            String::new(),
            chris.to_string(),
            r#"["not", "an", "object"]"#.to_owned(),
            nobody.to_string(),
            r#"{"id": "q-odd", "date_of_birth": "1980-02-31", "surnames": 7}"#.to_owned(),
        ]
        .join("\n"),
    )
    .unwrap();
    let output = dir.path().join("decisions.jsonl");
    let run = hub(
        &config,
        &[
            "match",
            "batch",
            "--rp",
            "rp-batch",
            "--input",
            input.to_str().unwrap(),
            "--output",
            output.to_str().unwrap(),
        ],
    );
    let lines: Vec<Value> = std::fs::read_to_string(&output)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 7, "{lines:?}");

    let [a, broken, c3, c1, not_object, nobody, odd] = &lines[..] else {
        unreachable!()
    };
    assert_eq!(a["line"], 1);
    assert_eq!(a["id"], "q-alice");
    assert_eq!(a["outcome"], "match");
    assert_eq!(a["record_id"], "123");
    assert_eq!(a["cycle"], 1);
    assert!(a["score"].as_f64().unwrap() > 0.0);
    assert!(!a["reasons"].as_array().unwrap().is_empty());

    assert_eq!(broken["line"], 2);
    assert!(
        broken["error"].as_str().unwrap().contains("JSON"),
        "{broken}"
    );
    assert!(
        !broken.to_string().contains("Alice"),
        "no personal data in errors"
    );
    assert!(broken.get("outcome").is_none());

    assert_eq!(c3["line"], 3);
    assert_eq!(c3["id"], "q-chris-nino");
    assert_eq!(c3["cycle"], 3, "twins: cycle 1 ambiguous, cycle 3 resolves");
    assert_eq!(c3["outcome"], "match");
    assert_eq!(c3["record_id"], "C-202");

    assert_eq!(c1["line"], 5, "the blank line 4 is skipped");
    assert_eq!(c1["id"], "q-chris");
    assert_eq!(c1["cycle"], 1);
    assert_eq!(c1["outcome"], "ambiguous");
    assert_eq!(c1["record_id"], Value::Null);

    assert_eq!(not_object["line"], 6);
    assert_eq!(not_object["error"], "not a JSON object");

    assert_eq!(nobody["id"], "q-nobody");
    assert_eq!(nobody["outcome"], "no_match");
    assert_eq!(nobody["record_id"], Value::Null);

    assert_eq!(odd["id"], "q-odd");
    assert_eq!(odd["outcome"], "no_match", "malformed fields never match");

    let summary = String::from_utf8_lossy(&run.stdout);
    for expected in [
        "lines: 7",
        "match: 2",
        "no_match: 2",
        "ambiguous: 1",
        "error: 2",
    ] {
        assert!(
            summary.lines().any(|l| l == expected),
            "{expected:?} in:\n{summary}"
        );
    }
}

#[test]
fn batch_mode_refuses_an_unknown_relying_party() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hub.toml");
    std::fs::write(
        &config,
        format!(
            "[database]\nurl = \"sqlite://{}/x.db\"\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_hub"))
        .arg("--config")
        .arg(&config)
        .args([
            "match",
            "batch",
            "--rp",
            "nobody",
            "--input",
            "in.jsonl",
            "--output",
            "out.jsonl",
        ])
        .env_remove("HUB_CONFIG")
        .output()
        .expect("run hub");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("not configured"));
}

/// A record that matches the query of the same name and date of birth.
fn person(id: &str, first: &str, surname: &str, dob: &str, postcode: &str) -> DepartmentRecord {
    DepartmentRecord {
        record_id: RecordId(id.to_owned()),
        dataset: serde_json::from_value(json!({"first_name": first, "surnames": [surname],
            "date_of_birth": dob, "gender": "female",
            "addresses": [{"lines": ["1 High Street"], "postcode": postcode, "current": true}]}))
        .unwrap(),
    }
}

/// A line that fails (bad JSON, a stored record that no longer decodes) gets an error line
/// and every later line is still decided; a line with hundreds of surnames and postcodes
/// (more blocking keys than SQLite binds in one statement) is decided too; a byte-order
/// mark before the first line does not lose it.
#[tokio::test]
async fn batch_lines_that_fail_get_error_lines_and_the_rest_are_decided() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("batch.db").display());
    let db = store::Database::open(&url).await.unwrap();
    db.migrate().await.unwrap();
    let records = [
        person("A1", "Alice", "Smith", "1980-04-10", "LS1 4AB"),
        person("B1", "Bea", "Jones", "1975-05-05", "YO1 7HH"),
        person("C1", "Cara", "Lee", "1960-06-06", "M1 1AA"),
    ];
    db.import_records("rp", &records).await.unwrap();
    db.execute_raw("UPDATE department_records SET dataset = '{' WHERE record_id = 'C1'")
        .await
        .unwrap();
    let query = |r: &DepartmentRecord, id: &str| {
        let mut q = serde_json::to_value(&r.dataset).unwrap();
        q["id"] = json!(id);
        q.to_string()
    };
    let mut huge = serde_json::to_value(&records[0].dataset).unwrap();
    huge["id"] = json!("q-huge");
    // Surnames of distinct consonant patterns, so distinct sound-alike codes.
    let c = ['b', 'd', 'f', 'g', 'k', 'l', 'm', 'n', 'p', 'r', 's', 't'];
    let surnames: Vec<String> = (0..300)
        .map(|i| {
            format!(
                "{}a{}o{}ell",
                c[i / 144].to_ascii_uppercase(),
                c[i / 12 % 12],
                c[i % 12]
            )
        })
        .collect();
    huge["surnames"] = json!(surnames);
    huge["addresses"] = json!((0..300)
        .map(|i| json!({"postcode": format!("LS{} {}AB", i / 10 + 1, i % 10), "current": false}))
        .collect::<Vec<_>>());
    let huge_dataset: matching::MatchingDataset = serde_json::from_value(huge.clone()).unwrap();
    // Hundreds of surnames and postcodes: the query's keys stay bounded, so it is decided
    // like any other (the store's own limit is tested in crates/store).
    let keys = matching::query_blocking_keys(&huge_dataset).len();
    assert!(keys <= matching::MAX_QUERY_KEYS, "{keys} keys");
    let input = [
        format!("\u{feff}{}", query(&records[0], "q-alice")),
        huge.to_string(),
        r#"{"id": "q-broken""#.to_owned(),
        query(&records[2], "q-cara"),
        query(&records[1], "q-bea"),
        query(&records[0], "q-alice-again"),
    ]
    .join("\n");
    let rp = matching_service::batch::BatchRp {
        client_id: "rp".into(),
        policy: matching::MatchPolicy::default(),
        cycle3_attribute: None,
    };
    let mut output = Vec::new();
    let summary = matching_service::batch::run(&db, &rp, input.as_bytes(), &mut output)
        .await
        .expect("only output errors stop a batch");
    let lines: Vec<Value> = String::from_utf8(output)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let outcome = |l: &Value| {
        l["outcome"]
            .as_str()
            .map_or_else(|| format!("error: {}", l["error"]), str::to_owned)
    };
    let got: Vec<_> = lines
        .iter()
        .map(|l| (l["line"].clone(), outcome(l)))
        .collect();
    assert_eq!(got.len(), 6, "{lines:?}");
    assert_eq!(lines[0]["record_id"], "A1", "{lines:?}");
    assert!(lines[1]["outcome"].is_string(), "{lines:?}");
    assert!(lines[2]["error"].as_str().unwrap().contains("JSON"));
    assert_eq!(lines[3]["id"], "q-cara");
    assert_eq!(
        lines[3]["error"],
        "not decided: the database failed (see the log)"
    );
    assert!(!lines[3].to_string().contains("Cara"));
    assert_eq!(lines[4]["record_id"], "B1", "{lines:?}");
    assert_eq!(lines[5]["record_id"], "A1", "{lines:?}");
    assert_eq!((summary.lines, summary.errors), (6, 2));
}

/// `hub match evaluate` on a hand-made set whose counts are known: an exact query of its
/// own record (score ~37), an exact query of a record that is not the person's (a false
/// match at any threshold up to ~37), a name-and-date-of-birth-only query of its record
/// (~25), a twin (ambiguous: a miss at every threshold), a person without a record and
/// without candidates; a query missing from the truth file and a malformed line are
/// skipped.
#[tokio::test]
async fn evaluate_counts_true_and_false_matches_and_misses_per_threshold() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hub.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[data]
dir = "{dir}"

[database]
url = "sqlite://{dir}/evaluate.db"

[[relying_parties]]
client_id = "rp-eval"
name = "Evaluate"
redirect_uris = ["http://127.0.0.1:9/callback"]
token_endpoint_auth_method = "client_secret_basic"
client_secret = "secret"
default_level = "P2"
"#,
            dir = dir.path().display()
        ),
    )
    .unwrap();
    let file = |name: &str, content: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let records = file(
        "records.csv",
        "record_id,first_name,surname,date_of_birth,gender,address_lines,postcode\n\
         A1,Alice,Smith,1980-04-10,female,1 High Street,LS1 4AB\n\
         B1,Bea,Jones,1975-05-05,female,2 Mill Lane,YO1 7HH\n\
         C1,Cara,Lee,1960-06-06,female,3 Long Road,M1 1AA\n\
         D1,Dee,Ward,1990-09-09,female,4 Park Row,BS1 5AA\n\
         D2,Dee,Ward,1990-09-09,female,4 Park Row,BS1 5AA\n",
    );
    hub(&config, &["migrate"]);
    hub(&config, &["records", "import", "--rp", "rp-eval", &records]);
    let person = |id: &str, first: &str, surname: &str, dob: &str, line: &str, postcode: &str| {
        json!({"id": id, "first_name": first, "surnames": [surname], "date_of_birth": dob,
            "gender": "female", "addresses": [{"lines": [line], "postcode": postcode, "current": true}]})
        .to_string()
    };
    let queries = file(
        "queries.jsonl",
        &[
            person("q-1", "Alice", "Smith", "1980-04-10", "1 High Street", "LS1 4AB"),
            person("q-2", "Bea", "Jones", "1975-05-05", "2 Mill Lane", "YO1 7HH"),
            json!({"id": "q-3", "first_name": "Cara", "surnames": ["Lee"], "date_of_birth": "1960-06-06"})
                .to_string(),
            person("q-4", "Dee", "Ward", "1990-09-09", "4 Park Row", "BS1 5AA"),
            person("q-5", "Zed", "Young", "2001-01-01", "9 Nowhere", "SW1A 1AA"),
            person("q-6", "Alice", "Smith", "1980-04-10", "1 High Street", "LS1 4AB"),
            "not json".to_owned(),
        ]
        .join("\n"),
    );
    let truth = file(
        "truth.jsonl",
        r#"{"id": "q-1", "record_id": "A1"}
{"id": "q-2", "record_id": null}
{"id": "q-3", "set": "partial", "truth": "C1", "nino": null}
{"id": "q-4", "record_id": "D1"}
{"id": "q-5", "record_id": null}
"#,
    );
    let args = [
        "match", "evaluate", "--rp", "rp-eval", "--input", &queries, "--truth", &truth,
    ];
    let out = hub(&config, &[&args[..], &["--json"]].concat());
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["queries"], 5, "{report}");
    assert_eq!(report["with_record"], 3);
    assert_eq!(report["skipped"], 2);
    assert_eq!(report["failed"], 0);
    let rows = report["thresholds"].as_array().unwrap();
    assert_eq!(
        rows.len(),
        21,
        "10 to 50 in steps of 2, 32 (configured) among them"
    );
    let row = |t: f64| {
        let r = rows.iter().find(|r| r["threshold"] == t).unwrap();
        (
            r["configured"].as_bool().unwrap(),
            r["true_matches"].as_u64().unwrap(),
            r["false_matches"].as_u64().unwrap(),
            r["misses"].as_u64().unwrap(),
            r["precision"].as_f64(),
            r["recall"].as_f64(),
        )
    };
    // q-1 is found and q-2 (truth: no record) is a false match at any threshold up to
    // their scores (everything agrees: over 40 bits); q-3 (no address) and q-4 (two
    // identical records) never match; above every score nothing matches.
    let third = 1.0 / 3.0;
    assert_eq!(row(20.0), (false, 1, 1, 2, Some(0.5), Some(third)));
    assert_eq!(row(32.0), (true, 1, 1, 2, Some(0.5), Some(third)));
    assert_eq!(row(40.0), (false, 1, 1, 2, Some(0.5), Some(third)));
    assert_eq!(row(50.0), (false, 0, 0, 3, None, Some(0.0)));

    let table = String::from_utf8(hub(&config, &args).stdout).unwrap();
    assert!(
        table.contains("threshold  true_matches  false_matches  misses  precision  recall"),
        "{table}"
    );
    let configured: Vec<_> = table.lines().filter(|l| l.contains('*')).collect();
    assert_eq!(configured.len(), 1, "{table}");
    assert!(configured[0].trim_start().starts_with("32.00*"), "{table}");
    assert!(configured[0].contains("50.00%"), "{table}");
}
