//! The interactive REPL: multi-line SQL ending with `;`, psql-style
//! meta-commands, tab completion, progress while a scan pages, Ctrl-C to
//! cancel a query and keep the session.

use std::borrow::Cow;
use std::fs::File;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use datafusion::arrow::datatypes::DataType;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::prelude::{SessionContext, col, lit};
use datafusion::scalar::ScalarValue;
use datafusion::sql::parser::DFParser;
use datafusion::sql::sqlparser::dialect::GenericDialect;
use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Context, Editor, Helper};

use super::output::visible;
use super::progress::Progress;
use super::{Format, error_message, output};
use crate::api::Orgs;
use crate::tables::{Kind, TableInfo, catalog};

const PROMPT: &str = "orgsql> ";

/// The backslash commands: name, arguments, what it does. `\?` prints this
/// list, and `Meta::from_str` reads the same names.
const COMMANDS: &[(&str, &str, &str)] = &[
    (
        "d",
        "",
        "tables, what they are, which call the API once per user or group",
    ),
    (
        "d",
        "TABLE",
        "columns, types, descriptions, and which filters reach the API",
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
fn help() -> String {
    let mut text = String::from(
        "SQL statements end with ';' and may span lines. Ctrl-C cancels a running query\n\
         (or the line being typed), Ctrl-D or \\q quits.\n",
    );
    for (name, args, what) in COMMANDS {
        let usage = format!("\\{name} {args}");
        text.push_str(&format!("\n  {usage:18} {what}"));
    }
    text
}

/// A backslash command, read by `FromStr` from what follows the backslash.
#[derive(Debug, PartialEq)]
enum Meta {
    Quit,
    Help,
    Describe(Option<String>),
    Timing,
    Format(Option<Format>),
    Output(Option<String>),
    Include(String),
    Refresh(Option<String>),
    Stats,
}

impl std::str::FromStr for Meta {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Self, String> {
        use clap::ValueEnum;
        let mut words = text.split_whitespace();
        let name = words.next().unwrap_or_default();
        let arg = words.next().map(str::to_string);
        Ok(match (name, arg) {
            ("q", _) => Meta::Quit,
            ("?", _) => Meta::Help,
            ("d", table) => Meta::Describe(table),
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

/// Where the REPL keeps its history (SQL only): `$XDG_DATA_HOME/orgsql/history`,
/// else `~/.local/share/orgsql/history`.
pub fn history_path() -> Option<PathBuf> {
    let data = std::env::var_os("XDG_DATA_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".local/share")))?;
    Some(data.join("orgsql").join("history"))
}

struct Repl {
    ctx: SessionContext,
    /// `None` on a snapshot: nothing is fetched.
    orgs: Option<Orgs>,
    format: Format,
    timing: bool,
    /// `\o FILE`: results go there instead of the screen.
    output: Option<(PathBuf, File)>,
    /// Ctrl-C while a query runs. Installed once, at start: until a handler
    /// is installed, Ctrl-C would end the process.
    interrupts: Signal,
}

#[cfg(unix)]
type Signal = tokio::signal::unix::Signal;

#[cfg(unix)]
fn interrupts() -> std::io::Result<Signal> {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
}

#[cfg(unix)]
async fn interrupted(signal: &mut Signal) {
    signal.recv().await;
}

#[cfg(not(unix))]
type Signal = ();

#[cfg(not(unix))]
fn interrupts() -> std::io::Result<Signal> {
    Ok(())
}

#[cfg(not(unix))]
async fn interrupted(_signal: &mut Signal) {
    let _ = tokio::signal::ctrl_c().await;
}

/// Run the REPL until `\q` or Ctrl-D.
pub async fn run(ctx: SessionContext, orgs: Option<Orgs>, format: Format) -> anyhow::Result<()> {
    let mut editor: Editor<SqlHelper, DefaultHistory> = Editor::new()?;
    editor.set_helper(Some(SqlHelper::new()));
    let history = history_path();
    if let Some(path) = &history {
        // A missing history file is a first run, not an error.
        let _ = editor.load_history(path);
    }
    // The connections it reads, when they have names: `orgsql (acme, globex)> `.
    let prompt = match orgs.as_ref().map(Orgs::names) {
        Some(names) if !names.is_empty() => format!("orgsql ({})> ", visible(&names.join(", "))),
        _ => PROMPT.to_string(),
    };
    let mut repl = Repl {
        ctx,
        orgs,
        format,
        timing: true,
        output: None,
        interrupts: interrupts()?,
    };
    eprintln!(
        "orgsql {}: \\? for help, \\q to quit",
        env!("CARGO_PKG_VERSION")
    );
    loop {
        let line = tokio::task::block_in_place(|| editor.readline(&prompt));
        let text = match line {
            Ok(text) => text,
            Err(ReadlineError::Interrupted) => {
                eprintln!("^C");
                continue;
            }
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e.into()),
        };
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        if let Some(command) = text.strip_prefix('\\') {
            match repl.meta(command).await {
                Ok(Flow::Quit) => break,
                Ok(Flow::Continue) => {}
                Err(message) => eprintln!("error: {}", visible(&message)),
            }
            continue;
        }
        let _ = editor.add_history_entry(text);
        if let Some(path) = &history {
            save_history(&mut editor, path);
        }
        if let Err(message) = repl.run_sql(text).await {
            eprintln!("error: {}", visible(&message));
        }
    }
    Ok(())
}

fn save_history(editor: &mut Editor<SqlHelper, DefaultHistory>, path: &Path) {
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if let Err(e) = editor.append_history(path) {
        eprintln!("warning: cannot write history {}: {e}", path.display());
    }
}

enum Flow {
    Continue,
    Quit,
}

impl Repl {
    async fn meta(&mut self, command: &str) -> std::result::Result<Flow, String> {
        match command.parse::<Meta>()? {
            Meta::Quit => return Ok(Flow::Quit),
            Meta::Help => println!("{}", help()),
            Meta::Describe(None) => self.print_text(&describe_tables())?,
            Meta::Describe(Some(table)) => self.print_text(&describe_table(&table)?)?,
            Meta::Timing => {
                self.timing = !self.timing;
                println!("Timing is {}.", if self.timing { "on" } else { "off" });
            }
            Meta::Format(None) => println!("Output format is {}.", format_name(self.format)),
            Meta::Format(Some(format)) => {
                self.format = format;
                println!("Output format is {}.", format_name(format));
            }
            Meta::Output(Some(path)) => {
                let file = File::create(&path).map_err(|e| format!("\\o {path}: {e}"))?;
                println!("Results go to {path}.");
                self.output = Some((PathBuf::from(path), file));
            }
            Meta::Output(None) => {
                if let Some((path, _)) = self.output.take() {
                    println!(
                        "Results go to the screen again ({} closed).",
                        path.display()
                    );
                }
            }
            Meta::Include(path) => {
                let sql = std::fs::read_to_string(&path).map_err(|e| format!("\\i {path}: {e}"))?;
                self.run_sql(&sql).await?;
            }
            Meta::Refresh(_) if self.orgs.is_none() => {
                return Err("a snapshot is read from files: there are no pages to refresh".into());
            }
            Meta::Refresh(table) => {
                if let Some(name) = &table
                    && !catalog().iter().any(|t| t.name == name)
                {
                    return Err(format!("\\refresh {name}: no such table; \\d lists them"));
                }
                if let Some(orgs) = &self.orgs {
                    orgs.clear_cache(table.as_deref());
                }
                match table {
                    Some(table) => println!("Pages of {table} will be fetched again."),
                    None => println!("Every page will be fetched again."),
                }
            }
            Meta::Stats => self.print_text(&self.stats())?,
        }
        Ok(Flow::Continue)
    }

    /// Text output follows `\o` too, so a session can be captured whole.
    fn print_text(&mut self, text: &str) -> std::result::Result<(), String> {
        match &mut self.output {
            Some((path, file)) => {
                writeln!(file, "{text}").map_err(|e| format!("{}: {e}", path.display()))
            }
            None => {
                // Long lines are cut to the terminal, as result tables are.
                match terminal_width() {
                    Some(width) => text
                        .lines()
                        .for_each(|line| println!("{}", console::truncate_str(line, width, "…"))),
                    None => println!("{text}"),
                }
                Ok(())
            }
        }
    }

    fn stats(&self) -> String {
        let Some(orgs) = &self.orgs else {
            return "A snapshot is read from files: no API requests.".to_string();
        };
        let log = orgs.session().requests();
        let pages = log
            .iter()
            .filter(|r| r.status.is_some_and(|s| (200..300).contains(&s)))
            .count();
        let retries = log.iter().filter(|r| r.attempt > 1).count();
        let throttled = log.iter().filter(|r| r.status == Some(429)).count();
        let bytes: usize = log.iter().filter_map(|r| r.bytes).sum();
        format!(
            "{} requests this session: {pages} pages, {retries} retries, {throttled} answered 429, {:.1} MB",
            log.len(),
            bytes as f64 / 1e6
        )
    }

    /// Run each statement; print each result; Ctrl-C cancels the statement
    /// running and the ones after it.
    async fn run_sql(&mut self, sql: &str) -> std::result::Result<(), String> {
        let statements = DFParser::parse_sql_with_dialect(sql, &GenericDialect {})
            .map_err(|e| error_message(&e))?;
        for statement in statements {
            let started = Instant::now();
            let progress = self.orgs.as_ref().map(Progress::start);
            let run = super::exec::execute(&self.ctx, statement);
            // A Ctrl-C pressed between queries is not meant for this one.
            #[cfg(unix)]
            while futures::FutureExt::now_or_never(self.interrupts.recv()).is_some() {}
            let result = tokio::select! {
                result = run => Some(result),
                _ = interrupted(&mut self.interrupts) => None,
            };
            if let Some(progress) = progress {
                progress.finish();
            }
            let Some(result) = result else {
                return Err("cancelled; no more pages are fetched".to_string());
            };
            let (schema, batches) = result.map_err(|e| error_message(&e))?;
            let elapsed = started.elapsed();
            let printed = match &mut self.output {
                // Parquet is a whole file: each result replaces it.
                Some((path, _)) if self.format == Format::Parquet => {
                    super::files::write_file(path, self.format, &schema, &batches)
                        .map_err(|e| format!("{}: {}", path.display(), error_message(&e)))
                }
                Some((path, file)) => output::print(file, self.format, &schema, &batches, None)
                    .map_err(|e| format!("{}: {}", path.display(), error_message(&e))),
                None if self.format == Format::Parquet => {
                    Err("parquet is written to a file: \\o FILE first".to_string())
                }
                None => {
                    let stdout = std::io::stdout();
                    let mut out = stdout.lock();
                    output::print(&mut out, self.format, &schema, &batches, terminal_width())
                        .map_err(|e| error_message(&e))
                }
            };
            printed?;
            if let Some(orgs) = &self.orgs {
                super::say_notices(orgs);
            }
            if self.timing {
                eprintln!("Time: {:.3} s", elapsed.as_secs_f64());
            }
        }
        Ok(())
    }
}

/// A format as `--format` spells it.
fn format_name(format: Format) -> String {
    use clap::ValueEnum;
    format
        .to_possible_value()
        .map_or_else(|| format!("{format:?}"), |v| v.get_name().to_string())
}

/// The width to fit output to: the terminal's, if stdout is one that says
/// its size.
fn terminal_width() -> Option<usize> {
    std::io::stdout()
        .is_terminal()
        .then(|| console::Term::stdout().size_checked())
        .flatten()
        .map(|(_, columns)| usize::from(columns))
        .filter(|&columns| columns >= 20)
}

/// `\d`: every table, whether it fans out, and what it is.
fn describe_tables() -> String {
    let tables = catalog();
    let width = tables.iter().map(|t| t.name.len()).max().unwrap_or(0);
    let mut text = format!("{:width$}  {:22}  description\n", "table", "API calls");
    for table in &tables {
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
    text.pop();
    text
}

/// `\d TABLE`: columns, types, descriptions, and which filters reach the API.
fn describe_table(name: &str) -> std::result::Result<String, String> {
    let tables = catalog();
    let table = tables
        .iter()
        .find(|t| t.name.eq_ignore_ascii_case(name))
        .ok_or_else(|| format!("no table {name}; \\d lists them"))?;
    let rows: Vec<[String; 4]> = table
        .columns
        .iter()
        .map(|c| {
            [
                c.name.to_string(),
                type_name(&c.data_type),
                pushed(table, c.name, &c.data_type),
                c.description.to_string(),
            ]
        })
        .collect();
    let header = ["column", "type", "filter sent to the API", "description"];
    let widths: Vec<usize> = (0..3)
        .map(|i| {
            rows.iter()
                .map(|r| r[i].len())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: [&str; 4]| {
        format!(
            "{:w0$}  {:w1$}  {:w2$}  {}",
            cells[0],
            cells[1],
            cells[2],
            cells[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        )
    };
    let mut text = format!("{}: {}", table.name, table.description);
    if let Some(per) = table.fan_out() {
        text.push_str(&format!(
            "\nCalls the API once per {per}: filter on the id, or join from a narrowed table."
        ));
    }
    text.push_str("\n\n");
    text.push_str(&line(header));
    for row in &rows {
        text.push('\n');
        text.push_str(&line([&row[0], &row[1], &row[2], &row[3]]));
    }
    Ok(text)
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

const KEYWORDS: &[&str] = &[
    "SELECT",
    "FROM",
    "WHERE",
    "AND",
    "OR",
    "NOT",
    "IN",
    "IS",
    "NULL",
    "AS",
    "JOIN",
    "LEFT",
    "RIGHT",
    "FULL",
    "INNER",
    "OUTER",
    "ON",
    "USING",
    "GROUP",
    "BY",
    "ORDER",
    "HAVING",
    "LIMIT",
    "OFFSET",
    "DISTINCT",
    "COUNT",
    "SUM",
    "MIN",
    "MAX",
    "AVG",
    "CASE",
    "WHEN",
    "THEN",
    "ELSE",
    "END",
    "LIKE",
    "ILIKE",
    "BETWEEN",
    "EXISTS",
    "UNION",
    "ALL",
    "WITH",
    "DESC",
    "ASC",
    "COPY",
    "TO",
    "EXPLAIN",
    "INTERVAL",
    "TIMESTAMP",
    "CAST",
    "TRUE",
    "FALSE",
    "CREATE",
    "VIEW",
    "SHOW",
    "TABLES",
    "COLUMNS",
    "DESCRIBE",
    "FILTER",
    "OVER",
    "PARTITION",
];

/// Completion of keywords, table names and the columns of the tables a
/// statement names; a statement is complete when it ends with `;`.
struct SqlHelper {
    tables: Vec<TableInfo>,
}

impl SqlHelper {
    fn new() -> Self {
        Self { tables: catalog() }
    }
}

impl Completer for SqlHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let before = &line[..pos];
        let start = before
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
            .map_or(0, |i| i + 1);
        let word = &before[start..];
        if word.is_empty() {
            return Ok((pos, Vec::new()));
        }
        let lower = word.to_lowercase();
        let words: Vec<String> = line
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .map(str::to_lowercase)
            .collect();
        let mut names: Vec<String> = Vec::new();
        for table in &self.tables {
            names.push(table.name.to_string());
            if words.iter().any(|w| w == table.name) {
                names.extend(table.columns.iter().map(|c| c.name.to_string()));
            }
        }
        let upper = word.chars().next().is_some_and(char::is_uppercase);
        names.extend(KEYWORDS.iter().map(|k| {
            if upper {
                k.to_string()
            } else {
                k.to_lowercase()
            }
        }));
        names.sort();
        names.dedup();
        let candidates = names
            .into_iter()
            .filter(|n| n.to_lowercase().starts_with(&lower) && n.len() > word.len())
            .map(|n| Pair {
                display: n.clone(),
                replacement: n,
            })
            .collect();
        Ok((start, candidates))
    }
}

impl Validator for SqlHelper {
    fn validate(&self, ctx: &mut ValidationContext) -> rustyline::Result<ValidationResult> {
        let input = ctx.input().trim();
        if input.is_empty() || input.starts_with('\\') || input.ends_with(';') {
            Ok(ValidationResult::Valid(None))
        } else {
            Ok(ValidationResult::Incomplete)
        }
    }
}

impl Hinter for SqlHelper {
    type Hint = String;
}

impl Highlighter for SqlHelper {
    fn highlight<'l>(&self, line: &'l str, _pos: usize) -> Cow<'l, str> {
        Cow::Borrowed(line)
    }
}

impl Helper for SqlHelper {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_of_the_help_parses_and_every_format_is_accepted() {
        for (name, args, _) in COMMANDS {
            let arg = match *args {
                "" => "",
                "[FORMAT]" => "ndjson",
                _ => "x",
            };
            assert!(format!("{name} {arg}").parse::<Meta>().is_ok(), "\\{name}");
        }
        use clap::ValueEnum;
        for format in Format::value_variants() {
            let meta = format!("format {}", format_name(*format)).parse::<Meta>();
            assert_eq!(meta, Ok(Meta::Format(Some(*format))));
        }
        assert!("format yaml".parse::<Meta>().is_err());
        assert!("nosuch".parse::<Meta>().is_err());
    }
}
