//! `orgsql review start|verify`, the commands.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

use crate::cli::check::{Envelope, Report};
use crate::cli::files::Output;
use crate::session::Source;

#[derive(clap::Args)]
pub struct ReviewArgs {
    #[command(subcommand)]
    pub command: ReviewCommand,
}

#[derive(clap::Subcommand)]
pub enum ReviewCommand {
    /// Freeze the organization's grants into DIR: a snapshot, and a CSV file
    /// per reviewer scope with empty decision and justification columns,
    /// each with a sign-off file for its reviewer
    Start(ReviewStartArgs),
    /// Read the filled files back (refused if the evidence was edited or a
    /// row is missing: exit 2), then report files not signed off by their
    /// reviewer, grants undecided, admin roles kept without a justification,
    /// revokes not carried out and grants nobody certified (exit 1), and
    /// write DIR/summary.md
    Verify(ReviewVerifyArgs),
    /// Plan the calls that carry out the review's revoke decisions (a direct
    /// role revoked, a group membership removed), write DIR/plan.json and
    /// print it with its sha256; send nothing. With --execute --plan-sha,
    /// send exactly that plan, journaled (exit 0 all done, 1 some refused
    /// or failed, 2 nothing done)
    Apply(super::apply::ReviewApplyArgs),
}

#[derive(clap::Args)]
pub struct ReviewStartArgs {
    /// The review's folder (new, or empty)
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// How grants are split into files, one per reviewer
    #[arg(long, value_enum, default_value = "product")]
    pub by: super::By,
    /// csv; html also writes a page per file to read or print
    #[arg(long, value_enum, default_value = "csv")]
    pub format: super::Pages,
    /// The roles a reviewer must justify keeping (comma-separated; a role
    /// in full or its last part)
    #[arg(
        long,
        value_name = "ROLE,...",
        value_delimiter = ',',
        default_values_t = super::ADMIN_ROLES.map(String::from)
    )]
    pub admin_roles: Vec<String>,
    /// With --by manager: who reviews the grants of people the roster gives
    /// no manager (or does not list); without it, the resource's admins
    #[arg(long, value_name = "EMAIL")]
    pub fallback_reviewer: Option<String>,
}

#[derive(clap::Args)]
pub struct ReviewVerifyArgs {
    /// The folder `review start` wrote
    pub dir: PathBuf,
    /// Judge against a snapshot folder instead of the live organization
    #[arg(long, value_name = "SNAPSHOT")]
    pub against: Option<crate::storage::Location>,
    /// The fingerprint `review start` printed: refuse (exit 2) a review
    /// whose review.json is not that one
    #[arg(long, value_name = "SHA256", value_parser = crate::cli::verify::sha256_hex)]
    pub fingerprint: Option<String>,
    /// How the report is written
    #[arg(long, value_enum, default_value = "table")]
    pub format: Report,
}

/// `orgsql review start|verify`.
pub async fn run(
    options: &crate::session::Options,
    args: &ReviewArgs,
    output: &Output,
) -> Result<ExitCode> {
    match &args.command {
        ReviewCommand::Start(args) => {
            let source = Source::of(options)?;
            if matches!(source, Source::Snapshot(_)) {
                bail!(
                    "review start freezes the organization as it is now; it reads the API, not --snapshot"
                );
            }
            // As an export: each listing read once, nothing cached.
            let session = source.open(options, false).await?;
            let orgs = session
                .orgs
                .as_ref()
                .context("review start reads the API")?;
            let options = super::StartOptions {
                out: args.out.clone(),
                by: args.by,
                roster: options.roster.clone(),
                pages: args.format,
                source: session.described.clone(),
                admin_roles: args
                    .admin_roles
                    .iter()
                    .map(|r| r.trim().to_string())
                    .filter(|r| !r.is_empty())
                    .collect(),
                fallback_reviewer: args.fallback_reviewer.clone(),
            };
            let started = super::start(&session, &options, &mut std::io::stderr()).await;
            crate::cli::say_notices(orgs);
            let (review, fingerprint) = started?;
            let grants: usize = review.files.iter().map(|f| f.rows).sum();
            let out = args.out.display();
            eprintln!(
                "Froze {grants} grants of {} into {out}: {} files in {out}/reviews/, a file per {}.",
                review.orgs.join(", "),
                review.files.len(),
                format!("{:?}", args.by).to_lowercase()
            );
            eprintln!(
                "Fingerprint (sha256 of {out}/review.json; keep it with the review's record): {fingerprint}"
            );
            let fallback: usize = review
                .files
                .iter()
                .filter(|f| f.fallback)
                .map(|f| f.rows)
                .sum();
            let unowned: usize = review
                .files
                .iter()
                .filter(|f| args.by == super::By::Manager && f.reviewers.is_empty())
                .map(|f| f.rows)
                .sum();
            if fallback + unowned > 0 {
                eprintln!(
                    "{} grants of people without a manager in the roster: {fallback} to {}, {unowned} with no reviewer (no admin of their resource in the roster).",
                    fallback + unowned,
                    review
                        .fallback_reviewer
                        .as_deref()
                        .unwrap_or("the admins of each resource"),
                );
            }
            eprintln!(
                "Fill in decision (keep or revoke) and justification (needed to keep {}); change nothing else. Each reviewer signs their file off in the .signoff.csv beside it (signed_by: their email, signed_at: the date). Then: orgsql review verify {out}",
                review.admin_roles.join(", ")
            );
            Ok(ExitCode::SUCCESS)
        }
        ReviewCommand::Verify(args) => {
            let format = output
                .format(args.format, Report::EXTENSIONS)
                .map_err(anyhow::Error::msg)?;
            // A snapshot is judged alike however it is named: checked whole,
            // and as of its export, never as of now.
            let snapshot = match (&args.against, &options.snapshot) {
                (Some(against), Some(snapshot)) if against != snapshot => bail!(
                    "--snapshot {snapshot} and --against {against}: a review is verified \
                     against one snapshot; name it once"
                ),
                (Some(dir), _) => Some(("--against", dir.clone())),
                (None, Some(_)) => match Source::of(options)? {
                    Source::Snapshot(dir) => Some(("--snapshot", dir)),
                    _ => None,
                },
                (None, None) => None,
            };
            let envelope = Envelope::begin("orgsql review verify");
            let (ctx, described, at, session, envelope) = match snapshot {
                Some((flag, dir)) => {
                    let (ctx, described, at, opened) = super::snapshot_now(flag, &dir).await?;
                    let envelope = envelope.with_snapshot(&opened);
                    (ctx, described, at, None, envelope)
                }
                None => {
                    let session = Source::of(options)?.open(options, true).await?;
                    let envelope = envelope.with_session(&session).await;
                    (
                        session.ctx.clone(),
                        session.described.clone(),
                        chrono::Utc::now(),
                        Some(session),
                        envelope,
                    )
                }
            };
            let mut envelope = envelope;
            envelope.source.description.clone_from(&described);
            envelope.data_as_of = crate::cli::check::envelope::rfc3339(at);
            let now = super::Now {
                ctx: &ctx,
                described: described.clone(),
                at,
                envelope,
            };
            let result = super::verify(&args.dir, &now, args.fingerprint.as_deref()).await;
            if let Some(orgs) = session.as_ref().and_then(|s| s.orgs.as_ref()) {
                crate::cli::say_notices(orgs);
            }
            let verified = result.map_err(super::shown)?;
            let envelope = super::enveloped(&now.envelope, &verified, &args.dir).end();
            crate::cli::check::command::write_report_with(output, |out| {
                super::report::write_report(out, format, &verified, &envelope)
            })?;
            Ok(ExitCode::from(crate::cli::check::exit_code(
                &verified.results,
                None,
            )))
        }
        ReviewCommand::Apply(args) => {
            let source = Source::of(options)?;
            if matches!(source, Source::Snapshot(_)) {
                bail!(
                    "review apply reads the organization as it is now and changes it: it \
                     needs the API, not --snapshot"
                );
            }
            // Every grant is read as it is now: nothing cached.
            let session = source.open(options, false).await?;
            let applied = super::apply::run(&session, args).await;
            if let Some(orgs) = session.orgs.as_ref() {
                crate::cli::say_notices(orgs);
            }
            applied
        }
    }
}
