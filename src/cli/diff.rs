//! `orgsql diff OLD NEW`: what changed between two snapshots.

use crate::storage::Location;

use anyhow::Result;

use super::At;
use super::files::Output;
use super::output::Format;

#[derive(clap::Args)]
pub struct DiffArgs {
    /// The earlier snapshot (a folder, or s3://, gs://, az://)
    pub old: Location,
    /// The later snapshot
    pub new: Location,
    /// How the changes are printed
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

/// `orgsql diff OLD NEW`: the changes, printed in --format.
pub async fn run(args: &DiffArgs, output: &Output) -> Result<()> {
    let format = output
        .format(args.format, Format::EXTENSIONS)
        .map_err(anyhow::Error::msg)?;
    let ctx = crate::bare_context();
    for (name, dir) in [("old", &args.old), ("new", &args.new)] {
        crate::snapshot::attach(&ctx, name, dir).await.at("diff")?;
    }
    let changes = crate::snapshot::diff(&ctx, "old", "new").await.at("diff")?;
    let schema = match changes.first() {
        Some(batch) => batch.schema(),
        None => std::sync::Arc::new(crate::snapshot::diff_schema()),
    };
    let mut stdout = std::io::stdout().lock();
    match &output.path {
        Some(path) => crate::cli::files::write_file(path, format, &schema, &changes),
        None => crate::cli::output::print(&mut stdout, format, &schema, &changes, None),
    }
    .at("diff")
}
