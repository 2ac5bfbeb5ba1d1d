//! Loading department records from a file into the database (`hub records import`).

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use store::records_file::{read_csv, read_json_lines, RowError};
use store::Database;

/// Rows are written in batches of this many, each batch in one transaction.
const BATCH: usize = 5_000;

/// What an import did: rows loaded and rows rejected (with their line numbers).
#[derive(Debug, Default)]
pub struct ImportReport {
    pub imported: usize,
    pub rejected: Vec<RowError>,
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
}

/// Streams `path` (CSV, or JSON lines when it ends in `.jsonl`/`.ndjson`) into the
/// records of relying party `rp_id`. Good rows are kept; bad rows are reported.
pub async fn import_file(
    db: &Database,
    rp_id: &str,
    path: &Path,
) -> Result<ImportReport, ImportError> {
    let file = File::open(path).map_err(|source| ImportError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let json_lines = path
        .extension()
        .is_some_and(|e| e == "jsonl" || e == "ndjson");
    let rows: Box<dyn Iterator<Item = Result<matching::DepartmentRecord, RowError>>> = if json_lines
    {
        Box::new(read_json_lines(BufReader::new(file)))
    } else {
        Box::new(read_csv(file))
    };
    let mut report = ImportReport::default();
    let mut batch = Vec::with_capacity(BATCH);
    for row in rows {
        match row {
            Ok(record) => batch.push(record),
            Err(e) => report.rejected.push(e),
        }
        if batch.len() == BATCH {
            report.imported += db.import_records(rp_id, &batch).await?;
            batch.clear();
        }
    }
    if !batch.is_empty() {
        report.imported += db.import_records(rp_id, &batch).await?;
    }
    Ok(report)
}
