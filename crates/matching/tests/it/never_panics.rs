//! Property tests: arbitrary (including hostile) input never panics, and a few invariants
//! hold for every input.

use std::collections::BTreeMap;

use matching::{
    match_cycle1, match_cycle3, normalise_attribute, normalise_name, normalise_postcode,
    query_blocking_keys, record_blocking_keys, Address, Decision, DepartmentRecord, MatchPolicy,
    MatchingDataset, Outcome, RecordId, MAX_QUERY_KEYS,
};
use proptest::prelude::*;

/// Short strings drawn from characters that exercise the normalisers: letters with
/// accents, digits, separators, apostrophes, combining marks, odd Unicode.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9 '\\-.,]{0,12}",
        "\\PC{0,12}",
        Just(String::new()),
        Just("1980-04-10".to_owned()),
        Just("1980-02-30".to_owned()),
        Just("LS1 4AB".to_owned()),
        Just("Smith".to_owned()),
    ]
}

fn address() -> impl Strategy<Value = Address> {
    (
        prop::collection::vec(text(), 0..3),
        prop::option::of(text()),
        any::<bool>(),
    )
        .prop_map(|(lines, postcode, current)| Address {
            lines,
            postcode,
            current,
        })
}

fn dataset() -> impl Strategy<Value = MatchingDataset> {
    (
        prop::option::of(text()),
        prop::option::of(text()),
        prop::collection::vec(text(), 0..3),
        prop::option::of(text()),
        prop::collection::vec(address(), 0..3),
        prop::collection::btree_map(text(), text(), 0..3),
    )
        .prop_map(
            |(id, first_name, surnames, date_of_birth, addresses, attributes)| MatchingDataset {
                id,
                first_name,
                middle_names: vec![],
                surnames,
                date_of_birth,
                gender: None,
                addresses,
                attributes: attributes.into_iter().collect::<BTreeMap<_, _>>(),
            },
        )
}

/// A plausible person: names from a small pool (so near-doubles happen), a valid date of
/// birth, a UK postcode with a house number, sometimes a NINO.
fn person() -> impl Strategy<Value = MatchingDataset> {
    let first = prop::sample::select(vec![
        "John", "Jon", "Anna", "Hannah", "William", "Bill", "Chris", "Zoë", "Siobhán",
    ]);
    let surname = prop::sample::select(vec![
        "Smith",
        "Smyth",
        "Jones",
        "Smith-Jones",
        "O'Brien",
        "Taylor",
        "Nguyen",
    ]);
    (
        first,
        surname,
        1930i32..2008,
        1u32..13,
        1u32..29,
        prop::sample::select(vec!["LS1 4AB", "M1 1AE", "BS1 5AA", "SW1A 1AA"]),
        1u32..40,
        prop::option::of("AB[0-9]{6}[A-D]"),
    )
        .prop_map(
            |(first, surname, year, month, day, postcode, house, nino)| MatchingDataset {
                id: None,
                first_name: Some(first.to_owned()),
                middle_names: vec![],
                surnames: vec![surname.to_owned()],
                date_of_birth: Some(format!("{year:04}-{month:02}-{day:02}")),
                gender: None,
                addresses: vec![Address {
                    lines: vec![format!("{house} High Street")],
                    postcode: Some(postcode.to_owned()),
                    current: true,
                }],
                attributes: nino.into_iter().map(|n| ("nino".to_owned(), n)).collect(),
            },
        )
}

/// Longer strings of any Unicode (including control-free oddities), for size tests.
fn long_text() -> impl Strategy<Value = String> {
    prop_oneof![text(), "\\PC{0,40}", "[a-zA-Z ]{0,60}"]
}

/// A dataset with many values in every multi-valued field.
fn big_dataset() -> impl Strategy<Value = MatchingDataset> {
    (
        prop::option::of(long_text()),
        prop::collection::vec(long_text(), 0..8),
        prop::collection::vec(long_text(), 0..40),
        prop::option::of(long_text()),
        prop::option::of(long_text()),
        prop::collection::vec(
            (
                prop::collection::vec(long_text(), 0..3),
                prop::option::of(long_text()),
            ),
            0..30,
        ),
        prop::collection::btree_map(long_text(), long_text(), 0..8),
    )
        .prop_map(
            |(first_name, middle_names, surnames, date_of_birth, gender, addresses, attributes)| {
                MatchingDataset {
                    id: None,
                    first_name,
                    middle_names,
                    surnames,
                    date_of_birth,
                    gender,
                    addresses: addresses
                        .into_iter()
                        .map(|(lines, postcode)| Address {
                            lines,
                            postcode,
                            current: false,
                        })
                        .collect(),
                    attributes,
                }
            },
        )
}

/// Someone unrelated to anyone [`person`] generates: surnames from another pool, any
/// first name, date of birth, postcode and house number (so same-address namesakes of
/// the first name happen). Callers drop the ones born on the same day.
fn unrelated() -> impl Strategy<Value = MatchingDataset> {
    let surname = prop::sample::select(vec![
        "Okafor",
        "Kowalski",
        "Fitzgerald",
        "Lindqvist",
        "Papadopoulos",
        "Abernathy",
    ]);
    (person(), surname).prop_map(|(mut d, surname)| {
        d.surnames = vec![surname.to_owned()];
        d
    })
}

fn as_records(prefix: &str, ds: Vec<MatchingDataset>) -> Vec<DepartmentRecord> {
    ds.into_iter()
        .enumerate()
        .map(|(i, dataset)| DepartmentRecord {
            record_id: RecordId(format!("{prefix}{i}")),
            dataset,
        })
        .collect()
}

/// Outcome, record and score: what must not depend on the order of the candidates.
fn summary(d: &Decision) -> (Outcome, Option<RecordId>, f64) {
    (d.outcome, d.record_id.clone(), d.score)
}

fn records() -> impl Strategy<Value = Vec<DepartmentRecord>> {
    prop::collection::vec(dataset(), 0..4).prop_map(|ds| {
        ds.into_iter()
            .enumerate()
            .map(|(i, dataset)| DepartmentRecord {
                record_id: RecordId(format!("R{i}")),
                dataset,
            })
            .collect()
    })
}

proptest! {
    #[test]
    fn arbitrary_datasets_never_panic(q in dataset(), c in records(), kind in text(), value in text()) {
        for d in [match_cycle1(&q, &c, &MatchPolicy::default()), match_cycle3(&q, &kind, &value, &c, &MatchPolicy::default())] {
            prop_assert_eq!(d.record_id.is_some(), d.outcome == Outcome::Match);
            prop_assert!(d.score.is_finite());
        }
        let _ = query_blocking_keys(&q);
        let _ = format!("{q:?}");
    }

    #[test]
    fn a_record_alone_is_never_ambiguous(q in dataset()) {
        let c = vec![DepartmentRecord { record_id: RecordId("R".into()), dataset: q.clone() }];
        let d = match_cycle1(&q, &c, &MatchPolicy::default());
        prop_assert_ne!(d.outcome, Outcome::Ambiguous);
    }

    #[test]
    fn a_record_always_matches_itself(
        me in person(),
        unrelated in prop::collection::vec(unrelated(), 0..6),
        others in prop::collection::vec(person(), 0..6),
    ) {
        let policy = MatchPolicy::default();
        let me_record = DepartmentRecord { record_id: RecordId("ME".into()), dataset: me.clone() };
        let alone = match_cycle1(&me, std::slice::from_ref(&me_record), &policy);
        prop_assert_eq!(alone.outcome, Outcome::Match, "{:?}", alone.reasons);
        prop_assert_eq!(alone.record_id.as_ref(), Some(&me_record.record_id), "{:?}", alone.reasons);
        // Among people with other surnames and dates of birth it is still found, at cycle 1.
        let mut candidates = as_records(
            "U",
            unrelated.into_iter().filter(|u| u.date_of_birth != me.date_of_birth).collect(),
        );
        candidates.push(me_record.clone());
        let d = match_cycle1(&me, &candidates, &policy);
        prop_assert_eq!(d.outcome, Outcome::Match, "{:?}", d.reasons);
        prop_assert_eq!(d.record_id.as_ref(), Some(&me_record.record_id), "{:?}", d.reasons);
        prop_assert_eq!(d.score, alone.score);
        // Among arbitrary people it is still found, or (if one is a near-double) nobody is.
        let mut candidates = as_records("O", others);
        candidates.push(me_record.clone());
        let d = match_cycle1(&me, &candidates, &policy);
        if d.outcome == Outcome::Match {
            prop_assert_eq!(d.record_id.as_ref(), Some(&me_record.record_id));
        }
        // Its own blocking keys find it.
        let stored = record_blocking_keys(&me);
        prop_assert!(query_blocking_keys(&me).iter().any(|k| stored.contains(k)));
    }

    #[test]
    fn decisions_do_not_depend_on_candidate_order(
        (q, c, shuffled) in (person(), prop::collection::vec(prop_oneof![person(), unrelated()], 0..8)).prop_flat_map(|(q, ds)| {
            let c: Vec<DepartmentRecord> = ds
                .into_iter()
                .enumerate()
                .map(|(i, dataset)| DepartmentRecord { record_id: RecordId(format!("R{}", i % 5)), dataset })
                .collect();
            (Just(q), Just(c.clone()), Just(c).prop_shuffle())
        }),
        nino in "AB[0-9]{6}[A-D]",
    ) {
        let policy = MatchPolicy::default();
        let mut reversed = c.clone();
        reversed.reverse();
        let d = match_cycle1(&q, &c, &policy);
        for other in [&shuffled, &reversed] {
            let e = match_cycle1(&q, other, &policy);
            prop_assert_eq!(summary(&d), summary(&e));
            prop_assert_eq!(&d, &e);
        }
        let d = match_cycle3(&q, "nino", &nino, &c, &policy);
        for other in [&shuffled, &reversed] {
            let e = match_cycle3(&q, "nino", &nino, other, &policy);
            prop_assert_eq!(summary(&d), summary(&e));
            prop_assert_eq!(&d, &e);
        }
    }

    #[test]
    fn decisions_over_arbitrary_candidates_do_not_depend_on_their_order(
        (q, c, shuffled) in (dataset(), records()).prop_flat_map(|(q, c)| {
            (Just(q), Just(c.clone()), Just(c).prop_shuffle())
        }),
    ) {
        let policy = MatchPolicy::default();
        let mut reversed = c.clone();
        reversed.reverse();
        let d = match_cycle1(&q, &c, &policy);
        prop_assert_eq!(summary(&d), summary(&match_cycle1(&q, &shuffled, &policy)));
        prop_assert_eq!(summary(&d), summary(&match_cycle1(&q, &reversed, &policy)));
    }

    #[test]
    fn arbitrary_json_never_panics(s in "\\PC{0,64}") {
        let _ = serde_json::from_str::<MatchingDataset>(&s);
        let _ = serde_json::from_str::<DepartmentRecord>(&s);
    }

    #[test]
    fn normalisers_are_idempotent(s in text()) {
        let n = normalise_name(&s);
        prop_assert_eq!(normalise_name(&n), n.clone());
        prop_assert_eq!(n.trim(), n.as_str());
        let p = normalise_postcode(&s);
        prop_assert_eq!(normalise_postcode(&p), p.clone());
        for kind in ["nino", "driving_licence", "other"] {
            if let Ok(v) = normalise_attribute(kind, &s) {
                prop_assert_eq!(normalise_attribute(kind, &v), Ok(v.clone()));
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn inputs_of_any_size_never_panic(
        q in big_dataset(),
        small in prop::collection::vec(prop_oneof![dataset(), person()], 0..40),
        big in prop::collection::vec(big_dataset(), 0..3),
        kind in long_text(),
        value in long_text(),
    ) {
        let c = as_records("R", small.into_iter().chain(big).collect());
        let policy = MatchPolicy::default();
        for d in [
            match_cycle1(&q, &c, &policy),
            match_cycle3(&q, &kind, &value, &c, &policy),
            match_cycle3(&q, "nino", &value, &c, &policy),
        ] {
            prop_assert_eq!(d.record_id.is_some(), d.outcome == Outcome::Match);
            prop_assert!(d.score.is_finite());
            prop_assert!((0.0..=1.0).contains(&d.probability));
        }
        prop_assert!(query_blocking_keys(&q).len() <= MAX_QUERY_KEYS);
        for r in &c {
            prop_assert!(query_blocking_keys(&r.dataset).len() <= MAX_QUERY_KEYS);
            let _ = record_blocking_keys(&r.dataset);
        }
    }

    #[test]
    fn queries_with_many_names_and_postcodes_look_up_a_bounded_number_of_keys(
        first in "[A-Za-z]{1,12}",
        surnames in prop::collection::vec("[A-Za-z][A-Za-z' -]{0,15}", 0..200),
        postcodes in prop::collection::vec("[A-Z]{1,2}[0-9]{1,2} [0-9][A-Z]{2}", 0..200),
        (year, month, day) in (1900i32..2020, 1u32..13, 1u32..13),
    ) {
        let q = MatchingDataset {
            first_name: Some(first),
            surnames,
            date_of_birth: Some(format!("{year:04}-{month:02}-{day:02}")),
            addresses: postcodes
                .into_iter()
                .map(|p| Address { lines: vec![], postcode: Some(p), current: false })
                .collect(),
            ..MatchingDataset::default()
        };
        prop_assert!(query_blocking_keys(&q).len() <= MAX_QUERY_KEYS);
    }
}
