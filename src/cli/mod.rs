//! The command line's front doors, beside `main.rs` which only parses and dispatches.

pub mod audit_log;
pub mod check;
pub mod export;
pub mod output;
pub mod progress;
pub mod repl;

use std::io::Write;

use datafusion::error::{DataFusionError, Result};
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::DFParser;
use datafusion::sql::sqlparser::dialect::GenericDialect;

pub use output::Format;

/// Run every statement of `sql` in order and print each result, or, with
/// `file` (`--output`), write the last statement's result there atomically.
/// Stops at the first failing statement.
pub async fn run_sql(
    ctx: &SessionContext,
    sql: &str,
    format: Format,
    out: &mut dyn Write,
    file: Option<&std::path::Path>,
) -> Result<()> {
    let statements = DFParser::parse_sql_with_dialect(sql, &GenericDialect {})?;
    let last = statements.len().saturating_sub(1);
    for (i, statement) in statements.into_iter().enumerate() {
        let (schema, batches) = export::execute(ctx, statement).await?;
        match file {
            Some(path) if i == last => export::write_file(path, format, &schema, &batches)?,
            _ => {
                // Parquet goes only to files; anything else on the way prints as a table.
                let shown = if format == Format::Parquet {
                    Format::Table
                } else {
                    format
                };
                output::print(out, shown, &schema, &batches, None)?;
                out.flush()?;
            }
        }
    }
    Ok(())
}

/// The message a user should read: an API error as the client worded it,
/// without DataFusion's wrapping.
pub fn error_message(error: &DataFusionError) -> String {
    match error.find_root() {
        DataFusionError::External(inner) => inner.to_string(),
        DataFusionError::Context(_, inner) => error_message(inner),
        other => other.to_string(),
    }
}
