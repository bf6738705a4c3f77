//! `user_platform_roles`: one row per platform role a user holds
//! (`users/search` with the `platformRoles` expansion).

use crate::row;

use super::filters::Filter;
use super::provider::{Fetch, FromPage, Origin, Resource, Scan};
use super::users::{ApiUser, BY_ACCOUNT, users_search};
use super::Label;

pub struct UserPlatformRoles;

row! {
    PlatformRoleRow(origin, account_id: &str, role: String) {
        account_id: key = account_id.to_string(), "User's account id (joins users.account_id)";
        role: key = role, "Role id, e.g. atlassian/org-admin or atlassian/site-admin";
    }
}

impl Resource for UserPlatformRoles {
    type Data = Vec<ApiUser>;
    type Row = PlatformRoleRow;

    const NAME: &'static str = "user_platform_roles";
    const DESCRIPTION: &'static str =
        "Platform roles users hold: org-admin, site-admin, user-access-admin, ai-access";
    const FILTERS: &'static [Filter] = BY_ACCOUNT;
    const KEY: &'static [&'static str] = &["account_id", "role"];
    const LABELS: &'static [Label] = &[Label::email("account_id")];

    fn fetch(scan: &Scan) -> Fetch {
        users_search(&scan.without_limit(), &["platformRoles"]).into()
    }
}

impl FromPage<Vec<ApiUser>> for PlatformRoleRow {
    fn push_rows(origin: &Origin, data: Vec<ApiUser>, rows: &mut Vec<PlatformRoleRow>) {
        for user in data {
            for role in user.platform_roles {
                rows.push(PlatformRoleRow::new(origin, &user.account_id, role));
            }
        }
    }
}
