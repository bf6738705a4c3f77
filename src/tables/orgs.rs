//! `orgs`: the configured organization itself (one row).

use serde::{Deserialize, Serialize};

use super::provider::{Column, Fetch, Origin, Resource, Scan};
use crate::api::PageRequest;

pub struct Orgs;

#[derive(Debug, Deserialize)]
pub struct ApiOrg {
    id: String,
    attributes: OrgAttributes,
}

#[derive(Debug, Deserialize)]
struct OrgAttributes {
    name: Option<String>,
}

#[derive(Serialize)]
pub struct OrgRow {
    org_id: String,
    name: Option<String>,
}

/// `GET /orgs/{orgId}` answers one organization.
impl crate::api::PageItems for ApiOrg {
    fn item_count(&self) -> usize {
        1
    }
}

impl Resource for Orgs {
    type Data = ApiOrg;
    type Row = OrgRow;

    const NAME: &'static str = "orgs";
    const DESCRIPTION: &'static str = "The organization orgsql is pointed at";
    const KEY: &'static [&'static str] = &["org_id"];

    fn columns() -> Vec<Column> {
        vec![Column::org_id(), Column::text("name", "Organization name")]
    }

    fn fetch(_scan: &Scan) -> Fetch {
        vec![PageRequest::get("/admin/v1/orgs/{orgId}")].into()
    }

    fn push_rows(_origin: &Origin, org: ApiOrg, rows: &mut Vec<OrgRow>) {
        rows.push(OrgRow {
            org_id: org.id,
            name: org.attributes.name,
        });
    }
}
