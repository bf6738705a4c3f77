//! The JSON report of `check` (and `review verify`): written, and read back
//! by `orgsql verify`, which recomputes what it states.
//!
//! `{"envelope": {...}, "summary": {...}, "results": [...]}`: each result
//! states its findings counted by status (`counts`), the summary the
//! results counted by outcome and all findings by status, and the envelope
//! the sha256 of the results as written (`results_sha256`). So one changed
//! byte in the results, or one count that disagrees with them, is found
//! offline. The envelope itself is covered only by the report's own
//! sha256, said on stderr when it is written with `--output`.

use std::io::Write;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::{Checked, Envelope, Outcome};

/// Findings counted by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub alarm: u64,
    pub ok: u64,
    pub info: u64,
}

impl Counts {
    /// The statuses counted; `Err` names one that is not alarm, ok or info.
    fn of<'a>(statuses: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        let mut counts = Counts::default();
        for status in statuses {
            match status {
                "alarm" => counts.alarm += 1,
                "ok" => counts.ok += 1,
                "info" => counts.info += 1,
                other => return Err(other.to_string()),
            }
        }
        Ok(counts)
    }

    fn add(&mut self, other: Counts) {
        self.alarm += other.alarm;
        self.ok += other.ok;
        self.info += other.info;
    }

    /// (name, this count, the other's) for each status that differs.
    fn differences(&self, other: &Counts) -> Vec<(&'static str, u64, u64)> {
        [
            ("alarm", self.alarm, other.alarm),
            ("ok", self.ok, other.ok),
            ("info", self.info, other.info),
        ]
        .into_iter()
        .filter(|(_, a, b)| a != b)
        .collect()
    }
}

/// The results in numbers, as the table's summary line says them, and every
/// finding counted by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// One per control (and organization, when the run covers several).
    pub results: u64,
    pub passed: u64,
    pub alarmed: u64,
    pub failed_to_run: u64,
    pub skipped: u64,
    pub findings: Counts,
}

impl Summary {
    fn count(&mut self, outcome: Outcome, findings: Counts) {
        self.results += 1;
        match outcome {
            Outcome::Pass => self.passed += 1,
            Outcome::Alarm => self.alarmed += 1,
            Outcome::Error => self.failed_to_run += 1,
            Outcome::Skipped => self.skipped += 1,
        }
        self.findings.add(findings);
    }

    /// (field, this count, the other's) for each field that differs.
    fn differences(&self, other: &Summary) -> Vec<(String, u64, u64)> {
        let mut found: Vec<(String, u64, u64)> = [
            ("results", self.results, other.results),
            ("passed", self.passed, other.passed),
            ("alarmed", self.alarmed, other.alarmed),
            ("failed_to_run", self.failed_to_run, other.failed_to_run),
            ("skipped", self.skipped, other.skipped),
        ]
        .into_iter()
        .filter(|(_, a, b)| a != b)
        .map(|(name, a, b)| (name.to_string(), a, b))
        .collect();
        found.extend(
            self.findings
                .differences(&other.findings)
                .into_iter()
                .map(|(name, a, b)| (format!("findings.{name}"), a, b)),
        );
        found
    }
}

/// A result as the report writes it: with its findings counted.
#[derive(Serialize)]
struct Written<'a> {
    #[serde(flatten)]
    result: &'a Checked,
    counts: Counts,
}

/// Pretty JSON text nested one level in an object, as a pretty printer
/// writes it there: every line break in JSON text is the printer's (one in
/// a string is written `\n`), so each gets the level's two spaces.
pub fn nested(value: &impl Serialize) -> serde_json::Result<String> {
    Ok(serde_json::to_string_pretty(value)?.replace('\n', "\n  "))
}

/// The JSON report. Its results are written first, as text, so that the
/// envelope can hold their sha256; the file is what a pretty printer writes
/// of the whole.
pub fn write(out: &mut dyn Write, results: &[Checked], envelope: &Envelope) -> std::io::Result<()> {
    write_with(out, envelope, &[], results)
}

/// The JSON report with more of a command's own after the envelope (review
/// verify's `title` and `review`): the results' digest does not cover them,
/// the report's own sha256 does.
pub fn write_with(
    out: &mut dyn Write,
    envelope: &Envelope,
    more: &[(&str, serde_json::Value)],
    results: &[Checked],
) -> std::io::Result<()> {
    let mut summary = Summary::default();
    let mut written = Vec::with_capacity(results.len());
    for result in results {
        // A control's statuses were checked when it ran (alarm, ok, info);
        // were another kept, it would count nowhere and verify would name it.
        let counts =
            Counts::of(result.findings.iter().map(|f| f.status.as_str())).unwrap_or_default();
        summary.count(result.outcome, counts);
        written.push(Written { result, counts });
    }
    let results_text = nested(&written)?;
    let mut envelope = envelope.clone();
    envelope.results_sha256 = Some(crate::snapshot::sha256(results_text.as_bytes()));
    write!(out, "{{\n  \"envelope\": {},\n", nested(&envelope)?)?;
    for (key, value) in more {
        writeln!(
            out,
            "  {}: {},",
            serde_json::to_string(key)?,
            nested(value)?
        )?;
    }
    writeln!(
        out,
        "  \"summary\": {},\n  \"results\": {results_text}\n}}",
        nested(&summary)?
    )
}

/// What `orgsql verify` found in a JSON report.
#[derive(Debug, Default)]
pub struct Verified {
    /// What made it: `orgsql check`, `orgsql review verify`.
    pub command: String,
    pub results: usize,
    pub findings: Counts,
    /// What was checked, a line each.
    pub checked: Vec<String>,
    /// What could not be, a line each.
    pub unchecked: Vec<String>,
    /// What is not as written, a line each. None: intact.
    pub problems: Vec<String>,
}

/// The report as `verify` reads it: the results kept as their bytes.
#[derive(Deserialize)]
struct Read<'a> {
    envelope: Envelope,
    #[serde(default)]
    summary: Option<Summary>,
    #[serde(borrow)]
    results: &'a RawValue,
    /// What else it holds (`title`, `review`): covered by no digest within.
    #[serde(flatten)]
    more: std::collections::BTreeMap<String, serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
struct ReadResult {
    id: String,
    #[serde(default)]
    org_id: Option<String>,
    outcome: Outcome,
    #[serde(default)]
    findings: Vec<ReadFinding>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    skipped: Option<String>,
    #[serde(default)]
    counts: Option<Counts>,
}

#[derive(Deserialize)]
struct ReadFinding {
    status: String,
}

/// Recompute what a JSON report (`text`, which has an envelope and results)
/// states: the results' sha256, each result's counts and outcome, and the
/// summary. `Err`: it cannot be read as a report orgsql writes, and why.
pub fn verify(text: &[u8]) -> Result<Verified, String> {
    let read: Read = serde_json::from_slice(text).map_err(|e| e.to_string())?;
    let mut verified = Verified {
        command: read.envelope.command.clone(),
        ..Verified::default()
    };
    let results_text = read.results.get();
    match &read.envelope.results_sha256 {
        Some(recorded) => {
            let found = crate::snapshot::sha256(results_text.as_bytes());
            if found == recorded.to_ascii_lowercase() {
                verified.checked.push(format!(
                    "the results' bytes: sha256 {found}, as the envelope records"
                ));
            } else {
                verified.problems.push(format!(
                    "results: not as written: their sha256 is {found} where the envelope records \
                     {recorded}"
                ));
            }
        }
        None => verified.unchecked.push(
            "the results' bytes: the envelope records no results_sha256 (a report by an earlier \
             orgsql); only their counts are checked"
                .to_string(),
        ),
    }
    let results: Vec<ReadResult> = match serde_json::from_str(results_text) {
        Ok(results) => results,
        Err(e) => {
            verified.problems.push(format!(
                "results: not the results orgsql writes ({e}): nothing in them could be counted"
            ));
            return Ok(verified);
        }
    };
    verified.results = results.len();
    let mut summary = Summary::default();
    let mut uncounted = 0;
    for result in &results {
        let name = match &result.org_id {
            Some(org) => format!("{} (org {org})", result.id),
            None => result.id.clone(),
        };
        let counts = match Counts::of(result.findings.iter().map(|f| f.status.as_str())) {
            Ok(counts) => counts,
            Err(status) => {
                verified.problems.push(format!(
                    "{name}: a finding's status is {status:?}, not alarm, ok or info"
                ));
                continue;
            }
        };
        summary.count(result.outcome, counts);
        match &result.counts {
            Some(stated) => {
                for (status, says, holds) in stated.differences(&counts) {
                    verified.problems.push(format!(
                        "{name}: counts.{status} says {says} where its findings hold {holds}"
                    ));
                }
            }
            None => uncounted += 1,
        }
        if let Some(what) = disagreement(result, counts) {
            verified.problems.push(format!("{name}: {what}"));
        }
    }
    if !read.more.is_empty() {
        let keys: Vec<&str> = read.more.keys().map(String::as_str).collect();
        verified.unchecked.push(format!(
            "{}: no digest within covers them; --sha256 of the whole report does",
            keys.join(", ")
        ));
    }
    if let (Some(snapshot), Some(digest)) = (
        &read.envelope.source.snapshot,
        &read.envelope.source.manifest_sha256,
    ) {
        verified.unchecked.push(format!(
            "the snapshot it ran on: `orgsql verify {snapshot} --sha256 {digest}` checks it"
        ));
    }
    verified.findings = summary.findings;
    let findings = summary.findings.alarm + summary.findings.ok + summary.findings.info;
    verified.checked.push(format!(
        "each result's counts and outcome against its findings ({} results, {findings} \
         findings: {} alarm, {} ok, {} info)",
        results.len(),
        summary.findings.alarm,
        summary.findings.ok,
        summary.findings.info
    ));
    if uncounted > 0 {
        verified.unchecked.push(format!(
            "{uncounted} result(s) state no counts (a report by an earlier orgsql): their \
             outcomes were checked against their findings"
        ));
    }
    match &read.summary {
        Some(stated) => {
            let before = verified.problems.len();
            for (field, says, holds) in stated.differences(&summary) {
                verified.problems.push(format!(
                    "summary: {field} says {says} where the results hold {holds}"
                ));
            }
            if verified.problems.len() == before {
                verified
                    .checked
                    .push("the summary against the results".to_string());
            }
        }
        None => verified
            .unchecked
            .push("the report states no summary (a report by an earlier orgsql)".to_string()),
    }
    Ok(verified)
}

/// How a result's outcome disagrees with its findings, error and skip, if
/// it does: it passes when no finding alarms, alarms when one does, and
/// has no findings when it could not run or was skipped.
fn disagreement(result: &ReadResult, counts: Counts) -> Option<String> {
    let findings = counts.alarm + counts.ok + counts.info;
    match result.outcome {
        Outcome::Pass if counts.alarm > 0 => Some(format!(
            "outcome pass, but {} of its findings alarm",
            counts.alarm
        )),
        Outcome::Alarm if counts.alarm == 0 => {
            Some("outcome alarm, but none of its findings alarms".to_string())
        }
        Outcome::Pass | Outcome::Alarm if result.error.is_some() || result.skipped.is_some() => {
            Some("ran, but states an error or a reason it was skipped".to_string())
        }
        Outcome::Error if result.error.is_none() || findings > 0 => {
            Some("outcome error, but it states no error, or has findings".to_string())
        }
        Outcome::Skipped if result.skipped.is_none() || findings > 0 => {
            Some("outcome skipped, but it states no reason, or has findings".to_string())
        }
        _ => None,
    }
}
