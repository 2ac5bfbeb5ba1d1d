//! The error model: small pure functions, each making one kind of mistake in one value.
//!
//! Real identity-provider data differs from a department's record in ways a clean corpus
//! never shows, so the matching engine's recall on a clean corpus says little. Each function
//! here makes one documented kind of error (keyboard typos, OCR misreadings and phonetic
//! rewrites after FEBRL and GeCo, Christen et al.; copied, swapped and wrong digits after
//! pseudopeople), so a query set can carry exactly that error and recall can be measured per
//! kind. They take the value as the IdP would send it (any case, any postcode spacing) and
//! return it changed, or `None` when the value admits no such error (a date with no valid
//! transposition): the caller then picks another person.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::names::{DISTRICTS, STREET_NAMES};
use super::population::{below, chance, days_in_month, pick, Dob};
use super::queries::typo;

/// Earliest and latest year a mistyped date of birth may show and still be believed: a
/// digit error giving 2980 is caught by any form, one giving 1989 for 1980 is not.
const PLAUSIBLE_YEARS: std::ops::RangeInclusive<u16> = 1900..=2030;

// ---------------------------------------------------------------------------------------
// Names.

/// One or two keyboard edits (neighbouring key, transposition, deletion, doubled letter):
/// FEBRL's insert/delete/substitute/transpose modifications, at most two per field. The
/// second edit happens in a third of cases (our choice; FEBRL leaves it to configuration).
pub(super) fn name_typo(rng: &mut ChaCha8Rng, name: &str) -> String {
    let once = typo(rng, name);
    if chance(rng, 33) {
        let twice = typo(rng, &once);
        // A second edit undoing or overlapping the first is not two edits the engine sees.
        if edits(&twice.to_lowercase(), &name.to_lowercase()) == 2 {
            return twice;
        }
    }
    once
}

/// Optimal-string-alignment distance (the engine's own typo metric, case-insensitive
/// callers lower-case first): how many edits apart two names are.
fn edits(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

/// What an OCR engine (or a human reading a scanned form) confuses, after GeCo's OCR table:
/// `(printed, read as)`, lower case.
const OCR_CONFUSIONS: &[(&str, &str)] = &[
    ("m", "rn"),
    ("rn", "m"),
    ("nn", "m"),
    ("cl", "d"),
    ("d", "cl"),
    ("l", "1"),
    ("i", "l"),
    ("l", "i"),
    ("o", "0"),
    ("s", "5"),
    ("g", "9"),
    ("b", "6"),
    ("h", "b"),
    ("u", "v"),
    ("w", "vv"),
    ("e", "c"),
    ("n", "ri"),
    ("a", "o"),
];

/// Spellings that sound alike, after FEBRL's and GeCo's phonetic rules: `(written, heard
/// as)`, lower case.
const PHONETIC_REWRITES: &[(&str, &str)] = &[
    ("ph", "f"),
    ("f", "ph"),
    ("ck", "k"),
    ("c", "k"),
    ("k", "c"),
    ("ie", "y"),
    ("y", "ie"),
    ("ey", "y"),
    ("ee", "ea"),
    ("ea", "ee"),
    ("ou", "ow"),
    ("ow", "ou"),
    ("th", "t"),
    ("z", "s"),
    ("s", "z"),
    ("ei", "ie"),
    ("ai", "ay"),
    ("ay", "ai"),
    ("wr", "r"),
    ("kn", "n"),
    ("mb", "m"),
    ("x", "ks"),
    ("qu", "kw"),
    ("tch", "ch"),
    ("dg", "g"),
    ("mac", "mc"),
    ("mc", "mac"),
    ("ll", "l"),
    ("tt", "t"),
    ("nn", "n"),
    ("i", "y"),
];

/// One OCR misreading (`m` read as `rn`, `cl` as `d`, `l` as `1`, ...), or `None` when the
/// name has none of the confusable shapes.
pub(super) fn name_ocr(rng: &mut ChaCha8Rng, name: &str) -> Option<String> {
    rewrite_one(rng, name, OCR_CONFUSIONS)
}

/// One phonetic rewrite (`ph` as `f`, `c` as `k`, `ie` as `y`, ...), or `None` when no rule
/// applies to the name.
pub(super) fn name_phonetic(rng: &mut ChaCha8Rng, name: &str) -> Option<String> {
    rewrite_one(rng, name, PHONETIC_REWRITES)
}

/// How many places in `name` an OCR misreading could happen (pseudopeople's eligible
/// tokens).
pub(super) fn ocr_places(name: &str) -> usize {
    places(name, OCR_CONFUSIONS).len()
}

/// How many places in `name` a phonetic rewrite could happen.
pub(super) fn phonetic_places(name: &str) -> usize {
    places(name, PHONETIC_REWRITES).len()
}

/// Every `(byte offset, pattern, replacement)` where a rule applies to the lower-case name.
fn places<'r>(name: &str, rules: &'r [(&'r str, &'r str)]) -> Vec<(usize, &'r str, &'r str)> {
    if !name.is_ascii() {
        return Vec::new();
    }
    let lower = name.to_ascii_lowercase();
    rules
        .iter()
        .flat_map(|(from, to)| {
            lower
                .match_indices(from)
                .map(move |(at, _)| (at, *from, *to))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Replaces one occurrence, chosen uniformly among all places any rule applies, keeping the
/// name's case (an upper-case name gets an upper-case replacement; a capital stays one).
fn rewrite_one(rng: &mut ChaCha8Rng, name: &str, rules: &[(&str, &str)]) -> Option<String> {
    let places = places(name, rules);
    if places.is_empty() {
        return None;
    }
    let (at, from, to) = *pick(rng, &places);
    let original = &name[at..at + from.len()];
    let shouting = name.len() > 1 && !name.chars().any(|c| c.is_ascii_lowercase());
    let replacement = if shouting {
        to.to_ascii_uppercase()
    } else if original.starts_with(|c: char| c.is_ascii_uppercase()) {
        let mut chars = to.chars();
        chars.next().map_or_else(String::new, |first| {
            first.to_ascii_uppercase().to_string() + chars.as_str()
        })
    } else {
        to.to_owned()
    };
    Some(format!(
        "{}{replacement}{}",
        &name[..at],
        &name[at + from.len()..]
    ))
}

// ---------------------------------------------------------------------------------------
// Dates of birth.

/// Whether `y-m-d` is a real calendar date in a believable birth year.
fn plausible(year: u16, month: u8, day: u8) -> bool {
    PLAUSIBLE_YEARS.contains(&year)
        && (1..=12).contains(&month)
        && (1..=days_in_month(year, month)).contains(&day)
}

/// The eight digits of `YYYYMMDD`.
fn digits(dob: Dob) -> [u8; 8] {
    let s = format!("{:04}{:02}{:02}", dob.year, dob.month, dob.day);
    let mut out = [0; 8];
    for (o, b) in out.iter_mut().zip(s.bytes()) {
        *o = b - b'0';
    }
    out
}

/// The date eight digits spell, if it is a plausible one.
fn from_digits(d: [u8; 8]) -> Option<Dob> {
    let n = |range: std::ops::Range<usize>| {
        d[range]
            .iter()
            .fold(0u16, |acc, &x| acc * 10 + u16::from(x))
    };
    let (year, month, day) = (n(0..4), n(4..6) as u8, n(6..8) as u8);
    plausible(year, month, day).then_some(Dob { year, month, day })
}

/// One digit written wrong anywhere in the date (pseudopeople's "write the wrong digits",
/// one digit), keeping a real date: chosen uniformly among every such date.
pub(super) fn dob_one_digit(rng: &mut ChaCha8Rng, dob: Dob) -> Option<Dob> {
    let original = digits(dob);
    let options: Vec<Dob> = (0..8)
        .flat_map(|at| (0..10u8).map(move |digit| (at, digit)))
        .filter(|&(at, digit)| original[at] != digit)
        .filter_map(|(at, digit)| {
            let mut d = original;
            d[at] = digit;
            from_digits(d)
        })
        .collect();
    (!options.is_empty()).then(|| *pick(rng, &options))
}

/// Two adjacent digits of the year, the month or the day transposed (1983 as 1938, 12 as
/// 21), keeping a real date; `None` when no transposition gives one (1911-11-11).
pub(super) fn dob_transposed(rng: &mut ChaCha8Rng, dob: Dob) -> Option<Dob> {
    let options = transpositions(dob);
    (!options.is_empty()).then(|| *pick(rng, &options))
}

/// Every real date one adjacent transposition away from `dob`. Pairs lie inside one part:
/// across the separator the digits are not written side by side.
pub(super) fn transpositions(dob: Dob) -> Vec<Dob> {
    let original = digits(dob);
    [0usize, 1, 2, 4, 6]
        .iter()
        .filter(|&&at| original[at] != original[at + 1])
        .filter_map(|&at| {
            let mut d = original;
            d.swap(at, at + 1);
            from_digits(d)
        })
        .collect()
}

/// A strict `YYYY-MM-DD` date of birth, as the engine reads one; `None` for anything else.
pub(super) fn parse_iso(s: &str) -> Option<Dob> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let mut d = [0u8; 8];
    for (o, &c) in d
        .iter_mut()
        .zip(b[0..4].iter().chain(&b[5..7]).chain(&b[8..10]))
    {
        if !c.is_ascii_digit() {
            return None;
        }
        *o = c - b'0';
    }
    from_digits(d)
}

/// Each digit of the date replaced by another with probability `percent` (pseudopeople's
/// "write the wrong digits"); the result may be no date at all, as on a real form.
pub(super) fn wrong_digits(rng: &mut ChaCha8Rng, iso: &str, percent: u32) -> String {
    iso.chars()
        .map(|c| {
            if c.is_ascii_digit() && chance(rng, percent) {
                loop {
                    let r = (b'0' + rng.gen_range(0..10u8)) as char;
                    if r != c {
                        break r;
                    }
                }
            } else {
                c
            }
        })
        .collect()
}

/// The year one too high or too low (a misremembered or miscounted year; pseudopeople's
/// "misreport age" by one year), keeping a real date; `None` only for 29 February.
pub(super) fn dob_year_off_by_one(rng: &mut ChaCha8Rng, dob: Dob) -> Option<Dob> {
    let (first, second) = if chance(rng, 50) {
        (dob.year + 1, dob.year - 1)
    } else {
        (dob.year - 1, dob.year + 1)
    };
    [first, second]
        .into_iter()
        .find(|&year| plausible(year, dob.month, dob.day))
        .map(|year| Dob { year, ..dob })
}

/// A date of birth no calendar has: a day past the end of its month or a thirteenth month,
/// still `YYYY-MM-DD` shaped (a form that checks the shape only), or not a date at all (a
/// free-text field, another format). The engine must treat it as missing, never guess.
pub(super) fn dob_invalid(rng: &mut ChaCha8Rng, dob: Dob) -> String {
    match below(rng, 5) {
        0 | 1 => {
            let last = days_in_month(dob.year, dob.month);
            let day = rng.gen_range(last + 1..=if last == 31 { 32 } else { 31 });
            format!("{:04}-{:02}-{:02}", dob.year, dob.month, day)
        }
        2 => format!("{:04}-13-{:02}", dob.year, dob.day),
        3 => format!("{:02}/{:02}/{:04}", dob.day, dob.month, dob.year),
        _ => (*pick(rng, &["unknown", "0000-00-00", "n/a", "not known"])).to_owned(),
    }
}

// ---------------------------------------------------------------------------------------
// Postcodes and addresses.

/// One character of a postcode written wrong: a digit as another digit, a letter as
/// another letter (FEBRL's substitution; pseudopeople's wrong ZIP code digits). Spacing and
/// case are kept.
pub(super) fn postcode_digit(rng: &mut ChaCha8Rng, postcode: &str) -> String {
    let chars: Vec<char> = postcode.chars().collect();
    let places: Vec<usize> = (0..chars.len())
        .filter(|&i| chars[i].is_ascii_alphanumeric())
        .collect();
    if places.is_empty() {
        return postcode.to_owned();
    }
    let at = *pick(rng, &places);
    let c = chars[at];
    let replacement = loop {
        let r = if c.is_ascii_digit() {
            (b'0' + rng.gen_range(0..10u8)) as char
        } else {
            let letter = (b'A' + rng.gen_range(0..26u8)) as char;
            if c.is_ascii_lowercase() {
                letter.to_ascii_lowercase()
            } else {
                letter
            }
        };
        if r != c {
            break r;
        }
    };
    let mut out = chars;
    out[at] = replacement;
    out.into_iter().collect()
}

/// Two neighbouring characters of a postcode typed in the wrong order, as people type it
/// without the space (`LS14AB` as `LS41AB`); the space stays where it was. `None` when all
/// neighbours are equal.
pub(super) fn postcode_transposed(rng: &mut ChaCha8Rng, postcode: &str) -> Option<String> {
    let mut chars: Vec<char> = postcode.chars().collect();
    let places: Vec<usize> = (0..chars.len()).filter(|&i| chars[i] != ' ').collect();
    let pairs: Vec<(usize, usize)> = places
        .windows(2)
        .map(|w| (w[0], w[1]))
        .filter(|&(a, b)| !chars[a].eq_ignore_ascii_case(&chars[b]))
        .collect();
    if pairs.is_empty() {
        return None;
    }
    let (a, b) = *pick(rng, &pairs);
    chars.swap(a, b);
    Some(chars.into_iter().collect())
}

/// Another house number a person could write for theirs: a neighbour's (±1, ±2), the
/// digits transposed (12 as 21), or a digit doubled (12 as 112).
pub(super) fn other_house_number(rng: &mut ChaCha8Rng, house: u16) -> u16 {
    loop {
        let candidate = match below(rng, 3) {
            0 => {
                let step = *pick(rng, &[-2i32, -1, 1, 2]);
                (i32::from(house) + step).max(1) as u16
            }
            1 => house
                .to_string()
                .chars()
                .rev()
                .collect::<String>()
                .parse()
                .unwrap_or(house),
            _ => {
                let s = house.to_string();
                let at = below(rng, s.len());
                let doubled = format!("{}{}", &s[..=at], &s[at..]);
                doubled.parse().unwrap_or(house)
            }
        };
        if candidate != house && candidate > 0 {
            return candidate;
        }
    }
}

/// The street line with its house number changed, or `None` when the line has none.
pub(super) fn line_with_other_house(rng: &mut ChaCha8Rng, line: &str) -> Option<String> {
    let (number, rest) = line.split_once(' ')?;
    let house: u16 = number.parse().ok()?;
    Some(format!("{} {rest}", other_house_number(rng, house)))
}

/// The street line with a typo in the street's name (`12 Hihg Street`), or `None` when the
/// line is not `<number> <name> <kind>`.
pub(super) fn street_typo(rng: &mut ChaCha8Rng, line: &str) -> Option<String> {
    let mut words: Vec<String> = line.split(' ').map(str::to_owned).collect();
    if words.len() < 3 || words[0].parse::<u16>().is_err() {
        return None;
    }
    words[1] = typo(rng, &words[1]);
    Some(words.join(" "))
}

/// The street line with the street's name replaced by another from the generator's street
/// table (FEBRL's "insert a new value from the look-up table"), in the line's case.
pub(super) fn street_replaced(rng: &mut ChaCha8Rng, line: &str) -> Option<String> {
    let mut words: Vec<String> = line.split(' ').map(str::to_owned).collect();
    if words.len() < 3 || words[0].parse::<u16>().is_err() {
        return None;
    }
    words[1] = another_of(rng, STREET_NAMES, &words[1]);
    Some(words.join(" "))
}

/// Another town from the generator's district table, in the case of `town`.
pub(super) fn town_replaced(rng: &mut ChaCha8Rng, town: &str) -> String {
    let towns: Vec<&str> = DISTRICTS.iter().map(|(_, t)| *t).collect();
    another_of(rng, &towns, town)
}

/// A value of `table` other than `current` (case-insensitively), written in `current`'s
/// case when that is all upper case.
fn another_of(rng: &mut ChaCha8Rng, table: &[&str], current: &str) -> String {
    let replacement = loop {
        let candidate = *pick(rng, table);
        if !candidate.eq_ignore_ascii_case(current) || table.len() < 2 {
            break candidate;
        }
    };
    if current.len() > 1 && !current.chars().any(|c| c.is_ascii_lowercase()) {
        replacement.to_uppercase()
    } else {
        replacement.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    fn rng() -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(42)
    }

    #[test]
    fn a_name_typo_is_one_or_two_edits_away() {
        let mut rng = rng();
        let mut two = 0;
        for _ in 0..300 {
            let t = name_typo(&mut rng, "Margaret");
            let n = edits(&t.to_lowercase(), "margaret");
            assert!((1..=2).contains(&n), "Margaret -> {t}");
            two += usize::from(n == 2);
        }
        assert!(two > 30, "second edits happen: {two}");
    }

    #[test]
    fn ocr_misreads_shapes_keeping_case() {
        let mut rng = rng();
        let seen: std::collections::BTreeSet<String> = (0..200)
            .filter_map(|_| name_ocr(&mut rng, "Malcolm"))
            .collect();
        assert!(seen.contains("Rnalcolm"), "{seen:?}");
        assert!(
            seen.contains("Malco1m") || seen.contains("Ma1colm"),
            "{seen:?}"
        );
        let clive: std::collections::BTreeSet<String> = (0..100)
            .filter_map(|_| name_ocr(&mut rng, "Clive"))
            .collect();
        assert!(clive.contains("Dive"), "cl read as d: {clive:?}");
        let shouted = name_ocr(&mut rng, "TIM").unwrap();
        assert_eq!(shouted, shouted.to_uppercase());
        assert_eq!(name_ocr(&mut rng, "Zyx"), None);
    }

    #[test]
    fn phonetic_rewrites_sound_the_same() {
        let mut rng = rng();
        let seen: std::collections::BTreeSet<String> = (0..200)
            .filter_map(|_| name_phonetic(&mut rng, "Stephanie"))
            .collect();
        assert!(seen.contains("Stefanie"), "{seen:?}");
        assert!(seen.contains("Stephany"), "{seen:?}");
        assert!(seen.iter().all(|s| s != "Stephanie"));
        assert_eq!(name_phonetic(&mut rng, "Bob"), None);
    }

    fn dob(s: &str) -> Dob {
        Dob {
            year: s[0..4].parse().unwrap(),
            month: s[5..7].parse().unwrap(),
            day: s[8..10].parse().unwrap(),
        }
    }

    #[test]
    fn one_wrong_digit_gives_another_real_date() {
        let mut rng = rng();
        let original = dob("1980-04-10");
        for _ in 0..200 {
            let d = dob_one_digit(&mut rng, original).unwrap();
            let (a, b) = (original.iso(), d.iso());
            let differing = a.chars().zip(b.chars()).filter(|(x, y)| x != y).count();
            assert_eq!(differing, 1, "{a} -> {b}");
            assert!(plausible(d.year, d.month, d.day));
        }
    }

    #[test]
    fn transposed_digits_give_another_real_date() {
        let mut rng = rng();
        let original = dob("1983-12-05");
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..200 {
            let d = dob_transposed(&mut rng, original).unwrap();
            assert_ne!(d, original);
            assert!(plausible(d.year, d.month, d.day));
            let (a, b): (Vec<char>, Vec<char>) =
                (original.iso().chars().collect(), d.iso().chars().collect());
            let at = (0..10).find(|&i| a[i] != b[i]).unwrap();
            assert_eq!(
                (a[at], a[at + 1]),
                (b[at + 1], b[at]),
                "{} -> {}",
                original.iso(),
                d.iso()
            );
            assert!(a[at + 2..] == b[at + 2..]);
            seen.insert(d.iso());
        }
        // 1983 -> 1938 or 9183 (implausible) or 1893; 12 -> 21 (no); 05 -> 50 (no).
        assert_eq!(seen.into_iter().collect::<Vec<_>>(), ["1938-12-05"]);
        assert_eq!(dob_transposed(&mut rng, dob("1911-11-11")), None);
    }

    #[test]
    fn year_off_by_one_and_invalid_dates() {
        let mut rng = rng();
        let d = dob_year_off_by_one(&mut rng, dob("1980-04-10")).unwrap();
        assert!(d.year == 1979 || d.year == 1981);
        assert_eq!(dob_year_off_by_one(&mut rng, dob("1980-02-29")), None);
        for _ in 0..100 {
            let bad = dob_invalid(&mut rng, dob("1980-04-10"));
            let parsed = bad.get(0..4).zip(bad.get(5..7)).zip(bad.get(8..10));
            let real = bad.len() == 10
                && parsed.is_some_and(|((y, m), d)| {
                    match (y.parse::<u16>(), m.parse::<u8>(), d.parse::<u8>()) {
                        (Ok(y), Ok(m), Ok(d)) => plausible(y, m, d),
                        _ => false,
                    }
                });
            assert!(!real, "{bad} is a real date");
        }
        assert!((0..50)
            .map(|_| dob_invalid(&mut rng, dob("1980-04-10")))
            .any(|s| s == "1980-04-31"));
    }

    #[test]
    fn postcode_errors_keep_the_shape() {
        let mut rng = rng();
        for _ in 0..100 {
            let p = postcode_digit(&mut rng, "LS1 4AB");
            assert_eq!(p.len(), 7);
            let diff: Vec<(char, char)> = p
                .chars()
                .zip("LS1 4AB".chars())
                .filter(|(a, b)| a != b)
                .collect();
            assert_eq!(diff.len(), 1, "{p}");
            assert_eq!(diff[0].0.is_ascii_digit(), diff[0].1.is_ascii_digit());
            let t = postcode_transposed(&mut rng, "LS1 4AB").unwrap();
            assert_eq!(t.find(' '), Some(3), "{t}");
            let mut a: Vec<char> = t.chars().collect();
            let mut b: Vec<char> = "LS1 4AB".chars().collect();
            a.sort_unstable();
            b.sort_unstable();
            assert_eq!(a, b);
            assert_ne!(t, "LS1 4AB");
        }
        assert_eq!(
            postcode_transposed(&mut rng, "ls14ab").map(|s| s.len()),
            Some(6)
        );
    }

    #[test]
    fn address_errors_change_one_part_of_the_line() {
        let mut rng = rng();
        for _ in 0..100 {
            let h = other_house_number(&mut rng, 12);
            assert!(h != 12 && h > 0);
            let line = line_with_other_house(&mut rng, "12 High Street").unwrap();
            assert!(
                line.ends_with(" High Street") && !line.starts_with("12 "),
                "{line}"
            );
            let typo = street_typo(&mut rng, "12 High Street").unwrap();
            assert!(
                typo.starts_with("12 ") && typo.ends_with(" Street") && typo != "12 High Street"
            );
            let other = street_replaced(&mut rng, "12 HIGH STREET").unwrap();
            assert!(
                other.starts_with("12 ")
                    && other != "12 HIGH STREET"
                    && other == other.to_uppercase()
            );
            assert_ne!(town_replaced(&mut rng, "Leeds"), "Leeds");
        }
        assert_eq!(street_typo(&mut rng, "Flat 3"), None);
    }
}
