//! Estimates the matching model's parameters from a synthetic corpus and writes them as
//! JSON, the form of `crates/matching/data/model.json` (the built-in model):
//!
//! ```text
//! cargo run -p devkit --release --bin estimate_model -- --out crates/matching/data/model.json
//! ```
//!
//! `--table MODEL.json` prints an existing model as the Markdown table of
//! docs/matching.md instead.
//!
//! `u` comes from random pairs of the corpus's department records, `m` from its labelled
//! queries (the person's own record), which carry the published error model
//! (docs/matching-accuracy.md). The seed differs from the accuracy test's, so the figures measured
//! there are not measured on the data the model was estimated from.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use devkit::corpus::{self, CorpusSpec};
use matching::{Address, DepartmentRecord, LabelledPair, MatchPolicy, MatchingDataset, RecordId};

/// The query sets whose errors occur at realistic rates (the published mixtures, and
/// clean queries): `m` is estimated from these, not from the sets with one error each.
const M_SETS: &[&str] = &["clean", "febrl_mix", "census_mix", "moved_address"];

/// Command-line arguments.
#[derive(Debug, Parser)]
#[command(about = "Estimates the matching model from a seeded synthetic corpus")]
struct Args {
    /// Seed of the corpus (not the accuracy test's).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Number of department records.
    #[arg(long, default_value_t = 200_000)]
    records: usize,
    /// Queries in each query set.
    #[arg(long, default_value_t = 2000)]
    queries_per_set: usize,
    /// Where to write the model (JSON).
    #[arg(long, required_unless_present_any = ["table", "situations"])]
    out: Option<PathBuf>,
    /// Print this model file as a Markdown table (field, level, m, u, weight) and exit.
    #[arg(long)]
    table: Option<PathBuf>,
    /// Print the decisions of the built-in model in typical situations (the table in
    /// docs/matching.md) and exit.
    #[arg(long)]
    situations: bool,
}

/// A person as a department holds them, in the examples of [`print_situations`].
fn example(first: &str, surname: &str, dob: &str, line: &str, postcode: &str) -> MatchingDataset {
    MatchingDataset {
        first_name: Some(first.to_owned()),
        surnames: vec![surname.to_owned()],
        date_of_birth: Some(dob.to_owned()),
        addresses: vec![Address {
            lines: vec![line.to_owned(), "Leeds".to_owned()],
            postcode: Some(postcode.to_owned()),
            current: true,
        }],
        ..MatchingDataset::default()
    }
}

/// Decisions of the built-in model with the default policy in typical situations.
fn print_situations() {
    let policy = MatchPolicy::default();
    let own = example(
        "William",
        "Thornbury",
        "1980-04-12",
        "12 High Street",
        "LS1 4AB",
    );
    let record_of = |dataset: &MatchingDataset| {
        let mut record = DepartmentRecord {
            record_id: RecordId::from("D1"),
            dataset: dataset.clone(),
        };
        record
            .dataset
            .attributes
            .insert(matching::ATTRIBUTE_NINO.to_owned(), "QQ123456C".to_owned());
        record
    };
    let common = example("John", "Smith", "1980-04-12", "12 High Street", "LS1 4AB");
    let with = |change: &dyn Fn(&mut MatchingDataset)| {
        let mut q = own.clone();
        change(&mut q);
        q
    };
    let situations: Vec<(&str, MatchingDataset)> = vec![
        (
            "everything exact, same postcode and house number",
            own.clone(),
        ),
        (
            "a nickname (Bill)",
            with(&|q| q.first_name = Some("Bill".into())),
        ),
        (
            "one typo in the first name",
            with(&|q| q.first_name = Some("Wiliam".into())),
        ),
        (
            "two typos in the first name",
            with(&|q| q.first_name = Some("Wlliiam".into())),
        ),
        (
            "two typos in the surname",
            with(&|q| q.surnames = vec!["Thornbery".into()]),
        ),
        (
            "day and month swapped",
            with(&|q| q.date_of_birth = Some("1980-12-04".into())),
        ),
        (
            "two digits of the date transposed",
            with(&|q| q.date_of_birth = Some("1980-04-21".into())),
        ),
        ("a common name (John Smith), rest exact", common.clone()),
        (
            "postcode one typo off, street and house agree",
            with(&|q| q.addresses[0].postcode = Some("LS1 4AD".into())),
        ),
        (
            "house number differs, postcode and street agree",
            with(&|q| q.addresses[0].lines[0] = "14 High Street".into()),
        ),
        (
            "no postcode, street and house agree",
            with(&|q| q.addresses[0].postcode = None),
        ),
        (
            "moved; the IdP sends only the new address",
            with(&|q| q.addresses = example("", "", "", "3 Mill Lane", "YO1 7HH").addresses),
        ),
        ("no address", with(&|q| q.addresses.clear())),
        ("no date of birth", with(&|q| q.date_of_birth = None)),
        (
            "another first name at the same address (a twin, a sibling)",
            with(&|q| q.first_name = Some("Edward".into())),
        ),
        (
            "same name and address, born 25 years later (a son)",
            with(&|q| q.date_of_birth = Some("2005-09-30".into())),
        ),
    ];
    println!("| situation | cycle 1: score, outcome | cycle 3 (NINO): score, outcome |");
    println!("|---|---|---|");
    for (situation, query) in situations {
        // The common-name situation is asked of John Smith's own record.
        let own_record = if query.first_name == common.first_name {
            &common
        } else {
            &own
        };
        let candidates = [record_of(own_record)];
        let c1 = matching::match_cycle1(&query, &candidates, &policy);
        let c3 = matching::match_cycle3(&query, "nino", "QQ123456C", &candidates, &policy);
        let why = |d: &matching::Decision| {
            let code = d
                .reasons
                .iter()
                .rev()
                .find_map(|r| r.strip_prefix("decision:"))
                .unwrap_or("-");
            format!("{:.2}, `{code}`", d.score)
        };
        println!("| {situation} | {} | {} |", why(&c1), why(&c3));
    }
}

/// The model as the Markdown table of docs/matching.md.
fn print_table(path: &std::path::Path) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let model = matching::Model::from_json(&text).map_err(|e| e.to_string())?;
    println!("| field | level | m | u | weight (bits) |");
    println!("|---|---|---|---|---|");
    for (field, levels) in &model.fields {
        let mut rows: Vec<_> = levels.iter().collect();
        rows.sort_by(|a, b| b.1.weight().total_cmp(&a.1.weight()));
        for (i, (level, p)) in rows.into_iter().enumerate() {
            let name = if i == 0 { field.as_str() } else { "" };
            println!(
                "| {name} | {level} | {} | {} | {:+.2} |",
                p.m,
                p.u,
                p.weight()
            );
        }
    }
    println!("\nprior: {:+.2} bits ({})", model.prior_bits, model.source);
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.situations {
        print_situations();
        return ExitCode::SUCCESS;
    }
    if let Some(path) = &args.table {
        return match print_table(path) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("estimate_model: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let Some(out) = &args.out else {
        return ExitCode::FAILURE;
    };
    let spec = CorpusSpec {
        seed: args.seed,
        records: args.records,
        queries_per_set: args.queries_per_set,
    };
    let started = Instant::now();
    let corpus = corpus::generate(&spec);
    let by_id: std::collections::HashMap<&RecordId, &DepartmentRecord> =
        corpus.records.iter().map(|r| (&r.record_id, r)).collect();
    let labelled: Vec<LabelledPair<'_>> = corpus
        .queries
        .iter()
        .filter(|q| M_SETS.contains(&q.set.as_str()))
        .filter_map(|q| {
            let record = by_id.get(q.truth.as_ref()?)?;
            Some(LabelledPair {
                query: &q.dataset,
                record,
                attribute: q.nino.as_deref().map(|n| (matching::ATTRIBUTE_NINO, n)),
            })
        })
        .collect();
    let source = format!(
        "estimate_model: synthetic corpus seed {}, {} records, {} labelled pairs",
        spec.seed,
        corpus.records.len(),
        labelled.len()
    );
    let model = matching::estimate(&corpus.records, &labelled, &source);
    if let Err(e) = std::fs::write(out, model.to_json()) {
        eprintln!("estimate_model: cannot write {}: {e}", out.display());
        return ExitCode::FAILURE;
    }
    eprintln!(
        "estimate_model: {source}; written to {} in {:.2?}",
        out.display(),
        started.elapsed()
    );
    ExitCode::SUCCESS
}
