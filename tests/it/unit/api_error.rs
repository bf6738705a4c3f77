//! Unit tests of `orgsql::api::error` (crates/admin-api/src/api/error.rs).

use orgsql::api::error::api_message;

#[test]
fn reads_every_envelope() {
    let jsonapi = br#"{"errors":[{"id":"1","status":"404","code":"ADMIN-404-2","title":"Not Found","detail":"Organization not found"}]}"#;
    assert_eq!(api_message(jsonapi), "Organization not found (ADMIN-404-2)");
    assert_eq!(
        api_message(br#"{"code":429,"message":"Too many requests"}"#),
        "Too many requests"
    );
    assert_eq!(api_message(br#"{"key":"unauthorized"}"#), "unauthorized");
    let spring = br#"{"timestamp":"2025-06-06T06:03:27.122+00:00","status":403,"error":"Forbidden","message":"User has no permission to access resource."}"#;
    assert_eq!(
        api_message(spring),
        "User has no permission to access resource."
    );
    assert_eq!(
        api_message(b"<html>bad gateway</html>"),
        "<html>bad gateway</html>"
    );
}
