//! The Fellegi-Sunter model: for each field and comparison level, `m` is the probability
//! of that level when the record is the person and `u` when it is someone else; the
//! level's weight is `log2(m / u)` bits of evidence, and a candidate's score is the sum
//! over its fields.
//!
//! The parameters are estimated, not set by hand ([`crate::estimate`]): `u` from random
//! pairs of a department's records, `m` from labelled pairs. The built-in model
//! (`data/model.json`) was estimated by `corpus --estimate-model` on the synthetic corpus
//! with its published error model (docs/matching.md, "The model").

use std::collections::BTreeMap;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

/// A compared field of the matching dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Field {
    FirstName,
    Surname,
    DateOfBirth,
    Address,
    Gender,
    /// The cycle-3 attribute (NINO, driving licence number, ...).
    Attribute,
}

impl Field {
    pub(crate) const ALL: [Field; 6] = [
        Field::FirstName,
        Field::Surname,
        Field::DateOfBirth,
        Field::Address,
        Field::Gender,
        Field::Attribute,
    ];

    pub(crate) fn code(self) -> &'static str {
        match self {
            Field::FirstName => "first_name",
            Field::Surname => "surname",
            Field::DateOfBirth => "date_of_birth",
            Field::Address => "address",
            Field::Gender => "gender",
            Field::Attribute => "attribute",
        }
    }

    /// The levels a comparison of this field can give, best first (`Missing` excluded:
    /// it carries no evidence).
    pub(crate) fn levels(self) -> &'static [Level] {
        use Level as L;
        match self {
            Field::FirstName => &[
                L::Exact,
                L::Nickname,
                L::Fuzzy,
                L::Phonetic,
                L::FuzzyFar,
                L::OtherGivenName,
                L::Initial,
                L::Different,
            ],
            Field::Surname => &[
                L::Exact,
                L::Part,
                L::Fuzzy,
                L::Phonetic,
                L::FuzzyFar,
                L::Different,
            ],
            Field::DateOfBirth => &[
                L::Exact,
                L::SwappedDayMonth,
                L::Transposed,
                L::OneDigit,
                L::YearOffByOne,
                L::OneDigitDecade,
                L::Different,
            ],
            Field::Address => &[
                L::PostcodeAndHouse,
                L::NearPostcodeAndStreet,
                L::StreetAndHouse,
                L::PostcodeAndStreet,
                L::Postcode,
                L::NearPostcode,
                L::District,
                L::Different,
            ],
            Field::Gender => &[L::Agree, L::Disagree],
            Field::Attribute => &[L::Exact, L::Different],
        }
    }
}

/// How well two values of a field agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Level {
    Exact,
    Nickname,
    /// The first name of one side is another given (or middle) name of the other.
    OtherGivenName,
    /// One typo apart (one edit in a name of four letters or more).
    Fuzzy,
    /// Further apart: two edits, one edit in a short name, or Jaro-Winkler >= 0.85.
    FuzzyFar,
    /// Same Double Metaphone code.
    Phonetic,
    /// One side gives only an initial, and it agrees.
    Initial,
    /// One word of a double-barrelled surname.
    Part,
    SwappedDayMonth,
    /// Two adjacent digits transposed (`1980-04-12` / `1980-04-21`).
    Transposed,
    /// One digit different in the day, the month or the last digit of the year.
    OneDigit,
    /// Only the decade's digit differs (`1980` / `1990`): a typo, or a parent and child.
    OneDigitDecade,
    /// Same day and month, the year one apart.
    YearOffByOne,
    PostcodeAndHouse,
    /// Same postcode and street, house number different or unknown.
    PostcodeAndStreet,
    /// Same postcode, nothing else agreeing.
    Postcode,
    /// Postcodes one typo apart, street agreeing and house number not disagreeing.
    NearPostcodeAndStreet,
    /// Street, town and house number agree; the postcode differs or is missing.
    StreetAndHouse,
    /// Postcodes one typo apart, nothing else agreeing.
    NearPostcode,
    /// Same postcode district (outward code) only.
    District,
    Agree,
    Disagree,
    Different,
    /// One side has no usable value: no evidence either way.
    Missing,
}

impl Level {
    pub(crate) const ALL: [Level; 24] = [
        Level::Exact,
        Level::Nickname,
        Level::OtherGivenName,
        Level::Fuzzy,
        Level::FuzzyFar,
        Level::Phonetic,
        Level::Initial,
        Level::Part,
        Level::SwappedDayMonth,
        Level::Transposed,
        Level::OneDigit,
        Level::OneDigitDecade,
        Level::YearOffByOne,
        Level::PostcodeAndHouse,
        Level::PostcodeAndStreet,
        Level::Postcode,
        Level::NearPostcodeAndStreet,
        Level::StreetAndHouse,
        Level::NearPostcode,
        Level::District,
        Level::Agree,
        Level::Disagree,
        Level::Different,
        Level::Missing,
    ];

    pub(crate) fn code(self) -> &'static str {
        match self {
            Level::Exact => "exact",
            Level::Nickname => "nickname",
            Level::OtherGivenName => "other_given_name",
            Level::Fuzzy => "fuzzy",
            Level::FuzzyFar => "fuzzy_far",
            Level::Phonetic => "phonetic",
            Level::Initial => "initial",
            Level::Part => "part",
            Level::SwappedDayMonth => "swapped_day_month",
            Level::Transposed => "transposed",
            Level::OneDigit => "one_digit",
            Level::OneDigitDecade => "one_digit_decade",
            Level::YearOffByOne => "year_off_by_one",
            Level::PostcodeAndHouse => "postcode_and_house",
            Level::PostcodeAndStreet => "postcode_and_street",
            Level::Postcode => "postcode",
            Level::NearPostcodeAndStreet => "near_postcode_and_street",
            Level::StreetAndHouse => "street_and_house",
            Level::NearPostcode => "near_postcode",
            Level::District => "district",
            Level::Agree => "agree",
            Level::Disagree => "disagree",
            Level::Different => "different",
            Level::Missing => "missing",
        }
    }

    fn from_code(code: &str) -> Option<Level> {
        Level::ALL.into_iter().find(|l| l.code() == code)
    }
}

/// `m` and `u` of one comparison level.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Probabilities {
    /// Probability of the level when the record is the person.
    pub m: f64,
    /// Probability of the level when the record is someone else.
    pub u: f64,
}

impl Probabilities {
    /// Bits of evidence: `log2(m / u)`.
    pub fn weight(&self) -> f64 {
        (self.m / self.u).log2()
    }
}

/// A Fellegi-Sunter model: `m` and `u` per field and level, and the prior odds that a
/// candidate is the person, in the JSON form of `data/model.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Model {
    /// Where the parameters come from (corpus, seed, sizes), for people reading the file.
    pub source: String,
    /// `log2` of the prior odds that one candidate from blocking is the person, before any
    /// comparison: with the score gives the match probability reported in decisions.
    pub prior_bits: f64,
    /// Field code -> level code -> probabilities.
    pub fields: BTreeMap<String, BTreeMap<String, Probabilities>>,
    /// Term frequencies of the commonest first names and surnames (normalised value ->
    /// share of records): exact agreement on a common name is weaker evidence than on a
    /// rare one ([`TF_MAX_BOOST_BITS`]).
    #[serde(default)]
    pub term_frequencies: BTreeMap<String, BTreeMap<String, f64>>,
}

/// How much stronger than the average exact agreement an exact agreement on a rare name
/// may count, in bits. Unlisted names are taken as rare as the rarest listed one, and never
/// more than this above average: a rare name in one department is a common one elsewhere.
pub const TF_MAX_BOOST_BITS: f64 = 2.0;

/// The fields whose exact agreement is weighted by term frequency.
pub(crate) const TF_FIELDS: [Field; 2] = [Field::FirstName, Field::Surname];

/// Why a model file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// Not JSON of the model's shape.
    #[error("the model is not valid JSON of the documented shape: {0}")]
    Malformed(String),
    /// A field or level is missing or unknown.
    #[error("the model has no `{field}.{level}` parameters, or names an unknown one")]
    Incomplete {
        /// Field code.
        field: String,
        /// Level code.
        level: String,
    },
    /// A probability is not in (0, 1].
    #[error("`{field}.{level}` has a probability outside (0, 1]")]
    OutOfRange {
        /// Field code.
        field: String,
        /// Level code.
        level: String,
    },
}

/// The weights of a validated model, looked up by index on the hot path.
#[derive(Debug, Clone)]
pub(crate) struct Weights {
    table: [[f64; Level::ALL.len()]; Field::ALL.len()],
    prior_bits: f64,
    /// Per [`TF_FIELDS`] entry: `m` and `u` of exact agreement, the term frequencies, and
    /// the frequency assumed for an unlisted value.
    term_frequencies: [TermFrequencies; 2],
}

#[derive(Debug, Clone, Default)]
struct TermFrequencies {
    m: f64,
    u: f64,
    values: std::collections::HashMap<String, f64>,
    unlisted: f64,
}

impl TermFrequencies {
    /// Weight of exact agreement on `value`.
    fn weight(&self, value: &str) -> f64 {
        let floor = self.u / TF_MAX_BOOST_BITS.exp2();
        let u = self.values.get(value).copied().unwrap_or(self.unlisted);
        (self.m / u.max(floor)).log2()
    }
}

impl Weights {
    /// Bits of evidence of a level; 0 for `Missing`.
    pub(crate) fn weight(&self, field: Field, level: Level) -> f64 {
        self.table[field as usize][level as usize]
    }

    /// Weight of exact agreement of `field` on these values (the commonest of them counts,
    /// as the values the two sides share are not known here); the field's exact weight
    /// for fields without term frequencies or without values.
    pub(crate) fn exact_weight<'a>(
        &self,
        field: Field,
        values: impl IntoIterator<Item = &'a str>,
    ) -> f64 {
        let Some(i) = TF_FIELDS.iter().position(|f| *f == field) else {
            return self.weight(field, Level::Exact);
        };
        let tf = &self.term_frequencies[i];
        if tf.values.is_empty() {
            return self.weight(field, Level::Exact);
        }
        values
            .into_iter()
            .map(|v| tf.weight(v))
            .min_by(f64::total_cmp)
            .unwrap_or_else(|| self.weight(field, Level::Exact))
    }

    /// The match probability of a score under the model's prior.
    pub(crate) fn probability(&self, score: f64) -> f64 {
        1.0 / (1.0 + (-(score + self.prior_bits)).exp2())
    }
}

impl Model {
    /// Parses and validates a model in its JSON form.
    pub fn from_json(text: &str) -> Result<Model, ModelError> {
        let model: Model =
            serde_json::from_str(text).map_err(|e| ModelError::Malformed(e.to_string()))?;
        model.weights()?;
        Ok(model)
    }

    /// The model as pretty JSON, as in `data/model.json`.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }

    /// The built-in model (`data/model.json`).
    pub fn builtin() -> &'static Model {
        &BUILTIN.0
    }

    /// Checks that every level of every field has probabilities in (0, 1], and nothing
    /// unknown is named, and builds the lookup table.
    pub(crate) fn weights(&self) -> Result<Weights, ModelError> {
        let mut table = [[0.0; Level::ALL.len()]; Field::ALL.len()];
        for field in Field::ALL {
            let levels = self.fields.get(field.code());
            for level in field.levels() {
                let incomplete = || ModelError::Incomplete {
                    field: field.code().to_owned(),
                    level: level.code().to_owned(),
                };
                let p = levels
                    .and_then(|l| l.get(level.code()))
                    .ok_or_else(incomplete)?;
                let valid = |x: f64| x > 0.0 && x <= 1.0;
                if !valid(p.m) || !valid(p.u) {
                    return Err(ModelError::OutOfRange {
                        field: field.code().to_owned(),
                        level: level.code().to_owned(),
                    });
                }
                table[field as usize][*level as usize] = p.weight();
            }
        }
        for (field, levels) in &self.fields {
            let known = Field::ALL.into_iter().find(|f| f.code() == field);
            for level in levels.keys() {
                let ok = known.is_some_and(|f| {
                    Level::from_code(level).is_some_and(|l| f.levels().contains(&l))
                });
                if !ok {
                    return Err(ModelError::Incomplete {
                        field: field.clone(),
                        level: level.clone(),
                    });
                }
            }
        }
        let term_frequencies = TF_FIELDS.map(|field| {
            let exact = self
                .fields
                .get(field.code())
                .and_then(|l| l.get(Level::Exact.code()))
                .copied()
                .unwrap_or(Probabilities { m: 1.0, u: 1.0 });
            let values = self
                .term_frequencies
                .get(field.code())
                .cloned()
                .unwrap_or_default();
            let unlisted = values.values().copied().fold(f64::INFINITY, f64::min);
            TermFrequencies {
                m: exact.m,
                u: exact.u,
                values: values.into_iter().collect(),
                unlisted,
            }
        });
        for (field, values) in &self.term_frequencies {
            let known = TF_FIELDS.iter().any(|f| f.code() == field);
            if !known || values.values().any(|p| !(*p > 0.0 && *p <= 1.0)) {
                return Err(ModelError::Incomplete {
                    field: field.clone(),
                    level: "term_frequencies".to_owned(),
                });
            }
        }
        Ok(Weights {
            table,
            prior_bits: self.prior_bits,
            term_frequencies,
        })
    }
}

/// The built-in model and its weights, validated once (the `model_file_is_valid` test
/// checks the file, so this cannot fail in a tested build).
static BUILTIN: LazyLock<(Model, Weights)> = LazyLock::new(|| {
    let model = Model::from_json(include_str!("../data/model.json"))
        .expect("data/model.json is valid (see the model_file_is_valid test)");
    let weights = model
        .weights()
        .expect("data/model.json is valid (see the model_file_is_valid test)");
    (model, weights)
});

/// The built-in model's weights.
pub(crate) fn builtin_weights() -> &'static Weights {
    &BUILTIN.1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_file_is_valid() {
        let model = Model::from_json(include_str!("../data/model.json"));
        assert!(model.is_ok(), "{model:?}");
    }

    #[test]
    fn missing_and_unknown_levels_are_refused() {
        let mut model = Model::builtin().clone();
        model
            .fields
            .entry("surname".into())
            .or_default()
            .remove("exact");
        assert!(matches!(
            Model::from_json(&model.to_json()),
            Err(ModelError::Incomplete { .. })
        ));
        let mut model = Model::builtin().clone();
        model
            .fields
            .entry("surname".into())
            .or_default()
            .insert("postcode".into(), Probabilities { m: 0.5, u: 0.5 });
        assert!(Model::from_json(&model.to_json()).is_err());
        let mut model = Model::builtin().clone();
        model
            .fields
            .entry("gender".into())
            .or_default()
            .insert("agree".into(), Probabilities { m: 0.0, u: 0.5 });
        assert!(matches!(
            Model::from_json(&model.to_json()),
            Err(ModelError::OutOfRange { .. })
        ));
    }
}
