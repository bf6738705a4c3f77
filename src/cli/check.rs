//! `orgsql check`: run the compliance pack (`queries/*.sql`, built in, plus a
//! user's own with `--dir`) and report which controls pass and which alarm.
//!
//! A control is one SELECT whose first three columns are `resource`, `status`
//! ('alarm', 'ok' or 'info') and `reason`; it passes when no row alarms. Its
//! file starts with `-- id:`, `-- title:`, `-- severity:`, `-- rationale:`
//! and `-- remediation:` lines.

use std::io::Write;
use std::path::Path;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::prelude::SessionContext;
use serde::Serialize;

use super::error_message;
use super::output::visible;

mod pack {
    include!(concat!(env!("OUT_DIR"), "/pack.rs"));
}

/// One control of the pack.
#[derive(Debug, Clone, Serialize)]
pub struct Control {
    pub id: String,
    pub title: String,
    pub severity: String,
    pub rationale: String,
    pub remediation: String,
    #[serde(skip)]
    pub sql: String,
    /// Where it was read from (a built-in file name or a path).
    #[serde(skip)]
    pub source: String,
}

const SEVERITIES: [&str; 4] = ["critical", "high", "medium", "low"];

impl Control {
    /// Read a control file; `source` names it in errors.
    pub fn parse(source: &str, text: &str) -> Result<Self, String> {
        let header = |key: &str| -> Result<String, String> {
            let prefix = format!("-- {key}:");
            text.lines()
                .find_map(|line| {
                    line.trim()
                        .strip_prefix(&prefix)
                        .map(|v| v.trim().to_string())
                })
                .filter(|v| !v.is_empty())
                .ok_or_else(|| format!("{source}: no `-- {key}:` line in the header"))
        };
        let control = Control {
            id: header("id")?,
            title: header("title")?,
            severity: header("severity")?.to_lowercase(),
            rationale: header("rationale")?,
            remediation: header("remediation")?,
            sql: text.to_string(),
            source: source.to_string(),
        };
        if !SEVERITIES.contains(&control.severity.as_str()) {
            return Err(format!(
                "{source}: severity {:?} is not one of {}",
                control.severity,
                SEVERITIES.join(", ")
            ));
        }
        Ok(control)
    }
}

/// The built-in pack, then the `.sql` files of `dir`; ids must be unique.
pub fn load(dir: Option<&Path>) -> Result<Vec<Control>, String> {
    let mut controls = pack::PACK
        .iter()
        .map(|(name, text)| Control::parse(name, text))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(dir) = dir {
        let mut paths: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| format!("--dir {}: {e}", dir.display()))?
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
                "control id {} is used twice: {} and {}",
                control.id, other.source, control.source
            ));
        }
    }
    Ok(controls)
}

/// Keep the controls named in `--controls`; an unknown id is an error.
pub fn select(controls: Vec<Control>, ids: &[String]) -> Result<Vec<Control>, String> {
    if ids.is_empty() {
        return Ok(controls);
    }
    for id in ids {
        if !controls.iter().any(|c| &c.id == id) {
            return Err(format!(
                "--controls: no control {id}; `orgsql check --list` shows them"
            ));
        }
    }
    Ok(controls
        .into_iter()
        .filter(|c| ids.contains(&c.id))
        .collect())
}

/// One judged resource.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Finding {
    pub resource: String,
    pub status: String,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pass,
    Alarm,
    Error,
}

/// A control's result.
#[derive(Debug, Clone, Serialize)]
pub struct Checked {
    #[serde(flatten)]
    pub control: Control,
    pub outcome: Outcome,
    pub findings: Vec<Finding>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Checked {
    pub fn alarms(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.status == "alarm")
    }
}

/// Run every control; a failing control is an `Error` outcome, not a stop.
pub async fn run(ctx: &SessionContext, controls: Vec<Control>) -> Vec<Checked> {
    let mut results = Vec::new();
    for control in controls {
        let (outcome, findings, error) = match findings(ctx, &control).await {
            Ok(findings) if findings.iter().any(|f| f.status == "alarm") => {
                (Outcome::Alarm, findings, None)
            }
            Ok(findings) => (Outcome::Pass, findings, None),
            Err(e) => (Outcome::Error, Vec::new(), Some(e)),
        };
        results.push(Checked {
            control,
            outcome,
            findings,
            error,
        });
    }
    results
}

async fn findings(ctx: &SessionContext, control: &Control) -> Result<Vec<Finding>, String> {
    let frame = ctx.sql(&control.sql).await.map_err(|e| error_message(&e))?;
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
    let batches = frame.collect().await.map_err(|e| error_message(&e))?;
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

fn rows(batch: &RecordBatch) -> Result<Vec<Finding>, String> {
    let options = FormatOptions::default().with_null("");
    let formatters = (0..3)
        .map(|i| ArrayFormatter::try_new(batch.column(i).as_ref(), &options))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    Ok((0..batch.num_rows())
        .map(|row| Finding {
            resource: formatters[0].value(row).to_string(),
            status: formatters[1].value(row).to_string(),
            reason: formatters[2].value(row).to_string(),
        })
        .collect())
}

/// How `check` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Report {
    Table,
    Json,
    Junit,
    Markdown,
}

/// The exit status cron and CI read: 0 all pass, 1 an alarm, 2 an error.
pub fn exit_code(results: &[Checked]) -> u8 {
    if results.iter().any(|r| r.outcome == Outcome::Error) {
        2
    } else if results.iter().any(|r| r.outcome == Outcome::Alarm) {
        1
    } else {
        0
    }
}

pub fn write_report(
    out: &mut dyn Write,
    report: Report,
    results: &[Checked],
) -> std::io::Result<()> {
    match report {
        Report::Table => table(out, results),
        Report::Markdown => markdown(out, results),
        Report::Junit => junit(out, results),
        Report::Json => {
            serde_json::to_writer_pretty(&mut *out, results)?;
            writeln!(out)
        }
    }
}

fn label(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Pass => "PASS",
        Outcome::Alarm => "ALARM",
        Outcome::Error => "ERROR",
    }
}

fn summary(results: &[Checked]) -> String {
    let count = |o| results.iter().filter(|r| r.outcome == o).count();
    format!(
        "{} controls: {} passed, {} alarmed, {} failed to run",
        results.len(),
        count(Outcome::Pass),
        count(Outcome::Alarm),
        count(Outcome::Error)
    )
}

fn table(out: &mut dyn Write, results: &[Checked]) -> std::io::Result<()> {
    let width = results
        .iter()
        .map(|r| r.control.id.len())
        .max()
        .unwrap_or(0);
    for r in results {
        let c = &r.control;
        let detail = match r.outcome {
            Outcome::Alarm => format!(" ({} alarms)", r.alarms().count()),
            _ => String::new(),
        };
        writeln!(
            out,
            "{:5}  {:8}  {:width$}  {}{detail}",
            label(r.outcome),
            visible(&c.severity),
            visible(&c.id),
            visible(&c.title)
        )?;
        for finding in r.alarms() {
            writeln!(
                out,
                "         - {}: {}",
                visible(&finding.resource),
                visible(&finding.reason)
            )?;
        }
        if let Some(error) = &r.error {
            writeln!(out, "         error: {}", visible(error))?;
        }
    }
    writeln!(out, "{}", summary(results))
}

fn markdown(out: &mut dyn Write, results: &[Checked]) -> std::io::Result<()> {
    let cell = |s: &str| visible(s).replace('|', "\\|");
    writeln!(out, "| result | severity | control | alarms |")?;
    writeln!(out, "|---|---|---|---|")?;
    for r in results {
        let alarms: Vec<String> = r
            .alarms()
            .map(|f| format!("{}: {}", cell(&f.resource), cell(&f.reason)))
            .collect();
        let detail = match &r.error {
            Some(error) => cell(error),
            None => alarms.join("<br>"),
        };
        writeln!(
            out,
            "| {} | {} | `{}` {} | {detail} |",
            label(r.outcome),
            r.control.severity,
            r.control.id,
            cell(&r.control.title)
        )?;
    }
    writeln!(out, "\n{}", summary(results))
}

/// Text for XML: escaped, and with the characters XML 1.0 forbids (and
/// those a viewer would act on) shown as `visible` shows them. Line breaks
/// between findings stay.
fn xml(text: &str) -> String {
    text.split('\n')
        .map(|line| {
            visible(line)
                .chars()
                .map(|c| match c {
                    '&' => "&amp;".to_string(),
                    '<' => "&lt;".to_string(),
                    '>' => "&gt;".to_string(),
                    '"' => "&quot;".to_string(),
                    '\'' => "&apos;".to_string(),
                    c => c.to_string(),
                })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// JUnit XML: one test case per control; an alarm is a failure, a control
/// that could not run an error.
fn junit(out: &mut dyn Write, results: &[Checked]) -> std::io::Result<()> {
    let count = |o| results.iter().filter(|r| r.outcome == o).count();
    writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
    writeln!(
        out,
        r#"<testsuites name="orgsql check" tests="{}" failures="{}" errors="{}">"#,
        results.len(),
        count(Outcome::Alarm),
        count(Outcome::Error)
    )?;
    writeln!(
        out,
        r#"  <testsuite name="orgsql" tests="{}" failures="{}" errors="{}">"#,
        results.len(),
        count(Outcome::Alarm),
        count(Outcome::Error)
    )?;
    for r in results {
        let c = &r.control;
        write!(
            out,
            r#"    <testcase classname="orgsql.{}" name="{}: {}">"#,
            xml(&c.severity),
            xml(&c.id),
            xml(&c.title)
        )?;
        match r.outcome {
            Outcome::Pass => {}
            Outcome::Alarm => {
                let lines: Vec<String> = r
                    .alarms()
                    .map(|f| format!("{}: {}", f.resource, f.reason))
                    .collect();
                write!(
                    out,
                    "\n      <failure message=\"{} alarms\" type=\"{}\">{}\nRemediation: {}</failure>\n    ",
                    r.alarms().count(),
                    xml(&c.severity),
                    xml(&lines.join("\n")),
                    xml(&c.remediation)
                )?;
            }
            Outcome::Error => {
                write!(
                    out,
                    "\n      <error message=\"{}\"/>\n    ",
                    xml(r.error.as_deref().unwrap_or_default())
                )?;
            }
        }
        writeln!(out, "</testcase>")?;
    }
    writeln!(out, "  </testsuite>")?;
    writeln!(out, "</testsuites>")
}

/// `--list`: the controls, one a line.
pub fn list(out: &mut dyn Write, controls: &[Control]) -> std::io::Result<()> {
    let width = controls.iter().map(|c| c.id.len()).max().unwrap_or(0);
    for c in controls {
        writeln!(
            out,
            "{:width$}  {:8}  {}",
            visible(&c.id),
            visible(&c.severity),
            visible(&c.title)
        )?;
    }
    Ok(())
}
