//! Printing results: an aligned table, CSV or JSON; and `visible`, which
//! every human-readable output passes API text through.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::Write;

use clap::ValueEnum;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::arrow::{csv, json};
use datafusion::error::Result;

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

/// Print a result. `width`: the terminal's, for a table that must fit it
/// (long text is cut with `…`); `None` prints every cell whole.
pub fn print(
    out: &mut dyn Write,
    format: Format,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    width: Option<usize>,
) -> Result<()> {
    match format {
        Format::Table => {
            table(out, schema, batches, width)?;
            let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
            writeln!(out, "({rows} row{})", if rows == 1 { "" } else { "s" })?;
        }
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
        Format::Ndjson => {
            let mut writer = json::LineDelimitedWriter::new(&mut *out);
            for batch in batches {
                writer.write(batch)?;
            }
            writer.finish()?;
        }
        Format::Json => {
            let mut writer = json::ArrayWriter::new(&mut *out);
            for batch in batches {
                writer.write(batch)?;
            }
            writer.finish()?;
            if batches.iter().all(|b| b.num_rows() == 0) {
                write!(out, "[]")?;
            }
            writeln!(out)?;
        }
    }
    Ok(())
}

/// Text as a terminal may show it. Anyone can put text into the API (a
/// display name, a group name, an audit message): control characters (C0,
/// DEL, C1: escape sequences that clear, retitle or recolour a terminal,
/// carriage returns and backspaces that hide text) and the invisible and
/// bidirectional formatting characters that disguise it are shown as
/// escapes (`\u{1b}`, `\n`), never raw. Machine formats (CSV, JSON,
/// Parquet) keep the data exact instead.
pub fn visible(text: &str) -> Cow<'_, str> {
    if !text.chars().any(hidden) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if hidden(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Characters a terminal acts on or does not show.
fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{180E}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{2069}'
                | '\u{FEFF}'
                | '\u{FFF9}'..='\u{FFFB}'
        )
}

/// Narrowest a column is cut to when a table must fit the terminal.
const MIN_COLUMN: usize = 6;

fn table(
    out: &mut dyn Write,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    width: Option<usize>,
) -> Result<()> {
    let options = FormatOptions::default().with_null("NULL");
    let header: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| visible(f.name()).into_owned())
        .collect();
    // EXPLAIN's plan is DataFusion's own multi-line text: each of its lines
    // is a line of the table. Text from the API stays one line a row.
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let explain = names == ["plan_type", "plan"];
    let mut rows: Vec<Vec<String>> = Vec::new();
    for batch in batches {
        let formatters = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        for row in 0..batch.num_rows() {
            // One line a row, and nothing the terminal would act on.
            let cells: Vec<String> = formatters
                .iter()
                .map(|f| f.value(row).to_string())
                .collect();
            if explain {
                let lines: Vec<Vec<&str>> = cells.iter().map(|c| c.lines().collect()).collect();
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
                rows.push(cells.iter().map(|c| visible(c).into_owned()).collect());
            }
        }
    }
    let mut widths: Vec<usize> = header.iter().map(|h| measure(h)).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(measure(cell));
        }
    }
    if let Some(max) = width {
        fit(&mut widths, max);
    }
    let border: String = widths.iter().fold("+".to_string(), |mut line, w| {
        line.push_str(&"-".repeat(w + 2));
        line.push('+');
        line
    });
    let line = |cells: &[String]| -> String {
        cells
            .iter()
            .zip(&widths)
            .fold("|".to_string(), |mut line, (cell, &w)| {
                line.push(' ');
                line.push_str(&cut(cell, w));
                line.push_str(" |");
                line
            })
    };
    writeln!(out, "{border}")?;
    writeln!(out, "{}", line(&header))?;
    writeln!(out, "{border}")?;
    for row in &rows {
        writeln!(out, "{}", line(row))?;
    }
    if !rows.is_empty() {
        writeln!(out, "{border}")?;
    }
    Ok(())
}

fn measure(text: &str) -> usize {
    console::measure_text_width(text)
}

/// Narrow the widest columns until the table fits `max` characters.
fn fit(widths: &mut [usize], max: usize) {
    let total = |w: &[usize]| w.iter().map(|c| c + 3).sum::<usize>() + 1;
    while total(widths) > max {
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

#[cfg(test)]
mod tests {
    use super::visible;

    #[test]
    fn control_and_formatting_characters_are_shown_not_acted_on() {
        assert_eq!(visible("Zoë Schmidt"), "Zoë Schmidt");
        assert_eq!(
            visible("a\u{1b}[2Jb\u{7}c\rd\u{8}e\u{0}f\u{202e}g\nh\u{9b}i"),
            "a\\u{1b}[2Jb\\u{7}c\\rd\\u{8}e\\u{0}f\\u{202e}g\\nh\\u{9b}i"
        );
        assert_eq!(visible("\u{1b}]0;owned\u{7}"), "\\u{1b}]0;owned\\u{7}");
    }
}
