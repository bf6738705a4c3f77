//! `user_role_assignments`: every role each user holds on each resource, one
//! call per user (`GET .../users/{accountId}/role-assignments`). The API has
//! no org-wide listing, so this is a fan-out: narrow it by account_id, or
//! join it to `users` and let the join's keys narrow it.

use serde::{Deserialize, Serialize};

use super::filters::Filter;
use super::provider::{Column, Fetch, Origin, Resource, Scan};
use super::users::every_user;
use crate::api::PageRequest;

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

#[derive(Serialize)]
pub struct UserRoleRow {
    org_id: String,
    account_id: String,
    directory_id: Option<String>,
    resource_id: String,
    resource_owner: Option<String>,
    role: String,
    assignment_methods: Option<String>,
    user_directory_status: Option<String>,
}

impl Resource for UserRoleAssignments {
    type Data = Vec<ApiUserRoleAssignment>;
    type Row = UserRoleRow;

    const NAME: &'static str = "user_role_assignments";
    const DESCRIPTION: &'static str =
        "Roles each user holds on each resource, and how they were assigned (one call per user)";
    const KEY: &'static [&'static str] = &["account_id", "resource_id", "role"];
    const FAN_OUT: Option<&'static str> = Some("user");
    const FILTERS: &'static [Filter] = USER_ROLE_FILTERS;

    fn columns() -> Vec<Column> {
        vec![
            Column::org_id(),
            Column::key("account_id", "User's account id (joins users.account_id)"),
            Column::text(
                "directory_id",
                "Directory the resource is mapped to; NULL for platform roles (org-admin, site-admin)",
            ),
            Column::key(
                "resource_id",
                "Resource ARI: the organization or a product site",
            ),
            Column::text(
                "resource_owner",
                "Product that owns the resource, e.g. jira-software; platform for the organization",
            ),
            Column::key(
                "role",
                "Role id, e.g. atlassian/org-admin, atlassian/admin, atlassian/user",
            ),
            Column::text(
                "assignment_methods",
                "How the role was assigned, comma-joined: direct, group_direct, inferred",
            ),
            Column::text(
                "user_directory_status",
                "User's membership in that directory: active, suspended, no_membership; NULL for platform roles",
            ),
        ]
    }

    fn fetch(scan: &Scan) -> Fetch {
        scan.fan_out(
            every_user(),
            role_assignments(
                "/admin/v2/orgs/{orgId}/directories/{directoryId}/users/{accountId}/role-assignments",
            ),
        )
    }

    fn push_rows(origin: &Origin, data: Vec<ApiUserRoleAssignment>, rows: &mut Vec<UserRoleRow>) {
        for item in data {
            let roles: Vec<(String, Vec<String>)> = if item.role_assignments.is_empty() {
                item.roles.into_iter().map(|r| (r, Vec::new())).collect()
            } else {
                item.role_assignments
                    .into_iter()
                    .map(|r| (r.role, r.role_assignment_methods))
                    .collect()
            };
            for (role, methods) in roles {
                rows.push(UserRoleRow {
                    org_id: origin.org_id.to_string(),
                    account_id: origin.parent(),
                    directory_id: item.directory_id.clone(),
                    resource_id: item.resource_id.clone(),
                    resource_owner: item.resource_owner.clone(),
                    role,
                    assignment_methods: (!methods.is_empty()).then(|| methods.join(",")),
                    user_directory_status: item.user_directory_status.clone(),
                });
            }
        }
    }
}
