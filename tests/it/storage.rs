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
    let server = S3Server::start(&["warehouse"]).await;
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

    // check and diff work on prefixes as on folders.
    let check = run(on(&server, orgsql_alone()).args([
        "--snapshot",
        prefix,
        "check",
        "--controls",
        "org_admin_count",
        "--format",
        "json",
    ]));
    assert!(
        matches!(check.status.code(), Some(0 | 1)),
        "{}",
        text(&check.stderr)
    );
    let diff = run(on(&server, orgsql_alone()).args([
        "diff",
        prefix,
        &local.display().to_string(),
        "--format",
        "csv",
    ]));
    assert_eq!(
        text(&succeeded(&diff, "diff")),
        "org_id,table_name,change,key,columns\n",
        "the same organization, exported twice: no change"
    );

    // Three events happen; the next export fetches only them.
    emu.change(|org| {
        for i in 0..3 {
            let mut event = org.events[0].clone();
            event.id = format!("00000000-0000-4000-8000-00000000010{i}");
            event.time += chrono::Duration::minutes(i + 1);
            event.processed_at = event.time + chrono::Duration::seconds(2);
            org.events.insert(0, event);
        }
    });
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
    let after = counts(&server, prefix);
    let served = served + 3;
    assert!(
        after[0].ends_with(&format!("{served},{served}")),
        "{after:?}"
    );

    // The server stops midway through the next export: the manifest there
    // still describes complete files, and a snapshot of them reads.
    emu.change(|org| org.users[0].name = "Renamed Person".to_string());
    server.stop_after_writes(2);
    let stopped =
        run(on(&server, orgsql_on(&emu)).args(["--max-retries", "0", "export", "--out", prefix]));
    let stderr = text(&stopped.stderr);
    assert!(!stopped.status.success(), "the export must fail");
    assert!(
        stderr.contains("stopped; its manifest lists the earlier export"),
        "{stderr}"
    );
    let folder = server.folder("warehouse").join("atlassian/org");
    let problems = orgsql::snapshot::tampered(&folder)
        .await
        .expect("a manifest");
    assert!(
        problems
            .iter()
            .all(|p| p.contains("was added after the export")),
        "every file the manifest lists is there, whole: {problems:?}"
    );
    let sql = "SELECT count(*) FROM users WHERE name = 'Renamed Person'";
    let read = run(orgsql_alone().args([
        "--snapshot",
        &folder.display().to_string(),
        "--format",
        "csv",
        "-c",
        sql,
    ]));
    assert_eq!(
        text(&succeeded(&read, "the bucket's folder")),
        "count(*)\n0\n"
    );
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
        stderr.contains("s3://warehouse/x/manifest.json: access denied"),
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
        stderr.contains("s3://nosuchbucket/x/manifest.json: no such bucket"),
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
