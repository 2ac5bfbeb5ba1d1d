//! Property tests: arbitrary (including hostile) input never panics, and a few invariants
//! hold for every input.

use std::collections::BTreeMap;

use matching::{
    blocking_date_of_birth, match_cycle1, match_cycle3, normalise_attribute, normalise_name,
    normalise_postcode, Address, DepartmentRecord, MatchPolicy, MatchingDataset, Outcome, RecordId,
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
            prop_assert!(d.score >= 0.0);
        }
        let _ = blocking_date_of_birth(&q);
        let _ = format!("{q:?}");
    }

    #[test]
    fn a_record_matches_itself_or_nothing_is_guessed(q in dataset()) {
        let c = vec![DepartmentRecord { record_id: RecordId("R".into()), dataset: q.clone() }];
        let d = match_cycle1(&q, &c, &MatchPolicy::default());
        prop_assert_ne!(d.outcome, Outcome::Ambiguous);
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
