//! Queries: the REPL on a terminal, else the `-c` and `-f` scripts (or
//! standard input), run in the order given, through the one runner.

use std::io::{IsTerminal, Read};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};

use super::runner::Settings;
use crate::session::Session;

/// A `-c SQL` or a `-f PATH`.
#[derive(Debug, Clone)]
pub enum Script {
    Command(String),
    File(PathBuf),
}

/// What to run and how to show it.
pub struct Query {
    /// `-c` and `-f`, in the order given; none: the REPL on a terminal,
    /// else standard input.
    pub scripts: Vec<Script>,
    pub settings: Settings,
    /// `--output FILE`: the one query's result goes there.
    pub output: Option<PathBuf>,
    /// `--attach NAME=DIR`, for `\conninfo`.
    pub attached: Vec<(String, crate::storage::Location)>,
}

/// The REPL on a terminal with no SQL given, else the scripts.
pub async fn run(session: Session, query: Query) -> Result<()> {
    let interactive = query.scripts.is_empty() && std::io::stdin().is_terminal();
    let reading = super::meta::Reading {
        description: match &session.snapshot {
            Some(_) => format!(
                "{}, organization {}; offline",
                session.described, session.org
            ),
            None => format!("{}, organization {}", session.described, session.org),
        },
        offline: session.snapshot.is_some(),
        attached: query.attached.clone(),
    };
    let settings = query.settings;
    // The session (and the demo's emulator) lives until the runner is done.
    let (ctx, orgs) = (session.ctx.clone(), session.orgs.clone());
    if interactive {
        let runner = super::runner::Runner::new(ctx, orgs, reading, settings, None);
        return super::repl::run(runner).await;
    }
    let scripts = scripts(&query.scripts)?;
    if let Some(path) = &query.output {
        // One file holds one result: refuse rather than keep only the last.
        let queries: usize = scripts
            .iter()
            .filter_map(|(_, sql)| crate::sql::parse(sql).ok())
            .map(|statements| {
                statements
                    .iter()
                    .filter(|s| super::exec::is_query(s))
                    .count()
            })
            .sum();
        if queries > 1 {
            bail!(
                "--output {}: a file holds the result of one query, and these statements have \
                 {queries}. Run one query per --output, or write each with COPY (SELECT ...) TO 'file'",
                path.display()
            );
        }
    }
    let mut runner = super::runner::Runner::new(ctx, orgs, reading, settings, query.output.clone());
    for (origin, sql) in scripts {
        match runner.script(&sql).await {
            Ok(super::runner::Flow::Quit) => break,
            Ok(_) => {}
            Err(super::runner::Stopped::ClosedPipe) => {
                return Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe).into());
            }
            Err(stopped) => bail!("{origin}: {stopped}"),
        }
    }
    Ok(())
}

/// The SQL to run, with where it came from for error messages.
fn scripts(given: &[Script]) -> Result<Vec<(String, String)>> {
    let mut scripts = Vec::new();
    for script in given {
        scripts.push(match script {
            Script::Command(sql) => ("-c".to_string(), sql.clone()),
            Script::File(path) => (
                path.display().to_string(),
                std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read SQL file {}", path.display()))?,
            ),
        });
    }
    if scripts.is_empty() {
        let mut sql = String::new();
        std::io::stdin()
            .read_to_string(&mut sql)
            .context("cannot read SQL from standard input")?;
        scripts.push(("stdin".to_string(), sql));
    }
    Ok(scripts)
}
