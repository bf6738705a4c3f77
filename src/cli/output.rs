//! Printing results: an aligned table, CSV or JSON; and `visible`, which
//! every human-readable output passes API text through.

use std::io::Write;

use clap::ValueEnum;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::arrow::{csv, json};
use datafusion::error::Result;

impl Format {
    /// The formats a file's extension names, for `--output`.
    pub const EXTENSIONS: &[(&str, Format)] = &[
        ("parquet", Format::Parquet),
        ("csv", Format::Csv),
        ("json", Format::Json),
        ("ndjson", Format::Ndjson),
        ("jsonl", Format::Ndjson),
    ];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
    /// One JSON object per line.
    Ndjson,
    /// Only into a file (`--output`).
    Parquet,
}

/// How a table is shown on a terminal. Files, pipes and the other formats
/// get every row of every column, whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Screen {
    /// The terminal's width.
    pub width: usize,
    /// Rows shown at most; 0 shows them all.
    pub max_rows: usize,
    pub expanded: Expanded,
    /// In the REPL (its notes name `\x` and `\maxrows`, not the flags).
    pub repl: bool,
}

/// One field a line (psql's `\x`): always, never, or when a row is wider
/// than the terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Expanded {
    Off,
    On,
    Auto,
}

/// Rows a terminal shows by default.
pub const DEFAULT_MAX_ROWS: usize = 40;

impl Screen {
    /// The terminal standard output is, if it is one.
    pub fn of_stdout(max_rows: usize, expanded: Expanded, repl: bool) -> Option<Screen> {
        use std::io::IsTerminal;
        if !std::io::stdout().is_terminal() {
            // Asked for by name (--vertical), one field a line holds in a
            // pipe too; nothing is cut or left out there.
            return (expanded == Expanded::On).then_some(Screen {
                width: usize::MAX,
                max_rows: 0,
                expanded,
                repl,
            });
        }
        // COLUMNS first, as ls and psql read it: it is how a user (or a test
        // driving a pty) sets the width a terminal does not report.
        let width = std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.trim().parse::<usize>().ok())
            .or_else(|| {
                console::Term::stdout()
                    .size_checked()
                    .map(|(_, w)| usize::from(w))
            });
        Some(Screen {
            width: width.filter(|&w| w >= 20).unwrap_or(80),
            max_rows,
            expanded,
            repl,
        })
    }
}

/// Print a result: on a `screen`, tables fit it (see `Screen`). A reader
/// that went away (`| head`) is an I/O error of kind `BrokenPipe`, whatever
/// the writer made of it (arrow's CSV writer keeps only its text).
pub fn print(
    out: &mut dyn Write,
    format: Format,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    screen: Option<Screen>,
) -> Result<()> {
    let mut watched = Watched { out, closed: false };
    let printed = print_to(&mut watched, format, schema, batches, screen);
    match printed {
        Err(_) if watched.closed => {
            Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe).into())
        }
        printed => printed,
    }
}

/// A writer that remembers whether its reader went away.
struct Watched<'a> {
    out: &'a mut dyn Write,
    closed: bool,
}

impl Write for Watched<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let written = self.out.write(buf);
        self.closed |= matches!(&written, Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe);
        written
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let flushed = self.out.flush();
        self.closed |= matches!(&flushed, Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe);
        flushed
    }
}

fn print_to(
    out: &mut dyn Write,
    format: Format,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    screen: Option<Screen>,
) -> Result<()> {
    match format {
        Format::Table => table(out, schema, batches, screen)?,
        Format::Csv => {
            let mut writer = csv::WriterBuilder::new().with_header(true).build(&mut *out);
            if batches.is_empty() {
                writer.write(&RecordBatch::new_empty(schema.clone()))?;
            }
            for batch in batches {
                writer.write(batch)?;
            }
        }
        Format::Parquet => {
            return Err(datafusion::error::DataFusionError::Plan(
                "Parquet is written to a file: add --output FILE".to_string(),
            ));
        }
        // NULL is an answer (no 2SV data is not 2SV off): keys are kept.
        Format::Ndjson => {
            let mut writer = json::WriterBuilder::new()
                .with_explicit_nulls(true)
                .build::<_, json::writer::LineDelimited>(&mut *out);
            for batch in batches {
                writer.write(batch)?;
            }
            writer.finish()?;
        }
        Format::Json => {
            let mut writer = json::WriterBuilder::new()
                .with_explicit_nulls(true)
                .build::<_, json::writer::JsonArray>(&mut *out);
            for batch in batches {
                writer.write(batch)?;
            }
            // finish() writes the brackets even when no row came: `[]`.
            writer.finish()?;
            writeln!(out)?;
        }
    }
    Ok(())
}

pub use crate::text::visible;

/// orgsql's own message, a line a line: each line as `visible` shows it.
/// Text from the API inside it was made visible where it was quoted (the
/// client's errors), so a line break here is orgsql's own.
pub fn visible_lines(text: &str) -> String {
    text.lines().map(visible).collect::<Vec<_>>().join("\n")
}

/// Narrowest a column is cut to when a table must fit the terminal.
const MIN_COLUMN: usize = 6;

fn table(
    out: &mut dyn Write,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    screen: Option<Screen>,
) -> Result<()> {
    let total: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let shown = match screen {
        Some(screen) if screen.max_rows > 0 => total.min(screen.max_rows),
        _ => total,
    };
    let header: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| visible(f.name()).into_owned())
        .collect();
    // EXPLAIN's plan lines are never cut: the terminal wraps them.
    let explain = is_explain(schema);
    let rows = cells(batches, shown, explain)?;
    let widths = column_widths(&header, &rows);
    let wide = !explain && screen.is_some_and(|s| table_width(&widths) > s.width);
    let mut notes = Vec::new();
    match screen {
        Some(s) if s.expanded == Expanded::On || (s.expanded == Expanded::Auto && wide) => {
            vertical(out, &header, &rows, s.width)?;
        }
        Some(s) if wide => {
            let kept = fitting_columns(&widths, s.width);
            let hidden = header.len() - kept.len();
            let pick = |cells: &[String]| -> Vec<String> {
                let mut picked: Vec<String> = Vec::new();
                for (i, &column) in kept.iter().enumerate() {
                    if i > 0 && column != kept[i - 1] + 1 {
                        picked.push("…".to_string());
                    }
                    picked.push(cells[column].clone());
                }
                picked
            };
            let header = pick(&header);
            let rows: Vec<Vec<String>> = rows.iter().map(|r| pick(r)).collect();
            let mut widths = column_widths(&header, &rows);
            fit(&mut widths, s.width);
            grid(out, &header, &rows, &widths)?;
            if hidden > 0 {
                notes.push(format!(
                    "{hidden} of {} columns hidden; {} shows every column",
                    schema.fields().len(),
                    if s.repl { "\\x" } else { "--vertical" }
                ));
            }
        }
        _ => grid(out, &header, &rows, &widths)?,
    }
    let mut count = format!("{total} row{}", if total == 1 { "" } else { "s" });
    if shown < total {
        let all = match screen {
            Some(s) if s.repl => "\\maxrows 0",
            _ => "--maxrows 0",
        };
        count.push_str(&format!(", first {shown} shown; {all} shows all"));
    }
    notes.insert(0, count);
    writeln!(out, "({})", notes.join("; "))?;
    Ok(())
}

/// The first `limit` rows as text, one line each with nothing a terminal
/// acts on. EXPLAIN's plan is DataFusion's own multi-line text: each of its
/// lines is a line of the table. Text from the API stays one line a row.
/// Every row as text, `null` for NULL: for results read as data (CSV
/// files, findings), not shown on a terminal.
pub fn text_rows(
    batches: &[RecordBatch],
    null: &str,
) -> std::result::Result<Vec<Vec<String>>, datafusion::arrow::error::ArrowError> {
    let options = FormatOptions::default().with_null(null);
    let mut rows = Vec::new();
    for batch in batches {
        let formatters = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        for row in 0..batch.num_rows() {
            rows.push(
                formatters
                    .iter()
                    .map(|f| f.value(row).to_string())
                    .collect(),
            );
        }
    }
    Ok(rows)
}

fn cells(batches: &[RecordBatch], limit: usize, explain: bool) -> Result<Vec<Vec<String>>> {
    let options = FormatOptions::default().with_null("NULL");
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut left = limit;
    for batch in batches {
        if left == 0 {
            break;
        }
        let formatters = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        for row in 0..batch.num_rows().min(left) {
            let values: Vec<String> = formatters
                .iter()
                .map(|f| f.value(row).to_string())
                .collect();
            if explain {
                let lines: Vec<Vec<&str>> = values.iter().map(|c| c.lines().collect()).collect();
                let height = lines.iter().map(Vec::len).max().unwrap_or(1).max(1);
                for i in 0..height {
                    rows.push(
                        lines
                            .iter()
                            .map(|l| visible(l.get(i).copied().unwrap_or_default()).into_owned())
                            .collect(),
                    );
                }
            } else {
                rows.push(values.iter().map(|c| visible(c).into_owned()).collect());
            }
        }
        left -= batch.num_rows().min(left);
    }
    Ok(rows)
}

/// EXPLAIN's answer.
fn is_explain(schema: &SchemaRef) -> bool {
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    names == ["plan_type", "plan"]
}

/// Each column's width: its widest cell or its name.
fn column_widths(header: &[String], rows: &[Vec<String>]) -> Vec<usize> {
    let mut widths: Vec<usize> = header.iter().map(|h| measure(h)).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(measure(cell));
        }
    }
    widths
}

/// A table's width with its borders.
fn table_width(widths: &[usize]) -> usize {
    widths.iter().map(|w| w + 3).sum::<usize>() + 1
}

/// The columns to keep when a table is wider than `max`: from both ends
/// inwards (the first columns name a row, the last often say the most), as
/// many as fit beside a `…` column. At least the first.
fn fitting_columns(widths: &[usize], max: usize) -> Vec<usize> {
    let shown = |w: usize| w.min(40) + 3;
    let mut used = 1 + 4; // the border, and the `…` column
    let (mut left, mut right) = (0, widths.len());
    let mut take_left = true;
    while left < right {
        let next = if take_left { left } else { right - 1 };
        if used + shown(widths[next]) > max && left > 0 {
            break;
        }
        used += shown(widths[next]);
        if take_left {
            left += 1;
        } else {
            right -= 1;
        }
        take_left = !take_left;
    }
    (0..left).chain(right..widths.len()).collect()
}

/// An aligned table, each cell cut to its column's width.
fn grid(
    out: &mut dyn Write,
    header: &[String],
    rows: &[Vec<String>],
    widths: &[usize],
) -> Result<()> {
    let border: String = widths.iter().fold("+".to_string(), |mut line, w| {
        line.push_str(&"-".repeat(w + 2));
        line.push('+');
        line
    });
    let line = |cells: &[String]| -> String {
        cells
            .iter()
            .zip(widths)
            .fold("|".to_string(), |mut line, (cell, &w)| {
                line.push(' ');
                line.push_str(&cut(cell, w));
                line.push_str(" |");
                line
            })
    };
    writeln!(out, "{border}")?;
    writeln!(out, "{}", line(header))?;
    writeln!(out, "{border}")?;
    for row in rows {
        writeln!(out, "{}", line(row))?;
    }
    if !rows.is_empty() {
        writeln!(out, "{border}")?;
    }
    Ok(())
}

/// One field a line, a record after another, as psql's `\x` shows them.
fn vertical(
    out: &mut dyn Write,
    header: &[String],
    rows: &[Vec<String>],
    width: usize,
) -> Result<()> {
    let label = header.iter().map(|h| measure(h)).max().unwrap_or(0);
    let longest = rows.iter().flatten().map(|v| measure(v)).max().unwrap_or(0);
    let room = width
        .saturating_sub(label + 3)
        .max(MIN_COLUMN)
        .min(longest.max(MIN_COLUMN));
    for (number, row) in rows.iter().enumerate() {
        let title = format!("-[ RECORD {} ]", number + 1);
        let rule = "-".repeat(width.min(label + 3 + room).saturating_sub(measure(&title)));
        writeln!(out, "{title}{rule}")?;
        for (name, value) in header.iter().zip(row) {
            writeln!(
                out,
                "{} | {}",
                cut(name, label),
                cut(value, room).trim_end()
            )?;
        }
    }
    Ok(())
}

fn measure(text: &str) -> usize {
    console::measure_text_width(text)
}

/// Narrow the widest columns until the table fits `max` characters.
fn fit(widths: &mut [usize], max: usize) {
    while table_width(widths) > max {
        let Some(widest) = widths.iter_mut().filter(|w| **w > MIN_COLUMN).max() else {
            break;
        };
        *widest -= 1;
    }
}

/// The cell padded to `width`, or cut to it with a `…` marker.
fn cut(cell: &str, width: usize) -> String {
    if measure(cell) <= width {
        let pad = width - measure(cell);
        return format!("{cell}{}", " ".repeat(pad));
    }
    let kept = console::truncate_str(cell, width, "…");
    let pad = width.saturating_sub(measure(&kept));
    format!("{kept}{}", " ".repeat(pad))
}
