//! Events made while the emulator runs (`Emulator::append_event`, and
//! `orgsql emulator --append-every`): an admin acts now, and the audit log
//! gets the event processed now, after every event it already holds; a late
//! one happened earlier and is processed now, as the real log sometimes
//! processes an event hours after it happened. `/events-stream` serves them
//! after any cursor handed out before, as the real stream does.

use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use super::org::{ACTIONS, Event, EventAction, Org, usual_location};

/// Actions that can be appended: the generated log's (`ACTIONS`), and these,
/// which it does not draw. `domain_verification_completed` and
/// `domain_removed` are real keys (the event-actions list of 2021);
/// `api_key_created` (an organization API key) is this emulator's name:
/// org API keys came after that list, and no real key for it is on record.
/// `user_logged_in_as_user` (an admin logged in as the user in context) is
/// a real key of that list, which gave it no display name: the one here is
/// this emulator's.
const MORE_ACTIONS: &[(&str, &str, &str)] = &[
    (
        "domain_verification_completed",
        "Domain verified",
        "Domains",
    ),
    ("domain_removed", "Domain removed", "Domains"),
    (
        "api_key_created",
        "Organization API key created",
        "API keys",
    ),
    (
        "user_logged_in_as_user",
        "Logged in as another user",
        "User management",
    ),
];

/// Who acts, and on which group, in an appended event (indices into
/// `Org::users` and `Org::groups`). By default the owner (an org admin)
/// acts, and a group event names the next group in turn.
#[derive(Debug, Clone, Copy, Default)]
pub struct Doer {
    pub actor: Option<usize>,
    pub group: Option<usize>,
}

/// Every action `append_event` takes.
pub fn appendable_actions() -> Vec<&'static str> {
    ACTIONS
        .iter()
        .map(|a| a.0)
        .chain(MORE_ACTIONS.iter().map(|a| a.0))
        .collect()
}

/// Append `action` to `org`'s log: done by `doer`'s actor (else the owner,
/// an org admin) on the next user in turn, at `happened` (a late event) or
/// now, processed now, and strictly after every event it holds (so no
/// cursor can be past it). The action's key joins `event_actions` if it
/// was not there.
pub(super) fn append(
    org: &mut Org,
    action: &str,
    happened: Option<DateTime<Utc>>,
    doer: Doer,
) -> Result<Event, String> {
    let (action, display, group) = ACTIONS
        .iter()
        .map(|a| (a.0, a.2, a.3))
        .chain(MORE_ACTIONS.iter().copied())
        .find(|a| a.0 == action)
        .ok_or_else(|| {
            format!(
                "no such action {action:?}: use one of {}",
                appendable_actions().join(", ")
            )
        })?;
    if org.users.is_empty() || org.workspaces.is_empty() {
        return Err("the organization has no users or no workspaces to act on".into());
    }
    let n = org.events.len();
    let actor = org
        .users
        .get(doer.actor.unwrap_or(0))
        .ok_or_else(|| format!("no user {:?} to act", doer.actor))?;
    let subject = &org.users[(1 + n) % org.users.len()];
    let workspace = &org.workspaces[n % org.workspaces.len()];
    let mut context = vec![org.user_object(subject)];
    let mut container = org.org_container();
    let words = action.replace('_', " ");
    let mut message = format!("{words} for {}", subject.email);
    if action.contains("product_access") {
        context.push(org.product_object(workspace));
        container = org.site_container(workspace);
        message = format!(
            "{words} for {} ({} on {})",
            subject.email, workspace.type_name, workspace.name
        );
    } else if action.contains("group") && !org.groups.is_empty() {
        let group = doer.group.unwrap_or(n % org.groups.len());
        if group >= org.groups.len() {
            return Err(format!("no group {group}"));
        }
        context.insert(0, org.group_object(group));
        message = format!("{words} {} ({})", subject.email, org.groups[group].name);
    } else if action.starts_with("policy") {
        if let Some(policy) = org.policies.get(n % org.policies.len().max(1)) {
            context = vec![json!({"id": policy.id, "type": "policies",
                                  "attributes": {"name": policy.name, "type": policy.kind}})];
            message = format!("{words}: {}", policy.name);
        }
    } else if action.starts_with("domain") {
        if let Some(domain) = org.domains.get(n % org.domains.len().max(1)) {
            context = vec![json!({"id": domain.id, "type": "domains",
                                  "attributes": {"name": domain.name}})];
            message = format!("{words}: {}", domain.name);
        }
    } else if action == "api_key_created" {
        let id = format!("emulated-key-{n}");
        context = vec![json!({"id": id, "type": "api-keys",
                              "attributes": {"name": "created while running"}})];
        message = format!("{words}: {id}");
    }
    let event = Event {
        // Set by `log_now`.
        id: String::new(),
        time: DateTime::UNIX_EPOCH,
        processed_at: DateTime::UNIX_EPOCH,
        action,
        actor_id: actor.account_id.clone(),
        actor_name: actor.name.clone(),
        actor_email: Some(actor.email.clone()),
        auth: None,
        context,
        container: vec![container],
        location: Some(usual_location(&actor.account_id)),
        message,
    };
    Ok(log_now(org, event, happened, (action, display, group)))
}

/// Log `event` (its action's key, display name and group) as processed
/// now, strictly after every event the log holds (so no cursor handed out
/// can be past it); it happened at `happened` (a late event) or now. The
/// action's key joins `event_actions` if it was not there.
pub(super) fn log_now(
    org: &mut Org,
    mut event: Event,
    happened: Option<DateTime<Utc>>,
    (action, display, group): (&'static str, &'static str, &'static str),
) -> Event {
    let newest = org.events.iter().map(|e| e.processed_at).max();
    let processed = newest.map_or(Utc::now(), |n| {
        Utc::now().max(n + Duration::milliseconds(1))
    });
    event.action = action;
    event.time = happened.map_or(processed, |h| h.min(processed));
    event.processed_at = processed;
    event.id = uuid_of(&org.id, org.events.len(), processed);
    if !org.event_actions.iter().any(|a| a.id == action) {
        org.event_actions.push(EventAction {
            id: action.to_string(),
            display_name: display,
            group_display_name: group,
        });
    }
    org.events.push(event.clone());
    event
}

/// A UUID-shaped id, unique to the org, the event's place and its time.
fn uuid_of(org: &str, n: usize, at: DateTime<Utc>) -> String {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut h = DefaultHasher::new();
    (org, n, at.timestamp_nanos_opt()).hash(&mut h);
    let a = h.finish();
    n.hash(&mut h);
    let b = h.finish();
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0x0fff,
        (b >> 48) & 0x3fff | 0x8000,
        b & 0xffff_ffff_ffff
    )
}

/// Actions a built-in watch rule alerts on, each changing who may do what:
/// what `orgsql emulator --append-every` appends in turn, and the watch
/// bench appends.
pub const ALERTING_ACTIONS: [&str; 12] = [
    "user_invited",
    "added_org_admin",
    "user_granted_product_access",
    "twosv_disabled_for_user",
    "api_token_created",
    "policy_updated",
    "domain_verification_completed",
    "user_revoked_product_access",
    "removed_org_admin",
    "api_key_created",
    "domain_removed",
    "user_created",
];
