//! The tables: one file per Admin API resource, one generic provider.

mod directories;
mod domains;
mod events;
mod filters;
mod group_members;
mod groups;
mod orgs;
mod policies;
mod provider;
mod users;
mod workspaces;

use std::sync::Arc;

use datafusion::error::Result;
use datafusion::prelude::SessionContext;

pub use directories::Directories;
pub use domains::Domains;
pub use events::Events;
pub use group_members::GroupMembers;
pub use groups::Groups;
pub use orgs::Orgs;
pub use policies::Policies;
pub use provider::{
    ApiTable, Column, FanOut, Fetch, Origin, Parents, Resource, Scan, decode_page, schema_of,
};
pub use users::Users;
pub use workspaces::Workspaces;

use crate::api::Client;

fn register<R: Resource>(ctx: &SessionContext, client: &Client) -> Result<()> {
    ctx.register_table(R::NAME, Arc::new(ApiTable::<R>::new(client.clone())))?;
    Ok(())
}

/// Register every table against one API client.
pub fn register_all(ctx: &SessionContext, client: &Client) -> Result<()> {
    register::<Orgs>(ctx, client)?;
    register::<Domains>(ctx, client)?;
    register::<Directories>(ctx, client)?;
    register::<Users>(ctx, client)?;
    register::<Groups>(ctx, client)?;
    register::<GroupMembers>(ctx, client)?;
    register::<Workspaces>(ctx, client)?;
    register::<Events>(ctx, client)?;
    register::<Policies>(ctx, client)?;
    Ok(())
}
