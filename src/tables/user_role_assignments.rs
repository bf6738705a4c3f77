//! `user_role_assignments`: every role each user holds on each resource, one
//! call per user (`GET .../users/{accountId}/role-assignments`). The API has
//! no org-wide listing, so this is a fan-out: narrow it by account_id, or
//! join it to `users` and let the join's keys narrow it.

use crate::row;
use serde::Deserialize;

use super::filters::Filter;
use super::provider::{Fetch, FromPage, Origin, Resource, Scan};
use super::users::every_user;
use crate::api::PageRequest;
use super::Label;

pub struct UserRoleAssignments;

/// The role filters the per-user and per-group calls take, after the
/// parent id: role, resource and owner narrow each call (a list longer than
/// one call takes is left to DataFusion).
const ROLE_FILTERS: [Filter; 3] = [
    Filter::values("role", "roleIds", 10).unsplit(),
    Filter::values("resource_id", "resourceIds", 20).unsplit(),
    Filter::values("resource_owner", "resourceOwners", 10).unsplit(),
];

/// `account_id` picks the users called (exact), then the role filters.
const USER_ROLE_FILTERS: &[Filter] = &[
    Filter::parent("account_id", "accountId"),
    ROLE_FILTERS[0],
    ROLE_FILTERS[1],
    ROLE_FILTERS[2],
];

/// `group_id` picks the groups called (exact), then the role filters.
pub(crate) const GROUP_ROLE_FILTERS: &[Filter] = &[
    Filter::parent("group_id", "groupId"),
    ROLE_FILTERS[0],
    ROLE_FILTERS[1],
    ROLE_FILTERS[2],
];

/// The per-parent role-assignment call, a hundred a page.
pub(crate) fn role_assignments(template: &'static str) -> PageRequest {
    PageRequest::get(template).query("limit", "100")
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiUserRoleAssignment {
    resource_id: String,
    resource_owner: Option<String>,
    directory_id: Option<String>,
    user_directory_status: Option<String>,
    #[serde(default)]
    role_assignments: Vec<ApiRoleAssignment>,
    /// Deprecated by the API; read only when `roleAssignments` is absent.
    #[serde(default)]
    roles: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApiRoleAssignment {
    role: String,
    #[serde(default)]
    role_assignment_methods: Vec<String>,
}

row! {
    UserRoleRow(origin, item: &ApiUserRoleAssignment, role: String, methods: Vec<String>) {
        account_id: key = origin.parent(), "User's account id (joins users.account_id)";
        directory_id: text = item.directory_id.clone(),
            "Directory the resource is mapped to; NULL for platform roles (org-admin, site-admin)";
        resource_id: key = item.resource_id.clone(), "Resource ARI: the organization or a product site";
        resource_owner: text = item.resource_owner.clone(),
            "Product that owns the resource, e.g. jira-software; platform for the organization";
        role: key = role, "Role id, e.g. atlassian/org-admin, atlassian/admin, atlassian/user";
        assignment_methods: text = (!methods.is_empty()).then(|| methods.join(",")),
            "How the role was assigned, comma-joined: direct, group_direct, inferred";
        user_directory_status: text = item.user_directory_status.clone(),
            "User's membership in that directory: active, suspended, no_membership; NULL for platform roles";
    }
}

impl Resource for UserRoleAssignments {
    type Data = Vec<ApiUserRoleAssignment>;
    type Row = UserRoleRow;

    const NAME: &'static str = "user_role_assignments";
    const DESCRIPTION: &'static str =
        "Roles each user holds on each resource, and how they were assigned (one call per user)";
    const KEY: &'static [&'static str] = &["account_id", "resource_id", "role"];
    const LABELS: &'static [Label] = &[Label::email("account_id"), Label::workspace("resource_id")];
    const FAN_OUT: Option<&'static str> = Some("user");
    const FILTERS: &'static [Filter] = USER_ROLE_FILTERS;

    fn fetch(scan: &Scan) -> Fetch {
        scan.fan_out(
            every_user(),
            role_assignments(
                "/admin/v2/orgs/{orgId}/directories/{directoryId}/users/{accountId}/role-assignments",
            ),
        )
    }
}

impl FromPage<Vec<ApiUserRoleAssignment>> for UserRoleRow {
    fn push_rows(origin: &Origin, data: Vec<ApiUserRoleAssignment>, rows: &mut Vec<UserRoleRow>) {
        for mut item in data {
            let roles: Vec<(String, Vec<String>)> = if item.role_assignments.is_empty() {
                std::mem::take(&mut item.roles)
                    .into_iter()
                    .map(|r| (r, Vec::new()))
                    .collect()
            } else {
                std::mem::take(&mut item.role_assignments)
                    .into_iter()
                    .map(|r| (r.role, r.role_assignment_methods))
                    .collect()
            };
            for (role, methods) in roles {
                rows.push(UserRoleRow::new(origin, &item, role, methods));
            }
        }
    }
}
