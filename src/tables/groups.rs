//! `groups`: every group in the organization's directories (`POST groups/search`).

use crate::row;
use serde::Deserialize;
use serde_json::json;

use super::filters::Filter;
use super::provider::{Fetch, Parents, Resource, Scan};
use crate::api::{CursorIn, PageRequest};
use super::Label;

pub struct Groups;

const GROUPS_SEARCH: &str = "/admin/v2/orgs/{orgId}/directories/{directoryId}/groups/search";
const MAX_PAGE: usize = 100;
/// Counts what groups/search lists, for the filters it takes as query parameters.
const GROUPS_COUNT: &str = "/admin/v2/orgs/{orgId}/directories/{directoryId}/groups/count";
/// groups/count's filters, as the spec lists them (no `groupNames`).
const GROUPS_COUNT_PARAMS: &[&str] = &[
    "directoryIds",
    "accountIds",
    "groupIds",
    "resourceOwners",
    "resourceIds",
    "searchTerm",
    "roleIds",
];

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiGroup {
    id: String,
    name: Option<String>,
    description: Option<String>,
    directory_id: Option<String>,
    external_synced: Option<bool>,
    managed_by: Option<String>,
    management_access: Option<ManagementAccess>,
    counts: Option<GroupCounts>,
}

#[derive(Debug, Deserialize)]
struct ManagementAccess {
    readable: Option<bool>,
    modifiable: Option<bool>,
    deletable: Option<bool>,
}

#[derive(Debug, Deserialize)]
struct GroupCounts {
    users: Option<i64>,
    resources: Option<i64>,
}

row! {
    GroupRow(origin, g: ApiGroup) {
        group_id: key = g.id, "Group id (UUID)";
        directory_id: text = g.directory_id, "Directory the group belongs to";
        name: text = g.name, "Group name";
        description: text = g.description, "Group description";
        external_synced: flag = g.external_synced, "Created by an identity provider sync (SCIM)";
        managed_by: text = g.managed_by, "Who manages it: external, admins, team-members or open";
        user_count: count = g.counts.as_ref().and_then(|c| c.users), "Number of members";
        resource_count: count = g.counts.and_then(|c| c.resources),
            "Number of resources the group grants access to";
        readable: flag = g.management_access.as_ref().and_then(|a| a.readable),
            "The API key may read the group";
        modifiable: flag = g.management_access.as_ref().and_then(|a| a.modifiable),
            "The API key may change the group";
        deletable: flag = g.management_access.and_then(|a| a.deletable),
            "The API key may delete the group";
    }
}

/// `groups/search` narrowed by the scan's declared filters, asking for the
/// counts only when read. Shared with `group_role_assignments`.
pub(crate) fn groups_search(scan: &Scan) -> Vec<PageRequest> {
    let mut expand = Vec::new();
    if scan.needs("user_count") {
        expand.push("counts.users");
    }
    if scan.needs("resource_count") {
        expand.push("counts.resources");
    }
    let mut body = json!({ "limit": scan.page_size(MAX_PAGE) });
    if !expand.is_empty() {
        body["expand"] = json!(expand);
    }
    scan.requests(search(body))
        .into_iter()
        .map(|request| match scan.limit {
            Some(_) => request.uncounted("a LIMIT reads only the first rows"),
            None => request.counted_by(GROUPS_COUNT, GROUPS_COUNT_PARAMS),
        })
        .collect()
}

/// Every group, for a table that calls the API once per group.
pub(crate) fn every_group() -> Parents {
    Parents::Listing {
        requests: groups_search(&Scan::everything()),
        key: "id",
    }
}

fn search(body: serde_json::Value) -> PageRequest {
    PageRequest::post(GROUPS_SEARCH, body, CursorIn::Body { keep_filters: true })
}

impl Resource for Groups {
    type Data = Vec<ApiGroup>;
    type Row = GroupRow;

    const NAME: &'static str = "groups";
    const DESCRIPTION: &'static str =
        "Groups in the organization's directories, with member and resource counts";
    const KEY: &'static [&'static str] = &["group_id"];
    const LABELS: &'static [Label] = &[Label::own("group", "name")];
    /// Ids are exact (10 a call); names (100 a call) are matched ignoring
    /// case, and the API takes ids or names, not both.
    const FILTERS: &'static [Filter] = &[
        Filter::values("group_id", "groupIds", 10).exact(),
        Filter::values("name", "groupNames", 100)
            .fold_case()
            .unless("group_id"),
    ];

    fn fetch(scan: &Scan) -> Fetch {
        groups_search(scan).into()
    }
}
