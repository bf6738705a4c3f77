//! Every table's decoder, fed mutated pages: the captured real payloads and
//! the emulator's pages with values of the wrong type, nulls, missing and
//! duplicate keys, huge numbers and strings, deep nesting and invalid UTF-8.
//! The answer is rows or one error, never a panic.

use std::sync::OnceLock;

use datafusion::arrow::record_batch::RecordBatch;
use orgsql::emulator::Faults;
use orgsql::tables::{Kind, catalog};
use proptest::prelude::*;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use crate::common::*;

/// Every table's page decoder, from the catalog (the one a live scan uses).
fn decoders() -> Vec<(&'static str, Decode)> {
    catalog()
        .into_iter()
        .filter_map(|t| match t.kind {
            Kind::Api { decode, .. } | Kind::AuditLog { decode, .. } => Some((t.name, decode)),
            _ => None,
        })
        .collect()
}

type Decode = fn(&str, &[u8]) -> datafusion::error::Result<Option<RecordBatch>>;

/// Decode `body` as every table does: rows or an error, both fine; a panic
/// fails the property.
fn decode(body: &[u8]) {
    for (_, decode) in decoders() {
        let _ = decode("org-1", body);
    }
}

/// The pages to mutate: captured ones, and one of each kind from the emulator.
fn pages() -> &'static Vec<Value> {
    static PAGES: OnceLock<Vec<Value>> = OnceLock::new();
    PAGES.get_or_init(|| {
        let fixture = |name: &str| -> Value {
            let path = format!(
                "{}/tests/fixtures/payloads/{name}",
                env!("CARGO_MANIFEST_DIR")
            );
            serde_json::from_slice(&std::fs::read(&path).expect("fixture")).expect("JSON")
        };
        let mut pages = vec![
            fixture("events-page-001.json"),
            fixture("goa-get-organization-audit-events.json"),
            fixture("goa-get-organization-audit-event-actions.json"),
            fixture("goa-get-organization-policies.json"),
            fixture("goa-get-organizations.json"),
            fixture("goa-get-organization-domain.json"),
        ];
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        pages.extend(runtime.block_on(emulator_pages()));
        pages
    })
}

async fn emulator_pages() -> Vec<Value> {
    let emu = emulator(spec(12, 40), Faults::default(), Some(3)).await;
    let org = emu.org();
    let key = emu.connection_json()["api_key"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let (user, group) = (org.users[0].account_id.clone(), org.groups[1].id.clone());
    let expand = json!({"limit": 3, "expand": ["platformRoles", "counts.resources", "productAccess", "groups"]});
    let calls: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", "/admin/v1/orgs/{orgId}".into(), None),
        ("GET", "/admin/v1/orgs/{orgId}/domains".into(), None),
        ("GET", "/admin/v2/orgs/{orgId}/directories".into(), None),
        (
            "POST",
            "/admin/v2/orgs/{orgId}/directories/-/users/search".into(),
            Some(expand),
        ),
        (
            "POST",
            "/admin/v2/orgs/{orgId}/directories/-/groups/search".into(),
            Some(json!({"expand": ["counts.users", "counts.resources"]})),
        ),
        (
            "POST",
            "/admin/v2/orgs/{orgId}/workspaces".into(),
            Some(json!({})),
        ),
        ("GET", "/admin/v1/orgs/{orgId}/events".into(), None),
        ("GET", "/admin/v1/orgs/{orgId}/events-stream".into(), None),
        ("GET", "/admin/v1/orgs/{orgId}/event-actions".into(), None),
        ("GET", "/admin/v1/orgs/{orgId}/policies".into(), None),
        ("GET", "/admin/v1/orgs/{orgId}/users".into(), None),
        (
            "GET",
            format!("/admin/v1/orgs/{{orgId}}/directory/users/{user}/last-active-dates"),
            None,
        ),
        (
            "GET",
            format!("/admin/v2/orgs/{{orgId}}/directories/-/users/{user}/role-assignments"),
            None,
        ),
        (
            "GET",
            format!("/admin/v2/orgs/{{orgId}}/directories/-/groups/{group}/role-assignments"),
            None,
        ),
        (
            "GET",
            format!("/admin/user-provisioning/v1/org/{{orgId}}/user/{user}/get-scim-links"),
            None,
        ),
    ];
    let http = reqwest::Client::new();
    let mut pages = Vec::new();
    for (method, path, body) in calls {
        let url = format!("{}{}", emu.base_url(), path.replace("{orgId}", &org.id));
        let request = match method {
            "GET" => http.get(url),
            _ => http.post(url).json(&body.unwrap_or_default()),
        };
        let page: Value = request
            .bearer_auth(&key)
            .send()
            .await
            .expect("answer")
            .json()
            .await
            .expect("JSON");
        pages.push(page);
    }
    // SCIM pages, each with its directory's own token.
    let (directory, token) = emu.scim_tokens(0).remove(0);
    for list in ["Users", "Groups"] {
        let page: Value = http
            .get(format!(
                "{}/scim/directory/{directory}/{list}?count=3",
                emu.base_url()
            ))
            .bearer_auth(&token)
            .send()
            .await
            .expect("answer")
            .json()
            .await
            .expect("JSON");
        pages.push(page);
    }
    pages
}

/// Every path to a value in `value`.
fn paths(value: &Value, at: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    out.push(at.clone());
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                at.push(k.clone());
                paths(v, at, out);
                at.pop();
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                at.push(i.to_string());
                paths(v, at, out);
                at.pop();
            }
        }
        _ => {}
    }
}

fn at_path<'a>(value: &'a mut Value, path: &[String]) -> Option<&'a mut Value> {
    path.iter().try_fold(value, |v, step| match v {
        Value::Object(map) => map.get_mut(step),
        Value::Array(items) => step.parse::<usize>().ok().and_then(|i| items.get_mut(i)),
        _ => None,
    })
}

/// A replacement of the wrong type, size or shape.
fn hostile_value(rng: &mut ChaCha8Rng) -> Value {
    match rng.random_range(0..12) {
        0 => Value::Null,
        1 => json!(true),
        2 => json!(-1),
        3 => json!(1e308),
        4 => json!(u64::MAX),
        5 => json!(i64::MIN),
        6 => json!("x".repeat(100_000)),
        7 => json!(""),
        8 => json!([]),
        9 => json!({}),
        10 => json!("2026-13-45T99:99:99Z"),
        _ => {
            let mut deep = json!(1);
            for _ in 0..rng.random_range(10..200) {
                deep = json!([deep]);
            }
            deep
        }
    }
}

/// `page` mutated `count` times, as bytes: most mutations on the JSON value,
/// some on the text (duplicate keys, invalid UTF-8, a cut).
fn mutate(page: &Value, seed: u64, count: usize) -> Vec<u8> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut value = page.clone();
    for _ in 0..count {
        let mut all = Vec::new();
        paths(&value, &mut Vec::new(), &mut all);
        let Some(path) = all.choose(&mut rng).cloned() else {
            break;
        };
        if rng.random_bool(0.25)
            && let Some((last, parent)) = path.split_last()
            && let Some(Value::Object(map)) = at_path(&mut value, parent)
        {
            map.remove(last);
            continue;
        }
        if let Some(target) = at_path(&mut value, &path) {
            *target = hostile_value(&mut rng);
        }
    }
    let mut bytes = serde_json::to_vec(&value).unwrap_or_default();
    match rng.random_range(0..6) {
        // A duplicate key: the first object gets "data" again.
        0 => {
            if let Some(i) = bytes.iter().position(|&b| b == b'{') {
                bytes.splice(i + 1..i + 1, br#""data":[{"id":1}],"#.iter().copied());
            }
        }
        // Invalid UTF-8 inside a string.
        1 => {
            let quotes: Vec<usize> = bytes
                .iter()
                .enumerate()
                .filter(|&(_, &b)| b == b'"')
                .map(|(i, _)| i)
                .collect();
            if let Some(&i) = quotes.choose(&mut rng) {
                bytes.insert(i + 1, 0xff);
            }
        }
        // Cut short.
        2 => {
            let keep = rng.random_range(0..bytes.len().max(1));
            bytes.truncate(keep);
        }
        _ => {}
    }
    bytes
}

proptest! {
    // 1,000 cases in `cargo test`; PROPTEST_CASES=100000 for a long run.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(1000),
        ..ProptestConfig::default()
    })]

    #[test]
    fn a_mutated_page_gives_rows_or_an_error_never_a_panic(
        which in 0usize..1000,
        seed in any::<u64>(),
        count in 1usize..5,
    ) {
        let pages = pages();
        decode(&mutate(&pages[which % pages.len()], seed, count));
    }
}

#[test]
fn every_unmutated_page_decodes() {
    // The pages the mutations start from are valid: some table reads rows
    // from each.
    let decoders = decoders();
    for page in pages() {
        let bytes = serde_json::to_vec(page).expect("bytes");
        let read = decoders
            .iter()
            .any(|(_, decode)| decode("org-1", &bytes).is_ok_and(|rows| rows.is_some()));
        assert!(
            read,
            "no table reads {}",
            &page.to_string()[..200.min(page.to_string().len())]
        );
    }
}
