//! A seeded, deterministic synthetic department file and identity-provider queries with
//! known truth, for measuring the matching engine (issue 4's acceptance: zero false matches
//! on the hard negatives, at least 99% of true matches found).
//!
//! Real department data cannot be used to test matching, and hand-written examples test only
//! what their author thought of. This module draws a population of fictional people with
//! realistic frequencies (Zipf-distributed given names and surnames, so common names recur
//! and share dates of birth by chance; households sharing an address; married names; people
//! who moved), writes them as the department's records, and asks about them the way an
//! identity provider would: cleanly, with typos, with nicknames, with day and month swapped,
//! after a move, with half a double-barrelled surname, with exactly one error of a published
//! error model (FEBRL/GeCo typos, OCR and phonetic errors, missing, swapped, copied and
//! replaced values; pseudopeople's noise types) or a FEBRL- or pseudopeople-style mixture of
//! them, and, as hard negatives, about twins, namesakes, fathers and sons, and people who
//! have no record at all, clean and with noise.
//!
//! Everything is drawn from one [`ChaCha8Rng`] seeded from [`CorpusSpec::seed`], using only
//! integer sampling and ordered collections, so the same spec gives byte-identical files on
//! every machine: a figure in a report can be reproduced by anyone.

mod errors;
mod evaluation;
mod names;
mod noise;
mod output;
mod population;
mod queries;
#[cfg(test)]
mod tests;

use std::fmt;

use matching::{DepartmentRecord, MatchingDataset, RecordId};
use serde::{Deserialize, Serialize};

pub use evaluation::{evaluate, AccuracyReport, SetFigures, RECALL_FLOORS};
pub use output::{write_queries_jsonl, write_records_csv, write_truth_jsonl, TruthLine};

/// What to generate. The same spec always generates the same corpus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CorpusSpec {
    /// Seed of the random generator: the only source of variation.
    pub seed: u64,
    /// Number of department records, including the confusable records the hard-negative
    /// sets need (about `15 * queries_per_set`); a smaller number is raised to that.
    pub records: usize,
    /// Number of queries in each [`QuerySet`]. Fewer are generated only when the population
    /// is too small to hold that many distinct people of the kind a set needs.
    pub queries_per_set: usize,
}

/// The situation a query represents: what the identity provider knows differs from the
/// department's record in one typical way, or the query is a trap that must not match.
///
/// The error-kind sets (`first_name_typo` to `value_replaced`) each carry exactly one error
/// of the published error model (see `errors.rs` and docs/matching-accuracy.md, "Error model") on the
/// person's clean view, so recall can be measured per kind; `febrl_mix` and `census_mix`
/// mix them the way FEBRL's and pseudopeople's generators do.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum QuerySet {
    /// The record's person as an IdP sends it (only case, spacing and postcode formatting
    /// differ).
    Clean,
    /// One keyboard typo (neighbouring key, transposition, deletion, doubling) in the first
    /// name or the surname.
    Typo,
    /// A common nickname instead of the formal given name (Bill for William).
    Nickname,
    /// Day and month of the date of birth swapped (only where that is still a valid, and
    /// different, date).
    SwappedDayMonth,
    /// The IdP knows a newer address; in about half the queries it also sends the old
    /// (department) address as a previous one, in the rest only cycle 3 can confirm.
    MovedAddress,
    /// The record has a double-barrelled surname; the IdP sends one part, the other, or
    /// both separated by a space.
    Hyphenated,
    /// One or two keyboard edits in the given name.
    FirstNameTypo,
    /// One OCR misreading in the given name (`m` as `rn`, `cl` as `d`, `l` as `1`).
    FirstNameOcr,
    /// One phonetic rewrite in the given name (`ph` as `f`, `c` as `k`, `ie` as `y`).
    FirstNamePhonetic,
    /// No first name sent.
    FirstNameMissing,
    /// One or two keyboard edits in the surname.
    SurnameTypo,
    /// One phonetic rewrite in the surname.
    SurnamePhonetic,
    /// No surname sent.
    SurnameMissing,
    /// First name and surname the wrong way round.
    NamesSwapped,
    /// No date of birth sent.
    DobMissing,
    /// A date of birth that is no date: day 31 of a 30-day month, month 13, or free text.
    DobInvalid,
    /// One digit of the date of birth wrong, still a real date.
    DobOneDigit,
    /// Two adjacent digits of the date of birth transposed, still a real date.
    DobTransposed,
    /// The year of birth one too high or too low.
    DobYearOffByOne,
    /// The date of birth of another member of the household (pseudopeople's "copy from
    /// household member").
    DobFromHousehold,
    /// One character of the postcode wrong.
    PostcodeDigit,
    /// Two neighbouring characters of the postcode transposed.
    PostcodeTransposed,
    /// The address sent without its postcode.
    PostcodeMissing,
    /// Another house number in the street line.
    HouseNumberDiffers,
    /// A keyboard typo in the street name.
    StreetTypo,
    /// No address sent.
    AddressMissing,
    /// The street name or the town replaced by another from the generator's tables.
    ValueReplaced,
    /// FEBRL's duplicate model: 1 to 3 modifications, at most 2 per field.
    FebrlMix,
    /// pseudopeople's column noise at its default rates: most queries carry no error.
    CensusMix,
    /// Twins: same surname, date of birth and address, different first names. Truth: the
    /// twin asked about.
    Twin,
    /// Two people with the same common first name, surname and date of birth at different
    /// addresses. Truth: the one asked about.
    Namesake,
    /// Father and son (or mother and daughter) with the same name at one address, born 20-40
    /// years apart. Truth: the one asked about.
    FatherSon,
    /// Someone with no record who is the namesake, twin or parent/child of someone who has
    /// one. Truth: none.
    Absent,
    /// [`QuerySet::Twin`] with [`QuerySet::FebrlMix`] noise on the query.
    TwinNoisy,
    /// [`QuerySet::Namesake`] with [`QuerySet::FebrlMix`] noise on the query.
    NamesakeNoisy,
    /// [`QuerySet::FatherSon`] with [`QuerySet::FebrlMix`] noise on the query.
    FatherSonNoisy,
    /// [`QuerySet::Absent`] with [`QuerySet::FebrlMix`] noise on the query.
    AbsentNoisy,
    /// Someone with no record whose household member (sibling or spouse: same surname and
    /// address) has one, asked about with the member's date of birth copied in. Truth: none.
    AbsentHousehold,
}

impl QuerySet {
    /// Every set, in report order.
    pub const ALL: [QuerySet; 38] = [
        QuerySet::Clean,
        QuerySet::Typo,
        QuerySet::Nickname,
        QuerySet::SwappedDayMonth,
        QuerySet::MovedAddress,
        QuerySet::Hyphenated,
        QuerySet::FirstNameTypo,
        QuerySet::FirstNameOcr,
        QuerySet::FirstNamePhonetic,
        QuerySet::FirstNameMissing,
        QuerySet::SurnameTypo,
        QuerySet::SurnamePhonetic,
        QuerySet::SurnameMissing,
        QuerySet::NamesSwapped,
        QuerySet::DobMissing,
        QuerySet::DobInvalid,
        QuerySet::DobOneDigit,
        QuerySet::DobTransposed,
        QuerySet::DobYearOffByOne,
        QuerySet::DobFromHousehold,
        QuerySet::PostcodeDigit,
        QuerySet::PostcodeTransposed,
        QuerySet::PostcodeMissing,
        QuerySet::HouseNumberDiffers,
        QuerySet::StreetTypo,
        QuerySet::AddressMissing,
        QuerySet::ValueReplaced,
        QuerySet::FebrlMix,
        QuerySet::CensusMix,
        QuerySet::Twin,
        QuerySet::Namesake,
        QuerySet::FatherSon,
        QuerySet::Absent,
        QuerySet::TwinNoisy,
        QuerySet::NamesakeNoisy,
        QuerySet::FatherSonNoisy,
        QuerySet::AbsentNoisy,
        QuerySet::AbsentHousehold,
    ];

    /// Sets built around a confusable record: a match to the wrong record there is exactly
    /// the false match the hub must never make.
    pub fn is_hard_negative(self) -> bool {
        matches!(
            self,
            QuerySet::Twin
                | QuerySet::Namesake
                | QuerySet::FatherSon
                | QuerySet::Absent
                | QuerySet::TwinNoisy
                | QuerySet::NamesakeNoisy
                | QuerySet::FatherSonNoisy
                | QuerySet::AbsentNoisy
                | QuerySet::AbsentHousehold
        )
    }

    /// Sets whose person has no record: every match there is a false match.
    pub fn is_absent(self) -> bool {
        matches!(
            self,
            QuerySet::Absent | QuerySet::AbsentNoisy | QuerySet::AbsentHousehold
        )
    }

    /// The wire name (`clean`, `swapped_day_month`, ...), as in `truth.jsonl`.
    pub fn as_str(self) -> &'static str {
        match self {
            QuerySet::Clean => "clean",
            QuerySet::Typo => "typo",
            QuerySet::Nickname => "nickname",
            QuerySet::SwappedDayMonth => "swapped_day_month",
            QuerySet::MovedAddress => "moved_address",
            QuerySet::Hyphenated => "hyphenated",
            QuerySet::FirstNameTypo => "first_name_typo",
            QuerySet::FirstNameOcr => "first_name_ocr",
            QuerySet::FirstNamePhonetic => "first_name_phonetic",
            QuerySet::FirstNameMissing => "first_name_missing",
            QuerySet::SurnameTypo => "surname_typo",
            QuerySet::SurnamePhonetic => "surname_phonetic",
            QuerySet::SurnameMissing => "surname_missing",
            QuerySet::NamesSwapped => "names_swapped",
            QuerySet::DobMissing => "dob_missing",
            QuerySet::DobInvalid => "dob_invalid",
            QuerySet::DobOneDigit => "dob_one_digit",
            QuerySet::DobTransposed => "dob_transposed",
            QuerySet::DobYearOffByOne => "dob_year_off_by_one",
            QuerySet::DobFromHousehold => "dob_from_household",
            QuerySet::PostcodeDigit => "postcode_digit",
            QuerySet::PostcodeTransposed => "postcode_transposed",
            QuerySet::PostcodeMissing => "postcode_missing",
            QuerySet::HouseNumberDiffers => "house_number_differs",
            QuerySet::StreetTypo => "street_typo",
            QuerySet::AddressMissing => "address_missing",
            QuerySet::ValueReplaced => "value_replaced",
            QuerySet::FebrlMix => "febrl_mix",
            QuerySet::CensusMix => "census_mix",
            QuerySet::Twin => "twin",
            QuerySet::Namesake => "namesake",
            QuerySet::FatherSon => "father_son",
            QuerySet::Absent => "absent",
            QuerySet::TwinNoisy => "twin_noisy",
            QuerySet::NamesakeNoisy => "namesake_noisy",
            QuerySet::FatherSonNoisy => "father_son_noisy",
            QuerySet::AbsentNoisy => "absent_noisy",
            QuerySet::AbsentHousehold => "absent_household",
        }
    }
}

impl fmt::Display for QuerySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One query with its known answer.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelledQuery {
    /// Which situation the query represents.
    pub set: QuerySet,
    /// What the identity provider asserts; `id` is `q-<n>`.
    pub dataset: MatchingDataset,
    /// The record of the person asked about, or `None` when they have no record.
    pub truth: Option<RecordId>,
    /// What the citizen would type when asked for their National Insurance number at cycle 3:
    /// their own, sometimes with spaces or in lower case.
    pub nino: Option<String>,
}

/// A department file and the queries about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Corpus {
    /// The department's records, in file order.
    pub records: Vec<DepartmentRecord>,
    /// The labelled queries, shuffled across sets, ids `q-1`, `q-2`, ...
    pub queries: Vec<LabelledQuery>,
}

/// Generates the corpus `spec` describes. Deterministic: the same spec gives the same
/// corpus, on any machine.
pub fn generate(spec: &CorpusSpec) -> Corpus {
    population::generate(spec)
}
