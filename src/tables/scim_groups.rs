//! `scim_groups`: the groups each identity provider pushes, as the SCIM API
//! lists them (`GET /scim/directory/{directoryId}/Groups`).

use crate::row;
use serde::Deserialize;

use super::Label;
use super::filters::Filter;
use super::provider::{PageShape, Fetch, Resource, Scan};
use super::scim_users::{ScimMeta, scim_listing};

pub struct ScimGroups;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScimGroup {
    pub(super) id: String,
    external_id: Option<String>,
    pub(super) display_name: Option<String>,
    #[serde(default)]
    pub(super) members: Vec<ScimMember>,
    #[serde(default)]
    meta: Option<ScimMeta>,
}

#[derive(Debug, Deserialize)]
pub struct ScimMember {
    /// The member's SCIM user id.
    pub(super) value: String,
    pub(super) display: Option<String>,
}

row! {
    ScimGroupRow(origin, g: ScimGroup) {
        directory_id: key = origin.parent(), "SCIM directory id (joins directories.directory_id)";
        scim_group_id: key = g.id, "The SCIM group id";
        external_id: text = g.external_id.filter(|e| !e.is_empty()), "The identity provider's id for the group";
        name: text = g.display_name, "displayName: the group's name (the Atlassian group it syncs to has the same name)";
        member_count: count = Some(g.members.len() as i64), "Members the identity provider pushes";
        created_at: time = g.meta.as_ref().and_then(|m| m.created.clone()), "When it was provisioned";
        updated_at: time = g.meta.and_then(|m| m.last_modified), "When it last changed";
    }
}

impl Resource for ScimGroups {
    type Data = Vec<ScimGroup>;
    type Row = ScimGroupRow;

    const NAME: &'static str = "scim_groups";
    const DESCRIPTION: &'static str =
        "Groups pushed by an identity provider (SCIM; each directory's own token)";
    const KEY: &'static [&'static str] = &["directory_id", "scim_group_id"];
    const LABELS: &'static [Label] = &[Label::own("group", "name")];
    const FAN_OUT: Option<&'static str> = Some("SCIM directory");
    const FILTERS: &'static [Filter] = &[Filter::parent("directory_id", "directoryId")];

    const PAGE: PageShape = PageShape::ScimList;

    fn fetch(scan: &Scan) -> Fetch {
        scim_listing(scan, "/scim/directory/{directoryId}/Groups")
    }
}
