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
//!
//! Ids, ARIs and roles are interned (`Symbols`): a log of a million events
//! names a few thousand accounts and resources over and over, and replay
//! keys its ledgers by them; as strings, copying and comparing them (ARIs
//! share a long prefix) was most of its time.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

// hashbrown with foldhash, as DataFusion's own hash joins: a million
// lookups by id cost a fraction of what std's SipHash costs.
use datafusion::common::HashMap;

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

/// An interned string: equal strings of one `Symbols` are equal symbols.
/// Its order is the order of first sight, not the strings' order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sym(u32);

/// The strings of one history, each kept once.
#[derive(Debug, Default)]
pub struct Symbols {
    index: HashMap<Arc<str>, Sym>,
    names: Vec<Arc<str>>,
}

impl Symbols {
    pub fn intern(&mut self, name: &str) -> Sym {
        if let Some(sym) = self.index.get(name) {
            return *sym;
        }
        // More than 4 billion distinct strings cannot be read into memory.
        let sym = Sym(u32::try_from(self.names.len()).unwrap_or(u32::MAX));
        let name: Arc<str> = Arc::from(name);
        self.names.push(name.clone());
        self.index.insert(name, sym);
        sym
    }

    /// The string of a symbol this table made.
    pub fn name(&self, sym: Sym) -> &str {
        &self.names[sym.0 as usize]
    }

    /// Room for `more` strings without growing.
    pub fn reserve(&mut self, more: usize) {
        self.index.reserve(more);
        self.names.reserve(more);
    }

    /// Each symbol's place in the order of its string, for the symbols
    /// given (others get `u32::MAX`): sorting by these sorts by the strings
    /// without comparing them again.
    pub fn ranks(&self, used: impl IntoIterator<Item = Sym>) -> Vec<u32> {
        let mut used: Vec<Sym> = used.into_iter().collect();
        used.sort_unstable();
        used.dedup();
        used.sort_unstable_by(|a, b| self.name(*a).cmp(self.name(*b)));
        let mut ranks = vec![u32::MAX; self.names.len()];
        for (rank, sym) in (0u32..).zip(used) {
            ranks[sym.0 as usize] = rank;
        }
        ranks
    }

    /// The string of a symbol, held apart from the table (which may grow
    /// while it is read).
    pub fn shared_name(&self, sym: Sym) -> Arc<str> {
        self.names[sym.0 as usize].clone()
    }
}

/// One audit event, with the objects it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEvent {
    pub id: Sym,
    pub time: Micros,
    pub action: Sym,
    pub actor_id: Option<Sym>,
    /// The summary: the only place the log names a role it granted
    /// ("user granted role for x@y (atlassian/site-admin)").
    pub message: Option<Sym>,
    /// Sorted, so that the same event read from two sources compares equal.
    pub objects: Vec<LogObject>,
}

/// An object of an event: `context` (what it acted on) or `container`
/// (where), as `event_context` has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct LogObject {
    pub container: bool,
    pub id: Sym,
    pub kind: Sym,
}

/// A grant as `user_role_assignments` keys it: (account, resource, role).
pub type Grant = (Sym, Sym, Sym);

/// The organization's grants at one instant (the log's end).
#[derive(Debug, Clone)]
pub struct State {
    pub time: Micros,
    /// The organization as a role's resource (`ari:cloud:platform::org/<id>`).
    pub org_resource: Sym,
    /// `user_role_assignments`, and whether its methods include `direct`.
    pub user_grants: Vec<(Grant, bool)>,
    /// `group_members`: (group, account).
    pub memberships: Vec<(Sym, Sym)>,
    /// `group_role_assignments`: (group, resource, role).
    pub group_grants: Vec<(Sym, Sym, Sym)>,
    /// The workspaces with a site: where an organization-wide site-admin
    /// role is held.
    pub sites: Vec<Sym>,
}

impl State {
    pub fn new(time: Micros, org_resource: Sym) -> Self {
        State {
            time,
            org_resource,
            user_grants: Vec::new(),
            memberships: Vec::new(),
            group_grants: Vec::new(),
            sites: Vec::new(),
        }
    }
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
    pub account_id: Sym,
    /// The group it is held through; `None`: held directly.
    pub group_id: Option<Sym>,
    pub resource_id: Sym,
    pub role: Sym,
    /// `None`: before the log began.
    pub valid_from: Option<Micros>,
    /// `None`: still held.
    pub valid_to: Option<Micros>,
    pub granted_by: Option<Sym>,
    pub revoked_by: Option<Sym>,
    /// The events that show it (grant, revoke; for a group's grant, the
    /// membership's and the group role's).
    pub event_ids: Vec<Sym>,
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

    pub fn grant(&self) -> Grant {
        (self.account_id, self.resource_id, self.role)
    }
}

/// An interval being replayed, keyed by what it grants.
#[derive(Debug, Clone)]
struct Open {
    from: Option<Micros>,
    granted_by: Option<Sym>,
    event_ids: Vec<Sym>,
    known_from: KnownFrom,
}

/// An interval replayed whole: its start, and its end if it ended.
#[derive(Debug, Clone)]
struct Span {
    open: Open,
    to: Option<Micros>,
    revoked_by: Option<Sym>,
    /// Ended by the end state's lacking it, not by an event.
    unlogged: bool,
}

/// Intervals of one kind of key (a direct grant, a membership, a group's
/// role), replayed in time order.
struct Ledger<K: Ord + Copy> {
    open: BTreeMap<K, Open>,
    closed: Vec<(K, Span)>,
    /// Keys the log named at all.
    seen: BTreeSet<K>,
}

impl<K: Ord + Copy> Ledger<K> {
    fn new() -> Self {
        Ledger {
            open: BTreeMap::new(),
            closed: Vec::new(),
            seen: BTreeSet::new(),
        }
    }

    fn grant(&mut self, key: K, e: &LogEvent) {
        self.seen.insert(key);
        match self.open.get_mut(&key) {
            // Granted again while held (a second grant path): one interval.
            Some(open) => open.event_ids.push(e.id),
            None => {
                self.open.insert(
                    key,
                    Open {
                        from: Some(e.time),
                        granted_by: e.actor_id,
                        event_ids: vec![e.id],
                        known_from: KnownFrom::Event,
                    },
                );
            }
        }
    }

    fn revoke(&mut self, key: K, e: &LogEvent) {
        let first = self.seen.insert(key);
        let mut open = match self.open.remove(&key) {
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
        open.event_ids.push(e.id);
        self.closed.push((
            key,
            Span {
                open,
                to: Some(e.time),
                revoked_by: e.actor_id,
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
                *key,
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

fn context_of(e: &LogEvent, kind: Sym) -> Option<Sym> {
    e.objects
        .iter()
        .find(|o| !o.container && o.kind == kind)
        .map(|o| o.id)
}

fn container_of(e: &LogEvent, kind: Sym) -> Option<Sym> {
    e.objects
        .iter()
        .find(|o| o.container && o.kind == kind)
        .map(|o| o.id)
}

/// An event replay could not read (a grant event without the objects or
/// role it should name): listed, so nobody takes the answer for complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unread {
    pub event_id: String,
    pub reason: String,
}

/// The intervals of one organization: `events` in any order, `end` the
/// state when the log was read, both of `symbols`. Every interval open at
/// `end.time` is one `end` holds, and every grant `end` holds is open then:
/// at `end.time` the intervals are `end` exactly. The intervals come
/// ordered by account, resource, role, group (as strings) and time.
pub fn replay(
    events: &[LogEvent],
    end: &State,
    symbols: &mut Symbols,
) -> (Vec<Interval>, Vec<Unread>) {
    let [
        users,
        groups,
        sites,
        products,
        org_admin,
        site_admin,
        product_user,
    ] = [
        "users",
        "groups",
        "sites",
        "products",
        ORG_ADMIN,
        SITE_ADMIN,
        PRODUCT_USER,
    ]
    .map(|name| symbols.intern(name));
    // Each event with the role its message names.
    let mut order: Vec<(&LogEvent, Option<Sym>)> = events
        .iter()
        .filter(|e| e.time <= end.time)
        .map(|e| {
            let message = e.message.map(|m| symbols.shared_name(m));
            let role = message
                .as_deref()
                .and_then(role_of_message)
                .map(|role| symbols.intern(role));
            (e, role)
        })
        .collect();
    let symbols = &*symbols;
    order.sort_by(|(a, _), (b, _)| {
        a.time
            .cmp(&b.time)
            .then_with(|| symbols.name(a.id).cmp(symbols.name(b.id)))
    });
    // Direct grants (account, resource, role), memberships (group,
    // account), a group's roles (group, resource, role).
    let mut direct: Ledger<Grant> = Ledger::new();
    let mut members: Ledger<(Sym, Sym)> = Ledger::new();
    let mut group_roles: Ledger<(Sym, Sym, Sym)> = Ledger::new();
    let mut unread = Vec::new();
    for (e, role_in_message) in order {
        let action = symbols.name(e.action);
        let skip = |reason: &str| Unread {
            event_id: symbols.name(e.id).to_string(),
            reason: format!("{action}: {reason}"),
        };
        let grant = match action {
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
        let user = context_of(e, users);
        let group = context_of(e, groups);
        let site = container_of(e, sites);
        // The resources a role event names.
        let role_resources = |role: Sym| -> &[Sym] {
            match &site {
                Some(site) => std::slice::from_ref(site),
                None if role == site_admin => &end.sites,
                None => std::slice::from_ref(&end.org_resource),
            }
        };
        let apply = |ledger: &mut Ledger<Grant>, who: Sym, role: Sym, resources: &[Sym]| {
            for resource in resources {
                let key = (who, *resource, role);
                if grant {
                    ledger.grant(key, e);
                } else {
                    ledger.revoke(key, e);
                }
            }
        };
        match action {
            "added_org_admin" | "removed_org_admin" => match user {
                Some(user) => apply(
                    &mut direct,
                    user,
                    org_admin,
                    std::slice::from_ref(&end.org_resource),
                ),
                None => unread.push(skip("no user in its context")),
            },
            "user_granted_role" | "user_revoked_role" => match (user, role_in_message) {
                (Some(user), Some(role)) => {
                    apply(&mut direct, user, role, role_resources(role));
                }
                (None, _) => unread.push(skip("no user in its context")),
                (_, None) => unread.push(skip("its message names no role")),
            },
            "user_granted_product_access" | "user_revoked_product_access" => {
                match (user, context_of(e, products)) {
                    (Some(user), Some(product)) => {
                        apply(&mut direct, user, product_user, &[product]);
                    }
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
                let role = if action == "group_revoked_product_access" {
                    Some(product_user)
                } else {
                    role_in_message
                };
                match (group, role) {
                    (Some(group), Some(role)) => match context_of(e, products) {
                        Some(product) => apply(&mut group_roles, group, role, &[product]),
                        None => apply(&mut group_roles, group, role, role_resources(role)),
                    },
                    _ => unread.push(skip("no group and role it names")),
                }
            }
        }
    }

    // The end state. A grant held directly is one whose methods say so; a
    // grant held only another way (inferred, or a group the end state
    // does not explain) is kept as held directly, so that the end is exact.
    let held_members: BTreeSet<(Sym, Sym)> = end.memberships.iter().copied().collect();
    let held_group_roles: BTreeSet<(Sym, Sym, Sym)> = end.group_grants.iter().copied().collect();
    let through_groups: BTreeSet<Grant> = {
        let mut by_group: BTreeMap<Sym, Vec<(Sym, Sym)>> = BTreeMap::new();
        for (g, r, role) in &end.group_grants {
            by_group.entry(*g).or_default().push((*r, *role));
        }
        end.memberships
            .iter()
            .flat_map(|(g, a)| {
                by_group
                    .get(g)
                    .into_iter()
                    .flatten()
                    .map(move |(r, role)| (*a, *r, *role))
            })
            .collect()
    };
    let held_direct: BTreeSet<Grant> = end
        .user_grants
        .iter()
        .filter(|(grant, direct)| *direct || !through_groups.contains(grant))
        .map(|(grant, _)| *grant)
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
    let mut roles_of: BTreeMap<Sym, Vec<_>> = BTreeMap::new();
    for ((group, resource, role), span) in group_roles.all() {
        roles_of
            .entry(group)
            .or_default()
            .push((resource, role, span));
    }
    for ((group, account), member) in members.all() {
        let m = &member.open;
        for (resource, role, span) in roles_of.get(&group).into_iter().flatten() {
            let r = &span.open;
            // The later start, None (before the log) being the earliest.
            let (from, start) = match (m.from, r.from) {
                (Some(a), Some(b)) if b > a => (r.from, r),
                (None, Some(_)) => (r.from, r),
                _ => (m.from, m),
            };
            let (to, revoked_by, unlogged) = match (member.to, span.to) {
                (Some(a), Some(b)) if b < a => (Some(b), span.revoked_by, span.unlogged),
                (None, Some(b)) => (Some(b), span.revoked_by, span.unlogged),
                _ => (member.to, member.revoked_by, member.unlogged),
            };
            if let (Some(f), Some(t)) = (from, to)
                && f >= t
            {
                continue;
            }
            let mut event_ids = m.event_ids.clone();
            event_ids.extend_from_slice(&r.event_ids);
            out.push(Interval {
                account_id: account,
                group_id: Some(group),
                resource_id: *resource,
                role: *role,
                valid_from: from,
                valid_to: to,
                granted_by: start.granted_by,
                revoked_by,
                event_ids,
                known_from: start.known_from,
                ended_unlogged: unlogged,
            });
        }
    }
    // By the strings, not the symbols (whose order is the reading's): the
    // same history always comes in the same order.
    let ranks = symbols.ranks(out.iter().flat_map(|i| {
        [i.account_id, i.resource_id, i.role]
            .into_iter()
            .chain(i.group_id)
    }));
    let rank = |sym: Sym| ranks[sym.0 as usize];
    out.sort_by_key(|i| {
        (
            rank(i.account_id),
            rank(i.resource_id),
            rank(i.role),
            i.group_id.map(rank),
            i.valid_from,
            i.valid_to,
        )
    });
    (out, unread)
}

/// The grants held at `at`, each once.
pub fn grants_at(intervals: &[Interval], at: Micros) -> BTreeSet<Grant> {
    intervals
        .iter()
        .filter(|i| i.covers(at))
        .map(Interval::grant)
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
