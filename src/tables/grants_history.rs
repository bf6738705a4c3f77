//! `grants_history`: who held which grant when, replayed from the audit log
//! and the state at its end (src/history.rs), as a view over the tables it
//! reads (live or a snapshot's). `grants_at(time)` and `grants_during(from,
//! to)` are SQL table functions over it, one row per grant as
//! `user_role_assignments` keys them (org, account, resource, role).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, SchemaRef, TimeUnit, TimestampMicrosecondType};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{Session, TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{HashMap, ScalarValue};
use datafusion::datasource::{MemTable, TableType};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::SessionState;
use datafusion::logical_expr::simplify::SimplifyContext;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown, cast as cast_expr};
use datafusion::optimizer::simplify_expressions::ExprSimplifier;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::{SessionContext, col, lit};

use super::provider::{Column, schema_from};
use super::{Kind, TableInfo};
use crate::history::{self, Interval, LogEvent, LogObject, Micros, State, Sym, Symbols};

pub const NAME: &str = "grants_history";

/// The tables replay reads, in the order `make` gets them.
const OVER: &[&str] = &[
    "events",
    "event_context",
    "user_role_assignments",
    "group_members",
    "group_role_assignments",
    "workspaces",
];

/// The instant a session's data is as of, when its clock may say another
/// (a snapshot judged by the wall clock): the end of its history.
#[derive(Debug, Clone, Copy)]
pub struct DataAsOf(pub DateTime<Utc>);

/// The audit logs a session's history reads beside its own (`--history`):
/// a config extension. Without it, the history is the session's own log.
pub struct HistoryLogs {
    /// What `history_coverage` calls the session's own log: live, snapshot.
    pub own: String,
    pub exports: Vec<ExportLog>,
}

/// An export's audit log, read as history.
pub struct ExportLog {
    /// The export's folder, as given.
    pub source: String,
    /// When it was exported: its log reaches then.
    pub as_of: DateTime<Utc>,
    pub events: Arc<dyn TableProvider>,
    pub event_context: Arc<dyn TableProvider>,
}

/// One organization's audit log, merged from every source, and what it covers.
pub struct OrgLog {
    /// Each grant event once, by its id, with the source (an index of
    /// `spans`) it was first read from.
    pub events: HashMap<Sym, (LogEvent, usize)>,
    pub spans: Vec<history::SourceSpan>,
}

impl OrgLog {
    pub fn coverage(&self, end: Micros) -> history::Coverage {
        history::coverage(&self.spans, end)
    }
}

/// The catalog's entry: a view over the log and the grants at its end.
pub fn info() -> TableInfo {
    TableInfo {
        name: NAME,
        description: "Every grant interval: who held which role on which resource, from when until when, directly or through a group, replayed from the audit log",
        columns: columns(),
        filters: &[],
        key: &[],
        labels: &[],
        kind: Kind::View {
            over: OVER,
            make: |sides| Ok(Arc::new(GrantsHistory { sides })),
            pushdown: |_| TableProviderFilterPushDown::Unsupported,
        },
    }
}

fn columns() -> Vec<Column> {
    vec![
        Column::org_id(),
        Column::key("account_id", "The user holding it"),
        Column::text(
            "group_id",
            "The group it is held through (its membership and the group's role); NULL: held directly",
        ),
        Column::key("resource_id", "Resource ARI: the organization or a product site"),
        Column::key("role", "Role id, e.g. atlassian/org-admin"),
        Column::time(
            "valid_from",
            "From when; NULL: held since before the audit log begins (known_from before_log)",
        ),
        Column::time("valid_to", "Until when (exclusive); NULL: still held"),
        Column::text("granted_by", "Account id of who granted it, when an event says"),
        Column::text("revoked_by", "Account id of who took it away, when an event says"),
        Column::text(
            "event_ids",
            "The events that show it, comma-joined (grant, revoke; a membership's and its group's)",
        ),
        Column::key(
            "known_from",
            "How its start is known: event, snapshot (the end state holds it after the log took it away: held from then), before_log",
        ),
        Column::text(
            "known_to",
            "How its end is known: event, snapshot (the end state no longer holds it and no event says when it went), NULL: still held",
        ),
    ]
}

/// The replayed history of each organization a session reads.
pub struct Replayed {
    pub orgs: Vec<OrgHistory>,
    /// The strings of the intervals' ids.
    pub symbols: Symbols,
}

pub struct OrgHistory {
    pub org_id: String,
    pub intervals: Vec<Interval>,
    /// The earliest grant event read: what comes before is not known.
    pub log_start: Option<Micros>,
    /// The state's time: the history ends there.
    pub end: Micros,
    /// Periods no source covers (`history_coverage`'s gaps).
    pub gaps: Vec<(Micros, Micros)>,
}

#[derive(Debug)]
struct GrantsHistory {
    sides: Vec<Arc<dyn TableProvider>>,
}

fn plan_error(message: String) -> DataFusionError {
    DataFusionError::Plan(message)
}

fn context_of(state: &dyn Session) -> Result<SessionContext> {
    let state = state
        .as_any()
        .downcast_ref::<SessionState>()
        .ok_or_else(|| DataFusionError::Internal(format!("{NAME}: not a SessionState")))?;
    Ok(SessionContext::new_with_state(state.clone()))
}

/// `expr`, with no columns, folded to an instant by the session's rules:
/// a fixed clock (the demo's, a snapshot's) answers `now()` itself; the
/// real one answers this instant (a statement's start time is set only
/// after its table functions are called).
fn instant(state: &dyn Session, expr: Expr, what: &str) -> Result<Micros> {
    let context = SimplifyContext::builder()
        .with_config_options(Arc::new(state.config_options().clone()))
        .with_query_execution_start_time(Some(Utc::now()))
        .build();
    let simplifier = ExprSimplifier::new(context);
    let timestamp = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    let folded = simplifier.simplify(cast_expr(expr, timestamp))?;
    match folded {
        Expr::Literal(ScalarValue::TimestampMicrosecond(Some(v), _), _) => Ok(v),
        Expr::Literal(ScalarValue::TimestampMicrosecond(None, _), _) => {
            Err(plan_error(format!("{what} is NULL: give a time")))
        }
        other => Err(plan_error(format!(
            "{what} must be a constant time (e.g. '2026-09-30T00:00:00Z' or now()), not {other}"
        ))),
    }
}

fn text_column(batch: &RecordBatch, name: &str) -> Result<StringArray> {
    let column = batch.column_by_name(name).ok_or_else(|| {
        DataFusionError::Internal(format!("{NAME}: no column {name} in what it read"))
    })?;
    Ok(cast(column, &DataType::Utf8)?.as_string::<i32>().clone())
}

fn time_column(batch: &RecordBatch, name: &str) -> Result<TimestampMicrosecondArray> {
    let column = batch.column_by_name(name).ok_or_else(|| {
        DataFusionError::Internal(format!("{NAME}: no column {name} in what it read"))
    })?;
    let timestamp = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    Ok(cast(column, &timestamp)?
        .as_primitive::<TimestampMicrosecondType>()
        .clone())
}

fn value(array: &StringArray, row: usize) -> Option<&str> {
    array.is_valid(row).then(|| array.value(row))
}

/// A column's values interned, the last one remembered: the organization
/// of every row, and an event's several objects, come in runs.
#[derive(Default)]
struct Run<'a>(Option<(&'a str, Sym)>);

impl<'a> Run<'a> {
    fn intern(&mut self, symbols: &mut Symbols, name: &'a str) -> Sym {
        match self.0 {
            Some((last, sym)) if last == name => sym,
            _ => {
                let sym = symbols.intern(name);
                self.0 = Some((name, sym));
                sym
            }
        }
    }
}

/// Read the grant events of one audit log (`events`, `event_context`), by
/// organization.
async fn read_log(
    ctx: &SessionContext,
    events: Arc<dyn TableProvider>,
    event_context: Arc<dyn TableProvider>,
    symbols: &mut Symbols,
) -> Result<BTreeMap<String, Vec<LogEvent>>> {
    let actions: Vec<Expr> = history::ACTIONS.iter().map(|a| lit(*a)).collect();
    let by_action = col("action").in_list(actions, false);
    let started = std::time::Instant::now();
    let events = ctx
        .read_table(events)?
        .filter(by_action.clone())?
        .select_columns(&["org_id", "event_id", "time", "action", "actor_id", "message"])?
        .collect();
    let objects = ctx
        .read_table(event_context)?
        .filter(by_action)?
        .select_columns(&["org_id", "event_id", "role", "object_id", "object_type"])?
        .collect();
    // Both at once: neither scan alone keeps every core busy.
    let (events, objects) = futures::try_join!(events, objects)?;
    let scanned = started.elapsed();
    let event_rows: usize = events.iter().map(RecordBatch::num_rows).sum();
    // Each event's id and message are strings of their own.
    symbols.reserve(2 * event_rows);
    // Objects by (org, event).
    let mut named: HashMap<(Sym, Sym), Vec<LogObject>> = HashMap::new();
    for batch in &objects {
        let (o, e, role, id, kind) = (
            text_column(batch, "org_id")?,
            text_column(batch, "event_id")?,
            text_column(batch, "role")?,
            text_column(batch, "object_id")?,
            text_column(batch, "object_type")?,
        );
        let (mut orgs, mut events, mut kinds) = (Run::default(), Run::default(), Run::default());
        for row in 0..batch.num_rows() {
            let (Some(org_id), Some(event), Some(id), Some(kind)) =
                (value(&o, row), value(&e, row), value(&id, row), value(&kind, row))
            else {
                continue;
            };
            let key = (orgs.intern(symbols, org_id), events.intern(symbols, event));
            named.entry(key).or_default().push(LogObject {
                container: value(&role, row) == Some("container"),
                id: symbols.intern(id),
                kind: kinds.intern(symbols, kind),
            });
        }
    }
    let mut orgs: HashMap<Sym, Vec<LogEvent>> = HashMap::new();
    for batch in &events {
        let (o, e, t, a, actor, m) = (
            text_column(batch, "org_id")?,
            text_column(batch, "event_id")?,
            time_column(batch, "time")?,
            text_column(batch, "action")?,
            text_column(batch, "actor_id")?,
            text_column(batch, "message")?,
        );
        let mut org_ids = Run::default();
        for row in 0..batch.num_rows() {
            let (Some(org_id), Some(id), Some(action)) =
                (value(&o, row), value(&e, row), value(&a, row))
            else {
                continue;
            };
            if t.is_null(row) {
                return Err(plan_error(format!(
                    "{NAME}: event {id} ({action}) has no time: its grant cannot be placed"
                )));
            }
            let (org_id, id) = (org_ids.intern(symbols, org_id), symbols.intern(id));
            let mut objects = named.remove(&(org_id, id)).unwrap_or_default();
            objects.sort_unstable();
            orgs.entry(org_id).or_default().push(LogEvent {
                id,
                time: t.value(row),
                action: symbols.intern(action),
                actor_id: value(&actor, row).map(|a| symbols.intern(a)),
                message: value(&m, row).map(|m| symbols.intern(m)),
                objects,
            });
        }
    }
    tracing::debug!(
        target: "orgsql::history",
        "read {} grant events and {} of their objects: scans {} ms, interning {} ms",
        event_rows,
        objects.iter().map(RecordBatch::num_rows).sum::<usize>(),
        scanned.as_millis(),
        (started.elapsed() - scanned).as_millis()
    );
    Ok(orgs
        .into_iter()
        .map(|(org_id, events)| (symbols.name(org_id).to_string(), events))
        .collect())
}

/// The instant the session's data is as of: where its history ends.
pub fn data_end(state: &dyn Session) -> Result<Micros> {
    match state.config().get_extension::<DataAsOf>() {
        Some(as_of) => Ok(as_of.0.timestamp_micros()),
        None => {
            let now = state.scalar_functions().get("now").cloned().ok_or_else(|| {
                DataFusionError::Internal(format!("{NAME}: no now() in the session"))
            })?;
            instant(state, now.call(vec![]), "now()")
        }
    }
}

/// Every audit log the session's history reads (its own, `events` and
/// `event_context`, and `--history`'s exports), merged by organization:
/// each event once by its id; the same id with different content in two
/// sources is an error naming both.
pub async fn read_logs(
    state: &dyn Session,
    end: Micros,
    events: Arc<dyn TableProvider>,
    event_context: Arc<dyn TableProvider>,
    symbols: &mut Symbols,
) -> Result<BTreeMap<String, OrgLog>> {
    let ctx = context_of(state)?;
    let logs = state.config().get_extension::<HistoryLogs>();
    let own = match &logs {
        Some(logs) => logs.own.clone(),
        None if state.config().get_extension::<DataAsOf>().is_some() => "snapshot".to_string(),
        None => "live".to_string(),
    };
    let mut sources = vec![(own, end, events, event_context)];
    for export in logs.iter().flat_map(|l| l.exports.iter()) {
        sources.push((
            export.source.clone(),
            export.as_of.timestamp_micros(),
            export.events.clone(),
            export.event_context.clone(),
        ));
    }
    let mut merged: BTreeMap<String, OrgLog> = BTreeMap::new();
    for (source, to, events, event_context) in sources {
        let read = read_log(&ctx, events, event_context, symbols)
            .await
            .map_err(|e| e.context(format!("reading the audit log of {source}")))?;
        for (org_id, events) in read {
            let log = merged.entry(org_id.clone()).or_insert_with(|| OrgLog {
                events: HashMap::new(),
                spans: Vec::new(),
            });
            let this = log.spans.len();
            log.spans.push(history::SourceSpan {
                source: source.clone(),
                from: events.iter().map(|e| e.time).min(),
                to,
                events: events.len(),
            });
            for event in events {
                match log.events.get(&event.id) {
                    Some((seen, first)) if *seen != event => {
                        return Err(plan_error(format!(
                            "{NAME}: organization {org_id}: event {} reads differently in {} \
                             and in {source} (time, action, actor, message or objects): one of \
                             them is not this organization's log as the API gave it; leave it \
                             out of --history",
                            symbols.name(event.id),
                            log.spans[*first].source,
                        )));
                    }
                    Some(_) => {}
                    None => {
                        log.events.insert(event.id, (event, this));
                    }
                }
            }
        }
    }
    Ok(merged)
}

impl GrantsHistory {
    /// Read what replay needs from the sides, and replay each organization.
    async fn replay(&self, state: &dyn Session) -> Result<Replayed> {
        let ctx = context_of(state)?;
        let side = |i: usize| self.sides[i].clone();
        let read = |i: usize, filter: Option<Expr>, columns: &'static [&'static str]| {
            let ctx = ctx.clone();
            let provider = side(i);
            async move {
                let mut df = ctx.read_table(provider)?;
                if let Some(filter) = filter {
                    df = df.filter(filter)?;
                }
                df.select_columns(columns)?.collect().await
            }
        };
        // Once: the real clock's now() moves between calls.
        let end = data_end(state)?;
        let mut symbols = Symbols::default();
        let logs = read_logs(state, end, side(0), side(1), &mut symbols).await?;
        let user_grants = read(
            2,
            None,
            &["org_id", "account_id", "resource_id", "role", "assignment_methods"],
        )
        .await?;
        let members = read(3, None, &["org_id", "group_id", "account_id"]).await?;
        let group_grants = read(
            4,
            None,
            &["org_id", "group_id", "resource_id", "role"],
        )
        .await?;
        let sites = read(
            5,
            Some(col("host_url").is_not_null()),
            &["org_id", "workspace_id"],
        )
        .await?;

        let mut orgs: BTreeMap<String, (Vec<LogEvent>, State)> = BTreeMap::new();
        let symbols = &mut symbols;
        for batch in &user_grants {
            let (o, acc, r, role, methods) = (
                text_column(batch, "org_id")?,
                text_column(batch, "account_id")?,
                text_column(batch, "resource_id")?,
                text_column(batch, "role")?,
                text_column(batch, "assignment_methods")?,
            );
            for row in 0..batch.num_rows() {
                if let (Some(org_id), Some(a), Some(r), Some(role)) =
                    (value(&o, row), value(&acc, row), value(&r, row), value(&role, row))
                {
                    let direct = value(&methods, row)
                        .is_some_and(|m| m.split(',').any(|m| m.trim() == "direct"));
                    let grant = (symbols.intern(a), symbols.intern(r), symbols.intern(role));
                    org_entry(&mut orgs, org_id, end, symbols)
                        .1
                        .user_grants
                        .push((grant, direct));
                }
            }
        }
        for batch in &members {
            let (o, g, acc) = (
                text_column(batch, "org_id")?,
                text_column(batch, "group_id")?,
                text_column(batch, "account_id")?,
            );
            for row in 0..batch.num_rows() {
                if let (Some(org_id), Some(g), Some(a)) =
                    (value(&o, row), value(&g, row), value(&acc, row))
                {
                    let membership = (symbols.intern(g), symbols.intern(a));
                    org_entry(&mut orgs, org_id, end, symbols)
                        .1
                        .memberships
                        .push(membership);
                }
            }
        }
        for batch in &group_grants {
            let (o, g, r, role) = (
                text_column(batch, "org_id")?,
                text_column(batch, "group_id")?,
                text_column(batch, "resource_id")?,
                text_column(batch, "role")?,
            );
            for row in 0..batch.num_rows() {
                if let (Some(org_id), Some(g), Some(r), Some(role)) =
                    (value(&o, row), value(&g, row), value(&r, row), value(&role, row))
                {
                    let grant = (symbols.intern(g), symbols.intern(r), symbols.intern(role));
                    org_entry(&mut orgs, org_id, end, symbols)
                        .1
                        .group_grants
                        .push(grant);
                }
            }
        }
        for batch in &sites {
            let (o, w) = (
                text_column(batch, "org_id")?,
                text_column(batch, "workspace_id")?,
            );
            for row in 0..batch.num_rows() {
                if let (Some(org_id), Some(w)) = (value(&o, row), value(&w, row)) {
                    let site = symbols.intern(w);
                    org_entry(&mut orgs, org_id, end, symbols).1.sites.push(site);
                }
            }
        }

        // The organizations the session reads: those of its own log or
        // state. An export of another organization adds nothing.
        let mut gaps_of: BTreeMap<String, Vec<(Micros, Micros)>> = BTreeMap::new();
        let own_orgs: BTreeSet<String> = logs
            .iter()
            .filter(|(_, log)| log.spans.first().is_some_and(|s| s.to == end))
            .map(|(org_id, _)| org_id.clone())
            .chain(orgs.keys().cloned())
            .collect();
        for (org_id, log) in logs {
            if !own_orgs.contains(&org_id) {
                continue;
            }
            let coverage = log.coverage(end);
            gaps_of.insert(
                org_id.clone(),
                coverage
                    .periods
                    .iter()
                    .filter(|p| p.source.is_none())
                    .filter_map(|p| p.from.map(|from| (from, p.to)))
                    .collect(),
            );
            // Across a gap a grant or a revoke may be missing: only the
            // stretch that reaches the end state is replayed.
            let events = org_entry(&mut orgs, &org_id, end, symbols);
            events.0.extend(
                log.events
                    .into_values()
                    .map(|(event, _)| event)
                    .filter(|e| coverage.answered_from.is_some_and(|from| e.time >= from)),
            );
        }

        let mut replayed = Vec::new();
        for (org_id, (events, state)) in orgs {
            let log_start = events.iter().map(|e| e.time).min();
            let started = std::time::Instant::now();
            let (intervals, unread) = history::replay(&events, &state, symbols);
            tracing::debug!(
                target: "orgsql::history",
                "organization {org_id}: {} events replayed into {} intervals in {} ms",
                events.len(),
                intervals.len(),
                started.elapsed().as_millis()
            );
            if let Some(first) = unread.first() {
                return Err(plan_error(format!(
                    "{NAME}: organization {org_id}: {} grant event(s) of the audit log could not be read, \
                     so the history would be incomplete (first: event {}: {}). Report it with the event's \
                     id; `SELECT * FROM events WHERE event_id = '...'` shows it",
                    unread.len(),
                    first.event_id,
                    first.reason
                )));
            }
            replayed.push(OrgHistory {
                gaps: gaps_of.remove(&org_id).unwrap_or_default(),
                org_id,
                intervals,
                log_start,
                end: state.time,
            });
        }
        Ok(Replayed {
            orgs: replayed,
            symbols: std::mem::take(symbols),
        })
    }
}

/// An organization's events and end state, made on first sight.
fn org_entry<'a>(
    orgs: &'a mut BTreeMap<String, (Vec<LogEvent>, State)>,
    id: &str,
    end: Micros,
    symbols: &mut Symbols,
) -> &'a mut (Vec<LogEvent>, State) {
    orgs.entry(id.to_string()).or_insert_with(|| {
        let org_resource = symbols.intern(&format!("ari:cloud:platform::org/{id}"));
        (Vec::new(), State::new(end, org_resource))
    })
}

fn times(values: impl Iterator<Item = Option<Micros>>) -> ArrayRef {
    Arc::new(
        values
            .collect::<TimestampMicrosecondArray>()
            .with_timezone("UTC"),
    )
}

fn texts<S: AsRef<str>>(values: impl Iterator<Item = Option<S>>) -> ArrayRef {
    Arc::new(values.collect::<StringArray>())
}

fn history_batch(replayed: &Replayed, schema: &SchemaRef) -> Result<RecordBatch> {
    let rows: Vec<(&str, &Interval)> = replayed
        .orgs
        .iter()
        .flat_map(|o| o.intervals.iter().map(move |i| (o.org_id.as_str(), i)))
        .collect();
    let name = |sym: Sym| replayed.symbols.name(sym);
    let columns = vec![
        texts(rows.iter().map(|(o, _)| Some(*o))),
        texts(rows.iter().map(|(_, i)| Some(name(i.account_id)))),
        texts(rows.iter().map(|(_, i)| i.group_id.map(name))),
        texts(rows.iter().map(|(_, i)| Some(name(i.resource_id)))),
        texts(rows.iter().map(|(_, i)| Some(name(i.role)))),
        times(rows.iter().map(|(_, i)| i.valid_from)),
        times(rows.iter().map(|(_, i)| i.valid_to)),
        texts(rows.iter().map(|(_, i)| i.granted_by.map(name))),
        texts(rows.iter().map(|(_, i)| i.revoked_by.map(name))),
        texts(rows.iter().map(|(_, i)| {
            let ids: Vec<&str> = i.event_ids.iter().map(|e| name(*e)).collect();
            Some(ids.join(","))
        })),
        texts(rows.iter().map(|(_, i)| Some(i.known_from.as_str()))),
        texts(rows.iter().map(|(_, i)| {
            i.valid_to
                .map(|_| if i.ended_unlogged { "snapshot" } else { "event" })
        })),
    ];
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

fn memory_scan(
    schema: SchemaRef,
    batch: RecordBatch,
) -> Result<MemTable> {
    MemTable::try_new(schema, vec![vec![batch]])
}

#[async_trait]
impl TableProvider for GrantsHistory {
    fn schema(&self) -> SchemaRef {
        schema_from(columns())
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let replayed = self.replay(state).await?;
        let schema = self.schema();
        let batch = history_batch(&replayed, &schema)?;
        memory_scan(schema, batch)?
            .scan(state, projection, filters, limit)
            .await
    }
}

/// `grants_at(time)` or `grants_during(from, to)`.
#[derive(Debug, Clone, Copy)]
enum Window {
    At(Micros),
    During(Micros, Micros),
}

/// The table functions: registered in every session (`register`).
#[derive(Debug)]
struct GrantsFunction {
    during: bool,
}

/// Register `grants_at` and `grants_during` in `ctx`.
pub fn register(ctx: &SessionContext) {
    ctx.register_udtf("grants_at", Arc::new(GrantsFunction { during: false }));
    ctx.register_udtf("grants_during", Arc::new(GrantsFunction { during: true }));
}

impl TableFunctionImpl for GrantsFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let exprs = args.exprs();
        let state = args.session();
        let window = match (self.during, exprs) {
            (false, [at]) => Window::At(instant(state, at.clone(), "grants_at's time")?),
            (true, [from, to]) => {
                let from = instant(state, from.clone(), "grants_during's start")?;
                let to = instant(state, to.clone(), "grants_during's end")?;
                if from >= to {
                    return Err(plan_error(
                        "grants_during(from, to): from must come before to (the period is [from, to))"
                            .to_string(),
                    ));
                }
                Window::During(from, to)
            }
            (false, _) => {
                return Err(plan_error(
                    "grants_at takes one argument: the time, e.g. grants_at('2026-09-30T00:00:00Z')"
                        .to_string(),
                ));
            }
            (true, _) => {
                return Err(plan_error(
                    "grants_during takes two arguments: from and to, e.g. \
                     grants_during('2026-07-01T00:00:00Z', '2026-10-01T00:00:00Z')"
                        .to_string(),
                ));
            }
        };
        Ok(Arc::new(GrantsWindow { window }))
    }
}

#[derive(Debug)]
struct GrantsWindow {
    window: Window,
}

fn window_columns(during: bool) -> Vec<Column> {
    let mut columns = vec![
        Column::org_id(),
        Column::key("account_id", "The user holding it"),
        Column::key("resource_id", "Resource ARI: the organization or a product site"),
        Column::key("role", "Role id, e.g. atlassian/org-admin"),
        Column::text(
            "assignment_methods",
            "How it was held, comma-joined as user_role_assignments says: direct, group_direct",
        ),
        Column::text("group_ids", "The groups it was held through, comma-joined"),
        Column::time(
            "held_from",
            "The earliest start of its intervals; NULL: held since before the audit log begins",
        ),
    ];
    if during {
        columns.push(Column::time(
            "held_until",
            "The latest end of its intervals in the period's history; NULL: still held",
        ));
    }
    columns.extend([
        Column::text("granted_by", "Who granted the earliest interval, when an event says"),
        Column::key(
            "known_from",
            "How the earliest start is known: event, snapshot, before_log (as grants_history)",
        ),
    ]);
    columns
}

fn rfc3339(at: Micros) -> String {
    DateTime::<Utc>::from_timestamp_micros(at)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| at.to_string())
}

impl GrantsWindow {
    fn batch(&self, replayed: &Replayed, schema: &SchemaRef) -> Result<RecordBatch> {
        let (from, to, name) = match self.window {
            Window::At(at) => (at, at, "grants_at"),
            Window::During(from, to) => (from, to, "grants_during"),
        };
        // One row per grant: (org, account, resource, role) -> intervals.
        let mut grants: HashMap<(&str, history::Grant), Vec<&Interval>> = HashMap::new();
        for org in &replayed.orgs {
            let known = |t: Micros| org.log_start.is_some_and(|s| s <= t) && t <= org.end;
            if !known(from) || !known(to) {
                let gaps = match org.gaps.as_slice() {
                    [] => String::new(),
                    gaps => format!(
                        "; no source covers {} (history_coverage lists them), and what lies \
                         before a gap cannot be joined to the grants after it",
                        gaps.iter()
                            .map(|(a, b)| format!("{} to {}", rfc3339(*a), rfc3339(*b)))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                };
                return Err(plan_error(format!(
                    "{name}: organization {}'s history covers {} to {} (its earliest grant event \
                     read to the time of its data{gaps}); {} is outside it: ask for a time inside \
                     it, or add exports that hold older events with --history DIR (the API drops \
                     events older than its retention window; `orgsql export` keeps them)",
                    org.org_id,
                    org.log_start.map_or("nothing".to_string(), rfc3339),
                    rfc3339(org.end),
                    if known(from) { rfc3339(to) } else { rfc3339(from) },
                )));
            }
            for i in &org.intervals {
                let held = match self.window {
                    Window::At(at) => i.covers(at),
                    Window::During(from, to) => i.overlaps(from, to),
                };
                if held {
                    grants
                        .entry((&org.org_id, i.grant()))
                        .or_default()
                        .push(i);
                }
            }
        }
        let during = matches!(self.window, Window::During(..));
        let name = |sym: Sym| replayed.symbols.name(sym);
        // In the grants' order as strings.
        let mut rows: Vec<_> = grants
            .into_iter()
            .map(|((org, (account, resource, role)), held)| {
                ((org, name(account), name(resource), name(role)), held)
            })
            .collect();
        rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        fn first<'a>(held: &[&'a Interval]) -> Option<&'a Interval> {
            held.iter()
                .min_by_key(|i| (i.valid_from.is_some(), i.valid_from))
                .copied()
        }
        let mut columns: Vec<ArrayRef> = vec![
            texts(rows.iter().map(|(k, _)| Some(k.0))),
            texts(rows.iter().map(|(k, _)| Some(k.1))),
            texts(rows.iter().map(|(k, _)| Some(k.2))),
            texts(rows.iter().map(|(k, _)| Some(k.3))),
            texts(rows.iter().map(|(_, held)| {
                let direct = held.iter().any(|i| i.group_id.is_none());
                let group = held.iter().any(|i| i.group_id.is_some());
                Some(match (direct, group) {
                    (true, true) => "direct,group_direct",
                    (true, false) => "direct",
                    _ => "group_direct",
                })
            })),
            texts(rows.iter().map(|(_, held)| {
                let groups: BTreeSet<&str> =
                    held.iter().filter_map(|i| i.group_id.map(name)).collect();
                (!groups.is_empty()).then(|| groups.into_iter().collect::<Vec<_>>().join(","))
            })),
            times(rows.iter().map(|(_, held)| first(held).and_then(|i| i.valid_from))),
        ];
        if during {
            columns.push(times(rows.iter().map(|(_, held)| {
                if held.iter().any(|i| i.valid_to.is_none()) {
                    None
                } else {
                    held.iter().filter_map(|i| i.valid_to).max()
                }
            })));
        }
        columns.push(texts(
            rows.iter()
                .map(|(_, held)| first(held).and_then(|i| i.granted_by).map(name)),
        ));
        columns.push(texts(
            rows.iter()
                .map(|(_, held)| first(held).map(|i| i.known_from.as_str())),
        ));
        Ok(RecordBatch::try_new(schema.clone(), columns)?)
    }
}

#[async_trait]
impl TableProvider for GrantsWindow {
    fn schema(&self) -> SchemaRef {
        schema_from(window_columns(matches!(self.window, Window::During(..))))
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let ctx = context_of(state)?;
        let provider = ctx.table_provider(NAME).await.map_err(|e| {
            plan_error(format!(
                "grants_at/grants_during read {NAME}, which this session lacks ({e}): it needs the \
                 tables {}",
                OVER.join(", ")
            ))
        })?;
        let history = provider.downcast_ref::<GrantsHistory>().ok_or_else(|| {
            DataFusionError::Internal(format!("{NAME} is not the replayed history"))
        })?;
        let started = std::time::Instant::now();
        let replayed = history.replay(state).await?;
        let schema = self.schema();
        let batch = self.batch(&replayed, &schema)?;
        tracing::debug!(
            target: "orgsql::history",
            "{} grants from the replayed history in {} ms",
            batch.num_rows(),
            started.elapsed().as_millis()
        );
        memory_scan(schema, batch)?
            .scan(state, projection, filters, limit)
            .await
    }
}
