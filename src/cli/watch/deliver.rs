//! Where `orgsql watch` delivers alerts, each once: a webhook and a command
//! (each alert as one JSON body, retried with backoff until it is taken),
//! then the `--output` file (one JSON line an alert) and standard output.
//!
//! Once across stops: an alert the webhook and the command took is written
//! to the state folder's journal (`sent.log`) before the next is sent, and
//! the file's alerts past the length the state recorded are read back, so
//! a restart that reads the same events again sends neither again. An alert
//! whose delivery a `kill -9` cut short is sent again, with the same id:
//! the webhook's `webhook-id` and `idempotency_key` let a receiver drop it.

use std::collections::HashSet;
use std::io::{Read, Seek, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Deserialize;

use super::state::WatchState;
use super::{Alert, Stop};
use crate::cli::output::{visible, visible_lines};

/// The journal of alerts the webhook and the command took since the state
/// was last written.
pub const JOURNAL_FILE: &str = "sent.log";

/// How long a webhook answer or a command may take before it counts as
/// failed (and is tried again).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(60);

/// The first wait after a failed attempt; each next one doubles, up to
/// `MAX_BACKOFF`.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// The webhook and command options of `orgsql watch`.
#[derive(clap::Args, Clone)]
pub struct SinkArgs {
    /// POST each alert as JSON to this URL (Slack's incoming webhooks take
    /// it). A URL can hold a secret: give it by the variable rather than on
    /// the command line
    #[arg(
        long,
        value_name = "URL",
        env = "ORGSQL_WEBHOOK_URL",
        hide_env_values = true
    )]
    pub webhook: Option<String>,
    /// A file holding the secret that signs each webhook body (HMAC-SHA256,
    /// Standard Webhooks headers); or give it in ORGSQL_WEBHOOK_SECRET
    #[arg(long, value_name = "FILE", requires = "webhook")]
    pub webhook_secret_file: Option<PathBuf>,
    /// Run this shell command for each alert, its JSON on standard input;
    /// exit status 0 means delivered
    #[arg(long, value_name = "COMMAND")]
    pub exec: Option<String>,
    /// With --once: seconds a failed delivery is retried before the run
    /// stops (exit 1, nothing dropped: the next run delivers it). Without
    /// --once, delivery is retried until it succeeds
    #[arg(long, default_value_t = 300, value_name = "SECS")]
    pub retry_for: u64,
}

/// The variable that holds the webhook's signing secret.
pub const SECRET_VAR: &str = "ORGSQL_WEBHOOK_SECRET";

/// One alert as the webhook and the command get it.
#[derive(serde::Serialize)]
pub struct Body<'a> {
    /// The alert's id: the same alert sent again has the same key.
    pub idempotency_key: &'a str,
    /// One line for a chat: Slack's incoming webhooks show it.
    pub text: String,
    pub alert: &'a Alert,
}

impl<'a> Body<'a> {
    pub fn of(alert: &'a Alert) -> Self {
        Body {
            idempotency_key: &alert.id,
            text: format!(
                "*[{}] {}*\norg {}: {}: {}\n`{}`",
                slack(&alert.severity),
                slack(&alert.title),
                slack(&alert.org_id),
                slack(&alert.resource),
                slack(&alert.reason),
                slack(&alert.id),
            ),
            alert,
        }
    }
}

/// Text a Slack message shows as it is: `&`, `<` and `>` are the three
/// characters Slack asks to escape (`<!channel>` and `<url|text>` are its
/// mentions and links), and backticks would end the code span.
pub fn slack(text: &str) -> String {
    visible(text)
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('`', "'")
}

/// A place outside orgsql that takes alerts one at a time.
enum Sink {
    Webhook {
        client: reqwest::Client,
        url: reqwest::Url,
        /// The HMAC key, when a secret was given.
        key: Option<Vec<u8>>,
    },
    Command(String),
}

impl Sink {
    /// How errors name it: a webhook by scheme and host only (its path may
    /// be a secret, as Slack's is).
    fn name(&self) -> String {
        match self {
            Sink::Webhook { url, .. } => format!(
                "webhook {}://{}",
                url.scheme(),
                url.host_str().unwrap_or("?")
            ),
            Sink::Command(_) => "--exec command".to_string(),
        }
    }

    /// One attempt to hand over `body` (the alert `id`'s JSON).
    async fn send(&self, id: &str, body: &[u8]) -> Result<(), String> {
        match self {
            Sink::Webhook { client, url, key } => {
                let mut request = client
                    .post(url.clone())
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .header("idempotency-key", id)
                    .header("webhook-id", id);
                if let Some(key) = key {
                    let timestamp = chrono::Utc::now().timestamp().to_string();
                    request = request
                        .header("webhook-timestamp", &timestamp)
                        .header("webhook-signature", signature(key, id, &timestamp, body));
                }
                let answer = request
                    .body(body.to_vec())
                    .send()
                    .await
                    .map_err(|e| e.without_url().to_string())?;
                let status = answer.status();
                if status.is_success() {
                    return Ok(());
                }
                let text = answer.text().await.unwrap_or_default();
                let text: String = text.chars().take(200).collect();
                Err(format!("answered {status}: {}", visible(text.trim())))
            }
            Sink::Command(command) => run_command(command, id, body).await,
        }
    }
}

/// The Standard Webhooks signature of a body: `v1,` and the base64
/// HMAC-SHA256 of `id.timestamp.body` (https://www.standardwebhooks.com).
pub fn signature(key: &[u8], id: &str, timestamp: &str, body: &[u8]) -> String {
    use ring::hmac;
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let mut context = hmac::Context::with_key(&key);
    context.update(id.as_bytes());
    context.update(b".");
    context.update(timestamp.as_bytes());
    context.update(b".");
    context.update(body);
    format!("v1,{}", BASE64.encode(context.sign().as_ref()))
}

/// The HMAC key of a secret: a Standard Webhooks secret (`whsec_` and
/// base64) is its decoded bytes, any other its bytes as written.
pub fn secret_key(secret: &str) -> Result<Vec<u8>> {
    let secret = secret.trim();
    if secret.is_empty() {
        bail!("the webhook secret is empty");
    }
    match secret.strip_prefix("whsec_") {
        Some(encoded) => BASE64.decode(encoded).map_err(|_| {
            anyhow!("the webhook secret starts with whsec_ but is not base64 after it")
        }),
        None => Ok(secret.as_bytes().to_vec()),
    }
}

/// Run `command` with `sh -c`, `body` on its standard input and
/// `ORGSQL_ALERT_ID` set; its standard output goes to ours for errors, so
/// alerts on standard output stay one a line.
async fn run_command(command: &str, id: &str, body: &[u8]) -> Result<(), String> {
    use std::process::{Command, Stdio};
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .env("ORGSQL_ALERT_ID", id)
        .stdin(Stdio::piped())
        .stdout(Stdio::from(
            std::io::stderr()
                .as_fd()
                .try_clone_to_owned()
                .map_err(|e| e.to_string())?,
        ))
        .spawn()
        .map_err(|e| format!("cannot start sh: {e}"))?;
    let body = body.to_vec();
    let mut stdin = child.stdin.take();
    let waited = tokio::task::spawn_blocking(move || {
        // A command that does not read its input is its own business: a
        // broken pipe is not a failed delivery; its exit status says.
        if let Some(stdin) = stdin.as_mut() {
            let _ = stdin.write_all(&body);
        }
        drop(stdin);
        let started = std::time::Instant::now();
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return Ok(status),
                Ok(None) if started.elapsed() >= ATTEMPT_TIMEOUT => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!(
                        "still running after {} s: stopped it",
                        ATTEMPT_TIMEOUT.as_secs()
                    ));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => return Err(e.to_string()),
            }
        }
    })
    .await
    .map_err(|e| e.to_string())??;
    if waited.success() {
        Ok(())
    } else {
        Err(format!("exited with {waited}"))
    }
}

/// Where alerts go, and what each place has already taken.
pub struct Delivery {
    sinks: Vec<Sink>,
    /// Give up retrying after this long (`--once`); `None`: never.
    retry_for: Option<Duration>,
    journal: PathBuf,
    /// Ids the sinks took since the state was written (the journal).
    sent: HashSet<String>,
    file: Option<PathBuf>,
    /// Ids in the file past the length the state recorded: delivered by a
    /// run that stopped before writing its state.
    unrecorded: HashSet<String>,
}

impl Delivery {
    pub fn open(
        args: &SinkArgs,
        once: bool,
        file: Option<PathBuf>,
        dir: &Path,
        state: &WatchState,
    ) -> Result<Self> {
        let mut sinks = Vec::new();
        if let Some(url) = &args.webhook {
            let url = reqwest::Url::parse(url)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
                .ok_or_else(|| anyhow!("--webhook: not an http(s) URL"))?;
            let secret = match &args.webhook_secret_file {
                Some(path) => Some(std::fs::read_to_string(path).with_context(|| {
                    format!("--webhook-secret-file {}: cannot read it", path.display())
                })?),
                None => std::env::var(SECRET_VAR).ok().filter(|s| !s.is_empty()),
            };
            let key = secret.as_deref().map(secret_key).transpose()?;
            let client = reqwest::Client::builder()
                .timeout(ATTEMPT_TIMEOUT)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .context("cannot make the webhook's HTTP client")?;
            sinks.push(Sink::Webhook { client, url, key });
        }
        if let Some(command) = &args.exec {
            sinks.push(Sink::Command(command.clone()));
        }
        let journal = dir.join(JOURNAL_FILE);
        let sent = match std::fs::read_to_string(&journal) {
            Ok(text) => text.lines().map(str::to_string).collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => HashSet::new(),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", journal.display())),
        };
        // Absolute: the state names the same file from any folder.
        let file = file.map(|p| std::path::absolute(&p).unwrap_or(p));
        let unrecorded = match &file {
            Some(path) if path.exists() => {
                let from = match &state.output {
                    Some((recorded, length)) if recorded == path => *length,
                    // A file the state knows nothing of: all of it counts.
                    _ => 0,
                };
                ids_after(path, from)?
            }
            _ => HashSet::new(),
        };
        Ok(Self {
            sinks,
            retry_for: (once).then(|| Duration::from_secs(args.retry_for)),
            journal,
            sent,
            file,
            unrecorded,
        })
    }

    /// Deliver `alerts`: each to the webhook and the command (retried until
    /// taken, or until `--retry-for` with `--once`; a stop signal ends the
    /// waiting), then all to the file (synced) and standard output.
    pub async fn deliver(&mut self, alerts: &[&Alert], stop: &Stop) -> Result<()> {
        for alert in alerts {
            if self.sinks.is_empty() || self.sent.contains(&alert.id) {
                continue;
            }
            let body = serde_json::to_vec(&Body::of(alert))?;
            for sink in &self.sinks {
                self.send(sink, alert, &body, stop).await?;
            }
            let mut journal = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.journal)
                .with_context(|| format!("cannot write {}", self.journal.display()))?;
            writeln!(journal, "{}", alert.id)
                .with_context(|| format!("cannot write {}", self.journal.display()))?;
            self.sent.insert(alert.id.clone());
        }
        let local: Vec<&&Alert> = alerts
            .iter()
            .filter(|a| !self.unrecorded.contains(&a.id))
            .collect();
        if local.is_empty() {
            return Ok(());
        }
        if let Some(path) = &self.file {
            append_lines(path, &local)?;
        }
        let mut out = std::io::stdout().lock();
        for alert in local {
            writeln!(out, "{}", alert.text())?;
        }
        out.flush()?;
        Ok(())
    }

    /// Hand `body` to `sink`, retrying with backoff.
    async fn send(&self, sink: &Sink, alert: &Alert, body: &[u8], stop: &Stop) -> Result<()> {
        let started = std::time::Instant::now();
        let mut wait = FIRST_BACKOFF;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let failed = match sink.send(&alert.id, body).await {
                Ok(()) => return Ok(()),
                Err(failed) => failed,
            };
            let gave_up = self
                .retry_for
                .is_some_and(|limit| started.elapsed() + wait > limit);
            eprintln!(
                "orgsql watch: alert {} to the {}: {}; {}",
                visible(&alert.id),
                sink.name(),
                visible_lines(&failed),
                if gave_up {
                    "giving up for this run".to_string()
                } else {
                    format!("trying again in {} s", wait.as_secs())
                }
            );
            if gave_up {
                bail!(
                    "the {} did not take alert {} in {attempts} attempts over {} s \
                     (--retry-for): the cursor stays, so the next run delivers it and \
                     those after it",
                    sink.name(),
                    visible(&alert.id),
                    started.elapsed().as_secs()
                );
            }
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = stop.signalled() => bail!(
                    "stopped while delivering alert {}: the cursor stays, so the next run \
                     delivers it",
                    visible(&alert.id)
                ),
            }
            wait = (wait * 2).min(MAX_BACKOFF);
        }
    }

    /// `state` was written: the journal keeps only the ids it does not
    /// record (another organization's, delivered by a run that stopped
    /// before that organization's state was written).
    pub fn recorded(&mut self, state: &WatchState) -> Result<()> {
        let before = self.sent.len();
        self.sent.retain(|id| {
            !state
                .orgs
                .values()
                .any(|org| org.delivered.contains_key(id))
        });
        if self.sent.len() == before {
            return Ok(());
        }
        if self.sent.is_empty() {
            return match std::fs::remove_file(&self.journal) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(e).with_context(|| format!("cannot remove {}", self.journal.display()))
                }
                _ => Ok(()),
            };
        }
        let lines: String = self.sent.iter().map(|id| format!("{id}\n")).collect();
        crate::cli::files::write_atomically(&self.journal, |mut file| {
            file.write_all(lines.as_bytes())
                .map_err(crate::cli::files::io_at(&self.journal))
        })
        .map_err(|e| anyhow!("{}", crate::error::message(&e)))
    }

    /// The file and its length now, for the state.
    pub fn position(&self) -> Result<Option<(PathBuf, u64)>> {
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

/// The alert ids of `path`'s lines from byte `from` on (all of it when the
/// file is shorter: rotated or cut).
fn ids_after(path: &Path, from: u64) -> Result<HashSet<String>> {
    let mut text = String::new();
    let mut opened = std::fs::File::open(path)
        .with_context(|| format!("--output {}: cannot read it", path.display()))?;
    let length = opened.metadata()?.len();
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
    Ok(text
        .lines()
        .filter_map(|line| serde_json::from_str::<Id>(line).ok())
        .map(|a| a.id)
        .collect())
}

/// Append one JSON line per alert to `path`, synced.
fn append_lines(path: &Path, alerts: &[&&Alert]) -> Result<()> {
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
    file.sync_data().with_context(at)
}
