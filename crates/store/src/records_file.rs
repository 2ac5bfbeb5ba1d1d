//! Readers for department record files (`hub records import`): CSV and JSON lines.
//!
//! Both stream: rows are parsed one at a time, and a bad row yields a
//! [`RowError`] carrying its line number while the rows after it keep coming,
//! so one typo does not lose a whole import. Error messages never quote cell
//! values (they are personal data); they name the line, column and problem.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::io::{BufRead, Read};

use matching::{Address, DepartmentRecord, MatchingDataset, RecordId};

/// A row that could not be turned into a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// 1-based line of the file where the row starts (1 is the CSV header).
    pub line: u64,
    /// What is wrong, without quoting the row's values.
    pub message: String,
    /// True when the problem is the file's rather than one row's (empty, no usable
    /// header, a read failure): nothing after it is read.
    pub whole_file: bool,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for RowError {}

impl RowError {
    fn new(line: u64, message: impl Into<String>) -> Self {
        Self {
            line,
            message: message.into(),
            whole_file: false,
        }
    }

    /// An error that ends the reading of the file.
    fn file(line: u64, message: impl Into<String>) -> Self {
        Self {
            whole_file: true,
            ..Self::new(line, message)
        }
    }
}

/// Separator inside multi-valued CSV cells (`middle_names`, `previous_surnames`,
/// `address_lines`, `previous_postcodes`).
const MULTI_VALUE_SEPARATOR: char = '|';

/// The columns with a fixed meaning; any other header is a department-specific
/// attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    RecordId,
    FirstName,
    MiddleNames,
    Surname,
    PreviousSurnames,
    DateOfBirth,
    Gender,
    AddressLines,
    Postcode,
    PreviousPostcodes,
    Nino,
    DrivingLicence,
    /// A department-specific attribute, keyed by its header.
    Attribute(usize),
    /// A column with an empty header (trailing spreadsheet columns): ignored.
    Ignored,
}

fn known_column(name: &str) -> Option<Column> {
    Some(match name.to_ascii_lowercase().as_str() {
        "record_id" => Column::RecordId,
        "first_name" => Column::FirstName,
        "middle_names" => Column::MiddleNames,
        "surname" => Column::Surname,
        "previous_surnames" => Column::PreviousSurnames,
        "date_of_birth" => Column::DateOfBirth,
        "gender" => Column::Gender,
        "address_lines" => Column::AddressLines,
        "postcode" => Column::Postcode,
        "previous_postcodes" => Column::PreviousPostcodes,
        "nino" => Column::Nino,
        "driving_licence" => Column::DrivingLicence,
        _ => return None,
    })
}

/// The header row, resolved.
#[derive(Debug)]
struct Layout {
    columns: Vec<Column>,
    /// Header names of the `Column::Attribute` columns, by index.
    attribute_names: Vec<String>,
}

impl Layout {
    fn from_header(header: &[String]) -> Result<Self, String> {
        let mut columns = Vec::with_capacity(header.len());
        let mut attribute_names = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (i, raw) in header.iter().enumerate() {
            let name = raw.trim_start_matches('\u{feff}').trim();
            if name.is_empty() {
                columns.push(Column::Ignored);
                continue;
            }
            if !seen.insert(name.to_ascii_lowercase()) {
                return Err(format!("column {} repeats the header {name:?}", i + 1));
            }
            columns.push(match known_column(name) {
                Some(column) => column,
                None => {
                    attribute_names.push(name.to_owned());
                    Column::Attribute(attribute_names.len() - 1)
                }
            });
        }
        if !columns.contains(&Column::RecordId) {
            return Err(match header {
                [only] if only.contains([';', '\t', '|']) => {
                    "the header row is one column with no record_id column: \
                     is the file separated by something other than commas?"
                }
                _ => "the header row has no record_id column",
            }
            .into());
        }
        Ok(Self {
            columns,
            attribute_names,
        })
    }

    fn record(&self, line: u64, row: &[String]) -> Result<DepartmentRecord, RowError> {
        if row.len() != self.columns.len() {
            return Err(RowError::new(
                line,
                format!(
                    "expected {} columns, found {}",
                    self.columns.len(),
                    row.len()
                ),
            ));
        }
        let mut record_id = None;
        let mut dataset = MatchingDataset::default();
        let mut surname = None;
        let mut previous_surnames = Vec::new();
        let mut address_lines = Vec::new();
        let mut postcode = None;
        let mut previous_postcodes = Vec::new();
        let mut attributes = BTreeMap::new();
        for (column, cell) in self.columns.iter().zip(row.iter()) {
            match column {
                Column::RecordId => record_id = single(cell),
                Column::FirstName => dataset.first_name = single(cell),
                Column::MiddleNames => dataset.middle_names = multi(cell),
                Column::Surname => surname = single(cell),
                Column::PreviousSurnames => previous_surnames = multi(cell),
                Column::DateOfBirth => dataset.date_of_birth = single(cell),
                Column::Gender => dataset.gender = single(cell),
                Column::AddressLines => address_lines = multi(cell),
                Column::Postcode => postcode = single(cell),
                Column::PreviousPostcodes => previous_postcodes = multi(cell),
                Column::Nino => insert_attribute(&mut attributes, "nino", cell),
                Column::DrivingLicence => {
                    insert_attribute(&mut attributes, "driving_licence", cell)
                }
                Column::Attribute(i) => {
                    if let Some(name) = self.attribute_names.get(*i) {
                        insert_attribute(&mut attributes, name, cell);
                    }
                }
                Column::Ignored => {}
            }
        }
        let Some(record_id) = record_id else {
            return Err(RowError::new(line, "missing record_id"));
        };
        // Current surname first, then earlier ones: the order matching expects.
        dataset.surnames = surname.into_iter().chain(previous_surnames).collect();
        if !address_lines.is_empty() || postcode.is_some() {
            dataset.addresses.push(Address {
                lines: address_lines,
                postcode,
                current: true,
            });
        }
        dataset
            .addresses
            .extend(previous_postcodes.into_iter().map(|p| Address {
                lines: Vec::new(),
                postcode: Some(p),
                current: false,
            }));
        dataset.attributes = attributes;
        Ok(DepartmentRecord {
            record_id: RecordId(record_id),
            dataset,
        })
    }
}

/// A trimmed cell, `None` when blank.
fn single(cell: &str) -> Option<String> {
    let cell = cell.trim();
    (!cell.is_empty()).then(|| cell.to_owned())
}

/// A `|`-separated cell as trimmed, non-blank values.
fn multi(cell: &str) -> Vec<String> {
    cell.split(MULTI_VALUE_SEPARATOR)
        .filter_map(single)
        .collect()
}

fn insert_attribute(attributes: &mut BTreeMap<String, String>, name: &str, cell: &str) {
    if let Some(value) = single(cell) {
        attributes.insert(name.to_owned(), value);
    }
}

/// Physical lines one CSV row may span (quoted cells with line breaks): plenty for
/// addresses written a line per line, and a bound on what a stray opening quote can
/// take before its row is rejected and the lines after it are read again.
const MAX_LINES_PER_ROW: usize = 20;

/// A UTF-8 byte-order mark, which spreadsheet programs put at the start of files.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// How one row's text splits into cells.
#[derive(Debug, PartialEq, Eq)]
enum Split {
    /// The row's cells, unquoted.
    Cells(Vec<Vec<u8>>),
    /// A quoted cell is still open at the end of the text: the row goes on on the next line.
    Open,
    /// Something other than a comma follows the closing quote of this (1-based) column.
    AfterQuote(usize),
}

/// Splits one row (without its final line break) into cells, RFC 4180 style: a cell
/// that starts with `"` is quoted up to the next single `"` (`""` is a quote inside it,
/// line breaks are kept), and only a comma, spaces or the end may follow it; in an
/// unquoted cell a `"` is an ordinary character.
fn split_row(text: &[u8]) -> Split {
    let mut cells = Vec::new();
    let mut i = 0;
    loop {
        if text.get(i) != Some(&b'"') {
            let rest = text.get(i..).unwrap_or_default();
            let end = rest.iter().position(|&b| b == b',');
            cells.push(rest[..end.unwrap_or(rest.len())].to_vec());
            match end {
                Some(end) => i += end + 1,
                None => return Split::Cells(cells),
            }
            continue;
        }
        let Some((cell, after)) = quoted_cell(text, i + 1) else {
            return Split::Open;
        };
        cells.push(cell);
        i = after;
        while matches!(text.get(i), Some(b' ' | b'\t')) {
            i += 1;
        }
        match text.get(i) {
            None => return Split::Cells(cells),
            Some(b',') => i += 1,
            Some(_) => return Split::AfterQuote(cells.len()),
        }
    }
}

/// The content of the quoted cell whose text starts at `start` (after its opening
/// quote) and the index after its closing quote; `None` when it is not closed.
fn quoted_cell(text: &[u8], start: usize) -> Option<(Vec<u8>, usize)> {
    let mut cell = Vec::new();
    let mut i = start;
    loop {
        match (text.get(i)?, text.get(i + 1)) {
            (b'"', Some(b'"')) => {
                cell.push(b'"');
                i += 2;
            }
            (b'"', _) => return Some((cell, i + 1)),
            (&b, _) => {
                cell.push(b);
                i += 1;
            }
        }
    }
}

/// The line without its `\n` or `\r\n`.
fn trim_line_break(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// One physical line of the file: its number and its bytes with their line break.
type PhysicalLine = (u64, Vec<u8>);

/// One row's cells, split but not yet read as text.
struct Row {
    /// The line the row starts on.
    line: u64,
    cells: Vec<Vec<u8>>,
    /// The lines after the first that the row spans (quoted cells with line breaks).
    more_lines: Vec<PhysicalLine>,
}

/// Streaming CSV reader state.
struct CsvRecords<R> {
    reader: R,
    /// Lines read but not yet part of a row (given back after a row spanning them failed).
    pending: VecDeque<PhysicalLine>,
    /// Lines read from `reader` so far.
    lines_read: u64,
    layout: Option<Layout>,
    /// Set after the last item: the end of the file, or an error about the whole file.
    done: bool,
}

impl<R: BufRead> CsvRecords<R> {
    /// The next physical line, those given back first; `Ok(None)` at the end.
    fn line(&mut self) -> Result<Option<PhysicalLine>, RowError> {
        if let Some(line) = self.pending.pop_front() {
            return Ok(Some(line));
        }
        let mut bytes = Vec::new();
        loop {
            match self.reader.read_until(b'\n', &mut bytes) {
                Ok(0) => return Ok(None),
                Ok(_) => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let line = self.lines_read + 1;
                    return Err(RowError::file(line, format!("read error: {e}")));
                }
            }
        }
        self.lines_read += 1;
        if self.lines_read == 1 && bytes.starts_with(BOM) {
            bytes.drain(..BOM.len());
        }
        Ok(Some((self.lines_read, bytes)))
    }

    /// The next row's first line and cells, `None` at the end of the file. A row whose
    /// quotes do not balance within [`MAX_LINES_PER_ROW`] lines (or by the end of the
    /// file) is an error at its first line, and the lines after that one are read
    /// again as rows of their own: a stray quote costs its own row only.
    fn row(&mut self) -> Option<Result<Row, RowError>> {
        let (first, mut text) = loop {
            match self.line() {
                Err(e) => return Some(Err(e)),
                Ok(None) => return None,
                Ok(Some((n, bytes))) if !trim_line_break(&bytes).is_empty() => break (n, bytes),
                Ok(Some(_)) => {} // a blank line
            }
        };
        let mut taken = Vec::new();
        let problem = loop {
            match split_row(trim_line_break(&text)) {
                Split::Cells(cells) => {
                    return Some(Ok(Row {
                        line: first,
                        cells,
                        more_lines: taken,
                    }))
                }
                Split::AfterQuote(column) => {
                    break format!(
                        "column {column}: text after a closing quote (unbalanced quotes?)"
                    );
                }
                Split::Open if taken.len() + 1 >= MAX_LINES_PER_ROW => {
                    break format!(
                        "a quoted cell is not closed within {MAX_LINES_PER_ROW} lines (unbalanced quotes?)"
                    );
                }
                Split::Open => match self.line() {
                    Err(e) => return Some(Err(e)),
                    Ok(None) => {
                        break "a quoted cell is not closed by the end of the file (unbalanced quotes?)"
                            .to_owned();
                    }
                    Ok(Some(line)) => {
                        text.extend_from_slice(&line.1);
                        taken.push(line);
                    }
                },
            }
        };
        self.give_back(taken);
        Some(Err(RowError::new(first, problem)))
    }

    /// Puts lines back to be read again, in order, before any not read yet.
    fn give_back(&mut self, lines: Vec<PhysicalLine>) {
        for line in lines.into_iter().rev() {
            self.pending.push_front(line);
        }
    }
}

impl<R: BufRead> CsvRecords<R> {
    /// The row's first line and its cells as text. A row that spans several lines but
    /// has the wrong number of cells is most likely a stray quote that took the lines
    /// after it: it is rejected and those lines are read again as rows of their own.
    fn checked(&mut self, row: Row) -> Result<(u64, Vec<String>), RowError> {
        let expected = self.layout.as_ref().map(|l| l.columns.len());
        if !row.more_lines.is_empty() && expected.is_some_and(|n| n != row.cells.len()) {
            let message = format!(
                "expected {} columns, found {} in a row spanning {} lines (unbalanced quotes?)",
                expected.unwrap_or_default(),
                row.cells.len(),
                row.more_lines.len() + 1
            );
            self.give_back(row.more_lines);
            return Err(RowError::new(row.line, message));
        }
        Ok((row.line, cells_as_text(row.line, row.cells)?))
    }
}

/// The row's cells as text; an error names the first column that is not UTF-8.
fn cells_as_text(line: u64, cells: Vec<Vec<u8>>) -> Result<Vec<String>, RowError> {
    cells
        .into_iter()
        .enumerate()
        .map(|(i, cell)| {
            String::from_utf8(cell)
                .map_err(|_| RowError::new(line, format!("column {} is not valid UTF-8", i + 1)))
        })
        .collect()
}

impl<R: BufRead> Iterator for CsvRecords<R> {
    type Item = Result<DepartmentRecord, RowError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            let row = match self.row() {
                None => {
                    self.done = true;
                    let empty = RowError::file(1, "empty file: expected a header row");
                    return self.layout.is_none().then_some(Err(empty));
                }
                Some(row) => row,
            };
            let row = row.and_then(|row| self.checked(row));
            let (line, cells) = match row {
                // Without a header, no row after a bad one can be read.
                Err(e) if e.whole_file || self.layout.is_none() => {
                    self.done = true;
                    return Some(Err(RowError::file(e.line, e.message)));
                }
                Err(e) => return Some(Err(e)),
                Ok(row) => row,
            };
            match &self.layout {
                Some(layout) => return Some(layout.record(line, &cells)),
                None => match Layout::from_header(&cells) {
                    Ok(layout) => self.layout = Some(layout),
                    Err(message) => {
                        self.done = true;
                        return Some(Err(RowError::file(line, message)));
                    }
                },
            }
        }
        None
    }
}

/// Reads department records from CSV with a header row (docs/department-records.md, "CSV").
///
/// Known columns: `record_id` (required), `first_name`, `middle_names`,
/// `surname`, `previous_surnames`, `date_of_birth`, `gender`, `address_lines`,
/// `postcode`, `previous_postcodes`, `nino`, `driving_licence`; any may be
/// absent from the header except `record_id`, and header names are
/// case-insensitive. Multi-valued cells separate values with `|`. The current
/// address is `address_lines` + `postcode`; each previous postcode becomes a
/// non-current address without lines. `nino`, `driving_licence` and every
/// unknown column go into `attributes` (unknown ones keyed by their header).
/// Values are trimmed; blank cells are absent. Dates are passed through as
/// written (matching copes with malformed ones). A leading byte-order mark is
/// skipped. Quoted cells may span lines, but a row whose quotes do not balance
/// is rejected on its own ([`MAX_LINES_PER_ROW`]).
pub fn read_csv<R: Read>(r: R) -> impl Iterator<Item = Result<DepartmentRecord, RowError>> {
    CsvRecords {
        reader: std::io::BufReader::with_capacity(1 << 16, r),
        pending: std::collections::VecDeque::new(),
        lines_read: 0,
        layout: None,
        done: false,
    }
}

/// Reads department records from JSON lines: each non-blank line is a
/// matching dataset object (docs/matching.md, "Contracts") plus a `record_id` (string or
/// integer).
///
/// Dataset values are read as leniently as matching reads them, but a member
/// that is not part of the dataset shape fails the row, since it is most
/// likely a misspelling that would otherwise lose data silently.
pub fn read_json_lines<R: BufRead>(
    r: R,
) -> impl Iterator<Item = Result<DepartmentRecord, RowError>> {
    JsonLines {
        reader: r,
        line: 0,
        buf: Vec::new(),
        done: false,
    }
}

struct JsonLines<R> {
    reader: R,
    line: u64,
    buf: Vec<u8>,
    done: bool,
}

impl<R: BufRead> Iterator for JsonLines<R> {
    type Item = Result<DepartmentRecord, RowError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            self.buf.clear();
            match self.reader.read_until(b'\n', &mut self.buf) {
                Ok(0) => self.done = true,
                Ok(_) => {
                    self.line += 1;
                    let Ok(text) = std::str::from_utf8(&self.buf) else {
                        return Some(Err(RowError::new(self.line, "line is not valid UTF-8")));
                    };
                    let text = text.trim_start_matches('\u{feff}').trim();
                    if text.is_empty() {
                        continue;
                    }
                    return Some(parse_json_record(text).map_err(|m| RowError::new(self.line, m)));
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.done = true;
                    return Some(Err(RowError::new(
                        self.line + 1,
                        format!("read error: {e}"),
                    )));
                }
            }
        }
        None
    }
}

/// Members of a matching dataset object (docs/matching.md, "Contracts").
const DATASET_MEMBERS: &[&str] = &[
    "id",
    "first_name",
    "middle_names",
    "surnames",
    "date_of_birth",
    "gender",
    "addresses",
    "attributes",
];

fn parse_json_record(text: &str) -> Result<DepartmentRecord, String> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| json_error("invalid JSON", &e))?;
    let serde_json::Value::Object(mut object) = value else {
        return Err("expected a JSON object".into());
    };
    let record_id = match object.remove("record_id") {
        Some(serde_json::Value::String(s)) if !s.trim().is_empty() => s.trim().to_owned(),
        Some(serde_json::Value::Number(n)) => n.to_string(),
        Some(serde_json::Value::String(_)) | Some(serde_json::Value::Null) | None => {
            return Err("missing record_id".into())
        }
        Some(_) => return Err("record_id must be a string".into()),
    };
    // Also accept the nested `{"record_id": .., "dataset": {..}}` form that
    // `matching::DepartmentRecord` deserialises.
    let object = match object.remove("dataset") {
        Some(serde_json::Value::Object(nested)) if object.is_empty() => nested,
        Some(_) => {
            return Err("`dataset` must be the only member besides record_id, and an object".into())
        }
        None => object,
    };
    // The dataset is read leniently, so a misspelt member ("surname") would
    // silently drop data; reject the row instead.
    if let Some(unknown) = object
        .keys()
        .find(|k| !DATASET_MEMBERS.contains(&k.as_str()))
    {
        return Err(format!(
            "unknown member `{unknown}` (expected record_id and {})",
            DATASET_MEMBERS.join(", ")
        ));
    }
    let dataset: MatchingDataset = serde_json::from_value(serde_json::Value::Object(object))
        .map_err(|e| json_error("not a matching dataset", &e))?;
    Ok(DepartmentRecord {
        record_id: RecordId(record_id),
        dataset,
    })
}

/// serde_json messages can quote the offending value (`invalid type: string
/// "Smith"`); keep the explanation but blank out quoted values.
fn json_error(context: &str, e: &serde_json::Error) -> String {
    let message = e.to_string();
    let mut redacted = String::with_capacity(message.len());
    let mut in_quotes = false;
    for c in message.chars() {
        if c == '"' {
            if in_quotes {
                redacted.push_str("...\"");
            } else {
                redacted.push('"');
            }
            in_quotes = !in_quotes;
        } else if !in_quotes {
            redacted.push(c);
        }
    }
    format!("{context}: {redacted}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(csv: &str) -> Vec<Result<DepartmentRecord, RowError>> {
        read_csv(csv.as_bytes()).collect()
    }

    const HEADER: &str = "record_id,first_name,middle_names,surname,previous_surnames,date_of_birth,gender,address_lines,postcode,previous_postcodes,nino,driving_licence,customer_ref";

    #[test]
    fn csv_multi_valued_extra_column_and_bad_row() {
        let text = format!(
            "{HEADER}\n\
             D1,William,John|James,Smith-Jones,Smith|Jones,1980-04-10,male,12 High Street|Leeds,LS1 4AB,YO1 7HH|M1 1AA,QQ123456C,,C-77\n\
             D2,Only,Two\n\
             ,Nobody,,Nobody,,1970-01-01,,,,,,,\n\
             \"D3\",\"Ann\",,\"Lee\",,1990-02-03,female,\"1 Long\nRoad\",SW1A 1AA,,,LEE99901010AB9CD,\n\
             D4,Bo,,Ng,,1991-01-01,,,,,,,\n"
        );
        let rows = parse(&text);
        assert_eq!(rows.len(), 5, "{rows:?}");

        let d1 = rows[0].as_ref().unwrap();
        assert_eq!(d1.record_id.0, "D1");
        let ds = &d1.dataset;
        assert_eq!(ds.first_name.as_deref(), Some("William"));
        assert_eq!(ds.middle_names, vec!["John", "James"]);
        assert_eq!(ds.surnames, vec!["Smith-Jones", "Smith", "Jones"]);
        assert_eq!(ds.date_of_birth.as_deref(), Some("1980-04-10"));
        assert_eq!(ds.gender.as_deref(), Some("male"));
        assert_eq!(ds.addresses.len(), 3);
        assert_eq!(ds.addresses[0].lines, vec!["12 High Street", "Leeds"]);
        assert_eq!(ds.addresses[0].postcode.as_deref(), Some("LS1 4AB"));
        assert!(ds.addresses[0].current);
        assert_eq!(ds.addresses[1].postcode.as_deref(), Some("YO1 7HH"));
        assert!(!ds.addresses[1].current && ds.addresses[1].lines.is_empty());
        assert_eq!(ds.addresses[2].postcode.as_deref(), Some("M1 1AA"));
        assert_eq!(
            ds.attributes.get("nino").map(String::as_str),
            Some("QQ123456C")
        );
        assert!(
            !ds.attributes.contains_key("driving_licence"),
            "blank cell is absent"
        );
        assert_eq!(
            ds.attributes.get("customer_ref").map(String::as_str),
            Some("C-77")
        );

        let bad = rows[1].as_ref().unwrap_err();
        assert_eq!(bad.line, 3);
        assert!(
            bad.message.contains("expected 13 columns, found 3"),
            "{bad}"
        );
        assert!(!bad.message.contains("Only"), "no personal data in errors");

        let missing = rows[2].as_ref().unwrap_err();
        assert_eq!(missing.line, 4);
        assert_eq!(missing.message, "missing record_id");

        // A quoted field spanning two lines: the row starts on line 5.
        let d3 = rows[3].as_ref().unwrap();
        assert_eq!(d3.record_id.0, "D3");
        assert_eq!(d3.dataset.addresses[0].lines, vec!["1 Long\nRoad"]);
        assert_eq!(
            d3.dataset
                .attributes
                .get("driving_licence")
                .map(String::as_str),
            Some("LEE99901010AB9CD")
        );
        assert!(d3.dataset.addresses.iter().filter(|a| a.current).count() == 1);

        // Rows after the bad ones still come through, with the right numbering.
        assert_eq!(rows[4].as_ref().unwrap().record_id.0, "D4");
    }

    /// The example in docs/department-records.md.
    #[test]
    fn csv_documented_example() {
        let text = "record_id,first_name,middle_names,surname,previous_surnames,date_of_birth,gender,address_lines,postcode,previous_postcodes,nino,driving_licence,customer_ref\n\
            D1,William,John,Smith-Jones,Smith,1980-04-10,male,12 High Street|Leeds,LS1 4AB,YO1 7HH|M1 1AA,QQ123456C,,C-0042\n\
            D2,Ann,,Lee,,1990-02-03,female,\"Flat 2, 1 Long Road|London\",SW1A 1AA,,,LEE99901010AB9CD,C-0043\n\
            D3,Bo,,Ng,,1991-01-01\n";
        let rows = parse(text);
        assert_eq!(rows.len(), 3);
        let d1 = serde_json::to_value(rows[0].as_ref().unwrap()).unwrap();
        let expected = serde_json::json!({"record_id": "D1", "id": null, "first_name": "William", "middle_names": ["John"],
            "surnames": ["Smith-Jones", "Smith"], "date_of_birth": "1980-04-10", "gender": "male",
            "addresses": [
                {"lines": ["12 High Street", "Leeds"], "postcode": "LS1 4AB", "current": true},
                {"lines": [], "postcode": "YO1 7HH", "current": false},
                {"lines": [], "postcode": "M1 1AA", "current": false}],
            "attributes": {"customer_ref": "C-0042", "nino": "QQ123456C"}});
        assert_eq!(d1, expected);
        let d2 = rows[1].as_ref().unwrap();
        assert_eq!(
            d2.dataset.addresses[0].lines,
            vec!["Flat 2, 1 Long Road", "London"]
        );
        assert_eq!(
            rows[2].as_ref().unwrap_err().to_string(),
            "line 4: expected 13 columns, found 6"
        );
    }

    #[test]
    fn csv_bad_row_error_line_accounts_for_multiline_fields() {
        let text = "record_id,address_lines\nA,\"x\ny\"\nB\n";
        let rows = parse(text);
        assert_eq!(rows[0].as_ref().unwrap().record_id.0, "A");
        assert_eq!(rows[1].as_ref().unwrap_err().line, 4);
    }

    fn outcome(rows: &[Result<DepartmentRecord, RowError>]) -> Vec<String> {
        rows.iter()
            .map(|r| match r {
                Ok(record) => record.record_id.0.clone(),
                Err(e) => format!("line {}", e.line),
            })
            .collect()
    }

    /// A stray opening quote that is never closed used to take every line after it into
    /// its cell, and those rows vanished: now its row is rejected and the rest is read.
    #[test]
    fn csv_unclosed_quote_costs_only_its_own_row() {
        let mut text = "record_id,surname,date_of_birth
D0,\"Smith,1980-01-01\n"
            .to_owned();
        for i in 1..=30 {
            text.push_str(&format!("D{i},Jones,1990-01-01\n"));
        }
        let rows = parse(&text);
        let mut expected = vec!["line 2".to_owned()];
        expected.extend((1..=30).map(|i| format!("D{i}")));
        assert_eq!(outcome(&rows), expected);
        let bad = rows[0].as_ref().unwrap_err();
        assert!(bad.message.contains("not closed"), "{bad}");
        assert!(!bad.message.contains("Smith"), "{bad}");
        assert!(!bad.whole_file);

        // Closed by the end of the file, before the line limit: the same.
        let rows = parse("record_id,surname\nD1,\"Lee\nD2,Ng\nD3,Ho\n");
        assert_eq!(outcome(&rows), ["line 2", "D2", "D3"]);
    }

    /// A stray quote closed by another one further down (text after the closing quote,
    /// or the wrong number of cells) rejects the first row only; the rows it spanned are
    /// read again, each imported or rejected on its own.
    #[test]
    fn csv_stray_quote_closed_later_rejects_its_row_and_rereads_the_rest() {
        let text = "record_id,surname,date_of_birth\n\
                    D1,\"Smith,1980-01-01\n\
                    D2,O\"Brien,1990-01-01\n\
                    D3,Lee,1991-01-01\n";
        let rows = parse(text);
        assert_eq!(outcome(&rows), ["line 2", "D2", "D3"]);
        assert_eq!(
            rows[1].as_ref().unwrap().dataset.surnames,
            ["O\"Brien"],
            "a quote inside an unquoted cell is a character"
        );

        let text = "record_id,surname,date_of_birth\n\
                    D1,\"Smith,1980-01-01\n\
                    D2,Jones,1990-01-01\n\
                    D3,Lee\",1991-01-01,x\n\
                    D4,Ho,1992-02-02\n";
        let rows = parse(text);
        assert_eq!(outcome(&rows), ["line 2", "D2", "line 4", "D4"]);
        assert!(rows[0]
            .as_ref()
            .unwrap_err()
            .message
            .contains("spanning 3 lines"));
    }

    /// Multi-line quoted cells within the limit still work, with CRLF line breaks too,
    /// and doubled quotes inside quoted cells are quotes.
    #[test]
    fn csv_quoted_cells_span_lines_within_the_limit() {
        let text = "record_id,address_lines,surname\r\n\
                    A,\"1 \"\"The Oaks\"\"\r\nLong Road\r\nLeeds\", Smith\r\n\
                    B,x,Lee\r\n";
        let rows = parse(text);
        assert_eq!(outcome(&rows), ["A", "B"]);
        let a = rows[0].as_ref().unwrap();
        assert_eq!(
            a.dataset.addresses[0].lines,
            ["1 \"The Oaks\"\r\nLong Road\r\nLeeds"]
        );
        assert_eq!(a.dataset.surnames, ["Smith"]);
    }

    #[test]
    fn csv_byte_order_mark_before_a_quoted_header() {
        let rows = parse("\u{feff}\"record_id\",surname\nR1,Khan\n");
        assert_eq!(outcome(&rows), ["R1"]);
    }

    #[test]
    fn csv_whole_file_errors_say_why() {
        let only = |text: &str| {
            let rows = parse(text);
            assert_eq!(rows.len(), 1, "{rows:?}");
            let e = rows[0].clone().unwrap_err();
            assert!(e.whole_file, "{e}");
            e.message
        };
        assert!(only("").contains("empty file"));
        assert!(only("first_name,surname\nA,B\n").contains("no record_id column"));
        assert!(only("record_id;surname\nD1;Khan\n").contains("other than commas"));
        assert!(only("record_id\tsurname\nD1\tKhan\n").contains("other than commas"));
    }

    #[test]
    fn csv_header_needs_record_id_and_columns_are_optional() {
        let rows = parse("first_name,surname\nA,B\n");
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].as_ref().unwrap_err().line, 1);

        let rows = parse("\u{feff}Record_ID,Surname,date_of_birth\nR9,Khan,2001-09-09\n");
        let r = rows[0].as_ref().unwrap();
        assert_eq!(r.record_id.0, "R9");
        assert_eq!(r.dataset.surnames, vec!["Khan"]);
        assert!(r.dataset.addresses.is_empty());

        assert_eq!(parse("")[0].as_ref().unwrap_err().line, 1);
        assert!(parse("record_id\n").is_empty());
        assert!(parse("record_id,x,X\n")[0].is_err(), "duplicate header");
    }

    #[test]
    fn json_lines() {
        let text = concat!(
            r#"{"record_id":"D1","first_name":"William","surnames":["Smith"],"date_of_birth":"1980-04-10","addresses":[{"lines":["12 High Street"],"postcode":"LS1 4AB","current":true}],"attributes":{"nino":"QQ123456C"}}"#,
            "\n\n",
            r#"{"first_name":"NoId"}"#,
            "\n",
            "not json\n",
            r#"{"record_id":"D2","middle_names":"Secretname"}"#,
            "\n",
            r#"{"record_id":42}"#,
            "\n",
        );
        let rows: Vec<_> = read_json_lines(
            concat!(
                r#"{"record_id":"N1","dataset":{"surnames":["Nested"]}}"#,
                "\n",
                r#"{"record_id":"T1","surname":"Typo"}"#,
                "\n"
            )
            .as_bytes(),
        )
        .collect();
        assert_eq!(rows[0].as_ref().unwrap().dataset.surnames, vec!["Nested"]);
        let typo = rows[1].as_ref().unwrap_err();
        assert!(
            typo.message.starts_with("unknown member `surname`"),
            "{typo}"
        );
        assert!(!typo.message.contains("Typo"), "{typo}");

        let rows: Vec<_> = read_json_lines(text.as_bytes()).collect();
        assert_eq!(rows.len(), 5);
        let d1 = rows[0].as_ref().unwrap();
        assert_eq!(d1.record_id.0, "D1");
        assert_eq!(d1.dataset.surnames, vec!["Smith"]);
        assert_eq!(d1.dataset.addresses[0].postcode.as_deref(), Some("LS1 4AB"));
        assert_eq!(
            d1.dataset.attributes.get("nino").map(String::as_str),
            Some("QQ123456C")
        );
        assert_eq!(rows[1].as_ref().unwrap_err().line, 3);
        assert_eq!(rows[2].as_ref().unwrap_err().line, 4);
        // The dataset itself is read leniently (matching copes with odd fields).
        assert_eq!(
            rows[3].as_ref().unwrap().dataset.middle_names,
            vec!["Secretname"]
        );
        assert_eq!(rows[4].as_ref().unwrap().record_id.0, "42");

        let rows: Vec<_> =
            read_json_lines(&b"[\"Secretname\"]\r\n{\"record_id\": true}\n"[..]).collect();
        assert_eq!(
            rows[0].as_ref().unwrap_err().message,
            "expected a JSON object"
        );
        assert_eq!(rows[1].as_ref().unwrap_err().line, 2);
    }

    #[test]
    fn json_lines_byte_order_mark_on_the_first_line() {
        let text = "\u{feff}{\"record_id\":\"D1\"}\n{\"record_id\":\"D2\"}\n";
        let rows: Vec<_> = read_json_lines(text.as_bytes()).collect();
        assert_eq!(outcome(&rows), ["D1", "D2"]);
    }

    #[test]
    fn json_errors_do_not_quote_values() {
        let e = serde_json::from_str::<Vec<u32>>(r#"["Secretname"]"#).unwrap_err();
        let message = json_error("bad", &e);
        assert!(!message.contains("Secretname"), "{message}");
        assert!(message.contains("invalid type"), "{message}");
    }
}
