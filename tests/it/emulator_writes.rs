//! The emulator's write endpoints (the calls `orgsql review apply` sends),
//! through plain HTTP: each answers as the spec says, changes the
//! organization so that orgsql's tables show it, logs an audit event by the
//! organization API key, answers unknown ids with the API's 404, and is
//! counted and budgeted like any endpoint.

use crate::common::*;
use datafusion::prelude::SessionContext;
use orgsql::emulator::{Emulator, EmulatorConfig, Org, RateLimits, WRITER_KEY_LABEL};
use reqwest::Method;
use serde_json::{Value, json};

const ROLES_REVOKE: &str = "POST /admin/v1/orgs/{orgId}/users/{userId}/roles/revoke";
const ORG_ROLE_REVOKE: &str = "POST /admin/v1/orgs/{orgId}/users/{userId}/role-assignments/revoke";
const MEMBERSHIP: &str = "DELETE /admin/v2/orgs/{orgId}/directories/{directoryId}/groups/{groupId}/memberships/{accountId}";
const GROUP_ROLE_REVOKE: &str = "POST /admin/v2/orgs/{orgId}/directories/{directoryId}/groups/{groupId}/role-assignments/revoke";
const SUSPEND: &str =
    "POST /admin/v2/orgs/{orgId}/directories/{directoryId}/users/{accountId}/suspend";
const TOKEN: &str = "DELETE /users/{accountId}/manage/api-tokens/{tokenId}";

async fn start() -> Emulator {
    emulator(spec(80, 60), Default::default(), None).await
}

/// A session that reads the API afresh every query (no page cache), so a
/// query after a write sees it.
fn fresh(emu: &Emulator) -> SessionContext {
    let mut config = emu.client_config();
    config.cache_ttl = None;
    session(config)
}

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    /// `None` for an empty body.
    body: Option<Value>,
}

/// `route` ("METHOD template") with its parameters filled in, sent with the
/// organization's key.
async fn send(emu: &Emulator, route: &str, params: &[(&str, &str)], body: Option<Value>) -> Answer {
    let key = emu.connection_json()["api_key"]
        .as_str()
        .expect("key")
        .to_string();
    send_with(emu, &key, route, params, body).await
}

async fn send_with(
    emu: &Emulator,
    key: &str,
    route: &str,
    params: &[(&str, &str)],
    body: Option<Value>,
) -> Answer {
    let (method, template) = route.split_once(' ').expect("METHOD template");
    let mut path = template.replace("{orgId}", &emu.org().id);
    for (name, value) in params {
        path = path.replace(&format!("{{{name}}}"), value);
    }
    assert!(!path.contains('{'), "{path}: a parameter is missing");
    let method = Method::from_bytes(method.as_bytes()).expect("method");
    let mut request = reqwest::Client::new()
        .request(method, format!("{}{path}", emu.base_url()))
        .bearer_auth(key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("emulator answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.expect("body");
    let body = (!bytes.is_empty()).then(|| serde_json::from_slice(&bytes).expect("JSON body"));
    Answer {
        status,
        headers,
        body,
    }
}

/// A 204 with no body, as the spec answers every one of these writes.
fn assert_done(answer: &Answer, what: &str) {
    assert_eq!(answer.status, 204, "{what}: {:?}", answer.body);
    assert_eq!(answer.body, None, "{what}: a 204 has no body");
}

/// The `errors` envelope's first code, when the answer is `status`.
fn error_code(answer: &Answer, status: u16) -> String {
    assert_eq!(answer.status, status, "{:?}", answer.body);
    let body = answer.body.as_ref().expect("an error body");
    let error = &body["errors"][0];
    assert_eq!(error["status"], json!(status.to_string()), "{body}");
    error["code"].as_str().expect("a code").to_string()
}

/// The id of the organization API key the emulator's key is, through the
/// `api_keys` table.
async fn key_id(ctx: &SessionContext) -> String {
    let ids = column(
        ctx,
        &format!("SELECT key_id FROM api_keys WHERE label = '{WRITER_KEY_LABEL}'"),
    )
    .await;
    assert_eq!(ids.len(), 1, "one key labelled {WRITER_KEY_LABEL}: {ids:?}");
    ids[0].clone()
}

/// (action, context) of every event by the key, oldest first, through the
/// `events` table.
async fn events_by_key(ctx: &SessionContext) -> Vec<(String, String)> {
    let key = key_id(ctx).await;
    sql_rows(
        ctx,
        &format!("SELECT action, context FROM events WHERE actor_id = '{key}' ORDER BY time"),
    )
    .await
    .into_iter()
    .map(|row| (row[0].clone(), row[1].clone()))
    .collect()
}

/// The ways `account` holds `role` on `resource`, through the
/// `user_role_assignments` table; empty when not held.
async fn methods(ctx: &SessionContext, account: &str, resource: &str, role: &str) -> Vec<String> {
    let rows = column(
        ctx,
        &format!(
            "SELECT assignment_methods FROM user_role_assignments \
             WHERE account_id = '{account}' AND resource_id = '{resource}' AND role = '{role}'"
        ),
    )
    .await;
    rows.iter()
        .flat_map(|m| m.split(',').map(str::to_string).collect::<Vec<_>>())
        .collect()
}

/// A resource on which `user` holds `role` in exactly these ways.
fn held_only(org: &Org, user: usize, role: &str, ways: &[&str]) -> Option<String> {
    org.user_roles(&org.users[user])
        .into_iter()
        .find(|r| r.role == role && r.methods == ways)
        .map(|r| r.resource_id)
}

/// `methods` but the direct grant.
fn without_direct(methods: &[String]) -> Vec<String> {
    methods.iter().filter(|m| *m != "direct").cloned().collect()
}

/// An org admin other than the owner, directly.
fn org_admin(org: &Org) -> String {
    (1..org.users.len())
        .find(|&u| ways(org, u, &org.ari(), "atlassian/org-admin").contains(&"direct"))
        .map(|u| org.users[u].account_id.clone())
        .expect("an org admin")
}

/// The ways `user` holds `role` on `resource`, as the organization has it.
fn ways(org: &Org, user: usize, resource: &str, role: &str) -> Vec<&'static str> {
    org.user_roles(&org.users[user])
        .into_iter()
        .find(|r| r.role == role && r.resource_id == resource)
        .map(|r| r.methods)
        .unwrap_or_default()
}

/// No group of `user` but `group` grants `role` on `resource`.
fn only_through(org: &Org, user: usize, group: usize, resource: &str, role: &str) -> bool {
    org.users[user]
        .groups
        .iter()
        .filter(|&&other| other != group)
        .all(|&other| {
            !org.group_roles(other)
                .iter()
                .any(|x| x.resource_id == resource && x.roles.contains(&role))
        })
}

#[tokio::test]
async fn a_direct_role_revoked_is_gone_from_the_tables_and_logged_by_the_key() {
    let emu = start().await;
    let org = emu.org();
    let ctx = fresh(&emu);
    assert!(
        events_by_key(&ctx).await.is_empty(),
        "the key has done nothing yet"
    );

    // Product access given directly, and through no group.
    let (user, resource) = (0..org.users.len())
        .find_map(|u| held_only(&org, u, "atlassian/user", &["direct"]).map(|r| (u, r)))
        .expect("a user with direct product access only");
    let account = org.users[user].account_id.clone();
    assert_eq!(
        methods(&ctx, &account, &resource, "atlassian/user").await,
        ["direct"]
    );
    let answer = send(
        &emu,
        ROLES_REVOKE,
        &[("userId", &account)],
        Some(json!({"role": "atlassian/user", "resource": resource})),
    )
    .await;
    assert_done(&answer, "product access revoked");
    assert!(
        methods(&ctx, &account, &resource, "atlassian/user")
            .await
            .is_empty()
    );
    let access = column(
        &ctx,
        &format!("SELECT product_id FROM user_product_access WHERE account_id = '{account}'"),
    )
    .await;
    assert!(!access.contains(&resource), "{access:?}");

    // Site admin of every site, directly: revoked on one site, held on the others.
    let site_admin = (0..org.users.len())
        .find(|&u| {
            org.users[u]
                .platform_roles
                .contains(&"atlassian/site-admin")
        })
        .expect("a site admin");
    let sites: Vec<String> = org
        .workspaces
        .iter()
        .filter(|w| w.host_url.is_some())
        .map(|w| w.id.clone())
        .collect();
    assert!(sites.len() > 1, "more than one site");
    let admin = org.users[site_admin].account_id.clone();
    let answer = send(
        &emu,
        ROLES_REVOKE,
        &[("userId", &admin)],
        Some(json!({"role": "atlassian/site-admin", "resource": sites[0]})),
    )
    .await;
    assert_done(&answer, "site admin revoked on one site");
    assert!(
        !methods(&ctx, &admin, &sites[0], "atlassian/site-admin")
            .await
            .contains(&"direct".to_string())
    );
    assert!(
        methods(&ctx, &admin, &sites[1], "atlassian/site-admin")
            .await
            .contains(&"direct".to_string()),
        "still site admin of the other sites"
    );

    // The org-admin role, through roles/revoke: its resource is ignored.
    // Every org admin is in an admin group too: that grant stays.
    let org_ari = org.ari();
    let owner_admin = org_admin(&org);
    let before = methods(&ctx, &owner_admin, &org_ari, "atlassian/org-admin").await;
    assert!(before.contains(&"direct".to_string()), "{before:?}");
    let answer = send(
        &emu,
        ROLES_REVOKE,
        &[("userId", &owner_admin)],
        Some(json!({"role": "atlassian/org-admin", "resource": "anything"})),
    )
    .await;
    assert_done(&answer, "org admin revoked through roles/revoke");
    assert_eq!(
        methods(&ctx, &owner_admin, &org_ari, "atlassian/org-admin").await,
        without_direct(&before)
    );

    // Revoked again: nothing held, nothing done, nothing logged.
    let again = send(
        &emu,
        ROLES_REVOKE,
        &[("userId", &account)],
        Some(json!({"role": "atlassian/user", "resource": resource})),
    )
    .await;
    assert_done(&again, "a role no longer held");

    let logged = events_by_key(&ctx).await;
    let actions: Vec<&str> = logged.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(
        actions,
        [
            "user_revoked_product_access",
            "user_revoked_role",
            "removed_org_admin"
        ]
    );
    for ((_, context), subject) in logged.iter().zip([&account, &admin, &owner_admin]) {
        assert!(
            context.contains(subject.as_str()),
            "{context} names {subject}"
        );
    }

    // The API's errors: a body it cannot take, an unknown user, an unknown
    // resource, a role its resource cannot have.
    let bad = [
        (json!({"resource": resource}), 400, "ADMIN-UAM-400-1"),
        (
            json!({"role": "atlassian/owner", "resource": resource}),
            400,
            "ADMIN-UAM-400-1",
        ),
        (json!({"role": "atlassian/user"}), 400, "ADMIN-UAM-400-1"),
        (
            json!({"role": "atlassian/user", "resource": "ari:cloud:jira::site/nope"}),
            404,
            "ADMIN-UAM-404-3",
        ),
        (
            json!({"role": "atlassian/site-admin", "resource": org_ari}),
            400,
            "ADMIN-UAM-400-3",
        ),
    ];
    for (body, status, code) in bad {
        let answer = send(
            &emu,
            ROLES_REVOKE,
            &[("userId", &account)],
            Some(body.clone()),
        )
        .await;
        assert_eq!(error_code(&answer, status), code, "{body}");
    }
    let unknown = send(
        &emu,
        ROLES_REVOKE,
        &[("userId", "557057:no-such-user")],
        Some(json!({"role": "atlassian/user", "resource": resource})),
    )
    .await;
    assert_eq!(error_code(&unknown, 404), "ADMIN-UAM-404-3");
    assert_eq!(
        events_by_key(&ctx).await.len(),
        3,
        "a refused write logs nothing"
    );
}

#[tokio::test]
async fn the_org_admin_role_revoked_through_role_assignments() {
    let emu = start().await;
    let org = emu.org();
    let ctx = fresh(&emu);
    let org_ari = org.ari();
    let admin = org_admin(&org);
    let before = methods(&ctx, &admin, &org_ari, "atlassian/org-admin").await;
    let roles_sql = format!("SELECT role FROM user_platform_roles WHERE account_id = '{admin}'");
    assert!(
        column(&ctx, &roles_sql)
            .await
            .contains(&"atlassian/org-admin".to_string())
    );

    // Only org-admin is this endpoint's role.
    let refused = send(
        &emu,
        ORG_ROLE_REVOKE,
        &[("userId", &admin)],
        Some(json!({"role": "atlassian/site-admin"})),
    )
    .await;
    assert_eq!(error_code(&refused, 400), "ADMIN-UAM-400-1");
    let answer = send(
        &emu,
        ORG_ROLE_REVOKE,
        &[("userId", &admin)],
        Some(json!({"role": "atlassian/org-admin"})),
    )
    .await;
    assert_done(&answer, "org admin revoked");
    assert!(
        !column(&ctx, &roles_sql)
            .await
            .contains(&"atlassian/org-admin".to_string())
    );
    assert_eq!(
        methods(&ctx, &admin, &org_ari, "atlassian/org-admin").await,
        without_direct(&before),
        "only the direct grant goes"
    );
    let logged = events_by_key(&ctx).await;
    assert_eq!(logged.len(), 1);
    assert_eq!(logged[0].0, "removed_org_admin");
    assert!(logged[0].1.contains(&admin));

    let unknown = send(
        &emu,
        ORG_ROLE_REVOKE,
        &[("userId", "557057:no-such-user")],
        Some(json!({"role": "atlassian/org-admin"})),
    )
    .await;
    assert_eq!(error_code(&unknown, 404), "ADMIN-UAM-404-3");
}

#[tokio::test]
async fn a_membership_removed_takes_the_grants_the_group_gave() {
    let emu = start().await;
    let org = emu.org();
    let ctx = fresh(&emu);
    // A member of a group the admins manage, holding one grant through it alone.
    let (user, group, resource, role) = (0..org.users.len())
        .find_map(|u| {
            let member = &org.users[u];
            member
                .groups
                .iter()
                .filter(|&&g| !org.groups[g].external_synced)
                .find_map(|&g| {
                    org.group_roles(g).into_iter().find_map(|grant| {
                        let role = grant.roles[0];
                        let resource = grant.resource_id;
                        (ways(&org, u, &resource, role) == ["group_direct"]
                            && only_through(&org, u, g, &resource, role))
                        .then_some((u, g, resource, role))
                    })
                })
        })
        .expect("a member holding a grant through one group only");
    let account = org.users[user].account_id.clone();
    let group_id = org.groups[group].id.clone();
    let directory = org.directories[org.groups[group].directory].id.clone();
    let members_sql = format!(
        "SELECT account_id FROM group_members WHERE group_id = '{group_id}' AND account_id = '{account}'"
    );
    assert_eq!(
        column(&ctx, &members_sql).await,
        std::slice::from_ref(&account)
    );
    assert_eq!(
        methods(&ctx, &account, &resource, role).await,
        ["group_direct"]
    );

    let params = [
        ("directoryId", directory.as_str()),
        ("groupId", group_id.as_str()),
        ("accountId", account.as_str()),
    ];
    let answer = send(&emu, MEMBERSHIP, &params, None).await;
    assert_done(&answer, "membership removed");
    assert!(column(&ctx, &members_sql).await.is_empty());
    assert!(
        methods(&ctx, &account, &resource, role).await.is_empty(),
        "the grant the group gave is gone"
    );
    // Removed again: not a member, nothing done.
    assert_done(
        &send(&emu, MEMBERSHIP, &params, None).await,
        "no longer a member",
    );
    let logged = events_by_key(&ctx).await;
    assert_eq!(logged.len(), 1, "{logged:?}");
    assert_eq!(logged[0].0, "user_removed_from_group");
    assert!(logged[0].1.contains(&account) && logged[0].1.contains(&group_id));

    // A group synced from an identity provider is managed there.
    let (synced_user, synced) = (0..org.users.len())
        .find_map(|u| {
            let g = org.users[u]
                .groups
                .iter()
                .find(|&&g| org.groups[g].external_synced)?;
            Some((org.users[u].account_id.clone(), *g))
        })
        .expect("a member of a synced group");
    let synced_id = org.groups[synced].id.clone();
    let synced_dir = org.directories[org.groups[synced].directory].id.clone();
    let refused = send(
        &emu,
        MEMBERSHIP,
        &[
            ("directoryId", &synced_dir),
            ("groupId", &synced_id),
            ("accountId", &synced_user),
        ],
        None,
    )
    .await;
    assert_eq!(error_code(&refused, 403), "ADMIN-403-5");
    let still = column(
        &ctx,
        &format!("SELECT account_id FROM group_members WHERE group_id = '{synced_id}'"),
    )
    .await;
    assert!(
        still.contains(&synced_user),
        "a refused removal changes nothing"
    );

    // Unknown ids: group, user, directory.
    let unknown_group = [
        ("directoryId", directory.as_str()),
        ("groupId", "00000000-0000-4000-8000-000000000000"),
        ("accountId", account.as_str()),
    ];
    assert_eq!(
        error_code(&send(&emu, MEMBERSHIP, &unknown_group, None).await, 404),
        "ADMIN-404-10"
    );
    let unknown_user = [
        ("directoryId", directory.as_str()),
        ("groupId", group_id.as_str()),
        ("accountId", "557057:no-such-user"),
    ];
    assert_eq!(
        error_code(&send(&emu, MEMBERSHIP, &unknown_user, None).await, 404),
        "ADMIN-404-8"
    );
    let unknown_directory = [
        ("directoryId", "00000000-0000-4000-8000-000000000000"),
        ("groupId", group_id.as_str()),
        ("accountId", account.as_str()),
    ];
    assert_eq!(
        error_code(&send(&emu, MEMBERSHIP, &unknown_directory, None).await, 404),
        "ADMIN-404-11"
    );
    assert_eq!(events_by_key(&ctx).await.len(), 1);
}

#[tokio::test]
async fn a_group_role_revoked_leaves_the_group_and_its_members() {
    let emu = start().await;
    let org = emu.org();
    let ctx = fresh(&emu);
    // A group granting product access on a resource, with a member who
    // holds it through that group only.
    let (group, resource, member) = (0..org.groups.len())
        .find_map(|g| {
            let grant = org
                .group_roles(g)
                .into_iter()
                .find(|x| x.roles == ["atlassian/user"])?;
            let resource = grant.resource_id;
            let member = (0..org.users.len()).find(|&u| {
                org.users[u].groups.contains(&g)
                    && ways(&org, u, &resource, "atlassian/user") == ["group_direct"]
                    && only_through(&org, u, g, &resource, "atlassian/user")
            })?;
            Some((g, resource, org.users[member].account_id.clone()))
        })
        .expect("a group granting product access, and a member through it alone");
    let group_id = org.groups[group].id.clone();
    let directory = org.directories[org.groups[group].directory].id.clone();
    let grants_sql = format!(
        "SELECT role FROM group_role_assignments WHERE group_id = '{group_id}' AND resource_id = '{resource}'"
    );
    assert_eq!(column(&ctx, &grants_sql).await, ["atlassian/user"]);
    assert_eq!(
        methods(&ctx, &member, &resource, "atlassian/user").await,
        ["group_direct"]
    );

    let params = [
        ("directoryId", directory.as_str()),
        ("groupId", group_id.as_str()),
    ];
    let body = json!({"resourceId": resource, "roleId": "atlassian/user"});
    let answer = send(&emu, GROUP_ROLE_REVOKE, &params, Some(body.clone())).await;
    assert_done(&answer, "group role revoked");
    assert!(column(&ctx, &grants_sql).await.is_empty());
    assert!(
        methods(&ctx, &member, &resource, "atlassian/user")
            .await
            .is_empty()
    );
    assert_done(
        &send(&emu, GROUP_ROLE_REVOKE, &params, Some(body)).await,
        "no longer granted",
    );
    let logged = events_by_key(&ctx).await;
    assert_eq!(logged.len(), 1, "{logged:?}");
    assert_eq!(logged[0].0, "group_revoked_product_access");
    assert!(logged[0].1.contains(&group_id));

    // org-admin and site-admin are not roles this endpoint takes; a
    // resource that does not exist is invalid; so is a body without roleId.
    let refusals = [
        (
            json!({"resourceId": org.ari(), "roleId": "atlassian/org-admin"}),
            400,
            "ADMIN-400-24",
        ),
        (
            json!({"resourceId": "ari:cloud:jira::site/nope", "roleId": "atlassian/user"}),
            400,
            "ADMIN-400-4",
        ),
        (json!({"resourceId": resource}), 400, "ADMIN-400-24"),
    ];
    for (body, status, code) in refusals {
        let answer = send(&emu, GROUP_ROLE_REVOKE, &params, Some(body.clone())).await;
        assert_eq!(error_code(&answer, status), code, "{body}");
    }
    let unknown = [
        ("directoryId", directory.as_str()),
        ("groupId", "00000000-0000-4000-8000-000000000000"),
    ];
    let answer = send(
        &emu,
        GROUP_ROLE_REVOKE,
        &unknown,
        Some(json!({"resourceId": resource, "roleId": "atlassian/user"})),
    )
    .await;
    assert_eq!(error_code(&answer, 404), "ADMIN-404-10");
}

#[tokio::test]
async fn a_suspended_user_shows_suspended_and_keeps_their_roles() {
    let emu = start().await;
    let org = emu.org();
    let ctx = fresh(&emu);
    let user = org
        .users
        .iter()
        .skip(1)
        .find(|u| u.status == "active" && !org.user_roles(u).is_empty())
        .expect("an active user with roles");
    let account = user.account_id.clone();
    let directory = org.directories[user.directory].id.clone();
    let status_sql =
        format!("SELECT status, membership_status FROM users WHERE account_id = '{account}'");
    assert_eq!(sql_rows(&ctx, &status_sql).await, [["active", "active"]]);
    let roles_sql =
        format!("SELECT count(*) FROM user_role_assignments WHERE account_id = '{account}'");
    let roles_before = column(&ctx, &roles_sql).await;

    let params = [
        ("directoryId", directory.as_str()),
        ("accountId", account.as_str()),
    ];
    assert_done(&send(&emu, SUSPEND, &params, None).await, "suspended");
    assert_eq!(
        sql_rows(&ctx, &status_sql).await,
        [["suspended", "suspended"]]
    );
    assert_eq!(
        column(&ctx, &roles_sql).await,
        roles_before,
        "roles stay, for a restore"
    );
    assert_done(
        &send(&emu, SUSPEND, &params, None).await,
        "already suspended",
    );
    let logged = events_by_key(&ctx).await;
    assert_eq!(logged.len(), 1, "{logged:?}");
    assert_eq!(logged[0].0, "user_disabled_org_access");
    assert!(logged[0].1.contains(&account));

    let other_directory = org
        .directories
        .iter()
        .find(|d| d.id != directory)
        .expect("two directories")
        .id
        .clone();
    for params in [
        [
            ("directoryId", directory.as_str()),
            ("accountId", "557057:no-such-user"),
        ],
        [
            ("directoryId", other_directory.as_str()),
            ("accountId", account.as_str()),
        ],
    ] {
        assert_eq!(
            error_code(&send(&emu, SUSPEND, &params, None).await, 404),
            "ADMIN-404-8"
        );
    }
}

#[tokio::test]
async fn an_api_token_deleted_is_gone_and_the_user_management_api_answers_in_its_shape() {
    let emu = start().await;
    let org = emu.org();
    let ctx = fresh(&emu);
    let token = org.api_tokens.first().expect("a token");
    let (token_id, owner) = (token.id.clone(), org.users[token.owner].account_id.clone());
    let tokens_sql = "SELECT token_id FROM api_tokens";
    assert!(column(&ctx, tokens_sql).await.contains(&token_id));

    let params = [
        ("accountId", owner.as_str()),
        ("tokenId", token_id.as_str()),
    ];
    assert_done(&send(&emu, TOKEN, &params, None).await, "token deleted");
    assert!(!column(&ctx, tokens_sql).await.contains(&token_id));
    let logged = events_by_key(&ctx).await;
    assert_eq!(logged.len(), 1, "{logged:?}");
    assert_eq!(logged[0].0, "api_token_revoked");
    assert!(logged[0].1.contains(&token_id) && logged[0].1.contains(&owner));

    // Gone: the spec's notFound. An unknown account: accountNotFound.
    let again = send(&emu, TOKEN, &params, None).await;
    assert_eq!(
        (again.status, again.body),
        (404, Some(json!({"key": "notFound"})))
    );
    let unknown = send(
        &emu,
        TOKEN,
        &[
            ("accountId", "557057:no-such-user"),
            ("tokenId", token_id.as_str()),
        ],
        None,
    )
    .await;
    assert_eq!(
        (unknown.status, unknown.body),
        (404, Some(json!({"key": "accountNotFound"})))
    );
}

/// Every answer, a write's, a read's, an error's, carries a request id of
/// its own; every write is counted under its "METHOD template".
#[tokio::test]
async fn every_answer_has_its_own_request_id_and_writes_are_counted_by_route() {
    let emu = start().await;
    let org = emu.org();
    let user = &org.users[1];
    let directory = org.directories[user.directory].id.clone();
    let params = [
        ("directoryId", directory.as_str()),
        ("accountId", user.account_id.as_str()),
    ];
    let answers = [
        send(&emu, SUSPEND, &params, None).await,
        send(
            &emu,
            SUSPEND,
            &[("directoryId", directory.as_str()), ("accountId", "nobody")],
            None,
        )
        .await,
        send(&emu, "GET /admin/v2/orgs/{orgId}/directories", &[], None).await,
        send(&emu, "GET /admin/v9/nothing-here", &[], None).await,
        send_with(&emu, "not-a-key", SUSPEND, &params, None).await,
    ];
    let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [204, 404, 200, 404, 401]);
    let mut ids = std::collections::BTreeSet::new();
    for answer in &answers {
        for header in ["atl-traceid", "atl-request-id"] {
            let id = answer
                .headers
                .get(header)
                .expect(header)
                .to_str()
                .expect("text");
            assert!(ids.insert(id.to_string()), "{header} {id} given twice");
        }
    }
    // Every route requested, as sent: the unrouted request is no
    // endpoint's; the refused ones are counted.
    let sent: Vec<(String, u64)> = emu.routes_requested().into_iter().collect();
    assert_eq!(
        sent,
        [
            ("GET /admin/v2/orgs/{orgId}/directories".to_string(), 1),
            (SUSPEND.to_string(), 3)
        ]
    );
}

/// A write spends the rate budget like any call: over it, 429 with
/// `Retry-After`, and the organization unchanged.
#[tokio::test]
async fn writes_over_the_budget_are_refused_and_change_nothing() {
    // A budget period of 1000 minutes: nothing refills during the test.
    let emu = Emulator::start(EmulatorConfig {
        org: spec(80, 60),
        limits: Some(RateLimits {
            default_per_minute: 2,
            ..RateLimits::scaled(0.001)
        }),
        ..EmulatorConfig::default()
    })
    .await
    .expect("emulator starts");
    let org = emu.org();
    let suspendable: Vec<_> = org
        .users
        .iter()
        .filter(|u| u.membership_status == "active")
        .take(3)
        .collect();
    assert_eq!(suspendable.len(), 3);
    let mut statuses = Vec::new();
    for user in &suspendable {
        let directory = org.directories[user.directory].id.clone();
        let answer = send(
            &emu,
            SUSPEND,
            &[("directoryId", &directory), ("accountId", &user.account_id)],
            None,
        )
        .await;
        statuses.push(answer.status);
        if answer.status == 429 {
            assert!(answer.headers.contains_key("retry-after"));
            assert_eq!(answer.headers["x-ratelimit-remaining"], "0");
        }
    }
    assert_eq!(statuses, [204, 204, 429]);
    assert_eq!(emu.throttled(), 1);
    let now = emu.org();
    let third = now
        .users
        .iter()
        .find(|u| u.account_id == suspendable[2].account_id)
        .expect("the third user");
    assert_eq!(
        third.membership_status, "active",
        "the refused write changed nothing"
    );
}

/// Writes take the organization key without scopes: a scoped key is
/// refused (403) and changes nothing, as the organization API refuses it.
#[tokio::test]
async fn a_scoped_key_cannot_write() {
    let emu = Emulator::start(EmulatorConfig {
        org: spec(80, 60),
        access: orgsql::emulator::AccessRules {
            scoped_key: Some("scoped-key".to_string()),
            ..Default::default()
        },
        ..EmulatorConfig::default()
    })
    .await
    .expect("emulator starts");
    let org = emu.org();
    let token = org.api_tokens.first().expect("a token");
    let owner = org.users[token.owner].account_id.clone();
    let params = [
        ("accountId", owner.as_str()),
        ("tokenId", token.id.as_str()),
    ];
    let refused = send_with(&emu, "scoped-key", TOKEN, &params, None).await;
    assert_eq!(refused.status, 403, "{:?}", refused.body);
    assert!(
        emu.org().api_tokens.iter().any(|t| t.id == token.id),
        "the token is still there"
    );
    assert_done(
        &send(&emu, TOKEN, &params, None).await,
        "the unscoped key deletes it",
    );
}
