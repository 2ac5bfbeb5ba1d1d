//! Field comparisons: each turns a pair of values into a graded comparison level (exact,
//! nickname, one typo, two typos, ...) whose Fellegi-Sunter weight comes from the
//! [`crate::Model`].
//!
//! Everything here works on [`Person`], the normalised view of a dataset, so a record is
//! normalised once per comparison and a query once per decision.

use std::collections::BTreeSet;

use chrono::{Datelike, NaiveDate};

use crate::model::Level;
use crate::normalise::{compact_postcode, normalise_name, parse_date_of_birth, phonetic_codes};
use crate::{nicknames, MatchingDataset};

/// Surname particles that do not identify a family on their own (`de la Cruz`).
const PARTICLES: &[&str] = &[
    "de", "del", "della", "der", "di", "da", "du", "la", "le", "van", "von", "den", "ter", "st",
    "mac", "bin", "bint", "ibn", "al", "el",
];

/// One address as compared: postcode key, outward code (UK only), house number and the
/// words of the street and town.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Place {
    postcode: Option<String>,
    district: Option<String>,
    house: Option<String>,
    words: BTreeSet<String>,
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
    /// The eight digits of a date written `YYYY-MM-DD`, even when it is not a real date
    /// (`1980-02-31`): a slip in a digit is still evidence.
    dob_digits: Option<[u8; 8]>,
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

/// Street-type abbreviations written either way by departments and IdPs.
fn street_word(w: &str) -> &str {
    match w {
        "st" | "str" => "street",
        "rd" => "road",
        "ave" | "av" => "avenue",
        "ln" => "lane",
        "dr" | "drv" => "drive",
        "cres" | "cr" => "crescent",
        "ct" | "crt" => "court",
        "pl" => "place",
        "sq" => "square",
        "gdns" => "gardens",
        "tce" | "terr" => "terrace",
        "cl" => "close",
        "gr" | "grv" => "grove",
        "pk" => "park",
        "hwy" => "highway",
        "pde" => "parade",
        "cct" => "circuit",
        "mt" => "mount",
        _ => w,
    }
}

/// The words of the address lines other than numbers (house and flat numbers are compared
/// on their own), with street types spelt out.
fn address_words(lines: &[String]) -> BTreeSet<String> {
    lines
        .iter()
        .flat_map(|l| words(l))
        .filter(|w| !w.starts_with(|c: char| c.is_ascii_digit()) && w.len() > 1)
        .map(|w| street_word(&w).to_owned())
        .collect()
}

fn gender(s: &str) -> Option<char> {
    match s.trim().to_ascii_lowercase().as_str() {
        "m" | "male" | "man" => Some('m'),
        "f" | "female" | "woman" => Some('f'),
        _ => None,
    }
}

/// The digits of a `YYYY-MM-DD`-shaped string, whether or not it is a real date.
fn dob_digits(s: &str) -> Option<[u8; 8]> {
    let b = s.trim().as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let mut digits = [0u8; 8];
    for (slot, c) in digits.iter_mut().zip(b.iter().filter(|c| **c != b'-')) {
        if !c.is_ascii_digit() {
            return None;
        }
        *slot = *c;
    }
    Some(digits)
}

/// How many of each multi-valued field (surnames, addresses, words of given and middle
/// names) take part in comparisons: a person has a handful, and comparing every one of
/// hundreds with every one of a candidate's would let one query slow the engine down.
const MAX_VALUES: usize = 8;

impl Person {
    pub(crate) fn new(d: &MatchingDataset) -> Self {
        let mut given = d.first_name.as_deref().map(words).unwrap_or_default();
        given.truncate(MAX_VALUES);
        let middle = d
            .middle_names
            .iter()
            .take(MAX_VALUES)
            .flat_map(|m| words(m))
            .take(MAX_VALUES)
            .collect();
        let mut surnames = BTreeSet::new();
        let mut surname_parts = BTreeSet::new();
        for s in d.surnames.iter().take(MAX_VALUES) {
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
            .take(MAX_VALUES)
            .filter_map(|a| {
                let normalised = a.postcode.as_deref().map(crate::normalise_postcode);
                let postcode = normalised.as_deref().and_then(compact_postcode);
                let district = normalised
                    .as_deref()
                    .filter(|_| postcode.is_some())
                    .and_then(|n| n.split_once(' '))
                    .map(|(outward, _)| outward.to_owned());
                let place = Place {
                    postcode,
                    district,
                    house: house_number(&a.lines),
                    words: address_words(&a.lines),
                };
                (place.postcode.is_some() || !place.words.is_empty()).then_some(place)
            })
            .collect();
        let dob = d.date_of_birth.as_deref();
        Person {
            given,
            middle,
            surnames,
            surname_parts,
            date_of_birth: dob.and_then(parse_date_of_birth),
            dob_digits: dob.and_then(dob_digits),
            places,
            gender: d.gender.as_deref().and_then(gender),
        }
    }

    /// The first given name, when there is one.
    pub(crate) fn first(&self) -> Option<&str> {
        self.given.first().map(String::as_str)
    }

    /// Normalised surnames (current and previous).
    pub(crate) fn surnames(&self) -> impl Iterator<Item = &str> {
        self.surnames.iter().map(String::as_str)
    }

    /// The current (first) address as postcode and house number, when it has both.
    pub(crate) fn home(&self) -> Option<String> {
        let place = self.places.first()?;
        Some(format!(
            "{} {}",
            place.postcode.as_deref()?,
            place.house.as_deref()?
        ))
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

/// Typo-level similarity of two different names: `Fuzzy` for one edit (insert, delete,
/// substitute or transpose) in names of 4+ letters, `FuzzyFar` for two edits (5+ letters),
/// one edit in a short name, or Jaro-Winkler >= 0.85. Two names one edit apart are also
/// how relatives' names can look (`Joan`, `Joanne` are two edits: `FuzzyFar`).
fn typo_level(a: &str, b: &str) -> Option<Level> {
    let shortest = a.chars().count().min(b.chars().count());
    let edits = strsim::osa_distance(a, b);
    let jw = strsim::jaro_winkler(a, b);
    if shortest >= 4 && edits <= 1 {
        Some(Level::Fuzzy)
    } else if (shortest >= 5 && edits <= 2) || (shortest >= 2 && edits <= 1) || jw >= 0.85 {
        Some(Level::FuzzyFar)
    } else {
        None
    }
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
        return Some(Level::Exact);
    }
    let typo = typo_level(a, b);
    if typo == Some(Level::Fuzzy) {
        return typo;
    }
    if sounds_alike(a, b) {
        return Some(Level::Phonetic);
    }
    typo
}

/// Rank of a name level, best first, to keep the best of several comparisons.
fn name_rank(level: Level) -> u8 {
    match level {
        Level::Exact => 7,
        Level::Nickname => 6,
        Level::Part => 5,
        Level::Fuzzy => 4,
        Level::Phonetic => 3,
        Level::FuzzyFar => 2,
        Level::OtherGivenName => 1,
        Level::Initial => 1,
        _ => 0,
    }
}

/// One name is the other cut short (`Seb` for `Sebastian`, `Alex` for `Alexandra`): the
/// commonest way of making a nickname, too regular to list every case in the table.
/// The cut must take off at least three letters: `Joan` and `Joanne` are two names.
fn shortened(a: &str, b: &str) -> bool {
    let (short, long) = if a.len() < b.len() { (a, b) } else { (b, a) };
    short.chars().count() >= 3
        && long.chars().count() >= short.chars().count() + 3
        && long.starts_with(short)
}

/// Whether two given names are the same name for matching: equal after normalisation, on
/// one line of the nickname table, or one cut short from the other. Public so that test
/// data generators can avoid giving such names to two members of one household.
pub fn given_names_equivalent(a: &str, b: &str) -> bool {
    let (a, b) = (normalise_name(a), normalise_name(b));
    a == b || nicknames::equivalent(&a, &b) || shortened(&a, &b)
}

/// First name: exact, nickname, one typo, sound-alike, two typos, another of the person's
/// given names, initial only, or different.
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
    if nicknames::equivalent(qf, rf) || shortened(qf, rf) {
        return Level::Nickname;
    }
    if let Some(level) = name_pair(qf, rf) {
        return level;
    }
    let q_all = q.given.iter().chain(&q.middle);
    let r_all: BTreeSet<&String> = r.given.iter().chain(&r.middle).collect();
    if q_all.filter(|w| w.len() > 1).any(|w| r_all.contains(w)) {
        return Level::OtherGivenName;
    }
    Level::Different
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
            if let Some(level) = name_pair(&joined(s), &joined(t)) {
                if name_rank(level) > name_rank(best) {
                    best = level;
                }
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

/// Date of birth: exact, day and month swapped, two adjacent digits transposed, one digit
/// different (the decade's digit on its own level), the year off by one, or different.
pub(crate) fn date_of_birth(q: &Person, r: &Person) -> Level {
    dates_of_birth(q, r.date_of_birth, r.dob_digits)
}

fn dates_of_birth(q: &Person, date: Option<NaiveDate>, digits: Option<[u8; 8]>) -> Level {
    if let (Some(a), Some(b)) = (q.date_of_birth, date) {
        if a == b {
            return Level::Exact;
        }
        if a.year() == b.year() && a.day() == b.month() && a.month() == b.day() {
            return Level::SwappedDayMonth;
        }
        if a.month() == b.month() && a.day() == b.day() && (a.year() - b.year()).abs() == 1 {
            return Level::YearOffByOne;
        }
    }
    // Digit slips are read on the written digits, so a slip that made the date impossible
    // (`1980-02-31` for `1980-02-13`) is still recognised; an exact match needs real dates.
    let (Some(x), Some(y)) = (q.dob_digits, digits) else {
        return Level::Missing;
    };
    if x == y {
        // Same digits but not a real date on one side: no evidence either way.
        return Level::Missing;
    }
    let differing: Vec<usize> = (0..8).filter(|&i| x[i] != y[i]).collect();
    match differing[..] {
        // A slip in the century is not forgiven (1880, 1980); one in the decade has its
        // own level: a typo, or a parent and child born on the same day (the household
        // rule rules the latter out).
        [i] if i <= 1 => Level::Different,
        [2] => Level::OneDigitDecade,
        [_] => Level::OneDigit,
        [i, j] if j == i + 1 && i >= 2 && x[i] == y[j] && x[j] == y[i] => Level::Transposed,
        _ => Level::Different,
    }
}

/// Whether two postcodes are one edit (or one transposition) apart and of a plausible
/// length for the slip to be a typo rather than another place.
fn near_postcode(a: &str, b: &str) -> bool {
    a.len() >= 4 && b.len() >= 4 && strsim::osa_distance(a, b) == 1
}

/// Whether the street and town of two addresses agree: at least two words in common
/// (exactly or with one typo in a word of five or more letters), covering most of the
/// shorter side.
fn streets_agree(a: &BTreeSet<String>, b: &BTreeSet<String>) -> bool {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    if short.is_empty() {
        return false;
    }
    let shared = short
        .iter()
        .filter(|w| {
            long.contains(*w)
                || (w.len() >= 5
                    && long
                        .iter()
                        .any(|v| v.len() >= 5 && strsim::osa_distance(w, v) <= 1))
        })
        .count();
    shared >= 2 && shared * 5 >= short.len() * 4
}

/// Address level of one pair of addresses.
fn place_pair(a: &Place, b: &Place) -> Level {
    let house = match (&a.house, &b.house) {
        (Some(x), Some(y)) => Some(x == y),
        _ => None,
    };
    let street = streets_agree(&a.words, &b.words);
    match (&a.postcode, &b.postcode) {
        (Some(x), Some(y)) if x == y => match (house, street) {
            (Some(true), _) => Level::PostcodeAndHouse,
            (_, true) => Level::PostcodeAndStreet,
            _ => Level::Postcode,
        },
        (Some(x), Some(y)) if near_postcode(x, y) && street && house != Some(false) => {
            Level::NearPostcodeAndStreet
        }
        _ if street && house == Some(true) => Level::StreetAndHouse,
        (Some(x), Some(y)) if near_postcode(x, y) => Level::NearPostcode,
        _ if a.district.is_some() && a.district == b.district => Level::District,
        _ => Level::Different,
    }
}

fn address_rank(level: Level) -> u8 {
    match level {
        Level::PostcodeAndHouse => 8,
        Level::PostcodeAndStreet => 7,
        Level::NearPostcodeAndStreet => 6,
        Level::Postcode => 5,
        Level::StreetAndHouse => 4,
        Level::NearPostcode => 3,
        Level::District => 2,
        Level::Different => 1,
        _ => 0,
    }
}

/// Address: any current or previous address of one side against any of the other's.
pub(crate) fn address(q: &Person, r: &Person) -> Level {
    let mut best = Level::Missing;
    for a in &q.places {
        for b in &r.places {
            let level = place_pair(a, b);
            if address_rank(level) > address_rank(best) {
                best = level;
            }
        }
    }
    best
}

/// Whether an address level places the two at one address (a household).
pub(crate) fn same_address(level: Level) -> bool {
    matches!(
        level,
        Level::PostcodeAndHouse
            | Level::PostcodeAndStreet
            | Level::NearPostcodeAndStreet
            | Level::StreetAndHouse
    )
}

/// Gender, compared only when both sides state male or female.
pub(crate) fn gender_level(q: &Person, r: &Person) -> Level {
    match (q.gender, r.gender) {
        (Some(a), Some(b)) if a == b => Level::Agree,
        (Some(_), Some(_)) => Level::Disagree,
        _ => Level::Missing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dob(q: &str, r: &str) -> Level {
        let p = |s: &str| {
            Person::new(&MatchingDataset {
                date_of_birth: Some(s.to_owned()),
                ..MatchingDataset::default()
            })
        };
        date_of_birth(&p(q), &p(r))
    }

    #[test]
    fn date_of_birth_levels() {
        assert_eq!(dob("1980-04-12", "1980-04-12"), Level::Exact);
        assert_eq!(dob("1980-04-12", "1980-12-04"), Level::SwappedDayMonth);
        assert_eq!(dob("1980-04-12", "1980-04-21"), Level::Transposed);
        assert_eq!(dob("1980-02-13", "1980-02-31"), Level::Transposed);
        assert_eq!(dob("1980-04-12", "1980-04-13"), Level::OneDigit);
        assert_eq!(dob("1980-04-12", "1980-05-12"), Level::OneDigit);
        assert_eq!(dob("1980-04-12", "1981-04-12"), Level::YearOffByOne);
        assert_eq!(dob("1980-04-12", "1979-04-12"), Level::YearOffByOne);
        assert_eq!(dob("1980-04-12", "1990-04-12"), Level::OneDigitDecade);
        assert_eq!(dob("1980-04-12", "2080-04-12"), Level::Different);
        assert_eq!(dob("1980-04-12", "1962-09-30"), Level::Different);
        assert_eq!(dob("1980-04-12", "12/04/1980"), Level::Missing);
        assert_eq!(dob("1980-02-31", "1980-02-31"), Level::Missing);
    }

    #[test]
    fn street_words_spell_out_abbreviations_and_ignore_numbers() {
        let a = address_words(&["12 High St".to_owned(), "Leeds".to_owned()]);
        let b = address_words(&["Flat 2, 12 High Street".to_owned(), "LEEDS".to_owned()]);
        assert!(streets_agree(&a, &b));
        let c = address_words(&["12 High Street".to_owned(), "York".to_owned()]);
        assert!(!streets_agree(&a, &c));
    }
}
