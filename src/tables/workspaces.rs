//! `workspaces`: product sites and instances (`POST workspaces`, v2).

use crate::row;
use serde::Deserialize;
use serde_json::json;

use super::provider::{Fetch, Origin, Resource, Scan};
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

row! {
    WorkspaceRow(origin, id: String, a: WorkspaceAttributes) {
        workspace_id: key = id, "Workspace ARI, e.g. ari:cloud:jira::site/<cloud id>";
        name: text = a.name, "Workspace name";
        type_key: text = a.type_key, "Product key, e.g. jira-software, confluence";
        r#type: text = a.kind, "Product display name";
        host_url: text = a.host_url, "Site host, e.g. acme.atlassian.net";
        status: text = a.status, "online, offline or deprecated";
        realm: text = a.realm, "Data realm";
        regions: text = a.regions.map(|r| r.join(",")), "Data regions, comma-separated";
        sandbox_type: text = a.sandbox.and_then(|s| s.kind), "CHILD for a sandbox, NONE otherwise";
        owner: text = a.owner, "Owner, when the API names one";
        created_at: time = a.created_at, "When the workspace was created";
        created_by: text = a.created_by, "Account ARI of the creator";
        usage: count = a.usage, "Current usage (mostly Bitbucket)";
        capacity: count = a.capacity, "Capacity (mostly Bitbucket)";
    }
}

impl Resource for Workspaces {
    type Data = Vec<ApiWorkspace>;
    type Row = WorkspaceRow;

    const NAME: &'static str = "workspaces";
    const DESCRIPTION: &'static str =
        "Product workspaces (Jira, Confluence, ... sites) of the organization";
    const KEY: &'static [&'static str] = &["workspace_id"];

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
        rows.extend(
            data.into_iter()
                .map(|w| WorkspaceRow::new(origin, w.id, w.attributes)),
        );
    }
}
