//! orgsql: an Atlassian Cloud organization as SQL tables on Apache DataFusion.

pub mod cli;
pub mod clock;
pub mod config;
pub mod error;
pub mod history;
pub mod idp;
pub mod roster;
pub mod session;
pub mod sheet;
pub mod snapshot;
pub mod sql;
pub mod storage;
pub mod tables;
mod yielding;

// The Admin API client, its emulator and terminal-safe text: a crate of their
// own (crates/admin-api) that compiles beside DataFusion; here at the paths
// they always had.
pub use orgsql_admin_api::{api, emulator, text};

use datafusion::error::Result;
use datafusion::execution::SessionStateBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};

use api::Orgs;

/// A DataFusion context with every table registered, holding the rows of
/// every organization given (a `&Client` is one). An organization with a
/// fixed clock (the demo's) fixes the context's.
pub fn context(orgs: impl Into<Orgs>) -> Result<SessionContext> {
    let orgs = orgs.into();
    let ctx = bare_context();
    if let Some(at) = orgs.first().clock() {
        clock::fix(&ctx, at);
    }
    tables::register_all(&ctx, &orgs)?;
    Ok(ctx)
}

/// A DataFusion context with orgsql's settings and no tables yet.
pub fn bare_context() -> SessionContext {
    let config = SessionConfig::new()
        .with_information_schema(true)
        // A round-robin repartition above a scan polls it eagerly and would page
        // through the whole listing even when a LIMIT needs one page.
        .set_bool("datafusion.optimizer.enable_round_robin_repartition", false)
        // Snapshots read back as the live tables' types (Utf8, not Utf8View).
        .set_bool(
            "datafusion.execution.parquet.schema_force_view_types",
            false,
        );
    // Bucket URLs work wherever a path does: a store is made on first use.
    let runtime = datafusion::execution::runtime_env::RuntimeEnvBuilder::new()
        .with_object_store_registry(std::sync::Arc::new(storage::Stores::default()))
        .build_arc()
        .unwrap_or_default();
    let state = SessionStateBuilder::new()
        .with_config(config)
        .with_runtime_env(runtime)
        .with_default_features()
        .with_physical_optimizer_rule(std::sync::Arc::new(yielding::YieldingJoins))
        .build();
    // A quoted path to a Parquet, CSV or NDJSON file is a table, as in
    // datafusion-cli and duckdb: `SELECT * FROM 'week.parquet'`.
    let ctx = SessionContext::new_with_state(state).enable_url_table();
    // grants_at(time), grants_during(from, to): over grants_history.
    tables::grants_history::register(&ctx);
    ctx
}
