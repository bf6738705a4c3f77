//! Organization snapshots: a folder of Parquet files written by
//! `orgsql export`, with a `manifest.json`, and a session that queries it
//! offline under the same table names and schemas.

use std::path::Path;

use datafusion::error::{DataFusionError, Result};
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use serde::{Deserialize, Serialize};

use crate::tables::role_assignments;

/// `manifest.json`: what a snapshot holds and how it was made.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub org_id: String,
    /// When the export started (RFC 3339, UTC).
    pub exported_at: String,
    pub orgsql_version: String,
    pub tables: Vec<TableEntry>,
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
    pub columns: Vec<ColumnEntry>,
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
    let manifest = Manifest::read(dir)?;
    let ctx = crate::session_context();
    for table in &manifest.tables {
        let path = dir.join(&table.path);
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
        ctx.register_parquet(&table.name, &location, ParquetReadOptions::default())
            .await?;
    }
    let has = |name: &str| manifest.tables.iter().any(|t| t.name == name);
    if has("user_role_assignments") && has("group_role_assignments") {
        let view = role_assignments::view_of(
            ctx.table_provider("user_role_assignments").await?,
            ctx.table_provider("group_role_assignments").await?,
        )?;
        ctx.register_table(role_assignments::NAME, view)?;
    }
    Ok(ctx)
}
