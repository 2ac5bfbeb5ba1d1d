//! Scoring matching decisions against the corpus truth, and issue 4's acceptance bounds.

use std::fmt;

use matching::{Decision, Outcome};
use serde::Serialize;

use super::{LabelledQuery, QuerySet};

/// Smallest share of true matches that must be found on the clean, typo, nickname and
/// moved-address sets, at cycle 1 or cycle 3 (issue 4).
pub const MIN_RECALL: f64 = 0.99;

/// Counts for one query set (or several combined).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SetFigures {
    /// Queries evaluated.
    pub queries: usize,
    /// Queries whose person has a record (the denominator of recall).
    pub with_truth: usize,
    /// Matched the right record at cycle 1.
    pub correct_cycle1: usize,
    /// Not matched at cycle 1, then matched the right record at cycle 3.
    pub correct_cycle3: usize,
    /// Matched a record that is not the person's (or any record, for a person with none):
    /// the failure the hub must never make.
    pub false_matches: usize,
    /// Ended in no match (final attempt's outcome).
    pub no_match: usize,
    /// Ended ambiguous (final attempt's outcome).
    pub ambiguous: usize,
    /// Queries for which cycle 3 was tried.
    pub cycle3_tried: usize,
}

impl SetFigures {
    /// Right record matched, at either cycle.
    pub fn correct(&self) -> usize {
        self.correct_cycle1 + self.correct_cycle3
    }

    /// Correct matches over queries with a truth; `None` when no query has one.
    pub fn recall(&self) -> Option<f64> {
        (self.with_truth > 0).then(|| self.correct() as f64 / self.with_truth as f64)
    }

    /// Correct matches over all matches made; `None` when nothing was matched.
    pub fn precision(&self) -> Option<f64> {
        let matched = self.correct() + self.false_matches;
        (matched > 0).then(|| self.correct() as f64 / matched as f64)
    }

    /// Whether recall reaches [`MIN_RECALL`], in integer arithmetic (99% of 300 is exactly
    /// 297, not a float a hair below it).
    fn recall_reaches_bound(&self) -> bool {
        self.with_truth > 0 && self.correct() * 100 >= self.with_truth * 99
    }

    fn add(&mut self, other: &SetFigures) {
        self.queries += other.queries;
        self.with_truth += other.with_truth;
        self.correct_cycle1 += other.correct_cycle1;
        self.correct_cycle3 += other.correct_cycle3;
        self.false_matches += other.false_matches;
        self.no_match += other.no_match;
        self.ambiguous += other.ambiguous;
        self.cycle3_tried += other.cycle3_tried;
    }
}

/// Accuracy of a set of decisions against the truth, per query set.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AccuracyReport {
    /// Figures for each set, in [`QuerySet::ALL`] order (sets with no queries included).
    pub sets: Vec<(QuerySet, SetFigures)>,
    /// Queries that had no decision (the decision list was shorter than the queries).
    pub unanswered: usize,
    /// Decisions whose `id` was not their query's: the pairing is wrong, so are the figures.
    pub misaligned: usize,
}

/// Scores decisions against the queries' truth. `decisions[i]` belongs to `queries[i]`:
/// the cycle-1 decision, and the cycle-3 decision when cycle 3 was tried. The final outcome
/// is cycle 1's match if it matched, else cycle 3's.
pub fn evaluate(
    queries: &[LabelledQuery],
    decisions: &[(Decision, Option<Decision>)],
) -> AccuracyReport {
    let mut report = AccuracyReport {
        sets: QuerySet::ALL
            .iter()
            .map(|set| (*set, SetFigures::default()))
            .collect(),
        unanswered: queries.len().saturating_sub(decisions.len()),
        misaligned: 0,
    };
    for (query, (cycle1, cycle3)) in queries.iter().zip(decisions) {
        let aligned = |d: &Decision| d.id.is_none() || d.id == query.dataset.id;
        if !aligned(cycle1) || cycle3.as_ref().is_some_and(|d| !aligned(d)) {
            report.misaligned += 1;
        }
        let Some(figures) = report
            .sets
            .iter_mut()
            .find(|(set, _)| *set == query.set)
            .map(|(_, f)| f)
        else {
            continue;
        };
        figures.queries += 1;
        if query.truth.is_some() {
            figures.with_truth += 1;
        }
        if cycle3.is_some() {
            figures.cycle3_tried += 1;
        }
        let (last, at_cycle3) = match cycle3 {
            Some(c3) if !cycle1.is_match() => (c3, true),
            _ => (cycle1, false),
        };
        if last.is_match() {
            if last.record_id.is_some() && last.record_id == query.truth {
                if at_cycle3 {
                    figures.correct_cycle3 += 1;
                } else {
                    figures.correct_cycle1 += 1;
                }
            } else {
                figures.false_matches += 1;
            }
        } else if last.outcome == Outcome::Ambiguous {
            figures.ambiguous += 1;
        } else {
            figures.no_match += 1;
        }
    }
    // Queries without a decision count as not matched.
    for query in queries.iter().skip(decisions.len()) {
        if let Some((_, figures)) = report.sets.iter_mut().find(|(set, _)| *set == query.set) {
            figures.queries += 1;
            figures.no_match += 1;
            if query.truth.is_some() {
                figures.with_truth += 1;
            }
        }
    }
    report
}

impl AccuracyReport {
    /// The figures of one set.
    pub fn figures(&self, set: QuerySet) -> SetFigures {
        self.sets
            .iter()
            .find(|(s, _)| *s == set)
            .map(|(_, f)| *f)
            .unwrap_or_default()
    }

    /// The figures of the sets `include` selects, added up.
    pub fn combined(&self, include: impl Fn(QuerySet) -> bool) -> SetFigures {
        let mut total = SetFigures::default();
        for (set, figures) in &self.sets {
            if include(*set) {
                total.add(figures);
            }
        }
        total
    }

    /// Issue 4's acceptance bounds: no false match in any set (above all the hard
    /// negatives), and at least [`MIN_RECALL`] of true matches found on the clean, typo,
    /// nickname and moved-address sets, each and combined. The error lists every breach.
    pub fn check(&self) -> Result<(), String> {
        let mut breaches = Vec::new();
        if self.unanswered > 0 {
            breaches.push(format!("{} queries have no decision", self.unanswered));
        }
        if self.misaligned > 0 {
            breaches.push(format!(
                "{} decisions carry another query's id",
                self.misaligned
            ));
        }
        for (set, figures) in &self.sets {
            if figures.false_matches > 0 {
                breaches.push(format!(
                    "{} false match(es) in `{set}`{}",
                    figures.false_matches,
                    if set.is_hard_negative() {
                        " (hard negative)"
                    } else {
                        ""
                    }
                ));
            }
        }
        let bounded: Vec<(String, SetFigures)> = self
            .sets
            .iter()
            .filter(|(set, _)| set.recall_bound_applies())
            .map(|(set, f)| (format!("`{set}`"), *f))
            .chain(std::iter::once((
                "clean+typo+nickname+moved_address combined".to_owned(),
                self.combined(QuerySet::recall_bound_applies),
            )))
            .collect();
        for (name, figures) in bounded {
            if figures.with_truth == 0 {
                breaches.push(format!("{name}: no queries with a truth to measure recall"));
            } else if !figures.recall_reaches_bound() {
                breaches.push(format!(
                    "{name}: recall {} ({} of {}) below {:.0}%",
                    percent(figures.recall()),
                    figures.correct(),
                    figures.with_truth,
                    MIN_RECALL * 100.0
                ));
            }
        }
        if breaches.is_empty() {
            Ok(())
        } else {
            Err(breaches.join("; "))
        }
    }
}

fn percent(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{:.2}%", v * 100.0))
}

fn row(f: &mut fmt::Formatter<'_>, name: &str, s: &SetFigures) -> fmt::Result {
    writeln!(
        f,
        "{name:<22} {:>7} {:>6} {:>7} {:>7} {:>6} {:>9} {:>9} {:>9} {:>10}",
        s.queries,
        s.with_truth,
        s.correct_cycle1,
        s.correct_cycle3,
        s.false_matches,
        s.no_match,
        s.ambiguous,
        percent(s.recall()),
        percent(s.precision()),
    )
}

/// A fixed-width table: one row per set, then the bounded sets combined, the hard negatives
/// combined and everything.
impl fmt::Display for AccuracyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<22} {:>7} {:>6} {:>7} {:>7} {:>6} {:>9} {:>9} {:>9} {:>10}",
            "set",
            "queries",
            "truth",
            "c1 ok",
            "c3 ok",
            "false",
            "no match",
            "ambiguous",
            "recall",
            "precision"
        )?;
        for (set, figures) in &self.sets {
            let marker = if set.recall_bound_applies() {
                " *"
            } else if set.is_hard_negative() {
                " !"
            } else {
                ""
            };
            row(f, &format!("{set}{marker}"), figures)?;
        }
        row(
            f,
            "* bounded (>=99%)",
            &self.combined(QuerySet::recall_bound_applies),
        )?;
        row(
            f,
            "! hard negatives",
            &self.combined(QuerySet::is_hard_negative),
        )?;
        row(f, "all", &self.combined(|_| true))?;
        if self.unanswered > 0 || self.misaligned > 0 {
            writeln!(
                f,
                "unanswered: {}, misaligned: {}",
                self.unanswered, self.misaligned
            )?;
        }
        Ok(())
    }
}
