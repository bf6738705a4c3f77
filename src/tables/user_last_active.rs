//! `user_last_active`: when each user last used each product, one call per
//! user (`GET /v1/orgs/{orgId}/directory/users/{accountId}/last-active-dates`;
//! the API allows 200 of these a minute per organization).

use serde::{Deserialize, Serialize};

use super::filters::Filter;
use super::provider::{Column, Fetch, Origin, Resource, Scan};
use super::users::every_user;
use crate::api::{PageItems, PageRequest};

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

#[derive(Serialize)]
pub struct LastActiveRow {
    org_id: String,
    account_id: String,
    product_id: String,
    product_key: Option<String>,
    last_active: Option<String>,
    last_active_at: Option<String>,
    added_to_org_at: Option<String>,
}

impl Resource for UserLastActive {
    type Data = ApiLastActive;
    type Row = LastActiveRow;

    const NAME: &'static str = "user_last_active";
    const DESCRIPTION: &'static str =
        "Last activity per user and product (one call per user; the API delays it up to 24 h)";
    // One site can host two products: the id alone is not unique.
    const KEY: &'static [&'static str] = &["account_id", "product_id", "product_key"];
    const FAN_OUT: Option<&'static str> = Some("user");
    /// account_id picks the users called: exact.
    const FILTERS: &'static [Filter] = &[Filter::parent("account_id", "accountId")];

    fn columns() -> Vec<Column> {
        vec![
            Column::org_id(),
            Column::key("account_id", "User's account id (joins users.account_id)"),
            Column::key("product_id", "Product instance id"),
            Column::text("product_key", "Product key, e.g. jira-software, confluence"),
            Column::date(
                "last_active",
                "Last day the user was active in the product (UTC)",
            ),
            Column::time(
                "last_active_at",
                "Last time the user was active in the product",
            ),
            Column::time(
                "added_to_org_at",
                "When the user was added to the organization",
            ),
        ]
    }

    fn fetch(scan: &Scan) -> Fetch {
        scan.fan_out(
            every_user(),
            PageRequest::get(
                "/admin/v1/orgs/{orgId}/directory/users/{accountId}/last-active-dates",
            ),
        )
    }

    fn push_rows(origin: &Origin, data: ApiLastActive, rows: &mut Vec<LastActiveRow>) {
        for product in data.product_access {
            rows.push(LastActiveRow {
                org_id: origin.org_id.to_string(),
                account_id: origin.parent(),
                product_id: product.id,
                product_key: product.key,
                last_active: product.last_active,
                last_active_at: product.last_active_timestamp,
                added_to_org_at: data.added_to_org_timestamp.clone(),
            });
        }
    }
}
