//! `scim_links`: each account's links to SCIM users, one call per user
//! (`GET /admin/user-provisioning/v1/org/{orgId}/user/{accountId}/get-scim-links`,
//! with the organization's key: no SCIM token needed), paced and fanned out
//! as `user_last_active` is. The endpoint is newer than the saved SCIM spec;
//! its answer's shape is a client library's (JIRAJS), unverified.

use crate::row;
use serde::Deserialize;

use super::Label;
use super::filters::Filter;
use super::provider::{PageShape, Fetch, FromPage, Origin, Resource, Scan};
use super::users::every_user;
use crate::api::{PageItems, PageRequest};

pub struct ScimLinks;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiScimLinks {
    #[serde(default)]
    scim_links: Vec<ApiScimLink>,
}

impl PageItems for ApiScimLinks {
    fn item_count(&self) -> usize {
        self.scim_links.len()
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiScimLink {
    scim_user_id: String,
    atlassian_account_id: Option<String>,
    directory_id: String,
}

row! {
    ScimLinkRow(origin, link: ApiScimLink) {
        account_id: key = origin.parent(), "The account asked about (joins users.account_id)";
        directory_id: key = link.directory_id, "The SCIM directory of the linked SCIM user";
        scim_id: key = link.scim_user_id, "The linked SCIM user (joins scim_users.scim_id)";
        linked_account_id: text = link.atlassian_account_id, "The account the link names, as the API gives it (may be NULL)";
    }
}

impl Resource for ScimLinks {
    type Data = ApiScimLinks;
    type Row = ScimLinkRow;

    const NAME: &'static str = "scim_links";
    const DESCRIPTION: &'static str =
        "Each account's links to SCIM users (one call per user; the organization's key)";
    const KEY: &'static [&'static str] = &["account_id", "directory_id", "scim_id"];
    const LABELS: &'static [Label] = &[Label::email("account_id")];
    const FAN_OUT: Option<&'static str> = Some("user");
    /// account_id picks the users called: exact.
    const FILTERS: &'static [Filter] = &[Filter::parent("account_id", "accountId")];

    const PAGE: PageShape = PageShape::Bare;

    fn fetch(scan: &Scan) -> Fetch {
        scan.fan_out(
            every_user(),
            PageRequest::get(
                "/admin/user-provisioning/v1/org/{orgId}/user/{accountId}/get-scim-links",
            )
            .bare(),
        )
    }
}

impl FromPage<ApiScimLinks> for ScimLinkRow {
    fn push_rows(origin: &Origin, data: ApiScimLinks, rows: &mut Vec<ScimLinkRow>) {
        rows.extend(
            data.scim_links
                .into_iter()
                .map(|link| ScimLinkRow::new(origin, link)),
        );
    }
}
