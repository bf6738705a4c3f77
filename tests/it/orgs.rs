//! Several organizations in one session: every table holds each one's rows,
//! each read with its own key and within its own budgets; named connections
//! from a config file; export, snapshot, diff and check across them.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use orgsql::api::{ClientConfig, Orgs};
use orgsql::emulator::{Emulator, EmulatorConfig, RateLimits};
use serde_json::Value;

use crate::common::*;

/// Three organizations (some of the first's people in the others too),
/// the API's budgets enforced, a minute lasting a second.
async fn three_orgs(users: usize) -> Emulator {
    Emulator::start(EmulatorConfig {
        org: spec(users, 300),
        orgs: 3,
        limits: Some(RateLimits::scaled(60.0)),
        ..Default::default()
    })
    .await
    .expect("emulator starts")
}

fn configs(emu: &Emulator) -> Vec<ClientConfig> {
    emu.client_configs().into_iter().map(fast_retries).collect()
}

/// The emulator's organizations together, and a context over them.
fn together(configs: &[ClientConfig]) -> (Orgs, datafusion::prelude::SessionContext) {
    let orgs = Orgs::new(configs[0].clone(), configs[1..].to_vec()).expect("orgs");
    let ctx = orgsql::context(&orgs).expect("session");
    (orgs, ctx)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_table_holds_each_organizations_own_rows() {
    let emu = three_orgs(150).await;
    let configs = configs(&emu);
    let (orgs, ctx) = together(&configs);

    // Per organization, what a session on that organization alone counts.
    let drawn_429 = "SELECT count(*) FROM orgsql_requests WHERE status = 429";
    let mut retried: u64 = 0;
    for table in [
        "users",
        "groups",
        "group_members",
        "user_role_assignments",
        "user_last_active",
        "events",
        "api_tokens",
    ] {
        let together = sql_rows(
            &ctx,
            &format!("SELECT org_id, count(*) FROM {table} GROUP BY org_id ORDER BY org_id"),
        )
        .await;
        let mut alone = Vec::new();
        for config in &configs {
            let one = session(config.clone());
            let count = column(&one, &format!("SELECT count(*) FROM {table}")).await;
            alone.push(vec![config.org_id.clone(), count[0].clone()]);
            retried += column(&one, drawn_429).await[0]
                .parse::<u64>()
                .expect("a count");
        }
        alone.sort();
        assert_eq!(together, alone, "{table}");
    }

    // The same person in two organizations, managed in one and an outside
    // account in the other.
    let all = emu.orgs();
    let (first, second) = (&all[0], &all[1]);
    let mut expected: Vec<Vec<String>> = first
        .users
        .iter()
        .filter_map(|a| {
            let b = second.users.iter().find(|b| b.email == a.email)?;
            Some(vec![
                a.email.clone(),
                a.claim_status.to_string(),
                b.claim_status.to_string(),
            ])
        })
        .collect();
    expected.sort();
    assert!(expected.len() >= 5, "{} shared people", expected.len());
    assert!(expected.iter().all(|row| row[1] != row[2]));
    let sql = format!(
        "SELECT a.email, a.claim_status, b.claim_status FROM users a JOIN users b \
         ON a.email = b.email WHERE a.org_id = '{}' AND b.org_id = '{}' ORDER BY 1",
        first.id, second.id
    );
    assert_eq!(sql_rows(&ctx, &sql).await, expected);

    // A filter on org_id reads that organization only.
    orgs.clear_cache(None);
    let before = orgs.first().request_count();
    let sql = format!("SELECT count(*) FROM users WHERE org_id = '{}'", second.id);
    assert_eq!(
        column(&ctx, &sql).await,
        vec![second.users.len().to_string()]
    );
    let sent = orgs.first().requests_since(before);
    assert!(!sent.is_empty());
    assert!(sent.iter().all(|r| r.org_id == second.id));
    // A join narrows a fan-out to the people it saw, in their organization.
    let person = &second.users[3];
    let before = orgs.first().request_count();
    let sql = format!(
        "SELECT count(*) FROM users u JOIN user_role_assignments r USING (org_id, account_id) \
         WHERE u.email = '{}'",
        person.email
    );
    let expected = second.user_roles(person).len();
    assert_eq!(column(&ctx, &sql).await, vec![expected.to_string()]);
    let calls: Vec<_> = orgs
        .first()
        .requests_since(before)
        .into_iter()
        .filter(|r| r.endpoint.ends_with("/role-assignments"))
        .collect();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].org_id, second.id);

    let ids = column(
        &ctx,
        "SELECT DISTINCT org_id FROM orgsql_requests ORDER BY 1",
    )
    .await;
    let mut all_ids: Vec<String> = all.iter().map(|o| o.id.clone()).collect();
    all_ids.sort();
    assert_eq!(ids, all_ids);

    // Each organization within its own budgets: 450 last-active calls in
    // all, over the 200 a minute one organization may make, and no 429 in
    // any answer. (Whether a 429 is drawn at all, a sped-up minute lasting a
    // second, depends on the machine's load; every one drawn was retried.)
    retried += column(&ctx, drawn_429).await[0]
        .parse::<u64>()
        .expect("a count");
    assert_eq!(retried, emu.throttled(), "every 429 was seen and retried");
}

/// A join over several organizations narrows each one's fan-out to its own
/// keys: no organization is called for another's people (a 404, or an
/// outside account's rows, each against its own budget), and the answer is
/// what the API holds.
#[tokio::test(flavor = "multi_thread")]
async fn each_organization_is_called_only_for_its_own_join_keys() {
    let emu = three_orgs(60).await;
    let configs = configs(&emu);
    let (orgs, ctx) = together(&configs);
    let all = emu.orgs();

    // A department with people in every organization.
    let in_department =
        |org: &orgsql::emulator::Org, department: &str| -> Vec<orgsql::emulator::User> {
            org.users
                .iter()
                .filter(|u| u.department == Some(department))
                .cloned()
                .collect()
        };
    let department = all[0]
        .users
        .iter()
        .filter_map(|u| u.department)
        .find(|d| all.iter().all(|org| !in_department(org, d).is_empty()))
        .expect("a department in every organization");
    let members: Vec<Vec<orgsql::emulator::User>> = all
        .iter()
        .map(|org| in_department(org, department))
        .collect();
    let mut expected: Vec<Vec<String>> = all
        .iter()
        .zip(&members)
        .map(|(org, people)| {
            let roles: usize = people.iter().map(|u| org.user_roles(u).len()).sum();
            vec![org.id.clone(), roles.to_string()]
        })
        .collect();
    expected.sort();

    let before = orgs.first().request_count();
    let sql = format!(
        "SELECT u.org_id, count(*) FROM users u \
         JOIN user_role_assignments r USING (org_id, account_id) \
         WHERE u.department = '{department}' GROUP BY 1 ORDER BY 1"
    );
    assert_eq!(sql_rows(&ctx, &sql).await, expected);
    let calls: Vec<_> = orgs
        .first()
        .requests_since(before)
        .into_iter()
        .filter(|r| r.endpoint.ends_with("/role-assignments"))
        .collect();
    let refused: Vec<_> = calls.iter().filter(|r| r.status != Some(200)).collect();
    assert!(refused.is_empty(), "calls for another's keys: {refused:?}");
    for (org, people) in all.iter().zip(&members) {
        let made = calls.iter().filter(|r| r.org_id == org.id).count();
        assert_eq!(made, people.len(), "calls in {}: one per member", org.id);
    }
}

/// Every control of the pack, run over one session of several
/// organizations (as `-f queries/x.sql --all-orgs` runs it), finds in each
/// organization what it finds there alone: no join, grouping or count of
/// a control mixes two organizations' rows, though the same account is in
/// several of them.
#[tokio::test(flavor = "multi_thread")]
async fn every_control_over_several_organizations_finds_each_ones_own() {
    let emu = three_orgs(60).await;
    // An account of the first organization that is an outside account in
    // the other two, suspended in both of those and still in their groups:
    // joined on account_id alone, each of its two rows would count the
    // memberships and roles of both organizations.
    let all = emu.orgs();
    let shared = all[0]
        .users
        .iter()
        .map(|u| u.account_id.clone())
        .find(|id| {
            all[1..].iter().all(|org| {
                org.users
                    .iter()
                    .any(|u| &u.account_id == id && !u.groups.is_empty())
            })
        })
        .expect("an account in every organization, in groups in the others");
    for index in [1, 2] {
        let shared = shared.clone();
        emu.change_org(index, move |org| {
            for user in org.users.iter_mut().filter(|u| u.account_id == shared) {
                user.status = "suspended";
            }
        });
    }
    // One clock for every session: what is stale does not change between them.
    let configs: Vec<ClientConfig> = configs(&emu)
        .into_iter()
        .map(|mut config| {
            config.clock = Some(fixed_now());
            config
        })
        .collect();
    let (_, together) = together(&configs);
    let alone: Vec<_> = configs.iter().map(|c| session(c.clone())).collect();

    let controls = orgsql::cli::check::load(None).expect("the pack");
    let values = BTreeMap::new();
    let findings = |checked: Vec<orgsql::cli::check::Checked>| -> BTreeMap<String, Vec<String>> {
        checked
            .into_iter()
            .map(|c| {
                assert!(c.error.is_none(), "{}: {:?}", c.control.id, c.error);
                let found = c
                    .findings
                    .iter()
                    .map(|f| format!("{} | {} | {}", f.status, f.resource, f.reason))
                    .collect();
                (c.control.id.clone(), found)
            })
            .collect()
    };
    let mut each: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for ctx in &alone {
        for (id, found) in
            findings(orgsql::cli::check::run_controls(ctx, controls.clone(), &values).await)
        {
            each.entry(id).or_default().extend(found);
        }
    }
    let mut mixed = Vec::new();
    for (id, mut found) in
        findings(orgsql::cli::check::run_controls(&together, controls, &values).await)
    {
        let mut expected = each.remove(&id).unwrap_or_default();
        found.sort();
        expected.sort();
        if found != expected {
            mixed.push(format!(
                "{id}:\n  together: {found:#?}\n  alone:    {expected:#?}"
            ));
        }
    }
    assert!(mixed.is_empty(), "{}", mixed.join("\n"));
    // The suspended account: one finding in each organization it is
    // suspended in, each with that organization's own groups.
    let inactive = findings(
        orgsql::cli::check::run_controls(
            &together,
            orgsql::cli::check::load(None)
                .expect("the pack")
                .into_iter()
                .filter(|c| c.id == "inactive_users_with_access")
                .collect(),
            &BTreeMap::new(),
        )
        .await,
    );
    let email = all[1]
        .users
        .iter()
        .find(|u| u.account_id == shared)
        .map(|u| u.email.clone())
        .expect("the shared account");
    let of_shared: Vec<&String> = inactive["inactive_users_with_access"]
        .iter()
        .filter(|f| f.contains(&format!("| {email} |")))
        .collect();
    assert_eq!(of_shared.len(), 2, "{of_shared:?}");
}

/// A config file naming the three organizations, each key from another
/// kind of source: a variable, a file only the owner can read, a command.
fn config_file(emu: &Emulator, dir: &Path) -> (std::path::PathBuf, Vec<String>) {
    let json = emu.connection_json();
    let orgs = json["orgs"].as_array().expect("orgs");
    let key = |i: usize| orgs[i]["api_key"].as_str().expect("key").to_string();
    let id = |i: usize| orgs[i]["org_id"].as_str().expect("id").to_string();
    let key_file = dir.join("emea.key");
    std::fs::write(&key_file, format!("{}\n", key(1))).expect("key file");
    set_mode(&key_file, 0o600);
    let config = format!(
        "[connections.acme]\norg_id = \"{}\"\napi_key_env = \"ORGS_TEST_ACME_KEY\"\n\
         base_url = \"{base}\"\n\n\
         [connections.emea]\norg_id = \"{}\"\napi_key_file = \"emea.key\"\nbase_url = \"{base}\"\n\n\
         [connections.apac]\norg_id = \"{}\"\napi_key_command = \"printf %s {}\"\n\
         base_url = \"{base}\"\n",
        id(0),
        id(1),
        id(2),
        key(2),
        base = emu.base_url()
    );
    let path = dir.join("config.toml");
    std::fs::write(&path, config).expect("config");
    set_mode(&path, 0o600);
    (path, vec![key(0), key(1), key(2)])
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// The binary with the config file, nothing inherited that could point it
/// elsewhere.
fn orgsql(config: &Path, keys: &[String]) -> Command {
    let mut command = orgsql_alone();
    command
        .env("ORGSQL_CONFIG", config)
        .env("ORGS_TEST_ACME_KEY", &keys[0]);
    command
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn no_keys_in(what: &str, output: &Output, keys: &[String]) {
    for stream in [&output.stdout, &output.stderr] {
        let shown = text(stream);
        for key in keys {
            assert!(!shown.contains(key.as_str()), "a key in {what}:\n{shown}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn named_connections_from_a_config_file() {
    let emu = three_orgs(40).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let (config, keys) = config_file(&emu, dir.path());
    let ids: Vec<String> = emu.orgs().iter().map(|o| o.id.clone()).collect();

    let output = orgsql(&config, &keys)
        .args([
            "--all-orgs",
            "--format",
            "csv",
            "-c",
            "SELECT org_id, count(*) AS n FROM users GROUP BY org_id ORDER BY org_id",
        ])
        .output()
        .expect("orgsql runs");
    assert!(output.status.success(), "{}", text(&output.stderr));
    let mut expected: Vec<String> = ids.iter().map(|id| format!("{id},40")).collect();
    expected.sort();
    assert_eq!(
        text(&output.stdout).lines().skip(1).collect::<Vec<_>>(),
        expected
    );
    assert_eq!(text(&output.stderr), "", "no warning for private files");
    no_keys_in("--all-orgs", &output, &keys);

    // Two of them, by name.
    let output = orgsql(&config, &keys)
        .args(["--org", "apac", "--org", "emea", "--format", "csv"])
        .args(["-c", "SELECT DISTINCT org_id FROM users ORDER BY 1"])
        .output()
        .expect("orgsql runs");
    let mut two = vec![ids[1].clone(), ids[2].clone()];
    two.sort();
    assert_eq!(
        text(&output.stdout).lines().skip(1).collect::<Vec<_>>(),
        two
    );

    // A key file others can read is said; the query still runs.
    set_mode(&dir.path().join("emea.key"), 0o644);
    let output = orgsql(&config, &keys)
        .args(["--org", "emea", "-c", "SELECT count(*) FROM groups"])
        .output()
        .expect("orgsql runs");
    assert!(output.status.success());
    assert!(
        text(&output.stderr).contains("emea.key can be read by other users"),
        "{}",
        text(&output.stderr)
    );

    // A wrong key for one organization fails the query, naming it.
    std::fs::write(dir.path().join("emea.key"), "not-the-key\n").expect("key file");
    set_mode(&dir.path().join("emea.key"), 0o600);
    let output = orgsql(&config, &keys)
        .args(["--all-orgs", "-c", "SELECT count(*) FROM users"])
        .output()
        .expect("orgsql runs");
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(&format!("org emea ({})", ids[1])) && stderr.contains("HTTP 401"),
        "{stderr}"
    );
    no_keys_in("a wrong key", &output, &keys);
    assert!(!stderr.contains("not-the-key"), "{stderr}");

    // A connection that is not there lists those that are.
    let output = orgsql(&config, &keys)
        .args(["--org", "nope", "-c", "SELECT 1"])
        .output()
        .expect("orgsql runs");
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("no connection nope")
            && text(&output.stderr).contains("acme, apac, emea"),
        "{}",
        text(&output.stderr)
    );

    // The REPL's prompt says which organizations it reads.
    let mut repl = orgsql(&config, &keys);
    repl.args(["--org", "acme", "--org", "apac"])
        .env("HOME", dir.path())
        .env("XDG_DATA_HOME", dir.path());
    let options = rexpect::reader::Options {
        timeout_ms: Some(60_000),
        strip_ansi_escape_codes: true,
    };
    tokio::task::spawn_blocking(move || {
        let mut p = rexpect::session::spawn_with_options(repl, options).expect("a pty");
        p.exp_string("orgsql (acme, apac)> ").expect("the prompt");
        p.send_line("SELECT count(DISTINCT org_id) AS orgs FROM users;")
            .expect("send");
        p.exp_string("| 2    |").expect("two organizations");
        p.send_line("\\q").expect("send");
        p.exp_eof().expect("quits")
    })
    .await
    .expect("the REPL ran");

    // The key itself in the config file is refused, without repeating it.
    let leaked = dir.path().join("leaked.toml");
    std::fs::write(
        &leaked,
        format!(
            // A base URL on loopback: were the refusal to fail, nothing
            // would leave this machine.
            "[connections.acme]\norg_id = \"{}\"\napi_key = \"{}\"\nbase_url = \"{}\"\n",
            ids[0],
            keys[0],
            emu.base_url()
        ),
    )
    .expect("config");
    let output = orgsql(&leaked, &keys)
        .args(["--all-orgs", "-c", "SELECT 1"])
        .output()
        .expect("orgsql runs");
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("api_key in connection acme"),
        "{}",
        text(&output.stderr)
    );
    no_keys_in("a key in the config", &output, &keys);
}

/// `check --format json` as (org, control) -> resources that alarm.
fn alarms_by_org(output: &Output) -> BTreeMap<(String, String), Vec<String>> {
    let report: Value = serde_json::from_slice(&output.stdout).expect("a JSON report");
    let mut alarms = BTreeMap::new();
    for result in report["results"].as_array().expect("results") {
        let org = result["org_id"].as_str().unwrap_or_default().to_string();
        let id = result["id"].as_str().expect("id").to_string();
        alarms.insert((org, id), alarmed_resources(result));
    }
    alarms
}

#[tokio::test(flavor = "multi_thread")]
async fn export_snapshot_diff_and_check_across_organizations() {
    let emu = three_orgs(40).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let (config, keys) = config_file(&emu, dir.path());
    let ids: Vec<String> = emu.orgs().iter().map(|o| o.id.clone()).collect();
    let before = dir.path().join("before");
    let after = dir.path().join("after");
    let export = |out: &Path| {
        orgsql(&config, &keys)
            .args(["--all-orgs", "export", "--out"])
            .arg(out)
            .output()
            .expect("orgsql runs")
    };
    let output = export(&before);
    assert!(output.status.success(), "{}", text(&output.stderr));
    no_keys_in("export", &output, &keys);
    for id in &ids {
        assert!(
            before
                .join(format!("org_id={id}"))
                .join("manifest.json")
                .is_file()
        );
    }
    let top: Value =
        serde_json::from_slice(&std::fs::read(before.join("manifest.json")).expect("top manifest"))
            .expect("JSON");
    assert_eq!(top["orgs"].as_array().map(Vec::len), Some(3));

    // A newcomer in the second organization only.
    let newcomer = "712020:00000000-0000-4000-8000-0000000c0ffe";
    emu.change_org(1, |org| {
        let mut user = org.users[1].clone();
        user.account_id = newcomer.to_string();
        user.email = "newcomer@example.com".to_string();
        user.groups.clear();
        user.platform_roles.clear();
        user.product_access.clear();
        org.users.push(user);
    });
    let output = export(&after);
    assert!(output.status.success(), "{}", text(&output.stderr));

    // The snapshot holds what the API holds, per organization.
    let count = "SELECT org_id, count(*) FROM users GROUP BY org_id ORDER BY org_id";
    let offline = orgsql::snapshot::context(&after.as_path().into())
        .await
        .expect("snapshot");
    let (_, live) = together(&configs(&emu));
    assert_eq!(
        sql_rows(&offline, count).await,
        sql_rows(&live, count).await
    );

    // The diff names the one change, in its organization.
    let output = orgsql_alone()
        .args(["diff", "--format", "json"])
        .arg(&before)
        .arg(&after)
        .output()
        .expect("orgsql runs");
    assert!(output.status.success(), "{}", text(&output.stderr));
    let changes: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let changes = changes.as_array().expect("changes");
    // The newcomer, and the API's count of active users moving with them.
    let (stats, changes): (Vec<&Value>, Vec<&Value>) = changes
        .iter()
        .partition(|c| c["table_name"] == "org_user_stats");
    assert_eq!(stats.len(), 1, "{stats:?}");
    assert_eq!(stats[0]["org_id"], ids[1].as_str());
    assert_eq!(
        stats[0]["key"],
        serde_json::json!({ "kind": "account_status", "value": "active" })
    );
    let count = |side: &str| {
        stats[0][side]
            .as_str()
            .and_then(|n| n.parse::<i64>().ok())
            .expect("a count")
    };
    assert_eq!(count("new_value"), count("old_value") + 1);
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0]["org_id"], ids[1].as_str());
    assert_eq!(changes[0]["table_name"], "users");
    assert_eq!(changes[0]["change"], "added");
    assert_eq!(
        changes[0]["key"],
        serde_json::json!({ "account_id": newcomer })
    );
    assert_eq!(changes[0]["labels"]["email"], "newcomer@example.com");

    // check: per organization, the same as each alone, live and offline.
    let live = orgsql(&config, &keys)
        .args(["--all-orgs", "check", "--format", "json"])
        .output()
        .expect("orgsql runs");
    assert_eq!(live.status.code(), Some(1), "{}", text(&live.stderr));
    no_keys_in("check", &live, &keys);
    let together = alarms_by_org(&live);
    assert!(together.keys().all(|(org, _)| ids.contains(org)));
    // The organization with the newcomer, alone through the binary's
    // --org, finds what its part of --all-orgs found (that every control
    // does so for each organization is
    // every_control_over_several_organizations_finds_each_ones_own).
    let alone = orgsql(&config, &keys)
        .args(["--org", "emea", "check", "--format", "json"])
        .output()
        .expect("orgsql runs");
    let alone: Vec<(String, Vec<String>)> = alarms_by_org(&alone)
        .into_iter()
        .map(|((_, control), alarms)| (control, alarms))
        .collect();
    let of_org: Vec<(String, Vec<String>)> = together
        .iter()
        .filter(|((org, _), _)| *org == ids[1])
        .map(|((_, control), alarms)| (control.clone(), alarms.clone()))
        .collect();
    assert!(!of_org.is_empty());
    assert_eq!(of_org, alone);
    let offline = orgsql_alone()
        .arg("--snapshot")
        .arg(&after)
        .args(["check", "--format", "json"])
        .output()
        .expect("orgsql runs");
    assert_eq!(offline.status.code(), Some(1));
    assert_eq!(alarms_by_org(&offline), together);

    // Each organization's folder is verified; a file changed in one is
    // named with its folder, and no session reads past it.
    let verify = || {
        orgsql_alone()
            .args(["snapshot", "verify"])
            .arg(&after)
            .output()
            .expect("orgsql runs")
    };
    let intact = verify();
    assert!(
        text(&intact.stdout).contains("intact")
            && text(&intact.stdout).contains("of 3 organizations"),
        "{}",
        text(&intact.stdout)
    );
    assert_eq!(intact.status.code(), Some(0));
    let folder = format!("org_id={}", ids[2]);
    crate::common::flip_a_byte(&after.join(&folder).join("users.parquet"));
    let found = verify();
    assert_eq!(found.status.code(), Some(1));
    assert!(
        text(&found.stdout).contains(&format!(
            "users: {folder}/users.parquet has changed since the export"
        )),
        "{}",
        text(&found.stdout)
    );
    let read = orgsql_alone()
        .arg("--snapshot")
        .arg(&after)
        .args(["-c", "SELECT count(*) FROM groups"])
        .output()
        .expect("orgsql runs");
    assert!(!read.status.success());
    assert!(
        text(&read.stderr).contains(&format!("{folder}/users.parquet (table users) has changed")),
        "{}",
        text(&read.stderr)
    );
}

/// `watch --all-orgs` keeps a cursor per organization: an event appended to
/// one organization alerts once, under that organization's id, and the
/// others' events under theirs; nothing repeats on the next run.
#[tokio::test(flavor = "multi_thread")]
async fn watch_keeps_a_cursor_per_organization() {
    let emu = three_orgs(20).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let (config, keys) = config_file(&emu, dir.path());
    let ids: Vec<String> = emu.orgs().iter().map(|o| o.id.clone()).collect();
    let (state, alerts) = (dir.path().join("state"), dir.path().join("alerts.ndjson"));
    let watch = || {
        let output = orgsql(&config, &keys)
            .args(["--all-orgs", "watch", "--once", "--state"])
            .arg(&state)
            .arg("--output")
            .arg(&alerts)
            .output()
            .expect("orgsql runs");
        assert!(output.status.success(), "{}", text(&output.stderr));
        no_keys_in("watch", &output, &keys);
        text(&output.stdout)
    };
    assert_eq!(watch(), "", "a first run starts the watch");
    let in_emea = emu
        .append_event(1, "added_org_admin", None)
        .expect("appended");
    let in_apac = emu
        .append_event(2, "domain_removed", None)
        .expect("appended");
    assert_eq!(watch().lines().count(), 2);
    let delivered: Vec<(String, String, String)> = std::fs::read_to_string(&alerts)
        .expect("alerts")
        .lines()
        .map(|line| {
            let alert: Value = serde_json::from_str(line).expect("JSON");
            let field = |name: &str| alert[name].as_str().expect("text").to_string();
            (field("org_id"), field("rule"), field("key"))
        })
        .collect();
    let mut expected = vec![
        (ids[1].clone(), "org_admin_changed".to_string(), in_emea.id),
        (ids[2].clone(), "domain_changed".to_string(), in_apac.id),
    ];
    let mut got = delivered;
    got.sort();
    expected.sort();
    assert_eq!(got, expected);
    assert_eq!(watch(), "", "nothing new");
}
