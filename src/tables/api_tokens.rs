//! `api_tokens`: every managed user's API tokens, from the API Access API's
//! org-wide listing (`GET /admin/api-access/v1/orgs/{orgId}/api-tokens`,
//! `pageSize` and `cursor` only). Where that listing is refused, each
//! managed user's own tokens instead (`GET /users/{accountId}/manage/api-tokens`,
//! one call per user, fewer columns), and the session says so. Field names
//! follow the public client libraries; see API-ACCESS.md.

use serde::Deserialize;

use super::provider::{FanOut, Fetch, FromPage, Origin, Resource, Scan};
use super::users::every_managed_user;
use crate::api::PageRequest;
use crate::row;
use super::Label;

pub struct ApiTokens;

/// The scope the API Access API asks for tokens.
pub(crate) const READ_TOKENS: &str = "read:tokens:admin";

/// A token as either listing gives it.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum ApiTokenItem {
    Org(Box<OrgToken>),
    User(UserToken),
}

/// From the org-wide listing.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrgToken {
    id: String,
    label: Option<String>,
    status: Option<String>,
    created_at: Option<String>,
    expires_at: Option<String>,
    last_active_at: Option<String>,
    scopes: Option<Vec<String>>,
    user: Person,
    created_by: Option<Person>,
}

/// A person as the API Access API names one.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Person {
    pub(crate) id: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) email: Option<String>,
    pub(crate) user_status: Option<String>,
}

/// From one user's own listing (user management API).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserToken {
    id: String,
    label: Option<String>,
    created_at: Option<String>,
    last_access: Option<String>,
    expiry: Option<String>,
    disabled_status: Option<serde_json::Value>,
}

row! {
    ApiTokenRow(origin, t: OrgToken) {
        token_id: key = t.id, "API token id (joins events.actor_token_id)";
        account_id: key = t.user.id.clone().unwrap_or_else(|| origin.parent()),
            "Owner's account id (joins users.account_id)";
        label: text = t.label, "The token's label, as its owner named it";
        status: text = t.status, "ALLOWED or BLOCKED";
        created_at: time = t.created_at, "When the token was created";
        expires_at: time = t.expires_at, "When it expires; NULL: never";
        last_active_at: time = t.last_active_at, "When it was last used; NULL: never";
        scopes: text = t.scopes.map(|s| s.join(",")),
            "Its scopes, comma-separated; empty for a classic (unscoped) token; NULL when not known";
        owner_name: text = t.user.name, "Owner's name";
        owner_email: text = t.user.email, "Owner's email";
        owner_status: text = t.user.user_status, "Owner's status, as the API Access API gives it";
        created_by_id: text = t.created_by.as_ref().and_then(|p| p.id.clone()),
            "Account id of who created it, when the API says";
        created_by_name: text = t.created_by.and_then(|p| p.name), "Name of who created it";
        source: text = Some(origin.parent.map_or("organization", |_| "user").to_string()),
            "Where the row came from: organization (the org-wide listing) or user (one user's own tokens, fewer columns)";
    }
}

impl From<UserToken> for OrgToken {
    /// What one user's listing says, in the org listing's terms.
    fn from(t: UserToken) -> Self {
        let blocked = t
            .disabled_status
            .as_ref()
            .map(|v| v.as_bool().unwrap_or_else(|| v.as_str() == Some("DISABLED")));
        OrgToken {
            id: t.id,
            label: t.label,
            status: blocked.map(|b| if b { "BLOCKED" } else { "ALLOWED" }.to_string()),
            created_at: t.created_at,
            expires_at: t.expiry,
            last_active_at: t.last_access,
            scopes: None,
            user: Person {
                id: None,
                name: None,
                email: None,
                user_status: None,
            },
            created_by: None,
        }
    }
}

impl Resource for ApiTokens {
    type Data = Vec<ApiTokenItem>;
    type Row = ApiTokenRow;

    const NAME: &'static str = "api_tokens";
    const DESCRIPTION: &'static str = "API tokens of the organization's managed users: owner, age, expiry, last use";
    const KEY: &'static [&'static str] = &["token_id"];
    const LABELS: &'static [Label] = &[Label::own("label", "label"), Label::own("owner_email", "owner_email")];

    fn fetch(_scan: &Scan) -> Fetch {
        Fetch::Fallback {
            first: Box::new(Fetch::Listings(vec![
                PageRequest::get("/admin/api-access/v1/orgs/{orgId}/api-tokens")
                    .query("pageSize", "100")
                    .scoped(READ_TOKENS),
            ])),
            then: Box::new(Fetch::PerParent(FanOut {
                parents: every_managed_user(),
                children: vec![PageRequest::get("/users/{accountId}/manage/api-tokens").bare()],
                param: "accountId",
            })),
            note: "api_tokens: the API refused the org-wide token listing; each managed user's \
                   own tokens were read instead (one call per user; no scopes, owner names or \
                   creators). A key with read:tokens:admin reads them all at once",
        }
    }
}

impl FromPage<Vec<ApiTokenItem>> for ApiTokenRow {
    fn push_rows(origin: &Origin, data: Vec<ApiTokenItem>, rows: &mut Vec<ApiTokenRow>) {
        rows.extend(data.into_iter().map(|item| {
            let token = match item {
                ApiTokenItem::Org(t) => *t,
                ApiTokenItem::User(t) => t.into(),
            };
            ApiTokenRow::new(origin, token)
        }));
    }
}
