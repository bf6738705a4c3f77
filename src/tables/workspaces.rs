//! `workspaces`: product sites and instances (`POST workspaces`, v2).

use crate::row;
use serde::Deserialize;
use serde_json::json;

use super::provider::{Fetch, Resource, Scan};
use crate::api::{CursorIn, PageRequest};
use super::Label;

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
    WorkspaceRow(origin, w: ApiWorkspace) {
        workspace_id: key = w.id, "Workspace ARI, e.g. ari:cloud:jira::site/<cloud id>";
        name: text = w.attributes.name, "Workspace name";
        type_key: text = w.attributes.type_key, "Product key, e.g. jira-software, confluence";
        r#type: text = w.attributes.kind, "Product display name";
        host_url: text = w.attributes.host_url, "Site host, e.g. acme.atlassian.net";
        status: text = w.attributes.status, "online, offline or deprecated";
        realm: text = w.attributes.realm, "Data realm";
        regions: text = w.attributes.regions.map(|r| r.join(",")), "Data regions, comma-separated";
        sandbox_type: text = w.attributes.sandbox.and_then(|s| s.kind), "CHILD for a sandbox, NONE otherwise";
        owner: text = w.attributes.owner, "Owner, when the API names one";
        created_at: time = w.attributes.created_at, "When the workspace was created";
        created_by: text = w.attributes.created_by, "Account ARI of the creator";
        usage: count = w.attributes.usage, "Current usage (mostly Bitbucket)";
        capacity: count = w.attributes.capacity, "Capacity (mostly Bitbucket)";
    }
}

impl Resource for Workspaces {
    type Data = Vec<ApiWorkspace>;
    type Row = WorkspaceRow;

    const NAME: &'static str = "workspaces";
    const DESCRIPTION: &'static str =
        "Product workspaces (Jira, Confluence, ... sites) of the organization";
    const KEY: &'static [&'static str] = &["workspace_id"];
    const LABELS: &'static [Label] = &[Label::own("name", "name"), Label::own("site", "host_url")];

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
}
