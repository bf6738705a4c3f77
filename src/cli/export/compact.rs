//! Compaction of the audit log's closed months: daily exports into one
//! folder each add a small file to the current month (and a late event one
//! to an earlier month); once a month is closed, its files are rewritten
//! into one, so a folder exported every day for years still holds about a
//! file per month and table.
//!
//! The steps, so that a stop at any point leaves the manifest naming only
//! files that are there, each as it records:
//! 1. each of the month's files is checked against the manifest (size and
//!    sha256; a file that is not as exported is never folded into a new
//!    one, which would give its content a fresh digest);
//! 2. their rows are written, file after file, into a new file beside them
//!    (written under a temporary name and renamed: whole or absent);
//! 3. the table's entry lists the new file instead of the old ones, and the
//!    caller writes the manifest;
//! 4. only then are the old files removed (`tidy`; in object storage the
//!    upload removes what the manifest no longer lists).
//!
//! A stop between 2 and 3 leaves a file the manifest does not list, and one
//! between 3 and 4 the old files: no snapshot reads them (it reads what the
//! manifest lists), `orgsql snapshot verify` names them as added, and the
//! next export into the folder removes them.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;

use chrono::{DateTime, Datelike, Utc};
use datafusion::arrow::array::RecordBatch;
use datafusion::error::{DataFusionError, Result};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::cli::files::{AtomicPath, io_at};
use crate::snapshot::{FileDigest, TableEntry, verify};
use crate::storage::Remote;

/// How long after its end a month is closed. Audit events reach the API's
/// log after they happen, seconds for most but hours or days for a few
/// (the emulator: up to three days); a month is rewritten only once that
/// lag has passed twice over, so daily exports do not rewrite last month
/// again each day in its first week. An event later still is not lost:
/// it gets a file of its own, and the month is compacted again.
pub const LATENESS: chrono::Duration = chrono::Duration::days(7);

/// The month (`YYYY-MM`) of a file in a partition folder of the table's
/// folder: `events/month=2026-10/...` or, as orgsql before months wrote
/// it, `events/date=2026-10-04/...`. Anything else: `None`, left as it is.
pub fn month_of(table_path: &str, file: &str) -> Option<String> {
    let rest = file.strip_prefix(table_path)?.strip_prefix('/')?;
    let (folder, name) = rest.split_once('/')?;
    if name.contains('/') {
        return None;
    }
    let month = match folder.split_once('=')? {
        ("month", month) if month.len() == 7 => month,
        ("date", date) if date.len() == 10 => &date[..7],
        _ => return None,
    };
    chrono::NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d")
        .is_ok()
        .then(|| month.to_string())
}

/// Whether `month` (`YYYY-MM`) ended at least `LATENESS` before `as_of`.
pub fn closed(month: &str, as_of: DateTime<Utc>) -> bool {
    let Ok(first) = chrono::NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d") else {
        return false;
    };
    let next = if first.month() == 12 {
        chrono::NaiveDate::from_ymd_opt(first.year() + 1, 1, 1)
    } else {
        chrono::NaiveDate::from_ymd_opt(first.year(), first.month() + 1, 1)
    };
    next.and_then(|d| d.and_hms_opt(0, 0, 0))
        .is_some_and(|end| end.and_utc() + LATENESS <= as_of)
}

/// Where the files of an earlier export are when they are not in `out`:
/// the prefix in object storage that `out` is staged for.
pub enum Source<'a> {
    Folder,
    Bucket(&'a Remote),
}

/// Fold each closed month of `entry` (a table of the audit log, written by
/// this orgsql into `out`) that holds more than one file into one new file
/// in `month=YYYY-MM/`, and list it in the entry instead of them. Says on
/// `log` what it did and what it left (a file not as exported).
pub async fn compact(
    out: &Path,
    entry: &mut TableEntry,
    as_of: DateTime<Utc>,
    source: Source<'_>,
    log: &mut dyn std::io::Write,
) -> Result<()> {
    let Some(info) = crate::tables::find(&entry.name) else {
        return Ok(());
    };
    let schema = crate::tables::schema_from(info.columns);
    // Only files of the table's own schema are folded together.
    let same = entry.columns.len() == schema.fields().len()
        && entry.columns.iter().zip(schema.fields()).all(|(c, f)| {
            c.name == *f.name()
                && c.data_type == f.data_type().to_string()
                && c.nullable == f.is_nullable()
        });
    if !same || entry.path.ends_with(".parquet") {
        return Ok(());
    }
    let mut months: BTreeMap<String, Vec<FileDigest>> = BTreeMap::new();
    for file in &entry.files {
        if let Some(month) = month_of(&entry.path, &file.path) {
            months.entry(month).or_default().push(file.clone());
        }
    }
    months.retain(|month, files| files.len() > 1 && closed(month, as_of));
    if months.is_empty() {
        return Ok(());
    }
    let stamp = format!(
        "{}-{:08x}c",
        Utc::now().format("%Y%m%dT%H%M%S"),
        rand::random::<u32>()
    );
    let mut checker = verify::Checker::new();
    let mut result = Ok(());
    for (number, (month, files)) in months.iter().enumerate() {
        let relative = format!(
            "{}/month={month}/part-{stamp}-{:05}.parquet",
            entry.path,
            number + 1
        );
        match fold(out, files, &relative, &schema, &source, &mut checker).await {
            Ok(Folded::Into(written)) => {
                entry.files.retain(|f| !files.contains(f));
                entry.files.push(written);
                writeln!(
                    log,
                    "{}: month {month} compacted: {} files into {relative}",
                    entry.name,
                    files.len()
                )
                .map_err(io_at(out))?;
            }
            Ok(Folded::NotAsExported(what)) => {
                let shown = match &source {
                    Source::Folder => out.display().to_string(),
                    Source::Bucket(remote) => remote.url().to_string(),
                };
                writeln!(
                    log,
                    "{}: month {month} left as it is: {}; `orgsql snapshot verify {}` lists \
                     every problem",
                    entry.name,
                    crate::text::visible(&what),
                    crate::text::visible(&shown)
                )
                .map_err(io_at(out))?;
            }
            Err(e) => {
                result = Err(e.context(format!("compacting {} month {month}", entry.name)));
                break;
            }
        }
    }
    checker.finish();
    entry.files.sort_by(|a, b| a.path.cmp(&b.path));
    result
}

enum Folded {
    Into(FileDigest),
    NotAsExported(String),
}

/// The rows of `files` (each checked first) into the new file `relative`.
async fn fold(
    out: &Path,
    files: &[FileDigest],
    relative: &str,
    schema: &datafusion::arrow::datatypes::SchemaRef,
    source: &Source<'_>,
    checker: &mut verify::Checker,
) -> Result<Folded> {
    for file in files {
        let path = out.join(&file.path);
        let problem = match source {
            // Staged for object storage, this run's files are here, and
            // the earlier ones in the bucket.
            Source::Bucket(remote) if !path.exists() => fetch(remote, file, &path).await?,
            _ => checker.check(&path, file).err(),
        };
        if let Some(what) = problem {
            return Ok(Folded::NotAsExported(format!("{} {what}", file.path)));
        }
    }
    let target = out.join(relative);
    if let Some(folder) = target.parent() {
        std::fs::create_dir_all(folder).map_err(io_at(folder))?;
    }
    let staged = AtomicPath::new(&target).map_err(io_at(&target))?;
    let temp = staged.temp().to_path_buf();
    let io = io_at(&temp);
    let mut writer = ArrowWriter::try_new(File::create(&temp).map_err(io)?, schema.clone(), None)?;
    let mut read = 0i64;
    for file in files {
        let path = out.join(&file.path);
        let reader =
            ParquetRecordBatchReaderBuilder::try_new(File::open(&path).map_err(io_at(&path))?)?;
        read += reader.metadata().file_metadata().num_rows();
        for batch in reader.build()? {
            // The files hold the table's columns; the writer takes its schema.
            let batch = RecordBatch::try_new(schema.clone(), batch?.columns().to_vec())?;
            super::audit_log::write_bounded(&mut writer, &batch)?;
        }
    }
    let written = writer.close()?.file_metadata().num_rows();
    if written != read {
        return Err(DataFusionError::Internal(format!(
            "{}: {written} rows written from {read}",
            temp.display()
        )));
    }
    File::open(&temp).and_then(|f| f.sync_all()).map_err(io)?;
    staged.commit().map_err(io_at(&target))?;
    let (bytes, sha256) = verify::hash_file(&target).map_err(io_at(&target))?;
    Ok(Folded::Into(FileDigest {
        path: relative.to_string(),
        bytes,
        sha256,
    }))
}

/// A file of the export in object storage, into the staging folder at
/// `path`, checked against its record: `Some` says how it differs.
async fn fetch(remote: &Remote, file: &FileDigest, path: &Path) -> Result<Option<String>> {
    let Some(bytes) = remote.get(&file.path).await? else {
        return Ok(Some("is missing".to_string()));
    };
    if bytes.len() as u64 != file.bytes || crate::snapshot::sha256(&bytes) != file.sha256 {
        return Ok(Some("has changed since the export".to_string()));
    }
    if let Some(folder) = path.parent() {
        std::fs::create_dir_all(folder).map_err(io_at(folder))?;
    }
    std::fs::write(path, bytes).map_err(io_at(path))?;
    Ok(None)
}

/// Remove what orgsql wrote in the partition folders of `entry` (a table
/// of the audit log in the export folder `out`) that the manifest, already
/// written, does not list: the files a compaction replaced, and those of a
/// run that stopped before listing them. Only orgsql's own names
/// (`part-*.parquet`, and the temporary `.part-*` of a write that
/// stopped); a folder left empty goes too. Best effort: says on `log` what
/// it could not remove.
pub fn tidy(out: &Path, entry: &TableEntry, log: &mut dyn std::io::Write) -> Result<()> {
    let top = out.join(&entry.path);
    if entry.files.is_empty() || !top.is_dir() {
        return Ok(());
    }
    let listed: std::collections::BTreeSet<&str> =
        entry.files.iter().map(|f| f.path.as_str()).collect();
    let (mut left, mut removed) = (Vec::new(), Vec::new());
    let Ok(folders) = std::fs::read_dir(&top) else {
        return Ok(());
    };
    for folder in folders.flatten() {
        let name = folder.file_name().to_string_lossy().into_owned();
        let partition = name.starts_with("month=") || name.starts_with("date=");
        if !partition || !folder.path().is_dir() {
            continue;
        }
        let Ok(files) = std::fs::read_dir(folder.path()) else {
            continue;
        };
        for file in files.flatten() {
            let file_name = file.file_name().to_string_lossy().into_owned();
            let ours = file_name.ends_with(".parquet")
                && (file_name.starts_with("part-") || file_name.starts_with(".part-"));
            let relative = format!("{}/{name}/{file_name}", entry.path);
            if ours && !listed.contains(relative.as_str()) && file.path().is_file() {
                match std::fs::remove_file(file.path()) {
                    Ok(()) => removed.push(relative),
                    Err(_) => left.push(relative),
                }
            }
        }
        // Only if empty: fails (and is left) otherwise.
        let _ = std::fs::remove_dir(folder.path());
    }
    // Said, not silent: a file someone put there is gone too.
    if !removed.is_empty() {
        writeln!(
            log,
            "{}: removed {} file(s) the manifest no longer lists (folded into a compacted \
             month, or left by a stopped run; first: {})",
            entry.name,
            removed.len(),
            crate::text::visible(&removed[0])
        )
        .map_err(io_at(out))?;
    }
    if !left.is_empty() {
        writeln!(
            log,
            "note: {} file(s) of earlier exports the manifest no longer lists could not be \
             removed (first: {}); no snapshot reads them",
            left.len(),
            crate::text::visible(&left[0])
        )
        .map_err(io_at(out))?;
    }
    Ok(())
}
