//! `policies`: organization policies (IP allowlist, data residency, ...), v1.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::filters::Filter;
use super::provider::{Column, Fetch, Origin, Resource, Scan};
use crate::api::PageRequest;

pub struct Policies;

#[derive(Debug, Deserialize)]
pub struct ApiPolicy {
    pub(crate) id: String,
    pub(crate) attributes: PolicyAttributes,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PolicyAttributes {
    #[serde(rename = "type")]
    pub(crate) kind: Option<String>,
    name: Option<String>,
    status: Option<String>,
    #[serde(default)]
    rule: Value,
    created_at: Option<String>,
    updated_at: Option<String>,
    #[serde(default)]
    pub(crate) resources: Vec<PolicyResource>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PolicyResource {
    pub(crate) id: String,
    pub(crate) application_status: Option<String>,
}

/// The policies listing; `type` (one a call) narrows it. Shared with
/// `policy_resources`, whose `policy_type` it is.
pub(crate) fn policies_request() -> PageRequest {
    PageRequest::get("/admin/v1/orgs/{orgId}/policies")
}

#[derive(Serialize)]
pub struct PolicyRow {
    org_id: String,
    policy_id: String,
    #[serde(rename = "type")]
    kind: Option<String>,
    name: Option<String>,
    status: Option<String>,
    rule: Option<String>,
    created_at: Option<String>,
    updated_at: Option<String>,
}

impl Resource for Policies {
    type Data = Vec<ApiPolicy>;
    type Row = PolicyRow;

    const NAME: &'static str = "policies";
    const DESCRIPTION: &'static str =
        "Organization policies: IP allowlists, data residency, data security";
    const KEY: &'static [&'static str] = &["policy_id"];
    /// Inexact: the API's matching rules for `type` are not documented.
    const FILTERS: &'static [Filter] = &[Filter::values("type", "type", 1)];

    fn columns() -> Vec<Column> {
        vec![
            Column::org_id(),
            Column::key("policy_id", "Policy id (UUID)"),
            Column::text("type", "ip-allowlist, data-residency, data-security, ..."),
            Column::text("name", "Policy name"),
            Column::text("status", "enabled or disabled"),
            Column::text(
                "rule",
                "The policy rule as JSON text, e.g. {\"in\":[\"eu\"]}",
            ),
            Column::time("created_at", "When the policy was created"),
            Column::time("updated_at", "When the policy was last changed"),
        ]
    }

    fn fetch(scan: &Scan) -> Fetch {
        scan.requests(policies_request()).into()
    }

    fn push_rows(origin: &Origin, data: Vec<ApiPolicy>, rows: &mut Vec<PolicyRow>) {
        rows.extend(data.into_iter().map(|p| {
            let a = p.attributes;
            PolicyRow {
                org_id: origin.org_id.to_string(),
                policy_id: p.id,
                kind: a.kind,
                name: a.name,
                status: a.status,
                rule: (!a.rule.is_null()).then(|| a.rule.to_string()),
                created_at: a.created_at,
                updated_at: a.updated_at,
            }
        }));
    }
}
