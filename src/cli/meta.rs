//! The backslash commands (`\d`, `\x`, `\o`, ...): their names and help,
//! how they are read, and the descriptions of tables they print. The
//! statement runner carries them out, in every mode.

use datafusion::arrow::datatypes::DataType;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::prelude::{SessionContext, col, lit};
use datafusion::scalar::ScalarValue;

use super::Format;
use super::output::{Expanded, visible};
use crate::tables::{Kind, TableInfo, WatchTable, catalog};

/// The backslash commands: name, arguments, what it does. `\?` prints this
/// list, and `Meta::from_str` reads the same names.
pub const COMMANDS: &[(&str, &str, &str)] = &[
    (
        "d",
        "",
        "tables, what they are, which call the API once per user or group",
    ),
    (
        "d",
        "TABLE",
        "columns, types, descriptions, and which filters reach the API (also schema.table)",
    ),
    ("dt", "", "the same as \\d"),
    (
        "x",
        "[on|off|auto]",
        "one field a line: always, never, or when a row is wider than the screen",
    ),
    (
        "maxrows",
        "[N]",
        "rows shown on the screen at most (0: all; files get every row), or show it",
    ),
    ("r", "", "clear the statement being typed"),
    (
        "conninfo",
        "",
        "what this session reads: the API or a snapshot, organizations, export time",
    ),
    (
        "timing",
        "",
        "show how long each statement took (on/off; on at start)",
    ),
    (
        "format",
        "[FORMAT]",
        "the result format (table, csv, json, ndjson; parquet with \\o), or show it",
    ),
    (
        "o",
        "[FILE]",
        "write results to FILE; without FILE, back to the screen",
    ),
    ("i", "FILE", "run the SQL in FILE"),
    (
        "refresh",
        "[TABLE]",
        "forget fetched pages (of TABLE), so the next query asks the API",
    ),
    (
        "stats",
        "",
        "requests this session: pages, retries, 429s, bytes",
    ),
    ("?", "", "this help"),
    ("q", "", "quit"),
];

/// `\?`: how statements end, then every command of `COMMANDS`.
pub fn help() -> String {
    let mut text = String::from(
        "SQL statements end with ';' and may span lines (the prompt says `->` until the\n\
         ';' comes, `'>` inside a quote). Backslash commands run at once, even in the\n\
         middle of a statement. Ctrl-C cancels a running query (or what is being typed);\n\
         Ctrl-D, \\q, exit or quit ends the session. A quoted path to a Parquet, CSV or\n\
         NDJSON file is a table: SELECT * FROM 'week.parquet'.\n",
    );
    for (name, args, what) in COMMANDS {
        let usage = format!("\\{name} {args}");
        text.push_str(&format!("\n  {usage:18} {what}"));
    }
    text
}

/// A backslash command, read by `FromStr` from what follows the backslash.
#[derive(Debug, PartialEq)]
pub enum Meta {
    Quit,
    Help,
    Describe(Option<String>),
    Expanded(Option<Expanded>),
    MaxRows(Option<usize>),
    Reset,
    ConnInfo,
    Timing,
    Format(Option<Format>),
    Output(Option<String>),
    Include(String),
    Refresh(Option<String>),
    Stats,
}

impl std::str::FromStr for Meta {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        use clap::ValueEnum;
        let mut words = text.split_whitespace();
        let name = words.next().unwrap_or_default();
        let arg = words.next().map(str::to_string);
        Ok(match (name, arg) {
            ("q", _) => Meta::Quit,
            ("?", _) => Meta::Help,
            ("d", table) => Meta::Describe(table),
            ("dt", _) => Meta::Describe(None),
            ("x", None) => Meta::Expanded(None),
            ("x", Some(mode)) => Meta::Expanded(Some(
                Expanded::from_str(&mode, true)
                    .map_err(|_| format!("\\x {mode}: use on, off or auto"))?,
            )),
            ("maxrows", None) => Meta::MaxRows(None),
            ("maxrows", Some(n)) => {
                Meta::MaxRows(Some(n.parse().map_err(|_| {
                    format!("\\maxrows {n}: give a number of rows (0 shows all)")
                })?))
            }
            ("r", _) => Meta::Reset,
            ("conninfo", _) => Meta::ConnInfo,
            ("timing", _) => Meta::Timing,
            ("format", None) => Meta::Format(None),
            ("format", Some(format)) => {
                let known: Vec<String> = Format::value_variants()
                    .iter()
                    .filter_map(|f| f.to_possible_value().map(|v| v.get_name().to_string()))
                    .collect();
                let format = Format::from_str(&format, true)
                    .map_err(|_| format!("\\format {format}: use {}", known.join(", ")))?;
                Meta::Format(Some(format))
            }
            ("o", file) => Meta::Output(file),
            ("i", Some(file)) => Meta::Include(file),
            ("i", None) => return Err("\\i needs a file".to_string()),
            ("refresh", table) => Meta::Refresh(table),
            ("stats", _) => Meta::Stats,
            (other, _) => return Err(format!("unknown command \\{other}; \\? lists them")),
        })
    }
}

/// What a session reads, for the banner, `\conninfo` and `\d`.
#[derive(Debug, Clone, Default)]
pub struct Reading {
    /// In words: the API at a URL and its organizations, the demo, or a
    /// snapshot folder, its organizations, export time and orgsql version.
    pub description: String,
    /// A snapshot: nothing is fetched, and there is no `orgsql_requests`.
    pub offline: bool,
    /// Snapshots attached as schemas (`--attach NAME=DIR`): name and folder.
    pub attached: Vec<(String, crate::storage::Location)>,
}

/// A format as `--format` spells it.
pub fn format_name(format: Format) -> String {
    use clap::ValueEnum;
    format
        .to_possible_value()
        .map_or_else(|| format!("{format:?}"), |v| v.get_name().to_string())
}

pub fn max_rows_words(n: usize) -> String {
    match n {
        0 => "Every row is shown.".to_string(),
        n => format!("At most {n} rows are shown on the screen (files get every row)."),
    }
}

/// Whether the session has `name` (a snapshot may lack a table).
fn has_table(ctx: &SessionContext, name: &str) -> bool {
    ctx.table_exist(name).unwrap_or(false)
}

/// `\d`: every table, what it is and (live) how it calls the API; then
/// the attached snapshots.
pub fn describe_tables(ctx: &SessionContext, reading: &Reading) -> String {
    let tables: Vec<TableInfo> = catalog()
        .into_iter()
        .filter(|t| has_table(ctx, t.name))
        .collect();
    let width = tables.iter().map(|t| t.name.len()).max().unwrap_or(0);
    let mut text = if reading.offline {
        format!("{:width$}  description\n", "table")
    } else {
        format!("{:width$}  {:22}  description\n", "table", "API calls")
    };
    for table in &tables {
        if reading.offline {
            text.push_str(&format!("{:width$}  {}\n", table.name, table.description));
            continue;
        }
        let calls = match (&table.kind, table.fan_out()) {
            (_, Some(per)) => format!("one per {per}"),
            (Kind::Session { .. }, _) => "none (this session)".to_string(),
            (Kind::View { over, .. }, _) => {
                let per: Vec<&str> = over
                    .iter()
                    .filter_map(|side| tables.iter().find(|t| t.name == *side)?.fan_out())
                    .collect();
                format!("one per {}", per.join(" and "))
            }
            _ => "listing".to_string(),
        };
        text.push_str(&format!(
            "{:width$}  {calls:22}  {}\n",
            table.name, table.description
        ));
    }
    if reading.offline {
        text.push_str(&format!(
            "(a snapshot: {})\n",
            visible(&reading.description)
        ));
    }
    for (name, dir) in &reading.attached {
        text.push_str(&format!(
            "schema {name}: the snapshot {dir} (\\d {name}.TABLE describes one)\n"
        ));
    }
    text.pop();
    text
}

/// `\d TABLE` or `\d SCHEMA.TABLE`: columns, types, descriptions, and
/// (live) which filters reach the API.
pub fn describe_table(
    ctx: &SessionContext,
    reading: &Reading,
    name: &str,
) -> Result<String, String> {
    let (schema, bare) = match name.split_once('.') {
        Some((schema, table)) => (Some(schema), table),
        None => (None, name),
    };
    if schema.is_none()
        && let Some(watch) = crate::tables::watch_table(bare)
    {
        return describe_watch_table(watch);
    }
    let offline = match schema {
        Some(schema) if reading.attached.iter().any(|(n, _)| n == schema) => true,
        Some(schema) => {
            return Err(format!(
                "no schema {schema}; attach a snapshot with --attach {schema}=DIR"
            ));
        }
        None => reading.offline,
    };
    let tables = catalog();
    let table = tables
        .iter()
        .find(|t| t.name.eq_ignore_ascii_case(bare))
        .filter(|t| match schema {
            Some(schema) => has_table(ctx, &format!("{schema}.{}", t.name)),
            None => has_table(ctx, t.name),
        })
        .ok_or_else(|| format!("no table {name}; \\d lists them"))?;
    let rows: Vec<[String; 4]> = table
        .columns
        .iter()
        .map(|c| {
            [
                c.name.to_string(),
                type_name(&c.data_type),
                if offline {
                    "-".to_string()
                } else {
                    pushed(table, c.name, &c.data_type)
                },
                c.description.to_string(),
            ]
        })
        .collect();
    let header = [
        "column",
        "type",
        if offline {
            "(a snapshot: no API)"
        } else {
            "filter sent to the API"
        },
        "description",
    ];
    let mut text = format!("{name}: {}", table.description);
    if let Some(what) = crate::tables::unverified(table.name) {
        text.push_str(&format!("\nUnverified: {what}"));
    }
    if let Some(per) = table.fan_out().filter(|_| !offline) {
        text.push_str(&format!(
            "\nCalls the API once per {per}: filter on the id, or join from a narrowed table."
        ));
    }
    text.push_str("\n\n");
    text.push_str(&aligned(header.map(String::from), &rows));
    Ok(text)
}

/// `\d new_events`: a table of `orgsql watch`'s rules, which no session
/// has: its columns are those of the catalog table it takes them from.
fn describe_watch_table(watch: &WatchTable) -> Result<String, String> {
    let of = crate::tables::find(watch.columns_of)
        .ok_or_else(|| format!("no table {} for {}", watch.columns_of, watch.name))?;
    let rows: Vec<[String; 3]> = of
        .columns
        .iter()
        .map(|c| {
            [
                c.name.to_string(),
                type_name(&c.data_type),
                c.description.to_string(),
            ]
        })
        .collect();
    Ok(format!(
        "{}: {}\nOnly inside `orgsql watch`, for its rules (not in this session): \
         the columns of {}.\n\n{}",
        watch.name,
        watch.description,
        of.name,
        aligned(["column", "type", "description"].map(String::from), &rows)
    ))
}

/// A header and rows as lines, each cell but the last padded to its
/// column's width.
fn aligned<const N: usize>(header: [String; N], rows: &[[String; N]]) -> String {
    let rows: Vec<&[String; N]> = std::iter::once(&header).chain(rows).collect();
    let widths: Vec<usize> = (0..N)
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    let lines: Vec<String> = rows
        .iter()
        .map(|row| {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i + 1 < N {
                    line.push_str(&format!("{cell:w$}  ", w = widths[i]));
                } else {
                    line.push_str(cell);
                }
            }
            line
        })
        .collect();
    lines.join("\n")
}

fn type_name(data_type: &DataType) -> String {
    match data_type {
        DataType::Utf8 => "text".to_string(),
        DataType::Boolean => "boolean".to_string(),
        DataType::Int64 => "bigint".to_string(),
        DataType::Float64 => "double".to_string(),
        DataType::Date32 => "date".to_string(),
        DataType::Timestamp(_, _) => "timestamp (UTC)".to_string(),
        other => other.to_string(),
    }
}

/// Ask the table itself: which filter shapes on this column reach the API.
fn pushed(table: &TableInfo, column: &str, data_type: &DataType) -> String {
    let value = match data_type {
        DataType::Boolean => lit(true),
        DataType::Int64 => lit(1_i64),
        DataType::Timestamp(_, _) => lit(ScalarValue::TimestampMicrosecond(
            Some(0),
            Some("UTC".into()),
        )),
        _ => lit("x"),
    };
    let probes: [(&str, Expr); 2] = [
        ("=, IN", col(column).eq(value.clone())),
        ("<, >, BETWEEN", col(column).gt_eq(value)),
    ];
    let mut exact = Vec::new();
    let mut narrows = Vec::new();
    for (shape, probe) in probes {
        match table.pushdown(&probe) {
            TableProviderFilterPushDown::Exact => exact.push(shape),
            TableProviderFilterPushDown::Inexact => narrows.push(shape),
            TableProviderFilterPushDown::Unsupported => {}
        }
    }
    match (exact.is_empty(), narrows.is_empty()) {
        (true, true) => "-".to_string(),
        (false, true) => format!("{} (exact)", exact.join(", ")),
        (true, false) => format!("{} (API narrows)", narrows.join(", ")),
        (false, false) => format!(
            "{} (exact); {} (API narrows)",
            exact.join(", "),
            narrows.join(", ")
        ),
    }
}
