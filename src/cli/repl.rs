//! The interactive REPL: multi-line SQL ending with `;` (with a continuation
//! prompt), psql-style meta-commands (even mid-statement), tab completion,
//! results that fit the terminal, progress while a scan pages, Ctrl-C to
//! cancel a query and keep the session.

use std::borrow::Cow;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use datafusion::arrow::datatypes::DataType;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::prelude::{SessionContext, col, lit};
use datafusion::scalar::ScalarValue;
use datafusion::sql::sqlparser::dialect::GenericDialect;
use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{CompletionType, Config, Context, Editor, Helper};

use super::output::{DEFAULT_MAX_ROWS, Expanded, Screen, visible};
use super::progress::Progress;
use super::{Format, error_message, output};
use crate::api::Orgs;
use crate::tables::{Kind, TableInfo, catalog};

/// What a Ctrl-C during a statement says (not an error).
const CANCELLED: &str = "cancelled";

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
fn help() -> String {
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
enum Meta {
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

    fn from_str(text: &str) -> std::result::Result<Self, String> {
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

/// Where the REPL keeps its history (statements and commands): `$XDG_DATA_HOME/orgsql/history`,
/// else `~/.local/share/orgsql/history`.
pub fn history_path() -> Option<PathBuf> {
    let data = std::env::var_os("XDG_DATA_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".local/share")))?;
    Some(data.join("orgsql").join("history"))
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
    pub attached: Vec<(String, PathBuf)>,
}

struct Repl {
    ctx: SessionContext,
    /// `None` on a snapshot: nothing is fetched.
    orgs: Option<Orgs>,
    reading: Reading,
    format: Format,
    timing: bool,
    expanded: Expanded,
    max_rows: usize,
    /// The statement typed so far, until its `;`.
    buffer: String,
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

/// Run the REPL until `\q`, `exit` or Ctrl-D.
pub async fn run(
    ctx: SessionContext,
    orgs: Option<Orgs>,
    format: Format,
    reading: Reading,
) -> anyhow::Result<()> {
    // Tab lists the candidates and completes what they share, as in psql.
    let config = Config::builder()
        .completion_type(CompletionType::List)
        .build();
    let mut editor: Editor<SqlHelper, DefaultHistory> = Editor::with_config(config)?;
    editor.set_helper(Some(SqlHelper::new()));
    let history = history_path();
    if let Some(path) = &history {
        // A missing history file is a first run, not an error.
        let _ = editor.load_history(path);
    }
    // The connections it reads, when they have names: `orgsql (acme, globex)> `.
    let base = match orgs.as_ref().map(Orgs::names) {
        Some(names) if !names.is_empty() => format!("orgsql ({})", visible(&names.join(", "))),
        _ => "orgsql".to_string(),
    };
    let prompts = [
        format!("{base}> "),
        format!("{base}-> "),
        format!("{base}'> "),
    ];
    eprintln!(
        "orgsql {}: \\? for help, \\q to quit. Reading {}.",
        env!("CARGO_PKG_VERSION"),
        visible(&reading.description)
    );
    let mut repl = Repl {
        ctx,
        orgs,
        reading,
        format,
        timing: true,
        expanded: Expanded::Off,
        max_rows: DEFAULT_MAX_ROWS,
        buffer: String::new(),
        output: None,
        interrupts: interrupts()?,
    };
    loop {
        let prompt = match statement_state(&repl.buffer) {
            _ if repl.buffer.is_empty() => &prompts[0],
            StatementState::InQuote => &prompts[2],
            _ => &prompts[1],
        };
        let line = tokio::task::block_in_place(|| editor.readline(prompt));
        let line = match line {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => {
                repl.buffer.clear();
                eprintln!("^C");
                continue;
            }
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e.into()),
        };
        let text = line.trim();
        // Backslash commands run at once, even in the middle of a statement.
        if let Some(command) = text.strip_prefix('\\') {
            let _ = editor.add_history_entry(text);
            match repl.meta(command).await {
                Ok(Flow::Quit) => break,
                Ok(Flow::Continue) => {}
                Err(message) => eprintln!("error: {}", visible(&message)),
            }
            continue;
        }
        if repl.buffer.is_empty() {
            match text.trim_end_matches(';').trim().to_lowercase().as_str() {
                "" => continue,
                "exit" | "quit" => break,
                "help" => {
                    println!("{}", help());
                    continue;
                }
                _ => {}
            }
        }
        repl.buffer.push_str(&line);
        repl.buffer.push('\n');
        if statement_state(&repl.buffer) != StatementState::Complete {
            continue;
        }
        let sql = std::mem::take(&mut repl.buffer);
        let _ = editor.add_history_entry(sql.trim());
        if let Some(path) = &history {
            save_history(&mut editor, path);
        }
        match repl.run_sql(&sql).await {
            Ok(()) => {}
            Err(message) if message == CANCELLED => eprintln!("{CANCELLED}"),
            Err(message) => eprintln!("error: {}", visible(&message)),
        }
    }
    Ok(())
}

/// Where a statement being typed stands.
#[derive(Debug, PartialEq, Eq)]
enum StatementState {
    /// It ends with `;` (outside quotes and comments): run it.
    Complete,
    /// More is to come.
    Open,
    /// A quote is open.
    InQuote,
}

fn statement_state(sql: &str) -> StatementState {
    use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
    match Tokenizer::new(&GenericDialect {}, sql).tokenize() {
        Ok(tokens) => {
            let last = tokens
                .iter()
                .rev()
                .find(|t| !matches!(t, Token::Whitespace(_)));
            if matches!(last, Some(Token::SemiColon)) {
                StatementState::Complete
            } else {
                StatementState::Open
            }
        }
        Err(e) if e.message.contains("Unterminated") => StatementState::InQuote,
        // Anything else the tokenizer cannot read is sent once complete,
        // for the parser to say what is wrong.
        Err(_) if sql.trim_end().ends_with(';') => StatementState::Complete,
        Err(_) => StatementState::Open,
    }
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
            Meta::Describe(None) => {
                let text = describe_tables(&self.ctx, &self.reading);
                self.print_text(&text)?;
            }
            Meta::Describe(Some(table)) => {
                let text = describe_table(&self.ctx, &self.reading, &table)?;
                self.print_text(&text)?;
            }
            Meta::Expanded(mode) => {
                self.expanded = mode.unwrap_or(match self.expanded {
                    Expanded::On => Expanded::Off,
                    _ => Expanded::On,
                });
                println!(
                    "Expanded display is {}.",
                    match self.expanded {
                        Expanded::On => "on",
                        Expanded::Off => "off",
                        Expanded::Auto => "used automatically (rows wider than the screen)",
                    }
                );
            }
            Meta::MaxRows(None) => println!("{}", max_rows_words(self.max_rows)),
            Meta::MaxRows(Some(n)) => {
                self.max_rows = n;
                println!("{}", max_rows_words(n));
            }
            Meta::Reset => {
                self.buffer.clear();
                println!("Statement cleared.");
            }
            Meta::ConnInfo => {
                let mut text = format!("Reading {}.", visible(&self.reading.description));
                for (name, dir) in &self.reading.attached {
                    text.push_str(&format!("\nAttached snapshot {name}: {}", dir.display()));
                }
                self.print_text(&text)?;
            }
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

    /// The terminal results are fitted to (none when they go to a file).
    fn screen(&self) -> Option<Screen> {
        Screen::of_stdout(self.max_rows, self.expanded, true)
    }

    /// Text output follows `\o` too, so a session can be captured whole.
    fn print_text(&mut self, text: &str) -> std::result::Result<(), String> {
        match &mut self.output {
            Some((path, file)) => {
                writeln!(file, "{text}").map_err(|e| format!("{}: {e}", path.display()))
            }
            None => {
                // Long lines are cut to the terminal, as result tables are.
                match self.screen() {
                    Some(screen) => text.lines().for_each(|line| {
                        println!("{}", console::truncate_str(line, screen.width, "…"))
                    }),
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
        // Said before the query runs, not after minutes of paging.
        if self.format == Format::Parquet && self.output.is_none() {
            return Err("parquet is written to a file: \\o FILE first".to_string());
        }
        let statements = crate::sql::parse(sql).map_err(|e| {
            super::exec::show_parse_error(sql, &e);
            error_message(&e)
        })?;
        let several = statements.len() > 1;
        let lines = super::exec::statement_lines(sql);
        for (number, statement) in statements.into_iter().enumerate() {
            let started = Instant::now();
            let done = super::exec::Done::of(&statement);
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
                return Err(CANCELLED.to_string());
            };
            let (schema, batches) = result.map_err(|e| {
                error_message(&super::exec::in_statement(e, number, &lines, several))
            })?;
            let elapsed = started.elapsed();
            let printed = match &mut self.output {
                _ if done.is_some() => {
                    let said = done.map(|d| d.say(&batches)).unwrap_or_default();
                    self.print_text(&said)
                }
                // Parquet is a whole file: each result replaces it.
                Some((path, file)) if self.format == Format::Parquet => {
                    let failed = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
                    super::files::write_file(path, self.format, &schema, &batches)
                        .map_err(|e| failed(&error_message(&e)))?;
                    // The file was replaced: what comes next goes to the new one.
                    *file = std::fs::OpenOptions::new()
                        .append(true)
                        .open(&*path)
                        .map_err(|e| failed(&e))?;
                    Ok(())
                }
                Some((path, file)) => output::print(file, self.format, &schema, &batches, None)
                    .map_err(|e| format!("{}: {}", path.display(), error_message(&e))),
                None => {
                    let stdout = std::io::stdout();
                    let mut out = stdout.lock();
                    output::print(&mut out, self.format, &schema, &batches, self.screen())
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

fn max_rows_words(n: usize) -> String {
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
fn describe_tables(ctx: &SessionContext, reading: &Reading) -> String {
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
            "schema {name}: the snapshot {} (\\d {name}.TABLE describes one)\n",
            dir.display()
        ));
    }
    text.pop();
    text
}

/// `\d TABLE` or `\d SCHEMA.TABLE`: columns, types, descriptions, and
/// (live) which filters reach the API.
fn describe_table(
    ctx: &SessionContext,
    reading: &Reading,
    name: &str,
) -> std::result::Result<String, String> {
    let (schema, bare) = match name.split_once('.') {
        Some((schema, table)) => (Some(schema), table),
        None => (None, name),
    };
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
    let mut text = format!("{name}: {}", table.description);
    if let Some(per) = table.fan_out().filter(|_| !offline) {
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

/// Every line is taken as typed: the REPL gathers a statement line by line,
/// with its continuation prompt, until the `;`.
impl Validator for SqlHelper {}

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
                "[on|off|auto]" => "auto",
                "[N]" => "100",
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
