//! `events`: the organization audit log (`GET /v1/orgs/{orgId}/events`), newest first.

use crate::row;
use serde::Deserialize;
use serde_json::Value;

use super::filters::{Filter, allowed_values, time_window};
use super::provider::{Fetch, Resource, Scan};
use crate::api::{EVENTS_STREAM, PageRequest};

pub struct Events;

/// /events answers at most 500 events a page.
const MAX_PAGE: usize = 500;

#[derive(Debug, Deserialize)]
pub struct ApiEvent {
    pub(crate) id: String,
    pub(crate) attributes: EventAttributes,
    message: Option<Message>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct EventAttributes {
    pub(crate) time: Option<String>,
    pub(crate) action: Option<String>,
    pub(crate) actor: Option<Actor>,
    #[serde(default)]
    pub(crate) context: Value,
    #[serde(default)]
    pub(crate) container: Value,
    location: Option<Location>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Actor {
    pub(crate) id: Option<String>,
    name: Option<String>,
    email: Option<String>,
    auth: Option<ActorAuth>,
    on_behalf_of: Option<OnBehalfOf>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ActorAuth {
    auth_type: Option<String>,
    token_id: Option<String>,
}

#[derive(Debug, Deserialize)]
struct OnBehalfOf {
    id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Location {
    ip: Option<String>,
    city: Option<String>,
    region_name: Option<String>,
    country_name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Message {
    content: Option<String>,
}

row! {
    EventRow(origin, e: ApiEvent) {
        event_id: key = e.id, "Event id (UUID)";
        time: time = e.attributes.time, "When the event happened";
        action: text = e.attributes.action, "Action key, lowercase, e.g. user_added_to_group";
        actor_id: text = e.attributes.actor.as_ref().and_then(|x| x.id.clone()),
            "Account id of who did it (or a system id)";
        actor_name: text = e.attributes.actor.as_ref().and_then(|x| x.name.clone()), "Actor's name";
        actor_email: text = e.attributes.actor.as_ref().and_then(|x| x.email.clone()),
            "Actor's email";
        actor_auth_type: text = e.attributes.actor.as_ref().and_then(|x| x.auth.as_ref()?.auth_type.clone()),
            "How the actor authenticated: api-token, container-token, ...";
        actor_token_id: text = e.attributes.actor.as_ref().and_then(|x| x.auth.as_ref()?.token_id.clone()),
            "Id of the token used, when one was";
        on_behalf_of_id: text = e.attributes.actor.and_then(|x| x.on_behalf_of?.id),
            "Account an app acted for";
        ip: text = e.attributes.location.as_ref().and_then(|l| l.ip.clone()), "Source IP address";
        city: text = e.attributes.location.as_ref().and_then(|l| l.city.clone()),
            "City of the source IP";
        region: text = e.attributes.location.as_ref().and_then(|l| l.region_name.clone()),
            "Region of the source IP";
        country: text = e.attributes.location.and_then(|l| l.country_name),
            "Country of the source IP";
        message: text = e.message.and_then(|m| m.content), "Human-readable summary";
        context: text = json_text(e.attributes.context),
            "What the event acted on: JSON array of objects (users, groups, ...)";
        container: text = json_text(e.attributes.container),
            "Where it happened: JSON array of objects (sites, orgs, ...)";
    }
}

/// Nested objects are kept whole, as JSON text; absent ones are NULL.
fn json_text(value: Value) -> Option<String> {
    (!value.is_null()).then(|| value.to_string())
}

/// Time bounds become `from`/`to`, and equalities on action, actor and ip
/// the API's filters. All Inexact: the API's case rules and bound
/// inclusiveness are not documented, so DataFusion checks every row again.
/// The API filters one action a call (matched ignoring case: `IN ('x', 'X')`
/// is one listing); actors and ips go comma-joined. Shared with `event_context`.
pub(crate) const EVENT_FILTERS: [Filter; 4] = [
    Filter::time("time", "from", "to"),
    Filter::values("action", "action", 1).fold_case(),
    Filter::values("actor_id", "actor", usize::MAX).joined(),
    Filter::values("ip", "ip", usize::MAX).joined(),
];

/// The listings of the events a scan wants; shared with `event_context`.
///
/// With no filter on action, actor or ip and no upper time bound, the scan
/// reads the polling API (`/events-stream`, 50 requests a minute against 10),
/// newest processed first. Its bounds are on processing time, and an event
/// is processed after it happens, so `time >= X` becomes `from = X` and
/// loses nothing (DataFusion checks `time` again). Every other scan reads
/// `/events` with its filters.
pub(crate) fn events_requests(scan: &Scan) -> Vec<PageRequest> {
    let (from, to) = time_window(scan.filters, "time");
    let narrowed = EVENT_FILTERS
        .iter()
        .filter(|f| f.column != "time")
        .any(|f| allowed_values(scan.filters, f.column).is_some());
    if !narrowed && to.is_none() {
        let mut request = PageRequest::get(EVENTS_STREAM)
            .polling()
            .query("limit", scan.page_size(MAX_PAGE).to_string())
            .query("sortOrder", "desc");
        if let Some(from) = from {
            request = request.query("from", (from.div_euclid(1000) - 1).to_string());
        }
        return vec![request];
    }
    scan.requests(
        PageRequest::get("/admin/v1/orgs/{orgId}/events")
            .query("limit", scan.page_size(MAX_PAGE).to_string()),
    )
}

impl Resource for Events {
    type Data = Vec<ApiEvent>;
    type Row = EventRow;

    const NAME: &'static str = "events";
    const KEY: &'static [&'static str] = &["event_id"];
    const FILTERS: &'static [Filter] = &EVENT_FILTERS;
    const HISTORY: bool = true;
    const DESCRIPTION: &'static str = "Organization audit log events, newest first (most recently processed first when read whole)";

    fn fetch(scan: &Scan) -> Fetch {
        events_requests(scan).into()
    }
}
