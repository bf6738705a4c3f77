//! `scim_users`: the users each identity provider has provisioned, as the
//! SCIM API lists them (`GET /scim/directory/{directoryId}/Users`), one
//! listing per directory with a SCIM token in the configuration.

use crate::row;
use serde::Deserialize;

use super::Label;
use super::filters::Filter;
use super::provider::{PageShape, Fetch, Parents, Resource, Scan};
use crate::api::{CursorIn, PageRequest};

pub struct ScimUsers;

/// The SCIM API's largest page (`count`).
pub(super) const SCIM_PAGE: usize = 100;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScimUser {
    id: String,
    external_id: Option<String>,
    user_name: Option<String>,
    #[serde(default)]
    emails: Vec<ScimEmail>,
    #[serde(default)]
    name: Option<ScimName>,
    display_name: Option<String>,
    title: Option<String>,
    department: Option<String>,
    organization: Option<String>,
    active: Option<bool>,
    #[serde(default)]
    meta: Option<ScimMeta>,
    #[serde(rename = "urn:scim:schemas:extension:atlassian-external:1.0", default)]
    atlassian: Option<AtlassianLink>,
}

#[derive(Debug, Deserialize)]
pub struct ScimEmail {
    value: Option<String>,
    primary: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScimName {
    given_name: Option<String>,
    family_name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScimMeta {
    pub created: Option<String>,
    pub last_modified: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AtlassianLink {
    atlassian_account_id: Option<String>,
}

/// The primary email, else the first.
fn primary_email(emails: &[ScimEmail]) -> Option<String> {
    emails
        .iter()
        .find(|e| e.primary == Some(true))
        .or_else(|| emails.first())
        .and_then(|e| e.value.clone())
}

row! {
    ScimUserRow(origin, u: ScimUser) {
        directory_id: key = origin.parent(), "SCIM directory id (joins directories.directory_id)";
        scim_id: key = u.id, "The SCIM user id (Atlassian's, not the account id)";
        external_id: text = u.external_id.filter(|e| !e.is_empty()), "The identity provider's id for the user";
        user_name: text = u.user_name, "userName: the identity provider's unique name, often the email";
        email: text = primary_email(&u.emails), "Primary email (else the first)";
        display_name: text = u.display_name, "Display name";
        given_name: text = u.name.as_ref().and_then(|n| n.given_name.clone()), "Given name";
        family_name: text = u.name.as_ref().and_then(|n| n.family_name.clone()), "Family name";
        title: text = u.title, "Job title";
        department: text = u.department, "Department";
        organization: text = u.organization, "Organization";
        active: flag = u.active, "Active in the identity provider (false: deprovisioned)";
        account_id: text = u.atlassian.and_then(|a| a.atlassian_account_id), "The Atlassian account it is linked to (urn:scim:schemas:extension:atlassian-external:1.0 atlassianAccountId; NULL: linked to none)";
        created_at: time = u.meta.as_ref().and_then(|m| m.created.clone()), "When it was provisioned";
        updated_at: time = u.meta.and_then(|m| m.last_modified), "When it last changed";
    }
}

impl Resource for ScimUsers {
    type Data = Vec<ScimUser>;
    type Row = ScimUserRow;

    const NAME: &'static str = "scim_users";
    const DESCRIPTION: &'static str = "Users provisioned by an identity provider (SCIM; each directory's own token)";
    const KEY: &'static [&'static str] = &["directory_id", "scim_id"];
    const LABELS: &'static [Label] = &[Label::own("email", "email")];
    const FAN_OUT: Option<&'static str> = Some("SCIM directory");
    /// directory_id picks the directories listed: exact.
    const FILTERS: &'static [Filter] = &[Filter::parent("directory_id", "directoryId")];

    const PAGE: PageShape = PageShape::ScimList;

    fn fetch(scan: &Scan) -> Fetch {
        scim_listing(scan, "/scim/directory/{directoryId}/Users")
    }
}

/// A SCIM listing in each directory the scan names, else in each with a
/// token; every page full size (a LIMIT stops the stream, not the pages).
pub(super) fn scim_listing(scan: &Scan, template: &'static str) -> Fetch {
    let mut request = PageRequest::get(template).query("count", SCIM_PAGE.to_string());
    request.cursor_in = CursorIn::StartIndex;
    scan.fan_out(Parents::ScimDirectories, request)
}
