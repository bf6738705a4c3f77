//! Filters reach the API: a bounded question costs requests in proportion to
//! its answer, not to the whole audit log. Proven by the emulator's counts.

use crate::common::*;
use chrono::Duration;
use orgsql::emulator::Faults;

/// /events answers at most 500 events a page.
const PAGE: u64 = 500;

fn pages_for(rows: usize) -> u64 {
    (rows as u64).div_ceil(PAGE).max(1)
}

#[tokio::test]
async fn a_time_window_on_events_fetches_only_that_window() {
    let emu = emulator(spec(20, 6000), Faults::default(), None).await;
    let org = emu.org().clone();
    let ctx = session(emu.client_config());
    let since = fixed_now() - Duration::days(1);
    let matching = org.events.iter().filter(|e| e.time >= since).count();
    assert!(matching > 0 && matching < org.events.len() / 10);

    let sql = format!(
        "SELECT count(*) FROM events WHERE time >= TIMESTAMP '{}'",
        since.to_rfc3339()
    );
    assert_eq!(column(&ctx, &sql).await, vec![matching.to_string()]);
    assert!(
        emu.requests("/events") <= pages_for(matching) + 1,
        "{} requests",
        emu.requests("/events")
    );

    // BETWEEN, with exact rows.
    emu.reset_requests();
    let (start, end) = (
        fixed_now() - Duration::days(30),
        fixed_now() - Duration::days(20),
    );
    let sql = format!(
        "SELECT event_id FROM events WHERE time BETWEEN TIMESTAMP '{}' AND TIMESTAMP '{}'",
        start.to_rfc3339(),
        end.to_rfc3339()
    );
    let expected: Vec<String> = org
        .events
        .iter()
        .filter(|e| e.time >= start && e.time <= end)
        .map(|e| e.id.clone())
        .collect();
    assert_eq!(column(&ctx, &sql).await, expected);
    assert!(emu.requests("/events") <= pages_for(expected.len()) + 1);
}

#[tokio::test]
async fn action_actor_and_ip_filters_go_to_the_api() {
    let emu = emulator(spec(40, 4000), Faults::default(), None).await;
    let org = emu.org().clone();
    let ctx = session(emu.client_config());

    let created = org
        .events
        .iter()
        .filter(|e| e.action == "group_created")
        .count();
    let deleted = org
        .events
        .iter()
        .filter(|e| e.action == "group_deleted")
        .count();
    let sql = "SELECT count(*) FROM events WHERE action IN ('group_created', 'group_deleted')";
    assert_eq!(
        column(&ctx, sql).await,
        vec![(created + deleted).to_string()]
    );
    // One listing per action, each a single page.
    assert_eq!(emu.requests("/events"), 2);

    emu.reset_requests();
    let actor = org.events[0].actor_id.clone();
    let expected: Vec<String> = org
        .events
        .iter()
        .filter(|e| e.actor_id == actor)
        .map(|e| e.id.clone())
        .collect();
    let sql = format!("SELECT event_id FROM events WHERE actor_id = '{actor}'");
    assert_eq!(column(&ctx, &sql).await, expected);
    assert_eq!(emu.requests("/events"), pages_for(expected.len()));

    emu.reset_requests();
    let ip = org
        .events
        .iter()
        .find_map(|e| e.location.as_ref())
        .map(|l| l.ip.clone())
        .expect("an event with an ip");
    let expected = org
        .events
        .iter()
        .filter(|e| e.location.as_ref().is_some_and(|l| l.ip == ip))
        .count();
    let sql = format!("SELECT count(*) FROM events WHERE ip = '{ip}' AND action <> 'nothing'");
    assert_eq!(column(&ctx, &sql).await, vec![expected.to_string()]);
    assert_eq!(emu.requests("/events"), pages_for(expected));

    // Contradictory filters need no request at all.
    emu.reset_requests();
    let sql = "SELECT count(*) FROM events WHERE action = 'user_login' AND action = 'user_logout'";
    assert_eq!(column(&ctx, sql).await, vec!["0".to_string()]);
    assert_eq!(emu.requests("/events"), 0);
}

#[tokio::test]
async fn sql_semantics_hold_where_the_api_is_looser() {
    // The emulator, like the API, matches actions case-insensitively; SQL does not.
    let emu = emulator(spec(10, 500), Faults::default(), None).await;
    let ctx = session(emu.client_config());
    assert_eq!(
        column(
            &ctx,
            "SELECT count(*) FROM events WHERE action = 'USER_LOGIN'"
        )
        .await,
        vec!["0".to_string()]
    );
    let logins = emu
        .org()
        .events
        .iter()
        .filter(|e| e.action == "user_login")
        .count();
    assert_eq!(
        column(
            &ctx,
            "SELECT count(*) FROM events WHERE lower(action) = 'user_login'"
        )
        .await,
        vec![logins.to_string()]
    );
}

#[tokio::test]
async fn user_filters_go_to_users_search_and_long_lists_are_split() {
    let emu = emulator(spec(200, 10), Faults::default(), None).await;
    let org = emu.org().clone();
    let ctx = session(emu.client_config());

    // Twelve account ids: more than the 10 one call takes, so two calls.
    let ids: Vec<String> = org
        .users
        .iter()
        .step_by(15)
        .take(12)
        .map(|u| u.account_id.clone())
        .collect();
    let list = ids
        .iter()
        .map(|id| format!("'{id}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut got = column(
        &ctx,
        &format!("SELECT account_id FROM users WHERE account_id IN ({list})"),
    )
    .await;
    got.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(got, expected);
    assert_eq!(emu.requests("/users/search"), 2);

    emu.reset_requests();
    let expected: Vec<String> = org
        .users
        .iter()
        .filter(|u| {
            u.status == "active" && u.mfa_enabled == Some(false) && u.claim_status == "managed"
        })
        .map(|u| u.email.clone())
        .collect();
    assert!(!expected.is_empty());
    let sql = "SELECT email FROM users WHERE status = 'active' AND NOT mfa_enabled AND claim_status = 'managed'";
    assert_eq!(column(&ctx, sql).await, expected);
    assert_eq!(
        emu.requests("/users/search"),
        1,
        "one page of matching users"
    );

    // A value outside the API's enum is not sent: the data might hold it
    // (an enum can grow), so DataFusion filters the whole listing.
    emu.reset_requests();
    assert_eq!(
        column(&ctx, "SELECT count(*) FROM users WHERE status = 'ACTIVE'").await,
        vec!["0".to_string()]
    );
    assert!(emu.requests("/users/search") > 0, "the listing was read");
    let body = emu.last_body("/users/search").expect("a listing");
    assert!(body.get("status").is_none(), "{body}");

    // The members of one group: only users in it are listed.
    emu.reset_requests();
    let group = &org.groups[3];
    let mut expected: Vec<String> = org.members_of(3).map(|u| u.account_id.clone()).collect();
    expected.sort();
    let sql = format!(
        "SELECT account_id FROM group_members WHERE group_id = '{}' ORDER BY account_id",
        group.id
    );
    assert_eq!(column(&ctx, &sql).await, expected);
    assert_eq!(emu.requests("/users/search"), 1);
}
