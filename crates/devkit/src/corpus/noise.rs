//! Applying the error model to a query: one error kind at a time, FEBRL's mixture of 1 to 3
//! modifications, and pseudopeople's independent per-field noise at its default rates.
//!
//! Every function edits the dataset an IdP would send (after the clean view's styling), so
//! errors stack the way they would on a real form: a typo on an upper-case name stays upper
//! case, a wrong digit in a postcode typed without its space keeps it without one.

use matching::MatchingDataset;
use rand_chacha::ChaCha8Rng;

use super::errors::{
    dob_invalid, dob_one_digit, dob_transposed, dob_year_off_by_one, line_with_other_house,
    name_ocr, name_phonetic, name_typo, ocr_places, parse_iso, phonetic_places, postcode_digit,
    postcode_transposed, street_replaced, street_typo, town_replaced, wrong_digits,
};
use super::population::{below, chance, pick, Dob};
use super::queries::typo;
use super::QuerySet;

/// Applies one error of `kind` to `d`; false when `d` has nothing that error can change
/// (no first name left to mistype, no date a digit can be transposed in). `household_dob`
/// is the date of birth of another member of the person's household, if there is one.
pub(super) fn apply_error(
    rng: &mut ChaCha8Rng,
    kind: QuerySet,
    d: &mut MatchingDataset,
    household_dob: Option<Dob>,
) -> bool {
    match kind {
        QuerySet::FirstNameTypo => edit_given(d, |g| Some(name_typo(rng, g))),
        QuerySet::FirstNameOcr => edit_given(d, |g| name_ocr(rng, g)),
        QuerySet::FirstNamePhonetic => edit_given(d, |g| name_phonetic(rng, g)),
        QuerySet::FirstNameMissing => d.first_name.take().is_some(),
        QuerySet::SurnameTypo => edit_surname(d, |s| Some(name_typo(rng, s))),
        QuerySet::SurnamePhonetic => edit_surname(d, |s| name_phonetic(rng, s)),
        QuerySet::SurnameMissing => !std::mem::take(&mut d.surnames).is_empty(),
        QuerySet::NamesSwapped => swap_names(d),
        QuerySet::DobMissing => d.date_of_birth.take().is_some(),
        QuerySet::DobInvalid => edit_dob(d, |dob| Some(dob_invalid(rng, dob))),
        QuerySet::DobOneDigit => edit_dob(d, |dob| dob_one_digit(rng, dob).map(Dob::iso)),
        QuerySet::DobTransposed => edit_dob(d, |dob| dob_transposed(rng, dob).map(Dob::iso)),
        QuerySet::DobYearOffByOne => edit_dob(d, |dob| dob_year_off_by_one(rng, dob).map(Dob::iso)),
        QuerySet::SwappedDayMonth => edit_dob(d, Dob::swapped_iso),
        QuerySet::DobFromHousehold => match household_dob {
            Some(other) => edit_dob(d, |dob| (dob != other).then(|| other.iso())),
            None => false,
        },
        QuerySet::PostcodeDigit => edit_postcode(d, |p| Some(postcode_digit(rng, p))),
        QuerySet::PostcodeTransposed => edit_postcode(d, |p| postcode_transposed(rng, p)),
        QuerySet::PostcodeMissing => d
            .addresses
            .first_mut()
            .is_some_and(|a| a.postcode.take().is_some()),
        QuerySet::HouseNumberDiffers => edit_street_line(d, |l| line_with_other_house(rng, l)),
        QuerySet::StreetTypo => edit_street_line(d, |l| street_typo(rng, l)),
        QuerySet::AddressMissing => !std::mem::take(&mut d.addresses).is_empty(),
        QuerySet::ValueReplaced => {
            if chance(rng, 50) {
                edit_street_line(d, |l| street_replaced(rng, l))
            } else {
                edit_town(d, |t| Some(town_replaced(rng, t)))
            }
        }
        _ => false,
    }
}

/// The fields FEBRL's generator picks from when it modifies a duplicate, each with the
/// error kinds it can make there: typos (insert, delete, substitute, transpose), OCR and
/// phonetic errors, a missing value, swapped fields, a value from a look-up table.
const FEBRL_FIELDS: &[&[QuerySet]] = &[
    &[
        QuerySet::FirstNameTypo,
        QuerySet::FirstNameOcr,
        QuerySet::FirstNamePhonetic,
        QuerySet::FirstNameMissing,
        QuerySet::NamesSwapped,
    ],
    &[
        QuerySet::SurnameTypo,
        QuerySet::SurnamePhonetic,
        QuerySet::SurnameMissing,
        QuerySet::NamesSwapped,
    ],
    &[
        QuerySet::DobOneDigit,
        QuerySet::DobTransposed,
        QuerySet::SwappedDayMonth,
        QuerySet::DobMissing,
    ],
    &[
        QuerySet::PostcodeDigit,
        QuerySet::PostcodeTransposed,
        QuerySet::PostcodeMissing,
    ],
    &[
        QuerySet::HouseNumberDiffers,
        QuerySet::StreetTypo,
        QuerySet::ValueReplaced,
        QuerySet::AddressMissing,
    ],
];

/// FEBRL's maximum number of modifications in one field of a duplicate.
const FEBRL_MAX_PER_FIELD: u8 = 2;

/// FEBRL's maximum number of modifications in one duplicate record.
const FEBRL_MAX_PER_RECORD: usize = 3;

/// A FEBRL duplicate: 1 to [`FEBRL_MAX_PER_RECORD`] modifications (uniformly many), each in
/// a field picked uniformly from [`FEBRL_FIELDS`] (at most [`FEBRL_MAX_PER_FIELD`] per
/// field), of a kind picked uniformly among that field's. Returns how many were made.
pub(super) fn febrl_mix(rng: &mut ChaCha8Rng, d: &mut MatchingDataset) -> usize {
    let wanted = 1 + below(rng, FEBRL_MAX_PER_RECORD);
    let mut per_field = [0u8; FEBRL_FIELDS.len()];
    let mut made = 0;
    // Bounded: a query whose fields are all gone cannot take more modifications.
    for _ in 0..32 {
        if made == wanted {
            break;
        }
        let field = below(rng, FEBRL_FIELDS.len());
        if per_field[field] >= FEBRL_MAX_PER_FIELD {
            continue;
        }
        let kind = *pick(rng, FEBRL_FIELDS[field]);
        if apply_error(rng, kind, d, None) {
            per_field[field] += 1;
            made += 1;
        }
    }
    made
}

/// pseudopeople's default probability that a cell gets a given kind of noise, in percent.
const CELL_PERCENT: u32 = 1;

/// pseudopeople's default probability that each character (token) of a cell chosen for
/// typos, OCR or phonetic errors is corrupted, in percent.
const TOKEN_PERCENT: u32 = 10;

/// pseudopeople's default ZIP-code digit probabilities, `[0.04, 0.04, 0.20, 0.36, 0.36]`,
/// carried over to the postcode: each outward character 4% (the area, rarely wrong), the
/// inward digit 20% (the sector), each inward letter 36% (the unit), in percent.
fn postcode_char_percent(index_from_end: usize) -> u32 {
    match index_from_end {
        0 | 1 => 36,
        2 => 20,
        _ => 4,
    }
}

/// pseudopeople's column noise at its documented defaults, each field and kind
/// independently: leave blank, nickname, typos, OCR and phonetic errors on names; blank,
/// copy from a household member, swapped month and day and wrong digits on the date of
/// birth; wrong digits in the house number, typos in the street and town; blank and wrong
/// ZIP-code digits on the postcode; the wrong option for the gender. Returns how many cells
/// were changed (mostly 0).
pub(super) fn census_mix(
    rng: &mut ChaCha8Rng,
    d: &mut MatchingDataset,
    nicknames: Option<&[&str]>,
    household_dob: Option<Dob>,
) -> usize {
    let mut changed = 0;
    let mut noise = |rng: &mut ChaCha8Rng, apply: &mut dyn FnMut(&mut ChaCha8Rng) -> bool| {
        if chance(rng, CELL_PERCENT) && apply(rng) {
            changed += 1;
        }
    };
    // First name.
    noise(rng, &mut |_| d.first_name.take().is_some());
    if let Some(nicknames) = nicknames {
        noise(rng, &mut |rng| {
            let nickname = *pick(rng, nicknames);
            edit_given(d, |_| Some(nickname.to_owned()))
        });
    }
    noise(rng, &mut |rng| {
        edit_given(d, |g| tokens(rng, g, phonetic_places(g), name_phonetic))
    });
    noise(rng, &mut |rng| {
        edit_given(d, |g| tokens(rng, g, ocr_places(g), name_ocr))
    });
    noise(rng, &mut |rng| edit_given(d, |g| keyboard_tokens(rng, g)));
    // Surname.
    noise(rng, &mut |_| !std::mem::take(&mut d.surnames).is_empty());
    noise(rng, &mut |rng| {
        edit_surname(d, |s| tokens(rng, s, phonetic_places(s), name_phonetic))
    });
    noise(rng, &mut |rng| {
        edit_surname(d, |s| tokens(rng, s, ocr_places(s), name_ocr))
    });
    noise(rng, &mut |rng| edit_surname(d, |s| keyboard_tokens(rng, s)));
    // Date of birth.
    noise(rng, &mut |_| d.date_of_birth.take().is_some());
    noise(rng, &mut |rng| {
        apply_error(rng, QuerySet::DobFromHousehold, d, household_dob)
    });
    noise(rng, &mut |rng| {
        apply_error(rng, QuerySet::SwappedDayMonth, d, None)
    });
    noise(rng, &mut |rng| {
        let Some(iso) = d.date_of_birth.clone() else {
            return false;
        };
        let wrong = wrong_digits(rng, &iso, TOKEN_PERCENT);
        let changed = wrong != iso;
        d.date_of_birth = Some(wrong);
        changed
    });
    // Address: house number, street name, town, postcode.
    noise(rng, &mut |rng| {
        edit_street_line(d, |l| {
            let (number, rest) = l.split_once(' ')?;
            let wrong = wrong_digits(rng, number, TOKEN_PERCENT);
            (wrong != number).then(|| format!("{wrong} {rest}"))
        })
    });
    noise(rng, &mut |rng| {
        edit_street_line(d, |l| {
            let mut words: Vec<String> = l.split(' ').map(str::to_owned).collect();
            let street = words.get(1)?.clone();
            words[1] = keyboard_tokens(rng, &street)?;
            Some(words.join(" "))
        })
    });
    noise(rng, &mut |rng| edit_town(d, |t| keyboard_tokens(rng, t)));
    noise(rng, &mut |_| {
        d.addresses
            .first_mut()
            .is_some_and(|a| a.postcode.take().is_some())
    });
    noise(rng, &mut |rng| {
        edit_postcode(d, |p| {
            let n = p.chars().filter(|c| *c != ' ').count();
            let mut seen = 0;
            let mut changed = false;
            let out: String = p
                .chars()
                .map(|c| {
                    if c == ' ' {
                        return c.to_string();
                    }
                    seen += 1;
                    if chance(rng, postcode_char_percent(n - seen)) {
                        changed = true;
                        postcode_digit(rng, &c.to_string())
                    } else {
                        c.to_string()
                    }
                })
                .collect();
            changed.then_some(out)
        })
    });
    // Gender.
    noise(rng, &mut |_| match d.gender.as_deref() {
        Some("male") => {
            d.gender = Some("female".to_owned());
            true
        }
        Some("female") => {
            d.gender = Some("male".to_owned());
            true
        }
        _ => false,
    });
    changed
}

/// `name` with each of its `places` corrupted by `error` with [`TOKEN_PERCENT`]; `None` when
/// no token was hit.
fn tokens(
    rng: &mut ChaCha8Rng,
    name: &str,
    places: usize,
    error: fn(&mut ChaCha8Rng, &str) -> Option<String>,
) -> Option<String> {
    let hits = (0..places).filter(|_| chance(rng, TOKEN_PERCENT)).count();
    let mut out = name.to_owned();
    for _ in 0..hits {
        out = error(rng, &out).unwrap_or(out);
    }
    (hits > 0 && out != name).then_some(out)
}

/// `name` with a keyboard typo for each character hit with [`TOKEN_PERCENT`].
fn keyboard_tokens(rng: &mut ChaCha8Rng, name: &str) -> Option<String> {
    let hits = name
        .chars()
        .filter(|c| c.is_alphanumeric())
        .collect::<Vec<_>>()
        .iter()
        .filter(|_| chance(rng, TOKEN_PERCENT))
        .count();
    let mut out = name.to_owned();
    for _ in 0..hits {
        out = typo(rng, &out);
    }
    (hits > 0 && out != name).then_some(out)
}

/// Applies `edit` to the given name: the first word of `first_name` (some IdPs append the
/// middle names to it, which stay as they are).
fn edit_given(d: &mut MatchingDataset, edit: impl FnOnce(&str) -> Option<String>) -> bool {
    let Some(first) = d.first_name.as_deref() else {
        return false;
    };
    let (given, rest) = match first.split_once(' ') {
        Some((given, rest)) => (given, Some(rest)),
        None => (first, None),
    };
    let Some(new) = edit(given) else {
        return false;
    };
    d.first_name = Some(match rest {
        Some(rest) => format!("{new} {rest}"),
        None => new,
    });
    true
}

/// Applies `edit` to the current surname (the first one sent).
fn edit_surname(d: &mut MatchingDataset, edit: impl FnOnce(&str) -> Option<String>) -> bool {
    let Some(surname) = d.surnames.first_mut() else {
        return false;
    };
    match edit(surname) {
        Some(new) => {
            *surname = new;
            true
        }
        None => false,
    }
}

/// Applies `edit` to the date of birth, when it is still a real date.
fn edit_dob(d: &mut MatchingDataset, edit: impl FnOnce(Dob) -> Option<String>) -> bool {
    let Some(dob) = d.date_of_birth.as_deref().and_then(parse_iso) else {
        return false;
    };
    match edit(dob) {
        Some(new) => {
            d.date_of_birth = Some(new);
            true
        }
        None => false,
    }
}

/// Applies `edit` to the current address's postcode.
fn edit_postcode(d: &mut MatchingDataset, edit: impl FnOnce(&str) -> Option<String>) -> bool {
    let Some(postcode) = d.addresses.first_mut().and_then(|a| a.postcode.as_mut()) else {
        return false;
    };
    match edit(postcode) {
        Some(new) => {
            *postcode = new;
            true
        }
        None => false,
    }
}

/// Applies `edit` to the current address's street line (the one starting with the house
/// number).
fn edit_street_line(d: &mut MatchingDataset, edit: impl FnOnce(&str) -> Option<String>) -> bool {
    let Some(line) = d.addresses.first_mut().and_then(|a| {
        a.lines.iter_mut().find(|l| {
            l.split(' ')
                .next()
                .is_some_and(|w| w.parse::<u16>().is_ok())
        })
    }) else {
        return false;
    };
    match edit(line) {
        Some(new) => {
            *line = new;
            true
        }
        None => false,
    }
}

/// Applies `edit` to the current address's town (its last line).
fn edit_town(d: &mut MatchingDataset, edit: impl FnOnce(&str) -> Option<String>) -> bool {
    let Some(town) = d
        .addresses
        .first_mut()
        .filter(|a| a.lines.len() >= 2)
        .and_then(|a| a.lines.last_mut())
    else {
        return false;
    };
    match edit(town) {
        Some(new) => {
            *town = new;
            true
        }
        None => false,
    }
}

/// First name and surname the wrong way round: the given name goes in the surname field,
/// the surname in the first-name field (middle names appended to the first name are lost).
fn swap_names(d: &mut MatchingDataset) -> bool {
    let (Some(first), Some(surname)) = (d.first_name.as_deref(), d.surnames.first()) else {
        return false;
    };
    let given = first.split(' ').next().unwrap_or(first).to_owned();
    if given.eq_ignore_ascii_case(surname) {
        return false;
    }
    d.first_name = Some(surname.clone());
    d.surnames = vec![given];
    true
}

#[cfg(test)]
mod tests {
    use matching::Address;
    use rand::SeedableRng;

    use super::*;

    fn dataset() -> MatchingDataset {
        MatchingDataset {
            id: None,
            first_name: Some("John Paul".to_owned()),
            middle_names: Vec::new(),
            surnames: vec!["Smith".to_owned()],
            date_of_birth: Some("1980-04-10".to_owned()),
            gender: Some("male".to_owned()),
            addresses: vec![Address {
                lines: vec!["12 High Street".to_owned(), "Leeds".to_owned()],
                postcode: Some("LS1 4AB".to_owned()),
                current: true,
            }],
            attributes: Default::default(),
        }
    }

    #[test]
    fn each_kind_changes_its_own_field_only() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let clean = dataset();
        let household = Some(Dob {
            year: 1982,
            month: 7,
            day: 1,
        });
        for kind in QuerySet::ALL {
            let mut d = clean.clone();
            let changed = apply_error(&mut rng, kind, &mut d, household);
            assert_eq!(changed, d != clean, "{kind}");
            let names = (d.first_name != clean.first_name) || (d.surnames != clean.surnames);
            let dob = d.date_of_birth != clean.date_of_birth;
            let address = d.addresses != clean.addresses;
            let fields = usize::from(names) + usize::from(dob) + usize::from(address);
            assert!(fields <= 1, "{kind} changed {fields} fields");
        }
        let mut d = clean.clone();
        assert!(apply_error(&mut rng, QuerySet::NamesSwapped, &mut d, None));
        assert_eq!(d.first_name.as_deref(), Some("Smith"));
        assert_eq!(d.surnames, ["John"]);
        let mut d = clean.clone();
        assert!(apply_error(
            &mut rng,
            QuerySet::DobFromHousehold,
            &mut d,
            household
        ));
        assert_eq!(d.date_of_birth.as_deref(), Some("1982-07-01"));
        assert!(!apply_error(
            &mut rng,
            QuerySet::DobFromHousehold,
            &mut d,
            None
        ));
    }

    #[test]
    fn febrl_makes_one_to_three_modifications() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let mut counts = [0usize; 4];
        for _ in 0..500 {
            let mut d = dataset();
            let made = febrl_mix(&mut rng, &mut d);
            assert!((1..=3).contains(&made));
            assert_ne!(d, dataset());
            counts[made] += 1;
        }
        assert!(
            counts[1] > 100 && counts[2] > 100 && counts[3] > 100,
            "{counts:?}"
        );
    }

    #[test]
    fn census_noise_is_rare() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut noisy = 0;
        for _ in 0..2000 {
            let mut d = dataset();
            let made = census_mix(&mut rng, &mut d, Some(&["Jack"]), None);
            noisy += usize::from(made > 0);
            assert_eq!(made == 0, d == dataset());
        }
        // About 20 kinds at 1%, some of which find nothing to change: roughly 10-20%.
        assert!((100..500).contains(&noisy), "{noisy} of 2000 noisy");
    }
}
