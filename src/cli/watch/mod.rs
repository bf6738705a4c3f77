//! `orgsql watch`: alerts from the audit log as it grows. Each poll reads
//! `/events-stream` from the cursor kept in a state folder, registers what it
//! brought as `new_events` and `new_event_context` (the columns of `events`
//! and `event_context`, decoded by those tables) and how the stream stands
//! as `stream_health`, beside every ordinary table, runs the rules
//! (`rules/*.sql`, built in, and `--rules DIR`), and delivers each alert
//! once (`deliver.rs`): to a webhook and a command, the `--output` file and
//! standard output.
//!
//! A rule is a file in the control format of `orgsql check` (the same
//! header, read by `Control::parse`, parameters included) whose SELECT
//! starts with `resource, status, reason, key`: the three columns of a
//! control, so a rule reads like one, and `key`, what makes an alert one
//! alert (the event id for a rule that alerts on events; for a rule that
//! aggregates, whatever names the aggregate). Rows with status `alarm` are
//! alerts; `ok` and `info` rows are not delivered. Further columns go into
//! the alert's `details`. A rule over the new events runs on a poll that
//! brought some; one over the organization's tables, on a poll whose read
//! succeeded; one over `stream_health` alone (the drop-off alarm), on every
//! poll.
//!
//! Once: an alert's id is (rule, organization, key). The cursor advances
//! only after a poll's alerts are delivered, and the state records their
//! ids; a stop before that reads the same events again, and `deliver.rs`
//! keeps what each place took since the state was last written.

// Public for the unit tests in tests/it/unit.
pub mod deliver;
pub mod recent;
pub mod state;

use crate::cli::export::audit_log::StreamItem;
use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use chrono::{DateTime, Utc};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use serde::{Deserialize, Serialize};

use deliver::Delivery;
pub use deliver::{Body, SECRET_VAR, SinkArgs, signature};

use crate::api::{ApiError, Client, EVENTS_STREAM, PageRequest};
use crate::cli::check::{self, Control};
use crate::cli::files::Output;
use crate::cli::output::visible;
use crate::session::Session;
use crate::tables::{Kind, schema_from};
pub use state::{OrgState, STATE_FILE, WatchState};

mod pack {
    include!(concat!(env!("OUT_DIR"), "/rules.rs"));
}

/// The tables a poll adds, and the catalog's tables whose columns (and
/// decoders) they take: this poll's events, and the recent ones
/// (`recent.rs`).
const NEW_TABLES: [&str; 2] = ["new_events", "new_event_context"];
const RECENT_TABLES: [&str; 2] = ["recent_events", "recent_event_context"];
/// The columns every rule starts with.
const RULE_COLUMNS: [&str; 4] = ["resource", "status", "reason", "key"];

/// A first run starts this long before it begins (on processing time): an
/// event processed just before, or by a clock a little behind ours, alerts.
const FIRST_RUN_LOOKBACK: chrono::Duration = chrono::Duration::minutes(10);

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum WatchFormat {
    /// One alert a line, as JSON
    Ndjson,
}

#[derive(clap::Args)]
pub struct WatchArgs {
    /// Catch up, deliver, and exit (for cron)
    #[arg(long)]
    pub once: bool,
    /// Seconds between polls: an idle poll is one request per organization
    #[arg(long, default_value_t = 60, value_name = "SECS",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub interval: u64,
    /// Folder of the cursor and the alerts delivered (default:
    /// $XDG_DATA_HOME/orgsql/watch, else ~/.local/share/orgsql/watch)
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,
    /// Also run the rules in this folder (.sql files in the check format,
    /// starting with resource, status, reason, key)
    #[arg(long, value_name = "DIR")]
    pub rules: Option<PathBuf>,
    /// Where a first run (a state folder without a cursor) starts in the
    /// stream, on processing time: a date or an RFC 3339 time (default: 10
    /// minutes before it starts)
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// A rule parameter, NAME=VALUE (repeatable)
    #[arg(long = "param", value_name = "NAME=VALUE")]
    pub params: Vec<String>,
    /// How alerts are appended to --output
    #[arg(long, value_enum, default_value = "ndjson")]
    pub format: WatchFormat,
    /// List the rules and stop
    #[arg(long)]
    pub list: bool,
    #[command(flatten)]
    pub sinks: SinkArgs,
}

/// The built-in rules, then those of `dir`.
pub fn rules(dir: Option<&Path>) -> Result<Vec<Control>> {
    check::load_from(pack::RULES, dir, "--rules").map_err(anyhow::Error::msg)
}

/// One alert, as the `--output` file holds it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Alert {
    /// `rule:org:key`: the same alert has the same id in every run.
    pub id: String,
    pub rule: String,
    pub title: String,
    pub severity: String,
    pub org_id: String,
    pub resource: String,
    pub reason: String,
    pub key: String,
    /// The rule's further columns, as text.
    pub details: BTreeMap<String, String>,
}

impl Alert {
    /// The line standard output shows, every field made visible.
    fn text(&self) -> String {
        format!(
            "ALERT {} {} org {}: {}: {} [{}]",
            self.severity,
            visible(&self.rule),
            visible(&self.org_id),
            visible(&self.resource),
            visible(&self.reason),
            visible(&self.id),
        )
    }
}

/// `orgsql watch`.
pub async fn run(session: &Session, args: &WatchArgs, output: &Output) -> Result<ExitCode> {
    let Some(orgs) = &session.orgs else {
        bail!("watch reads the Admin API as it changes; a snapshot does not change");
    };
    output
        .format(
            args.format,
            &[
                ("ndjson", WatchFormat::Ndjson),
                ("jsonl", WatchFormat::Ndjson),
            ],
        )
        .map_err(anyhow::Error::msg)?;
    let rules = rules(args.rules.as_deref())?;
    let values = check::parameters(&rules, &args.params).map_err(anyhow::Error::msg)?;
    let dir = match &args.state {
        Some(dir) => dir.clone(),
        None => state::default_dir()
            .ok_or_else(|| anyhow!("no HOME or XDG_DATA_HOME for the state: give --state DIR"))?,
    };
    let since = match &args.since {
        Some(text) => since_ms(text)?,
        None => (Utc::now() - FIRST_RUN_LOOKBACK).timestamp_millis(),
    };
    let _lock = state::lock(&dir)?;
    let mut state = WatchState::read(&dir)?;
    let mut delivery = Delivery::open(&args.sinks, args.once, output.path.clone(), &dir, &state)?;
    let clients: Vec<Client> = orgs.clients().cloned().collect();
    let contexts = session.per_org().await?;
    let parts: Vec<(Client, SessionContext)> = clients
        .into_iter()
        .zip(contexts.into_iter().map(|(_, ctx)| ctx))
        .collect();
    let rules = rules
        .into_iter()
        .map(|rule| Rule::classify(rule, &values))
        .collect::<Result<Vec<_>>>()?;
    let stop = Stop::listen();
    if !args.once {
        eprintln!(
            "orgsql watch: {} organization{}, a poll every {} s, state in {}; \
             SIGTERM or Ctrl-C stops it between polls",
            parts.len(),
            if parts.len() == 1 { "" } else { "s" },
            args.interval,
            visible(&dir.display().to_string())
        );
    }
    // With --once, the first organization whose stream could not be read.
    let mut unread: Option<anyhow::Error> = None;
    'polls: loop {
        for (client, ctx) in &parts {
            let org = client.org_id().to_string();
            let mut org_state = state.orgs.get(&org).cloned().unwrap_or_default();
            let now = Utc::now();
            org_state
                .watching_since
                .get_or_insert_with(|| state::time_text(now));
            // A poll only reads until it delivers: a stop drops it, and the
            // next run reads its events again.
            let read = tokio::select! {
                read = read_new(client, &org_state, since) => read,
                () = stop.signalled() => break 'polls,
            };
            let (read, failed) = match read {
                Ok(read) => {
                    org_state.failing_since = None;
                    (read, None)
                }
                Err(e) => {
                    org_state
                        .failing_since
                        .get_or_insert_with(|| state::time_text(now));
                    eprintln!(
                        "orgsql watch: org {}: {}{}",
                        visible(&org),
                        crate::cli::output::visible_lines(&format!("{e:#}")),
                        if args.once {
                            String::new()
                        } else {
                            format!("; trying again in {} s", args.interval)
                        }
                    );
                    (StreamRead::default(), Some(e))
                }
            };
            if !read.bodies.is_empty() {
                register_new(ctx, NEW_TABLES, &org, &read.bodies)?;
                // Kept before delivery: an event read again replaces its
                // copy, so a stop before the state's write counts nothing
                // twice.
                let recent = recent::update(&dir, &org, &read.bodies)?;
                register_new(ctx, RECENT_TABLES, &org, &[recent.into()])?;
            }
            if let Some(newest) = read.newest {
                org_state.processed_at = Some(state::time_text(newest));
            }
            register_health(ctx, &org, &org_state, now, failed.as_ref())?;
            let mut alerts = Vec::new();
            let mut seen = HashSet::new();
            for rule in rules
                .iter()
                .filter(|r| r.runs(!read.bodies.is_empty(), failed.is_none()))
            {
                for alert in run_rule(ctx, &rule.control, &values, &org).await? {
                    if seen.insert(alert.id.clone()) {
                        alerts.push(alert);
                    }
                }
            }
            // Deliver first; only then does the state move on.
            let fresh: Vec<&Alert> = alerts
                .iter()
                .filter(|a| !org_state.delivered.contains_key(&a.id))
                .collect();
            delivery.deliver(&fresh, &stop).await?;
            let newest = org_state
                .processed_at
                .clone()
                .unwrap_or_else(|| state::time_text(now));
            for alert in &alerts {
                org_state
                    .delivered
                    .entry(alert.id.clone())
                    .or_insert_with(|| newest.clone());
            }
            if read.cursor.is_some() {
                org_state.cursor = read.cursor;
            }
            org_state.prune();
            state.orgs.insert(org.clone(), org_state);
            state.output = delivery.position()?;
            state.write(&dir)?;
            delivery.recorded(&state)?;
            if let Some(e) = failed
                && args.once
                && unread.is_none()
            {
                unread = Some(e.context(format!("org {org}")));
            }
        }
        if args.once || stop.by().is_some() {
            break;
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(args.interval)) => {}
            () = stop.signalled() => break,
        }
    }
    if let Some(signal) = stop.by() {
        eprintln!(
            "orgsql watch: stopped by {signal} between polls; the state is as the last \
             delivery left it"
        );
    }
    match unread {
        Some(e) => Err(e),
        None => Ok(ExitCode::SUCCESS),
    }
}

/// How the stream stands after each poll (the drop-off rule reads it); the
/// other tables a poll adds are `tables::WATCH_TABLES`.
const HEALTH_TABLE: &str = "stream_health";

/// A rule, and when a poll runs it.
struct Rule {
    control: Control,
    /// It reads what a poll brought from the stream.
    reads_events: bool,
    /// It reads the organization's tables (requests to the API).
    reads_api: bool,
}

impl Rule {
    /// The tables `control`'s SQL names, found by parsing it.
    fn classify(control: Control, values: &BTreeMap<String, String>) -> Result<Self> {
        let (sql, _) = control.bound_sql(values);
        let tables = crate::sql::tables_named(&sql)
            .map_err(|e| anyhow!("rule {}: {}", control.source, crate::error::message(&e)))?;
        let reads_events = tables
            .iter()
            .any(|t| crate::tables::watch_table(t).is_some());
        let reads_api = tables
            .iter()
            .any(|t| crate::tables::watch_table(t).is_none() && t != HEALTH_TABLE);
        Ok(Rule {
            control,
            reads_events,
            reads_api,
        })
    }

    /// Whether a poll runs it: a rule over events when the poll brought
    /// some (an idle poll is the stream's one request), a rule over the
    /// organization's tables when the API answered, a rule over
    /// `stream_health` alone on every poll.
    fn runs(&self, brought_events: bool, api_answered: bool) -> bool {
        (!self.reads_events || brought_events) && (!self.reads_api || api_answered)
    }
}

/// Read what the stream holds after `org_state`'s cursor (or from `since`,
/// ms of processing time, on a first run).
async fn read_new(client: &Client, org_state: &OrgState, since: i64) -> Result<StreamRead> {
    // Rules that join the ordinary tables read them as they are now.
    client.clear_cache(None);
    let read = match (&org_state.cursor, &org_state.processed_at) {
        (Some(cursor), processed) => match read_stream(client, Some(cursor), None).await {
            Err(ApiError::Status { status: 400, .. }) => {
                // The API refused the saved cursor (expired): read again from
                // the newest processing time; the alerts delivered from there
                // on are remembered, and not delivered again.
                let from = processed
                    .as_deref()
                    .and_then(state::parse_time)
                    .map_or(since, |t| t.timestamp_millis());
                eprintln!(
                    "orgsql watch: the API refused the saved cursor; reading from the newest \
                     processing time seen"
                );
                read_stream(client, None, Some(from)).await
            }
            other => other,
        },
        (None, _) => read_stream(client, None, Some(since)).await,
    };
    read.with_context(|| format!("GET {EVENTS_STREAM}"))
}

/// Pages read from the stream.
#[derive(Default)]
struct StreamRead {
    /// Each page that held events, as it came.
    bodies: Vec<bytes::Bytes>,
    cursor: Option<String>,
    newest: Option<DateTime<Utc>>,
}

/// Page the stream, oldest processed first, until a page comes back empty
/// (the stream's end: its cursor answers later with what is processed
/// since). The client keeps to the stream's budget.
async fn read_stream(
    client: &Client,
    cursor: Option<&str>,
    from: Option<i64>,
) -> Result<StreamRead, ApiError> {
    let mut request = PageRequest::get(EVENTS_STREAM)
        .polling()
        .query("limit", "500")
        .query("sortOrder", "asc");
    request.table = "new_events";
    if let Some(from) = from {
        request = request.query("from", from.to_string());
    }
    let mut read = StreamRead {
        bodies: Vec::new(),
        cursor: cursor.map(str::to_string),
        newest: None,
    };
    loop {
        let page = client
            .page::<Vec<StreamItem>>(&request, read.cursor.as_deref())
            .await?;
        let end = page.data.is_empty() || page.next.is_none();
        for item in &page.data {
            let at = item
                .attributes
                .processed_at
                .as_deref()
                .and_then(state::parse_time);
            read.newest = read.newest.max(at);
        }
        if !page.data.is_empty() {
            read.bodies.push(page.body);
        }
        if page.next.is_some() {
            read.cursor = page.next;
        }
        if end {
            return Ok(read);
        }
    }
}

/// `tables` (`new_events` and `new_event_context`, or the recent ones) of
/// `ctx`: the pages' events, decoded by the catalog's `events` and
/// `event_context` (the same rows a scan of them gives).
fn register_new(
    ctx: &SessionContext,
    tables: [&str; 2],
    org_id: &str,
    bodies: &[bytes::Bytes],
) -> Result<()> {
    for name in tables {
        let of = crate::tables::watch_table(name)
            .ok_or_else(|| anyhow!("no watch table {name}"))?
            .columns_of;
        let info = crate::tables::find(of).ok_or_else(|| anyhow!("no table {of}"))?;
        let Kind::AuditLog { decode, .. } = info.kind else {
            bail!("{of} is not part of the audit log");
        };
        let schema = schema_from(info.columns.clone());
        let mut batches = Vec::new();
        for body in bodies {
            if let Some(batch) = decode(org_id, body)? {
                batches.push(batch);
            }
        }
        let table = MemTable::try_new(schema, vec![batches])?;
        ctx.deregister_table(name)?;
        ctx.register_table(name, Arc::new(table))?;
    }
    Ok(())
}

/// `stream_health`: one row, how this organization's stream stands after
/// this poll, for the drop-off rule.
fn register_health(
    ctx: &SessionContext,
    org_id: &str,
    org_state: &OrgState,
    now: DateTime<Utc>,
    failed: Option<&anyhow::Error>,
) -> Result<()> {
    use datafusion::arrow::array::{
        ArrayRef, BooleanArray, StringArray, TimestampMicrosecondArray,
    };
    use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    use datafusion::arrow::record_batch::RecordBatch;
    let time = |text: Option<&str>| -> ArrayRef {
        let micros = text
            .and_then(state::parse_time)
            .map(|t| t.timestamp_micros());
        Arc::new(TimestampMicrosecondArray::from(vec![micros]).with_timezone("UTC"))
    };
    let timestamp = || DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    let schema = Arc::new(Schema::new(vec![
        Field::new("org_id", DataType::Utf8, false),
        Field::new("polled_at", timestamp(), false),
        Field::new("ok", DataType::Boolean, false),
        Field::new("error", DataType::Utf8, true),
        Field::new("failing_since", timestamp(), true),
        Field::new("last_processed_at", timestamp(), true),
        Field::new("watching_since", timestamp(), true),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from(vec![org_id])),
            time(Some(&state::time_text(now))),
            Arc::new(BooleanArray::from(vec![failed.is_none()])),
            Arc::new(StringArray::from(vec![failed.map(|e| {
                crate::cli::output::visible(&format!("{e:#}")).into_owned()
            })])),
            time(org_state.failing_since.as_deref()),
            time(org_state.processed_at.as_deref()),
            time(org_state.watching_since.as_deref()),
        ],
    )?;
    ctx.deregister_table(HEALTH_TABLE)?;
    ctx.register_table(
        HEALTH_TABLE,
        Arc::new(MemTable::try_new(schema, vec![vec![batch]])?),
    )?;
    Ok(())
}

/// A rule's alerts: its rows with status `alarm`.
async fn run_rule(
    ctx: &SessionContext,
    rule: &Control,
    values: &BTreeMap<String, String>,
    org_id: &str,
) -> Result<Vec<Alert>> {
    let (sql, _) = rule.bound_sql(values);
    let failed = |e: datafusion::error::DataFusionError| {
        anyhow!("rule {}: {}", rule.source, crate::error::message(&e))
    };
    let frame = crate::sql::frame(ctx, &sql).await.map_err(failed)?;
    let names: Vec<String> = frame
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    if names.len() < RULE_COLUMNS.len() || names[..RULE_COLUMNS.len()] != RULE_COLUMNS {
        bail!(
            "rule {}: the first columns must be {} (got {})",
            rule.source,
            RULE_COLUMNS.join(", "),
            names.join(", ")
        );
    }
    let batches = frame.collect().await.map_err(failed)?;
    let rows = crate::cli::output::text_rows(&batches, "")
        .map_err(|e| anyhow!("rule {}: {e}", rule.source))?;
    let mut alerts = Vec::new();
    for row in rows {
        let [resource, status, reason, key] = [&row[0], &row[1], &row[2], &row[3]];
        match status.as_str() {
            "alarm" => {}
            "ok" | "info" => continue,
            other => bail!(
                "rule {}: status {other:?} is not alarm, ok or info",
                rule.source
            ),
        }
        if key.is_empty() {
            bail!(
                "rule {}: a row without a key (the event id, or what names an aggregate)",
                rule.source
            );
        }
        alerts.push(Alert {
            id: format!("{}:{org_id}:{key}", rule.id),
            rule: rule.id.clone(),
            title: rule.title.clone(),
            severity: rule.severity.clone(),
            org_id: org_id.to_string(),
            resource: resource.clone(),
            reason: reason.clone(),
            key: key.clone(),
            details: names[RULE_COLUMNS.len()..]
                .iter()
                .cloned()
                .zip(row[RULE_COLUMNS.len()..].iter().cloned())
                .collect(),
        });
    }
    Ok(alerts)
}

/// SIGTERM or Ctrl-C: a poll still reading is dropped (it has delivered
/// nothing), a delivery and its state's write finish first.
pub struct Stop(tokio::sync::watch::Receiver<Option<&'static str>>);

impl Stop {
    fn listen() -> Self {
        let (signal, stop) = tokio::sync::watch::channel(None);
        tokio::spawn(async move {
            signal.send_replace(Some(super::stop_signal(true).await));
        });
        Stop(stop)
    }

    /// The signal that stopped it, if one did.
    fn by(&self) -> Option<&'static str> {
        *self.0.borrow()
    }

    /// Once a signal came.
    pub async fn signalled(&self) {
        let mut stop = self.0.clone();
        // The sender is dropped only after it sent.
        let _ = stop.wait_for(Option::is_some).await;
    }
}

/// `--since`: RFC 3339, or a date (midnight UTC), as epoch ms.
fn since_ms(text: &str) -> Result<i64> {
    state::parse_time(text)
        .or_else(|| {
            chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|t| t.and_utc())
        })
        .map(|t| t.timestamp_millis())
        .ok_or_else(|| {
            anyhow!("--since {text:?}: use a date (2026-11-01) or a time (2026-11-01T00:00:00Z)")
        })
}

/// `orgsql watch --list`: the rules, as `check --list` shows controls.
pub fn list(out: &mut dyn Write, rules: &[Control]) -> std::io::Result<()> {
    check::list(out, rules)
}
