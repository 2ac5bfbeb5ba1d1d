//! The fictional population: people in households at addresses, the department's records of
//! them, and the confusable people the hard-negative query sets are built around.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use matching::{Address, DepartmentRecord, MatchingDataset, RecordId};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::errors;
use super::names::{
    nickname_related, nicknames_of, DISTRICTS, FEMALE_GIVEN_NAMES, INWARD_LETTERS,
    MALE_GIVEN_NAMES, STREET_KINDS, STREET_NAMES, SURNAMES, SURNAME_ENDINGS, SURNAME_STEMS,
};
use super::queries::{self, QueryPlan, Subject};
use super::{Corpus, CorpusSpec, LabelledQuery, QuerySet};

/// Earliest and latest birth years in the population.
pub(super) const FIRST_BIRTH_YEAR: u16 = 1930;
pub(super) const LAST_BIRTH_YEAR: u16 = 2008;

/// Average number of department records per postcode unit (a unit is about 15 addresses;
/// a department holds some of the people living there).
const PEOPLE_PER_POSTCODE: usize = 12;

// ---------------------------------------------------------------------------------------
// Random helpers. Only integer sampling with explicit widths is used (never `usize` ranges
// or floating point), so the stream of values is the same on every platform.

/// A uniform index below `n` (`n > 0`).
pub(super) fn below(rng: &mut ChaCha8Rng, n: usize) -> usize {
    rng.gen_range(0..n.max(1) as u64) as usize
}

/// True with probability `percent` / 100.
pub(super) fn chance(rng: &mut ChaCha8Rng, percent: u32) -> bool {
    rng.gen_range(0..100u32) < percent
}

/// One element of a non-empty slice, uniformly.
pub(super) fn pick<'a, T>(rng: &mut ChaCha8Rng, items: &'a [T]) -> &'a T {
    &items[below(rng, items.len())]
}

/// Fisher-Yates with platform-independent index sampling.
pub(super) fn shuffle<T>(rng: &mut ChaCha8Rng, items: &mut [T]) {
    for i in (1..items.len()).rev() {
        let j = rng.gen_range(0..=i as u64) as usize;
        items.swap(i, j);
    }
}

/// Samples ranks 0..n with probability proportional to 1 / (rank + 1 + offset): Zipf's law
/// (with a Mandelbrot offset that flattens the very top), in integer arithmetic.
struct Zipf {
    cumulative: Vec<u64>,
}

impl Zipf {
    fn new(n: usize, offset: u64) -> Self {
        const SCALE: u64 = 1 << 40;
        let mut total = 0;
        let cumulative = (0..n as u64)
            .map(|rank| {
                total += SCALE / (rank + 1 + offset);
                total
            })
            .collect();
        Self { cumulative }
    }

    fn sample(&self, rng: &mut ChaCha8Rng) -> usize {
        let total = self.cumulative.last().copied().unwrap_or(1);
        let x = rng.gen_range(0..total);
        self.cumulative.partition_point(|&c| c <= x)
    }
}

// ---------------------------------------------------------------------------------------
// People.

/// Sex as the department and IdP record it (`male` / `female`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Sex {
    Male,
    Female,
}

impl Sex {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Sex::Male => "male",
            Sex::Female => "female",
        }
    }

    fn random(rng: &mut ChaCha8Rng) -> Self {
        if chance(rng, 50) {
            Sex::Male
        } else {
            Sex::Female
        }
    }

    fn other(self) -> Self {
        match self {
            Sex::Male => Sex::Female,
            Sex::Female => Sex::Male,
        }
    }
}

/// A calendar date of birth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Dob {
    pub(super) year: u16,
    pub(super) month: u8,
    pub(super) day: u8,
}

impl Dob {
    fn random_in_year(rng: &mut ChaCha8Rng, year: u16) -> Self {
        let month = rng.gen_range(1..=12u8);
        let day = rng.gen_range(1..=days_in_month(year, month));
        Self { year, month, day }
    }

    /// `YYYY-MM-DD`.
    pub(super) fn iso(self) -> String {
        format!("{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }

    /// `YYYY-DD-MM`: the date with day and month swapped, when that is a different valid
    /// date.
    pub(super) fn swapped_iso(self) -> Option<String> {
        (self.day <= 12 && self.day != self.month)
            .then(|| format!("{:04}-{:02}-{:02}", self.year, self.day, self.month))
    }
}

pub(super) fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => {
            29
        }
        2 => 28,
        _ => 31,
    }
}

/// Where someone lives: a house (and maybe a flat) in a postcode unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Home {
    pub(super) unit: u32,
    pub(super) house: u16,
    pub(super) flat: Option<u8>,
}

/// A fictional person, as the department knows them.
#[derive(Debug, Clone)]
pub(super) struct Person {
    pub(super) given: &'static str,
    pub(super) middle: Vec<&'static str>,
    pub(super) surname: String,
    /// Birth (maiden) surname of someone who took a partner's name.
    pub(super) previous_surname: Option<String>,
    pub(super) dob: Dob,
    pub(super) sex: Sex,
    /// Whether the department's record holds the gender.
    pub(super) gender_recorded: bool,
    pub(super) home: Home,
    /// Postcode units of earlier addresses the department also holds.
    pub(super) previous_units: Vec<u32>,
    /// Index into the space of valid NINOs (see [`NinoPool`]).
    pub(super) nino: u32,
}

// ---------------------------------------------------------------------------------------
// Names.

/// Name frequency tables.
pub(super) struct Names {
    male: Zipf,
    female: Zipf,
    surnames: Vec<String>,
    surname_ranks: Zipf,
}

impl Names {
    fn new(rng: &mut ChaCha8Rng) -> Self {
        let mut surnames: Vec<String> = SURNAMES.iter().map(|s| (*s).to_owned()).collect();
        let known: BTreeSet<&str> = SURNAMES.iter().copied().collect();
        // The long tail of rarer surnames, in a seed-dependent order of rarity.
        let mut tail: Vec<String> = SURNAME_STEMS
            .iter()
            .flat_map(|stem| {
                SURNAME_ENDINGS
                    .iter()
                    .map(move |end| format!("{stem}{end}"))
            })
            .filter(|s| !known.contains(s.as_str()))
            .collect();
        shuffle(rng, &mut tail);
        surnames.extend(tail);
        // Offsets chosen so the top names have about their real share: John ~4% of men,
        // Smith ~1.2% of people.
        Self {
            male: Zipf::new(MALE_GIVEN_NAMES.len(), 6),
            female: Zipf::new(FEMALE_GIVEN_NAMES.len(), 6),
            surname_ranks: Zipf::new(surnames.len(), 15),
            surnames,
        }
    }

    fn given(&self, rng: &mut ChaCha8Rng, sex: Sex) -> &'static str {
        match sex {
            Sex::Male => MALE_GIVEN_NAMES[self.male.sample(rng)],
            Sex::Female => FEMALE_GIVEN_NAMES[self.female.sample(rng)],
        }
    }

    /// A given name different from every name in `avoid`.
    fn given_other_than(&self, rng: &mut ChaCha8Rng, sex: Sex, avoid: &[&str]) -> &'static str {
        loop {
            let name = self.given(rng, sex);
            if !avoid.contains(&name) {
                return name;
            }
        }
    }

    /// A given name that is neither one of `avoid` nor a nickname form of one: for people at
    /// one address who must be told apart by their first names (twins, partners).
    fn distinct_given(&self, rng: &mut ChaCha8Rng, sex: Sex, avoid: &[&str]) -> &'static str {
        loop {
            let name = self.given(rng, sex);
            if !avoid
                .iter()
                .any(|a| *a == name || nickname_related(a, name))
            {
                return name;
            }
        }
    }

    /// One of the `top` most common given names.
    fn common_given(rng: &mut ChaCha8Rng, sex: Sex, top: usize) -> &'static str {
        let list = match sex {
            Sex::Male => MALE_GIVEN_NAMES,
            Sex::Female => FEMALE_GIVEN_NAMES,
        };
        list[below(rng, top.min(list.len()))]
    }

    fn surname(&self, rng: &mut ChaCha8Rng) -> String {
        self.surnames[self.surname_ranks.sample(rng)].clone()
    }

    /// One of the `top` most common surnames.
    fn common_surname(&self, rng: &mut ChaCha8Rng, top: usize) -> String {
        self.surnames[below(rng, top.min(self.surnames.len()))].clone()
    }

    fn middle_names(&self, rng: &mut ChaCha8Rng, sex: Sex, given: &str) -> Vec<&'static str> {
        let count = match rng.gen_range(0..100u32) {
            0..=34 => 0,
            35..=89 => 1,
            _ => 2,
        };
        let mut middle: Vec<&'static str> = Vec::new();
        while middle.len() < count {
            let mut avoid = vec![given];
            avoid.extend(middle.iter().copied());
            middle.push(self.given_other_than(rng, sex, &avoid));
        }
        middle
    }
}

// ---------------------------------------------------------------------------------------
// Places.

/// A postcode unit: one street segment in a district.
#[derive(Debug, Clone)]
struct Unit {
    postcode: String,
    street: u16,
    kind: u8,
    town: u16,
    houses: u16,
}

/// Every postcode unit of the population, with unique postcodes.
pub(super) struct Places {
    units: Vec<Unit>,
}

impl Places {
    fn new(rng: &mut ChaCha8Rng, wanted: usize) -> Self {
        const INWARDS_PER_DISTRICT: usize = 10 * 20 * 20;
        let capacity = DISTRICTS.len() * INWARDS_PER_DISTRICT;
        let wanted = wanted.clamp(1, capacity);
        let mut taken = vec![false; capacity];
        let mut units = Vec::with_capacity(wanted);
        while units.len() < wanted {
            let district = below(rng, DISTRICTS.len());
            let inward = below(rng, INWARDS_PER_DISTRICT);
            let slot = district * INWARDS_PER_DISTRICT + inward;
            if taken[slot] {
                continue;
            }
            taken[slot] = true;
            let (outward, _) = DISTRICTS[district];
            let sector = inward % 10;
            let first = INWARD_LETTERS[(inward / 10) % 20] as char;
            let second = INWARD_LETTERS[inward / 200] as char;
            units.push(Unit {
                postcode: format!("{outward} {sector}{first}{second}"),
                street: below(rng, STREET_NAMES.len()) as u16,
                kind: below(rng, STREET_KINDS.len()) as u8,
                town: district as u16,
                houses: rng.gen_range(6..=140u16),
            });
        }
        Self { units }
    }

    fn random_unit(&self, rng: &mut ChaCha8Rng) -> u32 {
        below(rng, self.units.len()) as u32
    }

    /// A random unit other than `not`, when there is one.
    pub(super) fn another_unit(&self, rng: &mut ChaCha8Rng, not: u32) -> u32 {
        if self.units.len() < 2 {
            return not;
        }
        loop {
            let unit = self.random_unit(rng);
            if unit != not {
                return unit;
            }
        }
    }

    pub(super) fn random_home(&self, rng: &mut ChaCha8Rng) -> Home {
        let unit = self.random_unit(rng);
        self.home_in(rng, unit)
    }

    pub(super) fn home_in(&self, rng: &mut ChaCha8Rng, unit: u32) -> Home {
        let houses = self.units[unit as usize].houses;
        Home {
            unit,
            house: rng.gen_range(1..=houses),
            flat: chance(rng, 10).then(|| rng.gen_range(1..=12u8)),
        }
    }

    pub(super) fn postcode(&self, unit: u32) -> &str {
        &self.units[unit as usize].postcode
    }

    /// Address lines as the department holds them: optional flat, house and street, town.
    /// `abbreviate` writes the street kind short ("Rd"), as some people and IdPs do.
    pub(super) fn lines(&self, home: Home, abbreviate: bool) -> Vec<String> {
        let unit = &self.units[home.unit as usize];
        let (kind, short) = STREET_KINDS[unit.kind as usize];
        let street = format!(
            "{} {} {}",
            home.house,
            STREET_NAMES[unit.street as usize],
            if abbreviate { short } else { kind }
        );
        let town = DISTRICTS[unit.town as usize].1.to_owned();
        match home.flat {
            Some(flat) => vec![format!("Flat {flat}"), street, town],
            None => vec![street, town],
        }
    }
}

// ---------------------------------------------------------------------------------------
// National Insurance numbers.

/// Hands out unique, valid National Insurance numbers.
///
/// A NINO is encoded as `prefix_index * 4_000_000 + digits * 4 + suffix_index`, so drawing
/// unique integers below [`NinoPool::space`] draws unique NINOs. Prefixes follow HMRC's rules
/// (first letter not D F I Q U V, second not D F I O Q U V, not BG GB KN NK NT TN ZZ), so
/// the specimen prefix QQ never occurs.
pub(super) struct NinoPool {
    prefixes: Vec<[u8; 2]>,
    used: HashSet<u32>,
}

impl NinoPool {
    fn new() -> Self {
        let mut prefixes = Vec::new();
        for first in b'A'..=b'Z' {
            for second in b'A'..=b'Z' {
                let pair = [first, second];
                if b"DFIQUV".contains(&first)
                    || b"DFIOQUV".contains(&second)
                    || [b"BG", b"GB", b"KN", b"NK", b"NT", b"TN", b"ZZ"].contains(&&pair)
                {
                    continue;
                }
                prefixes.push(pair);
            }
        }
        Self {
            prefixes,
            used: HashSet::new(),
        }
    }

    fn space(&self) -> u32 {
        self.prefixes.len() as u32 * 4_000_000
    }

    fn draw(&mut self, rng: &mut ChaCha8Rng) -> u32 {
        loop {
            let code = rng.gen_range(0..self.space());
            // Membership only: iteration order never reaches the output.
            if self.used.insert(code) {
                return code;
            }
        }
    }

    /// The canonical form, e.g. `AB123456C`.
    pub(super) fn format(&self, code: u32) -> String {
        let [a, b] = self.prefixes[(code / 4_000_000) as usize];
        let digits = (code / 4) % 1_000_000;
        let suffix = (b'A' + (code % 4) as u8) as char;
        format!("{}{}{digits:06}{suffix}", a as char, b as char)
    }
}

// ---------------------------------------------------------------------------------------
// Building the population.

/// Everything a query needs to describe a person.
pub(super) struct World {
    pub(super) names: Names,
    pub(super) places: Places,
    pub(super) ninos: NinoPool,
}

impl World {
    fn person(
        &mut self,
        rng: &mut ChaCha8Rng,
        sex: Sex,
        given: &'static str,
        surname: String,
        dob: Dob,
        home: Home,
    ) -> Person {
        let middle = self.names.middle_names(rng, sex, given);
        let previous_units = match rng.gen_range(0..100u32) {
            0..=14 => vec![self.places.another_unit(rng, home.unit)],
            15..=17 => vec![
                self.places.another_unit(rng, home.unit),
                self.places.another_unit(rng, home.unit),
            ],
            _ => Vec::new(),
        };
        // Double-barrelled surnames occur in about 1.5% of the population.
        let surname = if chance(rng, 2) && !surname.contains('-') && !surname.contains(' ') {
            let other = self.names.surname(rng);
            if other != surname && !other.contains(' ') {
                format!("{surname}-{other}")
            } else {
                surname
            }
        } else {
            surname
        };
        Person {
            given,
            middle,
            surname,
            previous_surname: None,
            dob,
            sex,
            gender_recorded: chance(rng, 85),
            home,
            previous_units,
            nino: self.ninos.draw(rng),
        }
    }

    /// A household at one address: a single person, a couple, or a family with grown-up
    /// children. Pushes at most `room` people.
    fn household(&mut self, rng: &mut ChaCha8Rng, people: &mut Vec<Person>, room: usize) {
        let home = self.places.random_home(rng);
        let surname = self.names.surname(rng);
        let kind = rng.gen_range(0..100u32);
        if kind < 40 || room < 2 {
            let sex = Sex::random(rng);
            let year = rng.gen_range(FIRST_BIRTH_YEAR..=LAST_BIRTH_YEAR);
            let given = self.names.given(rng, sex);
            let dob = Dob::random_in_year(rng, year);
            people.push(self.person(rng, sex, given, surname, dob, home));
            return;
        }
        let start = people.len();
        let head_sex = Sex::random(rng);
        let head_year = rng.gen_range(FIRST_BIRTH_YEAR..=1988);
        let head_given = self.names.given(rng, head_sex);
        let head_dob = Dob::random_in_year(rng, head_year);
        people.push(self.person(rng, head_sex, head_given, surname.clone(), head_dob, home));
        let partner_sex = if chance(rng, 93) {
            head_sex.other()
        } else {
            head_sex
        };
        let partner_year = (head_year as i32 + rng.gen_range(-6..=6i32))
            .clamp(FIRST_BIRTH_YEAR as i32, LAST_BIRTH_YEAR as i32)
            as u16;
        let partner_given = self.names.distinct_given(rng, partner_sex, &[head_given]);
        let partner_dob = Dob::random_in_year(rng, partner_year);
        let shares_name = chance(rng, 75);
        let partner_surname = if shares_name {
            surname.clone()
        } else {
            self.names.surname(rng)
        };
        let mut partner = self.person(
            rng,
            partner_sex,
            partner_given,
            partner_surname,
            partner_dob,
            home,
        );
        if shares_name && partner_sex == Sex::Female && chance(rng, 90) {
            let maiden = self.names.surname(rng);
            if maiden != partner.surname {
                partner.previous_surname = Some(maiden);
            }
        }
        people.push(partner);
        if kind >= 70 {
            let children = rng.gen_range(1..=3u32);
            let youngest_parent = head_year.min(partner_year);
            let mut taken: Vec<&'static str> = vec![head_given, partner_given];
            for _ in 0..children {
                if people.len() - start >= room {
                    break;
                }
                let year = youngest_parent + rng.gen_range(20..=40u16);
                if year > LAST_BIRTH_YEAR {
                    continue;
                }
                let sex = Sex::random(rng);
                // Parents rarely give two children the same name; a child named after a
                // parent does happen (see the FatherSon set) and is allowed here.
                let given = self.names.distinct_given(rng, sex, &taken[2..]);
                taken.push(given);
                let dob = Dob::random_in_year(rng, year);
                people.push(self.person(rng, sex, given, surname.clone(), dob, home));
            }
        }
    }
}

/// How many department records the hard-negative structures add per query.
fn structure_records(queries_per_set: usize) -> usize {
    // twins 2, namesakes 2, father and son 2, the absent person's relative 1, the same
    // again for the noisy variants, and the absent person's household member 1.
    15 * queries_per_set
}

pub(super) fn generate(spec: &CorpusSpec) -> Corpus {
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let q = spec.queries_per_set;
    let population_size = spec.records.saturating_sub(structure_records(q));
    let mut world = World {
        names: Names::new(&mut rng),
        places: Places::new(&mut rng, spec.records / PEOPLE_PER_POSTCODE + 1),
        ninos: NinoPool::new(),
    };

    let mut people: Vec<Person> = Vec::with_capacity(spec.records.max(structure_records(q)));
    while people.len() < population_size {
        let room = population_size - people.len();
        world.household(&mut rng, &mut people, room);
    }

    let mut plans: Vec<QueryPlan> = Vec::new();
    let mut absent: Vec<Person> = Vec::new();
    choose_record_queries(&mut rng, &mut world, &mut people, q, &mut plans);
    build_hard_negatives(
        &mut rng,
        &mut world,
        &mut people,
        &mut absent,
        q,
        &mut plans,
    );

    // File order: shuffled, so nothing about a record's place in the file hints at why it
    // is there. `position[original index]` is the record's place in the file.
    let mut order: Vec<u32> = (0..people.len() as u32).collect();
    shuffle(&mut rng, &mut order);
    let mut position = vec![0u32; people.len()];
    for (place, &original) in order.iter().enumerate() {
        position[original as usize] = place as u32;
    }
    let record_id = |original: usize| RecordId(format!("D{:07}", position[original] + 1));

    let mut labelled: Vec<LabelledQuery> = plans
        .iter()
        .map(|plan| {
            let (person, truth) = match plan.subject {
                Subject::Record(i) => (&people[i], Some(record_id(i))),
                Subject::Absent(i) => (&absent[i], None),
            };
            let household_dob = plan.household_member.map(|j| people[j].dob);
            LabelledQuery {
                set: plan.set,
                dataset: queries::assert(&mut rng, &world, person, plan, household_dob),
                truth,
                nino: Some(queries::typed_nino(
                    &mut rng,
                    &world.ninos.format(person.nino),
                )),
            }
        })
        .collect();
    shuffle(&mut rng, &mut labelled);
    for (n, query) in labelled.iter_mut().enumerate() {
        query.dataset.id = Some(format!("q-{}", n + 1));
    }

    let mut slots: Vec<Option<Person>> = people.into_iter().map(Some).collect();
    let records = order
        .iter()
        .enumerate()
        .filter_map(|(place, &original)| {
            let person = slots[original as usize].take()?;
            Some(department_record(
                &world,
                &person,
                RecordId(format!("D{:07}", place + 1)),
            ))
        })
        .collect();
    Corpus {
        records,
        queries: labelled,
    }
}

/// The department's record of a person: canonical spelling and formatting, current address
/// with lines, previous addresses as postcodes only (what the CSV file can carry).
fn department_record(world: &World, p: &Person, record_id: RecordId) -> DepartmentRecord {
    let mut addresses = vec![Address {
        lines: world.places.lines(p.home, false),
        postcode: Some(world.places.postcode(p.home.unit).to_owned()),
        current: true,
    }];
    addresses.extend(p.previous_units.iter().map(|&unit| Address {
        lines: Vec::new(),
        postcode: Some(world.places.postcode(unit).to_owned()),
        current: false,
    }));
    let mut attributes = std::collections::BTreeMap::new();
    attributes.insert("nino".to_owned(), world.ninos.format(p.nino));
    DepartmentRecord {
        record_id,
        dataset: MatchingDataset {
            id: None,
            first_name: Some(p.given.to_owned()),
            middle_names: p.middle.iter().map(|m| (*m).to_owned()).collect(),
            surnames: std::iter::once(p.surname.clone())
                .chain(p.previous_surname.clone())
                .collect(),
            date_of_birth: Some(p.dob.iso()),
            gender: p.gender_recorded.then(|| p.sex.as_str().to_owned()),
            addresses,
            attributes,
        },
    }
}

/// People living at the same address (same unit, house and flat), by address: a household.
fn households(people: &[Person]) -> BTreeMap<(u32, u16, Option<u8>), Vec<usize>> {
    let mut by_home: BTreeMap<(u32, u16, Option<u8>), Vec<usize>> = BTreeMap::new();
    for (i, p) in people.iter().enumerate() {
        by_home
            .entry((p.home.unit, p.home.house, p.home.flat))
            .or_default()
            .push(i);
    }
    by_home
}

/// The first other member of `i`'s household born on another day and called otherwise, if
/// any. A son named after his father, given his father's date of birth, *is* his father's
/// record in every field: no matcher can tell them apart, so such a query would measure
/// the labelling, not the engine.
fn household_member(
    households: &BTreeMap<(u32, u16, Option<u8>), Vec<usize>>,
    people: &[Person],
    i: usize,
) -> Option<usize> {
    let home = people[i].home;
    let me = &people[i];
    households
        .get(&(home.unit, home.house, home.flat))?
        .iter()
        .copied()
        .find(|&j| {
            let other = &people[j];
            j != i
                && other.dob != me.dob
                && other.given != me.given
                && !nickname_related(other.given, me.given)
        })
}

/// Whether `p` can carry the error of `set` (a name with an OCR-confusable shape, a date
/// with a valid transposition, a household to copy from...).
fn suitable(set: QuerySet, p: &Person, has_household_member: bool) -> bool {
    match set {
        QuerySet::Nickname => nicknames_of(p.given).is_some(),
        QuerySet::SwappedDayMonth => p.dob.swapped_iso().is_some(),
        QuerySet::Hyphenated => !p.surname.contains(' '),
        // Typos need a name long enough to mistype and still be a name.
        QuerySet::Typo => p.given.len() >= 3 && p.surname.len() >= 3,
        QuerySet::FirstNameTypo => p.given.len() >= 3,
        QuerySet::SurnameTypo => p.surname.len() >= 3,
        QuerySet::FirstNameOcr => errors::ocr_places(p.given) > 0,
        QuerySet::FirstNamePhonetic => errors::phonetic_places(p.given) > 0,
        QuerySet::SurnamePhonetic => errors::phonetic_places(&p.surname) > 0,
        QuerySet::DobTransposed => !errors::transpositions(p.dob).is_empty(),
        QuerySet::DobYearOffByOne => !(p.dob.month == 2 && p.dob.day == 29),
        QuerySet::DobFromHousehold => has_household_member,
        _ => true,
    }
}

/// Picks distinct people of the general population for the sets that ask about an ordinary
/// record, each person at most once across all sets.
fn choose_record_queries(
    rng: &mut ChaCha8Rng,
    world: &mut World,
    people: &mut [Person],
    q: usize,
    plans: &mut Vec<QueryPlan>,
) {
    let mut used = vec![false; people.len()];
    let households = households(people);
    // The sets about an ordinary record of the general population, in report order.
    for set in QuerySet::ALL.into_iter().filter(|s| !s.is_hard_negative()) {
        let mut chosen = 0;
        // Bounded so that a tiny population yields fewer queries instead of looping.
        let mut attempts = 0usize;
        while chosen < q && attempts < 200 * q.max(1) && !people.is_empty() {
            attempts += 1;
            let i = below(rng, people.len());
            if used[i] {
                continue;
            }
            let member = household_member(&households, people, i);
            if !suitable(set, &people[i], member.is_some()) {
                continue;
            }
            used[i] = true;
            if set == QuerySet::Hyphenated && !people[i].surname.contains('-') {
                let other = loop {
                    let other = world.names.surname(rng);
                    if other != people[i].surname && !other.contains(' ') {
                        break other;
                    }
                };
                people[i].surname = format!("{}-{other}", people[i].surname);
            }
            plans.push(QueryPlan {
                set,
                subject: Subject::Record(i),
                household_member: member,
            });
            chosen += 1;
        }
    }
}

/// Adds the confusable records of the hard-negative sets and plans their queries: twins,
/// namesakes, parents and children and absent people, clean and then noisy (new pairs, so
/// no person is asked about twice), and absent household members.
fn build_hard_negatives(
    rng: &mut ChaCha8Rng,
    world: &mut World,
    people: &mut Vec<Person>,
    absent: &mut Vec<Person>,
    q: usize,
    plans: &mut Vec<QueryPlan>,
) {
    let pairs: [(QuerySet, PairMaker); 6] = [
        (QuerySet::Twin, twins),
        (QuerySet::Namesake, namesakes),
        (QuerySet::FatherSon, parent_and_child),
        (QuerySet::TwinNoisy, twins),
        (QuerySet::NamesakeNoisy, namesakes),
        (QuerySet::FatherSonNoisy, parent_and_child),
    ];
    for (set, make) in pairs {
        for _ in 0..q {
            let (a, b) = make(rng, world);
            let asked = people.len() + below(rng, 2);
            people.push(a);
            people.push(b);
            plans.push(QueryPlan {
                set,
                subject: Subject::Record(asked),
                household_member: None,
            });
        }
    }
    for set in [QuerySet::Absent, QuerySet::AbsentNoisy] {
        for _ in 0..q {
            let (a, b) = match rng.gen_range(0..3u32) {
                0 => namesakes(rng, world),
                1 => twins(rng, world),
                _ => parent_and_child(rng, world),
            };
            // One of the pair has a record; the other, asked about, has none.
            let (with_record, without) = if chance(rng, 50) { (a, b) } else { (b, a) };
            people.push(with_record);
            absent.push(without);
            plans.push(QueryPlan {
                set,
                subject: Subject::Absent(absent.len() - 1),
                household_member: None,
            });
        }
    }
    for _ in 0..q {
        let (member, without) = household_pair(rng, world);
        people.push(member);
        absent.push(without);
        plans.push(QueryPlan {
            set: QuerySet::AbsentHousehold,
            subject: Subject::Absent(absent.len() - 1),
            household_member: Some(people.len() - 1),
        });
    }
}

/// Makes a pair of confusable people.
type PairMaker = fn(&mut ChaCha8Rng, &mut World) -> (Person, Person);

/// Two members of one household with the same surname at the same address, born on
/// different days: siblings a few years apart (or a couple sharing a name), with different
/// first names.
fn household_pair(rng: &mut ChaCha8Rng, world: &mut World) -> (Person, Person) {
    let (a, mut b) = twins(rng, world);
    b.previous_surname = None;
    loop {
        let gap = rng.gen_range(1..=6u16);
        let year = if chance(rng, 50) && a.dob.year - gap >= FIRST_BIRTH_YEAR {
            a.dob.year - gap
        } else {
            (a.dob.year + gap).min(LAST_BIRTH_YEAR)
        };
        let dob = Dob::random_in_year(rng, year);
        if dob != a.dob {
            b.dob = dob;
            return (a, b);
        }
    }
}

/// Twins: same surname, date of birth and address, different (and not nickname-related)
/// first names.
fn twins(rng: &mut ChaCha8Rng, world: &mut World) -> (Person, Person) {
    let home = world.places.random_home(rng);
    let surname = world.names.surname(rng);
    let year = rng.gen_range(FIRST_BIRTH_YEAR..=LAST_BIRTH_YEAR);
    let dob = Dob::random_in_year(rng, year);
    let sex_a = Sex::random(rng);
    let sex_b = if chance(rng, 65) {
        sex_a
    } else {
        sex_a.other()
    };
    let given_a = world.names.given(rng, sex_a);
    let given_b = world.names.distinct_given(rng, sex_b, &[given_a]);
    let a = world.person(rng, sex_a, given_a, surname.clone(), dob, home);
    let mut b = world.person(rng, sex_b, given_b, surname, dob, home);
    // Same family name, written the same way, even if one of them is double-barrelled.
    b.surname = a.surname.clone();
    (a, b)
}

/// Namesakes: the same common first name and surname and the same date of birth, living at
/// different addresses.
fn namesakes(rng: &mut ChaCha8Rng, world: &mut World) -> (Person, Person) {
    let sex = Sex::random(rng);
    let given = Names::common_given(rng, sex, 15);
    let surname = world.names.common_surname(rng, 25);
    let year = rng.gen_range(FIRST_BIRTH_YEAR..=LAST_BIRTH_YEAR);
    let dob = Dob::random_in_year(rng, year);
    let home_a = world.places.random_home(rng);
    let unit_b = world.places.another_unit(rng, home_a.unit);
    let home_b = world.places.home_in(rng, unit_b);
    let mut a = world.person(rng, sex, given, surname.clone(), dob, home_a);
    let mut b = world.person(rng, sex, given, surname.clone(), dob, home_b);
    a.surname = surname.clone();
    b.surname = surname;
    (a, b)
}

/// A parent and a child with the same first name and surname at one address, born 20 to 40
/// years apart (father and son, sometimes mother and daughter).
fn parent_and_child(rng: &mut ChaCha8Rng, world: &mut World) -> (Person, Person) {
    let sex = if chance(rng, 85) {
        Sex::Male
    } else {
        Sex::Female
    };
    let given = world.names.given(rng, sex);
    let surname = world.names.surname(rng);
    let gap = rng.gen_range(20..=40u16);
    let parent_year = rng.gen_range(FIRST_BIRTH_YEAR..=LAST_BIRTH_YEAR - gap);
    let parent_dob = Dob::random_in_year(rng, parent_year);
    let child_dob = Dob::random_in_year(rng, parent_year + gap);
    let home = world.places.random_home(rng);
    let mut parent = world.person(rng, sex, given, surname.clone(), parent_dob, home);
    let mut child = world.person(rng, sex, given, surname.clone(), child_dob, home);
    parent.surname = surname.clone();
    child.surname = surname;
    parent.previous_surname = None;
    child.previous_surname = None;
    (parent, child)
}
