//! Writing results to files, never half: `COPY ... TO`, `--output` and
//! `orgsql export` write beside the target and rename onto it only when the
//! whole result is in, so a failed query leaves no partial file and an
//! existing file untouched.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use datafusion::arrow::array::{Array, RecordBatch, UInt64Array};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::error::{DataFusionError, Result};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::{DFParser, Statement};
use datafusion::sql::sqlparser::dialect::GenericDialect;

use super::output::{self, Format};
use crate::snapshot::{ColumnEntry, MANIFEST, Manifest, TableEntry};
use crate::tables::TableInfo;

/// A path to write instead of `target`, renamed onto it by `commit`; removed
/// when dropped uncommitted.
pub struct AtomicPath {
    temp: PathBuf,
    target: PathBuf,
    committed: bool,
}

impl AtomicPath {
    /// The temporary path sits in the target's directory (so the rename is
    /// atomic) and keeps its extension (DataFusion infers formats from it).
    pub fn new(target: &Path) -> std::io::Result<Self> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let name = target.file_name().ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{} names no file", target.display()),
            )
        })?;
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut temp_name = format!(
            ".{}.orgsql-{}-{n}",
            name.to_string_lossy(),
            std::process::id()
        );
        if let Some(ext) = target.extension() {
            temp_name.push('.');
            temp_name.push_str(&ext.to_string_lossy());
        }
        let dir = target.parent().filter(|d| !d.as_os_str().is_empty());
        let temp = dir.map_or_else(|| PathBuf::from(&temp_name), |d| d.join(&temp_name));
        Ok(Self {
            temp,
            target: target.to_path_buf(),
            committed: false,
        })
    }

    pub fn temp(&self) -> &Path {
        &self.temp
    }

    /// Put the finished file (or directory) in place of the target.
    pub fn commit(mut self) -> std::io::Result<()> {
        if self.temp.is_dir() && self.target.is_dir() {
            // A directory cannot be renamed onto a full one: swap them.
            let old = self.temp.with_extension("old");
            std::fs::rename(&self.target, &old)?;
            std::fs::rename(&self.temp, &self.target)?;
            let _ = std::fs::remove_dir_all(old);
        } else {
            std::fs::rename(&self.temp, &self.target)?;
        }
        self.committed = true;
        Ok(())
    }
}

impl Drop for AtomicPath {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.temp);
            let _ = std::fs::remove_dir_all(&self.temp);
        }
    }
}

/// Plan and run one statement, returning its result. A `COPY ... TO` a local
/// path writes atomically.
pub async fn execute(
    ctx: &SessionContext,
    statement: Statement,
) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    match statement {
        Statement::CopyTo(mut copy) if is_local(&copy.target) => {
            let target = copy
                .target
                .strip_prefix("file://")
                .unwrap_or(&copy.target)
                .to_string();
            let directory = target.ends_with('/');
            let atomic = AtomicPath::new(Path::new(target.trim_end_matches('/')))
                .map_err(|e| DataFusionError::Execution(format!("COPY TO {target}: {e}")))?;
            copy.target = atomic.temp().display().to_string();
            if directory {
                copy.target.push('/');
            }
            let result = run(ctx, Statement::CopyTo(copy)).await?;
            atomic
                .commit()
                .map_err(|e| DataFusionError::Execution(format!("COPY TO {target}: {e}")))?;
            Ok(result)
        }
        other => run(ctx, other).await,
    }
}

async fn run(ctx: &SessionContext, statement: Statement) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let plan = ctx.state().statement_to_plan(statement).await?;
    let frame = ctx.execute_logical_plan(plan).await?;
    let schema = frame.schema().inner().clone();
    let batches = frame.collect().await?;
    Ok((schema, batches))
}

/// A path on this machine, not an object store URL.
fn is_local(target: &str) -> bool {
    target.starts_with("file://") || !target.contains("://")
}

/// An I/O error, naming the path it happened at.
pub(crate) fn io_at(path: &Path) -> impl Fn(std::io::Error) -> DataFusionError + Copy + '_ {
    move |e| DataFusionError::Execution(format!("{}: {e}", path.display()))
}

/// Write the file `path` through `write`, atomically.
pub fn write_atomically(path: &Path, write: impl FnOnce(File) -> Result<()>) -> Result<()> {
    let atomic = AtomicPath::new(path).map_err(io_at(path))?;
    write(File::create(atomic.temp()).map_err(io_at(path))?)?;
    atomic.commit().map_err(io_at(path))
}

/// `--output FILE`: the result in `format` (Parquet too), written atomically.
pub fn write_file(
    path: &Path,
    format: Format,
    schema: &SchemaRef,
    batches: &[RecordBatch],
) -> Result<()> {
    write_atomically(path, |file| {
        match format {
            Format::Parquet => {
                let mut writer = ArrowWriter::try_new(file, schema.clone(), None)?;
                for batch in batches {
                    writer.write(batch)?;
                }
                writer.close()?;
            }
            other => {
                let mut out = BufWriter::new(file);
                output::print(&mut out, other, schema, batches, None)?;
                out.flush().map_err(io_at(path))?;
            }
        }
        Ok(())
    })
}

/// What `orgsql export` writes.
pub struct ExportOptions {
    pub out: PathBuf,
    /// Only these tables; every table when `None`.
    pub tables: Option<Vec<String>>,
    /// Only events (and their context) at or after this time.
    pub since: Option<String>,
}

/// Tables an export can write: every organization table (not the view,
/// which a snapshot rebuilds, nor the session's own request log).
fn exportable() -> Vec<&'static str> {
    crate::tables::catalog()
        .into_iter()
        .filter(|t| t.exported())
        .map(|t| t.name)
        .collect()
}

/// Write each table as Parquet into `options.out` (events partitioned by day,
/// hive-style), then `manifest.json`. Each file appears whole or not at all.
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
    std::fs::create_dir_all(&options.out).map_err(io)?;
    let exported_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let previous = Manifest::read(&options.out).ok();
    let mut entries = Vec::new();
    let mut audit_done = false;
    for name in tables.iter().copied() {
        let Some(table) = crate::tables::find(name) else {
            continue;
        };
        if table.audit_log() && audit_done {
            continue; // One pass over the audit log wrote them all.
        }
        let started = client.request_count();
        let progress = super::progress::Progress::start(client);
        let result = if table.audit_log() {
            audit_done = true;
            let wanted: Vec<TableInfo> = tables
                .iter()
                .filter_map(|t| crate::tables::find(t))
                .filter(TableInfo::audit_log)
                .collect();
            export_audit_log(ctx, client, options, previous.as_ref(), &wanted, started).await
        } else {
            export_table(ctx, client, options, name, started)
                .await
                .map(|entry| vec![entry])
        };
        progress.finish();
        for entry in result? {
            writeln!(
                log,
                "{}: {} rows, {} requests -> {}",
                entry.name, entry.rows, entry.requests, entry.path
            )
            .map_err(io)?;
            entries.push(entry);
        }
    }
    let manifest = Manifest {
        org_id: client.org_id().to_string(),
        exported_at,
        orgsql_version: env!("CARGO_PKG_VERSION").to_string(),
        tables: entries,
    };
    let text = serde_json::to_string_pretty(&manifest)
        .map_err(|e| DataFusionError::Execution(format!("manifest: {e}")))?;
    let target = options.out.join(MANIFEST);
    write_atomically(&target, |mut file| {
        writeln!(file, "{text}").map_err(io_at(&target))
    })?;
    Ok(manifest)
}

/// The audit-log tables wanted, from one pass over the audit log; added to
/// the folder's earlier export when it holds each of them from the same
/// stream position (or from before the stream: no position, events with a
/// newest time), and no `--since` asks for a window.
async fn export_audit_log(
    ctx: &SessionContext,
    client: &crate::api::Client,
    options: &ExportOptions,
    previous: Option<&Manifest>,
    wanted: &[TableInfo],
    started: usize,
) -> Result<Vec<TableEntry>> {
    let out = &options.out;
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
            path.is_dir() || path.with_extension("parquet").is_file()
        });
    let previous_entry = first.filter(|_| resumable);
    let previous_at = previous.map(|m| m.exported_at.as_str()).unwrap_or_default();
    let written = super::audit_log::export(
        ctx,
        client,
        out,
        options.since.as_deref(),
        previous_entry.map(|e| (e, previous_at)),
        wanted,
    )
    .await
    .map_err(|e| e.context("exporting the audit log"))?;
    let requests = client.requests_since(started).len() as u64;
    let mut entries = Vec::new();
    let position = written.position;
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
        let mut entry =
            table_entry(ctx, written.name, written.name.to_string(), rows, requests).await?;
        entry.newest = newest;
        entry.stream = Some(position.clone());
        entries.push(entry);
    }
    Ok(entries)
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
    let copy = format!("COPY {name} TO '{}'", options.out.join(&path).display());
    let statement = DFParser::parse_sql_with_dialect(&copy, &GenericDialect {})?
        .pop_front()
        .ok_or_else(|| DataFusionError::Internal(format!("no statement in {copy}")))?;
    let (_, batches) = execute(ctx, statement)
        .await
        .map_err(|e| e.context(format!("exporting {name}")))?;
    let rows = batches
        .first()
        .and_then(|b| b.column(0).as_any().downcast_ref::<UInt64Array>())
        .map_or(0, |counts| counts.value(0));
    table_entry(ctx, name, path, rows, requests_of(client, name, started)).await
}

/// The manifest's entry for a table just written.
async fn table_entry(
    ctx: &SessionContext,
    name: &str,
    path: String,
    rows: u64,
    requests: u64,
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
    Ok(TableEntry {
        name: name.to_string(),
        path,
        rows,
        requests,
        newest: None,
        stream: None,
        columns,
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
