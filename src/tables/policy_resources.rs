//! `policy_resources`: the resources each policy applies to, one row per
//! element of a policy's `resources[]` (same listing as `policies`).

use serde::Serialize;

use super::filters::Filter;
use super::policies::{ApiPolicy, policies_request};
use super::provider::{Column, Fetch, Origin, Resource, Scan};

pub struct PolicyResources;

#[derive(Serialize)]
pub struct PolicyResourceRow {
    org_id: String,
    policy_id: String,
    resource_id: String,
    application_status: Option<String>,
    policy_type: Option<String>,
}

impl Resource for PolicyResources {
    type Data = Vec<ApiPolicy>;
    type Row = PolicyResourceRow;

    const NAME: &'static str = "policy_resources";
    const DESCRIPTION: &'static str = "Resources (product sites) each policy applies to";
    const KEY: &'static [&'static str] = &["policy_id", "resource_id"];
    const FILTERS: &'static [Filter] = &[Filter::values("policy_type", "type", 1)];

    fn columns() -> Vec<Column> {
        vec![
            Column::org_id(),
            Column::key("policy_id", "Policy id (joins policies.policy_id)"),
            Column::key(
                "resource_id",
                "Resource ARI the policy covers (joins workspaces.workspace_id)",
            ),
            Column::text(
                "application_status",
                "applying, removing, applied, failed or scheduled",
            ),
            Column::text(
                "policy_type",
                "The policy's type (as policies.type; filters on it reach the API)",
            ),
        ]
    }

    fn fetch(scan: &Scan) -> Fetch {
        scan.requests(policies_request()).into()
    }

    fn push_rows(origin: &Origin, data: Vec<ApiPolicy>, rows: &mut Vec<PolicyResourceRow>) {
        for policy in data {
            for resource in policy.attributes.resources {
                rows.push(PolicyResourceRow {
                    org_id: origin.org_id.to_string(),
                    policy_id: policy.id.clone(),
                    resource_id: resource.id,
                    application_status: resource.application_status,
                    policy_type: policy.attributes.kind.clone(),
                });
            }
        }
    }
}
