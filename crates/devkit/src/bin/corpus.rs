//! Writes a synthetic matching corpus: a department file and labelled queries.
//!
//! ```text
//! cargo run -p devkit --release --bin corpus -- --seed 7 --records 1000000 \
//!     --queries-per-set 1000 --out DIR
//! ```
//!
//! `DIR/records.csv` is imported with `hub records import`, `DIR/queries.jsonl` is the input
//! of `hub match batch`, and `DIR/truth.jsonl` says which record each query should match and
//! which set it belongs to (`clean`, `first_name_ocr`, `dob_from_household`, `febrl_mix`,
//! `absent_household`, ...: every `QuerySet` by its snake_case name, so a department's own
//! evaluation can report recall per error kind; see `devkit::corpus`). The same arguments
//! always write the same bytes.

use std::fs::{self, File};
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use devkit::corpus::{self, CorpusSpec};

/// Command-line arguments.
#[derive(Debug, Parser)]
#[command(about = "Writes a seeded synthetic department file and labelled matching queries")]
struct Args {
    /// Seed of the generator: the same seed writes the same files.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Number of department records.
    #[arg(long, default_value_t = 100_000)]
    records: usize,
    /// Queries in each query set.
    #[arg(long, default_value_t = 1000)]
    queries_per_set: usize,
    /// Directory to write records.csv, queries.jsonl and truth.jsonl into (created if
    /// missing).
    #[arg(long)]
    out: PathBuf,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("corpus: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    let spec = CorpusSpec {
        seed: args.seed,
        records: args.records,
        queries_per_set: args.queries_per_set,
    };
    let started = Instant::now();
    let corpus = corpus::generate(&spec);
    let generated = started.elapsed();
    fs::create_dir_all(&args.out)
        .map_err(|e| format!("cannot create {}: {e}", args.out.display()))?;
    write(&args.out.join("records.csv"), |w| {
        corpus::write_records_csv(&corpus.records, w)
    })?;
    write(&args.out.join("queries.jsonl"), |w| {
        corpus::write_queries_jsonl(&corpus.queries, w)
    })?;
    write(&args.out.join("truth.jsonl"), |w| {
        corpus::write_truth_jsonl(&corpus.queries, w)
    })?;
    eprintln!(
        "corpus: {} records and {} queries (seed {}) generated in {:.2?}, written to {} in {:.2?}",
        corpus.records.len(),
        corpus.queries.len(),
        spec.seed,
        generated,
        args.out.display(),
        started.elapsed() - generated,
    );
    Ok(())
}

fn write(
    path: &Path,
    writer: impl FnOnce(BufWriter<File>) -> std::io::Result<()>,
) -> Result<(), String> {
    let file = File::create(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    writer(BufWriter::new(file)).map_err(|e| format!("cannot write {}: {e}", path.display()))
}
