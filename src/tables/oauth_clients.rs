//! `oauth_clients`: the organization's OAuth clients, from the API Access
//! API (`GET /admin/api-access/v1/orgs/{orgId}/oauth-clients`, `pageSize`
//! and `cursor`). Path and fields unverified (`tables::UNVERIFIED`).

use serde::Deserialize;

use super::Label;
use super::api_tokens::{Person, READ_TOKENS};
use super::provider::{Fetch, Resource, Scan};
use crate::api::PageRequest;
use crate::row;

pub struct OauthClients;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiOauthClient {
    client_id: String,
    name: Option<String>,
    status: Option<String>,
    scopes: Option<Vec<String>>,
    created_at: Option<String>,
    last_active_at: Option<String>,
    created_by: Option<Person>,
}

row! {
    OauthClientRow(origin, c: ApiOauthClient) {
        client_id: key = c.client_id, "OAuth client id";
        name: text = c.name, "The client's name";
        status: text = c.status, "Its status, as the API gives it";
        scopes: text = c.scopes.map(|s| s.join(",")), "Its scopes, comma-separated";
        created_at: time = c.created_at, "When it was created";
        last_active_at: time = c.last_active_at, "When it was last used; NULL: never";
        created_by_id: text = c.created_by.as_ref().and_then(|p| p.id.clone()),
            "Account id of who created it (joins users.account_id)";
        created_by_email: text = c.created_by.and_then(|p| p.email), "Their email";
    }
}

impl Resource for OauthClients {
    type Data = Vec<ApiOauthClient>;
    type Row = OauthClientRow;

    const NAME: &'static str = "oauth_clients";
    const DESCRIPTION: &'static str = "The organization's OAuth clients: scopes, creator, \
        last use (API Access API; path and shape unverified)";
    const KEY: &'static [&'static str] = &["client_id"];
    const LABELS: &'static [Label] = &[Label::own("name", "name")];

    fn fetch(_scan: &Scan) -> Fetch {
        vec![
            PageRequest::get("/admin/api-access/v1/orgs/{orgId}/oauth-clients")
                .query("pageSize", "100")
                .scoped(READ_TOKENS),
        ]
        .into()
    }
}
