//! `orgsql seats plan`: the billable seats nobody has used for a while, and
//! the calls that take them back, as a dry run in `review apply`'s plan
//! format, so `orgsql review apply DIR --execute --plan-sha SHA` sends them
//! with its journal and its checks (each grant read again first).
//!
//! The seats chosen are those `seats_idle_billable` alarms on: billable,
//! the account active, no admin, no service account, no activity on the
//! product for `--idle-days`. For each, the roles the account holds (read
//! for the chosen accounts only) name every path that gives the seat: a
//! direct role is revoked, a group's membership removed. A seat is planned
//! whole or not at all: when a path cannot be taken (a synced group, or a
//! group that also gives something not being reclaimed) the seat is refused,
//! with why.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use chrono::Utc;
use serde_json::json;

use super::review::apply::{
    Call, Grant, PLAN_FILE, Plan, REMOVE_MEMBERSHIP, REVOKE_ROLE, Row, SEATS_FILE, rows, show_plan,
};
use crate::api::REVOCABLE_ROLES;
use crate::session::Session;
use crate::snapshot::sha256;
use crate::sql::literal;
use crate::tables::seats::PRODUCT_ROLES;

/// What a Grant's `decision` says for a seat taken back.
const RECLAIM: &str = "reclaim";

#[derive(clap::Args)]
pub struct SeatsArgs {
    #[command(subcommand)]
    pub command: SeatsCommand,
}

#[derive(clap::Subcommand)]
pub enum SeatsCommand {
    /// Plan taking back the billable seats idle for --idle-days (admins and
    /// service accounts held out): write DIR/seats.csv and DIR/plan.json and
    /// print the plan with its sha256; send nothing. `orgsql review apply DIR
    /// --execute --plan-sha SHA` sends it (exit 0 every seat planned, 1 some
    /// refused)
    Plan(SeatsPlanArgs),
}

#[derive(clap::Args)]
pub struct SeatsPlanArgs {
    /// Days without activity on the product after which a seat is taken back
    #[arg(long, value_name = "DAYS", default_value_t = 90)]
    pub idle_days: u32,
    /// The plan's folder (new, or empty)
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// One idle seat, as the `seats` view gives it.
struct Seat {
    org_id: String,
    account_id: String,
    who: String,
    product_key: String,
    site_id: String,
    last_active: String,
    added_to_org: String,
    grant_paths: String,
    /// The groups that give it (bare ids).
    group_ids: Vec<String>,
    /// Its line in seats.csv.
    line: usize,
    /// Why it is not planned, once known.
    refused: Option<String>,
}

impl Seat {
    fn account(&self) -> (String, String) {
        (self.org_id.clone(), self.account_id.clone())
    }

    fn place(&self) -> String {
        format!("{SEATS_FILE}:{}", self.line)
    }
}

/// A group: its directory, its name, synced from an identity provider, and
/// every (resource, role) it gives.
#[derive(Default)]
struct GroupFacts {
    directory: String,
    name: String,
    synced: bool,
    gives: BTreeSet<(String, String)>,
}

/// `orgsql seats plan`.
pub async fn run(session: &Session, args: &SeatsPlanArgs) -> Result<ExitCode> {
    if session.orgs.is_none() {
        bail!("seats plan reads the organization through the API, not a snapshot");
    }
    let at = |what: &str| format!("--out {}: {what}", args.out.display());
    if args.out.exists() {
        let empty = args.out.is_dir()
            && std::fs::read_dir(&args.out)
                .with_context(|| at("reading it"))?
                .next()
                .is_none();
        if !empty {
            bail!(at(
                "exists and is not empty; a plan is written to a new folder (an earlier plan and \
                 its journal stay as they are)"
            ));
        }
    }
    let ctx = &session.ctx;
    let mut seats = idle_seats(ctx, args.idle_days).await?;
    for (n, seat) in seats.iter_mut().enumerate() {
        seat.line = n + 2;
    }
    let accounts: BTreeSet<(String, String)> = seats.iter().map(Seat::account).collect();
    let direct = direct_roles(ctx, &accounts).await?;
    let groups = group_facts(ctx, &seats).await?;

    // Refuse what cannot be taken whole, until nothing changes: a refused
    // seat keeps its groups, which may refuse another seat of the account.
    loop {
        let reclaimed: BTreeSet<(String, String, String)> = seats
            .iter()
            .filter(|s| s.refused.is_none())
            .map(|s| (s.org_id.clone(), s.account_id.clone(), s.site_id.clone()))
            .collect();
        let mut changed = false;
        for seat in seats.iter_mut().filter(|s| s.refused.is_none()) {
            let why = refusal(seat, &direct, &groups, &reclaimed);
            if why.is_some() {
                seat.refused = why;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }

    let csv = seats_csv(&seats)?;
    let mut plan = Plan {
        review_fingerprint: sha256(&csv),
        planned_at: crate::cli::check::envelope::rfc3339(Utc::now()),
        source: session.described.clone(),
        orgsql_version: env!("CARGO_PKG_VERSION").to_string(),
        allow_collateral: false,
        suspend_leavers: false,
        revoke_leaver_tokens: false,
        calls: Vec::new(),
        done_already: Vec::new(),
        refused: Vec::new(),
    };
    plan_calls(&seats, &direct, &groups, &mut plan);
    for (n, call) in plan.calls.iter_mut().enumerate() {
        call.n = n + 1;
    }
    let mut bytes = serde_json::to_vec_pretty(&plan)?;
    bytes.push(b'\n');
    let sha = sha256(&bytes);

    std::fs::create_dir_all(&args.out).with_context(|| at("creating it"))?;
    for (name, content) in [(SEATS_FILE, &csv), (PLAN_FILE, &bytes)] {
        let path = args.out.join(name);
        crate::cli::files::write_atomically(&path, |mut file| {
            file.write_all(content)
                .map_err(crate::cli::files::io_at(&path))
        })
        .map_err(|e| anyhow!("{}", crate::error::message(&e)))?;
    }
    let mut out = std::io::stdout().lock();
    let planned = seats.iter().filter(|s| s.refused.is_none()).count();
    writeln!(
        out,
        "{} billable seat(s) idle {}+ days (admins and service accounts held out): {planned} \
         planned, {} refused. The seats: {}\n",
        seats.len(),
        args.idle_days,
        seats.len() - planned,
        args.out.join(SEATS_FILE).display()
    )?;
    show_plan(&mut out, &plan)?;
    writeln!(
        out,
        "\nPlan: {} ({} call{}), sha256 {sha}. Nothing was sent. To send exactly these calls:\n  \
         orgsql review apply {} --execute --plan-sha {sha}",
        args.out.join(PLAN_FILE).display(),
        plan.calls.len(),
        if plan.calls.len() == 1 { "" } else { "s" },
        args.out.display()
    )?;
    Ok(ExitCode::from(if plan.refused.is_empty() { 0 } else { 1 }))
}

/// The seats `seats_idle_billable` alarms on, in the order seats.csv lists
/// them.
async fn idle_seats(ctx: &datafusion::prelude::SessionContext, days: u32) -> Result<Vec<Seat>> {
    let sql = format!(
        "SELECT s.org_id, s.account_id, coalesce(s.email, s.account_id), s.product_key, s.site_id,
                coalesce(CAST(s.last_active AS VARCHAR), ''), coalesce(CAST(s.added_to_org AS VARCHAR), ''),
                s.grant_paths, coalesce(s.group_ids, '')
         FROM seats s
         LEFT JOIN (SELECT DISTINCT org_id, account_id FROM service_accounts) sa
           ON sa.org_id = s.org_id AND sa.account_id = s.account_id
         WHERE s.billable AND s.status = 'active' AND NOT s.admin AND sa.account_id IS NULL
           AND coalesce(s.last_active, s.added_to_org) < now() - interval '{days} days'
         ORDER BY 3, 4, 5, 1, 2"
    );
    Ok(rows(ctx, &sql)
        .await?
        .into_iter()
        .map(|r| Seat {
            org_id: r[0].clone(),
            account_id: r[1].clone(),
            who: r[2].clone(),
            product_key: r[3].clone(),
            site_id: r[4].clone(),
            last_active: r[5].clone(),
            added_to_org: r[6].clone(),
            grant_paths: r[7].clone(),
            group_ids: r[8]
                .split(',')
                .filter(|g| !g.is_empty())
                .map(str::to_string)
                .collect(),
            line: 0,
            refused: None,
        })
        .collect())
}

/// (org, account, site) → the product roles held there directly.
type Direct = BTreeMap<(String, String, String), BTreeSet<String>>;

/// The direct roles of the chosen accounts: one call for each of them.
async fn direct_roles(
    ctx: &datafusion::prelude::SessionContext,
    accounts: &BTreeSet<(String, String)>,
) -> Result<Direct> {
    let mut direct = Direct::new();
    if accounts.is_empty() {
        return Ok(direct);
    }
    let list = |values: Vec<&String>| {
        values
            .into_iter()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .map(|v| literal(v))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let ids = list(accounts.iter().map(|(_, a)| a).collect());
    let orgs = list(accounts.iter().map(|(o, _)| o).collect());
    for r in rows(
        ctx,
        &format!(
            "SELECT org_id, account_id, resource_id, role, coalesce(assignment_methods, '')
             FROM user_role_assignments
             WHERE account_id IN ({ids}) AND org_id IN ({orgs})
               AND role IN ({})",
            crate::tables::seats::sql_list(PRODUCT_ROLES)
        ),
    )
    .await?
    {
        if r[4].split(',').any(|m| m == "direct") {
            direct
                .entry((r[0].clone(), r[1].clone(), r[2].clone()))
                .or_default()
                .insert(r[3].clone());
        }
    }
    Ok(direct)
}

/// (org, group) → what is known of it, for the groups the seats name.
async fn group_facts(
    ctx: &datafusion::prelude::SessionContext,
    seats: &[Seat],
) -> Result<BTreeMap<(String, String), GroupFacts>> {
    let wanted: BTreeSet<(String, String)> = seats
        .iter()
        .flat_map(|s| s.group_ids.iter().map(|g| (s.org_id.clone(), g.clone())))
        .collect();
    let mut groups: BTreeMap<(String, String), GroupFacts> = BTreeMap::new();
    if wanted.is_empty() {
        return Ok(groups);
    }
    for r in rows(
        ctx,
        "SELECT org_id, group_id, coalesce(directory_id, ''), coalesce(name, group_id),
                coalesce(external_synced, false)
         FROM groups",
    )
    .await?
    {
        let key = (r[0].clone(), r[1].clone());
        if wanted.contains(&key) {
            groups.insert(
                key,
                GroupFacts {
                    directory: r[2].clone(),
                    name: r[3].clone(),
                    synced: r[4] == "true",
                    gives: BTreeSet::new(),
                },
            );
        }
    }
    for r in rows(
        ctx,
        "SELECT org_id, group_id, resource_id, role FROM group_role_assignments",
    )
    .await?
    {
        if let Some(group) = groups.get_mut(&(r[0].clone(), r[1].clone())) {
            group.gives.insert((r[2].clone(), r[3].clone()));
        }
    }
    Ok(groups)
}

/// Why `seat` cannot be taken back whole, if it cannot: every path must be
/// one call that takes nothing else than seats being taken back.
fn refusal(
    seat: &Seat,
    direct: &Direct,
    groups: &BTreeMap<(String, String), GroupFacts>,
    reclaimed: &BTreeSet<(String, String, String)>,
) -> Option<String> {
    let roles = direct.get(&(
        seat.org_id.clone(),
        seat.account_id.clone(),
        seat.site_id.clone(),
    ));
    if let Some(role) = roles
        .into_iter()
        .flatten()
        .find(|r| !REVOCABLE_ROLES.contains(&r.as_str()))
    {
        return Some(format!(
            "no Admin API call revokes role {role} directly; remove it at admin.atlassian.com"
        ));
    }
    if roles.is_none_or(BTreeSet::is_empty) && seat.group_ids.is_empty() {
        return Some(
            "no direct role or group gives it now: read again (the bulk listing and the \
             account's roles disagree)"
                .into(),
        );
    }
    for id in &seat.group_ids {
        let Some(group) = groups.get(&(seat.org_id.clone(), id.clone())) else {
            return Some(format!(
                "group {id} is not in the group listing now: plan again"
            ));
        };
        if group.synced {
            return Some(format!(
                "group {} is synced from an identity provider: remove the membership there",
                group.name
            ));
        }
        let lost: Vec<String> = group
            .gives
            .iter()
            .filter(|(resource, role)| {
                !PRODUCT_ROLES.contains(&role.as_str())
                    || !reclaimed.contains(&(
                        seat.org_id.clone(),
                        seat.account_id.clone(),
                        resource.clone(),
                    ))
            })
            .map(|(resource, role)| format!("{role} on {resource}"))
            .collect();
        if !lost.is_empty() {
            return Some(format!(
                "removing the membership of group {} would also take away {}, not idle",
                group.name,
                lost.join(", ")
            ));
        }
    }
    None
}

/// The calls of the seats not refused; the refused ones as rows.
fn plan_calls(
    seats: &[Seat],
    direct: &Direct,
    groups: &BTreeMap<(String, String), GroupFacts>,
    plan: &mut Plan,
) {
    let grant = |resource: &str, role: &str, place: String| Grant {
        resource_id: resource.to_string(),
        role: role.to_string(),
        decision: RECLAIM.into(),
        place,
        kept_by_another_path: false,
    };
    // One membership call per (org, account, group), however many seats.
    let mut memberships: BTreeMap<(String, String, String), Call> = BTreeMap::new();
    for seat in seats {
        if let Some(why) = &seat.refused {
            plan.refused.push(Row {
                org_id: seat.org_id.clone(),
                account_id: seat.account_id.clone(),
                who: seat.who.clone(),
                resource_id: seat.site_id.clone(),
                role: seat.product_key.clone(),
                place: seat.place(),
                why: why.clone(),
            });
            continue;
        }
        let key = (
            seat.org_id.clone(),
            seat.account_id.clone(),
            seat.site_id.clone(),
        );
        for role in direct.get(&key).into_iter().flatten() {
            plan.calls.push(Call {
                n: 0,
                org_id: seat.org_id.clone(),
                method: "POST".into(),
                template: REVOKE_ROLE.into(),
                path: BTreeMap::from([("userId".to_string(), seat.account_id.clone())]),
                body: Some(json!({ "role": role, "resource": seat.site_id })),
                account_id: seat.account_id.clone(),
                who: seat.who.clone(),
                group: None,
                removes: vec![grant(&seat.site_id, role, seat.place())],
                also: Vec::new(),
                leaver: None,
            });
        }
        for id in &seat.group_ids {
            let Some(group) = groups.get(&(seat.org_id.clone(), id.clone())) else {
                continue;
            };
            let call = memberships
                .entry((seat.org_id.clone(), seat.account_id.clone(), id.clone()))
                .or_insert_with(|| Call {
                    n: 0,
                    org_id: seat.org_id.clone(),
                    method: "DELETE".into(),
                    template: REMOVE_MEMBERSHIP.into(),
                    path: BTreeMap::from([
                        ("directoryId".to_string(), group.directory.clone()),
                        ("groupId".to_string(), id.clone()),
                        ("accountId".to_string(), seat.account_id.clone()),
                    ]),
                    body: None,
                    account_id: seat.account_id.clone(),
                    who: seat.who.clone(),
                    group: Some(group.name.clone()),
                    removes: Vec::new(),
                    also: Vec::new(),
                    leaver: None,
                });
            // What the group gives on this seat's site; the refusals made
            // sure it gives nothing beyond the seats taken back.
            for (resource, role) in group.gives.iter().filter(|(r, _)| *r == seat.site_id) {
                call.removes.push(grant(resource, role, seat.place()));
            }
        }
    }
    plan.calls.extend(memberships.into_values());
}

/// seats.csv: one row per idle seat, with what the plan does with it.
fn seats_csv(seats: &[Seat]) -> Result<Vec<u8>> {
    use crate::sheet::cell;
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record([
        "org_id",
        "account_id",
        "who",
        "product_key",
        "site_id",
        "last_active",
        "added_to_org",
        "grant_paths",
        "planned",
    ])?;
    for seat in seats {
        let planned = match &seat.refused {
            Some(why) => format!("refused: {why}"),
            None => "reclaim".to_string(),
        };
        writer.write_record(
            [
                &seat.org_id,
                &seat.account_id,
                &seat.who,
                &seat.product_key,
                &seat.site_id,
                &seat.last_active,
                &seat.added_to_org,
                &seat.grant_paths,
                &planned,
            ]
            .map(|value| cell(value).into_owned()),
        )?;
    }
    writer.into_inner().map_err(|e| anyhow!("{}", e.error()))
}
