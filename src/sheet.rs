//! CSV files that people keep in spreadsheets (the roster, review files),
//! read as spreadsheets save them: a byte-order mark ("CSV UTF-8"), `;`
//! between cells (Excel in much of Europe), CRLF line ends, and trailing
//! empty cells where a column beyond the table was touched.

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

/// The line a record starts on. The csv crate's own count is one short in
/// files with CRLF line ends: after a CR it starts the next record at the LF.
pub fn line_at(text: &[u8], position: Option<&csv::Position>) -> u64 {
    let mut start = position.map_or(0, |p| p.byte() as usize).min(text.len());
    while text.get(start).is_some_and(|b| *b == b'\r' || *b == b'\n') {
        start += 1;
    }
    1 + text[..start].iter().filter(|b| **b == b'\n').count() as u64
}

/// What a CSV error says, with its line counted as [`line_at`] does and
/// without the crate's own (one short in CRLF files) position.
pub fn error(text: &[u8], error: &csv::Error) -> (u64, String) {
    let line = line_at(text, error.position());
    let what = match error.kind() {
        csv::ErrorKind::Utf8 { .. } => "not UTF-8 text: save it as \"CSV UTF-8\"".to_string(),
        csv::ErrorKind::Io(e) => e.to_string(),
        _ => error.to_string(),
    };
    (line, what)
}
