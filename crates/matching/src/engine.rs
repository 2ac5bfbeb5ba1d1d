//! Scoring and the decision rule for cycle 1 (matching dataset) and cycle 3 (one extra
//! attribute).
//!
//! Each candidate gets a Fellegi-Sunter score: the sum of the match weights of its field
//! comparisons ([`crate::weights`]). A different surname, date of birth or cycle-3
//! attribute vetoes a candidate outright. The best remaining candidate is a match only when
//! its score reaches the policy's threshold *and* leads the second best by the policy's
//! margin; otherwise the answer is ambiguous or no match, never a guess, because linking a
//! person to someone else's record is the worst failure the hub can have. The outcome
//! does not depend on the order of the candidates.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use crate::compare::{self, Person};
use crate::normalise::{
    normalise_attribute, normalise_attribute_type, ATTRIBUTE_DRIVING_LICENCE, ATTRIBUTE_NINO,
};
use crate::weights::{self, Field, Level, SWAPPED_NAMES_PENALTY};
use crate::{Decision, DepartmentRecord, MatchPolicy, MatchingDataset, Outcome, RecordId};

/// Which cycle is deciding, with what it needs.
enum Cycle {
    One,
    /// The normalised attribute type and the citizen's normalised value.
    Three {
        kind: String,
        wanted: String,
    },
}

impl Cycle {
    fn label(&self) -> &'static str {
        match self {
            Cycle::One => "cycle1",
            Cycle::Three { .. } => "cycle3",
        }
    }

    fn threshold(&self, policy: &MatchPolicy) -> f64 {
        match self {
            Cycle::One => policy.threshold,
            Cycle::Three { .. } => policy.cycle3_threshold,
        }
    }

    /// The attribute comparison for a candidate (cycle 3 only): exact when one of its
    /// values of that type normalises to the citizen's value.
    fn attribute(&self, record: &MatchingDataset) -> Option<Level> {
        let Cycle::Three { kind, wanted } = self else {
            return None;
        };
        let mut values = record
            .attributes
            .iter()
            .filter(|(k, _)| normalise_attribute_type(k) == *kind)
            .peekable();
        if values.peek().is_none() {
            return Some(Level::Missing);
        }
        let agrees = values.any(|(_, v)| normalise_attribute(kind, v).is_ok_and(|v| v == *wanted));
        Some(if agrees {
            Level::Exact
        } else {
            Level::Different
        })
    }
}

/// One candidate's comparisons and score.
struct Scored<'a> {
    record_id: &'a RecordId,
    score: f64,
    comparisons: Vec<(Field, Level)>,
    swapped_names: bool,
}

impl Scored<'_> {
    /// Ruled out by a veto, or at cycle 3 by not holding the attribute at all.
    fn excluded(&self, cycle: &Cycle) -> bool {
        self.comparisons.iter().any(|(field, level)| {
            weights::vetoes(*field, *level)
                || (matches!(cycle, Cycle::Three { .. })
                    && *field == Field::Attribute
                    && *level != Level::Exact)
        })
    }

    /// Best first: higher score, then record id (only to make ties deterministic).
    fn rank(&self, other: &Self) -> Ordering {
        other
            .score
            .total_cmp(&self.score)
            .then_with(|| self.record_id.cmp(other.record_id))
    }
}

/// Surname, date of birth and postcode exactly the same, first name only similar: the
/// record of a twin (or a sibling) as much as a typo. Fellegi-Sunter assumes fields are
/// independent; inside one household they are not, so there a similar first name is
/// no evidence for the person, and only an exact one (or cycle 3) can match.
fn twin_signature(first: Level, surname: Level, date_of_birth: Level, address: Level) -> bool {
    matches!(
        first,
        Level::Nickname | Level::OtherGivenName | Level::Fuzzy | Level::Phonetic | Level::Initial
    ) && surname == Level::Exact
        && date_of_birth == Level::Exact
        && matches!(address, Level::PostcodeAndHouse | Level::Postcode)
}

/// Compares the query with one candidate, field by field.
fn score<'a>(query: &Person, record: &'a DepartmentRecord, cycle: &Cycle) -> Scored<'a> {
    let early = compare::date_of_birth_of(query, &record.dataset);
    if weights::vetoes(Field::DateOfBirth, early) {
        return Scored {
            record_id: &record.record_id,
            score: weights::weight(Field::DateOfBirth, early),
            comparisons: vec![(Field::DateOfBirth, early)],
            swapped_names: false,
        };
    }
    let candidate = Person::new(&record.dataset);
    let mut first = compare::first_name(query, &candidate);
    let mut surname = compare::surname(query, &candidate);
    let mut swapped_names = false;
    let straight =
        weights::weight(Field::FirstName, first) + weights::weight(Field::Surname, surname);
    // Names in the wrong order show as two disagreeing names; only then look crosswise.
    let disagree =
        |level: Level| matches!(level, Level::Different | Level::Phonetic | Level::Initial);
    let crossed = if disagree(first) || disagree(surname) {
        compare::swapped_names(query, &candidate)
    } else {
        None
    };
    if let Some((f, s)) = crossed {
        let crossed = weights::weight(Field::FirstName, f) + weights::weight(Field::Surname, s)
            - SWAPPED_NAMES_PENALTY;
        if crossed > straight {
            (first, surname, swapped_names) = (f, s, true);
        }
    }
    let date_of_birth = compare::date_of_birth(query, &candidate);
    let address = compare::address(query, &candidate);
    if twin_signature(first, surname, date_of_birth, address) {
        first = Level::SimilarInHousehold;
    }
    let mut comparisons = vec![
        (Field::FirstName, first),
        (Field::Surname, surname),
        (Field::DateOfBirth, date_of_birth),
        (Field::Address, address),
        (Field::Gender, compare::gender_level(query, &candidate)),
    ];
    comparisons.extend(
        cycle
            .attribute(&record.dataset)
            .map(|l| (Field::Attribute, l)),
    );
    let penalty = if swapped_names {
        SWAPPED_NAMES_PENALTY
    } else {
        0.0
    };
    let score = comparisons
        .iter()
        .map(|(field, level)| weights::weight(*field, *level))
        .sum::<f64>()
        - penalty;
    Scored {
        record_id: &record.record_id,
        score,
        comparisons,
        swapped_names,
    }
}

/// Rounds a score for reasons and decisions, so they read and compare well.
fn rounded(score: f64) -> f64 {
    (score * 100.0).round() / 100.0
}

fn explain(best: &Scored<'_>, reasons: &mut Vec<String>) {
    for (field, level) in &best.comparisons {
        reasons.push(format!(
            "{}={}({:+.2})",
            field.code(),
            level.code(),
            weights::weight(*field, *level)
        ));
    }
    if best.swapped_names {
        reasons.push(format!(
            "names=swapped_order({:+.2})",
            -SWAPPED_NAMES_PENALTY
        ));
    }
}

fn decision(
    query: &MatchingDataset,
    outcome: Outcome,
    best: Option<(&RecordId, f64)>,
    reasons: Vec<String>,
) -> Decision {
    Decision {
        id: query.id.clone(),
        outcome,
        record_id: best
            .filter(|_| outcome == Outcome::Match)
            .map(|(id, _)| id.clone()),
        score: best.map_or(0.0, |(_, s)| rounded(s)),
        reasons,
    }
}

/// Scores every candidate and applies the decision rule.
fn decide(
    query: &MatchingDataset,
    candidates: &[DepartmentRecord],
    policy: &MatchPolicy,
    cycle: &Cycle,
    mut reasons: Vec<String>,
) -> Decision {
    let label = cycle.label();
    reasons.push(format!("{label}:candidates={}", candidates.len()));
    let q = Person::new(query);
    reasons.extend(q.gaps().map(|field| format!("query:{field}_missing")));
    if candidates.len() > policy.max_candidates {
        reasons.push("decision:too_many_candidates".to_owned());
        return decision(query, Outcome::NoMatch, None, reasons);
    }
    // One entry per record id: a store may return a record twice; it is still one record.
    let mut by_record: BTreeMap<&RecordId, Scored<'_>> = BTreeMap::new();
    let mut excluded = 0;
    for candidate in candidates {
        let scored = score(&q, candidate, cycle);
        if scored.excluded(cycle) {
            excluded += 1;
            continue;
        }
        match by_record.get(scored.record_id) {
            Some(kept) if kept.score >= scored.score => {}
            _ => {
                by_record.insert(scored.record_id, scored);
            }
        }
    }
    if excluded > 0 {
        reasons.push(format!("{label}:excluded={excluded}"));
    }
    let mut ranked: Vec<Scored<'_>> = by_record.into_values().collect();
    ranked.sort_by(Scored::rank);
    let Some(best) = ranked.first() else {
        reasons.push("decision:no_candidate".to_owned());
        return decision(query, Outcome::NoMatch, None, reasons);
    };
    reasons.push(format!("{label}:best={:.2}", best.score));
    explain(best, &mut reasons);
    let second = ranked.get(1).map(|s| s.score);
    if let Some(second) = second {
        reasons.push(format!("{label}:second={second:.2}"));
    }
    let threshold = cycle.threshold(policy);
    let outcome = if best.score < threshold {
        reasons.push(format!("decision:below_threshold({threshold:.2})"));
        Outcome::NoMatch
    } else if second.is_some_and(|s| best.score - s < policy.margin) {
        reasons.push(format!("decision:margin_below({:.2})", policy.margin));
        Outcome::Ambiguous
    } else {
        reasons.push("decision:match".to_owned());
        Outcome::Match
    };
    decision(query, outcome, Some((best.record_id, best.score)), reasons)
}

/// Cycle 1: matches the dataset asserted by the IdP against a department's candidates.
///
/// `Match` carries the record id; `Ambiguous` and `NoMatch` carry none. `score` is the best
/// candidate's total weight in bits (0 without candidates). `reasons` are codes and
/// numbers only, never personal data: `cycle1:candidates=N`, `query:<field>_missing`,
/// `cycle1:excluded=N` (vetoed), `cycle1:best=S`, the best candidate's comparisons as
/// `<field>=<level>(<weight>)`, `cycle1:second=S`, and one `decision:...` code.
pub fn match_cycle1(
    query: &MatchingDataset,
    candidates: &[DepartmentRecord],
    policy: &MatchPolicy,
) -> Decision {
    decide(query, candidates, policy, &Cycle::One, Vec::new())
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

/// Cycle 3: matches again with one extra attribute the citizen typed on a hub page.
///
/// `value` is normalised for `attribute`'s type; an invalid format gives `NoMatch` with
/// reason `cycle3:invalid_format` (the citizen typed something unusable; not an error).
/// Only candidates holding exactly that value can match; the other fields are scored as
/// at cycle 1 (postcodes count but are not required, so people who moved match) and the
/// total must reach the policy's `cycle3_threshold` with the usual margin.
pub fn match_cycle3(
    query: &MatchingDataset,
    attribute: &str,
    value: &str,
    candidates: &[DepartmentRecord],
    policy: &MatchPolicy,
) -> Decision {
    let kind = normalise_attribute_type(attribute);
    let mut reasons = vec![format!("cycle3:attribute={}", attribute_label(&kind))];
    match normalise_attribute(&kind, value) {
        Ok(wanted) => decide(
            query,
            candidates,
            policy,
            &Cycle::Three { kind, wanted },
            reasons,
        ),
        Err(_) => {
            reasons.push("cycle3:invalid_format".to_owned());
            decision(query, Outcome::NoMatch, None, reasons)
        }
    }
}
