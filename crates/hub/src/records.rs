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
}

/// Streams `path` (CSV, or JSON lines when it ends in `.jsonl`/`.ndjson`) into the
/// records of relying party `rp_id`. Good rows are kept; bad rows are reported.
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
    let mut state = ImportProgress {
        total_bytes,
        ..ImportProgress::default()
    };
    while let Some(parsed) = receiver.recv().await {
        let records = parsed.records?;
        if !records.is_empty() {
            report.imported += db.import_prepared(rp_id, records).await?;
        }
        report.rejected.extend(parsed.rejected);
        state.bytes_read = bytes_read.load(Ordering::Relaxed).min(total_bytes);
        state.imported = report.imported;
        state.rejected = report.rejected.len();
        progress(&state);
    }
    parser.await.map_err(|_| ImportError::Reader)?;
    Ok(report)
}

/// One batch from the parser: the records (encoded, with their keys) and the
/// rows rejected since the last one.
struct Parsed {
    records: Result<PreparedRecords, StoreError>,
    rejected: Vec<RowError>,
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
        if records.len() == BATCH {
            let parsed = Parsed {
                records: PreparedRecords::new(&records),
                rejected: std::mem::take(&mut rejected),
            };
            records.clear();
            if sender.blocking_send(parsed).is_err() {
                return;
            }
        }
    }
    if !records.is_empty() || !rejected.is_empty() {
        let _ = sender.blocking_send(Parsed {
            records: PreparedRecords::new(&records),
            rejected,
        });
    }
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
