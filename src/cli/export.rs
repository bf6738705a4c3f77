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
fn io_at(path: &Path) -> impl Fn(std::io::Error) -> DataFusionError + Copy + '_ {
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
        .map(|t| t.name)
        .filter(|&name| name != "orgsql_requests" && name != crate::tables::role_assignments::NAME)
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
    // The audit log only grows: with events already in the folder (and no
    // --since), fetch only those after the newest one there.
    let previous = Manifest::read(&options.out)
        .ok()
        .and_then(|m| m.tables.into_iter().find(|t| t.name == "events"))
        .filter(|t| t.newest.is_some() && options.out.join(&t.path).is_dir())
        .filter(|_| options.since.is_none());
    let mut entries = Vec::new();
    for name in tables {
        let started = client.request_count();
        let progress = super::progress::Progress::start(client);
        let result = export_table(ctx, client, options, name, &previous, started).await;
        progress.finish();
        let entry = result?;
        writeln!(
            log,
            "{name}: {} rows, {} requests -> {}",
            entry.rows, entry.requests, entry.path
        )
        .map_err(io)?;
        entries.push(entry);
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

/// The newest event time in an exported events folder, as text SQL reads back.
async fn newest_event(ctx: &SessionContext, events: &Path) -> Result<Option<String>> {
    const TABLE: &str = "orgsql_exported_events";
    ctx.register_parquet(TABLE, &format!("{}/", events.display()), Default::default())
        .await?;
    let batches = ctx
        .sql(&format!("SELECT CAST(max(time) AS VARCHAR) FROM {TABLE}"))
        .await?
        .collect()
        .await;
    ctx.deregister_table(TABLE)?;
    let batches = batches?;
    let Some(column) = batches
        .first()
        .map(|b| b.column(0))
        .filter(|c| !c.is_null(0))
    else {
        return Ok(None);
    };
    Ok(Some(
        datafusion::arrow::util::display::array_value_to_string(column, 0)?,
    ))
}

/// Add the events newer than the export already in `out` to its partitions:
/// the time window goes to the API, events already there (same time as the
/// newest) are left out, and new files are moved into place one by one.
async fn append_events(
    ctx: &SessionContext,
    client: &crate::api::Client,
    out: &Path,
    previous: &TableEntry,
    started: usize,
) -> Result<TableEntry> {
    let io = io_at(out);
    let events = out.join(&previous.path);
    let newest = previous
        .newest
        .clone()
        .unwrap_or_default()
        .replace('\'', "''");
    const EXPORTED: &str = "orgsql_exported_events";
    ctx.register_parquet(
        EXPORTED,
        &format!("{}/", events.display()),
        Default::default(),
    )
    .await?;
    let staging = AtomicPath::new(&out.join("events-new")).map_err(io)?;
    let select = format!(
        "SELECT * FROM events WHERE time >= TIMESTAMP '{newest}' \
         AND event_id NOT IN (SELECT event_id FROM {EXPORTED} WHERE time >= TIMESTAMP '{newest}')"
    );
    let result = write_by_day(ctx, &select, staging.temp()).await;
    ctx.deregister_table(EXPORTED)?;
    let added = result.map_err(|e| e.context("exporting new events"))?;
    // Each new file into its day's folder; the staging folder goes on drop.
    if staging.temp().is_dir() {
        for day in std::fs::read_dir(staging.temp()).map_err(io)? {
            let day = day.map_err(io)?;
            let target = events.join(day.file_name());
            std::fs::create_dir_all(&target).map_err(io)?;
            for file in std::fs::read_dir(day.path()).map_err(io)? {
                let file = file.map_err(io)?;
                std::fs::rename(file.path(), target.join(file.file_name())).map_err(io)?;
            }
        }
    }
    let requests = requests_of(client, "events", started);
    Ok(TableEntry {
        rows: previous.rows + added,
        requests,
        newest: newest_event(ctx, &events)
            .await?
            .or_else(|| previous.newest.clone()),
        ..previous.clone()
    })
}

/// Export one table; the events of an earlier export are added to, not
/// fetched again.
async fn export_table(
    ctx: &SessionContext,
    client: &crate::api::Client,
    options: &ExportOptions,
    name: &str,
    previous: &Option<TableEntry>,
    started: usize,
) -> Result<TableEntry> {
    if name == "events"
        && let Some(previous) = previous
    {
        return append_events(ctx, client, &options.out, previous, started).await;
    }
    let since = match &options.since {
        Some(time) => format!(" WHERE time >= TIMESTAMP '{}'", time.replace('\'', "''")),
        None => String::new(),
    };
    if name == "events" {
        let io = io_at(&options.out);
        let staging = AtomicPath::new(&options.out.join("events")).map_err(io)?;
        let rows = write_by_day(ctx, &format!("SELECT * FROM events{since}"), staging.temp())
            .await
            .map_err(|e| e.context("exporting events"))?;
        staging.commit().map_err(io)?;
        return table_entry(
            ctx,
            client,
            options,
            name,
            "events".to_string(),
            rows,
            started,
        )
        .await;
    }
    let (path, copy) = match name {
        "event_context" => (
            "event_context.parquet".to_string(),
            format!(
                "COPY (SELECT * FROM event_context{since}) TO '{}'",
                options.out.join("event_context.parquet").display()
            ),
        ),
        other => (
            format!("{other}.parquet"),
            format!(
                "COPY {other} TO '{}'",
                options.out.join(format!("{other}.parquet")).display()
            ),
        ),
    };
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
    table_entry(ctx, client, options, name, path, rows, started).await
}

/// The manifest's entry for a table just written.
async fn table_entry(
    ctx: &SessionContext,
    client: &crate::api::Client,
    options: &ExportOptions,
    name: &str,
    path: String,
    rows: u64,
    started: usize,
) -> Result<TableEntry> {
    let requests = requests_of(client, name, started);
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
    let newest = match name {
        "events" => newest_event(ctx, &options.out.join(&path)).await?,
        _ => None,
    };
    Ok(TableEntry {
        name: name.to_string(),
        path,
        rows,
        requests,
        newest,
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

/// Write a query's events into `dir/date=YYYY-MM-DD/` folders as it streams.
/// The API sends events newest first, so a day is finished once an older day
/// appears: its file is closed then, and only a day or two are open at a time
/// (DataFusion's partitioned COPY keeps every day's writer open to the end).
/// Out of order, a day gets another file. Returns the rows written.
async fn write_by_day(ctx: &SessionContext, select: &str, dir: &Path) -> Result<u64> {
    use datafusion::arrow::array::{BooleanArray, TimestampMicrosecondArray};
    use datafusion::arrow::compute::filter_record_batch;
    use futures::StreamExt;
    use std::collections::BTreeMap;

    let io = io_at(dir);
    std::fs::create_dir_all(dir).map_err(io)?;
    let frame = ctx.sql(select).await?;
    let schema: SchemaRef = frame.schema().inner().clone();
    let time = schema.index_of("time")?;
    let mut stream = frame.execute_stream().await?;
    // Open files by day (days since 1970; None: no time).
    let mut open: BTreeMap<Option<i64>, ArrowWriter<File>> = BTreeMap::new();
    let mut files = 0_u64;
    let mut rows = 0_u64;
    const MICROS_PER_DAY: i64 = 86_400_000_000;
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        let times = batch
            .column(time)
            .as_any()
            .downcast_ref::<TimestampMicrosecondArray>()
            .ok_or_else(|| DataFusionError::Internal("events.time is not microseconds".into()))?;
        let day_of =
            |i: usize| (!times.is_null(i)).then(|| times.value(i).div_euclid(MICROS_PER_DAY));
        let mut days: Vec<Option<i64>> = (0..batch.num_rows()).map(day_of).collect();
        days.sort_unstable();
        days.dedup();
        for day in &days {
            let keep: BooleanArray = (0..batch.num_rows())
                .map(|i| Some(day_of(i) == *day))
                .collect();
            let part = filter_record_batch(&batch, &keep)?;
            if !open.contains_key(day) {
                let folder = match day {
                    Some(d) => chrono::DateTime::from_timestamp(d * 86_400, 0)
                        .map(|t| format!("date={}", t.format("%Y-%m-%d")))
                        .unwrap_or_else(|| "date=__HIVE_DEFAULT_PARTITION__".to_string()),
                    None => "date=__HIVE_DEFAULT_PARTITION__".to_string(),
                };
                std::fs::create_dir_all(dir.join(&folder)).map_err(io)?;
                files += 1;
                let file = File::create(dir.join(&folder).join(format!("part-{files:05}.parquet")))
                    .map_err(io)?;
                open.insert(*day, ArrowWriter::try_new(file, schema.clone(), None)?);
            }
            if let Some(writer) = open.get_mut(day) {
                writer.write(&part)?;
            }
            rows += part.num_rows() as u64;
        }
        // Days newer than this batch's newest are done (input newest first).
        let newest = days.iter().max().copied().flatten();
        let done: Vec<Option<i64>> = open
            .keys()
            .filter(|d| matches!((d, newest), (Some(d), Some(n)) if *d > n))
            .copied()
            .collect();
        for day in done {
            if let Some(writer) = open.remove(&day) {
                writer.close()?;
            }
        }
    }
    for (_, writer) in open {
        writer.close()?;
    }
    Ok(rows)
}
