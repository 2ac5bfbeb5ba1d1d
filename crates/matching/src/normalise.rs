//! Normalisation of names, postcodes, dates and cycle-3 attributes.
//!
//! Two spellings of the same fact must compare equal (case, accents, spacing, hyphens),
//! while anything that cannot be read with confidence (an impossible date, a malformed
//! NINO) must compare equal to nothing.

use chrono::NaiveDate;
use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

use crate::MatchingError;

/// Double Metaphone codes (primary, alternate) of a normalised name, or `None` when the
/// name is not plain ASCII letters and spaces: the algorithm is defined for Latin script
/// only (and the crate panics on other text), so other scripts simply get no phonetic
/// evidence.
pub(crate) fn phonetic_codes(name: &str) -> Option<(String, String)> {
    let letters: String = name.chars().filter(|c| *c != ' ').collect();
    if letters.is_empty() || !letters.bytes().all(|b| b.is_ascii_alphabetic()) {
        return None;
    }
    let result = rphonetic::DoubleMetaphone::default().double_metaphone(&letters);
    let primary = result.primary();
    (!primary.is_empty()).then(|| (primary, result.alternate()))
}

/// Double Metaphone primary codes of every surname and of each part of a double-barrelled
/// one (`Smith-Jones` gives codes for `smith jones`, `smith` and `jones`), for blocking.
pub(crate) fn surname_codes<'a>(
    surnames: impl IntoIterator<Item = &'a String>,
) -> std::collections::BTreeSet<String> {
    let mut codes = std::collections::BTreeSet::new();
    for surname in surnames {
        let name = normalise_name(surname);
        let parts = name.split(' ').filter(|p| !p.is_empty());
        for part in std::iter::once(name.as_str()).chain(parts) {
            // Names outside Latin script are keyed by their normalised spelling instead.
            let code = phonetic_codes(part)
                .map_or_else(|| format!("={}", part.replace(' ', "")), |(p, _)| p);
            if code != "=" {
                codes.insert(code);
            }
        }
    }
    codes
}

/// Blocking code of one normalised name word: its Double Metaphone primary code, or for
/// names outside Latin script the name itself marked with `=`.
pub(crate) fn name_code(word: &str) -> String {
    phonetic_codes(word).map_or_else(|| format!("={word}"), |(primary, _)| primary)
}

/// Leading honorifics removed from names: they are not part of who someone is, and IdPs
/// and departments disagree on whether to include them.
const TITLES: &[&str] = &[
    "mr",
    "mrs",
    "ms",
    "miss",
    "mx",
    "master",
    "dr",
    "sir",
    "dame",
    "prof",
    "professor",
    "rev",
    "revd",
    "reverend",
];

/// Characters treated as apostrophes: removed without a trace, so `O'Brien` == `OBrien`.
fn is_apostrophe(c: char) -> bool {
    matches!(
        c,
        '\'' | '`' | '\u{00B4}' | '\u{2018}' | '\u{2019}' | '\u{02BB}' | '\u{02BC}' | '\u{2032}'
    )
}

/// Letters that Unicode decomposition leaves alone but people routinely write in ASCII.
fn transliterate(c: char) -> Option<&'static str> {
    Some(match c {
        'ß' => "ss",
        'æ' => "ae",
        'œ' => "oe",
        'ø' => "o",
        'ł' => "l",
        'đ' => "d",
        'ð' => "d",
        'þ' => "th",
        'ı' => "i",
        _ => return None,
    })
}

/// Normalises a personal name (first name, one middle name or one surname) for comparison.
///
/// Rules, in order: apostrophes are removed (`O'Brien` -> `obrien`, so it equals `OBrien`
/// but not `O Brien`); Unicode NFKD with combining marks dropped (`é` -> `e`); lower case
/// (`ß` -> `ss`, `æ` -> `ae`, `ø` -> `o`, `ł` -> `l`); every other non-alphanumeric character
/// (hyphens, dots, commas, whitespace, ...) separates words (`Smith-Jones` == `smith jones`);
/// words are joined by single spaces; leading titles (`mr`, `mrs`, `dr`, `sir`, ...) are
/// dropped while at least one other word remains. Returns `""` when nothing is left.
pub fn normalise_name(s: &str) -> String {
    let mut folded = String::with_capacity(s.len());
    for c in s
        .chars()
        .filter(|c| !is_apostrophe(*c))
        .nfkd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .filter(|c| !is_combining_mark(*c))
    {
        match transliterate(c) {
            Some(t) => folded.push_str(t),
            None if c.is_alphanumeric() => folded.push(c),
            None => folded.push(' '),
        }
    }
    let mut words: Vec<&str> = folded.split_whitespace().collect();
    while words.len() > 1 && TITLES.contains(&words[0]) {
        words.remove(0);
    }
    words.join(" ")
}

/// Shape of a compact UK postcode's outward code, letters as `A`, digits as `9`.
const UK_OUTWARD_SHAPES: &[&str] = &["A9", "A99", "AA9", "AA99", "A9A", "AA9A"];

/// Splits a compact, upper-case candidate into (outward, inward) when it is UK format.
fn split_uk_postcode(compact: &str) -> Option<(&str, &str)> {
    if compact == "GIR0AA" {
        return Some(("GIR", "0AA"));
    }
    if !compact.is_ascii() || !(5..=7).contains(&compact.len()) {
        return None;
    }
    let (outward, inward) = compact.split_at(compact.len() - 3);
    let shape: String = outward
        .chars()
        .map(|c| match c {
            'A'..='Z' => 'A',
            '0'..='9' => '9',
            _ => '?',
        })
        .collect();
    let inward_ok = {
        let b = inward.as_bytes();
        b.len() == 3
            && b[0].is_ascii_digit()
            && b[1].is_ascii_uppercase()
            && b[2].is_ascii_uppercase()
    };
    (inward_ok && UK_OUTWARD_SHAPES.contains(&shape.as_str())).then_some((outward, inward))
}

/// Normalises a postcode: UK format in any case or spacing (`" ls14ab "`) becomes the
/// canonical `LS1 4AB`; anything else (international addresses exist) is kept as given,
/// only trimmed, because we cannot know its canonical form.
pub fn normalise_postcode(s: &str) -> String {
    let trimmed = s.trim();
    let compact: String = trimmed
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    match split_uk_postcode(&compact) {
        Some((outward, inward)) => format!("{outward} {inward}"),
        None => trimmed.to_owned(),
    }
}

/// Comparison key for a postcode: the normalised form without whitespace, upper case, so
/// non-UK postcodes also compare independently of case and spacing. `None` when blank.
pub(crate) fn postcode_key(s: &str) -> Option<String> {
    compact_postcode(&normalise_postcode(s))
}

/// [`postcode_key`] of a postcode already passed through [`normalise_postcode`].
pub(crate) fn compact_postcode(normalised: &str) -> Option<String> {
    let key: String = normalised
        .chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_uppercase)
        .collect();
    (!key.is_empty()).then_some(key)
}

/// Parses a date of birth written strictly as `YYYY-MM-DD` (surrounding whitespace
/// ignored). Impossible calendar dates (`1980-02-30`) and any other format give `None`,
/// so they can never match anything.
pub fn parse_date_of_birth(s: &str) -> Option<NaiveDate> {
    let t = s.trim();
    let b = t.as_bytes();
    let shape_ok = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            _ => c.is_ascii_digit(),
        });
    if !shape_ok {
        return None;
    }
    let year: i32 = t.get(0..4)?.parse().ok()?;
    let month: u32 = t.get(5..7)?.parse().ok()?;
    let day: u32 = t.get(8..10)?.parse().ok()?;
    NaiveDate::from_ymd_opt(year, month, day)
}

/// Normalised `YYYY-MM-DD` form of a date of birth, or `None` when missing or invalid.
pub fn normalise_date_of_birth(s: &str) -> Option<String> {
    parse_date_of_birth(s).map(|d| d.format("%Y-%m-%d").to_string())
}

/// Normalises an attribute type name: trimmed and case folded, so `" NINO "` == `nino`.
pub fn normalise_attribute_type(kind: &str) -> String {
    kind.trim().to_lowercase()
}

/// Attribute type of a UK National Insurance number.
pub const ATTRIBUTE_NINO: &str = "nino";
/// Attribute type of a UK (DVLA) driving licence number.
pub const ATTRIBUTE_DRIVING_LICENCE: &str = "driving_licence";

/// Removes whitespace and hyphens and upper-cases: how people write the same identifier.
fn compact_upper(value: &str) -> String {
    value
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// NINO prefixes HMRC never allocates (besides the letter rules below).
const NINO_UNALLOCATED_PREFIXES: &[&str] = &["BG", "GB", "KN", "NK", "NT", "TN", "ZZ"];

/// `QQ` is HMRC's specimen prefix (as in `QQ123456C`): never issued to a real person, so
/// accepting it cannot cause a false match, and it keeps examples and test data usable.
const NINO_SPECIMEN_PREFIX: &str = "QQ";

fn valid_nino(n: &str) -> bool {
    let b = n.as_bytes();
    if b.len() != 9
        || !b[0].is_ascii_uppercase()
        || !b[1].is_ascii_uppercase()
        || !b[2..8].iter().all(u8::is_ascii_digit)
        || !matches!(b[8], b'A'..=b'D')
    {
        return false;
    }
    let prefix = &n[0..2];
    if prefix == NINO_SPECIMEN_PREFIX {
        return true;
    }
    !b"DFIQUV".contains(&b[0])
        && !b"DFIQUVO".contains(&b[1])
        && !NINO_UNALLOCATED_PREFIXES.contains(&prefix)
}

/// Normalises a cycle-3 attribute value for comparison.
///
/// * `nino`: whitespace and hyphens removed, upper case; must be two prefix letters, six
///   digits and a suffix `A`-`D`, with HMRC's prefix rules (first letter not D F I Q U V,
///   second not D F I O Q U V, not BG GB KN NK NT TN ZZ; specimen `QQ` allowed).
/// * `driving_licence`: whitespace and hyphens removed, upper case; exactly 16 ASCII
///   letters or digits (the UK DVLA licence number).
/// * any other type: trimmed and case folded.
///
/// A blank value is an error for every type: blank must never equal blank.
pub fn normalise_attribute(kind: &str, value: &str) -> Result<String, MatchingError> {
    let kind = normalise_attribute_type(kind);
    if kind.is_empty() {
        return Err(MatchingError::EmptyAttributeType);
    }
    if value.trim().is_empty() {
        return Err(MatchingError::EmptyValue { kind });
    }
    match kind.as_str() {
        ATTRIBUTE_NINO => {
            let n = compact_upper(value);
            if valid_nino(&n) {
                Ok(n)
            } else {
                Err(MatchingError::InvalidFormat { kind })
            }
        }
        ATTRIBUTE_DRIVING_LICENCE => {
            let n = compact_upper(value);
            if n.len() == 16 && n.bytes().all(|c| c.is_ascii_alphanumeric()) {
                Ok(n)
            } else {
                Err(MatchingError::InvalidFormat { kind })
            }
        }
        _ => Ok(value.trim().to_lowercase()),
    }
}
