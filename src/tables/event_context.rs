//! `event_context`: the objects each audit event names, one row per element
//! of its `context[]` (what it acted on) and `container[]` (where). Read from
//! the same `/events` listing; it carries the event's time, action and actor
//! so that filters on them reach the API as they do on `events`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::events::{ApiEvent, EVENT_FILTERS, events_requests};
use super::filters::Filter;
use super::provider::{Column, Fetch, Origin, Resource, Scan};

pub struct EventContext;

#[derive(Debug, Deserialize)]
struct ApiObject {
    id: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    attributes: Value,
}

#[derive(Serialize)]
pub struct EventContextRow {
    org_id: String,
    event_id: String,
    role: &'static str,
    object_id: Option<String>,
    object_type: Option<String>,
    name: Option<String>,
    attributes: Option<String>,
    time: Option<String>,
    action: Option<String>,
    actor_id: Option<String>,
}

impl Resource for EventContext {
    type Data = Vec<ApiEvent>;
    type Row = EventContextRow;

    const NAME: &'static str = "event_context";
    const HISTORY: bool = true;
    const FILTERS: &'static [Filter] = EVENT_FILTERS;
    const DESCRIPTION: &'static str =
        "Objects audit events name: what they acted on (context) and where (container)";

    fn columns() -> Vec<Column> {
        vec![
            Column::org_id(),
            Column::key("event_id", "Event id (joins events.event_id)"),
            Column::key(
                "role",
                "context (what the event acted on) or container (where it happened)",
            ),
            Column::text(
                "object_id",
                "The object's id: an account id, group id, site id, ...",
            ),
            Column::text(
                "object_type",
                "The object's type: users, groups, sites, products, orgs, ...",
            ),
            Column::text("name", "The object's name, when it has one"),
            Column::text("attributes", "All the object's attributes, as JSON text"),
            Column::time(
                "time",
                "When the event happened (as events.time; filters on it reach the API)",
            ),
            Column::text("action", "The event's action key (as events.action)"),
            Column::text("actor_id", "Who did it (as events.actor_id)"),
        ]
    }

    fn fetch(scan: &Scan) -> Fetch {
        // A LIMIT counts objects, not events: page at full size.
        events_requests(&scan.without_limit()).into()
    }

    fn push_rows(origin: &Origin, data: Vec<ApiEvent>, rows: &mut Vec<EventContextRow>) {
        for event in data {
            let a = event.attributes;
            let actor_id = a.actor.and_then(|actor| actor.id);
            for (role, objects) in [("context", a.context), ("container", a.container)] {
                let Ok(objects) = serde_json::from_value::<Vec<ApiObject>>(objects) else {
                    continue;
                };
                for object in objects {
                    let name = object
                        .attributes
                        .get("name")
                        .and_then(Value::as_str)
                        .map(str::to_string);
                    rows.push(EventContextRow {
                        org_id: origin.org_id.to_string(),
                        event_id: event.id.clone(),
                        role,
                        object_id: object.id,
                        object_type: object.kind,
                        name,
                        attributes: (!object.attributes.is_null())
                            .then(|| object.attributes.to_string()),
                        time: a.time.clone(),
                        action: a.action.clone(),
                        actor_id: actor_id.clone(),
                    });
                }
            }
        }
    }
}
