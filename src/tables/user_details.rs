//! `user_details`: what a user's details hold that the users search does
//! not (`deactivatedOn`), one call per user
//! (`GET /admin/v2/orgs/{orgId}/directories/{directoryId}/users/{accountId}`,
//! every directory). A table
//! of its own rather than a column of `users`: `users` is one search that
//! every query and export reads, and this costs a call per user, so it is
//! made only when a query names it.

use serde::Deserialize;

use super::filters::Filter;
use super::provider::{Fetch, FromPage, Origin, Resource, Scan};
use super::users::every_user;
use crate::api::{PageItems, PageRequest};
use crate::row;

pub struct UserDetails;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiUserDetails {
    account_id: Option<String>,
    status: Option<String>,
    deactivated_on: Option<String>,
}

impl PageItems for ApiUserDetails {
    fn item_count(&self) -> usize {
        1
    }
}

row! {
    UserDetailsRow(origin, d: ApiUserDetails) {
        account_id: key = d.account_id.unwrap_or_else(|| origin.parent()),
            "User's account id (joins users.account_id)";
        status: text = d.status, "Their status when the details were read";
        deactivated_on: time = d.deactivated_on,
            "When the account was deactivated; NULL: not deactivated, or the API does not say";
    }
}

impl Resource for UserDetails {
    type Data = ApiUserDetails;
    type Row = UserDetailsRow;

    const NAME: &'static str = "user_details";
    const DESCRIPTION: &'static str =
        "Each user's details beyond the search: when they were deactivated (one call per user)";
    // No key: left out of `orgsql diff`, where every new user would show
    // twice (in `users` too) and a deactivation is already a change of
    // `users.status`.
    const FAN_OUT: Option<&'static str> = Some("user");
    /// account_id picks the users called: exact.
    const FILTERS: &'static [Filter] = &[Filter::parent("account_id", "accountId")];

    fn fetch(scan: &Scan) -> Fetch {
        scan.fan_out(
            every_user(),
            PageRequest::get("/admin/v2/orgs/{orgId}/directories/{directoryId}/users/{accountId}"),
        )
    }
}

impl FromPage<ApiUserDetails> for UserDetailsRow {
    fn push_rows(origin: &Origin, data: ApiUserDetails, rows: &mut Vec<UserDetailsRow>) {
        rows.push(UserDetailsRow::new(origin, data));
    }
}
