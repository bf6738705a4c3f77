//! `event_actions`: the audit log's action catalog (`GET /v1/orgs/{orgId}/event-actions`).

use serde::{Deserialize, Serialize};

use super::provider::{Column, Fetch, Origin, Resource, Scan};
use crate::api::PageRequest;

pub struct EventActions;

#[derive(Debug, Deserialize)]
pub struct ApiEventAction {
    id: String,
    attributes: Option<ActionAttributes>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ActionAttributes {
    display_name: Option<String>,
    group_display_name: Option<String>,
}

#[derive(Serialize)]
pub struct EventActionRow {
    org_id: String,
    action_id: String,
    display_name: Option<String>,
    group_display_name: Option<String>,
}

impl Resource for EventActions {
    type Data = Vec<ApiEventAction>;
    type Row = EventActionRow;

    const NAME: &'static str = "event_actions";
    const DESCRIPTION: &'static str = "The audit log's actions, with display names";
    const KEY: &'static [&'static str] = &["action_id"];

    fn columns() -> Vec<Column> {
        vec![
            Column::org_id(),
            Column::key(
                "action_id",
                "Action key, lowercased to match events.action (the API may send it uppercase)",
            ),
            Column::text("display_name", "What admin.atlassian.com calls the action"),
            Column::text(
                "group_display_name",
                "The action's group, e.g. Group management",
            ),
        ]
    }

    fn fetch(_scan: &Scan) -> Fetch {
        vec![PageRequest::get("/admin/v1/orgs/{orgId}/event-actions")].into()
    }

    fn push_rows(origin: &Origin, data: Vec<ApiEventAction>, rows: &mut Vec<EventActionRow>) {
        rows.extend(data.into_iter().map(|a| {
            let (display_name, group_display_name) = a
                .attributes
                .map_or((None, None), |x| (x.display_name, x.group_display_name));
            EventActionRow {
                org_id: origin.org_id.to_string(),
                action_id: a.id.to_lowercase(),
                display_name,
                group_display_name,
            }
        }));
    }
}
