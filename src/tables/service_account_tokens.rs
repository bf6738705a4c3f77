//! `service_account_tokens`: the API tokens of every service account, from
//! the API Access API (`GET /admin/api-access/v1/orgs/{orgId}/service-accounts/api-tokens`,
//! `pageSize` and `cursor`). Fields as the org's API tokens have them, plus
//! the service account's id: unverified (`tables::UNVERIFIED`).

use serde::Deserialize;

use super::Label;
use super::api_tokens::READ_TOKENS;
use super::provider::{Fetch, Resource, Scan};
use crate::api::PageRequest;
use crate::row;

pub struct ServiceAccountTokens;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiServiceAccountToken {
    id: String,
    service_account_id: Option<String>,
    label: Option<String>,
    status: Option<String>,
    created_at: Option<String>,
    expires_at: Option<String>,
    last_active_at: Option<String>,
    scopes: Option<Vec<String>>,
}

row! {
    ServiceAccountTokenRow(origin, t: ApiServiceAccountToken) {
        token_id: key = t.id, "API token id (joins events.actor_token_id)";
        service_account_id: text = t.service_account_id,
            "The service account it belongs to (joins service_accounts.service_account_id)";
        label: text = t.label, "The token's label";
        status: text = t.status, "ALLOWED or BLOCKED";
        created_at: time = t.created_at, "When the token was created";
        expires_at: time = t.expires_at, "When it expires; NULL: never";
        last_active_at: time = t.last_active_at, "When it was last used; NULL: never";
        scopes: text = t.scopes.map(|s| s.join(",")),
            "Its scopes, comma-separated; NULL when not known";
    }
}

impl Resource for ServiceAccountTokens {
    type Data = Vec<ApiServiceAccountToken>;
    type Row = ServiceAccountTokenRow;

    const NAME: &'static str = "service_account_tokens";
    const DESCRIPTION: &'static str = "API tokens of the organization's service accounts: \
        expiry, last use (API Access API, Experimental; shape unverified)";
    const KEY: &'static [&'static str] = &["token_id"];
    const LABELS: &'static [Label] = &[Label::own("label", "label")];

    fn fetch(_scan: &Scan) -> Fetch {
        vec![
            PageRequest::get("/admin/api-access/v1/orgs/{orgId}/service-accounts/api-tokens")
                .query("pageSize", "100")
                .scoped(READ_TOKENS),
        ]
        .into()
    }
}
