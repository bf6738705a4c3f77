//! Unit tests of `orgsql::history` (src/history.rs).

use orgsql::history::*;
use std::collections::BTreeSet;

fn span(source: &str, from: Option<Micros>, to: Micros) -> SourceSpan {
    SourceSpan {
        source: source.to_string(),
        from,
        to,
        events: 1,
    }
}

#[test]
fn overlapping_sources_leave_no_gap_and_answer_from_the_oldest() {
    let got = coverage(
        &[span("live", Some(50), 100), span("old", Some(10), 60)],
        100,
    );
    assert_eq!(got.answered_from, Some(10));
    assert!(got.periods.iter().all(|p| p.source.is_some()), "{got:?}");
    assert_eq!(got.periods[0].source.as_deref(), Some("old"));
}

#[test]
fn a_gap_between_sources_is_a_row_and_cuts_what_is_answered() {
    let got = coverage(
        &[span("live", Some(50), 100), span("old", Some(10), 30)],
        100,
    );
    let gaps: Vec<_> = got.periods.iter().filter(|p| p.source.is_none()).collect();
    assert_eq!(gaps.len(), 1, "{got:?}");
    assert_eq!((gaps[0].from, gaps[0].to), (Some(30), 50));
    // Only the stretch that reaches the end is answered.
    assert_eq!(got.answered_from, Some(50));
}

#[test]
fn no_source_reaching_the_end_answers_nothing() {
    let got = coverage(&[span("old", Some(10), 30), span("live", None, 100)], 100);
    assert_eq!(got.answered_from, None);
    let gap = got
        .periods
        .iter()
        .find(|p| p.source.is_none())
        .expect("a gap");
    assert_eq!((gap.from, gap.to), (Some(30), 100));
}

fn event(
    s: &mut Symbols,
    id: &str,
    time: Micros,
    action: &str,
    objects: &[(bool, &str, &str)],
) -> LogEvent {
    let mut objects: Vec<LogObject> = objects
        .iter()
        .map(|(container, kind, id)| LogObject {
            container: *container,
            id: s.intern(id),
            kind: s.intern(kind),
        })
        .collect();
    objects.sort();
    LogEvent {
        id: s.intern(id),
        time,
        action: s.intern(action),
        actor_id: Some(s.intern("boss")),
        message: None,
        objects,
    }
}

fn state(s: &mut Symbols, time: Micros) -> State {
    State::new(time, s.intern("org"))
}

#[test]
fn a_revoke_without_a_grant_began_before_the_log() {
    let s = &mut Symbols::default();
    let events = [event(
        s,
        "e1",
        10,
        "removed_org_admin",
        &[(false, "users", "ann")],
    )];
    let end = state(s, 100);
    let (intervals, unread) = replay(&events, &end, s);
    assert!(unread.is_empty());
    assert_eq!(intervals.len(), 1);
    let i = &intervals[0];
    assert_eq!((i.valid_from, i.valid_to), (None, Some(10)));
    assert_eq!(i.known_from, KnownFrom::BeforeLog);
    assert!(i.covers(5) && !i.covers(10));
}

#[test]
fn a_membership_grants_its_groups_roles_for_its_interval() {
    let s = &mut Symbols::default();
    let events = [
        event(
            s,
            "e1",
            10,
            "user_added_to_group",
            &[(false, "groups", "g"), (false, "users", "ann")],
        ),
        event(
            s,
            "e2",
            20,
            "user_removed_from_group",
            &[(false, "groups", "g"), (false, "users", "ann")],
        ),
    ];
    let mut end = state(s, 100);
    end.group_grants = vec![(s.intern("g"), s.intern("org"), s.intern(ORG_ADMIN))];
    let (intervals, _) = replay(&events, &end, s);
    assert_eq!(intervals.len(), 1);
    let i = &intervals[0];
    assert_eq!(i.group_id.map(|g| s.name(g)), Some("g"));
    assert_eq!((i.valid_from, i.valid_to), (Some(10), Some(20)));
    assert_eq!(i.known_from, KnownFrom::Event);
    let ann_admin = (s.intern("ann"), s.intern("org"), s.intern(ORG_ADMIN));
    assert!(grants_at(&intervals, 15).contains(&ann_admin));
    assert!(grants_at(&intervals, 25).is_empty());
}

#[test]
fn the_end_state_is_exact_at_its_time() {
    let s = &mut Symbols::default();
    // Granted by the log and gone without an event; held with no event.
    let events = [event(
        s,
        "e1",
        10,
        "user_granted_product_access",
        &[(false, "users", "ann"), (false, "products", "site-1")],
    )];
    let mut end = state(s, 100);
    let bob_admin = (
        s.intern("bob"),
        s.intern("org"),
        s.intern("atlassian/user-access-admin"),
    );
    end.user_grants = vec![(bob_admin, true)];
    let (intervals, _) = replay(&events, &end, s);
    assert_eq!(grants_at(&intervals, 100), BTreeSet::from([bob_admin]));
    let ann = intervals
        .iter()
        .find(|i| s.name(i.account_id) == "ann")
        .unwrap();
    assert!(ann.ended_unlogged && ann.valid_to == Some(100));
    let bob = intervals
        .iter()
        .find(|i| s.name(i.account_id) == "bob")
        .unwrap();
    assert_eq!(bob.known_from, KnownFrom::BeforeLog);
}

#[test]
fn a_role_is_read_from_the_message() {
    assert_eq!(
        role_of_message("user granted role for a@b.c (atlassian/site-admin)"),
        Some(SITE_ADMIN)
    );
    assert_eq!(
        role_of_message("user granted role for a@b.c (atlassian/admin on acme)"),
        Some("atlassian/admin")
    );
    assert_eq!(role_of_message("user granted role for a@b.c"), None);
}

#[test]
fn a_role_granted_in_a_message_is_held_on_the_site_it_names() {
    let s = &mut Symbols::default();
    let mut granted = event(
        s,
        "e1",
        10,
        "user_granted_role",
        &[(false, "users", "ann"), (true, "sites", "site-1")],
    );
    granted.message = Some(s.intern("user granted role for ann@x.y (atlassian/admin on acme)"));
    let mut end = state(s, 100);
    let ann_admin = (
        s.intern("ann"),
        s.intern("site-1"),
        s.intern("atlassian/admin"),
    );
    end.user_grants = vec![(ann_admin, true)];
    let (intervals, unread) = replay(&[granted], &end, s);
    assert!(unread.is_empty(), "{unread:?}");
    assert_eq!(intervals.len(), 1, "{intervals:?}");
    assert_eq!(intervals[0].grant(), ann_admin);
    assert_eq!(
        (intervals[0].valid_from, intervals[0].known_from),
        (Some(10), KnownFrom::Event)
    );
}
