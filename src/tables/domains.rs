//! `domains`: the organization's domains and their claim state (v1).

use crate::row;
use serde::Deserialize;

use super::provider::{Fetch, Resource, Scan};
use crate::api::PageRequest;
use super::Label;

pub struct Domains;

#[derive(Debug, Deserialize)]
pub struct ApiDomain {
    id: String,
    attributes: DomainAttributes,
}

#[derive(Debug, Deserialize)]
struct DomainAttributes {
    name: Option<String>,
    claim: Option<Claim>,
}

#[derive(Debug, Deserialize)]
struct Claim {
    #[serde(rename = "type")]
    kind: Option<String>,
    status: Option<String>,
}

row! {
    DomainRow(origin, d: ApiDomain) {
        domain_id: key = d.id, "Domain id";
        name: text = d.attributes.name, "Domain name, e.g. example.com";
        claim_type: text = d.attributes.claim.as_ref().and_then(|c| c.kind.clone()),
            "How it was verified: dns or http";
        claim_status: text = d.attributes.claim.and_then(|c| c.status),
            "verified, unverified, deleted, superseded or missing_token";
    }
}

impl Resource for Domains {
    type Data = Vec<ApiDomain>;
    type Row = DomainRow;

    const NAME: &'static str = "domains";
    const DESCRIPTION: &'static str = "Domains of the organization and how they were claimed";
    const KEY: &'static [&'static str] = &["domain_id"];
    const LABELS: &'static [Label] = &[Label::own("domain", "name")];

    fn fetch(_scan: &Scan) -> Fetch {
        vec![PageRequest::get("/admin/v1/orgs/{orgId}/domains")].into()
    }
}
