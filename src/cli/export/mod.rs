//! `orgsql export`: every table (or some) as Parquet with a manifest, into
//! a folder (`folder`) or a prefix in object storage (`bucket`, which
//! stages a folder export and uploads it). Which one is decided here, once.

mod audit_log;
mod bucket;
mod folder;

use std::io::Write;
use std::path::PathBuf;

use datafusion::error::Result;

pub use folder::{export, export_orgs};

/// What `orgsql export` writes.
pub struct ExportOptions {
    pub out: PathBuf,
    /// Only these tables; every table when `None`.
    pub tables: Option<Vec<String>>,
    /// Only events (and their context) at or after this time.
    pub since: Option<String>,
    /// `out` is staged for this prefix in object storage: the earlier
    /// export it adds to is there (its manifest was copied into `out`).
    pub published: Option<crate::storage::Remote>,
}

/// Export the organizations into `options.out`: a folder (also a
/// `file://` URL) or a prefix in object storage. Says what it wrote.
pub async fn run(
    orgs: &crate::api::Orgs,
    options: &ExportOptions,
    log: &mut dyn Write,
) -> Result<String> {
    match crate::storage::local_or_remote(&options.out.display().to_string())? {
        None => bucket::export(orgs, options, log).await,
        Some(local) => {
            let local = ExportOptions {
                out: local,
                tables: options.tables.clone(),
                since: options.since.clone(),
                published: None,
            };
            export_orgs(orgs, &local, log).await
        }
    }
}
