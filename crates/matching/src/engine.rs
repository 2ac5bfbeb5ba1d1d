//! Scoring and the decision rule for cycle 1 (matching dataset) and cycle 3 (one extra
//! attribute).
//!
//! Each candidate gets a Fellegi-Sunter score: the sum of the match weights of its field
//! comparisons ([`crate::Model`]). Two rules rule a candidate out whatever the sum: at
//! cycle 3 a different (or absent) attribute, and the household rule (same address, a
//! first name that does not say it is the same person: another member of the household).
//! At cycle 1 a date of birth and an address must have been compared. The best remaining candidate is a match only when its score reaches
//! the policy's threshold *and* leads the second best by the policy's margin; otherwise
//! the answer is ambiguous or no match, never a guess, because linking a person to someone
//! else's record is the worst failure the hub can have. The outcome does not depend on
//! the order of the candidates.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use crate::compare::{self, Person};
use crate::model::{builtin_weights, Field, Level, Weights};
use crate::normalise::{
    normalise_attribute, normalise_attribute_type, ATTRIBUTE_DRIVING_LICENCE, ATTRIBUTE_NINO,
};
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

/// Penalty in bits for names given in the wrong order (first name as surname).
const SWAPPED_NAMES_PENALTY: f64 = 1.0;

/// One candidate's comparisons and score.
struct Scored<'a> {
    record_id: &'a RecordId,
    score: f64,
    comparisons: Vec<(Field, Level)>,
    swapped_names: bool,
    /// Another member of the query's household ([`household_member`]).
    household_member: bool,
}

impl Scored<'_> {
    /// Ruled out by the household rule, or at cycle 3 by not holding the attribute.
    fn excluded(&self, cycle: &Cycle) -> bool {
        self.household_member
            || (matches!(cycle, Cycle::Three { .. })
                && self
                    .comparisons
                    .iter()
                    .any(|(field, level)| *field == Field::Attribute && *level != Level::Exact))
    }

    /// Best first: higher score, then record id (only to make ties deterministic).
    fn rank(&self, other: &Self) -> Ordering {
        other
            .score
            .total_cmp(&self.score)
            .then_with(|| self.record_id.cmp(other.record_id))
    }
}

/// The same address (a household), and neither the first name, the gender nor the date
/// of birth says it is the same person: the first name is missing, loosely similar (two
/// typos, a sound-alike), an initial, another given name or different; or the gender
/// disagrees; or the date of birth is different or decades apart. That is how the record
/// of a twin, a sibling, a partner or a parent looks: relatives share surname and
/// address, sometimes the first name (a son named after his father) or the date of birth
/// (twins; an IdP's record can carry a relative's). Fellegi-Sunter assumes fields are
/// independent; inside one household they are not, so at cycle 1 such a record is ruled
/// out whatever its score. At cycle 3 the attribute, which relatives do not share,
/// decides instead.
fn household_member(first: Level, date_of_birth: Level, address: Level, gender: Level) -> bool {
    let same_person = matches!(first, Level::Exact | Level::Nickname | Level::Fuzzy)
        && gender != Level::Disagree
        && !matches!(date_of_birth, Level::Different | Level::OneDigitDecade);
    compare::same_address(address) && !same_person
}

/// A comparison's weight, with exact agreement on a name weighted by how common the
/// query's name is (names compared crosswise get the level's average weight).
fn field_weight(
    weights: &Weights,
    query: &Person,
    field: Field,
    level: Level,
    crossed: bool,
) -> f64 {
    match (field, level, crossed) {
        (Field::FirstName, Level::Exact, false) => weights.exact_weight(field, query.first()),
        (Field::Surname, Level::Exact, false) => weights.exact_weight(field, query.surnames()),
        _ => weights.weight(field, level),
    }
}

/// Compares the query with one candidate, field by field.
fn score<'a>(
    weights: &Weights,
    query: &Person,
    record: &'a DepartmentRecord,
    cycle: &Cycle,
) -> Scored<'a> {
    let candidate = Person::new(&record.dataset);
    let mut first = compare::first_name(query, &candidate);
    let mut surname = compare::surname(query, &candidate);
    let mut swapped_names = false;
    let straight =
        weights.weight(Field::FirstName, first) + weights.weight(Field::Surname, surname);
    // Names in the wrong order show as two disagreeing names; only then look crosswise.
    let disagree = |level: Level| {
        matches!(
            level,
            Level::Different | Level::Phonetic | Level::FuzzyFar | Level::Initial
        )
    };
    let crossed = if disagree(first) || disagree(surname) {
        compare::swapped_names(query, &candidate)
    } else {
        None
    };
    if let Some((f, s)) = crossed {
        let crossed = weights.weight(Field::FirstName, f) + weights.weight(Field::Surname, s)
            - SWAPPED_NAMES_PENALTY;
        if crossed > straight {
            (first, surname, swapped_names) = (f, s, true);
        }
    }
    let address = compare::address(query, &candidate);
    let gender = compare::gender_level(query, &candidate);
    let date_of_birth = compare::date_of_birth(query, &candidate);
    let mut comparisons = vec![
        (Field::FirstName, first),
        (Field::Surname, surname),
        (Field::DateOfBirth, date_of_birth),
        (Field::Address, address),
        (Field::Gender, gender),
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
        .map(|(field, level)| field_weight(weights, query, *field, *level, swapped_names))
        .sum::<f64>()
        - penalty;
    Scored {
        record_id: &record.record_id,
        score,
        comparisons,
        swapped_names,
        household_member: matches!(cycle, Cycle::One)
            && household_member(first, date_of_birth, address, gender),
    }
}

/// The field cycle 1 could not compare on the best candidate and needs, whatever the
/// score: a date of birth (a parent and a child can share name and address, and only the
/// date tells them apart) and an address (name and date of birth alone are what
/// namesakes born the same day share). Cycle 3's attribute stands in for either.
fn cycle1_needs(cycle: &Cycle, best: &Scored<'_>) -> Option<&'static str> {
    if !matches!(cycle, Cycle::One) {
        return None;
    }
    [
        (Field::DateOfBirth, "date_of_birth"),
        (Field::Address, "address"),
    ]
    .into_iter()
    .find(|(field, _)| !compared(best, *field))
    .map(|(_, name)| name)
}

/// Whether the candidate's `field` was compared (both sides had a usable value).
fn compared(scored: &Scored<'_>, field: Field) -> bool {
    scored
        .comparisons
        .iter()
        .any(|(f, level)| *f == field && *level != Level::Missing)
}

/// Rounds a score for reasons and decisions, so they read and compare well.
fn rounded(score: f64) -> f64 {
    (score * 100.0).round() / 100.0
}

fn explain(weights: &Weights, query: &Person, best: &Scored<'_>, reasons: &mut Vec<String>) {
    for (field, level) in &best.comparisons {
        reasons.push(format!(
            "{}={}({:+.2})",
            field.code(),
            level.code(),
            field_weight(weights, query, *field, *level, best.swapped_names)
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
    best: Option<(&RecordId, f64, f64)>,
    reasons: Vec<String>,
) -> Decision {
    Decision {
        id: query.id.clone(),
        outcome,
        record_id: best
            .filter(|_| outcome == Outcome::Match)
            .map(|(id, _, _)| id.clone()),
        score: best.map_or(0.0, |(_, s, _)| rounded(s)),
        probability: best.map_or(0.0, |(_, _, p)| p),
        reasons,
    }
}

/// Scores every candidate and applies the decision rule.
fn decide(
    weights: &Weights,
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
        let scored = score(weights, &q, candidate, cycle);
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
    explain(weights, &q, best, &mut reasons);
    let second = ranked.get(1).map(|s| s.score);
    if let Some(second) = second {
        reasons.push(format!("{label}:second={second:.2}"));
    }
    let threshold = cycle.threshold(policy);
    let outcome = if let Some(needed) = cycle1_needs(cycle, best) {
        reasons.push(format!("decision:{needed}_needed"));
        Outcome::NoMatch
    } else if best.score < threshold {
        reasons.push(format!("decision:below_threshold({threshold:.2})"));
        Outcome::NoMatch
    } else if second.is_some_and(|s| best.score - s < policy.margin) {
        reasons.push(format!("decision:margin_below({:.2})", policy.margin));
        Outcome::Ambiguous
    } else {
        reasons.push("decision:match".to_owned());
        Outcome::Match
    };
    let probability = weights.probability(best.score);
    decision(
        query,
        outcome,
        Some((best.record_id, best.score, probability)),
        reasons,
    )
}

/// Cycle 1: matches the dataset asserted by the IdP against a department's candidates.
///
/// `Match` carries the record id; `Ambiguous` and `NoMatch` carry none. `score` is the best
/// candidate's total weight in bits (0 without candidates). `reasons` are codes and
/// numbers only, never personal data: `cycle1:candidates=N`, `query:<field>_missing`,
/// `cycle1:excluded=N` (household rule), `cycle1:best=S`, the best candidate's comparisons as
/// `<field>=<level>(<weight>)`, `cycle1:second=S`, and one `decision:...` code.
pub fn match_cycle1(
    query: &MatchingDataset,
    candidates: &[DepartmentRecord],
    policy: &MatchPolicy,
) -> Decision {
    decide(
        builtin_weights(),
        query,
        candidates,
        policy,
        &Cycle::One,
        Vec::new(),
    )
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
            builtin_weights(),
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
