//! The REPL, driven through a pseudo-terminal as a user would: the real
//! binary against the emulator.

use crate::common::*;
use orgsql::emulator::Faults;
use rexpect::reader::Options;
use rexpect::session::{PtySession, spawn_with_options};

const PROMPT: &str = "orgsql> ";

fn repl(emu: &orgsql::emulator::Emulator, home: &std::path::Path) -> PtySession {
    let mut command = orgsql_on(emu);
    command
        .args(["--concurrency", "1"])
        .env("XDG_DATA_HOME", home)
        .env("COLUMNS", "200");
    let options = Options {
        timeout_ms: Some(60_000),
        strip_ansi_escape_codes: true,
    };
    spawn_with_options(command, options).expect("orgsql starts in a pty")
}

#[tokio::test(flavor = "multi_thread")]
async fn an_auditor_session() {
    let emu = emulator(spec(200, 20), Faults::default(), None).await;
    let org = emu.org().clone();
    // The fan-out over 200 users below is held at its fourth call until the
    // test has pressed Ctrl-C: it is still paging then, however fast the
    // machine is.
    let gate = emu.hold_after("/role-assignments", 3);
    let home = tempfile::tempdir().expect("temp dir");
    let out_file = home.path().join("admins.csv");
    let with_members = (0..org.groups.len())
        .filter(|&g| org.members_of(g).next().is_some())
        .count();
    let without_mfa = org
        .users
        .iter()
        .filter(|u| u.mfa_enabled == Some(false))
        .count();
    let home_path = home.path().to_path_buf();
    let out_path = out_file.clone();

    let role_calls = tokio::task::spawn_blocking(move || {
        let mut p = repl(&emu, &home_path);
        p.exp_string(PROMPT).expect("a prompt");

        // A join, over two lines.
        p.send_line("SELECT g.name, count(*) AS members FROM groups g").expect("send");
        p.send_line("JOIN group_members m USING (org_id, group_id) GROUP BY g.name;")
            .expect("send");
        p.exp_string(&format!("({with_members} rows)")).expect("the join's rows");

        // \d users: columns, types, descriptions, what reaches the API.
        // (rustyline redraws the prompt as keys arrive: wait for output, not prompts.)
        p.send_line("\\d users").expect("send");
        p.exp_string("users: Every user").expect("the table's description");
        let described = p.exp_string("resource_count").expect("the last column");
        assert!(described.contains("mfa_enabled"), "{described}");
        assert!(described.contains("boolean"), "{described}");
        assert!(described.contains("Two-step verification"), "{described}");
        assert!(described.contains("API narrows"), "{described}");
        // A watch's table, which no session has, is described all the same.
        p.send_line("\\d new_events").expect("send");
        p.exp_string("Only inside `orgsql watch`").expect("where it exists");
        p.exp_string("\r\ncontainer ").expect("its last column");

        // Tab completes a column of the table the statement names.
        p.send("SELECT count(*) AS n FROM users WHERE mfa_ena").expect("send");
        p.send("\t").expect("tab");
        p.send_line(" = false;").expect("send");
        let answer = p.exp_string("(1 row)").expect("the count");
        assert!(answer.contains("WHERE mfa_enabled"), "completed: {answer}");
        assert!(answer.contains(&format!("| {without_mfa} ")), "{answer}");

        // CSV, into a file and back.
        p.send_line("\\format csv").expect("send");
        p.exp_string("Output format is csv.").expect("csv");
        p.send_line(&format!("\\o {}", out_path.display())).expect("send");
        p.exp_string("Results go to").expect("to the file");
        // The time under every result (\timing is on at start) marks the end
        // of a statement whose rows went to the file.
        p.send_line("SELECT account_id FROM user_platform_roles WHERE role = 'atlassian/org-admin' ORDER BY 1;")
            .expect("send");
        p.exp_string("Time: ").expect("the statement ran");
        p.send_line("\\o").expect("send");
        p.exp_string("Results go to the screen again").expect("back to the screen");

        // Ctrl-C during a slow scan stops it; the session goes on.
        p.send_line("SELECT count(*) FROM user_role_assignments;").expect("send");
        p.exp_string("user_role_assignments:").expect("progress while it pages");
        p.send_control('c').expect("Ctrl-C");
        p.exp_string("cancelled").expect("the query is cancelled");
        let calls_at_cancel = emu.requests("/role-assignments");
        gate.open();
        p.send_line("SELECT count(*) AS domains FROM domains;").expect("send");
        p.exp_string("domains\r\n4\r\n").expect("the next query works, in CSV");

        p.send_line("\\q").expect("send");
        p.exp_eof().expect("orgsql ends");
        (calls_at_cancel, emu.requests("/role-assignments"))
    })
    .await
    .expect("the session ran");

    let (at_cancel, at_end) = role_calls;
    // Three answered, the fourth held (one call at a time), none after.
    assert_eq!(at_cancel, 4, "role calls when Ctrl-C was pressed");
    assert_eq!(at_end, at_cancel, "paging went on after Ctrl-C");

    let mut admins: Vec<String> = org
        .users
        .iter()
        .filter(|u| u.platform_roles.contains(&"atlassian/org-admin"))
        .map(|u| u.account_id.clone())
        .collect();
    admins.sort();
    let written = std::fs::read_to_string(&out_file).expect("\\o wrote the file");
    let expected = format!("account_id\n{}\n", admins.join("\n"));
    assert_eq!(written, expected);

    let history =
        std::fs::read_to_string(home.path().join("orgsql/history")).expect("history written");
    assert!(history.contains("FROM user_role_assignments;"), "{history}");
    // A statement typed over two lines comes back as one entry (rustyline
    // writes its newline as \n), as psql keeps it.
    assert!(
        history.contains("FROM groups g\\nJOIN group_members"),
        "{history}"
    );
}

/// psql's habits and results that fit the screen, in the demo.
#[test]
fn psql_habits_and_results_that_fit_the_screen() {
    let home = tempfile::tempdir().expect("temp dir");
    let mut command = orgsql_alone();
    command
        .arg("--demo")
        .env("XDG_DATA_HOME", home.path())
        .env("COLUMNS", "100");
    let options = Options {
        timeout_ms: Some(60_000),
        strip_ansi_escape_codes: true,
    };
    let mut p = spawn_with_options(command, options).expect("orgsql starts in a pty");
    p.exp_string(PROMPT).expect("a prompt");

    // No `;` yet: the continuation prompt says the statement is open, and a
    // backslash command typed now runs at once.
    p.send_line("SELECT 1 AS one").expect("send");
    p.exp_string("orgsql-> ").expect("the continuation prompt");
    p.send_line("\\d domains").expect("send");
    p.exp_string("domains: Domains")
        .expect("\\d ran mid-statement");
    p.send_line(";").expect("send");
    let answer = p.exp_string("(1 row)").expect("the statement ends");
    assert!(answer.contains("| one |"), "{answer}");

    // On the screen a long result is cut, and says so.
    p.send_line("SELECT * FROM events;").expect("send");
    let cut = p.exp_string("shows every column)").expect("the note");
    assert!(cut.contains("rows, first 40 shown; \\maxrows 0"), "{cut}");
    let columns = orgsql::tables::find("events").map(|t| t.columns.len());
    assert!(
        cut.contains(&format!(
            "of {} columns hidden; ",
            columns.unwrap_or_default()
        )),
        "{cut}"
    );

    // \x: one field a line.
    p.send_line("\\x on").expect("send");
    p.exp_string("Expanded display is on.").expect("\\x");
    p.send_line("SELECT name, claim_status FROM domains ORDER BY name LIMIT 1;")
        .expect("send");
    let record = p.exp_string("(1 row)").expect("one record");
    assert!(record.contains("-[ RECORD 1 ]"), "{record}");
    assert!(record.contains("\r\nname         | "), "{record}");
    assert!(record.contains("\r\nclaim_status | "), "{record}");
    p.send_line("\\x off").expect("send");
    p.exp_string("Expanded display is off.").expect("\\x off");

    // A misspelt table: the nearest name, and where to look.
    p.send_line("SELECT * FROM usres;").expect("send");
    p.exp_string("no table usres; did you mean users? (\\d lists the tables)")
        .expect("a suggestion");

    // Ctrl-C stops a statement that computes and the session goes on.
    // Uncancelled, it runs for hours. Its one new page is the groups'
    // (events are cached): once the progress line counts that page, all
    // that is left is to compute.
    p.send_line(
        "SELECT count(*) FROM groups g CROSS JOIN events a CROSS JOIN events b \
         CROSS JOIN events c;",
    )
    .expect("send");
    p.exp_string("groups: 1 pages").expect("it computes");
    p.send_control('c').expect("Ctrl-C");
    p.exp_string("cancelled")
        .expect("the statement is cancelled");
    p.send_line("SELECT count(*) AS n FROM domains;")
        .expect("send");
    p.exp_string("(1 row)").expect("the next statement runs");

    p.send_line("\\q").expect("send");
    p.exp_eof().expect("orgsql ends");
}
