//! `check --as-of TIME`: the controls about grants judged on the grants held
//! at TIME, replayed from the audit log (`grants_at`); every other control
//! is listed as not evaluated, with why, never judged on today's data.

use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use datafusion::error::Result;
use datafusion::prelude::SessionContext;

use super::{Checked, Control};
use crate::tables::grants_history::{DataAsOf, HistoryLogs};

/// The table a control about grants reads, replaced by its state at TIME.
const GRANTS: &str = "user_role_assignments";

/// A context in which `user_role_assignments` is `grants_at(at)` (in its
/// columns), `now()` is `at`, and every other table is the session's own.
/// `data_time` is when the session's data is as of: the history ends there.
pub async fn context_at(
    ctx: &SessionContext,
    at: DateTime<Utc>,
    data_time: DateTime<Utc>,
) -> Result<SessionContext> {
    let past = crate::bare_context();
    crate::clock::fix(&past, at);
    past.state_ref()
        .write()
        .config_mut()
        .set_extension(Arc::new(DataAsOf(data_time)));
    // The history reads what the session's does (`--history`'s exports).
    if let Some(logs) = ctx.state().config().get_extension::<HistoryLogs>() {
        past.state_ref().write().config_mut().set_extension(logs);
    }
    let names = ctx
        .catalog("datafusion")
        .and_then(|c| c.schema("public"))
        .map(|s| s.table_names())
        .unwrap_or_default();
    for name in names.iter().filter(|n| *n != GRANTS) {
        past.register_table(name.as_str(), ctx.table_provider(name.as_str()).await?)?;
    }
    let at = crate::sql::literal(&at.to_rfc3339_opts(SecondsFormat::Micros, true));
    past.sql(&format!(
        "CREATE VIEW {GRANTS} AS \
         SELECT g.org_id, g.account_id, CAST(NULL AS VARCHAR) AS directory_id, g.resource_id, \
           CASE WHEN g.resource_id LIKE 'ari:cloud:platform::org/%' THEN 'platform' \
                ELSE w.type_key END AS resource_owner, \
           g.role, g.assignment_methods, CAST(NULL AS VARCHAR) AS user_directory_status \
         FROM grants_at({at}) g \
         LEFT JOIN workspaces w ON w.org_id = g.org_id AND w.workspace_id = g.resource_id"
    ))
    .await?;
    Ok(past)
}

/// Run `controls` as of `at`: those about grants in `past` (`context_at`),
/// the others listed as not evaluated. The results keep the controls' order.
pub async fn run_controls_at(
    past: &SessionContext,
    at: DateTime<Utc>,
    controls: Vec<Control>,
    values: &std::collections::BTreeMap<String, String>,
) -> Vec<Checked> {
    let (judged, not): (Vec<Control>, Vec<Control>) =
        controls.iter().cloned().partition(|c| c.as_of_grants);
    let mut results = super::run_controls(past, judged, values).await;
    let when = at.to_rfc3339_opts(SecondsFormat::Secs, true);
    for control in not {
        results.push(Checked::skipped(
            control,
            values,
            format!(
                "not evaluated as of {when}: it judges state the audit log does not keep \
                 (only grants are replayed), and today's would be judged in its place"
            ),
        ));
    }
    let place = |c: &Checked| controls.iter().position(|k| k.id == c.control.id);
    results.sort_by_key(place);
    results
}
