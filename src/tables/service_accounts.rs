//! `service_accounts`: the organization's service accounts, from the API
//! Access API (`GET /admin/api-access/v1/orgs/{orgId}/service-accounts`,
//! `pageSize` and `cursor`; marked Experimental by the vendor). The issue's
//! field list (`atlassianId`, `id`, `email`, `displayName`, `status`,
//! `createdById`, `description`, `updatedAt` in epoch ms) is all there is:
//! no captured answer confirms it (`tables::UNVERIFIED`).

use serde::Deserialize;

use super::Label;
use super::api_tokens::READ_TOKENS;
use super::provider::{Fetch, Resource, Scan};
use crate::api::PageRequest;
use crate::row;

pub struct ServiceAccounts;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiServiceAccount {
    id: String,
    atlassian_id: Option<String>,
    email: Option<String>,
    display_name: Option<String>,
    status: Option<String>,
    created_by_id: Option<String>,
    description: Option<String>,
    created_at: Option<i64>,
    updated_at: Option<i64>,
}

/// An epoch-milliseconds time as the ISO 8601 text a `time` column takes;
/// a value out of range is NULL, never a made-up time.
pub(crate) fn from_epoch_ms(ms: Option<i64>) -> Option<String> {
    let at = chrono::DateTime::from_timestamp_millis(ms?)?;
    Some(at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

row! {
    ServiceAccountRow(origin, a: ApiServiceAccount) {
        service_account_id: key = a.id,
            "Service account id (joins service_account_tokens.service_account_id)";
        account_id: text = a.atlassian_id,
            "Its Atlassian account id (joins events.actor_id)";
        name: text = a.display_name, "Its display name";
        email: text = a.email, "Its email address";
        status: text = a.status, "Its status, as the API gives it";
        description: text = a.description, "What it is for, as its creator wrote";
        created_at: time = from_epoch_ms(a.created_at), "When it was created, when the API says";
        created_by_id: text = a.created_by_id,
            "Account id of who created it (joins users.account_id): its owner";
        updated_at: time = from_epoch_ms(a.updated_at), "When it was last changed";
    }
}

impl Resource for ServiceAccounts {
    type Data = Vec<ApiServiceAccount>;
    type Row = ServiceAccountRow;

    const NAME: &'static str = "service_accounts";
    const DESCRIPTION: &'static str = "The organization's service accounts: name, status, \
        who created them (API Access API, Experimental; shape unverified)";
    const KEY: &'static [&'static str] = &["service_account_id"];
    const LABELS: &'static [Label] = &[Label::own("name", "name")];

    fn fetch(_scan: &Scan) -> Fetch {
        vec![
            PageRequest::get("/admin/api-access/v1/orgs/{orgId}/service-accounts")
                .query("pageSize", "100")
                .scoped(READ_TOKENS),
        ]
        .into()
    }
}
