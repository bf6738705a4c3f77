//! `recent_events` and `recent_event_context`: the events of this poll and
//! of the earlier polls processed within `WINDOW` before the newest, so a
//! rule can count over several polls (a burst of grants read by two polls,
//! or by two `--once` runs from cron).
//!
//! They are kept in the state folder, one file per organization
//! (`recent/<org id>.json`), as one page of the stream: the events as the
//! stream gave them, so the catalog's decoders read them as they read a
//! page. The file is replaced atomically after each poll that brought
//! events; an event read again (a run that stopped before its state was
//! written reads its poll again) replaces its earlier copy, so no event
//! counts twice.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::state::parse_time;

/// How far before the newest processing time the kept events reach.
pub const WINDOW: Duration = Duration::hours(24);

/// The folder of the state that holds the files.
pub const RECENT_DIR: &str = "recent";

/// A page of the stream: what the file holds, and what decoders read.
#[derive(Serialize, Deserialize, Default)]
pub struct Page {
    pub data: Vec<Value>,
}

/// The file of `org_id`'s recent events in the state folder `dir`.
fn path(dir: &Path, org_id: &str) -> Result<PathBuf> {
    // The organization id names a file: nothing that leaves the folder.
    if org_id.is_empty()
        || !org_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        bail!("organization id {org_id:?} cannot name a file of the state folder");
    }
    Ok(dir.join(RECENT_DIR).join(format!("{org_id}.json")))
}

/// When the stream processed `event` (its `attributes.processedAt`).
fn processed_at(event: &Value) -> Option<DateTime<Utc>> {
    event
        .pointer("/attributes/processedAt")
        .and_then(Value::as_str)
        .and_then(parse_time)
}

pub fn id(event: &Value) -> Option<&str> {
    event.get("id").and_then(Value::as_str)
}

/// Add the events of this poll's pages (`bodies`, as the stream answered)
/// to those kept for `org_id` in `dir`, drop those processed more than
/// `WINDOW` before the newest, and write the rest back. Returns the recent
/// events, this poll's included, as one page for the decoders.
pub fn update(dir: &Path, org_id: &str, bodies: &[bytes::Bytes]) -> Result<Vec<u8>> {
    let path = path(dir, org_id)?;
    let mut fresh = Vec::new();
    for body in bodies {
        let page: Page = serde_json::from_slice(body)
            .context("a page of the events stream without a data array")?;
        fresh.extend(page.data);
    }
    let kept = match std::fs::read(&path) {
        Ok(bytes) => {
            serde_json::from_slice::<Page>(&bytes)
                .with_context(|| {
                    format!(
                        "{}: not written by orgsql watch; remove it (the rules then count only \
                     the events read from now on)",
                        path.display()
                    )
                })?
                .data
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let newest = kept.iter().chain(&fresh).filter_map(processed_at).max();
    let within = |event: &Value| match (processed_at(event), newest) {
        (Some(at), Some(newest)) => at >= newest - WINDOW,
        // Without a processing time it cannot be placed: this poll's
        // tables have it, the file does not keep it.
        _ => false,
    };
    let kept: Vec<Value> = kept.into_iter().filter(within).collect();
    // This poll's events are all in the tables, a late one older than the
    // window too, as they are in `new_events`.
    let recent = merge(kept, fresh);
    let stored = Page {
        data: recent.iter().filter(|e| within(e)).cloned().collect(),
    };
    write(&path, &serde_json::to_vec(&stored)?)?;
    Ok(serde_json::to_vec(&Page { data: recent })?)
}

/// The kept events, then this poll's; an event read again replaces its
/// earlier copy. Events without an id are kept as they are.
fn merge(kept: Vec<Value>, fresh: Vec<Value>) -> Vec<Value> {
    let fresh_ids: HashSet<String> = fresh.iter().filter_map(id).map(str::to_string).collect();
    let mut seen = HashSet::new();
    let mut merged: Vec<Value> = kept
        .into_iter()
        .filter(|e| id(e).is_none_or(|id| !fresh_ids.contains(id)))
        .collect();
    // Within one poll too: the last copy of an event stands.
    let mut newest_first = Vec::new();
    for event in fresh.into_iter().rev() {
        if id(&event).is_none_or(|id| seen.insert(id.to_string())) {
            newest_first.push(event);
        }
    }
    merged.extend(newest_first.into_iter().rev());
    merged
}

/// Replace the file atomically: a stop midway leaves the last one.
fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(folder) = path.parent() {
        std::fs::create_dir_all(folder)
            .with_context(|| format!("cannot make the folder {}", folder.display()))?;
    }
    crate::cli::files::write_atomically(path, |mut file| {
        use std::io::Write;
        file.write_all(bytes)
            .and_then(|()| file.sync_all())
            .map_err(crate::cli::files::io_at(path))
    })
    .map_err(|e| anyhow!("{}", crate::error::message(&e)))
}
