//! `orgsql`: parse the command line and dispatch. Nothing else lives here.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::{Args, Parser, Subcommand};

use orgsql::cli::check::command::CheckArgs;
use orgsql::cli::diff::DiffArgs;
use orgsql::cli::export::ExportArgs;
use orgsql::cli::files::Output;
use orgsql::cli::query::{Query, Script};
use orgsql::cli::review::command::{ReviewArgs, ReviewCommand};
use orgsql::cli::serve::EmulatorArgs;
use orgsql::cli::verify::VerifyArgs;
use orgsql::cli::watch::WatchArgs;
use orgsql::cli::{self, At, Format};
use orgsql::session::Source;

/// SQL over an Atlassian Cloud organization: users, groups, workspaces, audit
/// events and policies as tables, paged lazily from the Admin API.
#[derive(Parser)]
#[command(name = "orgsql", version, after_help = AFTER_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// SQL to run (several statements separated by ';'); repeatable
    // SQL may start with a comment (`-- ...`), which is not an option.
    #[arg(
        short = 'c',
        long = "command",
        value_name = "SQL",
        allow_hyphen_values = true
    )]
    sql: Vec<String>,
    /// File of SQL statements to run; repeatable
    #[arg(short = 'f', long = "file", value_name = "PATH")]
    files: Vec<PathBuf>,
    /// How results are printed (parquet: only with --output)
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    /// Rows a table shows on a terminal at most (0: all); files, pipes and
    /// the other formats get every row
    #[arg(long, default_value_t = cli::output::DEFAULT_MAX_ROWS, value_name = "N")]
    maxrows: usize,
    /// One field a line (as psql's \x), for wide rows
    #[arg(long)]
    vertical: bool,
    /// CSV for spreadsheets: in --format csv and COPY ... TO CSV, a text
    /// cell starting with = + - @ (a formula) gets a leading ' as review
    /// files do; without it CSV keeps the data exact
    #[arg(long, env = "ORGSQL_CSV_SAFE", value_parser = clap::builder::BoolishValueParser::new())]
    csv_safe: bool,
    /// Write the query's result to FILE (one query; several are refused),
    /// atomically: a failed query leaves no file and an existing one untouched
    #[arg(global = true, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// What the session reads, and how.
    #[command(flatten)]
    session: orgsql::session::Options,
    /// A line on stderr for every API request (method, endpoint, path,
    /// status, attempt, wait, time, bytes; never the key). RUST_LOG works too
    #[arg(global = true, short = 'v', long)]
    verbose: bool,
    /// `-c` and `-f` as given on the command line, in that order.
    #[arg(skip)]
    scripts: Vec<Script>,
    /// Whether `--format` (of the command run) was given, not defaulted:
    /// only then may it disagree with `--output`'s extension.
    #[arg(skip)]
    format_given: bool,
}

/// Whether the innermost command's `--format` was given on the command line.
fn format_given(matches: &clap::ArgMatches) -> bool {
    let mut matches = matches;
    while let Some((_, inner)) = matches.subcommand() {
        matches = inner;
    }
    matches.ids().any(|id| id == "format")
        && matches.value_source("format") == Some(clap::parser::ValueSource::CommandLine)
}

/// `-c` and `-f` in the order they were given, as psql runs them.
fn in_order(matches: &clap::ArgMatches, cli: &Cli) -> Vec<Script> {
    let at = |id: &str| -> Vec<usize> {
        matches
            .indices_of(id)
            .map(Iterator::collect)
            .unwrap_or_default()
    };
    let mut scripts: Vec<(usize, Script)> = at("sql")
        .into_iter()
        .zip(cli.sql.iter().cloned().map(Script::Command))
        .chain(
            at("files")
                .into_iter()
                .zip(cli.files.iter().cloned().map(Script::File)),
        )
        .collect();
    scripts.sort_by_key(|(index, _)| *index);
    scripts.into_iter().map(|(_, script)| script).collect()
}

const AFTER_HELP: &str = "\
Credentials: set ATLASSIAN_ORG_ID and ATLASSIAN_API_KEY (an organization API key
without scopes, from admin.atlassian.com > Settings > API keys), or pass
--org-id and --api-key-file. Try it first with --demo.

Examples:
  orgsql --demo                      (an interactive session; \\? for help)
  orgsql --demo -c \"SELECT name, email FROM users WHERE mfa_enabled = false\"
  orgsql -f audit.sql --format csv
  orgsql --demo export --out snap/ && orgsql --snapshot snap/ -c \"SELECT count(*) FROM users\"";

#[derive(Subcommand)]
enum Command {
    /// Serve the Admin API emulator on 127.0.0.1 until stopped; prints one JSON
    /// line with base_url, org_id and api_key first
    Emulator(EmulatorArgs),
    /// Write every table (or some) as Parquet into a folder, with manifest.json;
    /// query it later with --snapshot DIR
    Export(ExportArgs),
    /// What changed between two snapshots: rows added, removed and changed
    /// (each changed column with its old and new value), with readable labels;
    /// --exit-code: 1 when anything changed; 2 when it cannot compare
    Diff(DiffArgs),
    /// Run the compliance pack (queries/*.sql): exit 0 when every control
    /// passes, 1 when any alarms, 2 when one cannot run
    Check(CheckArgs),
    /// The user access review: `start` freezes every grant into a file per
    /// reviewer, `verify` checks the decisions against the organization now
    Review(ReviewArgs),
    /// Seats: `plan` writes the calls that take back billable seats idle for
    /// --idle-days (a dry run in review apply's plan format; `review apply
    /// DIR --execute` sends it)
    Seats(cli::seats::SeatsArgs),
    /// Check an export offline: `verify` hashes every file and counts every
    /// table's rows against its manifest
    Snapshot(SnapshotArgs),
    /// Check an export or a JSON report offline: every digest and count it
    /// states recomputed from the files; exit 0 intact, 1 listing each
    /// problem, 2 when it cannot be read
    Verify(VerifyArgs),
    /// Alerts from the audit log as it grows: polls /events-stream, runs the
    /// rules (rules/*.sql) over each poll's new_events, delivers each alert
    /// once (stdout; --output FILE as JSON lines); --once for cron
    Watch(WatchArgs),
}

#[derive(Args)]
struct SnapshotArgs {
    #[command(subcommand)]
    command: SnapshotCommand,
}

#[derive(Subcommand)]
enum SnapshotCommand {
    /// Hash every file of every table (of each organization) and count each
    /// table's rows from its files, against the manifest: exit 0 when
    /// intact; 1 listing each file changed, missing or added, each table
    /// whose rows differ, and each table that cannot be verified; 2 when the
    /// export cannot be read
    Verify(SnapshotVerifyArgs),
}

#[derive(Args)]
struct SnapshotVerifyArgs {
    /// The export: a folder, or s3://, gs://, az:// (downloaded to be hashed)
    dir: orgsql::storage::Location,
}

fn main() -> ExitCode {
    // Exports, reports, snapshots and COPY files hold an organization's
    // people and grants: created for their owner alone (0700 folders,
    // 0600 files), as review folders are; chmod shares them.
    #[cfg(unix)]
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    let matches = <Cli as clap::CommandFactory>::command().get_matches();
    let mut cli = match <Cli as clap::FromArgMatches>::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    cli.scripts = in_order(&matches, &cli);
    cli.format_given = format_given(&matches);
    logging(cli.verbose);
    // Object storage retries as the API's do.
    orgsql::storage::set_retries(
        cli.session.max_retries,
        Duration::from_secs(cli.session.max_wait),
    );
    // Snapshot files hashed once are not hashed again while unchanged.
    if let Some(record) = orgsql::snapshot::verify::user_record() {
        orgsql::snapshot::verify::remember_in(record);
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // `check` says "could not check" with 2, apart from "an alarm" (1);
    // `diff` "could not compare", apart from "changed" (--exit-code).
    let failure = match cli.command {
        Some(Command::Check(_))
        | Some(Command::Diff(_))
        | Some(Command::Snapshot(_))
        | Some(Command::Verify(_))
        | Some(Command::Review(ReviewArgs {
            command: ReviewCommand::Verify(_) | ReviewCommand::Apply(_),
        })) => ExitCode::from(2),
        _ => ExitCode::FAILURE,
    };
    // The REPL takes Ctrl-C itself (it cancels the running query); anything
    // else stops cleanly on Ctrl-C or SIGTERM: dropping the run removes any
    // file it was writing, and an existing one stays as it was.
    let repl = cli.command.is_none()
        && cli.sql.is_empty()
        && cli.files.is_empty()
        && std::io::stdin().is_terminal();
    // `watch` stops itself between polls, its state intact; an export to
    // object storage aborts its uploads first.
    let watching = match &cli.command {
        Some(Command::Watch(_)) => true,
        Some(Command::Export(args)) => matches!(args.out, orgsql::storage::Location::Bucket(_)),
        _ => false,
    };
    let outcome = runtime.block_on(async {
        tokio::select! {
            outcome = run(cli) => outcome,
            signal = cli::stop_signal(!repl), if !watching => {
                eprintln!("orgsql: stopped by {signal}; no file was left half-written");
                Ok(ExitCode::from(if signal == "SIGTERM" { 143 } else { 130 }))
            }
        }
    });
    match outcome {
        Ok(code) => code,
        // `orgsql ... | head`: the reader has what it wanted.
        Err(e) if cli::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            // Errors quote the API: nothing in them may act on the terminal.
            eprintln!("error: {}", cli::output::visible_lines(&format!("{e:#}")));
            failure
        }
    }
}

/// `-v`: orgsql's requests on stderr; `RUST_LOG` (e.g. `orgsql=debug`) as
/// usual. Nothing is logged otherwise.
fn logging(verbose: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => EnvFilter::new(spec),
        _ if verbose => EnvFilter::new("orgsql=debug"),
        _ => return,
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

async fn run(mut cli: Cli) -> Result<ExitCode> {
    let output = Output {
        path: cli.output.clone(),
        format_given: cli.format_given,
    };
    match &cli.command {
        Some(Command::Emulator(args)) => {
            cli::serve::run(args).await?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Diff(args)) => {
            let changed = cli::diff::run(args, &output).await?;
            Ok(ExitCode::from(u8::from(changed && args.exit_code)))
        }
        Some(Command::Check(args)) if args.list => {
            let controls = cli::check::load(args.dir.as_deref())
                .and_then(|all| {
                    cli::check::select(
                        all,
                        &cli::check::Selection {
                            ids: &args.controls,
                            framework: args.framework.as_deref(),
                        },
                    )
                })
                .map_err(anyhow::Error::msg)?;
            cli::check::list(&mut std::io::stdout().lock(), &controls)?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Check(args)) => {
            let session = Source::of(&cli.session)?.open(&cli.session, true).await?;
            cli::check::command::run(&session, args, &output).await
        }
        Some(Command::Review(args)) => cli::review::command::run(&cli.session, args, &output).await,
        Some(Command::Seats(args)) => {
            let session = Source::of(&cli.session)?.open(&cli.session, true).await?;
            match &args.command {
                cli::seats::SeatsCommand::Plan(plan) => cli::seats::run(&session, plan).await,
            }
        }
        Some(Command::Snapshot(SnapshotArgs {
            command: SnapshotCommand::Verify(args),
        })) => {
            let report = orgsql::snapshot::verify::verify(&args.dir)
                .await
                .at(&format!("snapshot verify {}", args.dir))?;
            report.write(&mut std::io::stdout().lock(), &args.dir)?;
            Ok(ExitCode::from(if report.intact() { 0 } else { 1 }))
        }
        Some(Command::Verify(args)) => cli::verify::run(args).await,
        Some(Command::Export(args)) => cli::export::command(&cli.session, args).await,
        Some(Command::Watch(args)) if args.list => {
            let rules = cli::watch::rules(args.rules.as_deref())?;
            cli::watch::list(&mut std::io::stdout().lock(), &rules)?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Watch(args)) => {
            // Each poll reads afresh: no session cache.
            let session = Source::of(&cli.session)?.open(&cli.session, false).await?;
            cli::watch::run(&session, args, &output).await
        }
        None => {
            cli.format = output
                .format(cli.format, Format::EXTENSIONS)
                .map_err(anyhow::Error::msg)?;
            if cli.format == Format::Parquet && cli.output.is_none() {
                bail!("--format parquet writes a file: add --output FILE");
            }
            let session = Source::of(&cli.session)?.open(&cli.session, true).await?;
            let query = Query {
                scripts: std::mem::take(&mut cli.scripts),
                settings: cli::runner::Settings {
                    format: cli.format,
                    max_rows: cli.maxrows,
                    expanded: if cli.vertical {
                        cli::output::Expanded::On
                    } else {
                        cli::output::Expanded::Off
                    },
                    csv_safe: cli.csv_safe,
                },
                output: cli.output.clone(),
                attached: cli.session.attach.clone(),
            };
            cli::query::run(session, query).await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
