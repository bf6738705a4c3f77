//! Tables with one call per user or group: a filter or a join's keys decide
//! which users are called, several calls run at once but never more than
//! configured, and a gone user is no rows rather than a failed query.
//! Request counts come from the emulator.

use std::time::Duration;

use crate::common::*;
use orgsql::emulator::Faults;
use orgsql::tables::user_role_assignments::UserRoleAssignments;
use orgsql::tables::{ApiTable, Fetch, Filter, Resource, Scan};

const USER_ROLES: &str = "/users/{accountId}/role-assignments";
const GROUP_ROLES: &str = "/groups/{groupId}/role-assignments";
const USERS_SEARCH: &str = "/users/search";

/// (resource, role) pairs the emulator grants a user, sorted.
fn expected_roles(org: &orgsql::emulator::Org, user: &orgsql::emulator::User) -> Vec<Vec<String>> {
    let mut roles: Vec<Vec<String>> = org
        .user_roles(user)
        .into_iter()
        .map(|r| vec![r.resource_id, r.role.to_string(), r.methods.join(",")])
        .collect();
    roles.sort();
    roles
}

#[tokio::test]
async fn account_id_filters_call_only_those_users() {
    let emu = emulator(spec(60, 10), Faults::default(), None).await;
    let org = emu.org().clone();
    let ctx = session(emu.client_config());

    let owner = &org.users[0];
    let sql = format!(
        "SELECT resource_id, role, assignment_methods FROM user_role_assignments \
         WHERE account_id = '{}' ORDER BY 1, 2",
        owner.account_id
    );
    let got = sql_rows(&ctx, &sql).await;
    assert_eq!(got, expected_roles(&org, owner));
    assert!(got.iter().any(|r| r[1] == "atlassian/org-admin"));
    assert_eq!(emu.requests(USER_ROLES), 1);
    assert_eq!(
        emu.requests(USERS_SEARCH),
        0,
        "no user listing for a named user"
    );

    // An IN list longer than any API list: one call per user, still no listing.
    emu.reset_requests();
    // Not the owner: that answer is cached already.
    let ids: Vec<String> = org.users[1..13]
        .iter()
        .map(|u| format!("'{}'", u.account_id))
        .collect();
    let sql = format!(
        "SELECT count(DISTINCT account_id) FROM user_role_assignments WHERE account_id IN ({})",
        ids.join(", ")
    );
    let with_roles = org.users[1..13]
        .iter()
        .filter(|u| !org.user_roles(u).is_empty())
        .count();
    assert_eq!(column(&ctx, &sql).await, vec![with_roles.to_string()]);
    assert_eq!(emu.requests(USER_ROLES), 12);
    assert_eq!(emu.requests(USERS_SEARCH), 0);

    // A user the API does not know has no roles; the query does not fail.
    emu.reset_requests();
    let sql = "SELECT count(*) FROM user_role_assignments WHERE account_id = 'no-such-user'";
    assert_eq!(column(&ctx, sql).await, vec!["0"]);
    assert_eq!(emu.requests(USER_ROLES), 1);

    // user_last_active is the same kind of table.
    emu.reset_requests();
    let sql = format!(
        "SELECT count(*) FROM user_last_active WHERE account_id = '{}'",
        owner.account_id
    );
    let active = owner
        .product_access
        .iter()
        .filter(|p| p.last_active.is_some())
        .count();
    assert_eq!(column(&ctx, &sql).await, vec![active.to_string()]);
    assert_eq!(emu.requests("/last-active-dates"), 1);
}

#[tokio::test]
async fn a_join_from_users_calls_role_assignments_only_for_the_matching_users() {
    let emu = emulator(spec(120, 10), Faults::default(), None).await;
    let org = emu.org().clone();
    let ctx = session(emu.client_config());

    // One user, by email.
    let user = &org.users[7];
    let sql = format!(
        "SELECT r.resource_id, r.role, r.assignment_methods \
         FROM users u JOIN user_role_assignments r USING (org_id, account_id) \
         WHERE u.email = '{}' ORDER BY 1, 2",
        user.email
    );
    assert_eq!(sql_rows(&ctx, &sql).await, expected_roles(&org, user));
    assert_eq!(
        emu.requests(USER_ROLES),
        1,
        "only the matching user is called"
    );

    // Several users, by a column the API cannot filter: still only them.
    emu.reset_requests();
    let department = org.users[3].department.expect("user 3 has a department");
    let members: Vec<_> = org
        .users
        .iter()
        .filter(|u| u.department == Some(department))
        .collect();
    assert!(members.len() > 1 && members.len() < org.users.len() / 3);
    let expected: usize = members.iter().map(|u| org.user_roles(u).len()).sum();
    let sql = format!(
        "SELECT count(*) FROM users u JOIN user_role_assignments r ON u.account_id = r.account_id \
         WHERE u.department = '{department}'"
    );
    assert_eq!(column(&ctx, &sql).await, vec![expected.to_string()]);
    assert_eq!(emu.requests(USER_ROLES), members.len() as u64);
}

#[tokio::test]
async fn the_role_view_reaches_each_side_by_principal_id() {
    let emu = emulator(spec(40, 10), Faults::default(), None).await;
    let org = emu.org().clone();
    let ctx = session(emu.client_config());

    let owner = &org.users[0];
    let sql = format!(
        "SELECT principal_type, count(*) FROM role_assignments WHERE principal_id = '{}' GROUP BY 1",
        owner.account_id
    );
    let expected = vec![vec![
        "user".to_string(),
        org.user_roles(owner).len().to_string(),
    ]];
    assert_eq!(sql_rows(&ctx, &sql).await, expected);
    assert_eq!(emu.requests(USER_ROLES), 1);
    assert_eq!(
        emu.requests(GROUP_ROLES),
        1,
        "the group side asks for that id too"
    );
    assert_eq!(
        emu.requests(USERS_SEARCH) + emu.requests("/groups/search"),
        0
    );

    // The empty legacy group still grants org-admin: visible through the view.
    let legacy = org
        .groups
        .iter()
        .position(|g| g.name == "legacy-admins")
        .expect("legacy");
    assert_eq!(org.members_of(legacy).count(), 0);
    let sql = "SELECT g.name FROM role_assignments r JOIN groups g ON r.principal_id = g.group_id \
               WHERE r.principal_type = 'group' AND r.role = 'atlassian/org-admin' ORDER BY 1";
    assert_eq!(column(&ctx, sql).await, vec!["legacy-admins", "org-admins"]);
}

#[tokio::test]
async fn a_fan_out_keeps_at_most_the_configured_requests_in_flight() {
    let faults = Faults {
        latency: Duration::from_millis(20),
        ..Faults::default()
    };
    let emu = emulator(spec(30, 10), faults, None).await;
    let org = emu.org().clone();
    let mut config = emu.client_config();
    config.concurrency = 3;
    let ctx = session(config);
    let expected: usize = org.users.iter().map(|u| org.user_roles(u).len()).sum();
    assert_eq!(
        column(&ctx, "SELECT count(*) FROM user_role_assignments").await,
        vec![expected.to_string()]
    );
    assert_eq!(emu.requests(USER_ROLES), 30);
    assert!(
        emu.max_in_flight() <= 3,
        "{} in flight",
        emu.max_in_flight()
    );
}

#[tokio::test]
async fn pages_are_reused_within_a_session_unless_the_cache_is_off() {
    let emu = emulator(spec(120, 10), Faults::default(), Some(50)).await;
    let ctx = session(emu.client_config());
    let self_join = "SELECT count(*) FROM users a JOIN users b ON a.account_id = b.account_id";
    assert_eq!(column(&ctx, self_join).await, vec!["120"]);
    // 120 users at 50 a page: one listing of three pages serves both sides.
    assert_eq!(emu.requests(USERS_SEARCH), 3);
    assert_eq!(
        column(&ctx, "SELECT count(*) FROM users").await,
        vec!["120"]
    );
    assert_eq!(
        emu.requests(USERS_SEARCH),
        3,
        "a second query costs nothing"
    );

    emu.reset_requests();
    let mut config = emu.client_config();
    config.cache_ttl = None;
    let uncached = session(config);
    assert_eq!(column(&uncached, self_join).await, vec!["120"]);
    assert_eq!(
        column(&uncached, "SELECT count(*) FROM users").await,
        vec!["120"]
    );
    assert_eq!(emu.requests(USERS_SEARCH), 9);
}

#[tokio::test]
async fn orgsql_requests_lists_every_request_with_its_retries() {
    let faults = Faults {
        fail_every: Some(4),
        ..Faults::default()
    };
    let emu = emulator(spec(30, 10), faults, Some(10)).await;
    let ctx = session(emu.client_config());
    assert_eq!(column(&ctx, "SELECT count(*) FROM users").await, vec!["30"]);
    assert_eq!(
        column(&ctx, "SELECT count(*) FROM domains").await,
        vec!["4"]
    );

    let sql = "SELECT method, endpoint, status, attempt, rows, table_name FROM orgsql_requests \
               ORDER BY started_at";
    let log = sql_rows(&ctx, sql).await;
    assert_eq!(
        log.len() as u64,
        emu.requests(""),
        "one row per request served"
    );
    let search = "/admin/v2/orgs/{orgId}/directories/{directoryId}/users/search";
    let ok: Vec<_> = log.iter().filter(|r| r[2] == "200").collect();
    let failed: Vec<_> = log.iter().filter(|r| r[2] != "200").collect();
    // Three pages of users, users/count before and after them, and one page
    // of domains came back; every failure was retried.
    assert_eq!(ok.len(), 6);
    let counts = ok.iter().filter(|r| r[1].ends_with("/users/count")).count();
    assert_eq!(counts, 2);
    assert!(!failed.is_empty());
    assert!(failed.iter().all(|r| r[2] == "429" || r[2] == "503"));
    assert!(failed.iter().all(|r| r[4] == "NULL"));
    assert!(log.iter().any(|r| r[3] == "2"), "a retry is attempt 2");
    let user_rows: Vec<&String> = ok
        .iter()
        .filter(|r| r[1] == search)
        .map(|r| &r[4])
        .collect();
    assert_eq!(user_rows, vec!["10", "10", "10"]);
    assert!(
        ok.iter()
            .all(|r| r[0] == if r[1] == search { "POST" } else { "GET" })
    );
    assert!(
        log.iter().all(|r| !r[1].contains(&emu.org().id)),
        "templates, not ids"
    );
    let tables: Vec<&String> = ok.iter().map(|r| &r[5]).collect();
    assert_eq!(
        tables,
        vec!["users", "users", "users", "users", "users", "domains"]
    );
    // The listing's record agrees with the log: every users request, its
    // failures as retries.
    let users_log = log.iter().filter(|r| r[5] == "users").count();
    let users_failed = failed.iter().filter(|r| r[5] == "users").count();
    assert_eq!(
        sql_rows(
            &ctx,
            "SELECT requests, retries, read_to_end, verdict FROM orgsql_listings \
             WHERE table_name = 'users'"
        )
        .await,
        vec![vec![
            users_log.to_string(),
            users_failed.to_string(),
            "true".to_string(),
            "complete".to_string()
        ]]
    );
}

#[tokio::test]
async fn group_and_policy_filters_go_to_the_api() {
    let emu = emulator(spec(40, 10), Faults::default(), None).await;
    let org = emu.org().clone();
    let ctx = session(emu.client_config());

    let sql =
        "SELECT name FROM groups WHERE name IN ('sre', 'security', 'no-such-group') ORDER BY 1";
    assert_eq!(column(&ctx, sql).await, vec!["security", "sre"]);
    let body = emu.last_body("/groups/search").expect("a group search");
    let mut names: Vec<&str> = body["groupNames"]
        .as_array()
        .expect("groupNames sent")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    names.sort();
    assert_eq!(names, vec!["no-such-group", "security", "sre"]);

    let id = &org.groups[5].id;
    let sql = format!("SELECT name FROM groups WHERE group_id = '{id}'");
    assert_eq!(column(&ctx, &sql).await, vec![org.groups[5].name.clone()]);
    let body = emu.last_body("/groups/search").expect("a group search");
    assert_eq!(body["groupIds"], serde_json::json!([id]));

    let kind = org.policies[0].kind;
    let expected = org.policies.iter().filter(|p| p.kind == kind).count();
    let sql = format!("SELECT count(*) FROM policies WHERE type = '{kind}'");
    assert_eq!(column(&ctx, &sql).await, vec![expected.to_string()]);
    assert_eq!(emu.last_query("/policies"), Some(format!("type={kind}")));

    let sql = format!(
        "SELECT count(*) FROM user_role_assignments WHERE account_id = '{}' AND role = 'atlassian/org-admin'",
        org.users[0].account_id
    );
    assert_eq!(column(&ctx, &sql).await, vec!["1"]);
    let query = emu.last_query(USER_ROLES).expect("a role call");
    assert!(query.contains("roleIds=atlassian%2Forg-admin"), "{query}");
}

/// `user_role_assignments` as a table whose per-user call takes one role
/// a call (so `role IN (a, b)` is two calls per user), and a filter the
/// emulator does not apply (so each of those calls returns every row).
struct SplitRoles;

impl Resource for SplitRoles {
    type Data = <UserRoleAssignments as Resource>::Data;
    type Row = <UserRoleAssignments as Resource>::Row;
    const NAME: &'static str = "split_roles";
    const DESCRIPTION: &'static str = "user_role_assignments, its filter lists split";
    const KEY: &'static [&'static str] = UserRoleAssignments::KEY;
    const FAN_OUT: Option<&'static str> = Some("user");
    const FILTERS: &'static [Filter] = &[
        Filter::parent("account_id", "accountId"),
        Filter::values("role", "roleIds", 1),
        // The emulator ignores a parameter it does not know: each call of
        // the split answers with all of the user's rows.
        Filter::values("user_directory_status", "notAFilterOfTheApi", 1),
    ];

    fn fetch(scan: &Scan) -> Fetch {
        UserRoleAssignments::fetch(scan)
    }
}

/// A fan-out whose per-parent call is split over several calls makes every
/// one of them, and returns each row once: the same rows as the table whose
/// call is not split.
#[tokio::test]
async fn a_split_per_parent_call_makes_every_call_and_keeps_each_row_once() {
    let emu = emulator(spec(40, 10), Faults::default(), None).await;
    let org = emu.org().clone();
    let client = orgsql::api::Client::new(fast_retries(emu.client_config())).expect("client");
    let ctx = orgsql::context(&client).expect("session");
    let table = ApiTable::<SplitRoles>::new((&client).into());
    ctx.register_table("split_roles", std::sync::Arc::new(table))
        .expect("registered");

    // A user with two roles, and one whose roles are all in a directory
    // (a platform role leaves the status NULL).
    let distinct_roles = |u: &orgsql::emulator::User| {
        let mut roles: Vec<&str> = org.user_roles(u).iter().map(|r| r.role).collect();
        roles.sort_unstable();
        roles.dedup();
        roles
    };
    let admin = org
        .users
        .iter()
        .find(|u| distinct_roles(u).len() >= 2)
        .expect("a user with two roles");
    let member = org
        .users
        .iter()
        .find(|u| {
            let roles = org.user_roles(u);
            !roles.is_empty() && roles.iter().all(|r| r.directory.is_some())
        })
        .expect("a user with product roles");
    let roles = distinct_roles(admin);
    let columns = "account_id, resource_id, role, assignment_methods, user_directory_status";
    for (user, filter) in [
        (admin, format!("role IN ('{}', '{}')", roles[0], roles[1])),
        (
            member,
            format!(
                "user_directory_status IN ('{}', 'no-such-status')",
                member.membership_status
            ),
        ),
    ] {
        let sql = |table: &str| {
            format!(
                "SELECT {columns} FROM {table} WHERE account_id = '{}' AND {filter} \
                 ORDER BY 1, 2, 3",
                user.account_id
            )
        };
        let expected = sql_rows(&ctx, &sql("user_role_assignments")).await;
        assert!(!expected.is_empty(), "{filter}: some rows");
        emu.reset_requests();
        let split = sql_rows(&ctx, &sql("split_roles")).await;
        assert_eq!(split, expected, "{filter}");
        assert_eq!(emu.requests(USER_ROLES), 2, "{filter}: one call per value");
    }
}
