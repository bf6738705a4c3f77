//! The tables: one file per Admin API resource, one generic provider.

mod directories;
mod domains;
mod event_actions;
mod event_context;
mod events;
mod filters;
mod group_members;
mod group_role_assignments;
mod groups;
mod managed_account_product_access;
mod managed_accounts;
mod orgs;
mod orgsql_requests;
mod policies;
mod policy_resources;
mod provider;
pub mod role_assignments;
mod user_last_active;
mod user_platform_roles;
mod user_product_access;
mod user_role_assignments;
mod users;
mod workspaces;

use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::error::Result;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::prelude::{SessionContext, col};

pub use directories::Directories;
pub use domains::Domains;
pub use event_actions::EventActions;
pub use event_context::EventContext;
pub use events::Events;
pub use group_members::GroupMembers;
pub use group_role_assignments::GroupRoleAssignments;
pub use groups::Groups;
pub use managed_account_product_access::ManagedAccountProductAccess;
pub use managed_accounts::ManagedAccounts;
pub use orgs::Orgs;
pub use policies::Policies;
pub use policy_resources::PolicyResources;
pub use provider::{
    ApiTable, Column, FanOut, Fetch, Origin, Parents, Resource, Scan, TableRow, decode_page,
    schema_of,
};
pub use user_last_active::UserLastActive;
pub use user_platform_roles::UserPlatformRoles;
pub use user_product_access::UserProductAccess;
pub use user_role_assignments::UserRoleAssignments;
pub use users::Users;
pub use workspaces::Workspaces;

use crate::api::Client;

/// A table's documentation: what `\d` shows and what the README lists.
pub struct TableInfo {
    pub name: &'static str,
    pub description: &'static str,
    pub columns: Vec<Column>,
    /// What it calls the API once for ("user", "group"), if it fans out.
    pub fan_out: Option<&'static str>,
    /// How a filter on it reaches the API.
    pub pushdown: fn(&Expr) -> TableProviderFilterPushDown,
    /// The columns that identify a row (empty: not compared by `orgsql diff`).
    pub key: &'static [&'static str],
    /// An append-only history, left out of `orgsql diff`.
    pub history: bool,
}

fn info<R: Resource>() -> TableInfo {
    TableInfo {
        name: R::NAME,
        description: R::DESCRIPTION,
        columns: R::columns(),
        fan_out: R::FAN_OUT,
        pushdown: R::pushdown,
        key: R::KEY,
        history: R::HISTORY,
    }
}

/// For tables that are not API listings: nothing reaches the API directly.
fn no_pushdown(_filter: &Expr) -> TableProviderFilterPushDown {
    TableProviderFilterPushDown::Unsupported
}

/// The view's filters reach both sides, `principal_id` as `account_id` on
/// one and `group_id` on the other; a filter is as good as its weaker side.
fn role_view_pushdown(filter: &Expr) -> TableProviderFilterPushDown {
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

/// Every table and view, in the order the docs list them.
pub fn catalog() -> Vec<TableInfo> {
    vec![
        info::<Orgs>(),
        info::<Domains>(),
        info::<Directories>(),
        info::<Users>(),
        info::<UserPlatformRoles>(),
        info::<UserProductAccess>(),
        info::<GroupMembers>(),
        info::<Groups>(),
        info::<ManagedAccounts>(),
        info::<ManagedAccountProductAccess>(),
        info::<Workspaces>(),
        info::<UserRoleAssignments>(),
        info::<GroupRoleAssignments>(),
        TableInfo {
            name: role_assignments::NAME,
            description: role_assignments::DESCRIPTION,
            columns: role_assignments::columns(),
            fan_out: Some("user and group"),
            pushdown: role_view_pushdown,
            key: &[],
            history: false,
        },
        info::<UserLastActive>(),
        info::<Events>(),
        info::<EventContext>(),
        info::<EventActions>(),
        info::<Policies>(),
        info::<PolicyResources>(),
        TableInfo {
            name: orgsql_requests::NAME,
            description: orgsql_requests::DESCRIPTION,
            columns: orgsql_requests::columns(),
            fan_out: None,
            pushdown: no_pushdown,
            key: &[],
            history: true,
        },
    ]
}

fn register<R: Resource>(ctx: &SessionContext, client: &Client) -> Result<()> {
    ctx.register_table(R::NAME, Arc::new(ApiTable::<R>::new(client.clone())))?;
    Ok(())
}

/// Register every table and view against one API client.
pub fn register_all(ctx: &SessionContext, client: &Client) -> Result<()> {
    register::<Orgs>(ctx, client)?;
    register::<Domains>(ctx, client)?;
    register::<Directories>(ctx, client)?;
    register::<Users>(ctx, client)?;
    register::<UserPlatformRoles>(ctx, client)?;
    register::<UserProductAccess>(ctx, client)?;
    register::<GroupMembers>(ctx, client)?;
    register::<Groups>(ctx, client)?;
    register::<ManagedAccounts>(ctx, client)?;
    register::<ManagedAccountProductAccess>(ctx, client)?;
    register::<Workspaces>(ctx, client)?;
    register::<UserRoleAssignments>(ctx, client)?;
    register::<GroupRoleAssignments>(ctx, client)?;
    register::<UserLastActive>(ctx, client)?;
    register::<Events>(ctx, client)?;
    register::<EventContext>(ctx, client)?;
    register::<EventActions>(ctx, client)?;
    register::<Policies>(ctx, client)?;
    register::<PolicyResources>(ctx, client)?;
    ctx.register_table(
        orgsql_requests::NAME,
        Arc::new(orgsql_requests::RequestsTable::new(client.clone())),
    )?;
    ctx.register_table(role_assignments::NAME, role_assignments::view(client)?)?;
    Ok(())
}
