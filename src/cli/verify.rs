//! `orgsql verify PATH [--sha256 SHA]`: an export or a JSON report checked
//! offline against what it states about itself, every digest and count
//! recomputed from the files. What it is is decided by its content.
//!
//! - An export (a folder or prefix with `manifest.json`, or that file):
//!   every data file's size and sha256, and every table's rows against its
//!   files' Parquet footers (`snapshot::verify`, as `snapshot verify`).
//!   `--sha256`: the manifest's own, as a check's envelope records it.
//! - A JSON report of `check` or `review verify`: its results' sha256, each
//!   result's counts and outcome, the summary (`check::json::verify`).
//!   `--sha256`: the whole file's, as said when it was written.
//!
//! Exit 0 intact, 1 not (each problem said), 2 when it cannot be read, as
//! `snapshot verify`.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Result, anyhow, bail};
use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::cli::At;
use crate::snapshot::MANIFEST;
use crate::storage::Location;
use crate::text::visible;

#[derive(clap::Args)]
pub struct VerifyArgs {
    /// An export (its folder, its manifest.json, or s3://, gs://, az://,
    /// downloaded to be hashed), or a report of `check --format json` (or
    /// `review verify --format json`)
    pub path: String,
    /// The sha256 the report file must have (said on stderr when it was
    /// written), or an export's manifest.json (a check's envelope records it)
    #[arg(long, value_name = "SHA256", value_parser = sha256_hex)]
    pub sha256: Option<String>,
}

/// What `verify` accepts, for an error that found something else.
const ACCEPTS: &str = "verify accepts an export (a folder or object-storage prefix with the \
     manifest.json `orgsql export` writes, or that file) or a report of `orgsql check --format \
     json` or `orgsql review verify --format json`";

/// A sha256 as 64 hexadecimal digits.
pub(crate) fn sha256_hex(text: &str) -> std::result::Result<String, String> {
    let text = text.trim();
    match text.len() == 64 && text.chars().all(|c| c.is_ascii_hexdigit()) {
        true => Ok(text.to_ascii_lowercase()),
        false => Err(format!("{text}: a sha256 is 64 hexadecimal digits")),
    }
}

/// A JSON file's top keys that tell a report from a manifest.
#[derive(Deserialize)]
struct Probe {
    envelope: Option<IgnoredAny>,
    results: Option<IgnoredAny>,
    tables: Option<IgnoredAny>,
    orgs: Option<IgnoredAny>,
}

/// What a file is, by its content.
enum Found {
    Report,
    Manifest,
    /// Neither: what it is instead.
    Other(String),
}

fn what(bytes: &[u8]) -> Found {
    match serde_json::from_slice::<Probe>(bytes) {
        Ok(probe) if probe.envelope.is_some() && probe.results.is_some() => Found::Report,
        Ok(probe) if probe.tables.is_some() || probe.orgs.is_some() => Found::Manifest,
        Ok(_) => Found::Other(
            "a JSON object with neither a report's envelope and results nor a manifest's tables"
                .to_string(),
        ),
        Err(_) if serde_json::from_slice::<Vec<IgnoredAny>>(bytes).is_ok() => Found::Other(
            "a JSON list: a report by an orgsql before the envelope (it states no digest or \
             count to check), or no report"
                .to_string(),
        ),
        Err(e) if e.is_syntax() || e.is_eof() => Found::Other(format!(
            "not JSON ({e}); for an HTML, markdown or JUnit report compare its sha256 (said when \
             it was written) with `sha256sum`"
        )),
        Err(e) => Found::Other(format!("JSON, but neither a report nor a manifest ({e})")),
    }
}

pub async fn run(args: &VerifyArgs) -> Result<ExitCode> {
    let location: Location = args.path.parse()?;
    let path = match &location {
        Location::Bucket(_) => return export(&location, args.sha256.as_deref()).await,
        Location::Folder(path) => path,
    };
    let shown = visible(&path.display().to_string()).to_string();
    let meta = std::fs::metadata(path).map_err(|e| anyhow!("{shown}: {e}; {ACCEPTS}"))?;
    if meta.is_dir() {
        if !path.join(MANIFEST).exists() {
            bail!("{shown}: a folder without {MANIFEST}; {ACCEPTS}");
        }
        return export(&location, args.sha256.as_deref()).await;
    }
    let bytes = std::fs::read(path).map_err(|e| anyhow!("{shown}: {e}"))?;
    match what(&bytes) {
        Found::Report => report(&shown, &bytes, args.sha256.as_deref()),
        Found::Manifest if path.file_name().is_some_and(|n| n == MANIFEST) => {
            let folder = path.parent().filter(|p| !p.as_os_str().is_empty());
            let folder = Location::from(folder.unwrap_or(Path::new(".")));
            export(&folder, args.sha256.as_deref()).await
        }
        Found::Manifest => bail!(
            "{shown}: a manifest, but not named {MANIFEST}: it is read only in its export's \
             folder; give the folder"
        ),
        Found::Other(found) => bail!("{shown}: {found}; {ACCEPTS}"),
    }
}

/// An export: every file hashed, every table's rows counted, against its
/// manifest; `sha256`, the manifest's own.
async fn export(dir: &Location, sha256: Option<&str>) -> Result<ExitCode> {
    let mut report = crate::snapshot::verify::verify(dir).await.at("verify")?;
    let mut checked = Vec::new();
    let mut unchecked = Vec::new();
    let several = report.orgs > 1;
    match sha256 {
        Some(expected) if expected == report.manifest_sha256 => checked.push(format!(
            "{MANIFEST}: sha256 {expected}, as --sha256 expects"
        )),
        Some(expected) => report.problems.push(format!(
            "{MANIFEST}: sha256 {} where --sha256 expects {expected}: the manifest is not the \
             one that digest names",
            report.manifest_sha256
        )),
        None => unchecked.push(format!(
            "{MANIFEST} itself (sha256 {}): without --sha256 it is checked only against the \
             files, so an export rewritten with a manifest to match passes; give the sha256 a \
             check's or review's envelope records (manifest_sha256)",
            report.manifest_sha256
        )),
    }
    if several && sha256.is_some() {
        unchecked.push(format!(
            "each organization's {MANIFEST}: the top one records no digest of them, so \
             --sha256 vouches for the top one only; each is checked against its files"
        ));
    }
    unchecked.push(format!(
        "what {MANIFEST} records of the export itself (each table's API requests and columns, \
         its times, the audit log's stream position): not in the files to recompute"
    ));
    let out = &mut std::io::stdout().lock();
    report.write(out, dir)?;
    details(out, &checked, &unchecked)?;
    Ok(ExitCode::from(if report.intact() { 0 } else { 1 }))
}

/// A JSON report: what it states recomputed; `sha256`, the file's.
fn report(shown: &str, bytes: &[u8], sha256: Option<&str>) -> Result<ExitCode> {
    let mut verified = crate::cli::check::json::verify(bytes).map_err(|e| {
        anyhow!("{shown}: has a report's envelope and results, but not as orgsql writes them: {e}")
    })?;
    let found = crate::snapshot::sha256(bytes);
    match sha256 {
        Some(expected) if expected == found => verified
            .checked
            .push(format!("the file: sha256 {found}, as --sha256 expects")),
        Some(expected) => verified.problems.push(format!(
            "the file: sha256 {found} where --sha256 expects {expected}: it is not the report \
             that digest names"
        )),
        None => verified.unchecked.push(format!(
            "the envelope (organization, source, times, operator, parameters): no digest in the \
             report covers it, so without --sha256 an edit to it is not found, nor a report \
             rewritten to agree with itself; give the sha256 said when it was written (the \
             file's is {found})"
        )),
    }
    let command = match verified.command.as_str() {
        "" => "an unnamed command".to_string(),
        command => format!("`{command}`"),
    };
    let findings = verified.findings.alarm + verified.findings.ok + verified.findings.info;
    let about = format!(
        "a JSON report of {command} ({} results, {findings} findings)",
        verified.results
    );
    let out = &mut std::io::stdout().lock();
    for problem in &verified.problems {
        writeln!(out, "{}", visible(problem))?;
    }
    if verified.problems.is_empty() {
        writeln!(out, "{shown}: intact: {}, as it states", visible(&about))?;
    } else {
        writeln!(
            out,
            "{shown}: {} problem(s) in {}: the report is not as orgsql wrote it",
            verified.problems.len(),
            visible(&about)
        )?;
    }
    details(out, &verified.checked, &verified.unchecked)?;
    Ok(ExitCode::from(if verified.problems.is_empty() {
        0
    } else {
        1
    }))
}

/// What was checked and what could not be, a line each, indented.
fn details(out: &mut dyn Write, checked: &[String], unchecked: &[String]) -> std::io::Result<()> {
    for line in checked {
        writeln!(out, "  checked: {}", visible(line))?;
    }
    for line in unchecked {
        writeln!(out, "  not checked: {}", visible(line))?;
    }
    Ok(())
}
