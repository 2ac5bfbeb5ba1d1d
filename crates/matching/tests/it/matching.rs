//! Behaviour tests for the public matching API.

use matching::{
    match_cycle1, match_cycle3, normalise_attribute, normalise_date_of_birth, normalise_name,
    normalise_postcode, Decision, DepartmentRecord, MatchPolicy, MatchingDataset, MatchingError,
    Outcome, RecordId,
};

fn record(id: &str, dataset: MatchingDataset) -> DepartmentRecord {
    DepartmentRecord {
        record_id: RecordId(id.into()),
        dataset: MatchingDataset {
            id: None,
            ..dataset
        },
    }
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
// JSON contracts

// The reference example of the matching-dataset contract (docs/matching.md, "Contracts"),
// with every member set and a previous address besides the current one.
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
        probability: 0.999,
        reasons: vec!["cycle1:qualifying=1".into()],
    };
    let v = serde_json::to_value(&d).expect("serialises");
    assert_eq!(
        v,
        serde_json::json!({"id":"q-1","outcome":"match","record_id":"D42","score":17.3,"probability":0.999,"reasons":["cycle1:qualifying=1"]})
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
