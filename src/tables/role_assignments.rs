//! `role_assignments`: a view over `user_role_assignments` and
//! `group_role_assignments`, one row per (principal, resource, role). Filters
//! on principal_id reach each side as account_id or group_id, so asking for
//! one principal costs one call per side.

use std::sync::Arc;

use datafusion::catalog::TableProvider;
use datafusion::datasource::{ViewTable, provider_as_source};
use datafusion::error::Result;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::logical_expr::{Expr, LogicalPlanBuilder, TableProviderFilterPushDown};
use datafusion::prelude::{col, lit};

use super::group_role_assignments::GroupRoleAssignments;
use super::provider::{Column, Resource};
use super::user_role_assignments::UserRoleAssignments;
use super::{Kind, TableInfo};

/// The catalog's entry: a view over the two role-assignment tables.
pub fn info() -> TableInfo {
    TableInfo {
        name: "role_assignments",
        description: "Every role held on every resource, by users directly or through groups",
        columns: columns(),
        filters: &[],
        key: &[],
        labels: &[],
        kind: Kind::View {
            over: &[UserRoleAssignments::NAME, GroupRoleAssignments::NAME],
            make: view_of,
            pushdown,
        },
    }
}

/// The view's plan over the two tables (live, or a snapshot's), in that
/// order: each side renamed to the principal columns, then unioned.
fn view_of(sides: Vec<Arc<dyn TableProvider>>) -> Result<Arc<dyn TableProvider>> {
    let [users, groups]: [Arc<dyn TableProvider>; 2] = sides.try_into().map_err(|_| {
        datafusion::error::DataFusionError::Internal("role_assignments: two sides".into())
    })?;
    let side = |table: &str, provider: Arc<dyn TableProvider>, kind: &str, id: &str| {
        LogicalPlanBuilder::scan(table, provider_as_source(provider), None)?
            .project(vec![
                col("org_id"),
                lit(kind).alias("principal_type"),
                col(id).alias("principal_id"),
                col("resource_id"),
                col("resource_owner"),
                col("role"),
            ])?
            .build()
    };
    let users = side(UserRoleAssignments::NAME, users, "user", "account_id")?;
    let groups = side(GroupRoleAssignments::NAME, groups, "group", "group_id")?;
    let plan = LogicalPlanBuilder::from(users).union(groups)?.build()?;
    Ok(Arc::new(ViewTable::new(plan, None)))
}

/// The view's filters reach both sides, `principal_id` as `account_id` on
/// one and `group_id` on the other; a filter is as good as its weaker side.
fn pushdown(filter: &Expr) -> TableProviderFilterPushDown {
    use TableProviderFilterPushDown::{Exact, Inexact, Unsupported};
    let side = |id: &str| {
        filter
            .clone()
            .transform(|e| {
                Ok(match e {
                    Expr::Column(c) if c.name == "principal_id" => Transformed::yes(col(id)),
                    other => Transformed::no(other),
                })
            })
            .map(|t| t.data)
    };
    let (Ok(user), Ok(group)) = (side("account_id"), side("group_id")) else {
        return Unsupported;
    };
    match (
        UserRoleAssignments::pushdown(&user),
        GroupRoleAssignments::pushdown(&group),
    ) {
        (Unsupported, _) | (_, Unsupported) => Unsupported,
        (Exact, Exact) => Exact,
        _ => Inexact,
    }
}

fn columns() -> Vec<Column> {
    vec![
        Column::org_id(),
        Column::key("principal_type", "user or group"),
        Column::key("principal_id", "The user's account id or the group's id"),
        Column::key(
            "resource_id",
            "Resource ARI: the organization or a product site",
        ),
        Column::text(
            "resource_owner",
            "Product that owns the resource; platform for the organization",
        ),
        Column::key("role", "Role id, e.g. atlassian/org-admin"),
    ]
}
