//! Who held which grant when: the audit log's grant, revoke, membership and
//! product-access events replayed into intervals, and joined with the state
//! at the log's end (the live tables, or a snapshot's). Pure: no I/O, times
//! are microseconds since the epoch (UTC), as the tables hold them.
//!
//! A grant is what `user_role_assignments` lists: (account, resource, role).
//! It is held directly (an interval with no group) or through a group (the
//! membership's interval meeting the interval in which the group grants the
//! role), as the API derives `group_direct`. Where the log does not say when
//! a grant began, the interval says so (`KnownFrom`), never guesses.

use std::collections::{BTreeMap, BTreeSet};

/// Microseconds since 1970-01-01T00:00:00Z.
pub type Micros = i64;

pub const ORG_ADMIN: &str = "atlassian/org-admin";
pub const SITE_ADMIN: &str = "atlassian/site-admin";
/// The role direct product access gives.
pub const PRODUCT_USER: &str = "atlassian/user";

/// The audit log's actions replay reads; every other event changes no grant.
pub const ACTIONS: &[&str] = &[
    "added_org_admin",
    "removed_org_admin",
    "user_granted_role",
    "user_revoked_role",
    "user_added_to_group",
    "user_removed_from_group",
    "user_granted_product_access",
    "user_revoked_product_access",
    "group_revoked_role",
    "group_revoked_admin_access",
    "group_revoked_product_access",
];

/// One audit event, with the objects it names.
#[derive(Debug, Clone)]
pub struct LogEvent {
    pub id: String,
    pub time: Micros,
    pub action: String,
    pub actor_id: Option<String>,
    /// The summary: the only place the log names a role it granted
    /// ("user granted role for x@y (atlassian/site-admin)").
    pub message: Option<String>,
    pub objects: Vec<LogObject>,
}

/// An object of an event: `context` (what it acted on) or `container`
/// (where), as `event_context` has it.
#[derive(Debug, Clone)]
pub struct LogObject {
    pub container: bool,
    pub id: String,
    pub kind: String,
}

/// The organization's grants at one instant (the log's end).
#[derive(Debug, Clone, Default)]
pub struct State {
    pub time: Micros,
    /// The organization as a role's resource (`ari:cloud:platform::org/<id>`).
    pub org_resource: String,
    /// `user_role_assignments`: (account, resource, role, assignment methods).
    pub user_grants: Vec<(String, String, String, String)>,
    /// `group_members`: (group, account).
    pub memberships: Vec<(String, String)>,
    /// `group_role_assignments`: (group, resource, role).
    pub group_grants: Vec<(String, String, String)>,
    /// The workspaces with a site: where an organization-wide site-admin
    /// role is held.
    pub sites: Vec<String>,
}

/// How an interval's start is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum KnownFrom {
    /// An event of the log granted it.
    Event,
    /// The state at the log's end holds it and no event says when it began
    /// after the log last took it away: held from that state's time.
    Snapshot,
    /// Held when the log begins (a revoke or the end state shows it, no
    /// grant precedes it): `valid_from` is NULL, never guessed.
    BeforeLog,
}

impl KnownFrom {
    pub fn as_str(self) -> &'static str {
        match self {
            KnownFrom::Event => "event",
            KnownFrom::Snapshot => "snapshot",
            KnownFrom::BeforeLog => "before_log",
        }
    }
}

/// One grant held from one time until another (or still).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interval {
    pub account_id: String,
    /// The group it is held through; `None`: held directly.
    pub group_id: Option<String>,
    pub resource_id: String,
    pub role: String,
    /// `None`: before the log began.
    pub valid_from: Option<Micros>,
    /// `None`: still held.
    pub valid_to: Option<Micros>,
    pub granted_by: Option<String>,
    pub revoked_by: Option<String>,
    /// The events that show it (grant, revoke; for a group's grant, the
    /// membership's and the group role's).
    pub event_ids: Vec<String>,
    pub known_from: KnownFrom,
    /// `true`: the state at the log's end no longer holds it and no event
    /// took it away: ended at that state's time, not at a known instant.
    pub ended_unlogged: bool,
}

impl Interval {
    /// Held at `at`: from its start (one before the log counts) until its end.
    pub fn covers(&self, at: Micros) -> bool {
        self.valid_from.is_none_or(|from| from <= at) && self.valid_to.is_none_or(|to| at < to)
    }

    /// Held at some instant of [from, to).
    pub fn overlaps(&self, from: Micros, to: Micros) -> bool {
        self.valid_from.is_none_or(|f| f < to) && self.valid_to.is_none_or(|t| from < t)
    }
}

/// An interval being replayed, keyed by what it grants.
#[derive(Debug, Clone)]
struct Open {
    from: Option<Micros>,
    granted_by: Option<String>,
    event_ids: Vec<String>,
    known_from: KnownFrom,
}

/// An interval replayed whole: its start, and its end if it ended.
#[derive(Debug, Clone)]
struct Span {
    open: Open,
    to: Option<Micros>,
    revoked_by: Option<String>,
    /// Ended by the end state's lacking it, not by an event.
    unlogged: bool,
}

/// Intervals of one kind of key (a direct grant, a membership, a group's
/// role), replayed in time order.
struct Ledger<K: Ord + Clone> {
    open: BTreeMap<K, Open>,
    closed: Vec<(K, Span)>,
    /// Keys the log named at all.
    seen: BTreeSet<K>,
}

impl<K: Ord + Clone> Ledger<K> {
    fn new() -> Self {
        Ledger {
            open: BTreeMap::new(),
            closed: Vec::new(),
            seen: BTreeSet::new(),
        }
    }

    fn grant(&mut self, key: K, e: &LogEvent) {
        self.seen.insert(key.clone());
        match self.open.get_mut(&key) {
            // Granted again while held (a second grant path): one interval.
            Some(open) => open.event_ids.push(e.id.clone()),
            None => {
                self.open.insert(
                    key,
                    Open {
                        from: Some(e.time),
                        granted_by: e.actor_id.clone(),
                        event_ids: vec![e.id.clone()],
                        known_from: KnownFrom::Event,
                    },
                );
            }
        }
    }

    fn revoke(&mut self, key: K, e: &LogEvent) {
        let first = self.seen.insert(key.clone());
        let open = match self.open.remove(&key) {
            Some(open) => open,
            // Taken away with no grant before it in the log: held since
            // before the log. A revoke of what was already taken away
            // changes nothing.
            None if first => Open {
                from: None,
                granted_by: None,
                event_ids: Vec::new(),
                known_from: KnownFrom::BeforeLog,
            },
            None => return,
        };
        let mut open = open;
        open.event_ids.push(e.id.clone());
        self.closed.push((
            key,
            Span {
                open,
                to: Some(e.time),
                revoked_by: e.actor_id.clone(),
                unlogged: false,
            },
        ));
    }

    /// Make the open intervals what `held` (the state at `time`) says:
    /// one it lacks ended unlogged by then; one it has that nothing open
    /// explains began before the log (never named by it) or, when the log
    /// took it away last, at `time`.
    fn settle(&mut self, held: &BTreeSet<K>, time: Micros) {
        let open = std::mem::take(&mut self.open);
        for (key, interval) in open {
            if held.contains(&key) {
                self.open.insert(key, interval);
            } else {
                self.closed.push((
                    key,
                    Span {
                        open: interval,
                        to: Some(time),
                        revoked_by: None,
                        unlogged: true,
                    },
                ));
            }
        }
        for key in held {
            if self.open.contains_key(key) {
                continue;
            }
            let (from, known_from) = if self.seen.contains(key) {
                (Some(time), KnownFrom::Snapshot)
            } else {
                (None, KnownFrom::BeforeLog)
            };
            self.open.insert(
                key.clone(),
                Open {
                    from,
                    granted_by: None,
                    event_ids: Vec::new(),
                    known_from,
                },
            );
        }
    }

    /// Every interval, ended or not.
    fn all(self) -> Vec<(K, Span)> {
        let mut all = self.closed;
        all.extend(self.open.into_iter().map(|(k, open)| {
            let span = Span {
                open,
                to: None,
                revoked_by: None,
                unlogged: false,
            };
            (k, span)
        }));
        all
    }
}

/// The role a role event names, and the site it names, if any: the last
/// parenthesis of its message, "(ROLE)" or "(ROLE on SITE NAME)".
pub fn role_of_message(message: &str) -> Option<&str> {
    let start = message.rfind('(')?;
    let inner = message[start + 1..].strip_suffix(')')?;
    let role = inner.split(" on ").next()?.trim();
    (!role.is_empty()).then_some(role)
}

fn context_of<'e>(e: &'e LogEvent, kind: &str) -> Option<&'e str> {
    e.objects
        .iter()
        .find(|o| !o.container && o.kind == kind)
        .map(|o| o.id.as_str())
}

fn container_of<'e>(e: &'e LogEvent, kind: &str) -> Option<&'e str> {
    e.objects
        .iter()
        .find(|o| o.container && o.kind == kind)
        .map(|o| o.id.as_str())
}

/// An event replay could not read (a grant event without the objects or
/// role it should name): listed, so nobody takes the answer for complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unread {
    pub event_id: String,
    pub reason: String,
}

/// The intervals of one organization: `events` in any order, `end` the
/// state when the log was read. Every interval open at `end.time` is one
/// `end` holds, and every grant `end` holds is open then: at `end.time`
/// the intervals are `end` exactly.
pub fn replay(events: &[LogEvent], end: &State) -> (Vec<Interval>, Vec<Unread>) {
    let mut order: Vec<&LogEvent> = events.iter().filter(|e| e.time <= end.time).collect();
    order.sort_by(|a, b| a.time.cmp(&b.time).then_with(|| a.id.cmp(&b.id)));
    // Direct grants (account, resource, role), memberships (group,
    // account), a group's roles (group, resource, role).
    let mut direct: Ledger<(String, String, String)> = Ledger::new();
    let mut members: Ledger<(String, String)> = Ledger::new();
    let mut group_roles: Ledger<(String, String, String)> = Ledger::new();
    let mut unread = Vec::new();
    for e in order {
        let skip = |reason: &str| Unread {
            event_id: e.id.clone(),
            reason: format!("{}: {reason}", e.action),
        };
        let grant = match e.action.as_str() {
            "added_org_admin"
            | "user_granted_role"
            | "user_added_to_group"
            | "user_granted_product_access" => true,
            "removed_org_admin"
            | "user_revoked_role"
            | "user_removed_from_group"
            | "user_revoked_product_access"
            | "group_revoked_role"
            | "group_revoked_admin_access"
            | "group_revoked_product_access" => false,
            _ => continue,
        };
        let user = context_of(e, "users").map(str::to_string);
        let group = context_of(e, "groups").map(str::to_string);
        let site = container_of(e, "sites").map(str::to_string);
        // (resource, role) pairs a role event names.
        let role_targets = |role: &str| -> Vec<(String, String)> {
            match (&site, role) {
                (Some(site), _) => vec![(site.clone(), role.to_string())],
                (None, SITE_ADMIN) => end
                    .sites
                    .iter()
                    .map(|s| (s.clone(), role.to_string()))
                    .collect(),
                (None, _) => vec![(end.org_resource.clone(), role.to_string())],
            }
        };
        let apply = |ledger: &mut Ledger<(String, String, String)>,
                     who: String,
                     targets: Vec<(String, String)>| {
            for (resource, role) in targets {
                let key = (who.clone(), resource, role);
                if grant {
                    ledger.grant(key, e);
                } else {
                    ledger.revoke(key, e);
                }
            }
        };
        match e.action.as_str() {
            "added_org_admin" | "removed_org_admin" => match user {
                Some(user) => apply(
                    &mut direct,
                    user,
                    vec![(end.org_resource.clone(), ORG_ADMIN.to_string())],
                ),
                None => unread.push(skip("no user in its context")),
            },
            "user_granted_role" | "user_revoked_role" => {
                match (user, e.message.as_deref().and_then(role_of_message)) {
                    (Some(user), Some(role)) => apply(&mut direct, user, role_targets(role)),
                    (None, _) => unread.push(skip("no user in its context")),
                    (_, None) => unread.push(skip("its message names no role")),
                }
            }
            "user_granted_product_access" | "user_revoked_product_access" => {
                match (user, context_of(e, "products")) {
                    (Some(user), Some(product)) => apply(
                        &mut direct,
                        user,
                        vec![(product.to_string(), PRODUCT_USER.to_string())],
                    ),
                    _ => unread.push(skip("no user and product in its context")),
                }
            }
            "user_added_to_group" | "user_removed_from_group" => match (user, group) {
                (Some(user), Some(group)) => {
                    if grant {
                        members.grant((group, user), e);
                    } else {
                        members.revoke((group, user), e);
                    }
                }
                _ => unread.push(skip("no user and group in its context")),
            },
            _ => {
                // A group's role taken away: the product access kind names
                // the product, the others their role in the message.
                let role = if e.action == "group_revoked_product_access" {
                    Some(PRODUCT_USER)
                } else {
                    e.message.as_deref().and_then(role_of_message)
                };
                let product = context_of(e, "products").map(str::to_string);
                match (group, role) {
                    (Some(group), Some(role)) => {
                        let targets = match product {
                            Some(p) => vec![(p, role.to_string())],
                            None => role_targets(role),
                        };
                        apply(&mut group_roles, group, targets);
                    }
                    _ => unread.push(skip("no group and role it names")),
                }
            }
        }
    }

    // The end state. A grant held directly is one whose methods say so; a
    // grant held only another way (inferred, or a group the end state
    // does not explain) is kept as held directly, so that the end is exact.
    let held_members: BTreeSet<(String, String)> = end.memberships.iter().cloned().collect();
    let held_group_roles: BTreeSet<(String, String, String)> =
        end.group_grants.iter().cloned().collect();
    let through_groups: BTreeSet<(String, String, String)> = {
        let mut by_group: BTreeMap<&str, Vec<(&str, &str)>> = BTreeMap::new();
        for (g, r, role) in &end.group_grants {
            by_group.entry(g).or_default().push((r, role));
        }
        end.memberships
            .iter()
            .flat_map(|(g, a)| {
                by_group
                    .get(g.as_str())
                    .into_iter()
                    .flatten()
                    .map(move |(r, role)| (a.clone(), r.to_string(), role.to_string()))
            })
            .collect()
    };
    let held_direct: BTreeSet<(String, String, String)> = end
        .user_grants
        .iter()
        .filter(|(a, r, role, methods)| {
            methods.split(',').any(|m| m.trim() == "direct")
                || !through_groups.contains(&(a.clone(), r.clone(), role.clone()))
        })
        .map(|(a, r, role, _)| (a.clone(), r.clone(), role.clone()))
        .collect();
    direct.settle(&held_direct, end.time);
    members.settle(&held_members, end.time);
    group_roles.settle(&held_group_roles, end.time);

    let mut out: Vec<Interval> = direct
        .all()
        .into_iter()
        .map(|((account_id, resource_id, role), span)| Interval {
            account_id,
            group_id: None,
            resource_id,
            role,
            valid_from: span.open.from,
            valid_to: span.to,
            granted_by: span.open.granted_by,
            revoked_by: span.revoked_by,
            event_ids: span.open.event_ids,
            known_from: span.open.known_from,
            ended_unlogged: span.unlogged,
        })
        .collect();

    // Through groups: each membership meets each interval in which its
    // group granted a role.
    let mut roles_of: BTreeMap<String, Vec<_>> = BTreeMap::new();
    for ((group, resource, role), span) in group_roles.all() {
        roles_of
            .entry(group)
            .or_default()
            .push((resource, role, span));
    }
    for ((group, account), member) in members.all() {
        let (m, m_to, m_by, m_unlogged) =
            (&member.open, member.to, &member.revoked_by, member.unlogged);
        for (resource, role, span) in roles_of.get(&group).into_iter().flatten() {
            let (r, r_to, r_by, r_unlogged) =
                (&span.open, &span.to, &span.revoked_by, &span.unlogged);
            // The later start, None (before the log) being the earliest.
            let (from, start) = match (m.from, r.from) {
                (Some(a), Some(b)) if b > a => (r.from, r),
                (None, Some(_)) => (r.from, r),
                _ => (m.from, m),
            };
            let (to, revoked_by, unlogged) = match (m_to, *r_to) {
                (Some(a), Some(b)) if b < a => (Some(b), r_by.clone(), *r_unlogged),
                (None, Some(b)) => (Some(b), r_by.clone(), *r_unlogged),
                _ => (m_to, m_by.clone(), m_unlogged),
            };
            if let (Some(f), Some(t)) = (from, to)
                && f >= t
            {
                continue;
            }
            let mut event_ids = m.event_ids.clone();
            event_ids.extend(r.event_ids.iter().cloned());
            out.push(Interval {
                account_id: account.clone(),
                group_id: Some(group.clone()),
                resource_id: resource.clone(),
                role: role.clone(),
                valid_from: from,
                valid_to: to,
                granted_by: start.granted_by.clone(),
                revoked_by,
                event_ids,
                known_from: start.known_from,
                ended_unlogged: unlogged,
            });
        }
    }
    out.sort_by(|a, b| {
        (
            &a.account_id,
            &a.resource_id,
            &a.role,
            &a.group_id,
            a.valid_from,
        )
            .cmp(&(
                &b.account_id,
                &b.resource_id,
                &b.role,
                &b.group_id,
                b.valid_from,
            ))
    });
    (out, unread)
}

/// The grants held at `at`: (account, resource, role) each once.
pub fn grants_at(intervals: &[Interval], at: Micros) -> BTreeSet<(String, String, String)> {
    intervals
        .iter()
        .filter(|i| i.covers(at))
        .map(|i| (i.account_id.clone(), i.resource_id.clone(), i.role.clone()))
        .collect()
}

/// One audit log a history reads: the session's own (live or a snapshot's)
/// or an export's (`--history`), and the span it covers: from its earliest
/// grant event to the time it was read (`None`: no grant event in it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceSpan {
    pub source: String,
    pub from: Option<Micros>,
    pub to: Micros,
    /// The grant events replay read from it (the same event in two sources
    /// counts in both).
    pub events: usize,
}

/// A row of `history_coverage`: a source's span, or a gap (`source` None:
/// a period between sources that none covers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    pub source: Option<String>,
    pub from: Option<Micros>,
    pub to: Micros,
    pub events: usize,
}

/// What a history covers, and from when it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coverage {
    /// Every source's span and every gap, oldest first.
    pub periods: Vec<Period>,
    /// The start of the covered stretch that reaches `end` without a gap:
    /// only events from then on are replayed, and only instants from then
    /// to `end` are answered. Across a gap a revoke or a grant may be
    /// missing, so what came before it cannot be joined to the end state.
    /// `None`: no stretch reaches `end` (nothing is answered).
    pub answered_from: Option<Micros>,
}

/// The coverage of `sources`, whose history ends at `end` (the end state's
/// time). A span reaching past `end` is cut there.
pub fn coverage(sources: &[SourceSpan], end: Micros) -> Coverage {
    let mut spans: Vec<&SourceSpan> = sources.iter().collect();
    spans.sort_by_key(|s| (s.from.is_some(), s.from, s.to));
    let mut periods = Vec::new();
    // The stretch being merged: (start, end).
    let mut stretch: Option<(Micros, Micros)> = None;
    for span in spans {
        let to = span.to.min(end);
        periods.push(Period {
            source: Some(span.source.clone()),
            from: span.from,
            to,
            events: span.events,
        });
        let Some(from) = span.from.filter(|f| *f <= to) else {
            continue;
        };
        stretch = match stretch {
            Some((start, reach)) if from <= reach => Some((start, reach.max(to))),
            Some((_, reach)) => {
                periods.push(Period {
                    source: None,
                    from: Some(reach),
                    to: from,
                    events: 0,
                });
                Some((from, to))
            }
            None => Some((from, to)),
        };
    }
    let answered_from = match stretch {
        Some((start, reach)) if reach >= end => Some(start),
        Some((_, reach)) => {
            periods.push(Period {
                source: None,
                from: Some(reach),
                to: end,
                events: 0,
            });
            None
        }
        None => None,
    };
    periods.sort_by_key(|p| (p.from.is_some(), p.from, p.source.is_none()));
    Coverage {
        periods,
        answered_from,
    }
}
