//! `group_role_assignments`: the roles each group grants, one call per group
//! (`GET .../groups/{groupId}/role-assignments`).

use serde::{Deserialize, Serialize};

use super::filters::Filter;
use super::groups::every_group;
use super::provider::{Column, Fetch, Origin, Resource, Scan};
use super::user_role_assignments::{GROUP_ROLE_FILTERS, role_assignments};

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
    const FILTERS: &'static [Filter] = GROUP_ROLE_FILTERS;

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

    fn fetch(scan: &Scan) -> Fetch {
        scan.fan_out(
            every_group(),
            role_assignments(
                "/admin/v2/orgs/{orgId}/directories/{directoryId}/groups/{groupId}/role-assignments",
            ),
        )
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
