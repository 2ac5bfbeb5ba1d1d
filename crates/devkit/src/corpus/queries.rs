//! What an identity provider asserts about a person, in each query set's situation.
//!
//! The department holds canonical spellings; identity providers verify people from their
//! own documents and write them their own way. Every query starts from such a "clean" view
//! (case, spacing, abbreviations and postcode format vary, middle names and gender are
//! sometimes missing) and its set then changes one thing.

use matching::{Address, MatchingDataset};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::names::nicknames_of;
use super::noise::{apply_error, census_mix, febrl_mix};
use super::population::{below, chance, pick, Dob, Person, World};
use super::QuerySet;

/// Whose query it is: a person with a department record (index into the people) or one of
/// the absent people (index into their own list).
#[derive(Debug, Clone, Copy)]
pub(super) enum Subject {
    Record(usize),
    Absent(usize),
}

/// A query to build once the records have their ids.
#[derive(Debug, Clone, Copy)]
pub(super) struct QueryPlan {
    pub(super) set: QuerySet,
    pub(super) subject: Subject,
    /// Another member of the subject's household who has a record (index into the people),
    /// whose date of birth a form may carry by mistake.
    pub(super) household_member: Option<usize>,
}

/// The matching dataset the IdP sends for `person` in the plan's situation (`id` unset).
/// `household_dob` is the date of birth of [`QueryPlan::household_member`].
pub(super) fn assert(
    rng: &mut ChaCha8Rng,
    world: &World,
    person: &Person,
    plan: &QueryPlan,
    household_dob: Option<Dob>,
) -> MatchingDataset {
    let mut d = clean_view(rng, world, person);
    match plan.set {
        QuerySet::Clean | QuerySet::Twin | QuerySet::FatherSon => {}
        QuerySet::TwinNoisy | QuerySet::FatherSonNoisy | QuerySet::FebrlMix => {
            febrl_mix(rng, &mut d);
        }
        QuerySet::CensusMix => {
            census_mix(rng, &mut d, nicknames_of(person.given), household_dob);
        }
        QuerySet::AbsentHousehold => {
            if let Some(dob) = household_dob {
                d.date_of_birth = Some(dob.iso());
            }
        }
        QuerySet::Typo => {
            if chance(rng, 50) {
                // In the given name itself, not in middle names some IdPs append to it.
                d.first_name = d.first_name.map(|n| match n.split_once(' ') {
                    Some((given, rest)) => format!("{} {rest}", typo(rng, given)),
                    None => typo(rng, &n),
                });
            } else if let Some(surname) = d.surnames.first_mut() {
                *surname = typo(rng, surname);
            }
        }
        QuerySet::Nickname => {
            if let Some(nicknames) = nicknames_of(person.given) {
                let nickname = *pick(rng, nicknames);
                d.first_name = Some(styled_name(rng, nickname));
            }
        }
        QuerySet::SwappedDayMonth => {
            if let Some(swapped) = person.dob.swapped_iso() {
                d.date_of_birth = Some(swapped);
            }
        }
        QuerySet::MovedAddress => {
            let keep_old = chance(rng, 50);
            moved(rng, world, person, &mut d, keep_old);
        }
        QuerySet::Hyphenated => {
            let parts: Vec<&str> = person.surname.split('-').collect();
            let sent = match (below(rng, 3), parts.as_slice()) {
                (0, [first, _]) => (*first).to_owned(),
                (1, [_, second]) => (*second).to_owned(),
                (_, parts) => parts.join(" "),
            };
            if let Some(surname) = d.surnames.first_mut() {
                *surname = styled_name(rng, &sent);
            }
        }
        QuerySet::Namesake | QuerySet::NamesakeNoisy => {
            // A namesake who has since moved: the address tells the two records apart no
            // more; only cycle 3 can.
            if chance(rng, 25) {
                moved(rng, world, person, &mut d, false);
            }
            if plan.set == QuerySet::NamesakeNoisy {
                febrl_mix(rng, &mut d);
            }
        }
        QuerySet::Absent | QuerySet::AbsentNoisy => {
            // Some IdPs verify no address (e.g. a passport-only identity).
            if chance(rng, 25) {
                d.addresses.clear();
            }
            if plan.set == QuerySet::AbsentNoisy {
                febrl_mix(rng, &mut d);
            }
        }
        kind => {
            apply_error(rng, kind, &mut d, household_dob);
        }
    }
    d
}

/// The person as an IdP would assert them, with no error.
fn clean_view(rng: &mut ChaCha8Rng, world: &World, p: &Person) -> MatchingDataset {
    let mut first_name = styled_name(rng, p.given);
    let mut middle_names = Vec::new();
    if !p.middle.is_empty() {
        if chance(rng, 10) {
            // Some IdPs put every given name in one field.
            first_name = styled_name(rng, &format!("{} {}", p.given, p.middle.join(" ")));
        } else if chance(rng, 60) {
            middle_names = p.middle.iter().map(|m| styled_name(rng, m)).collect();
        }
    }
    let mut surnames = vec![styled_name(rng, &p.surname)];
    if let Some(previous) = &p.previous_surname {
        if chance(rng, 30) {
            surnames.push(styled_name(rng, previous));
        }
    }
    MatchingDataset {
        id: None,
        first_name: Some(first_name),
        middle_names,
        surnames,
        date_of_birth: Some(p.dob.iso()),
        gender: chance(rng, 50).then(|| p.sex.as_str().to_owned()),
        addresses: vec![styled_address(rng, world, p.home, p.home.unit, true)],
        attributes: Default::default(),
    }
}

/// Replaces the asserted address with a new one in another postcode; with `keep_old`, the
/// department's address follows as a previous address.
fn moved(rng: &mut ChaCha8Rng, world: &World, p: &Person, d: &mut MatchingDataset, keep_old: bool) {
    let unit = world.places.another_unit(rng, p.home.unit);
    let new_home = world.places.home_in(rng, unit);
    d.addresses = vec![styled_address(rng, world, new_home, unit, true)];
    if keep_old {
        d.addresses
            .push(styled_address(rng, world, p.home, p.home.unit, false));
    }
}

fn styled_address(
    rng: &mut ChaCha8Rng,
    world: &World,
    home: super::population::Home,
    unit: u32,
    current: bool,
) -> Address {
    let abbreviate = chance(rng, 20);
    let upper = chance(rng, 10);
    let lines = world
        .places
        .lines(home, abbreviate)
        .into_iter()
        .map(|l| if upper { l.to_uppercase() } else { l })
        .collect();
    Address {
        lines,
        postcode: Some(styled_postcode(rng, world.places.postcode(unit))),
        current,
    }
}

/// A name as some IdP writes it: usually as is, sometimes all upper or lower case.
fn styled_name(rng: &mut ChaCha8Rng, name: &str) -> String {
    match rng.gen_range(0..100u32) {
        0..=83 => name.to_owned(),
        84..=91 => name.to_uppercase(),
        _ => name.to_lowercase(),
    }
}

/// A postcode as people type it: with or without the space, in either case.
fn styled_postcode(rng: &mut ChaCha8Rng, postcode: &str) -> String {
    match rng.gen_range(0..100u32) {
        0..=64 => postcode.to_owned(),
        65..=79 => postcode.replace(' ', ""),
        80..=89 => postcode.to_lowercase(),
        _ => postcode.replace(' ', "").to_lowercase(),
    }
}

/// A NINO as a citizen types it on the cycle-3 page.
pub(super) fn typed_nino(rng: &mut ChaCha8Rng, nino: &str) -> String {
    let spaced = || {
        format!(
            "{} {} {} {} {}",
            &nino[0..2],
            &nino[2..4],
            &nino[4..6],
            &nino[6..8],
            &nino[8..9]
        )
    };
    match rng.gen_range(0..100u32) {
        0..=54 => nino.to_owned(),
        55..=69 => spaced(),
        70..=84 => nino.to_lowercase(),
        85..=94 => format!("{} {}", &nino[0..8], &nino[8..9]),
        _ => spaced().to_lowercase(),
    }
}

/// Letters next to each letter on a UK QWERTY keyboard.
fn keyboard_neighbours(c: char) -> &'static str {
    match c {
        'q' => "wa",
        'w' => "qeas",
        'e' => "wrsd",
        'r' => "etdf",
        't' => "ryfg",
        'y' => "tugh",
        'u' => "yihj",
        'i' => "uojk",
        'o' => "ipkl",
        'p' => "ol",
        'a' => "qwsz",
        's' => "awedxz",
        'd' => "serfcx",
        'f' => "drtgvc",
        'g' => "ftyhbv",
        'h' => "gyujnb",
        'j' => "huikmn",
        'k' => "jiolm",
        'l' => "kop",
        'z' => "asx",
        'x' => "zsdc",
        'c' => "xdfv",
        'v' => "cfgb",
        'b' => "vghn",
        'n' => "bhjm",
        'm' => "njk",
        _ => "",
    }
}

/// `c`'s case applied to `to`.
fn same_case(c: char, to: char) -> char {
    if c.is_uppercase() {
        to.to_ascii_uppercase()
    } else {
        to
    }
}

/// One realistic keyboard error in a name: a neighbouring key, two letters transposed, a
/// letter left out or typed twice. The first letter is rarely the one mistyped (people get
/// it right in the large majority of misspellings), so it is chosen only occasionally.
pub(super) fn typo(rng: &mut ChaCha8Rng, name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let letters: Vec<usize> = (0..chars.len())
        .filter(|&i| chars[i].is_ascii_alphabetic())
        .collect();
    if letters.len() < 2 {
        return name.to_owned();
    }
    for _ in 0..32 {
        let slot = if chance(rng, 7) {
            0
        } else {
            1 + below(rng, letters.len() - 1)
        };
        let at = letters[slot];
        let mut out = chars.clone();
        match rng.gen_range(0..100u32) {
            0..=29 => {
                let neighbours: Vec<char> = keyboard_neighbours(chars[at].to_ascii_lowercase())
                    .chars()
                    .collect();
                if neighbours.is_empty() {
                    continue;
                }
                out[at] = same_case(chars[at], *pick(rng, &neighbours));
            }
            30..=54 => {
                let next = at + 1;
                if next >= chars.len() || !chars[next].is_ascii_alphabetic() {
                    continue;
                }
                // Keep each position's case: "John" -> "Jhon", not "JhOn".
                out[at] = same_case(chars[at], chars[next].to_ascii_lowercase());
                out[next] = same_case(chars[next], chars[at].to_ascii_lowercase());
            }
            55..=79 => {
                if letters.len() < 4 {
                    continue;
                }
                out.remove(at);
                if at == 0 {
                    if let Some(first) = out.first_mut() {
                        *first = same_case(chars[0], first.to_ascii_lowercase());
                    }
                }
            }
            _ => {
                out.insert(at + 1, chars[at].to_ascii_lowercase());
            }
        }
        let out: String = out.into_iter().collect();
        if out.to_lowercase() != name.to_lowercase() {
            return out;
        }
    }
    // Doubling a letter always changes the name.
    let mut out = chars.clone();
    out.insert(letters[1] + 1, chars[letters[1]].to_ascii_lowercase());
    out.into_iter().collect()
}
