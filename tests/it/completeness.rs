//! Completeness of each table read: every listing recorded (pages, items,
//! requests, retries, read to its end), the API's count asked before and
//! after it where the API counts the same filters, and a listing the API
//! counts differently from what its pages held failing `export` and `check`.
//! Expected numbers come from the emulator's organization, never from
//! orgsql's output.

use std::process::{Output, Stdio};

use crate::common::*;
use orgsql::emulator::{Emulator, Faults};
use serde_json::{Value, json};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Run the binary off the runtime's threads: the emulator answers meanwhile.
async fn run(mut command: std::process::Command) -> Output {
    tokio::task::spawn_blocking(move || command.output().expect("orgsql runs"))
        .await
        .expect("join")
}

fn table<'m>(manifest: &'m Value, name: &str) -> &'m Value {
    manifest["tables"]
        .as_array()
        .and_then(|tables| tables.iter().find(|t| t["name"] == name))
        .unwrap_or_else(|| panic!("no {name} in the manifest: {manifest}"))
}

/// An API that silently leaves one user out of one page (its cursors and
/// its users/count still true) fails `export` and `check`, naming `users`
/// and both numbers, every time; neither leaves evidence behind.
#[tokio::test(flavor = "multi_thread")]
async fn a_user_left_out_of_a_page_fails_export_and_check_naming_users_and_both_numbers() {
    // 10 users a page: the 13th user is on the second page.
    let faults = Faults {
        drop_user: Some(12),
        ..Faults::default()
    };
    let emu = emulator(spec(30, 40), faults, Some(10)).await;
    let users = emu.org().users.len();
    assert!(users > 20, "the org has {users} users");
    let counted = format!("users: the API counts {users} for POST");
    let held = format!("the listing's pages held {}:", users - 1);
    for attempt in 1..=2 {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = dir.path().join("snap");
        let mut export = orgsql_on(&emu);
        export.arg("export").arg("--out").arg(&out);
        let output = run(export).await;
        let stderr = text(&output.stderr);
        assert!(
            !output.status.success(),
            "export {attempt} passed: {stderr}"
        );
        assert!(
            stderr.contains(&counted) && stderr.contains(&held),
            "export {attempt}: {stderr}"
        );
        assert!(!out.join("users.parquet").exists(), "users was written");
        // What the folder holds is what its manifest says, and users is not in it.
        if let Ok(manifest) = std::fs::read_to_string(out.join("manifest.json")) {
            let manifest: Value = serde_json::from_str(&manifest).expect("manifest is JSON");
            let names: Vec<&Value> = manifest["tables"]
                .as_array()
                .expect("tables")
                .iter()
                .map(|t| &t["name"])
                .collect();
            assert!(!names.contains(&&json!("users")), "{names:?}");
        }

        let mut check = orgsql_on(&emu);
        check.args(["check", "--format", "json"]);
        let output = run(check).await;
        let stderr = text(&output.stderr);
        assert!(!output.status.success(), "check {attempt} passed: {stderr}");
        assert!(
            stderr.contains(&counted) && stderr.contains(&held),
            "check {attempt}: {stderr}"
        );
        assert!(output.stdout.is_empty(), "check wrote a report");
    }

    // A query that stops early (LIMIT) reads too little to be judged: it
    // passes, and its listing is not claimed to have been read to its end.
    let mut limited = orgsql_on(&emu);
    limited.args([
        "--format",
        "csv",
        "-c",
        "SELECT count(*) AS n FROM (SELECT * FROM users LIMIT 3)",
        "-c",
        "SELECT read_to_end, count_before IS NULL AS uncounted, verdict FROM orgsql_listings",
    ]);
    let output = run(limited).await;
    let stdout = succeeded(&output, "a LIMIT query");
    assert_eq!(
        text(&stdout),
        "n\n3\nread_to_end,uncounted,verdict\nfalse,true,not read to its end\n"
    );
}

/// A whole read: the export's manifest and check's report say each table
/// was read to its end, and where the API counts (users, groups) its
/// counts before and after equal the items, which are the organization's.
#[tokio::test(flavor = "multi_thread")]
async fn a_whole_read_records_its_end_and_counts_equal_to_the_items() {
    let emu = emulator(spec(30, 40), Faults::default(), Some(10)).await;
    let org = emu.org();
    let users = org.users.len() as u64;
    let groups = org.groups.len() as u64;
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("snap");
    let mut export = orgsql_on(&emu);
    export.arg("export").arg("--out").arg(&out);
    succeeded(&run(export).await, "export");
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("manifest.json")).expect("manifest"),
    )
    .expect("manifest is JSON");

    for (name, count) in [("users", users), ("groups", groups)] {
        let read = &table(&manifest, name)["completeness"];
        // Pages of at most 10; a count before and one after.
        let pages = count.div_ceil(10);
        assert_eq!(read["read_to_end"], true, "{name}: {read}");
        assert_eq!(read["listings"], 1, "{name}: {read}");
        assert_eq!(read["pages"], pages, "{name}: {read}");
        assert_eq!(read["items"], count, "{name}: {read}");
        assert_eq!(read["count_before"], count, "{name}: {read}");
        assert_eq!(read["count_after"], count, "{name}: {read}");
        assert_eq!(read["requests"], pages + 2, "{name}: {read}");
        assert_eq!(read["retries"], 0, "{name}: {read}");
        assert_eq!(read["incomplete"], 0, "{name}: {read}");
    }
    // The API has no count for domains: read to its end, no count claimed.
    let domains = &table(&manifest, "domains")["completeness"];
    assert_eq!(domains["read_to_end"], true, "{domains}");
    assert_eq!(domains["items"], org.domains.len() as u64, "{domains}");
    assert_eq!(domains["count_before"], Value::Null, "{domains}");

    // The audit log: the processing times the pass covered, every event,
    // and a cursor chain that ran to the stream's end.
    let stamp =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let processed = org.events.iter().map(|e| e.processed_at);
    let (oldest, newest) = (processed.clone().min(), processed.max());
    for name in ["events", "event_context"] {
        let read = &table(&manifest, name)["stream_read"];
        assert_eq!(read["cursor_chain_unbroken"], true, "{name}: {read}");
        assert_eq!(read["events"], org.events.len() as u64, "{name}: {read}");
        assert_eq!(read["oldest_processed"], json!(oldest.map(stamp)), "{read}");
        assert_eq!(read["newest_processed"], json!(newest.map(stamp)), "{read}");
    }

    // A check on the snapshot says how its export read each table.
    let mut offline = orgsql_alone();
    offline.arg("--snapshot").arg(&out).args([
        "check",
        "--format",
        "json",
        "--controls",
        "mfa_active_users",
    ]);
    let output = run(offline).await;
    let report: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", text(&output.stderr)));
    let reads = report["envelope"]["completeness"]
        .as_array()
        .expect("completeness in the envelope");
    let read = reads
        .iter()
        .find(|c| c["table"] == "users")
        .unwrap_or_else(|| panic!("users not among {reads:?}"));
    assert_eq!(read["count_before"], users, "{read}");
    assert_eq!(read["items"], users, "{read}");

    // check: the envelope of every format carries each table read.
    let mut check = orgsql_on(&emu);
    check.args([
        "check",
        "--format",
        "json",
        "--controls",
        "mfa_active_users",
    ]);
    let output = run(check).await;
    let report: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", text(&output.stderr)));
    let reads = report["envelope"]["completeness"]
        .as_array()
        .expect("completeness in the envelope");
    let read = reads
        .iter()
        .find(|c| c["table"] == "users")
        .unwrap_or_else(|| panic!("users not among {reads:?}"));
    assert_eq!(read["read_to_end"], true, "{read}");
    assert_eq!(read["counted_items"], read["items"], "{read}");
    assert_eq!(read["count_before"], read["count_after"], "{read}");
    assert_eq!(read["incomplete"], 0, "{read}");
    for (format, line) in [
        ("table", "# Read: users: complete: "),
        ("markdown", "| Read: users | complete: "),
        (
            "junit",
            r#"<property name="completeness.users" value="complete: "#,
        ),
        ("html", "<tr><th>Read: users</th><td>complete: "),
    ] {
        let mut check = orgsql_on(&emu);
        check.args([
            "check",
            "--format",
            format,
            "--controls",
            "mfa_active_users",
        ]);
        let output = run(check).await;
        assert!(
            text(&output.stdout).contains(line),
            "{format}: {}",
            text(&output.stdout)
        );
    }
}

/// The organization changes while users is read (a user added between two
/// pages): the count after differs from the count before, so export reads
/// the table again, and the manifest records the read that held still.
#[tokio::test(flavor = "multi_thread")]
async fn a_table_that_changed_while_read_is_read_again() {
    let emu = emulator(spec(30, 40), Faults::default(), Some(10)).await;
    let users = emu.org().users.len() as u64;
    let gate = emu.hold_after("/users/search", 1);
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("snap");
    let child = orgsql_on(&emu)
        .args(["export", "--tables", "users", "--out"])
        .arg(&out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("orgsql runs");
    gate.held().await;
    emu.change(|org| {
        let mut user = org.users[1].clone();
        user.account_id = "557057:00000000-0000-4000-8000-00000000feed".to_string();
        user.email = "late.joiner@acme-labs.com".to_string();
        org.users.push(user);
    });
    gate.open();
    let output = tokio::task::spawn_blocking(move || child.wait_with_output().expect("exit"))
        .await
        .expect("join");
    succeeded(&output, "export");
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("users: the organization changed while it was read; reading it again"),
        "{stderr}"
    );
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("manifest.json")).expect("manifest"),
    )
    .expect("manifest is JSON");
    let users_entry = table(&manifest, "users");
    let read = &users_entry["completeness"];
    assert_eq!(users_entry["rows"], users + 1, "{users_entry}");
    assert_eq!(read["count_before"], users + 1, "{read}");
    assert_eq!(read["count_after"], users + 1, "{read}");
    assert_eq!(read["items"], users + 1, "{read}");
    assert_eq!(read["changed_while_read"], 0, "{read}");
}

async fn get(emu: &Emulator, path_and_query: &str) -> (u16, Value) {
    let url = format!(
        "{}/admin/v2/orgs/{}/directories/-/{path_and_query}",
        emu.base_url(),
        emu.org().id
    );
    let key = emu.connection_json()["api_key"]
        .as_str()
        .expect("key")
        .to_string();
    let response = reqwest::Client::new()
        .get(url)
        .bearer_auth(key)
        .send()
        .await
        .expect("emulator answers");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON body"))
}

/// users/count and groups/count take the spec's filters as query
/// parameters (arrays repeated or comma-joined) and count what the searches
/// list for the same filters; a parameter the spec does not give them is
/// refused.
#[tokio::test]
async fn count_endpoints_answer_with_the_spec_filters() {
    let emu = emulator(spec(60, 10), Faults::default(), None).await;
    let org = emu.org();

    let (status, body) = get(&emu, "users/count").await;
    assert_eq!((status, body), (200, json!({"count": org.users.len()})));
    let wanted = org
        .users
        .iter()
        .filter(|u| ["active", "suspended"].contains(&u.status))
        .filter(|u| u.claim_status == "managed" && u.mfa_enabled == Some(true))
        .count();
    assert!(wanted > 0, "the filters keep someone");
    let (status, body) = get(
        &emu,
        "users/count?status=active&status=suspended&claimStatus=managed&mfaEnabled=true",
    )
    .await;
    assert_eq!((status, body), (200, json!({"count": wanted})));
    let (_, body) = get(
        &emu,
        "users/count?status=active,suspended&claimStatus=managed&mfaEnabled=true",
    )
    .await;
    assert_eq!(body, json!({"count": wanted}));
    // The search with the same filters lists as many.
    let search = reqwest::Client::new()
        .post(format!(
            "{}/admin/v2/orgs/{}/directories/-/users/search",
            emu.base_url(),
            org.id
        ))
        .bearer_auth(emu.connection_json()["api_key"].as_str().expect("key"))
        .json(&json!({"limit": 100, "status": ["active", "suspended"],
                      "claimStatus": "managed", "mfaEnabled": true}))
        .send()
        .await
        .expect("answer")
        .json::<Value>()
        .await
        .expect("JSON");
    assert_eq!(search["data"].as_array().map(Vec::len), Some(wanted));

    let directory = &org.directories[1];
    let in_directory = org.users.iter().filter(|u| u.directory == 1).count();
    let (_, body) = get(&emu, &format!("users/count?directoryIds={}", directory.id)).await;
    assert_eq!(body, json!({"count": in_directory}));

    let (status, body) = get(&emu, "groups/count").await;
    assert_eq!((status, body), (200, json!({"count": org.groups.len()})));
    let member = &org.users[0];
    let theirs = member.groups.len();
    let (_, body) = get(
        &emu,
        &format!("groups/count?accountIds={}", member.account_id),
    )
    .await;
    assert_eq!(body, json!({"count": theirs}));

    // Not the spec's: the searches take emails and groupNames, the counts do not.
    for refused in [
        "users/count?emails=a@example.com",
        "users/count?limit=5",
        "groups/count?groupNames=admins",
    ] {
        let (status, body) = get(&emu, refused).await;
        assert_eq!(status, 400, "{refused}: {body}");
        let name = refused.split(['?', '=']).nth(1).expect("a parameter");
        assert!(body.to_string().contains(name), "{refused}: {body}");
    }
    // A filter given empty still filters: it matches no one, as the search's does.
    let (_, body) = get(&emu, "users/count?accountIds=").await;
    assert_eq!(body, json!({"count": 0}));
    let eleven = (0..11)
        .map(|i| format!("accountIds=a{i}"))
        .collect::<Vec<_>>();
    let (status, _) = get(&emu, &format!("users/count?{}", eleven.join("&"))).await;
    assert_eq!(status, 400, "more account ids than the spec allows");
}

/// A listing the session cache replays keeps the counts of the read that
/// filled the cache: no new requests, the same verdict.
#[tokio::test(flavor = "multi_thread")]
async fn a_cached_listing_keeps_its_record() {
    let emu = emulator(spec(30, 10), Faults::default(), Some(10)).await;
    let users = emu.org().users.len();
    let pages = users.div_ceil(10);
    let mut command = orgsql_on(&emu);
    command.args([
        "--format",
        "csv",
        "-c",
        "SELECT count(*) AS n FROM users",
        "-c",
        "SELECT count(*) AS n FROM users",
        "-c",
        "SELECT requests, cached_pages, count_before, count_after, items, verdict \
         FROM orgsql_listings ORDER BY started_at",
    ]);
    let output = run(command).await;
    let stdout = text(&succeeded(&output, "two reads of users"));
    let expected = format!(
        "n\n{users}\nn\n{users}\nrequests,cached_pages,count_before,count_after,items,verdict\n\
         {},0,{users},{users},{users},complete\n0,{pages},{users},{users},{users},complete\n",
        pages + 2
    );
    assert_eq!(stdout, expected);
    assert_eq!(emu.requests("/users/count"), 2, "counted once");
}

/// An organization that changes during every read: after two more reads
/// the export keeps the last, and says it changed while read, in its log
/// and its manifest, with the counts: never a silent pass.
#[tokio::test(flavor = "multi_thread")]
async fn a_table_that_keeps_changing_is_kept_and_said_to_have_changed() {
    let emu = emulator(spec(30, 10), Faults::default(), Some(10)).await;
    let users = emu.org().users.len() as u64;
    let add_user = |emu: &Emulator, n: u64| {
        emu.change(|org| {
            let mut user = org.users[1].clone();
            user.account_id = format!("557057:00000000-0000-4000-8000-00000000{n:04}");
            user.email = format!("joiner.{n}@acme-labs.com");
            org.users.push(user);
        });
    };
    // Read 1's first page passes, its second is held.
    let mut gate = emu.hold_after("/users/search", 1);
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("snap");
    let child = orgsql_on(&emu)
        .args(["export", "--tables", "users", "--out"])
        .arg(&out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("orgsql runs");
    for read in 1..=3u64 {
        gate.held().await;
        add_user(&emu, read);
        // The rest of this read (its pages after the held one: it lists
        // users + read users by now, 10 a page) and the next read's first
        // page pass; the next read's second page is held.
        let pages = (users + read).div_ceil(10);
        let next = emu.hold_after("/users/search", pages - 2 + 1);
        gate.open();
        gate = next;
    }
    gate.open();
    let output = tokio::task::spawn_blocking(move || child.wait_with_output().expect("exit"))
        .await
        .expect("join");
    succeeded(&output, "export");
    let stderr = text(&output.stderr);
    assert_eq!(
        stderr
            .matches("users: the organization changed while it was read")
            .count(),
        2,
        "{stderr}"
    );
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("manifest.json")).expect("manifest"),
    )
    .expect("manifest is JSON");
    let read = &table(&manifest, "users")["completeness"];
    // The third read began with users + 2 and ended with users + 3.
    assert_eq!(read["changed_while_read"], 1, "{read}");
    assert_eq!(read["count_before"], users + 2, "{read}");
    assert_eq!(read["count_after"], users + 3, "{read}");
    let line = stderr
        .lines()
        .find(|l| l.starts_with("users: ") && l.contains(" rows, "))
        .unwrap_or_else(|| panic!("no users line: {stderr}"));
    assert!(
        line.contains("(changed while read: ")
            && line.contains(&format!(
                "the API counted {} before and {} after",
                users + 2,
                users + 3
            )),
        "{line}"
    );
}
