//! The public JSON contracts: matching dataset, department record, decision. Departments and
//! matching services write code against them (docs/matching.md, "Contracts"), so they
//! change only compatibly.
//!
//! Deserialisation is deliberately lenient: every dataset field except the shape of the
//! JSON document itself may be missing, `null`, of the wrong type or malformed, and still
//! yields a dataset (the offending field becomes empty). One bad field must not reject a
//! whole batch; the engine then simply finds nothing to match on.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// What an identity provider asserts about a person (or what a department holds about one),
/// in the shape the hub, remote matching services and batch files exchange.
///
/// `Debug` is written by hand: it prints only `id` and which fields are present, because
/// personal data must never reach logs.
#[derive(Serialize, Deserialize, Clone, Default, PartialEq)]
pub struct MatchingDataset {
    /// Correlation id (batch mode); not personal data.
    #[serde(default, deserialize_with = "de_opt_string")]
    pub id: Option<String>,
    /// Given name as asserted (may hold several given names separated by spaces).
    #[serde(default, deserialize_with = "de_opt_string")]
    pub first_name: Option<String>,
    /// Middle names; not used by cycle 1 in this version.
    #[serde(default, deserialize_with = "de_string_vec")]
    pub middle_names: Vec<String>,
    /// Current surname first, then earlier ones.
    #[serde(default, deserialize_with = "de_string_vec")]
    pub surnames: Vec<String>,
    /// `YYYY-MM-DD`; anything else is treated as unknown.
    #[serde(default, deserialize_with = "de_opt_string")]
    pub date_of_birth: Option<String>,
    /// As asserted; not used for matching.
    #[serde(default, deserialize_with = "de_opt_string")]
    pub gender: Option<String>,
    /// Current and previous addresses.
    #[serde(default, deserialize_with = "de_addresses")]
    pub addresses: Vec<Address>,
    /// Cycle-3 values keyed by attribute type (`nino`, `driving_licence`, or a
    /// department-specific name).
    #[serde(default, deserialize_with = "de_attributes")]
    pub attributes: BTreeMap<String, String>,
}

/// One postal address of a person. Only the postcode takes part in matching.
#[derive(Serialize, Deserialize, Clone, Default, PartialEq, Eq)]
pub struct Address {
    /// Address lines as given.
    #[serde(default, deserialize_with = "de_string_vec")]
    pub lines: Vec<String>,
    /// Postcode as given (UK or international).
    #[serde(default, deserialize_with = "de_opt_string")]
    pub postcode: Option<String>,
    /// `true` for the current address, `false` for a previous one.
    #[serde(default, deserialize_with = "de_lenient_bool")]
    pub current: bool,
}

/// A department's own identifier for one of its records: what a match links a person to.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(transparent)]
pub struct RecordId(pub String);

impl RecordId {
    /// The id as a string slice (for SQL parameters, tokens, logs).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for RecordId {
    fn from(s: String) -> Self {
        RecordId(s)
    }
}

impl From<&str> for RecordId {
    fn from(s: &str) -> Self {
        RecordId(s.to_owned())
    }
}

impl AsRef<str> for RecordId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A record held by a department (relying party), what a query is matched against.
///
/// JSON shape: the matching-dataset object with an extra `record_id` member (one per line
/// in `hub records import`). Deserialisation also accepts `{"record_id", "dataset": {..}}`.
/// `record_id` may be a string or an integer and must not be blank: a record that cannot be
/// linked to is useless, so that (and only that) is an error.
#[derive(Clone, PartialEq)]
pub struct DepartmentRecord {
    /// The department's id for the record.
    pub record_id: RecordId,
    /// What the department holds about the person.
    pub dataset: MatchingDataset,
}

#[derive(Serialize)]
struct FlatRecordRef<'a> {
    record_id: &'a RecordId,
    #[serde(flatten)]
    dataset: &'a MatchingDataset,
}

impl Serialize for DepartmentRecord {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        FlatRecordRef {
            record_id: &self.record_id,
            dataset: &self.dataset,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for DepartmentRecord {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        let Value::Object(mut map) = value else {
            return Err(D::Error::custom("department record must be a JSON object"));
        };
        let record_id = map
            .remove("record_id")
            .and_then(value_to_string)
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| D::Error::custom("department record has no record_id"))?;
        let dataset_value = match map.remove("dataset") {
            Some(inner @ Value::Object(_)) => inner,
            _ => Value::Object(map),
        };
        // Lenient field deserialisers make this infallible for any JSON object.
        let dataset = MatchingDataset::deserialize(dataset_value).map_err(D::Error::custom)?;
        Ok(DepartmentRecord {
            record_id: RecordId(record_id),
            dataset,
        })
    }
}

/// Result of one matching attempt.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Exactly one record qualifies.
    Match,
    /// No record qualifies.
    NoMatch,
    /// More than one record qualifies: the hub treats this as no match unless cycle 3
    /// resolves it (a guess could link a person to someone else's record).
    Ambiguous,
}

impl Outcome {
    /// The wire name (`match`, `no_match`, `ambiguous`), e.g. for audit events.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Match => "match",
            Outcome::NoMatch => "no_match",
            Outcome::Ambiguous => "ambiguous",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A matching decision: `{"id","outcome","record_id","score","probability","reasons"}`, a
/// public contract (docs/matching.md, "Contracts").
///
/// Contains no personal data (reasons are machine-readable codes and counts), so it may be
/// logged and audited as is.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Decision {
    /// The query's correlation id, copied through.
    #[serde(default)]
    pub id: Option<String>,
    /// Match, no match or ambiguous.
    pub outcome: Outcome,
    /// The matched record; always `None` unless `outcome` is `Match`.
    #[serde(default)]
    pub record_id: Option<RecordId>,
    /// Strength of the evidence for the best candidate, in bits (0 without candidates).
    #[serde(default)]
    pub score: f64,
    /// The model's probability that the best candidate is the person (0 without
    /// candidates): the score with the prior odds of a candidate being the person.
    #[serde(default)]
    pub probability: f64,
    /// Machine-readable explanation codes, e.g. `cycle1:qualifying=1`.
    #[serde(default)]
    pub reasons: Vec<String>,
}

impl Decision {
    /// True only for an unambiguous match with a record id.
    pub fn is_match(&self) -> bool {
        self.outcome == Outcome::Match && self.record_id.is_some()
    }
}

// ---------------------------------------------------------------------------------------
// Debug without personal data.

/// Prints `present` / `absent` for an optional field.
struct Presence(bool);

impl fmt::Debug for Presence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0 { "present" } else { "absent" })
    }
}

fn present(s: &Option<String>) -> Presence {
    Presence(s.as_deref().is_some_and(|v| !v.trim().is_empty()))
}

impl fmt::Debug for MatchingDataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MatchingDataset")
            .field("id", &self.id)
            .field("first_name", &present(&self.first_name))
            .field("middle_names", &self.middle_names.len())
            .field("surnames", &self.surnames.len())
            .field("date_of_birth", &present(&self.date_of_birth))
            .field("gender", &present(&self.gender))
            .field("addresses", &self.addresses)
            .field("attributes", &self.attributes.len())
            .finish()
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Address")
            .field("lines", &self.lines.len())
            .field("postcode", &present(&self.postcode))
            .field("current", &self.current)
            .finish()
    }
}

impl fmt::Debug for DepartmentRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DepartmentRecord")
            .field("record_id", &self.record_id.0)
            .field("dataset", &self.dataset)
            .finish()
    }
}

// ---------------------------------------------------------------------------------------
// Lenient field deserialisers. Each reads any JSON value and keeps what makes sense.

fn value_to_string(v: Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn de_opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(value_to_string(Value::deserialize(d)?))
}

fn string_vec(v: Value) -> Vec<String> {
    match v {
        Value::Array(items) => items.into_iter().filter_map(value_to_string).collect(),
        other => value_to_string(other).into_iter().collect(),
    }
}

fn de_string_vec<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(string_vec(Value::deserialize(d)?))
}

fn de_lenient_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Bool(b) => b,
        Value::String(s) => matches!(
            s.trim().to_ascii_lowercase().as_str(),
            "true" | "yes" | "y" | "1"
        ),
        Value::Number(n) => n.as_i64() == Some(1),
        _ => false,
    })
}

fn address_from_value(v: Value) -> Option<Address> {
    match v {
        // Infallible for objects: every Address field is lenient.
        obj @ Value::Object(_) => Address::deserialize(obj).ok(),
        _ => None,
    }
}

fn de_addresses<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Address>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Array(items) => items.into_iter().filter_map(address_from_value).collect(),
        obj @ Value::Object(_) => address_from_value(obj).into_iter().collect(),
        _ => Vec::new(),
    })
}

fn de_attributes<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Object(map) => map
            .into_iter()
            .filter_map(|(k, v)| value_to_string(v).map(|v| (k, v)))
            .collect(),
        _ => BTreeMap::new(),
    })
}
