//! Matching: links the person an identity provider vouched for to one of a department's
//! records, or refuses to.
//!
//! Dataset in, decision with reasons out. Pure functions only: no web, no SQL, no clock,
//! so the same engine serves the hub, a remote matching service and batch mode. Input is
//! never trusted to be well formed: missing, empty or malformed fields make a record
//! harder to match, never a panic or an error. Ambiguity is never resolved by guessing.
//! See `docs/matching.md` for the contract and rules.

mod blocking;
mod compare;
mod dataset;
mod engine;
mod estimate;
mod model;
mod nicknames;
mod normalise;
mod policy;

pub use blocking::{query_blocking_keys, record_blocking_keys, MAX_QUERY_KEYS};
pub use compare::given_names_equivalent;
pub use dataset::{Address, Decision, DepartmentRecord, MatchingDataset, Outcome, RecordId};
pub use engine::{match_cycle1, match_cycle3};
pub use estimate::{estimate, LabelledPair, M_FLOOR, RANDOM_PAIRS, TERM_FREQUENCIES};
pub use model::{Model, ModelError, Probabilities, TF_MAX_BOOST_BITS};
pub use normalise::{
    normalise_attribute, normalise_attribute_type, normalise_date_of_birth, normalise_name,
    normalise_postcode, parse_date_of_birth, ATTRIBUTE_DRIVING_LICENCE, ATTRIBUTE_NINO,
};
pub use policy::{MatchPolicy, PolicyError};

/// Why a value could not be normalised. Messages name the attribute type only, never the
/// value, so they are safe to log and to show.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MatchingError {
    /// The attribute type name is blank.
    #[error("attribute type is empty")]
    EmptyAttributeType,
    /// The value is blank (blank must never equal blank).
    #[error("value for attribute type `{kind}` is empty")]
    EmptyValue {
        /// Normalised attribute type.
        kind: String,
    },
    /// The value is not in the format required for its type (e.g. a malformed NINO).
    #[error("value for attribute type `{kind}` is not in the expected format")]
    InvalidFormat {
        /// Normalised attribute type.
        kind: String,
    },
}
