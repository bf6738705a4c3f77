//! `orgsql export --out s3://bucket/prefix/` (or `gs://`, `az://`): the
//! export is written as to a folder, in a private staging folder, then
//! uploaded with the guarantees of a local export:
//! - the prefix's manifest is read first, so a re-export adds to it (the
//!   audit log from the stream's cursor) and fetches only what is new;
//! - each table's files are uploaded (each object appears whole, or not at
//!   all), then the manifest is rewritten to list them: a reader that
//!   trusts the manifest never sees part of an export, and one that stops
//!   midway leaves the manifest true to what is there;
//! - files of earlier runs that the manifest no longer lists are removed
//!   last (readers of a prefix read the files the manifest lists);
//! - one writer at a time: every manifest and whole-table file is written
//!   only if it is still as this export read it at the start (or as it
//!   wrote it since), so a second export into the prefix stops with an
//!   error instead of mixing its files with the first's;
//! - Ctrl-C (or SIGTERM) stops the uploads, each aborted: no parts are left.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use datafusion::error::{DataFusionError, Result};

use futures::{StreamExt, TryStreamExt};

use super::ExportOptions;
use super::folder::export_orgs;
use crate::session::Session;
use crate::snapshot::{Contents, FileDigest, MANIFEST, Manifest};
use crate::storage::{Location, Remote, UpdateVersion};

/// Files uploaded at once.
const UPLOADS_IN_FLIGHT: usize = 8;

/// A private folder for the staged export, removed when dropped.
struct Staging(PathBuf);

impl Staging {
    fn new() -> Result<Self> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "orgsql-export-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let mut builder = std::fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .create(&path)
            .map_err(crate::cli::files::io_at(&path))?;
        Ok(Self(path))
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Export into the prefix `remote`: staged in a local folder, then
/// uploaded, until `stop` says to stop. Says what it wrote.
pub async fn export(
    session: &Session,
    remote: &Remote,
    tables: Option<Vec<String>>,
    since: Option<String>,
    log: &mut dyn Write,
    stop: &tokio::sync::watch::Receiver<bool>,
) -> Result<String> {
    let staging = Staging::new()?;
    let mut seen = Seen::default();
    let mut earlier = seed(remote, &staging.0, &mut seen).await?;
    let staged = ExportOptions {
        out: staging.0.clone(),
        tables,
        since,
        published: Some(remote.clone()),
    };
    // Nothing is written to the bucket yet: stopping here leaves it as it was.
    tokio::select! {
        exported = export_orgs(session, &staged, log) => exported?,
        () = crate::storage::interrupted(stop) => {
            return Err(DataFusionError::Execution(format!(
                "the export to {} was interrupted before any upload: the prefix is as it was",
                remote.url()
            )));
        }
    };
    let staged_at = Location::Folder(staging.0.clone());
    let contents = Contents::read(&staged_at).await?;
    let mut tables = 0;
    // The folders as the manifest names them, each checked to be inside.
    for (_, relative, _) in contents.org_dirs(&staged_at)? {
        let folder = staging.0.join(&relative);
        let target = if relative.is_empty() {
            remote.clone()
        } else {
            remote.join(&relative)
        };
        let before = earlier.remove(&relative);
        let to = Upload {
            target: &target,
            prefix: remote,
            stop,
        };
        tables = publish(&folder, &to, before, &mut seen, log).await?;
    }
    Ok(match contents {
        Contents::One(_) => format!("{tables} tables to {}", remote.url()),
        Contents::Several(top) => {
            // Each organization's folder is complete: now the list of them.
            let bytes = std::fs::read(staging.0.join(MANIFEST))
                .map_err(crate::cli::files::io_at(&staging.0))?;
            seen.put(remote, MANIFEST, bytes, remote).await?;
            format!(
                "{} organizations to {}, a folder each",
                top.orgs.len(),
                remote.url()
            )
        }
    })
}

/// Where one organization's files go: its folder, in the prefix exported
/// to, until `stop` says to stop.
struct Upload<'a> {
    target: &'a Remote,
    prefix: &'a Remote,
    stop: &'a tokio::sync::watch::Receiver<bool>,
}

/// What the prefix held when this export read it, by URL: the version of
/// each manifest and each whole-table file (`None`: there was none), then
/// of what this export wrote over them. Each write over one of them is
/// conditioned on it: a second export into the prefix makes the loser's
/// write fail, and it stops before listing anything or writing over a
/// file the winner's manifest lists. (Audit-log files have names unique to
/// their run: no two writers meet there.)
#[derive(Default)]
struct Seen {
    versions: BTreeMap<String, UpdateVersion>,
    /// The folders listed: a file of one, absent above, was absent.
    listed: std::collections::BTreeSet<String>,
}

impl Seen {
    /// The files directly in `folder` (its manifest and whole-table files),
    /// in one listing: read before its manifest, so that no file is newer
    /// than the manifest read.
    async fn list(&mut self, folder: &Remote) -> Result<()> {
        if self.listed.insert(folder.url().to_string()) {
            for (name, version) in folder.versions().await? {
                self.versions.insert(folder.location(&name), version);
            }
        }
        Ok(())
    }

    /// Write `bytes` as `relative` in `folder`, only if it is as last seen.
    async fn put(
        &mut self,
        folder: &Remote,
        relative: &str,
        bytes: Vec<u8>,
        prefix: &Remote,
    ) -> Result<()> {
        self.list(folder).await?;
        let url = folder.location(relative);
        match folder
            .put_if(relative, bytes, self.versions.get(&url))
            .await?
        {
            Some(version) => {
                self.versions.insert(url, version);
                Ok(())
            }
            None => Err(another_writer(&url, prefix)),
        }
    }

    /// Whether the manifest of `folder` is still as last seen (before a
    /// table's uploads: a loser stops before sending its files).
    async fn unchanged(&mut self, folder: &Remote, prefix: &Remote) -> Result<()> {
        self.list(folder).await?;
        let url = folder.location(MANIFEST);
        let now = folder.version(MANIFEST).await?;
        let same = match (self.versions.get(&url), &now) {
            (None, None) => true,
            (Some(seen), Some(now)) => match (&seen.version, &now.version) {
                // A generation (GCS) says it; an ETag's form can differ
                // between a write's answer and a read's there.
                (Some(seen), Some(now)) => seen == now,
                _ => seen.e_tag == now.e_tag,
            },
            _ => false,
        };
        match same {
            true => Ok(()),
            false => Err(another_writer(&url, prefix)),
        }
    }
}

/// The error of the export that lost a race with another one.
fn another_writer(url: &str, prefix: &Remote) -> DataFusionError {
    DataFusionError::Execution(format!(
        "{url} was written by another export since this one read {prefix}: one export into a \
         prefix at a time. This one stopped without writing over it: the manifest and the \
         files it lists are as the other export left them. Export again once the other has \
         finished (it adds to what that one wrote).",
        prefix = prefix.url()
    ))
}

/// Copy the prefix's manifests (the top one, and each organization's)
/// into `staging`, so the export there adds to what the prefix holds; the
/// organizations' manifests as they were, by folder (`""` for one
/// organization's export), for the upload to compare with. Each folder's
/// versions are `seen` first.
async fn seed(
    remote: &Remote,
    staging: &Path,
    seen: &mut Seen,
) -> Result<BTreeMap<String, Manifest>> {
    // Before any API work: the bucket exists and may be listed.
    seen.list(remote).await?;
    let mut earlier = BTreeMap::new();
    let Some((top, version)) = remote.get_versioned(MANIFEST).await? else {
        return Ok(earlier);
    };
    seen.versions.insert(remote.location(MANIFEST), version);
    let io = crate::cli::files::io_at(staging);
    std::fs::write(staging.join(MANIFEST), &top).map_err(io)?;
    match Contents::read(&Location::Folder(staging.to_path_buf())).await {
        Ok(Contents::One(manifest)) => {
            earlier.insert(String::new(), manifest);
        }
        Ok(Contents::Several(several)) => {
            for org in &several.orgs {
                let folder = remote.join(&org.path);
                seen.list(&folder).await?;
                if let Some((bytes, version)) = folder.get_versioned(MANIFEST).await? {
                    seen.versions.insert(folder.location(MANIFEST), version);
                    let staged = staging.join(&org.path);
                    std::fs::create_dir_all(&staged).map_err(io)?;
                    std::fs::write(staged.join(MANIFEST), &bytes).map_err(io)?;
                    if let Ok(manifest) = serde_json::from_slice(&bytes) {
                        earlier.insert(org.path.clone(), manifest);
                    }
                }
            }
        }
        Err(_) => {}
    }
    Ok(earlier)
}

fn json(manifest: &Manifest) -> Result<Vec<u8>> {
    serde_json::to_vec_pretty(manifest)
        .map_err(|e| DataFusionError::Execution(format!("manifest: {e}")))
}

/// Upload one organization's staged export (`before`: the manifest the
/// prefix held): table by table, its new files then the manifest; then
/// remove what no manifest lists. The tables.
async fn publish(
    folder: &Path,
    to: &Upload<'_>,
    before: Option<Manifest>,
    seen: &mut Seen,
    log: &mut dyn Write,
) -> Result<usize> {
    let target = to.target;
    let staged = Manifest::read(&Location::Folder(folder.to_path_buf())).await?;
    // An earlier manifest of another organization says nothing about this
    // one: start from none (as a local export does).
    let before = before.filter(|b| b.org_id == staged.org_id);
    let mut committed = before.clone().unwrap_or_else(|| Manifest {
        tables: Vec::new(),
        skipped: Vec::new(),
        ..staged.clone()
    });
    committed.exported_at.clone_from(&staged.exported_at);
    committed.as_of.clone_from(&staged.as_of);
    committed.orgsql_version.clone_from(&staged.orgsql_version);
    let mut done: Vec<&str> = Vec::new();
    for (number, table) in staged.tables.iter().enumerate() {
        // Already there: listed by the earlier manifest with this digest,
        // and present with this size (an object can have been deleted).
        let listed: BTreeMap<&str, &str> = before
            .iter()
            .flat_map(|m| m.tables.iter().filter(|t| t.name == table.name))
            .flat_map(|t| t.files.iter().map(|f| (f.path.as_str(), f.sha256.as_str())))
            .collect();
        let sizes: BTreeMap<String, u64> = if listed.is_empty() {
            BTreeMap::new()
        } else if table.path.ends_with(".parquet") {
            let size = target.size(&table.path).await?;
            size.map(|size| (table.path.clone(), size))
                .into_iter()
                .collect()
        } else {
            target.list(&table.path).await?.into_iter().collect()
        };
        let new: Vec<_> = table
            .files
            .iter()
            .filter(|f| {
                listed.get(f.path.as_str()) != Some(&f.sha256.as_str())
                    || sizes.get(&f.path) != Some(&f.bytes)
            })
            .collect();
        // A file this run did not write (its table was not exported) that
        // is gone from the bucket cannot be put back from here.
        if let Some(lost) = new.iter().find(|f| !folder.join(&f.path).is_file()) {
            return Err(stopped(
                DataFusionError::Execution(format!(
                    "{}: listed by the manifest but not in the bucket, and this run did not \
                     export {}: export it again with --tables {}",
                    target.location(&lost.path),
                    table.name,
                    table.name
                )),
                target,
                &done,
            ));
        }
        seen.unchanged(target, to.prefix)
            .await
            .map_err(|e| stopped(e, target, &done))?;
        // A whole-table file has one name in every run: written over only
        // if it is as seen.
        let (whole, parts): (Vec<&FileDigest>, Vec<&FileDigest>) =
            new.iter().copied().partition(|f| f.path == table.path);
        for file in whole {
            let bytes =
                std::fs::read(folder.join(&file.path)).map_err(crate::cli::files::io_at(folder))?;
            seen.put(target, &file.path, bytes, to.prefix)
                .await
                .map_err(|e| stopped(e, target, &done))?;
        }
        // Several at a time: each is a request (or a few) of its own.
        let uploads = parts
            .iter()
            .map(|file| target.upload(&file.path, folder.join(&file.path), to.stop));
        futures::stream::iter(uploads)
            .buffer_unordered(UPLOADS_IN_FLIGHT)
            .try_collect::<Vec<()>>()
            .await
            .map_err(|e| stopped(e, target, &done))?;
        match committed.tables.iter_mut().find(|t| t.name == table.name) {
            Some(earlier) => *earlier = table.clone(),
            None => committed.tables.push(table.clone()),
        }
        committed.skipped.retain(|s| s.name != table.name);
        done.push(&table.name);
        writeln!(
            log,
            "{}: {} new file(s) uploaded to {}",
            table.name,
            new.len(),
            target.location(&table.path)
        )
        .map_err(crate::cli::files::io_at(folder))?;
        // The audit log's tables share one stream position: they are
        // listed together, or not at all.
        let audit_log = |name: &str| crate::tables::find(name).is_some_and(|t| t.audit_log());
        let next_too = staged
            .tables
            .get(number + 1)
            .is_some_and(|next| audit_log(&next.name) && audit_log(&table.name));
        if !next_too {
            seen.put(target, MANIFEST, json(&committed)?, to.prefix)
                .await
                .map_err(|e| stopped(e, target, &done))?;
        }
    }
    // The staged manifest is the whole truth now (skipped tables too).
    seen.put(target, MANIFEST, json(&staged)?, to.prefix)
        .await
        .map_err(|e| stopped(e, target, &done))?;
    if *to.stop.borrow() {
        // Complete; what no manifest lists is removed by the next export.
        return Ok(staged.tables.len());
    }
    // Files of earlier (or stopped) runs that the manifest does not list,
    // in the folders of tables it lists files for: best effort, said when
    // it fails. (A second writer's files look the same; its manifest write
    // fails, as this export's last one succeeded.)
    let mut left = 0;
    for table in staged
        .tables
        .iter()
        .filter(|t| !t.path.ends_with(".parquet") && !t.files.is_empty())
    {
        let listed: Vec<&str> = table.files.iter().map(|f| f.path.as_str()).collect();
        let Ok(found) = target.list(&table.path).await else {
            left += 1;
            continue;
        };
        for (path, _) in found {
            if !listed.contains(&path.as_str()) && target.delete(&path).await.is_err() {
                left += 1;
            }
        }
    }
    if left > 0 {
        writeln!(
            log,
            "note: files of earlier exports under {} could not all be listed or removed; the \
             manifest does not list them, so no snapshot reads them (a reader of the bare \
             prefix would)",
            target.url()
        )
        .map_err(crate::cli::files::io_at(folder))?;
    }
    Ok(staged.tables.len())
}

/// An upload that failed: what the prefix holds now.
fn stopped(error: DataFusionError, target: &Remote, done: &[&str]) -> DataFusionError {
    let published = if done.is_empty() {
        "no table of this run".to_string()
    } else {
        format!("this run's {}", done.join(", "))
    };
    error.context(format!(
        "the export to {} stopped; its manifest lists the earlier export and {published}, \
         each whole (files uploaded since are not listed; the next export replaces them)",
        target.url()
    ))
}
