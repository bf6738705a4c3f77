//! `orgsql export`: every table (or some) as Parquet in a folder, with a
//! manifest; the audit log added to, not fetched again.

use std::io::Write;

use datafusion::error::{DataFusionError, Result};
use datafusion::prelude::SessionContext;

use super::ExportOptions;
use crate::cli::exec::execute;
use crate::cli::files::{io_at, write_atomically};
use crate::session::Session;
use crate::snapshot::{
    ColumnEntry, Contents, MANIFEST, Manifest, OrgFolder, OrgsManifest, Skipped, TableEntry,
};
use crate::storage::Location;
use crate::tables::TableInfo;

/// Tables an export can write: every organization table (not the view,
/// which a snapshot rebuilds, nor the session's own request log).
fn exportable() -> Vec<&'static str> {
    crate::tables::catalog()
        .into_iter()
        .filter(TableInfo::exported)
        .map(|t| t.name)
        .collect()
}

/// An export into a folder of the session's organizations: one as `export` writes
/// it; several each into a folder of its own (`org_id=<id>/`, an export of
/// that organization alone, updated in place next time), with a top
/// `manifest.json` listing them. Says what it wrote.
pub async fn export_orgs(
    session: &Session,
    options: &ExportOptions,
    log: &mut dyn Write,
) -> Result<String> {
    let Some(orgs) = session.orgs.as_ref() else {
        return Err(DataFusionError::Plan(
            "export reads the API; a snapshot is already an export".to_string(),
        ));
    };
    // The session's own context, or one per organization: none built twice.
    let contexts = session
        .per_org()
        .await
        .map_err(|e| DataFusionError::External(Box::new(e)))?;
    if let [(_, ctx)] = contexts.as_slice() {
        let manifest = export(ctx, orgs.first(), options, log).await?;
        return Ok(format!(
            "{} tables to {}",
            manifest.tables.len(),
            options.out.display()
        ));
    }
    writable(&options.out, None).await?;
    let exported_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let as_of = as_of(orgs.first());
    let mut folders = Vec::new();
    for (number, (client, (_, ctx))) in orgs.clients().zip(&contexts).enumerate() {
        let org_id = client.org_id();
        let name = orgs.names().get(number).cloned();
        let path = format!("org_id={org_id}");
        let named = name.as_ref().map(|n| format!(" ({n})")).unwrap_or_default();
        writeln!(log, "org {org_id}{named}:").map_err(io_at(&options.out))?;
        let per_org = ExportOptions {
            out: options.out.join(&path),
            tables: options.tables.clone(),
            since: options.since.clone(),
            published: options.published.as_ref().map(|r| r.join(&path)),
        };
        export(ctx, client, &per_org, log)
            .await
            .map_err(|e| e.context(format!("org {org_id}{named}")))?;
        folders.push(OrgFolder {
            org_id: org_id.to_string(),
            name,
            path,
        });
    }
    let top = OrgsManifest {
        exported_at,
        as_of: Some(as_of),
        orgsql_version: env!("CARGO_PKG_VERSION").to_string(),
        orgs: folders,
    };
    write_manifest(&options.out, &top)?;
    Ok(format!(
        "{} organizations to {}, a folder each",
        top.orgs.len(),
        options.out.display()
    ))
}

/// Write each table as Parquet into `options.out` (the audit log partitioned
/// by month, hive-style, closed months compacted), then `manifest.json`. Each file appears whole or not at all.
/// Reports a line per table to `log`.
pub async fn export(
    ctx: &SessionContext,
    client: &crate::api::Client,
    options: &ExportOptions,
    log: &mut dyn Write,
) -> Result<Manifest> {
    let all = exportable();
    let tables: Vec<&str> = match &options.tables {
        None => all.clone(),
        Some(wanted) => wanted
            .iter()
            .map(|name| {
                all.iter().copied().find(|t| t == name).ok_or_else(|| {
                    DataFusionError::Plan(format!(
                        "--tables: no table {name}; tables: {}",
                        all.join(", ")
                    ))
                })
            })
            .collect::<Result<_>>()?,
    };
    let io = io_at(&options.out);
    let previous = match writable(&options.out, Some(client.org_id())).await? {
        Some(Contents::One(manifest)) => Some(manifest),
        _ => None,
    };
    if let Some(previous) = &previous {
        refuse_unlisted(&options.out, previous, &tables)?;
    }
    std::fs::create_dir_all(&options.out).map_err(io)?;
    let exported_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let as_of = as_of(client);
    // The manifest says what the folder holds at every moment: tables this
    // run does not export keep their earlier entries, and it is written
    // again after each table, so a run that stops half way (an error,
    // Ctrl-C) leaves it true to the files, the audit log's stream position
    // included (else the next run would add those events again).
    let mut manifest = Manifest {
        org_id: client.org_id().to_string(),
        exported_at,
        as_of: Some(as_of.clone()),
        orgsql_version: env!("CARGO_PKG_VERSION").to_string(),
        tables: Vec::new(),
        skipped: Vec::new(),
    };
    if let Some(previous) = previous.as_ref().filter(|p| p.org_id == manifest.org_id) {
        manifest.tables = previous.tables.clone();
        manifest.skipped = previous.skipped.clone();
    }
    let mut audit_done = false;
    for name in tables.iter().copied() {
        let Some(table) = crate::tables::find(name) else {
            continue;
        };
        if table.audit_log() && audit_done {
            continue; // One pass over the audit log wrote them all.
        }
        let started = client.request_count();
        let progress = crate::cli::progress::Progress::start(&client.into());
        let result = if table.audit_log() {
            audit_done = true;
            let wanted: Vec<TableInfo> = tables
                .iter()
                .filter_map(|t| crate::tables::find(t))
                .filter(TableInfo::audit_log)
                .collect();
            export_audit_log(
                ctx,
                client,
                options,
                previous.as_ref(),
                &wanted,
                started,
                &as_of,
                log,
            )
            .await
        } else {
            export_read_whole(ctx, client, options, name, started, log)
                .await
                .map(|entry| vec![entry])
        };
        progress.finish();
        let result = match result {
            // A table the keys cannot read (it needs a scoped key): left
            // out, said, and recorded; the rest is still written.
            Err(e) if refused_for_scope(&e) => {
                let reason = crate::error::message(&e);
                writeln!(
                    log,
                    "{name}: skipped: {}",
                    crate::cli::output::visible(&reason)
                )
                .map_err(io)?;
                manifest.tables.retain(|t| t.name != name);
                manifest.skipped.retain(|t| t.name != name);
                manifest.skipped.push(Skipped {
                    name: name.to_string(),
                    reason,
                });
                write_manifest(&options.out, &manifest)?;
                continue;
            }
            other => other,
        };
        for entry in result? {
            let read = entry
                .completeness
                .as_ref()
                .map(|c| format!(" ({})", c.described()))
                .unwrap_or_default();
            writeln!(
                log,
                "{}: {} rows, {} requests -> {}{read}",
                entry.name, entry.rows, entry.requests, entry.path
            )
            .map_err(io)?;
            manifest.skipped.retain(|t| t.name != entry.name);
            match manifest.tables.iter_mut().find(|t| t.name == entry.name) {
                Some(earlier) => *earlier = entry,
                None => manifest.tables.push(entry),
            }
        }
        write_manifest(&options.out, &manifest)?;
        // Listed no more (compacted, or a stopped run's): removed now that
        // the manifest on disk does not name them. In object storage the
        // upload does it.
        if table.audit_log() && options.published.is_none() {
            for entry in manifest
                .tables
                .iter()
                .filter(|t| crate::tables::find(&t.name).is_some_and(|t| t.audit_log()))
            {
                super::compact::tidy(&options.out, entry, log)?;
            }
        }
    }
    Ok(manifest)
}

/// Whether an export of `org` (of several organizations: `None`) may write
/// into `out`: a folder that is absent, empty, or an export of the same
/// kind by orgsql, which it updates (its manifest is returned). Files it
/// did not write are never replaced, nor another organization's export.
async fn writable(out: &std::path::Path, org: Option<&str>) -> Result<Option<Contents>> {
    let Ok(mut entries) = std::fs::read_dir(out) else {
        return Ok(None); // Absent: created. Anything else is said on creating it.
    };
    if entries.next().is_none() {
        return Ok(None);
    }
    let refused = |what: String| {
        Err(DataFusionError::Plan(format!(
            "{}: {what}; export into a new or empty folder, or one an earlier export of \
             the same organizations wrote",
            out.display()
        )))
    };
    match (
        Contents::read(&Location::Folder(out.to_path_buf())).await,
        org,
    ) {
        (Ok(Contents::One(manifest)), Some(org)) if manifest.org_id == org => {
            Ok(Some(Contents::One(manifest)))
        }
        (Ok(Contents::Several(top)), None) => Ok(Some(Contents::Several(top))),
        (Ok(Contents::One(manifest)), _) => refused(format!(
            "the folder holds the export of organization {}",
            crate::cli::output::visible(&manifest.org_id)
        )),
        (Ok(Contents::Several(_)), Some(_)) => {
            refused("the folder holds an export of several organizations".to_string())
        }
        (Err(_), _) => {
            refused("the folder holds files, and no manifest.json of an orgsql export".to_string())
        }
    }
}

/// Refuses to write a table where `out` holds a file or folder by that
/// name that the earlier export's manifest does not list: an `events/`
/// put beside an export is someone else's, and orgsql replaces only what
/// it wrote.
fn refuse_unlisted(out: &std::path::Path, previous: &Manifest, tables: &[&str]) -> Result<()> {
    for name in tables {
        let Some(table) = crate::tables::find(name) else {
            continue;
        };
        let target = match table.audit_log() {
            true => name.to_string(),
            false => format!("{name}.parquet"),
        };
        let listed = previous.tables.iter().any(|t| t.path == target);
        if !listed && std::fs::symlink_metadata(out.join(&target)).is_ok() {
            return Err(DataFusionError::Plan(format!(
                "{}: the export would write table {name} there, but its manifest.json does not \
                 list it: orgsql did not write it, and replaces only what it wrote. Move it \
                 away, or export into another folder",
                crate::cli::output::visible(&out.join(&target).display().to_string())
            )));
        }
    }
    Ok(())
}

/// The instant an export's data is as of: the organization's fixed clock
/// (the demo's), else now, as the export starts reading.
fn as_of(client: &crate::api::Client) -> String {
    client
        .clock()
        .unwrap_or_else(chrono::Utc::now)
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// `manifest.json` in `dir`, written whole or not at all.
fn write_manifest(dir: &std::path::Path, manifest: &impl serde::Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(manifest)
        .map_err(|e| DataFusionError::Execution(format!("manifest: {e}")))?;
    let target = dir.join(MANIFEST);
    write_atomically(&target, |mut file| {
        writeln!(file, "{text}").map_err(io_at(&target))
    })
}

/// The audit-log tables wanted, from one pass over the audit log; added to
/// the folder's earlier export when it holds each of them from the same
/// stream position (or from before the stream: no position, events with a
/// newest time), and no `--since` asks for a window.
#[allow(clippy::too_many_arguments)]
async fn export_audit_log(
    ctx: &SessionContext,
    client: &crate::api::Client,
    options: &ExportOptions,
    previous: Option<&Manifest>,
    wanted: &[TableInfo],
    started: usize,
    as_of: &str,
    log: &mut dyn Write,
) -> Result<Vec<TableEntry>> {
    let out = &options.out;
    let as_of = chrono::DateTime::parse_from_rfc3339(as_of)
        .map(|t| t.to_utc())
        .map_err(|e| DataFusionError::Internal(format!("the export's as_of {as_of:?}: {e}")))?;
    let entry = |name: &str| previous.and_then(|m| m.tables.iter().find(|t| t.name == name));
    let earlier: Vec<Option<&TableEntry>> = wanted.iter().map(|t| entry(t.name)).collect();
    let first = earlier.first().copied().flatten();
    let resumable = options.since.is_none()
        && earlier.iter().all(|e| {
            e.is_some_and(|e| match (&e.stream, first) {
                (Some(position), Some(first)) => first.stream.as_ref() == Some(position),
                // From before the stream: only the events knew where they stopped.
                (None, Some(first)) => {
                    first.stream.is_none() && earlier.iter().flatten().any(|e| e.newest.is_some())
                }
                _ => false,
            })
        })
        && wanted.iter().all(|t| {
            let path = out.join(t.name);
            match &options.published {
                // Staged for object storage: only the files the manifest
                // lists are known to be there (an entry without them, as
                // an older orgsql or a copied folder left it, is exported
                // afresh rather than trusted).
                Some(_) => earlier.iter().flatten().all(|e| !e.files.is_empty()),
                None => path.is_dir() || path.with_extension("parquet").is_file(),
            }
        });
    let previous_entry = first.filter(|_| resumable);
    let previous_at = previous.map(|m| m.exported_at.as_str()).unwrap_or_default();
    // An earlier export by this orgsql lists its files: they are the
    // table, whatever else its folder holds (files a compaction replaced,
    // or of a run that stopped before listing them). An older one's folder
    // (no files listed, or no stream position) is the table as it is.
    let listed = |e: &&TableEntry| e.stream.is_some() && !e.files.is_empty() && e.path == e.name;
    let by_list = resumable && earlier.iter().all(|e| e.as_ref().is_some_and(listed));
    // The events exported already: the files the manifest lists in the
    // prefix (which can hold others, of a stopped run) or the folder.
    let exported: Option<Vec<Vec<String>>> = match &options.published {
        Some(remote) => Some(
            earlier
                .iter()
                .map(|e| {
                    e.iter()
                        .flat_map(|e| e.files.iter().map(|f| remote.location(&f.path)))
                        .collect()
                })
                .collect(),
        ),
        None if by_list => Some(
            earlier
                .iter()
                .map(|e| {
                    e.iter()
                        .flat_map(|e| {
                            e.files
                                .iter()
                                .map(|f| out.join(&f.path).display().to_string())
                        })
                        .collect()
                })
                .collect(),
        ),
        None => None,
    };
    let written = super::audit_log::export(
        ctx,
        client,
        out,
        exported.as_deref(),
        options.since.as_deref(),
        previous_entry.map(|e| (e, previous_at)),
        wanted,
    )
    .await
    .map_err(|e| e.context("exporting the audit log"))?;
    let requests = client.requests_since(started).len() as u64;
    let mut entries = Vec::new();
    let position = written.position;
    let written_read = written.read;
    for (i, written) in written.tables.iter().enumerate() {
        let before = earlier[i].filter(|_| resumable);
        let rows = before.map_or(0, |e| e.rows).saturating_add(written.rows);
        let newest = match (
            before.and_then(|e| e.newest.clone()),
            written.newest.clone(),
        ) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        // The pass's requests are counted once, on the first table.
        let requests = if i == 0 { requests } else { 0 };
        // In a folder, added to an export that lists its files: those and
        // the new ones (hashed once, not the whole history again).
        let files = match (&written.added, before) {
            (Some(added), Some(before)) if by_list && options.published.is_none() => {
                let mut files = before.files.clone();
                for path in added {
                    files.extend(crate::snapshot::digests(out, path)?);
                }
                files.sort_by(|a, b| a.path.cmp(&b.path));
                Some(files)
            }
            _ => None,
        };
        let mut entry = table_entry(
            ctx,
            out,
            written.name,
            written.name.to_string(),
            rows,
            requests,
            files,
        )
        .await?;
        entry.newest = newest;
        entry.stream = Some(position.clone());
        entry.stream_read = Some(written_read.clone());
        // Added to in object storage: the earlier files stay listed (only
        // the new ones are in the staging folder). In a folder they are
        // all there, and `table_entry` listed exactly what is: an earlier
        // entry's list may name files that are gone (a legacy single file
        // moved into the folder), and readers trust the list.
        if let Some(before) = before.filter(|_| options.published.is_some()) {
            let mut files = before.files.clone();
            for file in std::mem::take(&mut entry.files) {
                files.retain(|f| f.path != file.path);
                files.push(file);
            }
            files.sort_by(|a, b| a.path.cmp(&b.path));
            entry.files = files;
        }
        let source = match &options.published {
            Some(remote) => super::compact::Source::Bucket(remote),
            None => super::compact::Source::Folder,
        };
        super::compact::compact(out, &mut entry, as_of, source, log).await?;
        entries.push(entry);
    }
    Ok(entries)
}

/// Reads of a table again when the organization changed while it was read
/// (the API's count moved): the last read is kept, and said as changed.
const READ_AGAIN: usize = 2;

/// Export one table (not the audit log) with the record of how it was read;
/// read again, up to `READ_AGAIN` times, while the organization changes
/// under the read. A listing the API counts differently from its rows (the
/// count held still) has failed the table already.
async fn export_read_whole(
    ctx: &SessionContext,
    client: &crate::api::Client,
    options: &ExportOptions,
    name: &str,
    started: usize,
    log: &mut dyn Write,
) -> Result<TableEntry> {
    let mut again = 0;
    loop {
        let listings = client.listing_count();
        let mut entry = export_table(ctx, client, options, name, started).await?;
        let read: Vec<_> = client
            .listings_since(listings)
            .into_iter()
            .filter(|l| l.table_name == name && l.org_id == client.org_id())
            .collect();
        let completeness = crate::api::Completeness::of(&read).pop();
        let changed = completeness
            .as_ref()
            .is_some_and(|c| c.changed_while_read > 0);
        if changed && again < READ_AGAIN {
            again += 1;
            writeln!(
                log,
                "{name}: the organization changed while it was read; reading it again ({again} of {READ_AGAIN})"
            )
            .map_err(io_at(&options.out))?;
            continue;
        }
        entry.completeness = completeness;
        return Ok(entry);
    }
}

/// Export one table (not the audit log) as one Parquet file.
async fn export_table(
    ctx: &SessionContext,
    client: &crate::api::Client,
    options: &ExportOptions,
    name: &str,
    started: usize,
) -> Result<TableEntry> {
    let path = format!("{name}.parquet");
    // A path is an SQL string here: a quote in it is doubled.
    let target = options
        .out
        .join(&path)
        .display()
        .to_string()
        .replace('\'', "''");
    let copy = format!("COPY {name} TO '{target}'");
    let statement = crate::sql::parse(&copy)?
        .pop_front()
        .ok_or_else(|| DataFusionError::Internal(format!("no statement in {copy}")))?;
    let (_, batches) = execute(ctx, statement, false)
        .await
        .map_err(|e| e.context(format!("exporting {name}")))?;
    let rows = crate::cli::exec::copied_rows(&batches);
    let requests = requests_of(client, name, started);
    table_entry(ctx, &options.out, name, path, rows, requests, None).await
}

/// The manifest's entry for a table just written into `out`, with `files`
/// (else every file at `path`, hashed).
async fn table_entry(
    ctx: &SessionContext,
    out: &std::path::Path,
    name: &str,
    path: String,
    rows: u64,
    requests: u64,
    files: Option<Vec<crate::snapshot::FileDigest>>,
) -> Result<TableEntry> {
    let schema = ctx.table_provider(name).await?.schema();
    let columns = schema
        .fields()
        .iter()
        .map(|f| ColumnEntry {
            name: f.name().clone(),
            data_type: f.data_type().to_string(),
            nullable: f.is_nullable(),
        })
        .collect();
    let files = match files {
        Some(files) => files,
        None => crate::snapshot::digests(out, &path)?,
    };
    Ok(TableEntry {
        name: name.to_string(),
        path,
        rows,
        requests,
        newest: None,
        stream: None,
        completeness: None,
        stream_read: None,
        columns,
        files,
    })
}

/// Requests a table's scans sent since log entry `started`.
fn requests_of(client: &crate::api::Client, table: &str, started: usize) -> u64 {
    client
        .requests_since(started)
        .iter()
        .filter(|r| r.table_name == table)
        .count() as u64
}

/// The API refused a request for want of a scoped key (401 or 403 from an
/// API that needs one), or a SCIM table has no directory token to read with.
fn refused_for_scope(error: &DataFusionError) -> bool {
    match error.find_root() {
        DataFusionError::External(e) => e.downcast_ref::<crate::api::ApiError>().is_some_and(|e| {
            matches!(
                e,
                crate::api::ApiError::Status {
                    status: 401 | 403,
                    scope: Some(_),
                    ..
                } | crate::api::ApiError::NoScimToken { .. }
            )
        }),
        _ => false,
    }
}
