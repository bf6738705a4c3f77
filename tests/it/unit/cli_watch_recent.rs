//! Unit tests of `orgsql::cli::watch::recent` (src/cli/watch/recent.rs).

use orgsql::cli::watch::recent::*;
use serde_json::Value;
use serde_json::json;

fn event(id: &str, processed: &str) -> Value {
    json!({"id": id, "attributes": {"processedAt": processed, "action": "user_login"}})
}

fn page(events: &[Value]) -> bytes::Bytes {
    serde_json::to_vec(&json!({"data": events, "meta": {"next": "c"}}))
        .expect("JSON")
        .into()
}

fn ids(body: &[u8]) -> Vec<String> {
    let page: Page = serde_json::from_slice(body).expect("a page");
    page.data
        .iter()
        .map(|e| id(e).expect("id").to_string())
        .collect()
}

#[test]
fn keeps_a_window_of_polls_and_counts_an_event_read_again_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let org = "a1b588c6-8c08-42f9-b0d8-9e5b1401840d";
    let first = update(
        dir.path(),
        org,
        &[page(&[
            event("old", "2026-12-05T11:59:59.999Z"),
            event("edge", "2026-12-05T12:00:00.000Z"),
        ])],
    )
    .expect("first poll");
    assert_eq!(ids(&first), ["old", "edge"]);
    // The same event read again, and one a day after `edge`.
    let second = update(
        dir.path(),
        org,
        &[page(&[
            event("edge", "2026-12-05T12:00:00.000Z"),
            event("new", "2026-12-06T12:00:00.000Z"),
        ])],
    )
    .expect("second poll");
    assert_eq!(ids(&second), ["edge", "new"], "24 h before the newest");
    let stored =
        std::fs::read(dir.path().join(RECENT_DIR).join(format!("{org}.json"))).expect("kept");
    assert_eq!(
        ids(&stored),
        ["edge", "new"],
        "what the next poll starts from"
    );
}

#[test]
fn an_org_id_that_would_leave_the_folder_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let err = update(dir.path(), "../x", &[page(&[])]).expect_err("refused");
    assert!(err.to_string().contains("cannot name a file"), "{err}");
}
