//! The audit log's history of who may do what. Every platform role, group
//! membership and direct product access the organization has now was
//! granted by an event of the log, after the user joined and by someone who
//! could grant it then; a few roles were granted and taken back, and in the
//! 90 days before now memberships, product access and product admin roles
//! come and go. Org admins grant every admin role (admin groups included),
//! user-access admins grant the rest. The owner (user 0) was made org admin
//! by Atlassian when the organization was created, as the real log shows it.
//! Each managed account deactivated (or deleted) now was deactivated by an
//! org admin in the 90 days, after its last activity and every grant.

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

use super::org::{
    ACTIONS, DEACTIVATED, Event, Gen, History, ORG_ADMIN, Org, OrgSpec, Tenure, usual_location,
};

const SITE_ADMIN: &str = "atlassian/site-admin";
const USER_ACCESS_ADMIN: &str = "atlassian/user-access-admin";
/// A product's admin role, granted directly for a while.
const PRODUCT_ADMIN: &str = "atlassian/admin";

/// The grants of `HISTORY_ACTIONS`: after the last one a user got, they
/// can be deactivated.
const GRANTS: &[&str] = &[
    "added_org_admin",
    "user_granted_role",
    "user_added_to_group",
    "user_granted_product_access",
];

/// Atlassian as an actor: id and name (also sent as its email), as the real
/// log shows the organization's first admin being added.
const SYSTEM: (&str, &str) = ("atlassian-internal-system", "Atlassian Internal System");

/// The history of `org`'s roles, from a generator of its own (the rest of
/// the org stays what the seed always gave).
pub(super) fn history(spec: &OrgSpec, org: &Org) -> History {
    let mut w = Writer {
        g: Gen {
            rng: ChaCha8Rng::seed_from_u64(spec.seed ^ 0x6a09_e667_f3bc_c908),
        },
        org,
        now: spec.now,
        tenures: Vec::new(),
        events: Vec::new(),
    };
    if org.users.is_empty() || org.workspaces.is_empty() {
        return History {
            events: w.events,
            tenures: w.tenures,
        };
    }
    w.tenures();
    w.platform_roles();
    w.memberships();
    w.product_access();
    w.former_admin_group();
    let churn = |action: &str| {
        let total: u32 = ACTIONS.iter().map(|a| a.1).sum();
        let weight = ACTIONS.iter().find(|a| a.0 == action).map_or(0, |a| a.1);
        spec.events * weight as usize / total.max(1) as usize
    };
    w.group_churn(churn("user_removed_from_group"));
    w.product_churn(churn("user_revoked_product_access"));
    w.product_admin_churn(churn("user_revoked_role"));
    w.deactivations();
    History {
        events: w.events,
        tenures: w.tenures,
    }
}

struct Writer<'o> {
    g: Gen,
    org: &'o Org,
    now: DateTime<Utc>,
    tenures: Vec<Tenure>,
    events: Vec<Event>,
}

impl Writer<'_> {
    /// Every platform role's tenure, decided before any event so that each
    /// grant can name someone who held the right role at its time. Held
    /// now: from some time in the first half of the user's membership (the
    /// owner's from the start). Taken back: the first active managed user
    /// without a role was an org admin until some weeks ago, the next one a
    /// site admin for a while.
    fn tenures(&mut self) {
        let (users, now) = (&self.org.users, self.now);
        for (i, user) in users.iter().enumerate() {
            let join = user.added_to_org;
            for &role in &user.platform_roles {
                let from = match (i, role) {
                    (0, ORG_ADMIN) => join,
                    (0, _) => join + Duration::minutes(1),
                    _ => self.g.between(join, join + (now - join) / 2),
                };
                self.tenures.push(Tenure {
                    user: i,
                    role,
                    from,
                    until: None,
                });
            }
        }
        let mut spare = (1..users.len()).filter(|&i| {
            let u = &users[i];
            u.claim_status == "managed" && u.status == "active" && u.platform_roles.is_empty()
        });
        if let Some(i) = spare.next() {
            let join = users[i].added_to_org;
            let until = self.g.between(
                (join + Duration::minutes(2)).max(now - Duration::days(80)),
                now,
            );
            let from = self.g.between(join, until - Duration::minutes(1));
            self.tenures.push(Tenure {
                user: i,
                role: ORG_ADMIN,
                from,
                until: Some(until),
            });
        }
        if let Some(i) = spare.next() {
            let join = users[i].added_to_org;
            let from = self.g.between(join, now - Duration::minutes(2));
            let until = self.g.between(from + Duration::minutes(1), now);
            self.tenures.push(Tenure {
                user: i,
                role: SITE_ADMIN,
                from,
                until: Some(until),
            });
        }
    }

    /// Someone who held one of `roles` at `time`, other than `except`; the
    /// owner if nobody did.
    fn actor(&mut self, time: DateTime<Utc>, roles: &[&str], except: Option<usize>) -> usize {
        let able: Vec<usize> = self
            .tenures
            .iter()
            .filter(|t| roles.contains(&t.role) && t.covers(time) && Some(t.user) != except)
            .map(|t| t.user)
            .collect();
        able.choose(&mut self.g.rng).copied().unwrap_or(0)
    }

    /// Who may add a member to `group`: org admins to a group that grants an
    /// admin role, user-access admins too to any other.
    fn group_actor(&mut self, time: DateTime<Utc>, group: usize) -> usize {
        match self.org.group_role(group) {
            Some(role) if role != "atlassian/user" => self.actor(time, &[ORG_ADMIN], None),
            _ => self.actor(time, &[ORG_ADMIN, USER_ACCESS_ADMIN], None),
        }
    }

    /// When something a user holds now was granted: mostly in their first
    /// two days, else any day since they joined, a few in the last month.
    fn granted_after(&mut self, join: DateTime<Utc>) -> DateTime<Utc> {
        let soon = join + Duration::minutes(self.g.rng.random_range(1..2880));
        match self.g.rng.random_range(0..10) {
            0..6 if soon < self.now => soon,
            9 => self
                .g
                .between(join.max(self.now - Duration::days(30)), self.now),
            _ => self.g.between(join, self.now),
        }
    }

    /// A change taken back in the 90 days before now: (granted, removed),
    /// both after the user joined.
    fn taken_back(&mut self, join: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
        let removed = self.g.between(
            join.max(self.now - Duration::days(90)) + Duration::minutes(1),
            self.now,
        );
        let granted = self
            .g
            .between(join.max(removed - Duration::days(60)), removed);
        (granted, removed)
    }

    /// One event: by a user of the org, or by Atlassian (`None`), from the
    /// actor's usual address.
    fn push(
        &mut self,
        time: DateTime<Utc>,
        action: &'static str,
        actor: Option<usize>,
        context: Vec<Value>,
        container: Value,
        message: String,
    ) {
        let (actor_id, actor_name, actor_email, location) = match actor {
            Some(i) => {
                let u = &self.org.users[i];
                (
                    u.account_id.clone(),
                    u.name.clone(),
                    u.email.clone(),
                    Some(usual_location(&u.account_id)),
                )
            }
            None => (
                SYSTEM.0.to_string(),
                SYSTEM.1.to_string(),
                SYSTEM.1.to_string(),
                None,
            ),
        };
        self.events.push(Event {
            id: self.g.uuid(),
            time,
            processed_at: time,
            action,
            actor_id,
            actor_name,
            actor_email: Some(actor_email),
            auth: None,
            context,
            container: vec![container],
            location,
            message,
        });
    }

    /// A change to what a user holds, named after the action as the rest of
    /// the log is, with what changed in parentheses.
    fn change(
        &mut self,
        time: DateTime<Utc>,
        action: &'static str,
        actor: Option<usize>,
        user: usize,
        what: Option<(Value, String)>,
        container: Value,
    ) {
        let u = &self.org.users[user];
        let words = action.replace('_', " ");
        let mut context = vec![self.org.user_object(u)];
        let message = match what {
            // A group comes first in context, as the real log has it.
            Some((object, name)) if object["type"] == "groups" => {
                context.insert(0, object);
                format!("{words} {} ({name})", u.email)
            }
            Some((object, name)) => {
                if !object.is_null() {
                    context.push(object);
                }
                format!("{words} for {} ({name})", u.email)
            }
            None => format!("{words} for {}", u.email),
        };
        self.push(time, action, actor, context, container, message);
    }

    /// The grant (and removal) of every platform role.
    fn platform_roles(&mut self) {
        for t in self.tenures.clone() {
            let (grant, revoke) = if t.role == ORG_ADMIN {
                ("added_org_admin", "removed_org_admin")
            } else {
                ("user_granted_role", "user_revoked_role")
            };
            // The owner's roles: from Atlassian as the organization was
            // created, the others from the owner.
            let actor = match (t.user, t.role) {
                (0, ORG_ADMIN) => None,
                (0, _) => Some(0),
                (user, _) => Some(self.actor(t.from, &[ORG_ADMIN], Some(user))),
            };
            let what = (t.role != ORG_ADMIN).then(|| (Value::Null, t.role.to_string()));
            let org = self.org.org_container();
            self.change(t.from, grant, actor, t.user, what.clone(), org.clone());
            if let Some(until) = t.until {
                let actor = self.actor(until, &[ORG_ADMIN], Some(t.user));
                self.change(until, revoke, Some(actor), t.user, what, org);
            }
        }
    }

    /// Every membership held now: an admin's admin group along with the
    /// role it also holds directly, any other when `granted_after` says.
    fn memberships(&mut self) {
        let org = self.org;
        for (i, user) in org.users.iter().enumerate() {
            for &group in &user.groups {
                let role = org.group_role(group);
                let along = self
                    .tenures
                    .iter()
                    .find(|t| t.user == i && t.until.is_none() && Some(t.role) == role)
                    .map(|t| t.from);
                let time = match along {
                    Some(from) => (from + Duration::minutes(self.g.rng.random_range(1..30)))
                        .min(self.now - Duration::milliseconds(1)),
                    None => self.granted_after(user.added_to_org),
                };
                let actor = self.group_actor(time, group);
                self.add_to_group(time, actor, i, group);
            }
        }
    }

    fn add_to_group(&mut self, time: DateTime<Utc>, actor: usize, user: usize, group: usize) {
        self.group_change(time, "user_added_to_group", actor, user, group);
    }

    fn group_change(
        &mut self,
        time: DateTime<Utc>,
        action: &'static str,
        actor: usize,
        user: usize,
        group: usize,
    ) {
        let org = self.org;
        let site = self.random_site();
        let what = (org.group_object(group), org.groups[group].name.clone());
        self.change(time, action, Some(actor), user, Some(what), site);
    }

    /// Any workspace's site, as the place a group change happened.
    fn random_site(&mut self) -> Value {
        let org = self.org;
        let w = &org.workspaces[self.g.rng.random_range(0..org.workspaces.len())];
        org.site_container(w)
    }

    /// Every direct product access held now, granted before its last use.
    fn product_access(&mut self) {
        let org = self.org;
        for (i, user) in org.users.iter().enumerate() {
            for access in &user.product_access {
                let mut time = self.granted_after(user.added_to_org);
                if let Some(last) = access.last_active {
                    time = time.min(last);
                }
                let actor = self.actor(time, &[ORG_ADMIN, USER_ACCESS_ADMIN], None);
                self.product_change(
                    time,
                    "user_granted_product_access",
                    actor,
                    i,
                    access.workspace,
                );
            }
        }
    }

    fn product_change(
        &mut self,
        time: DateTime<Utc>,
        action: &'static str,
        actor: usize,
        user: usize,
        workspace: usize,
    ) {
        let w = &self.org.workspaces[workspace];
        let what = (
            self.org.product_object(w),
            format!("{} on {}", w.type_name, w.name),
        );
        let site = self.org.site_container(w);
        self.change(time, action, Some(actor), user, Some(what), site);
    }

    /// `legacy-admins` grants org-admin and is empty now: the next spare
    /// user (after the former admins of `tenures`) was in it for a while.
    fn former_admin_group(&mut self) {
        let org = self.org;
        let Some(group) = org.groups.iter().position(|g| g.name == "legacy-admins") else {
            return;
        };
        let Some(i) = (1..org.users.len())
            .filter(|&i| {
                let u = &org.users[i];
                u.claim_status == "managed" && u.status == "active" && u.platform_roles.is_empty()
            })
            .nth(2)
        else {
            return;
        };
        let join = org.users[i].added_to_org;
        let added = self.g.between(join, self.now - Duration::minutes(2));
        let removed = self.g.between(added + Duration::minutes(1), self.now);
        let actor = self.group_actor(added, group);
        self.add_to_group(added, actor, i, group);
        let actor = self.group_actor(removed, group);
        self.group_change(removed, "user_removed_from_group", actor, i, group);
    }

    /// Users added to a group they are no longer in, and removed, in the
    /// last 90 days; never to a group that grants a platform role.
    fn group_churn(&mut self, count: usize) {
        let org = self.org;
        let mut used = HashSet::new();
        for _ in 0..count {
            let i = self.g.rng.random_range(0..org.users.len());
            let user = &org.users[i];
            let groups: Vec<usize> = (0..org.groups.len())
                .filter(|&g| {
                    org.groups[g].directory == user.directory
                        && !user.groups.contains(&g)
                        && !matches!(org.group_role(g), Some(ORG_ADMIN | SITE_ADMIN))
                        && !used.contains(&(i, g))
                })
                .collect();
            let Some(&group) = groups.choose(&mut self.g.rng) else {
                continue;
            };
            used.insert((i, group));
            let (added, removed) = self.taken_back(user.added_to_org);
            let actor = self.group_actor(added, group);
            self.add_to_group(added, actor, i, group);
            let actor = self.group_actor(removed, group);
            self.group_change(removed, "user_removed_from_group", actor, i, group);
        }
    }

    /// Product access granted and revoked in the last 90 days, on products
    /// the user has no access to now.
    fn product_churn(&mut self, count: usize) {
        let org = self.org;
        let mut used = HashSet::new();
        for _ in 0..count {
            let i = self.g.rng.random_range(0..org.users.len());
            let user = &org.users[i];
            let workspace = self.g.rng.random_range(0..org.workspaces.len());
            if user.product_access.iter().any(|a| a.workspace == workspace)
                || !used.insert((i, workspace))
            {
                continue;
            }
            let (granted, revoked) = self.taken_back(user.added_to_org);
            let may = [ORG_ADMIN, USER_ACCESS_ADMIN];
            let actor = self.actor(granted, &may, None);
            self.product_change(granted, "user_granted_product_access", actor, i, workspace);
            let actor = self.actor(revoked, &may, None);
            self.product_change(revoked, "user_revoked_product_access", actor, i, workspace);
        }
    }

    /// A product's admin role granted directly and revoked in the last 90
    /// days (nobody holds one directly now), by org admins.
    fn product_admin_churn(&mut self, count: usize) {
        let org = self.org;
        let mut used = HashSet::new();
        for _ in 0..count {
            let i = self.g.rng.random_range(0..org.users.len());
            let workspace = self.g.rng.random_range(0..org.workspaces.len());
            if !used.insert((i, workspace)) {
                continue;
            }
            let (granted, revoked) = self.taken_back(org.users[i].added_to_org);
            let w = &org.workspaces[workspace];
            let what = (Value::Null, format!("{PRODUCT_ADMIN} on {}", w.name));
            let site = org.site_container(w);
            let actor = self.actor(granted, &[ORG_ADMIN], Some(i));
            self.change(
                granted,
                "user_granted_role",
                Some(actor),
                i,
                Some(what.clone()),
                site.clone(),
            );
            let actor = self.actor(revoked, &[ORG_ADMIN], Some(i));
            self.change(
                revoked,
                "user_revoked_role",
                Some(actor),
                i,
                Some(what),
                site,
            );
        }
    }

    /// Every managed account that is deactivated now, or deleted (it stays
    /// deactivated for a 14-day grace before it goes), was deactivated by an
    /// org admin, at the organization, in the 90 days before now (a deleted
    /// one in the last 14): after its last product activity, which ends its
    /// sessions too, and after the last grant it got.
    fn deactivations(&mut self) {
        let org = self.org;
        // Each account's last grant, found in one pass over the log (a pass
        // per deactivated account made a large organization quadratic).
        // The deactivations below add no grants.
        let mut last_granted: std::collections::HashMap<String, DateTime<Utc>> =
            std::collections::HashMap::new();
        for e in self.events.iter().filter(|e| GRANTS.contains(&e.action)) {
            for id in e.context.iter().filter_map(|c| c["id"].as_str()) {
                let last = last_granted.entry(id.to_string()).or_insert(e.time);
                *last = (*last).max(e.time);
            }
        }
        for (i, user) in org.users.iter().enumerate() {
            if !user.deactivated_by_org() {
                continue;
            }
            let days = if user.status == "for_deletion" {
                14
            } else {
                90
            };
            let granted = last_granted.get(user.account_id.as_str()).copied();
            let after = [user.last_active(), granted].into_iter().flatten().fold(
                user.added_to_org.max(self.now - Duration::days(days)),
                DateTime::max,
            );
            let time = self
                .g
                .between((after + Duration::milliseconds(1)).min(self.now), self.now);
            let actor = self.actor(time, &[ORG_ADMIN], Some(i));
            self.change(time, DEACTIVATED, Some(actor), i, None, org.org_container());
        }
    }
}
