//! Running SQL statements: the one runner the one-shot mode, the REPL and
//! `--output` share. A `COPY ... TO` a local path writes atomically.

use std::path::Path;

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::{Column, ScalarValue};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder};
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement;
use datafusion::sql::sqlparser::dialect::GenericDialect;

use super::files::AtomicPath;
use super::output;

/// Plan and run one statement, returning its result. A `COPY ... TO` a local
/// path writes atomically, and replaces a full folder only when told to
/// (`OPTIONS ('overwrite' 'true')`) and only one that a COPY wrote. With
/// `csv_safe`, a COPY to CSV writes formula cells as text (`--csv-safe`).
pub async fn execute(
    ctx: &SessionContext,
    statement: Statement,
    csv_safe: bool,
) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    match statement {
        Statement::CopyTo(mut copy) if is_local(&copy.target) => {
            let target = copy
                .target
                .strip_prefix("file://")
                .unwrap_or(&copy.target)
                .to_string();
            let overwrite = take_overwrite(&mut copy.options, &target)?;
            super::files::replaceable(Path::new(target.trim_end_matches('/')), overwrite)
                .map_err(|e| DataFusionError::Execution(format!("COPY TO '{target}': {e}")))?;
            let directory = target.ends_with('/');
            let atomic = AtomicPath::new(Path::new(target.trim_end_matches('/')))
                .map_err(|e| DataFusionError::Execution(format!("COPY TO {target}: {e}")))?;
            copy.target = atomic.temp().display().to_string();
            if directory {
                copy.target.push('/');
            }
            let result = plan_and_collect(ctx, Statement::CopyTo(copy), csv_safe).await?;
            atomic
                .commit()
                .map_err(|e| DataFusionError::Execution(format!("COPY TO {target}: {e}")))?;
            Ok(result)
        }
        other => plan_and_collect(ctx, other, csv_safe).await,
    }
}

/// Plan and collect in a task of its own: dropping the future (Ctrl-C,
/// SIGTERM) aborts the task, so a CPU-bound statement stops at its next
/// batch instead of running on unseen.
async fn plan_and_collect(
    ctx: &SessionContext,
    statement: Statement,
    csv_safe: bool,
) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let ctx = ctx.clone();
    let task = datafusion::common::runtime::SpawnedTask::spawn(async move {
        let mut plan = crate::sql::plan(&ctx, statement).await?;
        if csv_safe {
            plan = formulas_as_text(plan)?;
        }
        let frame = ctx.execute_logical_plan(plan).await?;
        let schema = frame.schema().inner().clone();
        let batches = frame.collect().await?;
        Ok((schema, batches))
    });
    task.join_unwind()
        .await
        .map_err(|e| DataFusionError::External(Box::new(e)))?
}

/// A COPY to CSV with its text columns (and their names) written as
/// `sheet::cell` writes them: the rows go through the function that writes
/// review files. Partition columns become folder names, not cells: kept.
/// Any other plan is returned as it is.
fn formulas_as_text(plan: LogicalPlan) -> Result<LogicalPlan> {
    use datafusion::logical_expr::{ColumnarValue, Volatility, cast, create_udf};
    let LogicalPlan::Copy(mut copy) = plan else {
        return Ok(plan);
    };
    if copy.file_type.get_ext() != "csv" {
        return Ok(LogicalPlan::Copy(copy));
    }
    let as_text = create_udf(
        "csv_safe",
        vec![DataType::Utf8],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| match args {
            [ColumnarValue::Array(array)] => Ok(ColumnarValue::Array(
                crate::sheet::formulas_as_text_array(array)?,
            )),
            [ColumnarValue::Scalar(value)] => {
                let array = value.to_array()?;
                let text = crate::sheet::formulas_as_text_array(&array)?;
                Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(
                    &text, 0,
                )?))
            }
            _ => Err(DataFusionError::Internal(
                "csv_safe takes one argument".to_string(),
            )),
        }),
    );
    let input = Arc::unwrap_or_clone(copy.input);
    let exprs: Vec<Expr> = input
        .schema()
        .iter()
        .map(|(qualifier, field)| {
            let column = Expr::Column(Column::from((qualifier, field)));
            let name = field.name();
            if copy.partition_by.contains(name) {
                return column;
            }
            let value = if crate::sheet::is_text(field.data_type()) {
                as_text.call(vec![cast(column, DataType::Utf8)])
            } else {
                column
            };
            value.alias(crate::sheet::cell(name))
        })
        .collect();
    copy.input = Arc::new(LogicalPlanBuilder::from(input).project(exprs)?.build()?);
    Ok(LogicalPlan::Copy(copy))
}

/// COPY's `overwrite` option, taken out of the options DataFusion reads
/// (it knows none such): whether the user named a folder to replace.
fn take_overwrite(
    options: &mut Vec<(String, datafusion::sql::sqlparser::ast::Value)>,
    target: &str,
) -> Result<bool> {
    use datafusion::sql::sqlparser::ast::Value;
    let mut overwrite = false;
    let mut kept = Vec::with_capacity(options.len());
    for (key, value) in options.drain(..) {
        if !key.eq_ignore_ascii_case("overwrite") {
            kept.push((key, value));
            continue;
        }
        overwrite = match &value {
            Value::Boolean(b) => *b,
            Value::SingleQuotedString(s) | Value::DoubleQuotedString(s)
                if s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false") =>
            {
                s.eq_ignore_ascii_case("true")
            }
            other => {
                return Err(DataFusionError::Plan(format!(
                    "COPY TO '{target}': overwrite is true or false, not {other}"
                )));
            }
        };
    }
    *options = kept;
    Ok(overwrite)
}

/// A path on this machine, not an object store URL.
fn is_local(target: &str) -> bool {
    target.starts_with("file://") || !target.contains("://")
}

/// Whether a statement answers with rows worth keeping (a query, EXPLAIN,
/// SHOW), as opposed to DDL, settings or COPY, which report what they did.
pub fn is_query(statement: &Statement) -> bool {
    use datafusion::sql::sqlparser::ast::Statement as Sql;
    match statement {
        Statement::Statement(sql) => matches!(
            sql.as_ref(),
            Sql::Query(_)
                | Sql::Explain { .. }
                | Sql::ExplainTable { .. }
                | Sql::ShowTables { .. }
                | Sql::ShowColumns { .. }
                | Sql::ShowVariable { .. }
        ),
        Statement::Explain(_) => true,
        _ => false,
    }
}

/// What a statement that answers no rows of its own did, said in words
/// instead of DataFusion's empty or one-count table.
pub enum Done {
    /// DDL: "Created view admins".
    Said(String),
    /// COPY: the rows written and where.
    Copied(String),
}

impl Done {
    pub fn of(statement: &Statement) -> Option<Done> {
        use datafusion::sql::sqlparser::ast::Statement as Sql;
        Some(Done::Said(match statement {
            Statement::CopyTo(copy) => return Some(Done::Copied(copy.target.clone())),
            Statement::CreateExternalTable(table) => {
                format!("Created external table {}", table.name)
            }
            Statement::Statement(sql) => match sql.as_ref() {
                Sql::CreateView(view) => format!("Created view {}", view.name),
                Sql::CreateTable(table) => format!("Created table {}", table.name),
                Sql::Drop {
                    object_type, names, ..
                } => format!(
                    "Dropped {} {}",
                    object_type.to_string().to_lowercase(),
                    names
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                Sql::Set(_) => "Set".to_string(),
                _ => return None,
            },
            _ => return None,
        }))
    }

    /// The words, given what the statement answered (COPY: its count).
    pub fn say(&self, batches: &[RecordBatch]) -> String {
        match self {
            Done::Said(words) => format!("{words}."),
            Done::Copied(target) => {
                let rows = copied_rows(batches);
                let s = if rows == 1 { "" } else { "s" };
                format!("Wrote {rows} row{s} to {}.", output::visible(target))
            }
        }
    }
}

/// The rows a COPY wrote: the count it answers.
pub fn copied_rows(batches: &[RecordBatch]) -> u64 {
    batches
        .iter()
        .filter_map(|b| {
            b.column(0)
                .as_any()
                .downcast_ref::<datafusion::arrow::array::UInt64Array>()
        })
        .flat_map(|counts| counts.iter().flatten())
        .sum()
}

/// The line each statement of `sql` starts on (1-based), in order.
pub fn statement_lines(sql: &str) -> Vec<u64> {
    use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
    let Ok(tokens) = Tokenizer::new(&GenericDialect {}, sql).tokenize_with_location() else {
        return Vec::new();
    };
    let mut lines = Vec::new();
    let mut open = false;
    for token in tokens {
        match token.token {
            Token::Whitespace(_) => {}
            Token::SemiColon => open = false,
            _ if !open => {
                open = true;
                lines.push(token.span.start.line);
            }
            _ => {}
        }
    }
    lines
}

/// An error of statement `index` (0-based) of a script of several: said as
/// "statement 2, line 3: ...", so a long script's failure can be found.
pub fn in_statement(
    error: DataFusionError,
    index: usize,
    lines: &[u64],
    several: bool,
) -> DataFusionError {
    if !several {
        return error;
    }
    let line = lines
        .get(index)
        .map(|l| format!(", line {l}"))
        .unwrap_or_default();
    error.context(format!("statement {}{line}", index + 1))
}

/// For a parse error, on stderr: the line of `sql` it is on and a caret
/// under where the parser stopped.
pub fn show_parse_error(sql: &str, error: &DataFusionError) {
    if let Some(pointer) = parse_error_pointer(sql, error) {
        for line in pointer.lines() {
            eprintln!("{}", output::visible(line));
        }
    }
}

fn parse_error_pointer(sql: &str, error: &DataFusionError) -> Option<String> {
    let message = error.to_string();
    let at = message.rfind("at Line: ")?;
    let mut numbers = message[at..]
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .filter_map(|s| s.parse::<usize>().ok());
    let (line, column) = (numbers.next()?, numbers.next()?);
    let text = sql.lines().nth(line.checked_sub(1)?)?;
    let column = column.saturating_sub(1).min(text.chars().count());
    Some(format!("{text}\n{}^", " ".repeat(column)))
}
