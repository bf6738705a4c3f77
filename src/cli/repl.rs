//! The interactive REPL: the line editor around the statement runner.
//! Multi-line SQL ending with `;` (with a continuation prompt), backslash
//! commands (even mid-statement), history and tab completion; the runner
//! does the rest, Ctrl-C included.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{CompletionType, Config, Context, Editor, Helper};

use super::meta::help;
use super::output::visible;
use super::runner::{Flow, Runner, StatementState, Stopped, statement_state};
use crate::api::Orgs;
use crate::tables::{TableInfo, catalog};

/// Where the REPL keeps its history (statements and commands): `$XDG_DATA_HOME/orgsql/history`,
/// else `~/.local/share/orgsql/history`.
pub fn history_path() -> Option<PathBuf> {
    let data = std::env::var_os("XDG_DATA_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".local/share")))?;
    Some(data.join("orgsql").join("history"))
}

/// Run the REPL on `runner` until `\q`, `exit` or Ctrl-D.
pub async fn run(runner: Runner) -> anyhow::Result<()> {
    let mut runner = runner.interactive()?;
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
    let base = match runner.orgs().map(Orgs::names) {
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
        visible(&runner.reading().description)
    );
    // The statement typed so far, until its `;`.
    let mut buffer = String::new();
    loop {
        let prompt = match statement_state(&buffer) {
            _ if buffer.is_empty() => &prompts[0],
            StatementState::InQuote => &prompts[2],
            _ => &prompts[1],
        };
        let line = tokio::task::block_in_place(|| editor.readline(prompt));
        let line = match line {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => {
                buffer.clear();
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
            match runner.meta(command).await {
                Ok(Flow::Quit) => break,
                Ok(Flow::Reset) => buffer.clear(),
                Ok(Flow::Continue) => {}
                Err(stopped) => say_stopped(&stopped),
            }
            continue;
        }
        if buffer.is_empty() {
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
        buffer.push_str(&line);
        buffer.push('\n');
        if statement_state(&buffer) != StatementState::Complete {
            continue;
        }
        let sql = std::mem::take(&mut buffer);
        let _ = editor.add_history_entry(sql.trim());
        if let Some(path) = &history {
            save_history(&mut editor, path);
        }
        if let Err(stopped) = runner.statements(&sql).await {
            say_stopped(&stopped);
        }
    }
    Ok(())
}

/// A statement or command that stopped, on stderr; the session goes on.
fn say_stopped(stopped: &Stopped) {
    match stopped {
        Stopped::Cancelled => eprintln!("{stopped}"),
        other => eprintln!(
            "error: {}",
            super::output::visible_lines(&other.to_string())
        ),
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
