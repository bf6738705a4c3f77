//! `orgsql check`: run the compliance pack (`queries/*.sql`, built in, plus a
//! user's own with `--dir`) and report which controls pass and which alarm.
//!
//! A control is one SELECT whose first three columns are `resource`, `status`
//! ('alarm', 'ok' or 'info') and `reason`; it passes when no row alarms. Its
//! file starts with a header: `-- id:`, `-- title:`, `-- severity:`,
//! `-- rationale:`, `-- remediation:`, `-- frameworks:` (the framework
//! controls it gives evidence for, `soc2:CC6.1, iso27001:A.5.18, ...`), and a
//! `-- param: NAME TYPE DEFAULT DESCRIPTION` line per parameter, which the SQL
//! uses as `${NAME}`. `-- requires: roster` names tables a session has only
//! when asked for (`--roster`): without them the control is skipped, saying why.
//! `-- population:` names what the control judges (`active users`) and
//! `-- population-sql:` counts it, so a report says "54 of 225 active users".

pub mod as_of;
pub mod command;
pub mod envelope;
pub mod json;
mod report;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use datafusion::arrow::array::RecordBatch;
use datafusion::prelude::SessionContext;
use serde::{Deserialize, Serialize};

pub use envelope::Envelope;
pub use report::{Report, write_report};
pub(crate) use report::{
    h as escape_html, html_section_head, junit_testcase, md as escape_markdown,
};

mod pack {
    include!(concat!(env!("OUT_DIR"), "/pack.rs"));
}

/// The frameworks a control can give evidence for: the key the header and
/// `--framework` use, and the name reports print.
pub const FRAMEWORKS: [(&str, &str); 4] = [
    ("soc2", "SOC 2 Trust Services Criteria (2017)"),
    ("iso27001", "ISO/IEC 27001:2022 Annex A"),
    ("nist800-53", "NIST SP 800-53 rev. 5"),
    ("cis", "CIS Controls v8"),
];

/// A framework control a control gives evidence for, e.g. `soc2:CC6.1`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Reference {
    pub framework: String,
    pub control: String,
}

/// A parameter a control declares.
#[derive(Debug, Clone, Serialize)]
pub struct Param {
    pub name: String,
    pub kind: Kind,
    pub default: String,
    pub description: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Integer,
    Number,
    Text,
}

impl Kind {
    fn check(self, value: &str) -> bool {
        match self {
            Kind::Integer => value.parse::<i64>().is_ok(),
            Kind::Number => value.parse::<f64>().is_ok_and(f64::is_finite),
            Kind::Text => true,
        }
    }
}

/// One control of the pack.
#[derive(Debug, Clone, Serialize)]
pub struct Control {
    pub id: String,
    pub title: String,
    pub severity: String,
    pub rationale: String,
    pub remediation: String,
    pub frameworks: Vec<Reference>,
    #[serde(skip)]
    pub params: Vec<Param>,
    /// Tables it needs that a session may not have (`roster`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub requires: Vec<String>,
    /// What it judges, and the SQL that counts it (parameters as `${NAME}`).
    #[serde(skip)]
    pub population: Option<(String, String)>,
    /// The SQL as written (parameters as `${NAME}`).
    #[serde(skip)]
    pub sql: String,
    /// Where it was read from (a built-in file name or a path).
    #[serde(skip)]
    pub source: String,
    /// `-- as-of: grants`: it judges only grants (`user_role_assignments`,
    /// reading `users` for names), so `check --as-of TIME` judges it on
    /// `grants_at(TIME)`; any other control is not evaluated as of a past time.
    #[serde(skip)]
    pub as_of_grants: bool,
}

/// The keys of a control's header, `-- key: value`.
const HEADER_KEYS: [&str; 11] = [
    "id",
    "title",
    "severity",
    "rationale",
    "remediation",
    "frameworks",
    "param",
    "requires",
    "population",
    "population-sql",
    "as-of",
];

pub const SEVERITIES: [&str; 4] = ["critical", "high", "medium", "low"];

impl Control {
    /// Read a control file; `source` names it in errors.
    pub fn parse(source: &str, text: &str) -> Result<Self, String> {
        let lines = || {
            text.lines()
                .map(str::trim)
                .take_while(|l| l.starts_with("--") || l.is_empty())
        };
        let header = |key: &str| -> Result<String, String> {
            let prefix = format!("-- {key}:");
            lines()
                .find_map(|line| line.strip_prefix(&prefix).map(|v| v.trim().to_string()))
                .filter(|v| !v.is_empty())
                .ok_or_else(|| format!("{source}: no `-- {key}:` line in the header"))
        };
        // Optional for a user's own controls; every built-in one has them.
        let frameworks = header("frameworks")
            .unwrap_or_default()
            .split(',')
            .filter(|r| !r.trim().is_empty())
            .map(|reference| {
                let (framework, control) = reference.trim().split_once(':').ok_or_else(|| {
                    format!("{source}: framework reference {reference:?} is not FRAMEWORK:CONTROL")
                })?;
                if !FRAMEWORKS.iter().any(|(key, _)| *key == framework) {
                    return Err(format!(
                        "{source}: framework {framework:?} is not one of {}",
                        framework_keys()
                    ));
                }
                Ok(Reference {
                    framework: framework.to_string(),
                    control: control.trim().to_string(),
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let params = lines()
            .filter_map(|line| line.strip_prefix("-- param:"))
            .map(|spec| parse_param(source, spec))
            .collect::<Result<Vec<_>, _>>()?;
        let requires: Vec<String> = header("requires")
            .unwrap_or_default()
            .split(',')
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .collect();
        // Only a table a flag adds may be missing with a skip; any other
        // missing table is an error (the control cannot run), never a pass.
        if let Some(other) = requires
            .iter()
            .find(|t| !REQUIREMENTS.iter().any(|(name, ..)| name == t))
        {
            return Err(format!(
                "{source}: `-- requires: {other}`: only {} can be required (what a flag or the \
                 configuration adds)",
                REQUIREMENTS.map(|(name, ..)| name).join(", ")
            ));
        }
        // The count may wrap over several `-- population-sql:` lines.
        let population_sql = lines()
            .filter_map(|line| line.strip_prefix("-- population-sql:"))
            .map(str::trim)
            .collect::<Vec<_>>()
            .join(" ");
        let population = match (header("population").ok(), population_sql.is_empty()) {
            (Some(noun), false) => Some((noun, population_sql)),
            (None, true) => None,
            _ => {
                return Err(format!(
                    "{source}: `-- population:` (what the control judges) and \
                     `-- population-sql:` (the SQL that counts it) go together"
                ));
            }
        };
        let as_of_grants = match header("as-of").ok().as_deref() {
            None => false,
            Some("grants") => true,
            Some(other) => {
                return Err(format!(
                    "{source}: `-- as-of: {other}`: the one kind is `grants` (the control judges \
                     only user_role_assignments, and users for names)"
                ));
            }
        };
        let control = Control {
            id: header("id")?,
            title: header("title")?,
            severity: header("severity")?.to_lowercase(),
            rationale: header("rationale")?,
            remediation: header("remediation")?,
            frameworks,
            params,
            requires,
            population,
            sql: text.to_string(),
            source: source.to_string(),
            as_of_grants,
        };
        if !SEVERITIES.contains(&control.severity.as_str()) {
            return Err(format!(
                "{source}: severity {:?} is not one of {}",
                control.severity,
                SEVERITIES.join(", ")
            ));
        }
        // Every `${NAME}` the SQL uses is declared.
        for name in placeholders(&control.sql) {
            if !control.params.iter().any(|p| p.name == name) {
                return Err(format!(
                    "{source}: the SQL uses ${{{name}}} but the header declares no such parameter"
                ));
            }
        }
        Ok(control)
    }

    /// The SQL with each parameter's value (a value of `values`, else its
    /// default) in place of `${NAME}`; the values used, by name.
    pub fn bound_sql(&self, values: &BTreeMap<String, String>) -> (String, Vec<Applied>) {
        let applied: Vec<Applied> = self
            .params
            .iter()
            .map(|param| Applied {
                name: param.name.clone(),
                value: values.get(&param.name).unwrap_or(&param.default).clone(),
                default: param.default.clone(),
            })
            .collect();
        (bind(&self.statement(), &applied), applied)
    }

    /// The SQL without its header lines (comments of its own stay).
    fn statement(&self) -> String {
        let is_header = |line: &str| {
            HEADER_KEYS.iter().any(|key| {
                line.trim()
                    .strip_prefix("-- ")
                    .and_then(|rest| rest.strip_prefix(key))
                    .is_some_and(|rest| rest.starts_with(':'))
            })
        };
        let mut lines = self.sql.lines().peekable();
        while lines
            .next_if(|line| is_header(line) || line.trim().is_empty())
            .is_some()
        {}
        lines.collect::<Vec<_>>().join("\n")
    }
}

/// `sql` with each parameter's value in place of `${NAME}`. Values were
/// checked against their kind; text is kept inside the SQL's own quotes.
fn bind(sql: &str, values: &[Applied]) -> String {
    let mut sql = sql.to_string();
    for param in values {
        sql = sql.replace(
            &format!("${{{}}}", param.name),
            &param.value.replace('\'', "''"),
        );
    }
    sql
}

fn framework_keys() -> String {
    FRAMEWORKS
        .iter()
        .map(|(key, _)| *key)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `NAME TYPE DEFAULT DESCRIPTION`.
fn parse_param(source: &str, spec: &str) -> Result<Param, String> {
    let mut words = spec.split_whitespace();
    let (Some(name), Some(kind), Some(default)) = (words.next(), words.next(), words.next()) else {
        return Err(format!(
            "{source}: `-- param:` takes NAME TYPE DEFAULT DESCRIPTION, got {spec:?}"
        ));
    };
    let kind = match kind {
        "integer" => Kind::Integer,
        "number" => Kind::Number,
        "text" => Kind::Text,
        other => {
            return Err(format!(
                "{source}: parameter {name}: type {other:?} is not integer, number or text"
            ));
        }
    };
    if !kind.check(default) {
        return Err(format!(
            "{source}: parameter {name}: default {default:?} is not a {kind:?}"
        ));
    }
    Ok(Param {
        name: name.to_string(),
        kind,
        default: default.to_string(),
        description: words.collect::<Vec<_>>().join(" "),
    })
}

/// The `${NAME}` placeholders of a text.
fn placeholders(sql: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = sql;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        match after.find('}') {
            Some(end) => {
                names.insert(after[..end].to_string());
                rest = &after[end + 1..];
            }
            None => break,
        }
    }
    names
}

/// The built-in pack, then the `.sql` files of `dir`; ids must be unique.
pub fn load(dir: Option<&Path>) -> Result<Vec<Control>, String> {
    load_from(pack::PACK, dir, "--dir")
}

/// The files of `built_in` (name, text), then the `.sql` files of `dir`
/// (the flag that names it, for errors); ids must be unique. Also reads
/// `orgsql watch`'s rules, which are written in the same format.
pub fn load_from(
    built_in: &[(&str, &str)],
    dir: Option<&Path>,
    flag: &str,
) -> Result<Vec<Control>, String> {
    let mut controls = built_in
        .iter()
        .map(|(name, text)| Control::parse(name, text))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(dir) = dir {
        let mut paths: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| format!("{flag} {}: {e}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "sql"))
            .collect();
        paths.sort();
        for path in paths {
            let text =
                std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            controls.push(Control::parse(&path.display().to_string(), &text)?);
        }
    }
    for (i, control) in controls.iter().enumerate() {
        if let Some(other) = controls[..i].iter().find(|c| c.id == control.id) {
            return Err(format!(
                "id {} is used twice: {} and {}",
                control.id, other.source, control.source
            ));
        }
    }
    Ok(controls)
}

/// What `--controls` and `--framework` keep (of the latter, only its
/// references).
pub struct Selection<'a> {
    pub ids: &'a [String],
    pub framework: Option<&'a str>,
}

/// Keep the controls named in `--controls` and mapped to `--framework`; an
/// unknown id or framework is an error.
pub fn select(controls: Vec<Control>, selection: &Selection) -> Result<Vec<Control>, String> {
    for id in selection.ids {
        if !controls.iter().any(|c| &c.id == id) {
            return Err(format!(
                "--controls: no control {id}; `orgsql check --list` shows them"
            ));
        }
    }
    if let Some(framework) = selection.framework
        && !FRAMEWORKS.iter().any(|(key, _)| *key == framework)
    {
        return Err(format!(
            "--framework {framework}: use one of {}",
            framework_keys()
        ));
    }
    Ok(controls
        .into_iter()
        .filter(|c| selection.ids.is_empty() || selection.ids.contains(&c.id))
        .filter_map(|mut c| {
            // A run for one framework names only that framework's controls.
            if let Some(f) = selection.framework {
                c.frameworks.retain(|r| r.framework == f);
                if c.frameworks.is_empty() {
                    return None;
                }
            }
            Some(c)
        })
        .collect())
}

/// `--param NAME=VALUE`, checked against the selected controls: every name is
/// a parameter of one of them, and every value fits its type.
pub fn parameters(
    controls: &[Control],
    specs: &[String],
) -> Result<BTreeMap<String, String>, String> {
    let mut values = BTreeMap::new();
    for spec in specs {
        let (name, value) = spec
            .split_once('=')
            .filter(|(name, _)| !name.is_empty())
            .ok_or_else(|| format!("--param {spec}: use NAME=VALUE, e.g. inactive_days=60"))?;
        let declared: Vec<&Param> = controls
            .iter()
            .flat_map(|c| &c.params)
            .filter(|p| p.name == name)
            .collect();
        if declared.is_empty() {
            let mut known: Vec<&str> = controls
                .iter()
                .flat_map(|c| c.params.iter().map(|p| p.name.as_str()))
                .collect();
            known.sort_unstable();
            known.dedup();
            return Err(format!(
                "--param {name}: no selected control takes it; they take {}",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ));
        }
        if let Some(param) = declared.iter().find(|p| !p.kind.check(value)) {
            return Err(format!(
                "--param {name}={value}: {name} is {}: {value:?} is not one",
                match param.kind {
                    Kind::Integer => "an integer",
                    Kind::Number => "a number",
                    Kind::Text => "text",
                }
            ));
        }
        values.insert(name.to_string(), value.to_string());
    }
    Ok(values)
}

/// One judged resource.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Finding {
    pub resource: String,
    pub status: String,
    pub reason: String,
    /// With `--baseline`: whether an alarm is new since then or still open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Since>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Since {
    New,
    Open,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pass,
    Alarm,
    Error,
    /// A table it requires is not in the session (no `--roster`).
    Skipped,
}

/// A parameter's value in a run.
#[derive(Debug, Clone, Serialize)]
pub struct Applied {
    pub name: String,
    pub value: String,
    pub default: String,
}

/// What a control judged, and how many there were: "225 active users".
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Population {
    pub of: String,
    pub count: u64,
    /// The SQL that counted it (parameters in place), for the evidence report.
    #[serde(skip)]
    pub sql: String,
}

/// A control's result.
#[derive(Debug, Clone, Serialize)]
pub struct Checked {
    #[serde(flatten)]
    pub control: Control,
    /// The organization it ran on, when the run covers several.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org_id: Option<String>,
    pub outcome: Outcome,
    pub findings: Vec<Finding>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<Applied>,
    /// What the control judged, counted (when it declares it and ran).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub population: Option<Population>,
    /// With `--baseline`: resources that alarmed then and do not now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Why it did not run (`Skipped`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    /// The SQL that ran (parameters in place), for the evidence report.
    #[serde(skip)]
    pub sql: String,
}

impl Checked {
    /// A control that did not run, and why (its SQL and parameters kept for
    /// the evidence report).
    pub fn skipped(control: Control, values: &BTreeMap<String, String>, why: String) -> Self {
        let (sql, parameters) = control.bound_sql(values);
        Checked {
            control,
            org_id: None,
            outcome: Outcome::Skipped,
            findings: Vec::new(),
            parameters,
            population: None,
            resolved: None,
            error: None,
            skipped: Some(why),
            sql,
        }
    }

    pub fn alarms(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.status == "alarm")
    }

    /// The rows that do not alarm: `ok` and `info`.
    pub fn others(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.status != "alarm")
    }

    /// "54 of 225 active users" alarmed, when the control counts its
    /// population.
    pub fn population_line(&self) -> Option<String> {
        self.population
            .as_ref()
            .map(|p| format!("{} of {} {}", self.alarms().count(), p.count, p.of))
    }

    /// "7 ok, 1 info": the rows that do not alarm, by status.
    pub fn others_line(&self) -> Option<String> {
        let count = |status: &str| self.findings.iter().filter(|f| f.status == status).count();
        let parts: Vec<String> = ["ok", "info"]
            .into_iter()
            .map(|status| (status, count(status)))
            .filter(|(_, n)| *n > 0)
            .map(|(status, n)| format!("{n} {status}"))
            .collect();
        (!parts.is_empty()).then(|| parts.join(", "))
    }

    /// The control's id, and its organization's when the run covers several.
    pub fn key(&self) -> String {
        key(&self.control.id, self.org_id.as_deref())
    }

    /// How reports name it: `id`, or `id (org <org id>)`.
    pub fn name(&self) -> String {
        match &self.org_id {
            Some(org) => format!("{} (org {org})", self.control.id),
            None => self.control.id.clone(),
        }
    }
}

/// `org/control`, or the control alone.
fn key(control: &str, org: Option<&str>) -> String {
    match org {
        Some(org) => format!("{org}/{control}"),
        None => control.to_string(),
    }
}

/// What a control may require (`-- requires:`), what that is, and how a
/// user provides it: the tables a flag adds, and `scim` (a SCIM token).
pub const REQUIREMENTS: [(&str, &str, &str); 3] = [
    (
        crate::roster::TABLE,
        "the table roster",
        "give an HR roster with --roster people.csv",
    ),
    (
        crate::idp::USERS,
        "the table idp_users",
        "give an identity provider export with --idp users.csv",
    ),
    (
        "scim",
        "a SCIM directory token",
        "add [connections.NAME.scim.\"<directory id>\"] with token_env, token_file or \
         token_command to the config file",
    ),
];

/// Whether the session has what `required` names: the table, or for
/// `scim` a `scim_users` table that a SCIM token can read (one listing's
/// first page, which the control then reads from the session cache).
async fn available(ctx: &SessionContext, required: &str) -> bool {
    if required != "scim" {
        return ctx.table_exist(required).unwrap_or(false);
    }
    if !ctx.table_exist("scim_users").unwrap_or(false) {
        return false;
    }
    let probe = match ctx.sql("SELECT scim_id FROM scim_users LIMIT 1").await {
        Ok(frame) => frame.collect().await,
        Err(e) => Err(e),
    };
    match probe {
        Ok(_) => true,
        // Any other failure is the control's to report, not a skip.
        Err(e) => !matches!(
            e.find_root(),
            datafusion::error::DataFusionError::External(inner)
                if matches!(inner.downcast_ref::<crate::api::ApiError>(), Some(crate::api::ApiError::NoScimToken { .. }))
        ),
    }
}

/// Run every control with the parameter values given (defaults elsewhere); a
/// failing control is an `Error` outcome, not a stop.
pub async fn run_controls(
    ctx: &SessionContext,
    controls: Vec<Control>,
    values: &BTreeMap<String, String>,
) -> Vec<Checked> {
    let mut results = Vec::new();
    for control in controls {
        let (sql, parameters) = control.bound_sql(values);
        let mut missing = None;
        for required in &control.requires {
            if !available(ctx, required).await {
                missing = Some(required.clone());
                break;
            }
        }
        if let Some(table) = missing {
            let (what, how) = REQUIREMENTS
                .iter()
                .find(|(name, ..)| *name == table)
                .map_or(("", ""), |(_, what, how)| (*what, *how));
            results.push(Checked::skipped(
                control,
                values,
                format!("needs {what}: {how}"),
            ));
            continue;
        }
        let judged = match findings(ctx, &control, &sql).await {
            Ok(findings) => population(ctx, &control, &parameters)
                .await
                .map(|population| (findings, population)),
            Err(e) => Err(e),
        };
        let (outcome, findings, population, error) = match judged {
            Ok((findings, population)) if findings.iter().any(|f| f.status == "alarm") => {
                (Outcome::Alarm, findings, population, None)
            }
            Ok((findings, population)) => (Outcome::Pass, findings, population, None),
            Err(e) => (Outcome::Error, Vec::new(), None, Some(e)),
        };
        results.push(Checked {
            control,
            org_id: None,
            outcome,
            findings,
            parameters,
            population,
            resolved: None,
            error,
            skipped: None,
            sql,
        });
    }
    results
}

async fn findings(
    ctx: &SessionContext,
    control: &Control,
    sql: &str,
) -> Result<Vec<Finding>, String> {
    let frame = crate::sql::frame(ctx, sql)
        .await
        .map_err(|e| crate::error::message(&e))?;
    let names: Vec<String> = frame
        .schema()
        .fields()
        .iter()
        .take(3)
        .map(|f| f.name().clone())
        .collect();
    if names != ["resource", "status", "reason"] {
        return Err(format!(
            "{}: the first columns must be resource, status, reason (got {})",
            control.source,
            names.join(", ")
        ));
    }
    let batches = frame
        .collect()
        .await
        .map_err(|e| crate::error::message(&e))?;
    let mut out = Vec::new();
    for batch in &batches {
        out.extend(rows(batch).map_err(|e| format!("{}: {e}", control.source))?);
    }
    if let Some(bad) = out
        .iter()
        .find(|f| !matches!(f.status.as_str(), "alarm" | "ok" | "info"))
    {
        return Err(format!(
            "{}: status {:?} is not alarm, ok or info",
            control.source, bad.status
        ));
    }
    Ok(out)
}

/// The control's population, counted by its `-- population-sql:`; a count
/// that fails fails the control (its report would not say of what).
async fn population(
    ctx: &SessionContext,
    control: &Control,
    parameters: &[Applied],
) -> Result<Option<Population>, String> {
    let Some((of, sql)) = &control.population else {
        return Ok(None);
    };
    let sql = bind(sql, parameters);
    let failed = |e: String| format!("{}: population-sql: {e}", control.source);
    let frame = crate::sql::frame(ctx, &sql)
        .await
        .map_err(|e| failed(crate::error::message(&e)))?;
    let batches = frame
        .collect()
        .await
        .map_err(|e| failed(crate::error::message(&e)))?;
    let rows = super::output::text_rows(&batches, "").map_err(|e| failed(e.to_string()))?;
    let count = match rows.as_slice() {
        [row] if row.len() == 1 => row[0].parse::<u64>().ok(),
        _ => None,
    }
    .ok_or_else(|| {
        failed("must return one row of one count, e.g. SELECT count(*) FROM users".into())
    })?;
    Ok(Some(Population {
        of: bind(of, parameters),
        count,
        sql,
    }))
}

fn rows(batch: &RecordBatch) -> Result<Vec<Finding>, String> {
    let rows =
        super::output::text_rows(std::slice::from_ref(batch), "").map_err(|e| e.to_string())?;
    Ok(rows
        .into_iter()
        .map(|mut row| {
            row.truncate(3);
            let reason = row.pop().unwrap_or_default();
            let status = row.pop().unwrap_or_default();
            let resource = row.pop().unwrap_or_default();
            Finding {
                resource,
                status,
                reason,
                since: None,
            }
        })
        .collect())
}

/// The exit status cron and CI read: 0 all pass (or alarms below the gate),
/// 1 an alarm at or above `fail_on` (any alarm when `None`), 2 an error.
pub fn exit_code(results: &[Checked], fail_on: Option<&str>) -> u8 {
    let rank = |severity: &str| SEVERITIES.iter().position(|s| *s == severity);
    let gate = fail_on.and_then(rank).unwrap_or(SEVERITIES.len() - 1);
    if results.iter().any(|r| r.outcome == Outcome::Error) {
        2
    } else if results.iter().any(|r| {
        r.outcome == Outcome::Alarm && rank(&r.control.severity).is_some_and(|s| s <= gate)
    }) {
        1
    } else {
        0
    }
}

/// What alarmed in an earlier run: control (`Checked::key`) -> resources.
pub type Alarmed = BTreeMap<String, BTreeSet<String>>;

/// A previous `check --format json` report, as what alarmed.
pub fn alarmed_in_report(path: &Path) -> Result<Alarmed, String> {
    #[derive(Deserialize)]
    struct Earlier {
        id: String,
        #[serde(default)]
        org_id: Option<String>,
        #[serde(default)]
        findings: Vec<Finding>,
    }
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("--baseline {}: {e}", path.display()))?;
    // Reports before the envelope were a bare list of results.
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Shape {
        Enveloped { results: Vec<Earlier> },
        Bare(Vec<Earlier>),
    }
    let Ok(Shape::Enveloped { results: earlier } | Shape::Bare(earlier)) =
        serde_json::from_str(&text)
    else {
        // Untagged says only "no variant matched": say what is wrong with the new shape.
        let e = serde_json::from_str::<serde_json::Value>(&text)
            .and_then(|v| {
                serde_json::from_value::<Vec<Earlier>>(v.get("results").cloned().unwrap_or(v))
            })
            .err()
            .map_or_else(String::new, |e| format!(": {e}"));
        return Err(format!(
            "--baseline {}: not a `check --format json` report{e}; give a JSON report \
             of `orgsql check` or a snapshot folder",
            path.display()
        ));
    };
    Ok(earlier
        .into_iter()
        .map(|c| {
            let alarms = c
                .findings
                .into_iter()
                .filter(|f| f.status == "alarm")
                .map(|f| f.resource)
                .collect();
            (key(&c.id, c.org_id.as_deref()), alarms)
        })
        .collect())
}

/// What alarmed in `results`.
pub fn alarmed(results: &[Checked]) -> Alarmed {
    results
        .iter()
        .map(|r| {
            let alarms = r.alarms().map(|f| f.resource.clone()).collect();
            (r.key(), alarms)
        })
        .collect()
}

/// Mark each alarm new or open against `baseline`, and list what it had
/// that is fixed now. A control the baseline did not run: all new, none fixed.
pub fn compare(results: &mut [Checked], baseline: &Alarmed) {
    for result in results {
        let before = baseline.get(&result.key());
        let now: BTreeSet<String> = result.alarms().map(|f| f.resource.clone()).collect();
        for finding in &mut result.findings {
            if finding.status == "alarm" {
                let open = before.is_some_and(|b| b.contains(&finding.resource));
                finding.since = Some(if open { Since::Open } else { Since::New });
            }
        }
        // A control that cannot run now says nothing about what is fixed.
        if !matches!(result.outcome, Outcome::Error | Outcome::Skipped) {
            result.resolved = Some(
                before
                    .map(|b| b.difference(&now).cloned().collect())
                    .unwrap_or_default(),
            );
        }
    }
}

/// `--list`: the controls, one a line, with their parameters and mappings.
pub fn list(out: &mut dyn std::io::Write, controls: &[Control]) -> std::io::Result<()> {
    use super::output::visible;
    let width = controls.iter().map(|c| c.id.len()).max().unwrap_or(0);
    for c in controls {
        writeln!(
            out,
            "{:width$}  {:8}  {}",
            visible(&c.id),
            visible(&c.severity),
            visible(&c.title)
        )?;
        let references: Vec<String> = c
            .frameworks
            .iter()
            .map(|r| format!("{}:{}", r.framework, r.control))
            .collect();
        if !references.is_empty() {
            writeln!(
                out,
                "{:width$}  {:8}  maps to {}",
                "",
                "",
                references.join(", ")
            )?;
        }
        for p in &c.params {
            writeln!(
                out,
                "{:width$}  {:8}  --param {}={} ({:?}): {}",
                "",
                "",
                visible(&p.name),
                visible(&p.default),
                p.kind,
                visible(&p.description)
            )?;
        }
    }
    Ok(())
}
