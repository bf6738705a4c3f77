//! `orgsql review apply` through the binary, against an emulator whose
//! state lasts between commands: a review's revokes planned (nothing sent),
//! executed (verify then passes, the audit log holds one event per call by
//! the key), executed again (nothing sent), resumed after a `kill -9`
//! without repeating a call; a grant removed by hand is skipped; a
//! membership that takes away a grant not decided revoke is refused. And
//! every other mode sends only reads.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use orgsql::emulator::{Emulator, Faults, WRITER_KEY_LABEL};
use serde_json::Value;

use crate::common::*;
use crate::review::{keep_the_rest, sheets, sign_all, verify};

/// The search POSTs, the only non-GET requests a read may send.
const READ_POSTS: [&str; 4] = [
    "POST /admin/v2/orgs/{orgId}/directories/{directoryId}/users/search",
    "POST /admin/v2/orgs/{orgId}/directories/{directoryId}/groups/search",
    "POST /admin/v2/orgs/{orgId}/workspaces",
    // A bulk read: the authentication policy of each user named.
    "POST /admin/control/v1/orgs/{orgId}/users/auth-policies/bulk-fetch",
];

/// The requests the emulator got that are neither GETs nor the search
/// POSTs, with their counts.
fn writes_received(emu: &Emulator) -> BTreeMap<String, u64> {
    emu.routes_requested()
        .into_iter()
        .filter(|(route, _)| !route.starts_with("GET ") && !READ_POSTS.contains(&route.as_str()))
        .collect()
}

/// The rows of `sql` on the emulator, through the binary.
fn rows_of(emu: &Emulator, sql: &str) -> Vec<Value> {
    let run = orgsql_on(emu)
        .args(["--format", "ndjson", "-c", sql])
        .output()
        .expect("orgsql runs");
    String::from_utf8(succeeded(&run, sql))
        .expect("UTF-8")
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON row"))
        .collect()
}

/// A grant decided revoke: account, resource, role.
type Key = (String, String, String);

/// Start a review of `emu` in `dir`, decide revoke for the rows `pick`
/// chooses (it sees each row by column name and says whether to take it),
/// keep the rest (justified where needed) and sign every file off.
fn review_with(
    emu: &Emulator,
    dir: &Path,
    mut pick: impl FnMut(&dyn Fn(&str) -> String) -> bool,
) -> Vec<Key> {
    let started = orgsql_on(emu)
        .args(["review", "start", "--out"])
        .arg(dir)
        .output()
        .expect("orgsql runs");
    succeeded(&started, "review start");
    let mut revoked = Vec::new();
    for (path, mut sheet) in sheets(dir) {
        let decision = sheet.at("decision");
        let columns: BTreeMap<String, usize> = sheet
            .header
            .iter()
            .enumerate()
            .map(|(i, c)| (c.clone(), i))
            .collect();
        for row in &mut sheet.rows {
            let cell = |name: &str| row[columns[name]].clone();
            if pick(&cell) {
                revoked.push((cell("account_id"), cell("resource_id"), cell("role")));
                row[decision] = "revoke".to_string();
            }
        }
        keep_the_rest(&mut sheet);
        sheet.write(&path);
    }
    sign_all(dir, "reviewer@acme.com");
    revoked
}

/// Groups that are not synced from an identity provider and give exactly
/// one grant: removing a membership takes away that grant only.
fn single_grant_groups(emu: &Emulator) -> BTreeSet<String> {
    rows_of(
        emu,
        "SELECT g.name FROM groups g JOIN group_role_assignments a ON a.group_id = g.group_id \
         WHERE NOT g.external_synced GROUP BY g.name HAVING count(*) = 1",
    )
    .iter()
    .map(|r| r["name"].as_str().expect("name").to_string())
    .collect()
}

/// The five revokes of the issue: two direct product roles, two grants
/// through groups (each the only grant of its group), one role on the
/// organization; each of another person.
fn five_revokes(emu: &Emulator, dir: &Path) -> Vec<Key> {
    let groups = single_grant_groups(emu);
    let mut taken: BTreeMap<&str, usize> = BTreeMap::new();
    let mut people = BTreeSet::new();
    let revoked = review_with(emu, dir, |cell| {
        let kind = match (cell("product").as_str(), cell("granted").as_str()) {
            ("platform", "direct") => "org",
            (_, "direct") if cell("role") == "atlassian/user" => "direct",
            (_, "group") if groups.contains(&cell("via_groups")) => "group",
            _ => return false,
        };
        let wanted = if kind == "org" { 1 } else { 2 };
        let count = taken.entry(kind).or_default();
        if *count >= wanted || !people.insert(cell("account_id")) {
            return false;
        }
        *count += 1;
        true
    });
    assert_eq!(
        taken.values().sum::<usize>(),
        5,
        "the organization has the grants the test needs: {taken:?}"
    );
    revoked
}

/// `review apply DIR [args]`.
fn apply(emu: &Emulator, dir: &Path, args: &[&str]) -> std::process::Output {
    orgsql_on(emu)
        .args(["review", "apply"])
        .arg(dir)
        .args(args)
        .output()
        .expect("orgsql runs")
}

fn plan_of(dir: &Path) -> (Value, String) {
    let bytes = std::fs::read(dir.join("plan.json")).expect("plan.json");
    let sha = sha256_hex(&bytes);
    (serde_json::from_slice(&bytes).expect("JSON"), sha)
}

fn sha256_hex(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The `review_revokes_carried_out` entry of a JSON verify report, and the
/// exit code.
fn revokes_verified(emu: &Emulator, dir: &Path) -> (Option<i32>, Value) {
    let output = verify(&mut orgsql_on(emu), dir);
    let report: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|_| panic!("a JSON report: {}", String::from_utf8_lossy(&output.stderr)));
    let entry = report["results"]
        .as_array()
        .expect("results")
        .iter()
        .find(|r| r["id"] == "review_revokes_carried_out")
        .expect("the control")
        .clone();
    (output.status.code(), entry)
}

/// The audit events whose actor is the key apply writes with.
fn events_by_the_key(emu: &Emulator) -> Vec<Value> {
    rows_of(
        emu,
        &format!(
            "SELECT e.action, e.event_id FROM events e JOIN api_keys k ON e.actor_id = k.key_id \
             WHERE k.label = '{WRITER_KEY_LABEL}' ORDER BY e.time"
        ),
    )
}

fn journal(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("apply-journal.ndjson"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("a journal line"))
        .collect()
}

/// The whole loop: plan (5 calls, nothing sent, verify still alarms on the
/// 5), a wrong --plan-sha (nothing sent), execute (verify passes, 5 events
/// by the key, each call journaled with its status and request id),
/// execute again (nothing sent).
#[tokio::test(flavor = "multi_thread")]
async fn a_reviews_revokes_are_planned_then_carried_out_once() {
    let emu = emulator(spec(120, 50), Faults::default(), None).await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("q4");
    let revoked = five_revokes(&emu, &dir);

    let planned = apply(&emu, &dir, &[]);
    let stdout = String::from_utf8(succeeded(&planned, "review apply")).expect("UTF-8");
    let (plan, sha) = plan_of(&dir);
    let calls = plan["calls"].as_array().expect("calls");
    assert_eq!(calls.len(), 5, "{stdout}");
    assert!(
        stdout.contains(&sha),
        "the plan's sha256 is shown: {stdout}"
    );
    assert!(stdout.contains("Nothing was sent"));
    let planned_keys: BTreeSet<Key> = calls
        .iter()
        .flat_map(|c| {
            let account = c["account_id"].as_str().expect("account").to_string();
            c["removes"]
                .as_array()
                .expect("removes")
                .iter()
                .map(move |g| {
                    (
                        account.clone(),
                        g["resource_id"].as_str().expect("resource").to_string(),
                        g["role"].as_str().expect("role").to_string(),
                    )
                })
        })
        .collect();
    assert_eq!(planned_keys, revoked.iter().cloned().collect());
    let methods: BTreeSet<&str> = calls
        .iter()
        .map(|c| c["method"].as_str().expect("method"))
        .collect();
    assert_eq!(
        methods,
        BTreeSet::from(["POST", "DELETE"]),
        "roles and memberships"
    );
    assert!(writes_received(&emu).is_empty(), "planning sends nothing");
    let (code, entry) = revokes_verified(&emu, &dir);
    assert_eq!(code, Some(1));
    assert_eq!(alarmed_resources(&entry).len(), 5, "{entry}");

    let wrong = apply(&emu, &dir, &["--execute", "--plan-sha", &"0".repeat(64)]);
    assert_eq!(wrong.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("not the plan you approved"));
    assert!(writes_received(&emu).is_empty());

    let executed = apply(&emu, &dir, &["--execute", "--plan-sha", &sha]);
    let stdout = String::from_utf8(succeeded(&executed, "apply --execute")).expect("UTF-8");
    assert!(stdout.contains("5 sent"), "{stdout}");
    assert_eq!(writes_received(&emu).values().sum::<u64>(), 5);
    let (code, entry) = revokes_verified(&emu, &dir);
    assert!(alarmed_resources(&entry).is_empty(), "{entry}");
    assert_eq!(entry["outcome"], "pass", "{entry}");
    assert!(code == Some(0) || code == Some(1), "verify ran: {code:?}");
    let events = events_by_the_key(&emu);
    assert_eq!(events.len(), 5, "{events:?}");
    let lines = journal(&dir);
    assert_eq!(lines.len(), 5);
    for line in &lines {
        assert_eq!(line["outcome"], "sent", "{line}");
        assert_eq!(line["status"], 204, "{line}");
        assert!(
            line["request_id"].as_str().is_some_and(|id| !id.is_empty()),
            "{line}"
        );
    }

    let again = apply(&emu, &dir, &["--execute", "--plan-sha", &sha]);
    let stdout = String::from_utf8(succeeded(&again, "apply --execute again")).expect("UTF-8");
    assert!(stdout.contains("0 sent"), "{stdout}");
    assert_eq!(
        writes_received(&emu).values().sum::<u64>(),
        5,
        "nothing sent again"
    );
    assert_eq!(events_by_the_key(&emu).len(), 5);
}

/// `kill -9` while the third call is held by the API, then a restart: the
/// run completes, and no call is carried out twice (one event per call).
/// A grant removed by hand between plan and execute is skipped, recorded.
#[tokio::test(flavor = "multi_thread")]
async fn a_killed_run_resumes_without_repeating_and_a_grant_gone_is_skipped() {
    let emu = emulator(spec(120, 50), Faults::default(), None).await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("q4");
    five_revokes(&emu, &dir);
    succeeded(&apply(&emu, &dir, &[]), "plan");
    let (plan, sha) = plan_of(&dir);
    let calls = plan["calls"].as_array().expect("calls").clone();
    // The last call's grant goes by hand (an admin in admin.atlassian.com).
    let last = &calls[4];
    let path = format!(
        "/admin/v2/orgs/{}/directories/{}/groups/{}/memberships/{}",
        emu.org().id,
        last["path"]["directoryId"].as_str().expect("directory"),
        last["path"]["groupId"].as_str().expect("group"),
        last["path"]["accountId"].as_str().expect("account"),
    );
    assert_eq!(last["method"], "DELETE", "memberships come last");
    let by_hand = reqwest::Client::new()
        .delete(format!("{}{path}", emu.base_url()))
        .bearer_auth(emu.connection_json()["api_key"].as_str().expect("key"))
        .send()
        .await
        .expect("sent");
    assert_eq!(by_hand.status(), 204);

    let third = calls[2]["template"].as_str().expect("template").to_string();
    let before = calls[..2]
        .iter()
        .filter(|c| c["template"] == third.as_str())
        .count() as u64;
    let gate = emu.hold_after(&third, before);
    let mut child = orgsql_on(&emu)
        .args(["review", "apply"])
        .arg(&dir)
        .args(["--execute", "--plan-sha", &sha])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("runs");
    tokio::time::timeout(std::time::Duration::from_secs(60), gate.held())
        .await
        .expect("the third call held");
    child.kill().expect("SIGKILL");
    child.wait().expect("killed");
    drop(gate);
    let done_first: Vec<u64> = journal(&dir)
        .iter()
        .map(|l| l["n"].as_u64().expect("n"))
        .collect();
    assert_eq!(done_first, [1, 2], "two calls journaled before the kill");

    let resumed = apply(&emu, &dir, &["--execute", "--plan-sha", &sha]);
    let stdout = String::from_utf8(succeeded(&resumed, "resumed")).expect("UTF-8");
    let lines = journal(&dir);
    let outcome: BTreeMap<u64, String> = lines
        .iter()
        .map(|l| {
            (
                l["n"].as_u64().expect("n"),
                l["outcome"].as_str().expect("o").to_string(),
            )
        })
        .collect();
    assert_eq!(lines.len(), 5, "{stdout}");
    assert_eq!(outcome[&5], "gone", "removed by hand: skipped, recorded");
    assert!(
        ["sent", "gone"].contains(&outcome[&3].as_str()),
        "{outcome:?}"
    );
    // One event per change, four calls' and the one by hand: none carried
    // out twice (the held call, if the API acted on it after all, is found
    // gone, not sent again).
    assert_eq!(events_by_the_key(&emu).len(), 5);
    let (_, entry) = revokes_verified(&emu, &dir);
    assert!(alarmed_resources(&entry).is_empty(), "{entry}");
}

/// A membership whose group also gives a grant kept (or undecided) is
/// refused in the plan, the kept grant named; with --allow-collateral it
/// is planned, the grant listed as also taken away.
#[tokio::test(flavor = "multi_thread")]
async fn a_membership_that_takes_a_kept_grant_with_it_is_refused() {
    let emu = emulator(spec(120, 50), Faults::default(), None).await;
    let multi: BTreeSet<String> = rows_of(
        &emu,
        "SELECT g.name FROM groups g JOIN group_role_assignments a ON a.group_id = g.group_id \
         WHERE NOT g.external_synced GROUP BY g.name HAVING count(*) > 1",
    )
    .iter()
    .map(|r| r["name"].as_str().expect("name").to_string())
    .collect();
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("q4");
    let mut one = false;
    let revoked = review_with(&emu, &dir, |cell| {
        let take = !one && cell("granted") == "group" && multi.contains(&cell("via_groups"));
        one |= take;
        take
    });
    assert_eq!(
        revoked.len(),
        1,
        "a grant through a group that gives more: {multi:?}"
    );

    let planned = apply(&emu, &dir, &[]);
    assert_eq!(planned.status.code(), Some(1), "a refusal");
    let stdout = String::from_utf8_lossy(&planned.stdout);
    let (plan, _) = plan_of(&dir);
    assert!(
        plan["calls"].as_array().expect("calls").is_empty(),
        "{stdout}"
    );
    let refused = &plan["refused"][0];
    assert_eq!(refused["account_id"], revoked[0].0.as_str());
    assert!(
        refused["why"].as_str().expect("why").contains("(keep)"),
        "the kept grant is named: {refused}"
    );
    assert!(stdout.contains("Refused"), "{stdout}");

    let allowed = apply(&emu, &dir, &["--allow-collateral"]);
    succeeded(&allowed, "--allow-collateral");
    let (plan, _) = plan_of(&dir);
    let calls = plan["calls"].as_array().expect("calls");
    assert_eq!(calls.len(), 1);
    let also = calls[0]["also"].as_array().expect("also");
    assert!(!also.is_empty());
    assert!(also.iter().any(|g| g["decision"] == "keep"), "{also:?}");
    assert!(writes_received(&emu).is_empty(), "planning sends nothing");
}

/// Every mode but `review apply --execute` sends only GETs and the search
/// POSTs: queries, an export, check, review start, verify and apply's
/// plan, watch.
#[tokio::test(flavor = "multi_thread")]
async fn every_other_mode_sends_only_reads() {
    let emu = emulator(spec(60, 200), Faults::default(), None).await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let at = |name: &str| -> PathBuf { tmp.path().join(name) };
    let runs: Vec<Vec<String>> = vec![
        vec!["-c".into(), "SELECT count(*) FROM users u JOIN user_role_assignments r ON r.account_id = u.account_id".into()],
        vec!["-c".into(), "SELECT * FROM group_members m JOIN group_role_assignments a ON a.group_id = m.group_id".into()],
        vec!["-c".into(), "SELECT (SELECT count(*) FROM api_tokens), (SELECT count(*) FROM workspaces), (SELECT count(*) FROM domains), (SELECT count(*) FROM policies), (SELECT count(*) FROM events)".into()],
        vec!["export".into(), "--out".into(), at("snap").display().to_string()],
        vec!["check".into()],
        vec!["review".into(), "start".into(), "--out".into(), at("q4").display().to_string()],
        vec!["review".into(), "verify".into(), at("q4").display().to_string()],
        vec!["review".into(), "apply".into(), at("q4").display().to_string()],
        vec!["watch".into(), "--once".into(), "--since".into(), "2020-01-01".into(), "--state".into(), at("state").display().to_string()],
    ];
    for args in &runs {
        let run = orgsql_on(&emu).args(args).output().expect("orgsql runs");
        assert!(
            run.status.code().is_some_and(|c| c <= 1),
            "{args:?}: {}",
            String::from_utf8_lossy(&run.stderr)
        );
    }
    let routes = emu.routes_requested();
    assert!(
        routes.keys().any(|r| r.starts_with("POST ")),
        "the searches ran: {routes:?}"
    );
    assert!(
        writes_received(&emu).is_empty(),
        "{:?}",
        writes_received(&emu)
    );
    // The check has teeth: a write sent is counted as one.
    let user = emu.org().users[0].account_id.clone();
    let sent = reqwest::Client::new()
        .post(format!(
            "{}/admin/v1/orgs/{}/users/{user}/roles/revoke",
            emu.base_url(),
            emu.org().id
        ))
        .bearer_auth(emu.connection_json()["api_key"].as_str().expect("key"))
        .json(&serde_json::json!({"role": "atlassian/org-admin"}))
        .send()
        .await
        .expect("sent");
    assert!(sent.status().is_success() || sent.status().is_client_error());
    assert_eq!(writes_received(&emu).values().sum::<u64>(), 1);
}

/// `--suspend-leavers --revoke-leaver-tokens`: each person the review's
/// roster says has left (terminated, or past an end date) gets a
/// suspension per directory and a revocation per API token in the plan;
/// executed, their accounts are suspended and their tokens gone; people
/// still employed are untouched.
#[tokio::test(flavor = "multi_thread")]
async fn leavers_are_suspended_and_their_tokens_revoked() {
    let emu = emulator(spec(120, 50), Faults::default(), None).await;
    let with_tokens = rows_of(
        &emu,
        "SELECT DISTINCT u.email, u.account_id FROM api_tokens t \
         JOIN users u ON u.account_id = t.account_id \
         WHERE u.membership_status = 'active' AND u.email IS NOT NULL \
           AND u.account_id IN (SELECT account_id FROM user_role_assignments WHERE directory_id IS NOT NULL) \
         ORDER BY u.email LIMIT 3",
    );
    assert_eq!(with_tokens.len(), 3, "people with tokens and roles");
    let email = |i: usize| with_tokens[i]["email"].as_str().expect("email").to_string();
    let account = |i: usize| {
        with_tokens[i]["account_id"]
            .as_str()
            .expect("id")
            .to_string()
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let roster = tmp.path().join("people.csv");
    std::fs::write(
        &roster,
        format!(
            "email,employment_status,end_date\n{},terminated,\n{},active,2026-01-31\n{},active,\n\
             reviewer@acme.com,active,\n",
            email(0),
            email(1),
            email(2)
        ),
    )
    .expect("roster");
    let dir = tmp.path().join("q4");
    let started = orgsql_on(&emu)
        .arg("--roster")
        .arg(&roster)
        .args(["review", "start", "--out"])
        .arg(&dir)
        .output()
        .expect("orgsql runs");
    succeeded(&started, "review start");
    for (path, mut sheet) in sheets(&dir) {
        keep_the_rest(&mut sheet);
        sheet.write(&path);
    }
    sign_all(&dir, "reviewer@acme.com");
    let tokens_of = |i: usize| {
        rows_of(
            &emu,
            &format!(
                "SELECT token_id FROM api_tokens WHERE account_id = '{}'",
                account(i)
            ),
        )
        .len()
    };
    let tokens = tokens_of(0) + tokens_of(1);
    assert!(tokens > 0);

    let planned = apply(&emu, &dir, &["--suspend-leavers", "--revoke-leaver-tokens"]);
    let stdout = String::from_utf8(succeeded(&planned, "plan")).expect("UTF-8");
    let (plan, sha) = plan_of(&dir);
    let calls = plan["calls"].as_array().expect("calls");
    let for_whom: BTreeSet<&str> = calls
        .iter()
        .map(|c| c["account_id"].as_str().expect("account"))
        .collect();
    assert_eq!(
        for_whom,
        BTreeSet::from([account(0).as_str(), account(1).as_str()]),
        "{stdout}"
    );
    let deletes = calls.iter().filter(|c| c["method"] == "DELETE").count();
    assert_eq!(deletes, tokens, "one call per token");
    assert!(
        calls
            .iter()
            .any(|c| c["template"].as_str().expect("t").ends_with("/suspend"))
    );

    succeeded(
        &apply(&emu, &dir, &["--execute", "--plan-sha", &sha]),
        "execute",
    );
    let status = |i: usize| {
        rows_of(
            &emu,
            &format!(
                "SELECT membership_status FROM users WHERE account_id = '{}'",
                account(i)
            ),
        )[0]["membership_status"]
            .as_str()
            .expect("status")
            .to_string()
    };
    assert_eq!(status(0), "suspended");
    assert_eq!(status(1), "suspended");
    assert_eq!(status(2), "active", "still employed: untouched");
    assert_eq!(tokens_of(0) + tokens_of(1), 0);
    assert!(tokens_of(2) > 0, "still employed: tokens kept");
}
