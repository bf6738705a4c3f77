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

fn event(id: &str, time: Micros, action: &str, objects: &[(bool, &str, &str)]) -> LogEvent {
    LogEvent {
        id: id.to_string(),
        time,
        action: action.to_string(),
        actor_id: Some("boss".to_string()),
        message: None,
        objects: objects
            .iter()
            .map(|(container, kind, id)| LogObject {
                container: *container,
                id: id.to_string(),
                kind: kind.to_string(),
            })
            .collect(),
    }
}

fn state(time: Micros) -> State {
    State {
        time,
        org_resource: "org".to_string(),
        ..State::default()
    }
}

#[test]
fn a_revoke_without_a_grant_began_before_the_log() {
    let events = [event(
        "e1",
        10,
        "removed_org_admin",
        &[(false, "users", "ann")],
    )];
    let (intervals, unread) = replay(&events, &state(100));
    assert!(unread.is_empty());
    assert_eq!(intervals.len(), 1);
    let i = &intervals[0];
    assert_eq!((i.valid_from, i.valid_to), (None, Some(10)));
    assert_eq!(i.known_from, KnownFrom::BeforeLog);
    assert!(i.covers(5) && !i.covers(10));
}

#[test]
fn a_membership_grants_its_groups_roles_for_its_interval() {
    let events = [
        event(
            "e1",
            10,
            "user_added_to_group",
            &[(false, "groups", "g"), (false, "users", "ann")],
        ),
        event(
            "e2",
            20,
            "user_removed_from_group",
            &[(false, "groups", "g"), (false, "users", "ann")],
        ),
    ];
    let mut end = state(100);
    end.group_grants = vec![("g".into(), "org".into(), ORG_ADMIN.into())];
    let (intervals, _) = replay(&events, &end);
    assert_eq!(intervals.len(), 1);
    let i = &intervals[0];
    assert_eq!(i.group_id.as_deref(), Some("g"));
    assert_eq!((i.valid_from, i.valid_to), (Some(10), Some(20)));
    assert_eq!(i.known_from, KnownFrom::Event);
    assert!(grants_at(&intervals, 15).contains(&("ann".into(), "org".into(), ORG_ADMIN.into())));
    assert!(grants_at(&intervals, 25).is_empty());
}

#[test]
fn the_end_state_is_exact_at_its_time() {
    // Granted by the log and gone without an event; held with no event.
    let events = [event(
        "e1",
        10,
        "user_granted_product_access",
        &[(false, "users", "ann"), (false, "products", "site-1")],
    )];
    let mut end = state(100);
    end.user_grants = vec![(
        "bob".into(),
        "org".into(),
        "atlassian/user-access-admin".into(),
        "direct".into(),
    )];
    let (intervals, _) = replay(&events, &end);
    let at_end = grants_at(&intervals, 100);
    assert_eq!(
        at_end,
        BTreeSet::from([(
            "bob".to_string(),
            "org".to_string(),
            "atlassian/user-access-admin".to_string()
        )])
    );
    let ann = intervals.iter().find(|i| i.account_id == "ann").unwrap();
    assert!(ann.ended_unlogged && ann.valid_to == Some(100));
    let bob = intervals.iter().find(|i| i.account_id == "bob").unwrap();
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
