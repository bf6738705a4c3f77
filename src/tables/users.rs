//! `users`: every directory user, managed or not (`POST users/search`).

use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::filters::{allowed_values, bool_equals, case_folded, equals_any};
use super::provider::{Column, Fetch, Origin, Parents, Resource, Scan};
use crate::api::{CursorIn, PageRequest};

pub struct Users;

const USERS_SEARCH: &str = "/admin/v2/orgs/{orgId}/directories/{directoryId}/users/search";
/// users/search answers at most 100 users a page.
const MAX_PAGE: usize = 100;

/// Equality filters users/search applies: column, body field, the values the
/// API accepts (`None`: any), the most values one call takes.
const LIST_FILTERS: [(&str, &str, Option<&[&str]>, usize); 6] = [
    ("account_id", "accountIds", None, 10),
    ("email", "emails", None, 100),
    (
        "account_status",
        "accountStatus",
        Some(&["active", "inactive", "closed"]),
        3,
    ),
    (
        "membership_status",
        "membershipStatus",
        Some(&["active", "suspended", "no_membership"]),
        3,
    ),
    (
        "status",
        "status",
        Some(&[
            "active",
            "suspended",
            "not_invited",
            "deactivated",
            "for_deletion",
        ]),
        4,
    ),
    ("group_id", "groupIds", None, 10),
];

/// users/search as the source of a per-user child table: only `account_id`
/// is a column there, and it narrows the search.
pub(crate) fn child_pushdown(filter: &Expr) -> TableProviderFilterPushDown {
    match equals_any(filter) {
        Some(("account_id", _)) => users_pushdown(filter),
        _ => TableProviderFilterPushDown::Unsupported,
    }
}

/// Whether users/search can narrow by this filter. Inexact: email matching
/// may ignore case at the API, and SQL must not.
pub(crate) fn users_pushdown(filter: &Expr) -> TableProviderFilterPushDown {
    let pushable = equals_any(filter).is_some_and(|(col, _)| {
        col == "claim_status" || LIST_FILTERS.iter().any(|(c, ..)| *c == col)
    }) || bool_equals(filter).is_some_and(|(col, _)| col == "mfa_enabled");
    if pushable {
        TableProviderFilterPushDown::Inexact
    } else {
        TableProviderFilterPushDown::Unsupported
    }
}

/// `users/search` calls over all directories, narrowed by the scan's filters
/// and asking for the `expand` parts its columns need. Lists longer than the
/// API takes in one call are split over several calls. Shared by the tables
/// built from this call.
pub(crate) fn users_search(scan: &Scan, expand: &[&str]) -> Vec<PageRequest> {
    let mut body = json!({ "limit": scan.page_size(MAX_PAGE) });
    if !expand.is_empty() {
        body["expand"] = json!(expand);
    }
    let mut bodies = vec![body];
    for (col, field, valid, max) in LIST_FILTERS {
        let Some(mut values) = allowed_values(scan.filters, col) else {
            continue;
        };
        if col == "email" {
            // The API matches emails ignoring case: one spelling each, or a
            // user could come back from two calls.
            values = case_folded(values);
        }
        if let Some(valid) = valid {
            // A value outside the API's enum matches nothing.
            values.retain(|v| valid.contains(&v.as_str()));
            if values.len() == valid.len() {
                continue;
            }
        }
        if values.is_empty() {
            return Vec::new();
        }
        bodies = bodies
            .into_iter()
            .flat_map(|body| {
                values.chunks(max).map(move |chunk| {
                    let mut body = body.clone();
                    body[field] = json!(chunk);
                    body
                })
            })
            .collect();
    }
    let claim = allowed_values(scan.filters, "claim_status");
    let mfa: Vec<bool> = scan
        .filters
        .iter()
        .filter_map(bool_equals)
        .filter(|(col, _)| *col == "mfa_enabled")
        .map(|(_, value)| value)
        .collect();
    for body in &mut bodies {
        match claim.as_deref() {
            Some([one]) if one == "managed" || one == "unmanaged" => {
                body["claimStatus"] = json!(one)
            }
            Some([_]) | Some([]) => return Vec::new(),
            _ => {}
        }
        match mfa.as_slice() {
            [] => {}
            [first, rest @ ..] if rest.iter().all(|v| v == first) => {
                body["mfaEnabled"] = Value::Bool(*first)
            }
            _ => return Vec::new(),
        }
    }
    bodies
        .into_iter()
        .map(|body| PageRequest::post(USERS_SEARCH, body, CursorIn::Body { keep_filters: true }))
        .collect()
}

/// The users a per-user table calls for: those its `account_id` filter
/// names, else every user.
pub(crate) fn users_named(scan: &Scan) -> Parents {
    match allowed_values(scan.filters, "account_id") {
        Some(ids) => Parents::Ids(ids),
        None => Parents::Listing {
            requests: users_search(&Scan::everything(), &[]),
            key: "accountId",
        },
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

    fn pushdown(filter: &Expr) -> TableProviderFilterPushDown {
        users_pushdown(filter)
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
