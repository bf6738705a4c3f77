//! Real captured Admin API payloads decode into table rows.

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use orgsql::tables::domains::Domains;
use orgsql::tables::events::Events;
use orgsql::tables::orgs::Orgs;
use orgsql::tables::policies::Policies;
use orgsql::tables::{Resource, decode_page};

fn decode<R: Resource>(file: &str) -> RecordBatch {
    let path = format!(
        "{}/tests/fixtures/payloads/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    let body = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    decode_page::<R>("org-1", &body)
        .unwrap_or_else(|e| panic!("{file}: {e}"))
        .expect("rows")
}

fn text(batch: &RecordBatch, column: &str, row: usize) -> Option<String> {
    let array = batch
        .column_by_name(column)
        .unwrap_or_else(|| panic!("no column {column}"));
    let array = array.as_string::<i32>();
    (!array.is_null(row)).then(|| array.value(row).to_string())
}

#[test]
fn go_atlassian_audit_events_decode() {
    let batch = decode::<Events>("goa-get-organization-audit-events.json");
    assert_eq!(batch.num_rows(), 38);
    assert_eq!(
        text(&batch, "event_id", 0).as_deref(),
        Some("25e4c3e7-7f0d-4b84-8028-330fed144a51")
    );
    assert_eq!(text(&batch, "action", 0).as_deref(), Some("policy_deleted"));
    assert_eq!(
        text(&batch, "actor_id", 0).as_deref(),
        Some("6066553090e3950069df8558")
    );
    assert_eq!(
        text(&batch, "actor_name", 0).as_deref(),
        Some("go-atlassian-demo-api")
    );
    assert_eq!(text(&batch, "ip", 0).as_deref(), Some("201.202.14.26"));
    assert_eq!(text(&batch, "city", 0).as_deref(), Some("Cartago"));
    assert_eq!(text(&batch, "country", 0).as_deref(), Some("Costa Rica"));
    assert!(text(&batch, "context", 0).is_some_and(|c| c.contains("org-policy")));
    assert!(text(&batch, "container", 0).is_some_and(|c| c.contains("\"type\":\"orgs\"")));
    let times = batch.column_by_name("time").expect("time");
    assert_eq!(times.null_count(), 0, "every event has a time");
}

#[test]
fn grove_event_pages_decode() {
    let first = decode::<Events>("events-page-001.json");
    assert_eq!(first.num_rows(), 30);
    assert_eq!(
        text(&first, "message", 0).as_deref(),
        Some("Added xxxxx to fffff")
    );
    assert_eq!(text(&first, "region", 0).as_deref(), Some("region"));
    let last = decode::<Events>("events-page-002-last.json");
    assert_eq!(last.num_rows(), 1);
}

#[test]
fn go_atlassian_policies_org_and_domain_decode() {
    let policies = decode::<Policies>("goa-get-organization-policies.json");
    assert_eq!(policies.num_rows(), 3);
    assert_eq!(
        text(&policies, "name", 1).as_deref(),
        Some("eu-realm-policy")
    );
    assert_eq!(
        text(&policies, "rule", 1).as_deref(),
        Some(r#"{"in":["eu"]}"#)
    );
    assert_eq!(
        text(&policies, "type", 0).as_deref(),
        Some("admin-notification-settings")
    );
    assert!(
        policies
            .column_by_name("updated_at")
            .expect("updated_at")
            .is_null(0)
    );

    let org = decode::<Orgs>("goa-get-organization.json");
    assert_eq!(
        text(&org, "org_id", 0).as_deref(),
        Some("9a1jj823-jac8-123d-jj01-63315k059cb2")
    );
    assert_eq!(text(&org, "name", 0).as_deref(), Some("ctreminiom"));

    // The capture is one domain; a domains page holds a list of them.
    let path = format!(
        "{}/tests/fixtures/payloads/goa-get-organization-domain.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let one: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path).expect("read")).expect("json");
    let page = serde_json::json!({ "data": [one["data"]], "links": {} }).to_string();
    let domains = decode_page::<Domains>("org-1", page.as_bytes())
        .expect("decodes")
        .expect("rows");
    assert_eq!(
        text(&domains, "name", 0).as_deref(),
        Some("go-atlassian.io")
    );
    assert_eq!(
        text(&domains, "claim_status", 0).as_deref(),
        Some("verified")
    );
}
