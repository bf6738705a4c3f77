//! Seats (issue 33): the `seats` view checked against the emulator's own
//! model and its users/stats, the requests it takes, the seat controls on
//! planted cases and on a clean organization, and a reclaim plan carried out
//! by `review apply --execute`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Output;

use chrono::{Duration, Utc};
use orgsql::emulator::{Emulator, Faults, Org};

use crate::common::*;

/// The product roles the spec does not mark non-billable.
const BILLABLE: [&str; 3] = ["atlassian/user", "atlassian/admin", "atlassian/guest"];

/// (product key, account, site) of every billable seat in the emulator's
/// model: an active account holding a billable role on a product site,
/// however it was given.
fn model_billable(org: &Org) -> BTreeSet<(String, String, String)> {
    let mut seats = BTreeSet::new();
    for user in org.users.iter().filter(|u| u.status == "active") {
        for role in org.user_roles(user) {
            let site = org.workspaces.iter().find(|w| w.id == role.resource_id);
            if let (Some(site), true) = (site, BILLABLE.contains(&role.role)) {
                seats.insert((
                    site.type_key.to_string(),
                    user.account_id.clone(),
                    site.id.clone(),
                ));
            }
        }
    }
    seats
}

fn run(emu: &Emulator, args: &[&str]) -> Output {
    orgsql_on(emu).args(args).output().expect("orgsql runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// (account, site) of every seat the `seats` view shows now, read afresh.
async fn seats_now(emu: &Emulator) -> BTreeSet<(String, String)> {
    let ctx = session(emu.client_config());
    sql_rows(&ctx, "SELECT account_id, site_id FROM seats")
        .await
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn seats_agree_with_the_model_and_users_stats_without_a_call_per_user() {
    let emu = emulator(spec(150, 5), Faults::default(), None).await;
    let org = emu.org();
    let ctx = session(emu.client_config());
    emu.reset_requests();
    let billable: BTreeSet<(String, String, String)> = sql_rows(
        &ctx,
        "SELECT product_key, account_id, site_id FROM seats WHERE billable",
    )
    .await
    .into_iter()
    .map(|r| (r[0].clone(), r[1].clone(), r[2].clone()))
    .collect();

    // The requests: one users/search pass, the group listings, v1's
    // managed accounts (access_billable) and completeness counts; nothing
    // per user.
    let routes = emu.routes_requested();
    let pages = |n: usize, per: usize| n.div_ceil(per) as u64;
    let managed = org
        .users
        .iter()
        .filter(|u| u.claim_status == "managed")
        .count();
    let prefix = "/admin/v2/orgs/{orgId}/directories/{directoryId}";
    let allowed: BTreeMap<String, u64> = [
        (
            format!("POST {prefix}/users/search"),
            pages(org.users.len(), 100),
        ),
        (
            format!("POST {prefix}/groups/search"),
            pages(org.groups.len(), 20),
        ),
        (
            format!("GET {prefix}/groups/{{groupId}}/role-assignments"),
            org.groups.len() as u64,
        ),
        (
            "GET /admin/v1/orgs/{orgId}/users".to_string(),
            pages(managed, 50),
        ),
        // Completeness counts: one per scan of a listing in the view's plan.
        (format!("GET {prefix}/users/count"), 4),
        (format!("GET {prefix}/groups/count"), 2),
    ]
    .into_iter()
    .collect();
    for (route, count) in &routes {
        let bound = allowed
            .get(route)
            .unwrap_or_else(|| panic!("seats requested {route} ({count} times): {routes:?}"));
        assert!(count <= bound, "{route}: {count} requests, at most {bound}");
    }
    assert_eq!(
        routes.get(&format!("POST {prefix}/users/search")),
        Some(&pages(org.users.len(), 100)),
        "one users/search pass: {routes:?}"
    );

    // Billable seats per product, as the model holds them.
    let model = model_billable(&org);
    let per_product = |seats: &BTreeSet<(String, String, String)>| {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for (product, ..) in seats {
            *counts.entry(product.clone()).or_default() += 1;
        }
        counts
    };
    assert_eq!(
        per_product(&billable),
        per_product(&model),
        "billable seats per product; seats not in the model: {:?}; in the model, not in seats: {:?}",
        billable.difference(&model).collect::<Vec<_>>(),
        model.difference(&billable).collect::<Vec<_>>()
    );
    assert_eq!(billable, model);

    // Accounts per product role equal users/stats, counted from the model
    // by the emulator; the control lists any difference and finds none.
    let stats: BTreeMap<String, String> = sql_rows(
        &ctx,
        "SELECT value, CAST(user_count AS VARCHAR) FROM org_user_stats WHERE kind = 'role'",
    )
    .await
    .into_iter()
    .map(|r| (r[0].clone(), r[1].clone()))
    .collect();
    let holders = |role: &str| {
        org.users
            .iter()
            .filter(|u| org.user_roles(u).iter().any(|r| r.role == role))
            .count()
            .to_string()
    };
    assert_eq!(
        stats.get("atlassian/user"),
        Some(&holders("atlassian/user"))
    );
    let output = run(&emu, &["check", "--controls", "seats_match_user_stats"]);
    assert!(
        output.status.success(),
        "seat counts differ from users/stats: {}{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    assert!(
        text(&output.stdout).contains("0 of 2 product roles"),
        "{}",
        text(&output.stdout)
    );
}

/// The clean organization: everyone has used, recently, every product
/// site they hold, each listed in their product access (so none is held
/// only through a group).
fn make_clean(org: &mut Org) {
    let recent = Utc::now() - Duration::days(1);
    let held: Vec<Vec<usize>> = org
        .users
        .iter()
        .map(|user| {
            let mut sites: Vec<usize> = user
                .groups
                .iter()
                .flat_map(|&g| org.group_roles(g))
                .filter_map(|grant| {
                    org.workspaces
                        .iter()
                        .position(|w| w.id == grant.resource_id)
                })
                .collect();
            sites.extend(user.product_access.iter().map(|p| p.workspace));
            sites.sort_unstable();
            sites.dedup();
            sites
        })
        .collect();
    for (user, sites) in org.users.iter_mut().zip(held) {
        if user.status == "not_invited" {
            continue;
        }
        user.product_access = sites
            .into_iter()
            .map(|workspace| orgsql::emulator::ProductAccess {
                workspace,
                last_active: Some(recent),
            })
            .collect();
    }
}

/// A check run's JSON report: each control's alarmed resources, sorted.
fn alarms(output: &Output) -> BTreeMap<String, Vec<String>> {
    let report: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", text(&output.stdout), text(&output.stderr)));
    report["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|entry| {
            assert_ne!(entry["outcome"], "error", "{entry}");
            (
                entry["id"].as_str().unwrap_or_default().to_string(),
                alarmed_resources(entry),
            )
        })
        .collect()
}

const CONTROLS: &str = "seats_idle_billable,seats_invited_never_active,seats_only_through_admin_group,seats_by_product";

#[tokio::test(flavor = "multi_thread")]
async fn seat_controls_alarm_on_planted_seats_and_not_on_a_clean_org() {
    let emu = emulator(spec(30, 5), Faults::default(), None).await;
    emu.change(make_clean);
    let clean = run(&emu, &["check", "--controls", CONTROLS, "--format", "json"]);
    let found = alarms(&clean);
    assert!(
        found.values().all(Vec::is_empty),
        "a clean organization alarms: {found:?}"
    );
    assert_eq!(clean.status.code(), Some(0), "{}", text(&clean.stderr));

    // Plant, on active people with no platform role: one seat idle for
    // 200 days (A), an account added 100 days ago never active anywhere
    // (B), and a Jira seat held only through jira-administrators (C).
    let org = emu.org();
    let admin_group = org
        .groups
        .iter()
        .position(|g| g.name == "jira-administrators")
        .expect("the emulator has jira-administrators");
    let jira: Vec<usize> = org
        .group_roles(admin_group)
        .iter()
        .filter_map(|grant| {
            org.workspaces
                .iter()
                .position(|w| w.id == grant.resource_id)
        })
        .collect();
    let plain: Vec<usize> = (0..org.users.len())
        .filter(|&i| {
            let u = &org.users[i];
            u.status == "active"
                && u.platform_roles.is_empty()
                && !u.product_access.is_empty()
                && u.groups.iter().all(|&g| {
                    org.group_roles(g)
                        .iter()
                        .all(|grant| !grant.roles.contains(&"atlassian/admin"))
                })
        })
        .collect();
    let c = *plain
        .iter()
        .find(|&&i| org.users[i].directory == org.groups[admin_group].directory)
        .expect("a plain user in jira-administrators' directory");
    let (a, b) = {
        let mut others = plain.iter().filter(|&&i| i != c);
        (
            *others.next().expect("a second plain user"),
            *others.next().expect("a third plain user"),
        )
    };
    let now = Utc::now();
    emu.change(|org| {
        org.users[a].product_access[0].last_active = Some(now - Duration::days(200));
        let user = &mut org.users[b];
        user.added_to_org = now - Duration::days(100);
        for access in &mut user.product_access {
            access.last_active = None;
        }
        // C: the Jira sites only through the admin group.
        let jira_groups: Vec<usize> = (0..org.groups.len())
            .filter(|&g| org.groups[g].name.starts_with("jira-"))
            .collect();
        let user = &mut org.users[c];
        user.product_access.retain(|p| !jira.contains(&p.workspace));
        user.groups.retain(|g| !jira_groups.contains(g));
        user.groups.push(admin_group);
    });
    let org = emu.org();
    let seat = |user: usize, workspace: usize| {
        let w = &org.workspaces[workspace];
        format!("{} on {} {}", org.users[user].email, w.type_key, w.id)
    };
    let a_seat = seat(a, org.users[a].product_access[0].workspace);
    let b_seats: Vec<String> = org.users[b]
        .product_access
        .iter()
        .map(|p| seat(b, p.workspace))
        .collect();
    let c_seats: Vec<String> = jira.iter().map(|&w| seat(c, w)).collect();
    let a_product = org.workspaces[org.users[a].product_access[0].workspace].type_key;

    let planted = run(
        &emu,
        &[
            "check",
            "--controls",
            CONTROLS,
            "--format",
            "json",
            "--param",
            &format!("seat_price={a_product}:7.5"),
        ],
    );
    assert_eq!(planted.status.code(), Some(1), "{}", text(&planted.stderr));
    let found = alarms(&planted);
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    assert_eq!(
        found["seats_idle_billable"],
        sorted([vec![a_seat.clone()], b_seats.clone()].concat())
    );
    assert_eq!(found["seats_invited_never_active"], sorted(b_seats.clone()));
    assert_eq!(found["seats_only_through_admin_group"], sorted(c_seats));
    let products: BTreeSet<String> = std::iter::once(a_product.to_string())
        .chain(
            org.users[b]
                .product_access
                .iter()
                .map(|p| org.workspaces[p.workspace].type_key.to_string()),
        )
        .collect();
    assert_eq!(
        found["seats_by_product"],
        products.iter().cloned().collect::<Vec<_>>()
    );
    // The price is per product: A's product's idle seats at 7.5 a month.
    let idle_there = 1 + b_seats
        .iter()
        .filter(|s| s.contains(&format!(" on {a_product} ")))
        .count();
    let report: serde_json::Value = serde_json::from_slice(&planted.stdout).expect("JSON");
    let summary = report["results"]
        .as_array()
        .and_then(|r| r.iter().find(|e| e["id"] == "seats_by_product"))
        .expect("seats_by_product");
    let reason = summary["findings"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["resource"] == a_product))
        .map(|f| f["reason"].as_str().unwrap_or_default().to_string())
        .expect("a finding for A's product");
    assert!(
        reason.contains(&format!(
            "{idle_there} idle 90+ days, {} a month",
            7.5 * idle_there as f64
        )),
        "{reason}"
    );
}

fn read_csv(path: &Path) -> Vec<BTreeMap<String, String>> {
    let mut reader = csv::Reader::from_path(path).expect("seats.csv");
    let header = reader.headers().expect("header").clone();
    reader
        .records()
        .map(|r| {
            let r = r.expect("a row");
            header
                .iter()
                .zip(r.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_seats_plan_executed_takes_back_exactly_its_seats() {
    let emu = emulator(spec(40, 5), Faults::default(), None).await;
    let before = seats_now(&emu).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("reclaim");
    let out_arg = out.to_string_lossy().to_string();
    let planned = run(
        &emu,
        &["seats", "plan", "--idle-days", "90", "--out", &out_arg],
    );
    assert!(
        matches!(planned.status.code(), Some(0 | 1)),
        "{}",
        text(&planned.stderr)
    );
    assert!(text(&planned.stdout).contains("Nothing was sent"));
    let rows = read_csv(&out.join("seats.csv"));
    let reclaim: BTreeSet<(String, String)> = rows
        .iter()
        .filter(|r| r["planned"] == "reclaim")
        .map(|r| (r["account_id"].clone(), r["site_id"].clone()))
        .collect();
    assert!(
        !reclaim.is_empty(),
        "the plan takes back some seats: {rows:?}"
    );
    for row in &rows {
        assert!(
            !row["grant_paths"].is_empty(),
            "a seat to take back names no grant path: {row:?}"
        );
    }
    // Planning sent nothing.
    assert_eq!(seats_now(&emu).await, before);

    let bytes = std::fs::read(out.join("plan.json")).expect("plan.json");
    let sha = orgsql::snapshot::sha256(&bytes);
    // The plan is for its seats.csv: edited, nothing is sent.
    let seats_csv = out.join("seats.csv");
    let original = std::fs::read(&seats_csv).expect("seats.csv");
    std::fs::write(&seats_csv, [&original[..], b"\n"].concat()).expect("edit seats.csv");
    let refused = run(
        &emu,
        &["review", "apply", &out_arg, "--execute", "--plan-sha", &sha],
    );
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused.stderr));
    assert!(
        text(&refused.stderr).contains("nothing was sent"),
        "{}",
        text(&refused.stderr)
    );
    assert_eq!(seats_now(&emu).await, before);
    std::fs::write(&seats_csv, &original).expect("restore seats.csv");
    let executed = run(
        &emu,
        &["review", "apply", &out_arg, "--execute", "--plan-sha", &sha],
    );
    // Exit 1 when the plan refused some seats (they stay), else 0; every
    // call planned was sent.
    let refused = rows.iter().any(|r| r["planned"] != "reclaim");
    assert_eq!(
        executed.status.code(),
        Some(if refused { 1 } else { 0 }),
        "{}{}",
        text(&executed.stdout),
        text(&executed.stderr)
    );
    let summary = text(&executed.stdout);
    assert!(
        summary.contains("0 refused (changed since the plan), 0 rejected by the API, 0 failed"),
        "{summary}"
    );
    let after = seats_now(&emu).await;
    let gone: BTreeSet<(String, String)> = before.difference(&after).cloned().collect();
    assert_eq!(gone, reclaim, "the seats gone are exactly the planned ones");
    assert!(after.is_subset(&before), "no seat appeared");

    // A second run sends nothing again.
    let again = run(
        &emu,
        &["review", "apply", &out_arg, "--execute", "--plan-sha", &sha],
    );
    assert_eq!(
        again.status.code(),
        executed.status.code(),
        "{}",
        text(&again.stderr)
    );
    assert!(
        text(&again.stdout).contains(": 0 sent"),
        "{}",
        text(&again.stdout)
    );
}
