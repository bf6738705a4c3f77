//! Unit tests of `orgsql::cli::progress` (src/cli/progress.rs).

use indicatif::ProgressDrawTarget;
use orgsql::api::Orgs;
use orgsql::api::{ApiKey, ClientConfig};
use orgsql::cli::progress::*;
use std::sync::{Arc, Mutex};

/// A one-line terminal in memory: what is on it now.
#[derive(Debug, Clone, Default)]
struct Screen(Arc<Mutex<(String, usize)>>);

impl Screen {
    fn line(&self) -> String {
        let screen = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        screen.0.trim_end().to_string()
    }
}

impl indicatif::TermLike for Screen {
    fn width(&self) -> u16 {
        80
    }
    fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_right(&self, n: usize) -> std::io::Result<()> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .1 += n;
        Ok(())
    }
    fn move_cursor_left(&self, n: usize) -> std::io::Result<()> {
        let mut screen = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        screen.1 = screen.1.saturating_sub(n);
        Ok(())
    }
    fn write_line(&self, s: &str) -> std::io::Result<()> {
        self.write_str(s)
    }
    /// Characters overwrite from the cursor; `\r` goes back to the start.
    fn write_str(&self, s: &str) -> std::io::Result<()> {
        let mut screen = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (line, cursor) = &mut *screen;
        for c in s.chars() {
            if c == '\r' {
                *cursor = 0;
                continue;
            }
            let mut chars: Vec<char> = line.chars().collect();
            if *cursor < chars.len() {
                chars[*cursor] = c;
            } else {
                chars.resize(*cursor, ' ');
                chars.push(c);
            }
            *line = chars.into_iter().collect();
            *cursor += 1;
        }
        Ok(())
    }
    fn clear_line(&self) -> std::io::Result<()> {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = (String::new(), 0);
        Ok(())
    }
    fn flush(&self) -> std::io::Result<()> {
        Ok(())
    }
}

fn orgs() -> Orgs {
    // Nothing is sent: no query runs.
    let config = ClientConfig::new(
        "http://127.0.0.1:9".to_string(),
        "00000000-0000-4000-8000-000000000001".to_string(),
        ApiKey::new("unused".to_string()),
    );
    Orgs::new(config, Vec::new()).expect("a client")
}

/// An error or Ctrl-C drops the progress without `finish`: its line is
/// cleared all the same, and nothing is drawn or said after.
#[tokio::test]
async fn a_dropped_progress_clears_its_line() {
    for finished in [false, true] {
        let screen = Screen::default();
        let target = ProgressDrawTarget::term_like(Box::new(screen.clone()));
        let progress = Progress::drawing(&orgs(), target, true, QUIET_EVERY);
        progress
            .bar
            .set_message("users: 3 pages, 300 rows, 0 retries");
        progress.bar.tick();
        assert!(
            screen.line().contains("users: 3 pages"),
            "{}",
            screen.line()
        );
        let (bar, ended) = (progress.bar.clone(), progress.ended.clone());
        if finished {
            progress.finish();
        } else {
            drop(progress);
        }
        assert_eq!(screen.line(), "", "finished: {finished}");
        assert!(bar.is_finished());
        // What the ticker might still do between two awaits: a tick
        // draws nothing, and a plain line is not written.
        bar.set_message("users: 4 pages");
        bar.tick();
        assert_eq!(screen.line(), "");
        assert!(
            *ended
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        );
    }
}
