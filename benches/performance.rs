//! `cargo bench`: the numbers in the README's Performance section, measured
//! against the emulator on 127.0.0.1 with latency switched on.
//!
//! - pushdown: a one-day question over a 90-day audit log of 200,000 events
//!   costs about one request per 500 matching events, not the whole log;
//! - fan-out: role assignments of 2,000 users at 20 ms a call, against the
//!   ideal 2,000 x 20 ms / concurrency;
//! - decode: JSON pages to Arrow batches, in MB/s of JSON on one core,
//!   against serde_json alone on the same pages;
//! - export: `orgsql export` of 1,000,000 events (the emulator in a child
//!   process, limits off), with the exporting process's peak memory;
//! - rate: with the API's documented rate budgets enforced (the emulator's
//!   clock 60 times faster: a minute lasts a second), an export of 100,000
//!   events, `user_last_active` for 2,000 users and a fan-out over an
//!   unpublished budget, each against the time its budget allows at best;
//! - storage_read: a query on an export of 100,000 events (about 100 audit
//!   log files) in a prefix on the S3 server on loopback, against the same
//!   export on disk, with the requests the server answered;
//! - snapshot: an export of 200,000 events and their context (the
//!   emulator's history of several years) by the real binary, then the
//!   time the binary takes to open it (`SELECT 1`) and to count events by
//!   action, with the number of files. `ORGSQL_BENCH_BIN=path` measures
//!   another build of orgsql (an earlier one, for before and after).
//! - verify: `orgsql verify` of an export of 100,000 events (every file
//!   hashed, every table's rows counted from its footers) and of a JSON
//!   report of a check with 100,000 findings (its results' digest and every
//!   count recomputed), by the binary, process start included.
//! - sheets: `orgsql review verify` of reviews of about 10,000, 50,000
//!   and 100,000 grants (each started by the binary on an emulator of as
//!   many users as that takes), and a roster of 10,000, 50,000 and 100,000
//!   people read by the binary (`--roster FILE -c 'SELECT count(*) ...'`):
//!   the time should grow with the rows, not their square.
//! - history: `grants_during` over an export of 1,000,000 events (and the
//!   role history of 2,000 users), answered offline by the binary
//!   (`--snapshot DIR`): the whole process, replay of every grant event
//!   included.
//! - watch_latency: `orgsql watch` (the binary, its default interval, an
//!   `--output` file) while an admin acts at random moments: the time from
//!   each event's append to its alert's line in the file (p50, p95, max);
//! - watch_idle: the requests a watch left idle makes, counted by the
//!   emulator, per hour. The two run side by side, each with its own
//!   emulator (the API's budgets at real time).
//!
//! The watch benches take as long as a user waits: by default 20 alerts
//! (about 11 minutes) and an idle hour. `ORGSQL_BENCH_WATCH_ALERTS=N`,
//! `ORGSQL_BENCH_WATCH_IDLE_SECS=SECS` and `ORGSQL_BENCH_WATCH_INTERVAL=SECS`
//! (passed as `--interval`; unset, the watch's default) shorten a run.
//!
//! `cargo bench -- decode` runs only the benches whose name contains "decode".

// A bench that cannot set up stops, saying why.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use chrono::Utc;
use datafusion::prelude::SessionContext;
use orgsql::api::{Client, ClientConfig, Envelope};
use orgsql::emulator::{Emulator, EmulatorConfig, Faults, OrgSpec, RateLimits};
use orgsql::tables::events::Events;
use orgsql::tables::users::Users;
use orgsql::tables::{Resource, decode_page};

const EVENTS_PAGE: usize = 500;

#[path = "../tests/it/s3server.rs"]
mod s3server;

#[tokio::main]
async fn main() {
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wanted = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()));
    // First: its peak memory is this process's high-water mark so far.
    if wanted("export") {
        export_memory().await;
    }
    if wanted("pushdown") {
        pushdown().await;
    }
    if wanted("fanout") {
        fan_out().await;
    }
    if wanted("decode") {
        decode().await;
    }
    if wanted("rate") {
        rate().await;
    }
    if wanted("storage") {
        storage().await;
    }
    if wanted("storage_read") {
        storage_read().await;
    }
    if wanted("snapshot") {
        snapshot();
    }
    if wanted("verify") {
        verify();
    }
    if wanted("sheets") {
        sheets();
    }
    if wanted("history") {
        history();
    }
    let (latency, idle) = (wanted("watch_latency"), wanted("watch_idle"));
    tokio::join!(
        async {
            if latency {
                watch_latency().await;
            }
        },
        async {
            if idle {
                watch_idle().await;
            }
        }
    );
}

async fn emulator(users: usize, events: usize, latency_ms: u64) -> Emulator {
    Emulator::start(EmulatorConfig {
        org: OrgSpec {
            seed: 42,
            users,
            events,
            now: Utc::now(),
        },
        faults: Faults {
            latency: Duration::from_millis(latency_ms),
            ..Faults::default()
        },
        ..Default::default()
    })
    .await
    .expect("emulator starts")
}

fn session(config: ClientConfig) -> SessionContext {
    let client = Client::new(config).expect("client");
    orgsql::context(&client).expect("session")
}

async fn count(ctx: &SessionContext, sql: &str) -> i64 {
    let batches = ctx
        .sql(sql)
        .await
        .expect("plans")
        .collect()
        .await
        .expect("runs");
    let column = batches[0]
        .column(0)
        .as_any()
        .downcast_ref::<datafusion::arrow::array::Int64Array>()
        .expect("a count");
    column.value(0)
}

async fn pushdown() {
    let emu = emulator(200, 200_000, 10).await;
    let since = Utc::now() - chrono::Duration::days(1);
    let matching = emu.org().events.iter().filter(|e| e.time >= since).count();
    let ctx = session(emu.client_config());
    let started = Instant::now();
    let counted = count(
        &ctx,
        "SELECT count(*) FROM events WHERE time >= now() - interval '1 day'",
    )
    .await;
    let elapsed = started.elapsed();
    let requests = emu.requests("/events") + emu.requests("/events-stream");
    let minimum = matching.div_ceil(EVENTS_PAGE) as u64 + 1;
    let whole_log = emu.org().events.len().div_ceil(EVENTS_PAGE);
    println!(
        "pushdown: 200,000 events over 90 days, 10 ms a request: last day = {counted} events \
         (emulator: {matching}); {requests} requests (bound ceil({matching}/500)+1 = {minimum}; \
         the whole log would be {whole_log}); {:.0} ms",
        elapsed.as_secs_f64() * 1000.0
    );
}

async fn fan_out() {
    const USERS: usize = 2000;
    const LATENCY_MS: u64 = 20;
    let emu = emulator(USERS, 10, LATENCY_MS).await;
    let expected: usize = emu
        .org()
        .users
        .iter()
        .map(|u| emu.org().user_roles(u).len())
        .sum();
    for concurrency in [8, 16] {
        emu.reset_requests();
        let mut config = emu.client_config();
        config.concurrency = concurrency;
        let ctx = session(config);
        let started = Instant::now();
        let rows = count(&ctx, "SELECT count(*) FROM user_role_assignments").await;
        let elapsed = started.elapsed().as_secs_f64();
        assert_eq!(rows as usize, expected);
        let ideal = USERS as f64 * LATENCY_MS as f64 / 1000.0 / concurrency as f64;
        println!(
            "fanout: user_role_assignments of {USERS} users, {LATENCY_MS} ms a request, concurrency \
             {concurrency}: {rows} rows, {} role calls + {} user pages in {elapsed:.2} s; \
             ideal {ideal:.2} s; ratio {:.2}",
            emu.requests("/role-assignments"),
            emu.requests("/users/search"),
            elapsed / ideal
        );
    }
}

/// Raw pages, as the API sends them.
async fn pages(
    emu: &Emulator,
    path: &str,
    body: Option<serde_json::Value>,
    n: usize,
) -> Vec<Vec<u8>> {
    let http = reqwest::Client::new();
    let url = format!(
        "{}{}",
        emu.base_url(),
        path.replace("{orgId}", &emu.org().id)
    );
    let key = emu.connection_json()["api_key"]
        .as_str()
        .expect("key")
        .to_string();
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    while out.len() < n {
        let request = match &body {
            Some(body) => {
                let mut body = body.clone();
                if let Some(c) = &cursor {
                    body["cursor"] = c.clone().into();
                }
                http.post(&url).json(&body)
            }
            None => match &cursor {
                Some(c) => http
                    .get(&url)
                    .query(&[("limit", "500"), ("cursor", c.as_str())]),
                None => http.get(&url).query(&[("limit", "500")]),
            },
        };
        let bytes = request
            .bearer_auth(&key)
            .send()
            .await
            .expect("answer")
            .bytes()
            .await
            .expect("body");
        let page: Envelope<serde_json::Value> = serde_json::from_slice(&bytes).expect("a page");
        cursor = orgsql::api::next_cursor(&page).expect("cursor");
        out.push(bytes.to_vec());
        if cursor.is_none() {
            break;
        }
    }
    out
}

/// Repeat `f` over the pages for about a second; (MB/s, rows/s).
fn throughput(pages: &[Vec<u8>], rows_per_pass: usize, mut f: impl FnMut(&[u8])) -> (f64, f64) {
    let bytes: usize = pages.iter().map(Vec::len).sum();
    for page in pages {
        f(page);
    }
    let started = Instant::now();
    let mut passes = 0;
    while started.elapsed() < Duration::from_secs(1) {
        for page in pages {
            f(page);
        }
        passes += 1;
    }
    let secs = started.elapsed().as_secs_f64();
    (
        (bytes * passes) as f64 / secs / 1e6,
        (rows_per_pass * passes) as f64 / secs,
    )
}

fn report<R: Resource>(label: &str, pages: &[Vec<u8>], org_id: &str) {
    let rows: usize = pages
        .iter()
        .map(|p| {
            decode_page::<R>(org_id, p)
                .expect("decodes")
                .map_or(0, |b| b.num_rows())
        })
        .sum();
    let (arrow_mb, arrow_rows) = throughput(pages, rows, |page| {
        black_box(decode_page::<R>(org_id, black_box(page)).expect("decodes"));
    });
    let (typed_mb, _) = throughput(pages, rows, |page| {
        black_box(serde_json::from_slice::<Envelope<R::Data>>(black_box(page)).expect("parses"));
    });
    let (value_mb, _) = throughput(pages, rows, |page| {
        black_box(serde_json::from_slice::<serde_json::Value>(black_box(page)).expect("parses"));
    });
    let bytes: usize = pages.iter().map(Vec::len).sum();
    println!(
        "decode {label}: {} pages, {:.1} MB, {rows} rows: JSON -> Arrow {arrow_mb:.0} MB/s \
         ({:.0} rows/s); serde_json alone: typed {typed_mb:.0} MB/s, serde_json::Value {value_mb:.0} MB/s",
        pages.len(),
        bytes as f64 / 1e6,
        arrow_rows
    );
}

async fn decode() {
    let emu = emulator(2000, 20_000, 0).await;
    let org_id = emu.org().id.clone();
    let users = pages(
        &emu,
        "/admin/v2/orgs/{orgId}/directories/-/users/search",
        Some(serde_json::json!({"limit": 100, "expand": ["counts.resources"]})),
        20,
    )
    .await;
    report::<Users>("users (users/search, 100 a page)", &users, &org_id);
    let events = pages(&emu, "/admin/v1/orgs/{orgId}/events", None, 40).await;
    report::<Events>("events (/events, 500 a page)", &events, &org_id);
}

/// The process's peak resident memory so far, in MB (Linux).
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// `orgsql emulator` in a child process without rate limits, and the
/// connection line it prints (base_url, org_id, api_key).
/// orgsql pointed at an emulator process (`emulator_process`'s connection
/// line): its base URL, organization and key.
fn orgsql_on(
    binary: impl AsRef<std::ffi::OsStr>,
    connection: &serde_json::Value,
) -> std::process::Command {
    let text = |key: &str| connection[key].as_str().expect(key).to_string();
    let mut command = std::process::Command::new(binary);
    command
        .args(["--base-url", &text("base_url"), "--org-id", &text("org_id")])
        .env("ATLASSIAN_API_KEY", text("api_key"));
    command
}

fn emulator_process(users: usize, events: usize) -> (std::process::Child, serde_json::Value) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_orgsql"))
        .args(["emulator", "--users", &users.to_string()])
        .args(["--events", &events.to_string(), "--rate-limits", "off"])
        .args(["--retention-days", "all"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the emulator starts");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("the connection line");
    (child, serde_json::from_str(&line).expect("JSON"))
}

async fn export_memory() {
    const EVENTS: usize = 1_000_000;
    let (mut child, connection) = emulator_process(100, EVENTS);
    let text = |key: &str| connection[key].as_str().expect(key).to_string();
    let config = ClientConfig::new(
        text("base_url"),
        text("org_id"),
        orgsql::api::ApiKey::new(text("api_key")),
    );
    let out = tempfile::tempdir().expect("temp dir");
    let before = peak_rss_mb().unwrap_or(0.0);
    let (manifest, elapsed) = export_events(config, out.path()).await;
    let _ = child.kill();
    let _ = child.wait();
    let months = std::fs::read_dir(out.path().join("events"))
        .map(std::iter::Iterator::count)
        .unwrap_or(0);
    let files = manifest.tables[0].files.len();
    println!(
        "export: {} events in {months} month partitions ({files} files), {} requests, {elapsed:.1} s; \
         peak memory of the exporting process {:.0} MB ({before:.0} MB before)",
        manifest.tables[0].rows,
        manifest.tables[0].requests,
        peak_rss_mb().unwrap_or(f64::NAN)
    );
}

/// `orgsql export` of the audit log into `out`, uncached: the manifest and
/// the seconds it took.
async fn export_events(
    mut config: ClientConfig,
    out: &std::path::Path,
) -> (orgsql::snapshot::Manifest, f64) {
    config.cache_ttl = None;
    let client = Client::new(config).expect("client");
    let ctx = orgsql::context(&client).expect("session");
    let options = orgsql::cli::export::ExportOptions {
        out: out.to_path_buf(),
        tables: Some(vec!["events".to_string()]),
        since: None,
        published: None,
    };
    let started = Instant::now();
    let manifest = orgsql::cli::export::export(&ctx, &client, &options, &mut Vec::new())
        .await
        .expect("export");
    (manifest, started.elapsed().as_secs_f64())
}

/// The emulator's clock for the rate benches: a documented minute lasts a second.
const SCALE: f64 = 60.0;

async fn limited(users: usize, events: usize) -> Emulator {
    Emulator::start(EmulatorConfig {
        org: OrgSpec {
            seed: 42,
            users,
            events,
            now: Utc::now(),
        },
        limits: Some(RateLimits::scaled(SCALE)),
        ..Default::default()
    })
    .await
    .expect("emulator starts")
}

/// The least time `requests` calls take at `per_minute`, on the emulator's clock.
fn bound(requests: u64, per_minute: u32) -> f64 {
    requests as f64 / f64::from(per_minute) * 60.0 / SCALE
}

fn rate_line(label: &str, requests: u64, per_minute: u32, elapsed: f64, throttled: u64) {
    let best = bound(requests, per_minute);
    println!(
        "rate {label}: {requests} requests at {per_minute} a minute in {elapsed:.2} s; \
         the budget allows {best:.2} s at best; ratio {:.2}; {throttled} answered 429",
        elapsed / best
    );
}

async fn rate() {
    use orgsql::api::budgets;
    let per_minute = |endpoint: &str| budgets::documented(endpoint).map_or(0, |b| b.per_minute);

    // The audit log: an export reads it from the polling API.
    const EVENTS: usize = 100_000;
    let emu = limited(20, EVENTS).await;
    let out = tempfile::tempdir().expect("temp dir");
    let (manifest, elapsed) = export_events(emu.client_config(), out.path()).await;
    // The everyday events, and the history of roles on top.
    assert_eq!(manifest.tables[0].rows as usize, emu.org().events.len());
    let pages = emu.requests("/events-stream");
    let stream = per_minute("GET /admin/v1/orgs/{orgId}/events-stream");
    rate_line(
        &format!(
            "export of {} events via /events-stream",
            emu.org().events.len()
        ),
        pages,
        stream,
        elapsed,
        emu.throttled(),
    );
    let events = per_minute("GET /admin/v1/orgs/{orgId}/events");
    println!(
        "rate export: the same {pages} pages from /events ({events} a minute) would take {:.2} s \
         at best on this clock, {:.0} min in real time",
        bound(pages, events),
        bound(pages, events) * SCALE / 60.0
    );

    // One call per user to last-active-dates, 200 a minute per organization;
    // and a fan-out over an unpublished budget (the emulator's default).
    const USERS: usize = 2000;
    for (table, endpoint, budget) in [
        (
            "user_last_active",
            "/last-active-dates",
            per_minute("GET /admin/v1/orgs/{orgId}/directory/users/{accountId}/last-active-dates"),
        ),
        (
            "user_role_assignments",
            "/role-assignments",
            RateLimits::DEFAULT_PER_MINUTE,
        ),
    ] {
        let emu = limited(USERS, 10).await;
        let ctx = session(emu.client_config());
        let started = Instant::now();
        let rows = count(&ctx, &format!("SELECT count(*) FROM {table}")).await;
        let elapsed = started.elapsed().as_secs_f64();
        assert!(rows > 0);
        rate_line(
            &format!("{table} of {USERS} users"),
            emu.requests(endpoint),
            budget,
            elapsed,
            emu.throttled(),
        );
    }
}

/// An export of 100,000 events to an S3 server on loopback against the same
/// export to local disk, both by the real binary from one emulator.
async fn storage() {
    const EVENTS: usize = 100_000;
    const RUNS: usize = 3;
    let (mut child, connection) = emulator_process(50, EVENTS);
    let server = s3server::S3Server::start(&["bench"]).await;
    let disk = tempfile::tempdir().expect("temp dir");
    let mut timings: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for run in 0..RUNS {
        for (slot, out) in [
            disk.path().join(format!("run{run}")).display().to_string(),
            format!("s3://bench/run{run}/"),
        ]
        .into_iter()
        .enumerate()
        {
            let mut command = orgsql_on(env!("CARGO_BIN_EXE_orgsql"), &connection);
            command.args(["export", "--tables", "events", "--out", &out]);
            server.env(&mut command, s3server::SECRET_KEY);
            let started = Instant::now();
            let output = tokio::task::spawn_blocking(move || command.output())
                .await
                .expect("joined")
                .expect("orgsql runs");
            assert!(
                output.status.success(),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
            timings[slot].push(started.elapsed().as_secs_f64());
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let median = |times: &mut Vec<f64>| {
        times.sort_by(f64::total_cmp);
        times[times.len() / 2]
    };
    let (local, s3) = (median(&mut timings[0]), median(&mut timings[1]));
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(server.folder("bench").join("run0/manifest.json")).expect("the manifest"),
    )
    .expect("JSON");
    let files = manifest["tables"][0]["files"]
        .as_array()
        .map_or(0, Vec::len);
    println!(
        "storage: export of {EVENTS} events ({files} files), median of {RUNS}: local disk {local:.2} s, \
         S3 on loopback {s3:.2} s; ratio {:.2}",
        s3 / local
    );
}

/// `orgsql --snapshot PREFIX -c ...` on an export of 100,000 events and
/// their context in a prefix of the S3 server on loopback, against the same
/// export on disk: the whole process, as a user waits for it.
async fn storage_read() {
    const EVENTS: usize = 100_000;
    const RUNS: usize = 5;
    let binary = orgsql_binary();
    let (mut child, connection) = emulator_process(100, EVENTS);
    let server = s3server::S3Server::start(&["bench"]).await;
    let disk = tempfile::tempdir().expect("temp dir");
    let local = disk.path().join("snap").display().to_string();
    let prefix = "s3://bench/read/".to_string();
    for out in [&local, &prefix] {
        let mut command = orgsql_on(&binary, &connection);
        command.args(["export", "--tables", "events,event_context", "--out", out]);
        server.env(&mut command, s3server::SECRET_KEY);
        let output = tokio::task::spawn_blocking(move || command.output())
            .await
            .expect("joined")
            .expect("orgsql runs");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let _ = child.kill();
    let _ = child.wait();
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(server.folder("bench").join("read/manifest.json")).expect("the manifest"),
    )
    .expect("JSON");
    let files: usize = manifest["tables"]
        .as_array()
        .expect("tables")
        .iter()
        .map(|t| t["files"].as_array().map_or(0, Vec::len))
        .sum();
    let sql = "SELECT count(*) FROM events e JOIN event_context c USING (event_id)";
    let mut timings = Vec::new();
    for snapshot in [local.clone(), prefix.clone()] {
        let (binary, server_env) = (binary.clone(), &server);
        server.take_requests();
        let median = median_run(RUNS, || {
            let mut command = std::process::Command::new(&binary);
            command.args(["--snapshot", &snapshot, "--format", "csv", "-c", sql]);
            server_env.env(&mut command, s3server::SECRET_KEY);
            command
        });
        let requests = server.take_requests();
        let count = |op: &str| requests.iter().filter(|(o, _)| o == op).count() / RUNS;
        timings.push((
            median,
            count("GetObject"),
            count("HeadObject"),
            count("ListObjectsV2"),
        ));
    }
    let (disk, bucket) = (timings[0], timings[1]);
    println!(
        "storage_read: `orgsql --snapshot DIR -c \"{sql}\"` on an export of {EVENTS} events and \
         their context ({files} files), median of {RUNS} by {}: local disk {:.0} ms, S3 on \
         loopback {:.0} ms ({} GET, {} HEAD, {} LIST a run)",
        binary.display(),
        disk.0 * 1000.0,
        bucket.0 * 1000.0,
        bucket.1,
        bucket.2,
        bucket.3
    );
}

/// The binary a bench runs: this build's, or `ORGSQL_BENCH_BIN`'s.
fn orgsql_binary() -> std::path::PathBuf {
    std::env::var_os("ORGSQL_BENCH_BIN")
        .map_or_else(|| env!("CARGO_BIN_EXE_orgsql").into(), Into::into)
}

/// The median time of `runs` runs of `command`, in seconds (each must succeed).
fn median_run(runs: usize, mut command: impl FnMut() -> std::process::Command) -> f64 {
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let mut command = command();
            let started = Instant::now();
            let output = command.output().expect("orgsql runs");
            let elapsed = started.elapsed().as_secs_f64();
            assert!(
                output.status.success(),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
            elapsed
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// An export of 200,000 events (and their context) by the binary, then the
/// binary opening it: what a user waits for, process start included.
fn snapshot() {
    const EVENTS: usize = 200_000;
    const RUNS: usize = 7;
    let binary = orgsql_binary();
    let (mut child, connection) = emulator_process(100, EVENTS);
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("snap");
    let cache = tmp.path().join("cache");
    let out = dir.display().to_string();
    let exported = orgsql_on(&binary, &connection)
        .args(["export", "--tables", "events,event_context", "--out", &out])
        .output()
        .expect("orgsql runs");
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        exported.status.success(),
        "{}",
        String::from_utf8_lossy(&exported.stderr)
    );
    // As an export made earlier: the verification record leaves out files
    // changed in the last seconds.
    let earlier = std::time::SystemTime::now() - Duration::from_secs(3600);
    let mut files = 0;
    let mut folders = std::collections::BTreeSet::new();
    let mut pending = vec![dir.clone()];
    while let Some(path) = pending.pop() {
        for entry in std::fs::read_dir(&path).expect("readable").flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "parquet") {
                files += 1;
                folders.insert(path.parent().expect("a folder").to_path_buf());
                std::fs::File::options()
                    .write(true)
                    .open(&path)
                    .and_then(|f| f.set_modified(earlier))
                    .expect("dated back");
            }
        }
    }
    let query = |sql: &'static str| {
        let (binary, cache, out) = (binary.clone(), cache.clone(), out.clone());
        move || {
            let mut command = std::process::Command::new(&binary);
            command.env("XDG_CACHE_HOME", &cache).args([
                "--snapshot",
                &out,
                "--format",
                "csv",
                "-c",
                sql,
            ]);
            command
        }
    };
    // The first opening hashes every file (and records it); what follows
    // is every later query's cost.
    let first = median_run(1, query("SELECT 1"));
    let open = median_run(RUNS, query("SELECT 1"));
    let group = "SELECT action, count(*) FROM events GROUP BY action";
    let grouped = median_run(RUNS, query(group));
    println!(
        "snapshot: export of {EVENTS} events (with the role history) and their context: {files} \
         files in {} folders; `orgsql --snapshot DIR -c ...` by {}, median of {RUNS}: SELECT 1 \
         {:.0} ms (the first, hashing every file: {:.0} ms), {group} {:.0} ms",
        folders.len(),
        binary.display(),
        open * 1000.0,
        first * 1000.0,
        grouped * 1000.0
    );
    if let Some(keep) = std::env::var_os("ORGSQL_BENCH_KEEP") {
        // For measuring other readers (DuckDB) on the same files.
        let _ = std::fs::remove_dir_all(&keep);
        std::fs::rename(&dir, &keep).expect("kept");
    }
}

/// An export of 1,000,000 events with what replay reads beside them, then
/// `grants_during` over it by the binary: the whole process, as a user waits.
fn history() {
    const EVENTS: usize = 1_000_000;
    const USERS: usize = 2_000;
    const RUNS: usize = 5;
    let binary = orgsql_binary();
    let (mut child, connection) = emulator_process(USERS, EVENTS);
    let tmp = tempfile::tempdir().expect("temp dir");
    let out = tmp.path().join("snap").display().to_string();
    let exported = orgsql_on(&binary, &connection)
        .args([
            "export",
            "--tables",
            "events,event_context,user_role_assignments,group_members,group_role_assignments,workspaces",
            "--out",
            &out,
        ])
        .output()
        .expect("orgsql runs");
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        exported.status.success(),
        "{}",
        String::from_utf8_lossy(&exported.stderr)
    );
    let run = |sql: &str| {
        let output = std::process::Command::new(&binary)
            .env("XDG_CACHE_HOME", tmp.path().join("cache"))
            .args(["--snapshot", &out, "--format", "csv", "-c", sql])
            .output()
            .expect("orgsql runs");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .nth(1)
            .unwrap_or_default()
            .to_string()
    };
    let actions = orgsql::history::ACTIONS
        .iter()
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let total = run("SELECT count(*) FROM events");
    let grants = run(&format!(
        "SELECT count(*) FROM events WHERE action IN ({actions})"
    ));
    let during =
        "SELECT count(*) FROM grants_during('2026-07-01T00:00:00Z', '2026-10-01T00:00:00Z')";
    let rows = run(during);
    let median = median_run(RUNS, || {
        let mut command = std::process::Command::new(&binary);
        command
            .env("XDG_CACHE_HOME", tmp.path().join("cache"))
            .args(["--snapshot", &out, "--format", "csv", "-c", during]);
        command
    });
    println!(
        "history: grants_during over an export of {total} events ({grants} of them grant events, \
         replayed) and {USERS} users, by {}, median of {RUNS} (the whole process): {:.0} ms, \
         {rows} grants",
        binary.display(),
        median * 1000.0
    );
}

/// `orgsql verify` of 100,000 rows, twice: an export of 100,000 events (and
/// the role history), and a JSON report with a finding per exported event.
fn verify() {
    const EVENTS: usize = 100_000;
    const RUNS: usize = 7;
    let binary = orgsql_binary();
    let (mut child, connection) = emulator_process(100, EVENTS);
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("snap");
    let out = dir.display().to_string();
    let exported = orgsql_on(&binary, &connection)
        .args(["export", "--tables", "events", "--out", &out])
        .output()
        .expect("orgsql runs");
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        exported.status.success(),
        "{}",
        String::from_utf8_lossy(&exported.stderr)
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).expect("manifest"))
            .expect("JSON");
    let rows = manifest["tables"][0]["rows"].as_u64().expect("rows");
    let files = manifest["tables"][0]["files"]
        .as_array()
        .map_or(0, Vec::len);

    // A control with a finding per event, run on the export.
    let controls = tmp.path().join("controls");
    std::fs::create_dir_all(&controls).expect("a folder");
    std::fs::write(
        controls.join("every_event.sql"),
        "-- id: every_event\n-- title: Every event\n-- severity: low\n\
         -- rationale: A finding per event, to measure verify.\n-- remediation: None.\n\
         SELECT event_id AS resource, 'ok' AS status, action AS reason FROM events\n",
    )
    .expect("written");
    let report = tmp.path().join("report.json");
    let checked = std::process::Command::new(&binary)
        .args(["--snapshot", &out, "check", "--dir"])
        .arg(&controls)
        .args(["--controls", "every_event", "--format", "json", "--output"])
        .arg(&report)
        .output()
        .expect("orgsql runs");
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    let findings: usize =
        serde_json::from_slice::<serde_json::Value>(&std::fs::read(&report).expect("report"))
            .expect("JSON")["results"]
            .as_array()
            .expect("results")
            .iter()
            .map(|r| r["findings"].as_array().map_or(0, Vec::len))
            .sum();
    let report_bytes = std::fs::metadata(&report).expect("report").len();

    let verify = |path: std::path::PathBuf| {
        let binary = binary.clone();
        move || {
            let mut command = std::process::Command::new(&binary);
            command.arg("verify").arg(&path);
            command
        }
    };
    let export_time = median_run(RUNS, verify(dir.clone()));
    let report_time = median_run(RUNS, verify(report.clone()));
    println!(
        "verify: `orgsql verify DIR` of an export of {rows} events ({files} files) by {}, median \
         of {RUNS}: {:.0} ms; `orgsql verify REPORT` of a check report of {findings} findings \
         ({:.1} MB): {:.0} ms",
        binary.display(),
        export_time * 1000.0,
        report_bytes as f64 / 1e6,
        report_time * 1000.0
    );
}

/// Review files and rosters read by the binary at three sizes: the time
/// per 1,000 rows should stay about the same (it grew with the rows when
/// each row's line was counted from the top of the file).
fn sheets() {
    const RUNS: usize = 3;
    const GRANTS_PER_USER: f64 = 3.78; // the emulator's organizations, measured
    let binary = orgsql_binary();
    let tmp = tempfile::tempdir().expect("temp dir");
    for rows in [10_000, 50_000, 100_000] {
        let users = (rows as f64 / GRANTS_PER_USER).ceil() as usize;
        let (mut child, connection) = emulator_process(users, 10);
        let dir = tmp.path().join(format!("review-{rows}"));
        let started = orgsql_on(&binary, &connection)
            .args(["review", "start", "--by", "product", "--out"])
            .arg(&dir)
            .output()
            .expect("orgsql runs");
        let _ = child.kill();
        let _ = child.wait();
        assert!(
            started.status.success(),
            "{}",
            String::from_utf8_lossy(&started.stderr)
        );
        let review: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("review.json")).expect("review"))
                .expect("JSON");
        let grants: u64 = review["files"]
            .as_array()
            .expect("files")
            .iter()
            .map(|f| f["rows"].as_u64().expect("rows"))
            .sum();
        // Undecided grants are findings (exit 1): the files are read whole
        // and judged all the same. Judged against the review's own snapshot.
        let mut times: Vec<f64> = (0..RUNS)
            .map(|_| {
                let began = Instant::now();
                let output = std::process::Command::new(&binary)
                    .args(["review", "verify"])
                    .arg(&dir)
                    .arg("--against")
                    .arg(dir.join("snapshot"))
                    .output()
                    .expect("orgsql runs");
                assert_eq!(
                    output.status.code(),
                    Some(1),
                    "{}",
                    String::from_utf8_lossy(&output.stderr)
                );
                began.elapsed().as_secs_f64()
            })
            .collect();
        times.sort_by(f64::total_cmp);
        let verified = times[RUNS / 2];

        let roster = tmp.path().join(format!("roster-{rows}.csv"));
        let mut csv =
            String::from("email,name,manager_email,department,employment_status,end_date\n");
        for i in 0..rows {
            csv.push_str(&format!(
                "person{i}@example.com,Person {i},person{}@example.com,Dept {},active,\n",
                i / 10,
                i % 50
            ));
        }
        std::fs::write(&roster, csv).expect("roster");
        let read = median_run(RUNS, || {
            let mut command = std::process::Command::new(&binary);
            command
                .arg("--roster")
                .arg(&roster)
                .args(["--snapshot"])
                .arg(dir.join("snapshot"))
                .args(["--format", "csv", "-c", "SELECT count(*) FROM roster"]);
            command
        });
        println!(
            "sheets: {grants} grants: `orgsql review verify` {:.2} s ({:.1} ms per 1,000); a \
             roster of {rows} people read {:.2} s ({:.1} ms per 1,000); by {}, median of {RUNS}",
            verified,
            verified * 1e6 / grants as f64,
            read,
            read * 1e6 / rows as f64,
            binary.display()
        );
    }
}

/// `orgsql watch`'s default `--interval`, in seconds.
const WATCH_DEFAULT_INTERVAL: u64 = 60;

/// A positive number from the environment variable `name`, else `default`.
fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(text) => match text.parse::<u64>() {
            Ok(n) if n > 0 => n,
            _ => panic!("{name}={text:?}: give a positive whole number"),
        },
        Err(_) => default,
    }
}

/// The watch's interval: `ORGSQL_BENCH_WATCH_INTERVAL` (passed as
/// `--interval`), else the default (not passed).
fn watch_interval() -> (u64, Vec<String>) {
    match std::env::var("ORGSQL_BENCH_WATCH_INTERVAL") {
        Ok(_) => {
            let secs = env_number("ORGSQL_BENCH_WATCH_INTERVAL", WATCH_DEFAULT_INTERVAL);
            (secs, vec!["--interval".into(), secs.to_string()])
        }
        Err(_) => (WATCH_DEFAULT_INTERVAL, Vec::new()),
    }
}

/// An emulator for a watch: the API's budgets at real time, and a history
/// that ends an hour ago, so a first poll (ten minutes back) finds nothing
/// and every alert comes from an event the bench appends.
async fn watch_emulator() -> Emulator {
    Emulator::start(EmulatorConfig {
        org: OrgSpec {
            seed: 42,
            users: 50,
            events: 1000,
            now: Utc::now() - chrono::Duration::hours(1),
        },
        limits: Some(RateLimits::scaled(1.0)),
        ..Default::default()
    })
    .await
    .expect("emulator starts")
}

/// A running `orgsql watch` against `emu`, its state (and stderr, kept in
/// `dir/stderr`) in `dir`, killed when dropped.
struct Watch(std::process::Child, std::path::PathBuf);

impl Watch {
    fn start(emu: &Emulator, dir: &std::path::Path, extra: &[String]) -> Self {
        let stderr = dir.join("stderr");
        let child = std::process::Command::new(orgsql_binary())
            .args(["--base-url", &emu.base_url(), "--org-id", &emu.org().id])
            .env(
                "ATLASSIAN_API_KEY",
                emu.connection_json()["api_key"].as_str().expect("a key"),
            )
            .arg("watch")
            .arg("--state")
            .arg(dir.join("state"))
            .args(extra)
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&stderr).expect("a file for stderr"))
            .spawn()
            .expect("orgsql watch starts");
        Self(child, stderr)
    }

    /// Stop the bench if the watch has stopped.
    fn still_running(&mut self) {
        if let Some(status) = self.0.try_wait().expect("its status") {
            panic!(
                "orgsql watch stopped ({status}): {}",
                std::fs::read_to_string(&self.1).unwrap_or_default()
            );
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Alert latency at the watch's interval: events appended at random moments
/// (each a uniform 0 to one interval after the one before, so at every
/// phase of the polls), and the time until the alert whose key is the
/// event's id is a line in the `--output` file, which is read every 100 ms.
async fn watch_latency() {
    use rand::Rng;
    use std::io::{BufRead, Seek};
    // Actions each of which a built-in rule alerts on.
    const ACTIONS: [&str; 12] = orgsql::emulator::ALERTING_ACTIONS;
    let alerts = env_number("ORGSQL_BENCH_WATCH_ALERTS", 20) as usize;
    let (interval, args) = watch_interval();
    let emu = watch_emulator().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let output = dir.path().join("alerts.ndjson");
    let interval_given = !args.is_empty();
    let mut args = args;
    args.extend(["--output".to_string(), output.display().to_string()]);
    let mut watch = Watch::start(&emu, dir.path(), &args);
    let tick = Duration::from_millis(100);
    // From its first poll's end on: its state is written.
    while !dir.path().join("state/state.json").exists() {
        watch.still_running();
        tokio::time::sleep(tick).await;
    }
    let mut rng = rand::rng();
    let mut next_append =
        Instant::now() + Duration::from_secs_f64(rng.random_range(0.0..interval as f64));
    let mut appended: std::collections::HashMap<String, Instant> = Default::default();
    let mut latencies: Vec<f64> = Vec::new();
    let mut read_to = 0u64;
    let mut partial = String::new();
    // Long enough for any alert that is coming; the bar is one interval
    // and a minute.
    let give_up = Duration::from_secs(3 * interval + 120);
    let mut last_append = Instant::now();
    loop {
        let now = Instant::now();
        if appended.len() + latencies.len() < alerts && now >= next_append {
            let action = ACTIONS[(appended.len() + latencies.len()) % ACTIONS.len()];
            let event = emu.append_event(0, action, None).expect("appended");
            appended.insert(event.id, Instant::now());
            last_append = Instant::now();
            next_append =
                last_append + Duration::from_secs_f64(rng.random_range(0.0..interval as f64));
        }
        if let Ok(mut file) = std::fs::File::open(&output) {
            file.seek(std::io::SeekFrom::Start(read_to)).expect("seek");
            let mut reader = std::io::BufReader::new(file);
            loop {
                let mut line = String::new();
                let n = reader.read_line(&mut line).expect("the output file reads");
                if n == 0 {
                    break;
                }
                read_to += n as u64;
                partial.push_str(&line);
                if !partial.ends_with('\n') {
                    break;
                }
                let alert: serde_json::Value =
                    serde_json::from_str(&partial).expect("one JSON alert a line");
                partial.clear();
                // A second rule's alert on the same event finds it gone.
                if let Some(at) = alert["key"].as_str().and_then(|k| appended.remove(k)) {
                    latencies.push(at.elapsed().as_secs_f64());
                }
            }
        }
        if latencies.len() == alerts {
            break;
        }
        if !appended.is_empty() && last_append.elapsed() > give_up {
            break;
        }
        watch.still_running();
        tokio::time::sleep(tick).await;
    }
    drop(watch);
    let missing = appended.len();
    latencies.sort_by(f64::total_cmp);
    // Nearest rank (none when no alert came).
    let rank = |p: f64| {
        let rank = (p * latencies.len() as f64).ceil() as usize;
        latencies.get(rank.max(1) - 1).copied().unwrap_or(f64::NAN)
    };
    println!(
        "watch_latency: `orgsql watch` with {}, {} events appended at random moments \
         (0 to {interval} s apart), the alert's line in --output read every 100 ms: \
         p50 {:.1} s, p95 {:.1} s, max {:.1} s over {} alerts (bar: p95 within {} s){}",
        if interval_given {
            format!("--interval {interval}")
        } else {
            format!("its default interval ({interval} s)")
        },
        latencies.len() + missing,
        rank(0.50),
        rank(0.95),
        latencies.last().copied().unwrap_or(f64::NAN),
        latencies.len(),
        interval + 60,
        if missing > 0 {
            format!(
                "; {missing} alerts did not come within {} s",
                give_up.as_secs()
            )
        } else {
            String::new()
        }
    );
}

/// The requests of a watch left idle (no event appended) for
/// `ORGSQL_BENCH_WATCH_IDLE_SECS` (an hour), as the emulator counts them.
async fn watch_idle() {
    let secs = env_number("ORGSQL_BENCH_WATCH_IDLE_SECS", 3600);
    let (interval, args) = watch_interval();
    let emu = watch_emulator().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut watch = Watch::start(&emu, dir.path(), &args);
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(secs) {
        watch.still_running();
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let (all, stream) = (emu.requests(""), emu.requests("/events-stream"));
    drop(watch);
    let per_hour = all as f64 * 3600.0 / secs as f64;
    println!(
        "watch_idle: `orgsql watch` (interval {interval} s) idle for {secs} s: {all} requests \
         ({stream} to /events-stream, {} others), {} answered 429{}",
        all - stream,
        emu.throttled(),
        if secs == 3600 {
            String::new()
        } else {
            format!("; scaled to an hour: {per_hour:.0}")
        }
    );
}
