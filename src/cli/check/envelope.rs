//! What every report of `check` and `review verify` says about its run, so an
//! auditor can tell what was checked, from what data, when, by whom and with
//! which orgsql: the envelope. Built once per run; each format writes it.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::session::Session;

/// The commit orgsql was built from (build.rs), "unknown" without git.
pub const COMMIT: &str = env!("ORGSQL_COMMIT");

/// The run a report is of. Missing fields read as empty, so a report by a
/// later orgsql with more of them still reads.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Envelope {
    /// What ran: `orgsql check`, `orgsql review verify`.
    pub command: String,
    pub organizations: Vec<Organization>,
    pub source: Source,
    /// The instant the data is as of (RFC 3339): a snapshot's, the demo's
    /// fixed clock, else when the run began.
    pub data_as_of: String,
    /// `--as-of`: the instant the grants judged were held, replayed from
    /// the audit log (the rest of the data is as of `data_as_of`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grants_as_of: Option<String>,
    pub run_started: String,
    pub run_ended: String,
    /// Who ran it: `user@host`.
    pub operator: String,
    pub orgsql_version: String,
    pub orgsql_commit: String,
    /// `--param NAME=VALUE`, as given (each control's values are in its result).
    pub parameters: BTreeMap<String, String>,
    /// `--fail-on`; none: any alarm fails.
    pub fail_on: Option<String>,
    /// `--roster`: its file name and the sha256 of its bytes.
    pub roster: Option<FileDigest>,
    /// `--idp`: the identity provider's export, its file name and sha256.
    pub idp: Option<FileDigest>,
    /// `--framework`: the report is grouped by this framework's controls.
    pub framework: Option<String>,
    /// `--baseline` (or the review a verification is against).
    pub baseline: Option<String>,
    /// The command line, any value of a flag that names a key, token or
    /// secret redacted.
    pub command_line: Vec<String>,
    /// Each table the run read from the API, per organization: its listings'
    /// pages, items, requests and retries, whether each was read to its
    /// end, and the API's counts beside the items where it counts them.
    pub completeness: Vec<crate::api::Completeness>,
    /// The JSON report's only: the sha256 of its `results` as written (the
    /// bytes from its `[` to its `]`), which `orgsql verify` recomputes. It
    /// cannot cover the envelope it is in: the report's own sha256 does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub results_sha256: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Organization {
    pub id: String,
    /// The organization's name, as the `orgs` table has it.
    pub name: Option<String>,
    /// The config file's connection it was read through (`--org NAME`).
    pub connection: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Source {
    /// In words: the Admin API at a URL, the demo, a snapshot.
    pub description: String,
    /// The Admin API's base URL, without credentials or query.
    pub api_url: Option<String>,
    /// The snapshot read: its location and its manifest.json's sha256 (which
    /// holds the sha256 of every data file).
    pub snapshot: Option<String>,
    pub manifest_sha256: Option<String>,
    /// The credential the API was read with, in words: never the key, and
    /// never a label or id the API did not tell.
    pub credential: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FileDigest {
    pub file: String,
    pub sha256: String,
}

/// An RFC 3339 instant to the second.
pub fn rfc3339(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl Envelope {
    /// What every run knows of itself: the command, when it started, who
    /// ran it, which orgsql, the command line.
    pub fn begin(command: &str) -> Self {
        Self {
            command: command.to_string(),
            run_started: rfc3339(chrono::Utc::now()),
            operator: operator(),
            orgsql_version: env!("CARGO_PKG_VERSION").to_string(),
            orgsql_commit: COMMIT.to_string(),
            command_line: redacted(std::env::args()),
            ..Self::default()
        }
    }

    /// What a session tells: the organizations (their names where the
    /// `orgs` table has them), where the data came from, as of when, and
    /// the roster.
    pub async fn with_session(mut self, session: &Session) -> Self {
        let names = names(session).await;
        let connections: Vec<Option<String>> = match (&session.orgs, &session.snapshot) {
            (Some(orgs), _) => orgs.names().iter().cloned().map(Some).collect(),
            (None, Some(opened)) => match &opened.contents {
                crate::snapshot::Contents::Several(top) => {
                    top.orgs.iter().map(|o| o.name.clone()).collect()
                }
                crate::snapshot::Contents::One(_) => Vec::new(),
            },
            (None, None) => Vec::new(),
        };
        let ids: Vec<String> = match (&session.orgs, &session.snapshot) {
            (Some(orgs), _) => orgs.ids(),
            (None, Some(opened)) => opened.orgs.iter().map(|(id, _, _)| id.clone()).collect(),
            (None, None) => Vec::new(),
        };
        self.organizations = ids
            .into_iter()
            .enumerate()
            .map(|(i, id)| Organization {
                name: names.get(&id).cloned(),
                connection: connections.get(i).cloned().flatten(),
                id,
            })
            .collect();
        self.source.description.clone_from(&session.described);
        // The demo's API is an emulator on a port of the moment: no source.
        if let Some(orgs) = session.orgs.as_ref().filter(|_| !session.is_demo()) {
            self.source.api_url = Some(without_credentials(orgs.first().base_url()));
            // The Admin API answers no "which key am I": the api_keys table
            // lists keys, not the one a request carried.
            let given = if orgs.names().is_empty() {
                "given by --api-key-file or ATLASSIAN_API_KEY".to_string()
            } else {
                "of each connection in the config file".to_string()
            };
            self.source.credential = Some(format!(
                "an organization API key {given}; the Admin API does not say which key \
                 (label or id) a request used, and orgsql records no part of the key"
            ));
        }
        if let Some(opened) = &session.snapshot {
            self = self.with_snapshot(opened);
        }
        self.data_as_of = session.data_as_of();
        self.roster = session.roster().and_then(file_digest);
        self.idp = session.idp().and_then(file_digest);
        self
    }

    /// A snapshot read: its location, and its manifest.json's sha256 as the
    /// session read it (the manifest is what vouches for the data).
    pub fn with_snapshot(mut self, opened: &crate::snapshot::Opened) -> Self {
        self.source.snapshot = Some(opened.dir.to_string());
        self.source.manifest_sha256 = Some(opened.manifest_sha256.clone());
        self
    }

    /// The run is over: its end time.
    pub fn end(mut self) -> Self {
        self.run_ended = rfc3339(chrono::Utc::now());
        self
    }

    /// The organizations in a line: `id (name) [connection NAME]`, `; `
    /// between them.
    pub fn organizations_line(&self) -> String {
        self.organizations
            .iter()
            .map(|o| {
                let mut line = o.id.clone();
                if let Some(name) = &o.name {
                    line.push_str(&format!(" ({name})"));
                }
                if let Some(connection) = &o.connection {
                    line.push_str(&format!(" [connection {connection}]"));
                }
                line
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The envelope as (key, label, value) rows, in one order for every
    /// format: the key names the JUnit property, the label the row.
    pub fn fields(&self) -> Vec<(String, String, String)> {
        let or = |value: &Option<String>, none: &str| value.clone().unwrap_or(none.to_string());
        let mut source = self.source.description.clone();
        if let Some(url) = &self.source.api_url {
            source = format!("{source}; API {url}");
        }
        if let (Some(snapshot), Some(sha)) = (&self.source.snapshot, &self.source.manifest_sha256) {
            source = format!("{source}; {snapshot} manifest.json sha256 {sha}");
        }
        if let Some(credential) = &self.source.credential {
            source = format!("{source}; read with {credential}");
        }
        let parameters = if self.parameters.is_empty() {
            "(the controls' defaults)".to_string()
        } else {
            self.parameters
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut fields = vec![
            ("organization", "Organization", self.organizations_line()),
            ("source", "Source", source),
            ("data_as_of", "Data as of", self.data_as_of.clone()),
        ];
        if let Some(at) = &self.grants_as_of {
            fields.push((
                "grants_as_of",
                "Grants as of",
                format!(
                    "{at} (replayed from the audit log; controls about anything else not evaluated)"
                ),
            ));
        }
        fields.extend([
            ("run_started", "Run started", self.run_started.clone()),
            ("run_ended", "Run ended", self.run_ended.clone()),
            ("operator", "Operator", self.operator.clone()),
            (
                "orgsql",
                "orgsql",
                format!("{} (commit {})", self.orgsql_version, self.orgsql_commit),
            ),
            ("parameters", "Parameters", parameters),
            ("fail_on", "Fails on", or(&self.fail_on, "any alarm")),
            (
                "roster",
                "Roster",
                self.roster.as_ref().map_or("(none)".to_string(), |r| {
                    format!("{} sha256 {}", r.file, r.sha256)
                }),
            ),
            (
                "idp",
                "Identity provider export",
                self.idp.as_ref().map_or("(none)".to_string(), |r| {
                    format!("{} sha256 {}", r.file, r.sha256)
                }),
            ),
            ("framework", "Framework", or(&self.framework, "(all)")),
            (
                "baseline",
                "Compared with",
                or(&self.baseline, "(no baseline)"),
            ),
            ("command_line", "Command line", self.command_line.join(" ")),
        ]);
        let mut fields: Vec<(String, String, String)> = fields
            .into_iter()
            .map(|(key, label, value)| (key.to_string(), label.to_string(), value))
            .collect();
        if !self.completeness.is_empty() {
            fields.push((
                "completeness".to_string(),
                "Completeness".to_string(),
                self.completeness_line(),
            ));
        }
        let several = self.organizations.len() > 1;
        for read in &self.completeness {
            let (key, label) = if several {
                (
                    format!("completeness.{}.{}", read.org_id, read.table),
                    format!("Read: {} (org {})", read.table, read.org_id),
                )
            } else {
                (
                    format!("completeness.{}", read.table),
                    format!("Read: {}", read.table),
                )
            };
            fields.push((key, label, read.described()));
        }
        fields
    }

    /// The tables read, in a line: how many, whether every listing ran to
    /// its end, and where the API's counts stand.
    pub fn completeness_line(&self) -> String {
        let reads = &self.completeness;
        let names = |keep: &dyn Fn(&crate::api::Completeness) -> bool| {
            let mut names: Vec<&str> = reads
                .iter()
                .filter(|c| keep(c))
                .map(|c| c.table.as_str())
                .collect();
            names.dedup();
            names.join(", ")
        };
        let mut parts = vec![match &self.source.snapshot {
            Some(_) => format!(
                "{} table reads, by the export that made the snapshot",
                reads.len()
            ),
            None => format!("{} table reads", reads.len()),
        }];
        let incomplete = names(&|c| c.incomplete > 0);
        if !incomplete.is_empty() {
            parts.push(format!(
                "INCOMPLETE (the API counts more or fewer): {incomplete}"
            ));
        }
        let changed = names(&|c| c.changed_while_read > 0);
        if !changed.is_empty() {
            parts.push(format!("changed while read: {changed}"));
        }
        let short = names(&|c| !c.read_to_end);
        if short.is_empty() {
            parts.push("every listing read to its end".to_string());
        } else {
            parts.push(format!(
                "not read to its end (the query needed no more): {short}"
            ));
        }
        let counted = names(&|c| c.counted > 0 && c.counted == c.counted_complete);
        if !counted.is_empty() {
            parts.push(format!("the API's counts match the items for {counted}"));
        }
        parts.join("; ")
    }
}

/// The organizations' names, by id, from the `orgs` table: none where it
/// cannot tell (a snapshot without it, an API that refuses).
async fn names(session: &Session) -> BTreeMap<String, String> {
    use datafusion::arrow::array::{Array, AsArray};
    let Ok(frame) = session.ctx.sql("SELECT org_id, name FROM orgs").await else {
        return BTreeMap::new();
    };
    let Ok(batches) = frame.collect().await else {
        return BTreeMap::new();
    };
    let mut names = BTreeMap::new();
    for batch in batches {
        let cast = |i| {
            datafusion::arrow::compute::cast(
                batch.column(i),
                &datafusion::arrow::datatypes::DataType::Utf8,
            )
        };
        let (Ok(ids), Ok(values)) = (cast(0), cast(1)) else {
            continue;
        };
        let (ids, values) = (ids.as_string::<i32>(), values.as_string::<i32>());
        for row in 0..batch.num_rows() {
            if ids.is_valid(row) && values.is_valid(row) {
                names.insert(ids.value(row).to_string(), values.value(row).to_string());
            }
        }
    }
    names
}

/// `user@host`: the login name from the environment, the host's name from
/// the kernel (no dependency for either); "unknown" for what is not told.
pub fn operator() -> String {
    let user = ["USER", "LOGNAME", "USERNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|u| !u.is_empty()))
        .unwrap_or_else(|| "unknown".to_string());
    let host = ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| {
            std::fs::read_to_string(p)
                .ok()
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
        })
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()))
        .or_else(|| std::env::var("COMPUTERNAME").ok().filter(|h| !h.is_empty()))
        .unwrap_or_else(|| "unknown".to_string());
    format!("{user}@{host}")
}

/// The command line with the value of any flag whose name says key, token
/// or secret replaced: orgsql takes keys only from files and the
/// environment, but a report is shared, so it never risks one.
pub fn redacted(args: impl IntoIterator<Item = String>) -> Vec<String> {
    const REDACTED: &str = "[redacted]";
    let secret = |flag: &str| {
        let name = flag.trim_start_matches('-').to_ascii_lowercase();
        flag.starts_with('-') && ["key", "token", "secret"].iter().any(|w| name.contains(w))
    };
    let mut out = Vec::new();
    let mut hide_next = false;
    for arg in args {
        if hide_next {
            hide_next = false;
            out.push(REDACTED.to_string());
            continue;
        }
        match arg.split_once('=') {
            Some((flag, _)) if secret(flag) => out.push(format!("{flag}={REDACTED}")),
            _ if secret(&arg) => {
                hide_next = true;
                out.push(arg);
            }
            _ => out.push(arg),
        }
    }
    out
}

/// A URL as a report may show it: no user, password, query or fragment.
pub fn without_credentials(url: &str) -> String {
    crate::api::shown_url(url)
}

/// A file's name and the sha256 of its bytes; none if it cannot be read
/// (the session read it already, so that is a race, not a user's error).
fn file_digest(path: &Path) -> Option<FileDigest> {
    let bytes = std::fs::read(path).ok()?;
    Some(FileDigest {
        file: path.display().to_string(),
        sha256: crate::snapshot::sha256(&bytes),
    })
}
