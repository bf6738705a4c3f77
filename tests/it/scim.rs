//! The SCIM tables, the SCIM token configuration, `--idp`, and the
//! identity-provider drift controls, against the emulator and through the
//! real binary. Expected rows and findings are worked out here from the
//! emulator's organization (its `scim` directories), never from output.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::common::*;
use orgsql::emulator::{
    Emulator, EmulatorConfig, Faults, Org, OrgSpec, ScimDirectory, ScimGroup, ScimUser,
};

/// Every SCIM user of `org`, by directory id.
fn scim_users(org: &Org) -> Vec<(String, &ScimUser)> {
    org.scim
        .iter()
        .flat_map(|d| {
            let id = org.directories[d.directory].id.clone();
            d.users.iter().map(move |u| (id.clone(), u))
        })
        .collect()
}

fn text(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test]
async fn each_scim_table_returns_the_emulators_rows_across_pages() {
    // Three items a page: every directory's listing takes several.
    let emu = emulator(spec(40, 40), Faults::default(), Some(3)).await;
    let org = emu.org();
    let ctx = session(emu.client_config());

    let users: BTreeSet<Vec<String>> = sql_rows(
        &ctx,
        "SELECT directory_id, scim_id, external_id, email, display_name, active, account_id FROM scim_users",
    )
    .await
    .into_iter()
    .collect();
    let expected: BTreeSet<Vec<String>> = scim_users(&org)
        .into_iter()
        .map(|(directory, u)| {
            vec![
                directory,
                u.id.clone(),
                u.external_id.clone(),
                u.email.clone(),
                u.display_name.clone(),
                u.active.to_string(),
                u.account_id.clone().unwrap_or_else(|| "NULL".to_string()),
            ]
        })
        .collect();
    assert_eq!(users.len(), scim_users(&org).len(), "each row once");
    assert_eq!(users, expected);
    // One request a page, each page three items, no request past the end.
    let pages = |n: usize| n.div_ceil(3).max(1) as u64;
    let user_pages: u64 = org.scim.iter().map(|d| pages(d.users.len())).sum();
    assert!(
        org.scim.iter().all(|d| d.users.len() > 3),
        "several pages each"
    );
    assert_eq!(emu.requests("/Users"), user_pages);

    let groups: BTreeSet<Vec<String>> = sql_rows(
        &ctx,
        "SELECT directory_id, scim_group_id, name, member_count FROM scim_groups",
    )
    .await
    .into_iter()
    .collect();
    let expected: BTreeSet<Vec<String>> = org
        .scim
        .iter()
        .flat_map(|d| {
            let id = org.directories[d.directory].id.clone();
            d.groups.iter().map(move |g| {
                vec![
                    id.clone(),
                    g.id.clone(),
                    g.name.clone(),
                    g.members.len().to_string(),
                ]
            })
        })
        .collect();
    assert!(expected.len() > 3, "several pages of groups");
    assert_eq!(groups, expected);

    let members: BTreeSet<Vec<String>> = sql_rows(
        &ctx,
        "SELECT directory_id, scim_group_id, scim_id, group_name FROM scim_group_members",
    )
    .await
    .into_iter()
    .collect();
    let expected: BTreeSet<Vec<String>> = org
        .scim
        .iter()
        .flat_map(|d| {
            let id = org.directories[d.directory].id.clone();
            d.groups.iter().flat_map(move |g| {
                let id = id.clone();
                g.members
                    .iter()
                    .map(move |m| vec![id.clone(), g.id.clone(), m.clone(), g.name.clone()])
            })
        })
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(members, expected);

    // scim_links: one call per account, with the organization's key.
    let links: BTreeSet<Vec<String>> = sql_rows(
        &ctx,
        "SELECT account_id, directory_id, scim_id, linked_account_id FROM scim_links",
    )
    .await
    .into_iter()
    .collect();
    let expected: BTreeSet<Vec<String>> = scim_users(&org)
        .into_iter()
        .filter_map(|(directory, u)| {
            let account = u.account_id.clone()?;
            org.users
                .iter()
                .any(|a| a.account_id == account)
                .then(|| vec![account.clone(), directory, u.id.clone(), account])
        })
        .collect();
    assert!(expected.len() > 10);
    assert_eq!(links, expected);
    assert_eq!(emu.requests("/get-scim-links"), org.users.len() as u64);
}

#[tokio::test]
async fn a_scim_listing_that_ends_short_fails_the_query() {
    // totalResults counts one more than the pages hold.
    let faults = Faults {
        scim_short: true,
        ..Faults::default()
    };
    let emu = emulator(spec(20, 20), faults, Some(4)).await;
    let org = emu.org();
    let first = &org.scim[0];
    let directory = org.directories[first.directory].id.clone();
    let ctx = session(emu.client_config());
    let sql = format!("SELECT count(*) FROM scim_users WHERE directory_id = '{directory}'");
    let error = query(&ctx, &sql)
        .await
        .expect_err("a short listing is no answer")
        .to_string();
    let n = first.users.len();
    assert!(error.contains(&directory), "{error}");
    assert!(
        error.contains(&format!("totalResults says {}", n + 1))
            && error.contains(&format!("the pages held {n}")),
        "{error}"
    );
    let error = query(&ctx, "SELECT count(*) FROM scim_group_members")
        .await
        .expect_err("groups too")
        .to_string();
    assert!(error.contains("ended short"), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_directory_without_a_token_is_a_clear_error() {
    let emu = emulator(spec(10, 10), Faults::default(), None).await;
    let tokens = emu.scim_tokens(0);
    // No token at all: the query says what to configure.
    let mut config = emu.client_config();
    config.scim_tokens.clear();
    let ctx = session(config);
    let error = query(&ctx, "SELECT * FROM scim_users")
        .await
        .expect_err("no token, no rows")
        .to_string();
    assert!(error.contains("no SCIM token"), "{error}");
    assert!(error.contains("[connections.NAME.scim."), "{error}");
    // A token for the first directory only: the tables hold that one's rows.
    // The second, named, has none here (as the unfiltered scan has none of
    // it), and the user hears which directory lacks a token and how to add it.
    let mut config = fast_retries(emu.client_config());
    config.scim_tokens.truncate(1);
    let client = orgsql::api::Client::new(config).expect("client");
    let ctx = orgsql::context(&client).expect("session");
    let second = &tokens[1].0;
    let rows = sql_rows(
        &ctx,
        &format!("SELECT * FROM scim_users WHERE directory_id = '{second}'"),
    )
    .await;
    assert!(rows.is_empty());
    let notices = client.take_notices().join("\n");
    assert!(
        notices.contains(&format!("no SCIM token for directory \"{second}\"")),
        "{notices}"
    );
    assert!(
        notices.contains(&tokens[0].0),
        "names the ones configured: {notices}"
    );
    assert!(notices.contains("[connections.NAME.scim."), "{notices}");
    // The emulator takes no other key than the directory's own token.
    assert_eq!(emu.requests("/Users"), 0);
    let count = column(&ctx, "SELECT count(*) FROM scim_users").await;
    assert_eq!(count, vec![emu.org().scim[0].users.len().to_string()]);

    // Through the binary, with the organization's key and no config file.
    let output = orgsql_on(&emu)
        .args(["-c", "SELECT * FROM scim_groups"])
        .output()
        .expect("orgsql runs");
    assert!(!output.status.success());
    assert!(text(&output).contains("no SCIM token"), "{}", text(&output));
}

/// Write `text` to a file only its owner can read, as keys are kept.
fn private(path: &Path, text: &str) {
    std::fs::write(path, text).expect("written");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
}

/// A config file for `emu` named `acme`: the key and each directory's SCIM
/// token in files of their own.
fn config_file(dir: &Path, emu: &Emulator) -> std::path::PathBuf {
    let key = dir.join("org.key");
    private(
        &key,
        emu.connection_json()["api_key"]
            .as_str()
            .unwrap_or_default(),
    );
    let mut text = format!(
        "[connections.acme]\norg_id = \"{}\"\napi_key_file = \"{}\"\nbase_url = \"{}\"\n",
        emu.org().id,
        key.display(),
        emu.base_url()
    );
    for (i, (directory, token)) in emu.scim_tokens(0).into_iter().enumerate() {
        let file = dir.join(format!("scim{i}.token"));
        private(&file, &token);
        text.push_str(&format!(
            "[connections.acme.scim.\"{directory}\"]\ntoken_file = \"{}\"\n",
            file.display()
        ));
    }
    let path = dir.join("config.toml");
    private(&path, &text);
    path
}

// Multi-threaded: the emulator answers while the binary runs.
#[tokio::test(flavor = "multi_thread")]
async fn scim_tokens_come_from_the_config_file_never_inline() {
    let emu = emulator(spec(15, 10), Faults::default(), None).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let config = config_file(dir.path(), &emu);
    let output = orgsql_alone()
        .args(["--config"])
        .arg(&config)
        .args(["--org", "acme", "--format", "csv", "-c"])
        .arg("SELECT count(*) AS n FROM scim_users")
        .output()
        .expect("orgsql runs");
    let total: usize = emu.org().scim.iter().map(|d| d.users.len()).sum();
    assert_eq!(
        String::from_utf8_lossy(&succeeded(&output, "scim_users by the config")),
        format!("n\n{total}\n")
    );
    // A token written into the file is refused, and not repeated.
    let (directory, token) = emu.scim_tokens(0).remove(0);
    let inline = dir.path().join("inline.toml");
    std::fs::write(
        &inline,
        format!(
            "[connections.acme]\norg_id = \"{}\"\napi_key_env = \"K\"\n[connections.acme.scim.\"{directory}\"]\ntoken = \"{token}\"\n",
            emu.org().id
        ),
    )
    .expect("config");
    let output = orgsql_alone()
        .arg("--config")
        .arg(&inline)
        .args(["--org", "acme", "-c", "SELECT 1"])
        .output()
        .expect("orgsql runs");
    assert!(!output.status.success());
    let said = text(&output);
    assert!(
        said.contains("tokens never go in the config file"),
        "{said}"
    );
    assert!(said.contains(&directory), "names the directory: {said}");
    assert!(!said.contains(&token), "{said}");
}

/// The demo's planted cases of each identity-provider control, worked out
/// from its organization (and the example IdP export) by each control's
/// definition.
fn expected_findings(org: &Org, idp: &[(String, String)]) -> BTreeMap<&'static str, Vec<String>> {
    let scim = scim_users(org);
    let user_of = |account: &str| org.users.iter().find(|u| u.account_id == account);
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v.dedup();
        v
    };
    let mut expected = BTreeMap::new();
    let managed_active = || {
        org.users
            .iter()
            .filter(|u| u.claim_status == "managed" && u.status == "active")
    };
    expected.insert(
        "accounts_inactive_in_scim",
        sorted(
            managed_active()
                .filter(|u| {
                    let records: Vec<_> = scim
                        .iter()
                        .filter(|(_, s)| s.account_id.as_deref() == Some(u.account_id.as_str()))
                        .collect();
                    records.iter().all(|(_, s)| !s.active)
                })
                .map(|u| u.email.clone())
                .collect(),
        ),
    );
    let idp_status: BTreeMap<String, &str> = idp
        .iter()
        .map(|(email, status)| (email.to_lowercase(), status.as_str()))
        .collect();
    expected.insert(
        "accounts_inactive_in_idp",
        sorted(
            managed_active()
                .filter(|u| {
                    idp_status
                        .get(&u.email.to_lowercase())
                        .is_none_or(|s| matches!(*s, "DEPROVISIONED" | "SUSPENDED" | "STAGED"))
                })
                .map(|u| u.email.clone())
                .collect(),
        ),
    );
    expected.insert(
        "scim_users_unlinked",
        sorted(
            scim.iter()
                .filter(|(_, s)| s.account_id.as_deref().and_then(user_of).is_none())
                .map(|(_, s)| s.email.clone())
                .collect(),
        ),
    );
    expected.insert(
        "scim_inactive_with_access",
        sorted(
            scim.iter()
                .filter(|(_, s)| {
                    !s.active
                        && s.account_id
                            .as_deref()
                            .and_then(user_of)
                            .is_some_and(|u| u.status == "active" && !u.product_access.is_empty())
                })
                .map(|(_, s)| s.email.clone())
                .collect(),
        ),
    );
    // Memberships by group name and account, on both sides.
    let mut differ = Vec::new();
    for directory in &org.scim {
        for group in &directory.groups {
            let pushed: BTreeSet<&str> = group
                .members
                .iter()
                .filter_map(|m| directory.users.iter().find(|u| &u.id == m))
                .filter_map(|u| u.account_id.as_deref())
                .collect();
            let here: BTreeSet<&str> = org
                .users
                .iter()
                .filter(|u| u.groups.iter().any(|&g| org.groups[g].name == group.name))
                .map(|u| u.account_id.as_str())
                .collect();
            for account in pushed.symmetric_difference(&here) {
                let who = user_of(account).map_or(account.to_string(), |u| u.email.clone());
                differ.push(format!("{}: {who}", group.name));
            }
        }
    }
    expected.insert("scim_group_members_differ", sorted(differ));
    let verified: BTreeSet<&str> = org
        .domains
        .iter()
        .filter(|d| d.claim_status == "verified")
        .map(|d| d.name.as_str())
        .collect();
    let provisioned = org.groups.iter().any(|g| g.external_synced);
    expected.insert(
        "invited_accounts_with_provisioning",
        sorted(
            managed_active()
                .filter(|u| {
                    provisioned
                        && u.management_source == Some("invited")
                        && u.email
                            .split_once('@')
                            .is_some_and(|(_, d)| verified.contains(d))
                })
                .map(|u| u.email.clone())
                .collect(),
        ),
    );
    let mut people: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    for (_, s) in &scim {
        let Some(account) = s.account_id.as_deref() else {
            continue;
        };
        people
            .entry(format!("externalId {}", s.external_id))
            .or_default()
            .insert(account);
        people
            .entry(format!("email {}", s.email.to_lowercase()))
            .or_default()
            .insert(account);
    }
    expected.insert(
        "one_person_two_accounts",
        people
            .into_iter()
            .filter(|(_, accounts)| accounts.len() > 1)
            .map(|(person, _)| person)
            .collect(),
    );
    expected
}

/// (email, status) of each row of an Okta export.
fn okta_rows(path: &Path) -> Vec<(String, String)> {
    let mut reader = csv::Reader::from_path(path).expect("the export");
    reader
        .deserialize::<BTreeMap<String, String>>()
        .map(|row| {
            let row = row.expect("a row");
            (row["Primary email"].clone(), row["Status"].clone())
        })
        .collect()
}

/// The findings of each identity-provider control in a JSON report.
fn findings_of(output: &std::process::Output) -> BTreeMap<String, (String, Vec<String>)> {
    let report: serde_json::Value =
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(output)));
    report["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap_or_default().to_string(),
                (
                    c["outcome"].as_str().unwrap_or_default().to_string(),
                    alarmed_resources(c),
                ),
            )
        })
        .collect()
}

const CONTROLS: [&str; 7] = [
    "accounts_inactive_in_scim",
    "accounts_inactive_in_idp",
    "scim_users_unlinked",
    "scim_inactive_with_access",
    "scim_group_members_differ",
    "invited_accounts_with_provisioning",
    "one_person_two_accounts",
];

#[tokio::test(flavor = "multi_thread")]
async fn each_drift_control_alarms_on_exactly_the_demos_planted_cases() {
    let emu = emulator(OrgSpec::default(), Faults::default(), None).await;
    let org = emu.org();
    let idp = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo-idp.csv");
    let output = orgsql_alone()
        .args(["--demo", "--idp"])
        .arg(&idp)
        .args([
            "check",
            "--format",
            "json",
            "--controls",
            &CONTROLS.join(","),
        ])
        .output()
        .expect("orgsql runs");
    let found = findings_of(&output);
    // The report names the export it judged by: its file and sha256.
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let digest: String = ring::digest::digest(
        &ring::digest::SHA256,
        &std::fs::read(&idp).expect("the export"),
    )
    .as_ref()
    .iter()
    .map(|b| format!("{b:02x}"))
    .collect();
    assert_eq!(report["envelope"]["idp"]["sha256"], digest.as_str());
    let expected = expected_findings(&org, &okta_rows(&idp));
    for control in CONTROLS {
        let (outcome, alarms) = found.get(control).expect(control);
        assert_eq!(outcome, "alarm", "{control}");
        assert!(!alarms.is_empty(), "{control} has planted cases");
        assert_eq!(alarms, &expected[control], "{control}");
    }
    // The planted cases, as the emulator (scim.rs) says it plants them.
    assert_eq!(expected["scim_users_unlinked"].len(), 2);
    assert_eq!(expected["scim_inactive_with_access"].len(), 2);
    assert_eq!(expected["invited_accounts_with_provisioning"].len(), 2);
    assert_eq!(expected["one_person_two_accounts"].len(), 1);

    // Without SCIM tokens or --idp, the controls that need them are skipped
    // with how to give them; the one that needs neither still runs.
    let output = orgsql_on(&emu)
        .args([
            "check",
            "--format",
            "json",
            "--controls",
            &CONTROLS.join(","),
        ])
        .output()
        .expect("orgsql runs");
    let found = findings_of(&output);
    for control in CONTROLS {
        let (outcome, _) = &found[control];
        let expected = if control == "invited_accounts_with_provisioning" {
            "alarm"
        } else {
            "skipped"
        };
        assert_eq!(outcome, expected, "{control}");
    }
}

/// `org` with an identity provider that agrees with it: every account has
/// an active SCIM user while active, every synced group's members are
/// pushed, nobody was invited on a claimed domain.
fn agreeing(org: &mut Org) {
    for user in &mut org.users {
        if user.management_source == Some("invited") && user.claim_status == "managed" {
            user.management_source = Some("synced");
        }
    }
    let users: Vec<ScimUser> = org
        .users
        .iter()
        .enumerate()
        .map(|(i, u)| ScimUser {
            id: format!("scim-{i}"),
            external_id: format!("ext-{i}"),
            user_name: u.email.clone(),
            email: u.email.clone(),
            display_name: u.name.clone(),
            active: !matches!(u.status, "deactivated" | "for_deletion"),
            account_id: Some(u.account_id.clone()),
            created: fixed_now(),
        })
        .collect();
    let groups: Vec<ScimGroup> = org
        .scim
        .iter()
        .flat_map(|d| d.groups.iter())
        .map(|g| ScimGroup {
            members: org
                .users
                .iter()
                .enumerate()
                .filter(|(_, u)| u.groups.iter().any(|&i| org.groups[i].name == g.name))
                .map(|(i, _)| format!("scim-{i}"))
                .collect(),
            ..g.clone()
        })
        .collect();
    let tokens: Vec<String> = org.scim.iter().map(|d| d.token.clone()).collect();
    org.scim = vec![
        ScimDirectory {
            directory: 0,
            token: tokens[0].clone(),
            users,
            groups,
        },
        ScimDirectory {
            directory: 1,
            token: tokens[1].clone(),
            users: Vec::new(),
            groups: Vec::new(),
        },
    ];
}

#[tokio::test(flavor = "multi_thread")]
async fn no_drift_control_alarms_on_an_organization_its_identity_provider_agrees_with() {
    let emu = Emulator::start(EmulatorConfig {
        org: spec(60, 40),
        page_size_cap: Some(7),
        ..EmulatorConfig::default()
    })
    .await
    .expect("emulator starts");
    emu.change(agreeing);
    let org = emu.org();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = config_file(dir.path(), &emu);
    let idp = dir.path().join("idp.csv");
    let mut export = String::from("Username,Primary email,Status\n");
    for user in org.users.iter().filter(|u| u.claim_status == "managed") {
        let status = if user.status == "active" {
            "ACTIVE"
        } else {
            "DEPROVISIONED"
        };
        export.push_str(&format!("{0},{0},{status}\n", user.email));
    }
    std::fs::write(&idp, export).expect("export");
    let output = orgsql_alone()
        .arg("--config")
        .arg(&config)
        .args(["--org", "acme", "--idp"])
        .arg(&idp)
        .args([
            "check",
            "--format",
            "json",
            "--controls",
            &CONTROLS.join(","),
        ])
        .output()
        .expect("orgsql runs");
    let found = findings_of(&output);
    for control in CONTROLS {
        assert_eq!(
            found[control],
            ("pass".to_string(), Vec::new()),
            "{control}"
        );
    }
}

#[test]
fn idp_exports_of_both_vendors_are_read_and_bad_rows_refused_with_the_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let run = |name: &str, csv: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, csv).expect("export");
        orgsql_alone()
            .args(["--demo", "--format", "csv", "--idp"])
            .arg(&path)
            .args([
                "-c",
                "SELECT email, status, idp_status FROM idp_users ORDER BY email",
            ])
            .output()
            .expect("orgsql runs")
    };
    // Entra ID: mail (else userPrincipalName) and accountEnabled.
    let output = run(
        "entra.csv",
        "userPrincipalName,displayName,mail,accountEnabled,jobTitle\n\
         a@acme.com,A,,True,x\nb.upn@acme.com,B,b@acme.com,False,y\n",
    );
    assert_eq!(
        String::from_utf8_lossy(&succeeded(&output, "Entra export")),
        "email,status,idp_status\na@acme.com,active,True\nb@acme.com,inactive,False\n"
    );
    for (csv, line, says) in [
        (
            "Username,Status\na@acme.com,ACTIVE\nb@acme.com,ON_HOLIDAY\n",
            3,
            "ON_HOLIDAY",
        ),
        (
            "Username,Status\na@acme.com,ACTIVE\n,ACTIVE\n",
            3,
            "no email",
        ),
        (
            "Username,Status\na@acme.com,ACTIVE\nA@acme.com,ACTIVE\n",
            3,
            "already on line 2",
        ),
        (
            "Username,Status\nnot-an-address,ACTIVE\n",
            2,
            "not an email address",
        ),
        ("Username,Groups\na@acme.com,x\n", 1, "no status column"),
    ] {
        let output = run("bad.csv", csv);
        assert!(!output.status.success(), "{csv}");
        let said = text(&output);
        assert!(said.contains(&format!("bad.csv:{line}:")), "{csv}: {said}");
        assert!(said.contains(says), "{csv}: {said}");
    }
}
