//! `orgsql watch` delivering to a webhook and a command, through the
//! binary: a receiver that fails twice gets every alert once, each signed
//! as Standard Webhooks specifies; a `kill -9` mid-delivery loses and
//! repeats none; a failing command is retried; the drop-off alarm; what an
//! idle poll costs.

use std::collections::{BTreeSet, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use orgsql::emulator::{Emulator, Faults};
use serde_json::Value;

use crate::common::*;

/// The signing secret the tests give, as Standard Webhooks writes one.
const SECRET_BYTES: &[u8] = b"a secret only the receiver knows";

fn secret() -> String {
    format!("whsec_{}", BASE64.encode(SECRET_BYTES))
}

/// What the receiver answers a request.
#[derive(Clone, Copy)]
enum Answer {
    Status(u16),
    /// Never answers (until the sender goes away).
    Hold,
}

/// One request the receiver got, and how it answered (0: held).
struct Received {
    headers: HeaderMap,
    body: Vec<u8>,
    answered: u16,
}

/// A webhook receiver on loopback: each request gets the next scripted
/// answer, 200 once the script is done.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Received>>>,
    held: Arc<tokio::sync::Notify>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Receiver {
    async fn start(script: &[Answer]) -> Self {
        let script = Arc::new(Mutex::new(script.iter().copied().collect::<VecDeque<_>>()));
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let held = Arc::new(tokio::sync::Notify::new());
        let app = {
            let (got, held) = (got.clone(), held.clone());
            axum::Router::new().fallback(move |headers: HeaderMap, body: axum::body::Bytes| {
                let (script, got, held) = (script.clone(), got.clone(), held.clone());
                async move {
                    let answer = script
                        .lock()
                        .expect("script")
                        .pop_front()
                        .unwrap_or(Answer::Status(200));
                    let answered = match answer {
                        Answer::Status(status) => status,
                        Answer::Hold => 0,
                    };
                    got.lock().expect("got").push(Received {
                        headers,
                        body: body.to_vec(),
                        answered,
                    });
                    if answered == 0 {
                        held.notify_one();
                        std::future::pending::<()>().await;
                    }
                    StatusCode::from_u16(answered).expect("a status")
                }
            })
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!(
            "http://{}/hooks/T0/B0/secret-path",
            listener.local_addr().expect("address")
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Receiver {
            url,
            got,
            held,
            _stop: stop,
        }
    }

    /// The ids (`webhook-id`) of the requests answered 2xx, in order.
    fn acknowledged(&self) -> Vec<String> {
        self.got
            .lock()
            .expect("got")
            .iter()
            .filter(|r| (200..300).contains(&r.answered))
            .map(|r| header(&r.headers, "webhook-id"))
            .collect()
    }
}

fn header(headers: &HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .unwrap_or_else(|| panic!("a {name} header"))
        .to_str()
        .expect("ASCII")
        .to_string()
}

/// The request carries a Standard Webhooks signature of its id, timestamp
/// and body under the test's secret, computed here from the spec (not by
/// orgsql's code), and its body is the alert the id names.
fn assert_signed(received: &Received) {
    use ring::hmac;
    let id = header(&received.headers, "webhook-id");
    let timestamp = header(&received.headers, "webhook-timestamp");
    assert!(
        timestamp.parse::<i64>().is_ok(),
        "unix seconds: {timestamp}"
    );
    let key = hmac::Key::new(hmac::HMAC_SHA256, SECRET_BYTES);
    let signed = [
        id.as_bytes(),
        b".",
        timestamp.as_bytes(),
        b".",
        &received.body,
    ]
    .concat();
    let expected = format!("v1,{}", BASE64.encode(hmac::sign(&key, &signed).as_ref()));
    assert_eq!(header(&received.headers, "webhook-signature"), expected);
    let body: Value = serde_json::from_slice(&received.body).expect("a JSON body");
    assert_eq!(body["idempotency_key"], id.as_str());
    assert_eq!(body["alert"]["id"], id.as_str());
    assert_eq!(header(&received.headers, "idempotency-key"), id);
    let text = body["text"].as_str().expect("a text field for Slack");
    assert!(text.contains(body["alert"]["rule"].as_str().expect("rule")) || text.contains(&*id));
}

/// Append one event of each action a rule alerts on; the alert ids the
/// rules promise (`rule:org:event id`).
fn append_alerting(emu: &Emulator) -> BTreeSet<String> {
    let org = emu.org().id.clone();
    [
        ("added_org_admin", "org_admin_changed"),
        ("user_invited", "user_added"),
        ("twosv_disabled_for_user", "twosv_disabled"),
        ("policy_updated", "policy_changed"),
        ("domain_removed", "domain_changed"),
    ]
    .iter()
    .map(|(action, rule)| {
        let event = emu.append_event(0, action, None).expect("appended");
        format!("{rule}:{org}:{}", event.id)
    })
    .collect()
}

/// `orgsql watch --once` with `args`, the webhook secret in its variable.
fn watch(emu: &Emulator, state: &Path, args: &[&str]) -> std::process::Command {
    let mut command = orgsql_on(emu);
    command
        .env("ORGSQL_WEBHOOK_SECRET", secret())
        .args(["watch", "--once", "--state"])
        .arg(state)
        .args(args);
    command
}

fn ids_in(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|line| {
            let alert: Value = serde_json::from_str(line).expect("one JSON alert a line");
            alert["id"].as_str().expect("id").to_string()
        })
        .collect()
}

/// A receiver that answers 500 twice and then 200 gets every alert once
/// (each acknowledged once, with a valid signature); the run waits out the
/// failures (backoff) and delivers to the file too. The webhook's URL path
/// (a secret, as Slack's is) is in no message.
#[tokio::test(flavor = "multi_thread")]
async fn a_webhook_that_fails_twice_gets_every_alert_once_signed() {
    let emu = emulator(spec(30, 200), Faults::default(), None).await;
    let receiver = Receiver::start(&[Answer::Status(500), Answer::Status(500)]).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let (state, output) = (dir.path().join("state"), dir.path().join("alerts.ndjson"));
    succeeded(
        &watch(&emu, &state, &[]).output().expect("runs"),
        "first run",
    );
    let expected = append_alerting(&emu);
    let run = watch(&emu, &state, &["--webhook", &receiver.url, "--output"])
        .arg(&output)
        .output()
        .expect("runs");
    let stdout = String::from_utf8(succeeded(&run, "watch --webhook")).expect("UTF-8");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("answered 500"), "{stderr}");
    assert!(!stderr.contains("secret-path"), "{stderr}");
    let acknowledged = receiver.acknowledged();
    assert_eq!(acknowledged.len(), expected.len(), "{acknowledged:?}");
    assert_eq!(
        acknowledged.iter().cloned().collect::<BTreeSet<_>>(),
        expected
    );
    let got = receiver.got.lock().expect("got");
    assert_eq!(got.len(), expected.len() + 2, "two failures, then one each");
    got.iter().for_each(assert_signed);
    drop(got);
    assert_eq!(
        ids_in(&output).into_iter().collect::<BTreeSet<_>>(),
        expected
    );
    assert_eq!(stdout.lines().count(), expected.len(), "{stdout}");

    // Nothing new: nothing sent again.
    succeeded(
        &watch(&emu, &state, &["--webhook", &receiver.url])
            .output()
            .expect("runs"),
        "again",
    );
    assert_eq!(receiver.acknowledged().len(), expected.len());
}

/// `kill -9` while the webhook holds an alert (after it took two): the
/// restart sends the held alert again, with the same id, and every other
/// one once; no alert is lost, none acknowledged twice, the file has each
/// once.
#[tokio::test(flavor = "multi_thread")]
async fn a_kill_9_mid_delivery_loses_no_alert_and_repeats_none() {
    let emu = emulator(spec(30, 200), Faults::default(), None).await;
    let receiver = Receiver::start(&[Answer::Status(200), Answer::Status(200), Answer::Hold]).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let (state, output) = (dir.path().join("state"), dir.path().join("alerts.ndjson"));
    succeeded(
        &watch(&emu, &state, &[]).output().expect("runs"),
        "first run",
    );
    let expected = append_alerting(&emu);
    let mut child = watch(&emu, &state, &["--webhook", &receiver.url, "--output"])
        .arg(&output)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("runs");
    // The minute only bounds a failure.
    tokio::time::timeout(std::time::Duration::from_secs(60), receiver.held.notified())
        .await
        .expect("the third alert held");
    child.kill().expect("SIGKILL");
    child.wait().expect("killed");
    assert_eq!(receiver.acknowledged().len(), 2);
    assert!(
        ids_in(&output).is_empty(),
        "the file comes after the webhook"
    );

    let run = watch(&emu, &state, &["--webhook", &receiver.url, "--output"])
        .arg(&output)
        .output()
        .expect("runs");
    succeeded(&run, "restart");
    let acknowledged = receiver.acknowledged();
    assert_eq!(acknowledged.len(), expected.len(), "{acknowledged:?}");
    assert_eq!(
        acknowledged.iter().cloned().collect::<BTreeSet<_>>(),
        expected
    );
    let ids = ids_in(&output);
    assert_eq!(ids.len(), expected.len());
    assert_eq!(ids.into_iter().collect::<BTreeSet<_>>(), expected);
    let got = receiver.got.lock().expect("got");
    let held = header(&got[2].headers, "webhook-id");
    let sent: Vec<String> = got
        .iter()
        .map(|r| header(&r.headers, "webhook-id"))
        .collect();
    assert_eq!(sent.iter().filter(|id| **id == held).count(), 2, "{sent:?}");
    assert_eq!(sent.len(), expected.len() + 1);
}

/// `--exec`: the command gets each alert's JSON on standard input, with
/// `ORGSQL_ALERT_ID`; a first attempt that fails is tried again; what the
/// command prints does not mix into the alert lines on standard output.
#[tokio::test(flavor = "multi_thread")]
async fn a_command_gets_each_alert_once_and_a_failure_is_retried() {
    let emu = emulator(spec(30, 200), Faults::default(), None).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("state");
    succeeded(
        &watch(&emu, &state, &[]).output().expect("runs"),
        "first run",
    );
    let expected = append_alerting(&emu);
    let command = r#"if [ ! -e "$D/failed" ]; then touch "$D/failed"; exit 3; fi
        echo "took $ORGSQL_ALERT_ID"
        { cat; echo; } >> "$D/got.ndjson""#;
    let run = watch(&emu, &state, &["--exec", command])
        .env("D", dir.path())
        .output()
        .expect("runs");
    let stdout = String::from_utf8(succeeded(&run, "watch --exec")).expect("UTF-8");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("exited with exit status: 3"), "{stderr}");
    assert!(stderr.contains("took "), "{stderr}");
    assert!(stdout.lines().all(|l| l.starts_with("ALERT ")), "{stdout}");
    let bodies: Vec<Value> = std::fs::read_to_string(dir.path().join("got.ndjson"))
        .expect("the command wrote")
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON on stdin"))
        .collect();
    let ids: Vec<&str> = bodies
        .iter()
        .map(|b| b["alert"]["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids.len(), expected.len(), "{ids:?}");
    assert_eq!(
        ids.iter().map(ToString::to_string).collect::<BTreeSet<_>>(),
        expected
    );
}

/// A delivery that keeps failing stops a `--once` run after `--retry-for`
/// with exit 1 and the cursor where it was: the next run delivers all.
#[tokio::test(flavor = "multi_thread")]
async fn a_delivery_that_keeps_failing_is_kept_for_the_next_run() {
    let emu = emulator(spec(30, 200), Faults::default(), None).await;
    let down = Receiver::start(&[Answer::Status(503); 10]).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("state");
    succeeded(
        &watch(&emu, &state, &[]).output().expect("runs"),
        "first run",
    );
    let expected = append_alerting(&emu);
    let run = watch(&emu, &state, &["--webhook", &down.url, "--retry-for", "0"])
        .output()
        .expect("runs");
    assert_eq!(
        run.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(String::from_utf8_lossy(&run.stderr).contains("the next run delivers it"));
    let up = Receiver::start(&[]).await;
    succeeded(
        &watch(&emu, &state, &["--webhook", &up.url])
            .output()
            .expect("runs"),
        "next run",
    );
    assert_eq!(
        up.acknowledged().into_iter().collect::<BTreeSet<_>>(),
        expected
    );
}

/// The stream failing: the first failed run records when it began and
/// alerts nothing (15 minutes is the default); once it has failed for
/// longer (the state's record moved back 20 minutes, as if earlier runs
/// had failed) the drop-off alarm comes, once; a recovered stream clears
/// the record.
#[tokio::test(flavor = "multi_thread")]
async fn a_stream_failing_for_minutes_raises_the_dropoff_alarm_once() {
    let emu = emulator(spec(30, 200), Faults::default(), None).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let (state, output) = (dir.path().join("state"), dir.path().join("alerts.ndjson"));
    let once = || {
        watch(&emu, &state, &["--output"])
            .arg(&output)
            .output()
            .expect("runs")
    };
    succeeded(&once(), "first run");
    emu.fail("/events-stream", Some(500));
    let failed = once();
    assert!(!failed.status.success());
    assert!(ids_in(&output).is_empty());
    let org = emu.org().id.clone();
    let read_state = || -> Value {
        serde_json::from_slice(&std::fs::read(state.join("state.json")).expect("state"))
            .expect("JSON")
    };
    let since = read_state()["orgs"][&org]["failing_since"]
        .as_str()
        .expect("failing since")
        .to_string();
    let earlier = (chrono::DateTime::parse_from_rfc3339(&since).expect("a time")
        - chrono::Duration::minutes(20))
    .to_utc()
    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut moved = read_state();
    moved["orgs"][&org]["failing_since"] = Value::from(earlier);
    std::fs::write(state.join("state.json"), moved.to_string()).expect("state");

    let failed = once();
    assert!(!failed.status.success());
    let stdout = String::from_utf8_lossy(&failed.stdout);
    assert!(stdout.contains("stream_dropoff"), "{stdout}");
    let alerts = ids_in(&output);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert!(alerts[0].starts_with(&format!("stream_dropoff:{org}:failing:")));
    assert!(!once().status.success());
    assert_eq!(ids_in(&output).len(), 1, "once per outage");

    emu.fail("/events-stream", None);
    succeeded(&once(), "recovered");
    assert_eq!(ids_in(&output).len(), 1);
    assert!(read_state()["orgs"][&org].get("failing_since").is_none());
}

/// An idle watch at its interval: each poll is one request, to
/// `/events-stream`, and nothing else (rules over events do not run; the
/// drop-off rule reads watch's own record). The fourth poll is held so the
/// count is read while the watch runs.
#[tokio::test(flavor = "multi_thread")]
async fn an_idle_poll_is_one_request() {
    let emu = emulator(spec(30, 200), Faults::default(), None).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let gate = emu.hold_after("/events-stream", 3);
    let mut child = orgsql_on(&emu)
        .args(["watch", "--interval", "1", "--state"])
        .arg(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("runs");
    tokio::time::timeout(std::time::Duration::from_secs(60), gate.held())
        .await
        .expect("a fourth poll");
    let (stream, all) = (emu.requests("/events-stream"), emu.requests(""));
    child.kill().expect("stops");
    child.wait().expect("stopped");
    gate.open();
    assert_eq!((stream, all), (4, 4));
}
