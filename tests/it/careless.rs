//! Careless configs and hostile files (issue 32, items 3, 5, 7 and 11),
//! through the real binary against the emulator on loopback: config and
//! key files others can write are refused; a key pasted into a field that
//! is not a key is never repeated; the key goes only over https or to this
//! machine, and a base URL's credentials are refused before anything
//! records them; `review.json` names only files inside its folder; what
//! orgsql writes is its user's alone, and an export replaces only what it
//! wrote; an API that sends no `Retry-After` and states its reset to the
//! minute still gives the whole answer.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;

use crate::common::*;
use orgsql::emulator::{Emulator, EmulatorConfig, Faults, RateLimits, ResetPrecision};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).expect("there").permissions().mode() & 0o777
}

/// A run that failed (1, or 2 where a command says "could not" apart
/// from its findings), its stdout and stderr free of `secret`; its stderr.
fn failed_without(output: &Output, secret: &str, what: &str) -> String {
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert!(
        matches!(output.status.code(), Some(1 | 2)),
        "{what}: {stdout}{stderr}"
    );
    assert!(
        !stdout.contains(secret) && !stderr.contains(secret),
        "{what} repeats it: {stdout}{stderr}"
    );
    stderr
}

/// A key shaped as Atlassian's API tokens are (a prefix, then some 180
/// characters of base64url), made up.
fn pasted_key() -> String {
    let mut key = String::from("ATATT3xFfGF0");
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..180 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        key.push(char::from(alphabet[(state % 64) as usize]));
    }
    key.push_str("=4D2C1B0A");
    key
}

#[tokio::test(flavor = "multi_thread")]
async fn a_config_or_key_file_others_can_write_is_refused_and_a_pasted_key_never_repeated() {
    let emu = emulator(spec(3, 0), Faults::default(), None).await;
    let key = emu.connection_json()["api_key"]
        .as_str()
        .expect("key")
        .to_string();
    let org_id = emu.org().id.clone();
    let dir = tempfile::tempdir().expect("temp dir");
    let key_file = dir.path().join("acme.key");
    std::fs::write(&key_file, format!("{key}\n")).expect("key file");
    set_mode(&key_file, 0o600);
    let marker = dir.path().join("the-command-ran");
    let config = dir.path().join("config.toml");
    let write_config = |entries: &str| {
        std::fs::write(
            &config,
            format!(
                "[connections.acme]\n{entries}\nbase_url = \"{}\"\n",
                emu.base_url()
            ),
        )
        .expect("config");
        set_mode(&config, 0o600);
    };
    let run = || {
        orgsql_alone()
            .arg("--config")
            .arg(&config)
            .args([
                "--all-orgs",
                "--format",
                "csv",
                "-c",
                "SELECT count(*) AS n FROM users",
            ])
            .output()
            .expect("orgsql runs")
    };

    // Private files: the query runs (so the refusals below are the modes').
    write_config(&format!(
        "org_id = \"{org_id}\"\napi_key_file = \"acme.key\""
    ));
    let output = run();
    assert_eq!(text(&succeeded(&output, "private files")), "n\n3\n");

    // A config file others can write: refused, its command never run.
    write_config(&format!(
        "org_id = \"{org_id}\"\napi_key_command = \"touch '{}'; cat '{}'\"",
        marker.display(),
        key_file.display()
    ));
    set_mode(&config, 0o622);
    let stderr = failed_without(&run(), &key, "a config others can write");
    assert!(
        stderr.contains(&format!("the config file {}", config.display()))
            && stderr.contains("mode 622")
            && stderr.contains(&format!("chmod go-w {}", config.display())),
        "{stderr}"
    );
    assert!(!marker.exists(), "its api_key_command ran");
    // Writable by the group only: refused too (as ssh does).
    set_mode(&config, 0o620);
    let stderr = failed_without(&run(), &key, "a config the group can write");
    assert!(stderr.contains("mode 620"), "{stderr}");
    assert!(!marker.exists(), "its api_key_command ran");

    // A key file others can write: refused, naming it.
    write_config(&format!(
        "org_id = \"{org_id}\"\napi_key_file = \"acme.key\""
    ));
    set_mode(&key_file, 0o602);
    let stderr = failed_without(&run(), &key, "a key file others can write");
    assert!(
        stderr.contains(&format!("the key file {}", key_file.display()))
            && stderr.contains("mode 602")
            && stderr.contains("chmod go-w"),
        "{stderr}"
    );
    // So is one given with --api-key-file.
    let output = orgsql_alone()
        .args(["--base-url", &emu.base_url(), "--org-id", &org_id])
        .arg("--api-key-file")
        .arg(&key_file)
        .args(["-c", "SELECT 1"])
        .output()
        .expect("orgsql runs");
    let stderr = failed_without(&output, &key, "--api-key-file others can write");
    assert!(stderr.contains("mode 602"), "{stderr}");
    set_mode(&key_file, 0o600);

    // A key pasted into each field that is not a key: never repeated.
    let pasted = pasted_key();
    let key_env = "CARELESS_TEST_KEY";
    let cases = [
        (
            "org_id",
            format!("org_id = \"{pasted}\"\napi_key_env = \"{key_env}\""),
        ),
        (
            "api_key_env",
            format!("org_id = \"{org_id}\"\napi_key_env = \"{pasted}\""),
        ),
        (
            "api_key_file",
            format!("org_id = \"{org_id}\"\napi_key_file = \"{pasted}\""),
        ),
        (
            "api_key_command",
            format!("org_id = \"{org_id}\"\napi_key_command = \"{pasted}\""),
        ),
        (
            "scoped_api_key_file",
            format!(
                "org_id = \"{org_id}\"\napi_key_env = \"{key_env}\"\n\
                 scoped_api_key_file = \"{pasted}\""
            ),
        ),
        // A value of the wrong type, which the parser's message quotes.
        (
            "scim",
            format!("org_id = \"{org_id}\"\napi_key_env = \"{key_env}\"\nscim = \"{pasted}\""),
        ),
    ];
    for (field, entries) in cases {
        write_config(&entries);
        let output = orgsql_alone()
            .env(key_env, &key)
            .arg("--config")
            .arg(&config)
            .args(["--all-orgs", "-c", "SELECT 1"])
            .output()
            .expect("orgsql runs");
        let stderr = failed_without(&output, &pasted, field);
        // Not a prefix or a tail of it either.
        assert!(
            !stderr.contains(&pasted[..16]) && !stderr.contains(&pasted[pasted.len() - 16..]),
            "{field}: {stderr}"
        );
        assert!(
            stderr.contains("looks like a key"),
            "{field}: the error says why it shows no value: {stderr}"
        );
        // The shell never saw it as a command (it would print it back).
        assert!(!stderr.contains("not found"), "{field}: {stderr}");
    }
    // --org-id too.
    let output = orgsql_alone()
        .args(["--base-url", &emu.base_url(), "--org-id", &pasted])
        .env("ATLASSIAN_API_KEY", &key)
        .args(["-c", "SELECT 1"])
        .output()
        .expect("orgsql runs");
    let stderr = failed_without(&output, &pasted, "--org-id");
    assert!(stderr.contains("is not a UUID"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_key_goes_only_over_https_or_to_this_machine_and_a_urls_credentials_are_refused() {
    let emu = emulator(spec(3, 0), Faults::default(), None).await;
    let key = emu.connection_json()["api_key"]
        .as_str()
        .expect("key")
        .to_string();
    let org_id = emu.org().id.clone();
    let query = ["--format", "csv", "-c", "SELECT count(*) AS n FROM users"];

    // Plain http to a host that is not this machine: refused before any
    // request (the .invalid domain resolves nowhere, should it be tried).
    let output = orgsql_at("http://api.example.invalid", &org_id, &key)
        .args(query)
        .output()
        .expect("orgsql runs");
    let stderr = failed_without(&output, &key, "http to another host");
    assert!(
        stderr.contains("the key would travel unencrypted")
            && stderr.contains("--allow-insecure-http"),
        "{stderr}"
    );
    // With the flag the refusal is lifted: the request is tried (port 9
    // of 0.0.0.0 is this machine, where nothing listens).
    let output = orgsql_at("http://0.0.0.0:9", &org_id, &key)
        .args(["--allow-insecure-http", "--max-retries", "0"])
        .args(query)
        .output()
        .expect("orgsql runs");
    let stderr = failed_without(&output, &key, "--allow-insecure-http");
    assert!(
        stderr.contains("could not reach the API") && !stderr.contains("unencrypted"),
        "{stderr}"
    );
    // Another scheme is refused whatever the flag.
    let output = orgsql_at("ftp://127.0.0.1/", &org_id, &key)
        .arg("--allow-insecure-http")
        .args(query)
        .output()
        .expect("orgsql runs");
    let stderr = failed_without(&output, &key, "ftp");
    assert!(stderr.contains("not ftp"), "{stderr}");
    // localhost by name is this machine.
    let port = emu
        .base_url()
        .rsplit(':')
        .next()
        .expect("a port")
        .to_string();
    let output = orgsql_at(&format!("http://localhost:{port}"), &org_id, &key)
        .args(query)
        .output()
        .expect("orgsql runs");
    assert_eq!(text(&succeeded(&output, "localhost")), "n\n3\n");

    // Credentials in the base URL: every command that records the base URL
    // refuses it before writing anything, and none repeats them.
    let password = "hunter2-SECRET-PASSWORD";
    let with_credentials = emu
        .base_url()
        .replace("http://", &format!("http://auditor:{password}@"));
    let dir = tempfile::tempdir().expect("temp dir");
    let out = |name: &str| dir.path().join(name).display().to_string();
    let commands: [(&str, Vec<String>); 5] = [
        (
            "a query, with -v",
            vec![
                "-v".into(),
                "-c".into(),
                "SELECT * FROM orgsql_requests".into(),
            ],
        ),
        (
            "check",
            [
                "check",
                "--controls",
                "org_admin_count",
                "--format",
                "json",
                "--output",
            ]
            .map(String::from)
            .into_iter()
            .chain([out("report.json")])
            .collect(),
        ),
        (
            "review start",
            vec![
                "review".into(),
                "start".into(),
                "--out".into(),
                out("review"),
            ],
        ),
        (
            "export",
            vec![
                "export".into(),
                "--tables".into(),
                "users".into(),
                "--out".into(),
                out("export"),
            ],
        ),
        (
            "COPY",
            vec![
                "-c".into(),
                format!("COPY users TO '{}'", out("users.parquet")),
            ],
        ),
    ];
    for (what, args) in &commands {
        let output = orgsql_at(&with_credentials, &org_id, &key)
            .args(args)
            .output()
            .expect("orgsql runs");
        let stderr = failed_without(&output, password, what);
        assert!(!stderr.contains("auditor"), "{what}: {stderr}");
        assert!(
            stderr.contains("holds a user name or password (not shown)"),
            "{what}: {stderr}"
        );
    }
    // From the environment and from a config file alike.
    let output = orgsql_alone()
        .env("ORGSQL_BASE_URL", &with_credentials)
        .env("ATLASSIAN_API_KEY", &key)
        .args(["--org-id", &org_id])
        .args(query)
        .output()
        .expect("orgsql runs");
    failed_without(&output, password, "ORGSQL_BASE_URL");
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[connections.acme]\norg_id = \"{org_id}\"\napi_key_env = \"CARELESS_KEY\"\n\
             base_url = \"{with_credentials}\"\n"
        ),
    )
    .expect("config");
    set_mode(&config, 0o600);
    let output = orgsql_alone()
        .env("CARELESS_KEY", &key)
        .arg("--config")
        .arg(&config)
        .args(["--all-orgs"])
        .args(query)
        .output()
        .expect("orgsql runs");
    let stderr = failed_without(&output, password, "a config file's base_url");
    assert!(stderr.contains("(connection acme)"), "{stderr}");
    // Nothing was written, so nothing holds them.
    assert_eq!(files_below(dir.path()), vec![config.clone()]);
}

/// `review.json` edited to name a file outside the folder: `..`, an
/// absolute path, a symbolic link leading out. Each is refused, naming it.
#[tokio::test(flavor = "multi_thread")]
async fn review_json_names_only_files_inside_its_folder() {
    let emu = emulator(spec(6, 0), Faults::default(), None).await;
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("q4");
    let started = orgsql_on(&emu)
        .args(["review", "start", "--out", &dir.display().to_string()])
        .output()
        .expect("orgsql runs");
    succeeded(&started, "review start");
    let review_path = dir.join("review.json");
    let original = std::fs::read_to_string(&review_path).expect("review.json");
    let review: serde_json::Value = serde_json::from_str(&original).expect("json");
    let first = review["files"][0]["path"]
        .as_str()
        .expect("a file")
        .to_string();
    // A file outside, which verify would otherwise read as the reviewer's.
    let outside = tmp.path().join("outside.csv");
    std::fs::copy(dir.join(&first), &outside).expect("copy");
    let verify = || {
        orgsql_on(&emu)
            .args(["review", "verify", &dir.display().to_string()])
            .output()
            .expect("orgsql runs")
    };
    // As started, it verifies (undecided rows fail it, but not for a path).
    let output = verify();
    assert!(
        !text(&output.stderr).contains("inside its folder"),
        "{}",
        text(&output.stderr)
    );

    for (named, problem) in [
        (
            "../outside.csv".to_string(),
            "is not a path down from the review folder",
        ),
        (
            outside.display().to_string(),
            "is not a path down from the review folder",
        ),
    ] {
        let mut edited = review.clone();
        edited["files"][0]["path"] = serde_json::Value::String(named.clone());
        std::fs::write(
            &review_path,
            serde_json::to_string_pretty(&edited).expect("json"),
        )
        .expect("edit");
        let output = verify();
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{named}: {stderr}");
        assert!(
            stderr.contains(&format!("the file {named:?} {problem}")),
            "{named}: {stderr}"
        );
    }
    std::fs::write(&review_path, &original).expect("restore");

    // The reviewer's file replaced by a link to the file outside.
    let inside = dir.join(&first);
    std::fs::remove_file(&inside).expect("remove");
    std::os::unix::fs::symlink(&outside, &inside).expect("symlink");
    let output = verify();
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("leads out of the review folder through a symbolic link"),
        "{stderr}"
    );
    // review apply reads the same record, and refuses it alike.
    let output = orgsql_on(&emu)
        .args(["review", "apply", &dir.display().to_string()])
        .output()
        .expect("orgsql runs");
    assert!(
        text(&output.stderr).contains("through a symbolic link"),
        "{}",
        text(&output.stderr)
    );
}

/// What orgsql writes is its user's alone, whatever the umask; an export
/// never replaces a folder its manifest does not list.
#[tokio::test(flavor = "multi_thread")]
async fn exports_and_evidence_are_private_and_an_export_replaces_only_what_it_wrote() {
    let emu = emulator(spec(4, 12), Faults::default(), None).await;
    let tmp = tempfile::tempdir().expect("temp dir");
    let out = tmp.path().join("export");
    let export = |tables: &str| {
        orgsql_on(&emu)
            .args([
                "export",
                "--tables",
                tables,
                "--out",
                &out.display().to_string(),
            ])
            .output()
            .expect("orgsql runs")
    };
    succeeded(&export("users"), "export users");
    assert_eq!(mode(&out), 0o700, "the export folder");
    for file in files_below(&out) {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
    // Evidence: a report written with --output.
    let report = tmp.path().join("report.json");
    let output = orgsql_on(&emu)
        .args([
            "check",
            "--controls",
            "org_admin_count",
            "--format",
            "json",
            "--output",
        ])
        .arg(&report)
        .output()
        .expect("orgsql runs");
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "{}",
        text(&output.stderr)
    );
    assert_eq!(mode(&report), 0o600, "the report");

    // Someone's own events/ beside the export: the audit log is not
    // written over it.
    let theirs = out.join("events");
    std::fs::create_dir(&theirs).expect("mkdir");
    std::fs::write(theirs.join("notes.txt"), "mine").expect("a file of theirs");
    let output = export("events");
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}: the export would write table events there",
            theirs.display()
        )) && stderr.contains("does not list it"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(theirs.join("notes.txt")).expect("still there"),
        "mine"
    );
    // Nor an events.old of theirs, once the export's own events/ is replaced.
    std::fs::rename(&theirs, out.join("events.old")).expect("move it aside");
    succeeded(&export("events"), "export events");
    let mut again = orgsql_on(&emu);
    again.args(["export", "--tables", "events", "--since", "2020-01-01"]);
    succeeded(
        &again
            .args(["--out", &out.display().to_string()])
            .output()
            .expect("runs"),
        "export events with --since (replaces the folder)",
    );
    assert_eq!(
        std::fs::read_to_string(out.join("events.old/notes.txt")).expect("still there"),
        "mine"
    );
}

/// An emulator enforcing small budgets on a sped-up clock (a documented
/// minute lasts half a second; 3 requests a period where no budget is
/// published), with no `Retry-After` on its 429s and the reset stated as
/// `precision` says.
async fn strict(precision: ResetPrecision) -> Emulator {
    Emulator::start(EmulatorConfig {
        org: spec(12, 0),
        limits: Some(RateLimits {
            default_per_minute: 3,
            retry_after: false,
            reset_precision: precision,
            ..RateLimits::scaled(120.0)
        }),
        ..Default::default()
    })
    .await
    .expect("emulator starts")
}

#[tokio::test(flavor = "multi_thread")]
async fn without_retry_after_and_with_a_reset_to_the_minute_every_answer_is_whole() {
    const SQL: &str = "SELECT * FROM user_role_assignments ORDER BY account_id, resource_id, role";
    let free = emulator(spec(12, 0), Faults::default(), None).await;
    let expected = text(&succeeded(
        &orgsql_on(&free)
            .args(["--format", "csv", "-c", SQL])
            .output()
            .expect("orgsql runs"),
        "the oracle",
    ));
    assert!(expected.lines().count() > 12, "{expected}");
    for precision in [ResetPrecision::Millis, ResetPrecision::Minute] {
        let emu = strict(precision).await;
        // The first 8 calls (one a user, 8 at a time) are held until all
        // are in flight, then let go at once: 3 a period pass, so at least
        // 2 draw a 429 whichever period they land in.
        let gate = emu.hold_after("/role-assignments", 0);
        let mut command = orgsql_on(&emu);
        command.args([
            "--format",
            "csv",
            "-c",
            SQL,
            "-c",
            "SELECT count(*) AS throttled FROM orgsql_requests WHERE status = 429",
        ]);
        let run = tokio::task::spawn_blocking(move || command.output().expect("orgsql runs"));
        gate.holding(8).await;
        gate.open();
        let output = run.await.expect("the run");
        let stdout = text(&succeeded(&output, &format!("{precision:?}")));
        let (answer, throttled) = stdout
            .split_once("throttled\n")
            .unwrap_or_else(|| panic!("two results: {stdout}"));
        assert!(answer == expected, "{precision:?}: {answer}");
        assert!(emu.throttled() >= 2, "{precision:?}: the 429 path ran");
        assert_eq!(
            throttled.trim(),
            emu.throttled().to_string(),
            "{precision:?}: every 429 the API sent was retried"
        );
    }
}
