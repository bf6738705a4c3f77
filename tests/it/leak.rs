//! The key never leaves the `Authorization` header. With a distinctive key,
//! every mode and subcommand runs, errors of each kind included; its bytes
//! appear in no output, no file orgsql writes (history, exports, manifests,
//! reports) and no `orgsql_requests` row.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use orgsql::emulator::{Emulator, EmulatorConfig, Faults};
use rexpect::reader::Options;
use rexpect::session::spawn_with_options;

use crate::common::*;

const KEY: &str = "LEAK-CANARY-7f3a9c2e-0b1d-4e5f";

async fn keyed(faults: Faults) -> Emulator {
    Emulator::start(EmulatorConfig {
        org: spec(30, 200),
        faults,
        api_key: Some(KEY.to_string()),
        ..Default::default()
    })
    .await
    .expect("emulator starts")
}

/// The binary on `emu`, the key from the environment, files under `home`.
fn orgsql(emu: &Emulator, home: &Path) -> Command {
    let mut command = orgsql_on(emu);
    command.env("HOME", home).env("XDG_DATA_HOME", home);
    command
}

/// Every file under `dir` holds no byte string of the key.
fn no_key_in_files(dir: &Path) {
    for path in files_below(dir) {
        let bytes = std::fs::read(&path).expect("read");
        assert!(
            !bytes.windows(KEY.len()).any(|w| w == KEY.as_bytes()),
            "the key is in {}",
            path.display()
        );
    }
}

fn no_key_in(what: &str, output: &Output) {
    for (stream, bytes) in [("stdout", &output.stdout), ("stderr", &output.stderr)] {
        let text = String::from_utf8_lossy(bytes);
        assert!(
            !text.contains(KEY),
            "the key is in the {stream} of {what}:\n{text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_key_appears_nowhere() {
    let emu = keyed(Faults::default()).await;
    let home = tempfile::tempdir().expect("temp dir");
    let dir = |name: &str| home.path().join(name).display().to_string();
    let runs: Vec<Vec<String>> = vec![
        vec!["-c".into(), "SELECT * FROM users LIMIT 3".into()],
        vec![
            "-v".into(),
            "-c".into(),
            "SELECT count(*) FROM user_role_assignments".into(),
        ],
        vec![
            "--format".into(),
            "json".into(),
            "-c".into(),
            "SELECT * FROM domains".into(),
        ],
        vec![
            "--format".into(),
            "ndjson".into(),
            "-c".into(),
            "SELECT * FROM groups".into(),
        ],
        vec![
            "--format".into(),
            "csv".into(),
            "-c".into(),
            "SELECT * FROM events".into(),
        ],
        vec![
            "--format".into(),
            "parquet".into(),
            "--output".into(),
            dir("users.parquet"),
            "-c".into(),
            "SELECT * FROM users".into(),
        ],
        vec![
            "-c".into(),
            "SELECT * FROM users".into(),
            "-c".into(),
            "SELECT * FROM orgsql_requests".into(),
        ],
        vec!["-c".into(), "SELECT nonsense FROM nowhere".into()],
        vec!["export".into(), "--out".into(), dir("snap-1")],
        vec!["export".into(), "--out".into(), dir("snap-2")],
        vec!["diff".into(), dir("snap-1"), dir("snap-2")],
        vec!["check".into()],
        vec!["check".into(), "--format".into(), "json".into()],
        vec!["check".into(), "--format".into(), "junit".into()],
        vec![
            "check".into(),
            "--format".into(),
            "markdown".into(),
            "--output".into(),
            dir("report.md"),
        ],
        vec!["--help".into()],
    ];
    for args in &runs {
        let output = orgsql(&emu, home.path())
            .args(args)
            .output()
            .expect("orgsql runs");
        // Each ran as meant (a run that stopped early would leak nothing):
        // the SQL error fails, check passes or alarms, the rest succeed.
        let meant: &[i32] = match args[0].as_str() {
            "check" => &[0, 1],
            _ if args.iter().any(|a| a.contains("nonsense")) => &[1],
            _ => &[0],
        };
        let code = output.status.code().unwrap_or(-1);
        assert!(
            meant.contains(&code),
            "{args:?} exited {code}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        no_key_in(&args.join(" "), &output);
    }
    for written in [
        "users.parquet",
        "snap-1/manifest.json",
        "snap-2/manifest.json",
        "report.md",
    ] {
        assert!(home.path().join(written).exists(), "{written} was written");
    }
    // With the key in a file instead of the environment.
    let key_file = home.path().join("key");
    std::fs::write(&key_file, format!("{KEY}\n")).expect("key file");
    let output = orgsql(&emu, home.path())
        .env_remove("ATLASSIAN_API_KEY")
        .args([
            "--api-key-file",
            &key_file.display().to_string(),
            "-v",
            "-c",
            "SELECT * FROM orgs",
        ])
        .output()
        .expect("orgsql runs");
    assert!(output.status.success());
    no_key_in("--api-key-file", &output);
    std::fs::remove_file(&key_file).expect("remove the key file");

    // The REPL, with its history.
    let mut repl_command = orgsql(&emu, home.path());
    repl_command.env("COLUMNS", "200");
    let options = Options {
        timeout_ms: Some(60_000),
        strip_ansi_escape_codes: true,
    };
    let transcript = tokio::task::spawn_blocking(move || {
        let mut p = spawn_with_options(repl_command, options).expect("a pty");
        p.exp_string("orgsql> ").expect("prompt");
        p.send_line("SELECT count(*) FROM users;").expect("send");
        p.exp_string("(1 row)").expect("an answer");
        // One field a line: every column of the log, however wide.
        p.send_line("\\x on").expect("send");
        p.exp_string("Expanded display is on").expect("expanded");
        p.send_line("SELECT * FROM orgsql_requests;").expect("send");
        p.exp_string("wait_ms").expect("the requests");
        p.exp_string("Time:").expect("the requests");
        p.send_line("SELECT oops;").expect("send");
        p.exp_string("error").expect("an error");
        p.send_line("\\stats").expect("send");
        p.exp_string("requests this session").expect("stats");
        p.send_line("\\q").expect("send");
        p.exp_eof().expect("quits")
    })
    .await
    .expect("join");
    assert!(!transcript.contains(KEY), "the key is in the REPL session");
    assert!(
        home.path().join("orgsql/history").exists(),
        "the REPL wrote its history"
    );
    no_key_in_files(home.path());
}

#[tokio::test(flavor = "multi_thread")]
async fn no_error_shows_the_key() {
    let home = tempfile::tempdir().expect("temp dir");
    // Rate limited until retries run out; unavailable; a day-long wait.
    for faults in [
        Faults {
            fail_every: Some(1),
            ..Faults::default()
        },
        Faults {
            fail_every: Some(1),
            retry_after_secs: 86_400,
            ..Faults::default()
        },
        Faults {
            latency: Duration::from_millis(1),
            repeat_cursor: true,
            ..Faults::default()
        },
    ] {
        let emu = keyed(faults).await;
        let output = orgsql(&emu, home.path())
            .args(["--max-retries", "1", "-v", "-c", "SELECT * FROM users"])
            .output()
            .expect("orgsql runs");
        assert_eq!(output.status.code(), Some(1));
        no_key_in("an API failure", &output);
    }
    let emu = keyed(Faults::default()).await;
    // A key the API refuses (401), and an organization it does not know (404).
    let wrong_key = orgsql(&emu, home.path())
        .env("ATLASSIAN_API_KEY", format!("{KEY}-revoked"))
        .args(["-c", "SELECT * FROM users"])
        .output()
        .expect("orgsql runs");
    assert_eq!(wrong_key.status.code(), Some(1));
    no_key_in("a 401", &wrong_key);
    let other_org = orgsql_at(&emu.base_url(), "00000000-0000-4000-8000-000000000009", KEY)
        .args(["-c", "SELECT * FROM domains"])
        .output()
        .expect("orgsql runs");
    assert_eq!(other_org.status.code(), Some(1));
    no_key_in("a 404", &other_org);
    // Nothing listening.
    let nowhere = orgsql_at("http://127.0.0.1:9", &emu.org().id, KEY)
        .args(["--max-retries", "0", "-c", "SELECT * FROM domains"])
        .output()
        .expect("orgsql runs");
    assert_eq!(nowhere.status.code(), Some(1));
    no_key_in("no server", &nowhere);
    no_key_in_files(home.path());
}
