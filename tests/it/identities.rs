//! Identities beside people's accounts (issue 30, part A): service accounts
//! and their credentials, OAuth clients, the authentication policy of each
//! managed user and `deactivated_on` as tables read to the end; and the
//! controls over them, which alarm on exactly what the demo plants and on
//! nothing once the plants are gone.

use std::collections::HashSet;
use std::process::Output;

use chrono::{DateTime, Duration, Utc};
use orgsql::emulator::{AuthPolicy, DEMO_NOW, Emulator, Faults, Org, OrgSpec};

use crate::common::*;

const ADMIN_ROLES: [&str; 4] = [
    "atlassian/org-admin",
    "atlassian/site-admin",
    "atlassian/admin",
    "atlassian/user-access-admin",
];

/// The controls this module holds to the demo's plants (offboarding needs
/// a roster: its own test).
const CONTROLS: [&str; 7] = [
    "credentials_used_after_end",
    "api_token_activity_unlisted",
    "admin_grants_by_unexpected_actors",
    "admins_without_strong_auth_policy",
    "managed_users_without_auth_policy",
    "service_accounts_unowned_or_unused",
    "service_account_tokens_without_expiry",
];

fn millis(t: Option<DateTime<Utc>>) -> String {
    t.map_or("NULL".to_string(), |t| t.timestamp_millis().to_string())
}

/// A time column as epoch milliseconds, or NULL.
fn ms(column: &str) -> String {
    format!("coalesce(CAST(CAST({column} AS BIGINT) / 1000 AS VARCHAR), 'NULL')")
}

fn sorted(mut v: Vec<Vec<String>>) -> Vec<Vec<String>> {
    v.sort();
    v
}

/// When the organization deactivated the account, as its audit log says
/// (the newest such event naming it); `None` for any other account.
fn deactivated_on(org: &Org, account: usize) -> Option<DateTime<Utc>> {
    let u = &org.users[account];
    if u.claim_status != "managed" || !matches!(u.status, "deactivated" | "for_deletion") {
        return None;
    }
    org.events
        .iter()
        .find(|e| {
            e.action == "managed_account_deactivated"
                && e.context.iter().any(|c| c["id"] == u.account_id.as_str())
        })
        .map(|e| e.time)
}

fn is_admin(org: &Org, account: usize) -> bool {
    org.user_roles(&org.users[account])
        .iter()
        .any(|r| ADMIN_ROLES.contains(&r.role))
}

#[tokio::test(flavor = "multi_thread")]
async fn identity_tables_are_the_emulators_rows_across_pages() {
    let emu = emulator(spec(120, 300), Faults::default(), Some(2)).await;
    let org = emu.org();
    let ids = &org.identities;
    let ctx = session(emu.client_config());

    let expected = ids
        .service_accounts
        .iter()
        .map(|a| {
            vec![
                a.id.clone(),
                a.atlassian_id.clone(),
                a.name.to_string(),
                a.email.clone(),
                a.status.to_string(),
                a.created_by
                    .map_or("NULL".to_string(), |u| org.users[u].account_id.clone()),
                millis(Some(a.created_at)),
                millis(Some(a.updated_at)),
            ]
        })
        .collect();
    let got = sql_rows(
        &ctx,
        &format!(
            "SELECT service_account_id, account_id, name, email, status, \
             coalesce(created_by_id, 'NULL'), {}, {} FROM service_accounts ORDER BY 1",
            ms("created_at"),
            ms("updated_at")
        ),
    )
    .await;
    assert_eq!(got, sorted(expected));
    assert!(ids.service_accounts.len() > 4, "more than two pages");
    assert_eq!(
        emu.requests("/service-accounts") as usize,
        ids.service_accounts.len().div_ceil(2)
    );

    let credentials = |tokens: bool| -> Vec<Vec<String>> {
        sorted(
            ids.service_accounts
                .iter()
                .flat_map(|a| {
                    let of = if tokens { &a.tokens } else { &a.oauth_clients };
                    of.iter().map(|c| {
                        vec![
                            c.id.clone(),
                            a.id.clone(),
                            c.label.to_string(),
                            millis(c.expires_at),
                            millis(c.last_active),
                        ]
                    })
                })
                .collect(),
        )
    };
    let got = sql_rows(
        &ctx,
        &format!(
            "SELECT token_id, service_account_id, label, {}, {} \
             FROM service_account_tokens ORDER BY 1",
            ms("expires_at"),
            ms("last_active_at")
        ),
    )
    .await;
    assert_eq!(got, credentials(true));
    let got = sql_rows(
        &ctx,
        &format!(
            "SELECT client_id, service_account_id, name, {}, {} \
             FROM service_account_oauth_clients ORDER BY 1",
            ms("expires_at"),
            ms("last_active_at")
        ),
    )
    .await;
    assert_eq!(got, credentials(false));

    let expected = ids
        .oauth_clients
        .iter()
        .map(|c| {
            vec![
                c.id.clone(),
                c.name.to_string(),
                org.users[c.created_by].account_id.clone(),
                millis(c.last_active),
            ]
        })
        .collect();
    let got = sql_rows(
        &ctx,
        &format!(
            "SELECT client_id, name, created_by_id, {} FROM oauth_clients ORDER BY 1",
            ms("last_active_at")
        ),
    )
    .await;
    assert_eq!(got, sorted(expected));

    // Every managed user's policy, in batches of at most 100 ids.
    let managed: Vec<usize> = (0..org.users.len())
        .filter(|&i| org.users[i].claim_status == "managed")
        .collect();
    assert!(managed.len() > 100, "more than one batch");
    let expected = managed
        .iter()
        .map(|&i| {
            let policy = ids.policy_of[i].map(|p| &ids.auth_policies[p]);
            vec![
                org.users[i].account_id.clone(),
                policy.map_or("NULL".to_string(), |p| p.name.to_string()),
                policy.map_or("NULL".to_string(), |p| p.sso_enforced.to_string()),
                policy.map_or("NULL".to_string(), |p| p.two_step_enforced.to_string()),
            ]
        })
        .collect();
    emu.reset_requests();
    let got = sql_rows(
        &ctx,
        "SELECT account_id, coalesce(policy_name, 'NULL'), \
         coalesce(CAST(sso_enforced AS VARCHAR), 'NULL'), \
         coalesce(CAST(two_step_enforced AS VARCHAR), 'NULL') \
         FROM user_auth_policies ORDER BY 1",
    )
    .await;
    assert_eq!(got, sorted(expected));
    assert_eq!(
        emu.requests("/bulk-fetch") as usize,
        managed.len().div_ceil(100)
    );

    // deactivated_on: one call per user, and only when a query names it.
    emu.reset_requests();
    let _ = sql_rows(&ctx, "SELECT count(*) FROM users").await;
    assert_eq!(emu.requests("/users/{accountId}"), 0);
    let expected = (0..org.users.len())
        .map(|i| {
            vec![
                org.users[i].account_id.clone(),
                millis(deactivated_on(&org, i)),
            ]
        })
        .collect::<Vec<_>>();
    assert!(
        expected.iter().filter(|r| r[1] != "NULL").count() > 1,
        "the organization has deactivated accounts"
    );
    let got = sql_rows(
        &ctx,
        &format!(
            "SELECT account_id, {} FROM user_details ORDER BY 1",
            ms("deactivated_on")
        ),
    )
    .await;
    assert_eq!(got, sorted(expected));
    assert_eq!(emu.requests("/users/{accountId}") as usize, org.users.len());
}

/// `\d` says what of each new table's shape is unverified.
#[test]
fn unverified_shapes_are_marked() {
    for table in [
        "service_accounts",
        "service_account_tokens",
        "service_account_oauth_clients",
        "oauth_clients",
        "user_auth_policies",
        "user_details",
    ] {
        assert!(orgsql::tables::find(table).is_some(), "{table} is a table");
        assert!(
            orgsql::tables::unverified(table).is_some(),
            "{table} is marked unverified"
        );
    }
}

/// What each control must alarm on, from the organization's data.
fn planted(org: &Org, now: DateTime<Utc>) -> Vec<(&'static str, Vec<String>)> {
    let window = now - Duration::days(90);
    let sort = |mut v: Vec<String>| {
        v.sort();
        v.dedup();
        v
    };
    // Used after the credential ended: revoked or expired, whichever first.
    let mut ended: Vec<String> = org
        .api_keys
        .iter()
        .filter_map(|k| {
            let end = match (k.revoked.map(|(_, at)| at), k.expires_at) {
                (Some(r), Some(e)) => Some(r.min(e)),
                (Some(r), None) => Some(r),
                (None, Some(e)) if e < now => Some(e),
                _ => None,
            }?;
            (k.last_active? > end).then(|| k.id.clone())
        })
        .collect();
    ended.extend(
        org.api_tokens
            .iter()
            .filter(|t| {
                t.expires_at
                    .is_some_and(|e| e < now && t.last_active.is_some_and(|l| l > e))
            })
            .map(|t| t.id.clone()),
    );
    let service_tokens = org
        .identities
        .service_accounts
        .iter()
        .flat_map(|a| a.tokens.iter());
    ended.extend(
        service_tokens
            .clone()
            .filter(|t| {
                t.expires_at
                    .is_some_and(|e| e < now && t.last_active.is_some_and(|l| l > e))
            })
            .map(|t| t.id.clone()),
    );
    // Token activity with tokens no listing has.
    let listed: HashSet<&str> = org
        .api_tokens
        .iter()
        .map(|t| t.id.as_str())
        .chain(service_tokens.clone().map(|t| t.id.as_str()))
        .collect();
    let unlisted = org
        .events
        .iter()
        .filter(|e| e.time >= window)
        .filter_map(|e| {
            let (kind, token) = e.auth.as_ref()?;
            (*kind == "api-token" && !listed.contains(token.as_str())).then(|| {
                e.actor_email
                    .clone()
                    .unwrap_or_else(|| e.actor_name.clone())
            })
        })
        .collect();
    // Grants by actors who are not managed, or not admins.
    let index = |account: &str| org.users.iter().position(|u| u.account_id == account);
    let grants = org
        .events
        .iter()
        .filter(|e| e.time >= window)
        .filter(|e| {
            [
                "added_org_admin",
                "group_granted_admin_access",
                "user_granted_role",
                "group_granted_role",
            ]
            .contains(&e.action)
        })
        .filter(|e| {
            index(&e.actor_id)
                .is_none_or(|a| org.users[a].claim_status != "managed" || !is_admin(org, a))
        })
        .map(|e| e.id.clone())
        .collect();
    let ids = &org.identities;
    let policy = |i: usize| ids.policy_of[i].map(|p| &ids.auth_policies[p]);
    let weak_admins = (0..org.users.len())
        .filter(|&i| org.users[i].status == "active" && is_admin(org, i))
        .filter(|&i| {
            org.users[i].claim_status != "managed" || !policy(i).is_some_and(AuthPolicy::strong)
        })
        .map(|i| org.users[i].email.clone())
        .collect();
    let no_policy = (0..org.users.len())
        .filter(|&i| {
            let u = &org.users[i];
            u.claim_status == "managed" && u.status == "active" && policy(i).is_none()
        })
        .map(|i| org.users[i].email.clone())
        .collect();
    let unowned_or_unused = ids
        .service_accounts
        .iter()
        .filter(|a| {
            let owned = a
                .created_by
                .is_some_and(|u| org.users[u].status == "active");
            let last = a
                .tokens
                .iter()
                .chain(&a.oauth_clients)
                .filter_map(|c| c.last_active)
                .max();
            !owned || last.is_none_or(|l| l < window)
        })
        .map(|a| a.name.to_string())
        .collect();
    let immortal = service_tokens
        .filter(|t| t.expires_at.is_none())
        .map(|t| t.id.clone())
        .collect();
    vec![
        ("credentials_used_after_end", sort(ended)),
        ("api_token_activity_unlisted", sort(unlisted)),
        ("admin_grants_by_unexpected_actors", sort(grants)),
        ("admins_without_strong_auth_policy", sort(weak_admins)),
        ("managed_users_without_auth_policy", sort(no_policy)),
        (
            "service_accounts_unowned_or_unused",
            sort(unowned_or_unused),
        ),
        ("service_account_tokens_without_expiry", sort(immortal)),
    ]
}

fn report(output: &Output) -> Vec<serde_json::Value> {
    serde_json::from_slice::<serde_json::Value>(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stderr)))["results"]
        .as_array()
        .expect("results")
        .clone()
}

fn entry<'r>(report: &'r [serde_json::Value], id: &str) -> &'r serde_json::Value {
    report
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("{id} ran"))
}

#[test]
fn the_demo_alarms_on_exactly_its_planted_identity_findings() {
    let org = Org::generate(&OrgSpec::default());
    let output = orgsql_alone()
        .args(["--demo", "check", "--format", "json", "--controls"])
        .arg(CONTROLS.join(",") + ",inactive_managed_accounts_with_access")
        .output()
        .expect("orgsql runs");
    let report = report(&output);
    for (control, expected) in planted(&org, DEMO_NOW) {
        assert!(!expected.is_empty(), "the demo plants {control}");
        assert_eq!(
            alarmed_resources(entry(&report, control)),
            expected,
            "{control}"
        );
    }
    // The three: a revoked key and an expired one used after, and
    // a token used after it expired.
    let ended = alarmed_resources(entry(&report, "credentials_used_after_end"));
    for label in ["old-provisioning", "expired-report"] {
        let key = org.api_keys.iter().find(|k| k.label == label).expect(label);
        assert!(ended.contains(&key.id), "{label}");
    }
    assert!(org.api_tokens.iter().any(|t| ended.contains(&t.id)));

    // The primary org admin used no product for over 90 days, yet acts in
    // the audit log: not inactive.
    let primary = &org.users[0];
    assert!(primary.platform_roles.contains(&"atlassian/org-admin"));
    let cutoff = DEMO_NOW - Duration::days(90);
    assert!(
        primary
            .product_access
            .iter()
            .filter_map(|p| p.last_active)
            .all(|l| l < cutoff),
        "by product activity alone the primary admin is inactive"
    );
    assert!(
        org.events
            .iter()
            .any(|e| e.actor_id == primary.account_id && e.time >= cutoff)
    );
    let inactive = alarmed_resources(entry(&report, "inactive_managed_accounts_with_access"));
    assert!(!inactive.is_empty());
    assert!(!inactive.contains(&primary.email), "{inactive:?}");
}

/// Offboarding time, on the demo with a roster made of its accounts: one
/// deactivated the day they left (in time), one ten days after (late),
/// one still active after leaving, one leaving next month (not yet judged).
#[test]
fn offboarding_time_runs_from_the_roster_end_date_to_deactivation() {
    let org = Org::generate(&OrgSpec::default());
    let deactivated: Vec<(usize, DateTime<Utc>)> = (0..org.users.len())
        .filter_map(|i| Some((i, deactivated_on(&org, i)?)))
        .collect();
    assert!(deactivated.len() >= 2);
    let (in_time, in_time_at) = deactivated[0];
    let (late, late_at) = deactivated[1];
    let active: Vec<usize> = (1..org.users.len())
        .filter(|&i| org.users[i].claim_status == "managed" && org.users[i].status == "active")
        .take(2)
        .collect();
    let today = DEMO_NOW.date_naive();
    let rows = [
        (in_time, in_time_at.date_naive()),
        (late, late_at.date_naive() - Duration::days(10)),
        (active[0], today - Duration::days(5)),
        (active[1], today + Duration::days(30)),
    ];
    let mut csv = "email,employment_status,end_date\n".to_string();
    for (i, end) in rows {
        csv.push_str(&format!("{},terminated,{end}\n", org.users[i].email));
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let roster = dir.path().join("roster.csv");
    std::fs::write(&roster, csv).expect("roster");
    let output = orgsql_alone()
        .arg("--demo")
        .arg("--roster")
        .arg(&roster)
        .args([
            "check",
            "--format",
            "json",
            "--controls",
            "offboarding_deactivation_time",
        ])
        .output()
        .expect("orgsql runs");
    let report = report(&output);
    let result = entry(&report, "offboarding_deactivation_time");
    let mut expected = vec![
        org.users[late].email.clone(),
        org.users[active[0]].email.clone(),
    ];
    expected.sort();
    assert_eq!(alarmed_resources(result), expected, "{result}");
    assert_eq!(result["population"]["count"], 3, "{result}");
}

/// The organization with every plant taken away: the controls pass.
#[tokio::test(flavor = "multi_thread")]
async fn a_clean_organization_passes_every_identity_control() {
    // Its "now" is the clock's, as the binary judges by it here.
    let now = DateTime::from_timestamp(Utc::now().timestamp(), 0).expect("now");
    let emu: Emulator = emulator(
        OrgSpec {
            now,
            ..OrgSpec::default()
        },
        Faults::default(),
        None,
    )
    .await;
    emu.change(|org| {
        // Everyone managed, under the SSO policy.
        for u in &mut org.users {
            u.claim_status = "managed";
        }
        let strong = org
            .identities
            .auth_policies
            .iter()
            .position(AuthPolicy::strong)
            .expect("an SSO policy");
        org.identities.policy_of = vec![Some(strong); org.users.len()];
        // No credential used after it ended.
        for k in &mut org.api_keys {
            if let Some((_, at)) = k.revoked {
                k.last_active = Some(at - Duration::days(1));
            }
            if let Some(e) = k.expires_at.filter(|e| *e < now) {
                k.last_active = Some(e - Duration::days(1));
            }
        }
        for t in &mut org.api_tokens {
            if let (Some(e), Some(l)) = (t.expires_at, t.last_active) {
                t.last_active = Some(l.min(e - Duration::days(1)));
            }
        }
        // Every token that acts is listed: the others' events are people's.
        let listed: HashSet<String> = org.api_tokens.iter().map(|t| t.id.clone()).collect();
        for e in &mut org.events {
            if e.auth.as_ref().is_some_and(|(_, t)| !listed.contains(t)) {
                e.auth = None;
            }
        }
        // Grants only by admins.
        let admins: HashSet<String> = (0..org.users.len())
            .filter(|&i| is_admin(org, i))
            .map(|i| org.users[i].account_id.clone())
            .collect();
        org.events.retain(|e| {
            ![
                "added_org_admin",
                "group_granted_admin_access",
                "user_granted_role",
                "group_granted_role",
            ]
            .contains(&e.action)
                || admins.contains(&e.actor_id)
        });
        // Service accounts owned, in use, every token expiring.
        for a in &mut org.identities.service_accounts {
            a.created_by = Some(0);
            for c in a.tokens.iter_mut().chain(a.oauth_clients.iter_mut()) {
                c.last_active = Some(now - Duration::days(1));
                c.expires_at = Some(now + Duration::days(100));
            }
        }
    });
    let org = emu.org();
    assert_eq!(org.users[0].status, "active", "the owner is active");
    let output = orgsql_on(&emu)
        .args(["check", "--format", "json", "--controls"])
        .arg(CONTROLS.join(","))
        .output()
        .expect("orgsql runs");
    let report = report(&output);
    for control in CONTROLS {
        let result = entry(&report, control);
        assert_eq!(result["outcome"], "pass", "{control}: {result}");
    }
    assert_eq!(output.status.code(), Some(0));
}
