//! `orgsql watch`: alerts from the audit log as it grows. Each poll reads
//! `/events-stream` from the cursor kept in a state folder, registers what it
//! brought as `new_events` and `new_event_context` (the columns of `events`
//! and `event_context`, decoded by those tables) beside every ordinary
//! table, runs the rules (`rules/*.sql`, built in, and `--rules DIR`), and
//! delivers each alert once: to standard output as text, and appended to
//! `--output FILE` as a JSON line.
//!
//! A rule is a file in the control format of `orgsql check` (the same
//! header, read by `Control::parse`, parameters included) whose SELECT
//! starts with `resource, status, reason, key`: the three columns of a
//! control, so a rule reads like one, and `key`, what makes an alert one
//! alert (the event id for a rule that alerts on events; for a rule that
//! aggregates, whatever names the aggregate). Rows with status `alarm` are
//! alerts; `ok` and `info` rows are not delivered. Further columns go into
//! the alert's `details`.
//!
//! Once: an alert's id is (rule, organization, key). The cursor advances
//! only after a poll's alerts are delivered, the state records their ids,
//! and the `--output` file's length when the state was written: after a
//! stop between delivery and the state's write, the restart reads the same
//! events again, finds their alerts in the file past that length, and does
//! not deliver them again, to the file or to standard output. (Without
//! `--output` there is no such record: after such a stop, standard output
//! shows those alerts again.)

mod recent;
mod state;

use crate::cli::export::audit_log::StreamItem;
use std::collections::{BTreeMap, HashSet};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use chrono::{DateTime, Utc};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use serde::{Deserialize, Serialize};

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
const NEW_TABLES: [(&str, &str); 2] = [
    ("new_events", "events"),
    ("new_event_context", "event_context"),
];
const RECENT_TABLES: [(&str, &str); 2] = [
    ("recent_events", "events"),
    ("recent_event_context", "event_context"),
];

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
    let mut delivery = Delivery::open(output.path.clone(), &state)?;
    let clients: Vec<Client> = orgs.clients().cloned().collect();
    let contexts = session.per_org().await?;
    let parts: Vec<(Client, SessionContext)> = clients
        .into_iter()
        .zip(contexts.into_iter().map(|(_, ctx)| ctx))
        .collect();
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
    'polls: loop {
        for (client, ctx) in &parts {
            let org = client.org_id().to_string();
            let mut org_state = state.orgs.get(&org).cloned().unwrap_or_default();
            // A poll only reads until it delivers: a stop drops it, and the
            // next run reads its events again.
            let polled = tokio::select! {
                polled = poll(client, ctx, &org_state, since, &rules, &values, &dir) => polled,
                () = stop.signalled() => break 'polls,
            };
            let polled = match polled {
                Ok(polled) => polled,
                Err(e) if !args.once => {
                    eprintln!(
                        "orgsql watch: org {}: {}; trying again in {} s",
                        visible(&org),
                        crate::cli::output::visible_lines(&format!("{e:#}")),
                        args.interval
                    );
                    continue;
                }
                Err(e) => return Err(e.context(format!("org {org}"))),
            };
            // Deliver first; only then does the state move on.
            let fresh: Vec<&Alert> = polled
                .alerts
                .iter()
                .filter(|a| !org_state.delivered.contains_key(&a.id) && !delivery.has(&a.id))
                .collect();
            delivery.deliver(&fresh)?;
            let newest = polled
                .newest_processed
                .clone()
                .or(org_state.processed_at.clone())
                .unwrap_or_default();
            for alert in &polled.alerts {
                org_state
                    .delivered
                    .entry(alert.id.clone())
                    .or_insert_with(|| newest.clone());
            }
            if polled.cursor.is_some() {
                org_state.cursor = polled.cursor;
            }
            if polled.newest_processed.is_some() {
                org_state.processed_at = polled.newest_processed;
            }
            org_state.prune();
            state.orgs.insert(org, org_state);
            state.output = delivery.position()?;
            state.write(&dir)?;
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
    Ok(ExitCode::SUCCESS)
}

/// What one poll of one organization brought.
struct Polled {
    alerts: Vec<Alert>,
    /// The stream's cursor after the last page.
    cursor: Option<String>,
    /// The newest processing time read (RFC 3339, ms).
    newest_processed: Option<String>,
}

/// Read what the stream holds after `org_state`'s cursor (or from `since`,
/// ms of processing time, on a first run), register it as the new tables
/// of `ctx` (with the recent events kept in the state folder `dir`), and
/// run the rules over it. Rules run only on a poll that brought events: an
/// idle poll is the stream's one request.
async fn poll(
    client: &Client,
    ctx: &SessionContext,
    org_state: &OrgState,
    since: i64,
    rules: &[Control],
    values: &BTreeMap<String, String>,
    dir: &Path,
) -> Result<Polled> {
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
    }
    .with_context(|| format!("GET {EVENTS_STREAM}"))?;
    if read.bodies.is_empty() {
        return Ok(Polled {
            alerts: Vec::new(),
            cursor: read.cursor,
            newest_processed: None,
        });
    }
    register_new(ctx, NEW_TABLES, client.org_id(), &read.bodies)?;
    // Kept before delivery: an event read again replaces its copy, so a
    // stop before the state's write counts nothing twice.
    let recent = recent::update(dir, client.org_id(), &read.bodies)?;
    register_new(ctx, RECENT_TABLES, client.org_id(), &[recent.into()])?;
    let mut alerts = Vec::new();
    let mut seen = HashSet::new();
    for rule in rules {
        for alert in run_rule(ctx, rule, values, client.org_id()).await? {
            if seen.insert(alert.id.clone()) {
                alerts.push(alert);
            }
        }
    }
    Ok(Polled {
        alerts,
        cursor: read.cursor,
        newest_processed: read
            .newest
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
    })
}

/// Pages read from the stream.
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
    tables: [(&str, &str); 2],
    org_id: &str,
    bodies: &[bytes::Bytes],
) -> Result<()> {
    for (name, of) in tables {
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

/// Where alerts go: standard output, and the `--output` file.
struct Delivery {
    file: Option<PathBuf>,
    /// Ids in the file past the length the state recorded: delivered by a
    /// run that stopped before writing its state.
    unrecorded: HashSet<String>,
}

impl Delivery {
    fn open(file: Option<PathBuf>, state: &WatchState) -> Result<Self> {
        // Absolute: the state names the same file from any folder.
        let file = file.map(|p| std::path::absolute(&p).unwrap_or(p));
        let mut unrecorded = HashSet::new();
        if let Some(path) = &file
            && path.exists()
        {
            let from = match &state.output {
                Some((recorded, length)) if recorded == path => *length,
                // A file the state knows nothing of: all of it counts.
                _ => 0,
            };
            let mut text = String::new();
            let mut opened = std::fs::File::open(path)
                .with_context(|| format!("--output {}: cannot read it", path.display()))?;
            let length = opened.metadata()?.len();
            // Shorter than recorded: rotated or cut; read it all.
            opened.seek(std::io::SeekFrom::Start(if from <= length {
                from
            } else {
                0
            }))?;
            opened
                .read_to_string(&mut text)
                .with_context(|| format!("--output {}: not UTF-8 text", path.display()))?;
            #[derive(Deserialize)]
            struct Id {
                id: String,
            }
            unrecorded.extend(
                text.lines()
                    .filter_map(|line| serde_json::from_str::<Id>(line).ok())
                    .map(|a| a.id),
            );
        }
        Ok(Self { file, unrecorded })
    }

    fn has(&self, id: &str) -> bool {
        self.unrecorded.contains(id)
    }

    /// Append the alerts to the file (synced) and show them on standard
    /// output.
    fn deliver(&mut self, alerts: &[&Alert]) -> Result<()> {
        if alerts.is_empty() {
            return Ok(());
        }
        if let Some(path) = &self.file {
            let at = || format!("--output {}", path.display());
            let mut lines = Vec::new();
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .read(true)
                .open(path)
                .with_context(at)?;
            // A line cut short by a stop mid-write stays apart from the next.
            let length = file.metadata().with_context(at)?.len();
            if length > 0 {
                let mut last = [0u8];
                file.seek(std::io::SeekFrom::Start(length - 1))
                    .with_context(at)?;
                file.read_exact(&mut last).with_context(at)?;
                if last[0] != b'\n' {
                    lines.push(b'\n');
                }
            }
            for alert in alerts {
                serde_json::to_writer(&mut lines, alert)?;
                lines.push(b'\n');
            }
            file.write_all(&lines).with_context(at)?;
            file.sync_data().with_context(at)?;
        }
        let mut out = std::io::stdout().lock();
        for alert in alerts {
            writeln!(out, "{}", alert.text())?;
        }
        out.flush()?;
        Ok(())
    }

    /// The file and its length now, for the state.
    fn position(&self) -> Result<Option<(PathBuf, u64)>> {
        let Some(path) = &self.file else {
            return Ok(None);
        };
        let length = match std::fs::metadata(path) {
            Ok(meta) => meta.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e).with_context(|| format!("--output {}", path.display())),
        };
        Ok(Some((path.clone(), length)))
    }
}

/// SIGTERM or Ctrl-C: a poll still reading is dropped (it has delivered
/// nothing), a delivery and its state's write finish first.
struct Stop(tokio::sync::watch::Receiver<Option<&'static str>>);

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
    async fn signalled(&self) {
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
