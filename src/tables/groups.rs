//! `groups`: every group in the organization's directories (`POST groups/search`).

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::filters::Filter;
use super::provider::{Column, Fetch, Origin, Parents, Resource, Scan};
use crate::api::{CursorIn, PageRequest};

pub struct Groups;

const GROUPS_SEARCH: &str = "/admin/v2/orgs/{orgId}/directories/{directoryId}/groups/search";
const MAX_PAGE: usize = 100;

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

#[derive(Serialize)]
pub struct GroupRow {
    org_id: String,
    group_id: String,
    directory_id: Option<String>,
    name: Option<String>,
    description: Option<String>,
    external_synced: Option<bool>,
    managed_by: Option<String>,
    user_count: Option<i64>,
    resource_count: Option<i64>,
    readable: Option<bool>,
    modifiable: Option<bool>,
    deletable: Option<bool>,
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
    /// Ids are exact (10 a call); names (100 a call) are matched ignoring
    /// case, and the API takes ids or names, not both.
    const FILTERS: &'static [Filter] = &[
        Filter::values("group_id", "groupIds", 10).exact(),
        Filter::values("name", "groupNames", 100)
            .fold_case()
            .unless("group_id"),
    ];

    fn columns() -> Vec<Column> {
        vec![
            Column::org_id(),
            Column::key("group_id", "Group id (UUID)"),
            Column::text("directory_id", "Directory the group belongs to"),
            Column::text("name", "Group name"),
            Column::text("description", "Group description"),
            Column::flag(
                "external_synced",
                "Created by an identity provider sync (SCIM)",
            ),
            Column::text(
                "managed_by",
                "Who manages it: external, admins, team-members or open",
            ),
            Column::count("user_count", "Number of members"),
            Column::count(
                "resource_count",
                "Number of resources the group grants access to",
            ),
            Column::flag("readable", "The API key may read the group"),
            Column::flag("modifiable", "The API key may change the group"),
            Column::flag("deletable", "The API key may delete the group"),
        ]
    }

    fn fetch(scan: &Scan) -> Fetch {
        groups_search(scan).into()
    }

    fn push_rows(origin: &Origin, data: Vec<ApiGroup>, rows: &mut Vec<GroupRow>) {
        rows.extend(data.into_iter().map(|g| {
            let access = g.management_access;
            let (readable, modifiable, deletable) = access.map_or((None, None, None), |a| {
                (a.readable, a.modifiable, a.deletable)
            });
            let (user_count, resource_count) =
                g.counts.map_or((None, None), |c| (c.users, c.resources));
            GroupRow {
                org_id: origin.org_id.to_string(),
                group_id: g.id,
                directory_id: g.directory_id,
                name: g.name,
                description: g.description,
                external_synced: g.external_synced,
                managed_by: g.managed_by,
                user_count,
                resource_count,
                readable,
                modifiable,
                deletable,
            }
        }));
    }
}
