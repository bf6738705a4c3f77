//! Organization snapshots: a folder of Parquet files written by
//! `orgsql export`, with a `manifest.json`, and a session that queries it
//! offline under the same table names and schemas.

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::catalog::MemorySchemaProvider;
use datafusion::common::TableReference;
use datafusion::datasource::file_format::options::ReadOptions;
use datafusion::datasource::listing::{ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::error::{DataFusionError, Result};
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use serde::{Deserialize, Serialize};

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

/// A `file://` URL as the folder it names; anything else as it is.
fn local_if_file(dir: &Path) -> Result<std::path::PathBuf> {
    Ok(crate::storage::local_or_remote(&dir.display().to_string())?
        .unwrap_or_else(|| dir.to_path_buf()))
}

/// A folder's `manifest.json`: on disk, or in object storage.
async fn read_manifest<T: serde::de::DeserializeOwned>(dir: &Path) -> Result<T> {
    let shown = dir.display().to_string();
    let text = match crate::storage::local_or_remote(&shown)? {
        Some(local) => {
            let path = local.join(MANIFEST);
            std::fs::read(&path).map_err(|e| {
                DataFusionError::Execution(format!(
                    "{}: {e}; is {} a folder written by `orgsql export`?",
                    path.display(),
                    local.display()
                ))
            })?
        }
        None => crate::storage::Remote::parse(&shown)?
            .get(MANIFEST)
            .await?
            .ok_or_else(|| {
                DataFusionError::Execution(format!(
                    "{shown}: no {MANIFEST} there; is it a prefix written by `orgsql export`?"
                ))
            })?,
    };
    serde_json::from_slice(&text).map_err(|e| {
        DataFusionError::Execution(format!(
            "{}: not an orgsql manifest: {e}",
            dir.join(MANIFEST).display()
        ))
    })
}

impl Manifest {
    /// The manifest of one organization's export.
    pub async fn read(dir: &Path) -> Result<Self> {
        read_manifest(dir).await
    }
}

impl Contents {
    pub async fn read(dir: &Path) -> Result<Self> {
        let dir = &local_if_file(dir)?;
        let value: serde_json::Value = read_manifest(dir).await?;
        let invalid = |e: serde_json::Error| {
            DataFusionError::Execution(format!(
                "{}: not an orgsql manifest: {e}",
                dir.join(MANIFEST).display()
            ))
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

    /// Each organization's id and its export's folder.
    pub fn org_dirs(&self, dir: &Path) -> Result<Vec<(String, std::path::PathBuf)>> {
        match self {
            Contents::One(manifest) => Ok(vec![(manifest.org_id.clone(), dir.to_path_buf())]),
            Contents::Several(top) => top
                .orgs
                .iter()
                .map(|org| Ok((org.org_id.clone(), inside(dir, &org.path, &org.org_id)?)))
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
                DataFusionError::Execution(format!(
                    "{MANIFEST}: the data's time {text:?} is not an RFC 3339 time: {e}"
                ))
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
fn inside(dir: &Path, relative: &str, what: &str) -> Result<std::path::PathBuf> {
    let path = Path::new(relative);
    if relative.is_empty()
        || !path
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
    {
        return Err(DataFusionError::Execution(format!(
            "{}: {what:?} is at {relative:?}, outside the snapshot folder; refusing to read it",
            dir.join(MANIFEST).display(),
        )));
    }
    Ok(dir.join(path))
}

/// Bytes as lowercase hex.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The sha256 of some bytes, as lowercase hex.
pub fn sha256(bytes: &[u8]) -> String {
    hex(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes).as_ref())
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
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |e: std::io::Error| DataFusionError::Execution(format!("{path}: {e}"))
    };
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
pub async fn tampered(dir: &Path) -> Result<Vec<String>> {
    Ok(verify::verify(dir).await?.problems)
}

/// A snapshot's manifests, read once (in a bucket each read is a GET):
/// the top one and each organization's.
#[derive(Debug, Clone)]
pub struct Opened {
    /// The folder (a `file://` URL as the folder it names), or the prefix.
    pub dir: std::path::PathBuf,
    pub contents: Contents,
    /// Each organization's id, export folder and manifest.
    pub orgs: Vec<(String, std::path::PathBuf, Manifest)>,
}

impl Opened {
    pub async fn read(dir: &Path) -> Result<Self> {
        let dir = local_if_file(dir)?;
        let contents = Contents::read(&dir).await?;
        let mut orgs = Vec::new();
        for (id, folder) in contents.org_dirs(&dir)? {
            let manifest = match &contents {
                Contents::One(manifest) => manifest.clone(),
                Contents::Several(_) => Manifest::read(&folder).await?,
            };
            orgs.push((id, folder, manifest));
        }
        Ok(Self {
            dir,
            contents,
            orgs,
        })
    }

    /// Each organization's export on its own.
    pub fn each(&self) -> Vec<Opened> {
        self.orgs
            .iter()
            .map(|(id, folder, manifest)| Opened {
                dir: folder.clone(),
                contents: Contents::One(manifest.clone()),
                orgs: vec![(id.clone(), folder.clone(), manifest.clone())],
            })
            .collect()
    }
}

/// A session over a snapshot folder: every exported table under its own
/// name, and the `role_assignments` view when both its sides were exported.
/// Its clock stands at the data's as-of instant, so `now()` and the
/// controls' windows answer the same whenever the snapshot is read.
pub async fn session(dir: &Path) -> Result<SessionContext> {
    session_of(&Opened::read(dir).await?).await
}

/// `session`, of a snapshot already opened.
pub async fn session_of(opened: &Opened) -> Result<SessionContext> {
    let ctx = crate::session_context();
    crate::clock::fix(&ctx, opened.contents.as_of()?);
    register(&ctx, None, opened).await?;
    Ok(ctx)
}

/// Attach a snapshot as schema `name` (`old.users`, `new.users`) of a session.
pub async fn attach(ctx: &SessionContext, name: &str, dir: &Path) -> Result<()> {
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
    let remote = crate::storage::is_remote(&dir.display().to_string());
    for (number, (_, folder, manifest)) in opened.orgs.iter().enumerate() {
        let sizes = match remote {
            true => Some(verify::remote_sizes(folder).await?),
            false => None,
        };
        let mut unverified = Vec::new();
        for table in &manifest.tables {
            let paths =
                verify::readable(dir, folder, table, sizes.as_ref(), checker, &mut unverified)?;
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
/// hold that has a key: one row per change, with the table, `added`,
/// `removed` or `changed`, the row's organization and key (values joined
/// by `/`) and, for a changed row, the columns that changed.
pub async fn diff(ctx: &SessionContext, old: &str, new: &str) -> Result<Vec<RecordBatch>> {
    let mut batches = Vec::new();
    for table in catalog() {
        if table.key.is_empty()
            || !table.exported()
            || table.audit_log()
            || !ctx.table_exist(TableReference::partial(old, table.name))?
            || !ctx.table_exist(TableReference::partial(new, table.name))?
        {
            continue;
        }
        for sql in diff_queries(&table, old, new) {
            for batch in ctx.sql(&sql).await?.collect().await? {
                batches.push(as_diff_batch(&batch)?);
            }
        }
    }
    Ok(batches)
}

/// Every answer in one schema (the queries' literals and NULLs type loosely).
fn as_diff_batch(batch: &RecordBatch) -> Result<RecordBatch> {
    use datafusion::arrow::compute::cast;
    use datafusion::arrow::datatypes::DataType;
    let columns = batch
        .columns()
        .iter()
        .map(|c| cast(c, &DataType::Utf8))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(RecordBatch::try_new(Arc::new(diff_schema()), columns)?)
}

/// The columns of `diff`'s answer.
pub fn diff_schema() -> datafusion::arrow::datatypes::Schema {
    use datafusion::arrow::datatypes::{DataType, Field};
    datafusion::arrow::datatypes::Schema::new(vec![
        Field::new("org_id", DataType::Utf8, false),
        Field::new("table_name", DataType::Utf8, false),
        Field::new("change", DataType::Utf8, false),
        Field::new("key", DataType::Utf8, true),
        Field::new("columns", DataType::Utf8, true),
    ])
}

fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn diff_queries(table: &TableInfo, old: &str, new: &str) -> [String; 3] {
    let name = table.name;
    let (old_t, new_t) = (
        format!("{}.{}", quoted(old), quoted(name)),
        format!("{}.{}", quoted(new), quoted(name)),
    );
    // Rows are compared within their organization: a person in two of
    // them is two rows.
    let on: Vec<String> = std::iter::once(&"org_id")
        .chain(table.key.iter().filter(|k| **k != "org_id"))
        .map(|k| format!("o.{k} = n.{k}", k = quoted(k)))
        .collect();
    let on = on.join(" AND ");
    let key = |side: &str| {
        let parts: Vec<String> = table
            .key
            .iter()
            .map(|k| format!("CAST({side}.{} AS VARCHAR)", quoted(k)))
            .collect();
        format!("concat_ws('/', {})", parts.join(", "))
    };
    let values: Vec<&str> = table
        .columns
        .iter()
        .map(|c| c.name)
        .filter(|c| !table.key.contains(c) && *c != "org_id")
        .collect();
    let differs: Vec<String> = values
        .iter()
        .map(|c| format!("(o.{c} IS DISTINCT FROM n.{c})", c = quoted(c)))
        .collect();
    let which: Vec<String> = values
        .iter()
        .map(|c| {
            format!(
                "CASE WHEN o.{q} IS DISTINCT FROM n.{q} THEN '{c}' END",
                q = quoted(c)
            )
        })
        .collect();
    let nothing = "CAST(NULL AS VARCHAR)";
    let changed = if differs.is_empty() {
        format!(
            "SELECT '' AS org_id, '{name}' AS table_name, 'changed' AS change, '' AS key, \
             {nothing} AS columns WHERE false"
        )
    } else {
        format!(
            "SELECT n.org_id, '{name}' AS table_name, 'changed' AS change, {} AS key, \
             concat_ws(', ', {}) AS columns \
             FROM {new_t} n JOIN {old_t} o ON {on} WHERE {}",
            key("n"),
            which.join(", "),
            differs.join(" OR ")
        )
    };
    [
        format!(
            "SELECT n.org_id, '{name}' AS table_name, 'added' AS change, {} AS key, \
             {nothing} AS columns FROM {new_t} n LEFT ANTI JOIN {old_t} o ON {on} ORDER BY key",
            key("n")
        ),
        format!(
            "SELECT o.org_id, '{name}' AS table_name, 'removed' AS change, {} AS key, \
             {nothing} AS columns FROM {old_t} o LEFT ANTI JOIN {new_t} n ON {on} ORDER BY key",
            key("o")
        ),
        format!("{changed} ORDER BY key"),
    ]
}
