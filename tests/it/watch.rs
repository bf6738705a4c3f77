//! `orgsql watch` through the binary, against an emulator whose admins act
//! while it runs (`Emulator::append_event`): each rule's alerts once, none
//! again, a late-processed event once, no repeat after a stop between
//! delivery and the state's write, and a catch-up within the stream's budget.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use chrono::Duration;
use orgsql::api::{Client, EVENTS_STREAM, PageRequest};
use orgsql::emulator::{Doer, Emulator, EmulatorConfig, Faults, Org, RateLimits, User};
use serde_json::Value;

use crate::common::*;

/// Who does an appended event (and on which group), as `append_all` asks
/// the emulator.
#[derive(Clone, Copy)]
enum By {
    /// The owner: a managed account and an org admin.
    Owner,
    /// A user who is not a managed account and holds no admin role.
    Outsider,
    /// The owner, adding a user to a group that grants an admin role.
    IntoAdminGroup,
    /// The owner, adding a user to a group that grants none.
    IntoOrdinaryGroup,
}

/// What each appended action must raise, as the rule pack promises: the
/// rules that alert on it (none for some: the same action by an admin, or
/// into an ordinary group, raises nothing of its own).
const EXPECTED: [(&str, By, &[&str]); 17] = [
    ("user_invited", By::Owner, &["user_added"]),
    ("user_created", By::Owner, &["user_added"]),
    ("added_org_admin", By::Owner, &["org_admin_changed"]),
    ("removed_org_admin", By::Owner, &["org_admin_changed"]),
    (
        "user_granted_product_access",
        By::Owner,
        &["product_access_changed"],
    ),
    (
        "user_revoked_product_access",
        By::Owner,
        &["product_access_changed"],
    ),
    ("twosv_disabled_for_user", By::Owner, &["twosv_disabled"]),
    ("api_token_created", By::Owner, &["api_credential_created"]),
    ("api_key_created", By::Owner, &["api_credential_created"]),
    ("policy_updated", By::Owner, &["policy_changed"]),
    (
        "domain_verification_completed",
        By::Owner,
        &["domain_changed"],
    ),
    ("domain_removed", By::Owner, &["domain_changed"]),
    (
        "user_logged_in_as_user",
        By::Owner,
        &["admin_impersonated_user"],
    ),
    (
        "user_added_to_group",
        By::IntoAdminGroup,
        &["admin_group_member_added"],
    ),
    ("user_added_to_group", By::IntoOrdinaryGroup, &[]),
    (
        "user_granted_role",
        By::Outsider,
        &["admin_grant_by_unexpected_actor"],
    ),
    ("user_granted_role", By::Owner, &[]),
];

/// The roles that make a user an admin, as the rules count them.
const ADMIN_ROLES: [&str; 4] = [
    "atlassian/org-admin",
    "atlassian/site-admin",
    "atlassian/admin",
    "atlassian/user-access-admin",
];

/// The built-in burst rule's defaults: more than 5 grants in 10 minutes.
const BURST_GRANTS: usize = 5;

fn is_admin(org: &Org, user: &User) -> bool {
    org.user_roles(user)
        .iter()
        .any(|r| ADMIN_ROLES.contains(&r.role))
}

fn grants_admin(org: &Org, group: usize) -> bool {
    org.group_roles(group)
        .iter()
        .any(|g| g.roles.iter().any(|r| ADMIN_ROLES.contains(r)))
}

/// The emulator's doer for `by`, checked against what the emulator holds.
fn doer(org: &Org, by: By) -> Doer {
    let owner = &org.users[0];
    assert!(
        owner.claim_status == "managed" && is_admin(org, owner),
        "the owner is a managed admin"
    );
    match by {
        By::Owner => Doer::default(),
        By::Outsider => {
            let actor = org
                .users
                .iter()
                .position(|u| u.claim_status != "managed" && !is_admin(org, u));
            assert!(actor.is_some(), "an unmanaged user who is no admin");
            Doer { actor, group: None }
        }
        By::IntoAdminGroup | By::IntoOrdinaryGroup => {
            let admin = matches!(by, By::IntoAdminGroup);
            let group = (0..org.groups.len()).find(|&g| grants_admin(org, g) == admin);
            assert!(group.is_some(), "a group that grants admin: {admin}");
            Doer { actor: None, group }
        }
    }
}

/// Append one event of each action of `EXPECTED` (and a login, which no
/// rule alerts on), then `BURST_GRANTS` product grants more by the owner:
/// with the one of `EXPECTED`, one more than the burst rule allows, within
/// seconds. What the alerts must be: (rule, key).
fn append_all(emu: &Emulator) -> BTreeSet<(String, String)> {
    let org = emu.org();
    emu.append_event(0, "user_login", None).expect("a login");
    let mut expected: BTreeSet<(String, String)> = EXPECTED
        .iter()
        .flat_map(|(action, by, rules)| {
            let event = emu
                .append_event_by(0, action, None, doer(&org, *by))
                .expect("appended");
            rules
                .iter()
                .map(move |rule| (rule.to_string(), event.id.clone()))
        })
        .collect();
    let mut last = None;
    for _ in 0..BURST_GRANTS {
        let grant = emu
            .append_event(0, "user_granted_product_access", None)
            .expect("appended");
        expected.insert(("product_access_changed".to_string(), grant.id.clone()));
        last = Some(grant);
    }
    let last = last.expect("grants");
    expected.insert((
        "product_grant_burst".to_string(),
        format!("{}:{}", last.actor_id, last.id),
    ));
    expected
}

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

/// The ids of the built-in rules: the files of `rules/`.
fn pack_rules() -> BTreeSet<String> {
    std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("rules"))
        .expect("rules folder")
        .filter_map(|entry| {
            let name = entry.expect("entry").file_name().into_string().ok()?;
            Some(name.strip_suffix(".sql")?.to_string())
        })
        // The drop-off alarm reads the stream's health, not its events:
        // tests/it/delivery.rs has it.
        .filter(|rule| rule != "stream_dropoff")
        .collect()
}

/// The alerts of the rules that judge the organization as it is now, over
/// the generated history read in one poll: a user added to a group that
/// grants an admin role; a role grant by an actor who is not a managed
/// admin (the system's grant of the owner's org admin role too: it is no
/// user); more than `BURST_GRANTS` product grants by one actor within 10
/// minutes, once per run of grants over it.
fn history_alerts(org: &Org) -> BTreeSet<(String, String)> {
    let mut alerts = BTreeSet::new();
    let managed_admin = |id: &str| {
        org.users
            .iter()
            .any(|u| u.account_id == id && u.claim_status == "managed" && is_admin(org, u))
    };
    let mut grants: BTreeMap<&str, Vec<&orgsql::emulator::Event>> = BTreeMap::new();
    for e in &org.events {
        match e.action {
            "user_added_to_group" => {
                let admin_group = e.context.iter().any(|o| {
                    o["type"] == "groups"
                        && org
                            .groups
                            .iter()
                            .position(|g| o["id"] == g.id.as_str())
                            .is_some_and(|g| grants_admin(org, g))
                });
                if admin_group {
                    alerts.insert(("admin_group_member_added".to_string(), e.id.clone()));
                }
            }
            "added_org_admin" | "user_granted_role" if !managed_admin(&e.actor_id) => {
                alerts.insert(("admin_grant_by_unexpected_actor".to_string(), e.id.clone()));
            }
            "user_granted_product_access" => {
                grants.entry(e.actor_id.as_str()).or_default().push(e);
            }
            _ => {}
        }
    }
    for (actor, mut list) in grants {
        list.sort_by(|a, b| a.time.cmp(&b.time).then_with(|| a.id.cmp(&b.id)));
        let mut previous_over = false;
        for grant in &list {
            let within = list
                .iter()
                .filter(|g| g.time <= grant.time && g.time >= grant.time - Duration::minutes(10))
                .count();
            let over = within > BURST_GRANTS;
            if over && !previous_over {
                alerts.insert((
                    "product_grant_burst".to_string(),
                    format!("{actor}:{}", grant.id),
                ));
            }
            previous_over = over;
        }
    }
    alerts
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
/// alert); events appended while nothing runs then give each rule's
/// alerts (every rule of the pack alerts) once, to the file and to stdout; a second run gives none; a late event
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
    let rules: BTreeSet<&str> = expected.iter().map(|(rule, _)| rule.as_str()).collect();
    assert_eq!(
        rules,
        pack_rules().iter().map(String::as_str).collect(),
        "every rule of the pack"
    );
    let stdout = watch_once(&emu, &state, &output, &[]);
    let alerts = alerts_in(&output);
    let got = rule_keys(&alerts);
    assert_eq!(got.len(), expected.len(), "each alert once: {got:?}");
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
    assert_eq!(stdout.len(), expected.len(), "{stdout:?}");

    emu.reset_requests();
    assert!(
        watch_once(&emu, &state, &output, &[]).is_empty(),
        "nothing new"
    );
    assert_eq!(alerts_in(&output).len(), expected.len());
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
    assert_eq!(alerts.len(), expected.len() + 1);
    assert_eq!(
        rule_keys(&alerts[expected.len()..]),
        [("twosv_disabled".to_string(), late.id.clone())]
    );
    assert!(watch_once(&emu, &state, &output, &[]).is_empty());
    assert_eq!(alerts_in(&output).len(), expected.len() + 1);
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
    assert_eq!(watch_once(&emu, &state, &output, &[]).len(), expected.len());
    std::fs::write(state.join("state.json"), &before).expect("state put back");

    emu.reset_requests();
    let stdout = watch_once(&emu, &state, &output, &[]);
    assert!(
        emu.requests("/events-stream") >= 2,
        "the events were read again"
    );
    assert!(stdout.is_empty(), "{stdout:?}");
    let got = rule_keys(&alerts_in(&output));
    assert_eq!(got.len(), expected.len());
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
    // The rules that alert on every event of an action, by an admin; the
    // generated history also claims domains (a domain verified).
    let rule_of: BTreeMap<&str, &str> = EXPECTED
        .into_iter()
        .filter(|(_, by, rules)| matches!(by, By::Owner) && rules.len() == 1)
        .map(|(action, _, rules)| (action, rules[0]))
        .chain([("domain_claimed", "domain_changed")])
        .collect();
    let org = emu.org();
    assert!(org.events.len() >= 5000);
    let mut expected: BTreeSet<(String, String)> = org
        .events
        .iter()
        .filter_map(|e| Some((rule_of.get(e.action)?.to_string(), e.id.clone())))
        .collect();
    let judged = history_alerts(&org);
    for rule in [
        "admin_group_member_added",
        "admin_grant_by_unexpected_actor",
    ] {
        assert!(
            judged.iter().any(|(r, _)| r == rule),
            "the history gives {rule} something to find"
        );
    }
    expected.extend(judged);
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
    let expected = append_all(&emu);
    assert_eq!(watch_once(&emu, &state, &output, &[]).len(), expected.len());
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
    assert_eq!(alerts_in(&output).len(), expected.len() + 1);
}

/// The alerts of `rule` in the file, as keys.
fn keys_of(output: &Path, rule: &str) -> Vec<String> {
    rule_keys(&alerts_in(output))
        .into_iter()
        .filter(|(r, _)| r == rule)
        .map(|(_, key)| key)
        .collect()
}

/// An admin role granted by a user who is not a managed account (an admin
/// or not), and by a managed one who holds no admin role, alerts; the same
/// grant by the owner, a managed org admin, does not (it alerts as an org admin change
/// only). A user added to a group that grants an admin role alerts; one
/// added to a group that grants none does not.
#[tokio::test(flavor = "multi_thread")]
async fn the_actor_and_the_group_are_judged_as_the_organization_holds_them() {
    let emu = emulator(spec(30, 200), Faults::default(), None).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let (state, output) = (dir.path().join("state"), dir.path().join("alerts.ndjson"));
    watch_once(&emu, &state, &output, &[]);
    let org = emu.org();
    let managed_non_admin = org
        .users
        .iter()
        .position(|u| u.claim_status == "managed" && !is_admin(&org, u));
    assert!(
        managed_non_admin.is_some(),
        "a managed user who is no admin"
    );
    let grant = |doer: Doer| {
        emu.append_event_by(0, "added_org_admin", None, doer)
            .expect("appended")
            .id
    };
    let by_outsider = grant(doer(&org, By::Outsider));
    let by_non_admin = grant(Doer {
        actor: managed_non_admin,
        group: None,
    });
    let by_owner = grant(doer(&org, By::Owner));
    // An admin whose account the organization no longer manages (its
    // domain released, say).
    let unmanaged_admin = (1..org.users.len())
        .find(|&i| org.users[i].claim_status == "managed" && is_admin(&org, &org.users[i]));
    assert!(unmanaged_admin.is_some(), "an admin besides the owner");
    emu.change(|org| {
        if let Some(i) = unmanaged_admin {
            org.users[i].claim_status = "unmanaged";
        }
    });
    let by_unmanaged_admin = grant(Doer {
        actor: unmanaged_admin,
        group: None,
    });
    let add = |by: By| {
        emu.append_event_by(0, "user_added_to_group", None, doer(&org, by))
            .expect("appended")
            .id
    };
    let into_admin_group = add(By::IntoAdminGroup);
    let _into_ordinary_group = add(By::IntoOrdinaryGroup);
    watch_once(&emu, &state, &output, &[]);

    let mut unexpected = keys_of(&output, "admin_grant_by_unexpected_actor");
    unexpected.sort();
    let mut want = vec![
        by_outsider.clone(),
        by_non_admin.clone(),
        by_unmanaged_admin.clone(),
    ];
    want.sort();
    assert_eq!(unexpected, want);
    let mut admin_changes = keys_of(&output, "org_admin_changed");
    admin_changes.sort();
    let mut want = vec![by_outsider, by_non_admin, by_owner, by_unmanaged_admin];
    want.sort();
    assert_eq!(admin_changes, want, "every org admin grant");
    assert_eq!(
        keys_of(&output, "admin_group_member_added"),
        [into_admin_group]
    );
}

/// More than 5 product grants by one actor within 10 minutes alert once:
/// 5 grants, read by two runs, do not; a sixth, in a third run, does (the
/// grants of the earlier runs count: the state keeps them); a seventh in
/// the same burst does not alert again. Another actor's 6 grants 3 minutes
/// apart do not alert (at most 4 in any 10 minutes); a third actor's 6
/// within 500 seconds across the turn of an hour alert once.
#[tokio::test(flavor = "multi_thread")]
async fn a_burst_of_grants_over_several_runs_alerts_once() {
    let emu = emulator(spec(30, 200), Faults::default(), None).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let (state, output) = (dir.path().join("state"), dir.path().join("alerts.ndjson"));
    watch_once(&emu, &state, &output, &[]);
    let grant = |doer: Doer, happened| {
        emu.append_event_by(0, "user_granted_product_access", happened, doer)
            .expect("appended")
    };
    for batch in [3, 2] {
        for _ in 0..batch {
            grant(Doer::default(), None);
        }
        watch_once(&emu, &state, &output, &[]);
    }
    assert!(
        keys_of(&output, "product_grant_burst").is_empty(),
        "5 grants"
    );
    let sixth = grant(Doer::default(), None);
    watch_once(&emu, &state, &output, &[]);
    let owner = &emu.org().users[0].account_id;
    let burst = format!("{owner}:{}", sixth.id);
    assert_eq!(keys_of(&output, "product_grant_burst"), [burst.as_str()]);
    grant(Doer::default(), None);
    watch_once(&emu, &state, &output, &[]);
    assert_eq!(
        keys_of(&output, "product_grant_burst"),
        [burst.as_str()],
        "the same burst"
    );

    let org = emu.org();
    let others: Vec<usize> = (1..org.users.len())
        .filter(|&i| org.users[i].account_id != *owner)
        .take(2)
        .collect();
    let hour = chrono::Utc::now() - Duration::hours(3);
    let hour = hour - Duration::seconds(hour.timestamp() % 3600);
    for k in 0..6 {
        let at = hour + Duration::minutes(3 * k);
        grant(
            Doer {
                actor: Some(others[0]),
                group: None,
            },
            Some(at),
        );
    }
    let mut last = None;
    for k in 0..6 {
        // 55:00 to 63:20: across the hour.
        let at = hour + Duration::minutes(55) + Duration::seconds(100 * k);
        last = Some(grant(
            Doer {
                actor: Some(others[1]),
                group: None,
            },
            Some(at),
        ));
    }
    watch_once(&emu, &state, &output, &[]);
    let last = last.expect("grants");
    assert_eq!(
        keys_of(&output, "product_grant_burst"),
        [
            burst,
            format!("{}:{}", org.users[others[1]].account_id, last.id)
        ]
    );
}
