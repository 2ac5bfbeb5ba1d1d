//! Writers for the corpus files: the department file in the exact CSV shape `hub records
//! import` reads, the queries as matching datasets in JSON lines (the `hub match batch`
//! input), and the truth beside them, so the files can be fed to the real tools and the
//! decisions scored afterwards.

use std::io::{self, Write};

use matching::{DepartmentRecord, RecordId};
use serde::{Deserialize, Serialize};

use super::{LabelledQuery, QuerySet};

/// The header of a department CSV file for `hub records import` (docs/department-records.md),
/// in column order.
const CSV_HEADER: [&str; 12] = [
    "record_id",
    "first_name",
    "middle_names",
    "surname",
    "previous_surnames",
    "date_of_birth",
    "gender",
    "address_lines",
    "postcode",
    "previous_postcodes",
    "nino",
    "driving_licence",
];

/// Separator inside multi-valued cells.
const MULTI: &str = "|";

/// Writes department records as CSV with a header row, one row per record.
///
/// The current address (the first address marked current, else the first) fills
/// `address_lines` and `postcode`; every other address contributes its postcode to
/// `previous_postcodes` (the file format has no lines for previous addresses). `nino` and
/// `driving_licence` come from the attributes of those names; other attributes and the
/// dataset `id` are not written. Values must not contain `|`, which the reader splits on
/// (generated records never do).
pub fn write_records_csv(records: &[DepartmentRecord], out: impl Write) -> io::Result<()> {
    let mut writer = csv::Writer::from_writer(out);
    writer.write_record(CSV_HEADER)?;
    for record in records {
        let d = &record.dataset;
        let current = d
            .addresses
            .iter()
            .position(|a| a.current)
            .or((!d.addresses.is_empty()).then_some(0));
        let (lines, postcode) = match current.and_then(|i| d.addresses.get(i)) {
            Some(a) => (a.lines.join(MULTI), a.postcode.clone().unwrap_or_default()),
            None => (String::new(), String::new()),
        };
        let previous_postcodes: Vec<&str> = d
            .addresses
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != current)
            .filter_map(|(_, a)| a.postcode.as_deref())
            .collect();
        let attribute = |name: &str| d.attributes.get(name).cloned().unwrap_or_default();
        writer.write_record([
            record.record_id.as_str(),
            d.first_name.as_deref().unwrap_or(""),
            &d.middle_names.join(MULTI),
            d.surnames.first().map(String::as_str).unwrap_or(""),
            &d.surnames.get(1..).unwrap_or(&[]).join(MULTI),
            d.date_of_birth.as_deref().unwrap_or(""),
            d.gender.as_deref().unwrap_or(""),
            &lines,
            &postcode,
            &previous_postcodes.join(MULTI),
            &attribute("nino"),
            &attribute("driving_licence"),
        ])?;
    }
    writer.flush()
}

/// Writes each query's matching dataset (with its `id`) as one JSON line: the input of
/// `hub match batch`.
pub fn write_queries_jsonl(queries: &[LabelledQuery], mut out: impl Write) -> io::Result<()> {
    for query in queries {
        serde_json::to_writer(&mut out, &query.dataset)?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

/// One line of `truth.jsonl`: which set a query belongs to, whose record it should match
/// (`null` for nobody) and the NINO the citizen would type at cycle 3.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct TruthLine {
    /// The query's `id` (`q-<n>`).
    pub id: Option<String>,
    /// The query set.
    pub set: QuerySet,
    /// The record the query is about, if the person has one.
    pub truth: Option<RecordId>,
    /// The citizen's own NINO as typed.
    pub nino: Option<String>,
}

impl From<&LabelledQuery> for TruthLine {
    fn from(q: &LabelledQuery) -> Self {
        Self {
            id: q.dataset.id.clone(),
            set: q.set,
            truth: q.truth.clone(),
            nino: q.nino.clone(),
        }
    }
}

/// Writes one [`TruthLine`] per query, in query order.
pub fn write_truth_jsonl(queries: &[LabelledQuery], mut out: impl Write) -> io::Result<()> {
    for query in queries {
        serde_json::to_writer(&mut out, &TruthLine::from(query))?;
        out.write_all(b"\n")?;
    }
    out.flush()
}
