//! `orgsql check` through the real binary: exit codes for cron and CI, the
//! JUnit report, users' own controls, and the pack on the demo org.

use std::process::Output;

use crate::common::*;
use orgsql::emulator::{Emulator, Faults};

fn check(emu: &Emulator, args: &[&str]) -> Output {
    orgsql_on(emu)
        .arg("check")
        .args(args)
        .output()
        .expect("orgsql runs")
}

/// `orgsql --demo check ARGS`: the demo's clock stands still
/// (`DEMO_NOW`), so what is stale is the same whatever day the test runs.
fn check_demo(args: &[&str]) -> Output {
    orgsql_alone()
        .args(["--demo", "check"])
        .args(args)
        .output()
        .expect("orgsql runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const HEADER: &str =
    "-- title: {title}\n-- severity: high\n-- rationale: A test.\n-- remediation: None.\n";

fn control(dir: &std::path::Path, id: &str, title: &str, sql: &str) {
    let text = format!("-- id: {id}\n{}{sql}\n", HEADER.replace("{title}", title));
    std::fs::write(dir.join(format!("{id}.sql")), text).expect("write control");
}

#[tokio::test(flavor = "multi_thread")]
async fn exit_codes_reports_and_own_controls() {
    let emu = emulator(spec(100, 10), Faults::default(), None).await;
    let org = emu.org();
    let dir = tempfile::tempdir().expect("temp dir");
    let suspended: Vec<&str> = org
        .users
        .iter()
        .filter(|u| u.status == "suspended")
        .map(|u| u.email.as_str())
        .collect();
    assert!(!suspended.is_empty());
    control(
        dir.path(),
        "test_suspended",
        "No suspended users",
        "SELECT email AS resource, 'alarm' AS status, 'suspended' AS reason \
         FROM users WHERE status = 'suspended' ORDER BY resource",
    );
    control(
        dir.path(),
        "test_one_org",
        "Exactly one organization",
        "SELECT name AS resource, 'ok' AS status, 'the org' AS reason FROM orgs",
    );
    let dir_arg = dir.path().display().to_string();

    // Passing only: exit 0.
    let output = check(&emu, &["--dir", &dir_arg, "--controls", "test_one_org"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("1 controls: 1 passed, 0 alarmed"));

    // An alarm: exit 1, the resources named.
    let output = check(
        &emu,
        &[
            "--dir",
            &dir_arg,
            "--controls",
            "test_one_org,test_suspended",
        ],
    );
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    let report = text(&output.stdout);
    assert!(
        report.contains("ALARM  high      test_suspended"),
        "{report}"
    );
    for email in &suspended {
        assert!(
            report.contains(&format!("- {email}: suspended")),
            "{report}"
        );
    }

    // JUnit: well-formed XML, one test case per control, the alarm a failure.
    let output = check(
        &emu,
        &[
            "--dir",
            &dir_arg,
            "--controls",
            "test_one_org,test_suspended",
            "--format",
            "junit",
        ],
    );
    assert_eq!(output.status.code(), Some(1));
    let xml = text(&output.stdout);
    let doc = roxmltree::Document::parse(&xml).expect("JUnit is XML");
    let cases: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    assert_eq!(cases.len(), 2);
    let failed: Vec<&str> = cases
        .iter()
        .filter(|c| c.children().any(|n| n.has_tag_name("failure")))
        .filter_map(|c| c.attribute("name"))
        .collect();
    assert_eq!(failed, vec!["test_suspended: No suspended users"]);

    // A control that cannot run: exit 2, the others still reported.
    control(
        dir.path(),
        "test_broken",
        "Broken",
        "SELECT no_such_column FROM users",
    );
    let output = check(
        &emu,
        &["--dir", &dir_arg, "--controls", "test_one_org,test_broken"],
    );
    assert_eq!(output.status.code(), Some(2));
    let report = text(&output.stdout);
    assert!(report.contains("ERROR"), "{report}");
    assert!(report.contains("PASS   high      test_one_org"), "{report}");

    // An unknown control id is an error too.
    let output = check(&emu, &["--controls", "no_such_control"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("no control no_such_control"));
}

/// The pack on the demo organization (seed 42, 250 users, its fixed clock):
/// exactly the planted findings alarm, naming the resources the generator
/// put there.
#[tokio::test(flavor = "multi_thread")]
async fn the_pack_on_the_demo_org_alarms_exactly_on_its_findings() {
    // The organization the demo serves, to compute what must alarm.
    let emu = emulator(
        orgsql::emulator::OrgSpec::default(),
        Faults::default(),
        None,
    )
    .await;
    let org = emu.org();
    let output = check_demo(&["--format", "json"]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON report");
    let controls = report["results"].as_array().expect("one entry per control");
    assert!(controls.len() >= 15, "{} controls", controls.len());
    let outcome = |c: &serde_json::Value| c["outcome"].as_str().unwrap_or_default().to_string();
    let id = |c: &serde_json::Value| c["id"].as_str().unwrap_or_default().to_string();
    let errors: Vec<String> = controls
        .iter()
        .filter(|c| outcome(c) == "error")
        .map(id)
        .collect();
    assert!(errors.is_empty(), "controls that cannot run: {errors:?}");
    let passing: Vec<String> = controls
        .iter()
        .filter(|c| outcome(c) == "pass")
        .map(id)
        .collect();
    // The demo org has 7 site admins, under the control's threshold of 10;
    // its seats agree with users/stats (seats.rs checks both against the model).
    assert_eq!(passing, vec!["seats_match_user_stats", "site_admin_count"]);
    let alarms = |control: &str| -> Vec<String> {
        let entry = controls.iter().find(|c| id(c) == control).expect(control);
        alarmed_resources(entry)
    };
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };

    // Facts the generator plants (crates/admin-api/src/emulator/org.rs).
    assert_eq!(alarms("unverified_domains"), vec!["acme-eu.com"]);
    assert_eq!(
        alarms("groups_with_roles_no_members"),
        vec!["legacy-admins"]
    );
    let not_online = org
        .workspaces
        .iter()
        .filter(|w| w.status != "online")
        .map(|w| format!("{} ({})", w.name, w.type_key))
        .collect();
    assert_eq!(alarms("workspaces_not_online"), sorted(not_online));
    let disabled = org
        .policies
        .iter()
        .filter(|p| p.status == "disabled")
        .map(|p| format!("{} ({})", p.name, p.kind))
        .collect();
    assert_eq!(alarms("disabled_policies"), sorted(disabled));
    let org_admins = org
        .users
        .iter()
        .filter(|u| {
            !org.user_roles(u)
                .iter()
                .all(|r| r.role != "atlassian/org-admin")
        })
        .map(|u| u.email.clone())
        .collect::<Vec<_>>();
    assert!(org_admins.len() > 3);
    assert_eq!(alarms("org_admin_count"), sorted(org_admins));
    let without_mfa = org
        .users
        .iter()
        .filter(|u| u.status == "active" && u.mfa_enabled != Some(true))
        .map(|u| u.email.clone())
        .collect();
    assert_eq!(alarms("mfa_active_users"), sorted(without_mfa));

    // The credentials the generator plants: tokens that are valid (neither
    // blocked nor expired) and stale, immortal or orphaned; keys unscoped,
    // immortal or made by someone who is not an org admin.
    let now = orgsql::emulator::DEMO_NOW;
    let valid: Vec<_> = org
        .api_tokens
        .iter()
        .filter(|t| !t.blocked && t.expires_at.is_none_or(|e| e > now))
        .collect();
    let ids = |tokens: Vec<&&orgsql::emulator::ApiToken>| {
        sorted(tokens.iter().map(|t| t.id.clone()).collect())
    };
    let unused = valid
        .iter()
        .filter(|t| match t.last_active {
            Some(last) => last < now - chrono::Duration::days(90),
            None => t.created_at < now - chrono::Duration::days(30),
        })
        .collect();
    assert_eq!(alarms("api_tokens_unused"), ids(unused));
    let long_lived = valid
        .iter()
        .filter(|t| {
            t.expires_at
                .is_none_or(|e| e > now + chrono::Duration::days(365))
        })
        .collect();
    assert_eq!(alarms("api_tokens_long_lived"), ids(long_lived));
    let orphaned = valid
        .iter()
        .filter(|t| org.users[t.owner].status != "active")
        .collect();
    assert_eq!(alarms("api_tokens_inactive_owner"), ids(orphaned));
    let live_keys: Vec<_> = org
        .api_keys
        .iter()
        .filter(|k| k.revoked.is_none())
        .collect();
    let key_ids = |keys: Vec<&&orgsql::emulator::OrgApiKey>| {
        sorted(keys.iter().map(|k| k.id.clone()).collect())
    };
    let immortal = live_keys
        .iter()
        .filter(|k| k.expires_at.is_none())
        .collect();
    assert_eq!(alarms("api_keys_without_expiry"), key_ids(immortal));
    let unscoped = live_keys
        .iter()
        .filter(|k| k.scopes.is_empty() && k.expires_at.is_none_or(|e| e > now))
        .collect();
    assert_eq!(alarms("api_keys_unscoped"), key_ids(unscoped));
    let not_by_admin = live_keys
        .iter()
        .filter(|k| {
            let creator = &org.users[k.created_by];
            creator.status != "active"
                || org
                    .user_roles(creator)
                    .iter()
                    .all(|r| r.role != "atlassian/org-admin")
        })
        .collect();
    assert_eq!(alarms("api_keys_creator_not_admin"), key_ids(not_by_admin));
    // Tokens acting from addresses no person used (the stray addresses of
    // the generator, 198.18.0.0/15, in the last 90 days).
    let people: std::collections::HashSet<&str> = org
        .events
        .iter()
        .filter(|e| e.time >= now - chrono::Duration::days(90) && e.auth.is_none())
        .filter_map(|e| e.location.as_ref().map(|l| l.ip.as_str()))
        .collect();
    let listed: std::collections::HashSet<&str> =
        org.api_tokens.iter().map(|t| t.id.as_str()).collect();
    let mut leaked: Vec<String> = org
        .events
        .iter()
        .filter(|e| e.time >= now - chrono::Duration::days(90))
        .filter_map(|e| {
            let (_, token) = e.auth.as_ref()?;
            let ip = e.location.as_ref()?.ip.as_str();
            (listed.contains(token.as_str()) && !people.contains(ip)).then(|| token.clone())
        })
        .collect();
    leaked.sort();
    leaked.dedup();
    assert!(
        !leaked.is_empty(),
        "the demo plants a token used from elsewhere"
    );
    assert_eq!(alarms("api_tokens_unfamiliar_addresses"), leaked);
}

fn json_report(output: &Output) -> Vec<serde_json::Value> {
    serde_json::from_slice::<serde_json::Value>(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", text(&output.stderr)))["results"]
        .as_array()
        .expect("controls")
        .clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn frameworks_parameters_and_the_severity_gate() {
    let emu = emulator(
        orgsql::emulator::OrgSpec::default(),
        Faults::default(),
        None,
    )
    .await;
    let org = emu.org();
    // Every built-in control maps to every framework.
    let pack = orgsql::cli::check::load(None).expect("the pack");
    for control in &pack {
        for (framework, _) in orgsql::cli::check::FRAMEWORKS {
            assert!(
                control.frameworks.iter().any(|r| r.framework == framework),
                "{} has no {framework} mapping",
                control.id
            );
        }
    }
    // A framework selects exactly its controls (`--list` shows the
    // selection a run would run, without running the whole pack).
    let output = check_demo(&["--framework", "cis", "--list"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let ran: Vec<String> = text(&output.stdout)
        .lines()
        .filter(|line| !line.starts_with(' '))
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_string)
        .collect();
    let mapped: Vec<String> = pack
        .iter()
        .filter(|c| c.frameworks.iter().any(|r| r.framework == "cis"))
        .map(|c| c.id.clone())
        .collect();
    assert_eq!(ran, mapped);

    // A parameter changes what alarms, as the organization's data says.
    let now = orgsql::emulator::DEMO_NOW;
    let inactive = |days: i64| -> Vec<String> {
        let cutoff = now - chrono::Duration::days(days);
        let mut found: Vec<String> = org
            .users
            .iter()
            .filter(|u| u.claim_status == "managed" && u.account_status == "active")
            .filter(|u| u.status == "active" && !u.product_access.is_empty())
            .filter(
                |u| match u.product_access.iter().filter_map(|p| p.last_active).max() {
                    Some(last) => last < cutoff,
                    None => u.added_to_org < cutoff,
                },
            )
            // Last seen also counts their actions in the audit log and the
            // use of their API tokens.
            .filter(|u| {
                !org.events
                    .iter()
                    .any(|e| e.actor_id == u.account_id && e.time >= cutoff)
            })
            .filter(|u| {
                !org.api_tokens.iter().any(|t| {
                    org.users[t.owner].account_id == u.account_id
                        && t.last_active.is_some_and(|l| l >= cutoff)
                })
            })
            .map(|u| u.email.clone())
            .collect();
        found.sort();
        found
    };
    let control = "inactive_managed_accounts_with_access";
    for days in [30, 90, 150] {
        let param = format!("inactive_days={days}");
        let output = check_demo(&["--controls", control, "--param", &param, "--format", "json"]);
        let report = json_report(&output);
        assert_eq!(alarmed_resources(&report[0]), inactive(days), "{param}");
        assert_eq!(report[0]["parameters"][0]["value"], days.to_string());
    }
    assert_ne!(
        inactive(30),
        inactive(150),
        "the threshold matters on the demo org"
    );

    // Bad parameters: exit 2, saying what is wrong.
    for (param, says) in [
        ("inactive_days=soon", "is an integer"),
        ("nosuch=1", "no selected control takes it"),
        ("inactive_days", "NAME=VALUE"),
    ] {
        let output = check_demo(&["--controls", control, "--param", param]);
        assert_eq!(output.status.code(), Some(2), "{param}");
        assert!(
            text(&output.stderr).contains(says),
            "{param}: {}",
            text(&output.stderr)
        );
    }

    // The gate: medium alarms fail the run by default, not under --fail-on high.
    let medium = "inactive_users_with_access";
    assert_eq!(check_demo(&["--controls", medium]).status.code(), Some(1));
    let gated = check_demo(&["--controls", medium, "--fail-on", "high"]);
    assert_eq!(gated.status.code(), Some(0));
    assert!(
        text(&gated.stdout).contains("ALARM"),
        "the report still lists it"
    );
    let strict = check_demo(&["--controls", medium, "--fail-on", "medium"]);
    assert_eq!(strict.status.code(), Some(1));
}

/// Since last time: a snapshot, then the organization changes (one leaver
/// is reactivated and cleared, one active member is suspended), then
/// `--baseline` marks the new alarm new, the others open, the fixed one fixed.
#[tokio::test(flavor = "multi_thread")]
async fn a_baseline_tells_new_open_and_fixed_findings() {
    let emu = emulator(spec(150, 50), Faults::default(), None).await;
    let org = emu.org();
    let dir = tempfile::tempdir().expect("temp dir");
    let before = dir.path().join("before");
    let export = orgsql_on(&emu)
        .args([
            "export",
            "--out",
            &before.display().to_string(),
            "--tables",
            "users,group_members,user_role_assignments",
        ])
        .output()
        .expect("orgsql runs");
    assert!(export.status.success(), "{}", text(&export.stderr));
    let gone = |u: &orgsql::emulator::User| {
        (u.status == "suspended" || u.status == "deactivated") && !u.groups.is_empty()
    };
    let fixed = org.users.iter().position(gone).expect("a leaver in groups");
    let leaver = org
        .users
        .iter()
        .position(|u| u.status == "active" && !u.groups.is_empty() && u.platform_roles.is_empty())
        .expect("an active member");
    let (fixed_email, new_email) = (
        org.users[fixed].email.clone(),
        org.users[leaver].email.clone(),
    );
    emu.change(move |org| {
        org.users[fixed].status = "active";
        org.users[fixed].membership_status = "active";
        org.users[leaver].status = "suspended";
        org.users[leaver].membership_status = "suspended";
    });
    let control = "inactive_users_with_access";
    let output = check(
        &emu,
        &[
            "--controls",
            control,
            "--baseline",
            &before.display().to_string(),
            "--format",
            "json",
        ],
    );
    let report = json_report(&output);
    let findings = report[0]["findings"].as_array().expect("findings");
    for finding in findings.iter().filter(|f| f["status"] == "alarm") {
        let expected = if finding["resource"] == new_email.as_str() {
            "new"
        } else {
            "open"
        };
        assert_eq!(finding["since"], expected, "{finding}");
    }
    assert!(findings.iter().any(|f| f["resource"] == new_email.as_str()));
    assert_eq!(report[0]["resolved"], serde_json::json!([fixed_email]));

    // The same against a JSON report of before: the same classification.
    let earlier = dir.path().join("before.json");
    let offline = orgsql_alone()
        .args([
            "--snapshot",
            &before.display().to_string(),
            "check",
            "--controls",
            control,
            "--format",
            "json",
            "--output",
            &earlier.display().to_string(),
        ])
        .output()
        .expect("orgsql runs");
    assert_eq!(offline.status.code(), Some(1), "{}", text(&offline.stderr));
    let again = json_report(&check(
        &emu,
        &[
            "--controls",
            control,
            "--baseline",
            &earlier.display().to_string(),
            "--format",
            "json",
        ],
    ));
    assert_eq!(again[0]["findings"], report[0]["findings"]);
    assert_eq!(again[0]["resolved"], report[0]["resolved"]);

    // The evidence report: every control, new and fixed, nothing fetched.
    let html_path = dir.path().join("report.html");
    let html = check(
        &emu,
        &[
            "--baseline",
            &earlier.display().to_string(),
            "--format",
            "html",
            "--output",
            &html_path.display().to_string(),
        ],
    );
    assert_eq!(html.status.code(), Some(1), "{}", text(&html.stderr));
    let page = std::fs::read_to_string(&html_path).expect("the report");
    let options = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..roxmltree::ParsingOptions::default()
    };
    let doc = roxmltree::Document::parse_with_options(&page, options).expect("well-formed XHTML");
    let sections: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("section"))
        .filter_map(|n| n.attribute("id"))
        .collect();
    let pack = orgsql::cli::check::load(None).expect("the pack");
    assert_eq!(sections.len(), pack.len());
    for control in &pack {
        assert!(sections.contains(&control.id.as_str()), "{}", control.id);
    }
    for node in doc.descendants() {
        let name = node.tag_name().name();
        assert!(
            !matches!(
                name,
                "script" | "link" | "img" | "iframe" | "object" | "embed"
            ),
            "a {name} element"
        );
        for attribute in ["src", "href"] {
            assert!(
                node.attribute(attribute).is_none(),
                "{name} has {attribute}"
            );
        }
    }
    assert!(page.contains(&new_email) && page.contains("Fixed since the baseline"));
    assert!(page.contains(&org.id), "names the organization");
}

/// The sha256 of some bytes, as lowercase hex, computed here.
fn sha256_hex(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Every format carries the envelope: the organization (id and name), the
/// source, the operator, orgsql's version, the parameters, `--fail-on`, the
/// roster's name and sha256, the framework and the command line; a report
/// written to a file has its sha256 said; the key is never in any of it.
#[tokio::test(flavor = "multi_thread")]
async fn every_report_format_carries_the_envelope() {
    let emu = emulator(spec(60, 10), Faults::default(), None).await;
    let org = emu.org();
    let key = emu.connection_json()["api_key"]
        .as_str()
        .expect("a key")
        .to_string();
    let dir = tempfile::tempdir().expect("temp dir");
    let roster = dir.path().join("roster.csv");
    let roster_bytes =
        b"email,name,manager_email,department,employment_status,end_date\nx@example.com,X,,IT,active,\n";
    std::fs::write(&roster, roster_bytes).expect("roster");
    let roster_sha = sha256_hex(roster_bytes);
    let roster_arg = roster.display().to_string();
    let run = |format: &str, out: &std::path::Path| {
        orgsql_on(&emu)
            .env("USER", "auditor")
            .args([
                "--roster",
                &roster_arg,
                "check",
                "--controls",
                "org_admin_count",
            ])
            .args(["--framework", "soc2", "--param", "max_org_admins=7"])
            .args(["--fail-on", "high", "--format", format, "--output"])
            .arg(out)
            .output()
            .expect("orgsql runs")
    };
    let version = env!("CARGO_PKG_VERSION");
    for (format, file) in [
        ("json", "r.json"),
        ("junit", "r.xml"),
        ("markdown", "r.md"),
        ("html", "r.html"),
        ("table", "r.txt"),
    ] {
        let path = dir.path().join(file);
        let output = run(format, &path);
        assert!(
            matches!(output.status.code(), Some(0 | 1)),
            "{format}: {}",
            text(&output.stderr)
        );
        let bytes = std::fs::read(&path).expect("the report");
        let report = text(&bytes);
        // Its digest, said where a script can take it.
        let said = format!("sha256 {}  {}", sha256_hex(&bytes), path.display());
        assert!(
            text(&output.stderr).contains(&said),
            "{format}: {}",
            text(&output.stderr)
        );
        for everything in [&report, &text(&output.stdout), &text(&output.stderr)] {
            assert!(!everything.contains(&key), "{format}: the key is shown");
        }
        if format == "json" {
            let json: serde_json::Value = serde_json::from_str(&report).expect("JSON");
            let envelope = &json["envelope"];
            assert_eq!(envelope["command"], "orgsql check");
            assert_eq!(envelope["organizations"][0]["id"], org.id.as_str());
            assert_eq!(envelope["organizations"][0]["name"], org.name.as_str());
            assert_eq!(
                envelope["source"]["api_url"],
                format!("{}/", emu.base_url())
            );
            // The credential is named by where it came from; the API does
            // not tell which key it is, and the report does not pretend to.
            let credential = envelope["source"]["credential"]
                .as_str()
                .unwrap_or_default();
            assert!(
                credential.contains("ATLASSIAN_API_KEY")
                    && credential.contains("does not say which key"),
                "{credential}"
            );
            assert_eq!(envelope["parameters"]["max_org_admins"], "7");
            assert_eq!(envelope["fail_on"], "high");
            assert_eq!(envelope["framework"], "soc2");
            assert_eq!(envelope["roster"]["file"], roster_arg.as_str());
            assert_eq!(envelope["roster"]["sha256"], roster_sha.as_str());
            assert_eq!(envelope["orgsql_version"], version);
            assert!(
                envelope["orgsql_commit"]
                    .as_str()
                    .is_some_and(|c| !c.is_empty())
            );
            let operator = envelope["operator"].as_str().expect("operator");
            assert!(operator.starts_with("auditor@"), "{operator}");
            // Live data is as of the run: between its start and end.
            let instant = |field: &str| {
                chrono::DateTime::parse_from_rfc3339(envelope[field].as_str().expect(field))
                    .unwrap_or_else(|e| panic!("{field}: {e}"))
            };
            assert!(instant("run_started") <= instant("data_as_of"));
            assert!(instant("data_as_of") <= instant("run_ended"));
            let line: Vec<&str> = envelope["command_line"]
                .as_array()
                .expect("command line")
                .iter()
                .filter_map(|a| a.as_str())
                .collect();
            assert!(
                line.windows(2).any(|w| w == ["--fail-on", "high"]),
                "{line:?}"
            );
            assert_eq!(json["results"][0]["id"], "org_admin_count");
            continue;
        }
        if format == "junit" {
            let doc = roxmltree::Document::parse(&report).expect("XML");
            let suite = doc
                .descendants()
                .find(|n| n.has_tag_name("testsuite"))
                .expect("a test suite");
            let property = |name: &str| -> String {
                suite
                    .children()
                    .filter(|n| n.has_tag_name("properties"))
                    .flat_map(|n| n.children())
                    .find(|p| p.attribute("name") == Some(name))
                    .and_then(|p| p.attribute("value"))
                    .unwrap_or_else(|| panic!("no property {name}: {report}"))
                    .to_string()
            };
            assert!(property("organization").contains(&org.id));
            assert!(property("roster").contains(&roster_sha));
            assert_eq!(property("fail_on"), "high");
            assert_eq!(property("framework"), "soc2");
            assert!(property("operator").starts_with("auditor@"));
        }
        for expected in [
            org.id.as_str(),
            org.name.as_str(),
            roster_sha.as_str(),
            "max_org_admins=7",
            "auditor@",
            version,
            "--fail-on high",
            "soc2",
        ] {
            assert!(
                report.contains(expected),
                "{format} lacks {expected}: {report}"
            );
        }
    }
}

/// `--api-key-file`'s value is a path, but the command line a report shows
/// hides the value of any flag naming a key.
#[test]
fn the_command_line_in_a_report_hides_a_key_flags_value() {
    let output = orgsql_alone()
        .args(["--demo", "--api-key-file", "/no/such/secret-place", "check"])
        .args(["--controls", "org_admin_count", "--format", "json"])
        .output()
        .expect("orgsql runs");
    let json: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", text(&output.stderr)));
    let line = json["envelope"]["command_line"].to_string();
    assert!(!line.contains("secret-place"), "{line}");
    assert!(line.contains(r#""--api-key-file","[redacted]""#), "{line}");
    assert_eq!(json["envelope"]["data_as_of"], "2026-11-30T12:00:00Z");
}

/// A check on a snapshot names it in its envelope by its location and the
/// sha256 of its manifest.json, the bytes that vouch for every file.
#[test]
fn a_snapshot_source_is_named_by_its_manifests_digest() {
    let dir = tempfile::tempdir().expect("temp dir");
    let snap = dir.path().join("snap");
    let exported = orgsql_alone()
        .args(["--demo", "export", "--tables", "users,orgs", "--out"])
        .arg(&snap)
        .output()
        .expect("orgsql runs");
    assert!(exported.status.success(), "{}", text(&exported.stderr));
    let output = orgsql_alone()
        .arg("--snapshot")
        .arg(&snap)
        .args(["check", "--controls", "org_admin_count", "--format", "json"])
        .output()
        .expect("orgsql runs");
    let json: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", text(&output.stderr)));
    let source = &json["envelope"]["source"];
    let manifest = std::fs::read(snap.join("manifest.json")).expect("manifest");
    assert_eq!(source["manifest_sha256"], sha256_hex(&manifest).as_str());
    assert_eq!(source["snapshot"], snap.display().to_string().as_str());
    assert_eq!(source["api_url"], serde_json::Value::Null);
}

/// `--baseline` reads a JSON report in both shapes: the enveloped object,
/// and the bare list of results of orgsql before the envelope.
#[test]
fn a_baseline_reads_the_old_and_the_new_json_report() {
    let dir = tempfile::tempdir().expect("temp dir");
    let new = dir.path().join("new.json");
    let first = check_demo(
        &["--controls", "org_admin_count", "--output"]
            .into_iter()
            .chain([new.to_str().expect("utf-8")])
            .collect::<Vec<_>>(),
    );
    assert_eq!(first.status.code(), Some(1), "{}", text(&first.stderr));
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&new).expect("report")).expect("JSON");
    let old = dir.path().join("old.json");
    std::fs::write(&old, report["results"].to_string()).expect("old shape");
    for baseline in [&new, &old] {
        let output = check_demo(&[
            "--controls",
            "org_admin_count",
            "--baseline",
            baseline.to_str().expect("utf-8"),
            "--format",
            "json",
        ]);
        let again = json_report(&output);
        // The same demo, the same alarms: each still open, none new, none fixed.
        let alarms: Vec<&serde_json::Value> = again[0]["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .filter(|f| f["status"] == "alarm")
            .collect();
        assert!(!alarms.is_empty());
        for alarm in alarms {
            assert_eq!(alarm["since"], "open", "{}: {alarm}", baseline.display());
        }
        assert_eq!(again[0]["resolved"], serde_json::json!([]));
    }
    // Neither shape: said, with what to give instead.
    let wrong = dir.path().join("wrong.json");
    std::fs::write(&wrong, r#"{"results": 3}"#).expect("wrong");
    let output = check_demo(&["--baseline", wrong.to_str().expect("utf-8")]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("not a `check --format json` report"),
        "{stderr}"
    );
    assert!(stderr.contains("snapshot folder"), "{stderr}");
}

/// Each control's population in every report ("54 of 225 active users"),
/// the rows judged fine (`ok`, `info`) beside the alarms, and `--framework`
/// reporting by that framework's criteria alone. The numbers are the demo
/// organization's, read from the generator, not from orgsql.
#[tokio::test(flavor = "multi_thread")]
async fn reports_count_each_population_and_show_what_passed() {
    let emu = emulator(
        orgsql::emulator::OrgSpec::default(),
        Faults::default(),
        None,
    )
    .await;
    let org = emu.org();
    let active = org.users.iter().filter(|u| u.status == "active").count();
    let without_mfa = org
        .users
        .iter()
        .filter(|u| u.status == "active" && u.mfa_enabled != Some(true))
        .count();
    let site_admins: Vec<&str> = org
        .users
        .iter()
        .filter(|u| {
            org.user_roles(u)
                .iter()
                .any(|r| r.role == "atlassian/site-admin")
        })
        .map(|u| u.email.as_str())
        .collect();
    assert_eq!((active, site_admins.len()), (225, 7), "the issue's numbers");
    let mfa = format!("{without_mfa} of {active} active users");

    let pack = orgsql::cli::check::load(None).expect("the pack");
    let uncounted: Vec<&str> = pack
        .iter()
        .filter(|c| c.population.is_none())
        .map(|c| c.id.as_str())
        .collect();
    assert!(
        uncounted.is_empty(),
        "built-in controls without a population: {uncounted:?}"
    );
    let json = check_demo(&["--format", "json"]);
    let results = json_report(&json);
    for result in &results {
        let id = result["id"].as_str().unwrap_or_default();
        if result["outcome"] != "skipped" {
            assert!(
                result["population"]["count"].is_u64() && result["population"]["of"].is_string(),
                "{id} counts its population: {result}"
            );
        }
    }
    let population = |id: &str| {
        let result = results.iter().find(|r| r["id"] == id).expect(id);
        result["population"].clone()
    };
    assert_eq!(population("mfa_active_users")["count"], active);
    assert_eq!(population("site_admin_count")["count"], site_admins.len());

    // The other formats, on the two controls they are asserted on.
    let two = ["--controls", "mfa_active_users,site_admin_count"];
    let table = text(&check_demo(&two).stdout);
    assert!(table.contains(&format!("({mfa})")), "{table}");
    assert!(table.contains("(0 of 7 site-admins; 7 ok)"), "{table}");
    let markdown = text(&check_demo(&[&two[..], &["--format", "markdown"]].concat()).stdout);
    assert!(markdown.contains(&mfa), "{markdown}");
    assert!(
        markdown.contains("<details><summary>site_admin_count: 7 ok</summary>"),
        "{markdown}"
    );
    let junit = text(&check_demo(&[&two[..], &["--format", "junit"]].concat()).stdout);
    roxmltree::Document::parse(&junit).expect("JUnit is XML");
    assert!(
        junit.contains(&format!(
            r#"<property name="population" value="{active} active users"/>"#
        )),
        "{junit}"
    );

    let html = text(&check_demo(&["--format", "html"]).stdout);
    let xhtml = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..roxmltree::ParsingOptions::default()
    };
    roxmltree::Document::parse_with_options(&html, xhtml).expect("well-formed XHTML");
    assert!(html.contains(&mfa), "mfa_active_users says of how many");
    // Every control that ran says its population in its section.
    for result in &results {
        let Some(count) = result["population"]["count"].as_u64() else {
            continue;
        };
        let id = result["id"].as_str().unwrap_or_default();
        let alarms = result["findings"]
            .as_array()
            .map_or(0, |f| f.iter().filter(|f| f["status"] == "alarm").count());
        let of = result["population"]["of"].as_str().unwrap_or_default();
        let section = html
            .split(&format!("<section id=\"{id}\">"))
            .nth(1)
            .and_then(|s| s.split("</section>").next())
            .unwrap_or_default();
        assert!(
            section.contains(&format!("<b>Counted:</b> {alarms} of {count} {of}")),
            "{id}: {section}"
        );
    }
    // site_admin_count passes, and shows its 7 admins, folded.
    let section = html
        .split("<section id=\"site_admin_count\">")
        .nth(1)
        .and_then(|s| s.split("</section>").next())
        .expect("a section for site_admin_count");
    assert!(
        section.contains("<details><summary>7 ok</summary>"),
        "{section}"
    );
    for email in &site_admins {
        assert!(
            section.contains(&format!("<tr><td>ok</td><td>{email}</td>")),
            "{email} in {section}"
        );
    }
    // An info row: the role grant the audit log does not name.
    let grants = html
        .split("<section id=\"recent_admin_grants\">")
        .nth(1)
        .and_then(|s| s.split("</section>").next())
        .expect("a section for recent_admin_grants");
    assert!(
        grants.contains("<tr><td>info</td>")
            && grants.contains("Role granted (the log does not name it)"),
        "{grants}"
    );

    // --framework soc2: grouped by SOC 2 criteria, naming no other framework.
    let soc2 = text(&check_demo(&["--framework", "soc2", "--format", "html"]).stdout);
    roxmltree::Document::parse_with_options(&soc2, xhtml).expect("well-formed");
    for other in [
        "ISO/IEC",
        "iso27001",
        "NIST",
        "nist800-53",
        "CIS Controls",
        "cis:",
    ] {
        assert!(!soc2.contains(other), "{other} named in a SOC 2 report");
    }
    assert!(soc2.contains("<h2>By SOC 2 Trust Services Criteria (2017) criterion</h2>"));
    for criterion in ["CC6.1", "CC6.2", "CC6.3", "CC7.2"] {
        assert!(
            soc2.contains(&format!("<h3>{criterion}</h3>")),
            "{criterion}"
        );
    }
}

/// A user's control may count its population; a count that is not one
/// number fails the control (exit 2) rather than report "of nothing".
#[tokio::test(flavor = "multi_thread")]
async fn a_population_must_be_one_count() {
    let emu = emulator(
        orgsql::emulator::OrgSpec::default(),
        Faults::default(),
        None,
    )
    .await;
    let dir = tempfile::tempdir().expect("temp dir");
    let counted = |sql: &str| {
        format!(
            "-- population: groups\n-- population-sql: {sql}\n\
             SELECT name AS resource, 'ok' AS status, 'fine' AS reason FROM groups"
        )
    };
    control(
        dir.path(),
        "groups_counted",
        "Counted",
        &counted("SELECT count(*) FROM groups"),
    );
    let dir_arg = dir.path().display().to_string();
    let output = check(
        &emu,
        &[
            "--dir",
            &dir_arg,
            "--controls",
            "groups_counted",
            "--format",
            "json",
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let result = &json_report(&output)[0];
    assert_eq!(result["population"]["count"], emu.org().groups.len());

    control(
        dir.path(),
        "groups_counted",
        "Counted",
        &counted("SELECT name FROM groups"),
    );
    let output = check(
        &emu,
        &[
            "--dir",
            &dir_arg,
            "--controls",
            "groups_counted",
            "--format",
            "json",
        ],
    );
    assert_eq!(output.status.code(), Some(2), "{}", text(&output.stderr));
    let result = &json_report(&output)[0];
    assert_eq!(result["outcome"], "error");
    assert!(
        result["error"]
            .as_str()
            .unwrap_or_default()
            .contains("population-sql"),
        "{result}"
    );

    // One of the two lines alone is a mistake in the file, said at load.
    control(
        dir.path(),
        "groups_counted",
        "Counted",
        "-- population: groups\nSELECT 1",
    );
    let output = check(&emu, &["--dir", &dir_arg, "--controls", "groups_counted"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output.stderr));
    assert!(
        text(&output.stderr).contains("go together"),
        "{}",
        text(&output.stderr)
    );
}
