//! `group_role_assignments`: the roles each group grants, one call per group
//! (`GET .../groups/{groupId}/role-assignments`).

use crate::row;
use serde::Deserialize;

use super::filters::Filter;
use super::groups::every_group;
use super::provider::{Fetch, FromPage, Origin, Resource, Scan};
use super::user_role_assignments::{GROUP_ROLE_FILTERS, role_assignments};
use super::Label;

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

row! {
    GroupRoleRow(origin, item: &ApiGroupRoleAssignment, role: String) {
        group_id: key = origin.parent(), "Group id (joins groups.group_id)";
        resource_id: key = item.resource_id.clone(), "Resource ARI: the organization or a product site";
        resource_owner: text = item.resource_owner.clone(),
            "Product that owns the resource, e.g. confluence; platform for the organization";
        role: key = role, "Role id the group grants, e.g. atlassian/admin";
        default_role: text = item.default_role.clone(),
            "The role the group grants by default on this resource, if it is a default group";
    }
}

impl Resource for GroupRoleAssignments {
    type Data = Vec<ApiGroupRoleAssignment>;
    type Row = GroupRoleRow;

    const NAME: &'static str = "group_role_assignments";
    const DESCRIPTION: &'static str =
        "Roles each group grants its members on each resource (one call per group)";
    const KEY: &'static [&'static str] = &["group_id", "resource_id", "role"];
    const LABELS: &'static [Label] = &[Label::lookup("group", "group_id", "groups", "group_id", "name"), Label::workspace("resource_id")];
    const FAN_OUT: Option<&'static str> = Some("group");
    const FILTERS: &'static [Filter] = GROUP_ROLE_FILTERS;

    fn fetch(scan: &Scan) -> Fetch {
        scan.fan_out(
            every_group(),
            role_assignments(
                "/admin/v2/orgs/{orgId}/directories/{directoryId}/groups/{groupId}/role-assignments",
            ),
        )
    }
}

impl FromPage<Vec<ApiGroupRoleAssignment>> for GroupRoleRow {
    fn push_rows(origin: &Origin, data: Vec<ApiGroupRoleAssignment>, rows: &mut Vec<GroupRoleRow>) {
        for mut item in data {
            for role in std::mem::take(&mut item.roles) {
                rows.push(GroupRoleRow::new(origin, &item, role));
            }
        }
    }
}
