//! `seat_sources`: what the `seats` view is built from, read in one pass of
//! `users/search` with the `productAccess`, `groups` and `platformRoles`
//! expansions (about one request per 100 users, never one per user): a row
//! per product site a user can use and a row per group they are in, each
//! with the user's status, claim and activity.

use crate::row;

use super::filters::Filter;
use super::provider::{Fetch, FromPage, Origin, Resource, Scan};
use super::users::{ApiUser, BY_ACCOUNT, users_search};
use super::Label;

pub struct SeatSources;

/// Every part of a user the seats need, in one listing.
const SEAT_EXPAND: &[&str] = &["productAccess", "groups", "platformRoles"];

/// A user's expanded `groups[].id` is an ARI; group search gives the bare UUID.
const GROUP_ARI_PREFIX: &str = "ari:cloud:identity::group/";

/// One source of a seat, and the user it belongs to.
pub struct Source {
    /// `product` or `group`.
    kind: &'static str,
    id: String,
    product_key: Option<String>,
    group_name: Option<String>,
    last_active: Option<String>,
    platform_roles: Option<String>,
}

row! {
    SeatSourceRow(origin, user: &ApiUser, s: Source) {
        account_id: key = user.account_id.clone(), "User's account id (joins users.account_id)";
        source: key = s.kind.to_string(),
            "product (a site the user can use, from productAccess) or group (a group the user is in)";
        source_id: key = s.id,
            "For a product: the site's ARI (joins workspaces.workspace_id); for a group: its bare id (joins groups.group_id)";
        product_key: text = s.product_key, "For a product: its key, e.g. jira-software, confluence";
        group_name: text = s.group_name, "For a group: its name";
        last_active: time = s.last_active,
            "For a product: the user's last activity on it; NULL if never or unknown";
        email: text = user.email.clone(), "User's email address; NULL when hidden";
        account_status: text = user.account_status.clone(), "active, inactive or closed";
        membership_status: text = user.membership_status.clone(), "active, suspended or no_membership";
        status: text = user.status.clone(),
            "active, suspended, not_invited, deactivated or for_deletion";
        claim_status: text = user.claim_status.clone(), "managed or unmanaged";
        management_source: text = user.management_source.clone(), "invited, synced, or NULL";
        added_to_org: time = user.added_to_org.clone(), "When the user was added to the organization";
        platform_roles: text = s.platform_roles,
            "The user's platform roles, comma-joined (e.g. atlassian/org-admin); NULL if none";
    }
}

impl Resource for SeatSources {
    type Data = Vec<ApiUser>;
    type Row = SeatSourceRow;

    const NAME: &'static str = "seat_sources";
    const DESCRIPTION: &'static str = "What seats are built from: each user's product sites and groups, in one users/search pass";
    const FILTERS: &'static [Filter] = BY_ACCOUNT;
    const KEY: &'static [&'static str] = &["account_id", "source", "source_id"];
    const LABELS: &'static [Label] = &[Label::email("account_id")];

    fn fetch(scan: &Scan) -> Fetch {
        users_search(&scan.without_limit(), SEAT_EXPAND).into()
    }
}

impl FromPage<Vec<ApiUser>> for SeatSourceRow {
    fn push_rows(origin: &Origin, data: Vec<ApiUser>, rows: &mut Vec<SeatSourceRow>) {
        for mut user in data {
            let platform_roles =
                (!user.platform_roles.is_empty()).then(|| user.platform_roles.join(","));
            let products = std::mem::take(&mut user.product_access);
            let groups = std::mem::take(&mut user.groups);
            let source = |kind, id| Source {
                kind,
                id,
                product_key: None,
                group_name: None,
                last_active: None,
                platform_roles: platform_roles.clone(),
            };
            for product in products {
                rows.push(SeatSourceRow::new(
                    origin,
                    &user,
                    Source {
                        product_key: product.key,
                        last_active: product.last_active_timestamp,
                        ..source("product", product.id)
                    },
                ));
            }
            for group in groups {
                let id = group
                    .id
                    .strip_prefix(GROUP_ARI_PREFIX)
                    .unwrap_or(&group.id)
                    .to_string();
                rows.push(SeatSourceRow::new(
                    origin,
                    &user,
                    Source {
                        group_name: group.name,
                        ..source("group", id)
                    },
                ));
            }
        }
    }
}
