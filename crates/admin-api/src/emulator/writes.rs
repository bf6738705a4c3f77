//! The writes `orgsql review apply` may send, as the specs describe them
//! (organization.openapi.2026-08-21.json; user-management.openapi.json for
//! API tokens): each takes one grant, membership, user's access or token
//! away, answers 204 No Content, and logs what it did as an audit event
//! processed now, with the organization API key as its actor.
//!
//! Where the specs are silent, and so unverified:
//! - A revoke of a role, membership or access not held (any more) answers
//!   204 and changes and logs nothing: no spec lists an error for it (the
//!   memberships add has a 409 for "already in the group"; the remove has
//!   none). A token already deleted is the user management API's 404
//!   `notFound`, which its spec does list.
//! - `directoryId` may be `-` (any directory), as the reads take it.
//! - The actor of the event is the key: its id and label as `api_keys`
//!   lists them, no email; how the real log names an API key is unrecorded.
//! - The action names: the generated log's for the same changes (history.rs)
//!   and the 2021 event-actions list for the rest (see `WRITE_ACTIONS`).
//! - The changes are seen at once; the spec says the org-level role's may
//!   take up to 30 seconds.

use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use super::live;
use super::org::{ACTIONS, Event, ORG_ADMIN, Org};
use super::routes::{ApiFailure, Request, Version, directory_filter, error};

const SITE_ADMIN: &str = "atlassian/site-admin";
const USER_ACCESS_ADMIN: &str = "atlassian/user-access-admin";
const PRODUCT_USER: &str = "atlassian/user";

/// `RoleApiRequest.role`: what `roles/revoke` takes.
const USER_ROLES: &[&str] = &crate::api::REVOCABLE_ROLES;

/// The `roleId` values the group role-assignments revoke takes: neither
/// org-admin nor site-admin is among them.
const GROUP_ROLES: &[&str] = &[
    PRODUCT_USER,
    USER_ACCESS_ADMIN,
    "atlassian/admin",
    "atlassian/guest",
    "atlassian/contributor",
    "atlassian/customer",
    "atlassian/basic",
    "atlassian/stakeholder",
    "atlassian/viewer",
];

/// Actions the writes log that the generated log does not draw (`ACTIONS`
/// has the rest): key, display name, group. The keys are real (the
/// event-actions list of 2021, REFERENCE.md §3.9); that the API logs these
/// calls under them is unverified. `user_disabled_org_access` for a
/// suspension is the likeliest of that list, not a known fact.
const WRITE_ACTIONS: &[(&str, &str, &str)] = &[
    (
        "group_revoked_role",
        "Group role revoked",
        "Group management",
    ),
    (
        "group_revoked_product_access",
        "Group product access revoked",
        "Group management",
    ),
    (
        "group_revoked_admin_access",
        "Group admin access revoked",
        "Group management",
    ),
    (
        "user_disabled_org_access",
        "User's organization access suspended",
        "User management",
    ),
];

/// What a role's `resource` names.
#[derive(Clone, Copy)]
enum On {
    /// The organization (its ARI).
    Org,
    /// A workspace (index into `Org::workspaces`).
    Workspace(usize),
}

impl Org {
    fn resource(&self, id: &str) -> Option<On> {
        if id == self.ari() {
            return Some(On::Org);
        }
        self.workspaces
            .iter()
            .position(|w| w.id == id)
            .map(On::Workspace)
    }

    fn user_index(&self, account_id: &str) -> Option<usize> {
        self.users.iter().position(|u| u.account_id == account_id)
    }

    /// Log a write: processed now, by the organization API key.
    fn log_write(
        &mut self,
        action: &'static str,
        context: Vec<Value>,
        container: Value,
        message: String,
    ) {
        let (actor_id, actor_name) = match self.writer_key() {
            Some(key) => (key.id.clone(), key.label.to_string()),
            None => ("emulator-api-key".to_string(), "API key".to_string()),
        };
        let (display, group) = ACTIONS
            .iter()
            .map(|a| (a.0, a.2, a.3))
            .chain(WRITE_ACTIONS.iter().copied())
            .find(|a| a.0 == action)
            .map_or((action, "Organization"), |a| (a.1, a.2));
        let event = Event {
            // Set by `log_now`.
            id: String::new(),
            time: chrono::DateTime::UNIX_EPOCH,
            processed_at: chrono::DateTime::UNIX_EPOCH,
            action,
            actor_id,
            actor_name,
            actor_email: None,
            auth: None,
            context,
            container: vec![container],
            location: None,
            message,
        };
        live::log_now(self, event, None, (action, display, group));
    }

    /// Log a change to what `user` holds, worded as the generated log
    /// words it (history.rs): "<action> for <email> (<what>)".
    fn log_user_change(
        &mut self,
        action: &'static str,
        user: usize,
        what: Option<String>,
        extra: Option<Value>,
        container: Value,
    ) {
        let u = &self.users[user];
        let words = action.replace('_', " ");
        let message = match what {
            Some(what) => format!("{words} for {} ({what})", u.email),
            None => format!("{words} for {}", u.email),
        };
        let mut context = vec![self.user_object(u)];
        context.extend(extra);
        self.log_write(action, context, container, message);
    }

    /// Take org-admin from `user`, if held directly.
    fn revoke_org_admin(&mut self, user: usize) {
        let roles = &mut self.users[user].platform_roles;
        if !roles.contains(&ORG_ADMIN) {
            return;
        }
        roles.retain(|r| *r != ORG_ADMIN);
        let org = self.org_container();
        self.log_user_change("removed_org_admin", user, None, None, org);
    }

    /// Take an organization-wide platform role (not org-admin) from `user`.
    fn revoke_platform_role(&mut self, user: usize, role: &'static str) {
        let roles = &mut self.users[user].platform_roles;
        if !roles.contains(&role) {
            return;
        }
        roles.retain(|r| *r != role);
        let org = self.org_container();
        self.log_user_change("user_revoked_role", user, Some(role.into()), None, org);
    }

    /// Take site-admin on one site from `user`: the platform role goes when
    /// no site is left.
    fn revoke_site_admin(&mut self, user: usize, workspace: usize) {
        let site = self.workspaces[workspace].id.clone();
        let sites: Vec<String> = self
            .workspaces
            .iter()
            .filter(|w| w.host_url.is_some())
            .map(|w| w.id.clone())
            .collect();
        let u = &mut self.users[user];
        if !u.platform_roles.contains(&SITE_ADMIN) || u.site_admin_revoked.contains(&site) {
            return;
        }
        u.site_admin_revoked.push(site);
        if sites.iter().all(|s| u.site_admin_revoked.contains(s)) {
            u.platform_roles.retain(|r| *r != SITE_ADMIN);
            u.site_admin_revoked.clear();
        }
        let w = &self.workspaces[workspace];
        let what = format!("{SITE_ADMIN} on {}", w.name);
        let container = self.site_container(w);
        self.log_user_change("user_revoked_role", user, Some(what), None, container);
    }

    /// Take the product access given to `user` directly on `workspace`.
    fn revoke_product_access(&mut self, user: usize, workspace: usize) {
        let access = &mut self.users[user].product_access;
        if !access.iter().any(|a| a.workspace == workspace) {
            return;
        }
        access.retain(|a| a.workspace != workspace);
        let w = &self.workspaces[workspace];
        let what = format!("{} on {}", w.type_name, w.name);
        let (product, site) = (self.product_object(w), self.site_container(w));
        self.log_user_change(
            "user_revoked_product_access",
            user,
            Some(what),
            Some(product),
            site,
        );
    }
}

/// The UAM errors of the v1 role endpoints (`ApiError`, the `errors`
/// envelope).
fn uam(status: StatusCode, code: &str, detail: &str) -> ApiFailure {
    error(Version::V1, status, code, detail)
}

/// The body as a JSON object; `None` when it is not one.
fn body_object(r: &Request) -> Option<Map<String, Value>> {
    match serde_json::from_slice(r.body()) {
        Ok(Value::Object(map)) => Some(map),
        _ => None,
    }
}

/// The UAM 404 (the spec's only code for it, though its list calls that
/// code "Group Not Found").
fn uam_not_found(what: &str) -> ApiFailure {
    uam(
        StatusCode::NOT_FOUND,
        "ADMIN-UAM-404-3",
        &format!("{what} not found"),
    )
}

/// `POST /v1/orgs/{orgId}/users/{userId}/roles/revoke` `{role, resource}`:
/// a role the user holds directly on a resource (the org for org-admin,
/// whose resource is ignored, as the spec says; a site for site-admin; a
/// product for the rest). Roles held through a group stay.
pub(super) fn revoke_user_role(r: &Request, org: &mut Org) -> Result<(), ApiFailure> {
    let bad = |detail: &str| uam(StatusCode::BAD_REQUEST, "ADMIN-UAM-400-1", detail);
    let body = body_object(r).ok_or_else(|| bad("The request body must be a JSON object"))?;
    let role = body.get("role").and_then(Value::as_str).unwrap_or_default();
    let role = USER_ROLES
        .iter()
        .copied()
        .find(|known| *known == role)
        .ok_or_else(|| bad(&format!("role must be one of {}", USER_ROLES.join(", "))))?;
    let resource = match body.get("resource") {
        None | Some(Value::Null) => None,
        Some(Value::String(resource)) => Some(resource.as_str()),
        Some(_) => return Err(bad("resource must be a string")),
    };
    let user = org
        .user_index(r.path("userId"))
        .ok_or_else(|| uam_not_found("User"))?;
    if role == ORG_ADMIN {
        org.revoke_org_admin(user);
        return Ok(());
    }
    let resource = resource
        .ok_or_else(|| bad("resource is required for every role but atlassian/org-admin"))?;
    let on = org
        .resource(resource)
        .ok_or_else(|| uam_not_found(&format!("Resource {resource}")))?;
    match (role, on) {
        (USER_ACCESS_ADMIN, On::Org) => org.revoke_platform_role(user, role),
        (SITE_ADMIN, On::Workspace(w)) if org.workspaces[w].host_url.is_some() => {
            org.revoke_site_admin(user, w);
        }
        (PRODUCT_USER, On::Workspace(w)) => org.revoke_product_access(user, w),
        // The product roles the emulated organization grants directly only
        // for a while (history.rs): none is held now, nothing to take.
        (role, On::Workspace(_)) if role != SITE_ADMIN && role != USER_ACCESS_ADMIN => {}
        _ => {
            return Err(uam(
                StatusCode::BAD_REQUEST,
                "ADMIN-UAM-400-3",
                &format!("{role} cannot be held on {resource}"),
            ));
        }
    }
    Ok(())
}

/// `POST /v1/orgs/{orgId}/users/{userId}/role-assignments/revoke`
/// `{role: "atlassian/org-admin"}` (the only role its schema allows).
pub(super) fn revoke_org_role(r: &Request, org: &mut Org) -> Result<(), ApiFailure> {
    let body = body_object(r);
    if body
        .as_ref()
        .and_then(|b| b.get("role"))
        .and_then(Value::as_str)
        != Some(ORG_ADMIN)
    {
        return Err(uam(
            StatusCode::BAD_REQUEST,
            "ADMIN-UAM-400-1",
            "The body must be {\"role\": \"atlassian/org-admin\"}",
        ));
    }
    let user = org
        .user_index(r.path("userId"))
        .ok_or_else(|| uam_not_found("User"))?;
    org.revoke_org_admin(user);
    Ok(())
}

/// The v2 group of `{directoryId}/groups/{groupId}`, in that directory.
fn group_in_directory(r: &Request, org: &Org) -> Result<usize, ApiFailure> {
    let directory = directory_filter(r, r.path("directoryId"))?;
    org.groups
        .iter()
        .position(|g| g.id == r.path("groupId") && directory.is_none_or(|d| g.directory == d))
        .ok_or_else(|| {
            error(
                Version::V2,
                StatusCode::NOT_FOUND,
                "ADMIN-404-10",
                "Group not found",
            )
        })
}

fn user_not_found() -> ApiFailure {
    error(
        Version::V2,
        StatusCode::NOT_FOUND,
        "ADMIN-404-8",
        "User not found",
    )
}

/// `DELETE /v2/.../groups/{groupId}/memberships/{accountId}`: the user
/// leaves the group, and every grant it gave them goes with it (grants
/// are worked out from memberships). A group synced from an identity
/// provider is refused with 403 ADMIN-403-5: the spec says so for adding
/// a member ("manage this group in your identity provider"), and is silent
/// for removing one.
pub(super) fn remove_membership(r: &Request, org: &mut Org) -> Result<(), ApiFailure> {
    let group = group_in_directory(r, org)?;
    let user = org
        .user_index(r.path("accountId"))
        .ok_or_else(user_not_found)?;
    if org.groups[group].external_synced {
        return Err(error(
            Version::V2,
            StatusCode::FORBIDDEN,
            "ADMIN-403-5",
            "Not allowed to manage the group: it is synced from an identity provider; \
             remove the member there",
        ));
    }
    let groups = &mut org.users[user].groups;
    if !groups.contains(&group) {
        return Ok(());
    }
    groups.retain(|&g| g != group);
    let u = &org.users[user];
    let message = format!(
        "user removed from group {} ({})",
        u.email, org.groups[group].name
    );
    let context = vec![org.group_object(group), org.user_object(u)];
    let container = org.org_container();
    org.log_write("user_removed_from_group", context, container, message);
    Ok(())
}

/// `POST /v2/.../groups/{groupId}/role-assignments/revoke`
/// `{resourceId, roleId}`: the group no longer grants the role there, to
/// any member.
pub(super) fn revoke_group_role(r: &Request, org: &mut Org) -> Result<(), ApiFailure> {
    let bad = |code: &str, detail: &str| error(Version::V2, StatusCode::BAD_REQUEST, code, detail);
    let body = body_object(r).ok_or_else(|| bad("ADMIN-400-24", "Invalid request body"))?;
    let field = |name: &str| {
        body.get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| bad("ADMIN-400-24", &format!("{name} is required")))
    };
    let (resource, role) = (field("resourceId")?, field("roleId")?);
    let role = GROUP_ROLES
        .iter()
        .copied()
        .find(|known| *known == role)
        .ok_or_else(|| {
            bad(
                "ADMIN-400-24",
                &format!("roleId must be one of {}", GROUP_ROLES.join(", ")),
            )
        })?;
    let group = group_in_directory(r, org)?;
    let on = org
        .resource(resource)
        .ok_or_else(|| bad("ADMIN-400-4", &format!("Invalid resource {resource}")))?;
    let granted = org
        .group_roles(group)
        .iter()
        .any(|g| g.resource_id == resource && g.roles.contains(&role));
    if !granted {
        return Ok(());
    }
    org.group_grants_revoked
        .push((group, resource.to_string(), role));
    let action = match role {
        PRODUCT_USER => "group_revoked_product_access",
        "atlassian/admin" => "group_revoked_admin_access",
        _ => "group_revoked_role",
    };
    let name = org.groups[group].name.clone();
    let mut context = vec![org.group_object(group)];
    let (message, container) = match on {
        On::Org => (format!("{role} on the organization"), org.org_container()),
        On::Workspace(w) => {
            let w = &org.workspaces[w];
            context.push(org.product_object(w));
            (format!("{role} on {}", w.name), org.site_container(w))
        }
    };
    let words = action.replace('_', " ");
    org.log_write(
        action,
        context,
        container,
        format!("{words} {name} ({message})"),
    );
    Ok(())
}

/// `POST /v2/.../directories/{directoryId}/users/{accountId}/suspend`:
/// the user's access in the directory is suspended (roles and memberships
/// stay, to come back on restore, as the spec says); a user already
/// suspended stays so.
pub(super) fn suspend_user(r: &Request, org: &mut Org) -> Result<(), ApiFailure> {
    let directory = directory_filter(r, r.path("directoryId"))?;
    let user = org
        .user_index(r.path("accountId"))
        .filter(|&u| {
            let u = &org.users[u];
            directory.is_none_or(|d| u.directory == d) && u.membership_status != "no_membership"
        })
        .ok_or_else(user_not_found)?;
    let u = &mut org.users[user];
    if u.membership_status == "suspended" {
        return Ok(());
    }
    u.membership_status = "suspended";
    // `status` is the user's overall one: deactivated or not invited says more.
    if u.status == "active" {
        u.status = "suspended";
    }
    let org_container = org.org_container();
    org.log_user_change("user_disabled_org_access", user, None, None, org_container);
    Ok(())
}

/// `DELETE /users/{account_id}/manage/api-tokens/{tokenId}` (user
/// management API): the token is gone. Errors in that API's own shape,
/// `{"key": ...}`: an unknown account is `accountNotFound`, a token the
/// account does not own `notFound`, an account the organization does not
/// manage 403 `forbidden`.
pub(super) fn delete_api_token(r: &Request, org: &mut Org) -> Result<(), ApiFailure> {
    let keyed = |status: StatusCode, key: &str| ApiFailure::new(status, json!({ "key": key }));
    let user = org
        .user_index(r.path("accountId"))
        .ok_or_else(|| keyed(StatusCode::NOT_FOUND, "accountNotFound"))?;
    if org.users[user].claim_status != "managed" {
        return Err(keyed(StatusCode::FORBIDDEN, "forbidden"));
    }
    let token = org
        .api_tokens
        .iter()
        .position(|t| t.id == r.path("tokenId") && t.owner == user)
        .ok_or_else(|| keyed(StatusCode::NOT_FOUND, "notFound"))?;
    let token = org.api_tokens.remove(token);
    let object = json!({"id": token.id, "type": "api-tokens", "attributes": {"name": token.label}});
    let org_container = org.org_container();
    org.log_user_change(
        "api_token_revoked",
        user,
        Some(token.label),
        Some(object),
        org_container,
    );
    Ok(())
}
