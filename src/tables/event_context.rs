//! `event_context`: the objects each audit event names, one row per element
//! of its `context[]` (what it acted on) and `container[]` (where). Read from
//! the same `/events` listing; it carries the event's time, action and actor
//! so that filters on them reach the API as they do on `events`.

use crate::row;
use serde::Deserialize;
use serde_json::Value;

use super::events::{ApiEvent, EVENT_FILTERS, events_requests};
use super::filters::Filter;
use super::provider::{Fetch, FromPage, Origin, Resource, Scan};

pub struct EventContext;

#[derive(Debug, Deserialize)]
struct ApiObject {
    id: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    attributes: Value,
}

row! {
    EventContextRow(origin, event: &EventOf, role: &str, object: ApiObject) {
        event_id: key = event.id.clone(), "Event id (joins events.event_id)";
        role: key = role.to_string(), "context (what the event acted on) or container (where it happened)";
        object_id: text = object.id, "The object's id: an account id, group id, site id, ...";
        object_type: text = object.kind, "The object's type: users, groups, sites, products, orgs, ...";
        name: text = object.attributes.get("name").and_then(Value::as_str).map(str::to_string),
            "The object's name, when it has one";
        attributes: text = (!object.attributes.is_null()).then(|| object.attributes.to_string()),
            "All the object's attributes, as JSON text";
        time: time = event.time.clone(),
            "When the event happened (as events.time)";
        action: text = event.action.clone(), "The event's action key (as events.action)";
        actor_id: text = event.actor_id.clone(), "Who did it (as events.actor_id)";
    }
}

/// What each row of an event's objects repeats of the event.
pub struct EventOf {
    id: String,
    time: Option<String>,
    action: Option<String>,
    actor_id: Option<String>,
}

impl Resource for EventContext {
    type Data = Vec<ApiEvent>;
    type Row = EventContextRow;

    const NAME: &'static str = "event_context";
    const HISTORY: bool = true;
    /// The events' filters on the columns it repeats (it has no ip).
    const FILTERS: &'static [Filter] = &[EVENT_FILTERS[0], EVENT_FILTERS[1], EVENT_FILTERS[2]];
    const DESCRIPTION: &'static str =
        "Objects audit events name: what they acted on (context) and where (container)";

    fn fetch(scan: &Scan) -> Fetch {
        // A LIMIT counts objects, not events: page at full size.
        events_requests(&scan.without_limit()).into()
    }
}

impl FromPage<Vec<ApiEvent>> for EventContextRow {
    fn push_rows(origin: &Origin, data: Vec<ApiEvent>, rows: &mut Vec<EventContextRow>) {
        for event in data {
            let a = event.attributes;
            let of = EventOf {
                id: event.id,
                time: a.time,
                action: a.action,
                actor_id: a.actor.and_then(|actor| actor.id),
            };
            for (role, objects) in [("context", a.context), ("container", a.container)] {
                let Ok(objects) = serde_json::from_value::<Vec<ApiObject>>(objects) else {
                    continue;
                };
                for object in objects {
                    rows.push(EventContextRow::new(origin, &of, role, object));
                }
            }
        }
    }
}
