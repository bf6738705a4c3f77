//! Errors as a user reads them, and the errors of opening a session.
//!
//! Each layer has its own error type: the API client's `ApiError`, the
//! config file's `ConfigError`, object storage's `StorageError`, a
//! snapshot's, the SQL layer's `UnknownTable`; they travel through the
//! engine as `DataFusionError::External` and are worded here, once. A
//! session's own failures are a `SessionError`; the commands (`cli`) add
//! where, with `anyhow`, at the edge.

use datafusion::error::DataFusionError;

use crate::api::ApiError;
use crate::config::ConfigError;

/// Why a session could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// Flags that do not go together, or that name nothing to read.
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("starting the demo emulator: {0}")]
    Demo(std::io::Error),
    /// Reading what a flag names (`--snapshot`, `--roster`, `--attach`).
    /// The engine's error is worded here, whole: it is not a `source` too,
    /// or a report of the chain would say it twice.
    #[error("{place}: {}", message(.error))]
    At {
        place: String,
        error: DataFusionError,
    },
}

impl SessionError {
    /// An engine error, with the flag or place it came from.
    pub fn at(place: impl Into<String>) -> impl FnOnce(DataFusionError) -> Self {
        let place = place.into();
        move |error| SessionError::At { place, error }
    }
}

/// A file or folder that could not be read or written, and where.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", .path.display())]
pub struct FileError {
    pub path: std::path::PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// An I/O error as an engine error, naming the path it happened at.
pub fn io_at(path: &std::path::Path) -> impl Fn(std::io::Error) -> DataFusionError + Copy + '_ {
    move |source| {
        DataFusionError::External(Box::new(FileError {
            path: path.to_path_buf(),
            source,
        }))
    }
}

/// The message a user should read: an API error as the client worded it,
/// an SQL error in orgsql's words, without DataFusion's wrapping; with the
/// context orgsql added (which statement, which organization).
pub fn message(error: &DataFusionError) -> String {
    use datafusion::sql::sqlparser::parser::ParserError;
    match error {
        DataFusionError::Context(context, inner) => {
            return format!("{context}: {}", message(inner));
        }
        DataFusionError::Diagnostic(_, inner) => return message(inner),
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
        DataFusionError::Plan(text) => text.clone(),
        other => other.to_string(),
    }
}

/// Whether the reader of our output went away (`cli::output::print` keeps that
/// an I/O error whatever the writer made of it).
pub fn is_closed_pipe(error: &DataFusionError) -> bool {
    io_error(error).is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
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
