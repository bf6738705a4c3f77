//! Real SQL through the real HTTP client against the emulator: every table
//! returns the emulator's rows, across pages.

use std::collections::BTreeSet;

use crate::common::*;
use orgsql::emulator::{AccessRules, Emulator, EmulatorConfig, Faults};
use orgsql::tables::{Kind, Shape, catalog};

#[tokio::test]
async fn every_table_returns_the_emulators_rows_across_pages() {
    // One row a page, so every listing takes as many pages as it has rows.
    let emu = emulator(spec(30, 40), Faults::default(), Some(1)).await;
    let org = emu.org().clone();
    let ctx = session(emu.client_config());

    assert_eq!(
        sql_rows(&ctx, "SELECT org_id, name FROM orgs").await,
        vec![vec![org.id.clone(), org.name.clone()]]
    );

    let domains = sql_rows(
        &ctx,
        "SELECT domain_id, name, claim_type, claim_status FROM domains",
    )
    .await;
    let expected: Vec<Vec<String>> = org
        .domains
        .iter()
        .map(|d| {
            vec![
                d.id.clone(),
                d.name.clone(),
                d.claim_type.to_string(),
                d.claim_status.to_string(),
            ]
        })
        .collect();
    assert_eq!(domains, expected);
    assert_eq!(emu.requests("/domains"), org.domains.len() as u64);

    let directories = column(&ctx, "SELECT directory_id FROM directories").await;
    assert_eq!(
        directories,
        org.directories
            .iter()
            .map(|d| d.id.clone())
            .collect::<Vec<_>>()
    );
    assert_eq!(emu.requests("/directories"), 2);

    // users: every account, in API order, with the columns as the API gave them.
    let users = sql_rows(
        &ctx,
        "SELECT org_id, account_id, email, status, claim_status, mfa_enabled, CAST(added_to_org AS BIGINT), resource_count FROM users",
    )
    .await;
    assert_eq!(users.len(), org.users.len());
    assert_eq!(emu.requests("/users/search"), org.users.len() as u64);
    for (row, user) in users.iter().zip(&org.users) {
        let mfa = user
            .mfa_enabled
            .map_or("NULL".to_string(), |m| m.to_string());
        let expected = [
            org.id.clone(),
            user.account_id.clone(),
            user.email.clone(),
            user.status.to_string(),
            user.claim_status.to_string(),
            mfa,
            user.added_to_org.timestamp_micros().to_string(),
            user.product_access.len().to_string(),
        ];
        assert_eq!(row, &expected);
    }

    let groups = sql_rows(
        &ctx,
        "SELECT group_id, name, directory_id, user_count FROM groups",
    )
    .await;
    assert_eq!(groups.len(), org.groups.len());
    for (i, (row, group)) in groups.iter().zip(&org.groups).enumerate() {
        let members = org.members_of(i).count().to_string();
        let expected = [
            group.id.clone(),
            group.name.clone(),
            org.directories[group.directory].id.clone(),
            members,
        ];
        assert_eq!(row, &expected);
    }

    let members: BTreeSet<(String, String)> =
        sql_rows(&ctx, "SELECT group_id, account_id FROM group_members")
            .await
            .into_iter()
            .map(|r| (r[0].clone(), r[1].clone()))
            .collect();
    let expected: BTreeSet<(String, String)> = org
        .users
        .iter()
        .flat_map(|u| {
            u.groups
                .iter()
                .map(|&g| (org.groups[g].id.clone(), u.account_id.clone()))
        })
        .collect();
    assert_eq!(members, expected);
    assert!(!members.is_empty());

    let workspaces = sql_rows(
        &ctx,
        "SELECT workspace_id, name, type_key, status, regions, sandbox_type FROM workspaces",
    )
    .await;
    let expected: Vec<Vec<String>> = org
        .workspaces
        .iter()
        .map(|w| {
            vec![
                w.id.clone(),
                w.name.clone(),
                w.type_key.to_string(),
                w.status.to_string(),
                w.regions.join(","),
                w.sandbox.to_string(),
            ]
        })
        .collect();
    assert_eq!(workspaces, expected);
    assert_eq!(emu.requests("/workspaces"), org.workspaces.len() as u64);

    let events = sql_rows(
        &ctx,
        "SELECT event_id, CAST(time AS BIGINT), action, actor_id, ip FROM events",
    )
    .await;
    assert_eq!(events.len(), org.events.len());
    // Read whole, the audit log comes from the polling API, whose cursor
    // never ends: one page an event, then the empty page that says so.
    assert_eq!(emu.requests("/events-stream"), org.events.len() as u64 + 1);
    assert_eq!(emu.requests("/events"), 0);
    let mut expected: Vec<Vec<String>> = org
        .events
        .iter()
        .map(|event| {
            let ip = event
                .location
                .as_ref()
                .map_or("NULL".to_string(), |l| l.ip.clone());
            vec![
                event.id.clone(),
                event.time.timestamp_micros().to_string(),
                event.action.to_string(),
                event.actor_id.clone(),
                ip,
            ]
        })
        .collect();
    let mut events = events;
    events.sort();
    expected.sort();
    assert_eq!(events, expected);

    let policies = sql_rows(
        &ctx,
        "SELECT policy_id, type, name, status, rule FROM policies",
    )
    .await;
    let expected: Vec<Vec<String>> = org
        .policies
        .iter()
        .map(|p| {
            vec![
                p.id.clone(),
                p.kind.to_string(),
                p.name.to_string(),
                p.status.to_string(),
                p.rule.to_string(),
            ]
        })
        .collect();
    assert_eq!(policies, expected);
    assert_eq!(emu.requests("/policies"), org.policies.len() as u64);
}

#[tokio::test]
async fn users_join_group_members_join_groups() {
    let emu = emulator(spec(120, 10), Faults::default(), None).await;
    let org = emu.org().clone();
    let ctx = session(emu.client_config());
    let rows = sql_rows(
        &ctx,
        "SELECT g.name, u.email FROM users u \
         JOIN group_members m USING (org_id, account_id) \
         JOIN groups g USING (org_id, group_id) \
         ORDER BY g.name, u.email",
    )
    .await;
    let mut expected: Vec<Vec<String>> = org
        .users
        .iter()
        .flat_map(|u| {
            u.groups
                .iter()
                .map(|&g| vec![org.groups[g].name.clone(), u.email.clone()])
        })
        .collect();
    expected.sort();
    assert_eq!(rows, expected);
    let org_admins: Vec<String> = rows
        .iter()
        .filter(|r| r[0] == "org-admins")
        .map(|r| r[1].clone())
        .collect();
    assert!(
        org_admins.contains(&org.users[0].email),
        "the owner is an org admin"
    );
}

#[tokio::test]
async fn limit_on_events_makes_exactly_one_request() {
    let emu = emulator(spec(20, 3000), Faults::default(), None).await;
    let org = emu.org().clone();
    let ctx = session(emu.client_config());
    let ids = column(&ctx, "SELECT event_id FROM events LIMIT 5").await;
    // The polling API's order: most recently processed first.
    let mut processed: Vec<_> = org.events.iter().collect();
    processed.sort_by(|a, b| (b.processed_at, &b.id).cmp(&(a.processed_at, &a.id)));
    let newest: Vec<String> = processed.iter().take(5).map(|e| e.id.clone()).collect();
    assert_eq!(ids, newest);
    assert_eq!(emu.requests("/events-stream"), 1);

    // A filter the API cannot apply keeps the LIMIT out of the scan, but the
    // scan must still stop once enough rows have come (no eager repartition).
    emu.reset_requests();
    let logins = column(
        &ctx,
        "SELECT event_id FROM events WHERE lower(action) = 'user_login' LIMIT 2",
    )
    .await;
    assert_eq!(logins.len(), 2);
    assert_eq!(emu.requests("/events-stream"), 1);
}

#[tokio::test]
async fn rate_limits_and_unavailable_answers_are_retried_to_the_same_rows() {
    let sql = [
        "SELECT * FROM users ORDER BY account_id",
        "SELECT * FROM events ORDER BY event_id",
        "SELECT * FROM group_members ORDER BY group_id, account_id",
        "SELECT * FROM workspaces ORDER BY workspace_id",
    ];
    let clean = emulator(spec(80, 300), Faults::default(), Some(20)).await;
    let faults = Faults {
        fail_every: Some(3),
        retry_after_secs: 0,
        ..Faults::default()
    };
    let flaky = emulator(spec(80, 300), faults, Some(20)).await;
    let clean_ctx = session(clean.client_config());
    let flaky_ctx = session(flaky.client_config());
    for sql in sql {
        let expected = sql_rows(&clean_ctx, sql).await;
        assert!(!expected.is_empty());
        assert_eq!(sql_rows(&flaky_ctx, sql).await, expected, "{sql}");
    }
    // Every third request failed and was retried: the successful ones are
    // exactly the clean run's.
    let total = flaky.requests("");
    assert!(total / 3 >= 10, "faults were injected");
    assert_eq!(total - total / 3, clean.requests(""));
}

#[tokio::test]
async fn retries_are_bounded_and_then_the_query_fails_clearly() {
    let faults = Faults {
        fail_every: Some(1),
        retry_after_secs: 0,
        ..Faults::default()
    };
    let emu = emulator(spec(5, 5), faults, None).await;
    let ctx = session(emu.client_config());
    let error = query(&ctx, "SELECT * FROM policies")
        .await
        .expect_err("always failing API");
    let message = orgsql::error::message(&error);
    assert!(
        message.contains("GET /admin/v1/orgs/{orgId}/policies"),
        "{message}"
    );
    assert!(message.contains("gave up after 6 attempts"), "{message}");
    assert_eq!(emu.requests("/policies"), 6);
}

#[tokio::test]
async fn a_repeated_cursor_is_an_error_not_an_endless_loop() {
    let faults = Faults {
        repeat_cursor: true,
        ..Faults::default()
    };
    let emu = emulator(spec(30, 10), faults, Some(5)).await;
    let ctx = session(emu.client_config());
    let error = query(&ctx, "SELECT count(*) FROM users")
        .await
        .expect_err("a broken cursor must fail");
    let message = orgsql::error::message(&error);
    assert!(message.contains("same page cursor twice"), "{message}");
    assert_eq!(emu.requests("/users/search"), 2);
}

#[tokio::test]
async fn a_wrong_org_id_names_the_org_id_problem() {
    let emu = emulator(spec(5, 5), Faults::default(), None).await;
    let mut config = emu.client_config();
    config.org_id = "00000000-0000-4000-8000-000000000000".to_string();
    let ctx = session(config);
    for table in ["orgs", "users", "events"] {
        let error = query(&ctx, &format!("SELECT * FROM {table}"))
            .await
            .expect_err("unknown org");
        let message = orgsql::error::message(&error);
        assert!(message.contains("HTTP 404"), "{message}");
        assert!(message.contains("Organization not found"), "{message}");
        assert!(
            message.contains("check the organization id (--org-id or ATLASSIAN_ORG_ID)"),
            "{message}"
        );
    }
}

#[tokio::test]
async fn expansions_are_requested_only_for_columns_a_query_reads() {
    let emu = emulator(spec(10, 5), Faults::default(), None).await;
    let ctx = session(emu.client_config());
    let expand = |suffix: &str| emu.last_body(suffix).map(|body| body["expand"].clone());

    sql_rows(&ctx, "SELECT account_id, email FROM users").await;
    assert_eq!(expand("/users/search"), Some(serde_json::Value::Null));
    sql_rows(&ctx, "SELECT sum(resource_count) FROM users").await;
    assert_eq!(
        expand("/users/search"),
        Some(serde_json::json!(["counts.resources"]))
    );
    sql_rows(&ctx, "SELECT group_id FROM group_members").await;
    assert_eq!(expand("/users/search"), Some(serde_json::json!(["groups"])));

    sql_rows(&ctx, "SELECT name FROM groups").await;
    assert_eq!(expand("/groups/search"), Some(serde_json::Value::Null));
    sql_rows(&ctx, "SELECT name, user_count FROM groups").await;
    assert_eq!(
        expand("/groups/search"),
        Some(serde_json::json!(["counts.users"]))
    );
}

#[tokio::test]
async fn every_table_and_column_is_documented() {
    let emu = emulator(spec(5, 5), Faults::default(), None).await;
    let ctx = session(emu.client_config());
    let catalog = orgsql::tables::catalog();
    let mut documented: Vec<&str> = catalog.iter().map(|t| t.name).collect();
    documented.sort();
    let registered = column(
        &ctx,
        "SELECT table_name FROM information_schema.tables \
         WHERE table_schema = 'public' ORDER BY table_name",
    )
    .await;
    assert_eq!(registered, documented);
    for table in &catalog {
        assert!(!table.description.is_empty(), "{}", table.name);
        let sql = format!(
            "SELECT column_name FROM information_schema.columns \
             WHERE table_name = '{}' ORDER BY ordinal_position",
            table.name
        );
        let columns: Vec<&str> = table.columns.iter().map(|c| c.name).collect();
        assert_eq!(column(&ctx, &sql).await, columns, "{}", table.name);
        // The contract: every organization table starts with org_id.
        if table.name != "orgsql_requests" {
            assert_eq!(columns.first(), Some(&"org_id"), "{}", table.name);
        }
        assert!(
            table.columns.iter().all(|c| !c.description.is_empty()),
            "{}",
            table.name
        );
        // A declared filter is on a column of the table, and its key too.
        for filter in table.filters {
            assert!(
                columns.contains(&filter.column),
                "{}.{}",
                table.name,
                filter.column
            );
        }
        for key in table.key {
            assert!(columns.contains(key), "{}.{key}", table.name);
        }
    }
}

#[tokio::test]
async fn keys_identify_rows() {
    // `orgsql diff` matches rows by these keys: each must be unique.
    let emu = emulator(spec(80, 300), Faults::default(), None).await;
    let ctx = session(emu.client_config());
    for table in orgsql::tables::catalog() {
        if table.key.is_empty() {
            continue;
        }
        let key = table.key.join(", ");
        let sql = format!(
            "SELECT count(*) FROM (SELECT {key} FROM {name} GROUP BY {key} HAVING count(*) > 1)",
            name = table.name
        );
        assert_eq!(
            column(&ctx, &sql).await,
            vec!["0"],
            "{}: key ({key})",
            table.name
        );
        let sql = format!("SELECT count(*) > 0 FROM {}", table.name);
        assert_eq!(
            column(&ctx, &sql).await,
            vec!["true"],
            "{} has rows",
            table.name
        );
    }
}

/// Endpoints the emulator serves that no table reads, and why each is served.
const SERVED_FOR_NO_TABLE: &[(&str, &str)] = &[
    (
        "GET /admin/v1/orgs",
        "the organizations a key can see: orgsql is told which organization each key is for and \
         never lists them; served as the API does, and checked against the spec (spec.rs)",
    ),
    (
        "POST /admin/v1/orgs/{orgId}/users/{userId}/roles/revoke",
        WRITE,
    ),
    (
        "POST /admin/v1/orgs/{orgId}/users/{userId}/role-assignments/revoke",
        WRITE,
    ),
    (
        "DELETE /admin/v2/orgs/{orgId}/directories/{directoryId}/groups/{groupId}/memberships/{accountId}",
        WRITE,
    ),
    (
        "POST /admin/v2/orgs/{orgId}/directories/{directoryId}/groups/{groupId}/role-assignments/revoke",
        WRITE,
    ),
    (
        "POST /admin/v2/orgs/{orgId}/directories/{directoryId}/users/{accountId}/suspend",
        WRITE,
    ),
    (
        "DELETE /users/{accountId}/manage/api-tokens/{tokenId}",
        WRITE,
    ),
];

/// Why the writes are served: no table writes.
const WRITE: &str = "a write `orgsql review apply` sends, never a table (emulator_writes.rs)";

/// The catalog and the emulator's route table agree: every call an API
/// table makes is to an endpoint the emulator serves (method and path
/// template), and every endpoint it serves is called by some table or is in
/// `SERVED_FOR_NO_TABLE`. A table's calls are those it makes read whole and
/// with each filter it declares (filters choose endpoints: events reads
/// `/events-stream` whole and `/events` filtered), and read whole again with
/// the org-wide token listing refused (api_tokens then reads each user's).
#[tokio::test]
async fn every_table_calls_endpoints_the_emulator_serves_and_each_is_called() {
    let served: BTreeSet<&str> = orgsql::emulator::endpoints().collect();
    let api_tables: Vec<_> = catalog()
        .into_iter()
        .filter(|t| matches!(t.kind, Kind::Api { .. } | Kind::AuditLog { .. }))
        .collect();
    let normal = emulator(spec(8, 40), Faults::default(), None).await;
    let refusing = Emulator::start(EmulatorConfig {
        org: spec(8, 40),
        access: AccessRules {
            refuse_token_listing: true,
            ..AccessRules::default()
        },
        ..EmulatorConfig::default()
    })
    .await
    .expect("emulator starts");

    // (table, "METHOD template") of every call sent; queries that failed.
    let mut calls: BTreeSet<(String, String)> = BTreeSet::new();
    let mut failed: Vec<String> = Vec::new();
    for (emu, filtered) in [(&normal, true), (&refusing, false)] {
        // No page cache: a table whose pages another has fetched calls too.
        let mut config = fast_retries(emu.client_config());
        config.cache_ttl = None;
        let client = orgsql::api::Client::new(config).expect("client");
        let ctx = orgsql::context(&client).expect("session");
        for table in &api_tables {
            let mut queries = vec![format!("SELECT * FROM {}", table.name)];
            // Any value will do: a filter chooses an endpoint whatever it holds.
            let filters = if filtered { table.filters } else { &[] };
            for filter in filters {
                let predicate = match filter.shape {
                    Shape::Flag => format!("{} = true", filter.column),
                    Shape::Time { .. } => {
                        format!("{} < TIMESTAMP '2100-01-01T00:00:00Z'", filter.column)
                    }
                    _ => format!("{} = 'x'", filter.column),
                };
                queries.push(format!("SELECT * FROM {} WHERE {predicate}", table.name));
            }
            for sql in queries {
                if let Err(e) = query(&ctx, &sql).await {
                    failed.push(format!("{sql}: {e}"));
                }
            }
        }
        calls.extend(client.requests().into_iter().map(|r| {
            (
                r.table_name.to_string(),
                format!("{} {}", r.method, r.endpoint),
            )
        }));
    }

    let unserved: Vec<String> = calls
        .iter()
        .filter(|(_, call)| !served.contains(call.as_str()))
        .map(|(table, call)| format!("{table} calls {call}"))
        .collect();
    assert!(
        unserved.is_empty(),
        "calls the emulator does not serve (routes.rs ENDPOINTS):\n{}",
        unserved.join("\n")
    );
    for table in &api_tables {
        assert!(
            calls.iter().any(|(t, _)| t == table.name),
            "{} made no call: nothing of it was checked",
            table.name
        );
    }
    let called: BTreeSet<&str> = calls.iter().map(|(_, call)| call.as_str()).collect();
    let unused: BTreeSet<&str> = SERVED_FOR_NO_TABLE
        .iter()
        .map(|(route, _)| *route)
        .collect();
    let uncalled: Vec<&str> = served
        .iter()
        .filter(|route| !called.contains(*route) && !unused.contains(*route))
        .copied()
        .collect();
    assert!(
        uncalled.is_empty(),
        "served, but no table calls them (a table should, or SERVED_FOR_NO_TABLE say why):\n{}",
        uncalled.join("\n")
    );
    for route in &unused {
        assert!(
            served.contains(route),
            "{route} is listed as unused but not served"
        );
        assert!(
            !called.contains(route),
            "{route} is listed as called by no table, but a table calls it"
        );
    }
    assert!(failed.is_empty(), "queries failed:\n{}", failed.join("\n"));
}
