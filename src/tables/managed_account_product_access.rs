//! `managed_account_product_access`: one row per product a managed account
//! uses (the `product_access[]` of `GET /v1/orgs/{orgId}/users`).

use crate::row;

use super::managed_accounts::{ApiManagedAccount, MANAGED_USERS};
use super::provider::{Fetch, FromPage, Origin, Resource, Scan};
use crate::api::PageRequest;
use super::Label;

pub struct ManagedAccountProductAccess;

row! {
    ManagedProductRow(origin, account_id: &str, product: super::managed_accounts::ApiManagedProduct) {
        account_id: key = account_id.to_string(), "Account id (joins managed_accounts.account_id)";
        product_key: text = product.key, "Product key, e.g. jira-software, confluence";
        product_name: text = product.name, "Product name";
        url: text = product.url, "The product site's URL";
        last_active: time = product.last_active, "Last activity in this product; NULL if never or unknown";
    }
}

impl Resource for ManagedAccountProductAccess {
    type Data = Vec<ApiManagedAccount>;
    type Row = ManagedProductRow;

    const NAME: &'static str = "managed_account_product_access";
    const DESCRIPTION: &'static str = "Products each managed account uses, with last activity";
    const KEY: &'static [&'static str] = &["account_id", "product_key", "url"];
    const LABELS: &'static [Label] = &[Label::lookup("email", "account_id", "managed_accounts", "account_id", "email")];

    fn fetch(_scan: &Scan) -> Fetch {
        vec![PageRequest::get(MANAGED_USERS)].into()
    }
}

impl FromPage<Vec<ApiManagedAccount>> for ManagedProductRow {
    fn push_rows(origin: &Origin, data: Vec<ApiManagedAccount>, rows: &mut Vec<ManagedProductRow>) {
        for account in data {
            for product in account.product_access {
                rows.push(ManagedProductRow::new(origin, &account.account_id, product));
            }
        }
    }
}
