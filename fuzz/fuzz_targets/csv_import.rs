//! Department-record files (`hub records import`): arbitrary bytes through the CSV
//! and JSON-lines readers, then the encoding and blocking keys every imported
//! record gets (`PreparedRecords::new`), exactly as `hub::records` runs them.
//!
//! Must never panic: a bad row is a `RowError`, a bad batch a `StoreError`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use store::records_file::{read_csv, read_json_lines};

fuzz_target!(|data: &[u8]| {
    let csv: Vec<_> = read_csv(data).collect();
    let json_lines: Vec<_> = read_json_lines(data).collect();
    for rows in [csv, json_lines] {
        let mut last_line = 0;
        let mut records = Vec::new();
        for row in rows {
            match row {
                Ok(record) => records.push(record),
                Err(e) => {
                    // Errors name where they are, in file order.
                    assert!(e.line >= 1 && e.line >= last_line, "{e}");
                    last_line = e.line;
                }
            }
        }
        let _ = store::PreparedRecords::new(&records);
    }
});
