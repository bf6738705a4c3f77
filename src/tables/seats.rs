//! `seats`: one row per (account, product site) the organization may pay
//! for, a view over `seat_sources` (one users/search pass), what each group
//! grants (`group_role_assignments`: the group listings) and the managed
//! accounts' `access_billable` (v1). No call per user.
//!
//! What is billable comes from the role: the spec marks atlassian/customer,
//! contributor, basic and stakeholder non-billable. A site in the account's
//! `productAccess` is a path of its own: the bulk listing does not name the
//! role behind it (a direct role; or, where the API lists group access there
//! too, the group's). Without a role that says otherwise, `access_billable`
//! decides for a managed account, and otherwise it counts, as every user
//! with product access does. `seats plan` reads each chosen account's roles
//! (one call for each of those accounts only) to find every path it takes.

use std::sync::Arc;

use datafusion::catalog::TableProvider;
use datafusion::datasource::ViewTable;
use datafusion::error::Result;
use datafusion::logical_expr::TableProviderFilterPushDown;
use datafusion::prelude::SessionContext;

use super::group_role_assignments::GroupRoleAssignments;
use super::managed_accounts::ManagedAccounts;
use super::provider::{Column, Resource};
use super::seat_sources::SeatSources;
use super::{Kind, TableInfo};

/// The roles that give a seat on a product, as the spec lists them.
pub const PRODUCT_ROLES: &[&str] = &[
    "atlassian/user",
    "atlassian/admin",
    "atlassian/guest",
    "atlassian/customer",
    "atlassian/contributor",
    "atlassian/basic",
    "atlassian/stakeholder",
];
/// The product roles that count toward the bill (the spec marks the others
/// non-billable).
pub const BILLABLE_ROLES: &[&str] = &["atlassian/user", "atlassian/admin", "atlassian/guest"];
/// The roles that make a group an admin group.
const ADMIN_ROLES: &[&str] = &[
    "atlassian/admin",
    "atlassian/site-admin",
    "atlassian/org-admin",
    "atlassian/user-access-admin",
];

/// Roles (the constants above: no quotes in them) as an SQL list: `'a', 'b'`.
pub fn sql_list(roles: &[&str]) -> String {
    roles
        .iter()
        .map(|r| format!("'{r}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The catalog's entry.
pub fn info() -> TableInfo {
    TableInfo {
        name: "seats",
        description: "One row per (account, product site): billable or not and why, the grant \
                      paths, last activity (one users/search pass and the group listings)",
        columns: columns(),
        filters: &[],
        key: &[],
        labels: &[],
        kind: Kind::View {
            over: &[
                SeatSources::NAME,
                GroupRoleAssignments::NAME,
                ManagedAccounts::NAME,
            ],
            make: view_of,
            pushdown: |_| TableProviderFilterPushDown::Unsupported,
        },
    }
}

/// The view's SQL, over the three sides by their catalog names.
fn sql() -> String {
    let (admin_roles, product_roles, billable_roles) = (
        sql_list(ADMIN_ROLES),
        sql_list(PRODUCT_ROLES),
        sql_list(BILLABLE_ROLES),
    );
    format!(
        "WITH people AS (
           SELECT org_id, account_id, max(email) AS email, max(status) AS status,
                  max(account_status) AS account_status, max(membership_status) AS membership_status,
                  max(claim_status) AS claim_status, max(management_source) AS management_source,
                  max(added_to_org) AS added_to_org, max(platform_roles) AS platform_roles,
                  max(last_active) AS last_active_any
           FROM seat_sources GROUP BY org_id, account_id
         ),
         grants AS (
           -- One read of the group listings: each grant, and whether its
           -- group grants an admin role anywhere.
           SELECT org_id, group_id, resource_id, resource_owner, role, default_role,
                  bool_or(role IN ({admin_roles})) OVER (PARTITION BY org_id, group_id) AS admin_group
           FROM group_role_assignments
         ),
         group_grants AS (
           SELECT s.org_id, s.account_id, s.source_id AS group_id, s.group_name, r.resource_id,
                  r.resource_owner, r.role, r.default_role IS NOT NULL AS default_group, r.admin_group
           FROM seat_sources s
           JOIN grants r ON r.org_id = s.org_id AND r.group_id = s.source_id
           WHERE s.source = 'group' AND r.role IN ({product_roles})
         ),
         paths AS (
           SELECT s.org_id, s.account_id, s.source_id AS site_id, s.product_key,
                  CAST(NULL AS VARCHAR) AS role, 'product access' AS path,
                  CAST(NULL AS VARCHAR) AS group_id, CAST(NULL AS VARCHAR) AS group_name,
                  false AS admin_group
           FROM seat_sources s
           WHERE s.source = 'product'
           UNION ALL
           SELECT org_id, account_id, resource_id, resource_owner, role,
                  CASE WHEN default_group THEN 'default group' ELSE 'group' END,
                  group_id, group_name, admin_group
           FROM group_grants
         ),
         seat AS (
           SELECT p.org_id, p.account_id, p.site_id, max(p.product_key) AS product_key,
                  nullif(array_to_string(array_sort(array_distinct(
                    array_agg(p.role) FILTER (WHERE p.role IS NOT NULL))), ','), '') AS roles,
                  nullif(array_to_string(array_sort(array_distinct(
                    array_agg(p.role) FILTER (WHERE p.role IN ({billable_roles})))), ','), '') AS billable_roles,
                  bool_or(p.path = 'product access') AS via_product_access,
                  string_agg(CASE WHEN p.path = 'product access' THEN p.path
                                  ELSE p.path || ' ' || coalesce(p.group_name, p.group_id) END,
                             '; ' ORDER BY p.path, p.group_name) AS grant_paths,
                  nullif(array_to_string(array_sort(array_distinct(
                    array_agg(p.group_id) FILTER (WHERE p.group_id IS NOT NULL))), ','), '') AS group_ids,
                  -- Aggregates of values never NULL: never NULL, and nullable in
                  -- the plan as in the batches (a snapshot's MemTable checks).
                  bool_or(coalesce(p.role = 'atlassian/admin', false)) AS admin_role,
                  bool_and(p.path <> 'product access' AND p.admin_group) AS only_through_admin_group
           FROM paths p
           GROUP BY p.org_id, p.account_id, p.site_id
         ),
         product_activity AS (
           SELECT org_id, account_id, source_id AS site_id, last_active
           FROM seat_sources WHERE source = 'product'
         )
         SELECT s.org_id, s.account_id, u.email, s.product_key, s.site_id,
           CASE
             WHEN u.status IN ('suspended', 'deactivated', 'for_deletion', 'not_invited') THEN false
             WHEN s.billable_roles IS NOT NULL THEN true
             WHEN NOT s.via_product_access THEN false
             WHEN m.access_billable IS NOT NULL THEN m.access_billable
             ELSE true
           END AS billable,
           -- Utf8 whatever the sides' string type (a snapshot's is Utf8View).
           arrow_cast(CASE
             WHEN u.status IN ('suspended', 'deactivated', 'for_deletion', 'not_invited')
               THEN 'account ' || u.status || ': not billable'
             WHEN s.billable_roles IS NOT NULL THEN 'role ' || s.billable_roles
             WHEN NOT s.via_product_access THEN 'role ' || s.roles || ': not billable'
             WHEN m.access_billable IS NOT NULL
               THEN 'product access; access_billable ' || CAST(m.access_billable AS VARCHAR)
             ELSE 'product access (every user with product access counts)'
           END, 'Utf8') AS billable_reason,
           s.roles, s.grant_paths, s.via_product_access, s.group_ids,
           s.only_through_admin_group,
           pa.last_active, u.last_active_any,
           u.last_active_any IS NULL AS invited_never_active,
           u.platform_roles IS NOT NULL OR s.admin_role AS admin,
           u.status, u.account_status, u.membership_status, u.claim_status, u.management_source,
           u.added_to_org, m.access_billable
         FROM seat s
         JOIN people u ON u.org_id = s.org_id AND u.account_id = s.account_id
         LEFT JOIN product_activity pa
           ON pa.org_id = s.org_id AND pa.account_id = s.account_id AND pa.site_id = s.site_id
         LEFT JOIN managed_accounts m ON m.org_id = s.org_id AND m.account_id = s.account_id"
    )
}

/// The view's plan over its sides (live, or a snapshot's), in `over`'s order.
fn view_of(sides: Vec<Arc<dyn TableProvider>>) -> Result<Arc<dyn TableProvider>> {
    let ctx = SessionContext::new();
    let names = [
        SeatSources::NAME,
        GroupRoleAssignments::NAME,
        ManagedAccounts::NAME,
    ];
    if sides.len() != names.len() {
        return Err(datafusion::error::DataFusionError::Internal(
            "seats: three sides".into(),
        ));
    }
    for (name, side) in names.into_iter().zip(sides) {
        ctx.register_table(name, side)?;
    }
    let sql = sql();
    let plan = futures::executor::block_on(ctx.state().create_logical_plan(&sql))?;
    Ok(Arc::new(ViewTable::new(plan, Some(sql))))
}

fn columns() -> Vec<Column> {
    vec![
        Column::org_id(),
        Column::key("account_id", "The account holding the seat (joins users.account_id)"),
        Column::text("email", "The account's email; NULL when hidden"),
        Column::text("product_key", "Product key, e.g. jira-software, confluence"),
        Column::key("site_id", "The product site's ARI (joins workspaces.workspace_id)"),
        Column::flag("billable", "Whether the seat counts toward the bill"),
        Column::text("billable_reason", "Why: the role, the account's status, or access_billable"),
        Column::text(
            "roles",
            "Product roles its groups grant on the site, comma-joined; NULL when only productAccess (which names no role) lists it",
        ),
        Column::text(
            "grant_paths",
            "What gives the seat, '; '-joined: product access (the site is in the account's productAccess: a direct role, not named in bulk), group NAME, default group NAME",
        ),
        Column::flag("via_product_access", "The site is in the account's productAccess (users/search)"),
        Column::text("group_ids", "The groups that give it, comma-joined bare ids"),
        Column::flag(
            "only_through_admin_group",
            "Held only through groups that also grant an admin role: removing the membership takes the admin role too",
        ),
        Column::time("last_active", "Last activity on this product site; NULL if never or unknown"),
        Column::time("last_active_any", "Last activity on any product; NULL if never or unknown"),
        Column::flag("invited_never_active", "Added to the organization (invited or synced) and never active on any product"),
        Column::flag("admin", "Holds a platform role (org, site or user-access admin) or the product's admin role"),
        Column::text("status", "active, suspended, not_invited, deactivated or for_deletion"),
        Column::text("account_status", "active, inactive or closed"),
        Column::text("membership_status", "active, suspended or no_membership"),
        Column::text("claim_status", "managed or unmanaged"),
        Column::text("management_source", "invited, synced, or NULL"),
        Column::time("added_to_org", "When the account was added to the organization"),
        Column::flag("access_billable", "v1 managed accounts' access_billable; NULL for an unmanaged account"),
    ]
}
