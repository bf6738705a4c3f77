//! `review verify`'s report, in every format `check` has: titled as an
//! access review, with the review's fingerprint, a row per reviewer file
//! (its reviewer, decisions counted, who signed it off and when), then the
//! judgements as controls. Text from the API or a reviewer (names, emails,
//! workspace names, justifications) is escaped in every format.

use std::io::Write;

use super::{By, FileOutcome, Verified};
use crate::cli::check::{
    Checked, Envelope, Outcome, Report, escape_html as h, escape_markdown as md,
};
use crate::cli::output::visible;

/// The review's facts, as (key, label, value) rows, in one order for every
/// format.
fn facts(verified: &Verified) -> Vec<(String, String, String)> {
    let review = &verified.review;
    let files = &verified.files;
    let sum = |f: fn(&FileOutcome) -> usize| files.iter().map(f).sum::<usize>();
    let signed = files.iter().filter(|f| f.signoff.problem.is_none()).count();
    let mut facts = vec![
        (
            "review.fingerprint",
            "Fingerprint (sha256 of review.json)",
            verified.fingerprint.clone(),
        ),
        (
            "review.started",
            "Review started",
            format!(
                "{} by orgsql {}, a file per {}",
                review.started_at,
                review.orgsql_version,
                review.by.name()
            ),
        ),
        ("review.frozen_from", "Frozen from", review.source.clone()),
        (
            "review.grants",
            "Grants",
            format!(
                "{} in {} files: {} kept, {} revoked, {} undecided",
                sum(|f| f.file.rows),
                files.len(),
                sum(|f| f.keep),
                sum(|f| f.revoke),
                sum(|f| f.undecided)
            ),
        ),
        (
            "review.signed_off",
            "Signed off",
            format!("{signed} of {} files", files.len()),
        ),
        (
            "review.admin_roles",
            "Admin roles kept only with a justification",
            match review.admin_roles.is_empty() {
                true => "(none named when the review started)".to_string(),
                false => review.admin_roles.join(", "),
            },
        ),
    ];
    if let Some(line) = no_manager(verified) {
        facts.push(("review.no_manager", "People without a manager", line));
    }
    facts
        .into_iter()
        .map(|(key, label, value)| (key.to_string(), label.to_string(), value))
        .collect()
}

/// Of a review by manager: how many grants of people without a manager in
/// the roster went to a fallback reviewer, and how many to nobody.
pub fn no_manager(verified: &Verified) -> Option<String> {
    let review = &verified.review;
    if review.by != By::Manager {
        return None;
    }
    let rows = |f: &FileOutcome| f.file.rows;
    let fallback: usize = verified
        .files
        .iter()
        .filter(|f| f.file.fallback)
        .map(rows)
        .sum();
    let unowned: usize = verified
        .files
        .iter()
        .filter(|f| f.file.reviewers.is_empty())
        .map(rows)
        .sum();
    let to = match &review.fallback_reviewer {
        Some(email) => format!("the fallback reviewer {email}"),
        None => "the admins of their resource".to_string(),
    };
    Some(format!(
        "{} grants: {fallback} given to {to}, {unowned} to no reviewer{}",
        fallback + unowned,
        if unowned > 0 && review.fallback_reviewer.is_none() {
            " (no admin of their resource in the roster)"
        } else {
            ""
        }
    ))
}

/// A file's reviewer(s), marked when a fallback.
fn reviewer(file: &FileOutcome) -> String {
    let names = match file.file.reviewers.is_empty() {
        true => "(none named)".to_string(),
        false => file.file.reviewers.join(", "),
    };
    match file.file.fallback {
        true => format!("{names} (fallback)"),
        false => names,
    }
}

/// A file's sign-off in words: "ok", or what is wrong.
fn signoff(file: &FileOutcome) -> String {
    match &file.signoff.problem {
        None => format!("ok; signer checked against {}", file.signoff.checked),
        Some(problem) => format!("FAILS: {problem}"),
    }
}

/// The reviewer table: a row per file.
const COLUMNS: [&str; 10] = [
    "file",
    "scope",
    "reviewer",
    "rows",
    "keep",
    "revoke",
    "undecided",
    "signed by",
    "signed at",
    "sign-off",
];

fn row(file: &FileOutcome) -> [String; 10] {
    [
        file.file.path.clone(),
        file.file.scope.clone(),
        reviewer(file),
        file.file.rows.to_string(),
        file.keep.to_string(),
        file.revoke.to_string(),
        file.undecided.to_string(),
        file.signoff.signed_by.clone(),
        file.signoff.signed_at.clone(),
        signoff(file),
    ]
}

fn label(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Pass => "PASS",
        Outcome::Alarm => "ALARM",
        Outcome::Error => "ERROR",
        Outcome::Skipped => "SKIP",
    }
}

fn summary(results: &[Checked]) -> String {
    let count = |o| results.iter().filter(|r| r.outcome == o).count();
    format!(
        "{} judgements: {} passed, {} alarmed, {} skipped",
        results.len(),
        count(Outcome::Pass),
        count(Outcome::Alarm),
        count(Outcome::Skipped)
    )
}

/// The report's title.
fn title(envelope: &Envelope) -> String {
    format!("Access review: {}", envelope.organizations_line())
}

pub fn write_report(
    out: &mut dyn Write,
    report: Report,
    verified: &Verified,
    envelope: &Envelope,
) -> std::io::Result<()> {
    match report {
        Report::Table => table(out, verified, envelope),
        Report::Markdown => markdown(out, verified, envelope),
        Report::Junit => junit(out, verified, envelope),
        Report::Html => html(out, verified, envelope),
        Report::Json => json(out, verified, envelope),
    }
}

fn json(out: &mut dyn Write, verified: &Verified, envelope: &Envelope) -> std::io::Result<()> {
    let review = &verified.review;
    let files: Vec<serde_json::Value> = verified
        .files
        .iter()
        .map(|f| {
            serde_json::json!({
                "file": f.file.path,
                "scope": f.file.scope,
                "reviewers": f.file.reviewers,
                "fallback": f.file.fallback,
                "rows": f.file.rows,
                "keep": f.keep,
                "revoke": f.revoke,
                "undecided": f.undecided,
                "signed_by": f.signoff.signed_by,
                "signed_at": f.signoff.signed_at,
                "signoff_checked": f.signoff.checked,
                "signoff_problem": f.signoff.problem,
            })
        })
        .collect();
    let review = serde_json::json!({
        "fingerprint": verified.fingerprint,
        "started_at": review.started_at,
        "by": review.by,
        "orgs": review.orgs,
        "frozen_from": review.source,
        "admin_roles": review.admin_roles,
        "fallback_reviewer": review.fallback_reviewer,
        "no_manager": no_manager(verified),
        "files": files,
    });
    crate::cli::check::json::write_with(
        out,
        envelope,
        &[("title", title(envelope).into()), ("review", review)],
        &verified.results,
    )
}

/// For the terminal: `# `-led envelope lines (as `check`'s table), then
/// the review, its files as a table, and the judgements.
fn table(out: &mut dyn Write, verified: &Verified, envelope: &Envelope) -> std::io::Result<()> {
    for (_, label, value) in envelope.fields() {
        writeln!(out, "# {label}: {}", visible(&value))?;
    }
    writeln!(out, "{}", visible(&title(envelope)))?;
    for (_, label, value) in facts(verified) {
        writeln!(out, "{label}: {}", visible(&value))?;
    }
    writeln!(out)?;
    let rows: Vec<Vec<String>> = verified
        .files
        .iter()
        .map(|f| row(f).iter().map(|c| visible(c).into_owned()).collect())
        .collect();
    let widths: Vec<usize> = COLUMNS
        .iter()
        .enumerate()
        .map(|(i, c)| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([c.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[&str]| -> String {
        let cells: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:w$}"))
            .collect();
        cells.join("  ").trim_end().to_string()
    };
    writeln!(out, "{}", line(&COLUMNS))?;
    for r in &rows {
        let cells: Vec<&str> = r.iter().map(String::as_str).collect();
        writeln!(out, "{}", line(&cells))?;
    }
    writeln!(out)?;
    let width = verified
        .results
        .iter()
        .map(|r| r.name().len())
        .max()
        .unwrap_or(0);
    for r in &verified.results {
        let detail = match r.outcome {
            Outcome::Alarm => format!(" ({} alarms)", r.alarms().count()),
            _ => String::new(),
        };
        writeln!(
            out,
            "{:5}  {:8}  {:width$}  {}{detail}",
            label(r.outcome),
            r.control.severity,
            visible(&r.name()),
            visible(&r.control.title)
        )?;
        for f in &r.findings {
            let mark = if f.status == "alarm" { "-" } else { " " };
            writeln!(
                out,
                "         {mark} {}: {}",
                visible(&f.resource),
                visible(&f.reason)
            )?;
        }
        if let Some(why) = &r.skipped {
            writeln!(out, "         skipped: {}", visible(why))?;
        }
    }
    writeln!(out, "{}", summary(&verified.results))?;
    writeln!(out, "Data as of {}.", visible(&envelope.data_as_of))
}

pub(super) fn markdown(
    out: &mut dyn Write,
    verified: &Verified,
    envelope: &Envelope,
) -> std::io::Result<()> {
    writeln!(out, "# {}\n", md(&title(envelope)))?;
    writeln!(out, "| Run | |\n|---|---|")?;
    for (_, label, value) in envelope.fields() {
        writeln!(out, "| {label} | {} |", md(&value))?;
    }
    writeln!(out, "\n| Review | |\n|---|---|")?;
    for (_, label, value) in facts(verified) {
        writeln!(out, "| {label} | {} |", md(&value))?;
    }
    writeln!(out, "\n## Reviewer files\n")?;
    writeln!(out, "| {} |", COLUMNS.join(" | "))?;
    writeln!(out, "|{}", "---|".repeat(COLUMNS.len()))?;
    for f in &verified.files {
        let cells: Vec<String> = row(f).iter().map(|c| md(c)).collect();
        writeln!(out, "| {} |", cells.join(" | "))?;
    }
    writeln!(out, "\n## Judgements\n")?;
    writeln!(
        out,
        "| result | severity | judgement | findings |\n|---|---|---|---|"
    )?;
    for r in &verified.results {
        let mut findings: Vec<String> = r
            .findings
            .iter()
            .map(|f| format!("{}: {}: {}", md(&f.status), md(&f.resource), md(&f.reason)))
            .collect();
        findings.extend(r.skipped.iter().map(|why| format!("skipped: {}", md(why))));
        writeln!(
            out,
            "| {} | {} | `{}` {} | {} |",
            label(r.outcome),
            md(&r.control.severity),
            md(&r.name()),
            md(&r.control.title),
            findings.join("<br>")
        )?;
    }
    writeln!(out, "\n{}", summary(&verified.results))?;
    writeln!(out, "\nData as of {}.", md(&envelope.data_as_of))
}

/// JUnit XML: the envelope and the review as the suites' properties; a
/// test case per reviewer file (failing when not validly signed off, or
/// not fully decided), then one per judgement.
fn junit(out: &mut dyn Write, verified: &Verified, envelope: &Envelope) -> std::io::Result<()> {
    let results = &verified.results;
    let count = |o| results.iter().filter(|r| r.outcome == o).count();
    let failing_files = verified
        .files
        .iter()
        .filter(|f| f.signoff.problem.is_some() || f.undecided > 0)
        .count();
    let tests = results.len() + verified.files.len();
    writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
    writeln!(
        out,
        r#"<testsuites name="{}" tests="{tests}" failures="{}" errors="0" skipped="{}">"#,
        h(&title(envelope)),
        count(Outcome::Alarm) + failing_files,
        count(Outcome::Skipped)
    )?;
    let properties = |out: &mut dyn Write| -> std::io::Result<()> {
        writeln!(out, "    <properties>")?;
        for (key, _, value) in envelope.fields().into_iter().chain(facts(verified)) {
            writeln!(
                out,
                r#"      <property name="{key}" value="{}"/>"#,
                h(&value)
            )?;
        }
        writeln!(out, "    </properties>")
    };
    writeln!(
        out,
        r#"  <testsuite name="orgsql review: reviewer files" tests="{}" failures="{failing_files}" errors="0" skipped="0">"#,
        verified.files.len()
    )?;
    properties(out)?;
    for f in &verified.files {
        writeln!(
            out,
            r#"    <testcase classname="orgsql.review.file" name="{}">"#,
            h(&f.file.path)
        )?;
        writeln!(out, "      <properties>")?;
        for (name, value) in COLUMNS.iter().zip(row(f)).skip(1) {
            writeln!(
                out,
                r#"        <property name="{name}" value="{}"/>"#,
                h(&value)
            )?;
        }
        writeln!(out, "      </properties>")?;
        let mut failures = Vec::new();
        if let Some(problem) = &f.signoff.problem {
            failures.push(problem.clone());
        }
        if f.undecided > 0 {
            failures.push(format!("{} grants undecided", f.undecided));
        }
        if !failures.is_empty() {
            writeln!(
                out,
                r#"      <failure message="{}" type="review">{}</failure>"#,
                h(&failures.join("; ")),
                h(&failures.join("\n"))
            )?;
        }
        writeln!(out, "    </testcase>")?;
    }
    writeln!(out, "  </testsuite>")?;
    writeln!(
        out,
        r#"  <testsuite name="orgsql review: judgements" tests="{}" failures="{}" errors="0" skipped="{}">"#,
        results.len(),
        count(Outcome::Alarm),
        count(Outcome::Skipped)
    )?;
    properties(out)?;
    // Every finding, kept and passed ones too: what was certified.
    for r in results {
        crate::cli::check::junit_testcase(out, r, "orgsql.review", true)?;
    }
    writeln!(out, "  </testsuite>")?;
    writeln!(out, "</testsuites>")
}

/// The evidence page: one well-formed XHTML file, its style inline, nothing
/// fetched (no script, link or image), readable printed to PDF.
fn html(out: &mut dyn Write, verified: &Verified, envelope: &Envelope) -> std::io::Result<()> {
    let title = title(envelope);
    writeln!(out, "<!DOCTYPE html>")?;
    writeln!(
        out,
        "<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\"><head><meta charset=\"utf-8\"/>"
    )?;
    writeln!(out, "<title>{}</title>", h(&title))?;
    const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222}\
         table{border-collapse:collapse;margin:1em 0}\
         td,th{border:1px solid #bbb;padding:.3em .6em;text-align:left;vertical-align:top}\
         .alarm{color:#a40000;font-weight:bold}.pass{color:#1a6b1a;font-weight:bold}\
         .skip{color:#666;font-weight:bold}section{page-break-inside:avoid;margin-bottom:2em}\
         td.n{text-align:right}";
    writeln!(out, "<style>{STYLE}</style></head><body>")?;
    writeln!(out, "<h1>{}</h1>", h(&title))?;
    writeln!(out, "<h2>Run</h2><table>")?;
    for (_, label, value) in envelope.fields() {
        writeln!(out, "<tr><th>{}</th><td>{}</td></tr>", h(&label), h(&value))?;
    }
    writeln!(out, "</table>\n<h2>Review</h2><table>")?;
    for (_, label, value) in facts(verified) {
        writeln!(out, "<tr><th>{}</th><td>{}</td></tr>", h(&label), h(&value))?;
    }
    writeln!(out, "</table>\n<h2>Reviewer files</h2><table><tr>")?;
    for column in COLUMNS {
        write!(out, "<th>{column}</th>")?;
    }
    writeln!(out, "</tr>")?;
    for f in &verified.files {
        write!(out, "<tr>")?;
        for (i, value) in row(f).iter().enumerate() {
            let class = if (3..=6).contains(&i) {
                " class=\"n\""
            } else if i == 9 && f.signoff.problem.is_some() {
                " class=\"alarm\""
            } else {
                ""
            };
            write!(out, "<td{class}>{}</td>", h(value))?;
        }
        writeln!(out, "</tr>")?;
    }
    writeln!(out, "</table>")?;
    writeln!(
        out,
        "<h2>Judgements</h2>\n<p>{}</p>",
        h(&summary(&verified.results))
    )?;
    for r in &verified.results {
        crate::cli::check::html_section_head(out, r)?;
        if let Some(why) = &r.skipped {
            writeln!(out, "<p class=\"skip\">Skipped: {}</p>", h(why))?;
        }
        if !r.findings.is_empty() {
            writeln!(
                out,
                "<table><tr><th>status</th><th>what</th><th>finding</th></tr>"
            )?;
            for f in &r.findings {
                let class = if f.status == "alarm" { "alarm" } else { "" };
                writeln!(
                    out,
                    "<tr><td class=\"{class}\">{}</td><td>{}</td><td>{}</td></tr>",
                    h(&f.status),
                    h(&f.resource),
                    h(&f.reason)
                )?;
            }
            writeln!(out, "</table>")?;
        }
        writeln!(out, "</section>")?;
    }
    writeln!(
        out,
        "<p>Data as of {}.</p>\n</body></html>",
        h(&envelope.data_as_of)
    )
}
