//! Reading the filters DataFusion offers a scan: the few predicate shapes the
//! Admin API can apply. One place, so every table recognises them alike.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::logical_expr::{BinaryExpr, Expr, Operator, TableProviderFilterPushDown};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::ScalarFunctionExpr;
use datafusion::physical_expr::expressions::{self as physical, CaseExpr, InListExpr};
use datafusion::physical_expr_common::physical_expr::snapshot_physical_expr;
use datafusion::scalar::ScalarValue;

/// The column an expression names, looking through casts.
fn column(expr: &Expr) -> Option<&str> {
    match expr {
        Expr::Column(c) => Some(c.name.as_str()),
        Expr::Cast(c) => column(&c.expr),
        Expr::TryCast(c) => column(&c.expr),
        _ => None,
    }
}

fn bare_column(expr: &Expr) -> Option<&str> {
    match expr {
        Expr::Column(c) => Some(c.name.as_str()),
        _ => None,
    }
}

fn literal(expr: &Expr) -> Option<&ScalarValue> {
    match expr {
        Expr::Literal(value, _) => Some(value),
        Expr::Cast(c) => literal(&c.expr),
        _ => None,
    }
}

/// `col = literal`, either way round.
fn column_equals(expr: &Expr) -> Option<(&str, &ScalarValue)> {
    let Expr::BinaryExpr(BinaryExpr {
        left,
        op: Operator::Eq,
        right,
    }) = expr
    else {
        return None;
    };
    match (column(left), column(right)) {
        (Some(col), None) => Some((col, literal(right)?)),
        (None, Some(col)) => Some((col, literal(left)?)),
        _ => None,
    }
}

/// `col = v`, `v = col`, an OR chain of those on one column (what a short
/// `IN` list becomes), or `col IN (v, ...)`: the column and its text values.
pub fn equals_any(expr: &Expr) -> Option<(&str, Vec<String>)> {
    match expr {
        Expr::BinaryExpr(BinaryExpr {
            op: Operator::Eq, ..
        }) => {
            let (col, value) = column_equals(expr)?;
            Some((col, vec![text(value)?]))
        }
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::Or,
            right,
        }) => {
            let (left_col, mut values) = equals_any(left)?;
            let (right_col, more) = equals_any(right)?;
            (left_col == right_col).then(|| {
                values.extend(more);
                (left_col, values)
            })
        }
        Expr::InList(list) if !list.negated => {
            let col = column(&list.expr)?;
            let values = list
                .list
                .iter()
                .map(|e| literal(e).and_then(text))
                .collect::<Option<Vec<_>>>()?;
            Some((col, values))
        }
        _ => None,
    }
}

/// How an equality filter (`=`, `IN`, an OR chain) reaches the API: `Exact`
/// for the columns in `exact`, `Inexact` for those in `inexact`.
pub fn equality_pushdown(
    filter: &Expr,
    exact: &[&str],
    inexact: &[&str],
) -> TableProviderFilterPushDown {
    match equals_any(filter) {
        Some((col, _)) if exact.contains(&col) => TableProviderFilterPushDown::Exact,
        Some((col, _)) if inexact.contains(&col) => TableProviderFilterPushDown::Inexact,
        _ => TableProviderFilterPushDown::Unsupported,
    }
}

/// `col`, `NOT col`, `col = true|false` (either way round): the column and the value it must have.
pub fn bool_equals(expr: &Expr) -> Option<(&str, bool)> {
    match expr {
        Expr::Not(inner) => column(inner).map(|col| (col, false)),
        Expr::BinaryExpr(BinaryExpr {
            op: Operator::Eq, ..
        }) => {
            let (col, value) = column_equals(expr)?;
            match value {
                ScalarValue::Boolean(Some(b)) => Some((col, *b)),
                _ => None,
            }
        }
        other => column(other).map(|col| (col, true)),
    }
}

fn text(value: &ScalarValue) -> Option<String> {
    match value {
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => Some(s.clone()),
        _ => None,
    }
}

/// A bound on a time column: `col op timestamp`, either way round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeBound {
    /// The column is at or after this many microseconds since the epoch.
    From(i64),
    /// The column is at or before this many microseconds since the epoch.
    To(i64),
    /// Both (`=`).
    At(i64),
}

pub fn time_bound(expr: &Expr) -> Option<(&str, TimeBound)> {
    let Expr::BinaryExpr(BinaryExpr { left, op, right }) = expr else {
        return None;
    };
    // Only the bare column: a cast may truncate (to whole seconds, to a
    // date), and a bound on the truncated value is not a bound on the time.
    let (col, op, value) = match (bare_column(left), bare_column(right)) {
        (Some(col), None) => (col, *op, literal(right)?),
        (None, Some(col)) => (col, op.swap()?, literal(left)?),
        _ => return None,
    };
    let micros = micros(value)?;
    let bound = match op {
        Operator::Gt | Operator::GtEq => TimeBound::From(micros),
        Operator::Lt | Operator::LtEq => TimeBound::To(micros),
        Operator::Eq => TimeBound::At(micros),
        _ => return None,
    };
    Some((col, bound))
}

fn micros(value: &ScalarValue) -> Option<i64> {
    match value {
        ScalarValue::TimestampSecond(Some(v), _) => v.checked_mul(1_000_000),
        ScalarValue::TimestampMillisecond(Some(v), _) => v.checked_mul(1_000),
        ScalarValue::TimestampMicrosecond(Some(v), _) => Some(*v),
        ScalarValue::TimestampNanosecond(Some(v), _) => Some(v.div_euclid(1_000)),
        _ => None,
    }
}

/// The inclusive time window all bounds on `col` allow, in microseconds.
pub fn time_window(filters: &[Expr], col: &str) -> (Option<i64>, Option<i64>) {
    let (mut from, mut to) = (None::<i64>, None::<i64>);
    for (name, bound) in filters.iter().filter_map(time_bound) {
        if name != col {
            continue;
        }
        let (lower, upper) = match bound {
            TimeBound::From(t) => (Some(t), None),
            TimeBound::To(t) => (None, Some(t)),
            TimeBound::At(t) => (Some(t), Some(t)),
        };
        from = from.max(lower);
        to = match (to, upper) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    (from, to)
}

/// The values every equality filter on `col` allows (their intersection), or
/// `None` when no filter restricts it.
pub fn allowed_values(filters: &[Expr], col: &str) -> Option<Vec<String>> {
    let mut allowed: Option<Vec<String>> = None;
    for (name, values) in filters.iter().filter_map(equals_any) {
        if name != col {
            continue;
        }
        allowed = Some(match allowed {
            None => values,
            Some(previous) => previous
                .into_iter()
                .filter(|v| values.contains(v))
                .collect(),
        });
    }
    allowed.map(|mut values| {
        values.sort();
        values.dedup();
        values
    })
}

/// Values for an API filter that ignores case: lowercased, each once, so no
/// two calls return the same rows.
pub fn case_folded(values: Vec<String>) -> Vec<String> {
    let mut folded: Vec<String> = values.into_iter().map(|v| v.to_lowercase()).collect();
    folded.sort();
    folded.dedup();
    folded
}

/// The key values a hash join's dynamic filter allows, by column: from
/// `col IN (...)`, `struct(a, b) IN (...)` (a join on several keys),
/// `col = v`, `col >= v AND col <= v`, and a partitioned join's
/// `CASE partition WHEN .. THEN <one of those>` (the union of its branches).
/// A column not pinned to a list of text values is left out: the scan then
/// reads it all.
pub fn join_key_values(expr: &Arc<dyn PhysicalExpr>) -> Vec<(String, Vec<String>)> {
    match snapshot_physical_expr(Arc::clone(expr)) {
        Ok(expr) => key_values(&expr).unwrap_or_default().into_iter().collect(),
        Err(_) => Vec::new(),
    }
}

/// `None` when the expression is `false` (no key passes).
fn key_values(expr: &Arc<dyn PhysicalExpr>) -> Option<HashMap<String, Vec<String>>> {
    if let Some(ScalarValue::Boolean(Some(false))) = physical_literal(expr) {
        return None;
    }
    if let Some(case) = expr.downcast_ref::<CaseExpr>() {
        let branches = case
            .when_then_expr()
            .iter()
            .map(|(_, then)| then)
            .chain(case.else_expr());
        let mut union: Option<HashMap<String, Vec<String>>> = None;
        for branch in branches {
            let Some(keys) = key_values(branch) else {
                continue;
            };
            union = Some(match union {
                None => keys,
                Some(mut acc) => {
                    acc.retain(|column, _| keys.contains_key(column));
                    for (column, values) in acc.iter_mut() {
                        values.extend(keys[column].iter().cloned());
                    }
                    acc
                }
            });
        }
        return Some(union.unwrap_or_default());
    }
    let mut conjuncts = Vec::new();
    split_and(expr, &mut conjuncts);
    let mut values: HashMap<String, Vec<String>> = HashMap::new();
    let mut lower: HashMap<String, String> = HashMap::new();
    let mut upper: HashMap<String, String> = HashMap::new();
    for conjunct in conjuncts {
        if let Some(list) = conjunct.downcast_ref::<InListExpr>() {
            for (column, found) in in_list_values(list) {
                values.entry(column).or_insert(found);
            }
        } else if let Some(binary) = conjunct.downcast_ref::<physical::BinaryExpr>() {
            let (Some(column), Some(value)) = (
                physical_column(binary.left()),
                physical_text(binary.right()),
            ) else {
                continue;
            };
            match binary.op() {
                Operator::Eq => {
                    values.insert(column, vec![value]);
                }
                Operator::GtEq => {
                    lower.insert(column, value);
                }
                Operator::LtEq => {
                    upper.insert(column, value);
                }
                _ => {}
            }
        }
    }
    for (column, low) in lower {
        if upper.get(&column) == Some(&low) {
            values.entry(column).or_insert_with(|| vec![low]);
        }
    }
    Some(values)
}

fn split_and<'a>(expr: &'a Arc<dyn PhysicalExpr>, out: &mut Vec<&'a Arc<dyn PhysicalExpr>>) {
    match expr.downcast_ref::<physical::BinaryExpr>() {
        Some(binary) if *binary.op() == Operator::And => {
            split_and(binary.left(), out);
            split_and(binary.right(), out);
        }
        _ => out.push(expr),
    }
}

fn in_list_values(list: &InListExpr) -> Vec<(String, Vec<String>)> {
    if list.negated() {
        return Vec::new();
    }
    if let Some(column) = physical_column(list.expr()) {
        let values: Option<Vec<String>> = list.list().iter().map(physical_text).collect();
        return values.map(|v| vec![(column, v)]).unwrap_or_default();
    }
    // A join on several keys: `struct(k1, k2) IN ({k1: .., k2: ..}, ...)`.
    let Some(function) = list.expr().downcast_ref::<ScalarFunctionExpr>() else {
        return Vec::new();
    };
    if function.name() != "struct" {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (field, arg) in function.args().iter().enumerate() {
        let Some(column) = physical_column(arg) else {
            continue;
        };
        let values: Option<Vec<String>> = list
            .list()
            .iter()
            .map(|item| match physical_literal(item)? {
                ScalarValue::Struct(array) => {
                    let value = ScalarValue::try_from_array(array.column(field), 0).ok()?;
                    text(&value)
                }
                _ => None,
            })
            .collect();
        if let Some(values) = values {
            out.push((column, values));
        }
    }
    out
}

fn physical_column(expr: &Arc<dyn PhysicalExpr>) -> Option<String> {
    expr.downcast_ref::<physical::Column>()
        .map(|c| c.name().to_string())
}

fn physical_literal(expr: &Arc<dyn PhysicalExpr>) -> Option<&ScalarValue> {
    expr.downcast_ref::<physical::Literal>().map(|l| l.value())
}

fn physical_text(expr: &Arc<dyn PhysicalExpr>) -> Option<String> {
    text(physical_literal(expr)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::{col, lit};

    fn ts(micros: i64) -> Expr {
        Expr::Literal(
            ScalarValue::TimestampMicrosecond(Some(micros), Some("UTC".into())),
            None,
        )
    }

    #[test]
    fn equalities_or_chains_and_in_lists() {
        assert_eq!(
            equals_any(&col("a").eq(lit("x"))),
            Some(("a", vec!["x".to_string()]))
        );
        assert_eq!(
            equals_any(&lit("x").eq(col("a"))),
            Some(("a", vec!["x".to_string()]))
        );
        let or = col("a").eq(lit("x")).or(col("a").eq(lit("y")));
        assert_eq!(
            equals_any(&or),
            Some(("a", vec!["x".to_string(), "y".to_string()]))
        );
        assert_eq!(
            equals_any(&col("a").eq(lit("x")).or(col("b").eq(lit("y")))),
            None
        );
        let list = col("a").in_list(vec![lit("x"), lit("y"), lit("z"), lit("w")], false);
        assert_eq!(equals_any(&list).map(|(_, v)| v.len()), Some(4));
        assert_eq!(equals_any(&col("a").in_list(vec![lit("x")], true)), None);
        assert_eq!(equals_any(&col("a").not_eq(lit("x"))), None);
    }

    #[test]
    fn time_windows_from_every_comparison_shape() {
        let filters = vec![
            col("time").gt_eq(ts(100)),
            ts(900).gt(col("time")),
            col("time").lt(ts(500)),
        ];
        assert_eq!(time_window(&filters, "time"), (Some(100), Some(500)));
        let ns = Expr::Literal(
            ScalarValue::TimestampNanosecond(Some(7_000_999), None),
            None,
        );
        assert_eq!(
            time_bound(&col("time").eq(ns)),
            Some(("time", TimeBound::At(7_000)))
        );
        assert_eq!(time_window(&[col("other").gt(ts(1))], "time"), (None, None));
    }

    #[test]
    fn allowed_values_intersect() {
        let filters = vec![
            col("a").in_list(vec![lit("x"), lit("y"), lit("z"), lit("w")], false),
            col("a").eq(lit("y")),
        ];
        assert_eq!(allowed_values(&filters, "a"), Some(vec!["y".to_string()]));
        assert_eq!(allowed_values(&filters, "b"), None);
    }
}
