//! `policy_resources`: the resources each policy applies to, one row per
//! element of a policy's `resources[]` (same listing as `policies`).

use crate::row;

use super::filters::Filter;
use super::policies::{ApiPolicy, PolicyResource, policies_request};
use super::provider::{Fetch, FromPage, Origin, Resource, Scan};
use super::Label;

pub struct PolicyResources;

row! {
    PolicyResourceRow(origin, policy: &ApiPolicy, resource: PolicyResource) {
        policy_id: key = policy.id.clone(), "Policy id (joins policies.policy_id)";
        resource_id: key = resource.id, "Resource ARI the policy covers (joins workspaces.workspace_id)";
        application_status: text = resource.application_status,
            "applying, removing, applied, failed or scheduled";
        policy_type: text = policy.attributes.kind.clone(),
            "The policy's type (as policies.type; filters on it reach the API)";
    }
}

impl Resource for PolicyResources {
    type Data = Vec<ApiPolicy>;
    type Row = PolicyResourceRow;

    const NAME: &'static str = "policy_resources";
    const DESCRIPTION: &'static str = "Resources (product sites) each policy applies to";
    const KEY: &'static [&'static str] = &["policy_id", "resource_id"];
    const LABELS: &'static [Label] = &[Label::lookup("policy", "policy_id", "policies", "policy_id", "name"), Label::workspace("resource_id")];
    const FILTERS: &'static [Filter] = &[Filter::values("policy_type", "type", 1)];

    fn fetch(scan: &Scan) -> Fetch {
        scan.requests(policies_request()).into()
    }
}

impl FromPage<Vec<ApiPolicy>> for PolicyResourceRow {
    fn push_rows(origin: &Origin, data: Vec<ApiPolicy>, rows: &mut Vec<PolicyResourceRow>) {
        for mut policy in data {
            for resource in std::mem::take(&mut policy.attributes.resources) {
                rows.push(PolicyResourceRow::new(origin, &policy, resource));
            }
        }
    }
}
