//! Shared by the integration tests: an emulator, a client on it, SQL to rows.

use std::time::Duration;

use chrono::{DateTime, Utc};
use datafusion::arrow::array::RecordBatch;
use datafusion::prelude::SessionContext;
use orgsql::api::{Client, ClientConfig, RetryPolicy};
use orgsql::emulator::{Emulator, EmulatorConfig, Faults, OrgSpec};

/// A fixed "now", so two emulators with one seed generate the same org.
pub fn fixed_now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-20T12:00:00Z")
        .expect("valid time")
        .to_utc()
}

pub fn spec(users: usize, events: usize) -> OrgSpec {
    OrgSpec {
        seed: 7,
        users,
        events,
        now: fixed_now(),
    }
}

pub async fn emulator(org: OrgSpec, faults: Faults, page_size_cap: Option<usize>) -> Emulator {
    Emulator::start(EmulatorConfig {
        org,
        faults,
        page_size_cap,
        ..Default::default()
    })
    .await
    .expect("emulator starts")
}

/// Retries without real waiting: the emulator's Retry-After is 0 in tests,
/// and backoff starts at a millisecond. Waits for a rate budget stay real.
pub fn fast_retries(mut config: ClientConfig) -> ClientConfig {
    config.retry = RetryPolicy {
        max_attempts: 6,
        base_delay: Duration::from_millis(1),
        ..RetryPolicy::default()
    };
    config
}

pub fn session(config: ClientConfig) -> SessionContext {
    let client = Client::new(fast_retries(config)).expect("client");
    orgsql::context(&client).expect("session")
}

pub async fn query(ctx: &SessionContext, sql: &str) -> datafusion::error::Result<Vec<RecordBatch>> {
    ctx.sql(sql).await?.collect().await
}

/// Rows as text, NULL as "NULL", one Vec per row.
pub fn rows(batches: &[RecordBatch]) -> Vec<Vec<String>> {
    orgsql::cli::output::text_rows(batches, "NULL").expect("formattable")
}

pub async fn sql_rows(ctx: &SessionContext, sql: &str) -> Vec<Vec<String>> {
    match query(ctx, sql).await {
        Ok(batches) => rows(&batches),
        Err(e) => panic!("{sql}: {e}"),
    }
}

/// An export folder opened offline, after checking that it holds `expected`
/// audit events, each exactly once.
pub async fn offline_with_events_once(dir: &std::path::Path, expected: usize) -> SessionContext {
    let offline = orgsql::snapshot::context(&dir.into())
        .await
        .expect("snapshot");
    assert_eq!(
        sql_rows(
            &offline,
            "SELECT count(*), count(DISTINCT event_id) FROM events"
        )
        .await,
        vec![vec![expected.to_string(), expected.to_string()]],
        "{expected} events, each once"
    );
    offline
}

/// The first column of every row.
pub async fn column(ctx: &SessionContext, sql: &str) -> Vec<String> {
    sql_rows(ctx, sql)
        .await
        .into_iter()
        .map(|mut r| r.swap_remove(0))
        .collect()
}

/// The real binary, pointed at `emu` with its key (from the environment, as
/// a user would), with nothing inherited that could point it elsewhere.
pub fn orgsql_on(emu: &orgsql::emulator::Emulator) -> std::process::Command {
    orgsql_at(
        &emu.base_url(),
        &emu.org().id,
        emu.connection_json()["api_key"]
            .as_str()
            .unwrap_or_default(),
    )
}

/// The real binary, pointed at any server, org and key.
pub fn orgsql_at(base_url: &str, org_id: &str, key: &str) -> std::process::Command {
    let mut command = orgsql_alone();
    command
        .args(["--base-url", base_url, "--org-id", org_id])
        .env("ATLASSIAN_API_KEY", key);
    command
}

/// The standard output of a run that must have succeeded (else its stderr).
pub fn succeeded(output: &std::process::Output, what: &str) -> Vec<u8> {
    assert!(
        output.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout.clone()
}

/// The real binary with nothing inherited that could point it at an
/// organization, give it a key, or change what it says.
pub fn orgsql_alone() -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_orgsql"));
    for var in [
        "ATLASSIAN_ORG_ID",
        "ATLASSIAN_API_KEY",
        "ATLASSIAN_SCOPED_API_KEY",
        "ORGSQL_BASE_URL",
        "ORGSQL_CONFIG",
        "ORGSQL_CSV_SAFE",
        "ORGSQL_NOTICE_SECS",
        "RUST_LOG",
    ] {
        command.env_remove(var);
    }
    // The verification record of snapshot files goes below target/, not
    // into the user's own cache.
    command.env(
        "XDG_CACHE_HOME",
        concat!(env!("CARGO_TARGET_TMPDIR"), "/xdg-cache"),
    );
    command
}

/// Every file below `dir` dated an hour back, as an export made earlier
/// (the verification record leaves out files changed in the last seconds).
pub fn age_files(dir: &std::path::Path) {
    let earlier = std::time::SystemTime::now() - Duration::from_secs(3600);
    for path in files_below(dir) {
        std::fs::File::options()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_modified(earlier))
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}

/// A file's bytes with one in the middle changed: the same size, another
/// sha256. Its modification time is set back as it was (as `touch -d`
/// would), so only its content and inode change time tell.
pub fn flip_a_byte(path: &std::path::Path) {
    let modified = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .expect("a file");
    let mut bytes = std::fs::read(path).expect("readable");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(path, bytes).expect("writable");
    std::fs::File::options()
        .write(true)
        .open(path)
        .and_then(|f| f.set_modified(modified))
        .expect("the time set back");
}

/// The resources a control alarms on, sorted, from its entry in a
/// `check --format json` report.
pub fn alarmed_resources(entry: &serde_json::Value) -> Vec<String> {
    let mut found: Vec<String> = entry["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["status"] == "alarm")
        .map(|f| f["resource"].as_str().unwrap_or_default().to_string())
        .collect();
    found.sort();
    found
}

/// Every file below `dir`, in its subfolders too (none if it does not exist).
pub fn files_below(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .flat_map(|e| match e.path() {
            p if p.is_dir() => files_below(&p),
            p => vec![p],
        })
        .collect()
}

/// `orgsql export` into `dir` (of `tables`, or all) with a client of its
/// own that caches nothing, as the command's is.
pub async fn export_to(
    config: orgsql::api::ClientConfig,
    dir: &std::path::Path,
    tables: Option<&[&str]>,
) -> orgsql::snapshot::Manifest {
    export_logged(config, dir, tables).await.0
}

/// `export_to`, and what it said (its log, a line per table).
pub async fn export_logged(
    mut config: orgsql::api::ClientConfig,
    dir: &std::path::Path,
    tables: Option<&[&str]>,
) -> (orgsql::snapshot::Manifest, String) {
    config.cache_ttl = None;
    let client = orgsql::api::Client::new(config).expect("client");
    let ctx = orgsql::context(&client).expect("session");
    let options = orgsql::cli::export::ExportOptions {
        out: dir.to_path_buf(),
        tables: tables.map(|t| t.iter().map(ToString::to_string).collect()),
        since: None,
        published: None,
    };
    let mut log = Vec::new();
    let manifest = orgsql::cli::export::export(&ctx, &client, &options, &mut log)
        .await
        .expect("export");
    (manifest, String::from_utf8_lossy(&log).into_owned())
}
