//! Match rules for cycle 1 (matching dataset) and cycle 3 (one extra attribute).
//!
//! Both are strict "qualify or not" rules over normalised fields: exactly one qualifying
//! record is a match; two or more is ambiguous and never a guess, because linking a person
//! to someone else's record is the worst failure the hub can have.

use std::collections::BTreeSet;

use chrono::NaiveDate;

use crate::normalise::{
    normalise_attribute, normalise_attribute_type, normalise_date_of_birth, normalise_name,
    parse_date_of_birth, postcode_key, ATTRIBUTE_DRIVING_LICENCE, ATTRIBUTE_NINO,
};
use crate::{Decision, DepartmentRecord, MatchPolicy, MatchingDataset, Outcome, RecordId};

/// The comparable view of a dataset: normalised, blanks dropped.
struct Prepared {
    first_name: Option<String>,
    surnames: BTreeSet<String>,
    date_of_birth: Option<NaiveDate>,
    postcodes: BTreeSet<String>,
}

impl Prepared {
    fn new(d: &MatchingDataset) -> Self {
        let first_name = d
            .first_name
            .as_deref()
            .map(normalise_name)
            .filter(|s| !s.is_empty());
        let surnames = d
            .surnames
            .iter()
            .map(|s| normalise_name(s))
            .filter(|s| !s.is_empty())
            .collect();
        let date_of_birth = d.date_of_birth.as_deref().and_then(parse_date_of_birth);
        let postcodes = d
            .addresses
            .iter()
            .filter_map(|a| a.postcode.as_deref())
            .filter_map(postcode_key)
            .collect();
        Prepared {
            first_name,
            surnames,
            date_of_birth,
            postcodes,
        }
    }

    fn same_date_of_birth(&self, other: &Prepared) -> bool {
        matches!((self.date_of_birth, other.date_of_birth), (Some(a), Some(b)) if a == b)
    }

    fn shares_surname(&self, other: &Prepared) -> bool {
        !self.surnames.is_disjoint(&other.surnames)
    }
}

/// One qualifying candidate: its id and how many evidence fields agreed.
struct Qualifier<'a> {
    record_id: &'a RecordId,
    evidence: u32,
    postcode_compared: bool,
}

/// Decides from the qualifying candidates. Several candidates carrying the same record id
/// are one record (a store may return duplicates), so they count once.
fn decide(
    query: &MatchingDataset,
    qualifying: &[Qualifier<'_>],
    mut reasons: Vec<String>,
    cycle: &str,
) -> (Decision, Option<bool>) {
    let distinct: BTreeSet<&RecordId> = qualifying.iter().map(|q| q.record_id).collect();
    reasons.push(format!("{cycle}:qualifying={}", distinct.len()));
    let chosen = match (distinct.len(), qualifying.first()) {
        (1, Some(first)) => Some(first),
        _ => None,
    };
    let (outcome, record_id, score, postcode_compared) = match chosen {
        Some(q) => (
            Outcome::Match,
            Some(q.record_id.clone()),
            f64::from(q.evidence),
            Some(q.postcode_compared),
        ),
        None if distinct.len() > 1 => (Outcome::Ambiguous, None, 0.0, None),
        None => (Outcome::NoMatch, None, 0.0, None),
    };
    (
        Decision {
            id: query.id.clone(),
            outcome,
            record_id,
            score,
            reasons,
        },
        postcode_compared,
    )
}

fn push_count(reasons: &mut Vec<String>, label: &str, n: usize) {
    if n > 0 {
        reasons.push(format!("{label}={n}"));
    }
}

/// Cycle 1: matches the dataset asserted by the IdP against a department's candidates.
///
/// A candidate qualifies iff its normalised first name equals the query's, both dates of
/// birth parse and are equal, at least one normalised surname is shared, and, only when
/// both sides have at least one postcode, at least one postcode (current or previous) is
/// shared. An IdP that supplies no address can therefore still match on name and date of
/// birth, while a department record at a different address cannot.
///
/// Exactly one qualifying record -> `Match`; more -> `Ambiguous` with no record id; none ->
/// `NoMatch`. `score` counts the agreeing evidence fields of the matched record (first
/// name, surname, date of birth, postcode when compared), else 0. `reasons` are codes and
/// counts only (no personal data): `cycle1:candidates=N`, `cycle1:qualifying=N`,
/// `cycle1:rejected_<field>=N`, `query:<field>_missing`, and `postcode:compared` /
/// `postcode:not_available` (for the matched record, else for the query).
pub fn match_cycle1(
    query: &MatchingDataset,
    candidates: &[DepartmentRecord],
    _policy: &MatchPolicy,
) -> Decision {
    let q = Prepared::new(query);
    let mut reasons = vec![format!("cycle1:candidates={}", candidates.len())];
    push_query_gaps(&q, &mut reasons, true);

    let (mut rej_first, mut rej_dob, mut rej_surname, mut rej_postcode) = (0, 0, 0, 0);
    let mut qualifying = Vec::new();
    for candidate in candidates {
        let c = Prepared::new(&candidate.dataset);
        if q.first_name.is_none() || q.first_name != c.first_name {
            rej_first += 1;
            continue;
        }
        if !q.same_date_of_birth(&c) {
            rej_dob += 1;
            continue;
        }
        if !q.shares_surname(&c) {
            rej_surname += 1;
            continue;
        }
        let postcode_compared = !q.postcodes.is_empty() && !c.postcodes.is_empty();
        if postcode_compared && q.postcodes.is_disjoint(&c.postcodes) {
            rej_postcode += 1;
            continue;
        }
        qualifying.push(Qualifier {
            record_id: &candidate.record_id,
            evidence: if postcode_compared { 4 } else { 3 },
            postcode_compared,
        });
    }
    push_count(&mut reasons, "cycle1:rejected_first_name", rej_first);
    push_count(&mut reasons, "cycle1:rejected_date_of_birth", rej_dob);
    push_count(&mut reasons, "cycle1:rejected_surname", rej_surname);
    push_count(&mut reasons, "cycle1:rejected_postcode", rej_postcode);

    let (mut decision, postcode_compared) = decide(query, &qualifying, reasons, "cycle1");
    let compared = postcode_compared.unwrap_or(!q.postcodes.is_empty());
    decision.reasons.push(
        if compared {
            "postcode:compared"
        } else {
            "postcode:not_available"
        }
        .to_owned(),
    );
    decision
}

fn push_query_gaps(q: &Prepared, reasons: &mut Vec<String>, with_first_name: bool) {
    if with_first_name && q.first_name.is_none() {
        reasons.push("query:first_name_missing".to_owned());
    }
    if q.surnames.is_empty() {
        reasons.push("query:surname_missing".to_owned());
    }
    if q.date_of_birth.is_none() {
        reasons.push("query:date_of_birth_missing".to_owned());
    }
}

/// Reason label for the attribute type: known types by name, others as `other` (a
/// department-specific name is configuration, but keeping reasons to a closed set keeps
/// them safe to log and aggregate).
fn attribute_label(kind: &str) -> &'static str {
    match kind {
        ATTRIBUTE_NINO => ATTRIBUTE_NINO,
        ATTRIBUTE_DRIVING_LICENCE => ATTRIBUTE_DRIVING_LICENCE,
        _ => "other",
    }
}

/// Cycle 3: matches again using one extra attribute the user supplied on a hub page.
///
/// `value` is normalised for `attribute`'s type; an invalid format gives `NoMatch` with
/// reason `cycle3:invalid_format` (the user typed something unusable; not an error). A
/// candidate qualifies iff its `attributes[attribute]` (type name compared after trimming
/// and case folding) normalises to the same value, the dates of birth are equal and at
/// least one surname is shared. Postcodes are deliberately not compared, so people who
/// moved match, and twins sharing name, date of birth and address are told apart.
///
/// Exactly one qualifying record -> `Match` (score 3: attribute, date of birth, surname);
/// more -> `Ambiguous`; none -> `NoMatch`.
pub fn match_cycle3(
    query: &MatchingDataset,
    attribute: &str,
    value: &str,
    candidates: &[DepartmentRecord],
    _policy: &MatchPolicy,
) -> Decision {
    let kind = normalise_attribute_type(attribute);
    let mut reasons = vec![
        format!("cycle3:candidates={}", candidates.len()),
        format!("cycle3:attribute={}", attribute_label(&kind)),
    ];
    let wanted = match normalise_attribute(&kind, value) {
        Ok(v) => v,
        Err(_) => {
            reasons.push("cycle3:invalid_format".to_owned());
            return decide(query, &[], reasons, "cycle3").0;
        }
    };
    let q = Prepared::new(query);
    push_query_gaps(&q, &mut reasons, false);

    let (mut rej_attr, mut rej_dob, mut rej_surname) = (0, 0, 0);
    let mut qualifying = Vec::new();
    for candidate in candidates {
        let has_value = candidate
            .dataset
            .attributes
            .iter()
            .filter(|(k, _)| normalise_attribute_type(k) == kind)
            .any(|(_, v)| normalise_attribute(&kind, v).is_ok_and(|v| v == wanted));
        if !has_value {
            rej_attr += 1;
            continue;
        }
        let c = Prepared::new(&candidate.dataset);
        if !q.same_date_of_birth(&c) {
            rej_dob += 1;
            continue;
        }
        if !q.shares_surname(&c) {
            rej_surname += 1;
            continue;
        }
        qualifying.push(Qualifier {
            record_id: &candidate.record_id,
            evidence: 3,
            postcode_compared: false,
        });
    }
    push_count(&mut reasons, "cycle3:rejected_attribute", rej_attr);
    push_count(&mut reasons, "cycle3:rejected_date_of_birth", rej_dob);
    push_count(&mut reasons, "cycle3:rejected_surname", rej_surname);
    decide(query, &qualifying, reasons, "cycle3").0
}

/// The blocking key a store uses to fetch candidates: the query's date of birth as
/// normalised `YYYY-MM-DD`, or `None` when missing or invalid (then nothing can match, so
/// there is nothing to fetch).
pub fn blocking_date_of_birth(d: &MatchingDataset) -> Option<String> {
    d.date_of_birth.as_deref().and_then(normalise_date_of_birth)
}
