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
pub mod seats;
pub mod serve;
pub mod verify;
pub mod watch;

use datafusion::error::DataFusionError;

use crate::error::is_closed_pipe;
pub use output::Format;

/// The one adapter from an error of the engine to the error a user reads:
/// where it happened (a flag, a file, `-c`), then what (`error::message`).
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
                anyhow::anyhow!("{place}: {}", crate::error::message(&e))
            }
        })
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
    for note in orgs.first().take_notices() {
        eprintln!("note: {}", output::visible(&note));
    }
}

/// The first of Ctrl-C (when `interrupt`) and SIGTERM.
pub async fn stop_signal(interrupt: bool) -> &'static str {
    let ctrl_c = async {
        if interrupt && tokio::signal::ctrl_c().await.is_ok() {
            return "Ctrl-C";
        }
        std::future::pending().await
    };
    let term = async {
        #[cfg(unix)]
        if let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            term.recv().await;
            return "SIGTERM";
        }
        std::future::pending().await
    };
    tokio::select! {
        name = ctrl_c => name,
        name = term => name,
    }
}
