//! Unit tests of `orgsql::api::listings` (crates/admin-api/src/api/listings.rs).

use chrono::Utc;
use orgsql::api::listings::*;

fn listing(items: u64, before: Option<u64>, after: Option<u64>, end: bool) -> ListingRecord {
    ListingRecord {
        org_id: "o".to_string(),
        table_name: "users",
        endpoint: "POST /users/search".to_string(),
        parameters: String::new(),
        started_at: Utc::now(),
        pages: 1,
        items,
        requests: 3,
        retries: 0,
        cached_pages: 0,
        read_to_end: end,
        count_endpoint: before.map(|_| "GET /users/count".to_string()),
        count_before: before,
        count_after: after,
        count_note: None,
    }
}

/// Only a count that held still can judge the items; a listing not read
/// to its end is judged by nothing.
#[test]
fn a_verdict_for_every_case() {
    assert_eq!(
        listing(5, Some(5), Some(5), true).verdict(),
        Verdict::Complete
    );
    assert_eq!(
        listing(4, Some(5), Some(5), true).verdict(),
        Verdict::Incomplete
    );
    assert_eq!(
        listing(6, Some(5), Some(5), true).verdict(),
        Verdict::Incomplete
    );
    assert_eq!(
        listing(5, Some(5), Some(6), true).verdict(),
        Verdict::ChangedWhileRead
    );
    assert_eq!(
        listing(3, Some(5), None, false).verdict(),
        Verdict::NotReadToEnd
    );
    assert_eq!(listing(5, None, None, true).verdict(), Verdict::ReadToEnd);
}

/// A replay from the session cache is the listing that filled it: not
/// counted twice.
#[test]
fn a_summary_counts_each_read_once() {
    let mut replay = listing(5, Some(5), Some(5), true);
    replay.cached_pages = 1;
    replay.requests = 0;
    let moved = listing(7, Some(6), Some(7), true);
    let summary = Completeness::of(&[listing(5, Some(5), Some(5), true), replay, moved]);
    assert_eq!(summary.len(), 1);
    let users = &summary[0];
    assert_eq!((users.listings, users.items, users.requests), (2, 12, 6));
    assert_eq!((users.counted, users.counted_complete), (2, 1));
    assert_eq!(users.changed_while_read, 1);
    assert!(
        users
            .described()
            .starts_with("changed while read: 12 items in 2 listings")
    );
}
