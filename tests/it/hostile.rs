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
                report
                    .contains("&lt;img src=x onerror=alert(1)&gt;\\[click\\](javascript:alert(1))"),
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
