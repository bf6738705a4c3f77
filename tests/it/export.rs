//! Results written to files: read back by an independent reader, and never
//! half-written — a failing query leaves no file and an old file untouched.

use std::fs::File;

use crate::common::*;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::prelude::SessionContext;
use orgsql::api::{Client, RetryPolicy};
use orgsql::cli::Format;
use orgsql::cli::runner::{Runner, Settings};
use orgsql::emulator::{Emulator, Faults};

const EVENTS: &str = "SELECT event_id, time, action, actor_id, ip FROM events ORDER BY event_id";

/// Every row of a Parquet file, through the parquet crate's own reader.
fn parquet_rows(path: &std::path::Path) -> Vec<Vec<String>> {
    let file = File::open(path).expect("the file exists");
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .expect("a Parquet file")
        .build()
        .expect("a reader");
    let batches: Vec<_> = reader.map(|b| b.expect("a batch")).collect();
    rows(&batches)
}

/// A session whose first failed request fails the query (no retries, and
/// no cache to answer instead of the API).
fn fragile_session(emu: &Emulator) -> SessionContext {
    let mut config = emu.client_config();
    config.cache_ttl = None;
    config.retry = RetryPolicy {
        max_attempts: 1,
        ..RetryPolicy::default()
    };
    orgsql::context(&Client::new(config).expect("client")).expect("session")
}

async fn run(
    ctx: &SessionContext,
    sql: &str,
    format: Format,
    file: Option<&std::path::Path>,
) -> Result<(), String> {
    let settings = Settings {
        format,
        max_rows: 0,
        expanded: orgsql::cli::output::Expanded::Off,
        csv_safe: false,
    };
    let output = file.map(std::path::Path::to_path_buf);
    Runner::new(ctx.clone(), None, Default::default(), settings, output)
        .statements(sql)
        .await
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn copy_and_output_write_parquet_that_reads_back_the_same() {
    let emu = emulator(spec(30, 120), Faults::default(), Some(25)).await;
    let ctx = session(emu.client_config());
    let dir = tempfile::tempdir().expect("temp dir");
    let expected = sql_rows(&ctx, EVENTS).await;
    assert_eq!(expected.len(), emu.org().events.len());

    let copied = dir.path().join("events.parquet");
    let copy = format!("COPY ({EVENTS}) TO '{}'", copied.display());
    run(&ctx, &copy, Format::Table, None)
        .await
        .expect("COPY runs");
    assert_eq!(parquet_rows(&copied), expected);

    let output = dir.path().join("out.parquet");
    run(&ctx, EVENTS, Format::Parquet, Some(&output))
        .await
        .expect("--output runs");
    assert_eq!(parquet_rows(&output), expected);

    // Only the two files: no temporary left behind.
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, vec!["events.parquet", "out.parquet"]);
}

#[tokio::test]
async fn a_failing_query_leaves_no_file_and_an_old_file_intact() {
    // Every third request fails; 120 events at 25 a page need five.
    let faults = Faults {
        fail_every: Some(3),
        ..Faults::default()
    };
    let emu = emulator(spec(30, 120), faults, Some(25)).await;
    let ctx = fragile_session(&emu);
    let dir = tempfile::tempdir().expect("temp dir");

    let fresh = dir.path().join("fresh.parquet");
    let copy = format!("COPY ({EVENTS}) TO '{}'", fresh.display());
    let error = run(&ctx, &copy, Format::Table, None)
        .await
        .expect_err("the query fails");
    assert!(error.contains("/events"), "{error}");
    assert!(!fresh.exists(), "no partial file");

    let old = dir.path().join("old.csv");
    std::fs::write(&old, "the old export\n").expect("write");
    let copy = format!("COPY ({EVENTS}) TO '{}'", old.display());
    run(&ctx, &copy, Format::Table, None)
        .await
        .expect_err("the query fails");
    assert_eq!(
        std::fs::read_to_string(&old).expect("read"),
        "the old export\n"
    );

    let output = dir.path().join("output.parquet");
    run(&ctx, EVENTS, Format::Parquet, Some(&output))
        .await
        .expect_err("the query fails");
    assert!(!output.exists());

    let names: Vec<String> = std::fs::read_dir(dir.path())
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["old.csv"], "no temporary left behind");
}
