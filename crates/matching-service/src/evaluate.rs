//! `hub match evaluate`: precision and recall of cycle 1 at a sweep of thresholds, from
//! queries whose right record (or none) the department knows, so that it can choose its
//! threshold on its own data (docs/matching.md, "Thresholds and tuning").
//!
//! Each query is decided once, with the relying party's policy but no threshold: the
//! decision names the best candidate whenever it leads the second by the margin, with its
//! score. At threshold `t` that candidate is the match exactly when its score reaches `t`,
//! so one pass over the queries gives every threshold's counts.

use std::collections::HashMap;
use std::io::BufRead;

use matching::{MatchPolicy, MatchingDataset};
use serde::Serialize;
use store::{Database, StoreError};

use crate::batch::BatchRp;
use crate::local::{decide_locally, Cycle};

/// Thresholds evaluated besides the relying party's own: 10 to 50 bits in steps of 2.
pub fn default_thresholds() -> Vec<f64> {
    (5..=25).map(|i| f64::from(i) * 2.0).collect()
}

/// Counts at one threshold.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ThresholdRow {
    pub threshold: f64,
    /// True when this is the relying party's configured cycle-1 threshold.
    pub configured: bool,
    /// Matches to the query's own record.
    pub true_matches: usize,
    /// Matches to another record, or of a person who has none.
    pub false_matches: usize,
    /// Queries with a record that were not matched to it.
    pub misses: usize,
    /// true / (true + false) matches; `None` when nothing matched.
    pub precision: Option<f64>,
    /// true matches / queries with a record; `None` when no query has one.
    pub recall: Option<f64>,
}

/// What an evaluation found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    /// Labelled queries evaluated.
    pub queries: usize,
    /// Of those, queries whose person has a record.
    pub with_record: usize,
    /// Query lines skipped: malformed, without an `id`, or not in the truth file.
    pub skipped: usize,
    /// Queries whose candidate look-up failed in the database (counted as no match).
    pub failed: usize,
    /// One row per threshold, ascending.
    pub thresholds: Vec<ThresholdRow>,
}

/// Errors that stop an evaluation.
#[derive(Debug, thiserror::Error)]
pub enum EvaluateError {
    #[error("reading the queries: {0}")]
    ReadQueries(std::io::Error),
    #[error("reading the truth file: {0}")]
    ReadTruth(std::io::Error),
    /// A truth line is not `{"id": "...", "record_id": "..." | null}` (named by number).
    #[error("truth file line {0}: expected {{\"id\": \"...\", \"record_id\": \"...\" or null}}")]
    Truth(usize),
    #[error("truth file line {0} repeats an id")]
    DuplicateTruth(usize),
}

/// One query's cycle-1 choice without a threshold: the candidate and score it would
/// match at any threshold up to that score, or `None` (no candidate, ambiguity, too many).
type Choice = Option<(String, f64)>;

/// Decides every labelled query in `queries` and counts, for each of `thresholds` and
/// the relying party's own, true and false matches and misses against `truth`.
pub async fn evaluate(
    db: &Database,
    rp: &BatchRp,
    queries: impl BufRead,
    truth: impl BufRead,
    thresholds: &[f64],
) -> Result<Evaluation, EvaluateError> {
    let mut truth = read_truth(truth)?;
    let mut evaluation = Evaluation {
        queries: 0,
        with_record: 0,
        skipped: 0,
        failed: 0,
        thresholds: Vec::new(),
    };
    let mut choices: Vec<(Option<String>, Choice)> = Vec::new();
    let policy = without_threshold(&rp.policy);
    for line in queries.lines() {
        let line = line.map_err(EvaluateError::ReadQueries)?;
        let text = line.trim_start_matches('\u{feff}').trim();
        if text.is_empty() {
            continue;
        }
        let dataset = serde_json::from_str::<MatchingDataset>(text).ok();
        let Some((dataset, expected)) = dataset.and_then(|d| {
            let expected = truth.remove(d.id.as_deref()?)?;
            Some((d, expected))
        }) else {
            evaluation.skipped += 1;
            continue;
        };
        let choice = match choose(db, rp, &policy, &dataset).await {
            Ok(choice) => choice,
            Err(e) => {
                tracing::warn!(error = %e, "evaluation query not decided");
                evaluation.failed += 1;
                None
            }
        };
        evaluation.queries += 1;
        evaluation.with_record += usize::from(expected.is_some());
        choices.push((expected, choice));
    }
    evaluation.thresholds = sweep(&choices, thresholds, rp.policy.threshold);
    Ok(evaluation)
}

/// The truth file as id → record (or `None`). Each line is `{"id": "q-1", "record_id":
/// "D42"}`, `record_id` `null` when the person has no record; `truth` is accepted for
/// `record_id` (the synthetic corpus's `truth.jsonl`) and other members are ignored.
fn read_truth(truth: impl BufRead) -> Result<HashMap<String, Option<String>>, EvaluateError> {
    let mut by_id = HashMap::new();
    for (i, line) in truth.lines().enumerate() {
        let line = line.map_err(EvaluateError::ReadTruth)?;
        let text = line.trim_start_matches('\u{feff}').trim();
        if text.is_empty() {
            continue;
        }
        let (id, record) = truth_line(text).ok_or(EvaluateError::Truth(i + 1))?;
        if by_id.insert(id, record).is_some() {
            return Err(EvaluateError::DuplicateTruth(i + 1));
        }
    }
    Ok(by_id)
}

/// One truth line's id and record; `None` unless it has a string `id` and a `record_id`
/// (or `truth`) that is a string, an integer or `null`.
fn truth_line(text: &str) -> Option<(String, Option<String>)> {
    use serde_json::Value;
    let value: Value = serde_json::from_str(text).ok()?;
    let id = value.get("id")?.as_str()?.to_owned();
    let record = match value.get("record_id").or_else(|| value.get("truth"))? {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Number(n) if n.is_u64() || n.is_i64() => Some(n.to_string()),
        _ => return None,
    };
    Some((id, record))
}

/// The relying party's policy with the threshold out of the way (built directly: a
/// validated policy refuses it), so the decision shows the best candidate whenever the
/// margin holds.
fn without_threshold(policy: &MatchPolicy) -> MatchPolicy {
    MatchPolicy {
        threshold: f64::MIN,
        ..policy.clone()
    }
}

/// The query's cycle-1 choice with the threshold-less `policy`.
async fn choose(
    db: &Database,
    rp: &BatchRp,
    policy: &MatchPolicy,
    dataset: &MatchingDataset,
) -> Result<Choice, StoreError> {
    let decision = decide_locally(db, &rp.client_id, policy, dataset, Cycle::One).await?;
    Ok(decision
        .is_match()
        .then(|| decision.record_id.map(|r| (r.0, decision.score)))
        .flatten())
}

/// Counts per threshold: `thresholds` plus `configured`, ascending, each once.
fn sweep(
    choices: &[(Option<String>, Choice)],
    thresholds: &[f64],
    configured: f64,
) -> Vec<ThresholdRow> {
    let mut all: Vec<f64> = thresholds.iter().copied().chain([configured]).collect();
    all.sort_by(f64::total_cmp);
    all.dedup();
    let with_record = choices.iter().filter(|(e, _)| e.is_some()).count();
    all.into_iter()
        .map(|threshold| {
            let (mut true_matches, mut false_matches) = (0, 0);
            for (expected, choice) in choices {
                match choice {
                    Some((record, score)) if *score >= threshold => {
                        if expected.as_deref() == Some(record.as_str()) {
                            true_matches += 1;
                        } else {
                            false_matches += 1;
                        }
                    }
                    _ => {}
                }
            }
            ThresholdRow {
                threshold,
                configured: threshold == configured,
                true_matches,
                false_matches,
                misses: with_record - true_matches,
                precision: ratio(true_matches, true_matches + false_matches),
                recall: ratio(true_matches, with_record),
            }
        })
        .collect()
}

/// `part / whole`, `None` for an empty whole.
fn ratio(part: usize, whole: usize) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// The evaluation as a table, the configured threshold marked with `*`.
pub fn table(evaluation: &Evaluation) -> String {
    let mut out = format!(
        "queries: {} ({} with a record), skipped: {}, failed: {}\n\
         threshold  true_matches  false_matches  misses  precision  recall\n",
        evaluation.queries, evaluation.with_record, evaluation.skipped, evaluation.failed
    );
    let percent =
        |r: Option<f64>| r.map_or_else(|| "-".to_owned(), |r| format!("{:.2}%", r * 100.0));
    for row in &evaluation.thresholds {
        out.push_str(&format!(
            "{:>8.2}{} {:>13} {:>14} {:>7} {:>10} {:>7}\n",
            row.threshold,
            if row.configured { "*" } else { " " },
            row.true_matches,
            row.false_matches,
            row.misses,
            percent(row.precision),
            percent(row.recall),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweep_counts_true_and_false_matches_and_misses() {
        let choices = vec![
            (Some("A".to_owned()), Some(("A".to_owned(), 36.0))),
            (None, Some(("B".to_owned(), 31.0))),
            (Some("C".to_owned()), Some(("C".to_owned(), 25.0))),
            (Some("D".to_owned()), None),
            (Some("E".to_owned()), Some(("X".to_owned(), 21.0))),
        ];
        let rows = sweep(&choices, &[20.0, 30.0, 40.0], 28.0);
        let counts: Vec<_> = rows
            .iter()
            .map(|r| {
                (
                    r.threshold,
                    r.configured,
                    r.true_matches,
                    r.false_matches,
                    r.misses,
                )
            })
            .collect();
        assert_eq!(
            counts,
            [
                (20.0, false, 2, 2, 2),
                (28.0, true, 1, 1, 3),
                (30.0, false, 1, 1, 3),
                (40.0, false, 0, 0, 4)
            ]
        );
        assert_eq!(rows[0].precision, Some(0.5));
        assert_eq!(rows[0].recall, Some(0.5));
        assert_eq!(rows[3].precision, None);
        assert_eq!(rows[3].recall, Some(0.0));
    }

    #[test]
    fn truth_lines_take_record_id_or_the_corpus_truth() {
        let truth = read_truth(
            &br#"{"id": "q-1", "record_id": "D42"}
{"id": "q-2", "set": "absent", "truth": null, "nino": null}
{"id": "q-3", "truth": "7"}
"#[..],
        )
        .unwrap();
        assert_eq!(truth["q-1"].as_deref(), Some("D42"));
        assert_eq!(truth["q-2"], None);
        assert_eq!(truth["q-3"].as_deref(), Some("7"));
        assert!(matches!(
            read_truth(&b"{\"record_id\": \"D1\"}\n"[..]),
            Err(EvaluateError::Truth(1))
        ));
    }
}
