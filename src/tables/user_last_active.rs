//! `user_last_active`: when each user last used each product, one call per
//! user (`GET /v1/orgs/{orgId}/directory/users/{accountId}/last-active-dates`;
//! the API allows 200 of these a minute per organization).

use crate::row;
use serde::Deserialize;

use super::filters::Filter;
use super::provider::{Fetch, FromPage, Origin, Resource, Scan};
use super::users::every_user;
use crate::api::{PageItems, PageRequest};
use super::Label;

pub struct UserLastActive;

#[derive(Debug, Deserialize)]
pub struct ApiLastActive {
    #[serde(default)]
    product_access: Vec<ApiProductActivity>,
    added_to_org_timestamp: Option<String>,
}

impl PageItems for ApiLastActive {
    fn item_count(&self) -> usize {
        self.product_access.len()
    }
}

#[derive(Debug, Deserialize)]
struct ApiProductActivity {
    id: String,
    key: Option<String>,
    last_active: Option<String>,
    last_active_timestamp: Option<String>,
}

row! {
    LastActiveRow(origin, product: ApiProductActivity, added: &Option<String>) {
        account_id: key = origin.parent(), "User's account id (joins users.account_id)";
        product_id: key = product.id, "Product instance id";
        product_key: text = product.key, "Product key, e.g. jira-software, confluence";
        last_active: date = product.last_active, "Last day the user was active in the product (UTC)";
        last_active_at: time = product.last_active_timestamp, "Last time the user was active in the product";
        added_to_org_at: time = added.clone(), "When the user was added to the organization";
    }
}

impl Resource for UserLastActive {
    type Data = ApiLastActive;
    type Row = LastActiveRow;

    const NAME: &'static str = "user_last_active";
    const DESCRIPTION: &'static str =
        "Last activity per user and product (one call per user; the API delays it up to 24 h)";
    // One site can host two products: the id alone is not unique.
    const KEY: &'static [&'static str] = &["account_id", "product_id", "product_key"];
    const LABELS: &'static [Label] = &[Label::email("account_id")];
    const FAN_OUT: Option<&'static str> = Some("user");
    /// account_id picks the users called: exact.
    const FILTERS: &'static [Filter] = &[Filter::parent("account_id", "accountId")];

    fn fetch(scan: &Scan) -> Fetch {
        scan.fan_out(
            every_user(),
            PageRequest::get(
                "/admin/v1/orgs/{orgId}/directory/users/{accountId}/last-active-dates",
            ),
        )
    }
}

impl FromPage<ApiLastActive> for LastActiveRow {
    fn push_rows(origin: &Origin, data: ApiLastActive, rows: &mut Vec<LastActiveRow>) {
        for product in data.product_access {
            rows.push(LastActiveRow::new(
                origin,
                product,
                &data.added_to_org_timestamp,
            ));
        }
    }
}
