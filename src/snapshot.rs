//! Organization snapshots: a folder of Parquet files written by
//! `orgsql export`, with a `manifest.json`, and a session that queries it
//! offline under the same table names and schemas.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::catalog::MemorySchemaProvider;
use datafusion::common::TableReference;
use datafusion::datasource::file_format::options::ReadOptions;
use datafusion::datasource::listing::{ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use object_store::path::Path as ObjectPath;
use serde::{Deserialize, Serialize};

use crate::sql::literal;

use crate::storage::Location;
use crate::tables::{TableInfo, catalog};

pub mod verify;

/// `manifest.json`: what a snapshot holds and how it was made.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub org_id: String,
    /// When the export started (RFC 3339, UTC).
    pub exported_at: String,
    /// The instant the data is as of (RFC 3339, UTC): the clock of the
    /// session that exported it (the demo's is fixed). A snapshot session's
    /// `now()` answers it. Older exports: `exported_at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_of: Option<String>,
    pub orgsql_version: String,
    pub tables: Vec<TableEntry>,
    /// Tables the keys could not read, and why: not in the folder.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<Skipped>,
}

/// A table an export left out.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Skipped {
    pub name: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TableEntry {
    pub name: String,
    /// Relative to the snapshot folder: a file, or a folder of files
    /// (the audit log: hive-style `month=YYYY-MM/` partitions, or the
    /// `date=YYYY-MM-DD/` ones of an export by an orgsql before months, or both:
    /// the manifest lists the files, a folder name is not a column).
    pub path: String,
    pub rows: u64,
    /// API requests the export of this table made.
    pub requests: u64,
    /// events: the newest event's time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newest: Option<String>,
    /// events and event_context: where the polling audit API stood when the
    /// export ended; the next export into the folder starts there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<StreamPosition>,
    /// How this export read the table: its listings' pages, rows, requests
    /// and retries, whether each was read to its end, and the API's counts
    /// beside the rows where it counts the same filters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completeness: Option<crate::api::Completeness>,
    /// events and event_context: what this export's pass over the polling
    /// audit API read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_read: Option<StreamRead>,
    pub columns: Vec<ColumnEntry>,
    /// Every data file of the table as written, with its sha256: what makes
    /// the snapshot evidence (`orgsql review verify` checks them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileDigest>,
}

/// One data file of a table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDigest {
    /// Relative to the snapshot folder, with `/` between folders.
    pub path: String,
    pub bytes: u64,
    /// Lowercase hex.
    pub sha256: String,
}

/// A position in `/events-stream`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamPosition {
    /// The last page's `meta.next`: asked again, it answers with the events
    /// processed since.
    pub cursor: String,
    /// The newest processing time read (RFC 3339), for when the API no
    /// longer takes the cursor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processed_at: Option<String>,
}

/// One pass over `/events-stream`: the processing times it covered and
/// whether its cursor chain ran unbroken to the stream's end.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamRead {
    /// The pass went on from the earlier export's cursor.
    pub resumed: bool,
    /// The processing time it read from (RFC 3339): the earlier export's
    /// newest when resumed, `--since`'s, or none (the stream's beginning).
    pub from: Option<String>,
    /// The oldest and newest processing time among the events it read.
    pub oldest_processed: Option<String>,
    pub newest_processed: Option<String>,
    pub pages: u64,
    pub events: u64,
    /// Each page's cursor led to the next, and the last page came back
    /// empty with a cursor to go on from: nothing was skipped.
    pub cursor_chain_unbroken: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ColumnEntry {
    pub name: String,
    #[serde(rename = "type")]
    pub data_type: String,
    pub nullable: bool,
}

pub const MANIFEST: &str = "manifest.json";

/// The top `manifest.json` of an export of several organizations: a folder
/// per organization (`org_id=<id>/`), each an export of its own.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OrgsManifest {
    pub exported_at: String,
    /// As `Manifest::as_of`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_of: Option<String>,
    pub orgsql_version: String,
    pub orgs: Vec<OrgFolder>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OrgFolder {
    pub org_id: String,
    /// The connection's name, when it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Relative to the top folder.
    pub path: String,
}

/// What a snapshot folder holds: one organization's export, or several.
#[derive(Debug, Clone)]
pub enum Contents {
    One(Manifest),
    Several(OrgsManifest),
}

/// What is wrong with a snapshot: its manifest, or a file against it.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("{0}: no {MANIFEST} there; is it a folder or prefix written by `orgsql export`?")]
    NoManifest(Location),
    #[error("{}: not an orgsql manifest: {reason}", .dir.file(MANIFEST))]
    NotAManifest { dir: Location, reason: String },
    #[error("{MANIFEST}: the data's time {text:?} is not an RFC 3339 time: {reason}")]
    NotATime { text: String, reason: String },
    /// A manifest may not point outside its folder.
    #[error(
        "{}: {what:?} is at {relative:?}, outside the snapshot folder; refusing to read it",
        .dir.file(MANIFEST)
    )]
    Outside {
        dir: Location,
        what: String,
        relative: String,
    },
    /// A file that is not as its manifest records: the file, its table, what
    /// is wrong, and what to do.
    #[error(
        "{file} (table {table}) {what}: a snapshot is read only as it was exported; restore \
         the file or export again (`orgsql snapshot verify {top}` lists every problem)"
    )]
    NotAsExported {
        file: String,
        table: String,
        what: String,
        top: Location,
    },
    /// A prefix in object storage is not listed for a table's files.
    #[error(
        "{}: {table} lists no files (an export by an older orgsql, or a folder copied up by \
         hand): export into the prefix again with this orgsql",
        .dir.file(MANIFEST)
    )]
    Unlisted { dir: Location, table: String },
    #[error("{0}: not a UTF-8 path")]
    NotUtf8(String),
}

impl From<SnapshotError> for DataFusionError {
    fn from(error: SnapshotError) -> Self {
        DataFusionError::External(Box::new(error))
    }
}

/// A folder's `manifest.json`: on disk, or in object storage.
async fn read_manifest<T: serde::de::DeserializeOwned>(dir: &Location) -> Result<T> {
    parse_manifest(dir, &manifest_bytes(dir).await?)
}

/// The bytes of a folder's `manifest.json`.
async fn manifest_bytes(dir: &Location) -> Result<Vec<u8>> {
    Ok(dir
        .read(MANIFEST)
        .await?
        .ok_or_else(|| SnapshotError::NoManifest(dir.clone()))?)
}

fn parse_manifest<T: serde::de::DeserializeOwned>(dir: &Location, text: &[u8]) -> Result<T> {
    serde_json::from_slice(text).map_err(|e| {
        SnapshotError::NotAManifest {
            dir: dir.clone(),
            reason: e.to_string(),
        }
        .into()
    })
}

impl Manifest {
    /// The manifest of one organization's export.
    pub async fn read(dir: &Location) -> Result<Self> {
        read_manifest(dir).await
    }
}

impl Contents {
    pub async fn read(dir: &Location) -> Result<Self> {
        Self::parse(dir, &manifest_bytes(dir).await?)
    }

    /// `dir`'s manifest, from its bytes.
    fn parse(dir: &Location, text: &[u8]) -> Result<Self> {
        let value: serde_json::Value = parse_manifest(dir, text)?;
        let invalid = |e: serde_json::Error| SnapshotError::NotAManifest {
            dir: dir.clone(),
            reason: e.to_string(),
        };
        if value.get("orgs").is_some() {
            Ok(Contents::Several(
                serde_json::from_value(value).map_err(invalid)?,
            ))
        } else {
            Ok(Contents::One(
                serde_json::from_value(value).map_err(invalid)?,
            ))
        }
    }

    /// Each organization's id and its export's folder, relative to `dir`
    /// (`""` for one organization's export) and as a location.
    pub fn org_dirs(&self, dir: &Location) -> Result<Vec<(String, String, Location)>> {
        match self {
            Contents::One(manifest) => {
                Ok(vec![(manifest.org_id.clone(), String::new(), dir.clone())])
            }
            Contents::Several(top) => top
                .orgs
                .iter()
                .map(|org| {
                    let folder = inside(dir, &org.path, &org.org_id)?;
                    Ok((org.org_id.clone(), org.path.clone(), folder))
                })
                .collect(),
        }
    }

    pub fn exported_at(&self) -> &str {
        match self {
            Contents::One(m) => &m.exported_at,
            Contents::Several(m) => &m.exported_at,
        }
    }

    /// The instant the data is as of: recorded, else when it was exported.
    pub fn as_of(&self) -> Result<chrono::DateTime<chrono::Utc>> {
        let (as_of, exported_at) = match self {
            Contents::One(m) => (&m.as_of, &m.exported_at),
            Contents::Several(m) => (&m.as_of, &m.exported_at),
        };
        let text = as_of.as_deref().unwrap_or(exported_at);
        chrono::DateTime::parse_from_rfc3339(text)
            .map(|t| t.to_utc())
            .map_err(|e| {
                SnapshotError::NotATime {
                    text: text.to_string(),
                    reason: e.to_string(),
                }
                .into()
            })
    }

    pub fn orgsql_version(&self) -> &str {
        match self {
            Contents::One(m) => &m.orgsql_version,
            Contents::Several(m) => &m.orgsql_version,
        }
    }
}

/// `relative` under `dir`, refused if it would lead outside (a manifest
/// says where its files are; it may not point elsewhere).
fn inside(dir: &Location, relative: &str, what: &str) -> Result<Location> {
    let path = Path::new(relative);
    if relative.is_empty()
        || !path
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
    {
        return Err(SnapshotError::Outside {
            dir: dir.clone(),
            what: what.to_string(),
            relative: relative.to_string(),
        }
        .into());
    }
    Ok(dir.join(relative))
}

/// Bytes as lowercase hex.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The sha256 of some bytes, as lowercase hex.
pub fn sha256(bytes: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

/// The data files at `relative` under `dir` (a file, or a folder of them at
/// any depth), sorted, with their sha256.
pub fn digests(dir: &Path, relative: &str) -> Result<Vec<FileDigest>> {
    fn walk(path: &Path, found: &mut Vec<std::path::PathBuf>) -> std::io::Result<()> {
        if path.is_dir() {
            for entry in std::fs::read_dir(path)? {
                walk(&entry?.path(), found)?;
            }
        } else {
            found.push(path.to_path_buf());
        }
        Ok(())
    }
    let io = crate::error::io_at;
    let mut found = Vec::new();
    let top = dir.join(relative);
    walk(&top, &mut found).map_err(io(&top))?;
    let mut digests = Vec::new();
    for path in found {
        let (bytes, sha256) = verify::hash_file(&path).map_err(io(&path))?;
        let relative = path
            .strip_prefix(dir)
            .unwrap_or(&path)
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        digests.push(FileDigest {
            path: relative,
            bytes,
            sha256,
        });
    }
    digests.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(digests)
}

/// What differs between a snapshot's files and its manifest's record of
/// them: a file changed, missing or added, one line each (none: intact).
/// Every file is hashed, whatever the verification record says. A table
/// exported before files were recorded cannot be checked, and says so.
pub async fn tampered(dir: &Location) -> Result<Vec<String>> {
    Ok(verify::verify(dir).await?.problems)
}

/// A snapshot's manifests, read once (in a bucket each read is a GET):
/// the top one and each organization's.
#[derive(Debug, Clone)]
pub struct Opened {
    pub dir: Location,
    pub contents: Contents,
    /// Each organization's id, export folder and manifest.
    pub orgs: Vec<(String, Location, Manifest)>,
    /// The sha256 of `dir`'s manifest.json as read: it vouches for every
    /// file (a report names the snapshot by it).
    pub manifest_sha256: String,
    /// Each organization's manifest.json's sha256, as `orgs`.
    org_manifest_sha256: Vec<String>,
}

impl Opened {
    pub async fn read(dir: &Location) -> Result<Self> {
        let dir = dir.clone();
        let bytes = manifest_bytes(&dir).await?;
        let manifest_sha256 = sha256(&bytes);
        let contents = Contents::parse(&dir, &bytes)?;
        let (mut orgs, mut org_manifest_sha256) = (Vec::new(), Vec::new());
        for (id, _, folder) in contents.org_dirs(&dir)? {
            let (manifest, digest) = match &contents {
                Contents::One(manifest) => (manifest.clone(), manifest_sha256.clone()),
                Contents::Several(_) => {
                    let bytes = manifest_bytes(&folder).await?;
                    (parse_manifest(&folder, &bytes)?, sha256(&bytes))
                }
            };
            orgs.push((id, folder, manifest));
            org_manifest_sha256.push(digest);
        }
        Ok(Self {
            dir,
            contents,
            orgs,
            manifest_sha256,
            org_manifest_sha256,
        })
    }

    /// Each organization's export on its own.
    pub fn each(&self) -> Vec<Opened> {
        self.orgs
            .iter()
            .zip(&self.org_manifest_sha256)
            .map(|((id, folder, manifest), digest)| Opened {
                dir: folder.clone(),
                contents: Contents::One(manifest.clone()),
                orgs: vec![(id.clone(), folder.clone(), manifest.clone())],
                manifest_sha256: digest.clone(),
                org_manifest_sha256: vec![digest.clone()],
            })
            .collect()
    }
}

/// A DataFusion context over a snapshot folder: every exported table under its own
/// name, and the `role_assignments` view when both its sides were exported.
/// Its clock stands at the data's as-of instant, so `now()` and the
/// controls' windows answer the same whenever the snapshot is read.
pub async fn context(dir: &Location) -> Result<SessionContext> {
    context_of(&Opened::read(dir).await?).await
}

/// `context`, of a snapshot already opened.
pub async fn context_of(opened: &Opened) -> Result<SessionContext> {
    let ctx = crate::bare_context();
    let as_of = opened.contents.as_of()?;
    crate::clock::fix(&ctx, as_of);
    // The history ends at the data's time, whatever clock judges it.
    ctx.state_ref()
        .write()
        .config_mut()
        .set_extension(Arc::new(crate::tables::grants_history::DataAsOf(as_of)));
    register(&ctx, None, opened).await?;
    Ok(ctx)
}

/// Attach a snapshot as schema `name` (`old.users`, `new.users`) of a session.
pub async fn attach(ctx: &SessionContext, name: &str, dir: &Location) -> Result<()> {
    let catalog = ctx
        .catalog("datafusion")
        .ok_or_else(|| DataFusionError::Internal("no default catalog".to_string()))?;
    if catalog.schema(name).is_some() {
        return Err(DataFusionError::Plan(format!(
            "--attach {name}: a schema {name} exists already"
        )));
    }
    catalog.register_schema(name, Arc::new(MemorySchemaProvider::new()))?;
    register(ctx, Some(name), &Opened::read(dir).await?).await
}

/// Register a snapshot's tables. Of several organizations, a table holds
/// every organization's rows, and is there only when every export has it
/// (a table missing for one would silently lack its rows). Each table reads
/// exactly the files its manifest lists, each checked first (`verify`).
async fn register(ctx: &SessionContext, schema: Option<&str>, opened: &Opened) -> Result<()> {
    let qualified = |table: &str| match schema {
        Some(schema) => TableReference::partial(schema, table),
        None => TableReference::bare(table),
    };
    let mut checker = verify::Checker::new();
    let locations = locations(opened, &mut checker).await;
    // What was hashed is recorded even when a later file failed.
    checker.finish();
    let locations = locations?;
    known_sizes(ctx, opened)?;
    let options = ParquetReadOptions::default()
        .to_listing_options(&ctx.copied_config(), ctx.copied_table_options());
    for (name, _, paths) in &locations {
        let Some(first) = paths.first() else {
            // No file in any organization's export (none listed, no rows).
            if let Some(info) = crate::tables::find(name) {
                let schema = crate::tables::schema_from(info.columns);
                let empty = datafusion::datasource::MemTable::try_new(schema, vec![vec![]])?;
                ctx.register_table(qualified(name), Arc::new(empty))?;
            }
            continue;
        };
        let urls = paths
            .iter()
            .map(ListingTableUrl::parse)
            .collect::<Result<Vec<_>>>()?;
        // The schema the manifest records, when it is the table's own: no
        // file's footer is read to open the snapshot.
        let schema = match known_schema(opened, name) {
            Some(schema) => schema,
            None => {
                options
                    .infer_schema(&ctx.state(), &ListingTableUrl::parse(first)?)
                    .await?
            }
        };
        let config = ListingTableConfig::new_with_multi_paths(urls)
            .with_listing_options(options.clone())
            .with_schema(schema);
        ctx.register_table(qualified(name), Arc::new(ListingTable::try_new(config)?))?;
    }
    let has = |name: &str| {
        locations.iter().any(|(table, _, paths)| {
            table == name && (!paths.is_empty() || crate::tables::find(name).is_some())
        })
    };
    crate::tables::register_views(ctx, schema, &catalog(), has)?;
    Ok(())
}

/// The sizes the manifests record for the files in object storage, given to
/// the session's store of each bucket: DataFusion asks a file's size before
/// reading it, and a request per file (or a listing) would cost more than
/// reading the file; each read then checks the size the service answers.
fn known_sizes(ctx: &SessionContext, opened: &Opened) -> Result<()> {
    let mut by_store: HashMap<ObjectStoreUrl, HashMap<ObjectPath, (u64, String)>> = HashMap::new();
    for (_, folder, manifest) in &opened.orgs {
        if !matches!(folder, Location::Bucket(_)) {
            continue;
        }
        for file in manifest.tables.iter().flat_map(|t| &t.files) {
            let shown = folder.file(&file.path);
            let url = ListingTableUrl::parse(&shown)?;
            by_store
                .entry(url.object_store())
                .or_default()
                .insert(url.prefix().clone(), (file.bytes, shown));
        }
    }
    let runtime = ctx.runtime_env();
    for (store_url, sizes) in by_store {
        let inner = runtime.object_store(&store_url)?;
        let known = crate::storage::KnownSizes::new(inner, sizes);
        runtime.register_object_store(store_url.as_ref(), Arc::new(known));
    }
    Ok(())
}

/// The catalog's schema of `table`, when every organization's manifest
/// records exactly it (names, types, nullability) for the table's files:
/// an export by this orgsql. Else `None`: read the files' own.
fn known_schema(opened: &Opened, table: &str) -> Option<datafusion::arrow::datatypes::SchemaRef> {
    let schema = crate::tables::schema_from(crate::tables::find(table)?.columns);
    let same = |columns: &[ColumnEntry]| {
        columns.len() == schema.fields().len()
            && columns.iter().zip(schema.fields()).all(|(c, f)| {
                c.name == *f.name()
                    && c.data_type == f.data_type().to_string()
                    && c.nullable == f.is_nullable()
            })
    };
    opened
        .orgs
        .iter()
        .all(|(_, _, manifest)| {
            manifest
                .tables
                .iter()
                .find(|t| t.name == table)
                .is_some_and(|t| same(&t.columns))
        })
        .then_some(schema)
}

/// Each table the organizations' exports all hold, how many hold it, and
/// its files, checked.
async fn locations(
    opened: &Opened,
    checker: &mut verify::Checker,
) -> Result<Vec<(String, usize, Vec<String>)>> {
    let dir = &opened.dir;
    let mut locations: Vec<(String, usize, Vec<String>)> = Vec::new();
    for (number, (_, folder, manifest)) in opened.orgs.iter().enumerate() {
        let remote = matches!(folder, Location::Bucket(_));
        let mut unverified = Vec::new();
        for table in &manifest.tables {
            let paths = verify::readable(dir, folder, table, remote, checker, &mut unverified)?;
            match locations
                .iter_mut()
                .find(|(name, _, _)| *name == table.name)
            {
                Some((_, orgs, all)) => {
                    *orgs += 1;
                    all.extend(paths);
                }
                None if number == 0 => locations.push((table.name.clone(), 1, paths)),
                None => {}
            }
        }
        verify::warn_unverified(folder, &unverified);
    }
    locations.retain(|(_, orgs, _)| *orgs == opened.orgs.len());
    Ok(locations)
}

/// What changed from snapshot schema `old` to `new`, for every table both
/// hold that has a key (`diff_schema`): a row for each row added or
/// removed, and for each column of a changed row, with its old and new
/// value as text. Rows are compared within their organization; labels (an
/// email, a group's name) are read from the snapshot the row is in (the
/// new one, but for a removed row).
pub async fn diff(ctx: &SessionContext, old: &str, new: &str) -> Result<Vec<RecordBatch>> {
    let mut batches = Vec::new();
    for table in diffed(ctx, old, new)? {
        // The tables its labels read that each snapshot holds (an export of
        // some tables may lack them: the labels are NULL then).
        let mut held = Vec::new();
        for schema in [old, new] {
            for label in table.labels {
                if let crate::tables::LabelFrom::Lookup { table: from, .. } = label.from
                    && ctx.table_exist(TableReference::partial(schema, from))?
                {
                    held.push((schema, from));
                }
            }
        }
        let held = |schema: &str, name: &str| held.contains(&(schema, name));
        let sql = diff_query(&table, old, new, &held);
        for batch in ctx.sql(&sql).await?.collect().await? {
            batches.push(as_diff_batch(&batch)?);
        }
    }
    Ok(batches)
}

/// The tables `diff` compares: those with a key, not of the audit log (it
/// only grows), that both snapshots hold.
fn diffed(ctx: &SessionContext, old: &str, new: &str) -> Result<Vec<TableInfo>> {
    let mut tables = Vec::new();
    for table in catalog() {
        if comparable(&table)
            && ctx.table_exist(TableReference::partial(old, table.name))?
            && ctx.table_exist(TableReference::partial(new, table.name))?
        {
            tables.push(table);
        }
    }
    Ok(tables)
}

pub fn comparable(table: &TableInfo) -> bool {
    !table.key.is_empty() && table.exported() && !table.audit_log()
}

/// The tables `diff` would compare that only one of the snapshots holds
/// (an export of some tables), each with the schema that holds it: not
/// compared, which a reader should be told.
pub fn one_sided(ctx: &SessionContext, old: &str, new: &str) -> Result<Vec<(String, String)>> {
    let mut found = Vec::new();
    for table in catalog().iter().filter(|t| comparable(t)) {
        let in_old = ctx.table_exist(TableReference::partial(old, table.name))?;
        let in_new = ctx.table_exist(TableReference::partial(new, table.name))?;
        if in_old != in_new {
            let holder = if in_old { old } else { new };
            found.push((table.name.to_string(), holder.to_string()));
        }
    }
    Ok(found)
}

/// Every answer in `diff_schema` (VARCHAR may come as Utf8View).
fn as_diff_batch(batch: &RecordBatch) -> Result<RecordBatch> {
    use datafusion::arrow::compute::cast;
    let schema = Arc::new(diff_schema());
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(c, field)| cast(c, field.data_type()))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(RecordBatch::try_new(schema, columns)?)
}

/// A map from text to text (NULL allowed), as `make_map` makes it: the
/// row's key and its labels, each field on its own.
fn text_map() -> datafusion::arrow::datatypes::DataType {
    use datafusion::arrow::datatypes::{DataType, Field, Fields};
    let entries = Field::new(
        "entries",
        DataType::Struct(Fields::from(vec![
            Field::new("key", DataType::Utf8, false),
            Field::new("value", DataType::Utf8, true),
        ])),
        false,
    );
    DataType::Map(Arc::new(entries), false)
}

/// The columns of `diff`'s answer: the row's organization, table, `added`,
/// `removed` or `changed`, its key and labels (maps: name to value), and for
/// a changed row one of its changed columns, with the old and new value.
pub fn diff_schema() -> datafusion::arrow::datatypes::Schema {
    use datafusion::arrow::datatypes::{DataType, Field};
    datafusion::arrow::datatypes::Schema::new(vec![
        Field::new("org_id", DataType::Utf8, false),
        Field::new("table_name", DataType::Utf8, false),
        Field::new("change", DataType::Utf8, false),
        Field::new("key", text_map(), false),
        Field::new("labels", text_map(), false),
        Field::new("column_name", DataType::Utf8, true),
        Field::new("old_value", DataType::Utf8, true),
        Field::new("new_value", DataType::Utf8, true),
    ])
}

fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// As text, the same for every value (VARCHAR may be Utf8View).
fn text(expr: &str) -> String {
    format!("arrow_cast({expr}, 'Utf8')")
}

/// One query for a table's changes, ordered: rows added, removed, then each
/// changed column of each changed row (in the table's order), by key.
/// `held(schema, table)`: whether a snapshot holds a table a label reads.
fn diff_query(
    table: &TableInfo,
    old: &str,
    new: &str,
    held: &dyn Fn(&str, &str) -> bool,
) -> String {
    let name = literal(table.name);
    let at = |schema: &str, t: &str| format!("{}.{}", quoted(schema), quoted(t));
    let (old_t, new_t) = (at(old, table.name), at(new, table.name));
    // Rows are compared within their organization: a person in two of
    // them is two rows.
    let key: Vec<&str> = table
        .key
        .iter()
        .copied()
        .filter(|k| *k != "org_id")
        .collect();
    let on = |a: &str, b: &str| {
        std::iter::once("org_id")
            .chain(key.iter().copied())
            .map(|k| format!("{a}.{k} = {b}.{k}", k = quoted(k)))
            .collect::<Vec<_>>()
            .join(" AND ")
    };
    let key_map = {
        let pairs: Vec<String> = table
            .key
            .iter()
            .map(|k| format!("{}, {}", literal(k), text(&format!("r.{}", quoted(k)))))
            .collect();
        format!("make_map({})", pairs.join(", "))
    };
    // Labels of row `r`, read in `schema`: the map, and the joins it needs.
    // A lookup reads one value a key (a duplicate must not repeat the row),
    // and NULL when the table or the row is not there.
    let labels = |schema: &str| {
        let mut joins = String::new();
        let mut pairs = Vec::new();
        for (i, label) in table.labels.iter().enumerate() {
            let value = match label.from {
                crate::tables::LabelFrom::Own(column) => text(&format!("r.{}", quoted(column))),
                crate::tables::LabelFrom::Lookup {
                    by,
                    table: from,
                    key,
                    column,
                } if held(schema, from) => {
                    joins.push_str(&format!(
                        " LEFT JOIN (SELECT org_id, {key} AS k, max({column}) AS v FROM {from} \
                         GROUP BY org_id, {key}) l{i} ON l{i}.org_id = r.org_id AND l{i}.k = r.{by}",
                        key = quoted(key),
                        column = quoted(column),
                        from = at(schema, from),
                        by = quoted(by),
                    ));
                    text(&format!("l{i}.v"))
                }
                crate::tables::LabelFrom::Lookup { .. } => text("NULL"),
            };
            pairs.push(format!("{}, {value}", literal(label.name)));
        }
        (format!("make_map({})", pairs.join(", ")), joins)
    };
    // The key's columns as they are (k0, k1, ..), to order by.
    let sort: String = key
        .iter()
        .enumerate()
        .map(|(i, k)| format!("r.{} AS k{i}, ", quoted(k)))
        .collect();
    let nothing = text("NULL");
    let mut branches = Vec::new();
    for (order, change, this_t, other_t, schema) in [
        (1, "added", &new_t, &old_t, new),
        (2, "removed", &old_t, &new_t, old),
    ] {
        let (labels, joins) = labels(schema);
        branches.push(format!(
            "SELECT r.org_id, {order} AS change_order, {sort}0 AS position, \
             {change} AS change, {key_map} AS key, {labels} AS labels, \
             {nothing} AS column_name, {nothing} AS old_value, {nothing} AS new_value \
             FROM (SELECT t.* FROM {this_t} t LEFT ANTI JOIN {other_t} o ON {on}) r{joins}",
            change = literal(change),
            on = on("t", "o"),
        ));
    }
    // A changed row is joined once: each of its columns that differs is a
    // struct of a list, unnested to a row each.
    let values: Vec<&str> = table
        .columns
        .iter()
        .map(|c| c.name)
        .filter(|c| !table.key.contains(c) && *c != "org_id")
        .collect();
    if !values.is_empty() {
        let (labels, joins) = labels(new);
        // In parentheses: IS DISTINCT FROM binds looser than OR in the parser.
        let differs = |c: &str| format!("(o.{q} IS DISTINCT FROM r.{q})", q = quoted(c));
        let each: Vec<String> = values
            .iter()
            .enumerate()
            .map(|(position, column)| {
                let q = quoted(column);
                format!(
                    "CASE WHEN {} THEN named_struct('position', {position}, 'column_name', \
                     {}, 'old_value', {}, 'new_value', {}) END",
                    differs(column),
                    literal(column),
                    text(&format!("o.{q}")),
                    text(&format!("r.{q}")),
                )
            })
            .collect();
        let any: Vec<String> = values.iter().map(|c| differs(c)).collect();
        let order: String = (0..key.len()).map(|i| format!("k{i}, ")).collect();
        branches.push(format!(
            "SELECT org_id, 3 AS change_order, {order}c['position'] AS position, \
             'changed' AS change, key, labels, c['column_name'] AS column_name, \
             c['old_value'] AS old_value, c['new_value'] AS new_value \
             FROM (SELECT r.org_id, {sort}{key_map} AS key, {labels} AS labels, \
             unnest(make_array({each})) AS c \
             FROM {new_t} r JOIN {old_t} o ON {on}{joins} WHERE {any}) WHERE c IS NOT NULL",
            each = each.join(", "),
            on = on("r", "o"),
            any = any.join(" OR "),
        ));
    }
    let order: String = (0..key.len()).map(|i| format!("k{i}, ")).collect();
    format!(
        "SELECT org_id, {name} AS table_name, change, key, labels, column_name, old_value, \
         new_value FROM ({}) ORDER BY org_id, change_order, {order}position",
        branches.join(" UNION ALL "),
    )
}
