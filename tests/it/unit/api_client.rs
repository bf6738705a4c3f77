//! Unit tests of `orgsql::api::client` (crates/admin-api/src/api/client.rs).

use orgsql::api::client::*;
use reqwest::Method;
use serde_json::Value;

const COUNT: &str = "/admin/v2/orgs/{orgId}/directories/{directoryId}/users/count";

fn search(body: Value) -> PageRequest {
    PageRequest::post(
        "/admin/v2/orgs/{orgId}/directories/{directoryId}/users/search",
        body,
        CursorIn::Body { keep_filters: true },
    )
}

/// A search's filters become the count's query parameters, arrays
/// repeated; paging and expansions are no filters; a filter the count
/// does not take leaves the call uncounted, saying which.
#[test]
fn a_search_is_counted_by_the_same_filters() {
    let body = serde_json::json!({"limit": 100, "expand": ["groups"],
        "status": ["active", "suspended"], "mfaEnabled": false, "claimStatus": "managed"});
    let request = search(body).counted_by(COUNT, &["status", "mfaEnabled", "claimStatus"]);
    let CountBy::By(count) = request.count else {
        panic!("not counted: {:?}", request.count);
    };
    assert_eq!(count.method, Method::GET);
    assert_eq!(count.template, COUNT);
    assert_eq!(
        count.parameters(),
        "claimStatus=managed&mfaEnabled=false&status=active&status=suspended"
    );
    let request = search(serde_json::json!({"emails": ["a@b.c"]})).counted_by(COUNT, &["status"]);
    assert!(
        matches!(&request.count, CountBy::Not(why) if why.ends_with("takes no emails")),
        "{:?}",
        request.count
    );
}
