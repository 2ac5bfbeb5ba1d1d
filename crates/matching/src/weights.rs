//! Fellegi-Sunter match weights: for each field and comparison level, `m` is the
//! probability of that level when the record is the person, `u` when it is someone else,
//! and the weight is `log2(m / u)` bits of evidence. A candidate's score is the sum over
//! its fields. The table is the documented model (docs/matching.md): change it there too.

/// A compared field of the matching dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
}

/// How well two values of a field agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    Exact,
    Nickname,
    /// The first name of one side is another given (or middle) name of the other. Weak
    /// and negative: twins often carry each other's names as middle names, so this is
    /// left to cycle 3 rather than allowed to make a match.
    OtherGivenName,
    /// One typo apart (edit distance or Jaro-Winkler).
    Fuzzy,
    /// Same Double Metaphone code.
    Phonetic,
    /// One edit apart but too short for that to be good evidence (`Lee`, `Lea`): no
    /// evidence either way, and no veto (a typo in a short surname must not rule the
    /// person out; cycle 3 can still find them).
    Close,
    /// A first name that is only similar (nickname, typo, sound-alike, initial, another
    /// given name) on a candidate whose surname, date of birth and postcode all agree
    /// exactly: that is what a twin's record looks like, so it counts as different.
    SimilarInHousehold,
    /// One side gives only an initial, and it agrees.
    Initial,
    /// One word of a double-barrelled surname.
    Part,
    SwappedDayMonth,
    OneDigit,
    PostcodeAndHouse,
    /// Same postcode, house number different or unknown.
    Postcode,
    /// Same postcode district (outward code) only.
    District,
    Agree,
    Disagree,
    Different,
    /// One side has no usable value: no evidence either way.
    Missing,
}

impl Level {
    pub(crate) fn code(self) -> &'static str {
        match self {
            Level::Exact => "exact",
            Level::Nickname => "nickname",
            Level::OtherGivenName => "other_given_name",
            Level::Fuzzy => "fuzzy",
            Level::Phonetic => "phonetic",
            Level::Close => "close",
            Level::SimilarInHousehold => "similar_in_household",
            Level::Initial => "initial",
            Level::Part => "part",
            Level::SwappedDayMonth => "swapped_day_month",
            Level::OneDigit => "one_digit",
            Level::PostcodeAndHouse => "postcode_and_house",
            Level::Postcode => "postcode",
            Level::District => "district",
            Level::Agree => "agree",
            Level::Disagree => "disagree",
            Level::Different => "different",
            Level::Missing => "missing",
        }
    }
}

/// `(m, u)` for a field at a level; `None` when the level carries no evidence.
pub(crate) fn probabilities(field: Field, level: Level) -> Option<(f64, f64)> {
    use Field as F;
    use Level as L;
    Some(match (field, level) {
        (_, L::Missing) => return None,
        (F::FirstName, L::Exact) => (0.88, 0.02),
        (F::FirstName, L::Nickname) => (0.04, 0.003),
        (F::FirstName, L::OtherGivenName) => (0.01, 0.5),
        (F::FirstName, L::Fuzzy) => (0.03, 0.004),
        (F::FirstName, L::Phonetic) => (0.01, 0.006),
        (F::FirstName, L::Initial) => (0.01, 0.01),
        (F::FirstName, _) => (0.01, 0.94),
        (F::Surname, L::Exact) => (0.90, 0.002),
        (F::Surname, L::Part) => (0.03, 0.001),
        (F::Surname, L::Fuzzy) => (0.03, 0.002),
        (F::Surname, L::Phonetic) => (0.01, 0.003),
        (F::Surname, L::Close) => (0.01, 0.01),
        (F::Surname, _) => (0.03, 0.992),
        (F::DateOfBirth, L::Exact) => (0.95, 0.0005),
        (F::DateOfBirth, L::SwappedDayMonth) => (0.01, 0.0005),
        (F::DateOfBirth, L::OneDigit) => (0.02, 0.002),
        (F::DateOfBirth, _) => (0.02, 0.9965),
        (F::Address, L::PostcodeAndHouse) => (0.60, 0.0002),
        (F::Address, L::Postcode) => (0.15, 0.001),
        (F::Address, L::District) => (0.05, 0.02),
        (F::Address, _) => (0.20, 0.979),
        (F::Gender, L::Agree) => (0.98, 0.5),
        (F::Gender, _) => (0.005, 0.5),
        (F::Attribute, L::Exact) => (0.98, 0.00001),
        (F::Attribute, _) => (0.01, 0.99999),
    })
}

/// Bits of evidence for a field at a level.
pub(crate) fn weight(field: Field, level: Level) -> f64 {
    probabilities(field, level).map_or(0.0, |(m, u)| (m / u).log2())
}

/// Disagreement that rules a candidate out whatever the other fields say: a different
/// surname, date of birth or cycle-3 attribute means a different person (father and son,
/// someone else's NINO), and no sum of other agreements may outvote that.
pub(crate) fn vetoes(field: Field, level: Level) -> bool {
    level == Level::Different
        && matches!(
            field,
            Field::Surname | Field::DateOfBirth | Field::Attribute
        )
}

/// Penalty in bits for names given in the wrong order (first name as surname).
pub(crate) const SWAPPED_NAMES_PENALTY: f64 = 1.0;
