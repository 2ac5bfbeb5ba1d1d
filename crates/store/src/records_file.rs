//! Readers for department record files (`hub records import`): CSV and JSON lines.
//!
//! Both stream: rows are parsed one at a time, and a bad row yields a
//! [`RowError`] carrying its line number while the rows after it keep coming,
//! so one typo does not lose a whole import. Error messages never quote cell
//! values (they are personal data); they name the line, column and problem.

use std::collections::BTreeMap;
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
    fn from_header(header: &csv::StringRecord) -> Result<Self, String> {
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
            return Err("the header row has no record_id column".into());
        }
        Ok(Self {
            columns,
            attribute_names,
        })
    }

    fn record(&self, line: u64, row: &csv::StringRecord) -> Result<DepartmentRecord, RowError> {
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

/// Streaming CSV reader state.
struct CsvRecords<R> {
    reader: csv::Reader<R>,
    layout: Option<Layout>,
    row: csv::StringRecord,
    done: bool,
}

impl<R: Read> CsvRecords<R> {
    /// The line the reader is at, for errors with no position of their own.
    fn current_line(&self) -> u64 {
        self.reader.position().line().max(1)
    }
}

impl<R: Read> Iterator for CsvRecords<R> {
    type Item = Result<DepartmentRecord, RowError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.done {
                return None;
            }
            let line_before = self.current_line();
            match self.reader.read_record(&mut self.row) {
                Ok(false) => {
                    self.done = true;
                    if self.layout.is_none() {
                        return Some(Err(RowError::new(1, "empty file: expected a header row")));
                    }
                    return None;
                }
                Ok(true) => {
                    let line = self.row.position().map_or(line_before, |p| p.line());
                    match &self.layout {
                        Some(layout) => return Some(layout.record(line, &self.row)),
                        None => match Layout::from_header(&self.row) {
                            Ok(layout) => self.layout = Some(layout),
                            Err(message) => {
                                // Without a usable header no row can be read.
                                self.done = true;
                                return Some(Err(RowError::new(line, message)));
                            }
                        },
                    }
                }
                Err(e) => {
                    let line = e.position().map_or(line_before, |p| p.line());
                    let message = match e.kind() {
                        csv::ErrorKind::Utf8 { err, .. } => {
                            format!("column {} is not valid UTF-8", err.field() + 1)
                        }
                        csv::ErrorKind::Io(e) => {
                            self.done = true;
                            format!("read error: {e}")
                        }
                        _ => {
                            self.done = true;
                            format!("unreadable CSV: {e}")
                        }
                    };
                    if self.layout.is_none() {
                        self.done = true;
                    }
                    return Some(Err(RowError::new(line, message)));
                }
            }
        }
    }
}

/// Reads department records from CSV with a header row (BRIEF §9).
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
/// written (matching copes with malformed ones).
pub fn read_csv<R: Read>(r: R) -> impl Iterator<Item = Result<DepartmentRecord, RowError>> {
    let reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(r);
    CsvRecords {
        reader,
        layout: None,
        row: csv::StringRecord::new(),
        done: false,
    }
}

/// Reads department records from JSON lines: each non-blank line is a
/// matching dataset object (BRIEF §9) plus a `record_id` (string or integer).
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

/// Members of a matching dataset object (BRIEF §9).
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
    fn json_errors_do_not_quote_values() {
        let e = serde_json::from_str::<Vec<u32>>(r#"["Secretname"]"#).unwrap_err();
        let message = json_error("bad", &e);
        assert!(!message.contains("Secretname"), "{message}");
        assert!(message.contains("invalid type"), "{message}");
    }
}
