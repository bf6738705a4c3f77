//! `orgs`: the configured organization itself (one row).

use crate::row;
use serde::Deserialize;

use super::provider::{Fetch, FromPage, Origin, Resource, Scan};
use crate::api::PageRequest;
use super::Label;

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

row! {
    OrgRow(origin, org: ApiOrg) {
        name: text = org.attributes.name, "Organization name";
    }
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
    const LABELS: &'static [Label] = &[Label::own("name", "name")];

    fn fetch(_scan: &Scan) -> Fetch {
        vec![PageRequest::get("/admin/v1/orgs/{orgId}")].into()
    }
}

/// A page is the one organization; its id as the API gives it.
impl FromPage<ApiOrg> for OrgRow {
    fn push_rows(_origin: &Origin, org: ApiOrg, rows: &mut Vec<OrgRow>) {
        let id = org.id.clone();
        let origin = Origin {
            org_id: &id,
            parent: None,
        };
        rows.push(OrgRow::new(&origin, org));
    }
}
