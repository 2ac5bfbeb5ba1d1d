//! Behaviour tests for the public matching API.

use std::collections::BTreeMap;

use matching::{
    blocking_date_of_birth, match_cycle1, match_cycle3, normalise_attribute,
    normalise_date_of_birth, normalise_name, normalise_postcode, Address, Decision,
    DepartmentRecord, MatchPolicy, MatchingDataset, MatchingError, Outcome, RecordId,
};

fn person(first: &str, surnames: &[&str], dob: &str, postcodes: &[&str]) -> MatchingDataset {
    MatchingDataset {
        id: Some("q-1".into()),
        first_name: Some(first.into()),
        middle_names: vec![],
        surnames: surnames.iter().map(|s| s.to_string()).collect(),
        date_of_birth: Some(dob.into()),
        gender: None,
        addresses: postcodes
            .iter()
            .enumerate()
            .map(|(i, p)| Address {
                lines: vec!["1 Some Street".into()],
                postcode: Some(p.to_string()),
                current: i == 0,
            })
            .collect(),
        attributes: BTreeMap::new(),
    }
}

fn record(id: &str, dataset: MatchingDataset) -> DepartmentRecord {
    DepartmentRecord {
        record_id: RecordId(id.into()),
        dataset: MatchingDataset {
            id: None,
            ..dataset
        },
    }
}

fn with_attr(mut d: MatchingDataset, k: &str, v: &str) -> MatchingDataset {
    d.attributes.insert(k.into(), v.into());
    d
}

fn william() -> MatchingDataset {
    person(
        "William",
        &["Smith-Jones", "Smith"],
        "1980-04-10",
        &["LS1 4AB", "YO1 7HH"],
    )
}

fn has_reason(d: &Decision, r: &str) -> bool {
    d.reasons.iter().any(|x| x == r)
}

// ---------------------------------------------------------------------------------------
// Normalisation

#[test]
fn name_normalisation_table() {
    let table: &[(&str, &str)] = &[
        ("William", "william"),
        ("WILLIAM", "william"),
        ("  william  ", "william"),
        ("José", "jose"),
        ("Zoë", "zoe"),
        ("Ångström", "angstrom"),
        ("Smith-Jones", "smith jones"),
        ("smith jones", "smith jones"),
        ("SMITH   JONES", "smith jones"),
        ("Smith - Jones", "smith jones"),
        ("Smith\tJones", "smith jones"),
        ("O'Brien", "obrien"),
        ("O’Brien", "obrien"),
        ("OBrien", "obrien"),
        ("St. John", "st john"),
        ("Smith, Jr", "smith jr"),
        ("Mr William", "william"),
        ("MRS. Jane", "jane"),
        ("Dr Prof Jane", "jane"),
        ("Sir", "sir"),
        ("Miss", "miss"),
        ("Straße", "strasse"),
        ("Søren", "soren"),
        ("Łukasz", "lukasz"),
        ("", ""),
        ("   ", ""),
        ("-'.", ""),
        ("ＷＩＬＬＩＡＭ", "william"), // full-width compatibility characters
    ];
    for (input, want) in table {
        assert_eq!(normalise_name(input), *want, "input {input:?}");
    }
    assert_eq!(normalise_name("Smith-Jones"), normalise_name("SMITH JONES"));
    assert_ne!(normalise_name("O'Brien"), normalise_name("O Brien"));
}

#[test]
fn postcode_normalisation() {
    let table: &[(&str, &str)] = &[
        ("LS1 4AB", "LS1 4AB"),
        ("ls14ab", "LS1 4AB"),
        (" LS1 4AB ", "LS1 4AB"),
        ("ls1   4ab", "LS1 4AB"),
        ("SW1A1AA", "SW1A 1AA"),
        ("w1a 0ax", "W1A 0AX"),
        ("M11AE", "M1 1AE"),
        ("B338TH", "B33 8TH"),
        ("CR26XH", "CR2 6XH"),
        ("DN551PT", "DN55 1PT"),
        ("gir0aa", "GIR 0AA"),
        // Not UK format: kept as given, trimmed.
        ("  75001 ", "75001"),
        ("10115 Berlin", "10115 Berlin"),
        ("K1A 0B1", "K1A 0B1"),
        ("k1a 0b1", "k1a 0b1"),
        ("90210-1234", "90210-1234"),
        ("LS1 4A", "LS1 4A"),
        ("", ""),
    ];
    for (input, want) in table {
        assert_eq!(normalise_postcode(input), *want, "input {input:?}");
    }
}

#[test]
fn dates() {
    assert_eq!(
        normalise_date_of_birth(" 1980-04-10 ").as_deref(),
        Some("1980-04-10")
    );
    assert_eq!(
        normalise_date_of_birth("2000-02-29").as_deref(),
        Some("2000-02-29")
    );
    for bad in [
        "1980-02-30",
        "1900-02-29",
        "1980-13-01",
        "1980-00-10",
        "1980-4-10",
        "10/04/1980",
        "19800410",
        "+1980-04-10",
        "",
        "not a date",
        "1980-04-10T00:00:00",
    ] {
        assert_eq!(normalise_date_of_birth(bad), None, "input {bad:?}");
    }
}

#[test]
fn nino_validation() {
    assert_eq!(
        normalise_attribute("nino", "QQ123456C").as_deref(),
        Ok("QQ123456C")
    );
    assert_eq!(
        normalise_attribute("NINO", " ab 12 34 56 c ").as_deref(),
        Ok("AB123456C")
    );
    assert_eq!(
        normalise_attribute("nino", "ab-123456-d").as_deref(),
        Ok("AB123456D")
    );
    for bad in [
        "AB123456E", // suffix must be A-D
        "AB12345C",  // too short
        "AB1234567C",
        "A1234567C",
        "DA123456A", // D never first letter
        "AO123456A", // O never second letter
        "FA123456A",
        "GB123456A", // unallocated prefix
        "TN123456A",
        "ZZ123456A",
        "AB12345XC",
        "ÅB123456C",
    ] {
        assert_eq!(
            normalise_attribute("nino", bad),
            Err(MatchingError::InvalidFormat {
                kind: "nino".into()
            }),
            "input {bad:?}"
        );
    }
    assert_eq!(
        normalise_attribute("nino", "   "),
        Err(MatchingError::EmptyValue {
            kind: "nino".into()
        })
    );
}

#[test]
fn driving_licence_validation() {
    assert_eq!(
        normalise_attribute("driving_licence", "morga 753116 sm9ij").as_deref(),
        Ok("MORGA753116SM9IJ")
    );
    for bad in [
        "MORGA753116SM9I",
        "MORGA753116SM9IJ3",
        "MORGA753116SM9I!",
        "MÖRGA753116SM9IJ",
    ] {
        assert!(
            normalise_attribute("driving_licence", bad).is_err(),
            "input {bad:?}"
        );
    }
}

#[test]
fn unknown_attribute_types_trim_and_fold() {
    assert_eq!(
        normalise_attribute(" Pension_Ref ", "  AbC-12 ").as_deref(),
        Ok("abc-12")
    );
    assert_eq!(
        normalise_attribute("  ", "x"),
        Err(MatchingError::EmptyAttributeType)
    );
    assert!(normalise_attribute("pension_ref", " ").is_err());
    // Error messages never carry the value.
    let err = normalise_attribute("nino", "XX999999Z")
        .err()
        .map(|e| e.to_string());
    assert!(err.is_some_and(|e| !e.contains("XX999999Z")));
}

// ---------------------------------------------------------------------------------------
// Cycle 1

#[test]
fn cycle1_single_match() {
    let candidates = vec![
        record("D1", person("Jane", &["Smith"], "1980-04-10", &["LS1 4AB"])),
        record(
            "D42",
            person("WILLIAM", &["smith jones"], "1980-04-10", &["ls14ab"]),
        ),
        record(
            "D3",
            person("William", &["Smith-Jones"], "1981-04-10", &["LS1 4AB"]),
        ),
    ];
    let d = match_cycle1(&william(), &candidates, &MatchPolicy::default());
    assert_eq!(d.outcome, Outcome::Match);
    assert_eq!(d.record_id, Some(RecordId("D42".into())));
    assert!(d.is_match());
    assert_eq!(d.id.as_deref(), Some("q-1"));
    assert_eq!(d.score, 4.0);
    assert!(has_reason(&d, "cycle1:candidates=3"), "{:?}", d.reasons);
    assert!(has_reason(&d, "cycle1:qualifying=1"));
    assert!(has_reason(&d, "postcode:compared"));
}

#[test]
fn cycle1_matches_on_previous_surname_and_previous_postcode() {
    // Department knows only the maiden name and the old address.
    let candidates = vec![record(
        "D7",
        person("Mr William", &["Smith"], "1980-04-10", &["YO17HH"]),
    )];
    let d = match_cycle1(&william(), &candidates, &MatchPolicy::default());
    assert_eq!(d.outcome, Outcome::Match);
    assert_eq!(d.record_id, Some(RecordId("D7".into())));
}

#[test]
fn cycle1_two_records_is_ambiguous_never_a_guess() {
    let candidates = vec![
        record(
            "D1",
            person("William", &["Smith"], "1980-04-10", &["LS1 4AB"]),
        ),
        record(
            "D2",
            person("William", &["Smith-Jones"], "1980-04-10", &["LS1 4AB"]),
        ),
    ];
    let d = match_cycle1(&william(), &candidates, &MatchPolicy::default());
    assert_eq!(d.outcome, Outcome::Ambiguous);
    assert_eq!(d.record_id, None);
    assert_eq!(d.score, 0.0);
    assert!(!d.is_match());
    assert!(has_reason(&d, "cycle1:qualifying=2"));
}

#[test]
fn cycle1_duplicate_rows_of_one_record_still_match() {
    let r = record(
        "D1",
        person("William", &["Smith"], "1980-04-10", &["LS1 4AB"]),
    );
    let d = match_cycle1(&william(), &[r.clone(), r], &MatchPolicy::default());
    assert_eq!(d.outcome, Outcome::Match);
    assert_eq!(d.record_id, Some(RecordId("D1".into())));
}

#[test]
fn cycle1_no_match() {
    let candidates = vec![
        record("D1", person("Bill", &["Smith"], "1980-04-10", &["LS1 4AB"])),
        record(
            "D2",
            person("William", &["Brown"], "1980-04-10", &["LS1 4AB"]),
        ),
        record(
            "D3",
            person("William", &["Smith"], "1980-04-11", &["LS1 4AB"]),
        ),
    ];
    let d = match_cycle1(&william(), &candidates, &MatchPolicy::default());
    assert_eq!(d.outcome, Outcome::NoMatch);
    assert_eq!(d.record_id, None);
    assert_eq!(d.score, 0.0);
    assert!(has_reason(&d, "cycle1:qualifying=0"));
    assert!(has_reason(&d, "cycle1:rejected_first_name=1"));
    assert!(has_reason(&d, "cycle1:rejected_surname=1"));
    assert!(has_reason(&d, "cycle1:rejected_date_of_birth=1"));
    assert_eq!(
        match_cycle1(&william(), &[], &MatchPolicy::default()).outcome,
        Outcome::NoMatch
    );
}

#[test]
fn cycle1_postcode_mismatch_is_no_match() {
    let candidates = vec![record(
        "D1",
        person("William", &["Smith"], "1980-04-10", &["M1 1AE"]),
    )];
    let d = match_cycle1(&william(), &candidates, &MatchPolicy::default());
    assert_eq!(d.outcome, Outcome::NoMatch);
    assert!(has_reason(&d, "cycle1:rejected_postcode=1"));
}

#[test]
fn cycle1_idp_supplies_no_address_still_matches_on_name_and_dob() {
    let query = person("William", &["Smith"], "1980-04-10", &[]);
    let candidates = vec![record(
        "D1",
        person("William", &["Smith"], "1980-04-10", &["M1 1AE"]),
    )];
    let d = match_cycle1(&query, &candidates, &MatchPolicy::default());
    assert_eq!(d.outcome, Outcome::Match);
    assert_eq!(d.score, 3.0);
    assert!(has_reason(&d, "postcode:not_available"));

    // Addresses without a postcode (or a blank one) count as no postcode.
    let mut query = william();
    for a in &mut query.addresses {
        a.postcode = Some("  ".into());
    }
    assert_eq!(
        match_cycle1(&query, &candidates, &MatchPolicy::default()).outcome,
        Outcome::Match
    );
}

#[test]
fn cycle1_department_without_postcode_still_matches() {
    let candidates = vec![record(
        "D1",
        person("William", &["Smith"], "1980-04-10", &[]),
    )];
    let d = match_cycle1(&william(), &candidates, &MatchPolicy::default());
    assert_eq!(d.outcome, Outcome::Match);
    assert!(has_reason(&d, "postcode:not_available"));
}

#[test]
fn cycle1_malformed_input_never_matches() {
    let candidates = vec![
        record(
            "D1",
            person("William", &["Smith"], "1980-02-30", &["LS1 4AB"]),
        ),
        record("D2", person("William", &[""], "1980-04-10", &["LS1 4AB"])),
        record("D3", MatchingDataset::default()),
    ];
    // Impossible date on both sides: equal strings, still no match.
    let q = person("William", &["Smith"], "1980-02-30", &["LS1 4AB"]);
    let d = match_cycle1(&q, &candidates, &MatchPolicy::default());
    assert_eq!(d.outcome, Outcome::NoMatch);
    assert!(has_reason(&d, "query:date_of_birth_missing"));

    // Empty surname on both sides: blank never equals blank.
    let q = person("William", &["", "  "], "1980-04-10", &["LS1 4AB"]);
    let d = match_cycle1(&q, &candidates, &MatchPolicy::default());
    assert_eq!(d.outcome, Outcome::NoMatch);
    assert!(has_reason(&d, "query:surname_missing"));

    // Empty dataset against an empty record.
    let d = match_cycle1(
        &MatchingDataset::default(),
        &candidates,
        &MatchPolicy::default(),
    );
    assert_eq!(d.outcome, Outcome::NoMatch);
    assert_eq!(d.id, None);
    assert!(has_reason(&d, "query:first_name_missing"));

    // Empty first name on both sides.
    let q = person("", &["Smith"], "1980-04-10", &[]);
    let c = vec![record("D1", person(" ", &["Smith"], "1980-04-10", &[]))];
    assert_eq!(
        match_cycle1(&q, &c, &MatchPolicy::default()).outcome,
        Outcome::NoMatch
    );
}

// ---------------------------------------------------------------------------------------
// Cycle 3

fn twins() -> Vec<DepartmentRecord> {
    vec![
        record(
            "T1",
            with_attr(
                person("Alex", &["Smith"], "1990-01-01", &["LS1 4AB"]),
                "nino",
                "AB 12 34 56 A",
            ),
        ),
        record(
            "T2",
            with_attr(
                person("Alex", &["Smith"], "1990-01-01", &["LS1 4AB"]),
                "NINO",
                "CE123457B",
            ),
        ),
    ]
}

#[test]
fn cycle3_resolves_twins() {
    let query = person("Alex", &["Smith"], "1990-01-01", &["LS1 4AB"]);
    assert_eq!(
        match_cycle1(&query, &twins(), &MatchPolicy::default()).outcome,
        Outcome::Ambiguous
    );

    let d = match_cycle3(
        &query,
        "nino",
        "ce 12 34 57 b",
        &twins(),
        &MatchPolicy::default(),
    );
    assert_eq!(d.outcome, Outcome::Match);
    assert_eq!(d.record_id, Some(RecordId("T2".into())));
    assert_eq!(d.score, 3.0);
    assert!(has_reason(&d, "cycle3:attribute=nino"));
    assert!(has_reason(&d, "cycle3:qualifying=1"));

    let d = match_cycle3(
        &query,
        " NINO ",
        "AB123456A",
        &twins(),
        &MatchPolicy::default(),
    );
    assert_eq!(d.record_id, Some(RecordId("T1".into())));
}

#[test]
fn cycle3_person_who_moved() {
    let query = person("Alex", &["Smith"], "1990-01-01", &["M1 1AE"]);
    assert_eq!(
        match_cycle1(&query, &twins(), &MatchPolicy::default()).outcome,
        Outcome::NoMatch
    );
    let d = match_cycle3(
        &query,
        "nino",
        "AB123456A",
        &twins(),
        &MatchPolicy::default(),
    );
    assert_eq!(d.outcome, Outcome::Match);
    assert_eq!(d.record_id, Some(RecordId("T1".into())));
}

#[test]
fn cycle3_wrong_value_or_wrong_person_is_no_match() {
    let query = person("Alex", &["Smith"], "1990-01-01", &["LS1 4AB"]);
    let d = match_cycle3(
        &query,
        "nino",
        "AB123456B",
        &twins(),
        &MatchPolicy::default(),
    );
    assert_eq!(d.outcome, Outcome::NoMatch);
    assert!(has_reason(&d, "cycle3:rejected_attribute=2"));

    // Right NINO, different date of birth or surname: no match.
    let other_dob = person("Alex", &["Smith"], "1990-01-02", &[]);
    assert_eq!(
        match_cycle3(
            &other_dob,
            "nino",
            "AB123456A",
            &twins(),
            &MatchPolicy::default()
        )
        .outcome,
        Outcome::NoMatch
    );
    let other_surname = person("Alex", &["Jones"], "1990-01-01", &[]);
    assert_eq!(
        match_cycle3(
            &other_surname,
            "nino",
            "AB123456A",
            &twins(),
            &MatchPolicy::default()
        )
        .outcome,
        Outcome::NoMatch
    );
    // Attribute the records do not hold.
    assert_eq!(
        match_cycle3(
            &query,
            "driving_licence",
            "MORGA753116SM9IJ",
            &twins(),
            &MatchPolicy::default()
        )
        .outcome,
        Outcome::NoMatch
    );
}

#[test]
fn cycle3_invalid_format_is_no_match() {
    let query = person("Alex", &["Smith"], "1990-01-01", &[]);
    for bad in ["not a nino", "", "   ", "AB123456E"] {
        let d = match_cycle3(&query, "nino", bad, &twins(), &MatchPolicy::default());
        assert_eq!(d.outcome, Outcome::NoMatch, "input {bad:?}");
        assert!(has_reason(&d, "cycle3:invalid_format"));
        assert!(d
            .reasons
            .iter()
            .all(|r| !r.contains(bad) || bad.trim().is_empty()));
    }
}

#[test]
fn cycle3_two_records_with_same_value_is_ambiguous() {
    let mut c = twins();
    c[1].dataset
        .attributes
        .insert("NINO".into(), "AB123456A".into());
    let query = person("Alex", &["Smith"], "1990-01-01", &[]);
    let d = match_cycle3(&query, "nino", "AB123456A", &c, &MatchPolicy::default());
    assert_eq!(d.outcome, Outcome::Ambiguous);
    assert_eq!(d.record_id, None);
}

#[test]
fn cycle3_department_specific_attribute() {
    let candidates = vec![record(
        "P1",
        with_attr(
            person("Alex", &["Smith"], "1990-01-01", &[]),
            "Pension_Ref",
            " PR-001 ",
        ),
    )];
    let query = person("Alex", &["Smith"], "1990-01-01", &[]);
    let d = match_cycle3(
        &query,
        "pension_ref",
        "pr-001",
        &candidates,
        &MatchPolicy::default(),
    );
    assert_eq!(d.outcome, Outcome::Match);
    assert!(has_reason(&d, "cycle3:attribute=other"));
}

// ---------------------------------------------------------------------------------------
// Blocking key

#[test]
fn blocking_key() {
    assert_eq!(
        blocking_date_of_birth(&william()).as_deref(),
        Some("1980-04-10")
    );
    let mut d = william();
    d.date_of_birth = Some("1980-02-30".into());
    assert_eq!(blocking_date_of_birth(&d), None);
    assert_eq!(blocking_date_of_birth(&MatchingDataset::default()), None);
}

// ---------------------------------------------------------------------------------------
// JSON contracts

const BRIEF_EXAMPLE: &str = r#"{
  "id": "q-1",
  "first_name": "William",
  "middle_names": ["John"],
  "surnames": ["Smith-Jones", "Smith"],
  "date_of_birth": "1980-04-10",
  "gender": "male",
  "addresses": [
    {"lines": ["12 High Street", "Leeds"], "postcode": "LS1 4AB", "current": true},
    {"lines": ["3 Mill Lane", "York"], "postcode": "YO1 7HH", "current": false}
  ],
  "attributes": {"nino": "QQ123456C"}
}"#;

#[test]
fn dataset_json_brief_example() {
    let d: MatchingDataset = serde_json::from_str(BRIEF_EXAMPLE).expect("parses");
    assert_eq!(d.id.as_deref(), Some("q-1"));
    assert_eq!(d.surnames, vec!["Smith-Jones", "Smith"]);
    assert_eq!(d.addresses.len(), 2);
    assert!(d.addresses[0].current);
    assert_eq!(d.addresses[1].postcode.as_deref(), Some("YO1 7HH"));
    assert_eq!(
        d.attributes.get("nino").map(String::as_str),
        Some("QQ123456C")
    );
    let back: MatchingDataset =
        serde_json::from_str(&serde_json::to_string(&d).expect("serialises")).expect("parses");
    assert_eq!(back, d);
    assert_eq!(
        normalise_attribute("nino", "QQ123456C").as_deref(),
        Ok("QQ123456C")
    );
}

#[test]
fn dataset_json_missing_and_malformed_fields_are_tolerated() {
    for json in [
        r#"{}"#,
        r#"{"id":"q-2"}"#,
        r#"{"id":null,"first_name":null,"middle_names":null,"surnames":null,"date_of_birth":null,"gender":null,"addresses":null,"attributes":null}"#,
        r#"{"first_name":42,"surnames":"Smith","date_of_birth":19800410,"addresses":"LS1 4AB","attributes":[1,2]}"#,
        r#"{"surnames":[null,1,"Smith",{}],"addresses":[null,"x",{"postcode":7,"current":"yes","lines":"1 Road"}],"attributes":{"nino":null,"x":{"a":1},"ref":12}}"#,
        r#"{"date_of_birth":"1980-02-30","addresses":{"postcode":"ls14ab"},"unknown":true}"#,
    ] {
        let d: MatchingDataset =
            serde_json::from_str(json).unwrap_or_else(|e| panic!("{json}: {e}"));
        let _ = match_cycle1(&d, &[record("D1", d.clone())], &MatchPolicy::default());
        let _ = match_cycle3(
            &d,
            "nino",
            "AB123456A",
            &[record("D1", d.clone())],
            &MatchPolicy::default(),
        );
    }
    let d: MatchingDataset = serde_json::from_str(
        r#"{"surnames":"Smith","addresses":[{"postcode":"ls14ab","current":"yes"}],"attributes":{"ref":12}}"#,
    )
    .expect("parses");
    assert_eq!(d.surnames, vec!["Smith"]);
    assert!(d.addresses[0].current);
    assert_eq!(d.attributes.get("ref").map(String::as_str), Some("12"));
}

#[test]
fn department_record_json() {
    let flat = r#"{"record_id":"D42","first_name":"William","surnames":["Smith"],"date_of_birth":"1980-04-10"}"#;
    let r: DepartmentRecord = serde_json::from_str(flat).expect("flat record");
    assert_eq!(r.record_id, RecordId("D42".into()));
    assert_eq!(r.dataset.first_name.as_deref(), Some("William"));
    let json = serde_json::to_value(&r).expect("serialises");
    assert_eq!(json["record_id"], "D42");
    assert_eq!(json["first_name"], "William");
    let back: DepartmentRecord = serde_json::from_value(json).expect("round trip");
    assert_eq!(back, r);

    let nested = r#"{"record_id":7,"dataset":{"first_name":"William"}}"#;
    let r: DepartmentRecord = serde_json::from_str(nested).expect("nested record");
    assert_eq!(r.record_id.to_string(), "7");
    assert_eq!(r.dataset.first_name.as_deref(), Some("William"));

    for bad in [r#"{"first_name":"x"}"#, r#"{"record_id":"  "}"#, r#"[1]"#] {
        assert!(
            serde_json::from_str::<DepartmentRecord>(bad).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn decision_json_shape_round_trip() {
    let d = Decision {
        id: Some("q-1".into()),
        outcome: Outcome::Match,
        record_id: Some(RecordId("D42".into())),
        score: 17.3,
        reasons: vec!["cycle1:qualifying=1".into()],
    };
    let v = serde_json::to_value(&d).expect("serialises");
    assert_eq!(
        v,
        serde_json::json!({"id":"q-1","outcome":"match","record_id":"D42","score":17.3,"reasons":["cycle1:qualifying=1"]})
    );
    let back: Decision = serde_json::from_value(v).expect("parses");
    assert_eq!(back, d);

    for (o, s) in [
        (Outcome::Match, "match"),
        (Outcome::NoMatch, "no_match"),
        (Outcome::Ambiguous, "ambiguous"),
    ] {
        assert_eq!(serde_json::to_value(o).expect("serialises"), s);
        assert_eq!(o.to_string(), s);
    }
    let none = match_cycle1(&MatchingDataset::default(), &[], &MatchPolicy::default());
    let v = serde_json::to_value(&none).expect("serialises");
    assert_eq!(v["outcome"], "no_match");
    assert!(v["record_id"].is_null());
    assert_eq!(v["id"], serde_json::Value::Null);
    assert_eq!(v["score"], 0.0);
}

// ---------------------------------------------------------------------------------------
// No personal data in Debug output or reasons

#[test]
fn debug_output_contains_no_personal_data() {
    let d: MatchingDataset = serde_json::from_str(BRIEF_EXAMPLE).expect("parses");
    let r = DepartmentRecord {
        record_id: RecordId("D42".into()),
        dataset: d.clone(),
    };
    for out in [
        format!("{d:?}"),
        format!("{d:#?}"),
        format!("{r:?}"),
        format!("{:?}", d.addresses),
    ] {
        for secret in [
            "William",
            "John",
            "Smith",
            "1980",
            "male",
            "High Street",
            "Leeds",
            "LS1",
            "YO1",
            "Mill",
            "QQ123456C",
            "nino",
        ] {
            assert!(!out.contains(secret), "{secret} leaked in {out}");
        }
    }
    let out = format!("{r:?}");
    assert!(out.contains("D42"));
    assert!(format!("{d:?}").contains("q-1"));
    assert!(format!("{d:?}").contains("first_name: present"));
    assert!(format!("{:?}", MatchingDataset::default()).contains("first_name: absent"));

    let decision = match_cycle1(&d, std::slice::from_ref(&r), &MatchPolicy::default());
    let decision3 = match_cycle3(&d, "nino", "QQ123456C", &[r], &MatchPolicy::default());
    for dec in [decision, decision3] {
        let out = format!(
            "{dec:?} {}",
            serde_json::to_string(&dec).expect("serialises")
        );
        for secret in ["William", "Smith", "1980", "LS1", "QQ123456C"] {
            assert!(!out.contains(secret), "{secret} leaked in {out}");
        }
    }
}
