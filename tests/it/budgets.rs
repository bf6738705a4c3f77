//! The API's rate budgets set the pace, not luck. Against an emulator that
//! enforces the documented limits (its clock sped up 120 times: a documented
//! minute lasts half a second), long scans give the whole answer and no 429
//! reaches it, a limit lowered mid-run is followed, both audit endpoints give
//! the same events, and an export misses no event that was processed late.
//! With a period no test outlasts, a spent budget is waited for, never
//! overrun.
//!
//! Whether a sped-up run draws a 429 at all depends on the machine: one
//! answer held past a half-second period by a loaded machine can draw one.
//! What is promised, and asserted, is the answer: every 429 retried, the rows
//! the API holds. The pacing itself is pinned where no timing can move it.

use std::time::Duration;

use datafusion::prelude::SessionContext;

use crate::common::*;
use orgsql::emulator::{Emulator, EmulatorConfig, Faults, OrgSpec, RateLimits};

async fn limited(org: OrgSpec, page_size_cap: Option<usize>) -> Emulator {
    Emulator::start(EmulatorConfig {
        org,
        page_size_cap,
        limits: Some(RateLimits::scaled(120.0)),
        ..Default::default()
    })
    .await
    .expect("emulator starts")
}

/// No 429 reached the answer (the caller compared the rows with the
/// oracle's): every 429 the API sent is in the session's log, an attempt
/// that was retried.
async fn every_429_was_retried(ctx: &SessionContext, emu: &Emulator) {
    let logged = column(
        ctx,
        "SELECT count(*) FROM orgsql_requests WHERE status = 429",
    )
    .await;
    assert_eq!(
        logged,
        vec![emu.throttled().to_string()],
        "every 429 the API sent was seen and retried"
    );
}

/// The same organization without limits: what the answers must be.
async fn oracle(org: OrgSpec, page_size_cap: Option<usize>) -> Emulator {
    emulator(org, Faults::default(), page_size_cap).await
}

#[tokio::test(flavor = "multi_thread")]
async fn long_scans_paced_by_every_budget_give_the_whole_answer() {
    let org = spec(450, 1500);
    let emu = limited(org.clone(), Some(40)).await;
    let free = oracle(org, Some(40)).await;
    let (ctx, expected) = (session(emu.client_config()), session(free.client_config()));
    let questions = [
        // One call per user to last-active-dates: 200 a period, three periods.
        "SELECT * FROM user_last_active ORDER BY account_id, product_id",
        // /events, 10 a period: one listing per action, pages of 40.
        "SELECT event_id, action FROM events WHERE action IN ('user_login', 'user_logout', \
         'user_created', 'group_created', 'user_added_to_group', 'api_token_created') \
         ORDER BY event_id",
        // The polling API, 50 a period: the whole log in pages of 40.
        "SELECT event_id FROM events ORDER BY event_id",
        // An unpublished budget (300 a period): one call per user.
        "SELECT * FROM user_role_assignments ORDER BY account_id, resource_id, role",
    ];
    for sql in questions {
        let (mut got, mut want) = (sql_rows(&ctx, sql).await, sql_rows(&expected, sql).await);
        got.sort();
        want.sort();
        assert!(
            got == want,
            "{sql}: {} rows, expected {}",
            got.len(),
            want.len()
        );
    }
    assert!(emu.requests("/last-active-dates") >= 450);
    assert!(
        emu.requests("/events") > 10,
        "more than one period of /events"
    );
    assert!(emu.requests("/events-stream") > 30);
    every_429_was_retried(&ctx, &emu).await;
}

/// With a budget period of ten minutes (the emulator's clock ten times
/// slower than the API's: a period no test outlasts), a budget is never
/// overrun: /events allows 10 requests a period, and a scan that needs 45
/// pages sends what the pacer allows, draws no 429, and fails at once when
/// the next request would have to wait longer than --max-wait, saying so.
/// Without the pacer the 11th request would draw a 429.
#[tokio::test(flavor = "multi_thread")]
async fn a_spent_budget_is_waited_for_not_overrun() {
    let emu = Emulator::start(EmulatorConfig {
        org: spec(20, 900),
        page_size_cap: Some(20),
        limits: Some(RateLimits::scaled(0.1)),
        ..Default::default()
    })
    .await
    .expect("emulator starts");
    let mut config = fast_retries(emu.client_config());
    config.retry.max_delay = Duration::from_secs(5);
    let ctx = orgsql::context(&orgsql::api::Client::new(config).expect("client")).expect("session");
    // An upper time bound: /events, not the stream.
    let sql = "SELECT count(*) FROM events WHERE time <= TIMESTAMP '2100-01-01T00:00:00Z'";
    let error = query(&ctx, sql)
        .await
        .expect_err("45 pages at 10 in ten minutes, waits of at most 5 s")
        .to_string();
    assert!(
        error.contains("GET /admin/v1/orgs/{orgId}/events: the next request would have to wait"),
        "{error}"
    );
    assert!(!error.contains("429"), "{error}");
    let sent = emu.requests("/events");
    assert!((1..=10).contains(&sent), "{sent} requests");
    assert_eq!(emu.throttled(), 0, "the budget was never overrun");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_limit_lowered_mid_run_is_followed() {
    let org = spec(400, 50);
    let emu = limited(org.clone(), None).await;
    let free = oracle(org, None).await;
    // After 100 calls the server allows 40 a period instead of 300.
    emu.lower_limit_after(
        "GET /admin/v2/orgs/{orgId}/directories/{directoryId}/users/{accountId}/role-assignments",
        100,
        40,
    );
    let sql = "SELECT * FROM user_role_assignments ORDER BY account_id, resource_id, role";
    let ctx = session(emu.client_config());
    let got = sql_rows(&ctx, sql).await;
    assert!(got == sql_rows(&session(free.client_config()), sql).await);
    every_429_was_retried(&ctx, &emu).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn both_audit_endpoints_return_the_same_events() {
    let org = spec(30, 900);
    let emu = limited(org, Some(100)).await;
    // No page cache: each query shows the endpoint it reads.
    let mut config = emu.client_config();
    config.cache_ttl = None;
    let ctx = session(config);
    let since = "TIMESTAMP '2026-10-01T00:00:00Z'";
    let far = "TIMESTAMP '2100-01-01T00:00:00Z'";
    for (stream, events) in [
        (
            "SELECT * FROM events ORDER BY event_id".to_string(),
            format!("SELECT * FROM events WHERE time <= {far} ORDER BY event_id"),
        ),
        (
            format!("SELECT * FROM events WHERE time >= {since} ORDER BY event_id"),
            format!(
                "SELECT * FROM events WHERE time >= {since} AND time <= {far} ORDER BY event_id"
            ),
        ),
        (
            format!(
                "SELECT * FROM event_context WHERE time > {since} ORDER BY event_id, role, object_id"
            ),
            format!(
                "SELECT * FROM event_context WHERE time > {since} AND time < {far} \
                 ORDER BY event_id, role, object_id"
            ),
        ),
    ] {
        emu.reset_requests();
        let by_stream = sql_rows(&ctx, &stream).await;
        let used = (emu.requests("/events-stream"), emu.requests("/events"));
        assert!(used.0 > 0 && used.1 == 0, "{stream}: {used:?}");
        emu.reset_requests();
        let by_events = sql_rows(&ctx, &events).await;
        let used = (emu.requests("/events-stream"), emu.requests("/events"));
        assert!(used.0 == 0 && used.1 > 0, "{events}: {used:?}");
        assert!(!by_stream.is_empty());
        assert_eq!(by_stream, by_events, "{stream}");
    }
    let plan = sql_rows(
        &ctx,
        &format!("EXPLAIN SELECT * FROM events WHERE time >= {since}"),
    )
    .await;
    assert!(
        plan.iter()
            .flatten()
            .any(|line| line.contains("endpoint=GET /admin/v1/orgs/{orgId}/events-stream")),
        "{plan:?}"
    );
    every_429_was_retried(&ctx, &emu).await;
}

/// An event that happened a month ago but was processed after the last
/// export is in the next export, exactly once; so are events that happened
/// since. Resuming from the newest event time would miss the first.
#[tokio::test(flavor = "multi_thread")]
async fn a_late_processed_event_is_exported_exactly_once() {
    let emu = limited(spec(20, 1200), None).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let export_once = || export_to(emu.client_config(), dir.path(), None);
    let first = export_once().await;
    let late = "00000000-0000-4000-8000-000000001a7e";
    let fresh = "00000000-0000-4000-8000-00000000f2e5";
    emu.change(|org| {
        let newest = org
            .events
            .iter()
            .map(|e| e.processed_at)
            .max()
            .unwrap_or_default();
        let mut old = org.events[600].clone();
        old.id = late.to_string();
        old.time -= chrono::Duration::days(30);
        old.processed_at = newest + chrono::Duration::seconds(30);
        let mut new = org.events[0].clone();
        new.id = fresh.to_string();
        new.time = newest + chrono::Duration::seconds(40);
        new.processed_at = new.time + chrono::Duration::seconds(1);
        org.events.push(old);
        org.events.push(new);
        org.events.sort_by_key(|e| std::cmp::Reverse(e.time));
    });
    emu.reset_requests();
    let second = export_once().await;
    assert_eq!(
        emu.requests("/events-stream"),
        2,
        "the page of what was processed since, then the empty page"
    );
    let rows = |m: &orgsql::snapshot::Manifest, name: &str| {
        m.tables.iter().find(|t| t.name == name).map(|t| t.rows)
    };
    assert_eq!(
        rows(&second, "events"),
        rows(&first, "events").map(|n| n + 2)
    );
    let offline = offline_with_events_once(dir.path(), emu.org().events.len()).await;
    let sql = format!(
        "SELECT event_id, count(*) FROM events WHERE event_id IN ('{late}', '{fresh}') \
         GROUP BY event_id ORDER BY event_id"
    );
    assert_eq!(
        sql_rows(&offline, &sql).await,
        vec![
            vec![late.to_string(), "1".to_string()],
            vec![fresh.to_string(), "1".to_string()]
        ]
    );
    // The context came along, once per event too.
    let live = session(emu.client_config());
    let context = "SELECT count(*) FROM event_context";
    // (Every event once, above, is the promise; whether the three clients
    // drew a 429 on the way depends on the machine's load, and each one
    // drawn was retried or the export would have failed.)
    assert_eq!(
        column(&offline, context).await,
        column(&live, context).await
    );
}

/// A folder exported before the polling API (no stream position, the
/// context in one file) is topped up correctly: nothing twice, nothing lost.
#[tokio::test(flavor = "multi_thread")]
async fn an_export_from_before_the_polling_api_is_topped_up() {
    let emu = emulator(spec(20, 600), Faults::default(), None).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let run = || {
        export_to(
            emu.client_config(),
            dir.path(),
            Some(&["events", "event_context"]),
        )
    };
    run().await;
    // The context as one file, as the previous version wrote it.
    let folder = dir.path().join("event_context");
    let single = dir.path().join("context-single.parquet");
    let offline = orgsql::snapshot::context(&dir.path().into())
        .await
        .expect("snapshot");
    let copy = format!("COPY event_context TO '{}'", single.display());
    query(&offline, &copy).await.expect("one file");
    drop(offline);
    std::fs::remove_dir_all(&folder).expect("remove the folder");
    std::fs::rename(&single, dir.path().join("event_context.parquet")).expect("move");

    // Make it look as the previous version wrote it.
    let manifest_path = dir.path().join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest_path).expect("manifest"))
            .expect("JSON");
    for table in manifest["tables"].as_array_mut().expect("tables") {
        table.as_object_mut().expect("entry").remove("stream");
        if table["name"] == "event_context" {
            table["path"] = "event_context.parquet".into();
        }
    }
    std::fs::write(&manifest_path, manifest.to_string()).expect("write");
    // Processed after that export ran (by the clock on the wall: the
    // previous version's manifest knows only when it ran).
    let late = "00000000-0000-4000-8000-0000000001a7";
    emu.change(|org| {
        let mut old = org.events[300].clone();
        old.id = late.to_string();
        old.time -= chrono::Duration::days(20);
        old.processed_at = chrono::Utc::now() + chrono::Duration::seconds(30);
        org.events.push(old);
        org.events.sort_by_key(|e| std::cmp::Reverse(e.time));
    });
    let manifest = run().await;
    let offline = offline_with_events_once(dir.path(), emu.org().events.len()).await;
    let live = session(emu.client_config());
    let context = "SELECT event_id, role, object_id FROM event_context ORDER BY 1, 2, 3";
    assert_eq!(
        sql_rows(&offline, context).await,
        sql_rows(&live, context).await
    );
    let events = manifest
        .tables
        .iter()
        .find(|t| t.name == "events")
        .expect("events");
    assert_eq!(events.rows, emu.org().events.len() as u64);
    assert!(
        events.stream.is_some(),
        "the next export resumes from the stream"
    );
}

/// `Retry-After` a day away fails at once, naming the endpoint and the wait,
/// instead of waiting silently.
#[tokio::test(flavor = "multi_thread")]
async fn a_wait_of_a_day_fails_at_once_and_says_so() {
    let faults = Faults {
        fail_every: Some(1),
        retry_after_secs: 86_400,
        ..Faults::default()
    };
    let emu = emulator(spec(10, 10), faults, None).await;
    let output = orgsql_on(&emu)
        .args(["-c", "SELECT count(*) FROM domains"])
        .output()
        .expect("orgsql runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("GET /admin/v1/orgs/{orgId}/domains"),
        "{stderr}"
    );
    assert!(stderr.contains("24 h"), "{stderr}");
    assert!(stderr.contains("--max-wait"), "{stderr}");
    assert_eq!(emu.requests(""), 1, "no second request");
}
