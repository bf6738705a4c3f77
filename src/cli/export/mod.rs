//! `orgsql export`: every table (or some) as Parquet with a manifest, into
//! a folder (`folder`) or a prefix in object storage (`bucket`, which
//! stages a folder export and uploads it). Which one is decided here, once.

pub(crate) mod audit_log;
mod bucket;
mod compact;
mod folder;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use datafusion::error::Result;

use crate::cli::At;
use crate::session::{Options, Session, Source};
use crate::storage::Location;

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

/// Export the organizations into `out`: a folder or a prefix in object
/// storage. Says what it wrote.
pub async fn run(
    session: &Session,
    out: &Location,
    tables: Option<Vec<String>>,
    since: Option<String>,
    log: &mut dyn Write,
) -> Result<String> {
    match out {
        Location::Bucket(url) => {
            let remote = crate::storage::Remote::at(url)?;
            // Ctrl-C and SIGTERM stop the uploads, each aborted, rather than
            // end the process with parts left in the bucket.
            let (interrupt, stop) = tokio::sync::watch::channel(false);
            let signals = tokio::spawn(async move {
                crate::cli::stop_signal(true).await;
                let _ = interrupt.send(true);
            });
            let exported = bucket::export(session, &remote, tables, since, log, &stop).await;
            signals.abort();
            exported
        }
        Location::Folder(local) => {
            let local = ExportOptions {
                out: local.clone(),
                tables,
                since,
                published: None,
            };
            export_orgs(session, &local, log).await
        }
    }
}

#[derive(clap::Args)]
pub struct ExportArgs {
    /// The folder to write (created if missing), or a prefix in object
    /// storage: s3://bucket/prefix/, gs://..., az://..., abfss://...
    #[arg(long, value_name = "DIR")]
    pub out: Location,
    /// Only these tables, comma-separated
    #[arg(long, value_name = "A,B", value_delimiter = ',')]
    pub tables: Option<Vec<String>>,
    /// Only events at or after this time, e.g. 2026-11-01 or 2026-11-01T00:00:00Z
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
}

/// `orgsql export`: a session on the API (as an export: each listing read
/// once, nothing cached), exported; says what it wrote.
pub async fn command(options: &Options, args: &ExportArgs) -> anyhow::Result<ExitCode> {
    let source = Source::of(options)?;
    if matches!(source, Source::Snapshot(_)) {
        anyhow::bail!("export reads the API; --snapshot DIR is already an export");
    }
    let session = source.open(options, false).await?;
    let Some(orgs) = session.orgs.as_ref() else {
        anyhow::bail!("export reads the API");
    };
    let (tables, since) = (args.tables.clone(), args.since.clone());
    let written = run(&session, &args.out, tables, since, &mut std::io::stderr())
        .await
        .at("export");
    crate::cli::say_notices(orgs);
    eprintln!("wrote {}", written?);
    Ok(ExitCode::SUCCESS)
}
