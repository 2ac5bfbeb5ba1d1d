//! Batch mode (`hub match batch`): one matching dataset per line in, one decision per
//! line out, against the local database with a relying party's policy. For evaluating
//! the engine and for departments tuning thresholds (docs/matching-service.md).
//!
//! Streams: memory does not grow with the file. A line that is malformed, or whose
//! decision fails (the database refused its candidate look-up), gets an error line of its
//! own and the batch goes on; only reading the input or writing the output stops it.
//! Error lines say what is wrong with the line's shape, never quote its content.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};

use matching::{Decision, MatchPolicy, MatchingDataset};
use serde::Serialize;
use store::{Database, StoreError};

use crate::local::{decide_locally, Cycle};
use crate::settings::MatchingServiceSettings;

/// The relying party a batch is run for: whose records, which policy, which cycle-3
/// attribute.
#[derive(Debug, Clone)]
pub struct BatchRp {
    /// Whose records are searched.
    pub client_id: String,
    /// The decision rule's thresholds, as the RP's journeys use them.
    pub policy: MatchPolicy,
    /// When set and a line's `attributes` has it, cycle 3 runs after a cycle 1 that did
    /// not match, as in a journey.
    pub cycle3_attribute: Option<String>,
}

impl BatchRp {
    /// A relying party the matching service configured in `service` answers for: its
    /// policy, no cycle-3 attribute (a service is asked for cycle 3, never decides to).
    pub fn for_service(service: &MatchingServiceSettings, rp: &str) -> Option<Self> {
        Some(Self {
            client_id: rp.to_owned(),
            policy: service.policy_for(rp)?.clone(),
            cycle3_attribute: None,
        })
    }
}

/// What a batch did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BatchSummary {
    /// Non-blank input lines.
    pub lines: usize,
    /// Lines that could not be read as a matching dataset.
    pub errors: usize,
    /// Final decisions per outcome (`match`, `no_match`, `ambiguous`).
    pub outcomes: BTreeMap<String, usize>,
    /// Lines decided at cycle 3.
    pub cycle3: usize,
}

/// Errors that stop a batch as a whole (a line that fails does not).
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error("reading the input: {0}")]
    Read(std::io::Error),
    #[error("writing the output: {0}")]
    Write(std::io::Error),
}

/// A UTF-8 byte-order mark, which some editors put at the start of a file.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The error line's text for a line whose decision failed in the store: the kind of
/// failure only (the full error goes to the log, which the operator reads).
fn store_failure(e: &StoreError) -> String {
    let kind = if e.is_unavailable() {
        "the database is unavailable"
    } else {
        "the database failed"
    };
    format!("not decided: {kind} (see the log)")
}

#[derive(Serialize)]
struct DecisionLine<'a> {
    line: usize,
    id: &'a Option<String>,
    cycle: u8,
    outcome: &'a str,
    record_id: Option<&'a str>,
    score: f64,
    reasons: &'a [String],
}

#[derive(Serialize)]
struct ErrorLine<'a> {
    line: usize,
    id: Option<&'a str>,
    error: String,
}

/// Why a line is not a matching dataset, without quoting it.
fn malformed(bytes: &[u8]) -> Result<MatchingDataset, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_owned())?;
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| match e.classify() {
        serde_json::error::Category::Eof => "not valid JSON (ends early)".to_owned(),
        _ => format!("not valid JSON (syntax error at column {})", e.column()),
    })?;
    if !value.is_object() {
        return Err("not a JSON object".into());
    }
    serde_json::from_value(value).map_err(|_| "not a matching dataset".into())
}

/// The line's value for the cycle-3 attribute type, if it has one.
fn cycle3_value<'a>(dataset: &'a MatchingDataset, attribute: &str) -> Option<&'a str> {
    let wanted = matching::normalise_attribute_type(attribute);
    dataset
        .attributes
        .iter()
        .find(|(kind, value)| {
            matching::normalise_attribute_type(kind) == wanted && !value.trim().is_empty()
        })
        .map(|(_, value)| value.as_str())
}

/// Cycle 1, then cycle 3 when configured, available on the line, and cycle 1 did not match.
async fn decide(
    db: &Database,
    rp: &BatchRp,
    dataset: &MatchingDataset,
) -> Result<(u8, Decision), StoreError> {
    let first = decide_locally(db, &rp.client_id, &rp.policy, dataset, Cycle::One).await?;
    if first.is_match() {
        return Ok((1, first));
    }
    let Some(attribute) = rp.cycle3_attribute.as_deref() else {
        return Ok((1, first));
    };
    let Some(value) = cycle3_value(dataset, attribute) else {
        return Ok((1, first));
    };
    let third = decide_locally(
        db,
        &rp.client_id,
        &rp.policy,
        dataset,
        Cycle::Three { attribute, value },
    )
    .await?;
    Ok((3, third))
}

/// Reads `input` line by line and writes one JSON line per non-blank input line to
/// `output`, flushing as it goes.
pub async fn run(
    db: &Database,
    rp: &BatchRp,
    mut input: impl BufRead,
    mut output: impl Write,
) -> Result<BatchSummary, BatchError> {
    let mut summary = BatchSummary::default();
    let mut buffer = Vec::new();
    let mut number = 0;
    loop {
        buffer.clear();
        if input
            .read_until(b'\n', &mut buffer)
            .map_err(BatchError::Read)?
            == 0
        {
            break;
        }
        number += 1;
        if number == 1 && buffer.starts_with(BOM) {
            buffer.drain(..BOM.len());
        }
        if buffer.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        summary.lines += 1;
        let json = match malformed(&buffer) {
            Err(error) => {
                summary.errors += 1;
                serde_json::to_string(&ErrorLine {
                    line: number,
                    id: None,
                    error,
                })
            }
            Ok(dataset) => match decide(db, rp, &dataset).await {
                Err(e) => {
                    tracing::warn!(line = number, error = %e, "batch line not decided");
                    summary.errors += 1;
                    serde_json::to_string(&ErrorLine {
                        line: number,
                        id: dataset.id.as_deref(),
                        error: store_failure(&e),
                    })
                }
                Ok((cycle, decision)) => {
                    *summary
                        .outcomes
                        .entry(decision.outcome.as_str().to_owned())
                        .or_default() += 1;
                    if cycle == 3 {
                        summary.cycle3 += 1;
                    }
                    serde_json::to_string(&DecisionLine {
                        line: number,
                        id: &dataset.id,
                        cycle,
                        outcome: decision.outcome.as_str(),
                        record_id: decision.record_id.as_ref().map(|r| r.as_str()),
                        score: decision.score,
                        reasons: &decision.reasons,
                    })
                }
            },
        }
        .map_err(|e| BatchError::Write(std::io::Error::other(e)))?;
        output
            .write_all(json.as_bytes())
            .and_then(|()| output.write_all(b"\n"))
            .map_err(BatchError::Write)?;
    }
    output.flush().map_err(BatchError::Write)?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_lines_are_described_without_their_content() {
        let e = malformed(br#"{"first_name": "Alice""#).expect_err("bad json");
        assert!(!e.contains("Alice"), "{e}");
        assert_eq!(
            malformed(br#"["Alice"]"#).expect_err("array"),
            "not a JSON object"
        );
        assert_eq!(malformed(b"\xff\xfe").expect_err("bytes"), "not UTF-8");
        assert!(malformed(br#"{"first_name": 3}"#).is_ok(), "lenient fields");
    }

    #[test]
    fn the_cycle3_attribute_is_found_whatever_its_case() {
        let dataset: MatchingDataset =
            serde_json::from_value(serde_json::json!({"attributes": {"NINO": "QQ123456C"}}))
                .expect("dataset");
        assert_eq!(cycle3_value(&dataset, "nino"), Some("QQ123456C"));
        assert_eq!(cycle3_value(&dataset, "driving_licence"), None);
    }
}
