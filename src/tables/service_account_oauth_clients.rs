//! `service_account_oauth_clients`: the OAuth 2.0 clients (client
//! credentials) of every service account, from the API Access API
//! (`GET /admin/api-access/v1/orgs/{orgId}/service-accounts/oauth-clients`,
//! `pageSize` and `cursor`). Field names unverified (`tables::UNVERIFIED`).

use serde::Deserialize;

use super::Label;
use super::api_tokens::READ_TOKENS;
use super::provider::{Fetch, Resource, Scan};
use crate::api::PageRequest;
use crate::row;

pub struct ServiceAccountOauthClients;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiServiceAccountClient {
    client_id: String,
    service_account_id: Option<String>,
    name: Option<String>,
    status: Option<String>,
    scopes: Option<Vec<String>>,
    created_at: Option<String>,
    expires_at: Option<String>,
    last_active_at: Option<String>,
}

row! {
    ServiceAccountClientRow(origin, c: ApiServiceAccountClient) {
        client_id: key = c.client_id, "OAuth client id";
        service_account_id: text = c.service_account_id,
            "The service account it belongs to (joins service_accounts.service_account_id)";
        name: text = c.name, "The client's name";
        status: text = c.status, "Its status, as the API gives it";
        scopes: text = c.scopes.map(|s| s.join(",")), "Its scopes, comma-separated";
        created_at: time = c.created_at, "When it was created";
        expires_at: time = c.expires_at, "When its secret expires; NULL: never";
        last_active_at: time = c.last_active_at, "When it was last used; NULL: never";
    }
}

impl Resource for ServiceAccountOauthClients {
    type Data = Vec<ApiServiceAccountClient>;
    type Row = ServiceAccountClientRow;

    const NAME: &'static str = "service_account_oauth_clients";
    const DESCRIPTION: &'static str = "OAuth clients of the organization's service accounts: \
        scopes, expiry, last use (API Access API, Experimental; shape unverified)";
    const KEY: &'static [&'static str] = &["client_id"];
    const LABELS: &'static [Label] = &[Label::own("name", "name")];

    fn fetch(_scan: &Scan) -> Fetch {
        vec![
            PageRequest::get("/admin/api-access/v1/orgs/{orgId}/service-accounts/oauth-clients")
                .query("pageSize", "100")
                .scoped(READ_TOKENS),
        ]
        .into()
    }
}
