//! Progress on stderr while the API is paged, read from the client's request
//! log and its pacer. On a terminal, one line that redraws; otherwise (cron,
//! CI, a pipe) a plain line now and then, so a long run is never silent.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::output::visible;
use crate::api::{Orgs, Wait, duration_words};

/// Without a terminal: a line when a wait this long begins, and a line
/// this often while requests go on (`ORGSQL_NOTICE_SECS` to change it).
const QUIET_WAIT: Duration = Duration::from_secs(10);
pub const QUIET_EVERY: Duration = Duration::from_secs(60);

fn quiet_every() -> Duration {
    std::env::var("ORGSQL_NOTICE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(QUIET_EVERY, Duration::from_secs)
}

/// A line on stderr while a query runs: tables paging, pages, rows, retries,
/// elapsed, and any wait for a rate budget in words. Gone before results
/// print, and however the run ends: dropped (an error, Ctrl-C) it clears its
/// line and says nothing more.
pub struct Progress {
    pub bar: ProgressBar,
    ticker: tokio::task::JoinHandle<()>,
    /// Set when it ends; a plain line is written only while holding it
    /// unset, so none comes after the end.
    pub ended: Arc<Mutex<bool>>,
}

impl Progress {
    pub fn start(orgs: &Orgs) -> Self {
        Self::drawing(
            orgs,
            ProgressDrawTarget::stderr(),
            std::io::stderr().is_terminal(),
            quiet_every(),
        )
    }

    /// On `target`, redrawn as on a terminal or (`terminal` false) a
    /// plain line every `every` while requests go on.
    pub fn drawing(
        orgs: &Orgs,
        target: ProgressDrawTarget,
        terminal: bool,
        every: Duration,
    ) -> Self {
        let bar = ProgressBar::with_draw_target(None, target);
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        let orgs = orgs.clone();
        let client = orgs.first().clone();
        let shown = bar.clone();
        let ended = Arc::new(Mutex::new(false));
        let said = ended.clone();
        let ticker = tokio::spawn(async move {
            let first = client.request_count();
            let started = Instant::now();
            let mut last_said = Instant::now();
            let mut said_wait: Option<Instant> = None;
            let mut tick = tokio::time::interval(Duration::from_millis(120));
            loop {
                tick.tick().await;
                let new = client.requests_since(first);
                let wait = orgs.longest_wait();
                if terminal {
                    if new.is_empty() && wait.is_none() {
                        continue;
                    }
                    shown.set_message(match &wait {
                        Some(wait) => waiting(wait),
                        None => summary(&new),
                    });
                    shown.tick();
                    continue;
                }
                // No terminal: say a long wait once, and that work goes on.
                let mut line = None;
                if let Some(wait) = &wait
                    && wait.until.saturating_duration_since(Instant::now()) > QUIET_WAIT
                    && said_wait != Some(wait.until)
                {
                    said_wait = Some(wait.until);
                    line = Some(waiting(wait));
                } else if !new.is_empty() && last_said.elapsed() >= every {
                    line = Some(format!(
                        "still running after {}: {}",
                        duration_words(started.elapsed()),
                        summary(&new)
                    ));
                }
                if let Some(line) = line {
                    last_said = Instant::now();
                    let ended = said
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    if *ended {
                        return;
                    }
                    let _ = writeln!(std::io::stderr(), "orgsql: {line}");
                }
            }
        });
        Self { bar, ticker, ended }
    }

    /// End it: the line is cleared. Dropping it does the same.
    pub fn finish(self) {}
}

impl Drop for Progress {
    fn drop(&mut self) {
        // The ticker stops at its next await; until then it may be between
        // two: the flag keeps it from writing, and a finished bar draws
        // nothing more.
        self.ticker.abort();
        *self
            .ended
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = true;
        self.bar.finish_and_clear();
    }
}

fn summary(new: &[crate::api::RequestRecord]) -> String {
    let mut tables: Vec<&str> = new.iter().map(|r| r.table_name).collect();
    tables.sort_unstable();
    tables.dedup();
    let pages = new.iter().filter(|r| r.rows.is_some()).count();
    let rows: usize = new.iter().filter_map(|r| r.rows).sum();
    let retries = new.iter().filter(|r| r.attempt > 1).count();
    format!(
        "{}: {pages} pages, {rows} rows, {retries} retries",
        tables.join(", ")
    )
}

/// "waiting 40 s for GET /admin/v1/orgs/{orgId}/events: its budget ... is spent"
/// (the reason may quote the API).
fn waiting(wait: &Wait) -> String {
    format!(
        "waiting {} for {}: {}",
        duration_words(wait.until.saturating_duration_since(Instant::now())),
        wait.endpoint,
        visible(&wait.why)
    )
}
