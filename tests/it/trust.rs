//! Answers that do not depend on how the SQL is spelt or on the day it is
//! read, and files nobody named left alone. Through the real binary.

use std::path::Path;

use crate::common::*;

fn csv(args: &[&str]) -> String {
    let output = orgsql_alone().args(args).output().expect("orgsql runs");
    String::from_utf8(succeeded(&output, &args.join(" "))).expect("utf-8")
}

/// One number from a one-cell CSV answer.
fn count(sql: &str) -> String {
    let out = csv(&["--demo", "--format", "csv", "-c", sql]);
    out.lines().nth(1).unwrap_or_default().to_string()
}

/// `IS DISTINCT FROM` binds tighter than AND and OR, as in PostgreSQL
/// (sqlparser 0.62 made the rest of the condition its right operand).
#[test]
fn is_distinct_from_binds_as_in_postgresql() {
    let unparenthesized = count(
        "SELECT count(*) FROM users WHERE status = 'active' \
         AND mfa_enabled IS DISTINCT FROM true AND claim_status = 'managed'",
    );
    let parenthesized = count(
        "SELECT count(*) FROM users WHERE status = 'active' \
         AND (mfa_enabled IS DISTINCT FROM true) AND claim_status = 'managed'",
    );
    // PostgreSQL (and DuckDB on an export of the demo): 27.
    assert_eq!(unparenthesized, "27");
    assert_eq!(unparenthesized, parenthesized);
    let or = count(
        "SELECT count(*) FROM users WHERE mfa_enabled IS DISTINCT FROM true OR email_verified",
    );
    let or_parenthesized = count(
        "SELECT count(*) FROM users WHERE (mfa_enabled IS DISTINCT FROM true) OR email_verified",
    );
    // PostgreSQL: 239.
    assert_eq!(or, "239");
    assert_eq!(or, or_parenthesized);
    // A control in a folder of the user's own is parsed the same way.
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("no_2sv_managed.sql"),
        "-- id: no_2sv_managed\n-- title: Managed active users have 2SV\n-- severity: high\n\
         -- rationale: A test of the grouping.\n-- remediation: None.\n-- frameworks: soc2:CC6.1\n\
         SELECT account_id AS resource, 'alarm' AS status, email AS reason FROM users \
         WHERE status = 'active' AND mfa_enabled IS DISTINCT FROM true AND claim_status = 'managed'\n",
    )
    .expect("control written");
    let output = orgsql_alone()
        .args([
            "--demo",
            "check",
            "--controls",
            "no_2sv_managed",
            "--format",
            "json",
            "--dir",
        ])
        .arg(dir.path())
        .output()
        .expect("orgsql runs");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stderr)));
    let entry = report["results"]
        .as_array()
        .and_then(|all| all.iter().find(|r| r["id"] == "no_2sv_managed"))
        .unwrap_or_else(|| panic!("no result in {report}"));
    assert_eq!(alarmed_resources(entry).len(), 27, "{entry}");
}

/// A demo export, once per test that needs one.
fn demo_export(dir: &Path) {
    let output = orgsql_alone()
        .args(["--demo", "export", "--out"])
        .arg(dir)
        .output()
        .expect("orgsql runs");
    succeeded(&output, "demo export");
}

/// A snapshot's clock is its data's: `now()`, and so every time window,
/// answers the same today and next year, and as the live demo did.
#[test]
fn a_snapshot_answers_as_of_its_data() {
    let dir = tempfile::tempdir().expect("temp dir");
    let snap = dir.path().join("snap");
    demo_export(&snap);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(snap.join("manifest.json")).expect("manifest"))
            .expect("json");
    assert_eq!(manifest["as_of"], "2026-11-30T12:00:00Z", "{manifest}");
    let snap_arg = snap.to_str().expect("utf-8");
    let now = "SELECT CAST(now() AS VARCHAR) AS now, CAST(current_date AS VARCHAR) AS today";
    assert_eq!(
        csv(&["--snapshot", snap_arg, "--format", "csv", "-c", now]),
        "now,today\n2026-11-30T12:00:00,2026-11-30\n"
    );
    // Judging by today's clock is asked for by name: now() is the real
    // clock's, no earlier than this test's start.
    let started = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S");
    let wall = csv(&[
        "--snapshot",
        snap_arg,
        "--wall-clock",
        "--format",
        "csv",
        "-c",
        &format!("SELECT now() >= TIMESTAMP '{started}' AS real"),
    ]);
    assert_eq!(wall, "real\ntrue\n");
    // The same control, live on the demo and on its export: the same report.
    let check = |source: &[&str]| {
        let mut args = source.to_vec();
        args.extend([
            "check",
            "--controls",
            "recent_admin_grants,inactive_managed_accounts_with_access",
        ]);
        let output = orgsql_alone().args(&args).output().expect("orgsql runs");
        assert_eq!(
            output.status.code(),
            Some(1),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("utf-8")
    };
    let live = check(&["--demo"]);
    let offline = check(&["--snapshot", snap_arg]);
    assert!(
        live.contains("ALARM") && live.contains("recent_admin_grants"),
        "{live}"
    );
    assert!(
        live.ends_with("Data as of 2026-11-30T12:00:00Z.\n"),
        "{live}"
    );
    // The verdicts alike; the envelopes (`# ` lines) say each source.
    let verdicts = |report: &str| -> String {
        report
            .lines()
            .filter(|l| !l.starts_with("# "))
            .map(|l| format!("{l}\n"))
            .collect()
    };
    assert_eq!(verdicts(&live), verdicts(&offline));
    assert!(
        offline.contains(&format!("# Source: snapshot {snap_arg}")),
        "{offline}"
    );
}

/// COPY into a folder: never over files it did not write; over an earlier
/// COPY's only when told to.
#[test]
fn copy_never_deletes_a_folder_it_did_not_write() {
    let dir = tempfile::tempdir().expect("temp dir");
    let reports = dir.path().join("reports");
    std::fs::create_dir_all(reports.join("sub")).expect("folders");
    std::fs::write(reports.join("q3-evidence.pdf"), b"%PDF-1.7 evidence").expect("pdf");
    std::fs::write(reports.join("notes.txt"), b"notes").expect("notes");
    let before = files_below(&reports);
    let copy = |target: &Path, options: &str| {
        let sql = format!(
            "COPY (SELECT account_id, email FROM users LIMIT 5) TO '{}/' STORED AS CSV{options}",
            target.display()
        );
        orgsql_alone()
            .args(["--demo", "-c", &sql])
            .output()
            .expect("orgsql runs")
    };
    for options in ["", " OPTIONS ('overwrite' 'true')"] {
        let refused = copy(&reports, options);
        assert!(!refused.status.success(), "COPY{options} succeeded");
        let said = String::from_utf8_lossy(&refused.stderr);
        assert!(said.contains("q3-evidence.pdf"), "{said}");
        assert_eq!(
            files_below(&reports),
            before,
            "COPY{options} touched the folder"
        );
        assert_eq!(
            std::fs::read(reports.join("q3-evidence.pdf")).expect("pdf"),
            b"%PDF-1.7 evidence"
        );
    }
    // A new folder is written; written again only with overwrite.
    let fresh = dir.path().join("fresh");
    succeeded(&copy(&fresh, ""), "COPY into a new folder");
    let first = files_below(&fresh);
    assert_eq!(first.len(), 1, "{first:?}");
    let again = copy(&fresh, "");
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("'overwrite' 'true'"));
    assert_eq!(files_below(&fresh), first);
    succeeded(
        &copy(&fresh, " OPTIONS ('overwrite' 'true')"),
        "COPY with overwrite",
    );
    let second = files_below(&fresh);
    assert_eq!(second.len(), 1, "{second:?}");
    assert_ne!(second, first, "the earlier COPY's file was replaced");
}

/// `--output` writes what its extension names, or refuses a `--format`
/// that says otherwise, before running anything.
#[test]
fn output_takes_its_format_from_the_extension() {
    let dir = tempfile::tempdir().expect("temp dir");
    let parquet = dir.path().join("u.parquet");
    let parquet_arg = parquet.to_str().expect("utf-8");
    let query = "SELECT account_id, email FROM users ORDER BY account_id LIMIT 7";
    let output = orgsql_alone()
        .args(["--demo", "--output", parquet_arg, "-c", query])
        .output()
        .expect("orgsql runs");
    succeeded(&output, "--output u.parquet");
    assert_eq!(&std::fs::read(&parquet).expect("written")[..4], b"PAR1");
    // Read back by DataFusion as Parquet.
    let read = csv(&[
        "--demo",
        "--format",
        "csv",
        "-c",
        &format!("SELECT count(*) AS n, count(DISTINCT email) AS emails FROM '{parquet_arg}'"),
    ]);
    assert_eq!(read, "n,emails\n7,7\n");
    // CSV by extension: a header line, no table drawing.
    let csv_file = dir.path().join("u.csv");
    let output = orgsql_alone()
        .args([
            "--demo",
            "--output",
            csv_file.to_str().expect("utf-8"),
            "-c",
            query,
        ])
        .output()
        .expect("orgsql runs");
    succeeded(&output, "--output u.csv");
    let text = std::fs::read_to_string(&csv_file).expect("written");
    assert!(text.starts_with("account_id,email\n"), "{text}");
    assert_eq!(text.lines().count(), 8);
    // A clash is refused and nothing is written.
    let clash = dir.path().join("v.parquet");
    let output = orgsql_alone()
        .args([
            "--demo",
            "--format",
            "csv",
            "--output",
            clash.to_str().expect("utf-8"),
            "-c",
            query,
        ])
        .output()
        .expect("orgsql runs");
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("parquet") && said.contains("csv"), "{said}");
    assert!(!clash.exists());
}

/// `-c` and `-f` run in the order given, as psql runs them.
#[test]
fn commands_and_files_run_in_command_line_order() {
    let dir = tempfile::tempdir().expect("temp dir");
    let script = dir.path().join("first.sql");
    std::fs::write(&script, "SELECT 'file' AS step;").expect("script");
    let script_arg = script.to_str().expect("utf-8");
    let steps = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["--demo", "--format", "csv"];
        all.extend(args);
        csv(&all)
            .lines()
            .filter(|line| *line != "step")
            .map(str::to_string)
            .collect()
    };
    assert_eq!(
        steps(&["-f", script_arg, "-c", "SELECT 'command' AS step"]),
        ["file", "command"]
    );
    assert_eq!(
        steps(&[
            "-c",
            "SELECT 'command' AS step",
            "-f",
            script_arg,
            "-c",
            "SELECT 'last' AS step"
        ]),
        ["command", "file", "last"]
    );
}

/// An export writes into a folder that is new, empty, or its own earlier
/// export; never over other files or another organization's export.
#[test]
fn export_never_writes_into_a_folder_it_did_not_write() {
    let dir = tempfile::tempdir().expect("temp dir");
    let full = dir.path().join("full");
    std::fs::create_dir_all(&full).expect("folder");
    std::fs::write(full.join("users.parquet"), b"someone else's file").expect("file");
    let output = orgsql_alone()
        .args(["--demo", "export", "--tables", "users", "--out"])
        .arg(&full)
        .output()
        .expect("orgsql runs");
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("no manifest.json"), "{said}");
    assert_eq!(
        std::fs::read(full.join("users.parquet")).expect("kept"),
        b"someone else's file"
    );
    assert_eq!(files_below(&full).len(), 1);
    // Its own earlier export is updated in place.
    let own = dir.path().join("own");
    for _ in 0..2 {
        let output = orgsql_alone()
            .args(["--demo", "export", "--tables", "users", "--out"])
            .arg(&own)
            .output()
            .expect("orgsql runs");
        succeeded(&output, "export into its own folder");
    }
    // Another organization's export is not written over.
    let manifest_path = own.join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).expect("manifest")).expect("json");
    manifest["org_id"] = serde_json::json!("00000000-0000-4000-8000-000000000000");
    std::fs::write(&manifest_path, manifest.to_string()).expect("rewritten");
    let contents = |dir: &Path| -> Vec<(std::path::PathBuf, Vec<u8>)> {
        let mut files = files_below(dir);
        files.sort();
        files
            .into_iter()
            .map(|f| {
                let bytes = std::fs::read(&f).expect("readable");
                (f, bytes)
            })
            .collect()
    };
    let before = contents(&own);
    let output = orgsql_alone()
        .args(["--demo", "export", "--tables", "users", "--out"])
        .arg(&own)
        .output()
        .expect("orgsql runs");
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(
        said.contains("00000000-0000-4000-8000-000000000000"),
        "{said}"
    );
    assert_eq!(contents(&own), before, "the other export was touched");
    // --output naming a folder is refused, and the folder left as it was.
    let output = orgsql_alone()
        .args(["--demo", "-c", "SELECT 1", "--output"])
        .arg(&full)
        .output()
        .expect("orgsql runs");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("is a folder"));
    assert_eq!(files_below(&full).len(), 1);
}
