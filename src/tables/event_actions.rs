//! `event_actions`: the audit log's action catalog (`GET /v1/orgs/{orgId}/event-actions`).

use crate::row;
use serde::Deserialize;

use super::provider::{Fetch, Resource, Scan};
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

row! {
    EventActionRow(origin, action: ApiEventAction) {
        action_id: key = action.id.to_lowercase(),
            "Action key, lowercased to match events.action (the API may send it uppercase)";
        display_name: text = action.attributes.as_ref().and_then(|a| a.display_name.clone()),
            "What admin.atlassian.com calls the action";
        group_display_name: text = action.attributes.and_then(|a| a.group_display_name),
            "The action's group, e.g. Group management";
    }
}

impl Resource for EventActions {
    type Data = Vec<ApiEventAction>;
    type Row = EventActionRow;

    const NAME: &'static str = "event_actions";
    const DESCRIPTION: &'static str = "The audit log's actions, with display names";
    const KEY: &'static [&'static str] = &["action_id"];

    fn fetch(_scan: &Scan) -> Fetch {
        vec![PageRequest::get("/admin/v1/orgs/{orgId}/event-actions")].into()
    }
}
