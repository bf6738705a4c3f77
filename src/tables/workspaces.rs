//! `workspaces`: product sites and instances (`POST workspaces`, v2).

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::provider::{Column, Fetch, Origin, Resource, Scan};
use crate::api::{CursorIn, PageRequest};

pub struct Workspaces;

const MAX_PAGE: usize = 1000;

#[derive(Debug, Deserialize)]
pub struct ApiWorkspace {
    id: String,
    attributes: WorkspaceAttributes,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WorkspaceAttributes {
    name: Option<String>,
    type_key: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    host_url: Option<String>,
    status: Option<String>,
    realm: Option<String>,
    regions: Option<Vec<String>>,
    sandbox: Option<Sandbox>,
    owner: Option<String>,
    created_at: Option<String>,
    created_by: Option<String>,
    usage: Option<i64>,
    capacity: Option<i64>,
}

#[derive(Debug, Deserialize)]
struct Sandbox {
    #[serde(rename = "type")]
    kind: Option<String>,
}

#[derive(Serialize)]
pub struct WorkspaceRow {
    org_id: String,
    workspace_id: String,
    name: Option<String>,
    type_key: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    host_url: Option<String>,
    status: Option<String>,
    realm: Option<String>,
    regions: Option<String>,
    sandbox_type: Option<String>,
    owner: Option<String>,
    created_at: Option<String>,
    created_by: Option<String>,
    usage: Option<i64>,
    capacity: Option<i64>,
}

impl Resource for Workspaces {
    type Data = Vec<ApiWorkspace>;
    type Row = WorkspaceRow;

    const NAME: &'static str = "workspaces";
    const DESCRIPTION: &'static str =
        "Product workspaces (Jira, Confluence, ... sites) of the organization";
    const KEY: &'static [&'static str] = &["workspace_id"];

    fn columns() -> Vec<Column> {
        vec![
            Column::org_id(),
            Column::key(
                "workspace_id",
                "Workspace ARI, e.g. ari:cloud:jira::site/<cloud id>",
            ),
            Column::text("name", "Workspace name"),
            Column::text("type_key", "Product key, e.g. jira-software, confluence"),
            Column::text("type", "Product display name"),
            Column::text("host_url", "Site host, e.g. acme.atlassian.net"),
            Column::text("status", "online, offline or deprecated"),
            Column::text("realm", "Data realm"),
            Column::text("regions", "Data regions, comma-separated"),
            Column::text("sandbox_type", "CHILD for a sandbox, NONE otherwise"),
            Column::text("owner", "Owner, when the API names one"),
            Column::time("created_at", "When the workspace was created"),
            Column::text("created_by", "Account ARI of the creator"),
            Column::count("usage", "Current usage (mostly Bitbucket)"),
            Column::count("capacity", "Capacity (mostly Bitbucket)"),
        ]
    }

    fn fetch(scan: &Scan) -> Fetch {
        // Later pages carry the cursor alone in the body.
        let body = json!({ "limit": scan.page_size(MAX_PAGE) });
        vec![PageRequest::post(
            "/admin/v2/orgs/{orgId}/workspaces",
            body,
            CursorIn::Body {
                keep_filters: false,
            },
        )]
        .into()
    }

    fn push_rows(origin: &Origin, data: Vec<ApiWorkspace>, rows: &mut Vec<WorkspaceRow>) {
        rows.extend(data.into_iter().map(|w| {
            let a = w.attributes;
            WorkspaceRow {
                org_id: origin.org_id.to_string(),
                workspace_id: w.id,
                name: a.name,
                type_key: a.type_key,
                kind: a.kind,
                host_url: a.host_url,
                status: a.status,
                realm: a.realm,
                regions: a.regions.map(|r| r.join(",")),
                sandbox_type: a.sandbox.and_then(|s| s.kind),
                owner: a.owner,
                created_at: a.created_at,
                created_by: a.created_by,
                usage: a.usage,
                capacity: a.capacity,
            }
        }));
    }
}
