//! `orgsql review`: the periodic user access review.
//!
//! `start` freezes the population: a snapshot of the tables a review reads
//! (its manifest holds a sha256 of every file), the HR roster if one was
//! given, and one CSV file per reviewer scope, a row per grant with its
//! evidence and two empty columns, `decision` and `justification`.
//! `verify` reads the filled files back, refuses any that were edited
//! beyond those two columns (the frozen snapshot is the evidence), then
//! compares the decisions with the organization as it is now.
//!
//! A folder holds: `review.json` (written last: a folder without it is not
//! a review), `snapshot/`, `roster.csv`, `reviews/<scope>.csv` (and `.html`),
//! and after a verify, `summary.md`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::prelude::SessionContext;
use serde::{Deserialize, Serialize};

use super::At;
use super::check::{Checked, Control, Finding, Outcome, Reference};
use super::export::{ExportOptions, export_orgs};
use super::files::AtomicPath;

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

/// What `review start` writes besides the CSV files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Pages {
    Csv,
    /// Also one self-contained HTML page per scope, to read or print
    Html,
}

/// `review.json`: what was frozen, when, and how it was split.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Review {
    pub started_at: String,
    pub by: By,
    /// The organization(s) reviewed.
    pub org: String,
    /// Where the population came from (the API at a URL, the demo).
    pub source: String,
    pub orgsql_version: String,
    /// The frozen snapshot, relative to the folder.
    pub snapshot: String,
    /// The roster as given, relative to the folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roster: Option<String>,
    pub files: Vec<ReviewFile>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReviewFile {
    /// Relative to the folder.
    pub path: String,
    pub scope: String,
    pub rows: usize,
}

const REVIEW_JSON: &str = "review.json";
const SNAPSHOT: &str = "snapshot";
const ROSTER: &str = "roster.csv";
const REVIEWS: &str = "reviews";
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
fn grants_sql(by: By, roster: bool, tokens: bool, as_of: &str) -> String {
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
        By::Manager => {
            "CASE WHEN p.email IS NULL THEN '(not in roster)' \
             ELSE coalesce(p.manager_email, '(no manager)') END"
        }
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

/// A result's header and rows as text (NULL as empty), as a CSV holds them.
struct Rows {
    columns: Vec<String>,
    rows: Vec<Vec<String>>,
}

async fn text_rows(ctx: &SessionContext, sql: &str, place: &str) -> Result<Rows> {
    let frame = ctx.sql(sql).await.at(place)?;
    let columns = frame
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let batches: Vec<RecordBatch> = frame.collect().await.at(place)?;
    let options = FormatOptions::default().with_null("");
    let mut rows = Vec::new();
    for batch in &batches {
        let formatters = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        for row in 0..batch.num_rows() {
            rows.push(
                formatters
                    .iter()
                    .map(|f| f.value(row).to_string())
                    .collect(),
            );
        }
    }
    Ok(Rows { columns, rows })
}

/// A cell a spreadsheet would run as a formula (a display name can be
/// `=HYPERLINK(...)`) is written with a leading `'`, which spreadsheets
/// show as text and keep on saving. Verify compares with the same form.
fn cell(value: &str) -> String {
    if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_string()
    }
}

/// A cell as `cell` wrote it, read back as the value.
fn uncell(text: &str) -> &str {
    match text.strip_prefix('\'') {
        Some(rest) if rest.starts_with(['=', '+', '-', '@', '\t', '\r']) => rest,
        _ => text,
    }
}

/// A file name for a scope: letters, digits and `.-_@` kept, the rest `-`.
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
        "scope".to_string()
    } else {
        stem
    }
}

/// The frozen review's rows, computed from the folder's snapshot (and
/// roster): the same at `start` and at every `verify`.
async fn frozen_rows(dir: &Path, review_by: By, roster: Option<&Path>) -> Result<Rows> {
    let snapshot = dir.join(SNAPSHOT);
    let ctx = crate::snapshot::session(&snapshot)
        .await
        .at(&snapshot.display().to_string())?;
    if let Some(roster) = roster {
        crate::roster::register(&ctx, roster).at("--roster")?;
    }
    let contents =
        crate::snapshot::Contents::read(&snapshot).at(&snapshot.display().to_string())?;
    let tokens = ctx.table_exist("api_tokens").unwrap_or(false);
    for table in TABLES.iter().filter(|t| **t != "api_tokens") {
        if !ctx.table_exist(*table).unwrap_or(false) {
            bail!(
                "{}: the snapshot has no table {table}, which a review needs",
                snapshot.display()
            );
        }
    }
    let sql = grants_sql(review_by, roster.is_some(), tokens, contents.exported_at());
    text_rows(&ctx, &sql, "the review's grants").await
}

/// What `review start` is given.
pub struct StartOptions {
    pub out: PathBuf,
    pub by: By,
    pub roster: Option<PathBuf>,
    pub pages: Pages,
    /// Where the organization is read from, for the record.
    pub source: String,
}

/// `orgsql review start`: freeze, split, write. Returns what it wrote.
pub async fn start(
    orgs: &crate::api::Orgs,
    options: &StartOptions,
    log: &mut dyn Write,
) -> Result<Review> {
    if options.by == By::Manager && options.roster.is_none() {
        bail!("--by manager splits by the roster's managers: add --roster people.csv");
    }
    let out = &options.out;
    if out.exists() {
        let empty = out.is_dir()
            && std::fs::read_dir(out)
                .with_context(|| format!("--out {}", out.display()))?
                .next()
                .is_none();
        if !empty {
            bail!(
                "--out {}: exists and is not empty; a review starts in a new folder \
                 (an earlier review stays as it is)",
                out.display()
            );
        }
    }
    // Everything is written beside the folder and renamed onto it at the
    // end: a review folder is whole, or absent.
    let building = AtomicPath::new(out).with_context(|| format!("--out {}", out.display()))?;
    let dir = building.temp().to_path_buf();
    std::fs::create_dir_all(dir.join(REVIEWS))
        .with_context(|| format!("--out {}", out.display()))?;
    let roster = match &options.roster {
        Some(path) => {
            // Checked before anything is fetched; frozen as given.
            crate::roster::read(path).at("--roster")?;
            std::fs::copy(path, dir.join(ROSTER)).with_context(|| {
                format!("--roster {}: copying it into the review", path.display())
            })?;
            Some(dir.join(ROSTER))
        }
        None => None,
    };
    let started_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let export = ExportOptions {
        out: dir.join(SNAPSHOT),
        tables: Some(TABLES.iter().map(|t| t.to_string()).collect()),
        since: None,
    };
    export_orgs(orgs, &export, log)
        .await
        .at("review start: freezing the organization")?;
    let frozen = frozen_rows(&dir, options.by, roster.as_deref()).await?;
    let mut by_scope: BTreeMap<&str, Vec<&Vec<String>>> = BTreeMap::new();
    for row in &frozen.rows {
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
        let path = format!("{REVIEWS}/{stem}.csv");
        write_csv(&dir.join(&path), &frozen.columns, rows)?;
        if options.pages == Pages::Html {
            let page = dir.join(format!("{REVIEWS}/{stem}.html"));
            write_page(&page, scope, &started_at, &frozen.columns, rows)?;
        }
        files.push(ReviewFile {
            path,
            scope: scope.to_string(),
            rows: rows.len(),
        });
    }
    let review = Review {
        started_at,
        by: options.by,
        org: orgs.ids().join(", "),
        source: options.source.clone(),
        orgsql_version: env!("CARGO_PKG_VERSION").to_string(),
        snapshot: SNAPSHOT.to_string(),
        roster: roster.map(|_| ROSTER.to_string()),
        files,
    };
    let text = serde_json::to_string_pretty(&review)?;
    std::fs::write(dir.join(REVIEW_JSON), format!("{text}\n"))
        .with_context(|| format!("--out {}", out.display()))?;
    building
        .commit()
        .with_context(|| format!("--out {}: putting the review in place", out.display()))?;
    Ok(review)
}

fn write_csv(path: &Path, columns: &[String], rows: &[&Vec<String>]) -> Result<()> {
    let mut writer = csv::Writer::from_path(path).with_context(|| path.display().to_string())?;
    let mut header: Vec<&str> = columns.iter().map(String::as_str).collect();
    header.extend([DECISION, JUSTIFICATION]);
    writer.write_record(&header)?;
    for row in rows {
        let mut record: Vec<String> = row.iter().map(|v| cell(v)).collect();
        record.extend([String::new(), String::new()]);
        writer.write_record(&record)?;
    }
    writer.flush().with_context(|| path.display().to_string())?;
    Ok(())
}

/// One scope's rows as a page to read or print: no script, nothing fetched.
fn write_page(
    path: &Path,
    scope: &str,
    started_at: &str,
    columns: &[String],
    rows: &[&Vec<String>],
) -> Result<()> {
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
         file beside this page (decision: keep or revoke), then run <code>orgsql review \
         verify</code>.</p>\n<table><tr>",
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
    std::fs::write(path, page).with_context(|| path.display().to_string())
}

/// A review folder's `review.json`.
pub fn read_review(dir: &Path) -> Result<Review> {
    let path = dir.join(REVIEW_JSON);
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "{}: is {} a folder written by `orgsql review start`?",
            path.display(),
            dir.display()
        )
    })?;
    serde_json::from_str(&text).with_context(|| format!("{}: not a review record", path.display()))
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

/// The line a record starts on. The csv crate's own count is one short in
/// files with CRLF line ends (as spreadsheets save them).
fn line_at(text: &[u8], position: Option<&csv::Position>) -> u64 {
    let mut start = position.map_or(0, |p| p.byte() as usize).min(text.len());
    // After a CR, the crate starts the next record at the LF before it.
    while text.get(start).is_some_and(|b| *b == b'\r' || *b == b'\n') {
        start += 1;
    }
    1 + text[..start].iter().filter(|b| **b == b'\n').count() as u64
}

/// A decided row: where it is, what was decided.
struct Decided {
    file: String,
    line: u64,
    revoke: bool,
    who: String,
    what: String,
}

/// What a verify found wrong with the review files: nothing is judged then.
#[derive(Debug, thiserror::Error)]
#[error("{} problem(s) in the review at {dir}; nothing was verified", problems.len())]
pub struct Refused {
    pub dir: String,
    pub problems: Vec<String>,
}

/// Read every review file back against the frozen rows. Each row must be
/// a frozen grant, once, with its evidence unchanged and a decision.
async fn decisions(dir: &Path, review: &Review) -> Result<BTreeMap<Vec<String>, Decided>> {
    let snapshot = dir.join(&review.snapshot);
    let mut problems: Vec<String> = crate::snapshot::tampered(&snapshot)
        .at(&snapshot.display().to_string())?
        .into_iter()
        .map(|p| format!("{}: {p}", snapshot.display()))
        .collect();
    if !problems.is_empty() {
        return Err(Refused {
            dir: dir.display().to_string(),
            problems,
        }
        .into());
    }
    let roster = review.roster.as_ref().map(|r| dir.join(r));
    let frozen = frozen_rows(dir, review.by, roster.as_deref()).await?;
    let key_at: Vec<usize> = KEY
        .iter()
        .map(|k| frozen.columns.iter().position(|c| c == k))
        .collect::<Option<_>>()
        .context("the review's columns lack its key")?;
    let key_of =
        |row: &[String]| -> Vec<String> { key_at.iter().map(|&i| row[i].clone()).collect() };
    let mut expected: BTreeMap<Vec<String>, &Vec<String>> = BTreeMap::new();
    for row in &frozen.rows {
        expected.insert(key_of(row), row);
    }
    let mut header: Vec<String> = frozen.columns.clone();
    header.extend([DECISION.to_string(), JUSTIFICATION.to_string()]);
    let column = |name: &str| frozen.columns.iter().position(|c| c == name);
    let (email, role, workspace) = (column("email"), column("role"), column("workspace"));
    let mut decided: BTreeMap<Vec<String>, Decided> = BTreeMap::new();
    for file in &review.files {
        let path = dir.join(&file.path);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) => {
                problems.push(format!("{}: {e}", file.path));
                continue;
            }
        };
        let text = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
        let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(text);
        let found: Vec<String> = match reader.headers() {
            Ok(h) => h.iter().map(|c| c.trim().to_string()).collect(),
            Err(e) => {
                problems.push(format!("{}:1: {e}", file.path));
                continue;
            }
        };
        if found != header {
            problems.push(format!(
                "{}:1: the columns are not the review's ({}); only decision and \
                 justification may be filled in",
                file.path,
                header.join(",")
            ));
            continue;
        }
        let mut seen = 0;
        let mut undecided = Vec::new();
        for record in reader.records() {
            let record = match record {
                Ok(record) => record,
                Err(e) => {
                    let line = line_at(text, e.position());
                    problems.push(format!("{}:{line}: {e}", file.path));
                    continue;
                }
            };
            let line = line_at(text, record.position());
            let at = |what: String| format!("{}:{line}: {what}", file.path);
            if record.iter().all(|v| v.trim().is_empty()) {
                continue;
            }
            if record.len() != header.len() {
                problems.push(at(format!(
                    "{} cells where the header has {}",
                    record.len(),
                    header.len()
                )));
                continue;
            }
            let values: Vec<String> = record.iter().map(|v| v.trim().to_string()).collect();
            let evidence = &values[..frozen.columns.len()];
            let key: Vec<String> = key_at
                .iter()
                .map(|&i| uncell(&evidence[i]).to_string())
                .collect();
            let Some(row) = expected.get(&key) else {
                problems.push(at(format!(
                    "no such grant in the frozen review ({}); rows cannot be added or their \
                     keys edited",
                    key.join(" / ")
                )));
                continue;
            };
            if let Some((i, _)) = evidence
                .iter()
                .zip(row.iter())
                .enumerate()
                .find(|(_, (got, want))| *got != cell(want).trim())
            {
                problems.push(at(format!(
                    "{} is {:?}, but the frozen snapshot says {:?}; evidence cannot be edited",
                    frozen.columns[i],
                    evidence[i],
                    cell(&row[i])
                )));
                continue;
            }
            if row[0] != file.scope {
                problems.push(at(format!(
                    "this grant belongs to {:?}, not to this file's {:?}",
                    row[0], file.scope
                )));
                continue;
            }
            let decision = values[frozen.columns.len()].to_lowercase();
            let revoke = match decision.as_str() {
                "keep" => false,
                "revoke" => true,
                "" => {
                    undecided.push(line);
                    continue;
                }
                other => {
                    problems.push(at(format!("decision {other:?} is neither keep nor revoke")));
                    continue;
                }
            };
            let pick = |i: Option<usize>| i.map(|i| row[i].clone()).unwrap_or_default();
            let who = match pick(email) {
                e if e.is_empty() => key[1].clone(),
                e => e,
            };
            let entry = Decided {
                file: file.path.clone(),
                line,
                revoke,
                who,
                what: format!("{} on {}", pick(role), pick(workspace)),
            };
            if let Some(first) = decided.insert(key.clone(), entry) {
                problems.push(at(format!(
                    "the same grant is on {}:{}",
                    first.file, first.line
                )));
                continue;
            }
            seen += 1;
        }
        if !undecided.is_empty() {
            problems.push(format!(
                "{}:{}: no decision (keep or revoke) on {} row(s): line {}",
                file.path,
                undecided[0],
                undecided.len(),
                lines(&undecided)
            ));
        }
        let missing = file.rows.saturating_sub(seen + undecided.len());
        if missing > 0
            && !problems
                .iter()
                .any(|p| p.starts_with(&format!("{}:", file.path)))
        {
            problems.push(format!(
                "{}: {missing} of its {} grants are missing; every frozen grant needs a decision",
                file.path, file.rows
            ));
        }
    }
    if !problems.is_empty() {
        return Err(Refused {
            dir: dir.display().to_string(),
            problems,
        }
        .into());
    }
    Ok(decided)
}

/// The three things a verify judges, as controls a report can show.
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
        sql: String::new(),
        source: "orgsql review verify".to_string(),
    }
}

/// What `review verify` found, as `check` results, and the summary's counts.
pub struct Verified {
    pub results: Vec<Checked>,
    pub review: Review,
}

/// `orgsql review verify DIR`: the files read back and checked, then the
/// decisions judged against `now` (the live organization, or a snapshot,
/// named by `against`). Writes `summary.md` into the folder.
pub async fn verify(dir: &Path, now: &SessionContext, against: &str) -> Result<Verified> {
    let review = read_review(dir)?;
    let decided = decisions(dir, &review).await?;
    let current = text_rows(now, CURRENT_SQL, against).await?;
    let mut present: BTreeMap<Vec<String>, (String, String)> = BTreeMap::new();
    for row in current.rows {
        let key = row[..4].to_vec();
        present.insert(key, (row[4].clone(), row[5].clone()));
    }
    let started = chrono::DateTime::parse_from_rfc3339(&review.started_at)
        .map(|t| t.to_utc())
        .with_context(|| format!("{}: started_at", dir.join(REVIEW_JSON).display()))?;
    let days = (chrono::Utc::now() - started).num_days();
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
            (true, true) => revokes.push(finding(
                name,
                "alarm",
                format!(
                    "Revoke decided ({place}) and still in effect {days} day(s) after the review started"
                ),
            )),
            (true, false) => revokes.push(finding(name, "ok", format!("Revoked as decided ({place})"))),
            (false, false) => gone.push(finding(
                name,
                "info",
                format!("Kept in the review ({place}) and gone now without a revoke decision"),
            )),
            (false, true) => {}
        }
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
    let judged = |control: Control, mut findings: Vec<Finding>| {
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
            resolved: None,
            error: None,
            skipped: None,
            sql: String::new(),
        }
    };
    let results = vec![
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
    write_summary(dir, &review, &decided, &results, against)?;
    Ok(Verified { results, review })
}

/// `summary.md` beside the files: what was reviewed, by whom (file),
/// what was decided, and what the verify found.
fn write_summary(
    dir: &Path,
    review: &Review,
    decided: &BTreeMap<Vec<String>, Decided>,
    results: &[Checked],
    against: &str,
) -> Result<()> {
    use super::output::visible;
    let cell = |s: &str| visible(s).replace('|', "\\|");
    let mut text = String::new();
    text.push_str("# Access review summary\n\n");
    text.push_str(&format!(
        "- Organization: {}\n- Started: {} (orgsql {}), a file per {}\n- Source: {}\n- Verified: {} against {}\n\n",
        cell(&review.org),
        review.started_at,
        review.orgsql_version,
        format!("{:?}", review.by).to_lowercase(),
        cell(&review.source),
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        cell(against)
    ));
    text.push_str("| file | scope | grants | keep | revoke |\n|---|---|---|---|---|\n");
    for file in &review.files {
        let of = |revoke: bool| {
            decided
                .values()
                .filter(|d| d.file == file.path && d.revoke == revoke)
                .count()
        };
        text.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            cell(&file.path),
            cell(&file.scope),
            file.rows,
            of(false),
            of(true)
        ));
    }
    text.push_str("\n## Findings\n\n");
    for result in results {
        let count = |status: &str| {
            result
                .findings
                .iter()
                .filter(|f| f.status == status)
                .count()
        };
        text.push_str(&format!(
            "### {} `{}`\n\n{} alarm(s), {} ok, {} info\n\n",
            cell(&result.control.title),
            result.control.id,
            count("alarm"),
            count("ok"),
            count("info")
        ));
        for f in &result.findings {
            text.push_str(&format!(
                "- {} {}: {}\n",
                f.status,
                cell(&f.resource),
                cell(&f.reason)
            ));
        }
        text.push('\n');
    }
    let path = dir.join(SUMMARY);
    super::files::write_atomically(&path, |mut file| {
        file.write_all(text.as_bytes())
            .map_err(super::files::io_at(&path))
    })
    .at(SUMMARY)
}
