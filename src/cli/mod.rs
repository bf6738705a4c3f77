//! The command line's front doors, beside `main.rs` which only parses and dispatches.

pub mod output;
pub mod repl;

use std::io::Write;

use datafusion::error::{DataFusionError, Result};
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::DFParser;
use datafusion::sql::sqlparser::dialect::GenericDialect;

pub use output::Format;

/// Run every statement of `sql` in order and print each result. Stops at the
/// first failing statement.
pub async fn run_sql(
    ctx: &SessionContext,
    sql: &str,
    format: Format,
    out: &mut dyn Write,
) -> Result<()> {
    let statements = DFParser::parse_sql_with_dialect(sql, &GenericDialect {})?;
    for statement in statements {
        let plan = ctx.state().statement_to_plan(statement).await?;
        let frame = ctx.execute_logical_plan(plan).await?;
        let schema = frame.schema().inner().clone();
        let batches = frame.collect().await?;
        output::print(out, format, &schema, &batches, None)?;
        out.flush()?;
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
