//! `domains`: the organization's domains and their claim state (v1).

use serde::{Deserialize, Serialize};

use super::provider::{Column, Fetch, Origin, Resource, Scan};
use crate::api::PageRequest;

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

#[derive(Serialize)]
pub struct DomainRow {
    org_id: String,
    domain_id: String,
    name: Option<String>,
    claim_type: Option<String>,
    claim_status: Option<String>,
}

impl Resource for Domains {
    type Data = Vec<ApiDomain>;
    type Row = DomainRow;

    const NAME: &'static str = "domains";
    const DESCRIPTION: &'static str = "Domains of the organization and how they were claimed";
    const KEY: &'static [&'static str] = &["domain_id"];

    fn columns() -> Vec<Column> {
        vec![
            Column::org_id(),
            Column::key("domain_id", "Domain id"),
            Column::text("name", "Domain name, e.g. example.com"),
            Column::text("claim_type", "How it was verified: dns or http"),
            Column::text(
                "claim_status",
                "verified, unverified, deleted, superseded or missing_token",
            ),
        ]
    }

    fn fetch(_scan: &Scan) -> Fetch {
        vec![PageRequest::get("/admin/v1/orgs/{orgId}/domains")].into()
    }

    fn push_rows(origin: &Origin, data: Vec<ApiDomain>, rows: &mut Vec<DomainRow>) {
        rows.extend(data.into_iter().map(|d| {
            let (claim_type, claim_status) = d
                .attributes
                .claim
                .map_or((None, None), |c| (c.kind, c.status));
            DomainRow {
                org_id: origin.org_id.to_string(),
                domain_id: d.id,
                name: d.attributes.name,
                claim_type,
                claim_status,
            }
        }));
    }
}
