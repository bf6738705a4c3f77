//! Unit tests of `orgsql::api::pacer` (crates/admin-api/src/api/pacer.rs).

use orgsql::api::pacer::*;
use std::time::{Duration, Instant};

#[test]
fn a_spent_budget_waits_for_its_reset_and_spreads_what_is_left() {
    let now = Instant::now();
    let mut budget = Budget::new(now);
    budget.remaining = Some(4);
    budget.reset = Some(now + Duration::from_secs(8));
    // 4 left over 8 s: go now, then not before 2 s from now.
    assert!(matches!(decide(&mut budget, "GET /x", now), Decision::Go));
    match decide(&mut budget, "GET /x", now) {
        Decision::Until(at, _) => assert_eq!(at, now + Duration::from_secs(2)),
        _ => panic!("expected a wait"),
    }
    budget.remaining = Some(0);
    match decide(&mut budget, "GET /x", now + Duration::from_secs(3)) {
        Decision::Until(at, why) => {
            assert_eq!(at, now + Duration::from_secs(8));
            assert!(why.contains("spent"), "{why}");
        }
        _ => panic!("expected a wait"),
    }
    // After the reset nothing is known: the documented budget applies
    // (the two requests above have been answered).
    budget.in_flight = 0;
    let later = now + Duration::from_secs(9);
    for _ in 0..10 {
        assert!(matches!(
            decide(&mut budget, "GET /admin/v1/orgs/{orgId}/events", later),
            Decision::Go
        ));
    }
    assert!(matches!(
        decide(&mut budget, "GET /admin/v1/orgs/{orgId}/events", later),
        Decision::Answer
    ));
}

/// A request the query stopped wanting (a LIMIT met, Ctrl-C) is dropped
/// before its answer: it no longer counts as in flight, so the next
/// period does not wait for it.
#[tokio::test]
async fn a_request_dropped_unanswered_is_no_longer_in_flight() {
    let pacer = Pacer::default();
    let endpoint = "GET /admin/v1/orgs/{orgId}/events";
    let in_flight = |pacer: &Pacer| pacer.budgets.lock().map(|b| b[endpoint].in_flight).ok();
    let (_, answered) = pacer.acquire(endpoint, Duration::ZERO).await.ok().unzip();
    let (_, dropped) = pacer.acquire(endpoint, Duration::ZERO).await.ok().unzip();
    assert_eq!(in_flight(&pacer), Some(2));
    if let Some(request) = answered {
        request.answered(None);
    }
    assert_eq!(in_flight(&pacer), Some(1));
    drop(dropped);
    assert_eq!(in_flight(&pacer), Some(0));
}
