//! Who held which grant when (issue 31): `grants_history`, `grants_at`,
//! `grants_during`, checked against the state they must equal (live and a
//! snapshot's), against the emulator's own record of who held which role
//! when, and against the demo's known history.

use std::collections::BTreeSet;

use chrono::Duration;
use orgsql::emulator::{Faults, OrgSpec};

use crate::common;

/// The symmetric difference of grants_at(now()) and the assignments the
/// API lists now, keyed as review's grants are, and both sizes.
const AT_NOW_VS_ASSIGNMENTS: &str = "SELECT \
   (SELECT count(*) FROM ( \
     (SELECT org_id, account_id, resource_id, role FROM grants_at(now()) \
      EXCEPT SELECT org_id, account_id, resource_id, role FROM user_role_assignments) \
     UNION ALL \
     (SELECT org_id, account_id, resource_id, role FROM user_role_assignments \
      EXCEPT SELECT org_id, account_id, resource_id, role FROM grants_at(now())))) AS differ, \
   (SELECT count(*) FROM grants_at(now())) AS replayed, \
   (SELECT count(*) FROM (SELECT DISTINCT org_id, account_id, resource_id, role \
                          FROM user_role_assignments)) AS assigned";

/// The CSV output of several statements, split at each statement's header.
fn sections(out: &[u8], headers: &[&str]) -> Vec<Vec<String>> {
    let text = String::from_utf8_lossy(out);
    let mut parts: Vec<Vec<String>> = vec![Vec::new(); headers.len()];
    let mut at = None;
    for line in text.lines() {
        if let Some(i) = headers.iter().position(|h| *h == line) {
            at = Some(i);
        } else if let Some(i) = at {
            parts[i].push(line.to_string());
        }
    }
    parts
}

#[test]
fn demo_history_knows_who_was_org_admin_when() {
    let q3 = "SELECT DISTINCT u.email AS q3_org_admin \
              FROM grants_during('2026-07-01T00:00:00Z', '2026-10-01T00:00:00Z') g \
              JOIN users u USING (org_id, account_id) \
              WHERE g.role = 'atlassian/org-admin' ORDER BY 1";
    let admins_at = |day: &str, name: &str| {
        format!(
            "SELECT u.email AS {name} FROM grants_at('{day}') g \
             JOIN users u USING (org_id, account_id) \
             WHERE g.role = 'atlassian/org-admin' ORDER BY 1"
        )
    };
    let output = common::orgsql_alone()
        .args([
            "--demo",
            "--format",
            "csv",
            "-c",
            AT_NOW_VS_ASSIGNMENTS,
            "-c",
        ])
        .arg(admins_at("2026-09-20T00:00:00Z", "admin_0920"))
        .arg("-c")
        .arg(admins_at("2026-09-22T00:00:00Z", "admin_0922"))
        .args(["-c", q3])
        .output()
        .expect("runs");
    let out = common::succeeded(&output, "the demo's history");
    let parts = sections(
        &out,
        &[
            "differ,replayed,assigned",
            "admin_0920",
            "admin_0922",
            "q3_org_admin",
        ],
    );
    // At the demo's now, replay is the live assignments exactly.
    let counts: Vec<i64> = parts[0][0]
        .split(',')
        .map(|n| n.parse().expect("a count"))
        .collect();
    assert_eq!(
        counts[0], 0,
        "grants_at(now()) and user_role_assignments differ: {counts:?}"
    );
    assert!(counts[1] > 100 && counts[1] == counts[2], "{counts:?}");
    // Removed by hiroshi.martinez on 2026-09-21 (the facts).
    assert!(
        parts[1].contains(&"priya.jackson@acme.io".to_string()),
        "{:?}",
        parts[1]
    );
    assert!(
        !parts[2].contains(&"priya.jackson@acme.io".to_string()),
        "{:?}",
        parts[2]
    );
    // Q3 2026: the four org admins of now (README: all granted before
    // July), and priya.jackson until September 21. emma.jackson's weeks in
    // legacy-admins were in November.
    assert_eq!(
        parts[3],
        [
            "ava.patel@acme-labs.com",
            "evelyn.thomas@contractor-hub.io",
            "hiroshi.martinez@acme.com",
            "priya.jackson@acme.io",
            "sofia.tanaka@acme.io",
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshots_grants_are_grants_at_its_time() {
    let emu = common::emulator(common::spec(40, 200), Faults::default(), None).await;
    let dir = tempfile::tempdir().expect("tempdir");
    common::export_to(emu.client_config(), dir.path(), None).await;
    let output = common::orgsql_alone()
        .arg("--snapshot")
        .arg(dir.path())
        .args(["--format", "csv", "-c", AT_NOW_VS_ASSIGNMENTS])
        .output()
        .expect("runs");
    let out = common::succeeded(&output, "grants_at on a snapshot");
    let parts = sections(&out, &["differ,replayed,assigned"]);
    let counts: Vec<i64> = parts[0][0]
        .split(',')
        .map(|n| n.parse().expect("a count"))
        .collect();
    assert_eq!(
        counts[0], 0,
        "the snapshot's grants and grants_at differ: {counts:?}"
    );
    assert!(counts[1] > 0 && counts[1] == counts[2], "{counts:?}");

    // Before the log's first grant event nothing is known: refused, never
    // answered from what came later.
    let output = common::orgsql_alone()
        .arg("--snapshot")
        .arg(dir.path())
        .args([
            "-c",
            "SELECT count(*) FROM grants_at('2001-01-01T00:00:00Z')",
        ])
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        err.contains("history covers") && err.contains("2001-01-01"),
        "{err}"
    );
}

/// Replay against the emulator's own record of who held which platform
/// role when (`role_tenures`: what the log was written from), at a point a
/// day over the 90 days of churn: at least 99% of rows agree, and each
/// that does not is listed with why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_agrees_with_the_emulators_record_daily_over_90_days() {
    let spec = OrgSpec {
        now: common::fixed_now(),
        ..OrgSpec::default()
    };
    let emu = common::emulator(spec.clone(), Faults::default(), None).await;
    let truth = emu.org().role_tenures();
    assert!(
        truth.iter().any(|t| t.until.is_some()),
        "the record holds a role taken back"
    );
    let roles: BTreeSet<&str> = truth.iter().map(|t| t.role).collect();
    let ctx = common::session(emu.client_config());
    // Held directly: the record is of direct grants (site-admin is one
    // row per site here, one per user there).
    let replayed = common::sql_rows(
        &ctx,
        "SELECT account_id, role, CAST(valid_from AS BIGINT), CAST(valid_to AS BIGINT), known_from \
         FROM grants_history WHERE group_id IS NULL",
    )
    .await;
    let micros = |v: &str| (v != "NULL").then(|| v.parse::<i64>().expect("micros"));
    let mut total = 0;
    let mut unexplained = Vec::new();
    for day in 0..90 {
        let at = spec.now - Duration::days(day);
        let t = at.timestamp_micros();
        let expected: BTreeSet<(String, String)> = truth
            .iter()
            .filter(|r| r.from <= at && r.until.is_none_or(|u| at < u))
            .map(|r| (r.account_id.clone(), r.role.to_string()))
            .collect();
        let got: BTreeSet<(String, String)> = replayed
            .iter()
            .filter(|r| roles.contains(r[1].as_str()))
            .filter(|r| micros(&r[2]).is_none_or(|f| f <= t) && micros(&r[3]).is_none_or(|u| t < u))
            .map(|r| (r[0].clone(), r[1].clone()))
            .collect();
        for row in expected.union(&got) {
            total += 1;
            match (expected.contains(row), got.contains(row)) {
                (true, false) => unexplained.push(format!("{at}: {row:?} held, replay misses it")),
                (false, true) => unexplained.push(format!("{at}: {row:?} not held, replay has it")),
                _ => {}
            }
        }
    }
    assert!(total > 90, "rows compared: {total}");
    let agree = total - unexplained.len();
    assert!(
        agree * 100 >= total * 99,
        "{agree} of {total} rows agree; unexplained:\n{}",
        unexplained.join("\n")
    );
    // Every row this small log holds is explained: list them if not.
    assert!(
        unexplained.is_empty(),
        "unexplained:\n{}",
        unexplained.join("\n")
    );
}

/// `check --as-of`: the control about grants judges the org admins of
/// then (one taken back since among them); a control about anything else
/// is not evaluated, and the envelope says as of when.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_as_of_judges_the_grants_of_then() {
    let emu = common::emulator(common::spec(40, 200), Faults::default(), None).await;
    let org = emu.org();
    let former = org
        .role_tenures()
        .into_iter()
        .find(|t| t.role == "atlassian/org-admin" && t.until.is_some())
        .expect("an org admin taken back");
    let until = former.until.expect("ended");
    let at = former.from + (until - former.from) / 2;
    let email = org
        .users
        .iter()
        .find(|u| u.account_id == former.account_id)
        .map(|u| u.email.clone())
        .expect("a user");
    let at_text = at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let output = common::orgsql_on(&emu)
        .args([
            "check",
            "--controls",
            "org_admin_count,admins_without_mfa",
            "--format",
            "json",
            "--as-of",
            &at_text,
        ])
        .output()
        .expect("runs");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stderr)));
    assert_eq!(
        report["envelope"]["grants_as_of"],
        at_text.as_str(),
        "{report}"
    );
    let result = |id: &str| {
        report["results"]
            .as_array()
            .expect("results")
            .iter()
            .find(|r| r["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("{id} in {report}"))
    };
    let admins = result("org_admin_count");
    let holders: Vec<&str> = admins["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter_map(|f| f["resource"].as_str())
        .collect();
    assert!(
        holders.contains(&email.as_str()),
        "{email} at {at_text}: {holders:?}"
    );
    let mfa = result("admins_without_mfa");
    assert_eq!(mfa["outcome"], "skipped", "{mfa}");
    assert!(
        mfa["skipped"]
            .as_str()
            .unwrap_or_default()
            .contains("not evaluated as of"),
        "{mfa}"
    );
}

/// An API that keeps 180 days of log: what began before it is marked
/// `before_log` with no start, never dated by a guess; the grants now are
/// still exact; and an instant before the log is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_retention_window_starts_are_unknown_not_guessed() {
    let spec = common::spec(40, 200);
    let emu = orgsql::emulator::Emulator::start(orgsql::emulator::EmulatorConfig {
        org: spec.clone(),
        retention_days: Some(180),
        ..Default::default()
    })
    .await
    .expect("emulator starts");
    let cutoff = spec.now - Duration::days(180);
    let ctx = common::session(emu.client_config());
    let oldest = common::column(&ctx, "SELECT CAST(min(time) AS VARCHAR) FROM events").await;
    assert!(
        oldest[0].as_str() >= cutoff.format("%Y-%m-%d").to_string().as_str(),
        "{oldest:?}"
    );
    // A platform role held since before the window: before the log.
    let old = emu
        .org()
        .role_tenures()
        .into_iter()
        .find(|t| t.from < cutoff && t.until.is_none())
        .expect("a role held since before the window");
    let rows = common::sql_rows(
        &ctx,
        &format!(
            "SELECT known_from, CAST(valid_from AS VARCHAR), granted_by FROM grants_history \
             WHERE account_id = '{}' AND role = '{}' AND group_id IS NULL",
            old.account_id, old.role
        ),
    )
    .await;
    assert!(!rows.is_empty(), "{old:?}");
    for row in &rows {
        assert_eq!(row, &["before_log", "NULL", "NULL"], "{old:?}");
    }
    let counts = common::sql_rows(&ctx, AT_NOW_VS_ASSIGNMENTS).await;
    assert_eq!(counts[0][0], "0", "{counts:?}");
    let before = (cutoff - Duration::days(1)).to_rfc3339();
    let err = common::query(&ctx, &format!("SELECT * FROM grants_at('{before}')"))
        .await
        .expect_err("before the log");
    assert!(err.to_string().contains("history covers"), "{err}");
}

/// The CSV standard output of `command` with `args`, which must succeed.
fn csv_of(mut command: std::process::Command, args: &[&str], what: &str) -> String {
    let output = command
        .args(["--format", "csv"])
        .args(args)
        .output()
        .expect("runs");
    String::from_utf8_lossy(&common::succeeded(&output, what)).into_owned()
}

/// An API that keeps 180 days of log, read with an export made while it
/// still held older events (`--history`): the grants at an instant before
/// the window, and during a period across it, are what a session reading
/// the whole log says; `history_coverage` names each source; two exports
/// holding the same events count each event once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_extend_the_history_past_the_retention_window() {
    let spec = common::spec(40, 200);
    let whole = common::emulator(spec.clone(), Faults::default(), None).await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let (first, second) = (tmp.path().join("2026-01"), tmp.path().join("2026-02"));
    common::export_to(
        whole.client_config(),
        &first,
        Some(&["events", "event_context"]),
    )
    .await;
    // A second export of the same log: every event in both.
    common::export_to(
        whole.client_config(),
        &second,
        Some(&["events", "event_context"]),
    )
    .await;
    let windowed = orgsql::emulator::Emulator::start(orgsql::emulator::EmulatorConfig {
        org: spec.clone(),
        retention_days: Some(180),
        ..Default::default()
    })
    .await
    .expect("emulator starts");

    let before_window = (spec.now - Duration::days(300)).to_rfc3339();
    let across = (spec.now - Duration::days(400)).to_rfc3339();
    let at = format!(
        "SELECT org_id, account_id, resource_id, role, assignment_methods, known_from \
         FROM grants_at('{before_window}') ORDER BY 1, 2, 3, 4"
    );
    let during = format!(
        "SELECT org_id, account_id, resource_id, role, held_from, held_until, granted_by \
         FROM grants_during('{across}', '{before_window}') ORDER BY 1, 2, 3, 4"
    );
    let truth = csv_of(
        common::orgsql_on(&whole),
        &["-c", &at, "-c", &during],
        "whole log",
    );
    assert!(truth.lines().count() > 4, "grants held then: {truth}");

    let first_dir = first.to_string_lossy().to_string();
    let one = csv_of(
        common::orgsql_on(&windowed),
        &["--history", &first_dir, "-c", &at, "-c", &during],
        "windowed, one export",
    );
    assert_eq!(one, truth);
    let all_dir = tmp.path().to_string_lossy().to_string();
    let both = csv_of(
        common::orgsql_on(&windowed),
        &["--history", &all_dir, "-c", &at, "-c", &during],
        "windowed, a folder of two exports",
    );
    assert_eq!(both, truth, "the same events in two exports count once");

    // Without the exports, that instant is before the log: refused.
    let output = common::orgsql_on(&windowed)
        .args(["-c", &at])
        .output()
        .expect("runs");
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("history covers"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // The sources, each named, and no gap: the exports reach the window.
    let coverage = csv_of(
        common::orgsql_on(&windowed),
        &[
            "--history",
            &all_dir,
            "-c",
            "SELECT kind, source, events > 0 AS read FROM history_coverage ORDER BY source",
        ],
        "history_coverage",
    );
    let rows: Vec<&str> = coverage.lines().skip(1).collect();
    let second_dir = second.to_string_lossy().to_string();
    assert_eq!(
        rows,
        [
            format!("source,{first_dir},true"),
            format!("source,{second_dir},true"),
            "source,live,true".to_string(),
        ],
        "{coverage}"
    );
}

/// The demo's organization behind a 180-day window: priya.jackson's org
/// admin from 2025-01-05 began before the window, so the log alone cannot
/// date it (`before_log`); with an export of the whole log it is the event
/// that granted it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_dates_a_grant_the_window_dropped() {
    let full = orgsql::emulator::Emulator::start(orgsql::emulator::EmulatorConfig::demo())
        .await
        .expect("emulator starts");
    let tmp = tempfile::tempdir().expect("tempdir");
    common::export_to(
        full.client_config(),
        tmp.path(),
        Some(&["events", "event_context"]),
    )
    .await;
    let windowed = orgsql::emulator::Emulator::start(orgsql::emulator::EmulatorConfig {
        retention_days: Some(180),
        ..orgsql::emulator::EmulatorConfig::demo()
    })
    .await
    .expect("emulator starts");
    let priya = "SELECT g.known_from, CAST(g.valid_from AS VARCHAR) AS valid_from \
                 FROM grants_history g JOIN users u USING (org_id, account_id) \
                 WHERE u.email LIKE 'priya.jackson@%' AND g.role = 'atlassian/org-admin' \
                 AND g.group_id IS NULL";
    let without = csv_of(common::orgsql_on(&windowed), &["-c", priya], "no --history");
    assert_eq!(
        without.lines().skip(1).collect::<Vec<_>>(),
        ["before_log,"],
        "{without}"
    );
    let dir = tmp.path().to_string_lossy().to_string();
    let with = csv_of(
        common::orgsql_on(&windowed),
        &["--history", &dir, "-c", priya],
        "--history",
    );
    let rows: Vec<&str> = with.lines().skip(1).collect();
    assert_eq!(rows.len(), 1, "{with}");
    assert!(rows[0].starts_with("event,2025-01-05"), "{with}");
}

/// An export whose events bear the live log's ids with other content (here:
/// the same organization generated a day earlier, every time shifted) is
/// not this log: the history refuses it, naming both sources.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_event_id_reading_differently_is_an_error_naming_both() {
    let spec = common::spec(20, 50);
    let shifted = orgsql::emulator::OrgSpec {
        now: spec.now - Duration::days(1),
        ..spec.clone()
    };
    let other = common::emulator(shifted, Faults::default(), None).await;
    let live = common::emulator(spec, Faults::default(), None).await;
    assert_eq!(
        other.org().id,
        live.org().id,
        "one organization, generated twice"
    );
    assert_eq!(
        other.org().events[0].id,
        live.org().events[0].id,
        "the same ids"
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    common::export_to(
        other.client_config(),
        tmp.path(),
        Some(&["events", "event_context"]),
    )
    .await;
    let dir = tmp.path().to_string_lossy().to_string();
    let output = common::orgsql_on(&live)
        .args([
            "--history",
            &dir,
            "-c",
            "SELECT count(*) FROM grants_history",
        ])
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("reads differently in live") && stderr.contains(&format!("and in {dir}")),
        "{stderr}"
    );
}
