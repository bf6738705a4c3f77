//! The one statement runner. The REPL, `-c`, `-f`, standard input and `\i`
//! hand it SQL and backslash commands; it parses (`crate::sql`), runs each
//! statement in a task of its own, prints or writes the result, says what
//! DDL and COPY did, names a failing statement, and cancels on Ctrl-C in
//! the REPL.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use datafusion::prelude::SessionContext;

use super::Format;
use super::exec::{Done, execute, in_statement, is_query, show_parse_error, statement_lines};
use super::meta::{
    Meta, Reading, describe_table, describe_tables, format_name, help, max_rows_words,
};
use super::output::{self, Expanded, Screen, visible};
use super::progress::Progress;
use crate::api::Orgs;
use crate::tables::catalog;

/// Why a statement, a command or a script did not run to its end.
#[derive(Debug)]
pub enum Stopped {
    /// Ctrl-C in the REPL: the statement and those after it are dropped.
    Cancelled,
    /// Whoever read standard output went away (`orgsql ... | head`).
    ClosedPipe,
    /// It failed: what went wrong and where, in words for the user.
    Failed(String),
}

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stopped::Cancelled => write!(f, "cancelled"),
            Stopped::ClosedPipe => write!(f, "standard output was closed"),
            Stopped::Failed(message) => write!(f, "{message}"),
        }
    }
}

impl From<String> for Stopped {
    fn from(message: String) -> Self {
        Stopped::Failed(message)
    }
}

impl From<std::io::Error> for Stopped {
    fn from(error: std::io::Error) -> Self {
        match error.kind() {
            std::io::ErrorKind::BrokenPipe => Stopped::ClosedPipe,
            _ => Stopped::Failed(error.to_string()),
        }
    }
}

/// An engine error: a closed pipe stays recognisable.
fn stopped(error: &datafusion::error::DataFusionError) -> Stopped {
    if crate::error::is_closed_pipe(error) {
        Stopped::ClosedPipe
    } else {
        Stopped::Failed(crate::error::message(error))
    }
}

/// What the runner does after a command.
#[derive(Debug, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// `\r`: the statement being gathered is dropped.
    Reset,
    /// `\q`.
    Quit,
}

/// Where results go.
enum Sink {
    Screen,
    /// `\o FILE`: every result and message, appended.
    Log {
        path: PathBuf,
        file: File,
    },
    /// `--output FILE`: the one query's result, written whole in the
    /// chosen format; what DDL and COPY say still goes to the screen.
    Result(PathBuf),
}

/// How results are shown.
pub struct Settings {
    pub format: Format,
    pub max_rows: usize,
    pub expanded: Expanded,
    /// `--csv-safe`: CSV results and `COPY ... TO` CSV write a cell a
    /// spreadsheet would run as a formula with a leading `'`.
    pub csv_safe: bool,
}

pub struct Runner {
    ctx: SessionContext,
    /// `None` on a snapshot: nothing is fetched.
    orgs: Option<Orgs>,
    reading: Reading,
    settings: Settings,
    timing: bool,
    sink: Sink,
    /// In the REPL: Ctrl-C cancels the running statement. Elsewhere it
    /// stops the process (and no file is left half-written).
    interrupts: Option<Signal>,
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

/// Where a piece of a script starts in it: its first line (1-based) and
/// how many statements came before, so an error names its place in the
/// whole script.
#[derive(Debug, Clone, Copy, Default)]
struct Place {
    line: u64,
    statements: usize,
}

impl Runner {
    /// A runner writing results to standard output, or the one query's to
    /// `output` (`--output`).
    pub fn new(
        ctx: SessionContext,
        orgs: Option<Orgs>,
        reading: Reading,
        settings: Settings,
        output: Option<PathBuf>,
    ) -> Self {
        Self {
            ctx,
            orgs,
            reading,
            settings,
            timing: false,
            sink: output.map_or(Sink::Screen, Sink::Result),
            interrupts: None,
        }
    }

    /// For the REPL: Ctrl-C cancels a statement, and each says how long it
    /// took. Installed once, at start: until a handler is installed,
    /// Ctrl-C would end the process.
    pub fn interactive(mut self) -> std::io::Result<Self> {
        self.interrupts = Some(interrupts()?);
        self.timing = true;
        Ok(self)
    }

    pub fn reading(&self) -> &Reading {
        &self.reading
    }

    pub fn orgs(&self) -> Option<&Orgs> {
        self.orgs.as_ref()
    }

    /// A script: SQL statements and backslash commands, a command a line
    /// (as psql reads `-f` and standard input). The SQL between two
    /// commands is parsed whole before it runs; a command runs when its
    /// line comes. A quote left open keeps a backslash line as SQL.
    pub async fn script(&mut self, text: &str) -> Result<Flow, Stopped> {
        let mut pending = String::new();
        let mut at = Place {
            line: 1,
            statements: 0,
        };
        for (number, line) in text.split_inclusive('\n').enumerate() {
            let command = line.trim_start().strip_prefix('\\');
            match command {
                Some(command) if statement_state(&pending) != StatementState::InQuote => {
                    // What came before runs first, unless it is a statement
                    // still open: that goes on after the command, as in psql.
                    if statement_state(&pending) == StatementState::Complete {
                        at.statements += self.run(&pending, at).await?;
                        pending.clear();
                    }
                    match self.meta(command.trim_end()).await? {
                        Flow::Quit => return Ok(Flow::Quit),
                        Flow::Reset => pending.clear(),
                        Flow::Continue => {}
                    }
                }
                _ => {
                    if pending.trim().is_empty() {
                        pending.clear();
                        at.line = number as u64 + 1;
                    }
                    pending.push_str(line);
                }
            }
        }
        self.run(&pending, at).await?;
        Ok(Flow::Continue)
    }

    /// Run the statements of `sql` in order and print each result.
    pub async fn statements(&mut self, sql: &str) -> Result<(), Stopped> {
        self.run(sql, Place::default()).await.map(|_| ())
    }

    /// Statements `sql`, which starts at `at` in its script; how many ran.
    async fn run(&mut self, sql: &str, at: Place) -> Result<usize, Stopped> {
        if sql.trim().is_empty() {
            return Ok(0);
        }
        // Blank lines before it, so errors and the parser's places count
        // lines in the whole script.
        let padded = format!("{}{sql}", "\n".repeat(at.line.saturating_sub(1) as usize));
        let sql = padded.as_str();
        // Said before the query runs, not after minutes of paging.
        if self.settings.format == Format::Parquet && matches!(self.sink, Sink::Screen) {
            return Err(Stopped::Failed(
                "parquet is written to a file: \\o FILE (or --output FILE) first".to_string(),
            ));
        }
        let statements = crate::sql::parse(sql).map_err(|e| {
            show_parse_error(sql, &e);
            stopped(&e)
        })?;
        let count = statements.len();
        let several = at.statements > 0 || count > 1;
        let lines: Vec<u64> = std::iter::repeat_n(0, at.statements)
            .chain(statement_lines(sql))
            .collect();
        let any_query = statements.iter().any(is_query);
        for (i, statement) in statements.into_iter().enumerate() {
            let number = at.statements + i;
            let keep = is_query(&statement) || (!any_query && i + 1 == count);
            let started = Instant::now();
            let done = Done::of(&statement);
            let csv_safe = self.settings.csv_safe;
            let progress = self.orgs.as_ref().map(Progress::start);
            let result = match &mut self.interrupts {
                Some(signal) => {
                    // A Ctrl-C pressed between queries is not meant for this one.
                    #[cfg(unix)]
                    while futures::FutureExt::now_or_never(signal.recv()).is_some() {}
                    tokio::select! {
                        result = execute(&self.ctx, statement, csv_safe) => Some(result),
                        _ = interrupted(signal) => None,
                    }
                }
                None => Some(execute(&self.ctx, statement, csv_safe).await),
            };
            if let Some(progress) = progress {
                progress.finish();
            }
            let Some(result) = result else {
                return Err(Stopped::Cancelled);
            };
            let (schema, batches) =
                result.map_err(|e| stopped(&in_statement(e, number, &lines, several)))?;
            let elapsed = started.elapsed();
            let screen = self.screen();
            let format = self.settings.format;
            let batches = if csv_safe && format == Format::Csv && done.is_none() {
                batches
                    .iter()
                    .map(crate::sheet::formulas_as_text)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| Stopped::Failed(format!("--csv-safe: {e}")))?
            } else {
                batches
            };
            match (&mut self.sink, done) {
                (_, Some(done)) => self.print_text(&done.say(&batches))?,
                (Sink::Result(path), None) if keep => {
                    super::files::write_file(path, format, &schema, &batches).map_err(|e| {
                        Stopped::Failed(format!(
                            "{}: {}",
                            path.display(),
                            crate::error::message(&e)
                        ))
                    })?;
                }
                // Parquet is a whole file: each result replaces it.
                (Sink::Log { path, file }, None) if format == Format::Parquet => {
                    let failed = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
                    super::files::write_file(path, format, &schema, &batches)
                        .map_err(|e| failed(&crate::error::message(&e)))?;
                    // The file was replaced: what comes next goes to the new one.
                    *file = std::fs::OpenOptions::new()
                        .append(true)
                        .open(&*path)
                        .map_err(|e| failed(&e))?;
                }
                (Sink::Log { path, file }, None) => {
                    output::print(file, format, &schema, &batches, None).map_err(|e| {
                        Stopped::Failed(format!(
                            "{}: {}",
                            path.display(),
                            crate::error::message(&e)
                        ))
                    })?;
                }
                (Sink::Screen | Sink::Result(_), None) => {
                    // Parquet goes only to files; anything else on the way
                    // prints as a table.
                    let shown = if format == Format::Parquet {
                        Format::Table
                    } else {
                        format
                    };
                    let stdout = std::io::stdout();
                    let mut out = stdout.lock();
                    output::print(&mut out, shown, &schema, &batches, screen)
                        .map_err(|e| stopped(&e))?;
                    out.flush()?;
                }
            }
            if let Some(orgs) = &self.orgs {
                super::say_notices(orgs);
            }
            if self.timing {
                eprintln!("Time: {:.3} s", elapsed.as_secs_f64());
            }
        }
        Ok(count)
    }

    /// A backslash command (what follows the `\`).
    pub async fn meta(&mut self, command: &str) -> Result<Flow, Stopped> {
        match command.parse::<Meta>()? {
            Meta::Quit => return Ok(Flow::Quit),
            Meta::Help => say(&help())?,
            Meta::Describe(None) => {
                let text = describe_tables(&self.ctx, &self.reading);
                self.print_text(&text)?;
            }
            Meta::Describe(Some(table)) => {
                let text = describe_table(&self.ctx, &self.reading, &table)?;
                self.print_text(&text)?;
            }
            Meta::Expanded(mode) => {
                self.settings.expanded = mode.unwrap_or(match self.settings.expanded {
                    Expanded::On => Expanded::Off,
                    _ => Expanded::On,
                });
                say(match self.settings.expanded {
                    Expanded::On => "Expanded display is on.",
                    Expanded::Off => "Expanded display is off.",
                    Expanded::Auto => {
                        "Expanded display is used automatically (rows wider than the screen)."
                    }
                })?;
            }
            Meta::MaxRows(None) => say(&max_rows_words(self.settings.max_rows))?,
            Meta::MaxRows(Some(n)) => {
                self.settings.max_rows = n;
                say(&max_rows_words(n))?;
            }
            Meta::Reset => {
                say("Statement cleared.")?;
                return Ok(Flow::Reset);
            }
            Meta::ConnInfo => {
                let mut text = format!("Reading {}.", visible(&self.reading.description));
                for (name, dir) in &self.reading.attached {
                    text.push_str(&format!("\nAttached snapshot {name}: {dir}"));
                }
                self.print_text(&text)?;
            }
            Meta::Timing => {
                self.timing = !self.timing;
                let on = if self.timing { "on" } else { "off" };
                say(&format!("Timing is {on}."))?;
            }
            Meta::Format(None) => {
                let text = format!("Output format is {}.", format_name(self.settings.format));
                say(&text)?;
            }
            Meta::Format(Some(format)) => {
                self.settings.format = format;
                say(&format!("Output format is {}.", format_name(format)))?;
            }
            Meta::Output(Some(path)) => {
                let file = File::create(&path).map_err(|e| format!("\\o {path}: {e}"))?;
                self.sink = Sink::Log {
                    path: PathBuf::from(&path),
                    file,
                };
                say(&format!("Results go to {path}."))?;
            }
            Meta::Output(None) => {
                if let Sink::Log { path, .. } = std::mem::replace(&mut self.sink, Sink::Screen) {
                    say(&format!(
                        "Results go to the screen again ({} closed).",
                        path.display()
                    ))?;
                }
            }
            Meta::Include(path) => {
                let sql = std::fs::read_to_string(&path).map_err(|e| format!("\\i {path}: {e}"))?;
                if Box::pin(self.script(&sql)).await? == Flow::Quit {
                    return Ok(Flow::Quit);
                }
            }
            Meta::Refresh(_) if self.orgs.is_none() => {
                return Err(Stopped::Failed(
                    "a snapshot is read from files: there are no pages to refresh".into(),
                ));
            }
            Meta::Refresh(table) => {
                if let Some(name) = &table
                    && !catalog().iter().any(|t| t.name == name)
                {
                    return Err(Stopped::Failed(format!(
                        "\\refresh {name}: no such table; \\d lists them"
                    )));
                }
                if let Some(orgs) = &self.orgs {
                    orgs.clear_cache(table.as_deref());
                }
                say(&match table {
                    Some(table) => format!("Pages of {table} will be fetched again."),
                    None => "Every page will be fetched again.".to_string(),
                })?;
            }
            Meta::Stats => self.print_text(&self.stats())?,
        }
        Ok(Flow::Continue)
    }

    /// The terminal results are fitted to (none when they go to a file or
    /// a pipe).
    fn screen(&self) -> Option<Screen> {
        Screen::of_stdout(
            self.settings.max_rows,
            self.settings.expanded,
            self.interrupts.is_some(),
        )
    }

    /// Text output follows `\o` too, so a session can be captured whole.
    fn print_text(&mut self, text: &str) -> Result<(), Stopped> {
        let screen = self.screen();
        match &mut self.sink {
            Sink::Log { path, file } => writeln!(file, "{text}")
                .map_err(|e| Stopped::Failed(format!("{}: {e}", path.display()))),
            Sink::Screen | Sink::Result(_) => {
                let stdout = std::io::stdout();
                let mut out = stdout.lock();
                // Long lines are cut to the terminal in the REPL, as result
                // tables are.
                match screen.filter(|s| s.repl) {
                    Some(screen) => {
                        for line in text.lines() {
                            writeln!(out, "{}", console::truncate_str(line, screen.width, "…"))?;
                        }
                    }
                    None => writeln!(out, "{text}")?,
                }
                out.flush()?;
                Ok(())
            }
        }
    }

    fn stats(&self) -> String {
        let Some(orgs) = &self.orgs else {
            return "A snapshot is read from files: no API requests.".to_string();
        };
        let log = orgs.first().requests();
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
}

/// What a command says of itself, on standard output (not to `\o`).
fn say(text: &str) -> Result<(), Stopped> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    writeln!(out, "{text}")?;
    out.flush()?;
    Ok(())
}

/// Where a statement being gathered stands.
#[derive(Debug, PartialEq, Eq)]
pub enum StatementState {
    /// It ends with `;` (outside quotes and comments): run it.
    Complete,
    /// More is to come.
    Open,
    /// A quote is open.
    InQuote,
}

pub fn statement_state(sql: &str) -> StatementState {
    use datafusion::sql::sqlparser::dialect::GenericDialect;
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
