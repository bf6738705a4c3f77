//! `orgsql review` and the roster, through the real binary: a review
//! started, decided, the organization changed, then verified; files split
//! by manager; the leaver controls on the demo roster.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use orgsql::emulator::Faults;

use crate::common::{alarmed_resources, emulator, orgsql_alone, orgsql_on, spec, succeeded};

/// The demo roster in the repository.
fn demo_roster() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo-roster.csv")
}

/// A review file: its header, and its rows.
pub(crate) struct Sheet {
    pub(crate) header: Vec<String>,
    pub(crate) rows: Vec<Vec<String>>,
}

impl Sheet {
    pub(crate) fn read(path: &Path) -> Sheet {
        let mut reader = csv::Reader::from_path(path).expect("a review file");
        let header = reader
            .headers()
            .expect("header")
            .iter()
            .map(str::to_string)
            .collect();
        let rows = reader
            .records()
            .map(|r| r.expect("record").iter().map(str::to_string).collect())
            .collect();
        Sheet { header, rows }
    }

    pub(crate) fn at(&self, column: &str) -> usize {
        self.header
            .iter()
            .position(|c| c == column)
            .unwrap_or_else(|| panic!("no column {column}"))
    }

    pub(crate) fn write(&self, path: &Path) {
        // As a spreadsheet saves: CRLF line ends.
        let mut writer = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .from_path(path)
            .expect("writable");
        writer.write_record(&self.header).expect("header");
        for row in &self.rows {
            writer.write_record(row).expect("row");
        }
        writer.flush().expect("flush");
    }
}

/// Every review file of a folder, by path.
pub(crate) fn sheets(dir: &Path) -> BTreeMap<PathBuf, Sheet> {
    let review: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("review.json")).expect("review.json"))
            .expect("json");
    review["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| {
            let path = dir.join(f["path"].as_str().expect("path"));
            let sheet = Sheet::read(&path);
            (path, sheet)
        })
        .collect()
}

/// review.json as JSON.
pub(crate) fn review_json(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("review.json")).expect("review.json"))
        .expect("json")
}

/// The roles `review start` asks a justification to keep, by default.
const ADMIN_ROLES: [&str; 4] = [
    "atlassian/org-admin",
    "atlassian/site-admin",
    "atlassian/user-access-admin",
    "atlassian/admin",
];

/// Keep every undecided row, with a justification where the role is an
/// admin role.
pub(crate) fn keep_the_rest(sheet: &mut Sheet) {
    let (decision, justification, role) = (
        sheet.at("decision"),
        sheet.at("justification"),
        sheet.at("role"),
    );
    for row in &mut sheet.rows {
        if row[decision].is_empty() {
            row[decision] = "keep".to_string();
        }
        if ADMIN_ROLES.contains(&row[role].as_str()) && row[justification].is_empty() {
            row[justification] = "Runs the site".to_string();
        }
    }
}

/// Write a file's sign-off as its reviewer would, in the sign-off file
/// `review start` wrote beside it.
pub(crate) fn sign(dir: &Path, file: &serde_json::Value, by: &str, at: &str) {
    let path = dir.join(file["signoff"].as_str().expect("a sign-off file"));
    let mut sheet = Sheet::read(&path);
    assert_eq!(sheet.rows.len(), 1, "a sign-off has one row");
    let (signed_by, signed_at) = (sheet.at("signed_by"), sheet.at("signed_at"));
    sheet.rows[0][signed_by] = by.to_string();
    sheet.rows[0][signed_at] = at.to_string();
    sheet.write(&path);
}

/// Sign every file off: by its first reviewer, or `anyone` when none is
/// named, on the day the review started.
pub(crate) fn sign_all(dir: &Path, anyone: &str) {
    let review = review_json(dir);
    let day = &review["started_at"].as_str().expect("started_at")[..10];
    for file in review["files"].as_array().expect("files") {
        let by = file["reviewers"][0].as_str().unwrap_or(anyone);
        sign(dir, file, by, day);
    }
}

pub(crate) fn verify(command: &mut std::process::Command, dir: &Path) -> std::process::Output {
    command
        .args([
            "review",
            "verify",
            &dir.display().to_string(),
            "--format",
            "json",
        ])
        .output()
        .expect("orgsql runs")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_review_verified_reports_the_revoke_not_done_and_the_new_grant_only() {
    let emu = emulator(spec(120, 50), Faults::default(), None).await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("q4");
    let started = orgsql_on(&emu)
        .args(["review", "start", "--out", &dir.display().to_string()])
        .output()
        .expect("orgsql runs");
    succeeded(&started, "review start");
    let mut files = sheets(&dir);
    let total: usize = files.values().map(|s| s.rows.len()).sum();
    let org = emu.org();
    let grants: usize = org.users.iter().map(|u| org.user_roles(u).len()).sum();
    assert_eq!(total, grants, "one row per grant the API lists");

    // Two direct product grants of two people are to be revoked: the
    // first is carried out, the second is not.
    let mut revoked: Vec<(String, String, String)> = Vec::new();
    for sheet in files.values_mut() {
        let (account, resource, role, granted, decision) = (
            sheet.at("account_id"),
            sheet.at("resource_id"),
            sheet.at("role"),
            sheet.at("granted"),
            sheet.at("decision"),
        );
        for row in &mut sheet.rows {
            row[decision] = "keep".to_string();
            let fresh = !revoked.iter().any(|(a, _, _)| *a == row[account]);
            if revoked.len() < 2
                && fresh
                && row[granted] == "direct"
                && row[role] == "atlassian/user"
            {
                row[decision] = "Revoke".to_string();
                revoked.push((
                    row[account].clone(),
                    row[resource].clone(),
                    row[role].clone(),
                ));
            }
        }
    }
    assert_eq!(revoked.len(), 2, "two direct grants to revoke");
    for (path, sheet) in files.iter_mut() {
        keep_the_rest(sheet);
        sheet.write(path);
    }
    sign_all(&dir, "reviewer@acme.com");
    let (done, not_done) = (revoked[0].clone(), revoked[1].clone());
    let admin = org
        .users
        .iter()
        .position(|u| {
            u.status == "active"
                && !u.platform_roles.contains(&"atlassian/org-admin")
                && !org
                    .user_roles(u)
                    .iter()
                    .any(|r| r.role == "atlassian/org-admin")
        })
        .expect("an active user who is no org admin");
    let admin_email = org.users[admin].email.clone();
    let done_user = org
        .users
        .iter()
        .position(|u| u.account_id == done.0)
        .expect("the revoked user");
    let done_workspace = org
        .workspaces
        .iter()
        .position(|w| w.id == done.1)
        .expect("the revoked workspace");
    emu.change(move |org| {
        org.users[done_user]
            .product_access
            .retain(|a| a.workspace != done_workspace);
        org.users[admin].platform_roles.push("atlassian/org-admin");
    });

    let output = verify(&mut orgsql_on(&emu), &dir);
    assert_eq!(
        output.status.code(),
        Some(1),
        "findings: exit 1; {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json report");
    let entry = |id: &str| {
        report["results"]
            .as_array()
            .expect("results")
            .iter()
            .find(|r| r["id"] == id)
            .unwrap_or_else(|| panic!("no {id} in {report}"))
            .clone()
    };
    let email_of = |account: &str| {
        org.users
            .iter()
            .find(|u| u.account_id == account)
            .map(|u| u.email.clone())
            .expect("a user")
    };
    let revokes = entry("review_revokes_carried_out");
    let alarms = alarmed_resources(&revokes);
    assert_eq!(alarms.len(), 1, "{revokes}");
    assert!(alarms[0].starts_with(&format!("{}: atlassian/user on ", email_of(&not_done.0))));
    let carried_out: Vec<&serde_json::Value> = revokes["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["status"] == "ok")
        .collect();
    assert_eq!(carried_out.len(), 1, "{revokes}");
    assert!(
        carried_out[0]["resource"]
            .as_str()
            .is_some_and(|r| r.starts_with(&email_of(&done.0)))
    );
    let uncertified = entry("review_grants_certified");
    assert_eq!(
        alarmed_resources(&uncertified),
        vec![format!(
            "{admin_email}: atlassian/org-admin on organization"
        )]
    );
    let kept = entry("review_kept_grants_present");
    assert_eq!(kept["findings"], serde_json::json!([]), "nothing else");
    for id in [
        "review_signed_off",
        "review_every_grant_decided",
        "review_admin_kept_justified",
    ] {
        assert_eq!(entry(id)["outcome"], "pass", "{}", entry(id));
    }
    let summary = std::fs::read_to_string(dir.join("summary.md")).expect("summary.md");
    // Its table: a line per file, `| file | scope | reviewer | rows | keep | revoke | ...`.
    let (mut keep, mut revoke) = (0, 0);
    for line in summary.lines().filter(|l| l.starts_with("| reviews/")) {
        let cells: Vec<&str> = line.split(" | ").collect();
        keep += cells[4].parse::<usize>().expect("keep");
        revoke += cells[5].parse::<usize>().expect("revoke");
    }
    assert_eq!((keep, revoke), (total - 2, 2), "{summary}");

    // The same judged offline, against an export of the organization now.
    let after = tmp.path().join("after");
    succeeded(
        &orgsql_on(&emu)
            .args(["export", "--out", &after.display().to_string()])
            .output()
            .expect("orgsql runs"),
        "export",
    );
    let offline = orgsql_alone()
        .args(["review", "verify", &dir.display().to_string()])
        .args([
            "--against",
            &after.display().to_string(),
            "--format",
            "json",
        ])
        .output()
        .expect("orgsql runs");
    assert_eq!(
        offline.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&offline.stderr)
    );
    // The review's JSON report verifies offline, and one changed byte in its
    // results does not.
    let report_path = dir.join("verified.json");
    std::fs::write(&report_path, &offline.stdout).expect("write the report");
    let verify_report = |path: &std::path::Path| {
        orgsql_alone()
            .args(["verify", &path.display().to_string()])
            .output()
            .expect("orgsql runs")
    };
    let intact = verify_report(&report_path);
    assert_eq!(
        intact.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&intact.stdout)
    );
    assert!(String::from_utf8_lossy(&intact.stdout).contains("review, title: no digest within"));
    let text = String::from_utf8_lossy(&offline.stdout).into_owned();
    let forged = text.replacen("\"status\": \"alarm\"", "\"status\": \"alarn\"", 1);
    assert_ne!(forged, text, "the report has an alarm to change");
    std::fs::write(&report_path, forged).expect("write the forgery");
    assert_eq!(verify_report(&report_path).status.code(), Some(1));
    let offline: serde_json::Value = serde_json::from_slice(&offline.stdout).expect("json");
    let findings = |report: &serde_json::Value| -> Vec<serde_json::Value> {
        report["results"]
            .as_array()
            .expect("results")
            .iter()
            .map(|r| r["findings"].clone())
            .collect()
    };
    assert_eq!(
        findings(&report),
        findings(&offline),
        "--against judges alike"
    );

    // Another organization's snapshot cannot pass for this one: every
    // revoke would look carried out.
    let stranger = emulator(
        orgsql::emulator::OrgSpec {
            seed: 99,
            ..spec(20, 5)
        },
        Faults::default(),
        None,
    )
    .await;
    assert_ne!(stranger.org().id, org.id);
    let other = tmp.path().join("other");
    succeeded(
        &orgsql_on(&stranger)
            .args(["export", "--out", &other.display().to_string()])
            .output()
            .expect("orgsql runs"),
        "export",
    );
    let wrong = orgsql_alone()
        .args(["review", "verify", &dir.display().to_string()])
        .args(["--against", &other.display().to_string()])
        .output()
        .expect("orgsql runs");
    assert_eq!(wrong.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&wrong.stderr)
            .contains(&format!("holds no grant of organization {}", org.id)),
        "{}",
        String::from_utf8_lossy(&wrong.stderr)
    );

    // Evidence edited in a spreadsheet: refused, naming file and line.
    let (path, sheet) = files.iter_mut().next().expect("a file");
    let name = sheet.at("name");
    let original = sheet.rows[2][name].clone();
    sheet.rows[2][name] = "Someone Else".to_string();
    sheet.write(path);
    let output = verify(&mut orgsql_on(&emu), &dir);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    let file = path
        .strip_prefix(&dir)
        .expect("inside")
        .display()
        .to_string();
    assert!(
        stderr.contains(&format!("{file}:4: name is \"Someone Else\"")),
        "{stderr}"
    );
    assert!(output.stdout.is_empty(), "no report when refused");

    // A row left undecided: the review is incomplete, and says where.
    sheet.rows[2][name] = original;
    let decision = sheet.at("decision");
    sheet.rows[0][decision] = String::new();
    sheet.write(path);
    let output = verify(&mut orgsql_on(&emu), &dir);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    let undecided = report["results"]
        .as_array()
        .expect("results")
        .iter()
        .find(|r| r["id"] == "review_every_grant_decided")
        .expect("the judgement")
        .clone();
    assert_eq!(alarmed_resources(&undecided), vec![file.clone()]);
    assert!(
        undecided.to_string().contains("1 of its") && undecided.to_string().contains("line 2"),
        "{undecided}"
    );
    let row_of_file = report["review"]["files"]
        .as_array()
        .expect("files")
        .iter()
        .find(|f| f["file"] == file.as_str())
        .expect("the file in the reviewer table")
        .clone();
    assert_eq!(row_of_file["undecided"], 1, "{row_of_file}");

    // Another word than keep or revoke, and a row deleted: refused, the
    // missing grant named.
    sheet.rows[0][decision] = "maybe".to_string();
    let deleted = sheet.rows.pop().expect("a row");
    sheet.write(path);
    let output = verify(&mut orgsql_on(&emu), &dir);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{file}:2: decision \"maybe\" is neither keep nor revoke"
        )),
        "{stderr}"
    );
    let email = sheet.at("email");
    assert!(
        stderr.contains("1 of its") && stderr.contains(&deleted[email]),
        "{stderr}"
    );

    // Saved by a European spreadsheet: a byte-order mark and `;` between
    // cells read as the same file.
    sheet.rows[0][decision] = "keep".to_string();
    sheet.rows.push(deleted);
    let mut semicolons = csv::WriterBuilder::new()
        .delimiter(b';')
        .from_writer(b"\xEF\xBB\xBF".to_vec());
    semicolons.write_record(&sheet.header).expect("header");
    for row in &sheet.rows {
        semicolons.write_record(row).expect("row");
    }
    std::fs::write(path, semicolons.into_inner().expect("bytes")).expect("writable");
    let output = verify(&mut orgsql_on(&emu), &dir);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // The fingerprint `review start` printed is review.json's sha256, and
    // verify holds the review to it: a review.json rewritten to agree with
    // itself (here only re-indented) passes without it and fails with it.
    let said = String::from_utf8_lossy(&started.stderr);
    let fingerprint = said
        .lines()
        .find_map(|line| line.strip_prefix("Fingerprint (sha256 of "))
        .and_then(|line| line.rsplit(": ").next())
        .expect("the fingerprint printed")
        .to_string();
    let record = dir.join("review.json");
    let bytes = std::fs::read(&record).expect("review.json");
    let digest = ring::digest::digest(&ring::digest::SHA256, &bytes);
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(fingerprint, hex);
    let with_fingerprint = |fingerprint: &str| {
        orgsql_on(&emu)
            .args(["review", "verify", &dir.display().to_string()])
            .args(["--format", "json", "--fingerprint", fingerprint])
            .output()
            .expect("orgsql runs")
    };
    assert_eq!(
        with_fingerprint(&fingerprint.to_uppercase()).status.code(),
        Some(1)
    );
    let value: serde_json::Value = serde_json::from_slice(&bytes).expect("JSON");
    std::fs::write(&record, serde_json::to_vec(&value).expect("JSON")).expect("writable");
    assert_eq!(verify(&mut orgsql_on(&emu), &dir).status.code(), Some(1));
    let forged = with_fingerprint(&fingerprint);
    let stderr = String::from_utf8_lossy(&forged.stderr);
    assert_eq!(forged.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("not {fingerprint} (--fingerprint)")),
        "{stderr}"
    );
    assert!(forged.stdout.is_empty(), "no report when refused");
    let short = with_fingerprint("abc123");
    assert_eq!(short.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&short.stderr).contains("64 hexadecimal digits"));
    std::fs::write(&record, &bytes).expect("writable");

    // The frozen snapshot itself edited: refused.
    sheet.write(path);
    let users = dir.join("snapshot/users.parquet");
    let mut bytes = std::fs::read(&users).expect("users.parquet");
    bytes.push(0);
    std::fs::write(&users, bytes).expect("writable");
    let output = verify(&mut orgsql_on(&emu), &dir);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("users.parquet has changed since the export"),
        "{stderr}"
    );
}

#[test]
fn by_manager_each_file_holds_exactly_that_managers_people() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("review");
    let roster = demo_roster();
    let roster_arg = roster.display().to_string();
    let started = orgsql_alone()
        .args(["--demo", "--roster", &roster_arg, "review", "start"])
        .args(["--out", &dir.display().to_string(), "--by", "manager"])
        .args(["--format", "html"])
        .output()
        .expect("orgsql runs");
    succeeded(&started, "review start --by manager");
    // A folder that holds anything is never written into.
    let again = orgsql_alone()
        .args(["--demo", "--roster", &roster_arg, "review", "start"])
        .args(["--out", &dir.display().to_string()])
        .output()
        .expect("orgsql runs");
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("exists and is not empty"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    // What each manager should see, asked another way: the grants of the
    // people whose roster line names them.
    let expected = succeeded(
        &orgsql_alone()
            .args(["--demo", "--roster", &roster_arg, "--format", "csv", "-c"])
            .arg(
                "SELECT coalesce(lower(p.manager_email), '(no manager)'), g.account_id, g.resource_id, g.role \
                 FROM user_role_assignments g JOIN users u USING (org_id, account_id) \
                 JOIN roster p ON lower(p.email) = lower(u.email)",
            )
            .output()
            .expect("orgsql runs"),
        "the expected grants",
    );
    let mut want: BTreeMap<String, BTreeSet<(String, String, String)>> = BTreeMap::new();
    for line in String::from_utf8_lossy(&expected).lines().skip(1) {
        let cells: Vec<&str> = line.split(',').collect();
        want.entry(cells[0].to_string()).or_default().insert((
            cells[1].to_string(),
            cells[2].to_string(),
            cells[3].to_string(),
        ));
    }
    assert!(want.len() >= 10, "the demo roster has ten managers");
    let mut got: BTreeMap<String, BTreeSet<(String, String, String)>> = BTreeMap::new();
    for (path, sheet) in sheets(&dir) {
        let (scope, account, resource, role) = (
            sheet.at("scope"),
            sheet.at("account_id"),
            sheet.at("resource_id"),
            sheet.at("role"),
        );
        let mut scopes: BTreeSet<&str> = BTreeSet::new();
        for row in &sheet.rows {
            scopes.insert(&row[scope]);
            got.entry(row[scope].clone()).or_default().insert((
                row[account].clone(),
                row[resource].clone(),
                row[role].clone(),
            ));
        }
        assert_eq!(
            scopes.len(),
            1,
            "{} holds one manager's people",
            path.display()
        );
        assert!(
            path.with_extension("html").is_file(),
            "--format html: a page beside {}",
            path.display()
        );
        let stem = path
            .file_stem()
            .expect("a name")
            .to_string_lossy()
            .to_string();
        let only = scopes.iter().next().expect("a scope");
        if only.contains('@') {
            assert_eq!(&stem, only, "a manager's file is named for them");
        }
    }
    // People without a manager go to a fallback (tested below).
    want.remove("(no manager)");
    got.retain(|scope, _| !scope.starts_with('(') && !scope.starts_with("admins of "));
    assert_eq!(
        got, want,
        "each manager's file holds exactly their people's grants"
    );
    for file in review_json(&dir)["files"].as_array().expect("files") {
        let scope = file["scope"].as_str().expect("scope");
        if want.contains_key(scope) {
            assert_eq!(file["reviewers"], serde_json::json!([scope]), "{file}");
        }
    }
}

#[test]
fn the_leaver_controls_alarm_on_exactly_the_planted_people_and_skip_without_a_roster() {
    let controls = "leavers_with_access,accounts_not_in_roster";
    let output = orgsql_alone()
        .args(["--demo", "--roster", &demo_roster().display().to_string()])
        .args(["check", "--controls", controls, "--format", "json"])
        .output()
        .expect("orgsql runs");
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    let alarms = |id: &str| {
        let entry = report["results"]
            .as_array()
            .expect("results")
            .iter()
            .find(|r| r["id"] == id)
            .expect("the control ran");
        alarmed_resources(entry)
    };
    // Planted in examples/demo-roster.csv: (a) terminated, active, with
    // products and groups, written in another case; (b) an end date
    // passed while HR still says active; (c) terminated and suspended but
    // still in a group; (d) terminated with a live API token; (e)
    // terminated, account for deletion, access left behind.
    assert_eq!(
        alarms("leavers_with_access"),
        vec![
            "amelia.dubois@acme-labs.com",
            "chloe.rossi@acme.com",
            "hiroshi.martin@acme.com",
            "lars.thomas@acme-labs.com",
            "william.wilson@acme.com",
        ]
    );
    // Two second accounts of people in the roster, and one left out.
    assert_eq!(
        alarms("accounts_not_in_roster"),
        vec![
            "aisha.kim78@acme.io",
            "amelia.haddad232@acme-labs.com",
            "liam.smith@acme.com",
        ]
    );

    let without = orgsql_alone()
        .args([
            "--demo",
            "check",
            "--controls",
            controls,
            "--format",
            "json",
        ])
        .output()
        .expect("orgsql runs");
    assert_eq!(without.status.code(), Some(0), "skipped is not failed");
    let report: serde_json::Value = serde_json::from_slice(&without.stdout).expect("json");
    for entry in report["results"].as_array().expect("results") {
        assert_eq!(entry["outcome"], "skipped", "{entry}");
        assert!(
            entry["skipped"]
                .as_str()
                .is_some_and(|s| s.contains("--roster")),
            "{entry}"
        );
    }
}

#[test]
fn a_control_may_require_only_a_table_a_flag_adds() {
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        tmp.path().join("mine.sql"),
        "-- id: mine\n-- title: T\n-- severity: low\n-- rationale: R.\n-- remediation: M.\n\
         -- requires: rosterr\nSELECT 'x' AS resource, 'alarm' AS status, 'r' AS reason",
    )
    .expect("writable");
    let output = orgsql_alone()
        .args([
            "--demo",
            "check",
            "--dir",
            &tmp.path().display().to_string(),
        ])
        .output()
        .expect("orgsql runs");
    assert_eq!(
        output.status.code(),
        Some(2),
        "a misspelt requirement is no skip"
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("requires: rosterr"));
}

#[test]
fn a_bad_roster_is_refused_with_its_line() {
    let tmp = tempfile::tempdir().expect("tempdir");
    for (text, says) in [
        (
            "email,name\na@acme.com,A\nA@ACME.com,B\n",
            "people.csv:3: A@ACME.com is already on line 2",
        ),
        (
            "email,employment_status\na@acme.com,fired\n",
            "people.csv:2: employment_status \"fired\" is not one of active, on_leave, terminated",
        ),
        (
            "email,manager\na@acme.com,b@acme.com\n",
            "people.csv:1: unknown column \"manager\"",
        ),
        (
            "email,end_date\na@acme.com,31/12/2026\n",
            "people.csv:2: end_date \"31/12/2026\" is not a date",
        ),
        (
            "email,employment_status\r\na@acme.com,active\r\nb@acme.com,gone\r\n",
            "people.csv:3: employment_status \"gone\"",
        ),
        // A name over two lines (quoted) before it: lines, not records.
        (
            "email,name,employment_status\r\na@acme.com,\"Ann\r\nLee\",active\r\n\
             b@acme.com,B,active\r\nc@acme.com,C,gone\r\n",
            "people.csv:5: employment_status \"gone\"",
        ),
    ] {
        let path = tmp.path().join("people.csv");
        std::fs::write(&path, text).expect("writable");
        let output = orgsql_alone()
            .args(["--demo", "--roster", &path.display().to_string()])
            .args(["-c", "SELECT count(*) FROM roster"])
            .output()
            .expect("orgsql runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{text}");
        assert!(stderr.contains(says), "{text}: {stderr}");
    }
}

/// `orgsql ARGS` offline: its exit code, stderr and stdout.
fn offline(args: &[&str]) -> (Option<i32>, String, Vec<u8>) {
    let output = orgsql_alone().args(args).output().expect("orgsql runs");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
        output.stdout,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_snapshot_source_is_judged_as_against_is_and_refused_alike_when_stale_or_changed() {
    let emu = emulator(spec(40, 20), Faults::default(), None).await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let export = |dir: &Path| {
        succeeded(
            &orgsql_on(&emu)
                .args(["export", "--out", &dir.display().to_string()])
                .output()
                .expect("orgsql runs"),
            "export",
        );
    };
    // Exported the day before the review (its manifest dated back so: the
    // review may start within the same second).
    let old = tmp.path().join("old");
    export(&old);
    let manifest_path = old.join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).expect("manifest")).expect("JSON");
    let exported = chrono::DateTime::parse_from_rfc3339(
        manifest["exported_at"].as_str().expect("exported_at"),
    )
    .expect("a time");
    manifest["exported_at"] = serde_json::json!(
        (exported - chrono::Duration::days(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    std::fs::write(&manifest_path, serde_json::to_vec(&manifest).expect("JSON")).expect("written");

    let dir = tmp.path().join("review");
    succeeded(
        &orgsql_on(&emu)
            .args(["review", "start", "--out", &dir.display().to_string()])
            .output()
            .expect("orgsql runs"),
        "review start",
    );
    for (path, mut sheet) in sheets(&dir) {
        keep_the_rest(&mut sheet);
        sheet.write(&path);
    }
    sign_all(&dir, "reviewer@acme.com");
    let review = dir.display().to_string();
    let old = old.display().to_string();

    // Stale: nothing done since the review started can show in it.
    let by_snapshot = offline(&["--snapshot", &old, "review", "verify", &review]);
    let by_against = offline(&["review", "verify", &review, "--against", &old]);
    assert_eq!(by_snapshot.0, Some(2), "{}", by_snapshot.1);
    assert!(
        by_snapshot.1.contains("before the review started"),
        "{}",
        by_snapshot.1
    );
    assert_eq!(by_snapshot.1, by_against.1, "the same refusal");
    assert_eq!(by_against.0, Some(2));

    // Exported after the start, intact: judged, alike.
    let new = tmp.path().join("new");
    export(&new);
    let new = new.display().to_string();
    let json = ["--format", "json"];
    let by_snapshot = offline(
        &[
            &["--snapshot", &new, "review", "verify", &review],
            &json[..],
        ]
        .concat(),
    );
    let by_against =
        offline(&[&["review", "verify", &review, "--against", &new], &json[..]].concat());
    assert_eq!(by_snapshot.0, Some(0), "{}", by_snapshot.1);
    assert_eq!(by_against.0, Some(0), "{}", by_against.1);
    let findings = |stdout: &[u8]| -> Vec<serde_json::Value> {
        let report: serde_json::Value = serde_json::from_slice(stdout).expect("a JSON report");
        report["results"]
            .as_array()
            .expect("results")
            .iter()
            .map(|r| serde_json::json!([r["id"], r["outcome"], r["findings"]]))
            .collect()
    };
    assert_eq!(findings(&by_snapshot.2), findings(&by_against.2));

    // A file of it changed: refused by either, in the same words.
    crate::common::flip_a_byte(&Path::new(&new).join("users.parquet"));
    let by_snapshot = offline(&["--snapshot", &new, "review", "verify", &review]);
    let by_against = offline(&["review", "verify", &review, "--against", &new]);
    assert_eq!(by_snapshot.0, Some(2), "{}", by_snapshot.1);
    assert!(
        by_snapshot.1.contains(&format!(
            "--snapshot {new}: users: users.parquet has changed since the export"
        )),
        "{}",
        by_snapshot.1
    );
    assert_eq!(by_against.0, Some(2));
    assert_eq!(
        by_snapshot.1.replace("--snapshot", "--against"),
        by_against.1,
        "the same refusal"
    );

    // Two snapshots named: which one would be judged is not guessed.
    let both = offline(&[
        "--snapshot",
        &old,
        "review",
        "verify",
        &review,
        "--against",
        &new,
    ]);
    assert_eq!(both.0, Some(2));
    assert!(both.1.contains("name it once"), "{}", both.1);
}

/// `orgsql --demo --roster (demo roster) ARGS`, succeeded: its stdout.
fn demo_csv(sql: &str) -> Vec<Vec<String>> {
    let output = succeeded(
        &orgsql_alone()
            .args(["--demo", "--roster", &demo_roster().display().to_string()])
            .args(["--format", "csv", "-c", sql])
            .output()
            .expect("orgsql runs"),
        sql,
    );
    let mut reader = csv::Reader::from_reader(output.as_slice());
    reader
        .records()
        .map(|r| r.expect("a row").iter().map(str::to_string).collect())
        .collect()
}

/// A review of the demo by manager, with the demo roster; its stderr.
fn demo_review_by_manager(dir: &Path, more: &[&str]) -> String {
    let output = orgsql_alone()
        .args(["--demo", "--roster", &demo_roster().display().to_string()])
        .args(["review", "start", "--by", "manager"])
        .args(["--out", &dir.display().to_string()])
        .args(more)
        .output()
        .expect("orgsql runs");
    succeeded(&output, "review start --by manager");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A grant: account, resource, role.
type Grant = (String, String, String);

/// The grants of each file of a review, by the file's entry in review.json.
fn grants_by_file(dir: &Path) -> Vec<(serde_json::Value, BTreeSet<Grant>)> {
    review_json(dir)["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|file| {
            let sheet = Sheet::read(&dir.join(file["path"].as_str().expect("path")));
            let (account, resource, role) = (
                sheet.at("account_id"),
                sheet.at("resource_id"),
                sheet.at("role"),
            );
            let grants = sheet
                .rows
                .iter()
                .map(|r| (r[account].clone(), r[resource].clone(), r[role].clone()))
                .collect();
            (file.clone(), grants)
        })
        .collect()
}

#[test]
fn grants_of_people_without_a_manager_go_to_the_fallback_reviewer_or_the_resources_admins() {
    // Asked of the demo and its roster: the grants of people the roster
    // does not list or gives no manager; the active admins in the roster of
    // each resource (organization admins of the organization, site admins
    // of a site).
    let unmanaged: BTreeSet<Grant> = demo_csv(
        "SELECT g.account_id, g.resource_id, g.role FROM user_role_assignments g \
         JOIN users u ON u.account_id = g.account_id \
         WHERE NOT EXISTS (SELECT 1 FROM roster p WHERE lower(p.email) = lower(u.email) \
                           AND p.manager_email IS NOT NULL)",
    )
    .into_iter()
    .map(|r| (r[0].clone(), r[1].clone(), r[2].clone()))
    .collect();
    let mut admins: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for row in demo_csv(
        "SELECT g.resource_id, lower(u.email) FROM user_role_assignments g \
         JOIN users u ON u.account_id = g.account_id \
         JOIN roster p ON lower(p.email) = lower(u.email) \
         WHERE g.role IN ('atlassian/org-admin', 'atlassian/site-admin') \
           AND u.status = 'active' AND coalesce(p.employment_status, '') <> 'terminated'",
    ) {
        admins
            .entry(row[0].clone())
            .or_default()
            .insert(row[1].clone());
    }
    assert!(unmanaged.len() > 100, "the demo has outside accounts");
    let has_admins = unmanaged
        .iter()
        .filter(|g| admins.contains_key(&g.1))
        .count();
    assert!(
        has_admins > 0 && has_admins < unmanaged.len(),
        "some resources have admins in the roster, some none"
    );

    let tmp = tempfile::tempdir().expect("tempdir");
    // A fallback reviewer: every such grant in one file, theirs.
    let reviewer = demo_csv(
        "SELECT email FROM roster WHERE employment_status = 'active' \
         AND manager_email IS NOT NULL ORDER BY email LIMIT 1",
    )[0][0]
        .clone();
    let dir = tmp.path().join("fallback");
    let said = demo_review_by_manager(&dir, &["--fallback-reviewer", &reviewer.to_uppercase()]);
    let files = grants_by_file(&dir);
    let fallback: Vec<_> = files
        .iter()
        .filter(|(f, _)| f["fallback"] == true)
        .collect();
    assert_eq!(fallback.len(), 1, "one fallback file");
    assert_eq!(
        fallback[0].0["reviewers"],
        serde_json::json!([reviewer.to_lowercase()])
    );
    assert_eq!(
        fallback[0].1, unmanaged,
        "exactly the grants without a manager"
    );
    assert!(
        said.contains(&format!(
            "{} grants of people without a manager in the roster: {} to {}, 0 with no reviewer",
            unmanaged.len(),
            unmanaged.len(),
            reviewer.to_lowercase()
        )),
        "{said}"
    );

    // Without the flag: the admins of each grant's resource, where the
    // roster has any; the rest in a file nobody is named for.
    let dir = tmp.path().join("admins");
    let said = demo_review_by_manager(&dir, &[]);
    let mut to_admins = 0;
    let mut to_nobody = 0;
    for (file, grants) in grants_by_file(&dir) {
        let reviewers: BTreeSet<String> = file["reviewers"]
            .as_array()
            .expect("reviewers")
            .iter()
            .map(|r| r.as_str().expect("an email").to_string())
            .collect();
        for grant in grants.iter().filter(|g| unmanaged.contains(g)) {
            match admins.get(&grant.1) {
                Some(admins) => {
                    assert_eq!(&reviewers, admins, "{grant:?} in {file}");
                    assert_eq!(file["fallback"], true, "{file}");
                    to_admins += 1;
                }
                None => {
                    assert!(reviewers.is_empty(), "{grant:?} in {file}");
                    to_nobody += 1;
                }
            }
        }
        if file["fallback"] == true {
            assert!(grants.is_subset(&unmanaged), "{file}: only such grants");
        }
    }
    assert_eq!(
        (to_admins, to_nobody),
        (has_admins, unmanaged.len() - has_admins)
    );
    assert!(
        said.contains(&format!(
            "{} grants of people without a manager in the roster: {has_admins} to the admins of each resource, {} with no reviewer",
            unmanaged.len(),
            unmanaged.len() - has_admins
        )),
        "{said}"
    );

    // A fallback reviewer the roster does not name: refused, nothing written.
    let output = orgsql_alone()
        .args(["--demo", "--roster", &demo_roster().display().to_string()])
        .args(["review", "start", "--by", "manager"])
        .args(["--out", &tmp.path().join("nobody").display().to_string()])
        .args(["--fallback-reviewer", "nobody@elsewhere.example"])
        .output()
        .expect("orgsql runs");
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("nobody@elsewhere.example: not in the roster"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!tmp.path().join("nobody").exists());
}

/// review.json's sha256, as hex.
fn fingerprint_of(dir: &Path) -> String {
    let bytes = std::fs::read(dir.join("review.json")).expect("review.json");
    let digest = ring::digest::digest(&ring::digest::SHA256, &bytes);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// `orgsql --demo review verify DIR --format FORMAT`: exit code, stdout
/// (stderr in a failure's message).
fn demo_verify(dir: &Path, format: &str) -> (Option<i32>, String) {
    let output = orgsql_alone()
        .args(["--demo", "review", "verify", &dir.display().to_string()])
        .args(["--format", format])
        .output()
        .expect("orgsql runs");
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

/// What the reviewer table should say of a file.
#[derive(Debug, Clone, PartialEq)]
struct Expected {
    rows: usize,
    keep: usize,
    revoke: usize,
    undecided: usize,
    signed_by: String,
    signed_at: String,
}

#[test]
fn a_review_report_lists_each_reviewer_file_with_counts_and_signers_in_every_format() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("review");
    demo_review_by_manager(&dir, &[]);
    let review = review_json(&dir);
    let day = review["started_at"].as_str().expect("started_at")[..10].to_string();
    let files = review["files"].as_array().expect("files").clone();
    let named: Vec<usize> = (0..files.len())
        .filter(|&i| {
            files[i]["reviewers"]
                .as_array()
                .is_some_and(|r| !r.is_empty())
        })
        .collect();
    assert!(named.len() >= 3);
    // Decided: the first user grant of each file revoked, the rest kept;
    // two rows of one file left undecided.
    let mut expected: BTreeMap<String, Expected> = BTreeMap::new();
    for (i, file) in files.iter().enumerate() {
        let path = file["path"].as_str().expect("path").to_string();
        let mut sheet = Sheet::read(&dir.join(&path));
        let (decision, role) = (sheet.at("decision"), sheet.at("role"));
        let mut revoke = 0;
        if let Some(row) = sheet.rows.iter_mut().find(|r| r[role] == "atlassian/user") {
            row[decision] = "revoke".to_string();
            revoke = 1;
        }
        let rows = sheet.rows.len();
        keep_the_rest(&mut sheet);
        let mut undecided = 0;
        if i == named[2] {
            for row in sheet.rows.iter_mut().rev().take(2) {
                row[decision] = String::new();
            }
            undecided = 2;
        }
        sheet.write(&dir.join(&path));
        expected.insert(
            path,
            Expected {
                rows,
                keep: rows - revoke - undecided,
                revoke,
                undecided,
                signed_by: String::new(),
                signed_at: String::new(),
            },
        );
    }
    // Signed: every file by its reviewer, but the first named file not at
    // all, and another by the first one's reviewer, who is not its own. A
    // file with no reviewer named by a person of the roster.
    let unsigned = &files[named[0]];
    let intruder = unsigned["reviewers"][0]
        .as_str()
        .expect("an email")
        .to_string();
    let wrong_at = *named[1..]
        .iter()
        .find(|&&i| {
            i != named[2]
                && !files[i]["reviewers"]
                    .as_array()
                    .expect("reviewers")
                    .contains(&intruder.clone().into())
        })
        .expect("a file the intruder does not review");
    let wrong = &files[wrong_at];
    let anyone = demo_csv("SELECT email FROM roster WHERE employment_status = 'active' LIMIT 1")[0]
        [0]
    .clone();
    for file in &files {
        if file == unsigned {
            continue;
        }
        let by = match file["reviewers"][0].as_str() {
            _ if file == wrong => intruder.clone(),
            Some(reviewer) => reviewer.to_string(),
            None => anyone.clone(),
        };
        sign(&dir, file, &by, &day);
        let entry = expected
            .get_mut(file["path"].as_str().expect("path"))
            .expect("the file");
        entry.signed_by = by;
        entry.signed_at = day.clone();
    }
    let (unsigned, wrong) = (
        unsigned["path"].as_str().expect("path").to_string(),
        wrong["path"].as_str().expect("path").to_string(),
    );
    let fingerprint = fingerprint_of(&dir);

    // JSON: the reviewer table as data, and the sign-offs judged.
    let (code, json) = demo_verify(&dir, "json");
    assert_eq!(code, Some(1), "{json}");
    let report: serde_json::Value = serde_json::from_str(&json).expect("a JSON report");
    assert!(
        report["title"]
            .as_str()
            .is_some_and(|t| t.starts_with("Access review: "))
    );
    assert_eq!(report["review"]["fingerprint"], fingerprint.as_str());
    let mut got: BTreeMap<String, Expected> = BTreeMap::new();
    for f in report["review"]["files"].as_array().expect("files") {
        let n = |k: &str| f[k].as_u64().expect("a count") as usize;
        let s = |k: &str| f[k].as_str().unwrap_or_default().to_string();
        got.insert(
            s("file"),
            Expected {
                rows: n("rows"),
                keep: n("keep"),
                revoke: n("revoke"),
                undecided: n("undecided"),
                signed_by: s("signed_by"),
                signed_at: s("signed_at"),
            },
        );
    }
    assert_eq!(got, expected);
    let judged = |id: &str| {
        report["results"]
            .as_array()
            .expect("results")
            .iter()
            .find(|r| r["id"] == id)
            .unwrap_or_else(|| panic!("no {id}"))
            .clone()
    };
    let signed = judged("review_signed_off");
    let mut failing = vec![unsigned.clone(), wrong.clone()];
    failing.sort();
    assert_eq!(alarmed_resources(&signed), failing, "{signed}");
    let reason = |file: &str| {
        signed["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .find(|f| f["resource"] == file)
            .and_then(|f| f["reason"].as_str())
            .expect("a reason")
            .to_string()
    };
    assert!(reason(&unsigned).contains("not signed off"), "{signed}");
    let wrong_reviewer = files[wrong_at]["reviewers"][0].as_str().expect("email");
    assert!(
        reason(&wrong).contains(&format!(
            "signed off by {intruder}, who is not its reviewer"
        )) && reason(&wrong).contains(wrong_reviewer),
        "{}",
        reason(&wrong)
    );
    assert_eq!(
        alarmed_resources(&judged("review_every_grant_decided")),
        vec![files[named[2]]["path"].as_str().expect("path").to_string()]
    );
    // A signer who kept a grant of their own in the file they signed.
    let mut own = Vec::new();
    for file in &files {
        let path = file["path"].as_str().expect("path");
        let signer = &expected[path].signed_by;
        if path == wrong || signer.is_empty() {
            continue;
        }
        let sheet = Sheet::read(&dir.join(path));
        let (email, role, workspace, decision) = (
            sheet.at("email"),
            sheet.at("role"),
            sheet.at("workspace"),
            sheet.at("decision"),
        );
        for row in &sheet.rows {
            if row[email].eq_ignore_ascii_case(signer) && row[decision] == "keep" {
                own.push(format!(
                    "{}: {} on {}",
                    row[email], row[role], row[workspace]
                ));
            }
        }
    }
    own.sort();
    assert!(
        !own.is_empty(),
        "an admin signs a file holding their own grant"
    );
    assert_eq!(alarmed_resources(&judged("review_not_self_certified")), own);

    // Every other format: titled a review, the fingerprint, and a row per
    // file with the same counts and signer.
    let cells_of = |format: &str, text: &str, path: &str| -> Vec<String> {
        match format {
            "markdown" => text
                .lines()
                .find(|l| l.starts_with(&format!("| {path} |")))
                .unwrap_or_else(|| panic!("no row for {path}"))
                .trim_matches(|c| c == '|' || c == ' ')
                .split(" | ")
                .map(str::to_string)
                .collect(),
            "html" => {
                let line = text
                    .lines()
                    .find(|l| l.starts_with(&format!("<tr><td>{path}</td>")))
                    .unwrap_or_else(|| panic!("no row for {path}"));
                line.trim_start_matches("<tr>")
                    .trim_end_matches("</tr>")
                    .split("</td>")
                    .filter(|c| !c.is_empty())
                    .map(|c| c[c.find('>').expect("a cell") + 1..].to_string())
                    .collect()
            }
            "table" => {
                let line = text
                    .lines()
                    .find(|l| l.starts_with(&format!("{path} ")))
                    .unwrap_or_else(|| panic!("no row for {path}"));
                let cells: Vec<String> = line
                    .split("  ")
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(str::to_string)
                    .collect();
                // Unsigned: the two empty cells are gone between the spaces.
                match cells.len() {
                    8 => [&cells[..7], &[String::new(), String::new()], &cells[7..]].concat(),
                    _ => cells,
                }
            }
            "junit" => {
                let start = text
                    .find(&format!(
                        "<testcase classname=\"orgsql.review.file\" name=\"{path}\">"
                    ))
                    .unwrap_or_else(|| panic!("no test case for {path}"));
                let case = &text[start..start + text[start..].find("</testcase>").expect("end")];
                let property = |name: &str| {
                    let at = format!("<property name=\"{name}\" value=\"");
                    let from = case.find(&at).expect("the property") + at.len();
                    case[from..from + case[from..].find('"').expect("quote")].to_string()
                };
                [
                    path.to_string(),
                    property("scope"),
                    property("reviewer"),
                    property("rows"),
                    property("keep"),
                    property("revoke"),
                    property("undecided"),
                    property("signed by"),
                    property("signed at"),
                    property("sign-off"),
                ]
                .to_vec()
            }
            _ => unreachable!(),
        }
    };
    for format in ["markdown", "html", "table", "junit"] {
        let (code, text) = demo_verify(&dir, format);
        assert_eq!(code, Some(1), "{format}: {text}");
        let title = match format {
            "markdown" => "# Access review: ",
            "html" => "<title>Access review: ",
            "table" => "Access review: ",
            _ => "<testsuites name=\"Access review: ",
        };
        assert!(text.contains(title), "{format}: titled a review");
        assert!(!text.contains("Compliance evidence"), "{format}");
        assert!(
            !text.contains("<summary>SQL"),
            "{format}: no empty SQL block"
        );
        assert!(text.contains(&fingerprint), "{format}: the fingerprint");
        for file in &files {
            let path = file["path"].as_str().expect("path");
            let want = &expected[path];
            let cells = cells_of(format, &text, path);
            assert_eq!(cells.len(), 10, "{format} {path}: {cells:?}");
            let reviewers = file["reviewers"].as_array().expect("reviewers");
            for reviewer in reviewers {
                assert!(
                    cells[2].contains(reviewer.as_str().expect("email")),
                    "{format}: {cells:?}"
                );
            }
            assert_eq!(
                cells[3..9],
                [
                    want.rows.to_string(),
                    want.keep.to_string(),
                    want.revoke.to_string(),
                    want.undecided.to_string(),
                    want.signed_by.clone(),
                    want.signed_at.clone(),
                ],
                "{format} {path}"
            );
            let fails = path == unsigned || path == wrong;
            assert_eq!(
                cells[9].starts_with("FAILS: "),
                fails,
                "{format} {path}: {cells:?}"
            );
        }
    }

    // The wrong signature mended: that file passes.
    sign(&dir, &files[wrong_at], wrong_reviewer, &day);
    let (_, json) = demo_verify(&dir, "json");
    let report: serde_json::Value = serde_json::from_str(&json).expect("a JSON report");
    let signed = report["results"]
        .as_array()
        .expect("results")
        .iter()
        .find(|r| r["id"] == "review_signed_off")
        .expect("judged")
        .clone();
    assert_eq!(alarmed_resources(&signed), vec![unsigned.clone()]);

    // Signed before the review started: not a sign-off of it.
    sign(&dir, &files[wrong_at], wrong_reviewer, "2001-01-01");
    let (_, json) = demo_verify(&dir, "json");
    assert!(
        json.contains(&format!(
            "signed_at 2001-01-01 is before the review started ({})",
            review["started_at"].as_str().expect("started_at")
        )),
        "{json}"
    );
    // The reviewer named in a sign-off rewritten to the signer: the review
    // is refused, as for any evidence edited.
    let signoff = dir.join(files[wrong_at]["signoff"].as_str().expect("signoff"));
    let mut sheet = Sheet::read(&signoff);
    let (reviewer, signed_by, signed_at) = (
        sheet.at("reviewer"),
        sheet.at("signed_by"),
        sheet.at("signed_at"),
    );
    sheet.rows[0][reviewer] = intruder.clone();
    sheet.rows[0][signed_by] = intruder.clone();
    sheet.rows[0][signed_at] = day.clone();
    sheet.write(&signoff);
    let output = orgsql_alone()
        .args(["--demo", "review", "verify", &dir.display().to_string()])
        .output()
        .expect("orgsql runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}:2: reviewer is \"{intruder}\", but the review issued",
            files[wrong_at]["signoff"].as_str().expect("signoff")
        )),
        "{stderr}"
    );
}

#[test]
fn keeping_an_admin_role_needs_a_justification_shown_inert_in_every_format() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("review");
    succeeded(
        &orgsql_alone()
            .args([
                "--demo",
                "review",
                "start",
                "--out",
                &dir.display().to_string(),
            ])
            .output()
            .expect("orgsql runs"),
        "review start",
    );
    assert_eq!(
        review_json(&dir)["admin_roles"],
        serde_json::json!(ADMIN_ROLES)
    );
    // Everything kept, the admin roles justified, but for one site admin
    // left without, and one whose reason is hostile text.
    let hostile = "=HYPERLINK(\"http://x.example\") <script>alert(1)</script> | [link](http://x.example) \u{1b}[2J";
    let mut bare = None;
    let mut odd = None;
    for (path, mut sheet) in sheets(&dir) {
        keep_the_rest(&mut sheet);
        let (role, justification, email, workspace) = (
            sheet.at("role"),
            sheet.at("justification"),
            sheet.at("email"),
            sheet.at("workspace"),
        );
        for (i, row) in sheet.rows.iter_mut().enumerate() {
            if row[role] != "atlassian/site-admin" {
                continue;
            }
            let line = i + 2;
            let file = path
                .strip_prefix(&dir)
                .expect("inside")
                .display()
                .to_string();
            let grant = format!("{}: atlassian/site-admin on {}", row[email], row[workspace]);
            if bare.is_none() {
                row[justification] = String::new();
                bare = Some((file, line, grant));
            } else if odd.is_none() {
                row[justification] = hostile.to_string();
                odd = Some((file, line, grant));
            }
        }
        sheet.write(&path);
    }
    sign_all(&dir, "reviewer@acme.com");
    let ((file, line, grant), (odd_file, odd_line, odd_grant)) =
        (bare.expect("a site admin"), odd.expect("another"));

    let (code, json) = demo_verify(&dir, "json");
    assert_eq!(code, Some(1), "{json}");
    let report: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    let judged = report["results"]
        .as_array()
        .expect("results")
        .iter()
        .find(|r| r["id"] == "review_admin_kept_justified")
        .expect("judged")
        .clone();
    assert_eq!(alarmed_resources(&judged), vec![grant.clone()], "{judged}");
    let reason_of = |grant: &str| {
        judged["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .find(|f| f["resource"] == grant)
            .and_then(|f| f["reason"].as_str())
            .expect("a finding")
            .to_string()
    };
    assert!(
        reason_of(&grant).contains(&format!("{file}:{line}")),
        "{}",
        reason_of(&grant)
    );
    // The reason kept exactly in JSON, inside a sentence: never a cell's
    // start, where a spreadsheet would read a formula.
    let reason = reason_of(&odd_grant);
    assert!(reason.starts_with(&format!("Kept ({odd_file}:{odd_line}), justified: ")));
    assert!(reason.contains(hostile));
    for format in ["html", "junit", "markdown", "table"] {
        let (code, text) = demo_verify(&dir, format);
        assert_eq!(code, Some(1), "{format}");
        assert!(!text.contains('\u{1b}'), "{format}: no terminal escape");
        if format != "table" {
            assert!(!text.contains("<script>"), "{format}: no live markup");
        }
        match format {
            "html" | "junit" => assert!(text.contains("&lt;script&gt;"), "{format}"),
            "markdown" => {
                assert!(text.contains("&lt;script&gt;alert\\(1\\)&lt;/script&gt; \\| \\[link\\]"));
                // The judgements' rows keep their four columns.
                let row = text
                    .lines()
                    .find(|l| l.contains("`review_admin_kept_justified`"))
                    .expect("the row");
                assert_eq!(row.replace("\\|", "").matches('|').count(), 5, "{row}");
            }
            _ => {
                assert!(text.contains(&format!(
                    "{grant}: Kept ({file}:{line}) without a justification"
                )));
                assert!(text.contains("\\u{1b}[2J"), "shown, not acted on");
            }
        }
        if format != "json" {
            assert!(text.contains(&grant), "{format} names the grant");
        }
    }

    // Justified: it passes.
    let path = dir.join(&file);
    let mut sheet = Sheet::read(&path);
    let justification = sheet.at("justification");
    sheet.rows[line - 2][justification] = "Owns the site".to_string();
    sheet.write(&path);
    let (code, json) = demo_verify(&dir, "json");
    let report: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    for result in report["results"].as_array().expect("results") {
        assert_eq!(result["outcome"], "pass", "{result}");
    }
    assert_eq!(code, Some(0));

    // The roles to justify are the review's: only organization admins here.
    let dir = tmp.path().join("org-admins");
    succeeded(
        &orgsql_alone()
            .args([
                "--demo",
                "review",
                "start",
                "--out",
                &dir.display().to_string(),
            ])
            .args(["--admin-roles", "org-admin"])
            .output()
            .expect("orgsql runs"),
        "review start --admin-roles",
    );
    for (path, mut sheet) in sheets(&dir) {
        let decision = sheet.at("decision");
        for row in &mut sheet.rows {
            row[decision] = "keep".to_string();
        }
        sheet.write(&path);
    }
    sign_all(&dir, "reviewer@acme.com");
    let org_admins =
        demo_csv("SELECT count(*) FROM user_role_assignments WHERE role = 'atlassian/org-admin'")
            [0][0]
            .parse::<usize>()
            .expect("a count");
    let (code, json) = demo_verify(&dir, "json");
    assert_eq!(code, Some(1));
    let report: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    let judged = report["results"]
        .as_array()
        .expect("results")
        .iter()
        .find(|r| r["id"] == "review_admin_kept_justified")
        .expect("judged")
        .clone();
    let alarms = alarmed_resources(&judged);
    assert_eq!(alarms.len(), org_admins, "{judged}");
    assert!(
        alarms
            .iter()
            .all(|a| a.contains(": atlassian/org-admin on "))
    );
}
