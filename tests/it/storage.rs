//! Exports to object storage and snapshots read from there, through the
//! real binary, against a real S3-protocol server on loopback.

use std::process::{Command, Output};

use orgsql::emulator::Faults;

use crate::common::{emulator, orgsql_alone, orgsql_on, spec, succeeded};
use crate::s3server::{S3Server, SECRET_KEY};

fn on(server: &S3Server, mut command: Command) -> Command {
    server.env(&mut command, SECRET_KEY);
    command
}

fn run(command: &mut Command) -> Output {
    command.output().expect("orgsql runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Each table's row count in a snapshot (a folder or a prefix), by name.
fn counts(server: &S3Server, snapshot: &str) -> Vec<String> {
    let sql = "SELECT (SELECT count(*) FROM users) AS u, (SELECT count(*) FROM groups) AS g, \
               (SELECT count(*) FROM group_members) AS m, \
               (SELECT count(*) FROM user_role_assignments) AS r, \
               (SELECT count(*) FROM events) AS e, (SELECT count(DISTINCT event_id) FROM events) AS d";
    let output = run(on(server, orgsql_alone()).args([
        "--snapshot",
        snapshot,
        "--format",
        "csv",
        "-c",
        sql,
    ]));
    text(&succeeded(&output, snapshot))
        .lines()
        .skip(1)
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_export_to_s3_reads_back_adds_only_what_is_new_and_survives_a_stop() {
    let emu = emulator(spec(60, 1500), Faults::default(), None).await;
    let mut server = S3Server::start(&["warehouse"]).await;
    let local = tempfile::tempdir().expect("temp dir");
    let local = local.path().join("snap");
    let prefix = "s3://warehouse/atlassian/org/";

    // The same export to disk and to the bucket reads back alike.
    succeeded(
        &run(orgsql_on(&emu).args(["export", "--out", &local.display().to_string()])),
        "export to disk",
    );
    let exported = run(on(&server, orgsql_on(&emu)).args(["export", "--out", prefix]));
    let said = text(&succeeded(&exported, "export to s3"));
    let stderr = text(&exported.stderr);
    assert!(said.is_empty(), "{said}");
    assert!(stderr.contains(&format!("to {prefix}")), "{stderr}");
    let served = emu.org().events.len();
    let from_disk = counts(&server, &local.display().to_string());
    assert_eq!(counts(&server, prefix), from_disk);
    assert!(
        from_disk[0].ends_with(&format!("{served},{served}")),
        "{from_disk:?}"
    );
    let as_url = format!("file://{}", local.display());
    assert_eq!(counts(&server, &as_url), from_disk, "file:// is the folder");

    // check and diff work on prefixes as on folders.
    let checked = |snapshot: &str| {
        let output = run(on(&server, orgsql_alone()).args([
            "--snapshot",
            snapshot,
            "check",
            "--controls",
            "org_admin_count,mfa_active_users,inactive_users_with_access,recent_admin_grants",
            "--format",
            "json",
        ]));
        let report: serde_json::Value =
            serde_json::from_slice(&output.stdout).expect("a JSON report");
        report["results"]
            .as_array()
            .expect("results")
            .iter()
            .map(|r| (r["id"].clone(), r["outcome"].clone(), r["findings"].clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(checked(prefix), checked(&local.display().to_string()));
    let diff = run(on(&server, orgsql_alone()).args([
        "diff",
        prefix,
        &local.display().to_string(),
        "--format",
        "csv",
    ]));
    assert_eq!(
        text(&succeeded(&diff, "diff")),
        "org_id,table_name,change,key,labels,column_name,old_value,new_value\n",
        "the same organization, exported twice: no change"
    );

    // Three events happen; the next export fetches only them.
    let add_events = |first: u64| {
        emu.change(move |org| {
            for i in 0..3 {
                let mut event = org.events[0].clone();
                event.id = format!("00000000-0000-4000-8000-{:012}", first + i);
                event.time += chrono::Duration::minutes(i as i64 + 1);
                event.processed_at = event.time + chrono::Duration::seconds(2);
                org.events.insert(0, event);
            }
        });
    };
    add_events(100);
    emu.reset_requests();
    succeeded(
        &run(on(&server, orgsql_on(&emu)).args(["export", "--out", prefix, "--tables", "events"])),
        "re-export",
    );
    assert_eq!(
        emu.requests("/events-stream"),
        2,
        "one page of new events and the empty one that ends the stream"
    );
    let served = served + 3;
    let after = counts(&server, prefix);
    assert!(
        after[0].ends_with(&format!("{served},{served}")),
        "{after:?}"
    );

    // The server stops while the next export uploads its new events: the
    // manifest there still lists whole files only, and reads.
    add_events(200);
    emu.change(|org| org.users[0].name = "Renamed Person".to_string());
    server.stop_after_writes("events/", 0);
    let stopped =
        run(on(&server, orgsql_on(&emu)).args(["--max-retries", "0", "export", "--out", prefix]));
    let stderr = text(&stopped.stderr);
    assert!(!stopped.status.success(), "the export must fail");
    assert!(
        stderr.contains("stopped; its manifest lists the earlier export"),
        "{stderr}"
    );
    let folder = server.folder("warehouse").join("atlassian/org");
    let problems = orgsql::snapshot::tampered(&folder.as_path().into())
        .await
        .expect("a manifest");
    assert!(
        problems
            .iter()
            .all(|p| p.contains("was added after the export")),
        "every file the manifest lists is there, whole: {problems:?}"
    );
    let on_disk = counts(&server, &folder.display().to_string());
    assert!(
        on_disk[0].ends_with(&format!("{served},{served}")),
        "the events of the stopped run are not listed: {on_disk:?}"
    );

    // Started again, the next export completes it: every event once.
    server.restart().await;
    succeeded(
        &run(on(&server, orgsql_on(&emu)).args(["export", "--out", prefix])),
        "the export after the stop",
    );
    let served = served + 3;
    let done = counts(&server, prefix);
    assert!(done[0].ends_with(&format!("{served},{served}")), "{done:?}");
    let renamed = run(on(&server, orgsql_alone()).args([
        "--snapshot",
        prefix,
        "--format",
        "csv",
        "-c",
        "SELECT count(*) FROM users WHERE name = 'Renamed Person'",
    ]));
    assert_eq!(text(&succeeded(&renamed, "renamed")), "count(*)\n1\n");
    // The stopped run's unlisted files are gone: the bucket holds exactly
    // what its manifest lists.
    assert_eq!(
        orgsql::snapshot::tampered(&folder.as_path().into())
            .await
            .expect("a manifest"),
        Vec::<String>::new()
    );

    // An event of October (closed: the export's clock is the wall's) processed
    // late: October's files in the bucket, with the new one, become one file,
    // and the objects it replaced are removed once the manifest lists it.
    emu.change(|org| {
        let newest = org.events.iter().map(|e| e.processed_at).max();
        let mut event = org.events[0].clone();
        event.id = "00000000-0000-4000-8000-0000000000e1".to_string();
        event.time = chrono::DateTime::parse_from_rfc3339("2026-10-15T10:00:00Z")
            .expect("a time")
            .to_utc();
        event.processed_at = newest.expect("events") + chrono::Duration::seconds(30);
        org.events.push(event);
        org.events.sort_by_key(|e| std::cmp::Reverse(e.time));
    });
    succeeded(
        &run(on(&server, orgsql_on(&emu)).args(["export", "--out", prefix, "--tables", "events"])),
        "the export adding to a closed month",
    );
    let served = served + 1;
    let compacted = counts(&server, prefix);
    assert!(
        compacted[0].ends_with(&format!("{served},{served}")),
        "{compacted:?}"
    );
    let manifest: orgsql::snapshot::Manifest =
        serde_json::from_slice(&std::fs::read(folder.join("manifest.json")).expect("manifest"))
            .expect("JSON");
    let october: Vec<&str> = manifest
        .tables
        .iter()
        .filter(|t| t.name == "events")
        .flat_map(|t| t.files.iter().map(|f| f.path.as_str()))
        .filter(|p| p.starts_with("events/month=2026-10/"))
        .collect();
    assert_eq!(october.len(), 1, "{october:?}");
    assert_eq!(
        orgsql::snapshot::tampered(&folder.as_path().into())
            .await
            .expect("a manifest"),
        Vec::<String>::new(),
        "the bucket holds exactly what the manifest lists"
    );
    let done = compacted;

    // A prefix whose manifest lists no files (an older orgsql's export,
    // synced up by hand) is exported afresh, never emptied.
    let manifest_path = folder.join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).expect("manifest")).expect("JSON");
    for table in manifest["tables"].as_array_mut().expect("tables") {
        table.as_object_mut().expect("an entry").remove("files");
    }
    std::fs::write(&manifest_path, serde_json::to_vec(&manifest).expect("JSON")).expect("written");
    emu.reset_requests();
    succeeded(
        &run(on(&server, orgsql_on(&emu)).args(["export", "--out", prefix])),
        "the export over a manifest without files",
    );
    assert!(
        emu.requests("/events-stream") > 2,
        "the audit log read afresh, not resumed"
    );
    assert_eq!(counts(&server, prefix), done);
}

#[tokio::test(flavor = "multi_thread")]
async fn storage_errors_name_the_url_and_never_the_secret() {
    let emu = emulator(spec(10, 20), Faults::default(), None).await;
    let server = S3Server::start(&["warehouse"]).await;

    let mut wrong = orgsql_on(&emu);
    server.env(&mut wrong, "not-the-secret-either");
    let denied = run(wrong.args(["--max-retries", "0", "export", "--out", "s3://warehouse/x/"]));
    let stderr = text(&denied.stderr);
    assert!(!denied.status.success());
    assert!(
        stderr.contains("s3://warehouse/x/: access denied (SignatureDoesNotMatch)"),
        "{stderr}"
    );
    assert!(!stderr.contains("not-the-secret-either"), "{stderr}");

    let missing = run(on(&server, orgsql_on(&emu)).args([
        "--max-retries",
        "0",
        "export",
        "--out",
        "s3://nosuchbucket/x/",
    ]));
    let stderr = text(&missing.stderr);
    assert!(!missing.status.success());
    assert!(
        stderr.contains("s3://nosuchbucket/x/: no such bucket"),
        "{stderr}"
    );

    // COPY to a URL and a URL as a table, in SQL.
    let copied = run(on(&server, orgsql_alone()).args([
        "--demo",
        "-c",
        "COPY (SELECT 1 AS one) TO 's3://warehouse/sql/one.parquet'",
        "-c",
        "SELECT one FROM 's3://warehouse/sql/one.parquet'",
    ]));
    let out = text(&succeeded(&copied, "COPY to s3"));
    assert!(out.contains("Wrote 1 row"), "{out}");
    assert!(out.contains("| 1   |"), "{out}");

    // The secret is nowhere: not in any output, not in the bucket.
    let exported =
        run(on(&server, orgsql_on(&emu)).args(["-v", "export", "--out", "s3://warehouse/y/"]));
    succeeded(&exported, "export");
    for output in [
        &exported.stdout,
        &exported.stderr,
        &copied.stdout,
        &copied.stderr,
    ] {
        assert!(!text(output).contains(SECRET_KEY));
    }
    for file in crate::common::files_below(server.root()) {
        let bytes = std::fs::read(&file).expect("readable");
        assert!(
            !bytes
                .windows(SECRET_KEY.len())
                .any(|w| w == SECRET_KEY.as_bytes()),
            "{}",
            file.display()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_prefix_is_read_only_at_the_manifests_sizes_and_verify_downloads_and_hashes_it() {
    let emu = emulator(spec(30, 200), Faults::default(), None).await;
    let server = S3Server::start(&["warehouse"]).await;
    let prefix = "s3://warehouse/snap/";
    succeeded(
        &run(on(&server, orgsql_on(&emu)).args(["export", "--out", prefix])),
        "export to s3",
    );
    let verify =
        |server: &S3Server| run(on(server, orgsql_alone()).args(["snapshot", "verify", prefix]));
    let intact = verify(&server);
    assert!(text(&succeeded(&intact, "verify")).contains("intact"));

    // `orgsql verify` counts each table's rows from its objects' footers:
    // a count changed in the manifest is found there too.
    let manifest = server.folder("warehouse").join("snap/manifest.json");
    let recorded = std::fs::read_to_string(&manifest).expect("manifest");
    let users = emu.org().users.len();
    let mut value: serde_json::Value = serde_json::from_str(&recorded).expect("JSON");
    for table in value["tables"].as_array_mut().expect("tables") {
        if table["name"] == "users" {
            assert_eq!(table["rows"], users);
            table["rows"] = (users - 1).into();
        }
    }
    std::fs::write(&manifest, value.to_string()).expect("written");
    let counted = run(on(&server, orgsql_alone()).args(["verify", prefix]));
    assert_eq!(counted.status.code(), Some(1), "{}", text(&counted.stderr));
    assert!(
        text(&counted.stdout).contains(&format!(
            "users: its files hold {users} rows where manifest.json records {}",
            users - 1
        )),
        "{}",
        text(&counted.stdout)
    );
    std::fs::write(&manifest, recorded).expect("restored");
    assert!(
        text(&succeeded(
            &run(on(&server, orgsql_alone()).args(["verify", prefix])),
            "verify"
        ))
        .contains("intact")
    );

    // The same size, another content: a query checks sizes only (hashing
    // would download the export each time); verify downloads and hashes.
    let users = server.folder("warehouse").join("snap/users.parquet");
    let original = std::fs::read(&users).expect("users.parquet");
    crate::common::flip_a_byte(&users);
    let found = verify(&server);
    assert_eq!(found.status.code(), Some(1), "{}", text(&found.stderr));
    assert!(
        text(&found.stdout).contains("users: users.parquet has changed since the export"),
        "{}",
        text(&found.stdout)
    );

    // Another size: no query reads it (the size is checked on each read:
    // opening the prefix asks nothing of the file).
    let mut longer = original.clone();
    longer.push(0);
    std::fs::write(&users, longer).expect("written");
    let count = "SELECT count(*) FROM users";
    let query = run(on(&server, orgsql_alone()).args(["--snapshot", prefix, "-c", count]));
    let stderr = text(&query.stderr);
    assert!(!query.status.success(), "{}", text(&query.stdout));
    assert!(
        stderr.contains(&format!(
            "{prefix}users.parquet has changed since the export ({} bytes where the manifest \
             records {})",
            original.len() + 1,
            original.len()
        )),
        "{stderr}"
    );
    std::fs::remove_file(&users).expect("removed");
    let query = run(on(&server, orgsql_alone()).args(["--snapshot", prefix, "-c", count]));
    assert!(!query.status.success(), "{}", text(&query.stdout));
    assert!(
        text(&query.stderr).contains(&format!("{prefix}users.parquet is missing")),
        "{}",
        text(&query.stderr)
    );
}
