//! Progress on stderr while the API is paged, read from the client's request log.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::api::Client;

/// A line on stderr while a query runs: tables paging, pages, rows, retries,
/// elapsed. Drawn only on a terminal; gone before results print.
pub struct Progress {
    bar: ProgressBar,
    ticker: tokio::task::JoinHandle<()>,
}

impl Progress {
    pub fn start(client: &Client) -> Self {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        let client = client.clone();
        let first = client.request_count();
        let shown = bar.clone();
        let ticker = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(120));
            loop {
                tick.tick().await;
                let new = client.requests_since(first);
                if new.is_empty() {
                    continue;
                }
                let mut tables: Vec<&str> = new.iter().map(|r| r.table_name).collect();
                tables.sort_unstable();
                tables.dedup();
                let pages = new.iter().filter(|r| r.rows.is_some()).count();
                let rows: usize = new.iter().filter_map(|r| r.rows).sum();
                let retries = new.iter().filter(|r| r.attempt > 1).count();
                shown.set_message(format!(
                    "{}: {pages} pages, {rows} rows, {retries} retries",
                    tables.join(", ")
                ));
                shown.tick();
            }
        });
        Self { bar, ticker }
    }

    pub fn finish(self) {
        self.ticker.abort();
        self.bar.finish_and_clear();
    }
}
