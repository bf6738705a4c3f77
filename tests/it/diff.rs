//! `orgsql diff`: between two exports of an organization that changed, the
//! diff reports exactly the changes made, and both can be queried as schemas.

use crate::common::*;
use orgsql::emulator::Faults;

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
    let policy = org.policies[0].id.clone();
    let org_ari = org.ari();
    let newcomer_id = "712020:00000000-0000-4000-8000-00000000beef".to_string();
    let newcomer = newcomer_id.clone();
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
        org.policies[0].status = if org.policies[0].status == "enabled" {
            "disabled"
        } else {
            "enabled"
        };
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
    let org_id = emu.org().id.clone();
    let row = |table: &str, change: &str, key: String, columns: &str| {
        vec![
            org_id.clone(),
            table.to_string(),
            change.to_string(),
            key,
            columns.to_string(),
        ]
    };
    let mut expected = vec![
        row("policies", "changed", policy, "status"),
        row(
            "user_platform_roles",
            "added",
            format!("{promoted_id}/atlassian/user-access-admin"),
            "NULL",
        ),
        row(
            "user_role_assignments",
            "added",
            format!("{promoted_id}/{org_ari}/atlassian/user-access-admin"),
            "NULL",
        ),
        row("users", "added", newcomer_id.clone(), "NULL"),
    ];
    expected.sort();
    assert_eq!(changes, expected);

    // The same questions in SQL, with both snapshots attached as schemas.
    let sql = "SELECT account_id FROM new.users EXCEPT SELECT account_id FROM old.users";
    assert_eq!(column(&ctx, sql).await, vec![newcomer_id]);
    let sql = "SELECT n.policy_id FROM new.policies n JOIN old.policies o USING (policy_id) \
               WHERE n.status <> o.status";
    assert_eq!(column(&ctx, sql).await.len(), 1);
}
