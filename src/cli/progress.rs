//! Progress on stderr while the API is paged, read from the client's request
//! log and its pacer. On a terminal, one line that redraws; otherwise (cron,
//! CI, a pipe) a plain line now and then, so a long run is never silent.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use super::output::visible;
use crate::api::{Orgs, Wait, duration_words};

/// Without a terminal: a line when a wait this long begins, and a line
/// this often while requests go on (`ORGSQL_NOTICE_SECS` to change it).
const QUIET_WAIT: Duration = Duration::from_secs(10);
const QUIET_EVERY: Duration = Duration::from_secs(60);

fn quiet_every() -> Duration {
    std::env::var("ORGSQL_NOTICE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(QUIET_EVERY, Duration::from_secs)
}

/// A line on stderr while a query runs: tables paging, pages, rows, retries,
/// elapsed, and any wait for a rate budget in words. Gone before results print.
pub struct Progress {
    bar: ProgressBar,
    ticker: tokio::task::JoinHandle<()>,
}

impl Progress {
    pub fn start(orgs: &Orgs) -> Self {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        let orgs = orgs.clone();
        let client = orgs.session().clone();
        let shown = bar.clone();
        let terminal = std::io::stderr().is_terminal();
        let every = quiet_every();
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
                    let _ = writeln!(std::io::stderr(), "orgsql: {line}");
                }
            }
        });
        Self { bar, ticker }
    }

    pub fn finish(self) {
        self.ticker.abort();
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
