//! Loading department records from a file into the database (`hub records import`).
//!
//! The file is read and parsed on a thread of its own while the previous batch
//! is being written, so parsing and the database overlap; memory stays at a
//! couple of batches whatever the file's size.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use matching::DepartmentRecord;
use store::records_file::{read_csv, read_json_lines, RowError};
use store::{Database, PreparedRecords, StoreError};
use tokio::sync::mpsc;

/// Rows written per call to [`Database::import_records`] (one transaction
/// each). Large enough that per-transaction costs (a commit, a few statements
/// on PostgreSQL) vanish at a million rows, small enough that a batch holds
/// SQLite's write lock for a fraction of a second and memory stays small.
const BATCH: usize = 50_000;

/// Parsed batches waiting for the writer: the parser runs at most this far ahead.
const BATCHES_AHEAD: usize = 2;

/// What an import did: rows loaded and rows rejected (with their line numbers).
#[derive(Debug, Default)]
pub struct ImportReport {
    /// Distinct records written (a record id repeated within one batch counts once).
    pub imported: usize,
    /// Rows that were not records, in file order.
    pub rejected: Vec<RowError>,
    /// Records stored whose `date_of_birth` is missing or not a real `YYYY-MM-DD`
    /// date: they are kept, but can never be found by date of birth, so the
    /// department should hear how many there are.
    pub invalid_date_of_birth: usize,
}

/// How far an import has got, reported after each batch (for a progress bar).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportProgress {
    /// Bytes of the file parsed so far.
    pub bytes_read: u64,
    /// The file's size when the import started.
    pub total_bytes: u64,
    /// Records written so far.
    pub imported: usize,
    /// Rows rejected so far.
    pub rejected: usize,
}

/// Errors that stop an import as a whole (a bad row does not).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("database: {0}")]
    Store(#[from] store::StoreError),
    /// The parsing thread died (a bug); what was written before stays.
    #[error("the file reader stopped unexpectedly")]
    Reader,
    /// The file gave no record at all: almost always the wrong file or format, which
    /// must not look like a successful import. `rejected` are its bad rows, if any.
    #[error("nothing imported: {why}")]
    NothingImported {
        why: NothingRead,
        rejected: Vec<RowError>,
    },
}

/// Why an import read no record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NothingRead {
    /// The file as a whole is unusable: empty, no `record_id` in the header, a
    /// header of one column (another delimiter), unreadable.
    #[error("{0}")]
    File(RowError),
    /// The file has no rows (after its header, for CSV).
    #[error("the file has no rows")]
    NoRows,
    /// Every row was rejected.
    #[error("all {0} rows were rejected")]
    AllRejected(usize),
}

/// Streams `path` (CSV, or JSON lines when it ends in `.jsonl`/`.ndjson`) into the
/// records of relying party `rp_id`. Good rows are kept; bad rows are reported.
/// A file that gives no record at all (empty, no usable header, no rows, every
/// row rejected) is [`ImportError::NothingImported`], saying why.
pub async fn import_file(
    db: &Database,
    rp_id: &str,
    path: &Path,
) -> Result<ImportReport, ImportError> {
    import_file_with_progress(db, rp_id, path, |_| {}).await
}

/// [`import_file`], calling `progress` after every batch written.
///
/// Each batch of [`BATCH`] rows is one transaction: an error stops the import
/// with the batches before it written (re-running the import is safe, since a
/// record with the same id is replaced).
pub async fn import_file_with_progress(
    db: &Database,
    rp_id: &str,
    path: &Path,
    mut progress: impl FnMut(&ImportProgress),
) -> Result<ImportReport, ImportError> {
    let read_error = |source| ImportError::Read {
        path: path.display().to_string(),
        source,
    };
    let file = File::open(path).map_err(read_error)?;
    let total_bytes = file.metadata().map_err(read_error)?.len();
    let json_lines = path
        .extension()
        .is_some_and(|e| e == "jsonl" || e == "ndjson");

    let bytes_read = Arc::new(AtomicU64::new(0));
    let counter = CountingReader {
        inner: file,
        count: Arc::clone(&bytes_read),
    };
    let (sender, mut receiver) = mpsc::channel::<Parsed>(BATCHES_AHEAD);
    let parser = tokio::task::spawn_blocking(move || parse(counter, json_lines, &sender));

    let mut report = ImportReport::default();
    let mut file_error = None;
    let mut state = ImportProgress {
        total_bytes,
        ..ImportProgress::default()
    };
    while let Some(parsed) = receiver.recv().await {
        let records = parsed.records?;
        if !records.is_empty() {
            report.imported += db.import_prepared(rp_id, records).await?;
        }
        report.invalid_date_of_birth += parsed.invalid_date_of_birth;
        file_error = file_error.or(parsed.rejected.iter().find(|e| e.whole_file).cloned());
        report.rejected.extend(parsed.rejected);
        state.bytes_read = bytes_read.load(Ordering::Relaxed).min(total_bytes);
        state.imported = report.imported;
        state.rejected = report.rejected.len();
        progress(&state);
    }
    parser.await.map_err(|_| ImportError::Reader)?;
    if report.imported > 0 {
        return Ok(report);
    }
    let why = match (file_error, report.rejected.len()) {
        (Some(e), _) => NothingRead::File(e),
        (None, 0) => NothingRead::NoRows,
        (None, n) => NothingRead::AllRejected(n),
    };
    // A file-level error is the `why`; `rejected` keeps the rows' own.
    report.rejected.retain(|e| !e.whole_file);
    Err(ImportError::NothingImported {
        why,
        rejected: report.rejected,
    })
}

/// One batch from the parser: the records (encoded, with their keys) and the
/// rows rejected since the last one.
struct Parsed {
    records: Result<PreparedRecords, StoreError>,
    rejected: Vec<RowError>,
    /// Records in `records` without a valid date of birth.
    invalid_date_of_birth: usize,
}

/// True when the record has no date of birth that matching can use (missing, or
/// not a real `YYYY-MM-DD` date).
fn lacks_valid_date_of_birth(record: &DepartmentRecord) -> bool {
    record
        .dataset
        .date_of_birth
        .as_deref()
        .and_then(matching::parse_date_of_birth)
        .is_none()
}

/// Parses the whole file into batches (the blocking side of the import).
/// Stops early when the writer has gone (it failed).
fn parse(reader: CountingReader, json_lines: bool, sender: &mpsc::Sender<Parsed>) {
    let rows: Box<dyn Iterator<Item = Result<DepartmentRecord, RowError>>> = if json_lines {
        Box::new(read_json_lines(BufReader::with_capacity(1 << 16, reader)))
    } else {
        Box::new(read_csv(reader))
    };
    let mut records = Vec::with_capacity(BATCH);
    let mut rejected = Vec::new();
    for row in rows {
        match row {
            Ok(record) => records.push(record),
            Err(e) => rejected.push(e),
        }
        if records.len() == BATCH
            && sender
                .blocking_send(batch(&mut records, &mut rejected))
                .is_err()
        {
            return;
        }
    }
    if !records.is_empty() || !rejected.is_empty() {
        let _ = sender.blocking_send(batch(&mut records, &mut rejected));
    }
}

/// The records and rejected rows gathered so far as one batch, leaving both empty.
fn batch(records: &mut Vec<DepartmentRecord>, rejected: &mut Vec<RowError>) -> Parsed {
    let parsed = Parsed {
        records: PreparedRecords::new(records),
        rejected: std::mem::take(rejected),
        invalid_date_of_birth: records
            .iter()
            .filter(|r| lacks_valid_date_of_birth(r))
            .count(),
    };
    records.clear();
    parsed
}

/// Counts the bytes read through it, for the progress report.
struct CountingReader {
    inner: File,
    count: Arc<AtomicU64>,
}

impl Read for CountingReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Imports a file of this name and content into a fresh SQLite database; also
    /// returns how many records the database then holds.
    async fn import(name: &str, content: &str) -> (Result<ImportReport, ImportError>, i64) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("hub.db").display());
        let db = Database::open(&url).await.unwrap();
        db.migrate().await.unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        let outcome = import_file(&db, "rp", &path).await;
        (outcome, db.count_records("rp").await.unwrap())
    }

    /// Why an import read nothing, and its rejected rows' lines.
    async fn nothing(name: &str, content: &str) -> (NothingRead, Vec<u64>) {
        match import(name, content).await.0 {
            Err(ImportError::NothingImported { why, rejected }) => {
                (why, rejected.iter().map(|e| e.line).collect())
            }
            other => panic!("{name}: {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_file_that_gives_no_record_fails_saying_why() {
        let file_error = |why: NothingRead| match why {
            NothingRead::File(e) => e.to_string(),
            other => panic!("{other:?}"),
        };
        let (why, rows) = nothing("empty.csv", "").await;
        assert!(file_error(why).contains("empty file"));
        assert!(rows.is_empty());
        let (why, _) = nothing("no-id.csv", "first_name,surname\nA,B\n").await;
        assert!(file_error(why).contains("no record_id column"));
        let (why, _) = nothing("semicolons.csv", "record_id;surname\nD1;Khan\n").await;
        assert!(file_error(why).contains("other than commas"));

        assert_eq!(
            nothing("header-only.csv", "record_id,surname\n").await,
            (NothingRead::NoRows, vec![])
        );
        assert_eq!(
            nothing("empty.jsonl", "\n").await,
            (NothingRead::NoRows, vec![])
        );
        assert_eq!(
            nothing("bad.csv", "record_id,surname\nD1\n,Khan\n").await,
            (NothingRead::AllRejected(2), vec![2, 3])
        );
        assert_eq!(
            nothing("bad.jsonl", "{\"surname\": \"Khan\"}\n").await,
            (NothingRead::AllRejected(1), vec![1])
        );
        let e = ImportError::NothingImported {
            why: NothingRead::AllRejected(2),
            rejected: Vec::new(),
        };
        assert_eq!(e.to_string(), "nothing imported: all 2 rows were rejected");
    }

    #[tokio::test]
    async fn records_without_a_valid_date_of_birth_are_stored_and_counted() {
        let csv = "record_id,surname,date_of_birth\n\
                   D1,Khan,1980-04-10\n\
                   D2,Lee,1980-02-30\n\
                   D3,Ng,10/04/1980\n\
                   D4,Ho,\n";
        let (report, stored) = import("records.csv", csv).await;
        let report = report.unwrap();
        assert_eq!(report.imported, 4);
        assert_eq!(report.invalid_date_of_birth, 3);
        assert_eq!(stored, 4);
    }

    #[tokio::test]
    async fn a_byte_order_mark_does_not_cost_the_first_line() {
        let (report, stored) = import("bom.csv", "\u{feff}record_id,surname\nD1,Khan\n").await;
        assert_eq!(report.unwrap().imported, 1);
        assert_eq!(stored, 1);
        let jsonl = "\u{feff}{\"record_id\": \"D1\"}\n{\"record_id\": \"D2\"}\n";
        let (report, stored) = import("bom.jsonl", jsonl).await;
        let report = report.unwrap();
        assert!(report.rejected.is_empty(), "{:?}", report.rejected);
        assert_eq!((report.imported, stored), (2, 2));
    }
}
