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
     WHERE table_schema = 'public' AND table_name NOT IN ('orgsql_requests', 'orgsql_listings') \
     ORDER BY 1, 2",
];

#[tokio::test]
async fn an_export_read_back_answers_as_the_live_org() {
    let emu = emulator(spec(60, 400), Faults::default(), None).await;
    let mut config = emu.client_config();
    config.cache_ttl = None;
    let client = orgsql::api::Client::new(config).expect("client");
    let live = orgsql::context(&client).expect("session");
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
        .partition(orgsql::tables::TableInfo::exported);
    let not: Vec<&str> = not.iter().map(|t| t.name).collect();
    assert_eq!(
        not,
        [
            "role_assignments",
            "seats",
            "orgsql_requests",
            "orgsql_listings",
            "grants_history",
            "history_coverage"
        ]
    );
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
                    .starts_with("month=")
            })
    );

    let offline = orgsql::snapshot::context(&dir.path().into())
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
    let live = orgsql::context(&client).expect("session");
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
    let offline = orgsql::snapshot::context(&dir.path().into())
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
    let live = orgsql::context(&client).expect("session");
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
    let live = orgsql::context(&client).expect("session");
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

/// `orgsql ARGS`, offline, with the verification record below `cache`.
fn offline(cache: &std::path::Path, args: &[&str]) -> std::process::Output {
    orgsql_alone()
        .env("XDG_CACHE_HOME", cache)
        .args(args)
        .output()
        .expect("orgsql runs")
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// An export of `emu` by the real binary into `dir`.
fn export_by_binary(emu: &orgsql::emulator::Emulator, dir: &std::path::Path) {
    succeeded(
        &orgsql_on(emu)
            .args(["export", "--out", &dir.display().to_string()])
            .output()
            .expect("orgsql runs"),
        "export",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_changed_file_is_never_read_and_snapshot_verify_lists_every_problem() {
    let emu = emulator(spec(40, 300), Faults::default(), None).await;
    let tmp = tempfile::tempdir().expect("temp dir");
    let cache = tmp.path().join("cache");
    let good = tmp.path().join("good");
    export_by_binary(&emu, &good);
    let good_arg = good.display().to_string();
    let verified = offline(&cache, &["snapshot", "verify", &good_arg]);
    let said = String::from_utf8_lossy(&succeeded(&verified, "snapshot verify")).into_owned();
    assert!(said.contains("intact"), "{said}");

    // users.parquet replaced by another table's file, the manifest untouched.
    let bad = tmp.path().join("bad");
    let copied = std::process::Command::new("cp")
        .args(["-a", &good_arg, &bad.display().to_string()])
        .status()
        .expect("cp runs");
    assert!(copied.success());
    let bad_arg = bad.display().to_string();
    std::fs::copy(bad.join("groups.parquet"), bad.join("users.parquet")).expect("copied");
    let named = format!("{bad_arg}/users.parquet (table users) has changed since the export");
    let failed = |args: &[&str], code: i32| {
        let output = offline(&cache, args);
        let stderr = stderr(&output);
        assert_eq!(output.status.code(), Some(code), "{args:?}: {stderr}");
        assert!(stderr.contains(&named), "{args:?}: {stderr}");
        assert!(
            stderr.contains(&format!("orgsql snapshot verify {bad_arg}")),
            "{stderr}"
        );
        assert!(output.stdout.is_empty(), "{args:?}: nothing read");
    };
    failed(
        &["--snapshot", &bad_arg, "-c", "SELECT count(*) FROM groups"],
        1,
    );
    failed(&["--snapshot", &bad_arg, "check"], 2);
    failed(&["diff", &good_arg, &bad_arg], 2);
    failed(
        &[
            "--snapshot",
            &good_arg,
            "--attach",
            &format!("old={bad_arg}"),
            "-c",
            "SELECT 1",
        ],
        1,
    );
    failed(
        &["--snapshot", &good_arg, "check", "--baseline", &bad_arg],
        2,
    );
    let listed = offline(&cache, &["snapshot", "verify", &bad_arg]);
    let out = String::from_utf8_lossy(&listed.stdout);
    assert_eq!(listed.status.code(), Some(1), "{out}");
    assert!(
        out.contains("users: users.parquet has changed since the export"),
        "{out}"
    );
    assert!(out.contains("1 problem(s)"), "{out}");

    // The same size, one byte changed, the time set back: the sha256 tells.
    std::fs::copy(good.join("users.parquet"), bad.join("users.parquet")).expect("restored");
    crate::common::flip_a_byte(&bad.join("users.parquet"));
    let output = offline(&cache, &["--snapshot", &bad_arg, "-c", "SELECT 1"]);
    let said = stderr(&output);
    assert!(!output.status.success());
    assert!(said.contains(&named) && said.contains("sha256"), "{said}");

    // A file added to a table's folder is not read, and is listed; one gone
    // is named.
    std::fs::copy(good.join("users.parquet"), bad.join("users.parquet")).expect("restored");
    let day = std::fs::read_dir(bad.join("events"))
        .expect("events")
        .next()
        .expect("a day")
        .expect("entry")
        .path();
    let part = std::fs::read_dir(&day)
        .expect("a day's files")
        .next()
        .expect("a file")
        .expect("entry")
        .path();
    let extra = day.join("part-added.parquet");
    std::fs::copy(&part, &extra).expect("copied");
    let count = "SELECT count(*) FROM events";
    let counted = |dir: &str| {
        String::from_utf8_lossy(&succeeded(
            &offline(&cache, &["--snapshot", dir, "--format", "csv", "-c", count]),
            dir,
        ))
        .into_owned()
    };
    assert_eq!(
        counted(&bad_arg),
        counted(&good_arg),
        "the added file unread"
    );
    let listed = offline(&cache, &["snapshot", "verify", &bad_arg]);
    let out = String::from_utf8_lossy(&listed.stdout);
    assert_eq!(listed.status.code(), Some(1), "{out}");
    let relative = extra
        .strip_prefix(&bad)
        .expect("inside")
        .display()
        .to_string();
    assert!(
        out.contains(&format!("events: {relative} was added after the export")),
        "{out}"
    );
    std::fs::remove_file(&part).expect("removed");
    let gone = part
        .strip_prefix(&bad)
        .expect("inside")
        .display()
        .to_string();
    let output = offline(&cache, &["--snapshot", &bad_arg, "-c", count]);
    let said = stderr(&output);
    assert!(
        said.contains(&format!("{bad_arg}/{gone} (table events) is missing")),
        "{said}"
    );
    let listed = offline(&cache, &["snapshot", "verify", &bad_arg]);
    let out = String::from_utf8_lossy(&listed.stdout);
    assert_eq!(listed.status.code(), Some(1), "{out}");
    assert!(out.contains(&format!("events: {gone} is missing")), "{out}");
    assert!(out.contains("2 problem(s)"), "{out}");
    assert_eq!(
        offline(
            &cache,
            &[
                "snapshot",
                "verify",
                &tmp.path().join("none").display().to_string()
            ]
        )
        .status
        .code(),
        Some(2),
        "no export there: cannot be checked"
    );
}

/// The verification record's entries, by path.
fn record(
    cache: &std::path::Path,
) -> std::collections::BTreeMap<String, orgsql::snapshot::verify::Hashed> {
    let path = cache.join("orgsql/verified.json");
    let record: orgsql::snapshot::verify::Record =
        serde_json::from_slice(&std::fs::read(&path).expect("a record")).expect("JSON");
    record.files
}

#[tokio::test(flavor = "multi_thread")]
async fn an_intact_export_is_hashed_once_and_the_record_is_trusted_only_private() {
    let emu = emulator(spec(30, 200), Faults::default(), None).await;
    let tmp = tempfile::tempdir().expect("temp dir");
    let cache = tmp.path().join("cache");
    let dir = tmp.path().join("snap");
    export_by_binary(&emu, &dir);
    crate::common::age_files(&dir);
    let arg = dir.display().to_string();
    let query = [
        "--snapshot",
        arg.as_str(),
        "-c",
        "SELECT count(*) FROM users",
    ];
    succeeded(&offline(&cache, &query), "the first query");

    // Every file the manifest lists is recorded, with the manifest's sha256.
    let manifest: orgsql::snapshot::Manifest =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).expect("manifest"))
            .expect("JSON");
    let canonical = std::fs::canonicalize(&dir).expect("canonical");
    let listed: Vec<(String, String)> = manifest
        .tables
        .iter()
        .flat_map(|t| t.files.iter())
        .map(|f| {
            (
                canonical.join(&f.path).display().to_string(),
                f.sha256.clone(),
            )
        })
        .collect();
    assert!(listed.len() > 20, "{listed:?}");
    let first = record(&cache);
    for (path, sha256) in &listed {
        assert_eq!(
            first.get(path).map(|h| h.sha256.as_str()),
            Some(sha256.as_str()),
            "{path}"
        );
    }
    let record_path = cache.join("orgsql/verified.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode =
            |p: &std::path::Path| std::fs::metadata(p).expect("there").permissions().mode() & 0o777;
        assert_eq!(mode(&record_path), 0o600);
        assert_eq!(mode(&cache.join("orgsql")), 0o700);
    }

    // The second query hashes nothing: a file hashed again would get a new
    // hashed_at (to the nanosecond).
    let bytes = std::fs::read(&record_path).expect("the record");
    succeeded(&offline(&cache, &query), "the second query");
    assert!(
        std::fs::read(&record_path).expect("the record") == bytes,
        "the record was rewritten: a file was hashed again"
    );
    assert_eq!(record(&cache), first);

    // Written over in place, its modification time set back: no longer the
    // file recorded (its inode change time moved), so hashed, and refused.
    let users = dir.join("users.parquet");
    let intact = std::fs::read(&users).expect("users.parquet");
    crate::common::flip_a_byte(&users);
    let output = offline(&cache, &query);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("users.parquet (table users) has changed since the export"),
        "{}",
        stderr(&output)
    );

    // What the record stands for: a (forged) entry with the changed file's
    // stamp and the manifest's sha256 passes it unhashed, while the record
    // is private; once others may write it, it is not trusted.
    let recorded = listed
        .iter()
        .find(|(path, _)| path.ends_with("/users.parquet"))
        .expect("users.parquet listed");
    let stamp = orgsql::snapshot::verify::Stamp::of(&std::fs::metadata(&users).expect("there"))
        .expect("a stamp");
    let mut forged = orgsql::snapshot::verify::Record::load(&record_path);
    forged.files.insert(
        recorded.0.clone(),
        orgsql::snapshot::verify::Hashed {
            stamp,
            sha256: recorded.1.clone(),
            hashed_at: "2026-01-01T00:00:00.000000000Z".to_string(),
        },
    );
    std::fs::write(&record_path, serde_json::to_vec(&forged).expect("JSON")).expect("written");
    succeeded(&offline(&cache, &query), "a file the record vouches for");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&record_path, std::fs::Permissions::from_mode(0o620))
            .expect("chmod");
        let output = offline(&cache, &query);
        assert!(
            !output.status.success(),
            "a record others may write is not trusted"
        );
        assert!(
            stderr(&output).contains("users.parquet"),
            "{}",
            stderr(&output)
        );
    }
    std::fs::write(&users, intact).expect("restored");
}

#[test]
fn a_file_is_hashed_unless_recorded_as_it_is_and_recorded_once_settled() {
    use orgsql::snapshot::verify::{Hashed, Stamp, may_record, must_hash};
    let stamp = Stamp {
        bytes: 100,
        modified_ns: 1_800_000_000_000_000_000,
        changed_ns: 1_800_000_000_000_000_000,
        inode: 7,
        device: 1,
    };
    let known = Hashed {
        stamp,
        sha256: "ab".to_string(),
        hashed_at: "2027-01-15T08:00:05.000000000Z".to_string(),
    };
    assert!(!must_hash(Some(&known), Some(&stamp), "ab"), "as recorded");
    assert!(must_hash(None, Some(&stamp), "ab"), "never hashed");
    assert!(must_hash(Some(&known), None, "ab"), "no stamp");
    assert!(
        must_hash(Some(&known), Some(&stamp), "cd"),
        "another digest"
    );
    for changed in [
        Stamp {
            bytes: 101,
            ..stamp
        },
        Stamp {
            modified_ns: stamp.modified_ns + 1,
            ..stamp
        },
        Stamp {
            changed_ns: stamp.changed_ns + 1,
            ..stamp
        },
        Stamp { inode: 8, ..stamp },
        Stamp { device: 2, ..stamp },
    ] {
        assert!(must_hash(Some(&known), Some(&changed), "ab"), "{changed:?}");
    }
    let at = |ns: i64| std::time::UNIX_EPOCH + std::time::Duration::from_nanos(ns as u64);
    assert!(!may_record(&stamp, at(stamp.modified_ns + 1_999_999_999)));
    assert!(
        !may_record(&stamp, at(stamp.modified_ns - 5)),
        "from the future"
    );
    assert!(may_record(&stamp, at(stamp.modified_ns + 2_000_000_000)));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_export_listing_no_files_is_read_with_a_warning_and_verify_says_it_cannot_be_checked() {
    let emu = emulator(spec(20, 50), Faults::default(), None).await;
    let tmp = tempfile::tempdir().expect("temp dir");
    let cache = tmp.path().join("cache");
    let dir = tmp.path().join("snap");
    export_by_binary(&emu, &dir);
    let arg = dir.display().to_string();
    let sql = "SELECT (SELECT count(*) FROM users) AS u, (SELECT count(*) FROM events) AS e";
    let query = ["--snapshot", arg.as_str(), "--format", "csv", "-c", sql];
    let before = succeeded(&offline(&cache, &query), "intact");
    assert!(
        stderr(&offline(&cache, &query)).is_empty(),
        "no warning when verified"
    );

    // As an older orgsql wrote it: no file digests.
    let path = dir.join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("manifest")).expect("JSON");
    for table in manifest["tables"].as_array_mut().expect("tables") {
        table.as_object_mut().expect("an entry").remove("files");
    }
    std::fs::write(&path, serde_json::to_vec(&manifest).expect("JSON")).expect("written");
    let output = offline(&cache, &query);
    assert_eq!(succeeded(&output, "unverified"), before, "read as before");
    let warned = stderr(&output);
    assert!(
        warned.starts_with("warning: ")
            && warned.contains("lists no files for")
            && warned.contains("users")
            && warned.contains("events")
            && warned.contains("unverified"),
        "{warned}"
    );
    let listed = offline(&cache, &["snapshot", "verify", &arg]);
    let out = String::from_utf8_lossy(&listed.stdout);
    assert_eq!(listed.status.code(), Some(1), "{out}");
    assert!(
        out.contains("users: the manifest records no file digests"),
        "{out}"
    );
}

/// An export's clock (its `as_of`) at `text`: compaction judges months
/// closed by it.
fn at(emu: &orgsql::emulator::Emulator, text: &str) -> orgsql::api::ClientConfig {
    let mut config = emu.client_config();
    config.clock = Some(
        chrono::DateTime::parse_from_rfc3339(text)
            .expect("a time")
            .to_utc(),
    );
    config
}

/// An event like the newest, that happened at `time` and was processed
/// after every event the emulator served so far (late, for an old `time`).
fn processed_now(emu: &orgsql::emulator::Emulator, id: &str, time: &str) {
    let (id, time) = (
        id.to_string(),
        chrono::DateTime::parse_from_rfc3339(time)
            .expect("a time")
            .to_utc(),
    );
    emu.change(move |org| {
        let newest = org
            .events
            .iter()
            .map(|e| e.processed_at)
            .max()
            .expect("events");
        let mut event = org.events[0].clone();
        event.id = id;
        event.time = time;
        event.processed_at = newest + chrono::Duration::seconds(30);
        org.events.push(event);
        org.events.sort_by_key(|e| std::cmp::Reverse(e.time));
    });
}

/// The files of `table` in the folder of month `month` (`2026-10`), as the
/// manifest lists them and as the disk holds them.
fn month_files(
    dir: &std::path::Path,
    manifest: &orgsql::snapshot::Manifest,
    table: &str,
    month: &str,
) -> (Vec<String>, Vec<String>) {
    let folder = format!("{table}/month={month}/");
    let mut listed: Vec<String> = manifest
        .tables
        .iter()
        .filter(|t| t.name == table)
        .flat_map(|t| t.files.iter().map(|f| f.path.clone()))
        .filter(|p| p.starts_with(&folder))
        .collect();
    listed.sort();
    let mut present: Vec<String> = files_below(&dir.join(&folder))
        .iter()
        .map(|p| p.strip_prefix(dir).expect("inside").display().to_string())
        .collect();
    present.sort();
    (listed, present)
}

/// What the snapshot at `dir` answers and the live organization does, for
/// every row of both audit-log tables.
async fn same_audit_log(dir: &std::path::Path, emu: &orgsql::emulator::Emulator) {
    let offline = offline_with_events_once(dir, emu.org().events.len()).await;
    let live = session(emu.client_config());
    for sql in [
        "SELECT * FROM events ORDER BY event_id",
        "SELECT * FROM event_context ORDER BY event_id, role, object_id",
    ] {
        assert_eq!(
            sql_rows(&offline, sql).await,
            sql_rows(&live, sql).await,
            "{sql}"
        );
    }
    assert_eq!(
        orgsql::snapshot::tampered(&dir.into())
            .await
            .expect("verified"),
        Vec::<String>::new(),
        "the manifest lists exactly the files there, each as recorded"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_audit_log_is_written_by_month_and_closed_months_are_compacted() {
    use datafusion::arrow::array::{Array, TimestampMicrosecondArray};
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let emu = emulator(spec(20, 1500), Faults::default(), None).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let tables = Some(&["events", "event_context"][..]);
    // The organization's now is 2026-11-20: the export runs on 3 December,
    // so October is closed and November (ended 1 December, less than the
    // lateness margin ago) is not.
    let manifest = export_to(at(&emu, "2026-12-03T00:00:00Z"), dir.path(), tables).await;

    // Every file is in the folder of its rows' month.
    let events = manifest
        .tables
        .iter()
        .find(|t| t.name == "events")
        .expect("events");
    assert!(events.files.len() > 2, "{:?}", events.files);
    for file in &events.files {
        let (folder, _) = file
            .path
            .strip_prefix("events/month=")
            .and_then(|p| p.split_once('/'))
            .unwrap_or_else(|| panic!("{} is not in a month folder", file.path));
        let reader = ParquetRecordBatchReaderBuilder::try_new(
            std::fs::File::open(dir.path().join(&file.path)).expect("the file"),
        )
        .expect("parquet")
        .build()
        .expect("a reader");
        for batch in reader {
            let batch = batch.expect("a batch");
            let times = batch
                .column_by_name("time")
                .and_then(|c| c.as_any().downcast_ref::<TimestampMicrosecondArray>())
                .expect("time");
            for i in 0..times.len() {
                let time = chrono::DateTime::from_timestamp_micros(times.value(i)).expect("time");
                assert_eq!(time.format("%Y-%m").to_string(), folder, "{}", file.path);
            }
        }
    }
    same_audit_log(dir.path(), &emu).await;

    // A late event in closed October, and one in open November: October's
    // two files become one; November keeps its new file beside the others.
    let before = |table: &str, month: &str| month_files(dir.path(), &manifest, table, month).0;
    let november = before("events", "2026-11");
    assert!(!november.is_empty());
    processed_now(
        &emu,
        "00000000-0000-4000-8000-0000000000c1",
        "2026-10-15T10:00:00Z",
    );
    processed_now(
        &emu,
        "00000000-0000-4000-8000-0000000000c2",
        "2026-11-10T10:00:00Z",
    );
    let manifest = export_to(at(&emu, "2026-12-03T00:00:00Z"), dir.path(), tables).await;
    for table in ["events", "event_context"] {
        let (listed, present) = month_files(dir.path(), &manifest, table, "2026-10");
        assert_eq!(listed.len(), 1, "{table}: {listed:?}");
        assert_eq!(listed, present, "{table}: the replaced files are gone");
    }
    let (listed, present) = month_files(dir.path(), &manifest, "events", "2026-11");
    assert_eq!(listed.len(), november.len() + 1, "open: not compacted");
    assert_eq!(listed, present);
    same_audit_log(dir.path(), &emu).await;

    // A file a stopped run left in a month folder, unlisted: not read, and
    // removed by the next export, which says so. On 5 December November is
    // still open.
    let stray = dir
        .path()
        .join("events/month=2026-11/part-stopped-00001.parquet");
    std::fs::copy(dir.path().join(&listed[0]), &stray).expect("copied");
    let offline = offline_with_events_once(dir.path(), emu.org().events.len()).await;
    drop(offline);
    let (manifest, said) =
        export_logged(at(&emu, "2026-12-05T00:00:00Z"), dir.path(), tables).await;
    assert!(!stray.exists(), "the unlisted file is removed");
    assert!(
        said.contains(
            "events: removed 1 file(s) the manifest no longer lists (folded into a compacted \
             month, or left by a stopped run; first: events/month=2026-11/part-stopped-00001.parquet)"
        ),
        "{said}"
    );
    let (listed, present) = month_files(dir.path(), &manifest, "events", "2026-11");
    assert_eq!(listed.len(), november.len() + 1, "still open on 5 December");
    assert_eq!(listed, present);

    // Seven days after its end November is closed: one file, the same rows.
    let manifest = export_to(at(&emu, "2026-12-08T00:00:00Z"), dir.path(), tables).await;
    for table in ["events", "event_context"] {
        let (listed, present) = month_files(dir.path(), &manifest, table, "2026-11");
        assert_eq!(listed.len(), 1, "{table}: {listed:?}");
        assert_eq!(listed, present);
    }
    same_audit_log(dir.path(), &emu).await;
}

/// An export by an orgsql that wrote day folders (`date=YYYY-MM-DD/`) is
/// read as it is, and topped up by month: the month folders go beside the
/// day folders, and a closed month's files, day and month, become one.
#[tokio::test(flavor = "multi_thread")]
async fn an_export_in_day_folders_is_read_and_topped_up_by_month() {
    let emu = emulator(spec(20, 800), Faults::default(), None).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let tables = Some(&["events", "event_context"][..]);
    let clock = "2026-12-03T00:00:00Z";
    export_to(at(&emu, clock), dir.path(), tables).await;
    // Each month's file moved into a day folder, as the old layout had it.
    let path = dir.path().join("manifest.json");
    let mut manifest: orgsql::snapshot::Manifest =
        serde_json::from_slice(&std::fs::read(&path).expect("manifest")).expect("JSON");
    for table in &mut manifest.tables {
        for file in &mut table.files {
            let Some((month, name)) = file
                .path
                .strip_prefix(&format!("{}/month=", table.name))
                .and_then(|p| p.split_once('/'))
            else {
                continue;
            };
            let day = format!("{}/date={month}-01/{name}", table.name);
            std::fs::create_dir_all(dir.path().join(&day).parent().expect("a folder"))
                .expect("a day folder");
            std::fs::rename(dir.path().join(&file.path), dir.path().join(&day)).expect("moved");
            file.path = day;
        }
    }
    for table in ["events", "event_context"] {
        for month in std::fs::read_dir(dir.path().join(table)).expect("a folder") {
            let month = month.expect("entry").path();
            if month.to_string_lossy().contains("month=") {
                std::fs::remove_dir(&month).expect("emptied");
            }
        }
    }
    std::fs::write(&path, serde_json::to_vec(&manifest).expect("JSON")).expect("written");
    same_audit_log(dir.path(), &emu).await;

    processed_now(
        &emu,
        "00000000-0000-4000-8000-0000000000d1",
        "2026-10-20T10:00:00Z",
    );
    let manifest = export_to(at(&emu, clock), dir.path(), tables).await;
    same_audit_log(dir.path(), &emu).await;
    let (listed, present) = month_files(dir.path(), &manifest, "events", "2026-10");
    assert_eq!(listed.len(), 1, "October's day and month files in one");
    assert_eq!(listed, present);
    assert!(!dir.path().join("events/date=2026-10-01").exists());
    let events = manifest
        .tables
        .iter()
        .find(|t| t.name == "events")
        .expect("events");
    assert!(
        events
            .files
            .iter()
            .any(|f| f.path.starts_with("events/date=2026-09-01/")),
        "a month of one file stays in its day folder: {:?}",
        events.files
    );
}
