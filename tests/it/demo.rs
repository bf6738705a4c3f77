//! The demo organization tells one story: its audit log explains every role
//! it has (who granted it, when, and who could) and agrees with who is
//! active (sessions, deactivations, product activity), and it is generated
//! from a fixed "now", so the demo prints the same bytes every run.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::common::*;
use orgsql::emulator::{DEMO_NOW, Faults, OrgSpec};

const ORG_ADMIN: &str = "atlassian/org-admin";
const USER_ACCESS_ADMIN: &str = "atlassian/user-access-admin";
/// Atlassian itself, which made the owner org admin as the org was created.
const SYSTEM: &str = "atlassian-internal-system";

/// The question the README asks of the demo, as it asks it.
const WHO_GRANTED_ORG_ADMIN: &str = "\
SELECT u.email AS org_admin, g.time AS granted, g.actor_name AS granted_by
FROM user_platform_roles r
JOIN users u USING (org_id, account_id)
LEFT JOIN (
  SELECT c.org_id, c.object_id AS account_id, e.time, e.actor_name
  FROM events e JOIN event_context c USING (org_id, event_id)
  WHERE e.action = 'added_org_admin' AND c.object_type = 'users'
) g USING (org_id, account_id)
WHERE r.role = 'atlassian/org-admin'
ORDER BY granted";

#[test]
fn the_demo_clock_is_documented_and_fixed() {
    assert_eq!(DEMO_NOW.to_rfc3339(), "2026-11-30T12:00:00+00:00");
    assert_eq!(OrgSpec::default().now, DEMO_NOW);
}

/// Every date of the demo is drawn relative to its "now", none from the
/// real clock: generated a day later, it is the same organization a day
/// later, to the millisecond.
#[test]
fn every_date_follows_the_demo_clock() {
    use chrono::{DateTime, Duration, Utc};
    use orgsql::emulator::Org;
    let day = Duration::days(1);
    let times = |org: &Org| -> Vec<DateTime<Utc>> {
        let mut times = Vec::new();
        for e in &org.events {
            times.extend([e.time, e.processed_at]);
        }
        for u in &org.users {
            times.push(u.added_to_org);
            times.extend(u.product_access.iter().filter_map(|p| p.last_active));
        }
        for t in &org.api_tokens {
            times.push(t.created_at);
            times.extend(t.last_active.into_iter().chain(t.expires_at));
        }
        for k in &org.api_keys {
            times.push(k.created_at);
            times.extend(k.last_active.into_iter().chain(k.expires_at));
            times.extend(k.revoked.map(|(_, at)| at));
        }
        for p in &org.policies {
            times.extend(std::iter::once(p.created_at).chain(p.updated_at));
        }
        times
    };
    let today = Org::generate(&OrgSpec::default());
    let tomorrow = Org::generate(&OrgSpec {
        now: DEMO_NOW + day,
        ..OrgSpec::default()
    });
    let expected: Vec<DateTime<Utc>> = times(&today).iter().map(|t| *t + day).collect();
    assert!(expected.len() > 5000, "{} dates", expected.len());
    assert!(
        times(&tomorrow) == expected,
        "a date does not follow the demo's clock"
    );
}

/// What a user can hold, as the log names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Held {
    Platform(String),
    Group(String),
    Product(String),
    /// A product's admin role held directly (the log names role and site).
    ProductRole(String),
}

/// One grant or removal: (time in µs, granted?, actor id).
type Change = (i64, bool, String);

/// Every current org admin got the role through an `added_org_admin` (or an
/// org-admin group) by someone who was an org admin then; nobody who got it
/// lacks it without a later removal; and so for every platform role, group
/// membership and direct product access, each after the user joined.
#[tokio::test(flavor = "multi_thread")]
async fn the_demo_log_explains_every_role() {
    let emu = emulator(OrgSpec::default(), Faults::default(), None).await;
    let ctx = session(emu.client_config());

    let joined: HashMap<String, i64> = sql_rows(
        &ctx,
        "SELECT account_id, CAST(added_to_org AS BIGINT) FROM users",
    )
    .await
    .into_iter()
    .map(|r| (r[0].clone(), r[1].parse().expect("micros")))
    .collect();
    let admin_groups: HashSet<String> = column(
        &ctx,
        "SELECT DISTINCT group_id FROM group_role_assignments WHERE role = 'atlassian/org-admin'",
    )
    .await
    .into_iter()
    .collect();
    let admin_role_groups: HashSet<String> = column(
        &ctx,
        "SELECT DISTINCT group_id FROM group_role_assignments WHERE role <> 'atlassian/user'",
    )
    .await
    .into_iter()
    .collect();

    // What each user holds now.
    let mut now_held: HashSet<(String, Held)> = HashSet::new();
    for r in sql_rows(&ctx, "SELECT account_id, role FROM user_platform_roles").await {
        now_held.insert((r[0].clone(), Held::Platform(r[1].clone())));
    }
    for r in sql_rows(&ctx, "SELECT account_id, group_id FROM group_members").await {
        now_held.insert((r[0].clone(), Held::Group(r[1].clone())));
    }
    for r in sql_rows(
        &ctx,
        "SELECT account_id, resource_id FROM user_role_assignments \
         WHERE role = 'atlassian/user' \
           AND array_has(string_to_array(assignment_methods, ','), 'direct')",
    )
    .await
    {
        now_held.insert((r[0].clone(), Held::Product(r[1].clone())));
    }
    let org_admins: HashSet<String> = column(
        &ctx,
        "SELECT DISTINCT account_id FROM user_role_assignments WHERE role = 'atlassian/org-admin'",
    )
    .await
    .into_iter()
    .collect();
    assert!(org_admins.len() >= 4, "{org_admins:?}");

    // Every grant and removal the log holds, oldest first.
    let events = sql_rows(
        &ctx,
        "SELECT CAST(e.time AS BIGINT), e.action, e.actor_id, u.object_id, g.object_id, \
                p.object_id, e.message \
         FROM events e \
         JOIN event_context u ON u.event_id = e.event_id AND u.role = 'context' \
              AND u.object_type = 'users' \
         LEFT JOIN event_context g ON g.event_id = e.event_id AND g.role = 'context' \
              AND g.object_type = 'groups' \
         LEFT JOIN event_context p ON p.event_id = e.event_id AND p.role = 'context' \
              AND p.object_type = 'products' \
         WHERE e.action IN ('added_org_admin', 'removed_org_admin', 'user_granted_role', \
           'user_revoked_role', 'user_added_to_group', 'user_removed_from_group', \
           'user_granted_product_access', 'user_revoked_product_access') \
         ORDER BY 1, e.event_id",
    )
    .await;
    let now = DEMO_NOW.timestamp_micros();
    let mut changes: BTreeMap<(String, Held), Vec<Change>> = BTreeMap::new();
    for r in &events {
        let time: i64 = r[0].parse().expect("micros");
        let (action, actor, user) = (r[1].as_str(), r[2].clone(), r[3].clone());
        // The named role, for user_granted_role: "... (atlassian/site-admin)".
        let named = r[6]
            .rsplit_once('(')
            .map(|(_, rest)| rest.trim_end_matches(')').to_string())
            .unwrap_or_default();
        let (held, granted) = match action {
            "added_org_admin" => (Held::Platform(ORG_ADMIN.to_string()), true),
            "removed_org_admin" => (Held::Platform(ORG_ADMIN.to_string()), false),
            "user_added_to_group" => (Held::Group(r[4].clone()), true),
            "user_removed_from_group" => (Held::Group(r[4].clone()), false),
            "user_granted_product_access" => (Held::Product(r[5].clone()), true),
            "user_revoked_product_access" => (Held::Product(r[5].clone()), false),
            role_action if named.contains(" on ") => {
                (Held::ProductRole(named), role_action == "user_granted_role")
            }
            role_action => (Held::Platform(named), role_action == "user_granted_role"),
        };
        let join = *joined.get(&user).expect("the named user is a user");
        assert!(join <= time && time <= now, "{r:?} outside {join}..{now}");
        changes
            .entry((user, held))
            .or_default()
            .push((time, granted, actor));
    }

    // Each thing alternates grant and removal, from a grant, and ends held
    // exactly when it is held now; what is held now was granted.
    for ((user, held), list) in &changes {
        for (n, (_, granted, _)) in list.iter().enumerate() {
            assert_eq!(*granted, n % 2 == 0, "{user} {held:?}: {list:?}");
        }
        let still = list.len() % 2 == 1;
        let key = (user.clone(), held.clone());
        let expected = match held {
            Held::ProductRole(_) => false,
            _ => now_held.contains(&key),
        };
        assert_eq!(still, expected, "{user} {held:?}: {list:?}");
    }
    for key in &now_held {
        assert!(changes.contains_key(key), "no grant of {key:?}");
    }

    // When each user held a role, directly or (org-admin) through a group.
    let spans = |role: &str| -> Vec<(String, i64, i64)> {
        changes
            .iter()
            .filter(|((_, held), _)| match held {
                Held::Platform(r) => r == role,
                Held::Group(g) => role == ORG_ADMIN && admin_groups.contains(g),
                _ => false,
            })
            .flat_map(|((user, _), list)| {
                list.chunks(2).map(move |pair| {
                    let end = pair.get(1).map_or(i64::MAX, |c| c.0);
                    (user.clone(), pair[0].0, end)
                })
            })
            .collect()
    };
    let (admin_spans, uaa_spans) = (spans(ORG_ADMIN), spans(USER_ACCESS_ADMIN));
    let held_at = |spans: &[(String, i64, i64)], who: &str, t: i64| {
        spans
            .iter()
            .any(|(user, from, until)| user == who && *from <= t && t < *until)
    };
    let first_grant = events
        .iter()
        .find(|r| r[1] == "added_org_admin")
        .map(|r| r[3].clone());
    for ((user, held), list) in &changes {
        for (time, _, actor) in list {
            // Admin roles, and groups that grant one, are the org admins'
            // to give; user-access admins give the rest.
            let admin_only = match held {
                Held::Group(g) => admin_role_groups.contains(g),
                Held::Product(_) => false,
                _ => true,
            };
            if actor == SYSTEM {
                // Only the organization's first admin, by Atlassian.
                assert_eq!(held, &Held::Platform(ORG_ADMIN.to_string()));
                assert_eq!(Some(user), first_grant.as_ref(), "{user}");
                continue;
            }
            let able = held_at(&admin_spans, actor, *time)
                || (!admin_only && held_at(&uaa_spans, actor, *time));
            assert!(able, "{actor} changed {held:?} of {user} at {time}");
        }
    }

    // The README's question has an answer for every org admin.
    let answers = sql_rows(&ctx, WHO_GRANTED_ORG_ADMIN).await;
    let direct: HashSet<&String> = now_held
        .iter()
        .filter(|(_, h)| *h == Held::Platform(ORG_ADMIN.to_string()))
        .map(|(u, _)| u)
        .collect();
    assert_eq!(answers.len(), direct.len(), "{answers:?}");
    assert!(answers.iter().all(|r| r[2] != "NULL"), "{answers:?}");
    assert_eq!(answers[0][2], "Atlassian Internal System", "{answers:?}");
    // And some were org admins once and are not now.
    assert!(
        events.iter().any(|r| r[1] == "removed_org_admin"),
        "a former org admin"
    );
}

/// `orgsql --demo` (the real binary) with `args`: its standard output.
fn demo(args: &[&str]) -> Vec<u8> {
    let output = orgsql_alone()
        .arg("--demo")
        .args(args)
        .output()
        .expect("orgsql runs");
    succeeded(&output, &format!("{args:?}"))
}

/// The same command prints the same bytes every run: every date of the
/// demo comes from its fixed clock, none from the real one.
#[test]
fn the_demo_prints_the_same_bytes_every_run() {
    let script = [
        "--format",
        "csv",
        "-c",
        "SELECT * FROM events ORDER BY event_id",
        "-c",
        "SELECT * FROM event_context ORDER BY event_id, role, object_id",
        "-c",
        "SELECT * FROM users ORDER BY account_id",
        "-c",
        "SELECT * FROM user_last_active ORDER BY account_id, product_id, product_key",
        "-c",
        "SELECT * FROM api_tokens ORDER BY token_id",
        "-c",
        "SELECT * FROM api_keys ORDER BY key_id",
        "-c",
        "SELECT * FROM workspaces ORDER BY workspace_id",
        "-c",
        "SELECT * FROM policies ORDER BY policy_id",
    ];
    let first = demo(&script);
    assert!(first.len() > 100_000, "{} bytes", first.len());
    assert!(first == demo(&script), "two runs printed different bytes");
}

/// Two exports of the demo, whenever made, hold the same organization.
#[test]
fn two_demo_exports_differ_in_nothing() {
    let (a, b) = (
        tempfile::tempdir().expect("temp dir"),
        tempfile::tempdir().expect("temp dir"),
    );
    for dir in [&a, &b] {
        let out = dir.path().to_str().expect("a UTF-8 path");
        demo(&["export", "--out", out]);
    }
    let output = orgsql_alone()
        .arg("diff")
        .args([a.path(), b.path()])
        .args(["--format", "json"])
        .output()
        .expect("orgsql runs");
    let printed = succeeded(&output, "diff of two demo exports");
    assert_eq!(String::from_utf8_lossy(&printed).trim(), "[]");
}

/// The sessions of the log: a user's own logins, logouts, password and
/// two-step changes.
const SESSIONS: &str = "('user_login', 'user_logout', 'password_change', 'twosv_enabled_for_user')";

/// The demo's log agrees with who is active (issue #25, item 8):
/// (a) nobody has a session when they could not: after their deactivation;
///     at all when deactivated, deleted or not invited with no deactivation
///     in the log; before joining; or after their last product activity (a
///     session is activity);
/// (b) only managed accounts are deactivated, at the organization, once,
///     and every managed account deactivated or deleted now was, in the log;
/// (c) the accounts the inactivity control flags have no login in its 90
///     days, and every account active in a product in those days logged in
///     then.
/// Every breach is collected, so a failure names each invariant it breaks.
#[tokio::test(flavor = "multi_thread")]
async fn the_demo_log_agrees_with_who_is_active() {
    let emu = emulator(OrgSpec::default(), Faults::default(), None).await;
    let ctx = session(emu.client_config());
    orgsql::clock::fix(&ctx, DEMO_NOW);
    let org_id = emu.org().id.clone();
    let micros = |text: &str| -> i64 { text.parse().expect("micros") };
    let window = (DEMO_NOW - chrono::Duration::days(90)).timestamp_micros();
    let mut breaches: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut breach =
        |kind: &'static str, what: String| breaches.entry(kind).or_default().push(what);

    // account id -> (status, claim status, joined)
    let users: HashMap<String, (String, String, i64)> = sql_rows(
        &ctx,
        "SELECT account_id, status, claim_status, CAST(added_to_org AS BIGINT) FROM users",
    )
    .await
    .into_iter()
    .map(|r| (r[0].clone(), (r[1].clone(), r[2].clone(), micros(&r[3]))))
    .collect();
    let last_active: HashMap<String, i64> = sql_rows(
        &ctx,
        "SELECT account_id, CAST(max(last_active) AS BIGINT) FROM user_product_access \
         WHERE last_active IS NOT NULL GROUP BY account_id",
    )
    .await
    .into_iter()
    .map(|r| (r[0].clone(), micros(&r[1])))
    .collect();
    let gone = |status: &str| ["deactivated", "for_deletion"].contains(&status);

    // (b) Deactivations.
    let mut deactivated: HashMap<String, i64> = HashMap::new();
    for r in sql_rows(
        &ctx,
        "SELECT CAST(e.time AS BIGINT), u.object_id, c.object_type, c.object_id \
         FROM events e \
         LEFT JOIN event_context u ON u.event_id = e.event_id AND u.role = 'context' \
              AND u.object_type = 'users' \
         LEFT JOIN event_context c ON c.event_id = e.event_id AND c.role = 'container' \
         WHERE e.action = 'managed_account_deactivated'",
    )
    .await
    {
        let (status, claim) = match users.get(&r[1]) {
            Some((status, claim, _)) => (status.as_str(), claim.as_str()),
            None => ("not a user", "not a user"),
        };
        if claim != "managed" || !gone(status) {
            breach(
                "(b) deactivates an account not managed or active now",
                format!("{r:?} {claim} {status}"),
            );
        }
        if (r[2].as_str(), r[3].as_str()) != ("orgs", org_id.as_str()) {
            breach(
                "(b) a deactivation's container is not the organization",
                format!("{r:?}"),
            );
        }
        if deactivated.insert(r[1].clone(), micros(&r[0])).is_some() {
            breach("(b) deactivated twice", format!("{r:?}"));
        }
    }
    let managed_gone: Vec<&String> = users
        .iter()
        .filter(|(_, (status, claim, _))| claim == "managed" && gone(status))
        .map(|(id, _)| id)
        .collect();
    assert!(managed_gone.len() >= 5, "{managed_gone:?}");
    for account in managed_gone
        .into_iter()
        .filter(|a| !deactivated.contains_key(*a))
    {
        breach(
            "(b) deactivated or deleted now, with no deactivation",
            account.clone(),
        );
    }

    // (a) Sessions.
    let sessions = sql_rows(
        &ctx,
        &format!(
            "SELECT CAST(time AS BIGINT), actor_id, action FROM events WHERE action IN {SESSIONS}"
        ),
    )
    .await;
    assert!(sessions.len() > 1000, "{} sessions", sessions.len());
    let mut logins: HashMap<&str, Vec<i64>> = HashMap::new();
    for r in &sessions {
        let (time, actor) = (micros(&r[0]), r[1].as_str());
        let Some((status, _, joined)) = users.get(actor) else {
            breach("(a) a session of someone not a user", format!("{r:?}"));
            continue;
        };
        if time < *joined {
            breach("(a) a session before joining", format!("{r:?}"));
        }
        match deactivated.get(actor) {
            Some(&at) if time >= at => {
                breach(
                    "(a) a session after its deactivation",
                    format!("{r:?} at {at}"),
                );
            }
            None if !["active", "suspended"].contains(&status.as_str()) => {
                breach(
                    "(a) a session of an account not active",
                    format!("{r:?} {status}"),
                );
            }
            _ => {}
        }
        let last = last_active.get(actor).copied();
        if last.is_none_or(|l| time > l) {
            breach(
                "(a) a session after its last product activity",
                format!("{r:?} {last:?}"),
            );
        }
        if r[2] == "user_login" {
            logins.entry(actor).or_default().push(time);
        }
    }

    // (c) The inactivity control, as the pack runs it, and logins.
    let control = include_str!("../../queries/inactive_managed_accounts_with_access.sql")
        .replace("${inactive_days}", "90");
    // Its columns: resource, status, reason, account_id, ...
    let flagged: Vec<String> = sql_rows(&ctx, &control)
        .await
        .into_iter()
        .filter(|r| r[1] == "alarm")
        .map(|r| r[3].clone())
        .collect();
    assert!(flagged.len() >= 10, "{flagged:?}");
    let logged_in = |account: &str, from: i64, to: i64| {
        logins
            .get(account)
            .into_iter()
            .flatten()
            .any(|&t| from <= t && t <= to)
    };
    for account in &flagged {
        if logged_in(account, window, i64::MAX) {
            breach(
                "(c) flagged inactive yet logged in in the 90 days",
                account.clone(),
            );
        }
    }
    for (account, &last) in last_active.iter().filter(|(_, l)| **l >= window) {
        if !logged_in(account, window, last) {
            breach(
                "(c) active in a product with no login in the 90 days",
                account.clone(),
            );
        }
    }

    let report: Vec<String> = breaches
        .iter()
        .map(|(kind, list)| {
            format!(
                "{kind}: {} (e.g. {:?})",
                list.len(),
                &list[..list.len().min(3)]
            )
        })
        .collect();
    assert!(report.is_empty(), "{}", report.join("\n"));
}
