//! Tests of the corpus generator itself: determinism, the structures each query set
//! promises, valid and unique NINOs, and files the importer reads back unchanged.

use std::collections::{BTreeMap, BTreeSet};

use matching::{DepartmentRecord, MatchingDataset, RecordId};

use super::names::{
    nickname_related, nicknames_of, FEMALE_GIVEN_NAMES, MALE_GIVEN_NAMES, SURNAMES,
};
use super::population::{chance, shuffle};
use super::queries::typo;
use super::*;

fn spec(seed: u64) -> CorpusSpec {
    CorpusSpec {
        seed,
        records: 6_000,
        queries_per_set: 40,
    }
}

fn files(corpus: &Corpus) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let mut records = Vec::new();
    let mut queries = Vec::new();
    let mut truth = Vec::new();
    write_records_csv(&corpus.records, &mut records).unwrap();
    write_queries_jsonl(&corpus.queries, &mut queries).unwrap();
    write_truth_jsonl(&corpus.queries, &mut truth).unwrap();
    (records, queries, truth)
}

fn fold(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

fn compact_postcode(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_uppercase()
}

fn current_postcode(d: &MatchingDataset) -> Option<String> {
    d.addresses
        .iter()
        .find(|a| a.current)
        .and_then(|a| a.postcode.as_deref())
        .map(compact_postcode)
}

fn first(d: &MatchingDataset) -> String {
    fold(d.first_name.as_deref().unwrap_or(""))
}

/// The first word of the asserted first name (some IdPs append the middle names).
fn first_word(d: &MatchingDataset) -> String {
    first(d).split(' ').next().unwrap_or("").to_owned()
}

fn surname(d: &MatchingDataset) -> String {
    fold(d.surnames.first().map(String::as_str).unwrap_or(""))
}

struct Index<'a> {
    by_id: BTreeMap<&'a RecordId, &'a DepartmentRecord>,
}

impl<'a> Index<'a> {
    fn new(corpus: &'a Corpus) -> Self {
        Self {
            by_id: corpus.records.iter().map(|r| (&r.record_id, r)).collect(),
        }
    }

    fn truth(&self, q: &LabelledQuery) -> &'a MatchingDataset {
        &self.by_id[q.truth.as_ref().expect("has a truth")].dataset
    }
}

#[test]
fn the_same_seed_writes_the_same_bytes_and_another_seed_does_not() {
    let a = files(&generate(&spec(11)));
    let b = files(&generate(&spec(11)));
    assert!(a == b, "same seed, different output");
    let c = files(&generate(&spec(12)));
    assert_ne!(a.0, c.0);
    assert_ne!(a.1, c.1);
}

#[test]
fn every_set_has_its_queries_with_unique_ids_and_existing_truths() {
    let corpus = generate(&spec(3));
    assert!(corpus.records.len() >= 6_000);
    let index = Index::new(&corpus);
    for set in QuerySet::ALL {
        let n = corpus.queries.iter().filter(|q| q.set == set).count();
        assert_eq!(n, 40, "{set}");
    }
    let ids: BTreeSet<_> = corpus
        .queries
        .iter()
        .map(|q| q.dataset.id.clone())
        .collect();
    assert_eq!(ids.len(), corpus.queries.len());
    assert!(ids.contains(&Some("q-1".to_owned())));
    let record_ids: BTreeSet<_> = corpus.records.iter().map(|r| &r.record_id).collect();
    assert_eq!(record_ids.len(), corpus.records.len(), "record ids unique");
    for q in &corpus.queries {
        assert_eq!(q.truth.is_none(), q.set.is_absent(), "{}", q.set);
        if let Some(truth) = &q.truth {
            assert!(index.by_id.contains_key(truth));
        }
    }
}

#[test]
fn ninos_are_valid_unique_and_typed_by_their_owner() {
    let corpus = generate(&spec(5));
    let mut seen = BTreeSet::new();
    for record in &corpus.records {
        let nino = &record.dataset.attributes["nino"];
        assert_eq!(
            matching::normalise_attribute("nino", nino).as_ref(),
            Ok(nino),
            "{nino}"
        );
        assert!(!nino.starts_with("QQ"));
        assert!(seen.insert(nino.clone()), "duplicate NINO");
    }
    let index = Index::new(&corpus);
    for q in &corpus.queries {
        let typed = q.nino.as_deref().expect("every query has a NINO");
        let typed = matching::normalise_attribute("nino", typed).expect("typed NINO is valid");
        match &q.truth {
            Some(_) => assert_eq!(typed, index.truth(q).attributes["nino"]),
            None => assert!(!seen.contains(&typed), "an absent person's NINO is on file"),
        }
    }
}

#[test]
fn record_sets_differ_from_their_record_in_the_promised_way() {
    let corpus = generate(&spec(8));
    let index = Index::new(&corpus);
    let (mut moved_with_old, mut moved_without_old) = (0, 0);
    let mut hyphen_forms = BTreeSet::new();
    for q in &corpus.queries {
        let d = &q.dataset;
        match q.set {
            QuerySet::Clean => {
                let r = index.truth(q);
                assert_eq!(first_word(d), first(r));
                assert_eq!(surname(d), surname(r));
                assert_eq!(d.date_of_birth, r.date_of_birth);
                assert_eq!(current_postcode(d), current_postcode(r));
            }
            QuerySet::Typo => {
                let r = index.truth(q);
                let first_differs = first_word(d) != first(r);
                let surname_differs = surname(d) != surname(r);
                assert!(
                    first_differs != surname_differs,
                    "exactly one name mistyped: {:?} {:?} / {:?} {:?}",
                    d.first_name,
                    d.surnames,
                    r.first_name,
                    r.surnames
                );
                assert_eq!(d.date_of_birth, r.date_of_birth);
            }
            QuerySet::Nickname => {
                let r = index.truth(q);
                let formal = r.first_name.as_deref().unwrap_or("");
                let nicknames = nicknames_of(formal).expect("formal name has nicknames");
                assert!(nicknames.iter().any(|n| fold(n) == first(d)));
                assert_eq!(surname(d), surname(r));
            }
            QuerySet::SwappedDayMonth => {
                let r = index.truth(q);
                let (rd, qd) = (
                    r.date_of_birth.clone().unwrap_or_default(),
                    d.date_of_birth.clone().unwrap_or_default(),
                );
                assert_ne!(rd, qd);
                assert_eq!(format!("{}-{}-{}", &rd[..4], &rd[8..], &rd[5..7]), qd);
            }
            QuerySet::MovedAddress => {
                let r = index.truth(q);
                assert_ne!(current_postcode(d), current_postcode(r));
                let old_sent = d.addresses.iter().any(|a| {
                    !a.current && a.postcode.as_deref().map(compact_postcode) == current_postcode(r)
                });
                if old_sent {
                    moved_with_old += 1;
                } else {
                    moved_without_old += 1;
                }
            }
            QuerySet::Hyphenated => {
                let r = index.truth(q);
                let full = surname(r);
                let parts: Vec<&str> = full.split('-').collect();
                assert_eq!(parts.len(), 2, "{full}");
                let sent = surname(d);
                assert!(
                    sent == parts[0] || sent == parts[1] || sent == parts.join(" "),
                    "{sent} / {full}"
                );
                hyphen_forms.insert(if sent.contains(' ') {
                    2
                } else {
                    usize::from(sent == parts[1])
                });
            }
            _ => {}
        }
    }
    assert!(moved_with_old > 5 && moved_without_old > 5);
    assert_eq!(hyphen_forms.len(), 3);
}

#[test]
fn error_kind_sets_carry_their_error() {
    let corpus = generate(&spec(10));
    let index = Index::new(&corpus);
    let mut census_clean = 0;
    for q in &corpus.queries {
        let d = &q.dataset;
        let Some(truth) = &q.truth else { continue };
        let r = index.truth(q);
        let real_date = |s: &Option<String>| s.as_deref().and_then(errors::parse_iso).is_some();
        match q.set {
            QuerySet::FirstNameTypo | QuerySet::FirstNameOcr | QuerySet::FirstNamePhonetic => {
                assert_ne!(first_word(d), first(r), "{}", q.set);
                assert_eq!(surname(d), surname(r));
                assert_eq!(d.date_of_birth, r.date_of_birth);
            }
            QuerySet::SurnameTypo | QuerySet::SurnamePhonetic => {
                assert_ne!(surname(d), surname(r), "{}", q.set);
                assert_eq!(first_word(d), first(r));
            }
            QuerySet::FirstNameMissing => assert_eq!(d.first_name, None),
            QuerySet::SurnameMissing => assert!(d.surnames.is_empty()),
            QuerySet::NamesSwapped => {
                assert_eq!(first(d), surname(r));
                assert_eq!(surname(d), first(r));
            }
            QuerySet::DobMissing => assert_eq!(d.date_of_birth, None),
            QuerySet::DobInvalid => assert!(!real_date(&d.date_of_birth)),
            QuerySet::DobOneDigit | QuerySet::DobTransposed | QuerySet::DobYearOffByOne => {
                assert!(real_date(&d.date_of_birth), "{}", q.set);
                assert_ne!(d.date_of_birth, r.date_of_birth);
            }
            QuerySet::DobFromHousehold => {
                assert_ne!(d.date_of_birth, r.date_of_birth);
                assert!(corpus.records.iter().any(|o| &o.record_id != truth
                    && o.dataset.date_of_birth == d.date_of_birth
                    && current_postcode(&o.dataset) == current_postcode(r)));
            }
            QuerySet::PostcodeDigit | QuerySet::PostcodeTransposed => {
                let sent = current_postcode(d).unwrap();
                let held = current_postcode(r).unwrap();
                assert_ne!(sent, held);
                assert_eq!(sent.len(), held.len());
            }
            QuerySet::PostcodeMissing => assert_eq!(d.addresses[0].postcode, None),
            QuerySet::AddressMissing => assert!(d.addresses.is_empty()),
            QuerySet::HouseNumberDiffers | QuerySet::StreetTypo | QuerySet::ValueReplaced => {
                assert_eq!(current_postcode(d), current_postcode(r));
                let lines = |x: &MatchingDataset| fold(&x.addresses[0].lines.join(" "));
                assert_ne!(lines(d), lines(r), "{}", q.set);
            }
            QuerySet::CensusMix => {
                census_clean += usize::from(
                    first_word(d) == first(r)
                        && surname(d) == surname(r)
                        && d.date_of_birth == r.date_of_birth,
                );
            }
            _ => {}
        }
    }
    assert!(
        census_clean > 30,
        "census noise is rare: {census_clean} of 40 clean"
    );
}

#[test]
fn hard_negatives_have_their_confusable_records_on_file() {
    let corpus = generate(&spec(9));
    let index = Index::new(&corpus);
    let records: Vec<&MatchingDataset> = corpus.records.iter().map(|r| &r.dataset).collect();
    let year = |d: &MatchingDataset| -> i32 {
        d.date_of_birth.as_deref().unwrap_or("0")[..4]
            .parse()
            .unwrap_or(0)
    };
    let mut absent_kinds = BTreeSet::new();
    for q in &corpus.queries {
        match q.set {
            QuerySet::Twin | QuerySet::TwinNoisy => {
                let r = index.truth(q);
                let twin = records.iter().find(|o| {
                    **o != r
                        && surname(o) == surname(r)
                        && o.date_of_birth == r.date_of_birth
                        && current_postcode(o) == current_postcode(r)
                        && first(o) != first(r)
                });
                let twin = twin.expect("twin on file");
                assert!(!nickname_related(
                    twin.first_name.as_deref().unwrap_or(""),
                    r.first_name.as_deref().unwrap_or("")
                ));
            }
            QuerySet::Namesake | QuerySet::NamesakeNoisy => {
                let r = index.truth(q);
                assert!(records.iter().any(|o| *o != r
                    && first(o) == first(r)
                    && surname(o) == surname(r)
                    && o.date_of_birth == r.date_of_birth
                    && current_postcode(o) != current_postcode(r)));
            }
            QuerySet::FatherSon | QuerySet::FatherSonNoisy => {
                let r = index.truth(q);
                assert!(records.iter().any(|o| *o != r
                    && first(o) == first(r)
                    && surname(o) == surname(r)
                    && current_postcode(o) == current_postcode(r)
                    && (20..=40).contains(&(year(o) - year(r)).abs())));
            }
            QuerySet::Absent => {
                let d = &q.dataset;
                let first_word = first(d).split(' ').next().unwrap_or("").to_owned();
                let same_name =
                    |o: &&&MatchingDataset| first(o) == first_word && surname(o) == surname(d);
                let namesake = records
                    .iter()
                    .any(|o| same_name(&o) && o.date_of_birth == d.date_of_birth);
                let twin = records.iter().any(|o| {
                    surname(o) == surname(d)
                        && o.date_of_birth == d.date_of_birth
                        && first(o) != first_word
                        && (d.addresses.is_empty() || current_postcode(o) == current_postcode(d))
                });
                let parent_or_child = records
                    .iter()
                    .any(|o| same_name(&o) && (20..=40).contains(&(year(o) - year(d)).abs()));
                assert!(namesake || twin || parent_or_child, "no relative on file");
                absent_kinds.insert((namesake, twin, parent_or_child));
            }
            QuerySet::AbsentHousehold => {
                // The household member's record: same surname, address and (copied) date
                // of birth, another first name.
                let d = &q.dataset;
                assert!(records.iter().any(|o| surname(o) == surname(d)
                    && o.date_of_birth == d.date_of_birth
                    && current_postcode(o) == current_postcode(d)
                    && first(o) != first_word(d)));
            }
            _ => {}
        }
    }
    assert!(absent_kinds.len() >= 3, "{absent_kinds:?}");
}

#[test]
fn csv_reads_back_through_the_importer_unchanged() {
    let corpus = generate(&spec(4));
    let (csv, _, _) = files(&corpus);
    let back: Vec<DepartmentRecord> = store::records_file::read_csv(csv.as_slice())
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(back.len(), corpus.records.len());
    for (read, written) in back.iter().zip(&corpus.records) {
        assert!(read == written, "{} differs", written.record_id);
    }
}

#[test]
fn truth_lines_name_the_set_in_snake_case() {
    let corpus = generate(&spec(6));
    let (_, queries, truth) = files(&corpus);
    let queries = String::from_utf8(queries).unwrap();
    let truth = String::from_utf8(truth).unwrap();
    assert_eq!(queries.lines().count(), truth.lines().count());
    for (q, t) in queries.lines().zip(truth.lines()) {
        let q: MatchingDataset = serde_json::from_str(q).unwrap();
        let t: TruthLine = serde_json::from_str(t).unwrap();
        assert_eq!(q.id, t.id);
    }
    assert!(truth.contains(r#""set":"swapped_day_month""#));
    assert!(truth.contains(r#""set":"father_son""#));
    assert!(truth.contains(r#""set":"first_name_ocr""#));
    assert!(truth.contains(r#""set":"census_mix""#));
    assert!(truth.contains(r#""set":"absent_household""#));
    assert!(truth.contains(r#""truth":null"#));
}

#[test]
fn common_names_are_common_and_share_birthdays() {
    let corpus = generate(&CorpusSpec {
        seed: 1,
        records: 60_000,
        queries_per_set: 10,
    });
    let n = corpus.records.len() as f64;
    let smiths = corpus
        .records
        .iter()
        .filter(|r| r.dataset.surnames.first().map(String::as_str) == Some("Smith"))
        .count() as f64;
    assert!(
        (0.006..0.025).contains(&(smiths / n)),
        "Smith share {}",
        smiths / n
    );
    let distinct: BTreeSet<_> = corpus
        .records
        .iter()
        .filter_map(|r| r.dataset.surnames.first())
        .collect();
    assert!(
        distinct.len() > 1_000,
        "long tail of surnames: {}",
        distinct.len()
    );
    // Same first name, surname and date of birth by chance, beyond the planted namesakes.
    let mut people: BTreeMap<(String, String, String), usize> = BTreeMap::new();
    for r in &corpus.records {
        let d = &r.dataset;
        *people
            .entry((
                first(d),
                surname(d),
                d.date_of_birth.clone().unwrap_or_default(),
            ))
            .or_default() += 1;
    }
    let shared = people.values().filter(|&&c| c > 1).count();
    assert!(shared > 10, "only {shared} shared name and birthday");
    let postcodes: BTreeSet<_> = corpus
        .records
        .iter()
        .filter_map(|r| current_postcode(&r.dataset))
        .collect();
    let per_postcode = n / postcodes.len() as f64;
    assert!(
        (3.0..40.0).contains(&per_postcode),
        "{per_postcode} per postcode"
    );
}

#[test]
fn name_lists_have_no_duplicates_and_nicknames_are_plentiful() {
    for list in [MALE_GIVEN_NAMES, FEMALE_GIVEN_NAMES, SURNAMES] {
        let set: BTreeSet<_> = list.iter().collect();
        assert_eq!(set.len(), list.len());
    }
    let pairs: usize = super::names::NICKNAMES.iter().map(|(_, n)| n.len()).sum();
    assert!(pairs >= 40);
}

#[test]
fn typos_change_the_name_once_and_keep_its_shape() {
    let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(1);
    for name in ["John", "Smith", "O'Brien", "Elizabeth", "Li", "Ann"] {
        for _ in 0..200 {
            let t = typo(&mut rng, name);
            if name.len() > 2 {
                assert_ne!(t.to_lowercase(), name.to_lowercase());
            }
            assert!(t.len().abs_diff(name.len()) <= 1, "{name} -> {t}");
        }
    }
    let mut v: Vec<u32> = (0..10).collect();
    shuffle(&mut rng, &mut v);
    assert_eq!(v.iter().copied().collect::<BTreeSet<_>>().len(), 10);
    let hits = (0..1000).filter(|_| chance(&mut rng, 30)).count();
    assert!((200..400).contains(&hits));
}
