//! Organization snapshots: a folder of Parquet files written by
//! `orgsql export`, with a `manifest.json`, and a session that queries it
//! offline under the same table names and schemas.

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::catalog::MemorySchemaProvider;
use datafusion::common::TableReference;
use datafusion::error::{DataFusionError, Result};
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use serde::{Deserialize, Serialize};

use crate::tables::{TableInfo, catalog};

/// `manifest.json`: what a snapshot holds and how it was made.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub org_id: String,
    /// When the export started (RFC 3339, UTC).
    pub exported_at: String,
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
    /// (events: hive-style `date=YYYY-MM-DD/` partitions).
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

impl Manifest {
    pub fn read(dir: &Path) -> Result<Self> {
        let path = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            DataFusionError::Execution(format!(
                "{}: {e}; is {} a folder written by `orgsql export`?",
                path.display(),
                dir.display()
            ))
        })?;
        serde_json::from_str(&text).map_err(|e| {
            DataFusionError::Execution(format!("{}: not an orgsql manifest: {e}", path.display()))
        })
    }
}

/// A session over a snapshot folder: every exported table under its own
/// name, and the `role_assignments` view when both its sides were exported.
pub async fn session(dir: &Path) -> Result<SessionContext> {
    let ctx = crate::session_context();
    register(&ctx, None, dir).await?;
    Ok(ctx)
}

/// Attach a snapshot as schema `name` (`old.users`, `new.users`) of a session.
pub async fn attach(ctx: &SessionContext, name: &str, dir: &Path) -> Result<Manifest> {
    let catalog = ctx
        .catalog("datafusion")
        .ok_or_else(|| DataFusionError::Internal("no default catalog".to_string()))?;
    if catalog.schema(name).is_some() {
        return Err(DataFusionError::Plan(format!(
            "--attach {name}: a schema {name} exists already"
        )));
    }
    catalog.register_schema(name, Arc::new(MemorySchemaProvider::new()))?;
    register(ctx, Some(name), dir).await
}

async fn register(ctx: &SessionContext, schema: Option<&str>, dir: &Path) -> Result<Manifest> {
    let manifest = Manifest::read(dir)?;
    let qualified = |table: &str| match schema {
        Some(schema) => TableReference::partial(schema, table),
        None => TableReference::bare(table),
    };
    for table in &manifest.tables {
        // A manifest says where its files are; it may not point outside.
        let relative = Path::new(&table.path);
        if table.path.is_empty()
            || !relative
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_)))
        {
            return Err(DataFusionError::Execution(format!(
                "{}: table {:?} is at {:?}, outside the snapshot folder; refusing to read it",
                dir.join(MANIFEST).display(),
                table.name,
                table.path
            )));
        }
        let path = dir.join(relative);
        let location = path.to_str().ok_or_else(|| {
            DataFusionError::Execution(format!("{}: not a UTF-8 path", path.display()))
        })?;
        // A folder of partitions is read recursively; the partition column was
        // only the folder name, so the files hold exactly the table's columns.
        let location = if path.is_dir() {
            format!("{location}/")
        } else {
            location.to_string()
        };
        ctx.register_parquet(
            qualified(&table.name),
            &location,
            ParquetReadOptions::default(),
        )
        .await?;
    }
    let has = |name: &str| manifest.tables.iter().any(|t| t.name == name);
    crate::tables::register_views(ctx, schema, &catalog(), has)?;
    Ok(manifest)
}

/// What changed from snapshot schema `old` to `new`, for every table both
/// hold that has a key: one row per change, with the table, `added`,
/// `removed` or `changed`, the row's key (values joined by `/`) and, for a
/// changed row, the columns that changed.
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
    let on: Vec<String> = table
        .key
        .iter()
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
        .filter(|c| !table.key.contains(c))
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
            "SELECT '{name}' AS table_name, 'changed' AS change, '' AS key, {nothing} AS columns \
             WHERE false"
        )
    } else {
        format!(
            "SELECT '{name}' AS table_name, 'changed' AS change, {} AS key, \
             concat_ws(', ', {}) AS columns \
             FROM {new_t} n JOIN {old_t} o ON {on} WHERE {}",
            key("n"),
            which.join(", "),
            differs.join(" OR ")
        )
    };
    [
        format!(
            "SELECT '{name}' AS table_name, 'added' AS change, {} AS key, {nothing} AS columns \
             FROM {new_t} n LEFT ANTI JOIN {old_t} o ON {on} ORDER BY key",
            key("n")
        ),
        format!(
            "SELECT '{name}' AS table_name, 'removed' AS change, {} AS key, {nothing} AS columns \
             FROM {old_t} o LEFT ANTI JOIN {new_t} n ON {on} ORDER BY key",
            key("o")
        ),
        format!("{changed} ORDER BY key"),
    ]
}
