//! `org_user_stats`: how many users hold each role and each account status, as
//! the API counts them (`GET users/stats`, one request): the figure to
//! check the `seats` view's counts against.

use crate::row;
use serde::Deserialize;

use super::provider::{Fetch, FromPage, Origin, PageShape, Resource, Scan};
use crate::api::{PageItems, PageRequest};

pub struct OrgUserStats;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiUserStats {
    #[serde(default)]
    account_status: Vec<ApiStatusCount>,
    #[serde(default)]
    roles: Vec<ApiRoleCount>,
}

impl PageItems for ApiUserStats {
    fn item_count(&self) -> usize {
        self.account_status.len() + self.roles.len()
    }
}

#[derive(Debug, Deserialize)]
struct ApiStatusCount {
    status: String,
    count: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApiRoleCount {
    role_id: String,
    count: Option<i64>,
}

row! {
    UserStatRow(origin, kind: &'static str, value: String, count: Option<i64>) {
        kind: key = kind.to_string(), "role or account_status";
        value: key = value, "The role id (e.g. atlassian/user) or the account status (e.g. active)";
        user_count: count = count, "How many users the API counts with it, in every directory";
    }
}

impl Resource for OrgUserStats {
    type Data = ApiUserStats;
    type Row = UserStatRow;

    const NAME: &'static str = "org_user_stats";
    const DESCRIPTION: &'static str =
        "Users per role and per account status, as the API counts them (users/stats)";
    const KEY: &'static [&'static str] = &["kind", "value"];
    const PAGE: PageShape = PageShape::Bare;

    fn fetch(_scan: &Scan) -> Fetch {
        vec![PageRequest::get("/admin/v2/orgs/{orgId}/directories/{directoryId}/users/stats").bare()]
            .into()
    }
}

impl FromPage<ApiUserStats> for UserStatRow {
    fn push_rows(origin: &Origin, data: ApiUserStats, rows: &mut Vec<UserStatRow>) {
        for s in data.account_status {
            rows.push(UserStatRow::new(origin, "account_status", s.status, s.count));
        }
        for r in data.roles {
            rows.push(UserStatRow::new(origin, "role", r.role_id, r.count));
        }
    }
}
