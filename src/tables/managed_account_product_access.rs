//! `managed_account_product_access`: one row per product a managed account
//! uses (the `product_access[]` of `GET /v1/orgs/{orgId}/users`).

use serde::Serialize;

use super::managed_accounts::{ApiManagedAccount, MANAGED_USERS};
use super::provider::{Column, Fetch, Origin, Resource, Scan};
use crate::api::PageRequest;

pub struct ManagedAccountProductAccess;

#[derive(Serialize)]
pub struct ManagedProductRow {
    org_id: String,
    account_id: String,
    product_key: Option<String>,
    product_name: Option<String>,
    url: Option<String>,
    last_active: Option<String>,
}

impl Resource for ManagedAccountProductAccess {
    type Data = Vec<ApiManagedAccount>;
    type Row = ManagedProductRow;

    const NAME: &'static str = "managed_account_product_access";
    const DESCRIPTION: &'static str = "Products each managed account uses, with last activity";
    const KEY: &'static [&'static str] = &["account_id", "product_key", "url"];

    fn columns() -> Vec<Column> {
        vec![
            Column::org_id(),
            Column::key(
                "account_id",
                "Account id (joins managed_accounts.account_id)",
            ),
            Column::text("product_key", "Product key, e.g. jira-software, confluence"),
            Column::text("product_name", "Product name"),
            Column::text("url", "The product site's URL"),
            Column::time(
                "last_active",
                "Last activity in this product; NULL if never or unknown",
            ),
        ]
    }

    fn fetch(_scan: &Scan) -> Fetch {
        vec![PageRequest::get(MANAGED_USERS)].into()
    }

    fn push_rows(origin: &Origin, data: Vec<ApiManagedAccount>, rows: &mut Vec<ManagedProductRow>) {
        for account in data {
            for product in account.product_access {
                rows.push(ManagedProductRow {
                    org_id: origin.org_id.to_string(),
                    account_id: account.account_id.clone(),
                    product_key: product.key,
                    product_name: product.name,
                    url: product.url,
                    last_active: product.last_active,
                });
            }
        }
    }
}
