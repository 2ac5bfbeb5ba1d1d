//! Hot paths of matching: normalisation, blocking keys, and a whole decision over the
//! candidate sets blocking returns (typically tens of records sharing a key).

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use matching::{
    match_cycle1, match_cycle3, normalise_name, query_blocking_keys, Address, DepartmentRecord,
    MatchPolicy, MatchingDataset, RecordId,
};

const FIRST: &[&str] = &[
    "William", "Anna", "John", "Siobhán", "Chris", "Olivia", "Mohammed",
];
const SURNAMES: &[&str] = &[
    "Smith",
    "Jones",
    "Smith-Jones",
    "O'Brien",
    "Taylor",
    "Nguyen",
];

fn person(i: usize) -> MatchingDataset {
    MatchingDataset {
        first_name: Some(FIRST[i % FIRST.len()].to_owned()),
        surnames: vec![SURNAMES[(i / 7) % SURNAMES.len()].to_owned()],
        date_of_birth: Some("1980-04-10".to_owned()),
        gender: Some(
            if i.is_multiple_of(2) {
                "male"
            } else {
                "female"
            }
            .to_owned(),
        ),
        addresses: vec![Address {
            lines: vec![format!("{} High Street", i % 40 + 1), "Leeds".to_owned()],
            postcode: Some(format!("LS{} {}AB", i % 9 + 1, i % 10)),
            current: true,
        }],
        attributes: [("nino".to_owned(), format!("AB{:06}C", i))].into(),
        ..MatchingDataset::default()
    }
}

fn candidates(n: usize) -> Vec<DepartmentRecord> {
    (0..n)
        .map(|i| DepartmentRecord {
            record_id: RecordId(format!("R{i}")),
            dataset: person(i),
        })
        .collect()
}

fn benches(c: &mut Criterion) {
    let policy = MatchPolicy::default();
    let query = person(3);
    c.bench_function("normalise_name", |b| {
        b.iter(|| normalise_name(black_box("Mr Seán O'Brien-Smyth")))
    });
    c.bench_function("query_blocking_keys", |b| {
        b.iter(|| query_blocking_keys(black_box(&query)))
    });
    let mut group = c.benchmark_group("match_cycle1");
    for n in [1, 10, 50, 200] {
        let records = candidates(n.max(4));
        let records = &records[..n];
        group.bench_with_input(BenchmarkId::from_parameter(n), &records, |b, records| {
            b.iter(|| match_cycle1(black_box(&query), records, &policy))
        });
    }
    group.finish();
    // What a surname+year key returns for a common surname: mostly other birth dates.
    let mut mixed = candidates(200);
    for (i, r) in mixed.iter_mut().enumerate().filter(|(i, _)| i % 10 != 0) {
        r.dataset.date_of_birth = Some(format!("1980-{:02}-{:02}", i % 12 + 1, i % 27 + 1));
    }
    c.bench_function("match_cycle1/200_mostly_other_dates", |b| {
        b.iter(|| match_cycle1(black_box(&query), &mixed, &policy))
    });
    let records = candidates(50);
    c.bench_function("match_cycle3/50", |b| {
        b.iter(|| match_cycle3(black_box(&query), "nino", "AB000003C", &records, &policy))
    });
}

criterion_group!(matching_benches, benches);
criterion_main!(matching_benches);
