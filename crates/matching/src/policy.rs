//! The decision rule's knobs, per relying party: how much evidence a match needs.

use serde::{Deserialize, Serialize};

/// Thresholds of the decision rule (see `docs/matching.md`). Scores are sums of
/// Fellegi-Sunter match weights in bits (log2 of m/u), so a margin of 6 means the best
/// candidate is about 64 times likelier to be the person than the runner-up.
///
/// The defaults are deliberately strict: name and date of birth alone never match at
/// cycle 1; some address evidence (or, at cycle 3, the extra attribute) is needed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MatchPolicy {
    /// Minimum score of the best candidate at cycle 1.
    pub threshold: f64,
    /// Minimum score of the best candidate at cycle 3 (the extra attribute must also agree).
    pub cycle3_threshold: f64,
    /// Minimum lead of the best candidate over the second best; a smaller lead is
    /// ambiguous, never a guess.
    pub margin: f64,
    /// More candidates than this from blocking means the query is too unspecific to
    /// decide safely: no match (reason `candidates:too_many`).
    pub max_candidates: usize,
}

impl Default for MatchPolicy {
    fn default() -> Self {
        Self {
            threshold: 32.0,
            cycle3_threshold: 36.0,
            margin: 6.0,
            max_candidates: 1000,
        }
    }
}

/// Why a policy is unsafe to use.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PolicyError {
    /// A threshold below the floor would let name and date of birth alone match.
    #[error("{name} must be at least {floor} (got {value})")]
    TooLow {
        /// Which field.
        name: &'static str,
        /// The smallest accepted value.
        floor: f64,
        /// The configured value.
        value: f64,
    },
}

impl MatchPolicy {
    /// Rejects settings that would make false matches likely: thresholds below what exact
    /// first name, surname and date of birth alone reach, or a margin under 3 bits.
    pub fn validate(&self) -> Result<(), PolicyError> {
        let floors = [
            ("threshold", 20.0, self.threshold),
            ("cycle3_threshold", 20.0, self.cycle3_threshold),
            ("margin", 3.0, self.margin),
        ];
        for (name, floor, value) in floors {
            if value.is_nan() || value < floor {
                return Err(PolicyError::TooLow { name, floor, value });
            }
        }
        Ok(())
    }
}
