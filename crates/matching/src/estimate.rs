//! Estimating the model's parameters from data instead of setting them by hand.
//!
//! * `u` (how often a level occurs between two different people) comes from the
//!   department's own records: the exact-agreement levels from the value frequencies of
//!   every record (the chance that two records drawn at random share a value is the sum of
//!   the squared frequencies), every other level from random pairs of records.
//! * `m` (how often a level occurs between a query and the person's own record) comes from
//!   labelled pairs: queries whose record is known, such as the synthetic corpus with its
//!   published error model or a department's own reviewed sample.
//!
//! Counts are smoothed (half a pair added to every level) so that a level never seen in
//! the sample gets a small probability rather than an infinite weight, and no level is
//! taken as nearly impossible for the person's own record: `m` is at least [`M_FLOOR`]
//! (a sample of labelled pairs cannot show every way real records go wrong).

use std::collections::{BTreeMap, HashMap};

use crate::compare::{self, Person};
use crate::model::{Field, Level, Model, Probabilities};
use crate::normalise::normalise_attribute;
use crate::{DepartmentRecord, MatchingDataset};

/// A query and the record of the person it is about, with the value of the cycle-3
/// attribute the citizen would type (if the department holds one).
#[derive(Debug, Clone, Copy)]
pub struct LabelledPair<'a> {
    /// What the identity provider asserted.
    pub query: &'a MatchingDataset,
    /// The person's own record.
    pub record: &'a DepartmentRecord,
    /// The attribute type and the value the citizen would type at cycle 3.
    pub attribute: Option<(&'a str, &'a str)>,
}

/// How many random pairs of records `u` is estimated from, at most.
pub const RANDOM_PAIRS: usize = 2_000_000;

/// The smallest `m` of any level.
pub const M_FLOOR: f64 = 0.001;

/// How many records the random pairs are drawn among (normalised once each).
const SAMPLE_RECORDS: usize = 20_000;

/// Level counts per field.
#[derive(Debug, Default)]
struct Counts(BTreeMap<Field, BTreeMap<Level, f64>>);

impl Counts {
    fn add(&mut self, field: Field, level: Level) {
        if level != Level::Missing {
            *self.0.entry(field).or_default().entry(level).or_default() += 1.0;
        }
    }

    /// Whether `level` of `field` was seen at all.
    fn seen(&self, field: Field, level: Level) -> bool {
        self.0
            .get(&field)
            .and_then(|c| c.get(&level))
            .is_some_and(|n| *n > 0.0)
    }

    /// Smoothed probability of each level of `field`.
    fn probabilities(&self, field: Field) -> BTreeMap<Level, f64> {
        let counts = self.0.get(&field);
        let levels = field.levels();
        let count = |l: &Level| counts.and_then(|c| c.get(l)).copied().unwrap_or(0.0);
        let total: f64 = levels.iter().map(count).sum::<f64>() + 0.5 * levels.len() as f64;
        levels
            .iter()
            .map(|l| (*l, (count(l) + 0.5) / total))
            .collect()
    }
}

/// The comparison levels of a pair, field by field, as the engine scores them (without
/// the cross-wise name comparison and the household rule).
fn levels(q: &Person, r: &Person) -> [(Field, Level); 5] {
    [
        (Field::FirstName, compare::first_name(q, r)),
        (Field::Surname, compare::surname(q, r)),
        (Field::DateOfBirth, compare::date_of_birth(q, r)),
        (Field::Address, compare::address(q, r)),
        (Field::Gender, compare::gender_level(q, r)),
    ]
}

/// A deterministic sequence of indexes (SplitMix64), so an estimate is reproducible.
struct Indexes(u64);

impl Indexes {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z % n as u64) as usize
    }
}

/// Value counts of the fields whose exact agreement is rarest, over every record.
#[derive(Debug, Default)]
struct Frequencies {
    first_name: HashMap<String, f64>,
    surname: HashMap<String, f64>,
    date_of_birth: HashMap<String, f64>,
    home: HashMap<String, f64>,
    attribute: HashMap<String, f64>,
}

impl Frequencies {
    fn count(records: &[DepartmentRecord], attribute: Option<&str>) -> Self {
        let mut f = Frequencies::default();
        let bump = |map: &mut HashMap<String, f64>, key: Option<String>| {
            if let Some(key) = key {
                *map.entry(key).or_default() += 1.0;
            }
        };
        for record in records {
            let p = Person::new(&record.dataset);
            bump(&mut f.first_name, p.first().map(str::to_owned));
            bump(&mut f.surname, p.surnames().next().map(str::to_owned));
            bump(&mut f.date_of_birth, p.date_of_birth.map(|d| d.to_string()));
            bump(&mut f.home, p.home());
            if let Some(kind) = attribute {
                let held = record.dataset.attributes.get(kind);
                bump(
                    &mut f.attribute,
                    held.and_then(|v| normalise_attribute(kind, v).ok()),
                );
            }
        }
        f
    }

    /// Sum of squared frequencies: the chance that two records drawn at random share a
    /// value (records without one left out).
    fn coincidence(counts: &HashMap<String, f64>) -> Option<f64> {
        let total: f64 = counts.values().sum();
        (total >= 2.0).then(|| counts.values().map(|c| (c / total).powi(2)).sum())
    }
}

/// How many of the commonest values of each name field the model lists.
pub const TERM_FREQUENCIES: usize = 1000;

/// The commonest values and their share of the records that have one.
fn commonest(counts: &HashMap<String, f64>) -> BTreeMap<String, f64> {
    let total: f64 = counts.values().sum();
    let mut sorted: Vec<(&String, &f64)> = counts.iter().collect();
    sorted.sort_by(|a, b| b.1.total_cmp(a.1).then_with(|| a.0.cmp(b.0)));
    sorted
        .into_iter()
        .take(TERM_FREQUENCIES)
        .map(|(v, c)| (v.clone(), rounded_probability(c / total)))
        .collect()
}

/// The level probabilities between different people.
fn u_probabilities(records: &[DepartmentRecord], pairs: usize) -> Counts {
    let mut indexes = Indexes(0x5EED);
    let sample: Vec<Person> = (0..SAMPLE_RECORDS.min(records.len()))
        .map(|_| Person::new(&records[indexes.below(records.len())].dataset))
        .collect();
    let mut counts = Counts::default();
    if sample.len() < 2 {
        return counts;
    }
    for _ in 0..pairs {
        let (a, b) = (indexes.below(sample.len()), indexes.below(sample.len()));
        if a == b {
            continue;
        }
        for (field, level) in levels(&sample[a], &sample[b]) {
            counts.add(field, level);
        }
    }
    counts
}

/// Replaces the sampled probability of an exact level with the exact coincidence rate,
/// keeping the other levels' share.
fn with_exact(
    mut u: BTreeMap<Level, f64>,
    level: Level,
    rate: Option<f64>,
) -> BTreeMap<Level, f64> {
    if let (Some(rate), Some(sampled)) = (rate, u.get(&level).copied()) {
        let rest = 1.0 - sampled;
        for (l, p) in u.iter_mut() {
            *p = if *l == level {
                rate
            } else {
                *p / rest * (1.0 - rate)
            };
        }
    }
    u
}

/// A level never seen between two different people in the sample gets the `u` of the
/// field's best level (exact agreement, estimated precisely from the value frequencies):
/// not seeing it says it is rare, not that it is rarer than exact agreement.
fn unseen_as_rare_as_the_best(
    mut u: BTreeMap<Level, f64>,
    field: Field,
    random: &Counts,
) -> BTreeMap<Level, f64> {
    let best = field.levels()[0];
    let Some(floor) = u.get(&best).copied() else {
        return u;
    };
    for (level, p) in u.iter_mut() {
        if *level != best && !random.seen(field, *level) {
            *p = p.max(floor);
        }
    }
    u
}

/// Estimates a model: `u` from `records`, `m` from `labelled`, prior from the number of
/// records. `source` says where the data came from, for people reading the model.
pub fn estimate(
    records: &[DepartmentRecord],
    labelled: &[LabelledPair<'_>],
    source: &str,
) -> Model {
    let random = u_probabilities(records, RANDOM_PAIRS);
    let mut own = Counts::default();
    let mut attribute = Counts::default();
    for pair in labelled {
        let (q, r) = (Person::new(pair.query), Person::new(&pair.record.dataset));
        for (field, level) in levels(&q, &r) {
            own.add(field, level);
        }
        if let Some((kind, typed)) = pair.attribute {
            let held = pair.record.dataset.attributes.get(kind);
            let agree = held.is_some_and(|held| {
                normalise_attribute(kind, typed).ok() == normalise_attribute(kind, held).ok()
            });
            attribute.add(
                Field::Attribute,
                if agree {
                    Level::Exact
                } else {
                    Level::Different
                },
            );
        }
    }
    let kind = labelled
        .iter()
        .find_map(|p| p.attribute.map(|(kind, _)| kind));
    let frequencies = Frequencies::count(records, kind);
    let exact_rates = [
        (
            Field::FirstName,
            Level::Exact,
            Frequencies::coincidence(&frequencies.first_name),
        ),
        (
            Field::Surname,
            Level::Exact,
            Frequencies::coincidence(&frequencies.surname),
        ),
        (
            Field::DateOfBirth,
            Level::Exact,
            Frequencies::coincidence(&frequencies.date_of_birth),
        ),
        (
            Field::Address,
            Level::PostcodeAndHouse,
            Frequencies::coincidence(&frequencies.home),
        ),
    ];
    let attribute_u = Frequencies::coincidence(&frequencies.attribute)
        .unwrap_or(0.0)
        .max(1.0 / records.len().max(1) as f64);
    let mut fields = BTreeMap::new();
    for field in Field::ALL {
        let m = if field == Field::Attribute {
            attribute.probabilities(field)
        } else {
            own.probabilities(field)
        };
        let mut u = random.probabilities(field);
        if let Some((_, level, rate)) = exact_rates.iter().find(|(f, _, _)| *f == field) {
            u = with_exact(u, *level, *rate);
        }
        if field == Field::Attribute {
            u = BTreeMap::from([
                (Level::Exact, attribute_u),
                (Level::Different, 1.0 - attribute_u),
            ]);
        } else {
            u = unseen_as_rare_as_the_best(u, field, &random);
        }
        let levels = field
            .levels()
            .iter()
            .map(|l| {
                let p = Probabilities {
                    m: m.get(l).copied().unwrap_or(M_FLOOR).max(M_FLOOR),
                    u: u.get(l).copied().unwrap_or(f64::MIN_POSITIVE),
                };
                (l.code().to_owned(), rounded(p))
            })
            .collect();
        fields.insert(field.code().to_owned(), levels);
    }
    let term_frequencies = BTreeMap::from([
        (
            Field::FirstName.code().to_owned(),
            commonest(&frequencies.first_name),
        ),
        (
            Field::Surname.code().to_owned(),
            commonest(&frequencies.surname),
        ),
    ]);
    Model {
        source: source.to_owned(),
        prior_bits: -(records.len().max(1) as f64).log2(),
        fields,
        term_frequencies,
    }
}

/// A probability to four significant digits, so the model file reads and diffs well.
fn rounded_probability(x: f64) -> f64 {
    if x <= 0.0 {
        return x;
    }
    let scale = 10f64.powi(3 - x.log10().floor() as i32);
    (x * scale).round() / scale
}

fn rounded(p: Probabilities) -> Probabilities {
    Probabilities {
        m: rounded_probability(p.m),
        u: rounded_probability(p.u),
    }
}
