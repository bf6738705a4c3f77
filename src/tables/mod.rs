//! The tables: one file per Admin API resource, one generic provider, and
//! the catalog below, the one place a table is listed. Registration, `\d`,
//! export, snapshots and `diff` all read the catalog and ask a table's kind.

// Public for the unit tests in tests/it/unit.
pub mod filters;
pub mod provider;

use std::sync::Arc;

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::TableProvider;
use datafusion::error::Result;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::prelude::SessionContext;

pub use filters::{Filter, Shape};
pub use provider::{
    ApiTable, Column, FanOut, Fetch, FromPage, Origin, PageShape, Parents, Resource, Scan,
    TableRow, decode_page, schema_from, schema_of,
};

use crate::api::Orgs;

/// The catalog: a line per table, naming its file and what it is. The
/// module of each line is the table's file.
macro_rules! catalog {
    ($($module:ident => $info:expr,)*) => {
        $(pub mod $module;)*

        /// Every table and view, in the order the docs list them.
        pub fn catalog() -> Vec<TableInfo> {
            vec![$($info,)*]
        }
    };
}

catalog! {
    orgs => api::<orgs::Orgs>(),
    domains => api::<domains::Domains>(),
    directories => api::<directories::Directories>(),
    users => api::<users::Users>(),
    user_platform_roles => api::<user_platform_roles::UserPlatformRoles>(),
    user_product_access => api::<user_product_access::UserProductAccess>(),
    group_members => api::<group_members::GroupMembers>(),
    groups => api::<groups::Groups>(),
    managed_accounts => api::<managed_accounts::ManagedAccounts>(),
    managed_account_product_access => api::<managed_account_product_access::ManagedAccountProductAccess>(),
    workspaces => api::<workspaces::Workspaces>(),
    user_role_assignments => api::<user_role_assignments::UserRoleAssignments>(),
    group_role_assignments => api::<group_role_assignments::GroupRoleAssignments>(),
    role_assignments => role_assignments::info(),
    seat_sources => api::<seat_sources::SeatSources>(),
    org_user_stats => api::<org_user_stats::OrgUserStats>(),
    seats => seats::info(),
    user_last_active => api::<user_last_active::UserLastActive>(),
    events => api::<events::Events>(),
    event_context => api::<event_context::EventContext>(),
    event_actions => api::<event_actions::EventActions>(),
    policies => api::<policies::Policies>(),
    policy_resources => api::<policy_resources::PolicyResources>(),
    api_tokens => api::<api_tokens::ApiTokens>(),
    api_keys => api::<api_keys::ApiKeys>(),
    service_accounts => api::<service_accounts::ServiceAccounts>(),
    service_account_tokens => api::<service_account_tokens::ServiceAccountTokens>(),
    service_account_oauth_clients => api::<service_account_oauth_clients::ServiceAccountOauthClients>(),
    oauth_clients => api::<oauth_clients::OauthClients>(),
    user_auth_policies => api::<user_auth_policies::UserAuthPolicies>(),
    user_details => api::<user_details::UserDetails>(),
    scim_users => api::<scim_users::ScimUsers>(),
    scim_groups => api::<scim_groups::ScimGroups>(),
    scim_group_members => api::<scim_group_members::ScimGroupMembers>(),
    scim_links => api::<scim_links::ScimLinks>(),
    orgsql_requests => orgsql_requests::info(),
    orgsql_listings => orgsql_listings::info(),
    grants_history => grants_history::info(),
    history_coverage => history_coverage::info(),
}

/// Tables whose answer's shape no captured response confirms (a public
/// document or client names the endpoint; its fields are as documented, not
/// as seen): `\d` says what is unverified, so nobody takes them for more.
/// Append one line per such table.
pub const UNVERIFIED: &[(&str, &str)] = &[
    (
        "service_accounts",
        "the vendor marks the endpoint Experimental; the fields are the issue's list, \
         created_at is a guess, and the scope asked (read:tokens:admin) is assumed",
    ),
    (
        "service_account_tokens",
        "fields assumed as api_tokens' plus serviceAccountId; no captured answer",
    ),
    (
        "service_account_oauth_clients",
        "field names (clientId, serviceAccountId, scopes, expiresAt, lastActiveAt) assumed; \
         no captured answer",
    ),
    (
        "oauth_clients",
        "the path (.../oauth-clients) and the fields are assumed; no captured answer",
    ),
    (
        "user_auth_policies",
        "the request body ({\"userIds\": [...]}), the batch size (100) and the answer's \
         fields are assumed; only the path is in public clients",
    ),
    (
        "user_details",
        "deactivated_on: whether deactivatedOn is a time or a date, and when it is set, \
         is not confirmed by a captured answer",
    ),
    (
        "scim_users",
        "the ListResponse and user fields are the SCIM spec's (2022) and a client library's \
         example (go-atlassian), not a captured answer; atlassianAccountId is the link to an account",
    ),
    (
        "scim_groups",
        "the group fields are the SCIM spec's (2022) and a client library's example, not a \
         captured answer",
    ),
    (
        "scim_group_members",
        "members[] of a group in the Groups listing is the SCIM spec's; no captured answer shows \
         whether the listing carries them (else a group reads as empty)",
    ),
    (
        "scim_links",
        "the endpoint and its answer ({\"scimLinks\": [{scimUserId, atlassianAccountId, orgId, \
         directoryId}]}) are a client library's (JIRAJS), newer than the saved SCIM spec; no \
         captured answer",
    ),
];

/// What is unverified of `table`'s shape, if anything.
pub fn unverified(table: &str) -> Option<&'static str> {
    UNVERIFIED
        .iter()
        .find(|(name, _)| *name == table)
        .map(|(_, what)| *what)
}

/// What the catalog knows of a table: what `\d` shows, and how to make it.
pub struct TableInfo {
    pub name: &'static str,
    pub description: &'static str,
    pub columns: Vec<Column>,
    /// The filters the API applies (`\d` lists them).
    pub filters: &'static [Filter],
    /// The columns that identify a row (empty: not compared by `orgsql diff`).
    pub key: &'static [&'static str],
    /// What `orgsql diff` shows beside the key so a person can read it.
    pub labels: &'static [Label],
    pub kind: Kind,
}

/// A readable name for a row, shown by `orgsql diff` beside its key (which
/// is often only ids): a person's email, a group's or a site's name.
#[derive(Debug, Clone, Copy)]
pub struct Label {
    /// Its name in the diff's `labels`.
    pub name: &'static str,
    pub from: LabelFrom,
}

/// Where a label is read.
#[derive(Debug, Clone, Copy)]
pub enum LabelFrom {
    /// A column of the row itself.
    Own(&'static str),
    /// `column` of the row of `table`, in the same organization, whose
    /// `key` equals this row's `by` (NULL when there is none).
    Lookup {
        by: &'static str,
        table: &'static str,
        key: &'static str,
        column: &'static str,
    },
}

impl Label {
    /// The row's own `column`, as `name`.
    pub const fn own(name: &'static str, column: &'static str) -> Self {
        Label {
            name,
            from: LabelFrom::Own(column),
        }
    }

    /// A person's email, by this row's `by` (an account id).
    pub const fn email(by: &'static str) -> Self {
        Self::lookup("email", by, "users", "account_id", "email")
    }

    /// A site's or workspace's name (`acme`), by this row's `by` (its ARI).
    /// Its name rather than its host: a Bitbucket workspace has no host.
    pub const fn workspace(by: &'static str) -> Self {
        Self::lookup("workspace", by, "workspaces", "workspace_id", "name")
    }

    /// `column` of `table`'s row whose `key` is this row's `by`, as `name`.
    pub const fn lookup(
        name: &'static str,
        by: &'static str,
        table: &'static str,
        key: &'static str,
        column: &'static str,
    ) -> Self {
        Label {
            name,
            from: LabelFrom::Lookup {
                by,
                table,
                key,
                column,
            },
        }
    }
}

/// Makes a view from its sides.
pub type MakeView = fn(Vec<Arc<dyn TableProvider>>) -> Result<Arc<dyn TableProvider>>;

/// What kind of table it is, and how it is made.
pub enum Kind {
    /// Read from the Admin API (`fan_out`: what it calls once for, "user"
    /// or "group"); exported and compared by `diff`.
    Api {
        fan_out: Option<&'static str>,
        make: fn(&Orgs) -> Arc<dyn TableProvider>,
        /// One API page as its rows (the decoder a live scan uses).
        decode: fn(&str, &[u8]) -> Result<Option<RecordBatch>>,
    },
    /// Part of the audit log: an append-only history, exported from the
    /// polling API in one pass with the others of its kind, partitioned by
    /// month; left out of `diff`.
    AuditLog {
        make: fn(&Orgs) -> Arc<dyn TableProvider>,
        decode: fn(&str, &[u8]) -> Result<Option<RecordBatch>>,
    },
    /// A view over other tables, made from them (live or a snapshot's), in
    /// the order of `over`. Not exported: a snapshot rebuilds it.
    View {
        over: &'static [&'static str],
        make: MakeView,
        /// How a filter on the view reaches the API through its sides.
        pushdown: fn(&Expr) -> TableProviderFilterPushDown,
    },
    /// This session's own (`orgsql_requests`, `orgsql_listings`): neither
    /// exported nor in a snapshot.
    Session {
        make: fn(&Orgs) -> Arc<dyn TableProvider>,
    },
}

impl TableInfo {
    /// How a filter on this table reaches the API.
    pub fn pushdown(&self, filter: &Expr) -> TableProviderFilterPushDown {
        match &self.kind {
            Kind::View { pushdown, .. } => pushdown(filter),
            Kind::Session { .. } => TableProviderFilterPushDown::Unsupported,
            Kind::Api { .. } | Kind::AuditLog { .. } => filters::pushdown(self.filters, filter),
        }
    }

    /// What it calls the API once for, if it fans out.
    pub fn fan_out(&self) -> Option<&'static str> {
        match &self.kind {
            Kind::Api { fan_out, .. } => *fan_out,
            _ => None,
        }
    }

    /// Written by `orgsql export` (views and the session's table are not).
    pub fn exported(&self) -> bool {
        matches!(self.kind, Kind::Api { .. } | Kind::AuditLog { .. })
    }

    /// Part of the audit log.
    pub fn audit_log(&self) -> bool {
        matches!(self.kind, Kind::AuditLog { .. })
    }
}

/// A table read from the Admin API.
fn api<R: Resource>() -> TableInfo {
    let make =
        |orgs: &Orgs| -> Arc<dyn TableProvider> { Arc::new(ApiTable::<R>::new(orgs.clone())) };
    let decode = |org_id: &str, body: &[u8]| decode_page::<R>(org_id, body);
    TableInfo {
        name: R::NAME,
        description: R::DESCRIPTION,
        columns: R::columns(),
        filters: R::FILTERS,
        key: R::KEY,
        labels: R::LABELS,
        kind: if R::HISTORY {
            Kind::AuditLog { make, decode }
        } else {
            Kind::Api {
                fan_out: R::FAN_OUT,
                make,
                decode,
            }
        },
    }
}

/// The catalog's entry named `name`.
pub fn find(name: &str) -> Option<TableInfo> {
    catalog().into_iter().find(|t| t.name == name)
}

/// A table that exists only inside a poll of `orgsql watch`, for its rules:
/// what the poll read, with the columns of a catalog table (and decoded by
/// it). No session registers it; `\d` describes it.
pub struct WatchTable {
    pub name: &'static str,
    /// The catalog table whose columns (and decoder) it has.
    pub columns_of: &'static str,
    pub description: &'static str,
}

pub const WATCH_TABLES: [WatchTable; 4] = [
    WatchTable {
        name: "new_events",
        columns_of: "events",
        description: "The events one poll read from /events-stream (after the watch's cursor)",
    },
    WatchTable {
        name: "new_event_context",
        columns_of: "event_context",
        description: "The objects the events of one poll name (as event_context does for events)",
    },
    WatchTable {
        name: "recent_events",
        columns_of: "events",
        description: "The events of this poll and of earlier ones processed up to 24 hours before the newest",
    },
    WatchTable {
        name: "recent_event_context",
        columns_of: "event_context",
        description: "The objects the recent events name (as event_context does for events)",
    },
];

/// The watch table named `name` (any case).
pub fn watch_table(name: &str) -> Option<&'static WatchTable> {
    WATCH_TABLES
        .iter()
        .find(|t| t.name.eq_ignore_ascii_case(name))
}

/// Register every table, then every view (over the tables just registered).
pub fn register_all(ctx: &SessionContext, orgs: &Orgs) -> Result<()> {
    let catalog = catalog();
    for table in &catalog {
        match &table.kind {
            Kind::Api { make, .. } | Kind::AuditLog { make, .. } | Kind::Session { make } => {
                ctx.register_table(table.name, make(orgs))?;
            }
            Kind::View { .. } => {}
        }
    }
    register_views(ctx, None, &catalog, |_| true)
}

/// Register the views whose tables `available` says are there, in `schema`
/// (a snapshot attached as a schema) or the default one.
pub fn register_views(
    ctx: &SessionContext,
    schema: Option<&str>,
    catalog: &[TableInfo],
    available: impl Fn(&str) -> bool,
) -> Result<()> {
    let qualified = |table: &str| match schema {
        Some(schema) => datafusion::common::TableReference::partial(schema, table),
        None => datafusion::common::TableReference::bare(table),
    };
    for table in catalog {
        let Kind::View { over, make, .. } = &table.kind else {
            continue;
        };
        if !over.iter().all(|t| available(t)) {
            continue;
        }
        let mut sides = Vec::new();
        for side in *over {
            sides.push(futures::executor::block_on(
                ctx.table_provider(qualified(side)),
            )?);
        }
        ctx.register_table(qualified(table.name), make(sides)?)?;
    }
    Ok(())
}
