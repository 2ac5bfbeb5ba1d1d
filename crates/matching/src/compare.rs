//! Field comparisons: each turns a pair of values into a comparison level (exact,
//! nickname, fuzzy, ...) whose Fellegi-Sunter weight comes from [`crate::weights`].
//!
//! Everything here works on [`Person`], the normalised view of a dataset, so a record is
//! normalised once per comparison and a query once per decision.

use std::collections::BTreeSet;

use chrono::{Datelike, NaiveDate};

use crate::normalise::{compact_postcode, normalise_name, parse_date_of_birth, phonetic_codes};
use crate::weights::Level;
use crate::{nicknames, MatchingDataset};

/// Surname particles that do not identify a family on their own (`de la Cruz`).
const PARTICLES: &[&str] = &[
    "de", "del", "della", "der", "di", "da", "du", "la", "le", "van", "von", "den", "ter", "st",
    "mac", "bin", "bint", "ibn", "al", "el",
];

/// One address as compared: postcode key and the house number, when one can be read.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Place {
    postcode: String,
    district: Option<String>,
    house: Option<String>,
}

/// The comparable view of a matching dataset: normalised, blanks dropped.
#[derive(Debug, Clone)]
pub(crate) struct Person {
    /// Words of the first name, in order; the first is the name the person goes by.
    given: Vec<String>,
    /// Words of the middle names.
    middle: Vec<String>,
    /// Whole surnames (current and previous), normalised (`smith jones`).
    surnames: BTreeSet<String>,
    /// Distinctive words of multi-word surnames (`smith`, `jones`).
    surname_parts: BTreeSet<String>,
    pub(crate) date_of_birth: Option<NaiveDate>,
    places: Vec<Place>,
    gender: Option<char>,
}

fn words(s: &str) -> Vec<String> {
    normalise_name(s)
        .split(' ')
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The first house number in the address lines (`12`, `12a`), upper-cased.
fn house_number(lines: &[String]) -> Option<String> {
    lines
        .iter()
        .flat_map(|l| l.split(|c: char| c.is_whitespace() || c == ','))
        .find_map(|w| {
            let w = w.trim_matches(|c: char| !c.is_ascii_alphanumeric());
            (w.starts_with(|c: char| c.is_ascii_digit()) && w.len() <= 6)
                .then(|| w.to_ascii_uppercase())
        })
}

fn gender(s: &str) -> Option<char> {
    match s.trim().to_ascii_lowercase().as_str() {
        "m" | "male" | "man" => Some('m'),
        "f" | "female" | "woman" => Some('f'),
        _ => None,
    }
}

impl Person {
    pub(crate) fn new(d: &MatchingDataset) -> Self {
        let given = d.first_name.as_deref().map(words).unwrap_or_default();
        let middle = d.middle_names.iter().flat_map(|m| words(m)).collect();
        let mut surnames = BTreeSet::new();
        let mut surname_parts = BTreeSet::new();
        for s in &d.surnames {
            let name = normalise_name(s);
            if name.is_empty() {
                continue;
            }
            if name.contains(' ') {
                surname_parts.extend(
                    name.split(' ')
                        .filter(|p| p.len() > 1 && !PARTICLES.contains(p))
                        .map(str::to_owned),
                );
            }
            surnames.insert(name);
        }
        let places = d
            .addresses
            .iter()
            .filter_map(|a| {
                let normalised = crate::normalise_postcode(a.postcode.as_deref()?);
                let postcode = compact_postcode(&normalised)?;
                let district = normalised
                    .split_once(' ')
                    .map(|(outward, _)| outward.to_owned());
                Some(Place {
                    postcode,
                    district,
                    house: house_number(&a.lines),
                })
            })
            .collect();
        Person {
            given,
            middle,
            surnames,
            surname_parts,
            date_of_birth: d.date_of_birth.as_deref().and_then(parse_date_of_birth),
            places,
            gender: d.gender.as_deref().and_then(gender),
        }
    }

    /// The first given name, when there is one.
    fn first(&self) -> Option<&str> {
        self.given.first().map(String::as_str)
    }

    /// Whether the query carries each field, for the decision's reasons.
    pub(crate) fn gaps(&self) -> impl Iterator<Item = &'static str> {
        [
            ("first_name", self.given.is_empty()),
            ("surname", self.surnames.is_empty()),
            ("date_of_birth", self.date_of_birth.is_none()),
            ("address", self.places.is_empty()),
        ]
        .into_iter()
        .filter_map(|(field, missing)| missing.then_some(field))
    }
}

/// Typo-level similarity: one edit (including a transposition) for names of 4+ letters,
/// two for long names, or a Jaro-Winkler similarity of at least 0.94.
fn similar(a: &str, b: &str) -> bool {
    let shortest = a.chars().count().min(b.chars().count());
    let edits = strsim::osa_distance(a, b);
    (shortest >= 4 && edits <= 1)
        || (shortest >= 8 && edits <= 2)
        || (shortest >= 4 && strsim::jaro_winkler(a, b) >= 0.94)
}

/// Same Double Metaphone code (primary or alternate).
fn sounds_alike(a: &str, b: &str) -> bool {
    match (phonetic_codes(a), phonetic_codes(b)) {
        (Some((xp, xa)), Some((yp, ya))) => xp == yp || xp == ya || xa == yp,
        _ => false,
    }
}

/// Level of agreement of two single names (given or family) without nickname rules.
fn name_pair(a: &str, b: &str) -> Option<Level> {
    if a == b {
        Some(Level::Exact)
    } else if similar(a, b) {
        Some(Level::Fuzzy)
    } else if sounds_alike(a, b) {
        Some(Level::Phonetic)
    } else {
        None
    }
}

/// First name: exact, nickname, another of the person's given names, typo, sound-alike,
/// initial only, or different.
pub(crate) fn first_name(q: &Person, r: &Person) -> Level {
    let (Some(qf), Some(rf)) = (q.first(), r.first()) else {
        return Level::Missing;
    };
    if qf == rf {
        return Level::Exact;
    }
    if qf.len() == 1 || rf.len() == 1 {
        return if qf.chars().next() == rf.chars().next() {
            Level::Initial
        } else {
            Level::Different
        };
    }
    if nicknames::equivalent(qf, rf) {
        return Level::Nickname;
    }
    let q_all = q.given.iter().chain(&q.middle);
    let r_all: BTreeSet<&String> = r.given.iter().chain(&r.middle).collect();
    if q_all.filter(|w| w.len() > 1).any(|w| r_all.contains(w)) {
        return Level::OtherGivenName;
    }
    name_pair(qf, rf).unwrap_or(Level::Different)
}

/// Surname: any current or previous surname of one side against any of the other's.
pub(crate) fn surname(q: &Person, r: &Person) -> Level {
    if q.surnames.is_empty() || r.surnames.is_empty() {
        return Level::Missing;
    }
    let joined = |s: &String| s.replace(' ', "");
    if q.surnames
        .iter()
        .any(|s| r.surnames.iter().any(|t| joined(s) == joined(t)))
    {
        return Level::Exact;
    }
    let q_words: BTreeSet<&String> = q.surnames.iter().chain(&q.surname_parts).collect();
    let r_words: BTreeSet<&String> = r.surnames.iter().chain(&r.surname_parts).collect();
    if q_words.iter().any(|w| r_words.contains(w)) {
        return Level::Part;
    }
    let mut best = Level::Different;
    for s in &q.surnames {
        for t in &r.surnames {
            match name_pair(s, t) {
                Some(Level::Fuzzy) => return Level::Fuzzy,
                Some(level) => best = level,
                None if best == Level::Different && strsim::osa_distance(s, t) <= 1 => {
                    best = Level::Close;
                }
                None => {}
            }
        }
    }
    best
}

/// The first name of one side against the surname of the other and vice versa: names
/// given in the wrong order. Returns both levels when they are better than different.
pub(crate) fn swapped_names(q: &Person, r: &Person) -> Option<(Level, Level)> {
    if q.given.is_empty() || r.given.is_empty() {
        return None;
    }
    let (qf, rf) = (q.given.join(" "), r.given.join(" "));
    let first = r.surnames.iter().find_map(|s| name_pair(&qf, s))?;
    let second = q.surnames.iter().find_map(|s| name_pair(s, &rf))?;
    Some((first, second))
}

/// Date of birth: exact, day and month swapped, one digit different, or different.
pub(crate) fn date_of_birth(q: &Person, r: &Person) -> Level {
    dates_of_birth(q.date_of_birth, r.date_of_birth)
}

/// [`date_of_birth`] on a record not yet normalised: most candidates a surname key
/// brings differ in the date, and this rules them out without normalising the rest.
pub(crate) fn date_of_birth_of(q: &Person, r: &MatchingDataset) -> Level {
    dates_of_birth(
        q.date_of_birth,
        r.date_of_birth.as_deref().and_then(parse_date_of_birth),
    )
}

fn dates_of_birth(a: Option<NaiveDate>, b: Option<NaiveDate>) -> Level {
    let (Some(a), Some(b)) = (a, b) else {
        return Level::Missing;
    };
    if a == b {
        return Level::Exact;
    }
    if a.year() == b.year() && a.day() == b.month() && a.month() == b.day() {
        return Level::SwappedDayMonth;
    }
    // One slipped digit in the day, the month or the last digit of the year. A slip in
    // the century or decade is not forgiven: a father and son born on the same day and
    // month 10, 20 or 30 years apart differ in exactly that digit.
    let (x, y) = (
        a.format("%Y%m%d").to_string(),
        b.format("%Y%m%d").to_string(),
    );
    let differing: Vec<usize> = x
        .bytes()
        .zip(y.bytes())
        .enumerate()
        .filter_map(|(i, (c, d))| (c != d).then_some(i))
        .collect();
    if let [position] = differing[..] {
        if position >= 3 {
            return Level::OneDigit;
        }
    }
    Level::Different
}

/// Address: any current or previous address of one side against any of the other's.
pub(crate) fn address(q: &Person, r: &Person) -> Level {
    if q.places.is_empty() || r.places.is_empty() {
        return Level::Missing;
    }
    let mut best = Level::Different;
    for a in &q.places {
        for b in &r.places {
            let level = if a.postcode == b.postcode {
                match (&a.house, &b.house) {
                    (Some(x), Some(y)) if x == y => return Level::PostcodeAndHouse,
                    _ => Level::Postcode,
                }
            } else if a.district.is_some() && a.district == b.district {
                Level::District
            } else {
                Level::Different
            };
            if address_rank(level) > address_rank(best) {
                best = level;
            }
        }
    }
    best
}

fn address_rank(level: Level) -> u8 {
    match level {
        Level::PostcodeAndHouse => 3,
        Level::Postcode => 2,
        Level::District => 1,
        _ => 0,
    }
}

/// Gender, compared only when both sides state male or female.
pub(crate) fn gender_level(q: &Person, r: &Person) -> Level {
    match (q.gender, r.gender) {
        (Some(a), Some(b)) if a == b => Level::Agree,
        (Some(_), Some(_)) => Level::Disagree,
        _ => Level::Missing,
    }
}
