//! The operators' kit under `ops/` (the Grafana dashboard, the Prometheus alert rules)
//! against the code: both files parse, and every metric they query is one the hub
//! exports, with labels it has. A renamed metric fails here, not on the night of an
//! incident.

use std::collections::BTreeSet;
use std::path::Path;

use hub::metrics::{Metrics, Series};
use serde::Deserialize;
use serde_json::Value;

/// Series that Prometheus itself makes, not the hub.
const PROMETHEUS_SERIES: &[&str] = &["up"];
/// Labels Prometheus attaches to every scraped series.
const TARGET_LABELS: &[&str] = &["instance", "job"];

fn ops_file(path: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("ops").join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    groups: Vec<RuleGroup>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleGroup {
    name: String,
    rules: Vec<Rule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Rule {
    alert: String,
    expr: String,
    #[serde(rename = "for")]
    _for: Option<String>,
    labels: std::collections::BTreeMap<String, String>,
    annotations: std::collections::BTreeMap<String, String>,
}

fn alert_rules() -> RuleFile {
    serde_yaml_ng::from_str(&ops_file("prometheus/alerts.yml")).expect("alerts.yml is YAML rules")
}

/// Every PromQL expression of the dashboard: its panels' targets (in rows too) and its
/// query variables.
fn dashboard_queries() -> Vec<String> {
    let dashboard: Value =
        serde_json::from_str(&ops_file("grafana/hub-dashboard.json")).expect("dashboard is JSON");
    assert_eq!(dashboard["uid"], "identity-hub");
    let mut queries = Vec::new();
    let mut panels: Vec<&Value> = dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .collect();
    while let Some(panel) = panels.pop() {
        panels.extend(panel["panels"].as_array().into_iter().flatten());
        for target in panel["targets"].as_array().into_iter().flatten() {
            assert_eq!(
                target["datasource"]["uid"], "${datasource}",
                "{}: the datasource is the templated variable",
                panel["title"]
            );
            queries.push(target["expr"].as_str().expect("expr").to_owned());
        }
    }
    for variable in dashboard["templating"]["list"]
        .as_array()
        .expect("templating")
    {
        if variable["type"] == "query" {
            // `label_values(metric, label)`, checked as the PromQL that asks the same.
            let query = variable["query"]["query"].as_str().expect("query");
            let args = query
                .strip_prefix("label_values(")
                .and_then(|q| q.strip_suffix(')'))
                .expect("a label_values(metric, label) variable");
            let (metric, label) = args.split_once(',').expect("metric, label");
            queries.push(format!("group by ({}) ({})", label.trim(), metric.trim()));
        }
    }
    queries
}

/// PromQL words that are not series names: grouping clauses, operators, and the
/// aggregations, which may be followed by a grouping clause rather than `(`.
const KEYWORDS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "bool",
    "offset",
];
const AGGREGATIONS: &[&str] = &[
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "count",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "quantile",
    "count_values",
    "limitk",
    "limit_ratio",
];

/// The series an expression selects (identifiers not followed by `(`, outside strings,
/// label matchers and grouping clauses), each with the label names its matcher names.
fn selectors(expr: &str) -> Vec<(String, Vec<String>)> {
    let chars: Vec<char> = expr.chars().collect();
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut found = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += 1;
            }
            i += 1;
        } else if c == '[' {
            while i < chars.len() && chars[i] != ']' {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && ident(chars[i]) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let mut j = i;
            while j < chars.len() && chars[j] == ' ' {
                j += 1;
            }
            let next = chars.get(j).copied();
            if KEYWORDS.contains(&word.as_str()) {
                if next == Some('(') {
                    // A grouping clause: skip its label list.
                    while j < chars.len() && chars[j] != ')' {
                        j += 1;
                    }
                    i = j + 1;
                }
                continue;
            }
            if next == Some('(') || AGGREGATIONS.contains(&word.as_str()) {
                continue; // a function or an aggregation
            }
            let mut labels = Vec::new();
            if next == Some('{') {
                let end = (j..chars.len())
                    .find(|&k| chars[k] == '}')
                    .unwrap_or(chars.len());
                let body: String = chars[j + 1..end].iter().collect();
                labels = matcher_labels(&body);
                i = end + 1;
            }
            found.push((word, labels));
        } else {
            i += 1;
        }
    }
    found
}

/// The label names of a matcher body `a="x", b=~"y|z"`.
fn matcher_labels(body: &str) -> Vec<String> {
    let mut labels = Vec::new();
    let mut in_string = false;
    let mut current = String::new();
    for c in body.chars() {
        match c {
            '"' => in_string = !in_string,
            _ if in_string => {}
            '=' | '!' | '~' => {
                if !current.trim().is_empty() {
                    labels.push(current.trim().to_owned());
                }
                current.clear();
            }
            ',' => current.clear(),
            c => current.push(c),
        }
    }
    labels
}

/// The label names of every `by (...)` and `without (...)` clause.
fn grouping_labels(expr: &str) -> Vec<String> {
    let mut labels = Vec::new();
    for keyword in ["by", "without"] {
        for (at, _) in expr.match_indices(keyword) {
            let before = expr[..at].chars().last();
            if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
                continue;
            }
            let rest = expr[at + keyword.len()..].trim_start();
            if let Some(list) = rest.strip_prefix('(') {
                let list = list.split(')').next().unwrap_or_default();
                labels.extend(list.split(',').map(|l| l.trim().to_owned()));
            }
        }
    }
    labels.retain(|l| !l.is_empty());
    labels
}

/// Fails with every problem of `expr` (named `what`) against the hub's series.
fn check(what: &str, expr: &str, series: &[Series], problems: &mut Vec<String>) {
    let selected = selectors(expr);
    if selected.is_empty() {
        problems.push(format!("{what}: selects no series: {expr}"));
    }
    let mut known_labels: BTreeSet<&str> = TARGET_LABELS.iter().copied().collect();
    for (name, labels) in &selected {
        if PROMETHEUS_SERIES.contains(&name.as_str()) {
            continue;
        }
        let Some(exported) = series.iter().find(|s| &s.name == name) else {
            problems.push(format!("{what}: {name} is not a metric the hub exports"));
            continue;
        };
        known_labels.extend(exported.labels.iter().map(String::as_str));
        for label in labels {
            if !exported.labels.contains(label) && !TARGET_LABELS.contains(&label.as_str()) {
                problems.push(format!("{what}: {name} has no label {label}"));
            }
        }
    }
    for label in grouping_labels(expr) {
        if !known_labels.contains(label.as_str()) {
            problems.push(format!(
                "{what}: groups by {label}, which no series it selects has"
            ));
        }
    }
}

#[test]
fn the_dashboard_and_alert_rules_query_only_what_the_hub_exports() {
    let series = Metrics::new().series();
    let mut problems = Vec::new();
    let queries = dashboard_queries();
    assert!(queries.len() >= 10, "{queries:?}");
    for (i, expr) in queries.iter().enumerate() {
        check(
            &format!("dashboard query {i}"),
            expr,
            &series,
            &mut problems,
        );
    }
    let rules = alert_rules();
    let alerts: Vec<&Rule> = rules.groups.iter().flat_map(|g| &g.rules).collect();
    for rule in &alerts {
        check(&rule.alert, &rule.expr, &series, &mut problems);
        assert!(
            ["warning", "critical"].contains(&rule.labels["severity"].as_str()),
            "{}: severity",
            rule.alert
        );
        assert!(rule.annotations.contains_key("summary"), "{}", rule.alert);
    }
    assert!(
        problems.is_empty(),
        "ops/ has drifted from the code:\n{}",
        problems.join("\n")
    );

    // What each rule is for is there.
    let names: Vec<&str> = alerts.iter().map(|r| r.alert.as_str()).collect();
    for expected in [
        "HubInstanceDown",
        "HubJourneyFailureRateHigh",
        "HubStepLatencyHigh",
        "HubIdpCircuitOpen",
        "HubIdpErrorRateHigh",
        "HubAuditAppendFailing",
        "HubAuditAppendSlow",
        "HubDatabasePoolSaturated",
        "HubExpiryWithin30Days",
        "HubExpiryWithin7Days",
    ] {
        assert!(names.contains(&expected), "{expected} missing: {names:?}");
    }
    assert!(rules.groups.iter().all(|g| !g.name.is_empty()));
}

/// The checker itself finds what it must.
#[test]
fn the_drift_check_catches_unknown_metrics_and_labels() {
    let series = Metrics::new().series();
    let mut problems = Vec::new();
    check(
        "good",
        r#"histogram_quantile(0.95, sum by (le, route) (rate(hub_http_request_duration_seconds_bucket{route!~"/a|/b", instance=~"$i"}[5m]))) > 2 and up{job="hub"} == 0"#,
        &series,
        &mut problems,
    );
    assert!(problems.is_empty(), "{problems:?}");
    check("renamed", "rate(hub_journeys[5m])", &series, &mut problems);
    check(
        "label",
        r#"hub_expiry_timestamp_seconds{type="x"}"#,
        &series,
        &mut problems,
    );
    check(
        "grouping",
        "sum by (idp) (hub_journeys_total)",
        &series,
        &mut problems,
    );
    check("nothing", "time()", &series, &mut problems);
    assert_eq!(problems.len(), 4, "{problems:#?}");
}

/// With promtool installed, the rules pass `promtool check rules` and their unit tests
/// (`alerts.test.yml`), and the dashboard's queries pass as recording rules (Grafana's
/// variables filled in).
#[test]
fn promtool_accepts_the_rules_and_the_dashboard_queries() {
    if std::process::Command::new("promtool")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("promtool not on PATH: skipped (apt-get install prometheus)");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let promtool = |command: &str, file: &Path| {
        let out = std::process::Command::new("promtool")
            .args([command, "rules"])
            .arg(file)
            .output()
            .expect("promtool");
        assert!(
            out.status.success(),
            "promtool {command} rules {}: {}{}",
            file.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    promtool("check", &root.join("ops/prometheus/alerts.yml"));
    promtool("test", &root.join("ops/prometheus/alerts.test.yml"));

    let rules: Vec<Value> = dashboard_queries()
        .iter()
        .enumerate()
        .map(|(i, q)| {
            let expr = q
                .replace("$__rate_interval", "5m")
                .replace("$instance", ".*");
            serde_json::json!({"record": format!("dashboard:query_{i}"), "expr": expr})
        })
        .collect();
    let file = serde_json::json!({"groups": [{"name": "dashboard", "rules": rules}]});
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dashboard-rules.yml");
    std::fs::write(&path, serde_yaml_ng::to_string(&file).unwrap()).unwrap();
    promtool("check", &path);
}
