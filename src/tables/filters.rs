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
use serde_json::{Value, json};

use crate::api::PageRequest;

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

/// A filter the API applies, as a table declares it: the column, the API's
/// name for it, whether the API applies it fully, and the shape it takes.
/// The one declaration answers DataFusion's pushdown question
/// (`pushdown`) and builds the calls (`apply`), so the two cannot drift.
#[derive(Debug, Clone, Copy)]
pub struct Filter {
    pub column: &'static str,
    /// A POST body field (the searches) or a query parameter (GETs).
    pub param: &'static str,
    /// The API applies it fully (`Exact`), or only narrows (`Inexact`:
    /// DataFusion checks every row again).
    pub exact: bool,
    pub shape: Shape,
    /// Not sent when the query also filters this column (the API takes one
    /// or the other).
    pub unless: Option<&'static str>,
}

#[derive(Debug, Clone, Copy)]
pub enum Shape {
    /// `=`, `IN`, an OR chain: text values, at most `max` a call.
    Values {
        max: usize,
        /// A longer list is split over several calls (`true`), or not sent.
        split: bool,
        /// The API ignores case: each value once, lowercased.
        fold_case: bool,
        /// The API's enum; a list with a value outside it is not sent.
        allowed: Option<&'static [&'static str]>,
        /// A GET sends `a,b` in one parameter (else `p=a&p=b`).
        joined: bool,
    },
    /// Exactly one value of `allowed` (e.g. `claimStatus`).
    Single { allowed: &'static [&'static str] },
    /// `col`, `NOT col`, `col = true|false`.
    Flag,
    /// Bounds on a time, in epoch milliseconds: `param` takes the lower,
    /// `until` the upper; each widened by a millisecond, since the API's
    /// inclusiveness is not documented.
    Time { until: &'static str },
    /// The id a fan-out calls once for: only the ids named are called.
    Parent,
}

impl Filter {
    /// `=`/`IN` values, split over calls of `max`; Inexact.
    pub const fn values(column: &'static str, param: &'static str, max: usize) -> Self {
        Self {
            column,
            param,
            exact: false,
            shape: Shape::Values {
                max,
                split: true,
                fold_case: false,
                allowed: None,
                joined: false,
            },
            unless: None,
        }
    }

    /// The API applies it fully.
    pub const fn exact(mut self) -> Self {
        self.exact = true;
        self
    }

    /// The API ignores case.
    pub const fn fold_case(mut self) -> Self {
        if let Shape::Values {
            max,
            split,
            allowed,
            joined,
            ..
        } = self.shape
        {
            self.shape = Shape::Values {
                max,
                split,
                fold_case: true,
                allowed,
                joined,
            };
        }
        self
    }

    /// The API knows only these values.
    pub const fn allowed(mut self, values: &'static [&'static str]) -> Self {
        if let Shape::Values {
            max,
            split,
            fold_case,
            joined,
            ..
        } = self.shape
        {
            self.shape = Shape::Values {
                max,
                split,
                fold_case,
                allowed: Some(values),
                joined,
            };
        }
        self
    }

    /// A list longer than one call takes is left to DataFusion.
    pub const fn unsplit(mut self) -> Self {
        if let Shape::Values {
            max,
            fold_case,
            allowed,
            joined,
            ..
        } = self.shape
        {
            self.shape = Shape::Values {
                max,
                split: false,
                fold_case,
                allowed,
                joined,
            };
        }
        self
    }

    /// Sent as one comma-joined query parameter.
    pub const fn joined(mut self) -> Self {
        if let Shape::Values {
            max,
            split,
            fold_case,
            allowed,
            ..
        } = self.shape
        {
            self.shape = Shape::Values {
                max,
                split,
                fold_case,
                allowed,
                joined: true,
            };
        }
        self
    }

    /// Not sent when the query filters `column` too.
    pub const fn unless(mut self, column: &'static str) -> Self {
        self.unless = Some(column);
        self
    }

    pub const fn single(
        column: &'static str,
        param: &'static str,
        allowed: &'static [&'static str],
    ) -> Self {
        Self {
            column,
            param,
            exact: false,
            shape: Shape::Single { allowed },
            unless: None,
        }
    }

    pub const fn flag(column: &'static str, param: &'static str) -> Self {
        Self {
            column,
            param,
            exact: false,
            shape: Shape::Flag,
            unless: None,
        }
    }

    pub const fn time(column: &'static str, from: &'static str, until: &'static str) -> Self {
        Self {
            column,
            param: from,
            exact: false,
            shape: Shape::Time { until },
            unless: None,
        }
    }

    /// The parent id of a fan-out (`param`: its path parameter): exact.
    pub const fn parent(column: &'static str, param: &'static str) -> Self {
        Self {
            column,
            param,
            exact: true,
            shape: Shape::Parent,
            unless: None,
        }
    }

    /// Whether `expr` has this filter's shape on its column.
    fn matches(&self, expr: &Expr) -> bool {
        match self.shape {
            Shape::Values { .. } | Shape::Single { .. } | Shape::Parent => {
                equals_any(expr).is_some_and(|(col, _)| col == self.column)
            }
            Shape::Flag => bool_equals(expr).is_some_and(|(col, _)| col == self.column),
            Shape::Time { .. } => time_bound(expr).is_some_and(|(col, _)| col == self.column),
        }
    }
}

/// DataFusion's question, answered from the declaration.
pub fn pushdown(declared: &[Filter], expr: &Expr) -> TableProviderFilterPushDown {
    match declared.iter().find(|f| f.matches(expr)) {
        Some(f) if f.exact => TableProviderFilterPushDown::Exact,
        Some(_) => TableProviderFilterPushDown::Inexact,
        None => TableProviderFilterPushDown::Unsupported,
    }
}

/// The calls that ask `base` for what `filters` allow, with every declared
/// filter but the parent id sent as the API takes it. Empty when the
/// filters contradict each other (nothing can match).
pub fn apply(declared: &[Filter], filters: &[Expr], base: PageRequest) -> Vec<PageRequest> {
    let mut requests = vec![base];
    for filter in declared {
        if filter
            .unless
            .is_some_and(|other| allowed_values(filters, other).is_some())
        {
            continue;
        }
        let calls: Vec<Sent> = match filter.shape {
            Shape::Parent => continue,
            Shape::Values {
                max,
                split,
                fold_case,
                allowed,
                joined,
            } => {
                let Some(mut values) = allowed_values(filters, filter.column) else {
                    continue;
                };
                if fold_case {
                    values = case_folded(values);
                }
                if values.is_empty() {
                    return Vec::new();
                }
                if let Some(allowed) = allowed {
                    // A value the API does not know may still be in the data
                    // (an enum that grew): let DataFusion filter instead.
                    let known = values.iter().all(|v| allowed.contains(&v.as_str()));
                    let everything = allowed.iter().all(|a| values.iter().any(|v| v == a));
                    if !known || everything {
                        continue;
                    }
                }
                if values.len() > max && !split {
                    continue;
                }
                values
                    .chunks(max.max(1))
                    .map(|chunk| Sent::List(chunk.to_vec(), joined))
                    .collect()
            }
            Shape::Single { allowed } => match allowed_values(filters, filter.column).as_deref() {
                None => continue,
                Some([]) => return Vec::new(),
                Some([one]) if allowed.contains(&one.as_str()) => vec![Sent::Text(one.clone())],
                Some(_) => continue,
            },
            Shape::Flag => {
                let wanted: Vec<bool> = filters
                    .iter()
                    .filter_map(bool_equals)
                    .filter(|(col, _)| *col == filter.column)
                    .map(|(_, value)| value)
                    .collect();
                match wanted.as_slice() {
                    [] => continue,
                    [first, rest @ ..] if rest.iter().all(|v| v == first) => {
                        vec![Sent::Flag(*first)]
                    }
                    _ => return Vec::new(),
                }
            }
            Shape::Time { until } => {
                let (from, to) = time_window(filters, filter.column);
                if let (Some(from), Some(to)) = (from, to)
                    && from > to
                {
                    return Vec::new();
                }
                let mut requests_here = std::mem::take(&mut requests);
                for request in &mut requests_here {
                    if let Some(from) = from {
                        *request = request
                            .clone()
                            .query(filter.param, (from.div_euclid(1000) - 1).to_string());
                    }
                    if let Some(to) = to {
                        *request = request
                            .clone()
                            .query(until, (to.div_euclid(1000) + 2).to_string());
                    }
                }
                requests = requests_here;
                continue;
            }
        };
        requests = requests
            .into_iter()
            .flat_map(|request| {
                calls
                    .iter()
                    .map(move |sent| sent.onto(request.clone(), filter.param))
            })
            .collect();
    }
    requests
}

/// A filter's value as one call sends it.
enum Sent {
    List(Vec<String>, bool),
    Text(String),
    Flag(bool),
}

impl Sent {
    fn onto(&self, mut request: PageRequest, param: &str) -> PageRequest {
        if let Some(body) = request.body.as_mut().and_then(Value::as_object_mut) {
            let value = match self {
                Sent::List(values, _) => json!(values),
                Sent::Text(text) => json!(text),
                Sent::Flag(flag) => json!(flag),
            };
            body.insert(param.to_string(), value);
            return request;
        }
        match self {
            Sent::List(values, true) => request.query(param, values.join(",")),
            Sent::List(values, false) => values.iter().fold(request, |request, value| {
                request.query(param, value.clone())
            }),
            Sent::Text(text) => request.query(param, text.clone()),
            Sent::Flag(flag) => request.query(param, flag.to_string()),
        }
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
        Ok(expr) => key_values(&expr, None)
            .unwrap_or_default()
            .into_iter()
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// `join_key_values` of the keys whose `column` is `value` (an
/// organization's, `column` being org_id): where the filter pairs the keys
/// (`struct(org_id, account_id) IN (...)`), only the other values of the
/// pairs with that one. `None` when no such key passes.
pub fn join_key_values_of(
    expr: &Arc<dyn PhysicalExpr>,
    column: &str,
    value: &str,
) -> Option<Vec<(String, Vec<String>)>> {
    match snapshot_physical_expr(Arc::clone(expr)) {
        Ok(expr) => key_values(&expr, Some((column, value))).map(|keys| keys.into_iter().collect()),
        Err(_) => Some(Vec::new()),
    }
}

/// The keys `expr` lets pass, by column; with `scope` (a column and its
/// value), only those of keys that have it. `None` when none passes.
fn key_values(
    expr: &Arc<dyn PhysicalExpr>,
    scope: Option<(&str, &str)>,
) -> Option<HashMap<String, Vec<String>>> {
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
            let Some(keys) = key_values(branch, scope) else {
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
        return union;
    }
    let mut conjuncts = Vec::new();
    split_and(expr, &mut conjuncts);
    let mut values: HashMap<String, Vec<String>> = HashMap::new();
    let mut lower: HashMap<String, String> = HashMap::new();
    let mut upper: HashMap<String, String> = HashMap::new();
    for conjunct in conjuncts {
        if let Some(list) = conjunct.downcast_ref::<InListExpr>() {
            for (column, found) in in_list_values(list, scope)? {
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
    // The scope's column pinned to other values: none of its keys passes.
    if let Some((column, value)) = scope
        && let Some(found) = values.get_mut(column)
    {
        if !found.iter().any(|v| v == value) {
            return None;
        }
        *found = vec![value.to_string()];
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

/// The values an `IN` list allows, by column; with `scope`, of a list of
/// pairs (`struct(org_id, account_id) IN (...)`) only the pairs that have
/// the scope's value (`None` when there is none).
fn in_list_values(
    list: &InListExpr,
    scope: Option<(&str, &str)>,
) -> Option<Vec<(String, Vec<String>)>> {
    if list.negated() {
        return Some(Vec::new());
    }
    if let Some(column) = physical_column(list.expr()) {
        let values: Option<Vec<String>> = list.list().iter().map(physical_text).collect();
        return Some(values.map(|v| vec![(column, v)]).unwrap_or_default());
    }
    // A join on several keys: `struct(k1, k2) IN ({k1: .., k2: ..}, ...)`.
    let Some(function) = list.expr().downcast_ref::<ScalarFunctionExpr>() else {
        return Some(Vec::new());
    };
    if function.name() != "struct" {
        return Some(Vec::new());
    }
    let columns: Vec<Option<String>> = function.args().iter().map(physical_column).collect();
    // Each pair's fields as text (`None`: not text, or not a struct).
    let pairs: Vec<Vec<Option<String>>> = list
        .list()
        .iter()
        .map(|item| match physical_literal(item) {
            Some(ScalarValue::Struct(array)) => (0..columns.len())
                .map(|field| {
                    let value = ScalarValue::try_from_array(array.column(field), 0).ok()?;
                    text(&value)
                })
                .collect(),
            _ => vec![None; columns.len()],
        })
        .collect();
    let scoped = scope.and_then(|(column, value)| {
        let field = columns.iter().position(|c| c.as_deref() == Some(column))?;
        Some((field, value))
    });
    let kept: Vec<&Vec<Option<String>>> = match scoped {
        // A pair whose field is not text may be of this scope: kept.
        Some((field, value)) => pairs
            .iter()
            .filter(|pair| pair[field].as_deref().is_none_or(|v| v == value))
            .collect(),
        None => pairs.iter().collect(),
    };
    if scoped.is_some() && kept.is_empty() {
        return None;
    }
    let mut out = Vec::new();
    for (field, column) in columns.into_iter().enumerate() {
        let Some(column) = column else {
            continue;
        };
        let values: Option<Vec<String>> = kept.iter().map(|pair| pair[field].clone()).collect();
        if let Some(values) = values {
            out.push((column, values));
        }
    }
    Some(out)
}

fn physical_column(expr: &Arc<dyn PhysicalExpr>) -> Option<String> {
    expr.downcast_ref::<physical::Column>()
        .map(|c| c.name().to_string())
}

fn physical_literal(expr: &Arc<dyn PhysicalExpr>) -> Option<&ScalarValue> {
    expr.downcast_ref::<physical::Literal>()
        .map(datafusion::physical_expr::expressions::Literal::value)
}

fn physical_text(expr: &Arc<dyn PhysicalExpr>) -> Option<String> {
    text(physical_literal(expr)?)
}
