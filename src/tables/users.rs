//! `users`: every directory user, managed or not (`POST users/search`).

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::filters::Filter;
use super::provider::{Column, Fetch, Origin, Parents, Resource, Scan};
use crate::api::{CursorIn, PageRequest};

pub struct Users;

const USERS_SEARCH: &str = "/admin/v2/orgs/{orgId}/directories/{directoryId}/users/search";
/// users/search answers at most 100 users a page.
const MAX_PAGE: usize = 100;

/// The filters users/search applies, as the `users` table declares them.
/// Inexact: email matching ignores case at the API, and SQL must not.
const USER_FILTERS: &[Filter] = &[
    Filter::values("account_id", "accountIds", 10),
    Filter::values("email", "emails", 100).fold_case(),
    Filter::values("account_status", "accountStatus", 3).allowed(&["active", "inactive", "closed"]),
    Filter::values("membership_status", "membershipStatus", 3).allowed(&[
        "active",
        "suspended",
        "no_membership",
    ]),
    Filter::values("status", "status", 4).allowed(&[
        "active",
        "suspended",
        "not_invited",
        "deactivated",
        "for_deletion",
    ]),
    Filter::single("claim_status", "claimStatus", &["managed", "unmanaged"]),
    Filter::flag("mfa_enabled", "mfaEnabled"),
];

/// A table built from users/search whose only user column is `account_id`.
pub(crate) const BY_ACCOUNT: &[Filter] = &[Filter::values("account_id", "accountIds", 10)];

/// `users/search` over all directories, asking for the `expand` parts its
/// columns need, narrowed by the scan's declared filters (lists longer than
/// a call takes split over several calls). Shared by the tables built from it.
pub(crate) fn users_search(scan: &Scan, expand: &[&str]) -> Vec<PageRequest> {
    let mut body = json!({ "limit": scan.page_size(MAX_PAGE) });
    if !expand.is_empty() {
        body["expand"] = json!(expand);
    }
    scan.requests(PageRequest::post(
        USERS_SEARCH,
        body,
        CursorIn::Body { keep_filters: true },
    ))
}

/// Every user, for a table that calls the API once per user.
pub(crate) fn every_user() -> Parents {
    Parents::Listing {
        requests: users_search(&Scan::everything(), &[]),
        key: "accountId",
    }
}

/// One user as `users/search` returns it (v2, camelCase; every field optional
/// but the id, since the API omits what it does not know).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiUser {
    pub account_id: String,
    pub account_type: Option<String>,
    pub account_status: Option<String>,
    pub membership_status: Option<String>,
    pub status: Option<String>,
    pub claim_status: Option<String>,
    pub added_to_org: Option<String>,
    pub name: Option<String>,
    pub nickname: Option<String>,
    pub email: Option<String>,
    pub email_verified: Option<bool>,
    pub management_source: Option<String>,
    pub mfa_enabled: Option<bool>,
    pub job_title: Option<String>,
    pub department: Option<String>,
    pub organization: Option<String>,
    pub location: Option<String>,
    pub time_zone: Option<String>,
    pub counts: Option<UserCounts>,
    #[serde(default)]
    pub platform_roles: Vec<String>,
    #[serde(default)]
    pub groups: Vec<UserGroup>,
    #[serde(default)]
    pub product_access: Vec<UserProductAccess>,
}

/// A product in a user's `productAccess` expansion; `id` is the site's ARI.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserProductAccess {
    pub id: String,
    pub key: Option<String>,
    pub last_active_timestamp: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct UserCounts {
    pub resources: Option<i64>,
}

/// A group in a user's `groups` expansion; `id` is an ARI there.
#[derive(Debug, Deserialize)]
pub struct UserGroup {
    pub id: String,
    pub name: Option<String>,
}

#[derive(Serialize)]
pub struct UserRow {
    org_id: String,
    account_id: String,
    name: Option<String>,
    nickname: Option<String>,
    email: Option<String>,
    email_verified: Option<bool>,
    account_type: Option<String>,
    account_status: Option<String>,
    membership_status: Option<String>,
    status: Option<String>,
    claim_status: Option<String>,
    management_source: Option<String>,
    mfa_enabled: Option<bool>,
    added_to_org: Option<String>,
    job_title: Option<String>,
    department: Option<String>,
    organization: Option<String>,
    location: Option<String>,
    time_zone: Option<String>,
    resource_count: Option<i64>,
}

impl Resource for Users {
    type Data = Vec<ApiUser>;
    type Row = UserRow;

    const NAME: &'static str = "users";
    const DESCRIPTION: &'static str =
        "Every user in the organization's directories, managed or not";
    const KEY: &'static [&'static str] = &["account_id"];
    const FILTERS: &'static [Filter] = USER_FILTERS;

    fn columns() -> Vec<Column> {
        vec![
            Column::org_id(),
            Column::key(
                "account_id",
                "Atlassian account id (opaque string, not a UUID)",
            ),
            Column::text("name", "Full name"),
            Column::text("nickname", "Public name"),
            Column::text("email", "Email address; NULL when hidden"),
            Column::flag("email_verified", "Whether the email address is verified"),
            Column::text("account_type", "Account type: atlassian"),
            Column::text(
                "account_status",
                "Account lifecycle: active, inactive or closed",
            ),
            Column::text(
                "membership_status",
                "Directory membership: active, suspended or no_membership",
            ),
            Column::text(
                "status",
                "Overall status: active, suspended, not_invited, deactivated or for_deletion",
            ),
            Column::text("claim_status", "managed (on a claimed domain) or unmanaged"),
            Column::text(
                "management_source",
                "How the user came to the directory: invited, synced, or NULL",
            ),
            Column::flag(
                "mfa_enabled",
                "Two-step verification enabled; NULL when the API does not say",
            ),
            Column::time(
                "added_to_org",
                "When the user was added to the organization",
            ),
            Column::text("job_title", "Job title from the profile"),
            Column::text("department", "Department from the profile"),
            Column::text("organization", "Organization from the profile"),
            Column::text("location", "Location from the profile"),
            Column::text("time_zone", "Time zone from the profile (IANA name)"),
            Column::count(
                "resource_count",
                "Number of resources (sites, products) the user can access",
            ),
        ]
    }

    fn fetch(scan: &Scan) -> Fetch {
        let expand: &[&str] = if scan.needs("resource_count") {
            &["counts.resources"]
        } else {
            &[]
        };
        users_search(scan, expand).into()
    }

    fn push_rows(origin: &Origin, data: Vec<ApiUser>, rows: &mut Vec<UserRow>) {
        rows.extend(data.into_iter().map(|u| UserRow {
            org_id: origin.org_id.to_string(),
            account_id: u.account_id,
            name: u.name,
            nickname: u.nickname,
            email: u.email,
            email_verified: u.email_verified,
            account_type: u.account_type,
            account_status: u.account_status,
            membership_status: u.membership_status,
            status: u.status,
            claim_status: u.claim_status,
            management_source: u.management_source,
            mfa_enabled: u.mfa_enabled,
            added_to_org: u.added_to_org,
            job_title: u.job_title,
            department: u.department,
            organization: u.organization,
            location: u.location,
            time_zone: u.time_zone,
            resource_count: u.counts.and_then(|c| c.resources),
        }));
    }
}
