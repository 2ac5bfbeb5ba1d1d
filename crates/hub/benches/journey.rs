//! The journey as the session store holds it: every step reads it (`serde_json::from_str`)
//! and most write it back (`serde_json::to_string`), so with Redis each step pays both.
//! Measured in its largest state, `cycle3_asked`: a verified identity with a full matching
//! dataset (two addresses, a previous surname, cycle-3 attributes) and the RP's request.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use hub::journey::{Journey, RpRequest, UpstreamRequest, VerifiedIdentity};
use hub::level::Levels;
use matching::{Address, MatchingDataset};
use serde::de::DeserializeOwned;

/// A value as a stored journey holds it: the client id and redirect URI are only made by
/// the hub's own checks, or read back from the session store.
fn stored<T: DeserializeOwned>(value: &str) -> T {
    serde_json::from_value(value.into()).expect("a stored string")
}

fn journey() -> Journey {
    let levels = Levels::new(vec!["P0".into(), "P1".into(), "P2".into(), "P3".into()]);
    let p2 = levels.parse("P2").expect("P2 is configured");
    let request = RpRequest {
        client_id: stored("rp-tax-service"),
        redirect_uri: stored("https://tax.example.gov.uk/oidc/callback"),
        state: Some("af0ifjsldkj-3Xq9_Zk2wP7".into()),
        nonce: Some("n-0S6_WzA2Mj-8fJ3kq1xZ4oQ".into()),
        code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
        scope: vec!["openid".into(), "profile".into(), "address".into()],
        minimum_level: p2.clone(),
        vectors: Some(vec!["Cl.Cm.P2".into()]),
        ui_locales: None,
    };
    let mut journey = Journey::new(
        "0b7e4c52-1d7f-4f1e-a0c3-93a1d2f6b8e4".into(),
        "kq3V7xN0b4Yc2pW8sT1mR6uZ9eH5jL0aD3fG7iK2oQw".into(),
        "Zr8pY2kW5nB1vC7xM4qT0sL9dF3gH6jK8aE2uI5oP1w".into(),
        request,
        1_740_000_000,
        5400,
    );
    journey
        .select_idp(UpstreamRequest {
            idp_id: "idp-post-office".into(),
            state: "h3Jk9Lm2Np5Qr8St1Uv4Wx7Yz0Ab3Cd6Ef9Gh2Ij5K".into(),
            nonce: "Mn4Op7Qr0St3Uv6Wx9Yz2Ab5Cd8Ef1Gh4Ij7Kl0Mn3".into(),
            pkce_verifier: "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".into(),
        })
        .expect("started -> idp_selected");
    journey
        .idp_returned(VerifiedIdentity {
            idp_id: "idp-post-office".into(),
            idp_subject: "a2f1c3e4-9b7d-4e21-8c55-0d3f6a9e1b42".into(),
            level: p2,
            auth_time: 1_740_000_042,
            dataset: MatchingDataset {
                id: None,
                first_name: Some("Siobhán".into()),
                middle_names: vec!["Mary".into()],
                surnames: vec!["O'Brien-Smyth".into(), "Kowalczyk".into()],
                date_of_birth: Some("1984-11-23".into()),
                gender: Some("female".into()),
                addresses: vec![
                    Address {
                        lines: vec![
                            "Flat 4".into(),
                            "27 Wellington Road".into(),
                            "Headingley".into(),
                            "Leeds".into(),
                        ],
                        postcode: Some("LS6 3BE".into()),
                        current: true,
                    },
                    Address {
                        lines: vec!["112 Albert Street".into(), "Manchester".into()],
                        postcode: Some("M14 5QP".into()),
                        current: false,
                    },
                ],
                attributes: [
                    ("nino".to_owned(), "QQ123456C".to_owned()),
                    ("driving_licence".to_owned(), "OBRIE811234SM9IJ".to_owned()),
                ]
                .into(),
            },
        })
        .expect("idp_selected -> idp_returned");
    journey.start_matching().expect("idp_returned -> matching");
    journey
        .ask_cycle3("nino".into())
        .expect("matching -> cycle3_asked");
    journey
}

fn bench(c: &mut Criterion) {
    let journey = journey();
    let json = serde_json::to_string(&journey).expect("serialise");
    let mut group = c.benchmark_group("journey_json");
    group.throughput(Throughput::Bytes(json.len() as u64));
    group.bench_function("serialise (cycle3_asked)", |b| {
        b.iter(|| serde_json::to_string(black_box(&journey)).expect("serialise"))
    });
    group.bench_function("deserialise (cycle3_asked)", |b| {
        b.iter(|| serde_json::from_str::<Journey>(black_box(&json)).expect("deserialise"))
    });
    group.bench_function("round trip (cycle3_asked)", |b| {
        b.iter(|| {
            let json = serde_json::to_string(black_box(&journey)).expect("serialise");
            serde_json::from_str::<Journey>(&json).expect("deserialise")
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
