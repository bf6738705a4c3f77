//! `scim_group_members`: one row per (SCIM group, member), from the SCIM
//! group listing's `members[]`.

use crate::row;

use super::Label;
use super::filters::Filter;
use super::provider::{PageShape, Fetch, FromPage, Origin, Resource, Scan};
use super::scim_groups::{ScimGroup, ScimMember};
use super::scim_users::scim_listing;

pub struct ScimGroupMembers;

row! {
    ScimGroupMemberRow(origin, group_id: &str, group_name: &Option<String>, m: ScimMember) {
        directory_id: key = origin.parent(), "SCIM directory id";
        scim_group_id: key = group_id.to_string(), "The SCIM group id (joins scim_groups.scim_group_id)";
        scim_id: key = m.value, "The member's SCIM user id (joins scim_users.scim_id)";
        group_name: text = group_name.clone(), "The group's displayName";
        member_display: text = m.display, "The member's display name as the group lists it";
    }
}

impl Resource for ScimGroupMembers {
    type Data = Vec<ScimGroup>;
    type Row = ScimGroupMemberRow;

    const NAME: &'static str = "scim_group_members";
    const DESCRIPTION: &'static str =
        "Members of the groups an identity provider pushes (SCIM): one row per group and member";
    const KEY: &'static [&'static str] = &["directory_id", "scim_group_id", "scim_id"];
    const LABELS: &'static [Label] = &[Label::own("group", "group_name")];
    const FAN_OUT: Option<&'static str> = Some("SCIM directory");
    const FILTERS: &'static [Filter] = &[Filter::parent("directory_id", "directoryId")];

    const PAGE: PageShape = PageShape::ScimList;

    fn fetch(scan: &Scan) -> Fetch {
        scim_listing(scan, "/scim/directory/{directoryId}/Groups")
    }
}

impl FromPage<Vec<ScimGroup>> for ScimGroupMemberRow {
    fn push_rows(origin: &Origin, data: Vec<ScimGroup>, rows: &mut Vec<ScimGroupMemberRow>) {
        for group in data {
            for member in group.members {
                rows.push(ScimGroupMemberRow::new(
                    origin,
                    &group.id,
                    &group.display_name,
                    member,
                ));
            }
        }
    }
}
