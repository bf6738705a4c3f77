//! `orgsql diff`: between two exports of an organization that changed, the
//! diff reports exactly the changes made, each row by its key and readable
//! labels, each changed column with its old and new value; and both exports
//! can be queried as schemas.

use std::process::Output;

use crate::common::*;
use orgsql::emulator::Faults;
use serde_json::{Value, json};

#[tokio::test]
async fn a_diff_reports_exactly_what_changed() {
    let emu = emulator(spec(40, 50), Faults::default(), None).await;
    let before = tempfile::tempdir().expect("temp dir");
    let after = tempfile::tempdir().expect("temp dir");
    export_to(emu.client_config(), before.path(), None).await;

    // A new user with nothing yet; a direct role for a user who had none;
    // a policy switched off.
    let org = emu.org();
    let promoted = org
        .users
        .iter()
        .position(|u| u.platform_roles.is_empty())
        .expect("a user without platform roles");
    let promoted_id = org.users[promoted].account_id.clone();
    let policy = org.policies[0].clone();
    let org_ari = org.ari();
    let newcomer_id = "712020:00000000-0000-4000-8000-00000000beef".to_string();
    let newcomer = newcomer_id.clone();
    let switched = if policy.status == "enabled" {
        "disabled"
    } else {
        "enabled"
    };
    emu.change(move |org| {
        let mut user = org.users[1].clone();
        user.account_id = newcomer;
        user.email = "new.hire@gmail.com".to_string();
        user.claim_status = "unmanaged";
        user.groups.clear();
        user.platform_roles.clear();
        user.product_access.clear();
        org.users.push(user);
        org.users[promoted]
            .platform_roles
            .push("atlassian/user-access-admin");
        org.policies[0].status = switched;
    });
    export_to(emu.client_config(), after.path(), None).await;

    let ctx = orgsql::bare_context();
    orgsql::snapshot::attach(&ctx, "old", &before.path().into())
        .await
        .expect("old");
    orgsql::snapshot::attach(&ctx, "new", &after.path().into())
        .await
        .expect("new");
    let mut changes = rows(
        &orgsql::snapshot::diff(&ctx, "old", "new")
            .await
            .expect("diff"),
    );
    changes.sort();
    let email = |id: &str| {
        let sql = format!("SELECT email FROM new.users WHERE account_id = '{id}'");
        let ctx = ctx.clone();
        async move { column(&ctx, &sql).await.concat() }
    };
    let promoted_email = email(&promoted_id).await;
    let newcomer_name = column(
        &ctx,
        &format!("SELECT name FROM new.users WHERE account_id = '{newcomer_id}'"),
    )
    .await
    .concat();
    let org_id = emu.org().id.clone();
    let row = |table: &str, change: &str, key: String, labels: String, column: [&str; 3]| {
        let mut row = vec![
            org_id.clone(),
            table.to_string(),
            change.to_string(),
            key,
            labels,
        ];
        row.extend(column.map(String::from));
        row
    };
    let none = ["NULL"; 3];
    let mut expected = vec![
        row(
            "policies",
            "changed",
            format!("{{policy_id: {}}}", policy.id),
            format!("{{policy: {}}}", policy.name),
            ["status", policy.status, switched],
        ),
        row(
            "user_platform_roles",
            "added",
            format!("{{account_id: {promoted_id}, role: atlassian/user-access-admin}}"),
            format!("{{email: {promoted_email}}}"),
            none,
        ),
        row(
            "user_role_assignments",
            "added",
            format!(
                "{{account_id: {promoted_id}, resource_id: {org_ari}, \
                 role: atlassian/user-access-admin}}"
            ),
            // The organization is no workspace.
            format!("{{email: {promoted_email}, workspace: NULL}}"),
            none,
        ),
        row(
            "users",
            "added",
            format!("{{account_id: {newcomer_id}}}"),
            format!("{{email: new.hire@gmail.com, name: {newcomer_name}}}"),
            none,
        ),
    ];
    // The API's counts (users/stats) move with the changes: one more
    // user-access admin, one more active account.
    for (kind, value) in [
        ("role", "atlassian/user-access-admin"),
        ("account_status", "active"),
    ] {
        let sql = format!(
            "SELECT CAST(user_count AS VARCHAR) FROM old.org_user_stats \
             WHERE kind = '{kind}' AND value = '{value}'"
        );
        let before = column(&ctx, &sql).await.concat();
        let after = before
            .parse::<i64>()
            .map(|n| (n + 1).to_string())
            .unwrap_or_default();
        expected.push(row(
            "org_user_stats",
            "changed",
            format!("{{kind: {kind}, value: {value}}}"),
            "{}".to_string(),
            ["user_count", &before, &after],
        ));
    }
    // The seats' sources carry each account's platform roles: every source
    // of the promoted account says the new role.
    let sources = rows(
        &ctx.sql(&format!(
            "SELECT source, source_id FROM old.seat_sources WHERE account_id = '{promoted_id}'"
        ))
        .await
        .expect("seat_sources")
        .collect()
        .await
        .expect("rows"),
    );
    assert!(!sources.is_empty(), "the promoted account holds seats");
    for source in sources {
        expected.push(row(
            "seat_sources",
            "changed",
            format!(
                "{{account_id: {promoted_id}, source: {}, source_id: {}}}",
                source[0], source[1]
            ),
            format!("{{email: {promoted_email}}}"),
            ["platform_roles", "NULL", "atlassian/user-access-admin"],
        ));
    }
    expected.sort();
    assert_eq!(changes, expected);

    // The same questions in SQL, with both snapshots attached as schemas.
    let sql = "SELECT account_id FROM new.users EXCEPT SELECT account_id FROM old.users";
    assert_eq!(column(&ctx, sql).await, vec![newcomer_id]);
    let sql = "SELECT n.policy_id FROM new.policies n JOIN old.policies o USING (policy_id) \
               WHERE n.status <> o.status";
    assert_eq!(column(&ctx, sql).await.len(), 1);
}

/// `orgsql diff OLD NEW ARGS...`, run.
fn diff(old: &std::path::Path, new: &std::path::Path, args: &[&str]) -> Output {
    orgsql_alone()
        .arg("diff")
        .args([old, new])
        .args(args)
        .output()
        .expect("orgsql runs")
}

/// One value of a snapshot's SQL as JSON: a string, or null for NULL.
async fn value(ctx: &datafusion::prelude::SessionContext, sql: &str) -> Value {
    let rows =
        orgsql::cli::output::text_rows(&query(ctx, sql).await.expect(sql), "\0NULL").expect("text");
    match rows.as_slice() {
        [row] if row[0] == "\0NULL" => Value::Null,
        [row] => Value::from(row[0].clone()),
        _ => panic!("{sql}: {rows:?}"),
    }
}

/// The real binary, between two exports: a person renamed (to text with
/// quotes, a comma, a slash and an escape) whose location went from NULL to '', a
/// person whose account changed (removed, and added anew), a policy
/// switched. Every expected value is read from the exports with SQL or from
/// the emulator, never from the diff.
#[tokio::test]
async fn diff_shows_people_old_and_new_and_exits_1_on_a_change() {
    let emu = emulator(spec(40, 50), Faults::default(), None).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let (before, after) = (dir.path().join("before"), dir.path().join("after"));
    export_to(emu.client_config(), &before, None).await;

    let org = emu.org();
    let renamed = org
        .users
        .iter()
        .position(|u| u.location.is_none() && !u.groups.is_empty())
        .expect("a user in a group with no location");
    let renamed_id = org.users[renamed].account_id.clone();
    // Anyone can set their name: quotes, a comma, a slash, and a terminal's
    // escape (which the table shows, not acts on).
    let new_name = "Zoë \"Z\" Smith, Jr./Ops\u{1b}[2J";
    let moved = org
        .users
        .iter()
        .position(|u| u.account_id != renamed_id && !u.groups.is_empty())
        .expect("another user in a group");
    let moved_id = org.users[moved].account_id.clone();
    let moved_id_now = "712020:00000000-0000-4000-8000-0000000d1ff5".to_string();
    let policy = org.policies[0].clone();
    let switched = if policy.status == "enabled" {
        "disabled"
    } else {
        "enabled"
    };
    let now_id = moved_id_now.clone();
    emu.change(move |org| {
        org.users[renamed].name = new_name.to_string();
        org.users[renamed].location = Some("");
        org.users[moved].account_id = now_id;
        org.users[moved].email = "moved@example.com".to_string();
        org.policies[0].status = switched;
    });
    export_to(emu.client_config(), &after, None).await;

    let ctx = orgsql::bare_context();
    orgsql::snapshot::attach(&ctx, "old", &before.as_path().into())
        .await
        .expect("old");
    orgsql::snapshot::attach(&ctx, "new", &after.as_path().into())
        .await
        .expect("new");
    let of_user = |schema: &str, column: &str, id: &str| {
        format!("SELECT {column} FROM {schema}.users WHERE account_id = '{id}'")
    };
    let old_name = value(&ctx, &of_user("old", "name", &renamed_id)).await;
    let renamed_email = value(&ctx, &of_user("new", "email", &renamed_id)).await;
    let moved_email = value(&ctx, &of_user("old", "email", &moved_id)).await;
    assert_eq!(
        value(&ctx, &of_user("new", "name", &renamed_id)).await,
        new_name
    );
    // NULL then '': a change, as PostgreSQL's IS DISTINCT FROM sees it.
    assert_eq!(
        value(&ctx, &of_user("old", "location", &renamed_id)).await,
        Value::Null
    );
    assert_eq!(
        value(&ctx, &of_user("new", "location", &renamed_id)).await,
        ""
    );
    assert!(moved_email.is_string() && moved_email != "moved@example.com");

    // --exit-code: 1 on a change, as `git diff --exit-code`.
    let output = diff(&before, &after, &["--format", "json", "--exit-code"]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let changes: Value = serde_json::from_slice(&output.stdout).expect("a JSON array");
    let changes = changes.as_array().expect("changes");
    let org_id = emu.org().id.clone();
    for change in changes {
        let fields: Vec<&str> = change
            .as_object()
            .expect("an object")
            .keys()
            .map(String::as_str)
            .collect();
        // (serde_json's objects sort their fields.)
        assert_eq!(
            fields,
            [
                "change",
                "column_name",
                "key",
                "labels",
                "new_value",
                "old_value",
                "org_id",
                "table_name"
            ]
        );
        assert_eq!(change["org_id"], org_id.as_str());
    }
    let found = |table: &str, change: &str, key: &Value, column: Value| -> Vec<&Value> {
        changes
            .iter()
            .filter(|c| {
                c["table_name"] == table
                    && c["change"] == change
                    && &c["key"] == key
                    && c["column_name"] == column
            })
            .collect()
    };

    // The renamed person: old → new per column, labelled by email.
    let key = json!({ "account_id": renamed_id });
    let name = found("users", "changed", &key, json!("name"));
    assert_eq!(name.len(), 1, "{changes:#?}");
    assert_eq!(name[0]["old_value"], old_name);
    assert_eq!(name[0]["new_value"], new_name);
    assert_eq!(
        name[0]["labels"],
        json!({ "email": renamed_email, "name": new_name })
    );
    let location = found("users", "changed", &key, json!("location"));
    assert_eq!(location.len(), 1, "{changes:#?}");
    assert_eq!(location[0]["old_value"], Value::Null);
    assert_eq!(location[0]["new_value"], "");

    // The policy switched.
    let key = json!({ "policy_id": policy.id });
    let status = found("policies", "changed", &key, json!("status"));
    assert_eq!(status.len(), 1, "{changes:#?}");
    assert_eq!(
        (&status[0]["old_value"], &status[0]["new_value"]),
        (&json!(policy.status), &json!(switched))
    );

    // The account that changed: removed, labelled from the old export (the
    // new one has no such user), and added anew.
    let gone = found(
        "users",
        "removed",
        &json!({ "account_id": moved_id }),
        Value::Null,
    );
    assert_eq!(gone.len(), 1, "{changes:#?}");
    assert_eq!(gone[0]["labels"]["email"], moved_email);
    let anew = found(
        "users",
        "added",
        &json!({ "account_id": moved_id_now }),
        Value::Null,
    );
    assert_eq!(anew[0]["labels"]["email"], "moved@example.com");

    // Its roles: each key whole (ARIs and roles hold '/'), with the email
    // and the workspace's name.
    let sql = format!(
        "SELECT r.resource_id, r.role, w.name FROM old.user_role_assignments r \
         LEFT JOIN old.workspaces w ON w.workspace_id = r.resource_id \
         WHERE r.account_id = '{moved_id}' ORDER BY 1, 2"
    );
    let expected: Vec<Value> = sql_rows(&ctx, &sql)
        .await
        .into_iter()
        .map(|r| {
            json!({
                "key": { "account_id": moved_id, "resource_id": r[0], "role": r[1] },
                "labels": {
                    "email": moved_email,
                    "workspace": if r[2] == "NULL" { Value::Null } else { json!(r[2]) },
                },
            })
        })
        .collect();
    assert!(
        expected.iter().any(|e| e["key"]["resource_id"]
            .as_str()
            .is_some_and(|r| r.contains('/'))),
        "a resource with '/' in its ARI: {expected:?}"
    );
    let roles: Vec<Value> = changes
        .iter()
        .filter(|c| {
            c["table_name"] == "user_role_assignments"
                && c["change"] == "removed"
                && c["key"]["account_id"] == moved_id.as_str()
        })
        .map(|c| json!({ "key": c["key"], "labels": c["labels"] }))
        .collect();
    assert_eq!(roles, expected);

    // The same in CSV: the key a JSON object, exact; old and new as they are.
    let output = diff(&before, &after, &["--format", "csv"]);
    let printed = succeeded(&output, "diff --format csv");
    let mut reader = csv::Reader::from_reader(printed.as_slice());
    assert_eq!(
        reader.headers().expect("a header"),
        vec![
            "org_id",
            "table_name",
            "change",
            "key",
            "labels",
            "column_name",
            "old_value",
            "new_value"
        ]
    );
    let records: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("a record")).collect();
    assert_eq!(records.len(), changes.len());
    let renamed_key = json!({ "account_id": renamed_id });
    let name = records
        .iter()
        .find(|r| {
            &r[1] == "users"
                && serde_json::from_str::<Value>(&r[3]).ok() == Some(renamed_key.clone())
                && &r[5] == "name"
        })
        .expect("the rename, in CSV");
    assert_eq!(
        (&name[6], &name[7]),
        (old_name.as_str().expect("a name"), new_name)
    );
    let csv_keys: Vec<Value> = records
        .iter()
        .filter(|r| &r[1] == "user_role_assignments" && &r[2] == "removed")
        .map(|r| serde_json::from_str(&r[3]).expect("a JSON key"))
        .filter(|k: &Value| k["account_id"] == moved_id.as_str())
        .collect();
    let keys: Vec<Value> = expected.iter().map(|e| e["key"].clone()).collect();
    assert_eq!(csv_keys, keys);

    // ndjson: the same objects, a line each.
    let output = diff(&before, &after, &["--format", "ndjson"]);
    let lines: Vec<Value> = String::from_utf8(succeeded(&output, "diff --format ndjson"))
        .expect("UTF-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(&lines, changes);

    // Parquet keeps the key a map: a query reads one of its fields.
    let file = dir.path().join("changes.parquet");
    let output = diff(
        &before,
        &after,
        &["--output", file.to_str().expect("UTF-8")],
    );
    succeeded(&output, "diff --output changes.parquet");
    let read = orgsql::bare_context();
    read.register_parquet("changes", file.to_str().expect("UTF-8"), Default::default())
        .await
        .expect("a Parquet file");
    let sql = format!(
        "SELECT old_value, new_value FROM changes WHERE table_name = 'users' \
         AND key['account_id'] = '{renamed_id}' AND column_name = 'name'"
    );
    assert_eq!(
        sql_rows(&read, &sql).await,
        vec![vec![
            old_name.as_str().expect("a name").to_string(),
            new_name.to_string()
        ]]
    );

    // The table for people: the email and both names, whole. Without
    // --exit-code a change is no failure.
    let output = diff(&before, &after, &[]);
    let table = String::from_utf8(succeeded(&output, "diff")).expect("UTF-8");
    for text in [
        old_name.as_str().expect("a name"),
        "Zoë \"Z\" Smith, Jr./Ops\\u{1b}[2J",
        renamed_email.as_str().expect("an email"),
        moved_email.as_str().expect("an email"),
    ] {
        assert!(table.contains(text), "{text} in:\n{table}");
    }
    assert!(!table.contains('\u{1b}'), "nothing a terminal acts on");

    // Nothing changed: 0; an export that cannot be read: 2, not "changed".
    let output = diff(&after, &after, &["--exit-code", "--format", "json"]);
    assert_eq!(succeeded(&output, "diff of one export"), b"[]\n");
    let output = diff(&before, &dir.path().join("nowhere"), &["--exit-code"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("nowhere") && stderr.contains("manifest.json"),
        "{stderr}"
    );
}

/// A table only one export holds is not compared, and the diff says so.
#[tokio::test]
async fn a_table_only_one_export_holds_is_named() {
    let emu = emulator(spec(10, 5), Faults::default(), None).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let (some, more) = (dir.path().join("some"), dir.path().join("more"));
    export_to(emu.client_config(), &some, Some(&["users"])).await;
    export_to(emu.client_config(), &more, Some(&["users", "groups"])).await;
    let output = diff(&some, &more, &["--exit-code", "--format", "json"]);
    assert_eq!(succeeded(&output, "diff"), b"[]\n");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "not compared, only {} holds them: groups",
            more.display()
        )),
        "{stderr}"
    );
}
