//! Property tests: arbitrary (including hostile) input never panics, and a few invariants
//! hold for every input.

use std::collections::BTreeMap;

use matching::{
    match_cycle1, match_cycle3, normalise_attribute, normalise_name, normalise_postcode,
    query_blocking_keys, record_blocking_keys, Address, DepartmentRecord, MatchPolicy,
    MatchingDataset, Outcome, RecordId,
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
    fn a_record_always_matches_itself(me in person(), others in prop::collection::vec(person(), 0..6)) {
        let me_record = DepartmentRecord { record_id: RecordId("ME".into()), dataset: me.clone() };
        let alone = match_cycle1(&me, std::slice::from_ref(&me_record), &MatchPolicy::default());
        prop_assert_eq!(alone.record_id.as_ref(), Some(&me_record.record_id), "{:?}", alone.reasons);
        // Among other people it is still found, or (if one is a near-double) nobody is.
        let mut candidates: Vec<DepartmentRecord> = others
            .into_iter()
            .enumerate()
            .map(|(i, dataset)| DepartmentRecord { record_id: RecordId(format!("O{i}")), dataset })
            .collect();
        candidates.push(me_record.clone());
        let d = match_cycle1(&me, &candidates, &MatchPolicy::default());
        if d.outcome == Outcome::Match {
            prop_assert_eq!(d.record_id.as_ref(), Some(&me_record.record_id));
        }
        // Its own blocking keys find it.
        let stored = record_blocking_keys(&me);
        prop_assert!(query_blocking_keys(&me).iter().any(|k| stored.contains(k)));
    }

    #[test]
    fn decisions_do_not_depend_on_candidate_order(
        (q, c, shuffled) in (person(), prop::collection::vec(person(), 0..8)).prop_flat_map(|(q, ds)| {
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
        prop_assert_eq!(match_cycle1(&q, &c, &policy), match_cycle1(&q, &shuffled, &policy));
        prop_assert_eq!(
            match_cycle3(&q, "nino", &nino, &c, &policy),
            match_cycle3(&q, "nino", &nino, &shuffled, &policy)
        );
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
