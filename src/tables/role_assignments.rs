//! `role_assignments`: a view over `user_role_assignments` and
//! `group_role_assignments`, one row per (principal, resource, role). Filters
//! on principal_id reach each side as account_id or group_id, so asking for
//! one principal costs one call per side.

use std::sync::Arc;

use datafusion::catalog::TableProvider;
use datafusion::datasource::{ViewTable, provider_as_source};
use datafusion::error::Result;
use datafusion::logical_expr::LogicalPlanBuilder;
use datafusion::prelude::{col, lit};

use super::group_role_assignments::GroupRoleAssignments;
use super::provider::{ApiTable, Column, Resource};
use super::user_role_assignments::UserRoleAssignments;
use crate::api::Client;

pub const NAME: &str = "role_assignments";
pub const DESCRIPTION: &str =
    "Every role held on every resource, by users directly or through groups";

/// The view over the live tables.
pub fn view(client: &Client) -> Result<Arc<dyn TableProvider>> {
    view_of(
        Arc::new(ApiTable::<UserRoleAssignments>::new(client.clone())),
        Arc::new(ApiTable::<GroupRoleAssignments>::new(client.clone())),
    )
}

/// The view's plan over any two tables with the sides' columns (live, or a
/// snapshot's): each side renamed to the principal columns, then unioned.
pub fn view_of(
    users: Arc<dyn TableProvider>,
    groups: Arc<dyn TableProvider>,
) -> Result<Arc<dyn TableProvider>> {
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

pub fn columns() -> Vec<Column> {
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
