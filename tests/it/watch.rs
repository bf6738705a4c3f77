//! `orgsql watch` through the binary, against an emulator whose admins act
//! while it runs (`Emulator::append_event`): each rule's alerts once, none
//! again, a late-processed event once, no repeat after a stop between
//! delivery and the state's write, and a catch-up within the stream's budget.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use chrono::Duration;
use orgsql::api::{Client, EVENTS_STREAM, PageRequest};
use orgsql::emulator::{Emulator, EmulatorConfig, Faults, RateLimits};
use serde_json::Value;

use crate::common::*;

/// Which built-in rule each action must raise, as the rule pack promises.
const EXPECTED: [(&str, &str); 12] = [
    ("user_invited", "user_added"),
    ("user_created", "user_added"),
    ("added_org_admin", "org_admin_changed"),
    ("removed_org_admin", "org_admin_changed"),
    ("user_granted_product_access", "product_access_changed"),
    ("user_revoked_product_access", "product_access_changed"),
    ("twosv_disabled_for_user", "twosv_disabled"),
    ("api_token_created", "api_credential_created"),
    ("api_key_created", "api_credential_created"),
    ("policy_updated", "policy_changed"),
    ("domain_verification_completed", "domain_changed"),
    ("domain_removed", "domain_changed"),
];

/// `watch --once` with a state folder and an output file; its stdout lines.
fn watch_once(emu: &Emulator, state: &Path, output: &Path, extra: &[&str]) -> Vec<String> {
    let run = orgsql_on(emu)
        .args(["watch", "--once", "--state"])
        .arg(state)
        .arg("--output")
        .arg(output)
        .args(extra)
        .output()
        .expect("orgsql runs");
    let stdout = succeeded(&run, "watch --once");
    String::from_utf8(stdout)
        .expect("UTF-8")
        .lines()
        .map(str::to_string)
        .collect()
}

/// The alerts the file holds, in order.
fn alerts_in(path: &Path) -> Vec<Value> {
    match std::fs::read_to_string(path) {
        Ok(text) => text
            .lines()
            .map(|line| serde_json::from_str(line).expect("one JSON alert a line"))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// (rule, key) of each alert.
fn rule_keys(alerts: &[Value]) -> Vec<(String, String)> {
    alerts
        .iter()
        .map(|a| {
            (
                a["rule"].as_str().expect("rule").to_string(),
                a["key"].as_str().expect("key").to_string(),
            )
        })
        .collect()
}

/// Append one event of each action of `EXPECTED` (and a login, which no
/// rule alerts on); what the alerts must be: (rule, event id).
fn append_all(emu: &Emulator) -> BTreeSet<(String, String)> {
    emu.append_event(0, "user_login", None).expect("a login");
    EXPECTED
        .iter()
        .map(|(action, rule)| {
            let event = emu.append_event(0, action, None).expect("appended");
            (rule.to_string(), event.id)
        })
        .collect()
}

/// The stream's cursor outlives its last page: asked again after events
/// are appended (one of them late: it happened a day ago), it answers those
/// events, in the order processed, and then an empty page with a cursor.
#[tokio::test(flavor = "multi_thread")]
async fn the_stream_serves_appended_events_after_its_last_cursor() {
    let emu = emulator(spec(20, 100), Faults::default(), None).await;
    let mut config = fast_retries(emu.client_config());
    // Asked again, the same cursor must reach the API.
    config.cache_ttl = None;
    let client = Client::new(config).expect("client");
    let request = PageRequest::get(EVENTS_STREAM)
        .polling()
        .query("limit", "500");
    let mut cursor: Option<String> = None;
    let mut read = 0;
    loop {
        let page = client
            .page::<Vec<Value>>(&request, cursor.as_deref())
            .await
            .expect("a page");
        read += page.data.len();
        cursor = Some(page.next.expect("a cursor on every page"));
        if page.data.is_empty() {
            break;
        }
    }
    assert_eq!(read, emu.org().events.len());
    let first = emu
        .append_event(0, "added_org_admin", None)
        .expect("appended");
    let late = emu
        .append_event(0, "policy_updated", Some(fixed_now() - Duration::days(1)))
        .expect("appended");
    assert!(late.time < first.time && late.processed_at > first.processed_at);
    let page = client
        .page::<Vec<Value>>(&request, cursor.as_deref())
        .await
        .expect("a page");
    let ids: Vec<&str> = page.data.iter().filter_map(|e| e["id"].as_str()).collect();
    assert_eq!(ids, [first.id.as_str(), late.id.as_str()]);
    let again = client
        .page::<Vec<Value>>(&request, page.next.as_deref())
        .await
        .expect("a page");
    assert!(again.data.is_empty(), "nothing processed since");
    assert!(again.next.is_some(), "and a cursor to go on from");
}

/// A first run starts the watch (the generated history is weeks old: no
/// alert); events appended while nothing runs then give each rule's alert
/// once, to the file and to stdout; a second run gives none; a late event
/// (it happened two days ago, processed now) alerts once.
#[tokio::test(flavor = "multi_thread")]
async fn each_rule_alerts_once_and_a_late_event_too() {
    let emu = emulator(spec(30, 200), Faults::default(), None).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let (state, output) = (dir.path().join("state"), dir.path().join("alerts.ndjson"));
    assert!(watch_once(&emu, &state, &output, &[]).is_empty());
    assert!(alerts_in(&output).is_empty());
    assert!(state.join("state.json").is_file(), "the cursor is kept");

    let expected = append_all(&emu);
    let stdout = watch_once(&emu, &state, &output, &[]);
    let alerts = alerts_in(&output);
    let got = rule_keys(&alerts);
    assert_eq!(got.len(), EXPECTED.len(), "one alert per event: {got:?}");
    assert_eq!(got.into_iter().collect::<BTreeSet<_>>(), expected);
    let org = emu.org().id.clone();
    for alert in &alerts {
        let id = alert["id"].as_str().expect("id");
        assert_eq!(
            id,
            format!(
                "{}:{org}:{}",
                alert["rule"].as_str().unwrap(),
                alert["key"].as_str().unwrap()
            )
        );
        assert_eq!(
            stdout.iter().filter(|line| line.contains(id)).count(),
            1,
            "{id} shown once: {stdout:?}"
        );
    }
    assert_eq!(stdout.len(), EXPECTED.len(), "{stdout:?}");

    emu.reset_requests();
    assert!(
        watch_once(&emu, &state, &output, &[]).is_empty(),
        "nothing new"
    );
    assert_eq!(alerts_in(&output).len(), EXPECTED.len());
    assert_eq!(
        (emu.requests(""), emu.requests("/events-stream")),
        (1, 1),
        "an idle poll is the stream's one request"
    );

    let late = emu
        .append_event(
            0,
            "twosv_disabled_for_user",
            Some(fixed_now() - Duration::days(2)),
        )
        .expect("appended");
    let stdout = watch_once(&emu, &state, &output, &[]);
    assert_eq!(stdout.len(), 1, "{stdout:?}");
    let alerts = alerts_in(&output);
    assert_eq!(alerts.len(), EXPECTED.len() + 1);
    assert_eq!(
        rule_keys(&alerts[EXPECTED.len()..]),
        [("twosv_disabled".to_string(), late.id.clone())]
    );
    assert!(watch_once(&emu, &state, &output, &[]).is_empty());
    assert_eq!(alerts_in(&output).len(), EXPECTED.len() + 1);
}

/// A run that delivered and stopped before writing its state (simulated:
/// the state folder is put back as it was before the run) is followed by
/// one that reads the same events again and delivers none of their alerts
/// twice, to the file or to stdout; the events after it alert once.
#[tokio::test(flavor = "multi_thread")]
async fn a_stop_between_delivery_and_the_state_write_repeats_nothing() {
    let emu = emulator(spec(30, 200), Faults::default(), None).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let (state, output) = (dir.path().join("state"), dir.path().join("alerts.ndjson"));
    watch_once(&emu, &state, &output, &[]);
    let expected = append_all(&emu);
    let before = std::fs::read(state.join("state.json")).expect("state");
    assert_eq!(watch_once(&emu, &state, &output, &[]).len(), EXPECTED.len());
    std::fs::write(state.join("state.json"), &before).expect("state put back");

    emu.reset_requests();
    let stdout = watch_once(&emu, &state, &output, &[]);
    assert!(
        emu.requests("/events-stream") >= 2,
        "the events were read again"
    );
    assert!(stdout.is_empty(), "{stdout:?}");
    let got = rule_keys(&alerts_in(&output));
    assert_eq!(got.len(), EXPECTED.len());
    assert_eq!(got.into_iter().collect::<BTreeSet<_>>(), expected);

    let next = emu
        .append_event(0, "added_org_admin", None)
        .expect("appended");
    let stdout = watch_once(&emu, &state, &output, &[]);
    assert_eq!(stdout.len(), 1, "{stdout:?}");
    assert!(stdout[0].contains(&next.id));
}

/// A catch-up over thousands of events, the stream read in pages of 40
/// against its budget of 50 a period (the emulator's clock 30 times
/// faster: periods of two seconds), draws no 429, and gives every alert the
/// rules promise for the history, each once.
#[tokio::test(flavor = "multi_thread")]
async fn a_catch_up_over_thousands_of_events_stays_in_the_budget() {
    let emu = Emulator::start(EmulatorConfig {
        org: spec(60, 5000),
        page_size_cap: Some(40),
        limits: Some(RateLimits::scaled(30.0)),
        ..Default::default()
    })
    .await
    .expect("emulator starts");
    // The generated history also claims domains (a domain verified).
    let rule_of: BTreeMap<&str, &str> = EXPECTED
        .into_iter()
        .chain([("domain_claimed", "domain_changed")])
        .collect();
    let org = emu.org();
    assert!(org.events.len() >= 5000);
    let expected: BTreeSet<(String, String)> = org
        .events
        .iter()
        .filter_map(|e| Some((rule_of.get(e.action)?.to_string(), e.id.clone())))
        .collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let (state, output) = (dir.path().join("state"), dir.path().join("alerts.ndjson"));
    watch_once(&emu, &state, &output, &["--since", "2020-01-01"]);
    let pages = emu.requests("/events-stream");
    assert!(
        pages as usize > org.events.len() / 40,
        "every page read: {pages}"
    );
    assert!(pages > 50, "more than one budget period: {pages}");
    assert_eq!(emu.throttled(), 0, "no 429");
    let (dropoff, got): (Vec<_>, Vec<_>) = rule_keys(&alerts_in(&output))
        .into_iter()
        .partition(|(rule, _)| rule == "stream_dropoff");
    assert_eq!(got.len(), expected.len(), "each alert once");
    assert_eq!(got.into_iter().collect::<BTreeSet<_>>(), expected);
    // The history ends more than a day ago: the stream is silent since its
    // newest event, and says so once.
    let newest = org
        .events
        .iter()
        .map(|e| e.processed_at)
        .max()
        .expect("events");
    assert!(chrono::Utc::now() - newest > Duration::days(1));
    assert_eq!(dropoff.len(), 1, "{dropoff:?}");
    let silent_since = dropoff[0].1.strip_prefix("silent:").expect("silent");
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(silent_since).map(|t| t.to_utc()),
        Ok(newest)
    );
}

/// SIGTERM while a poll is reading (its request held by the emulator)
/// drops that poll, which has delivered nothing, and stops the watch with
/// status 0 and the state of the poll before; the next run goes on from
/// there: the event appended meanwhile alerts once over the two runs.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_stops_between_polls_with_the_state_intact() {
    let emu = emulator(spec(30, 200), Faults::default(), None).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let (state, output) = (dir.path().join("state"), dir.path().join("alerts.ndjson"));
    // The first poll's one request goes through; the second poll's is held.
    let gate = emu.hold_after("/events-stream", 1);
    let child = orgsql_on(&emu)
        .args(["watch", "--interval", "1", "--state"])
        .arg(&state)
        .arg("--output")
        .arg(&output)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("orgsql runs");
    // The minute only bounds a failure.
    tokio::time::timeout(std::time::Duration::from_secs(60), gate.held())
        .await
        .expect("a second poll");
    assert!(state.join("state.json").is_file(), "the first poll's state");
    let event = emu
        .append_event(0, "added_org_admin", None)
        .expect("appended");
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    gate.open();
    let run = tokio::task::spawn_blocking(move || child.wait_with_output().expect("exit"))
        .await
        .expect("join");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("stopped by SIGTERM between polls"),
        "{stderr}"
    );
    let shown = String::from_utf8_lossy(&run.stdout).to_string()
        + &watch_once(&emu, &state, &output, &[]).join("\n");
    assert_eq!(shown.matches(&event.id).count(), 1, "{shown}");
    assert_eq!(
        rule_keys(&alerts_in(&output)),
        [("org_admin_changed".to_string(), event.id.clone())]
    );
}

/// `--rules DIR` adds a user's rules, in the check format with parameters:
/// one that aggregates (product grants by one actor, at least `${at_least}`
/// in a poll) alerts once under its own key. A rule without the `key`
/// column fails the run, naming its file, and the cursor stays where it was.
#[tokio::test(flavor = "multi_thread")]
async fn a_users_rules_run_beside_the_pack_and_a_bad_one_stops_the_run() {
    let emu = emulator(spec(30, 200), Faults::default(), None).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let (state, output) = (dir.path().join("state"), dir.path().join("alerts.ndjson"));
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).expect("rules folder");
    std::fs::write(
        rules.join("grant_burst.sql"),
        "-- id: grant_burst\n\
         -- title: Many product grants by one admin\n\
         -- severity: high\n\
         -- rationale: A burst of grants is how access spreads unreviewed.\n\
         -- remediation: Ask the admin.\n\
         -- param: at_least integer 5 Grants in one poll that alert\n\
         SELECT actor_id AS resource, 'alarm' AS status,\n\
                CAST(count(*) AS VARCHAR) || ' grants' AS reason,\n\
                'burst:' || actor_id AS key, count(*) AS grants\n\
         FROM new_events WHERE action = 'user_granted_product_access'\n\
         GROUP BY actor_id HAVING count(*) >= ${at_least}\n",
    )
    .expect("rule written");
    let args = [
        "--rules",
        rules.to_str().expect("UTF-8"),
        "--param",
        "at_least=3",
    ];
    watch_once(&emu, &state, &output, &args);
    let grants: Vec<String> = (0..3)
        .map(|_| {
            emu.append_event(0, "user_granted_product_access", None)
                .expect("appended")
                .id
        })
        .collect();
    let stdout = watch_once(&emu, &state, &output, &args);
    assert_eq!(stdout.len(), 4, "three grants and the burst: {stdout:?}");
    let alerts = alerts_in(&output);
    let burst: Vec<&Value> = alerts
        .iter()
        .filter(|a| a["rule"] == "grant_burst")
        .collect();
    assert_eq!(burst.len(), 1);
    let owner = &emu.org().users[0].account_id;
    assert_eq!(burst[0]["key"], format!("burst:{owner}").as_str());
    assert_eq!(burst[0]["details"]["grants"], "3");
    let product: BTreeSet<String> = alerts
        .iter()
        .filter(|a| a["rule"] == "product_access_changed")
        .map(|a| a["key"].as_str().expect("key").to_string())
        .collect();
    assert_eq!(product, grants.into_iter().collect());

    std::fs::write(
        rules.join("no_key.sql"),
        "-- id: no_key\n-- title: t\n-- severity: low\n-- rationale: r\n-- remediation: r\n\
         SELECT actor_id AS resource, 'alarm' AS status, action AS reason FROM new_events\n",
    )
    .expect("rule written");
    let before = std::fs::read(state.join("state.json")).expect("state");
    emu.append_event(0, "added_org_admin", None)
        .expect("appended");
    let run = orgsql_on(&emu)
        .args(["watch", "--once", "--state"])
        .arg(&state)
        .arg("--output")
        .arg(&output)
        .args(args)
        .output()
        .expect("orgsql runs");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no_key.sql"), "{stderr}");
    assert!(stderr.contains("resource, status, reason, key"), "{stderr}");
    assert_eq!(
        std::fs::read(state.join("state.json")).expect("state"),
        before
    );
    assert_eq!(alerts_in(&output).len(), 4, "nothing delivered");
}

/// Text from the API reaches the terminal escaped: an event whose message
/// carries escape sequences and a line break gives one visible line.
#[tokio::test(flavor = "multi_thread")]
async fn alerts_on_stdout_are_escaped() {
    let emu = emulator(spec(30, 200), Faults::default(), None).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let (state, output) = (dir.path().join("state"), dir.path().join("alerts.ndjson"));
    watch_once(&emu, &state, &output, &[]);
    let event = emu
        .append_event(0, "added_org_admin", None)
        .expect("appended");
    let hostile = "evil\u{1b}[2J\nALERT critical forged\u{7}";
    emu.change(|org| {
        let last = org
            .events
            .iter_mut()
            .find(|e| e.id == event.id)
            .expect("the event");
        last.message = hostile.to_string();
    });
    let run = orgsql_on(&emu)
        .args(["watch", "--once", "--state"])
        .arg(&state)
        .arg("--output")
        .arg(&output)
        .output()
        .expect("orgsql runs");
    let stdout = String::from_utf8(succeeded(&run, "watch")).expect("UTF-8");
    assert_eq!(stdout.lines().count(), 1, "{stdout:?}");
    assert!(
        !stdout.contains('\u{1b}') && !stdout.contains('\u{7}'),
        "{stdout:?}"
    );
    let alerts = alerts_in(&output);
    assert!(
        alerts[0]["reason"]
            .as_str()
            .expect("reason")
            .ends_with(hostile),
        "the file keeps the text as it came, as JSON"
    );
}

/// `orgsql emulator --append-every 1 --late-every 2` appends events while it
/// runs (saying each on stderr), every second one late; `watch --once`
/// alerts on each of them.
#[test]
fn the_emulator_command_appends_events_that_watch_alerts_on() {
    use std::io::{BufRead, BufReader};
    let mut emulator = orgsql_alone()
        .args(["emulator", "--users", "20", "--events", "100"])
        .args(["--append-every", "1", "--late-every", "2"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("emulator runs");
    let mut stdout = BufReader::new(emulator.stdout.take().expect("stdout"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("connection line");
    let connection: Value = serde_json::from_str(&line).expect("JSON");
    let mut stderr = BufReader::new(emulator.stderr.take().expect("stderr")).lines();
    // The first two appended: user_invited, then added_org_admin (late).
    let mut appended = Vec::new();
    while appended.len() < 2 {
        let said = stderr.next().expect("a line").expect("text");
        let words: Vec<&str> = said.split_whitespace().collect();
        assert_eq!(words[0], "appended", "{said}");
        appended.push((
            words[1].to_string(),
            words[2].to_string(),
            said.contains("late"),
        ));
    }
    assert_eq!(
        appended
            .iter()
            .map(|a| (a.0.as_str(), a.2))
            .collect::<Vec<_>>(),
        [("user_invited", false), ("added_org_admin", true)]
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let output = dir.path().join("alerts.ndjson");
    let run = orgsql_at(
        connection["base_url"].as_str().expect("url"),
        connection["org_id"].as_str().expect("org"),
        connection["api_key"].as_str().expect("key"),
    )
    .args(["watch", "--once", "--state"])
    .arg(dir.path().join("state"))
    .arg("--output")
    .arg(&output)
    .output()
    .expect("orgsql runs");
    let _ = emulator.kill();
    let _ = emulator.wait();
    succeeded(&run, "watch");
    let keys: BTreeSet<(String, String)> = rule_keys(&alerts_in(&output)).into_iter().collect();
    assert!(
        keys.contains(&("user_added".to_string(), appended[0].1.clone())),
        "{keys:?}"
    );
    assert!(
        keys.contains(&("org_admin_changed".to_string(), appended[1].1.clone())),
        "{keys:?}"
    );
}

/// Two watches on one state folder would each deliver every alert: the
/// second is refused while the first holds the folder.
#[tokio::test(flavor = "multi_thread")]
async fn a_state_folder_in_use_is_refused() {
    let emu = emulator(spec(10, 20), Faults::default(), None).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("state");
    std::fs::create_dir(&state).expect("state folder");
    let held = std::fs::File::create(state.join("lock")).expect("lock file");
    held.try_lock().expect("locked by the test");
    let run = orgsql_on(&emu)
        .args(["watch", "--once", "--state"])
        .arg(&state)
        .output()
        .expect("orgsql runs");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("another orgsql watch is using the state folder"),
        "{stderr}"
    );
    assert_eq!(emu.requests(""), 0, "nothing read");
    drop(held);
    let run = orgsql_on(&emu)
        .args(["watch", "--once", "--state"])
        .arg(&state)
        .output()
        .expect("orgsql runs");
    succeeded(&run, "watch once the folder is free");
}

/// When the API refuses the saved cursor, the watch reads again from the
/// newest processing time it saw: the event read at that instant last time
/// is read again, and its alert, remembered in the state, is not delivered
/// twice; the event after it alerts once.
#[tokio::test(flavor = "multi_thread")]
async fn a_refused_cursor_reads_from_the_newest_processing_time_without_repeats() {
    let emu = emulator(spec(30, 200), Faults::default(), None).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let (state, output) = (dir.path().join("state"), dir.path().join("alerts.ndjson"));
    watch_once(&emu, &state, &output, &[]);
    append_all(&emu);
    assert_eq!(watch_once(&emu, &state, &output, &[]).len(), EXPECTED.len());
    let path = state.join("state.json");
    let mut saved: Value =
        serde_json::from_slice(&std::fs::read(&path).expect("state")).expect("JSON");
    let org = emu.org().id.clone();
    saved["orgs"][&org]["cursor"] = "not-a-cursor".into();
    std::fs::write(&path, serde_json::to_vec(&saved).expect("JSON")).expect("state written");
    let next = emu
        .append_event(0, "removed_org_admin", None)
        .expect("appended");
    emu.reset_requests();
    let run = orgsql_on(&emu)
        .args(["watch", "--once", "--state"])
        .arg(&state)
        .arg("--output")
        .arg(&output)
        .output()
        .expect("orgsql runs");
    let stdout = String::from_utf8(succeeded(&run, "watch")).expect("UTF-8");
    assert!(
        String::from_utf8_lossy(&run.stderr).contains("refused the saved cursor"),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        emu.last_query("/events-stream")
            .is_some_and(|q| !q.contains("cursor=not")),
        "read again without the cursor"
    );
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.contains(&next.id));
    assert_eq!(alerts_in(&output).len(), EXPECTED.len() + 1);
}
