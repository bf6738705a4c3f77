//! Unit tests of `orgsql::api::cache` (crates/admin-api/src/api/cache.rs).

use bytes::Bytes;
use orgsql::api::cache::*;
use std::sync::Arc;
use std::time::Duration;

#[test]
fn pages_beyond_the_byte_budget_are_not_kept() {
    let mut cache = PageCache::new(Some(Duration::from_secs(60)));
    cache.max_bytes = 10;
    let first = cache.slot("a", "users");
    assert!(first.set(Bytes::from_static(b"123456")).is_ok());
    cache.admit("a", 6);
    let second = cache.slot("b", "users");
    assert!(second.set(Bytes::from_static(b"123456")).is_ok());
    cache.admit("b", 6);
    // "a" is kept: the same slot, already answered; "b" did not fit.
    assert!(cache.slot("a", "users").initialized());
    assert!(!cache.slot("b", "users").initialized());
    cache.clear(Some("users"));
    assert!(!cache.slot("a", "users").initialized());
}

#[test]
fn a_memo_lives_and_dies_with_its_page() {
    let cache = PageCache::new(Some(Duration::from_secs(60)));
    let slot = cache.slot("a", "events");
    // Not held yet: nothing to remember it by.
    cache.remember("a", "events", Arc::new(1u8), 1);
    assert!(cache.memo("a", "events").is_none());
    assert!(slot.set(Bytes::from_static(b"123456")).is_ok());
    cache.admit("a", 6);
    cache.remember("a", "events", Arc::new(7u8), 1);
    let memo = cache
        .memo("a", "events")
        .and_then(|m| m.downcast::<u8>().ok());
    assert_eq!(memo.as_deref(), Some(&7));
    assert!(cache.memo("a", "event_context").is_none());
    cache.clear(Some("events"));
    assert!(cache.memo("a", "events").is_none());
}
