//! Unit tests of `orgsql::api::paging` (crates/admin-api/src/api/paging.rs).

use orgsql::api::paging::*;

fn cursor(json: &str) -> Option<String> {
    let page: Envelope<serde_json::Value> = serde_json::from_str(json).unwrap();
    next_cursor(&page).unwrap()
}

#[test]
fn every_next_page_style() {
    assert_eq!(cursor(r#"{"data":[],"meta":{"next":"abc","page_size":30},"links":{"next":"https://x/y?cursor=abc"}}"#).as_deref(), Some("abc"));
    assert_eq!(
        cursor(r#"{"data":[],"links":{"self":"s","next":"kloHX1ZQ"}}"#).as_deref(),
        Some("kloHX1ZQ")
    );
    assert_eq!(cursor(r#"{"data":[],"links":{"next":"https://api.atlassian.com/admin/v1/orgs/o/users?cursor=a%2Bb"}}"#).as_deref(), Some("a+b"));
    assert_eq!(
        cursor(r#"{"data":[],"links":{},"meta":{"page_size":100}}"#),
        None
    );
    assert_eq!(cursor(r#"{"data":[],"meta":{"next":null}}"#), None);
    assert_eq!(cursor(r#"{"data":[],"links":null,"meta":null}"#), None);
    assert_eq!(cursor(r#"{"data":[]}"#), None);
}
