//! `orgsql review`: the periodic user access review.
//!
//! `start` freezes the population: a snapshot of the tables a review reads
//! (its manifest holds a sha256 of every file), the HR roster if one was
//! given, and one CSV file per reviewer scope, a row per grant with its
//! evidence and two empty columns, `decision` and `justification`. A copy
//! of each file as issued is kept in `issued/`; `review.json` (written
//! last: a folder without it is not a review) holds the sha256 of every
//! one of these, and its own sha256 is the review's fingerprint.
//!
//! Beside each file, a sign-off file (`<name>.signoff.csv`, one row): the
//! file, who may sign it (its manager; for people without one, a fallback
//! reviewer or the admins of the resource) and what signing attests, as
//! issued, then `signed_by` and `signed_at` for the reviewer to fill in.
//! Its issued cells are checked against `review.json`, so it needs no
//! digest of its own.
//!
//! `verify` checks those digests, reads the filled files back, refuses any
//! that were edited beyond the two columns, then judges the review itself
//! (each file signed off by its reviewer, every grant decided, each admin
//! role kept with a justification, nobody keeping their own access) and
//! compares the decisions with the organization as it is now (or a later
//! snapshot); it writes `summary.md` beside the files, its report in
//! markdown.

pub mod apply;
pub mod command;
pub mod report;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use datafusion::prelude::SessionContext;
use serde::{Deserialize, Serialize};

use super::At;
use super::check::{Checked, Control, Finding, Outcome, Reference};
use super::export::{ExportOptions, export_orgs};
use super::files::AtomicPath;
use crate::sheet::{self, cell, uncell};
use crate::snapshot::sha256;
use crate::storage::Location;

/// How a review is split among reviewers: a file per value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum By {
    /// Per product (jira-software, confluence, ...; `platform` for the
    /// organization's own roles)
    Product,
    /// Per product site (workspace)
    Workspace,
    /// Per group the grant comes through (the first, by name, of several);
    /// direct grants in a file of their own
    Group,
    /// Per manager, from the roster (needs --roster)
    Manager,
}

impl By {
    fn name(self) -> &'static str {
        match self {
            By::Product => "product",
            By::Workspace => "workspace",
            By::Group => "group",
            By::Manager => "manager",
        }
    }
}

/// What `review start` writes besides the CSV files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Pages {
    Csv,
    /// Also one self-contained HTML page per scope, to read or print
    Html,
}

/// `review.json`: what was frozen, when, how it was split, and the sha256
/// of everything the review rests on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Review {
    pub started_at: String,
    pub by: By,
    /// The organizations reviewed.
    pub orgs: Vec<String>,
    /// Where the population came from (the API at a URL, the demo).
    pub source: String,
    pub orgsql_version: String,
    /// The frozen snapshot, relative to the folder, and the sha256 of its
    /// `manifest.json` (which holds the sha256 of every data file).
    pub snapshot: String,
    pub snapshot_manifest_sha256: String,
    /// The roster as given, relative to the folder, and its sha256.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roster: Option<Digested>,
    /// The roles a reviewer must justify keeping (`--admin-roles`); none
    /// in a review started before orgsql asked for justifications.
    #[serde(default)]
    pub admin_roles: Vec<String>,
    /// `--fallback-reviewer`: who reviews the grants of people without a
    /// manager in the roster (else the site admins of each resource).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_reviewer: Option<String>,
    pub files: Vec<ReviewFile>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Digested {
    pub path: String,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReviewFile {
    /// The file a reviewer fills in, relative to the folder.
    pub path: String,
    /// The file as issued (the same rows, undecided), and its sha256.
    pub issued: Digested,
    pub scope: String,
    pub rows: usize,
    /// Who may sign the file off (emails, lowercase): the manager, the
    /// fallback reviewer, or the admins of the resource; none named when
    /// the review is split by product, workspace or group.
    #[serde(default)]
    pub reviewers: Vec<String>,
    /// The file holds grants of people without a manager in the roster,
    /// given to a fallback reviewer.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fallback: bool,
    /// The sign-off file beside it, relative to the folder (none in a
    /// review started before orgsql asked for sign-offs).
    #[serde(default)]
    pub signoff: String,
}

pub(crate) const REVIEW_JSON: &str = "review.json";
const SNAPSHOT: &str = "snapshot";
const ROSTER: &str = "roster.csv";
const REVIEWS: &str = "reviews";
const ISSUED: &str = "issued";
const SUMMARY: &str = "summary.md";

/// The tables a review reads, and so freezes.
pub const TABLES: [&str; 7] = [
    "users",
    "user_role_assignments",
    "group_members",
    "group_role_assignments",
    "workspaces",
    "user_product_access",
    "api_tokens",
];

/// The two columns a reviewer fills in; every other column is evidence.
const DECISION: &str = "decision";
const JUSTIFICATION: &str = "justification";

/// The columns that name a grant: one row per value of them.
const KEY: [&str; 4] = ["org_id", "account_id", "resource_id", "role"];

/// One grant per row: who, what, how, and the evidence a reviewer decides
/// on. `as_of` (the export's time) stands in for `now()`, so the same
/// snapshot always gives the same rows.
fn grants_sql(by: By, roster: bool, tokens: bool, several: bool, as_of: &str) -> String {
    let tokens_cte = if tokens {
        format!(
            "SELECT org_id, account_id, \
               count(*) FILTER (WHERE (status IS DISTINCT FROM 'BLOCKED') \
                 AND (expires_at IS NULL OR expires_at > to_timestamp('{as_of}'))) AS active, \
               max(last_active_at) AS last_used \
             FROM api_tokens GROUP BY org_id, account_id"
        )
    } else {
        // Not exported (the key had no scope for it): unknown, not zero.
        "SELECT CAST(NULL AS VARCHAR) AS org_id, CAST(NULL AS VARCHAR) AS account_id, \
           CAST(NULL AS BIGINT) AS active, CAST(NULL AS TIMESTAMP) AS last_used WHERE false"
            .to_string()
    };
    let active_tokens = if tokens {
        "coalesce(t.active, 0)"
    } else {
        "t.active"
    };
    let scope = match by {
        By::Product => "g.product",
        By::Workspace => {
            "CASE WHEN g.product = 'platform' THEN 'organization' \
             ELSE g.workspace || ' (' || g.product || ')' END"
        }
        By::Group => "coalesce(g.first_group, '(direct grants)')",
        // One manager, one file, however the roster spells the address.
        By::Manager => {
            "CASE WHEN p.email IS NULL THEN '(not in roster)' \
             ELSE coalesce(lower(p.manager_email), '(no manager)') END"
        }
    };
    // Of several organizations, sites and groups are each organization's
    // own (a manager's people may be in several).
    let scope = if several && by != By::Manager {
        format!("g.org_id || ': ' || {scope}")
    } else {
        scope.to_string()
    };
    let (roster_columns, roster_join) = if roster {
        (
            ", p.manager_email, p.department AS hr_department, p.employment_status, \
             CAST(p.end_date AS VARCHAR) AS end_date",
            " LEFT JOIN roster p ON lower(p.email) = lower(g.email)",
        )
    } else {
        ("", "")
    };
    format!(
        "WITH via AS (
  SELECT m.org_id, m.account_id, a.resource_id, a.role,
         string_agg(m.group_name, ', ' ORDER BY m.group_name) AS via_groups,
         min(m.group_name) AS first_group
  FROM group_members m
  JOIN group_role_assignments a ON a.org_id = m.org_id AND a.group_id = m.group_id
  GROUP BY m.org_id, m.account_id, a.resource_id, a.role
),
used AS (
  SELECT org_id, account_id, max(last_active) AS last_active_any
  FROM user_product_access GROUP BY org_id, account_id
),
tokens AS ({tokens_cte}),
grants AS (
  SELECT DISTINCT r.org_id, r.account_id, u.name, u.email, u.account_type, u.account_status,
    u.status, u.claim_status, r.resource_owner AS product,
    CASE WHEN r.resource_owner = 'platform' THEN 'organization'
         ELSE coalesce(w.name, r.resource_id) END AS workspace,
    r.resource_id, r.role,
    CASE
      WHEN array_has(string_to_array(r.assignment_methods, ','), 'direct')
       AND array_has(string_to_array(r.assignment_methods, ','), 'group_direct') THEN 'direct and group'
      WHEN array_has(string_to_array(r.assignment_methods, ','), 'group_direct') THEN 'group'
      ELSE coalesce(r.assignment_methods, '')
    END AS granted,
    v.via_groups, v.first_group, u.added_to_org, a.last_active, x.last_active_any,
    CASE u.mfa_enabled WHEN true THEN 'yes' WHEN false THEN 'no' END AS mfa_enabled,
    {active_tokens} AS api_tokens, t.last_used AS api_token_last_used
  FROM user_role_assignments r
  LEFT JOIN users u ON u.org_id = r.org_id AND u.account_id = r.account_id
  LEFT JOIN workspaces w ON w.org_id = r.org_id AND w.workspace_id = r.resource_id
  LEFT JOIN via v ON v.org_id = r.org_id AND v.account_id = r.account_id
    AND v.resource_id = r.resource_id AND v.role = r.role
  LEFT JOIN user_product_access a ON a.org_id = r.org_id AND a.account_id = r.account_id
    AND a.product_id = r.resource_id
  LEFT JOIN used x ON x.org_id = r.org_id AND x.account_id = r.account_id
  LEFT JOIN tokens t ON t.org_id = r.org_id AND t.account_id = r.account_id
)
SELECT {scope} AS scope, g.org_id, g.account_id, g.name, g.email, g.account_type,
  g.account_status, g.status, g.claim_status, g.product, g.workspace, g.resource_id, g.role,
  g.granted, g.via_groups, g.added_to_org, g.last_active, g.last_active_any, g.mfa_enabled,
  g.api_tokens, g.api_token_last_used{roster_columns}
FROM grants g{roster_join}
ORDER BY scope, g.email, g.account_id, g.product, g.workspace, g.role"
    )
}

/// The grants as they are now, named for a reader: the key, then who and what.
const CURRENT_SQL: &str = "SELECT DISTINCT r.org_id, r.account_id, r.resource_id, r.role,
  coalesce(u.email, r.account_id) AS who,
  CASE WHEN r.resource_owner = 'platform' THEN 'organization'
       ELSE coalesce(w.name, r.resource_id) || ' (' || r.resource_owner || ')' END AS what
FROM user_role_assignments r
LEFT JOIN users u ON u.org_id = r.org_id AND u.account_id = r.account_id
LEFT JOIN workspaces w ON w.org_id = r.org_id AND w.workspace_id = r.resource_id";

/// The longest file stem a scope gets, in bytes: with `.signoff.csv` after
/// it, well inside the 255 bytes a file name may have on common file
/// systems, and short enough to read in a listing.
const STEM_BYTES: usize = 100;

/// A file name for a scope: letters, digits and `.-_@` kept, the rest `-`.
/// A longer one (a group may be named in 250 characters) is cut, with a
/// short hash of the whole scope after it, so two long scopes that start
/// alike still get names of their own.
fn file_stem(scope: &str) -> String {
    let stem: String = scope
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-_@".contains(c) {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let stem = stem.trim_matches(['-', '.']).to_string();
    if stem.is_empty() {
        return "scope".to_string();
    }
    if stem.len() <= STEM_BYTES {
        return stem;
    }
    // ASCII only by now: any byte is a character boundary.
    let hash = &sha256(scope.as_bytes())[..8];
    let kept = stem[..STEM_BYTES - hash.len() - 1].trim_end_matches(['-', '.']);
    format!("{kept}-{hash}")
}

/// What `review start` is given.
pub struct StartOptions {
    pub out: PathBuf,
    pub by: By,
    pub roster: Option<PathBuf>,
    pub pages: Pages,
    /// Where the organization is read from, for the record.
    pub source: String,
    /// The roles whose keeping needs a justification.
    pub admin_roles: Vec<String>,
    /// Who reviews the grants of people without a manager (`--by manager`).
    pub fallback_reviewer: Option<String>,
}

/// The roles a reviewer must justify keeping, unless `--admin-roles` says.
pub const ADMIN_ROLES: [&str; 4] = [
    "atlassian/org-admin",
    "atlassian/site-admin",
    "atlassian/user-access-admin",
    "atlassian/admin",
];

/// The scopes of `--by manager` that have no manager to review them.
const NOT_IN_ROSTER: &str = "(not in roster)";
const NO_MANAGER: &str = "(no manager)";

/// What a reviewer attests by signing a file off.
const STATEMENT: &str =
    "I reviewed every grant in this file; its decisions and justifications are mine.";

/// The sign-off file's columns: the first three as issued, the last two
/// the reviewer fills in.
const SIGNOFF_COLUMNS: [&str; 5] = ["file", "reviewer", "statement", "signed_by", "signed_at"];

/// A role is an admin role of the review's set: named in full
/// (`atlassian/site-admin`) or by its last part (`site-admin`).
fn is_admin_role(role: &str, admin_roles: &[String]) -> bool {
    let short = role.rsplit('/').next().unwrap_or(role);
    admin_roles
        .iter()
        .any(|a| a.eq_ignore_ascii_case(role) || a.eq_ignore_ascii_case(short))
}

/// Who may sign a file off, as its sign-off file says it.
fn reviewers_cell(reviewers: &[String]) -> String {
    if reviewers.is_empty() {
        "(none named)".to_string()
    } else {
        reviewers.join("; ")
    }
}

/// `orgsql review start`: freeze, split, write; the review and its
/// fingerprint.
pub async fn start(
    session: &crate::session::Session,
    options: &StartOptions,
    log: &mut dyn Write,
) -> Result<(Review, String)> {
    let orgs = session
        .orgs
        .as_ref()
        .context("review start reads the API")?;
    if options.by == By::Manager && options.roster.is_none() {
        bail!("--by manager splits by the roster's managers: add --roster people.csv");
    }
    let fallback_reviewer = match &options.fallback_reviewer {
        None => None,
        Some(_) if options.by != By::Manager => bail!(
            "--fallback-reviewer reviews the grants of people without a manager: it goes with --by manager"
        ),
        Some(email) => Some(reviewer_in_roster(email, options.roster.as_deref())?),
    };
    let out = std::path::absolute(&options.out)
        .with_context(|| format!("--out {}", options.out.display()))?;
    let at = |what: &str| format!("--out {}: {what}", options.out.display());
    if out.exists() {
        let empty = out.is_dir()
            && std::fs::read_dir(&out)
                .with_context(|| at("reading it"))?
                .next()
                .is_none();
        if !empty {
            bail!(at(
                "exists and is not empty; a review starts in a new folder (an earlier review stays as it is)"
            ));
        }
    }
    // Everything is written beside the folder and renamed onto it at the
    // end: a review folder is whole, or absent. It holds personal data:
    // only its owner may read it.
    let building = AtomicPath::new(&out).with_context(|| at("naming a folder beside it"))?;
    let dir = building.temp().to_path_buf();
    private_dir(&dir).with_context(|| at("creating it"))?;
    for folder in [REVIEWS, ISSUED] {
        std::fs::create_dir_all(dir.join(folder)).with_context(|| at("creating it"))?;
    }
    let roster = match &options.roster {
        Some(path) => {
            // Checked before anything is fetched; frozen as given.
            crate::roster::read(path).map_err(|e| anyhow::anyhow!("--roster: {e}"))?;
            let bytes =
                std::fs::read(path).with_context(|| format!("--roster {}", path.display()))?;
            std::fs::write(dir.join(ROSTER), &bytes).with_context(|| at("copying the roster"))?;
            Some(Digested {
                path: ROSTER.to_string(),
                sha256: sha256(&bytes),
            })
        }
        None => None,
    };
    let started_at = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let export = ExportOptions {
        out: dir.join(SNAPSHOT),
        tables: Some(TABLES.iter().map(ToString::to_string).collect()),
        since: None,
        published: None,
    };
    export_orgs(session, &export, log)
        .await
        .at("review start: freezing the organization")?;
    let reading = "review start: reading the frozen snapshot";
    let opened = crate::snapshot::Opened::read(&Location::Folder(dir.join(SNAPSHOT)))
        .await
        .at(reading)?;
    let ctx = crate::snapshot::context_of(&opened).await.at(reading)?;
    if roster.is_some() {
        crate::roster::register(&ctx, &dir.join(ROSTER)).at("--roster")?;
    }
    let tokens = ctx.table_exist("api_tokens").unwrap_or(false);
    let contents = &opened.contents;
    let sql = grants_sql(
        options.by,
        roster.is_some(),
        tokens,
        orgs.len() > 1,
        contents.exported_at(),
    );
    let frame = crate::sql::frame(&ctx, &sql)
        .await
        .at("review start: the grants")?;
    let columns: Vec<String> = frame
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let batches = frame.collect().await.at("review start: the grants")?;
    let mut rows = super::output::text_rows(&batches, "")?;
    // Who reviews each scope: its manager, or for people without one, the
    // fallback reviewer or the resource's admins.
    let mut reviewers: BTreeMap<String, (Vec<String>, bool)> = BTreeMap::new();
    if options.by == By::Manager {
        let admins = match fallback_reviewer {
            Some(_) => BTreeMap::new(),
            None => resource_admins(&ctx).await?,
        };
        let at = |name: &str| columns.iter().position(|c| c == name);
        let (Some(org), Some(resource), Some(product), Some(workspace)) = (
            at("org_id"),
            at("resource_id"),
            at("product"),
            at("workspace"),
        ) else {
            bail!("review start: the grants lack their resource columns");
        };
        for row in &mut rows {
            if row[0] != NOT_IN_ROSTER && row[0] != NO_MANAGER {
                reviewers.insert(row[0].clone(), (vec![row[0].clone()], false));
                continue;
            }
            let (scope, who) = match &fallback_reviewer {
                Some(email) => (format!("fallback {email}"), vec![email.clone()]),
                None => match admins.get(&(row[org].clone(), row[resource].clone())) {
                    Some(emails) => {
                        let of = if row[product] == "platform" {
                            "the organization".to_string()
                        } else {
                            format!("{} ({})", row[workspace], row[product])
                        };
                        let of = if orgs.len() > 1 {
                            format!("{}: {of}", row[org])
                        } else {
                            of
                        };
                        (format!("admins of {of}"), emails.clone())
                    }
                    None => continue,
                },
            };
            row[0].clone_from(&scope);
            reviewers.insert(scope, (who, true));
        }
    }
    let mut by_scope: BTreeMap<&str, Vec<&Vec<String>>> = BTreeMap::new();
    for row in &rows {
        by_scope.entry(row[0].as_str()).or_default().push(row);
    }
    let mut files = Vec::new();
    let mut stems = BTreeSet::new();
    for (scope, rows) in &by_scope {
        let base = file_stem(scope);
        let mut stem = base.clone();
        let mut n = 2;
        while !stems.insert(stem.clone()) {
            stem = format!("{base}-{n}");
            n += 1;
        }
        let bytes = csv_file(&columns, rows)?;
        let path = format!("{REVIEWS}/{stem}.csv");
        let issued = format!("{ISSUED}/{stem}.csv");
        for name in [&path, &issued] {
            std::fs::write(dir.join(name), &bytes).with_context(|| at(name))?;
        }
        if options.pages == Pages::Html {
            let page = format!("{REVIEWS}/{stem}.html");
            std::fs::write(
                dir.join(&page),
                html_page(scope, &started_at, &columns, rows),
            )
            .with_context(|| at(&page))?;
        }
        let (who, fallback) = reviewers.get(*scope).cloned().unwrap_or_default();
        let signoff = format!("{REVIEWS}/{stem}.signoff.csv");
        std::fs::write(dir.join(&signoff), signoff_file(&path, &who)?)
            .with_context(|| at(&signoff))?;
        files.push(ReviewFile {
            path,
            issued: Digested {
                path: issued,
                sha256: sha256(&bytes),
            },
            scope: scope.to_string(),
            rows: rows.len(),
            reviewers: who,
            fallback,
            signoff,
        });
    }
    let manifest = std::fs::read(dir.join(SNAPSHOT).join(crate::snapshot::MANIFEST))
        .with_context(|| at("reading the snapshot's manifest"))?;
    let review = Review {
        started_at,
        by: options.by,
        orgs: orgs.ids(),
        source: options.source.clone(),
        orgsql_version: env!("CARGO_PKG_VERSION").to_string(),
        snapshot: SNAPSHOT.to_string(),
        snapshot_manifest_sha256: sha256(&manifest),
        roster,
        admin_roles: options.admin_roles.clone(),
        fallback_reviewer,
        files,
    };
    let text = format!("{}\n", serde_json::to_string_pretty(&review)?);
    std::fs::write(dir.join(REVIEW_JSON), &text).with_context(|| at(REVIEW_JSON))?;
    building.commit_new().with_context(|| {
        at("putting the review in place (did another review start there meanwhile?)")
    })?;
    Ok((review, sha256(text.as_bytes())))
}

/// `--fallback-reviewer EMAIL`: a person of the roster who has not left,
/// as the roster spells the address (lowercase).
fn reviewer_in_roster(email: &str, roster: Option<&Path>) -> Result<String> {
    let Some(roster) = roster else {
        bail!("--fallback-reviewer is checked against the roster: add --roster people.csv");
    };
    let people = crate::roster::read(roster).map_err(|e| anyhow::anyhow!("--roster: {e}"))?;
    let Some(person) = people
        .iter()
        .find(|p| p.email.eq_ignore_ascii_case(email.trim()))
    else {
        bail!(
            "--fallback-reviewer {email}: not in the roster {}; a reviewer is a person the roster names",
            roster.display()
        );
    };
    if person.employment_status.as_deref() == Some("terminated") {
        bail!("--fallback-reviewer {email}: the roster says terminated; name someone who is here");
    }
    Ok(person.email.to_lowercase())
}

/// The admins of each resource, by organization and resource: the site
/// admins of a site, the organization admins of the organization. Only
/// active accounts of people in the roster who have not left: the ones
/// who can sign a review off.
async fn resource_admins(ctx: &SessionContext) -> Result<BTreeMap<(String, String), Vec<String>>> {
    const SQL: &str = "SELECT DISTINCT r.org_id, r.resource_id, lower(u.email) AS email
FROM user_role_assignments r
JOIN users u ON u.org_id = r.org_id AND u.account_id = r.account_id
JOIN roster p ON lower(p.email) = lower(u.email)
WHERE ((r.resource_owner = 'platform' AND r.role = 'atlassian/org-admin')
    OR (r.resource_owner <> 'platform' AND r.role = 'atlassian/site-admin'))
  AND u.status = 'active'
  AND p.employment_status IS DISTINCT FROM 'terminated'
ORDER BY 1, 2, 3";
    let what = "review start: the admins of each resource";
    let batches = crate::sql::frame(ctx, SQL)
        .await
        .at(what)?
        .collect()
        .await
        .at(what)?;
    let mut admins: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for row in super::output::text_rows(&batches, "")? {
        admins
            .entry((row[0].clone(), row[1].clone()))
            .or_default()
            .push(row[2].clone());
    }
    Ok(admins)
}

/// A sign-off file as issued: who may sign which file, and what signing
/// says; `signed_by` and `signed_at` empty for the reviewer to fill in.
fn signoff_file(path: &str, reviewers: &[String]) -> Result<Vec<u8>> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(SIGNOFF_COLUMNS)?;
    writer.write_record([
        cell(path).into_owned(),
        cell(&reviewers_cell(reviewers)).into_owned(),
        STATEMENT.to_string(),
        String::new(),
        String::new(),
    ])?;
    writer
        .into_inner()
        .map_err(|e| anyhow::anyhow!("{}", e.error()))
}

/// A folder only its owner can read.
fn private_dir(path: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(path)
}

/// A review file: the header, then each row with an empty decision and
/// justification.
fn csv_file(columns: &[String], rows: &[&Vec<String>]) -> Result<Vec<u8>> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let mut header: Vec<&str> = columns.iter().map(String::as_str).collect();
    header.extend([DECISION, JUSTIFICATION]);
    writer.write_record(&header)?;
    for row in rows {
        let mut record: Vec<String> = row.iter().map(|v| cell(v).into_owned()).collect();
        record.extend([String::new(), String::new()]);
        writer.write_record(&record)?;
    }
    writer
        .into_inner()
        .map_err(|e| anyhow::anyhow!("{}", e.error()))
}

/// One scope's rows as a page to read or print: no script, nothing fetched.
fn html_page(scope: &str, started_at: &str, columns: &[String], rows: &[&Vec<String>]) -> String {
    use super::check::escape_html as h;
    let mut page = String::new();
    page.push_str("<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\"><head><meta charset=\"utf-8\"/>");
    page.push_str(&format!("<title>Access review: {}</title>", h(scope)));
    page.push_str(
        "<style>body{font-family:system-ui,sans-serif;margin:2em;color:#222}\
         table{border-collapse:collapse;font-size:.85em}\
         td,th{border:1px solid #bbb;padding:.2em .4em;text-align:left;vertical-align:top}\
         td.blank{min-width:6em}</style></head><body>\n",
    );
    page.push_str(&format!(
        "<h1>Access review: {}</h1>\n<p>Frozen {} by orgsql {}: {} grants. Decide in the CSV \
         file beside this page (decision: keep or revoke; a justification to keep an admin \
         role), sign it off in the <code>.signoff.csv</code> file beside it (signed_by: your \
         email, signed_at: the date), then run <code>orgsql review verify</code>.</p>\n<table><tr>",
        h(scope),
        h(started_at),
        env!("CARGO_PKG_VERSION"),
        rows.len()
    ));
    for column in columns.iter().skip(1) {
        page.push_str(&format!("<th>{}</th>", h(column)));
    }
    page.push_str(&format!(
        "<th>{DECISION}</th><th>{JUSTIFICATION}</th></tr>\n"
    ));
    for row in rows {
        page.push_str("<tr>");
        for value in row.iter().skip(1) {
            page.push_str(&format!("<td>{}</td>", h(value)));
        }
        page.push_str("<td class=\"blank\"></td><td class=\"blank\"></td></tr>\n");
    }
    page.push_str("</table></body></html>\n");
    page
}

/// A review folder's `review.json`, and its fingerprint (its sha256).
pub fn read_review(dir: &Path) -> Result<(Review, String)> {
    let path = dir.join(REVIEW_JSON);
    let text = std::fs::read(&path).with_context(|| {
        format!(
            "{}: is {} a folder written by `orgsql review start`?",
            path.display(),
            dir.display()
        )
    })?;
    let review: Review = serde_json::from_slice(&text)
        .with_context(|| format!("{}: not a review record", path.display()))?;
    let mut named = vec![("snapshot", &review.snapshot)];
    named.extend(review.roster.iter().map(|r| ("roster", &r.path)));
    for file in &review.files {
        named.push(("file", &file.path));
        named.push(("file", &file.issued.path));
        if !file.signoff.is_empty() {
            named.push(("sign-off file", &file.signoff));
        }
    }
    for (what, relative) in named {
        inside(dir, relative).map_err(|problem| {
            anyhow::anyhow!(
                "{}: the {what} {} {problem}; a review.json names only files inside its \
                 folder, so it was not written by `orgsql review start` or was edited since",
                path.display(),
                crate::cli::output::visible(&format!("{relative:?}"))
            )
        })?;
    }
    Ok((review, sha256(&text)))
}

/// Whether `relative` stays inside the review folder `dir`: a relative
/// path down from it (no `..`, not absolute), through no symbolic link
/// that leads out.
fn inside(dir: &Path, relative: &str) -> Result<(), &'static str> {
    let down = !relative.is_empty()
        && Path::new(relative)
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
    if !down {
        return Err("is not a path down from the review folder");
    }
    let target = dir.join(relative);
    if std::fs::symlink_metadata(&target).is_err() {
        return Ok(()); // Absent: reading it fails and says so.
    }
    match (dir.canonicalize(), target.canonicalize()) {
        (Ok(top), Ok(real)) if real.starts_with(&top) => Ok(()),
        (Ok(_), Ok(_)) => Err("leads out of the review folder through a symbolic link"),
        // A link to nowhere, or a folder that cannot be read: not followed.
        _ => Err("cannot be resolved inside the review folder"),
    }
}

/// A review refused for what is wrong with its files: the problems go to
/// standard error, one a line, before the error itself.
pub(crate) fn shown(e: anyhow::Error) -> anyhow::Error {
    if let Some(refused) = e.downcast_ref::<Refused>() {
        const SHOWN: usize = 40;
        for problem in refused.problems.iter().take(SHOWN) {
            eprintln!("{}", crate::cli::output::visible(problem));
        }
        if refused.problems.len() > SHOWN {
            eprintln!("... and {} more", refused.problems.len() - SHOWN);
        }
    }
    e
}

/// What a verify found wrong with the review: nothing is judged then.
#[derive(Debug, thiserror::Error)]
#[error("{} problem(s) in the review at {dir}; nothing was verified", problems.len())]
pub struct Refused {
    pub dir: String,
    pub problems: Vec<String>,
}

/// A CSV file read as rows of cells, with the line each starts on.
struct Read {
    header: Vec<String>,
    rows: Vec<(u64, Vec<String>)>,
}

fn read_csv(bytes: &[u8], name: &str, problems: &mut Vec<String>) -> Option<Read> {
    let text = sheet::text(bytes);
    let mut reader = sheet::reader(text);
    let mut lines = sheet::Lines::new(text);
    let header = match reader.headers() {
        Ok(header) => sheet::cells(header),
        Err(e) => {
            let (line, what) = lines.error(&e);
            problems.push(format!("{name}:{line}: {what}"));
            return None;
        }
    };
    let mut rows = Vec::new();
    for record in reader.records() {
        match record {
            Ok(record) => {
                let cells = sheet::cells(&record);
                if !cells.is_empty() {
                    rows.push((lines.at(record.position()), cells));
                }
            }
            Err(e) => {
                let (line, what) = lines.error(&e);
                problems.push(format!("{name}:{line}: {what}"));
            }
        }
    }
    Some(Read { header, rows })
}

/// Line numbers as ranges: `2-5, 9`.
fn lines(numbers: &[u64]) -> String {
    let mut ranges: Vec<(u64, u64)> = Vec::new();
    for &n in numbers {
        match ranges.last_mut() {
            Some((_, end)) if *end + 1 == n => *end = n,
            _ => ranges.push((n, n)),
        }
    }
    ranges
        .iter()
        .map(|(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A grant of the review: where, who and what, and what was decided.
struct Decided {
    file: String,
    line: u64,
    /// Keep (false) or revoke (true); none: left undecided.
    revoke: Option<bool>,
    who: String,
    what: String,
    role: String,
    justification: String,
}

/// Everything the review rests on, checked against `review.json`: the
/// snapshot's manifest and files, the roster, the files as issued.
async fn check_digests(dir: &Path, review: &Review, problems: &mut Vec<String>) -> Result<()> {
    let snapshot = dir.join(&review.snapshot);
    let digest_of = |relative: &Path| {
        crate::snapshot::verify::hash_file(&dir.join(relative)).map(|(_, sha256)| sha256)
    };
    let manifest = Path::new(&review.snapshot).join(crate::snapshot::MANIFEST);
    match digest_of(&manifest) {
        Ok(d) if d == review.snapshot_manifest_sha256 => {}
        Ok(_) => problems.push(format!(
            "{}: has changed since the review started",
            manifest.display()
        )),
        Err(e) => problems.push(format!("{}: {e}", manifest.display())),
    }
    for problem in crate::snapshot::tampered(&Location::Folder(snapshot.clone()))
        .await
        .at(&snapshot.display().to_string())?
    {
        problems.push(format!("{}: {problem}", review.snapshot));
    }
    let mut digested: Vec<&Digested> = review.files.iter().map(|f| &f.issued).collect();
    digested.extend(review.roster.as_ref());
    for file in digested {
        match digest_of(Path::new(&file.path)) {
            Ok(d) if d == file.sha256 => {}
            Ok(_) => problems.push(format!(
                "{}: has changed since the review started",
                file.path
            )),
            Err(e) => problems.push(format!("{}: {e}", file.path)),
        }
    }
    Ok(())
}

/// Read every review file back against its issued copy, and its sign-off.
/// Each row must be an issued grant, once, with its evidence unchanged.
async fn decisions(
    dir: &Path,
    review: &Review,
    started: DateTime<Utc>,
) -> Result<(BTreeMap<Vec<String>, Decided>, Vec<SignOff>)> {
    let mut problems = Vec::new();
    check_digests(dir, review, &mut problems).await?;
    // The roster as frozen with the review (its digest checked above).
    let people = match &review.roster {
        Some(roster) => match crate::roster::read(&dir.join(&roster.path)) {
            // By email as the sign-off check matches it: one look-up a file.
            Ok(people) => Some(
                people
                    .into_iter()
                    .map(|p| (p.email.to_ascii_lowercase(), p))
                    .collect::<HashMap<_, _>>(),
            ),
            Err(e) => {
                problems.push(e.to_string());
                None
            }
        },
        None => None,
    };
    let mut decided: BTreeMap<Vec<String>, Decided> = BTreeMap::new();
    let mut signoffs = Vec::new();
    for file in &review.files {
        signoffs.push(read_signoff(
            dir,
            file,
            started,
            people.as_ref(),
            &mut problems,
        ));
        let issued = match std::fs::read(dir.join(&file.issued.path)) {
            Ok(bytes) => read_csv(&bytes, &file.issued.path, &mut problems),
            Err(e) => {
                problems.push(format!("{}: {e}", file.issued.path));
                None
            }
        };
        let filled = match std::fs::read(dir.join(&file.path)) {
            Ok(bytes) => read_csv(&bytes, &file.path, &mut problems),
            Err(e) => {
                problems.push(format!("{}: {e}", file.path));
                None
            }
        };
        let (Some(issued), Some(filled)) = (issued, filled) else {
            continue;
        };
        check_file(file, &issued, &filled, &mut decided, &mut problems);
    }
    if !problems.is_empty() {
        return Err(Refused {
            dir: dir.display().to_string(),
            problems,
        }
        .into());
    }
    Ok((decided, signoffs))
}

/// One filled file against its issued copy.
fn check_file(
    file: &ReviewFile,
    issued: &Read,
    filled: &Read,
    decided: &mut BTreeMap<Vec<String>, Decided>,
    problems: &mut Vec<String>,
) {
    let name = &file.path;
    let header = &issued.header;
    if filled.header.len() > header.len()
        || filled.header.len() < header.len() - 1
        || filled.header[..header.len() - 1] != header[..header.len() - 1]
    {
        // The first column that differs, by position.
        let at = header
            .iter()
            .zip(
                filled
                    .header
                    .iter()
                    .chain(std::iter::repeat(&String::new())),
            )
            .position(|(want, got)| want != got)
            .unwrap_or(header.len());
        problems.push(format!(
            "{name}:1: column {} is {:?} where the review has {:?}; only decision and \
             justification may be filled in, no column added, moved or renamed",
            at + 1,
            filled.header.get(at).map_or("", String::as_str),
            header.get(at).map_or("", String::as_str),
        ));
        return;
    }
    let evidence = header.len() - 2;
    let position = |column: &str| header.iter().position(|c| c == column);
    let Some(key_at) = KEY
        .iter()
        .map(|k| position(k))
        .collect::<Option<Vec<usize>>>()
    else {
        problems.push(format!(
            "{}: the issued file lacks the grant's key columns",
            file.issued.path
        ));
        return;
    };
    let key_of = |row: &[String]| -> Vec<String> {
        key_at
            .iter()
            .map(|&i| {
                sheet::line_breaks_as_lf(uncell(row.get(i).map_or("", String::as_str))).into_owned()
            })
            .collect()
    };
    let mut expected: BTreeMap<Vec<String>, &Vec<String>> = BTreeMap::new();
    for (_, row) in &issued.rows {
        expected.insert(key_of(row), row);
    }
    let (email, role, workspace) = (position("email"), position("role"), position("workspace"));
    let pick = |row: &[String], i: Option<usize>| {
        i.and_then(|i| row.get(i))
            .map_or("", String::as_str)
            .to_string()
    };
    let mut seen = BTreeSet::new();
    for (line, row) in &filled.rows {
        let at = |what: String| format!("{name}:{line}: {what}");
        if row.len() > header.len() {
            problems.push(at(format!(
                "{} cells where the header has {}",
                row.len(),
                header.len()
            )));
            continue;
        }
        let key = key_of(row);
        let Some(want) = expected.get(&key) else {
            problems.push(at(format!(
                "no such grant in this file as issued ({}); rows cannot be added, moved \
                 between files, or their keys edited",
                key.join(" / ")
            )));
            continue;
        };
        let differs = (0..evidence).find(|&i| {
            let (got, issued) = (
                row.get(i).map_or("", String::as_str),
                want.get(i).map_or("", String::as_str),
            );
            sheet::line_breaks_as_lf(got) != sheet::line_breaks_as_lf(issued)
        });
        if let Some(i) = differs {
            problems.push(at(format!(
                "{} is {:?}, but the review issued {:?}; evidence cannot be edited",
                header[i],
                row.get(i).map_or("", String::as_str),
                want.get(i).map_or("", String::as_str)
            )));
            continue;
        }
        if !seen.insert(key.clone()) {
            problems.push(at(format!(
                "the grant {} is in the file twice",
                key.join(" / ")
            )));
            continue;
        }
        let revoke = match row
            .get(evidence)
            .map(|d| d.trim().to_lowercase())
            .as_deref()
        {
            Some("keep") => Some(false),
            Some("revoke") => Some(true),
            None | Some("") => None,
            Some(other) => {
                problems.push(at(format!("decision {other:?} is neither keep nor revoke")));
                continue;
            }
        };
        let who = match pick(row, email) {
            e if e.is_empty() => key[1].clone(),
            e => uncell(&e).to_string(),
        };
        decided.insert(
            key,
            Decided {
                file: name.clone(),
                line: *line,
                revoke,
                who,
                what: format!("{} on {}", pick(row, role), uncell(&pick(row, workspace))),
                role: uncell(&pick(row, role)).to_string(),
                justification: row.get(evidence + 1).map_or("", |j| j.trim()).to_string(),
            },
        );
    }
    let missing: Vec<String> = expected
        .iter()
        .filter(|(key, _)| !seen.contains(*key))
        .map(|(key, row)| {
            format!(
                "{} {} on {}",
                match pick(row, email) {
                    e if e.is_empty() => key[1].clone(),
                    e => e,
                },
                pick(row, role),
                pick(row, workspace)
            )
        })
        .collect();
    if !missing.is_empty() {
        problems.push(format!(
            "{name}: {} of its {} grants are missing (every issued grant needs a decision): {}{}",
            missing.len(),
            file.rows,
            missing
                .iter()
                .take(5)
                .cloned()
                .collect::<Vec<_>>()
                .join("; "),
            if missing.len() > 5 { "; ..." } else { "" }
        ));
    }
}

/// A file's sign-off as read back: who signed and when, as written, and
/// what is wrong with it (unsigned, a wrong signer, a bad date).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SignOff {
    pub signed_by: String,
    pub signed_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// What the signer was checked against, in words.
    pub checked: String,
}

/// A time as a reviewer types it in a spreadsheet: RFC 3339, or a date
/// and time, or a date (then `true`: only the day is known).
fn signed_time(text: &str) -> Option<(DateTime<Utc>, bool)> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some((t.to_utc(), false));
    }
    for format in [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(text, format) {
            return Some((t.and_utc(), false));
        }
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| (t.and_utc(), true))
}

/// Read a file's sign-off back: the issued columns must be as written
/// (else a problem of the review: it is refused); then who signed, checked
/// against the file's reviewers and the roster frozen with the review.
fn read_signoff(
    dir: &Path,
    file: &ReviewFile,
    started: DateTime<Utc>,
    people: Option<&HashMap<String, crate::roster::Person>>,
    problems: &mut Vec<String>,
) -> SignOff {
    let unsigned = |problem: String| SignOff {
        problem: Some(problem),
        ..SignOff::default()
    };
    if file.signoff.is_empty() {
        return unsigned(
            "no sign-off file: the review was started by an orgsql that did not ask for one"
                .to_string(),
        );
    }
    let name = &file.signoff;
    let bytes = match std::fs::read(dir.join(name)) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return unsigned(format!("not signed off: {name} is missing"));
        }
        Err(e) => {
            problems.push(format!("{name}: {e}"));
            return SignOff::default();
        }
    };
    let Some(read) = read_csv(&bytes, name, problems) else {
        return SignOff::default();
    };
    if read.header.len() > SIGNOFF_COLUMNS.len()
        || read.header.len() < 3
        || read.header.iter().zip(SIGNOFF_COLUMNS).any(|(a, b)| a != b)
    {
        problems.push(format!(
            "{name}:1: the columns are {}; a sign-off has {} (fill in signed_by and signed_at only)",
            read.header.join(","),
            SIGNOFF_COLUMNS.join(",")
        ));
        return SignOff::default();
    }
    let [(line, row)] = read.rows.as_slice() else {
        problems.push(format!(
            "{name}: {} rows where a sign-off has one",
            read.rows.len()
        ));
        return SignOff::default();
    };
    let get = |i: usize| row.get(i).map_or("", String::as_str);
    let issued = [
        file.path.clone(),
        reviewers_cell(&file.reviewers),
        STATEMENT.to_string(),
    ];
    for (i, want) in issued.iter().enumerate() {
        if uncell(get(i)) != want {
            problems.push(format!(
                "{name}:{line}: {} is {:?}, but the review issued {want:?}; only signed_by and                  signed_at may be filled in",
                SIGNOFF_COLUMNS[i],
                get(i)
            ));
            return SignOff::default();
        }
    }
    let signed_by = uncell(get(3)).to_string();
    let signed_at = uncell(get(4)).to_string();
    let person = people.and_then(|people| people.get(&signed_by.to_ascii_lowercase()));
    let checked = match (file.reviewers.is_empty(), people.is_some()) {
        (false, true) => "its reviewers and the roster",
        (false, false) => "its reviewers",
        (true, true) => "the roster (no reviewer named)",
        (true, false) => "nothing (no reviewer named, no roster)",
    }
    .to_string();
    let now = Utc::now();
    let problem = if signed_by.is_empty() {
        Some(format!("not signed off: signed_by is empty in {name}"))
    } else if !file.reviewers.is_empty()
        && !file
            .reviewers
            .iter()
            .any(|r| r.eq_ignore_ascii_case(&signed_by))
    {
        Some(format!(
            "signed off by {signed_by}, who is not its reviewer ({})",
            file.reviewers.join(", ")
        ))
    } else if people.is_some() && person.is_none() {
        Some(format!(
            "signed off by {signed_by}, who is not in the roster"
        ))
    } else if person.is_some_and(|p| p.employment_status.as_deref() == Some("terminated")) {
        Some(format!(
            "signed off by {signed_by}, whom the roster says terminated"
        ))
    } else {
        match signed_time(&signed_at) {
            None if signed_at.is_empty() => Some(format!("signed_at is empty in {name}")),
            None => Some(format!(
                "signed_at {signed_at:?} is not a date (YYYY-MM-DD) or a time (RFC 3339)"
            )),
            Some((at, day)) => {
                let (from, to) = match day {
                    true => (
                        at.date_naive() < started.date_naive(),
                        at.date_naive() > now.date_naive(),
                    ),
                    false => (at < started, at > now),
                };
                if from {
                    Some(format!(
                        "signed_at {signed_at} is before the review started ({})",
                        rfc3339(started)
                    ))
                } else if to {
                    Some(format!("signed_at {signed_at} is in the future"))
                } else {
                    None
                }
            }
        }
    };
    SignOff {
        signed_by,
        signed_at,
        problem,
        checked,
    }
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The things a verify judges, as controls a report can show.
fn verify_control(
    id: &str,
    title: &str,
    severity: &str,
    rationale: &str,
    remediation: &str,
) -> Control {
    let reference = |framework: &str, control: &str| Reference {
        framework: framework.to_string(),
        control: control.to_string(),
    };
    Control {
        id: id.to_string(),
        title: title.to_string(),
        severity: severity.to_string(),
        rationale: rationale.to_string(),
        remediation: remediation.to_string(),
        frameworks: vec![
            reference("soc2", "CC6.2"),
            reference("soc2", "CC6.3"),
            reference("iso27001", "A.5.18"),
            reference("nist800-53", "AC-2(j)"),
            reference("cis", "6.2"),
        ],
        params: Vec::new(),
        requires: Vec::new(),
        population: None,
        sql: String::new(),
        source: "orgsql review verify".to_string(),
        as_of_grants: false,
    }
}

/// What the organization is judged as now.
pub struct Now<'a> {
    pub ctx: &'a SessionContext,
    /// How reports name it: the live API, or a snapshot.
    pub described: String,
    /// When: the time of the live read, or the snapshot's export.
    pub at: DateTime<Utc>,
    /// What the reports say of the run (the rest is filled in as known).
    pub envelope: super::check::Envelope,
}

/// A snapshot to judge a review against, however it was named (`--against
/// DIR`, or `--snapshot DIR`): refused unless every file is as its manifest
/// records (each hashed: this is evidence); then a session over it, how
/// reports name it, the time it shows, its export's (`verify` refuses
/// one from before the review started), and the snapshot as opened (its
/// manifests read once). `flag` says where it was named.
pub async fn snapshot_now(
    flag: &str,
    dir: &Location,
) -> Result<(
    SessionContext,
    String,
    DateTime<Utc>,
    crate::snapshot::Opened,
)> {
    let at = format!("{flag} {dir}");
    let opened = crate::snapshot::Opened::read(dir).await.at(&at)?;
    let problems = crate::snapshot::verify::verify_opened(&opened)
        .await
        .at(&at)?
        .problems;
    if !problems.is_empty() {
        const SHOWN: usize = 3;
        let more = match problems.len().saturating_sub(SHOWN) {
            0 => String::new(),
            n => format!("; and {n} more"),
        };
        bail!(
            "{at}: {}{more}: it is not as exported, so it cannot show what was done; export \
             again (`orgsql snapshot verify {dir}` lists every problem)",
            problems[..problems.len().min(SHOWN)].join("; "),
        );
    }
    let ctx = crate::snapshot::context_of(&opened).await.at(&at)?;
    let contents = &opened.contents;
    let exported = DateTime::parse_from_rfc3339(contents.exported_at())
        .map(|t| t.to_utc())
        .with_context(|| format!("{at}: exported_at {:?}", contents.exported_at()))?;
    Ok((ctx, format!("snapshot {dir}"), exported, opened))
}

/// What `review verify` found, as `check` results, and per file.
pub struct Verified {
    pub results: Vec<Checked>,
    pub review: Review,
    pub fingerprint: String,
    pub files: Vec<FileOutcome>,
}

/// A reviewer's file as verified: its decisions counted, its sign-off.
pub struct FileOutcome {
    pub file: ReviewFile,
    pub keep: usize,
    pub revoke: usize,
    pub undecided: usize,
    pub signoff: SignOff,
}

/// `orgsql review verify DIR`: the review's digests and files checked,
/// then its decisions judged against `now`. Writes `summary.md`.
pub async fn verify(dir: &Path, now: &Now<'_>, expected: Option<&str>) -> Result<Verified> {
    let (review, fingerprint) = read_review(dir)?;
    // A review.json rewritten with its digests recomputed is consistent with
    // itself: only the fingerprint kept from `review start` tells.
    if let Some(expected) = expected.filter(|e| !e.eq_ignore_ascii_case(&fingerprint)) {
        return Err(Refused {
            dir: dir.display().to_string(),
            problems: vec![format!(
                "{}: its fingerprint is {fingerprint}, not {expected} (--fingerprint): this is \
                 not the review that was started, or it was changed since",
                dir.join(REVIEW_JSON).display()
            )],
        }
        .into());
    }
    let started = DateTime::parse_from_rfc3339(&review.started_at)
        .map(|t| t.to_utc())
        .with_context(|| format!("{}: started_at", dir.join(REVIEW_JSON).display()))?;
    let (decided, signoffs) = decisions(dir, &review, started).await?;
    let refuse = |problem: String| -> anyhow::Error {
        Refused {
            dir: dir.display().to_string(),
            problems: vec![problem],
        }
        .into()
    };
    if now.at < started {
        return Err(refuse(format!(
            "{} is from {}, before the review started ({}): it cannot show what was done since",
            now.described,
            now.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            review.started_at
        )));
    }
    let batches = crate::sql::frame(now.ctx, CURRENT_SQL)
        .await
        .at(&now.described)?
        .collect()
        .await
        .at(&now.described)?;
    let reviewed: BTreeSet<&str> = review.orgs.iter().map(String::as_str).collect();
    let mut present: BTreeMap<Vec<String>, (String, String)> = BTreeMap::new();
    for row in super::output::text_rows(&batches, "")? {
        if reviewed.contains(row[0].as_str()) {
            present.insert(row[..4].to_vec(), (row[4].clone(), row[5].clone()));
        }
    }
    // No grant at all of a reviewed organization: the wrong organization or
    // an empty snapshot, which would make every revoke look carried out.
    for org in &review.orgs {
        if !present.keys().any(|key| &key[0] == org) {
            return Err(refuse(format!(
                "{} holds no grant of organization {org}, which the review covers: is it the \
                 right organization (or snapshot)?",
                now.described
            )));
        }
    }
    let days = (now.at - started).num_days();
    let finding = |resource: String, status: &str, reason: String| Finding {
        resource,
        status: status.to_string(),
        reason,
        since: None,
    };
    let mut revokes = Vec::new();
    let mut gone = Vec::new();
    for (key, d) in &decided {
        let name = format!("{}: {}", d.who, d.what);
        let place = format!("{}:{}", d.file, d.line);
        match (d.revoke, present.contains_key(key)) {
            (None, _) => {}
            (Some(true), true) => revokes.push(finding(
                name,
                "alarm",
                format!(
                    "Revoke decided ({place}) and still in effect {days} day(s) after the review started"
                ),
            )),
            (Some(true), false) => {
                revokes.push(finding(name, "ok", format!("Revoked as decided ({place})")));
            }
            (Some(false), false) => gone.push(finding(
                name,
                "info",
                format!("Kept in the review ({place}) and gone now without a revoke decision"),
            )),
            (Some(false), true) => {}
        }
    }
    // Per file: its counts, its sign-off, its undecided rows.
    let mut files = Vec::new();
    let mut signed = Vec::new();
    let mut undecided_findings = Vec::new();
    for (file, signoff) in review.files.iter().zip(signoffs) {
        let of = |decision: Option<bool>| {
            decided
                .values()
                .filter(|d| d.file == file.path && d.revoke == decision)
                .count()
        };
        let undecided: Vec<u64> = decided
            .values()
            .filter(|d| d.file == file.path && d.revoke.is_none())
            .map(|d| d.line)
            .collect();
        undecided_findings.push(match undecided.len() {
            0 => finding(
                file.path.clone(),
                "ok",
                format!("All {} grants decided", file.rows),
            ),
            n => finding(
                file.path.clone(),
                "alarm",
                format!(
                    "{n} of its {} grants have no decision (keep or revoke): line {}",
                    file.rows,
                    lines(&undecided)
                ),
            ),
        });
        signed.push(match &signoff.problem {
            Some(problem) => finding(file.path.clone(), "alarm", problem.clone()),
            None => finding(
                file.path.clone(),
                "ok",
                format!(
                    "Signed off by {} at {}; the signer checked against {}",
                    signoff.signed_by, signoff.signed_at, signoff.checked
                ),
            ),
        });
        files.push(FileOutcome {
            file: file.clone(),
            keep: of(Some(false)),
            revoke: of(Some(true)),
            undecided: undecided.len(),
            signoff,
        });
    }
    // A reviewer keeping their own access certified nothing: the holder
    // of a grant kept in a file they signed off.
    let mut own = Vec::new();
    for outcome in &files {
        let signer = &outcome.signoff.signed_by;
        if signer.is_empty() || outcome.signoff.problem.is_some() {
            continue;
        }
        for d in decided.values().filter(|d| {
            d.file == outcome.file.path
                && d.revoke == Some(false)
                && d.who.eq_ignore_ascii_case(signer)
        }) {
            own.push(finding(
                format!("{}: {}", d.who, d.what),
                "alarm",
                format!(
                    "Kept ({}:{}) by its holder, who signed the file off: have another of its reviewers (or their manager) decide it",
                    d.file, d.line
                ),
            ));
        }
    }
    // Admin roles kept: each with the reviewer's reason, or an alarm.
    let mut justified = Vec::new();
    for d in decided.values() {
        if d.revoke != Some(false) || !is_admin_role(&d.role, &review.admin_roles) {
            continue;
        }
        let place = format!("{}:{}", d.file, d.line);
        justified.push(if d.justification.is_empty() {
            finding(
                format!("{}: {}", d.who, d.what),
                "alarm",
                format!("Kept ({place}) without a justification"),
            )
        } else {
            finding(
                format!("{}: {}", d.who, d.what),
                "ok",
                format!("Kept ({place}), justified: \"{}\"", d.justification),
            )
        });
    }
    let uncertified: Vec<Finding> = present
        .iter()
        .filter(|(key, _)| !decided.contains_key(*key))
        .map(|(key, (who, what))| {
            finding(
                format!("{who}: {} on {what}", key[3]),
                "alarm",
                "Not in the review: granted after it started, so never certified".to_string(),
            )
        })
        .collect();
    let judged = |control: Control, mut findings: Vec<Finding>| -> Checked {
        findings.sort_by(|a, b| (&a.status, &a.resource).cmp(&(&b.status, &b.resource)));
        let outcome = if findings.iter().any(|f| f.status == "alarm") {
            Outcome::Alarm
        } else {
            Outcome::Pass
        };
        Checked {
            control,
            org_id: None,
            outcome,
            findings,
            parameters: Vec::new(),
            population: None,
            resolved: None,
            error: None,
            skipped: None,
            sql: String::new(),
        }
    };
    let mut justification = judged(
        verify_control(
            "review_admin_kept_justified",
            "Every admin role the review kept has a justification",
            "high",
            "Admin roles carry the most risk; keeping one is a decision an auditor asks the reason for.",
            "Write the reason in the justification column of each row named, or revoke the role; then verify again.",
        ),
        justified,
    );
    if review.admin_roles.is_empty() {
        justification.outcome = Outcome::Skipped;
        justification.skipped = Some(
            "the review named no admin roles to justify (--admin-roles at review start)"
                .to_string(),
        );
    }
    let results = vec![
        judged(
            verify_control(
                "review_signed_off",
                "Every reviewer file is signed off by its reviewer",
                "high",
                "A decision is evidence only when it is known who made it and when: each file is attested by the person it was given to.",
                "Have the reviewer fill in signed_by (their email as in the roster) and signed_at (the date) in the file's .signoff.csv, then verify again.",
            ),
            signed,
        ),
        judged(
            verify_control(
                "review_every_grant_decided",
                "Every grant in the review has a decision",
                "high",
                "A grant left undecided was not certified: the review is incomplete.",
                "Fill in keep or revoke on each row named, then verify again.",
            ),
            undecided_findings,
        ),
        justification,
        judged(
            verify_control(
                "review_not_self_certified",
                "No reviewer kept their own access",
                "medium",
                "A person certifying their own grant is no independent review (segregation of duties).",
                "Have another reviewer of the file, or the holder's manager, decide the grants named and sign the file off.",
            ),
            own,
        ),
        judged(
            verify_control(
                "review_revokes_carried_out",
                "Every grant the review decided to revoke is gone",
                "high",
                "A review is only as good as its follow-through: a revoke decision that was never carried out leaves access that a reviewer judged unneeded.",
                "Remove each grant still in effect (the role, the product access, or the group membership that gives it), then verify again.",
            ),
            revokes,
        ),
        judged(
            verify_control(
                "review_grants_certified",
                "Every grant in effect now was certified by the review",
                "high",
                "Access granted after the review was frozen was never looked at by a reviewer; auditors ask for it separately.",
                "Review these grants now (or in the next campaign) and record who approved them.",
            ),
            uncertified,
        ),
        judged(
            verify_control(
                "review_kept_grants_present",
                "Grants the review kept are still there (informational)",
                "low",
                "A kept grant that disappeared is not a risk, but it means the organization changed outside the review's decisions.",
                "Nothing to do unless the removal was a mistake.",
            ),
            gone,
        ),
    ];
    let verified = Verified {
        results,
        review,
        fingerprint,
        files,
    };
    write_summary(dir, &verified, now)?;
    Ok(verified)
}

/// How reports name what a verify compared with.
pub fn compared_with(verified: &Verified, dir: &Path) -> String {
    format!(
        "the review started {} in {} (fingerprint {})",
        verified.review.started_at,
        dir.display(),
        verified.fingerprint
    )
}

/// The envelope of a verification's reports: the review's organizations
/// (when the session did not name them), and what it was verified against.
pub fn enveloped(
    envelope: &super::check::Envelope,
    verified: &Verified,
    dir: &Path,
) -> super::check::Envelope {
    let mut envelope = envelope.clone();
    if envelope.organizations.is_empty() {
        envelope.organizations = verified
            .review
            .orgs
            .iter()
            .map(|id| super::check::envelope::Organization {
                id: id.clone(),
                ..Default::default()
            })
            .collect();
    }
    // The roster the review was split by, frozen with it (its digest
    // checked), when verify was not given one.
    if let (None, Some(roster)) = (&envelope.roster, &verified.review.roster) {
        envelope.roster = Some(super::check::envelope::FileDigest {
            file: dir.join(&roster.path).display().to_string(),
            sha256: roster.sha256.clone(),
        });
    }
    envelope.baseline = Some(compared_with(verified, dir));
    envelope
}

/// `summary.md` beside the files: the report as `--format markdown`
/// writes it (the review, each reviewer's file with its decisions and
/// sign-off, the judgements).
fn write_summary(dir: &Path, verified: &Verified, now: &Now<'_>) -> Result<()> {
    let mut text = Vec::new();
    let envelope = enveloped(&now.envelope, verified, dir).end();
    report::markdown(&mut text, verified, &envelope)?;
    let path = dir.join(SUMMARY);
    super::files::write_atomically(&path, |mut file| {
        file.write_all(&text).map_err(super::files::io_at(&path))
    })
    .at(SUMMARY)
}
