//! `user_platform_roles`: one row per platform role a user holds
//! (`users/search` with the `platformRoles` expansion).

use serde::Serialize;

use super::filters::Filter;
use super::provider::{Column, Fetch, Origin, Resource, Scan};
use super::users::{ApiUser, BY_ACCOUNT, users_search};

pub struct UserPlatformRoles;

#[derive(Serialize)]
pub struct PlatformRoleRow {
    org_id: String,
    account_id: String,
    role: String,
}

impl Resource for UserPlatformRoles {
    type Data = Vec<ApiUser>;
    type Row = PlatformRoleRow;

    const NAME: &'static str = "user_platform_roles";
    const DESCRIPTION: &'static str =
        "Platform roles users hold: org-admin, site-admin, user-access-admin, ai-access";
    const FILTERS: &'static [Filter] = BY_ACCOUNT;
    const KEY: &'static [&'static str] = &["account_id", "role"];

    fn columns() -> Vec<Column> {
        vec![
            Column::org_id(),
            Column::key("account_id", "User's account id (joins users.account_id)"),
            Column::key(
                "role",
                "Role id, e.g. atlassian/org-admin or atlassian/site-admin",
            ),
        ]
    }

    fn fetch(scan: &Scan) -> Fetch {
        users_search(&scan.without_limit(), &["platformRoles"]).into()
    }

    fn push_rows(origin: &Origin, data: Vec<ApiUser>, rows: &mut Vec<PlatformRoleRow>) {
        for user in data {
            for role in user.platform_roles {
                rows.push(PlatformRoleRow {
                    org_id: origin.org_id.to_string(),
                    account_id: user.account_id.clone(),
                    role,
                });
            }
        }
    }
}
