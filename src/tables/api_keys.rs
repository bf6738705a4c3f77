//! `api_keys`: the organization's admin API keys, from the API Access API
//! (`GET /admin/api-access/v1/orgs/{orgId}/api-keys`, `pageSize` and
//! `cursor`). The shape follows one public client library only (go-atlassian's
//! `OrgKeyScheme`); see API-ACCESS.md.

use serde::Deserialize;

use super::api_tokens::{Person, READ_TOKENS};
use super::provider::{Fetch, Resource, Scan};
use crate::api::PageRequest;
use crate::row;
use super::Label;

pub struct ApiKeys;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKey {
    id: String,
    label: Option<String>,
    created_at: Option<String>,
    expires_at: Option<String>,
    last_active_at: Option<String>,
    resource: Option<String>,
    #[serde(default)]
    scopes: Vec<String>,
    created_by: Option<Person>,
    revoked_by: Option<Person>,
    revocation_date: Option<String>,
}

row! {
    ApiKeyRow(origin, k: ApiKey) {
        key_id: key = k.id, "API key id";
        label: text = k.label, "The key's label";
        created_at: time = k.created_at, "When the key was created";
        expires_at: time = k.expires_at, "When it expires; NULL: never";
        last_active_at: time = k.last_active_at, "When it was last used; NULL: never";
        scopes: text = Some(k.scopes.join(",")),
            "Its scopes, comma-separated; empty for an unscoped key (it can do anything an org admin can)";
        scoped: flag = Some(!k.scopes.is_empty()), "Whether the key is limited to scopes";
        created_by_id: text = k.created_by.as_ref().and_then(|p| p.id.clone()),
            "Account id of who created it (joins users.account_id)";
        created_by_name: text = k.created_by.as_ref().and_then(|p| p.name.clone()), "Who created it";
        created_by_email: text = k.created_by.and_then(|p| p.email), "Their email";
        revoked_by_id: text = k.revoked_by.as_ref().and_then(|p| p.id.clone()),
            "Account id of who revoked it; NULL while it is valid";
        revoked_at: time = k.revocation_date, "When it was revoked";
        resource: text = k.resource, "The organization the key is for (ARI)";
    }
}

impl Resource for ApiKeys {
    type Data = Vec<ApiKey>;
    type Row = ApiKeyRow;

    const NAME: &'static str = "api_keys";
    const DESCRIPTION: &'static str = "The organization's admin API keys: scopes, expiry, last use, \
        who made and revoked them (shape from one public client library: unverified)";
    const KEY: &'static [&'static str] = &["key_id"];
    const LABELS: &'static [Label] = &[Label::own("label", "label")];

    fn fetch(_scan: &Scan) -> Fetch {
        vec![
            PageRequest::get("/admin/api-access/v1/orgs/{orgId}/api-keys")
                .query("pageSize", "100")
                .scoped(READ_TOKENS),
        ]
        .into()
    }
}
