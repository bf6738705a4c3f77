//! The audit log's part of `orgsql export`: the catalog's audit-log tables
//! (`events` and `event_context`), read once and together from the polling
//! API (`/events-stream`, 50 requests a minute where `/events` has 10) in
//! the order the events were processed, each page decoded by each table,
//! and written by month (`month=YYYY-MM/`, see `MonthWriter`).
//!
//! The stream's position (its cursor, valid after the last page, and the
//! newest processing time read) goes into the manifest. The next export into
//! the folder starts there and fetches only what was processed since, so an
//! event that happened long ago but was processed later is not missed, as it
//! would be by resuming from the newest event *time*.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Datelike, Utc};
use datafusion::arrow::array::{Array, BooleanArray, RecordBatch, TimestampMicrosecondArray};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::error::{DataFusionError, Result};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use futures::StreamExt;
use serde::Deserialize;

use crate::api::{ApiError, Client, EVENTS_STREAM, PageRequest};
use crate::cli::files::{AtomicPath, io_at};
use crate::snapshot::{StreamPosition, StreamRead, TableEntry};
use crate::tables::{Kind, TableInfo, schema_from};

/// What one pass over the stream wrote.
pub struct AuditLog {
    /// Per table: rows written, and the newest time among them (RFC 3339).
    pub tables: Vec<Written>,
    pub position: StreamPosition,
    /// What the pass read, for the manifest.
    pub read: StreamRead,
}

pub struct Written {
    pub name: &'static str,
    pub rows: u64,
    pub newest: Option<String>,
    /// Added to an earlier export: the files moved into its folder, relative
    /// to the export's folder (`events/month=2026-11/part-....parquet`).
    /// `None`: the table's folder was replaced whole.
    pub added: Option<Vec<String>>,
}

/// The column every audit-log table carries: an event appears once.
const EVENT_ID: &str = "event_id";

/// Where a pass starts.
enum Start {
    /// The beginning of the log, or the first event processed at or after
    /// `since` (microseconds).
    Fresh { since: Option<i64> },
    /// Where the previous export left off.
    Resume(StreamPosition),
    /// An export without a stream position (orgsql before the polling API):
    /// from a while before it was made, leaving out the events it holds.
    Legacy { from: DateTime<Utc> },
}

/// An item of the stream, for its position only (also watch's).
#[derive(Deserialize)]
pub(crate) struct StreamItem {
    pub(crate) attributes: StreamAttributes,
}

#[derive(Deserialize)]
pub(crate) struct StreamAttributes {
    #[serde(rename = "processedAt")]
    pub(crate) processed_at: Option<String>,
}

/// A legacy export is topped up from this long before it was made: an event
/// processed while it ran may or may not be in it (and is then left out).
const LEGACY_OVERLAP: chrono::Duration = chrono::Duration::hours(1);

/// Export the audit-log tables `wanted` (from the catalog) into `out`, each
/// in the folder of its name, adding to an earlier export there when
/// `previous` (an entry of it, and when it was made) says where it stopped.
/// When `out` is staged for object storage, the earlier export's files are
/// not in `out`: `exported` names them, per wanted table.
/// `since` (RFC 3339 or a date) limits a fresh export to events at or after it.
pub async fn export(
    ctx: &SessionContext,
    client: &Client,
    out: &Path,
    exported: Option<&[Vec<String>]>,
    since: Option<&str>,
    previous: Option<(&TableEntry, &str)>,
    wanted: &[TableInfo],
) -> Result<AuditLog> {
    let start = match (previous, since) {
        (Some((entry, _)), None) if entry.stream.is_some() => {
            Start::Resume(entry.stream.clone().unwrap_or_default())
        }
        (Some((_, exported_at)), None) => Start::Legacy {
            from: DateTime::parse_from_rfc3339(exported_at)
                .map_err(|e| {
                    DataFusionError::Execution(format!(
                        "{}: exported_at {exported_at:?}: {e}",
                        out.join(crate::snapshot::MANIFEST).display()
                    ))
                })?
                .with_timezone(&Utc)
                - LEGACY_OVERLAP,
        },
        (_, since) => Start::Fresh {
            since: since.map(since_micros).transpose()?,
        },
    };
    let adding = !matches!(start, Start::Fresh { .. });
    let io = io_at(out);
    // A fresh export replaces both folders whole; an addition is staged
    // beside them and moved in file by file once complete.
    let staged = AtomicPath::new(&out.join(if adding { "audit-log-new" } else { "audit-log" }))
        .map_err(io)?;
    let staging = staged.temp().to_path_buf();
    let mut pass = Pass::new(&staging, wanted, Utc::now())?;
    let dedupe = match start {
        Start::Fresh { since } => {
            pass.since = since;
            let from = since.map(|micros| micros.div_euclid(1000) - 1);
            pass.read(client, None, from).await?;
            false
        }
        Start::Legacy { from } => {
            pass.read(client, None, Some(from.timestamp_millis()))
                .await?;
            true
        }
        Start::Resume(position) => match pass.read(client, Some(&position.cursor), None).await {
            Ok(()) => {
                // From where the earlier export's stream stood.
                pass.read.from.clone_from(&position.processed_at);
                false
            }
            // The cursor is refused (expired, or a new API version): read
            // from the newest processing time instead, and leave out what
            // the folder holds already.
            Err(Refused::Cursor) => {
                let from = position
                    .processed_at
                    .as_deref()
                    .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| t.timestamp_millis());
                pass.read(client, None, from).await?;
                true
            }
            Err(Refused::Other(e)) => return Err(e),
        },
    };
    let mut log = pass.finish(previous.and_then(|(entry, _)| entry.stream.clone()))?;
    if dedupe {
        leave_out_exported(ctx, out, exported, &staging, wanted, &mut log).await?;
    }
    for (table, written) in wanted.iter().zip(log.tables.iter_mut()) {
        let (from, to) = (staging.join(table.name), out.join(table.name));
        if adding {
            written.added = Some(move_in(&from, &to, table.name).map_err(io)?);
        } else {
            replace_dir(&from, &to).map_err(io)?;
        }
    }
    Ok(log)
}

/// Stops a spawned task when dropped (a failed or cancelled export).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Why a read stopped early.
enum Refused {
    /// The API refused the saved cursor.
    Cursor,
    Other(DataFusionError),
}

impl From<DataFusionError> for Refused {
    fn from(e: DataFusionError) -> Self {
        Refused::Other(e)
    }
}

impl From<Refused> for DataFusionError {
    fn from(e: Refused) -> Self {
        match e {
            Refused::Cursor => DataFusionError::Execution(format!(
                "GET {EVENTS_STREAM}: the API refused the stream's cursor"
            )),
            Refused::Other(e) => e,
        }
    }
}

/// One pass over the stream, writing as it reads.
struct Pass {
    /// Each wanted table: its decoder and its files by month.
    tables: Vec<(&'static str, Decode, MonthWriter)>,
    since: Option<i64>,
    newest_processed: Option<DateTime<Utc>>,
    cursor: Option<String>,
    /// What the last read covered (a refused cursor's read is replaced).
    read: StreamRead,
    oldest_processed: Option<DateTime<Utc>>,
}

type Decode = fn(&str, &[u8]) -> Result<Option<RecordBatch>>;

impl Pass {
    fn new(staging: &Path, wanted: &[TableInfo], started: DateTime<Utc>) -> Result<Self> {
        // Unique to this pass: file names never meet an earlier export's.
        let stamp = format!(
            "{}-{:08x}",
            started.format("%Y%m%dT%H%M%S"),
            rand::random::<u32>()
        );
        let mut tables = Vec::new();
        for table in wanted {
            let Kind::AuditLog { decode, .. } = table.kind else {
                return Err(DataFusionError::Internal(format!(
                    "{} is not part of the audit log",
                    table.name
                )));
            };
            let schema = schema_from(table.columns.clone());
            let writer = MonthWriter::new(&staging.join(table.name), schema, stamp.clone())?;
            tables.push((table.name, decode, writer));
        }
        Ok(Self {
            tables,
            since: None,
            newest_processed: None,
            cursor: None,
            read: StreamRead::default(),
            oldest_processed: None,
        })
    }

    /// Page the stream in processing order from `cursor` (or from processing
    /// time `from`, epoch ms) until a page comes back empty.
    async fn read(
        &mut self,
        client: &Client,
        cursor: Option<&str>,
        from: Option<i64>,
    ) -> std::result::Result<(), Refused> {
        let mut request = PageRequest::get(EVENTS_STREAM)
            .polling()
            .query("limit", "500")
            .query("sortOrder", "asc");
        // Logged against the first table the pass writes.
        request.table = self.tables.first().map_or("", |t| t.0);
        if let Some(from) = from {
            request = request.query("from", from.to_string());
        }
        let saved = cursor.is_some();
        self.read = StreamRead {
            resumed: saved,
            from: from
                .and_then(DateTime::from_timestamp_millis)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
            ..StreamRead::default()
        };
        self.oldest_processed = None;
        // The next page is fetched while this one is written: the budget,
        // not the writing, sets the pace.
        let (pages, mut receive) = tokio::sync::mpsc::channel(2);
        let fetcher = {
            let client = client.clone();
            let mut cursor = cursor.map(str::to_string);
            tokio::spawn(async move {
                loop {
                    let page = client
                        .page::<Vec<StreamItem>>(&request, cursor.as_deref())
                        .await;
                    let last = match &page {
                        Ok(page) => page.data.is_empty() || page.next.is_none(),
                        Err(_) => true,
                    };
                    if let Ok(page) = &page {
                        cursor = page.next.clone();
                    }
                    if pages.send(page).await.is_err() || last {
                        return;
                    }
                }
            })
        };
        let _stop = AbortOnDrop(fetcher);
        let mut first = true;
        while let Some(page) = receive.recv().await {
            let page = match page {
                Ok(page) => page,
                Err(ApiError::Status { status: 400, .. }) if first && saved => {
                    return Err(Refused::Cursor);
                }
                Err(e) => return Err(Refused::Other(DataFusionError::External(Box::new(e)))),
            };
            first = false;
            self.read.pages += 1;
            self.read.events += page.data.len() as u64;
            // The stream's end: an empty page that still hands out a cursor.
            // A page without one ends the pass too, but not at a known end.
            self.read.cursor_chain_unbroken = page.data.is_empty() && page.next.is_some();
            // The position stands after this page, even an empty one.
            if page.next.is_some() {
                self.cursor = page.next.clone();
            }
            for item in &page.data {
                let at = item
                    .attributes
                    .processed_at
                    .as_deref()
                    .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| t.with_timezone(&Utc));
                self.newest_processed = self.newest_processed.max(at);
                if let Some(at) = at {
                    self.oldest_processed = Some(self.oldest_processed.map_or(at, |o| o.min(at)));
                }
            }
            let org = client.org_id();
            for (_, decode, writer) in &mut self.tables {
                if let Some(batch) = decode(org, &page.body)? {
                    let batch = in_window(self.since, batch)?;
                    writer.write(&batch)?;
                }
            }
        }
        Ok(())
    }

    fn finish(self, previous: Option<StreamPosition>) -> Result<AuditLog> {
        let mut tables = Vec::new();
        for (name, _, writer) in self.tables {
            let (rows, newest) = writer.finish()?;
            tables.push(Written {
                name,
                rows,
                newest: newest.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
                added: None,
            });
        }
        let previous = previous.unwrap_or_default();
        let stamp = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let mut read = self.read;
        read.oldest_processed = self.oldest_processed.map(stamp);
        read.newest_processed = self.newest_processed.map(stamp);
        Ok(AuditLog {
            read,
            tables,
            position: StreamPosition {
                cursor: self.cursor.unwrap_or(previous.cursor),
                processed_at: self
                    .newest_processed
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                    .or(previous.processed_at),
            },
        })
    }
}

/// The rows at or after `since`: the stream's bound is on processing time,
/// which only bounds event time from above.
fn in_window(since: Option<i64>, batch: RecordBatch) -> Result<RecordBatch> {
    let Some(since) = since else {
        return Ok(batch);
    };
    let time = times(&batch)?;
    let keep: BooleanArray = (0..batch.num_rows())
        .map(|i| Some(!time.is_null(i) && time.value(i) >= since))
        .collect();
    Ok(filter_record_batch(&batch, &keep)?)
}

fn times(batch: &RecordBatch) -> Result<&TimestampMicrosecondArray> {
    batch
        .column_by_name("time")
        .and_then(|c| c.as_any().downcast_ref::<TimestampMicrosecondArray>())
        .ok_or_else(|| DataFusionError::Internal("the audit log's time is not microseconds".into()))
}

/// `--since`: RFC 3339, or a date (midnight UTC).
fn since_micros(text: &str) -> Result<i64> {
    let parsed = DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .or_else(|_| {
            chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .map(|d| d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc())
        })
        .map_err(|_| {
            DataFusionError::Plan(format!(
                "--since {text:?}: use a date (2026-11-01) or a time (2026-11-01T00:00:00Z)"
            ))
        })?;
    Ok(parsed.timestamp_micros())
}

/// Events into `dir/month=YYYY-MM/` folders (hive-style) as they stream:
/// a four-year history is some fifty folders, not some fifteen hundred
/// files of a few events each, which warehouses (Spark, Athena) read
/// slowly. The stream is in processing order, which is nearly time order:
/// the `OPEN_MONTHS` months written last keep their files open, so events
/// of last month processed days late still go into its file; an event
/// older than those gets a small file of its own, which compaction folds in
/// once the month is closed (`compact`).
struct MonthWriter {
    dir: PathBuf,
    schema: SchemaRef,
    stamp: String,
    /// Each open month's file, and the batch that last wrote to it.
    open: BTreeMap<Option<i64>, (ArrowWriter<File>, u64)>,
    batches: u64,
    files: u64,
    rows: u64,
    newest: Option<i64>,
}

/// A month as a number (months since January of year 0), from microseconds.
fn month_of_micros(micros: i64) -> Option<i64> {
    let time = DateTime::from_timestamp_micros(micros)?;
    Some(i64::from(time.year()) * 12 + i64::from(time.month0()))
}

/// The partition folder of a month number (`None`: no time).
fn month_folder(month: Option<i64>) -> String {
    match month {
        Some(m) => format!("month={:04}-{:02}", m.div_euclid(12), m.rem_euclid(12) + 1),
        None => "month=__HIVE_DEFAULT_PARTITION__".to_string(),
    }
}

/// A row group is flushed to its file once its buffered pages reach this
/// size. ArrowWriter keeps a whole row group in memory until it is flushed,
/// up to a million rows by default: with a month to a file that is hundreds
/// of MB per open file. 16 MB bounds an export's memory (a month or two
/// open at a time) and still makes row groups of tens of thousands of
/// events, large enough for engines to read well.
pub(super) const ROW_GROUP_BYTES: usize = 16 << 20;

/// Months with a file open at once (each holding up to `ROW_GROUP_BYTES`):
/// this month, last month (its late events), and one more.
const OPEN_MONTHS: usize = 3;

/// Write `batch`, flushing the row group once it reaches `ROW_GROUP_BYTES`.
pub(super) fn write_bounded(writer: &mut ArrowWriter<File>, batch: &RecordBatch) -> Result<()> {
    writer.write(batch)?;
    if writer.memory_size() >= ROW_GROUP_BYTES {
        writer.flush()?;
    }
    Ok(())
}

impl MonthWriter {
    fn new(dir: &Path, schema: SchemaRef, stamp: String) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(io_at(dir))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            schema,
            stamp,
            open: BTreeMap::new(),
            batches: 0,
            files: 0,
            rows: 0,
            newest: None,
        })
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let times = times(batch)?;
        let months: Vec<Option<i64>> = (0..batch.num_rows())
            .map(|i| {
                if times.is_null(i) {
                    return None;
                }
                self.newest = self.newest.max(Some(times.value(i)));
                month_of_micros(times.value(i))
            })
            .collect();
        self.batches += 1;
        let mut distinct = months.clone();
        distinct.sort_unstable();
        distinct.dedup();
        for month in &distinct {
            let keep: BooleanArray = months.iter().map(|m| Some(m == month)).collect();
            let part = filter_record_batch(batch, &keep)?;
            if !self.open.contains_key(month) {
                let folder = self.dir.join(month_folder(*month));
                std::fs::create_dir_all(&folder).map_err(io_at(&folder))?;
                self.files += 1;
                let path = folder.join(format!("part-{}-{:05}.parquet", self.stamp, self.files));
                let file = File::create(&path).map_err(io_at(&path))?;
                let writer = ArrowWriter::try_new(file, self.schema.clone(), None)?;
                self.open.insert(*month, (writer, self.batches));
            }
            if let Some((writer, used)) = self.open.get_mut(month) {
                write_bounded(writer, &part)?;
                *used = self.batches;
            }
            self.rows += part.num_rows() as u64;
        }
        // The months written longest ago are closed.
        while self.open.len() > OPEN_MONTHS.max(distinct.len()) {
            let oldest = self
                .open
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(month, _)| *month);
            if let Some((writer, _)) = oldest.and_then(|m| self.open.remove(&m)) {
                writer.close()?;
            }
        }
        Ok(())
    }

    /// Close every file; the rows written and the newest time.
    fn finish(self) -> Result<(u64, Option<DateTime<Utc>>)> {
        for (_, (writer, _)) in self.open {
            writer.close()?;
        }
        Ok((
            self.rows,
            self.newest.and_then(DateTime::from_timestamp_micros),
        ))
    }
}

/// Replace folder `target` with `new` (removing the old one once swapped).
/// The old one goes beside `new`, in the staging folder: a name of the
/// user's (`events.old`) is never touched.
fn replace_dir(new: &Path, target: &Path) -> std::io::Result<()> {
    if target.is_dir() {
        let old = new.with_extension("old");
        std::fs::rename(target, &old)?;
        std::fs::rename(new, target)?;
        std::fs::remove_dir_all(old)
    } else {
        std::fs::rename(new, target)
    }
}

/// Move the staged files of one table (`name`) into its folder, month by
/// month; the files moved, relative to the export's folder. File names
/// carry the export's time, so none overwrites an earlier one. A month
/// folder may land beside the day folders (`date=YYYY-MM-DD/`) of an export
/// by an earlier orgsql: both are read, as the manifest lists their files.
/// A table exported as one file before it was partitioned
/// (`event_context.parquet`) moves into the folder first.
fn move_in(from: &Path, to: &Path, name: &str) -> std::io::Result<Vec<String>> {
    let legacy = to.with_extension("parquet");
    if legacy.is_file() {
        std::fs::create_dir_all(to)?;
        std::fs::rename(&legacy, to.join("part-0.parquet"))?;
    }
    let mut moved = Vec::new();
    if !from.is_dir() {
        return Ok(moved);
    }
    std::fs::create_dir_all(to)?;
    for month in std::fs::read_dir(from)? {
        let month = month?;
        let target = to.join(month.file_name());
        std::fs::create_dir_all(&target)?;
        for file in std::fs::read_dir(month.path())? {
            let file = file?;
            std::fs::rename(file.path(), target.join(file.file_name()))?;
            moved.push(format!(
                "{name}/{}/{}",
                month.file_name().to_string_lossy(),
                file.file_name().to_string_lossy()
            ));
        }
    }
    moved.sort();
    Ok(moved)
}

/// Rewrite the staged files without the events the folder holds already
/// (by event id, table by table), and count what is left.
async fn leave_out_exported(
    ctx: &SessionContext,
    out: &Path,
    exported: Option<&[Vec<String>]>,
    staging: &Path,
    wanted: &[TableInfo],
    log: &mut AuditLog,
) -> Result<()> {
    // Unique to this run, and removed if it fails: a folder left by an
    // earlier failed run is never reused.
    let kept_path = AtomicPath::new(&staging.with_extension("kept")).map_err(io_at(staging))?;
    let kept = kept_path.temp().to_path_buf();
    let mut pass = Pass::new(&kept, wanted, Utc::now())?;
    for (number, (table, (_, _, writer))) in wanted.iter().zip(pass.tables.iter_mut()).enumerate() {
        if !table.columns.iter().any(|c| c.name == EVENT_ID) {
            return Err(DataFusionError::Internal(format!(
                "{}: an audit-log table without {EVENT_ID}",
                table.name
            )));
        }
        let schema = schema_from(table.columns.clone());
        let (old, new) = ("orgsql_exported", "orgsql_staged");
        // The schema is given: a folder may hold no file yet.
        let options = || ParquetReadOptions::default().schema(&schema);
        match exported.map(|files| files.get(number).cloned().unwrap_or_default()) {
            // Staged for object storage: exactly the files listed there.
            Some(files) if !files.is_empty() => {
                let frame = ctx.read_parquet(files, options()).await?;
                ctx.register_table(old, frame.into_view())?;
            }
            Some(_) => {
                let empty =
                    datafusion::datasource::MemTable::try_new(schema.clone(), vec![vec![]])?;
                ctx.register_table(old, std::sync::Arc::new(empty))?;
            }
            None => {
                let location = match out.join(table.name) {
                    dir if dir.is_dir() => format!("{}/", dir.display()),
                    // Exported as one file before it was partitioned.
                    dir => dir.with_extension("parquet").display().to_string(),
                };
                ctx.register_parquet(old, &location, options()).await?;
            }
        }
        let staged = format!("{}/", staging.join(table.name).display());
        ctx.register_parquet(new, &staged, options()).await?;
        let result = async {
            let sql = format!(
                "SELECT * FROM {new} WHERE {EVENT_ID} NOT IN (SELECT {EVENT_ID} FROM {old})"
            );
            let mut rows = ctx.sql(&sql).await?.execute_stream().await?;
            while let Some(batch) = rows.next().await {
                writer.write(&batch?)?;
            }
            Ok::<_, DataFusionError>(())
        }
        .await;
        ctx.deregister_table(old)?;
        ctx.deregister_table(new)?;
        result?;
    }
    let kept_log = pass.finish(None)?;
    log.tables = kept_log.tables;
    let io = io_at(staging);
    std::fs::remove_dir_all(staging).map_err(io)?;
    std::fs::rename(&kept, staging).map_err(io)?;
    Ok(())
}
