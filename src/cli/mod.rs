//! The command line's front doors, beside `main.rs` which only parses and dispatches.

pub mod audit_log;
pub mod check;
pub mod exec;
pub mod export;
pub mod files;
pub mod output;
pub mod progress;
pub mod repl;

use datafusion::error::DataFusionError;

pub use exec::run_sql;
pub use output::Format;

/// The message a user should read: an API error as the client worded it,
/// without DataFusion's wrapping.
pub fn error_message(error: &DataFusionError) -> String {
    match error.find_root() {
        DataFusionError::External(inner) => inner.to_string(),
        DataFusionError::Context(_, inner) => error_message(inner),
        other => other.to_string(),
    }
}

/// The one adapter from an error of the engine to the error a user reads:
/// where it happened (a flag, a file, `-c`), then what (`error_message`).
pub trait At<T> {
    fn at(self, place: &str) -> anyhow::Result<T>;
}

impl<T> At<T> for Result<T, DataFusionError> {
    fn at(self, place: &str) -> anyhow::Result<T> {
        self.map_err(|e| {
            // A closed pipe is kept recognisable. The CSV writer words it
            // as text, so the text counts too.
            let message = error_message(&e);
            let closed = io_error(&e).is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
                || message.contains("Broken pipe (os error");
            if closed {
                anyhow::Error::new(std::io::Error::from(std::io::ErrorKind::BrokenPipe))
            } else {
                anyhow::anyhow!("{place}: {message}")
            }
        })
    }
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
