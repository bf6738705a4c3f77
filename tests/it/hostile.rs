//! Hostile answers: text that would drive the terminal, listings that would
//! never end, bodies that are not the API's, ids and manifests that would
//! lead elsewhere, and a stop in the middle of a write.

use std::process::Command;
use std::sync::Arc;

use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use orgsql::api::{Client, ClientConfig};
use orgsql::emulator::Faults;

use crate::common::*;

/// Characters a terminal acts on or hides, as they may come from the API.
/// A display name a markdown or HTML viewer would act on.
const MARKUP: &str = "<img src=x onerror=alert(1)>[click](javascript:alert(1))";
const HOSTILE: &str = "Mallory\u{1b}[2J\u{1b}]0;pwned\u{7}\r\u{8}\u{202e}nosrep\u{0}end";
const RAW: [char; 6] = ['\u{1b}', '\u{7}', '\r', '\u{8}', '\u{202e}', '\u{0}'];

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn no_raw_controls(what: &str, text: &str) {
    for c in RAW {
        assert!(!text.contains(c), "{what} holds {c:?} raw:\n{text:?}");
    }
}

/// A server of our own answering every request with `answer(path, n)`
/// (n counts requests from 1): the API turned hostile.
struct Hostile {
    base_url: String,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn hostile(answer: impl Fn(&str, u64) -> Response + Send + Sync + 'static) -> Hostile {
    let answer = Arc::new(answer);
    let count = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let app = axum::Router::new().fallback(move |uri: Uri| {
        let (answer, count) = (answer.clone(), count.clone());
        async move {
            let n = count.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            answer(uri.path(), n)
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base_url = format!("http://{}", listener.local_addr().expect("address"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await;
    });
    Hostile {
        base_url,
        _stop: stop,
    }
}

const ORG: &str = "00000000-0000-4000-8000-000000000001";

fn client(base_url: &str) -> Client {
    let mut config = ClientConfig::new(base_url, ORG, orgsql::api::ApiKey::new("k"));
    config.retry.max_attempts = 1;
    Client::new(config).expect("client")
}

async fn error_of(base_url: &str, sql: &str) -> String {
    let ctx = orgsql::context(&client(base_url)).expect("session");
    match query(&ctx, sql).await {
        Ok(_) => panic!("{sql}: expected an error"),
        Err(e) => orgsql::error::message(&e),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn terminal_escapes_in_api_text_are_shown_not_obeyed() {
    let emu = emulator(spec(20, 20), Faults::default(), None).await;
    let id = emu.org().users[3].account_id.clone();
    emu.change(|org| {
        org.users[3].name = HOSTILE.to_string();
        org.groups[0].name = HOSTILE.to_string();
        org.groups[1].name = MARKUP.to_string();
    });
    let sql = format!("SELECT name FROM users WHERE account_id = '{id}'");
    let run = |args: &[&str]| {
        let output = orgsql_on(&emu).args(args).output().expect("orgsql runs");
        assert!(output.status.success(), "{}", text(&output.stderr));
        text(&output.stdout)
    };
    // The table shows every character, escaped.
    let table = run(&["-c", &sql]);
    no_raw_controls("the table", &table);
    assert!(
        table.contains("Mallory\\u{1b}[2J\\u{1b}]0;pwned\\u{7}\\r\\u{8}\\u{202e}nosrep\\u{0}end"),
        "{table}"
    );
    // Machine formats keep the data exact.
    assert!(run(&["--format", "csv", "-c", &sql]).contains(HOSTILE));
    let json = run(&["--format", "json", "-c", &sql]);
    let rows: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(rows[0]["name"], HOSTILE);

    // The compliance reports a human reads.
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("names.sql"),
        "-- id: names\n-- title: Names\n-- severity: low\n-- rationale: A test.\n\
         -- remediation: None.\nSELECT name AS resource, 'alarm' AS status, name AS reason \
         FROM groups\n",
    )
    .expect("control");
    let dir_arg = dir.path().display().to_string();
    for format in ["table", "markdown"] {
        let output = orgsql_on(&emu)
            .args([
                "check",
                "--dir",
                &dir_arg,
                "--controls",
                "names",
                "--format",
                format,
            ])
            .output()
            .expect("orgsql runs");
        assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
        let report = text(&output.stdout);
        no_raw_controls(format, &report);
        // Markdown escapes its own backslash and brackets, so a viewer
        // shows what the table shows.
        let shown = match format {
            "markdown" => "Mallory\\\\u{1b}\\[2J",
            _ => "Mallory\\u{1b}[2J",
        };
        assert!(report.contains(shown), "{report}");
        if format == "markdown" {
            // A name that is markup renders as its text, not as a link or HTML.
            let unescaped_link = report.replace("\\]", "").contains("](javascript");
            assert!(!report.contains("<img") && !unescaped_link, "{report}");
            assert!(
                report.contains(
                    "&lt;img src=x onerror=alert\\(1\\)&gt;\\[click\\]\\(javascript:alert\\(1\\)\\)"
                ),
                "{report}"
            );
        }
    }
    let junit = orgsql_on(&emu)
        .args([
            "check",
            "--dir",
            &dir_arg,
            "--controls",
            "names",
            "--format",
            "junit",
        ])
        .output()
        .expect("orgsql runs");
    roxmltree::Document::parse(&text(&junit.stdout)).expect("JUnit stays valid XML");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_page_that_is_not_the_apis_json_is_one_clear_error() {
    let login = hostile(|_, _| {
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            format!("<html><title>Sign in {HOSTILE}</title></html>"),
        )
            .into_response()
    })
    .await;
    let error = error_of(&login.base_url, "SELECT * FROM domains").await;
    assert!(
        error.contains("GET /admin/v1/orgs/{orgId}/domains"),
        "{error}"
    );
    assert!(error.contains("text/html"), "{error}");
    assert!(error.contains("<html><title>Sign in"), "{error}");
    assert!(
        error.contains("proxy") && error.contains("--base-url"),
        "{error}"
    );
    no_raw_controls("the error", &error);

    // The same through the binary: one line on stderr, nothing raw.
    let output = orgsql_at(&login.base_url, ORG, "k")
        .args(["-c", "SELECT * FROM domains"])
        .output()
        .expect("orgsql runs");
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    no_raw_controls("stderr", &stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");

    let other = hostile(|_, _| {
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"items": []}"#,
        )
            .into_response()
    })
    .await;
    let error = error_of(&other.base_url, "SELECT * FROM domains").await;
    assert!(
        error.contains("not the page this endpoint documents"),
        "{error}"
    );
    assert!(error.contains("items"), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_listing_that_repeats_itself_with_fresh_cursors_is_stopped() {
    // Every page: the same two users, and a cursor never seen before.
    let server = hostile(|_, n| {
        let body = serde_json::json!({
            "data": [{"accountId": "a-1", "name": "A"}, {"accountId": "a-2", "name": "B"}],
            "links": {"next": format!("cursor-{n}")},
        });
        axum::Json(body).into_response()
    })
    .await;
    let error = error_of(&server.base_url, "SELECT * FROM users").await;
    assert!(error.contains("same item twice"), "{error}");
    assert!(error.contains("/users/search"), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_page_over_the_size_cap_is_refused_as_it_arrives() {
    let big = || format!(r#"{{"data": [], "pad": "{}"}}"#, "x".repeat(50_000));
    let stated = hostile(move |_, _| {
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            big(),
        )
            .into_response()
    })
    .await;
    let streamed = hostile(move |_, _| {
        let chunks = (0..100).map(|_| Ok::<_, std::io::Error>("x".repeat(1000)));
        Response::new(axum::body::Body::from_stream(futures::stream::iter(chunks)))
    })
    .await;
    for server in [&stated, &streamed] {
        let mut config = ClientConfig::new(&server.base_url, ORG, orgsql::api::ApiKey::new("k"));
        config.max_page_bytes = 10_000;
        let ctx = orgsql::context(&Client::new(config).expect("client")).expect("session");
        let error = query(&ctx, "SELECT * FROM domains")
            .await
            .expect_err("refused");
        let error = orgsql::error::message(&error);
        assert!(error.contains("larger than 10000 bytes"), "{error}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_org_id_that_is_not_a_uuid_is_refused_before_any_request() {
    let emu = emulator(spec(5, 5), Faults::default(), None).await;
    for id in ["../../admin", "abc?x=1#y", "acme"] {
        let output = orgsql_at(&emu.base_url(), id, "k")
            .args(["-c", "SELECT * FROM users"])
            .output()
            .expect("orgsql runs");
        assert_eq!(output.status.code(), Some(1));
        let stderr = text(&output.stderr);
        assert!(stderr.contains("not a UUID"), "{stderr}");
        assert!(
            stderr.contains("admin.atlassian.com/o/<org id>"),
            "{stderr}"
        );
    }
    assert_eq!(emu.requests(""), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_snapshot_cannot_point_outside_its_folder_and_corrupt_files_are_errors() {
    let emu = emulator(spec(10, 30), Faults::default(), None).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let export = orgsql_on(&emu)
        .args([
            "export",
            "--out",
            &dir.path().display().to_string(),
            "--tables",
            "users,domains",
        ])
        .output()
        .expect("orgsql runs");
    assert!(export.status.success(), "{}", text(&export.stderr));
    let manifest_path = dir.path().join("manifest.json");
    let original = std::fs::read_to_string(&manifest_path).expect("manifest");
    let snapshot = |sql: &str| {
        orgsql_alone()
            .args(["--snapshot", &dir.path().display().to_string(), "-c", sql])
            .output()
            .expect("orgsql runs")
    };
    for outside in ["../users.parquet", "/etc/passwd", "sub/../../x.parquet"] {
        let manifest = original.replace("\"users.parquet\"", &format!("{outside:?}"));
        std::fs::write(&manifest_path, manifest).expect("write");
        let output = snapshot("SELECT count(*) FROM domains");
        assert_eq!(output.status.code(), Some(1));
        assert!(
            text(&output.stderr).contains("outside the snapshot folder"),
            "{}",
            text(&output.stderr)
        );
    }
    std::fs::write(&manifest_path, &original).expect("write");
    // A Parquet file cut short and one with bytes flipped: an error, not a panic.
    let file = dir.path().join("users.parquet");
    let bytes = std::fs::read(&file).expect("read");
    let mut flipped = bytes.clone();
    for i in (16..flipped.len().saturating_sub(16)).step_by(97) {
        flipped[i] ^= 0x5a;
    }
    for corrupt in [bytes[..bytes.len() / 2].to_vec(), flipped] {
        std::fs::write(&file, corrupt).expect("write");
        let output = snapshot("SELECT * FROM users");
        assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
        assert!(
            !text(&output.stderr).contains("panicked"),
            "{}",
            text(&output.stderr)
        );
    }
}

/// SIGTERM in the middle of an export: the process stops, and leaves
/// neither the audit log's files nor their staging folder behind.
#[tokio::test(flavor = "multi_thread")]
async fn a_stop_mid_write_leaves_no_file() {
    let emu = emulator(spec(10, 3000), Faults::default(), Some(20)).await;
    // The audit log is written day by day as it pages (150 pages of 20).
    // The 11th page is held until the process is stopped: by the time it
    // is asked for, the export has written pages it took from its
    // read-ahead of two, so it is mid-write whatever the machine's speed.
    let gate = emu.hold_after("/events-stream", 10);
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("snap");
    let child = orgsql_on(&emu)
        .args(["export", "--tables", "events", "--out"])
        .arg(&out)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("orgsql runs");
    // The minute only bounds a failure (an export that ends or fails early).
    tokio::time::timeout(std::time::Duration::from_secs(60), gate.held())
        .await
        .expect("the export asks for the held page");
    let written = || {
        files_below(&out)
            .iter()
            .any(|p| p.extension().is_some_and(|e| e == "parquet"))
    };
    assert!(written(), "it started writing");
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let output = tokio::task::spawn_blocking(move || child.wait_with_output().expect("exit"))
        .await
        .expect("join");
    gate.open();
    assert_eq!(output.status.code(), Some(143));
    assert!(text(&output.stderr).contains("stopped by SIGTERM"));
    assert!(
        files_below(&out).is_empty(),
        "nothing left behind: {:?}",
        files_below(&out)
    );
}

/// Markup in a name, one of each kind markdown and HTML act on.
const MARKED: &str = "*Team* _of_ `the` [great](http://x.example) #1 ~~platform~~ $x$ | <b>&";
/// The same as markdown must show it: each markup character backslashed,
/// HTML as entities (written out here, not taken from the code).
const MARKED_ESCAPED: &str = "\\*Team\\* \\_of\\_ \\`the\\` \\[great\\]\\(http://x.example\\) \\#1 \
     \\~\\~platform\\~\\~ \\$x\\$ \\| &lt;b&gt;&amp;";

/// What orgsql prints, having succeeded.
fn ok(command: &mut Command) -> String {
    text(&succeeded(
        &command.output().expect("orgsql runs"),
        "orgsql",
    ))
}

/// What orgsql prints, and its exit code.
fn run(command: &mut Command) -> (Option<i32>, String) {
    let output = command.output().expect("orgsql runs");
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "{}",
        text(&output.stderr)
    );
    (output.status.code(), text(&output.stdout))
}

#[tokio::test(flavor = "multi_thread")]
async fn markdown_escapes_markup_and_xml_reports_replace_what_xml_forbids() {
    let emu = emulator(spec(20, 20), Faults::default(), None).await;
    emu.change(|org| {
        org.groups[0].name = MARKED.to_string();
        org.groups[1].name = "Noncharacters \u{FFFF} and \u{FFFE} end".to_string();
    });
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("names.sql"),
        "-- id: names\n-- title: Names\n-- severity: low\n-- rationale: A test.\n\
         -- remediation: None.\nSELECT name AS resource, 'alarm' AS status, name AS reason \
         FROM groups\n",
    )
    .expect("control");
    let check = |format: &str| {
        run(orgsql_on(&emu)
            .arg("check")
            .arg("--dir")
            .arg(dir.path())
            .args(["--controls", "names", "--format", format]))
        .1
    };
    let markdown = check("markdown");
    assert!(markdown.contains(MARKED_ESCAPED), "{markdown}");
    for raw in [
        "*Team*",
        "_of_",
        "`the`",
        "~~platform",
        "$x$",
        "<b>",
        "](http",
    ] {
        assert!(!markdown.contains(raw), "{raw} left raw:\n{markdown}");
    }
    let junit = check("junit");
    roxmltree::Document::parse(&junit).expect("JUnit parses");
    let html = check("html");
    let xhtml = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..roxmltree::ParsingOptions::default()
    };
    roxmltree::Document::parse_with_options(&html, xhtml).expect("XHTML parses");
    for report in [&junit, &html] {
        assert!(!report.contains(['\u{FFFF}', '\u{FFFE}']));
        assert!(report.contains("Noncharacters \u{FFFD} and \u{FFFD} end"));
    }
}

/// A workspace name of 250 characters, markup and all, split into review
/// files: their names are bounded and distinct, and the review verifies.
/// (Workspaces, not groups: the emulator finds a group's grants by its
/// name. Every scope's file is named by the same function.)
#[tokio::test(flavor = "multi_thread")]
async fn long_names_make_bounded_distinct_review_files_and_verify() {
    let emu = emulator(spec(20, 20), Faults::default(), None).await;
    let long = format!("{MARKED} ").repeat(4);
    let long = &long[..250];
    emu.change(|org| {
        for (i, workspace) in org.workspaces.iter_mut().enumerate() {
            workspace.name = format!("{}{i}", &long[..249]);
        }
    });
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("q4");
    let started = orgsql_on(&emu)
        .args(["review", "start", "--by", "workspace", "--out"])
        .arg(&dir)
        .output()
        .expect("orgsql runs");
    assert!(started.status.success(), "{}", text(&started.stderr));
    let review = crate::review::review_json(&dir);
    let files = review["files"].as_array().expect("files");
    let mut stems = std::collections::BTreeSet::new();
    for file in files {
        let path = file["path"].as_str().expect("path");
        let stem = path
            .strip_prefix("reviews/")
            .and_then(|p| p.strip_suffix(".csv"))
            .expect("reviews/STEM.csv");
        assert!(stem.len() <= 100, "{stem}: {} bytes", stem.len());
        assert!(stems.insert(stem.to_string()), "{stem} twice");
    }
    let long_ones = files
        .iter()
        .filter(|f| f["scope"].as_str().is_some_and(|s| s.len() > 250))
        .count();
    assert!(long_ones >= 2, "two long scopes: {review}");

    for (path, mut sheet) in crate::review::sheets(&dir) {
        crate::review::keep_the_rest(&mut sheet);
        sheet.write(&path);
    }
    crate::review::sign_all(&dir, "reviewer@acme.com");
    let (code, _) = run(orgsql_on(&emu).args(["review", "verify"]).arg(&dir));
    assert_eq!(code, Some(0));
    let summary = std::fs::read_to_string(dir.join("summary.md")).expect("summary.md");
    assert!(summary.contains(MARKED_ESCAPED), "{summary}");
    assert!(!summary.contains("*Team*"), "{summary}");
}

/// A CR in a display name comes back from a spreadsheet as an LF (and the
/// file with CRLF line ends): verify holds it to be the same text.
#[tokio::test(flavor = "multi_thread")]
async fn a_line_break_a_spreadsheet_rewrote_is_the_same_cell() {
    let emu = emulator(spec(20, 20), Faults::default(), None).await;
    emu.change(|org| {
        for user in &mut org.users {
            user.name = format!("Ann\r{}", user.name);
        }
    });
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("q4");
    let started = orgsql_on(&emu)
        .args(["review", "start", "--out"])
        .arg(&dir)
        .output()
        .expect("orgsql runs");
    assert!(started.status.success(), "{}", text(&started.stderr));
    let mut rewritten = 0;
    for (path, mut sheet) in crate::review::sheets(&dir) {
        crate::review::keep_the_rest(&mut sheet);
        for cell in sheet.rows.iter_mut().flatten() {
            if cell.contains('\r') {
                *cell = cell.replace('\r', "\n");
                rewritten += 1;
            }
        }
        sheet.write(&path);
    }
    assert!(rewritten > 0, "the names went into the files with their CR");
    crate::review::sign_all(&dir, "reviewer@acme.com");
    let output = orgsql_on(&emu)
        .args(["review", "verify"])
        .arg(&dir)
        .output()
        .expect("orgsql runs");
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));

    // A name changed otherwise is still refused.
    let (path, mut sheet) = crate::review::sheets(&dir)
        .into_iter()
        .next()
        .expect("a file");
    let name = sheet.at("name");
    sheet.rows[0][name].push('x');
    sheet.write(&path);
    let output = orgsql_on(&emu)
        .args(["review", "verify"])
        .arg(&dir)
        .output()
        .expect("orgsql runs");
    assert_eq!(output.status.code(), Some(2), "{}", text(&output.stderr));
    assert!(text(&output.stderr).contains("evidence cannot be edited"));
}

/// A display name that is a formula: `--csv-safe` (or ORGSQL_CSV_SAFE)
/// writes it as text in CSV on standard output, `--output` and COPY, as
/// review files do; without it, and in the other formats, it stays exact.
#[tokio::test(flavor = "multi_thread")]
async fn csv_safe_writes_formula_cells_as_text_in_csv_only() {
    let emu = emulator(spec(20, 20), Faults::default(), None).await;
    let formula = "=HYPERLINK(\"http://x.example\",\"click\")";
    let id = emu.org().users[3].account_id.clone();
    emu.change(|org| org.users[3].name = formula.to_string());
    let select =
        format!("SELECT name, 'plain' AS other, -5 AS n FROM users WHERE account_id = '{id}'");
    let tmp = tempfile::tempdir().expect("temp dir");
    // The first row of a CSV text: the header and the row, parsed.
    let rows = |csv_text: &str| -> Vec<Vec<String>> {
        csv::Reader::from_reader(csv_text.as_bytes())
            .records()
            .map(|r| r.expect("CSV").iter().map(str::to_string).collect())
            .collect()
    };
    let neutral = vec![vec![format!("'{formula}"), "plain".into(), "-5".into()]];
    let exact = vec![vec![formula.to_string(), "plain".into(), "-5".into()]];

    let out = ok(orgsql_on(&emu).args(["--csv-safe", "--format", "csv", "-c", &select]));
    assert_eq!(rows(&out), neutral);
    let out = ok(orgsql_on(&emu)
        .env("ORGSQL_CSV_SAFE", "1")
        .args(["--format", "csv", "-c", &select]));
    assert_eq!(rows(&out), neutral, "ORGSQL_CSV_SAFE=1");
    let out = ok(orgsql_on(&emu).args(["--format", "csv", "-c", &select]));
    assert_eq!(rows(&out), exact, "without --csv-safe");
    let out = ok(orgsql_on(&emu).args(["--csv-safe", "--format", "json", "-c", &select]));
    let json: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(json[0]["name"], formula, "JSON keeps the data exact");

    let file = tmp.path().join("out.csv");
    ok(orgsql_on(&emu)
        .arg("--csv-safe")
        .arg("--output")
        .arg(&file)
        .args(["-c", &select]));
    assert_eq!(
        rows(&std::fs::read_to_string(&file).expect("--output")),
        neutral
    );

    let copied = tmp.path().join("copied.csv");
    let parquet = tmp.path().join("copied.parquet");
    for target in [&copied, &parquet] {
        ok(orgsql_on(&emu).args([
            "--csv-safe",
            "-c",
            &format!("COPY ({select}) TO '{}'", target.display()),
        ]));
    }
    assert_eq!(
        rows(&std::fs::read_to_string(&copied).expect("COPY")),
        neutral
    );
    let out = ok(orgsql_on(&emu).args([
        "--format",
        "csv",
        "-c",
        &format!("SELECT * FROM '{}'", parquet.display()),
    ]));
    assert_eq!(rows(&out), exact, "Parquet keeps the data exact");
}
