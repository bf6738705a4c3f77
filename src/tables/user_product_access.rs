//! `user_product_access`: one row per product site a user can use
//! (`users/search` with the `productAccess` expansion).

use crate::row;

use super::filters::Filter;
use super::provider::{Fetch, FromPage, Origin, Resource, Scan};
use super::users::{ApiUser, BY_ACCOUNT, UserProductAccess as ApiProductAccess, users_search};
use super::Label;

pub struct UserProductAccess;

row! {
    ProductAccessRow(origin, account_id: &str, access: ApiProductAccess) {
        account_id: key = account_id.to_string(), "User's account id (joins users.account_id)";
        product_id: key = access.id, "The product site's ARI (joins workspaces.workspace_id)";
        product_key: text = access.key, "Product key, e.g. jira-software, confluence";
        last_active: time = access.last_active_timestamp,
            "Last time the user was active in this product; NULL if never or unknown";
    }
}

impl Resource for UserProductAccess {
    type Data = Vec<ApiUser>;
    type Row = ProductAccessRow;

    const NAME: &'static str = "user_product_access";
    const DESCRIPTION: &'static str = "Product sites each user can access, with last activity";
    const FILTERS: &'static [Filter] = BY_ACCOUNT;
    const KEY: &'static [&'static str] = &["account_id", "product_id"];
    const LABELS: &'static [Label] = &[Label::email("account_id"), Label::workspace("product_id")];

    fn fetch(scan: &Scan) -> Fetch {
        users_search(&scan.without_limit(), &["productAccess"]).into()
    }
}

impl FromPage<Vec<ApiUser>> for ProductAccessRow {
    fn push_rows(origin: &Origin, data: Vec<ApiUser>, rows: &mut Vec<ProductAccessRow>) {
        for user in data {
            for access in user.product_access {
                rows.push(ProductAccessRow::new(origin, &user.account_id, access));
            }
        }
    }
}
