//! What `orgsql watch` keeps between polls, in its state folder
//! (`state.json`, written atomically): per organization, where the stream
//! stands and the alerts already delivered that a read could bring again;
//! and how long the `--output` file was when the state was last written.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

pub const STATE_FILE: &str = "state.json";

/// Held while a watch runs on the folder: two watches on one state would
/// each deliver every alert.
pub const LOCK_FILE: &str = "lock";

/// An alert delivered is remembered this long after the newest event
/// processed: a read from the newest processing time again (when the API
/// refuses the saved cursor) brings back only events this recent.
pub const REMEMBERED: Duration = Duration::hours(1);

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct WatchState {
    /// By organization id.
    #[serde(default)]
    pub orgs: BTreeMap<String, OrgState>,
    /// The `--output` file and its length in bytes after the last alerts
    /// this state records: whatever follows in the file was delivered by a
    /// run that stopped before it could write the state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<(PathBuf, u64)>,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct OrgState {
    /// The stream's `meta.next` after the last poll delivered: asked again,
    /// it answers the events processed since.
    pub cursor: Option<String>,
    /// The newest processing time read (RFC 3339, ms).
    pub processed_at: Option<String>,
    /// When this state first polled the organization (RFC 3339, ms): a
    /// stream silent since then is silent since this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watching_since: Option<String>,
    /// The first poll of the failures since the last poll that read the
    /// stream (RFC 3339, ms); `None` while it reads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failing_since: Option<String>,
    /// Alert ids delivered, with the processing time of the newest event of
    /// the poll that raised them (RFC 3339, ms).
    #[serde(default)]
    pub delivered: BTreeMap<String, String>,
}

impl OrgState {
    /// Forget the alerts no read can bring back: those of events processed
    /// more than `REMEMBERED` before the newest.
    pub fn prune(&mut self) {
        let Some(newest) = self.processed_at.as_deref().and_then(parse_time) else {
            return;
        };
        let horizon = newest - REMEMBERED;
        self.delivered
            .retain(|_, at| parse_time(at).is_none_or(|at| at >= horizon));
    }
}

/// A time as the state writes it: RFC 3339, ms, UTC.
pub fn time_text(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// `$XDG_DATA_HOME/orgsql/watch`, else `~/.local/share/orgsql/watch` (where
/// the REPL keeps its history).
pub fn default_dir() -> Option<PathBuf> {
    crate::cli::repl::history_path()
        .and_then(|history| history.parent().map(|dir| dir.join("watch")))
}

/// Take the state folder `dir` (made if missing) for this run, or say who
/// holds it. Released when the file returned is dropped (or the process
/// ends).
pub fn lock(dir: &Path) -> Result<std::fs::File> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot make the state folder {}", dir.display()))?;
    let path = dir.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "another orgsql watch is using the state folder {}: stop it, or give this one \
             another --state",
            dir.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("cannot lock {}", path.display()))
        }
    }
}

impl WatchState {
    /// The state in `dir`; a folder without one is a first run.
    pub fn read(dir: &Path) -> Result<Self> {
        let path = dir.join(STATE_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| {
                format!(
                    "{}: not a state written by orgsql watch; name another --state folder",
                    path.display()
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// Write it into `dir` atomically: a stop midway leaves the last state.
    pub fn write(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot make the state folder {}", dir.display()))?;
        let path = dir.join(STATE_FILE);
        let bytes = serde_json::to_vec_pretty(self)?;
        crate::cli::files::write_atomically(&path, |mut file| {
            use std::io::Write;
            file.write_all(&bytes)
                .and_then(|()| file.sync_all())
                .map_err(crate::cli::files::io_at(&path))
        })
        .map_err(|e| anyhow::anyhow!("{}", crate::error::message(&e)))
    }
}
