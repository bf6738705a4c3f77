//! `user_role_assignments`: every role each user holds on each resource, one
//! call per user (`GET .../users/{accountId}/role-assignments`). The API has
//! no org-wide listing, so this is a fan-out: narrow it by account_id, or
//! join it to `users` and let the join's keys narrow it.

use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use serde::{Deserialize, Serialize};

use super::filters::{allowed_values, equality_pushdown};
use super::provider::{Column, FanOut, Fetch, Origin, Resource, Scan};
use super::users::users_named;
use crate::api::PageRequest;

pub struct UserRoleAssignments;

/// Role-assignment filters: column, query parameter, most values per call.
pub(crate) const ROLE_FILTERS: [(&str, &str, usize); 3] = [
    ("role", "roleIds", 10),
    ("resource_id", "resourceIds", 20),
    ("resource_owner", "resourceOwners", 10),
];

/// The per-parent role-assignment call with the filters the API can apply.
/// A list longer than one call takes is left to DataFusion.
pub(crate) fn role_assignments_request(template: &'static str, scan: &Scan) -> PageRequest {
    let mut request = PageRequest::get(template).query("limit", "100");
    for (col, param, max) in ROLE_FILTERS {
        if let Some(values) = allowed_values(scan.filters, col)
            && !values.is_empty()
            && values.len() <= max
        {
            for value in values {
                request = request.query(param, value);
            }
        }
    }
    request
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

    /// account_id picks the users fetched, so it is exact; role and resource
    /// filters narrow each call, and DataFusion checks them again.
    fn pushdown(filter: &Expr) -> TableProviderFilterPushDown {
        equality_pushdown(
            filter,
            &["account_id"],
            &["role", "resource_id", "resource_owner"],
        )
    }

    fn fetch(scan: &Scan) -> Fetch {
        Fetch::PerParent(FanOut {
            parents: users_named(scan),
            child: role_assignments_request(
                "/admin/v2/orgs/{orgId}/directories/{directoryId}/users/{accountId}/role-assignments",
                scan,
            ),
            param: "accountId",
        })
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
