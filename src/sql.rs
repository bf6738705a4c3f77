//! Parsing SQL as PostgreSQL groups it. Every statement orgsql runs (the
//! REPL, `-c`, `-f`, `\i`, controls, reviews) is parsed here.
//!
//! sqlparser 0.62, which DataFusion 55 uses, parses the right operand of
//! `IS [NOT] DISTINCT FROM` at the lowest precedence, so
//! `a IS DISTINCT FROM b AND c` becomes `a IS DISTINCT FROM (b AND c)`: a
//! wrong answer from a standard idiom. PostgreSQL binds `IS` tighter than
//! `NOT`, `AND` and `OR` and looser than comparisons. The generic dialect
//! also ranks `=` with `BETWEEN`/`IN` and above `LIKE`, and `||` with `*`,
//! where PostgreSQL has `BETWEEN`, `IN`, `LIKE`, `ILIKE` and `SIMILAR` above
//! the comparisons and `||` (as every other operator) below `+` and `-`.
//!
//! `Postgresish` is the generic dialect with PostgreSQL's precedence
//! (https://www.postgresql.org/docs/current/sql-syntax-lexical.html#SQL-PRECEDENCE)
//! and the right operand of `IS [NOT] DISTINCT FROM` parsed as sqlparser
//! 0.64 does (apache/datafusion-sqlparser-rs#2436). `tests/slt/precedence.slt`
//! holds PostgreSQL's answers. `upstream_still_misgroups` below fails once
//! DataFusion takes that fix: then the `parse_infix` override goes.

use std::collections::VecDeque;

use datafusion::common::TableReference;
use datafusion::dataframe::DataFrame;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::{DFParser, Statement};
use datafusion::sql::sqlparser::ast::{
    Expr, Query, SelectFlavor, SelectItem, SetExpr, Statement as Sql, WildcardAdditionalOptions,
};
use datafusion::sql::sqlparser::dialect::{Dialect, GenericDialect, Precedence};
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::Token;

/// The statements of `sql`, grouped as PostgreSQL groups them. A bare
/// `FROM users` is `SELECT * FROM users`, as in DuckDB (DataFusion would
/// answer it with no columns).
pub fn parse(sql: &str) -> Result<VecDeque<Statement>> {
    let mut statements = DFParser::parse_sql_with_dialect(sql, &Postgresish)?;
    for statement in &mut statements {
        if let Statement::Statement(statement) = statement
            && let Sql::Query(query) = statement.as_mut()
        {
            select_all_of_from_first(query);
        }
    }
    Ok(statements)
}

/// `FROM t` (no SELECT) selects every column.
fn select_all_of_from_first(query: &mut Query) {
    match query.body.as_mut() {
        SetExpr::Select(select)
            if select.flavor == SelectFlavor::FromFirstNoSelect && select.projection.is_empty() =>
        {
            select
                .projection
                .push(SelectItem::Wildcard(WildcardAdditionalOptions::default()));
        }
        SetExpr::Query(inner) => select_all_of_from_first(inner),
        _ => {}
    }
}

/// `text` as an SQL string literal: quoted, a quote in it doubled.
pub fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The tables the one statement of `sql` names (CTEs excluded), bare
/// names, found without planning it.
pub fn tables_named(sql: &str) -> Result<Vec<String>> {
    let mut statements = parse(sql)?;
    let (Some(statement), true) = (statements.pop_front(), statements.is_empty()) else {
        return Err(DataFusionError::Plan(
            "expected exactly one SQL statement".to_string(),
        ));
    };
    let (tables, _ctes) = datafusion::sql::resolve::resolve_table_references(&statement, true)?;
    Ok(tables.iter().map(|t| t.table().to_string()).collect())
}

/// The one statement of `sql`, planned in `ctx` (as `SessionContext::sql`,
/// with `parse`'s grouping).
pub async fn frame(ctx: &SessionContext, sql: &str) -> Result<DataFrame> {
    let mut statements = parse(sql)?;
    let (Some(statement), true) = (statements.pop_front(), statements.is_empty()) else {
        return Err(DataFusionError::Plan(
            "expected exactly one SQL statement".to_string(),
        ));
    };
    ctx.execute_logical_plan(plan(ctx, statement).await?).await
}

/// Plan one statement. When that fails and a table it names is not in the
/// session, that is the error, with the nearest table names: found by
/// looking its tables up as DataFusion does, not from DataFusion's words.
pub async fn plan(ctx: &SessionContext, statement: Statement) -> Result<LogicalPlan> {
    let state = ctx.state();
    let references = state.resolve_table_references(&statement)?;
    let error = match state.statement_to_plan(statement).await {
        Ok(plan) => return Ok(plan),
        Err(error) => error,
    };
    for reference in references {
        let found = match state.schema_for_ref(reference.clone()) {
            // An error other than "none" (a file that cannot be read) is
            // not a missing table: the planner's error says it.
            Ok(schema) => !matches!(schema.table(reference.table()).await, Ok(None)),
            Err(_) => false,
        };
        if !found {
            return Err(DataFusionError::External(Box::new(UnknownTable::near(
                &reference,
            ))));
        }
    }
    Err(error)
}

/// A statement names a table the session does not have.
#[derive(Debug, thiserror::Error)]
#[error("no table {name}{hint} (\\d lists the tables)")]
pub struct UnknownTable {
    name: String,
    hint: String,
}

impl UnknownTable {
    /// With the one or two catalog tables nearest by name, or where a
    /// watch's table is.
    fn near(reference: &TableReference) -> Self {
        let bare = reference.table();
        let mut near: Vec<(f64, &str)> = crate::tables::catalog()
            .iter()
            .map(|t| (strsim::jaro_winkler(bare, t.name), t.name))
            .filter(|(score, _)| *score > 0.8)
            .collect();
        near.sort_by(|a, b| b.0.total_cmp(&a.0));
        let hint = match near.as_slice() {
            _ if let Some(watch) = crate::tables::watch_table(bare) => format!(
                ": it exists only inside `orgsql watch`, for its rules; \\d {} describes it",
                watch.name
            ),
            [] => String::new(),
            [(_, one)] => format!("; did you mean {one}?"),
            [(_, one), (_, two), ..] => format!("; did you mean {one} or {two}?"),
        };
        Self {
            name: reference.to_string(),
            hint,
        }
    }
}

/// sqlparser's generic dialect, but for the right operand of
/// `IS [NOT] DISTINCT FROM`, parsed at the precedence of `IS`.
#[derive(Debug)]
pub struct Postgresish;

/// What `GenericDialect` answers, for each setting it overrides (the others
/// keep the trait's defaults, as `GenericDialect` does).
macro_rules! as_generic {
    ($($name:ident),* $(,)?) => {
        $(fn $name(&self) -> bool { GenericDialect.$name() })*
    };
}

impl Dialect for Postgresish {
    /// The parser's many `dialect_of!(self is GenericDialect)` tests hold.
    fn dialect(&self) -> std::any::TypeId {
        GenericDialect.dialect()
    }

    /// PostgreSQL's order, highest first: `.`, `::`, `AT TIME ZONE`,
    /// `* / %`, `+ -`, any other operator (`||`, `&`, `|`, `->`, ...),
    /// `BETWEEN IN LIKE ILIKE SIMILAR`, comparisons, `IS`, `NOT`, `AND`,
    /// `OR`. Among the other operators the generic dialect's order stays.
    fn prec_value(&self, precedence: Precedence) -> u8 {
        match precedence {
            Precedence::Period => 100,
            Precedence::DoubleColon => 50,
            Precedence::AtTz => 41,
            Precedence::MulDivModOp => 40,
            Precedence::PlusMinus => 30,
            Precedence::Xor => 27,
            Precedence::Ampersand => 26,
            Precedence::Caret => 25,
            Precedence::Pipe | Precedence::Colon | Precedence::PgOther => 24,
            Precedence::Between | Precedence::Like => 21,
            Precedence::Eq => 20,
            Precedence::Is => 17,
            Precedence::UnaryNot => 15,
            Precedence::And => 10,
            Precedence::Or => 5,
        }
    }

    /// `||` is one of PostgreSQL's other operators (the generic dialect
    /// ranks it with `*`); every other token as the generic dialect does.
    fn get_next_precedence(&self, parser: &Parser) -> Option<Result<u8, ParserError>> {
        (parser.peek_token_ref().token == Token::StringConcat)
            .then(|| Ok(self.prec_value(Precedence::PgOther)))
    }

    fn parse_infix(
        &self,
        parser: &mut Parser,
        expr: &Expr,
        _precedence: u8,
    ) -> Option<Result<Expr, ParserError>> {
        let distinct = if parser.parse_keywords(&[Keyword::IS, Keyword::DISTINCT, Keyword::FROM]) {
            true
        } else if parser.parse_keywords(&[
            Keyword::IS,
            Keyword::NOT,
            Keyword::DISTINCT,
            Keyword::FROM,
        ]) {
            false
        } else {
            return None;
        };
        let left = Box::new(expr.clone());
        Some(
            parser
                .parse_subexpr(self.prec_value(Precedence::Is))
                .map(|right| match distinct {
                    true => Expr::IsDistinctFrom(left, Box::new(right)),
                    false => Expr::IsNotDistinctFrom(left, Box::new(right)),
                }),
        )
    }

    fn is_delimited_identifier_start(&self, ch: char) -> bool {
        GenericDialect.is_delimited_identifier_start(ch)
    }

    fn is_identifier_start(&self, ch: char) -> bool {
        GenericDialect.is_identifier_start(ch)
    }

    fn is_identifier_part(&self, ch: char) -> bool {
        GenericDialect.is_identifier_part(ch)
    }

    as_generic!(
        supports_unicode_string_literal,
        supports_partition_by_after_order_by,
        supports_array_join_syntax,
        supports_group_by_expr,
        supports_group_by_with_modifier,
        supports_left_associative_joins_without_parens,
        supports_connect_by,
        supports_match_recognize,
        supports_pipe_operator,
        supports_start_transaction_modifier,
        supports_window_function_null_treatment_arg,
        supports_dictionary_syntax,
        supports_window_clause_named_window_reference,
        supports_parenthesized_set_variables,
        supports_select_wildcard_except,
        support_map_literal_syntax,
        allow_extract_custom,
        allow_extract_single_quotes,
        supports_extract_comma_syntax,
        supports_create_view_comment_syntax,
        supports_parens_around_table_factor,
        supports_values_as_table_factor,
        supports_create_index_with_clause,
        supports_explain_with_utility_options,
        supports_limit_comma,
        supports_update_order_by,
        supports_from_first_select,
        supports_projection_trailing_commas,
        supports_asc_desc_in_column_definition,
        supports_try_convert,
        supports_bitwise_shift_operators,
        supports_comment_on,
        supports_load_extension,
        supports_named_fn_args_with_assignment_operator,
        supports_struct_literal,
        supports_empty_projections,
        supports_nested_comments,
        supports_multiline_comment_hints,
        supports_user_host_grantee,
        supports_string_escape_constant,
        supports_array_typedef_with_brackets,
        supports_match_against,
        supports_set_names,
        supports_comma_separated_set_assignments,
        supports_filter_during_aggregation,
        supports_select_wildcard_exclude,
        supports_data_type_signed_suffix,
        supports_interval_options,
        supports_quote_delimited_string,
        supports_select_wildcard_replace,
        supports_select_wildcard_ilike,
        supports_select_wildcard_rename,
        supports_optimize_table,
        supports_install,
        supports_detach,
        supports_prewhere,
        supports_with_fill,
        supports_limit_by,
        supports_interpolate,
        supports_settings,
        supports_select_format,
        supports_comment_optimizer_hint,
        supports_constraint_keyword_without_name,
        supports_key_column_option,
        supports_comma_separated_trim,
        supports_cte_without_as,
        supports_select_item_multi_column_alias,
        supports_xml_expressions,
    );
}
