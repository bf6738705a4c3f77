//! `orgsql review apply`: the review's revoke decisions carried out through
//! the Admin API, the only command that changes an organization.
//!
//! Without `--execute` it plans and sends nothing: from a review whose
//! files pass verify's integrity checks, each revoke decision still in
//! effect becomes the call that removes exactly that grant (a direct role
//! revoked; a grant through a group, the membership removed). A membership
//! gives every grant of its group: the plan lists them all, and refuses the
//! membership when one it would take away was not also decided revoke
//! (`--allow-collateral` lets it go). The plan goes to `plan.json`; its
//! sha256 is what `--execute --plan-sha` must name.
//!
//! With `--execute` it sends that plan's calls, paced by the budgets, each
//! after reading its grant again (gone: skipped; changed: refused), and
//! journals every outcome in `apply-journal.ndjson`: a stopped run resumes,
//! a repeated one sends nothing again.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use chrono::Utc;
use datafusion::prelude::SessionContext;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Decided, read_review};
use crate::api::{Client, PageRequest, REVOCABLE_ROLES, WRITES};
use crate::cli::At;
use crate::cli::output::visible;
use crate::session::Session;
use crate::snapshot::sha256;
use crate::sql::literal;

pub const PLAN_FILE: &str = "plan.json";
pub const JOURNAL_FILE: &str = "apply-journal.ndjson";
/// The seats a seats plan (`orgsql seats plan`) takes back, one row each:
/// its plan is made for this file's sha256, as a review's is for
/// `review.json`'s.
pub const SEATS_FILE: &str = "seats.csv";

const REVOKE_ORG_ROLE: &str = "/admin/v1/orgs/{orgId}/users/{userId}/role-assignments/revoke";
pub(crate) const REVOKE_ROLE: &str = "/admin/v1/orgs/{orgId}/users/{userId}/roles/revoke";
pub(crate) const REMOVE_MEMBERSHIP: &str =
    "/admin/v2/orgs/{orgId}/directories/{directoryId}/groups/{groupId}/memberships/{accountId}";
const SUSPEND: &str = "/admin/v2/orgs/{orgId}/directories/{directoryId}/users/{accountId}/suspend";
const DELETE_TOKEN: &str = "/users/{accountId}/manage/api-tokens/{tokenId}";

/// The organization-level role the first call revokes; every other role
/// goes through `roles/revoke`, on its resource.
const ORG_ADMIN: &str = "atlassian/org-admin";

#[derive(clap::Args)]
pub struct ReviewApplyArgs {
    /// The folder `review start` wrote, its decisions filled in
    pub dir: PathBuf,
    /// Send the calls of DIR/plan.json (its sha256 given by --plan-sha);
    /// without it, plan only and send nothing
    #[arg(long, requires = "plan_sha")]
    pub execute: bool,
    /// The sha256 the plan printed: --execute sends only that plan
    #[arg(long, value_name = "SHA256", value_parser = crate::cli::verify::sha256_hex,
          requires = "execute")]
    pub plan_sha: Option<String>,
    /// Plan a membership's removal even when it also takes away grants not
    /// decided revoke (they are listed)
    #[arg(long, conflicts_with = "execute")]
    pub allow_collateral: bool,
    /// Also plan suspending the account of each person the review's roster
    /// says has left (terminated, or past their end date)
    #[arg(long, conflicts_with = "execute")]
    pub suspend_leavers: bool,
    /// Also plan revoking every API token of each person who has left
    #[arg(long, conflicts_with = "execute")]
    pub revoke_leaver_tokens: bool,
}

/// A grant a call takes away, with what the review decided of it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Grant {
    pub resource_id: String,
    pub role: String,
    /// revoke, keep, undecided, or "not in the review".
    pub decision: String,
    /// Where it was decided (file:line), when the review holds it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub place: String,
    /// The account keeps it anyway (directly, or through a group it stays
    /// in).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub kept_by_another_path: bool,
}

/// One call of the plan.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Call {
    /// 1, 2, ... in the order they are sent.
    pub n: usize,
    pub org_id: String,
    pub method: String,
    /// The path template, one of the client's writes.
    pub template: String,
    /// The values of its path, by name (`orgId` is the organization's).
    pub path: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    pub account_id: String,
    /// How people know the account: its email, else its id.
    pub who: String,
    /// For a membership: the group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The grants decided revoke that this call removes.
    pub removes: Vec<Grant>,
    /// For a membership: every other grant the group gives.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also: Vec<Grant>,
    /// For a leaver's account or token: what the roster says, and what.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaver: Option<String>,
}

impl Call {
    /// The request as sent: method, path with its values, body. The
    /// journal knows a call by it.
    pub fn key(&self) -> String {
        let mut path = self.template.clone();
        path = path.replace("{orgId}", &self.org_id);
        for (name, value) in &self.path {
            path = path.replace(&format!("{{{name}}}"), value);
        }
        match &self.body {
            Some(body) => format!("{} {path} {body}", self.method),
            None => format!("{} {path}", self.method),
        }
    }

    fn request(&self) -> Result<PageRequest> {
        let (method, template) = WRITES
            .iter()
            .find(|(m, t)| *m == self.method && *t == self.template)
            .ok_or_else(|| {
                anyhow!(
                    "call {}: {} is not a write orgsql makes",
                    self.n,
                    self.key()
                )
            })?;
        let method = Method::from_bytes(method.as_bytes())?;
        let mut request = PageRequest::write(method, template);
        for (name, value) in &self.path {
            let name: &'static str = match name.as_str() {
                "userId" => "userId",
                "accountId" => "accountId",
                "directoryId" => "directoryId",
                "groupId" => "groupId",
                "tokenId" => "tokenId",
                other => bail!("call {}: unknown path value {other}", self.n),
            };
            request = request.path_param(name, value.clone());
        }
        if let Some(body) = &self.body {
            request = request.body(body.clone());
        }
        Ok(request)
    }

    /// The grants it is planned to take away, as (resource, role).
    fn expected_grants(&self) -> BTreeSet<(String, String)> {
        self.removes
            .iter()
            .chain(&self.also)
            .map(|g| (g.resource_id.clone(), g.role.clone()))
            .collect()
    }
}

/// A revoke decision no call carries out, and why.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row {
    pub org_id: String,
    pub account_id: String,
    pub who: String,
    pub resource_id: String,
    pub role: String,
    pub place: String,
    pub why: String,
}

/// `plan.json`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Plan {
    /// The review's `review.json` sha256 (its fingerprint).
    pub review_fingerprint: String,
    pub planned_at: String,
    /// What it was planned against (the API at a URL, the demo).
    pub source: String,
    pub orgsql_version: String,
    pub allow_collateral: bool,
    pub suspend_leavers: bool,
    pub revoke_leaver_tokens: bool,
    pub calls: Vec<Call>,
    /// Revoke decisions already carried out: nothing to send.
    pub done_already: Vec<Row>,
    /// Revoke decisions the plan will not carry out.
    pub refused: Vec<Row>,
}

/// `orgsql review apply`.
pub async fn run(session: &Session, args: &ReviewApplyArgs) -> Result<ExitCode> {
    let Some(orgs) = &session.orgs else {
        bail!("review apply reads and changes the organization through the API, not a snapshot");
    };
    if args.execute {
        let sha = args.plan_sha.as_deref().unwrap_or_default();
        return execute(orgs.clients(), &args.dir, sha).await;
    }
    let (review, fingerprint) = read_review(&args.dir)?;
    let started = chrono::DateTime::parse_from_rfc3339(&review.started_at)
        .map(|t| t.to_utc())
        .with_context(|| format!("{}: started_at", args.dir.display()))?;
    let (decided, _) = super::decisions(&args.dir, &review, started)
        .await
        .map_err(super::shown)?;
    let mut plan = Plan {
        review_fingerprint: fingerprint,
        planned_at: crate::cli::check::envelope::rfc3339(Utc::now()),
        source: session.described.clone(),
        orgsql_version: env!("CARGO_PKG_VERSION").to_string(),
        allow_collateral: args.allow_collateral,
        suspend_leavers: args.suspend_leavers,
        revoke_leaver_tokens: args.revoke_leaver_tokens,
        calls: Vec::new(),
        done_already: Vec::new(),
        refused: Vec::new(),
    };
    for client in orgs.clients() {
        if !review.orgs.iter().any(|o| o == client.org_id()) {
            continue;
        }
        let ctx = crate::context(client).at("the session")?;
        plan_org(
            &ctx,
            client.org_id(),
            &decided,
            args.allow_collateral,
            &mut plan,
        )
        .await?;
        if args.suspend_leavers || args.revoke_leaver_tokens {
            let Some(roster) = &review.roster else {
                bail!(
                    "--suspend-leavers and --revoke-leaver-tokens act on the review's roster, \
                     and this review has none (review start --roster FILE)"
                );
            };
            crate::roster::register(&ctx, &args.dir.join(&roster.path)).at(&roster.path)?;
            plan_leavers(&ctx, client.org_id(), args, &mut plan).await?;
        }
    }
    for (n, call) in plan.calls.iter_mut().enumerate() {
        call.n = n + 1;
    }
    let mut bytes = serde_json::to_vec_pretty(&plan)?;
    bytes.push(b'\n');
    let sha = sha256(&bytes);
    let path = args.dir.join(PLAN_FILE);
    crate::cli::files::write_atomically(&path, |mut file| {
        file.write_all(&bytes)
            .map_err(crate::cli::files::io_at(&path))
    })
    .map_err(|e| anyhow!("{}", crate::error::message(&e)))?;
    let mut out = std::io::stdout().lock();
    show_plan(&mut out, &plan)?;
    writeln!(
        out,
        "\nPlan: {} ({} call{}), sha256 {sha}. Nothing was sent. To send exactly these calls:\n  \
         orgsql review apply {} --execute --plan-sha {sha}",
        path.display(),
        plan.calls.len(),
        if plan.calls.len() == 1 { "" } else { "s" },
        args.dir.display()
    )?;
    Ok(ExitCode::from(if plan.refused.is_empty() { 0 } else { 1 }))
}

/// The grants of one account now: (resource, role) → how assigned.
type Held = BTreeMap<(String, String), BTreeSet<String>>;

/// Add to `plan` the calls that carry out the revoke decisions of `org`.
async fn plan_org(
    ctx: &SessionContext,
    org: &str,
    decided: &BTreeMap<Vec<String>, Decided>,
    allow_collateral: bool,
    plan: &mut Plan,
) -> Result<()> {
    let revokes: Vec<(&Vec<String>, &Decided)> = decided
        .iter()
        .filter(|(key, d)| key[0] == org && d.revoke == Some(true))
        .collect();
    if revokes.is_empty() {
        return Ok(());
    }
    let accounts: BTreeSet<&str> = revokes.iter().map(|(key, _)| key[1].as_str()).collect();
    let in_list = accounts
        .iter()
        .map(|a| literal(a))
        .collect::<Vec<_>>()
        .join(", ");
    // What each account holds now, and how.
    let mut held: BTreeMap<String, Held> = BTreeMap::new();
    for row in rows(
        ctx,
        &format!(
            "SELECT account_id, resource_id, role, coalesce(assignment_methods, '') \
             FROM user_role_assignments WHERE account_id IN ({in_list})"
        ),
    )
    .await?
    {
        held.entry(row[0].clone())
            .or_default()
            .entry((row[1].clone(), row[2].clone()))
            .or_default()
            .extend(
                row[3]
                    .split(',')
                    .filter(|m| !m.is_empty())
                    .map(str::to_string),
            );
    }
    // Their groups, and what each group gives.
    let mut groups_of: BTreeMap<String, Vec<String>> = BTreeMap::new();
    // By group id: directory, name, synced from an identity provider.
    let mut groups: BTreeMap<String, (String, String, bool)> = BTreeMap::new();
    for row in rows(
        ctx,
        &format!(
            "SELECT m.account_id, m.group_id, g.directory_id, coalesce(g.name, m.group_name), \
               coalesce(g.external_synced, false) \
             FROM group_members m JOIN groups g ON g.group_id = m.group_id \
             WHERE m.account_id IN ({in_list})"
        ),
    )
    .await?
    {
        groups_of
            .entry(row[0].clone())
            .or_default()
            .push(row[1].clone());
        groups.insert(
            row[1].clone(),
            (row[2].clone(), row[3].clone(), row[4] == "true"),
        );
    }
    let mut gives: BTreeMap<String, BTreeSet<(String, String)>> = BTreeMap::new();
    if !groups.is_empty() {
        let ids = groups
            .keys()
            .map(|g| literal(g))
            .collect::<Vec<_>>()
            .join(", ");
        for row in rows(
            ctx,
            &format!(
                "SELECT group_id, resource_id, role FROM group_role_assignments \
                 WHERE group_id IN ({ids})"
            ),
        )
        .await?
        {
            gives
                .entry(row[0].clone())
                .or_default()
                .insert((row[1].clone(), row[2].clone()));
        }
    }
    let decision_of = |account: &str, grant: &(String, String)| -> (String, String) {
        let key = vec![
            org.to_string(),
            account.to_string(),
            grant.0.clone(),
            grant.1.clone(),
        ];
        match decided.get(&key) {
            Some(d) => (
                match d.revoke {
                    Some(true) => "revoke",
                    Some(false) => "keep",
                    None => "undecided",
                }
                .to_string(),
                format!("{}:{}", d.file, d.line),
            ),
            None => ("not in the review".to_string(), String::new()),
        }
    };

    // Each revoke decision: its direct call, and the memberships it needs.
    struct Needs<'a> {
        key: &'a Vec<String>,
        decided: &'a Decided,
        direct: Option<Call>,
        memberships: Vec<String>,
    }
    let mut needs = Vec::new();
    let row_of = |key: &Vec<String>, d: &Decided, why: String| Row {
        org_id: org.to_string(),
        account_id: key[1].clone(),
        who: d.who.clone(),
        resource_id: key[2].clone(),
        role: key[3].clone(),
        place: format!("{}:{}", d.file, d.line),
        why,
    };
    for (key, d) in &revokes {
        let (account, grant) = (&key[1], (key[2].clone(), key[3].clone()));
        let Some(methods) = held.get(account).and_then(|h| h.get(&grant)) else {
            plan.done_already
                .push(row_of(key, d, "not in effect now: nothing to send".into()));
            continue;
        };
        let mut need = Needs {
            key,
            decided: d,
            direct: None,
            memberships: Vec::new(),
        };
        let removes = vec![Grant {
            resource_id: grant.0.clone(),
            role: grant.1.clone(),
            decision: "revoke".into(),
            place: format!("{}:{}", d.file, d.line),
            kept_by_another_path: false,
        }];
        if methods.contains("direct") {
            let (template, body) = if grant.1 == ORG_ADMIN {
                (REVOKE_ORG_ROLE, json!({ "role": ORG_ADMIN }))
            } else if REVOCABLE_ROLES.contains(&grant.1.as_str()) {
                (REVOKE_ROLE, json!({ "role": grant.1, "resource": grant.0 }))
            } else {
                plan.refused.push(row_of(
                    key,
                    d,
                    format!(
                        "no Admin API call revokes role {} directly; remove it at \
                         admin.atlassian.com",
                        grant.1
                    ),
                ));
                continue;
            };
            need.direct = Some(Call {
                n: 0,
                org_id: org.to_string(),
                method: "POST".into(),
                template: template.into(),
                path: BTreeMap::from([("userId".to_string(), account.clone())]),
                body: Some(body),
                account_id: account.clone(),
                who: d.who.clone(),
                group: None,
                removes: removes.clone(),
                also: Vec::new(),
                leaver: None,
            });
        }
        if methods.contains("group_direct") {
            need.memberships = groups_of
                .get(account)
                .into_iter()
                .flatten()
                .filter(|g| gives.get(*g).is_some_and(|set| set.contains(&grant)))
                .cloned()
                .collect();
            if need.memberships.is_empty() {
                plan.refused.push(row_of(
                    key,
                    d,
                    "granted through a group, but none of the account's groups gives it now".into(),
                ));
                continue;
            }
        }
        if need.direct.is_none() && need.memberships.is_empty() {
            plan.refused.push(row_of(
                key,
                d,
                format!(
                    "assigned {} (not directly, not through a group): revoke the role it \
                     follows from",
                    methods.iter().cloned().collect::<Vec<_>>().join(",")
                ),
            ));
            continue;
        }
        needs.push(need);
    }

    // The memberships to remove, per account; what each takes away.
    let mut removing: BTreeMap<(String, String), Vec<usize>> = BTreeMap::new();
    for (i, need) in needs.iter().enumerate() {
        for group in &need.memberships {
            removing
                .entry((need.key[1].clone(), group.clone()))
                .or_default()
                .push(i);
        }
    }
    let mut memberships: BTreeMap<(String, String), Call> = BTreeMap::new();
    let mut refused_memberships: BTreeMap<(String, String), String> = BTreeMap::new();
    for ((account, group), served) in &removing {
        let staying: BTreeSet<(String, String)> = groups_of
            .get(account)
            .into_iter()
            .flatten()
            .filter(|g| !removing.contains_key(&(account.clone(), (*g).clone())))
            .flat_map(|g| gives.get(g).into_iter().flatten().cloned())
            .collect();
        let direct: BTreeSet<&(String, String)> = held
            .get(account)
            .into_iter()
            .flatten()
            .filter(|(_, methods)| methods.contains("direct"))
            .map(|(grant, _)| grant)
            .collect();
        let mut removes = Vec::new();
        let mut also = Vec::new();
        for grant in gives.get(group).into_iter().flatten() {
            let (decision, place) = decision_of(account, grant);
            let kept = staying.contains(grant) || direct.contains(grant) && decision != "revoke";
            let entry = Grant {
                resource_id: grant.0.clone(),
                role: grant.1.clone(),
                decision,
                place,
                kept_by_another_path: kept,
            };
            let served_here = served
                .iter()
                .any(|&i| needs[i].key[2] == grant.0 && needs[i].key[3] == grant.1);
            if served_here {
                removes.push(entry);
            } else {
                also.push(entry);
            }
        }
        let (directory, name, synced) = groups.get(group).cloned().unwrap_or_default();
        if synced {
            // The API refuses (403) to change a synced group's members.
            refused_memberships.insert(
                (account.clone(), group.clone()),
                format!(
                    "group {} is synced from an identity provider: remove the membership \
                     there (the Admin API cannot)",
                    visible(&name)
                ),
            );
            continue;
        }
        let lost: Vec<String> = also
            .iter()
            .filter(|g| !g.kept_by_another_path && g.decision != "revoke")
            .map(|g| format!("{} on {} ({})", g.role, g.resource_id, g.decision))
            .collect();
        if !lost.is_empty() && !allow_collateral {
            refused_memberships.insert(
                (account.clone(), group.clone()),
                format!(
                    "removing the membership of group {} also takes away {}, not decided \
                     revoke (--allow-collateral plans it anyway)",
                    visible(&name),
                    lost.join(", ")
                ),
            );
            continue;
        }
        let who = needs[served[0]].decided.who.clone();
        memberships.insert(
            (account.clone(), group.clone()),
            Call {
                n: 0,
                org_id: org.to_string(),
                method: "DELETE".into(),
                template: REMOVE_MEMBERSHIP.into(),
                path: BTreeMap::from([
                    ("directoryId".to_string(), directory),
                    ("groupId".to_string(), group.clone()),
                    ("accountId".to_string(), account.clone()),
                ]),
                body: None,
                account_id: account.clone(),
                who,
                group: Some(name),
                removes,
                also,
                leaver: None,
            },
        );
    }
    // A decision is carried out only whole: a membership refused refuses
    // every decision that needs it, and their direct calls.
    let mut wanted: BTreeSet<(String, String)> = BTreeSet::new();
    for need in needs {
        let refusals: Vec<&String> = need
            .memberships
            .iter()
            .filter_map(|g| refused_memberships.get(&(need.key[1].clone(), g.clone())))
            .collect();
        if !refusals.is_empty() {
            plan.refused.push(row_of(
                need.key,
                need.decided,
                refusals
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join("; "),
            ));
            continue;
        }
        plan.calls.extend(need.direct);
        for group in need.memberships {
            wanted.insert((need.key[1].clone(), group));
        }
    }
    plan.calls.extend(
        memberships
            .into_iter()
            .filter(|(key, _)| wanted.contains(key))
            .map(|(_, call)| call),
    );
    Ok(())
}

/// Add to `plan` a suspension of each leaver's account (per directory it
/// has roles in) and a revocation of each of their API tokens, as asked.
/// A leaver: terminated with no end date, or past their end date (as the
/// `leavers_with_access` control has it).
async fn plan_leavers(
    ctx: &SessionContext,
    org: &str,
    args: &ReviewApplyArgs,
    plan: &mut Plan,
) -> Result<()> {
    let leavers = rows(
        ctx,
        "SELECT u.account_id, coalesce(u.email, u.account_id), coalesce(u.membership_status, ''), \
           coalesce(r.employment_status, ''), coalesce(CAST(r.end_date AS VARCHAR), '') \
         FROM roster r JOIN users u ON lower(u.email) = lower(r.email) \
         WHERE r.end_date < current_date \
            OR (r.end_date IS NULL AND lower(r.employment_status) = 'terminated') \
         ORDER BY 2",
    )
    .await?;
    if leavers.is_empty() {
        return Ok(());
    }
    let in_list = leavers
        .iter()
        .map(|l| literal(&l[0]))
        .collect::<Vec<_>>()
        .join(", ");
    let said = |l: &[String]| match (l[3].as_str(), l[4].as_str()) {
        (status, "") => format!("the roster says {status}"),
        (_, end) => format!("the roster says they left on {end}"),
    };
    let call =
        |l: &[String], method: &str, template: &str, path: &[(&str, &str)], what: String| Call {
            n: 0,
            org_id: org.to_string(),
            method: method.to_string(),
            template: template.to_string(),
            path: path
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: None,
            account_id: l[0].clone(),
            who: l[1].clone(),
            group: None,
            removes: Vec::new(),
            also: Vec::new(),
            leaver: Some(format!("{what}: {}", said(l))),
        };
    let leaver_row = |l: &[String], what: &str, why: String| Row {
        org_id: org.to_string(),
        account_id: l[0].clone(),
        who: l[1].clone(),
        resource_id: String::new(),
        role: what.to_string(),
        place: "roster".to_string(),
        why,
    };
    if args.suspend_leavers {
        let mut directories: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for row in rows(
            ctx,
            &format!(
                "SELECT DISTINCT account_id, directory_id FROM user_role_assignments \
                 WHERE account_id IN ({in_list}) AND directory_id IS NOT NULL"
            ),
        )
        .await?
        {
            directories
                .entry(row[0].clone())
                .or_default()
                .insert(row[1].clone());
        }
        for l in &leavers {
            if l[2] == "suspended" {
                plan.done_already
                    .push(leaver_row(l, "(suspend)", "suspended already".into()));
                continue;
            }
            let Some(dirs) = directories.get(&l[0]) else {
                plan.refused.push(leaver_row(
                    l,
                    "(suspend)",
                    "no directory of the account is known (it holds no role): suspend it at \
                     admin.atlassian.com"
                        .into(),
                ));
                continue;
            };
            for directory in dirs {
                plan.calls.push(call(
                    l,
                    "POST",
                    SUSPEND,
                    &[("directoryId", directory), ("accountId", &l[0])],
                    "suspend the account of a leaver".into(),
                ));
            }
        }
    }
    if args.revoke_leaver_tokens {
        let tokens = rows(
            ctx,
            &format!(
                "SELECT account_id, token_id, coalesce(label, '') FROM api_tokens \
                 WHERE account_id IN ({in_list}) ORDER BY account_id, token_id"
            ),
        )
        .await?;
        for token in &tokens {
            let Some(l) = leavers.iter().find(|l| l[0] == token[0]) else {
                continue;
            };
            plan.calls.push(call(
                l,
                "DELETE",
                DELETE_TOKEN,
                &[("accountId", &l[0]), ("tokenId", &token[1])],
                format!("revoke API token {:?} of a leaver", token[2]),
            ));
        }
    }
    Ok(())
}

/// The rows of `sql`, as text.
pub(crate) async fn rows(ctx: &SessionContext, sql: &str) -> Result<Vec<Vec<String>>> {
    let batches = crate::sql::frame(ctx, sql)
        .await
        .at("the organization")?
        .collect()
        .await
        .at("the organization")?;
    Ok(crate::cli::output::text_rows(&batches, "")?)
}

/// The plan as a table, then what it refuses and what needs nothing.
pub(crate) fn show_plan(out: &mut dyn Write, plan: &Plan) -> Result<()> {
    use datafusion::arrow::array::{ArrayRef, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::arrow::record_batch::RecordBatch;
    let grants = |grants: &[Grant]| {
        grants
            .iter()
            .map(|g| {
                let mut text = format!("{} on {} ({}", g.role, g.resource_id, g.decision);
                if g.kept_by_another_path {
                    text.push_str(", kept another way");
                }
                text.push(')');
                text
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    let columns: [(&str, Vec<String>); 5] = [
        ("#", plan.calls.iter().map(|c| c.n.to_string()).collect()),
        (
            "call",
            plan.calls
                .iter()
                .map(|c| match &c.group {
                    Some(group) => format!("{} {} (group {group})", c.method, c.template),
                    None => format!(
                        "{} {} {}",
                        c.method,
                        c.template,
                        c.body.as_ref().map(Value::to_string).unwrap_or_default()
                    ),
                })
                .collect(),
        ),
        ("who", plan.calls.iter().map(|c| c.who.clone()).collect()),
        (
            "removes",
            plan.calls.iter().map(|c| grants(&c.removes)).collect(),
        ),
        (
            "also takes away",
            plan.calls.iter().map(|c| grants(&c.also)).collect(),
        ),
    ];
    let schema = std::sync::Arc::new(Schema::new(
        columns
            .iter()
            .map(|(name, _)| Field::new(*name, DataType::Utf8, false))
            .collect::<Vec<_>>(),
    ));
    let arrays: Vec<ArrayRef> = columns
        .into_iter()
        .map(|(_, values)| std::sync::Arc::new(StringArray::from(values)) as ArrayRef)
        .collect();
    let batch = RecordBatch::try_new(schema.clone(), arrays)?;
    // The table printer makes every cell visible (API text is untrusted).
    crate::cli::output::print(
        out,
        crate::cli::output::Format::Table,
        &schema,
        &[batch],
        None,
    )?;
    for (title, rows) in [
        ("Refused (no call planned)", &plan.refused),
        ("Already carried out (nothing to send)", &plan.done_already),
    ] {
        if rows.is_empty() {
            continue;
        }
        writeln!(out, "\n{title}:")?;
        for row in rows {
            writeln!(
                out,
                "- {} {} on {} ({}): {}",
                visible(&row.who),
                visible(&row.role),
                visible(&row.resource_id),
                visible(&row.place),
                visible(&row.why)
            )?;
        }
    }
    Ok(())
}

/// One line of the journal: what became of a call.
#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    /// `Call::key`: the request as sent.
    call: String,
    n: usize,
    plan_sha: String,
    /// sent (2xx), gone (read again: already removed), changed (read again:
    /// not as planned, refused), rejected (4xx), failed (5xx, no answer).
    outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    request_id: Option<String>,
    at: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    message: String,
}

/// `--execute`: send the calls of the plan whose sha256 is `sha`.
async fn execute<'a>(
    clients_of: impl Iterator<Item = &'a Client>,
    dir: &Path,
    sha: &str,
) -> Result<ExitCode> {
    let path = dir.join(PLAN_FILE);
    let bytes = std::fs::read(&path).with_context(|| {
        format!(
            "{}: no plan to execute; run `orgsql review apply {}` first",
            path.display(),
            dir.display()
        )
    })?;
    let actual = sha256(&bytes);
    if !actual.eq_ignore_ascii_case(sha) {
        bail!(
            "{}: its sha256 is {actual}, not {sha} (--plan-sha): it is not the plan you \
             approved; nothing was sent. Plan again and check what it shows",
            path.display()
        );
    }
    let plan: Plan = serde_json::from_slice(&bytes)
        .with_context(|| format!("{}: not a plan written by orgsql", path.display()))?;
    // A seats plan (orgsql seats plan) was made for its seats.csv, a
    // review's plan for its review.json.
    let seats = dir.join(SEATS_FILE);
    let fingerprint = if !dir.join(super::REVIEW_JSON).exists() && seats.exists() {
        sha256(&std::fs::read(&seats).with_context(|| format!("cannot read {}", seats.display()))?)
    } else {
        read_review(dir)?.1
    };
    if fingerprint != plan.review_fingerprint {
        bail!(
            "{}: planned for the review with fingerprint {}, but {} now has {fingerprint}; \
             nothing was sent",
            path.display(),
            plan.review_fingerprint,
            dir.join(super::REVIEW_JSON).display()
        );
    }
    let journal_path = dir.join(JOURNAL_FILE);
    let journal = read_journal(&journal_path)?;
    // Each organization's client, and a session over it to read grants again.
    let mut clients: BTreeMap<&str, (&Client, SessionContext)> = BTreeMap::new();
    for client in clients_of {
        let ctx = crate::context(client).at("the session")?;
        clients.insert(client.org_id(), (client, ctx));
    }
    let mut journal_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&journal_path)
        .with_context(|| format!("cannot write {}", journal_path.display()))?;
    let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut out = std::io::stdout().lock();
    for call in &plan.calls {
        let key = call.key();
        let before = journal.iter().rev().find(|e| {
            e.call == key
                && (matches!(e.outcome.as_str(), "sent" | "gone")
                    || e.plan_sha == actual && matches!(e.outcome.as_str(), "changed" | "rejected"))
        });
        if let Some(entry) = before {
            writeln!(
                out,
                "{:>3}  {}: {} by an earlier run ({})",
                call.n,
                visible(&key),
                entry.outcome,
                entry.at
            )?;
            *counts.entry("earlier").or_default() += 1;
            continue;
        }
        let (client, ctx) = clients.get(call.org_id.as_str()).ok_or_else(|| {
            anyhow!(
                "call {}: the session has no connection to organization {}",
                call.n,
                call.org_id
            )
        })?;
        let entry = carry_out(client, ctx, call, &actual).await;
        writeln!(
            out,
            "{:>3}  {}: {}{}{}",
            call.n,
            visible(&key),
            entry.outcome,
            match (&entry.status, &entry.request_id) {
                (Some(status), Some(id)) => format!(" ({status}, request {})", visible(id)),
                (Some(status), None) => format!(" ({status})"),
                _ => String::new(),
            },
            if entry.message.is_empty() {
                String::new()
            } else {
                format!(": {}", visible(&entry.message))
            }
        )?;
        serde_json::to_writer(&mut journal_file, &entry)?;
        journal_file.write_all(b"\n")?;
        journal_file.sync_data()?;
        *counts
            .entry(match entry.outcome.as_str() {
                "sent" => "sent",
                "gone" => "gone",
                "changed" => "changed",
                "rejected" => "rejected",
                _ => "failed",
            })
            .or_default() += 1;
    }
    let count = |k: &str| counts.get(k).copied().unwrap_or(0);
    let bad = count("changed") + count("rejected") + count("failed");
    writeln!(
        out,
        "\n{} call(s): {} sent, {} already gone, {} done by an earlier run, {} refused (changed \
         since the plan), {} rejected by the API, {} failed (run again to retry them). \
         Journal: {}",
        plan.calls.len(),
        count("sent"),
        count("gone"),
        count("earlier"),
        count("changed"),
        count("rejected"),
        count("failed"),
        journal_path.display()
    )?;
    let done = count("sent") + count("gone") + count("earlier");
    Ok(ExitCode::from(if bad == 0 && plan.refused.is_empty() {
        0
    } else if done == 0 && !plan.calls.is_empty() {
        2
    } else {
        1
    }))
}

fn read_journal(path: &Path) -> Result<Vec<Entry>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    // A line cut short by a stop mid-write is no outcome: its call is read
    // again and found done or not.
    Ok(text
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect())
}

/// Read the call's grant again, then send it if it is as planned.
async fn carry_out(client: &Client, ctx: &SessionContext, call: &Call, plan_sha: &str) -> Entry {
    let entry =
        |outcome: &str, status: Option<u16>, request_id: Option<String>, message: String| Entry {
            call: call.key(),
            n: call.n,
            plan_sha: plan_sha.to_string(),
            outcome: outcome.to_string(),
            status,
            request_id,
            at: crate::cli::check::envelope::rfc3339(Utc::now()),
            message,
        };
    match still_as_planned(client, ctx, call).await {
        Ok(Standing::Gone) => return entry("gone", None, None, "already removed".into()),
        Ok(Standing::Changed(why)) => return entry("changed", None, None, why),
        Ok(Standing::AsPlanned) => {}
        Err(e) => return entry("failed", None, None, format!("reading it again: {e:#}")),
    }
    let request = match call.request() {
        Ok(request) => request,
        Err(e) => return entry("failed", None, None, format!("{e:#}")),
    };
    match client.write(&request).await {
        Ok(written) if written.ok() => entry(
            "sent",
            Some(written.status),
            written.request_id,
            String::new(),
        ),
        Ok(written) if (400..500).contains(&written.status) && written.status != 429 => entry(
            "rejected",
            Some(written.status),
            written.request_id,
            written.message,
        ),
        Ok(written) => entry(
            "failed",
            Some(written.status),
            written.request_id,
            written.message,
        ),
        Err(e) => entry("failed", None, None, e.to_string()),
    }
}

enum Standing {
    AsPlanned,
    Gone,
    Changed(String),
}

/// The call's grant as it is now: still there as planned, gone, or changed.
async fn still_as_planned(client: &Client, ctx: &SessionContext, call: &Call) -> Result<Standing> {
    client.clear_cache(None);
    let account = literal(&call.account_id);
    match call.template.as_str() {
        REVOKE_ORG_ROLE | REVOKE_ROLE => {
            let Some(grant) = call.removes.first() else {
                bail!("call {} names no grant", call.n);
            };
            let found = rows(
                ctx,
                &format!(
                    "SELECT coalesce(assignment_methods, '') FROM user_role_assignments \
                     WHERE account_id = {account} AND resource_id = {} AND role = {}",
                    literal(&grant.resource_id),
                    literal(&grant.role)
                ),
            )
            .await?;
            let direct = found
                .iter()
                .any(|row| row[0].split(',').any(|m| m == "direct"));
            Ok(if direct {
                Standing::AsPlanned
            } else {
                Standing::Gone
            })
        }
        REMOVE_MEMBERSHIP => {
            let group = literal(call.path.get("groupId").map_or("", String::as_str));
            let member = rows(
                ctx,
                &format!(
                    "SELECT 1 FROM group_members WHERE group_id = {group} AND account_id = {account}"
                ),
            )
            .await?;
            if member.is_empty() {
                return Ok(Standing::Gone);
            }
            let now: BTreeSet<(String, String)> = rows(
                ctx,
                &format!(
                    "SELECT resource_id, role FROM group_role_assignments WHERE group_id = {group}"
                ),
            )
            .await?
            .into_iter()
            .map(|row| (row[0].clone(), row[1].clone()))
            .collect();
            let planned = call.expected_grants();
            Ok(if now == planned {
                Standing::AsPlanned
            } else {
                Standing::Changed(format!(
                    "the group gives other grants now than when planned ({} then, {} now): \
                     plan again",
                    planned.len(),
                    now.len()
                ))
            })
        }
        SUSPEND => {
            let status = rows(
                ctx,
                &format!(
                    "SELECT coalesce(membership_status, '') FROM users WHERE account_id = {account}"
                ),
            )
            .await?;
            Ok(match status.first() {
                Some(row) if row[0] != "suspended" => Standing::AsPlanned,
                _ => Standing::Gone,
            })
        }
        DELETE_TOKEN => {
            let token = literal(call.path.get("tokenId").map_or("", String::as_str));
            let found = rows(
                ctx,
                &format!(
                    "SELECT 1 FROM api_tokens WHERE account_id = {account} AND token_id = {token}"
                ),
            )
            .await?;
            Ok(if found.is_empty() {
                Standing::Gone
            } else {
                Standing::AsPlanned
            })
        }
        other => bail!("call {}: no way to read {other} again", call.n),
    }
}
