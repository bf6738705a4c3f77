//! `policies`: organization policies (IP allowlist, data residency, ...), v1.

use crate::row;
use serde::Deserialize;
use serde_json::Value;

use super::filters::Filter;
use super::provider::{Fetch, Resource, Scan};
use crate::api::PageRequest;
use super::Label;

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

row! {
    PolicyRow(origin, p: ApiPolicy) {
        policy_id: key = p.id, "Policy id (UUID)";
        r#type: text = p.attributes.kind, "ip-allowlist, data-residency, data-security, ...";
        name: text = p.attributes.name, "Policy name";
        status: text = p.attributes.status, "enabled or disabled";
        rule: text = (!p.attributes.rule.is_null()).then(|| p.attributes.rule.to_string()),
            "The policy rule as JSON text, e.g. {\"in\":[\"eu\"]}";
        created_at: time = p.attributes.created_at, "When the policy was created";
        updated_at: time = p.attributes.updated_at, "When the policy was last changed";
    }
}

impl Resource for Policies {
    type Data = Vec<ApiPolicy>;
    type Row = PolicyRow;

    const NAME: &'static str = "policies";
    const DESCRIPTION: &'static str =
        "Organization policies: IP allowlists, data residency, data security";
    const KEY: &'static [&'static str] = &["policy_id"];
    const LABELS: &'static [Label] = &[Label::own("policy", "name")];
    /// Inexact: the API's matching rules for `type` are not documented.
    const FILTERS: &'static [Filter] = &[Filter::values("type", "type", 1)];

    fn fetch(scan: &Scan) -> Fetch {
        scan.requests(policies_request()).into()
    }
}
