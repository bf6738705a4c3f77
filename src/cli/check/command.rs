//! `orgsql check`, the command: the controls chosen, run on each
//! organization of the session (and on a `--baseline`), reported.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;

use super::{Checked, Envelope, Report};
use crate::cli::At;
use crate::cli::files::Output;
use crate::session::Session;
use crate::snapshot::Opened;
use crate::storage::Location;

#[derive(clap::Args)]
pub struct CheckArgs {
    /// Only these controls, comma-separated ids
    #[arg(long, value_name = "ID,...", value_delimiter = ',')]
    pub controls: Vec<String>,
    /// Only the controls that give evidence for this framework, reported by
    /// its controls: soc2, iso27001, nist800-53 or cis
    #[arg(long, value_name = "FRAMEWORK")]
    pub framework: Option<String>,
    /// A control parameter, e.g. inactive_days=60 (repeatable; --list shows them)
    #[arg(long = "param", value_name = "NAME=VALUE")]
    pub params: Vec<String>,
    /// Exit 1 only for alarms of this severity or higher (default: any alarm)
    #[arg(long, value_parser = ["critical", "high", "medium", "low"], value_name = "SEVERITY")]
    pub fail_on: Option<String>,
    /// Mark alarms new or still open, and list what was fixed, since an
    /// earlier `check --format json` report or a snapshot folder
    #[arg(long, value_name = "FILE_OR_SNAPSHOT")]
    pub baseline: Option<PathBuf>,
    /// How the report is written
    #[arg(long, value_enum, default_value = "table")]
    pub format: Report,
    /// List the controls (those --controls and --framework select) and stop
    #[arg(long)]
    pub list: bool,
    /// Also run the controls in this folder (.sql files in the pack's format)
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Judge the controls about grants as of this instant (RFC 3339, e.g.
    /// 2026-09-30T00:00:00Z), on the grants the audit log shows were held
    /// then; the others are listed as not evaluated
    #[arg(long, value_name = "TIME")]
    pub as_of: Option<String>,
}

/// `orgsql check`: run the controls, report, and say with the exit code.
pub async fn run(session: &Session, args: &CheckArgs, output: &Output) -> Result<ExitCode> {
    let format = output
        .format(args.format, Report::EXTENSIONS)
        .map_err(anyhow::Error::msg)?;
    let controls = super::load(args.dir.as_deref())
        .and_then(|all| {
            super::select(
                all,
                &super::Selection {
                    ids: &args.controls,
                    framework: args.framework.as_deref(),
                },
            )
        })
        .map_err(anyhow::Error::msg)?;
    let values = super::parameters(&controls, &args.params).map_err(anyhow::Error::msg)?;
    let as_of = match &args.as_of {
        None => None,
        Some(text) => Some(
            chrono::DateTime::parse_from_rfc3339(text)
                .map_err(|e| {
                    anyhow::anyhow!(
                        "--as-of {}: not an RFC 3339 time ({e}); give e.g. 2026-09-30T00:00:00Z",
                        crate::cli::output::visible(text)
                    )
                })?
                .to_utc(),
        ),
    };
    if as_of.is_some() && args.baseline.is_some() {
        anyhow::bail!("--as-of and --baseline: compare two times with two reports, one each");
    }
    let mut envelope = Envelope::begin("orgsql check").with_session(session).await;
    envelope.parameters = values.clone();
    envelope.fail_on.clone_from(&args.fail_on);
    envelope.framework.clone_from(&args.framework);
    envelope.grants_as_of = as_of.map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    // A snapshot baseline: the same controls on the same organizations then.
    let then = match args.baseline.as_deref().and_then(snapshot_at) {
        Some(location) => Some(
            Opened::read(&location)
                .await
                .at(&format!("--baseline {location}"))?,
        ),
        None => None,
    };
    // A report baseline is read before the controls run: a wrong file fails
    // at once, not after the whole pack.
    let reported = match &args.baseline {
        Some(path) if then.is_none() => Some((
            super::alarmed_in_report(path).map_err(anyhow::Error::msg)?,
            format!("report {}", path.display()),
        )),
        _ => None,
    };
    let mut results = Vec::new();
    let mut earlier = Vec::new();
    for (org, ctx) in session.per_org().await? {
        let mut checked = match as_of {
            Some(at) => {
                // The history ends when the session's data is as of.
                let data_time = ctx
                    .state()
                    .config()
                    .get_extension::<crate::tables::grants_history::DataAsOf>()
                    .map(|d| d.0)
                    .or(session.as_of)
                    .unwrap_or_else(chrono::Utc::now);
                let past = super::as_of::context_at(&ctx, at, data_time)
                    .await
                    .at("--as-of")?;
                super::as_of::run_controls_at(&past, at, controls.clone(), &values).await
            }
            None => super::run_controls(&ctx, controls.clone(), &values).await,
        };
        let before = then.as_ref().and_then(|then| match &org {
            None => Some(then.clone()),
            Some(org) => then
                .each()
                .into_iter()
                .find(|one| one.orgs.iter().any(|(id, _, _)| id == org)),
        });
        if let Some(before) = before {
            let ctx = session.snapshot_context(&before).await?;
            let mut before = super::run_controls(&ctx, controls.clone(), &values).await;
            before.iter_mut().for_each(|r| r.org_id.clone_from(&org));
            earlier.extend(before);
        }
        checked.iter_mut().for_each(|r| r.org_id.clone_from(&org));
        results.extend(checked);
    }
    let baseline = match &args.baseline {
        Some(path) if then.is_some() => Some((
            super::alarmed(&earlier),
            format!("snapshot {}", path.display()),
        )),
        _ => reported,
    };
    if let Some((alarmed, _)) = &baseline {
        super::compare(&mut results, alarmed);
    }
    envelope.baseline = baseline.map(|(_, what)| what);
    if let Some(orgs) = &session.orgs {
        let listings = orgs.first().listings();
        refuse_incomplete(&listings)?;
        envelope.completeness = crate::api::Completeness::of(&listings);
    } else if let Some(opened) = &session.snapshot {
        // Read from a snapshot: how its export read each table.
        envelope.completeness = opened
            .orgs
            .iter()
            .flat_map(|(_, _, manifest)| manifest.tables.iter())
            .filter_map(|t| t.completeness.clone())
            .collect();
    }
    write_report(output, format, &results, &envelope.end())?;
    Ok(ExitCode::from(super::exit_code(
        &results,
        args.fail_on.as_deref(),
    )))
}

/// A listing whose count held still and differs from its items fails the
/// run: its controls would judge an organization with rows missing, so no
/// report is written, and the error names each such listing's numbers.
fn refuse_incomplete(listings: &[crate::api::ListingRecord]) -> Result<()> {
    let mut said: Vec<String> = Vec::new();
    let several = listings.iter().any(|l| l.org_id != listings[0].org_id);
    for listing in listings {
        if listing.verdict() != crate::api::Verdict::Incomplete {
            continue;
        }
        let error = crate::api::ApiError::Incomplete {
            table: match several {
                true => format!("org {}: {}", listing.org_id, listing.table_name),
                false => listing.table_name.to_string(),
            },
            endpoint: listing.endpoint.clone(),
            count_endpoint: listing.count_endpoint.clone().unwrap_or_default(),
            counted: listing.count_before.unwrap_or_default(),
            listed: listing.items,
        }
        .to_string();
        if !said.contains(&error) {
            said.push(error);
        }
    }
    if said.is_empty() {
        return Ok(());
    }
    anyhow::bail!(
        "no report: a listing the controls read is incomplete\n{}",
        said.join("\n")
    )
}

/// `check`'s report, written by [`write_report_with`].
pub fn write_report(
    output: &Output,
    format: Report,
    results: &[Checked],
    envelope: &Envelope,
) -> Result<()> {
    write_report_with(output, |out| {
        super::write_report(out, format, results, envelope)
    })
}

/// A report of `check` or `review verify`: to `--output`, atomically, its
/// sha256 said on stderr (a report cannot hold its own digest), or to
/// standard output.
pub fn write_report_with(
    output: &Output,
    render: impl Fn(&mut dyn std::io::Write) -> std::io::Result<()>,
) -> Result<()> {
    match &output.path {
        Some(path) => {
            let mut bytes = Vec::new();
            render(&mut bytes)?;
            crate::cli::files::write_atomically(path, |mut file| {
                std::io::Write::write_all(&mut file, &bytes).map_err(crate::cli::files::io_at(path))
            })
            .at("--output")?;
            eprintln!(
                "sha256 {}  {}",
                crate::snapshot::sha256(&bytes),
                crate::cli::output::visible(&path.display().to_string())
            );
        }
        None => render(&mut std::io::stdout().lock())?,
    }
    Ok(())
}

/// The snapshot a `--baseline` names (a folder, or a prefix in object
/// storage), when it is not a report file.
fn snapshot_at(path: &Path) -> Option<Location> {
    match path.to_str()?.parse::<Location>().ok()? {
        Location::Folder(dir) if !dir.is_dir() => None,
        location => Some(location),
    }
}
