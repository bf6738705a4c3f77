//! Running SQL statements: the one runner the one-shot mode, the REPL and
//! `--output` share. A `COPY ... TO` a local path writes atomically.

use std::io::Write;
use std::path::Path;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::error::{DataFusionError, Result};
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::{DFParser, Statement};
use datafusion::sql::sqlparser::dialect::GenericDialect;

use super::files::{AtomicPath, write_file};
use super::output::{self, Format};

/// Plan and run one statement, returning its result. A `COPY ... TO` a local
/// path writes atomically.
pub async fn execute(
    ctx: &SessionContext,
    statement: Statement,
) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    match statement {
        Statement::CopyTo(mut copy) if is_local(&copy.target) => {
            let target = copy
                .target
                .strip_prefix("file://")
                .unwrap_or(&copy.target)
                .to_string();
            let directory = target.ends_with('/');
            let atomic = AtomicPath::new(Path::new(target.trim_end_matches('/')))
                .map_err(|e| DataFusionError::Execution(format!("COPY TO {target}: {e}")))?;
            copy.target = atomic.temp().display().to_string();
            if directory {
                copy.target.push('/');
            }
            let result = run(ctx, Statement::CopyTo(copy)).await?;
            atomic
                .commit()
                .map_err(|e| DataFusionError::Execution(format!("COPY TO {target}: {e}")))?;
            Ok(result)
        }
        other => run(ctx, other).await,
    }
}

async fn run(ctx: &SessionContext, statement: Statement) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let plan = ctx.state().statement_to_plan(statement).await?;
    let frame = ctx.execute_logical_plan(plan).await?;
    let schema = frame.schema().inner().clone();
    let batches = frame.collect().await?;
    Ok((schema, batches))
}

/// A path on this machine, not an object store URL.
fn is_local(target: &str) -> bool {
    target.starts_with("file://") || !target.contains("://")
}

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
        let (schema, batches) = execute(ctx, statement).await?;
        match file {
            Some(path) if i == last => write_file(path, format, &schema, &batches)?,
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
