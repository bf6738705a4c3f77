//! Unit tests of `orgsql::api::retry` (crates/admin-api/src/api/retry.rs).

use chrono::{DateTime, Utc};
use orgsql::api::retry::*;
use reqwest::header::HeaderMap;
use reqwest::header::HeaderValue;
use std::time::Duration;

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (k, v) in pairs {
        map.insert(*k, HeaderValue::from_str(v).unwrap());
    }
    map
}

#[test]
fn server_hints_win_over_backoff() {
    let now = DateTime::parse_from_rfc3339("2026-01-01T10:00:00Z")
        .unwrap()
        .to_utc();
    let policy = RetryPolicy::default();
    let h = headers(&[("retry-after", "7")]);
    assert_eq!(policy.delay(1, Some(&h), now), Duration::from_secs(7));
    let h = headers(&[("retry-after", "Thu, 01 Jan 2026 10:00:30 GMT")]);
    assert_eq!(policy.delay(1, Some(&h), now), Duration::from_secs(30));
    let h = headers(&[
        ("x-ratelimit-remaining", "0"),
        ("x-ratelimit-reset", "2026-01-01T10:01Z"),
    ]);
    assert_eq!(policy.delay(1, Some(&h), now), Duration::from_secs(60));
    let h = headers(&[
        ("x-ratelimit-remaining", "0"),
        ("x-ratelimit-reset", "2026-01-01T10:00:05.5Z"),
    ]);
    assert_eq!(policy.delay(1, Some(&h), now), Duration::from_millis(5500));
    // A huge hint is reported as it is: the caller refuses to wait that long.
    let h = headers(&[("retry-after", "100000")]);
    assert_eq!(policy.delay(1, Some(&h), now), Duration::from_secs(100_000));
}

/// A reset stated to the minute and already past is no hint: backoff,
/// not an immediate retry into the spent budget.
#[test]
fn a_reset_already_past_falls_to_backoff() {
    let now = DateTime::parse_from_rfc3339("2026-01-01T10:00:42Z")
        .unwrap()
        .to_utc();
    let h = headers(&[
        ("x-ratelimit-remaining", "0"),
        ("x-ratelimit-reset", "2026-01-01T10:00Z"),
    ]);
    assert_eq!(hint(&h, now), None);
    let policy = RetryPolicy::default();
    assert!(policy.delay(1, Some(&h), now) >= policy.base_delay / 2);
}

#[test]
fn backoff_grows_and_stays_bounded() {
    let now = Utc::now();
    let policy = RetryPolicy {
        max_attempts: 10,
        base_delay: Duration::from_millis(100),
        max_delay: Duration::from_secs(1),
    };
    for attempt in 1..10 {
        let d = policy.delay(attempt, None, now);
        let full = (Duration::from_millis(100) * (1 << (attempt - 1))).min(Duration::from_secs(1));
        assert!(
            d >= full / 2 && d <= full,
            "attempt {attempt}: {d:?} not in [{:?}, {full:?}]",
            full / 2
        );
    }
}
