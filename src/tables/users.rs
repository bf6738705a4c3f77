//! `users`: every directory user, managed or not (`POST users/search`).

use crate::row;
use serde::Deserialize;
use serde_json::json;

use super::filters::Filter;
use super::provider::{Fetch, Parents, Resource, Scan};
use crate::api::{CursorIn, PageRequest};
use super::Label;

pub struct Users;

const USERS_SEARCH: &str = "/admin/v2/orgs/{orgId}/directories/{directoryId}/users/search";
/// Counts what users/search lists, for the filters it takes as query parameters.
const USERS_COUNT: &str = "/admin/v2/orgs/{orgId}/directories/{directoryId}/users/count";
/// users/count's filters, as the spec lists them (no `emails`).
const USERS_COUNT_PARAMS: &[&str] = &[
    "accountIds",
    "directoryIds",
    "resourceIds",
    "groupIds",
    "mfaEnabled",
    "claimStatus",
    "status",
    "accountStatus",
    "membershipStatus",
    "roleIds",
    "searchTerm",
    "emailDomains",
];
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
    .into_iter()
    .map(|request| counted(request, scan))
    .collect()
}

/// A users/search call, counted by users/count unless a LIMIT stops it early.
fn counted(request: PageRequest, scan: &Scan) -> PageRequest {
    match scan.limit {
        Some(_) => request.uncounted("a LIMIT reads only the first rows"),
        None => request.counted_by(USERS_COUNT, USERS_COUNT_PARAMS),
    }
}

/// Every managed user (claimed domains): the user management API reads
/// only those.
pub(crate) fn every_managed_user() -> Parents {
    Parents::Listing {
        requests: vec![
            PageRequest::post(
                USERS_SEARCH,
                json!({ "limit": MAX_PAGE, "claimStatus": "managed" }),
                CursorIn::Body { keep_filters: true },
            )
            .counted_by(USERS_COUNT, USERS_COUNT_PARAMS),
        ],
        key: "accountId",
    }
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

row! {
    UserRow(origin, u: ApiUser) {
        account_id: key = u.account_id, "Atlassian account id (opaque string, not a UUID)";
        name: text = u.name, "Full name";
        nickname: text = u.nickname, "Public name";
        email: text = u.email, "Email address; NULL when hidden";
        email_verified: flag = u.email_verified, "Whether the email address is verified";
        account_type: text = u.account_type, "Account type: atlassian";
        account_status: text = u.account_status, "Account lifecycle: active, inactive or closed";
        membership_status: text = u.membership_status,
            "Directory membership: active, suspended or no_membership";
        status: text = u.status,
            "Overall status: active, suspended, not_invited, deactivated or for_deletion";
        claim_status: text = u.claim_status, "managed (on a claimed domain) or unmanaged";
        management_source: text = u.management_source,
            "How the user came to the directory: invited, synced, or NULL";
        mfa_enabled: flag = u.mfa_enabled,
            "Two-step verification enabled; NULL when the API does not say";
        added_to_org: time = u.added_to_org, "When the user was added to the organization";
        job_title: text = u.job_title, "Job title from the profile";
        department: text = u.department, "Department from the profile";
        organization: text = u.organization, "Organization from the profile";
        location: text = u.location, "Location from the profile";
        time_zone: text = u.time_zone, "Time zone from the profile (IANA name)";
        resource_count: count = u.counts.and_then(|c| c.resources),
            "Number of resources (sites, products) the user can access";
    }
}

impl Resource for Users {
    type Data = Vec<ApiUser>;
    type Row = UserRow;

    const NAME: &'static str = "users";
    const DESCRIPTION: &'static str =
        "Every user in the organization's directories, managed or not";
    const KEY: &'static [&'static str] = &["account_id"];
    const LABELS: &'static [Label] = &[Label::own("email", "email"), Label::own("name", "name")];
    const FILTERS: &'static [Filter] = USER_FILTERS;

    fn fetch(scan: &Scan) -> Fetch {
        let expand: &[&str] = if scan.needs("resource_count") {
            &["counts.resources"]
        } else {
            &[]
        };
        users_search(scan, expand).into()
    }
}
