//! `orgsql export` and `--snapshot`: an export read back offline answers as
//! the live organization does, with the same table names and schemas.

use crate::common::*;
use orgsql::cli::export::{ExportOptions, export};
use orgsql::emulator::Faults;

const QUESTIONS: &[&str] = &[
    "SELECT * FROM users ORDER BY account_id",
    "SELECT * FROM events ORDER BY event_id",
    "SELECT count(*), count(DISTINCT object_id) FROM event_context",
    "SELECT g.name, count(*) FROM groups g JOIN group_members m USING (org_id, group_id) \
     GROUP BY g.name ORDER BY g.name",
    "SELECT principal_type, role, count(*) FROM role_assignments GROUP BY 1, 2 ORDER BY 1, 2",
    "SELECT * FROM user_last_active ORDER BY account_id, product_id",
    "SELECT * FROM managed_account_product_access ORDER BY account_id, product_key",
    "SELECT p.name, r.resource_id FROM policies p JOIN policy_resources r USING (org_id, policy_id) \
     ORDER BY 1, 2",
    "SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns \
     WHERE table_schema = 'public' AND table_name <> 'orgsql_requests' ORDER BY 1, 2",
];

#[tokio::test]
async fn an_export_read_back_answers_as_the_live_org() {
    let emu = emulator(spec(60, 400), Faults::default(), None).await;
    let mut config = emu.client_config();
    config.cache_ttl = None;
    let client = orgsql::api::Client::new(config).expect("client");
    let live = orgsql::session(&client).expect("session");
    let dir = tempfile::tempdir().expect("temp dir");
    let options = ExportOptions {
        out: dir.path().to_path_buf(),
        tables: None,
        since: None,
        published: None,
    };
    let mut log = Vec::new();
    let manifest = export(&live, &client, &options, &mut log)
        .await
        .expect("export");
    assert_eq!(manifest.org_id, emu.org().id);
    // Every table but the view and the request log (named, not counted: a
    // new table needs no edit here).
    let (exported, not): (Vec<_>, Vec<_>) = orgsql::tables::catalog()
        .into_iter()
        .partition(|t| t.exported());
    let not: Vec<&str> = not.iter().map(|t| t.name).collect();
    assert_eq!(not, ["role_assignments", "orgsql_requests"]);
    assert_eq!(manifest.tables.len(), exported.len());
    let events = manifest
        .tables
        .iter()
        .find(|t| t.name == "events")
        .expect("events");
    assert_eq!(events.rows, emu.org().events.len() as u64);
    assert!(
        dir.path()
            .join("events")
            .read_dir()
            .expect("partitions")
            .all(|d| {
                d.expect("entry")
                    .file_name()
                    .to_string_lossy()
                    .starts_with("date=")
            })
    );

    let offline = orgsql::snapshot::session(dir.path())
        .await
        .expect("snapshot");
    for sql in QUESTIONS {
        let expected = sql_rows(&live, sql).await;
        assert!(!expected.is_empty(), "{sql}");
        assert_eq!(sql_rows(&offline, sql).await, expected, "{sql}");
    }
}

#[tokio::test]
async fn since_and_tables_narrow_an_export() {
    let emu = emulator(spec(20, 3000), Faults::default(), None).await;
    let client = orgsql::api::Client::new(emu.client_config()).expect("client");
    let live = orgsql::session(&client).expect("session");
    let dir = tempfile::tempdir().expect("temp dir");
    let since = fixed_now() - chrono::Duration::days(3);
    let options = ExportOptions {
        out: dir.path().to_path_buf(),
        tables: Some(vec!["events".to_string(), "users".to_string()]),
        since: Some(since.to_rfc3339()),
        published: None,
    };
    let manifest = export(&live, &client, &options, &mut Vec::new())
        .await
        .expect("export");
    let names: Vec<&str> = manifest.tables.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, vec!["events", "users"]);
    let recent = emu.org().events.iter().filter(|e| e.time >= since).count();
    assert_eq!(manifest.tables[0].rows, recent as u64);
    // A three-day window is fetched as such, not as the whole log.
    assert!(manifest.tables[0].requests <= (recent as u64).div_ceil(500) + 1);

    // Another table into the same folder: what was there stays listed, so
    // a snapshot still reads it.
    let more = ExportOptions {
        out: dir.path().to_path_buf(),
        tables: Some(vec!["groups".to_string()]),
        since: None,
        published: None,
    };
    let manifest = export(&live, &client, &more, &mut Vec::new())
        .await
        .expect("export");
    let names: Vec<&str> = manifest.tables.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, vec!["events", "users", "groups"]);
    let offline = orgsql::snapshot::session(dir.path())
        .await
        .expect("snapshot");
    let counts = "SELECT (SELECT count(*) FROM users) AS u, (SELECT count(*) FROM groups) AS g";
    assert_eq!(
        sql_rows(&offline, counts).await,
        sql_rows(&live, counts).await
    );

    let unknown = ExportOptions {
        out: dir.path().to_path_buf(),
        tables: Some(vec!["no_such_table".to_string()]),
        since: None,
        published: None,
    };
    let error = export(&live, &client, &unknown, &mut Vec::new())
        .await
        .expect_err("an unknown table");
    assert!(
        error.to_string().contains("no table no_such_table"),
        "{error}"
    );
}

#[tokio::test]
async fn a_second_export_fetches_only_the_new_events() {
    let emu = emulator(spec(20, 2000), Faults::default(), None).await;
    let client = orgsql::api::Client::new(emu.client_config()).expect("client");
    let live = orgsql::session(&client).expect("session");
    let dir = tempfile::tempdir().expect("temp dir");
    let options = ExportOptions {
        out: dir.path().to_path_buf(),
        tables: Some(vec!["events".to_string()]),
        since: None,
        published: None,
    };
    export(&live, &client, &options, &mut Vec::new())
        .await
        .expect("first export");
    let full = emu.requests("/events-stream");
    assert!(full >= 4, "2000 events are at least four pages: {full}");

    // Three events happen after the export.
    let newer: Vec<String> = (1..=3)
        .map(|i| format!("00000000-0000-4000-8000-00000000000{i}"))
        .collect();
    let ids = newer.clone();
    emu.change(move |org| {
        for (i, id) in ids.into_iter().enumerate() {
            let mut event = org.events[0].clone();
            event.id = id;
            event.time += chrono::Duration::minutes(i as i64 + 1);
            event.processed_at = event.time + chrono::Duration::seconds(2);
            org.events.insert(0, event);
        }
    });

    emu.reset_requests();
    // A fresh session: nothing cached from the first run.
    let client = orgsql::api::Client::new(emu.client_config()).expect("client");
    let live = orgsql::session(&client).expect("session");
    let manifest = export(&live, &client, &options, &mut Vec::new())
        .await
        .expect("second export");
    assert_eq!(
        emu.requests("/events-stream"),
        2,
        "one page of new events and the empty one that ends the stream, not the log again"
    );
    let served = emu.org().events.len();
    assert_eq!(manifest.tables[0].rows, served as u64);

    let offline = offline_with_events_once(dir.path(), served).await;
    let sql = "SELECT event_id FROM events ORDER BY time DESC LIMIT 3";
    let mut latest = column(&offline, sql).await;
    latest.sort();
    assert_eq!(latest, newer);
}
