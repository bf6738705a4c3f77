//! `managed_accounts`: accounts on the organization's claimed domains
//! (`GET /v1/orgs/{orgId}/users`), with billing and last-activity facts the v2
//! user search does not give.

use crate::row;
use serde::Deserialize;

use super::provider::{Fetch, Resource, Scan};
use crate::api::PageRequest;
use super::Label;

pub struct ManagedAccounts;

pub(crate) const MANAGED_USERS: &str = "/admin/v1/orgs/{orgId}/users";

/// One managed account as v1 returns it (snake_case).
#[derive(Debug, Deserialize)]
pub struct ApiManagedAccount {
    pub(crate) account_id: String,
    account_type: Option<String>,
    account_status: Option<String>,
    name: Option<String>,
    email: Option<String>,
    access_billable: Option<bool>,
    last_active: Option<String>,
    #[serde(default)]
    pub(crate) product_access: Vec<ApiManagedProduct>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ApiManagedProduct {
    pub(crate) key: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) url: Option<String>,
    pub(crate) last_active: Option<String>,
}

row! {
    ManagedAccountRow(origin, a: ApiManagedAccount) {
        account_id: key = a.account_id, "Account id (joins users.account_id)";
        name: text = a.name, "Display name";
        email: text = a.email, "Email address; NULL when hidden";
        account_type: text = a.account_type, "atlassian, customer or app";
        account_status: text = a.account_status, "active, inactive or closed";
        access_billable: flag = a.access_billable, "Whether the account counts as a billable user";
        last_active: time = a.last_active, "Last activity in any product; NULL if never or unknown";
    }
}

impl Resource for ManagedAccounts {
    type Data = Vec<ApiManagedAccount>;
    type Row = ManagedAccountRow;

    const NAME: &'static str = "managed_accounts";
    const DESCRIPTION: &'static str =
        "Managed accounts (users on claimed domains), with billing status and last activity";
    const KEY: &'static [&'static str] = &["account_id"];
    const LABELS: &'static [Label] = &[Label::own("email", "email"), Label::own("name", "name")];

    fn fetch(_scan: &Scan) -> Fetch {
        vec![PageRequest::get(MANAGED_USERS)].into()
    }
}
