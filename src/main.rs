//! `orgsql`: parse the command line and dispatch. Nothing else lives here.

use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};

use datafusion::prelude::SessionContext;
use orgsql::api::{ClientConfig, DEFAULT_CACHE_TTL, DEFAULT_CONCURRENCY, DEFAULT_MAX_WAIT, Orgs};
use orgsql::cli::check::{self, Report};
use orgsql::cli::{self, At, Format};
use orgsql::emulator::{Emulator, EmulatorConfig, Faults, OrgSpec, RateLimits};

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
    /// Write the query's result to FILE (one query; several are refused),
    /// atomically: a failed query leaves no file and an existing one untouched
    #[arg(global = true, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Run against a built-in emulated demo organization (no account needed)
    #[arg(global = true, long)]
    demo: bool,
    /// Organization id (the UUID in admin.atlassian.com/o/<id>/...)
    #[arg(global = true, long, env = "ATLASSIAN_ORG_ID", value_name = "ID")]
    org_id: Option<String>,
    /// Read the organization of this connection of the config file;
    /// repeatable: every table then holds the rows of each (org_id tells)
    #[arg(global = true, long = "org", value_name = "NAME")]
    org_names: Vec<String>,
    /// Read every organization of the config file
    #[arg(global = true, long)]
    all_orgs: bool,
    /// The config file of named connections [default:
    /// $XDG_CONFIG_HOME/orgsql/config.toml, else ~/.config/orgsql/config.toml]
    #[arg(global = true, long, env = "ORGSQL_CONFIG", value_name = "PATH")]
    config: Option<PathBuf>,
    /// File holding the organization API key (else ATLASSIAN_API_KEY is read)
    #[arg(global = true, long, value_name = "PATH")]
    api_key_file: Option<PathBuf>,
    /// File holding a second, scoped key for the API Access API (api_tokens,
    /// api_keys), which needs read:tokens:admin (else ATLASSIAN_SCOPED_API_KEY)
    #[arg(global = true, long, value_name = "PATH")]
    scoped_api_key_file: Option<PathBuf>,
    /// Admin API base URL
    #[arg(
        global = true,
        long,
        env = "ORGSQL_BASE_URL",
        default_value = "https://api.atlassian.com",
        value_name = "URL"
    )]
    base_url: String,
    /// Retries of a rate-limited or failed request before the query fails
    #[arg(global = true, long, default_value_t = 5, value_name = "N")]
    max_retries: u32,
    /// A line on stderr for every API request (method, endpoint, path,
    /// status, attempt, wait, time, bytes; never the key). RUST_LOG works too
    #[arg(global = true, short = 'v', long)]
    verbose: bool,
    /// Longest wait for one request, in seconds (a rate budget to refill, a
    /// Retry-After); an API asking for longer fails the query, saying so
    #[arg(global = true, long, default_value_t = DEFAULT_MAX_WAIT.as_secs(), value_name = "SECS")]
    max_wait: u64,
    /// Requests in flight for tables with one call per user or group
    #[arg(global = true, long, default_value_t = DEFAULT_CONCURRENCY, value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=64))]
    concurrency: u16,
    /// Seconds a fetched page is reused within this session
    #[arg(global = true, long, default_value_t = DEFAULT_CACHE_TTL.as_secs(), value_name = "SECS")]
    cache_ttl: u64,
    /// Fetch every page afresh, even within one session
    #[arg(global = true, long)]
    no_cache: bool,
    /// Query an export instead of the API (offline): a folder, or a prefix
    /// in object storage (s3://, gs://, az://)
    #[arg(long, value_name = "DIR", conflicts_with = "demo")]
    snapshot: Option<PathBuf>,
    /// With --snapshot: answer now(), current_date and the controls' time
    /// windows with the real clock, not the data's as-of time (a verdict
    /// then changes with the day it is run)
    #[arg(long, requires = "snapshot")]
    wall_clock: bool,
    /// An HR roster (CSV: email, name, manager_email, department,
    /// employment_status, end_date) as the table `roster`, for joins on
    /// email and the leaver controls
    #[arg(global = true, long, value_name = "FILE")]
    roster: Option<PathBuf>,
    /// Also attach a snapshot as schema NAME (e.g. old=snap1/ gives old.users); repeatable
    #[arg(long, value_name = "NAME=DIR", value_parser = attach_spec)]
    attach: Vec<(String, PathBuf)>,
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

/// A `-c SQL` or a `-f PATH`.
#[derive(Clone)]
enum Script {
    Command(String),
    File(PathBuf),
}

impl Script {
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
}

/// `--attach NAME=DIR`, read once.
fn attach_spec(spec: &str) -> std::result::Result<(String, PathBuf), String> {
    spec.split_once('=')
        .filter(|(name, dir)| !name.is_empty() && !dir.is_empty())
        .map(|(name, dir)| (name.to_string(), PathBuf::from(dir)))
        .ok_or_else(|| format!("{spec}: use NAME=DIR, e.g. old=snap1/"))
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
    /// (naming the columns), per table; --format table|csv|json|ndjson
    Diff(DiffArgs),
    /// Run the compliance pack (queries/*.sql): exit 0 when every control
    /// passes, 1 when any alarms, 2 when one cannot run
    Check(CheckArgs),
    /// The user access review: `start` freezes every grant into a file per
    /// reviewer, `verify` checks the decisions against the organization now
    Review(ReviewArgs),
    /// Check an export offline: `verify` hashes every file against its manifest
    Snapshot(SnapshotArgs),
}

#[derive(Args)]
struct SnapshotArgs {
    #[command(subcommand)]
    command: SnapshotCommand,
}

#[derive(Subcommand)]
enum SnapshotCommand {
    /// Hash every file of every table (of each organization) and compare it
    /// with the manifest: exit 0 when intact; 1 listing each file changed,
    /// missing or added, and each table that cannot be verified; 2 when the
    /// export cannot be read
    Verify(SnapshotVerifyArgs),
}

#[derive(Args)]
struct SnapshotVerifyArgs {
    /// The export: a folder, or s3://, gs://, az:// (downloaded to be hashed)
    dir: PathBuf,
}

#[derive(Args)]
struct ReviewArgs {
    #[command(subcommand)]
    command: ReviewCommand,
}

#[derive(Subcommand)]
enum ReviewCommand {
    /// Freeze the organization's grants into DIR: a snapshot, and a CSV file
    /// per reviewer scope with empty decision and justification columns
    Start(ReviewStartArgs),
    /// Read the filled files back (refused if the evidence was edited or a
    /// decision is missing: exit 2), then report revokes not carried out and
    /// grants nobody certified (exit 1), and write DIR/summary.md
    Verify(ReviewVerifyArgs),
}

#[derive(Args)]
struct ReviewStartArgs {
    /// The review's folder (new, or empty)
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// How grants are split into files, one per reviewer
    #[arg(long, value_enum, default_value = "product")]
    by: cli::review::By,
    /// csv; html also writes a page per file to read or print
    #[arg(long, value_enum, default_value = "csv")]
    format: cli::review::Pages,
}

#[derive(Args)]
struct ReviewVerifyArgs {
    /// The folder `review start` wrote
    dir: PathBuf,
    /// Judge against a snapshot folder instead of the live organization
    #[arg(long, value_name = "SNAPSHOT")]
    against: Option<PathBuf>,
    /// How the report is written
    #[arg(long, value_enum, default_value = "table")]
    format: Report,
}

#[derive(Args)]
struct DiffArgs {
    /// The earlier snapshot (a folder, or s3://, gs://, az://)
    old: PathBuf,
    /// The later snapshot
    new: PathBuf,
    /// How the changes are printed
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
}

#[derive(Args)]
struct CheckArgs {
    /// Only these controls, comma-separated ids
    #[arg(long, value_name = "ID,...", value_delimiter = ',')]
    controls: Vec<String>,
    /// Only the controls that give evidence for this framework, reported by
    /// its controls: soc2, iso27001, nist800-53 or cis
    #[arg(long, value_name = "FRAMEWORK")]
    framework: Option<String>,
    /// A control parameter, e.g. inactive_days=60 (repeatable; --list shows them)
    #[arg(long = "param", value_name = "NAME=VALUE")]
    params: Vec<String>,
    /// Exit 1 only for alarms of this severity or higher (default: any alarm)
    #[arg(long, value_parser = ["critical", "high", "medium", "low"], value_name = "SEVERITY")]
    fail_on: Option<String>,
    /// Mark alarms new or still open, and list what was fixed, since an
    /// earlier `check --format json` report or a snapshot folder
    #[arg(long, value_name = "FILE_OR_SNAPSHOT")]
    baseline: Option<PathBuf>,
    /// How the report is written
    #[arg(long, value_enum, default_value = "table")]
    format: Report,
    /// List the controls and stop
    #[arg(long)]
    list: bool,
    /// Also run the controls in this folder (.sql files in the pack's format)
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

#[derive(Args)]
struct ExportArgs {
    /// The folder to write (created if missing), or a prefix in object
    /// storage: s3://bucket/prefix/, gs://..., az://..., abfss://...
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Only these tables, comma-separated
    #[arg(long, value_name = "A,B", value_delimiter = ',')]
    tables: Option<Vec<String>>,
    /// Only events at or after this time, e.g. 2026-11-01 or 2026-11-01T00:00:00Z
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
}

#[derive(Args)]
struct EmulatorArgs {
    /// Port on 127.0.0.1 (0 picks a free one)
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Seed of the generated organization
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Number of users
    #[arg(long, default_value_t = 250)]
    users: usize,
    /// Number of audit events over the last 90 days
    #[arg(long, default_value_t = 3000)]
    events: usize,
    /// Latency added to every response, in milliseconds
    #[arg(long, default_value_t = 0, value_name = "MS")]
    latency_ms: u64,
    /// Fail every N-th request, alternately with 429 and 503
    #[arg(long, value_name = "N")]
    fail_every: Option<u64>,
    /// Enforce the API's documented rate budgets (429 when one is spent)
    #[arg(long, value_enum, default_value = "on", value_name = "on|off")]
    rate_limits: Switch,
    /// Run the budgets' clock this many times faster (60: a documented
    /// minute lasts one second)
    #[arg(long, default_value_t = 1.0, value_name = "X", value_parser = time_scale)]
    time_scale: f64,
    /// Requests a minute allowed to endpoints whose budget is not published
    #[arg(long, default_value_t = RateLimits::DEFAULT_PER_MINUTE, value_name = "N")]
    default_limit: u32,
    /// Organizations to serve, each with its own key and budgets (some of
    /// the first's people are outside accounts in the others)
    #[arg(long, default_value_t = 1, value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=50))]
    orgs: u16,
}

fn time_scale(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
        _ => Err(format!(
            "{text:?} is not a positive number (1 is real time, 60 a minute a second)"
        )),
    }
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Switch {
    On,
    Off,
}

fn main() -> ExitCode {
    let matches = <Cli as clap::CommandFactory>::command().get_matches();
    let mut cli = match <Cli as clap::FromArgMatches>::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    cli.scripts = Script::in_order(&matches, &cli);
    cli.format_given = format_given(&matches);
    logging(cli.verbose);
    // Object storage retries as the API's do.
    orgsql::storage::set_retries(cli.max_retries, Duration::from_secs(cli.max_wait));
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
    // `check` says "could not check" with 2, apart from "an alarm" (1).
    let failure = match cli.command {
        Some(Command::Check(_))
        | Some(Command::Snapshot(_))
        | Some(Command::Review(ReviewArgs {
            command: ReviewCommand::Verify(_),
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
    let outcome = runtime.block_on(async {
        tokio::select! {
            outcome = run(cli) => outcome,
            signal = stop_signal(!repl) => {
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

/// The first of Ctrl-C (when `interrupt`) and SIGTERM.
async fn stop_signal(interrupt: bool) -> &'static str {
    let ctrl_c = async {
        if interrupt && tokio::signal::ctrl_c().await.is_ok() {
            return "Ctrl-C";
        }
        std::future::pending().await
    };
    let term = async {
        #[cfg(unix)]
        if let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            term.recv().await;
            return "SIGTERM";
        }
        std::future::pending().await
    };
    tokio::select! {
        name = ctrl_c => name,
        name = term => name,
    }
}

/// Where the session's tables come from, decided once.
enum Source {
    /// The Admin API: one organization or several, and the connections'
    /// names (none for `--org-id`).
    Api(Vec<ClientConfig>, Vec<String>),
    /// The built-in demo organization: an emulator in this process.
    Demo,
    /// A folder written by `orgsql export`, offline.
    Snapshot(PathBuf),
}

/// A session over its source: the tables, the client when there is an API,
/// and the demo emulator, kept alive while the session lives.
struct Session {
    ctx: SessionContext,
    orgs: Option<Orgs>,
    _demo: Option<Emulator>,
    /// The organizations it reads.
    org: String,
    /// Where from, for reports: the API at a URL, the demo, a snapshot.
    described: String,
    /// The snapshot folder it reads, if it reads one.
    snapshot: Option<PathBuf>,
    /// The instant the data is as of, when it is not now: a snapshot's, or
    /// the demo's fixed clock.
    as_of: Option<chrono::DateTime<chrono::Utc>>,
}

impl Session {
    /// The data's as-of instant for a report: fixed, or now.
    fn data_as_of(&self) -> String {
        self.as_of
            .unwrap_or_else(chrono::Utc::now)
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    }
}

impl Source {
    fn of(cli: &Cli) -> Result<Self> {
        let chosen = cli.all_orgs || !cli.org_names.is_empty();
        if chosen && (cli.demo || cli.snapshot.is_some()) {
            bail!(
                "--org and --all-orgs read organizations from the config file; \
                 --demo and --snapshot read no API: use one or the other"
            );
        }
        if let Some(dir) = &cli.snapshot {
            return Ok(Source::Snapshot(dir.clone()));
        }
        if cli.demo {
            return Ok(Source::Demo);
        }
        if chosen {
            let path = cli
                .config
                .clone()
                .or_else(orgsql::config::config_path)
                .context("no config file: set ORGSQL_CONFIG or --config PATH")?;
            let mut warnings = Vec::new();
            let connections = orgsql::config::connections(&path, &cli.org_names, &mut warnings);
            say_warnings(warnings);
            let mut names = Vec::new();
            let mut configs = Vec::new();
            for connection in connections? {
                let base_url = connection.base_url.unwrap_or_else(|| cli.base_url.clone());
                let mut config = ClientConfig::new(base_url, connection.org_id, connection.api_key);
                config.scoped_api_key = connection.scoped_api_key;
                config.name = Some(connection.name.clone());
                names.push(connection.name);
                configs.push(config);
            }
            return Ok(Source::Api(configs, names));
        }
        let mut warnings = Vec::new();
        for (path, what) in [
            (&cli.api_key_file, "the key file"),
            (&cli.scoped_api_key_file, "the scoped key file"),
        ] {
            if let Some(path) = path {
                orgsql::config::warn_if_readable(path, what, &mut warnings);
            }
        }
        say_warnings(warnings);
        let env_key = std::env::var("ATLASSIAN_API_KEY").ok();
        let (org_id, api_key) =
            orgsql::config::credentials(cli.org_id.clone(), cli.api_key_file.as_deref(), env_key)?;
        let mut config = ClientConfig::new(cli.base_url.clone(), org_id, api_key);
        config.scoped_api_key = orgsql::config::scoped_key(
            cli.scoped_api_key_file.as_deref(),
            std::env::var("ATLASSIAN_SCOPED_API_KEY").ok(),
        )?;
        Ok(Source::Api(vec![config], Vec::new()))
    }

    /// The session; `cache` is false for an export, which reads each
    /// listing once (a cache would hold it all in memory).
    async fn open(self, cli: &Cli, cache: bool) -> Result<Session> {
        let (configs, names, demo) = match self {
            Source::Snapshot(dir) => {
                let ctx = orgsql::snapshot::session(&dir).await.at("--snapshot")?;
                if cli.wall_clock {
                    orgsql::clock::wall(&ctx);
                }
                extend(cli, &ctx).await?;
                let contents = orgsql::snapshot::Contents::read(&dir)
                    .await
                    .at("--snapshot")?;
                let as_of = contents.as_of().at("--snapshot")?;
                let orgs = contents.org_dirs(&dir).at("--snapshot")?;
                return Ok(Session {
                    ctx,
                    orgs: None,
                    _demo: None,
                    org: orgs
                        .into_iter()
                        .map(|(id, _)| id)
                        .collect::<Vec<_>>()
                        .join(", "),
                    described: format!(
                        "snapshot {} (data as of {}{}; exported {} by orgsql {})",
                        dir.display(),
                        as_of.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                        if cli.wall_clock {
                            ", judged by the wall clock"
                        } else {
                            ""
                        },
                        contents.exported_at(),
                        contents.orgsql_version()
                    ),
                    snapshot: Some(dir),
                    as_of: Some(as_of),
                });
            }
            Source::Demo => {
                let emulator = Emulator::start(EmulatorConfig::demo())
                    .await
                    .context("starting the demo emulator")?;
                // The demo's history ends at its fixed "now": so does its clock.
                let mut config = emulator.client_config();
                config.clock = Some(orgsql::emulator::DEMO_NOW);
                (vec![config], Vec::new(), Some(emulator))
            }
            Source::Api(configs, names) => (configs, names, None),
        };
        let mut configs = configs.into_iter().map(|mut config| {
            config.retry.max_attempts = cli.max_retries + 1;
            config.retry.max_delay = Duration::from_secs(cli.max_wait);
            config.concurrency = usize::from(cli.concurrency);
            config.cache_ttl = (cache && !cli.no_cache).then(|| Duration::from_secs(cli.cache_ttl));
            config
        });
        let first = configs.next().context("no organization to read")?;
        let as_of = first.clock;
        let described = match &demo {
            Some(_) => format!(
                "the built-in demo organization (emulated; data as of {})",
                orgsql::emulator::DEMO_NOW.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
            None => format!("the Admin API at {}", first.base_url),
        };
        let orgs = Orgs::new(first, configs.collect())?.named(names);
        let org = orgs.ids().join(", ");
        let ctx = orgsql::session(&orgs)?;
        extend(cli, &ctx).await?;
        Ok(Session {
            ctx,
            orgs: Some(orgs),
            _demo: demo,
            org,
            described,
            snapshot: None,
            as_of,
        })
    }
}

async fn run(mut cli: Cli) -> Result<ExitCode> {
    if let (None, Some(path)) = (&cli.command, &cli.output) {
        cli.format =
            cli::files::output_format(cli.format, cli.format_given, path, Format::EXTENSIONS)
                .map_err(anyhow::Error::msg)?;
    }
    if cli.format == Format::Parquet && cli.output.is_none() {
        bail!("--format parquet writes a file: add --output FILE");
    }
    match &cli.command {
        Some(Command::Emulator(args)) => {
            serve_emulator(args).await?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Diff(args)) => {
            diff(&cli, args).await?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Check(args)) if args.list => {
            let controls = check::load(args.dir.as_deref()).map_err(anyhow::Error::msg)?;
            check::list(&mut std::io::stdout().lock(), &controls)?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Check(args)) => {
            let session = Source::of(&cli)?.open(&cli, true).await?;
            run_check(&cli, args, &session).await
        }
        Some(Command::Review(args)) => run_review(&cli, args).await,
        Some(Command::Snapshot(SnapshotArgs {
            command: SnapshotCommand::Verify(args),
        })) => {
            let report = orgsql::snapshot::verify::verify(&args.dir)
                .await
                .at(&format!("snapshot verify {}", args.dir.display()))?;
            report.write(&mut std::io::stdout().lock(), &args.dir)?;
            Ok(ExitCode::from(if report.intact() { 0 } else { 1 }))
        }
        Some(Command::Export(args)) => {
            let source = Source::of(&cli)?;
            if matches!(source, Source::Snapshot(_)) {
                bail!("export reads the API; --snapshot DIR is already an export");
            }
            let session = source.open(&cli, false).await?;
            let orgs = session.orgs.as_ref().context("export reads the API")?;
            let options = cli::export::ExportOptions {
                out: args.out.clone(),
                tables: args.tables.clone(),
                since: args.since.clone(),
                published: None,
            };
            let written = cli::export::run(orgs, &options, &mut std::io::stderr())
                .await
                .at("export");
            cli::say_notices(orgs);
            eprintln!("wrote {}", written?);
            Ok(ExitCode::SUCCESS)
        }
        None => {
            let session = Source::of(&cli)?.open(&cli, true).await?;
            run_sessions(&cli, session).await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `orgsql check`: run the controls, report, and say with the exit code.
async fn run_check(cli: &Cli, args: &CheckArgs, session: &Session) -> Result<ExitCode> {
    let format = report_format(cli, args.format)?;
    let controls = check::load(args.dir.as_deref())
        .and_then(|all| {
            check::select(
                all,
                &check::Selection {
                    ids: &args.controls,
                    framework: args.framework.as_deref(),
                },
            )
        })
        .map_err(anyhow::Error::msg)?;
    let values = check::parameters(&controls, &args.params).map_err(anyhow::Error::msg)?;
    let generated_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut results = Vec::new();
    let mut earlier = Vec::new();
    for (org, ctx) in per_org(cli, session).await? {
        let mut checked = check::run(&ctx, controls.clone(), &values).await;
        // A snapshot baseline: the same controls on the same organization then.
        if let Some(path) = args.baseline.as_ref().filter(|p| is_snapshot(p)) {
            let at = format!("--baseline {}", path.display());
            let contents = orgsql::snapshot::Contents::read(path).await.at(&at)?;
            let folder = match &org {
                None => Some(path.clone()),
                Some(org) => contents
                    .org_dirs(path)
                    .at(&at)?
                    .into_iter()
                    .find(|(id, _)| id == org)
                    .map(|(_, folder)| folder),
            };
            if let Some(folder) = folder {
                let then = orgsql::snapshot::session(&folder).await.at(&at)?;
                if let Some(path) = &cli.roster {
                    orgsql::roster::register(&then, path).at("--roster")?;
                }
                let mut before = check::run(&then, controls.clone(), &values).await;
                before.iter_mut().for_each(|r| r.org_id.clone_from(&org));
                earlier.extend(before);
            }
        }
        checked.iter_mut().for_each(|r| r.org_id.clone_from(&org));
        results.extend(checked);
    }
    let baseline = match &args.baseline {
        None => None,
        Some(path) if is_snapshot(path) => Some((
            check::alarmed(&earlier),
            format!("snapshot {}", path.display()),
        )),
        Some(path) => Some((
            check::alarmed_in_report(path).map_err(anyhow::Error::msg)?,
            format!("report {}", path.display()),
        )),
    };
    if let Some((alarmed, _)) = &baseline {
        check::compare(&mut results, alarmed);
    }
    let about = check::About {
        org: session.org.clone(),
        source: session.described.clone(),
        data_as_of: session.data_as_of(),
        generated_at,
        framework: args.framework.clone(),
        baseline: baseline.map(|(_, what)| what),
    };
    write_report(cli, format, &results, &about)?;
    Ok(ExitCode::from(check::exit_code(
        &results,
        args.fail_on.as_deref(),
    )))
}

/// How a report of `check` or `review verify` is written: `--format`, or
/// what `--output`'s extension names; decided before anything runs.
fn report_format(cli: &Cli, format: Report) -> Result<Report> {
    match &cli.output {
        Some(path) => cli::files::output_format(format, cli.format_given, path, Report::EXTENSIONS)
            .map_err(anyhow::Error::msg),
        None => Ok(format),
    }
}

/// A report of `check` or `review verify`: to --output, atomically, or stdout.
fn write_report(
    cli: &Cli,
    format: Report,
    results: &[check::Checked],
    about: &check::About,
) -> Result<()> {
    match &cli.output {
        Some(path) => cli::files::write_atomically(path, |mut file| {
            check::write_report(&mut file, format, results, about).map_err(|e| {
                datafusion::error::DataFusionError::Execution(format!("{}: {e}", path.display()))
            })
        })
        .at("--output")?,
        None => check::write_report(&mut std::io::stdout().lock(), format, results, about)?,
    }
    Ok(())
}

/// `orgsql review start|verify`.
async fn run_review(cli: &Cli, args: &ReviewArgs) -> Result<ExitCode> {
    match &args.command {
        ReviewCommand::Start(args) => {
            let source = Source::of(cli)?;
            if matches!(source, Source::Snapshot(_)) {
                bail!(
                    "review start freezes the organization as it is now; it reads the API, not --snapshot"
                );
            }
            // As an export: each listing read once, nothing cached.
            let session = source.open(cli, false).await?;
            let orgs = session
                .orgs
                .as_ref()
                .context("review start reads the API")?;
            let options = cli::review::StartOptions {
                out: args.out.clone(),
                by: args.by,
                roster: cli.roster.clone(),
                pages: args.format,
                source: session.described.clone(),
            };
            let started = cli::review::start(orgs, &options, &mut std::io::stderr()).await;
            cli::say_notices(orgs);
            let (review, fingerprint) = started?;
            let grants: usize = review.files.iter().map(|f| f.rows).sum();
            let out = args.out.display();
            eprintln!(
                "Froze {grants} grants of {} into {out}: {} files in {out}/reviews/, a file per {}.",
                review.orgs.join(", "),
                review.files.len(),
                format!("{:?}", args.by).to_lowercase()
            );
            eprintln!(
                "Fingerprint (sha256 of {out}/review.json; keep it with the review's record): {fingerprint}"
            );
            eprintln!(
                "Fill in decision (keep or revoke) and justification; change nothing else. Then: orgsql review verify {out}"
            );
            Ok(ExitCode::SUCCESS)
        }
        ReviewCommand::Verify(args) => {
            let format = report_format(cli, args.format)?;
            // A snapshot is judged alike however it is named: checked whole,
            // and as of its export, never as of now.
            let snapshot = match (&args.against, &cli.snapshot) {
                (Some(against), Some(snapshot)) if against != snapshot => bail!(
                    "--snapshot {} and --against {}: a review is verified against one snapshot; \
                     name it once",
                    snapshot.display(),
                    against.display()
                ),
                (Some(dir), _) => Some(("--against", dir.clone())),
                (None, Some(_)) => match Source::of(cli)? {
                    Source::Snapshot(dir) => Some(("--snapshot", dir)),
                    _ => None,
                },
                (None, None) => None,
            };
            let (ctx, described, at, session) = match snapshot {
                Some((flag, dir)) => {
                    let (ctx, described, at) = cli::review::snapshot_now(flag, &dir).await?;
                    (ctx, described, at, None)
                }
                None => {
                    let session = Source::of(cli)?.open(cli, true).await?;
                    (
                        session.ctx.clone(),
                        session.described.clone(),
                        chrono::Utc::now(),
                        Some(session),
                    )
                }
            };
            let now = cli::review::Now {
                ctx: &ctx,
                described: described.clone(),
                at,
            };
            let result = cli::review::verify(&args.dir, &now).await;
            if let Some(orgs) = session.as_ref().and_then(|s| s.orgs.as_ref()) {
                cli::say_notices(orgs);
            }
            let verified = match result {
                Ok(verified) => verified,
                Err(e) => {
                    if let Some(refused) = e.downcast_ref::<cli::review::Refused>() {
                        const SHOWN: usize = 40;
                        for problem in refused.problems.iter().take(SHOWN) {
                            eprintln!("{}", cli::output::visible(problem));
                        }
                        if refused.problems.len() > SHOWN {
                            eprintln!("... and {} more", refused.problems.len() - SHOWN);
                        }
                    }
                    return Err(e);
                }
            };
            let about = check::About {
                org: verified.review.orgs.join(", "),
                source: described,
                generated_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                data_as_of: at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                framework: None,
                baseline: Some(cli::review::compared_with(&verified, &args.dir)),
            };
            write_report(cli, format, &verified.results, &about)?;
            Ok(ExitCode::from(check::exit_code(&verified.results, None)))
        }
    }
}

/// A `--baseline` that names a snapshot (a folder, or a prefix in object
/// storage), not a report file.
fn is_snapshot(path: &std::path::Path) -> bool {
    match orgsql::storage::local_or_remote(&path.display().to_string()) {
        Ok(Some(local)) => local.is_dir(),
        Ok(None) => true,
        Err(_) => false,
    }
}

/// Warnings about where keys are kept, on stderr.
fn say_warnings(warnings: Vec<String>) {
    for warning in warnings {
        eprintln!("warning: {}", cli::output::visible(&warning));
    }
}

/// What `check` runs on: the session, or a session for each organization
/// when it reads several (their reports name the organization).
async fn per_org(cli: &Cli, session: &Session) -> Result<Vec<(Option<String>, SessionContext)>> {
    let roster = |ctx: SessionContext| -> Result<SessionContext> {
        if let Some(path) = &cli.roster {
            orgsql::roster::register(&ctx, path).at("--roster")?;
        }
        Ok(ctx)
    };
    if let Some(orgs) = session.orgs.as_ref().filter(|o| o.len() > 1) {
        let mut parts = Vec::new();
        for client in orgs.clients() {
            let id = client.org_id().to_string();
            parts.push((Some(id), roster(orgsql::session(client)?)?));
        }
        return Ok(parts);
    }
    if let Some(dir) = &session.snapshot {
        let contents = orgsql::snapshot::Contents::read(dir)
            .await
            .at("--snapshot")?;
        if let orgsql::snapshot::Contents::Several(_) = contents {
            let mut parts = Vec::new();
            for (id, folder) in contents.org_dirs(dir).at("--snapshot")? {
                parts.push((
                    Some(id),
                    roster(orgsql::snapshot::session(&folder).await.at("--snapshot")?)?,
                ));
            }
            return Ok(parts);
        }
    }
    Ok(vec![(None, session.ctx.clone())])
}

/// What a session holds beside the organization's tables: `--attach
/// NAME=DIR` snapshots as schemas, and `--roster` as the table `roster`.
async fn extend(cli: &Cli, ctx: &SessionContext) -> Result<()> {
    for (name, dir) in &cli.attach {
        orgsql::snapshot::attach(ctx, name, dir)
            .await
            .at(&format!("--attach {name}={}", dir.display()))?;
    }
    if let Some(path) = &cli.roster {
        orgsql::roster::register(ctx, path).at("--roster")?;
    }
    Ok(())
}

/// `orgsql diff OLD NEW`: the changes, printed in --format.
async fn diff(cli: &Cli, args: &DiffArgs) -> Result<()> {
    let format = match &cli.output {
        Some(path) => {
            cli::files::output_format(args.format, cli.format_given, path, Format::EXTENSIONS)
                .map_err(anyhow::Error::msg)?
        }
        None => args.format,
    };
    let ctx = orgsql::session_context();
    for (name, dir) in [("old", &args.old), ("new", &args.new)] {
        orgsql::snapshot::attach(&ctx, name, dir).await.at("diff")?;
    }
    let changes = orgsql::snapshot::diff(&ctx, "old", "new")
        .await
        .at("diff")?;
    let schema = match changes.first() {
        Some(batch) => batch.schema(),
        None => std::sync::Arc::new(orgsql::snapshot::diff_schema()),
    };
    let mut stdout = std::io::stdout().lock();
    match &cli.output {
        Some(path) => cli::files::write_file(path, format, &schema, &changes),
        None => cli::output::print(&mut stdout, format, &schema, &changes, None),
    }
    .at("diff")
}

/// The REPL on a terminal with no SQL given, else the scripts.
async fn run_sessions(cli: &Cli, session: Session) -> Result<()> {
    let interactive = cli.sql.is_empty() && cli.files.is_empty() && std::io::stdin().is_terminal();
    let reading = cli::meta::Reading {
        description: match &session.snapshot {
            Some(_) => format!(
                "{}, organization {}; offline",
                session.described, session.org
            ),
            None => format!("{}, organization {}", session.described, session.org),
        },
        offline: session.snapshot.is_some(),
        attached: cli.attach.clone(),
    };
    let settings = cli::runner::Settings {
        format: cli.format,
        max_rows: cli.maxrows,
        expanded: if cli.vertical {
            cli::output::Expanded::On
        } else {
            cli::output::Expanded::Off
        },
    };
    let Session {
        ctx, orgs, _demo, ..
    } = session;
    if interactive {
        let runner = cli::runner::Runner::new(ctx, orgs, reading, settings, None);
        return cli::repl::run(runner).await;
    }
    let scripts = scripts(cli)?;
    if let Some(path) = &cli.output {
        // One file holds one result: refuse rather than keep only the last.
        let queries: usize = scripts
            .iter()
            .filter_map(|(_, sql)| orgsql::sql::parse(sql).ok())
            .map(|statements| statements.iter().filter(|s| cli::exec::is_query(s)).count())
            .sum();
        if queries > 1 {
            bail!(
                "--output {}: a file holds the result of one query, and these statements have \
                 {queries}. Run one query per --output, or write each with COPY (SELECT ...) TO 'file'",
                path.display()
            );
        }
    }
    let mut runner = cli::runner::Runner::new(ctx, orgs, reading, settings, cli.output.clone());
    for (origin, sql) in scripts {
        match runner.script(&sql).await {
            Ok(cli::runner::Flow::Quit) => break,
            Ok(_) => {}
            Err(cli::runner::Stopped::ClosedPipe) => {
                return Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe).into());
            }
            Err(stopped) => bail!("{origin}: {stopped}"),
        }
    }
    Ok(())
}

/// The SQL to run, with where it came from for error messages.
fn scripts(cli: &Cli) -> Result<Vec<(String, String)>> {
    let mut scripts = Vec::new();
    for script in &cli.scripts {
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

async fn serve_emulator(args: &EmulatorArgs) -> Result<()> {
    let config = EmulatorConfig {
        org: OrgSpec {
            seed: args.seed,
            users: args.users,
            events: args.events,
            ..OrgSpec::default()
        },
        faults: Faults {
            latency: Duration::from_millis(args.latency_ms),
            fail_every: args.fail_every,
            retry_after_secs: 1,
            repeat_cursor: false,
        },
        page_size_cap: None,
        port: args.port,
        limits: (args.rate_limits == Switch::On).then_some(RateLimits {
            time_scale: args.time_scale,
            default_per_minute: args.default_limit,
        }),
        api_key: None,
        access: Default::default(),
        orgs: usize::from(args.orgs),
    };
    let emulator = Emulator::start(config)
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{}", args.port))?;
    println!("{}", emulator.connection_json());
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    Ok(())
}
