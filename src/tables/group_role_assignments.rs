//! `group_role_assignments`: the roles each group grants, one call per group
//! (`GET .../groups/{groupId}/role-assignments`).

use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use serde::{Deserialize, Serialize};

use super::filters::equality_pushdown;
use super::groups::groups_named;
use super::provider::{Column, FanOut, Fetch, Origin, Resource, Scan};
use super::user_role_assignments::role_assignments_request;

pub struct GroupRoleAssignments;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiGroupRoleAssignment {
    resource_id: String,
    resource_owner: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
    default_role: Option<String>,
}

#[derive(Serialize)]
pub struct GroupRoleRow {
    org_id: String,
    group_id: String,
    resource_id: String,
    resource_owner: Option<String>,
    role: String,
    default_role: Option<String>,
}

impl Resource for GroupRoleAssignments {
    type Data = Vec<ApiGroupRoleAssignment>;
    type Row = GroupRoleRow;

    const NAME: &'static str = "group_role_assignments";
    const DESCRIPTION: &'static str =
        "Roles each group grants its members on each resource (one call per group)";
    const KEY: &'static [&'static str] = &["group_id", "resource_id", "role"];
    const FAN_OUT: Option<&'static str> = Some("group");

    fn columns() -> Vec<Column> {
        vec![
            Column::org_id(),
            Column::key("group_id", "Group id (joins groups.group_id)"),
            Column::key(
                "resource_id",
                "Resource ARI: the organization or a product site",
            ),
            Column::text(
                "resource_owner",
                "Product that owns the resource, e.g. confluence; platform for the organization",
            ),
            Column::key("role", "Role id the group grants, e.g. atlassian/admin"),
            Column::text(
                "default_role",
                "The role the group grants by default on this resource, if it is a default group",
            ),
        ]
    }

    /// group_id picks the groups fetched, so it is exact; role and resource
    /// filters narrow each call, and DataFusion checks them again.
    fn pushdown(filter: &Expr) -> TableProviderFilterPushDown {
        equality_pushdown(
            filter,
            &["group_id"],
            &["role", "resource_id", "resource_owner"],
        )
    }

    fn fetch(scan: &Scan) -> Fetch {
        Fetch::PerParent(FanOut {
            parents: groups_named(scan),
            child: role_assignments_request(
                "/admin/v2/orgs/{orgId}/directories/{directoryId}/groups/{groupId}/role-assignments",
                scan,
            ),
            param: "groupId",
        })
    }

    fn push_rows(origin: &Origin, data: Vec<ApiGroupRoleAssignment>, rows: &mut Vec<GroupRoleRow>) {
        for item in data {
            for role in item.roles {
                rows.push(GroupRoleRow {
                    org_id: origin.org_id.to_string(),
                    group_id: origin.parent(),
                    resource_id: item.resource_id.clone(),
                    resource_owner: item.resource_owner.clone(),
                    role,
                    default_role: item.default_role.clone(),
                });
            }
        }
    }
}
