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
//!   last (readers of a prefix read the files the manifest lists).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use datafusion::error::{DataFusionError, Result};

use futures::{StreamExt, TryStreamExt};

use super::ExportOptions;
use super::folder::export_orgs;
use crate::session::Session;
use crate::snapshot::{Contents, MANIFEST, Manifest};
use crate::storage::{Location, Remote};

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
/// uploaded. Says what it wrote.
pub async fn export(
    session: &Session,
    remote: &Remote,
    tables: Option<Vec<String>>,
    since: Option<String>,
    log: &mut dyn Write,
) -> Result<String> {
    let staging = Staging::new()?;
    let mut earlier = seed(remote, &staging.0).await?;
    let staged = ExportOptions {
        out: staging.0.clone(),
        tables,
        since,
        published: Some(remote.clone()),
    };
    export_orgs(session, &staged, log).await?;
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
        tables = publish(&folder, &target, earlier.remove(&relative), log).await?;
    }
    Ok(match contents {
        Contents::One(_) => format!("{tables} tables to {}", remote.url()),
        Contents::Several(top) => {
            // Each organization's folder is complete: now the list of them.
            let bytes = std::fs::read(staging.0.join(MANIFEST))
                .map_err(crate::cli::files::io_at(&staging.0))?;
            remote.put(MANIFEST, bytes).await?;
            format!(
                "{} organizations to {}, a folder each",
                top.orgs.len(),
                remote.url()
            )
        }
    })
}

/// Copy the prefix's manifests (the top one, and each organization's)
/// into `staging`, so the export there adds to what the prefix holds; the
/// organizations' manifests as they were, by folder (`""` for one
/// organization's export), for the upload to compare with.
async fn seed(remote: &Remote, staging: &Path) -> Result<BTreeMap<String, Manifest>> {
    // Before any API work: the bucket exists and may be listed.
    remote.probe().await?;
    let mut earlier = BTreeMap::new();
    let Some(top) = remote.get(MANIFEST).await? else {
        return Ok(earlier);
    };
    let io = crate::cli::files::io_at(staging);
    std::fs::write(staging.join(MANIFEST), &top).map_err(io)?;
    match Contents::read(&Location::Folder(staging.to_path_buf())).await {
        Ok(Contents::One(manifest)) => {
            earlier.insert(String::new(), manifest);
        }
        Ok(Contents::Several(several)) => {
            for org in &several.orgs {
                if let Some(bytes) = remote.join(&org.path).get(MANIFEST).await? {
                    let folder = staging.join(&org.path);
                    std::fs::create_dir_all(&folder).map_err(io)?;
                    std::fs::write(folder.join(MANIFEST), &bytes).map_err(io)?;
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
    target: &Remote,
    before: Option<Manifest>,
    log: &mut dyn Write,
) -> Result<usize> {
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
        // Several at a time: each is a request (or a few) of its own.
        let uploads = new
            .iter()
            .map(|file| target.upload(&file.path, folder.join(&file.path)));
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
            target
                .put(MANIFEST, json(&committed)?)
                .await
                .map_err(|e| stopped(e, target, &done))?;
        }
    }
    // The staged manifest is the whole truth now (skipped tables too).
    target.put(MANIFEST, json(&staged)?).await?;
    // Files of earlier (or stopped) runs that the manifest does not list,
    // in the folders of tables it lists files for: best effort, said when
    // it fails. (One export into a prefix at a time: a second writer's files
    // would look the same.)
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
