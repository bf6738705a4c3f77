//! The command line's front doors, beside `main.rs` which only parses and dispatches.

pub mod check;
pub mod diff;
pub mod exec;
pub mod export;
pub mod files;
pub mod meta;
pub mod output;
pub mod progress;
pub mod query;
pub mod repl;
pub mod review;
pub mod runner;
pub mod serve;

use datafusion::error::DataFusionError;

pub use output::Format;

/// The message a user should read: an API error as the client worded it,
/// an SQL error in orgsql's words, without DataFusion's wrapping; with the
/// context orgsql added (which statement, which organization).
pub fn error_message(error: &DataFusionError) -> String {
    use datafusion::sql::sqlparser::parser::ParserError;
    match error {
        DataFusionError::Context(context, inner) => {
            return format!("{context}: {}", error_message(inner));
        }
        DataFusionError::Diagnostic(_, inner) => return error_message(inner),
        _ => {}
    }
    match error.find_root() {
        DataFusionError::External(inner) => inner.to_string(),
        DataFusionError::SQL(error, _) => match error.as_ref() {
            ParserError::ParserError(m) | ParserError::TokenizerError(m) => {
                format!("syntax error: {m}")
            }
            other => format!("syntax error: {other}"),
        },
        DataFusionError::Plan(message) => not_found(message).unwrap_or_else(|| message.clone()),
        other => other.to_string(),
    }
}

/// "table 'datafusion.public.usres' not found", said with the nearest
/// table names.
fn not_found(message: &str) -> Option<String> {
    let name = message
        .strip_prefix("table '")?
        .strip_suffix("' not found")?
        .trim_start_matches("datafusion.public.");
    let bare = name.rsplit('.').next().unwrap_or(name);
    let mut near: Vec<(f64, &str)> = crate::tables::catalog()
        .iter()
        .map(|t| (strsim::jaro_winkler(bare, t.name), t.name))
        .filter(|(score, _)| *score > 0.8)
        .collect();
    near.sort_by(|a, b| b.0.total_cmp(&a.0));
    let hint = match near.as_slice() {
        [] => String::new(),
        [(_, one)] => format!("; did you mean {one}?"),
        [(_, one), (_, two), ..] => format!("; did you mean {one} or {two}?"),
    };
    Some(format!("no table {name}{hint} (\\d lists the tables)"))
}

/// The one adapter from an error of the engine to the error a user reads:
/// where it happened (a flag, a file, `-c`), then what (`error_message`).
pub trait At<T> {
    fn at(self, place: &str) -> anyhow::Result<T>;
}

impl<T> At<T> for Result<T, DataFusionError> {
    fn at(self, place: &str) -> anyhow::Result<T> {
        self.map_err(|e| {
            // A closed pipe is kept recognisable.
            if is_closed_pipe(&e) {
                anyhow::Error::new(std::io::Error::from(std::io::ErrorKind::BrokenPipe))
            } else {
                anyhow::anyhow!("{place}: {}", error_message(&e))
            }
        })
    }
}

/// Whether the reader of our output went away. The CSV writer words it as
/// text, so the text counts too.
pub(crate) fn is_closed_pipe(error: &DataFusionError) -> bool {
    io_error(error).is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
        || error.to_string().contains("Broken pipe (os error")
}

/// The I/O error at the root of an engine error, if that is what it is.
fn io_error(error: &DataFusionError) -> Option<&std::io::Error> {
    use datafusion::arrow::error::ArrowError;
    match error.find_root() {
        DataFusionError::IoError(io) => Some(io),
        DataFusionError::ArrowError(arrow, _) => match arrow.as_ref() {
            ArrowError::IoError(_, io) => Some(io),
            _ => None,
        },
        DataFusionError::External(e) => e.downcast_ref::<std::io::Error>(),
        _ => None,
    }
}

/// The reader of our output went away (`orgsql ... | head`): not an error.
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// What the clients noted for the user (a table read another way), on stderr.
pub fn say_notices(orgs: &crate::api::Orgs) {
    for note in orgs.session().take_notices() {
        eprintln!("note: {}", output::visible(&note));
    }
}
