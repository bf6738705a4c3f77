//! A session: what orgsql reads (the organizations over the API, the demo,
//! or a snapshot), the DataFusion context over it, its clock, the
//! snapshot's manifests read once, and the roster. Built in one place,
//! from the flags that say what to read; every command takes one.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;

use crate::api::{ClientConfig, DEFAULT_CACHE_TTL, DEFAULT_CONCURRENCY, DEFAULT_MAX_WAIT, Orgs};
use crate::error::SessionError;

type Result<T> = std::result::Result<T, SessionError>;
use crate::emulator::{Emulator, EmulatorConfig};
use crate::snapshot::{MANIFEST, Opened};
use crate::storage::Location;
use crate::tables::grants_history::{ExportLog, HistoryLogs};

/// The flags that say what a session reads, and how.
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Run against a built-in emulated demo organization (no account needed)
    #[arg(global = true, long)]
    pub demo: bool,
    /// Organization id (the UUID in admin.atlassian.com/o/<id>/...)
    #[arg(global = true, long, env = "ATLASSIAN_ORG_ID", value_name = "ID")]
    pub org_id: Option<String>,
    /// Read the organization of this connection of the config file;
    /// repeatable: every table then holds the rows of each (org_id tells)
    #[arg(global = true, long = "org", value_name = "NAME")]
    pub org_names: Vec<String>,
    /// Read every organization of the config file
    #[arg(global = true, long)]
    pub all_orgs: bool,
    /// The config file of named connections [default:
    /// $XDG_CONFIG_HOME/orgsql/config.toml, else ~/.config/orgsql/config.toml]
    #[arg(global = true, long, env = "ORGSQL_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// File holding the organization API key (else ATLASSIAN_API_KEY is read)
    #[arg(global = true, long, value_name = "PATH")]
    pub api_key_file: Option<PathBuf>,
    /// File holding a second, scoped key for the API Access API (api_tokens,
    /// api_keys), which needs read:tokens:admin (else ATLASSIAN_SCOPED_API_KEY)
    #[arg(global = true, long, value_name = "PATH")]
    pub scoped_api_key_file: Option<PathBuf>,
    /// Admin API base URL
    #[arg(
        global = true,
        long,
        env = "ORGSQL_BASE_URL",
        default_value = "https://api.atlassian.com",
        value_name = "URL"
    )]
    pub base_url: String,
    /// Send the key over plain http to a host that is not this machine (a
    /// test server on your network); without it, only https, or http to
    /// 127.0.0.0/8, ::1 and localhost
    #[arg(global = true, long)]
    pub allow_insecure_http: bool,
    /// Retries of a rate-limited or failed request before the query fails
    #[arg(global = true, long, default_value_t = 5, value_name = "N")]
    pub max_retries: u32,
    /// Longest wait for one request, in seconds (a rate budget to refill, a
    /// Retry-After); an API asking for longer fails the query, saying so
    #[arg(global = true, long, default_value_t = DEFAULT_MAX_WAIT.as_secs(), value_name = "SECS")]
    pub max_wait: u64,
    /// Requests in flight for tables with one call per user or group
    #[arg(global = true, long, default_value_t = DEFAULT_CONCURRENCY, value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
    /// Seconds a fetched page is reused within this session
    #[arg(global = true, long, default_value_t = DEFAULT_CACHE_TTL.as_secs(), value_name = "SECS")]
    pub cache_ttl: u64,
    /// Fetch every page afresh, even within one session
    #[arg(global = true, long)]
    pub no_cache: bool,
    /// Query an export instead of the API (offline): a folder, or a prefix
    /// in object storage (s3://, gs://, az://)
    #[arg(long, value_name = "DIR", conflicts_with = "demo")]
    pub snapshot: Option<Location>,
    /// With --snapshot: answer now(), current_date and the controls' time
    /// windows with the real clock, not the data's as-of time (a verdict
    /// then changes with the day it is run)
    #[arg(long, requires = "snapshot")]
    pub wall_clock: bool,
    /// An HR roster (CSV: email, name, manager_email, department,
    /// employment_status, end_date) as the table `roster`, for joins on
    /// email and the leaver controls
    #[arg(global = true, long, value_name = "FILE")]
    pub roster: Option<PathBuf>,
    /// An identity provider's user export (Okta or Entra ID CSV: email,
    /// status, optionally groups) as the tables `idp_users` and
    /// `idp_group_members`, for the identity-provider controls
    #[arg(global = true, long, value_name = "FILE")]
    pub idp: Option<PathBuf>,
    /// Exports whose audit logs extend the history (grants_history,
    /// grants_at, grants_during) past the API's retention window: an export
    /// folder, or a folder of export folders; repeatable
    #[arg(global = true, long = "history", value_name = "DIR")]
    pub history: Vec<PathBuf>,
    /// Also attach a snapshot as schema NAME (e.g. old=snap1/ gives old.users); repeatable
    #[arg(long, value_name = "NAME=DIR", value_parser = attach_spec)]
    pub attach: Vec<(String, Location)>,
}

/// `--attach NAME=DIR`, read once.
fn attach_spec(spec: &str) -> std::result::Result<(String, Location), String> {
    let (name, dir) = spec
        .split_once('=')
        .filter(|(name, dir)| !name.is_empty() && !dir.is_empty())
        .ok_or_else(|| format!("{spec}: use NAME=DIR, e.g. old=snap1/"))?;
    Ok((name.to_string(), dir.parse().map_err(|e| format!("{e}"))?))
}

/// Where the session's tables come from, decided once.
pub enum Source {
    /// The Admin API: one organization or several, and the connections'
    /// names (none for `--org-id`).
    Api(Vec<ClientConfig>, Vec<String>),
    /// The built-in demo organization: an emulator in this process.
    Demo,
    /// A folder written by `orgsql export`, offline.
    Snapshot(Location),
}

/// A session over its source: the tables, the client when there is an API,
/// and the demo emulator, kept alive while the session lives.
pub struct Session {
    pub ctx: SessionContext,
    /// The clients, when it reads the API (none for a snapshot).
    pub orgs: Option<Orgs>,
    /// The demo's emulator, alive while the session is.
    _demo: Option<Emulator>,
    /// The organizations it reads.
    pub org: String,
    /// Where from, for reports: the API at a URL, the demo, a snapshot.
    pub described: String,
    /// The snapshot it reads, its manifests read once.
    pub snapshot: Option<Opened>,
    /// The instant the data is as of, when it is not now: a snapshot's, or
    /// the demo's fixed clock.
    pub as_of: Option<chrono::DateTime<chrono::Utc>>,
    /// `--roster`, registered in each session this one makes.
    roster: Option<PathBuf>,
    /// `--idp`, likewise.
    idp: Option<PathBuf>,
    /// `--wall-clock`: a snapshot's sessions judge by today.
    wall_clock: bool,
}

impl Session {
    /// Whether it reads the built-in demo (its API is this process's own).
    pub fn is_demo(&self) -> bool {
        self._demo.is_some()
    }

    /// `--roster`, when given.
    pub fn roster(&self) -> Option<&std::path::Path> {
        self.roster.as_deref()
    }

    /// `--idp`, when given.
    pub fn idp(&self) -> Option<&std::path::Path> {
        self.idp.as_deref()
    }

    /// The data's as-of instant for a report: fixed, or now.
    pub fn data_as_of(&self) -> String {
        self.as_of
            .unwrap_or_else(chrono::Utc::now)
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    }

    /// What `check` runs on: the session, or a session for each
    /// organization when it reads several (their reports name the
    /// organization), each with the roster.
    pub async fn per_org(&self) -> Result<Vec<(Option<String>, SessionContext)>> {
        if let Some(orgs) = self.orgs.as_ref().filter(|o| o.len() > 1) {
            let mut parts = Vec::new();
            for client in orgs.clients() {
                let id = client.org_id().to_string();
                parts.push((
                    Some(id),
                    self.with_roster(
                        crate::context(client).map_err(SessionError::at("the session"))?,
                    )?,
                ));
            }
            return Ok(parts);
        }
        if let Some(opened) = self.snapshot.as_ref().filter(|o| o.orgs.len() > 1) {
            let mut parts = Vec::new();
            for one in opened.each() {
                let ctx = self.snapshot_context(&one).await?;
                parts.push((one.orgs.first().map(|(id, _, _)| id.clone()), ctx));
            }
            return Ok(parts);
        }
        Ok(vec![(None, self.ctx.clone())])
    }

    /// A session over another snapshot (a `--baseline`, an organization of
    /// this one), judged by this session's clock rule, with the roster.
    pub async fn snapshot_context(&self, opened: &Opened) -> Result<SessionContext> {
        let at = format!("snapshot {}", opened.dir);
        let ctx = crate::snapshot::context_of(opened)
            .await
            .map_err(SessionError::at(&at))?;
        if self.wall_clock {
            crate::clock::wall(&ctx);
        }
        self.with_roster(ctx)
    }

    fn with_roster(&self, ctx: SessionContext) -> Result<SessionContext> {
        if let Some(path) = &self.roster {
            crate::roster::register(&ctx, path).map_err(SessionError::at("--roster"))?;
        }
        if let Some(path) = &self.idp {
            crate::idp::register(&ctx, path).map_err(SessionError::at("--idp"))?;
        }
        Ok(ctx)
    }
}

impl Source {
    /// The source the flags name; warnings about where keys are kept
    /// are said on stderr.
    pub fn of(options: &Options) -> Result<Self> {
        let chosen = options.all_orgs || !options.org_names.is_empty();
        if chosen && (options.demo || options.snapshot.is_some()) {
            return Err(SessionError::Usage(
                "--org and --all-orgs read organizations from the config file; --demo and \
                 --snapshot read no API: use one or the other"
                    .to_string(),
            ));
        }
        if let Some(dir) = &options.snapshot {
            return Ok(Source::Snapshot(dir.clone()));
        }
        if options.demo {
            return Ok(Source::Demo);
        }
        if chosen {
            let path = options
                .config
                .clone()
                .or_else(crate::config::config_path)
                .ok_or_else(|| {
                    SessionError::Usage(
                        "no config file: set ORGSQL_CONFIG or --config PATH".to_string(),
                    )
                })?;
            let mut warnings = Vec::new();
            let connections = crate::config::connections(&path, &options.org_names, &mut warnings);
            say_warnings(&warnings);
            let mut names = Vec::new();
            let mut configs = Vec::new();
            for connection in connections? {
                let base_url = connection
                    .base_url
                    .unwrap_or_else(|| options.base_url.clone());
                let mut config = ClientConfig::new(base_url, connection.org_id, connection.api_key);
                config.scoped_api_key = connection.scoped_api_key;
                config.scim_tokens = connection.scim_tokens;
                config.name = Some(connection.name.clone());
                names.push(connection.name);
                configs.push(config);
            }
            return Ok(Source::Api(configs, names));
        }
        let mut warnings = Vec::new();
        for (path, what) in [
            (&options.api_key_file, "the key file"),
            (&options.scoped_api_key_file, "the scoped key file"),
        ] {
            if let Some(path) = path {
                crate::config::warn_if_readable(path, what, &mut warnings);
            }
        }
        say_warnings(&warnings);
        let env_key = std::env::var("ATLASSIAN_API_KEY").ok();
        let (org_id, api_key) = crate::config::credentials(
            options.org_id.clone(),
            options.api_key_file.as_deref(),
            env_key,
        )?;
        let mut config = ClientConfig::new(options.base_url.clone(), org_id, api_key);
        config.scoped_api_key = crate::config::scoped_key(
            options.scoped_api_key_file.as_deref(),
            std::env::var("ATLASSIAN_SCOPED_API_KEY").ok(),
        )?;
        Ok(Source::Api(vec![config], Vec::new()))
    }

    /// The session; `cache` is false for an export, which reads each
    /// listing once (a cache would hold it all in memory).
    pub async fn open(self, options: &Options, cache: bool) -> Result<Session> {
        let (configs, names, demo) = match self {
            Source::Snapshot(dir) => {
                let opened = Opened::read(&dir)
                    .await
                    .map_err(SessionError::at("--snapshot"))?;
                let ctx = crate::snapshot::context_of(&opened)
                    .await
                    .map_err(SessionError::at("--snapshot"))?;
                if options.wall_clock {
                    crate::clock::wall(&ctx);
                }
                extend(options, &ctx, "snapshot").await?;
                let contents = &opened.contents;
                let as_of = contents.as_of().map_err(SessionError::at("--snapshot"))?;
                let org = opened
                    .orgs
                    .iter()
                    .map(|(id, _, _)| id.clone())
                    .collect::<Vec<_>>()
                    .join(", ");
                return Ok(Session {
                    ctx,
                    orgs: None,
                    _demo: None,
                    org,
                    described: format!(
                        "snapshot {} (data as of {}{}; exported {} by orgsql {})",
                        dir,
                        as_of.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                        if options.wall_clock {
                            ", judged by the wall clock"
                        } else {
                            ""
                        },
                        contents.exported_at(),
                        contents.orgsql_version()
                    ),
                    as_of: Some(as_of),
                    snapshot: Some(opened),
                    roster: options.roster.clone(),
                    idp: options.idp.clone(),
                    wall_clock: options.wall_clock,
                });
            }
            Source::Demo => {
                let emulator = Emulator::start(EmulatorConfig::demo())
                    .await
                    .map_err(SessionError::Demo)?;
                // The demo's history ends at its fixed "now": so does its clock.
                let mut config = emulator.client_config();
                config.clock = Some(crate::emulator::DEMO_NOW);
                (vec![config], Vec::new(), Some(emulator))
            }
            Source::Api(configs, names) => (configs, names, None),
        };
        let mut configs = configs.into_iter().map(|mut config| {
            config.retry.max_attempts = options.max_retries + 1;
            config.retry.max_delay = Duration::from_secs(options.max_wait);
            config.concurrency = usize::from(options.concurrency);
            config.cache_ttl =
                (cache && !options.no_cache).then(|| Duration::from_secs(options.cache_ttl));
            config.allow_insecure_http = options.allow_insecure_http;
            config
        });
        let first = configs
            .next()
            .ok_or_else(|| SessionError::Usage("no organization to read".to_string()))?;
        let as_of = first.clock;
        let described = match &demo {
            Some(_) => format!(
                "the built-in demo organization (emulated; data as of {})",
                crate::emulator::DEMO_NOW.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
            None => format!(
                "the Admin API at {}",
                crate::api::shown_url(&first.base_url)
            ),
        };
        let orgs = Orgs::new(first, configs.collect())?.named(names);
        let org = orgs.ids().join(", ");
        let ctx = crate::context(&orgs).map_err(SessionError::at("the session"))?;
        extend(options, &ctx, "live").await?;
        Ok(Session {
            ctx,
            orgs: Some(orgs),
            _demo: demo,
            org,
            described,
            snapshot: None,
            as_of,
            roster: options.roster.clone(),
            idp: options.idp.clone(),
            wall_clock: false,
        })
    }
}

/// What a session holds beside the organization's tables: `--attach
/// NAME=DIR` snapshots as schemas, `--roster` as the table `roster`, and
/// `--history`'s exports as the history's older logs (`own` names the
/// session's own log in `history_coverage`).
async fn extend(options: &Options, ctx: &SessionContext, own: &str) -> Result<()> {
    let mut exports = Vec::new();
    for dir in &options.history {
        let at = format!("--history {}", dir.display());
        for folder in export_folders(dir).map_err(SessionError::at(&at))? {
            exports.push(export_log(&folder).await.map_err(SessionError::at(&at))?);
        }
    }
    ctx.state_ref()
        .write()
        .config_mut()
        .set_extension(Arc::new(HistoryLogs {
            own: own.to_string(),
            exports,
        }));
    for (name, dir) in &options.attach {
        crate::snapshot::attach(ctx, name, dir)
            .await
            .map_err(SessionError::at(&format!("--attach {name}={dir}")))?;
    }
    if let Some(path) = &options.roster {
        crate::roster::register(ctx, path).map_err(SessionError::at("--roster"))?;
    }
    if let Some(path) = &options.idp {
        crate::idp::register(ctx, path).map_err(SessionError::at("--idp"))?;
    }
    Ok(())
}

/// The export folders `--history DIR` names: DIR itself when it holds a
/// manifest, else each folder in it that does, in name order.
fn export_folders(dir: &Path) -> datafusion::error::Result<Vec<PathBuf>> {
    if dir.join(MANIFEST).is_file() {
        return Ok(vec![dir.to_path_buf()]);
    }
    let entries = std::fs::read_dir(dir).map_err(|e| {
        DataFusionError::Plan(format!(
            "cannot read the folder ({e}): give an export folder (made by `orgsql export --out`) \
             or a folder of them"
        ))
    })?;
    let mut folders = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|e| DataFusionError::Plan(format!("cannot read the folder ({e})")))?
            .path();
        if path.join(MANIFEST).is_file() {
            folders.push(path);
        }
    }
    folders.sort();
    if folders.is_empty() {
        return Err(DataFusionError::Plan(format!(
            "neither it nor a folder in it holds an export ({MANIFEST}): give an export folder \
             (made by `orgsql export --out`) or a folder of them"
        )));
    }
    Ok(folders)
}

/// An export's audit log, as the history reads it.
async fn export_log(folder: &Path) -> datafusion::error::Result<ExportLog> {
    let location = Location::Folder(folder.to_path_buf());
    let opened = Opened::read(&location).await?;
    let as_of = opened.contents.as_of()?;
    let ctx = crate::snapshot::context_of(&opened).await?;
    let table = |name: &'static str| {
        let ctx = ctx.clone();
        async move {
            ctx.table_provider(name).await.map_err(|_| {
                DataFusionError::Plan(format!(
                    "{}: the export holds no {name} table: export the audit log too (`orgsql \
                     export` without --tables, or with events,event_context)",
                    folder.display()
                ))
            })
        }
    };
    Ok(ExportLog {
        source: folder.display().to_string(),
        as_of,
        events: table("events").await?,
        event_context: table("event_context").await?,
    })
}

/// Warnings about where keys are kept, on stderr.
fn say_warnings(warnings: &[String]) {
    for warning in warnings {
        eprintln!("warning: {}", crate::cli::output::visible(warning));
    }
}
