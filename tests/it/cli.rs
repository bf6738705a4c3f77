//! The real `orgsql` binary, end to end.

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};

use crate::common::*;
use orgsql::emulator::Faults;

fn orgsql() -> Command {
    orgsql_alone()
}

async fn run(mut command: Command) -> Output {
    tokio::task::spawn_blocking(move || command.output().expect("orgsql runs"))
        .await
        .expect("join")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn demo_counts_users_without_credentials() {
    let mut command = orgsql();
    command.args(["--demo", "-c", "SELECT count(*) AS n FROM users"]);
    let output = run(command).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert!(stdout.contains("| 250 |"), "{stdout}");
    assert!(stdout.contains("(1 row)"), "{stdout}");

    // EXPLAIN's plan reads as DataFusion writes it: a line each.
    let mut command = orgsql();
    command.args(["--demo", "-c", "EXPLAIN SELECT count(*) FROM users"]);
    let output = run(command).await;
    let stdout = text(&output.stdout);
    assert!(
        stdout.lines().any(|l| l
            .trim_start_matches(['|', ' '])
            .starts_with("ApiScan: table=users")),
        "{stdout}"
    );
    assert!(!stdout.contains("\\n"), "{stdout}");
}

#[tokio::test]
async fn a_wrong_key_gives_the_401_message_exit_1_and_never_echoes_the_key() {
    let emu = emulator(spec(5, 5), Faults::default(), None).await;
    let secret = "sekrit-4f1d2c-not-the-key";
    let mut command = orgsql();
    command
        .args([
            "--base-url",
            &emu.base_url(),
            "--org-id",
            &emu.org().id,
            "-c",
            "SELECT * FROM users",
        ])
        .env("ATLASSIAN_API_KEY", secret);
    let output = run(command).await;
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("HTTP 401"), "{stderr}");
    assert!(stderr.contains("check the API key"), "{stderr}");
    assert!(stderr.contains("organization API key"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one-line error: {stderr}");
    assert!(!stderr.contains(secret) && !text(&output.stdout).contains(secret));
}

#[tokio::test]
async fn missing_credentials_say_how_to_set_them() {
    let mut command = orgsql();
    command.args(["-c", "SELECT 1"]);
    let output = run(command).await;
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    for needle in [
        "ATLASSIAN_ORG_ID",
        "ATLASSIAN_API_KEY",
        "--api-key-file",
        "--demo",
    ] {
        assert!(stderr.contains(needle), "{needle} missing from: {stderr}");
    }
}

#[tokio::test]
async fn key_file_and_script_file_with_several_statements_as_csv_and_json() {
    let emu = emulator(spec(12, 5), Faults::default(), None).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let key_file = dir.path().join("key");
    std::fs::write(
        &key_file,
        format!(
            "{}\n",
            emu.connection_json()["api_key"].as_str().expect("key")
        ),
    )
    .expect("write");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let script = dir.path().join("audit.sql");
    std::fs::write(
        &script,
        "SELECT name FROM domains ORDER BY name;\nSELECT count(*) AS n FROM users;\n",
    )
    .expect("write");
    let base = ["--base-url", &emu.base_url(), "--org-id", &emu.org().id];

    let mut command = orgsql();
    command.args(base).args([
        "--api-key-file",
        key_file.to_str().expect("utf-8"),
        "-f",
        script.to_str().expect("utf-8"),
    ]);
    command.args(["--format", "csv"]);
    let output = run(command).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(
        text(&output.stdout),
        "name\nacme-eu.com\nacme-labs.com\nacme.com\nacme.io\nn\n12\n"
    );
    assert_eq!(text(&output.stderr), "");

    // A key file others can read is said (and still used).
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let mut command = orgsql();
    command.args(base).args([
        "--api-key-file",
        key_file.to_str().expect("utf-8"),
        "-c",
        "SELECT 1",
    ]);
    let output = run(command).await;
    assert!(output.status.success());
    assert!(
        text(&output.stderr).contains("can be read by other users (mode 644)"),
        "{}",
        text(&output.stderr)
    );
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).expect("chmod");

    let mut command = orgsql();
    command.args(base).args([
        "--api-key-file",
        key_file.to_str().expect("utf-8"),
        "--format",
        "json",
    ]);
    command.args(["-c", "SELECT count(*) AS n FROM users"]);
    // No row is still a JSON document; a NULL is written, not left out.
    command.args(["-c", "SELECT account_id FROM users WHERE false"]);
    command.args(["-c", "SELECT 1 AS n, CAST(NULL AS boolean) AS mfa_enabled"]);
    let output = run(command).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(
        text(&output.stdout),
        "[{\"n\":12}]\n[]\n[{\"n\":1,\"mfa_enabled\":null}]\n"
    );
}

#[tokio::test]
async fn sql_errors_exit_1_with_one_line() {
    let mut command = orgsql();
    command.args(["--demo", "-c", "SELECT nope FROM users"]);
    let output = run(command).await;
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(stderr.starts_with("error: -c: "), "{stderr}");
    assert!(stderr.contains("nope"), "{stderr}");
}

/// A table the session lacks is named with the nearest ones, however it is
/// qualified; a query that fails for another reason keeps its own error,
/// even beside a table read from a file path.
#[tokio::test]
async fn a_missing_table_is_named_and_other_errors_are_not_taken_for_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("people.csv");
    std::fs::write(&file, "email\na@example.com\n").expect("write csv");
    for (sql, expected) in [
        (
            "SELECT * FROM usres".to_string(),
            "no table usres; did you mean users?",
        ),
        (
            "SELECT * FROM old.users".to_string(),
            "no table old.users; did you mean users",
        ),
        (
            "SELECT u.email FROM users u JOIN grops g ON true".to_string(),
            "no table grops; did you mean groups",
        ),
        (format!("SELECT nope FROM '{}'", file.display()), "nope"),
        (
            format!(
                "SELECT u.nope FROM users u JOIN '{}' p USING (email)",
                file.display()
            ),
            "nope",
        ),
    ] {
        let mut command = orgsql();
        command.args(["--demo", "-c", &sql]);
        let output = run(command).await;
        assert_eq!(output.status.code(), Some(1), "{sql}");
        let stderr = text(&output.stderr);
        assert!(stderr.contains(expected), "{sql}: {stderr}");
        if !expected.starts_with("no table") {
            assert!(!stderr.contains("no table"), "{sql}: {stderr}");
        }
    }
}

/// What a flag names and cannot be read is said once, with what to do.
#[tokio::test]
async fn a_snapshot_that_is_not_one_is_said_once_with_what_to_do() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broken = dir.path().join("broken");
    std::fs::create_dir_all(&broken).expect("folder");
    std::fs::write(broken.join("manifest.json"), "{").expect("manifest");
    for (folder, expected) in [
        (
            dir.path().join("absent"),
            "no manifest.json there; is it a folder or prefix written by `orgsql export`?",
        ),
        (broken, "manifest.json: not an orgsql manifest: "),
    ] {
        let mut command = orgsql();
        command
            .arg("--snapshot")
            .arg(&folder)
            .args(["-c", "SELECT 1"]);
        let output = run(command).await;
        assert_eq!(output.status.code(), Some(1));
        let stderr = text(&output.stderr);
        assert!(stderr.starts_with("error: --snapshot: "), "{stderr}");
        assert_eq!(stderr.matches(expected).count(), 1, "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
    let mut command = orgsql();
    command.args(["--snapshot", "https://example.com/snap", "-c", "SELECT 1"]);
    let output = run(command).await;
    assert_eq!(output.status.code(), Some(2), "a usage error");
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("reads and writes https:// nowhere; use a folder"),
        "{stderr}"
    );
}

#[tokio::test]
async fn the_emulator_subcommand_serves_other_clients() {
    let mut child = orgsql()
        .args(["emulator", "--port", "0", "--users", "33", "--events", "10"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("emulator starts");
    let stdout = child.stdout.take().expect("stdout");
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).map(|_| line)
    })
    .await
    .expect("join")
    .expect("first line");
    let connection: serde_json::Value = serde_json::from_str(&line).expect("one JSON line");
    let field = |name: &str| connection[name].as_str().expect("field").to_string();

    let mut command = orgsql();
    command
        .args([
            "--base-url",
            &field("base_url"),
            "--org-id",
            &field("org_id"),
            "--format",
            "csv",
        ])
        .args(["-c", "SELECT count(*) AS n FROM users"])
        .env("ATLASSIAN_API_KEY", field("api_key"));
    let output = run(command).await;
    let _ = child.kill();
    let _ = child.wait();
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(text(&output.stdout), "n\n33\n");
}

#[tokio::test]
async fn a_script_reuses_pages_unless_told_not_to() {
    let script = [
        "-c",
        "SELECT count(*) FROM users",
        "-c",
        "SELECT count(*) FROM users u JOIN group_members m USING (org_id, account_id)",
        "-c",
        "SELECT count(*) AS requests FROM orgsql_requests WHERE table_name = 'users'",
        "--format",
        "csv",
    ];
    let mut cached = orgsql();
    cached.arg("--demo").args(script);
    let mut uncached = orgsql();
    uncached.args(["--demo", "--no-cache"]).args(script);
    // 250 demo users, 100 a page: three pages a listing of users, and
    // users/count before and after it (5 requests); read twice without the
    // cache, once with it (the join's listing is the first, replayed).
    for (command, requests) in [(cached, "5"), (uncached, "10")] {
        let output = run(command).await;
        assert!(output.status.success(), "{}", text(&output.stderr));
        let stdout = text(&output.stdout);
        assert_eq!(stdout.lines().last(), Some(requests), "{stdout}");
    }
}

/// `-v`: one line a request on stderr, with what the request was and how it went.
#[tokio::test(flavor = "multi_thread")]
async fn verbose_prints_a_line_per_request() {
    let emu = emulator(spec(30, 10), Faults::default(), Some(10)).await;
    let mut command = orgsql_on(&emu);
    command.args(["-v", "-c", "SELECT count(*) FROM users"]);
    let output = run(command).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stderr = text(&output.stderr);
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("/users/search"))
        .collect();
    assert_eq!(
        lines.len() as u64,
        emu.requests("/users/search"),
        "{stderr}"
    );
    // The rest: users/count, before the listing and after it.
    let counts = stderr
        .lines()
        .filter(|l| l.contains("/users/count"))
        .count() as u64;
    assert_eq!(counts, 2, "{stderr}");
    assert_eq!(lines.len() as u64 + counts, emu.requests(""), "{stderr}");
    let org = &emu.org().id;
    for line in lines {
        assert!(
            line.contains("POST /admin/v2/orgs/{orgId}/directories/{directoryId}/users/search")
        );
        assert!(line.contains(&format!("/admin/v2/orgs/{org}/directories/-/users/search")));
        assert!(
            line.contains("-> 200") && line.contains("attempt 1"),
            "{line}"
        );
        assert!(line.contains("waited") && line.contains("bytes"), "{line}");
    }
}

/// Without a terminal, a long run says now and then that it is still going.
/// Nothing here depends on how long anything takes: the notice threshold is
/// 0 (a line at the first look after a page), and the emulator holds the
/// second page of users until the test has read that line, so the run
/// cannot end before it.
#[tokio::test(flavor = "multi_thread")]
async fn a_long_run_says_it_is_still_running_without_a_terminal() {
    let emu = emulator(spec(40, 10), Faults::default(), Some(2)).await;
    let gate = emu.hold_after("/users/search", 1);
    let mut child = orgsql_on(&emu)
        .env("ORGSQL_NOTICE_SECS", "0")
        .args(["--format", "csv", "-c", "SELECT count(*) AS n FROM users"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("orgsql runs");
    let stderr = child.stderr.take().expect("stderr");
    let (send, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if send.send(line).is_err() {
                break;
            }
        }
    });
    // The minute only bounds a failure (no notice while the run is held).
    let notice = tokio::task::spawn_blocking(move || {
        let mut before = Vec::new();
        loop {
            match lines.recv_timeout(std::time::Duration::from_secs(60)) {
                Ok(line) if line.contains("still running") => return Ok(line),
                Ok(line) => before.push(line),
                Err(_) => return Err(before),
            }
        }
    })
    .await
    .expect("join");
    gate.open();
    let output = tokio::task::spawn_blocking(move || child.wait_with_output().expect("exit"))
        .await
        .expect("join");
    let notice = notice.unwrap_or_else(|before| panic!("no notice; stderr: {before:?}"));
    assert!(
        notice.starts_with("orgsql: still running after"),
        "{notice}"
    );
    assert!(notice.contains("users: 1 pages, 2 rows"), "{notice}");
    assert!(output.status.success());
    assert_eq!(text(&output.stdout), "n\n40\n");
}

/// `orgsql ... | head`: when the reader goes away, orgsql ends quietly.
#[tokio::test(flavor = "multi_thread")]
async fn a_closed_pipe_ends_quietly() {
    use std::io::Read;
    for format in ["table", "csv", "json"] {
        let mut child = orgsql()
            .args(["--demo", "--format", format, "-c", "SELECT * FROM events"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("orgsql runs");
        let mut first = [0u8; 64];
        child
            .stdout
            .take()
            .expect("stdout")
            .read_exact(&mut first)
            .expect("some output");
        // The reader (dropped above) is gone; the rest cannot be written.
        let output = tokio::task::spawn_blocking(move || child.wait_with_output().expect("exit"))
            .await
            .expect("join");
        assert_eq!(output.status.code(), Some(0), "{format}");
        assert_eq!(text(&output.stderr), "", "{format}");
    }
}

/// `--output` takes one query's result, or refuses before anything runs;
/// errors point at the statement; `--vertical` holds in a pipe.
#[tokio::test]
async fn one_shot_output_errors_and_vertical() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("out.csv");
    let file_arg = file.to_str().expect("utf-8").to_string();

    let mut command = orgsql();
    command.args(["--demo", "--format", "csv", "--output", &file_arg]);
    command.args(["-c", "SELECT 1 AS one", "-c", "SELECT 2 AS two"]);
    let output = run(command).await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("a file holds the result of one query"),
        "{}",
        text(&output.stderr)
    );
    assert!(!file.exists(), "nothing is written when refused");

    // DDL beside the one query: it says what it did, the query goes to the file.
    let mut command = orgsql();
    command.args(["--demo", "--format", "csv", "--output", &file_arg]);
    command.args([
        "-c",
        "CREATE VIEW v AS SELECT 1 AS x",
        "-c",
        "SELECT * FROM v",
    ]);
    let output = run(command).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(text(&output.stdout), "Created view v.\n");
    assert_eq!(std::fs::read_to_string(&file).expect("written"), "x\n1\n");

    // A parse error: the statement, a caret under where it went wrong.
    let mut command = orgsql();
    command.args(["--demo", "-c", "SELECT * FROM users LIMT 5"]);
    let output = run(command).await;
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines[0], "SELECT * FROM users LIMT 5", "{stderr}");
    assert_eq!(lines[1], format!("{}^", " ".repeat(25)), "{stderr}");
    assert!(
        lines[2].starts_with("error: -c: syntax error: "),
        "{stderr}"
    );

    // A script's failing statement, by number and line.
    let script = dir.path().join("audit.sql");
    std::fs::write(&script, "SELECT 1;\n\nSELECT nope\n  FROM users;\n").expect("script");
    let mut command = orgsql();
    command.args(["--demo", "-f", script.to_str().expect("utf-8")]);
    let output = run(command).await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("audit.sql: statement 2, line 3: "),
        "{}",
        text(&output.stderr)
    );

    // Asked for by name, one field a line holds in a pipe, whole.
    let mut command = orgsql();
    command.args(["--demo", "--vertical", "-c"]);
    command.arg("SELECT name, claim_status FROM domains ORDER BY name LIMIT 1");
    let output = run(command).await;
    assert_eq!(
        text(&output.stdout),
        "-[ RECORD 1 ]-------------\nname         | acme-eu.com\nclaim_status | unverified\n(1 row)\n"
    );
}

/// Backslash commands are the REPL's and also `-c`'s, a script's and
/// standard input's, as in psql; `FROM t` selects every column.
#[tokio::test]
async fn backslash_commands_work_in_every_mode() {
    // What the REPL prints for `\d users`: a line per column.
    let mut command = orgsql();
    command.args(["--demo", "-c", "\\d users"]);
    let output = run(command).await;
    let described = text(&succeeded(&output, "-c '\\d users'"));
    assert!(described.starts_with("users: "), "{described}");
    assert!(described.contains("\naccount_id "), "{described}");
    assert!(described.contains("\nmfa_enabled "), "{described}");
    // The same on standard input.
    let mut command = orgsql();
    command
        .arg("--demo")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("orgsql starts");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(b"\\d users\n").expect("written");
    }
    let output = child.wait_with_output().expect("orgsql ends");
    assert_eq!(text(&succeeded(&output, "\\d users on stdin")), described);
    // A script: SQL, a command mid-script (\x), SQL again, \q ends it.
    let dir = tempfile::tempdir().expect("temp dir");
    let script = dir.path().join("s.sql");
    std::fs::write(
        &script,
        "SELECT 1 AS a;\n\\x on\nSELECT 2 AS b,\n  3 AS c;\n\\q\nSELECT 'never' AS d;\n",
    )
    .expect("script");
    let mut command = orgsql();
    command.args(["--demo", "-f"]).arg(&script);
    let output = run(command).await;
    let printed = text(&succeeded(&output, "a script with commands"));
    assert!(printed.contains("| a |\n"), "{printed}");
    assert!(printed.contains("Expanded display is on.\n"), "{printed}");
    assert!(printed.contains("b | 2\nc | 3\n"), "{printed}");
    assert!(!printed.contains("never"), "{printed}");
    // A bare FROM selects every column (DataFusion alone gives none).
    let mut command = orgsql();
    command.args(["--demo", "--format", "csv", "-c", "FROM orgs"]);
    let output = run(command).await;
    let rows = text(&succeeded(&output, "FROM orgs"));
    assert!(rows.starts_with("org_id,"), "{rows}");
    assert_eq!(rows.lines().count(), 2, "{rows}");
}

/// orgsql's own multi-line error prints as lines; a statement of a script
/// that fails is named with its line in the whole script.
/// `new_events` and `new_event_context` exist only inside a watch's poll:
/// `\d` describes them anywhere, with the columns (names and types) of
/// `events` and `event_context`, and a query of one outside a watch says
/// where it exists.
#[tokio::test]
async fn a_watchs_tables_are_described_outside_a_watch() {
    for (watch_table, of) in [
        ("new_events", "events"),
        ("new_event_context", "event_context"),
    ] {
        let mut command = orgsql();
        command.args(["--demo", "-c", &format!("\\d {watch_table}")]);
        let output = run(command).await;
        let described = text(&succeeded(&output, watch_table));
        assert!(
            described.starts_with(&format!("{watch_table}: ")),
            "{described}"
        );
        assert!(described.contains("inside `orgsql watch`"), "{described}");
        // (name, type) of each column, from the lines after the header.
        let columns = |text: &str| -> Vec<(String, String)> {
            text.lines()
                .skip_while(|l| !l.starts_with("column "))
                .skip(1)
                .map(|l| {
                    let words: Vec<&str> = l.split_whitespace().collect();
                    (words[0].to_string(), words[1].to_string())
                })
                .collect()
        };
        // The columns a query of the table itself has, in order.
        let mut command = orgsql();
        command.args(["--demo", "--format", "csv", "-c"]);
        command.arg(format!("SELECT * FROM {of} LIMIT 1"));
        let output = run(command).await;
        let header = text(&succeeded(&output, of));
        let names: Vec<String> = header
            .lines()
            .next()
            .expect("a header")
            .split(',')
            .map(str::to_string)
            .collect();
        let described_columns = columns(&described);
        assert_eq!(
            described_columns
                .iter()
                .map(|(name, _)| name.clone())
                .collect::<Vec<_>>(),
            names,
            "{described}"
        );
        // The types \d gives the catalog table (its third column is which
        // filters reach the API: a watch's table has none to give).
        let mut command = orgsql();
        command.args(["--demo", "-c", &format!("\\d {of}")]);
        let output = run(command).await;
        let types: Vec<String> = columns(&text(&succeeded(&output, of)))
            .into_iter()
            .map(|(_, t)| t)
            .collect();
        assert_eq!(
            described_columns
                .into_iter()
                .map(|(_, t)| t)
                .collect::<Vec<_>>(),
            types
        );

        let mut command = orgsql();
        command.args(["--demo", "-c"]);
        command.arg(format!("SELECT count(*) FROM {watch_table}"));
        let output = run(command).await;
        assert_eq!(output.status.code(), Some(1));
        let stderr = text(&output.stderr);
        assert!(
            stderr.contains(&format!(
                "no table {watch_table}: it exists only inside `orgsql watch`"
            )),
            "{stderr}"
        );
    }
}

#[tokio::test]
async fn errors_print_their_own_lines_and_name_the_statement() {
    let dir = tempfile::tempdir().expect("temp dir");
    let script = dir.path().join("s.sql");
    std::fs::write(&script, "SELECT 1;\n\\x on\n\nSELECT nope\nFROM users;\n").expect("script");
    let mut command = orgsql();
    command.args(["--demo", "-f"]).arg(&script);
    let output = run(command).await;
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("statement 2, line 4: "), "{stderr}");
    // DataFusion's message has a second line, "Valid fields are ...".
    assert!(stderr.contains("\nValid fields are"), "{stderr}");
    assert!(!stderr.contains("\\n"), "{stderr}");
}
