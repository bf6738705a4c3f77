//! The emulator's responses validate against Atlassian's published OpenAPI
//! spec (a copy in tests/fixtures/spec), success and error bodies alike.

use crate::common::*;
use orgsql::emulator::{Emulator, Faults};
use serde_json::{Value, json};

const SPEC: &str = include_str!("../fixtures/spec/organization.openapi.2026-08-21.json");

/// OpenAPI 3.0 schemas are JSON Schema but for `nullable`: turn it into a
/// type that admits null, everywhere.
fn to_json_schema(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for child in map.values_mut() {
                to_json_schema(child);
            }
            if map.remove("nullable") == Some(Value::Bool(true)) {
                if let Some(Value::String(t)) = map.get("type").cloned() {
                    map.insert("type".to_string(), json!([t, "null"]));
                    if let Some(Value::Array(values)) = map.get_mut("enum") {
                        values.push(Value::Null);
                    }
                } else {
                    let inner = Value::Object(std::mem::take(map));
                    map.insert("anyOf".to_string(), json!([inner, {"type": "null"}]));
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(to_json_schema),
        _ => {}
    }
}

struct Spec {
    doc: Value,
}

impl Spec {
    fn load() -> Self {
        let mut doc: Value = serde_json::from_str(SPEC).expect("spec is JSON");
        to_json_schema(&mut doc);
        Self { doc }
    }

    fn resolve<'a>(&'a self, mut value: &'a Value) -> &'a Value {
        while let Some(reference) = value.get("$ref").and_then(Value::as_str) {
            value = self
                .doc
                .pointer(&reference[1..])
                .unwrap_or_else(|| panic!("dangling {reference}"));
        }
        value
    }

    /// The response schema of `method path` for `status`, as a standalone
    /// schema whose `#/components/...` references still resolve.
    fn response_schema(&self, method: &str, path: &str, status: u16) -> Value {
        let operation = &self.doc["paths"][path][method];
        assert!(operation.is_object(), "{method} {path} is not in the spec");
        let response = self.resolve(&operation["responses"][status.to_string()]);
        let schema = &response["content"]["application/json"]["schema"];
        assert!(
            schema.is_object(),
            "{method} {path} has no {status} JSON schema"
        );
        json!({ "allOf": [schema], "components": self.doc["components"] })
    }

    fn check(&self, method: &str, path: &str, status: u16, body: &Value) {
        let schema = self.response_schema(method, path, status);
        let validator = jsonschema::draft4::new(&schema).expect("schema compiles");
        let errors: Vec<String> = validator
            .iter_errors(body)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{method} {path} {status} does not match the spec:\n{}",
            errors.join("\n")
        );
    }
}

async fn call(
    emu: &Emulator,
    method: &str,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let url = format!(
        "{}/admin{}",
        emu.base_url(),
        path.replace("{orgId}", &emu.org().id)
    );
    let client = reqwest::Client::new();
    let request = match method {
        "get" => client.get(url),
        _ => client.post(url).json(&body.unwrap_or_else(|| json!({}))),
    };
    let response = request
        .bearer_auth(key)
        .send()
        .await
        .expect("emulator answers");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON body"))
}

#[tokio::test]
async fn every_emulated_response_validates_against_the_published_spec() {
    let spec = Spec::load();
    let emu = emulator(spec_org(), Faults::default(), None).await;
    let key = emu.connection_json()["api_key"]
        .as_str()
        .expect("key")
        .to_string();
    // The owner holds org-admin and site-admin; group 1 (site-admins) grants roles.
    let owner = emu.org().users[0].account_id.clone();
    let admins = emu.org().groups[1].id.clone();
    let users_search = "/v2/orgs/{orgId}/directories/{directoryId}/users/search";
    let groups_search = "/v2/orgs/{orgId}/directories/{directoryId}/groups/search";
    let cases: Vec<(&str, &str, String, Option<Value>)> = vec![
        ("get", "/v1/orgs", "/v1/orgs".into(), None),
        ("get", "/v1/orgs/{orgId}", "/v1/orgs/{orgId}".into(), None),
        (
            "get",
            "/v1/orgs/{orgId}/domains",
            "/v1/orgs/{orgId}/domains".into(),
            None,
        ),
        (
            "get",
            "/v2/orgs/{orgId}/directories",
            "/v2/orgs/{orgId}/directories?limit=1".into(),
            None,
        ),
        (
            "post",
            users_search,
            "/v2/orgs/{orgId}/directories/-/users/search".into(),
            Some(
                json!({"limit": 100, "expand": ["platformRoles", "counts.resources", "productAccess", "groups"]}),
            ),
        ),
        (
            "post",
            users_search,
            "/v2/orgs/{orgId}/directories/-/users/search".into(),
            Some(json!({"limit": 7})),
        ),
        (
            "post",
            groups_search,
            "/v2/orgs/{orgId}/directories/-/groups/search".into(),
            Some(json!({"limit": 5, "expand": ["counts.users", "counts.resources"]})),
        ),
        (
            "post",
            "/v2/orgs/{orgId}/workspaces",
            "/v2/orgs/{orgId}/workspaces".into(),
            Some(json!({"limit": 3})),
        ),
        (
            "get",
            "/v1/orgs/{orgId}/events",
            "/v1/orgs/{orgId}/events?limit=500".into(),
            None,
        ),
        (
            "get",
            "/v1/orgs/{orgId}/events",
            "/v1/orgs/{orgId}/events?limit=2&action=user_login".into(),
            None,
        ),
        (
            "get",
            "/v1/orgs/{orgId}/events-stream",
            "/v1/orgs/{orgId}/events-stream?limit=500".into(),
            None,
        ),
        (
            "get",
            "/v1/orgs/{orgId}/events-stream",
            "/v1/orgs/{orgId}/events-stream?limit=3&sortOrder=desc&from=1700000000000".into(),
            None,
        ),
        (
            "get",
            "/v1/orgs/{orgId}/event-actions",
            "/v1/orgs/{orgId}/event-actions".into(),
            None,
        ),
        (
            "get",
            "/v1/orgs/{orgId}/policies",
            "/v1/orgs/{orgId}/policies".into(),
            None,
        ),
        (
            "get",
            "/v1/orgs/{orgId}/users",
            "/v1/orgs/{orgId}/users".into(),
            None,
        ),
        (
            "get",
            "/v1/orgs/{orgId}/directory/users/{accountId}/last-active-dates",
            format!("/v1/orgs/{{orgId}}/directory/users/{owner}/last-active-dates"),
            None,
        ),
        (
            "get",
            "/v2/orgs/{orgId}/directories/{directoryId}/users/{accountId}/role-assignments",
            format!("/v2/orgs/{{orgId}}/directories/-/users/{owner}/role-assignments?limit=2"),
            None,
        ),
        (
            "get",
            "/v2/orgs/{orgId}/directories/{directoryId}/groups/{groupId}/role-assignments",
            format!("/v2/orgs/{{orgId}}/directories/-/groups/{admins}/role-assignments"),
            None,
        ),
    ];
    // The counts of the searches, their filters as query parameters.
    let users_count = "/v2/orgs/{orgId}/directories/{directoryId}/users/count";
    let groups_count = "/v2/orgs/{orgId}/directories/{directoryId}/groups/count";
    let mut cases = cases;
    cases.extend([
        (
            "get",
            users_count,
            "/v2/orgs/{orgId}/directories/-/users/count?status=active&claimStatus=managed".into(),
            None,
        ),
        (
            "get",
            groups_count,
            format!("/v2/orgs/{{orgId}}/directories/-/groups/count?accountIds={owner}"),
            None,
        ),
    ]);
    for (method, template, path, body) in cases {
        let (status, json) = call(&emu, method, &path, &key, body).await;
        assert_eq!(status, 200, "{path}: {json}");
        assert!(
            json["data"].as_array().is_none_or(|d| !d.is_empty()),
            "{path} returned no data"
        );
        spec.check(method, template, status, &json);
    }

    // Error bodies, in the envelope each API version uses.
    let (status, json) = call(&emu, "get", "/v1/orgs/{orgId}/domains", "wrong-key", None).await;
    assert_eq!(status, 401);
    spec.check("get", "/v1/orgs/{orgId}/domains", 401, &json);
    let (status, json) = call(
        &emu,
        "post",
        users_search.replace("{directoryId}", "-").as_str(),
        "wrong-key",
        None,
    )
    .await;
    assert_eq!(status, 401);
    spec.check("post", users_search, 401, &json);
    let (status, json) = call(
        &emu,
        "get",
        "/v1/orgs/{orgId}/domains?cursor=not-a-cursor",
        &key,
        None,
    )
    .await;
    assert_eq!(status, 400);
    spec.check("get", "/v1/orgs/{orgId}/domains", 400, &json);
    let (status, json) = call(
        &emu,
        "get",
        "/v1/orgs/00000000-0000-4000-8000-000000000000",
        &key,
        None,
    )
    .await;
    assert_eq!(status, 404);
    spec.check("get", "/v1/orgs/{orgId}", 404, &json);
    let (status, json) = call(
        &emu,
        "post",
        "/v2/orgs/{orgId}/directories/-/users/search",
        &key,
        Some(json!({"limit": 101})),
    )
    .await;
    assert_eq!(status, 400);
    spec.check("post", users_search, 400, &json);
    let (status, json) = call(
        &emu,
        "get",
        "/v2/orgs/{orgId}/directories/-/users/count?emails=a@example.com",
        &key,
        None,
    )
    .await;
    assert_eq!(status, 400);
    spec.check("get", users_count, 400, &json);

    // The v1 role writes' refusals (the writes `review apply` sends): an
    // unknown user, a body the schema does not allow. The v2 writes'
    // errors have no schema in the spec.
    for template in [
        "/v1/orgs/{orgId}/users/{userId}/roles/revoke",
        "/v1/orgs/{orgId}/users/{userId}/role-assignments/revoke",
    ] {
        let unknown = template.replace("{userId}", "557057:nobody");
        let body = json!({"role": "atlassian/org-admin"});
        let (status, json) = call(&emu, "post", &unknown, &key, Some(body)).await;
        assert_eq!(status, 404, "{json}");
        spec.check("post", template, 404, &json);
        let known = template.replace("{userId}", &owner);
        let (status, json) = call(&emu, "post", &known, &key, Some(json!({"role": 7}))).await;
        assert_eq!(status, 400, "{json}");
        spec.check("post", template, 400, &json);
    }
}

/// The polling API: every page, the last one too, carries a cursor that
/// stays valid; followed later, it answers with what was processed since.
/// Over budget, the 429 body is the spec's, with the documented headers.
#[tokio::test]
async fn the_events_stream_follows_the_spec_and_its_cursor_outlives_the_last_page() {
    let spec = Spec::load();
    let template = "/v1/orgs/{orgId}/events-stream";
    let config = orgsql::emulator::EmulatorConfig {
        org: crate::common::spec(10, 120),
        limits: Some(orgsql::emulator::RateLimits::scaled(1.0)),
        ..Default::default()
    };
    let emu = Emulator::start(config).await.expect("emulator");
    let key = emu.connection_json()["api_key"]
        .as_str()
        .expect("key")
        .to_string();
    let mut path = format!("{template}?limit=50");
    let mut seen = Vec::new();
    let last = loop {
        let (status, json) = call(&emu, "get", &path, &key, None).await;
        assert_eq!(status, 200, "{path}: {json}");
        spec.check("get", template, status, &json);
        let data = json["data"].as_array().expect("data");
        for event in data {
            let processed = event["attributes"]["processedAt"]
                .as_str()
                .expect("processedAt");
            let time = event["attributes"]["time"].as_str().expect("time");
            assert!(processed >= time, "processed before it happened");
            seen.push((processed.to_string(), event["id"].to_string()));
        }
        let next = json["meta"]["next"]
            .as_str()
            .expect("a cursor on every page")
            .to_string();
        if data.is_empty() {
            break next;
        }
        path = format!("{template}?cursor={next}");
    };
    assert_eq!(seen.len(), emu.org().events.len(), "every event once");
    assert!(
        seen.windows(2).all(|w| w[0] <= w[1]),
        "ascending processing time"
    );

    // An event processed after the last page: the old cursor finds it.
    let late = "00000000-0000-4000-8000-0000000000aa";
    emu.change(|org| {
        let mut event = org.events[60].clone();
        event.id = late.to_string();
        event.processed_at = org
            .events
            .iter()
            .map(|e| e.processed_at)
            .max()
            .unwrap_or_default()
            + chrono::Duration::seconds(5);
        org.events.push(event);
    });
    let (_, json) = call(
        &emu,
        "get",
        &format!("{template}?cursor={last}"),
        &key,
        None,
    )
    .await;
    let ids: Vec<&str> = json["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|e| e["id"].as_str())
        .collect();
    assert_eq!(ids, vec![late]);

    // /events allows 10 a minute: the eleventh is refused, as the spec says.
    let mut refused = None;
    for _ in 0..11 {
        let url = format!(
            "{}/admin/v1/orgs/{}/events?limit=1",
            emu.base_url(),
            emu.org().id
        );
        let response = reqwest::Client::new()
            .get(url)
            .bearer_auth(&key)
            .send()
            .await
            .expect("answer");
        for header in [
            "x-ratelimit-limit",
            "x-ratelimit-remaining",
            "x-ratelimit-reset",
        ] {
            assert!(response.headers().contains_key(header), "{header}");
        }
        if response.status() == 429 {
            assert!(response.headers().contains_key("retry-after"));
            refused = Some(response.json::<Value>().await.expect("JSON"));
        }
    }
    let refused = refused.expect("the eleventh request in a minute is refused");
    spec.check("get", "/v1/orgs/{orgId}/events", 429, &refused);
    assert_eq!(emu.throttled(), 1);
}

fn spec_org() -> orgsql::emulator::OrgSpec {
    spec(150, 800)
}

#[test]
fn the_validator_rejects_what_the_spec_forbids() {
    // Guard against a validator that accepts anything.
    let spec = Spec::load();
    let bad_user = json!({"data": [{"accountId": "x", "accountStatus": "sleeping"}], "links": {}});
    let schema = spec.response_schema(
        "post",
        "/v2/orgs/{orgId}/directories/{directoryId}/users/search",
        200,
    );
    let validator = jsonschema::draft4::new(&schema).expect("schema compiles");
    assert!(!validator.is_valid(&bad_user));
    let missing_data = json!({"links": {}});
    assert!(!validator.is_valid(&missing_data));
    let null_source = json!({"data": [{"accountId": "x", "managementSource": null}]});
    assert!(
        validator.is_valid(&null_source),
        "nullable fields admit null"
    );
}
