//! `user_product_access`: one row per product site a user can use
//! (`users/search` with the `productAccess` expansion).

use serde::Serialize;

use super::filters::Filter;
use super::provider::{Column, Fetch, Origin, Resource, Scan};
use super::users::{ApiUser, BY_ACCOUNT, users_search};

pub struct UserProductAccess;

#[derive(Serialize)]
pub struct ProductAccessRow {
    org_id: String,
    account_id: String,
    product_id: String,
    product_key: Option<String>,
    last_active: Option<String>,
}

impl Resource for UserProductAccess {
    type Data = Vec<ApiUser>;
    type Row = ProductAccessRow;

    const NAME: &'static str = "user_product_access";
    const DESCRIPTION: &'static str = "Product sites each user can access, with last activity";
    const FILTERS: &'static [Filter] = BY_ACCOUNT;
    const KEY: &'static [&'static str] = &["account_id", "product_id"];

    fn columns() -> Vec<Column> {
        vec![
            Column::org_id(),
            Column::key("account_id", "User's account id (joins users.account_id)"),
            Column::key(
                "product_id",
                "The product site's ARI (joins workspaces.workspace_id)",
            ),
            Column::text("product_key", "Product key, e.g. jira-software, confluence"),
            Column::time(
                "last_active",
                "Last time the user was active in this product; NULL if never or unknown",
            ),
        ]
    }

    fn fetch(scan: &Scan) -> Fetch {
        users_search(&scan.without_limit(), &["productAccess"]).into()
    }

    fn push_rows(origin: &Origin, data: Vec<ApiUser>, rows: &mut Vec<ProductAccessRow>) {
        for user in data {
            for access in user.product_access {
                rows.push(ProductAccessRow {
                    org_id: origin.org_id.to_string(),
                    account_id: user.account_id.clone(),
                    product_id: access.id,
                    product_key: access.key,
                    last_active: access.last_active_timestamp,
                });
            }
        }
    }
}
