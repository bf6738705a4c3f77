//! CSV files that people keep in spreadsheets (the roster, review files),
//! read as spreadsheets save them: a byte-order mark ("CSV UTF-8"), `;`
//! between cells (Excel in much of Europe), CRLF line ends, and trailing
//! empty cells where a column beyond the table was touched.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::error::ArrowError;

/// The text without a byte-order mark.
pub fn text(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}

/// A reader of `text` (from [`text`]): `;`-separated when the header line
/// has a `;` and no `,`. Rows may differ in length (trailing empty cells);
/// [`cells`] evens them out.
pub fn reader(text: &[u8]) -> csv::Reader<&[u8]> {
    let header = text.split(|b| *b == b'\n').next().unwrap_or_default();
    let delimiter = if header.contains(&b';') && !header.contains(&b',') {
        b';'
    } else {
        b','
    };
    csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .from_reader(text)
}

/// A record's cells, trimmed, without the empty ones at its end.
pub fn cells(record: &csv::StringRecord) -> Vec<String> {
    let mut cells: Vec<String> = record.iter().map(|c| c.trim().to_string()).collect();
    while cells.last().is_some_and(String::is_empty) {
        cells.pop();
    }
    cells
}

/// The characters that make a spreadsheet read a cell as a formula when
/// they start it (OWASP's list: `=`, `+`, `-`, `@`, and tab and CR, which
/// some spreadsheets skip before looking).
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// A cell a spreadsheet would run as a formula (a display name can be
/// `=HYPERLINK(...)`) is written with a leading `'`, which spreadsheets
/// show as text and keep on saving. Review files are written so, and
/// query results in CSV with `--csv-safe`.
pub fn cell(value: &str) -> std::borrow::Cow<'_, str> {
    if value.starts_with(FORMULA_STARTS) {
        std::borrow::Cow::Owned(format!("'{value}"))
    } else {
        std::borrow::Cow::Borrowed(value)
    }
}

/// A cell as [`cell`] wrote it, read back as the value.
pub fn uncell(text: &str) -> &str {
    match text.strip_prefix('\'') {
        Some(rest) if rest.starts_with(FORMULA_STARTS) => rest,
        _ => text,
    }
}

/// A cell's text with each line break as an LF. A spreadsheet that reads
/// a CR inside a cell writes it back as an LF (or CRLF): the text is the
/// same, and cells are compared in this form.
pub fn line_breaks_as_lf(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains('\r') {
        std::borrow::Cow::Owned(text.replace("\r\n", "\n").replace('\r', "\n"))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

/// Line numbers of `text` as its records are read, in order: each count
/// goes on from the one before, so reading a file is linear in its size
/// (counting from the top for every record made a 90,000-row file take
/// minutes).
pub struct Lines<'a> {
    text: &'a [u8],
    /// Bytes counted so far, and the line breaks among them.
    counted: usize,
    breaks: u64,
}

impl<'a> Lines<'a> {
    pub fn new(text: &'a [u8]) -> Self {
        Lines {
            text,
            counted: 0,
            breaks: 0,
        }
    }

    /// The line a record starts on. The csv crate's own count is one short
    /// in files with CRLF line ends: after a CR it starts the next record
    /// at the LF.
    pub fn at(&mut self, position: Option<&csv::Position>) -> u64 {
        let text = self.text;
        let mut start = position.map_or(0, |p| p.byte() as usize).min(text.len());
        while text.get(start).is_some_and(|b| *b == b'\r' || *b == b'\n') {
            start += 1;
        }
        if start < self.counted {
            // Not in order (an error's position): count again from the top.
            self.counted = 0;
            self.breaks = 0;
        }
        self.breaks += text[self.counted..start]
            .iter()
            .filter(|b| **b == b'\n')
            .count() as u64;
        self.counted = start;
        1 + self.breaks
    }

    /// What a CSV error says, with its line counted as [`Lines::at`] does
    /// and without the crate's own (one short in CRLF files) position.
    pub fn error(&mut self, error: &csv::Error) -> (u64, String) {
        let line = self.at(error.position());
        let what = match error.kind() {
            csv::ErrorKind::Utf8 { .. } => "not UTF-8 text: save it as \"CSV UTF-8\"".to_string(),
            csv::ErrorKind::Io(e) => e.to_string(),
            _ => error.to_string(),
        };
        (line, what)
    }
}

/// Text columns of `batch` with each cell as [`cell`] writes it, and
/// column names too: what `--csv-safe` writes. Other columns are numbers,
/// times and booleans, which a spreadsheet reads as values.
pub fn formulas_as_text(batch: &RecordBatch) -> Result<RecordBatch, ArrowError> {
    let schema = batch.schema();
    let mut fields = Vec::with_capacity(schema.fields().len());
    let mut columns = Vec::with_capacity(batch.num_columns());
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        let column = if is_text(field.data_type()) {
            formulas_as_text_array(column)?
        } else {
            column.clone()
        };
        fields.push(
            Field::new(
                cell(field.name()),
                column.data_type().clone(),
                field.is_nullable(),
            )
            .with_metadata(field.metadata().clone()),
        );
        columns.push(column);
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
}

/// Whether a column of this type holds text (of any layout).
pub fn is_text(data_type: &DataType) -> bool {
    match data_type {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(_, values) => is_text(values),
        _ => false,
    }
}

/// A text array with each cell as [`cell`] writes it, as `Utf8`.
pub fn formulas_as_text_array(array: &ArrayRef) -> Result<ArrayRef, ArrowError> {
    let text = cast(array, &DataType::Utf8)?;
    let text = text
        .as_any()
        .downcast_ref::<StringArray>()
        .ok_or_else(|| ArrowError::CastError("text did not cast to Utf8".to_string()))?;
    Ok(Arc::new(
        text.iter()
            .map(|value| value.map(cell))
            .collect::<StringArray>(),
    ))
}
