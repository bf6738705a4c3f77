//! sqllogictest suite: every `tests/slt/*.slt` file runs against one emulated
//! organization (the demo org's seed and size, with a pinned clock), each file
//! in a fresh session on a fresh client (its own page cache and request log).
//!
//! `SLT_COMPLETE=1 cargo test slt` rewrites the expected output in
//! place; only for authoring: every expected value must be justified by the
//! generator or be a self-check (see the comments in the files).

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use datafusion::arrow::datatypes::DataType;
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use orgsql::api::{Client, ClientConfig};
use orgsql::emulator::{Faults, OrgSpec};
use sqllogictest::{
    AsyncDB, DBOutput, DefaultColumnType, Runner, default_normalizer, default_validator,
    strict_column_validator,
};

/// One session over the emulated organization.
struct OrgDb {
    ctx: SessionContext,
}

impl OrgDb {
    fn new(config: ClientConfig) -> Result<Self, DataFusionError> {
        let client = Client::new(crate::common::fast_retries(config))
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        Ok(Self {
            ctx: orgsql::context(&client)?,
        })
    }
}

fn column_type(data_type: &DataType) -> DefaultColumnType {
    if data_type.is_integer() {
        DefaultColumnType::Integer
    } else if data_type.is_floating() || matches!(data_type, DataType::Decimal128(..)) {
        DefaultColumnType::FloatingPoint
    } else {
        DefaultColumnType::Text
    }
}

#[async_trait]
impl AsyncDB for OrgDb {
    type Error = DataFusionError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, DataFusionError> {
        let frame = orgsql::sql::frame(&self.ctx, sql).await?;
        let schema = frame.schema().clone();
        let batches = frame.collect().await?;
        // DDL (CREATE VIEW, SET, ...) answers with no columns.
        if schema.fields().is_empty() {
            return Ok(DBOutput::StatementComplete(0));
        }
        let types = schema
            .fields()
            .iter()
            .map(|f| column_type(f.data_type()))
            .collect();
        let rows = crate::common::rows(&batches)
            .into_iter()
            .map(|row| {
                row.into_iter()
                    .map(|v| {
                        if v.is_empty() {
                            "(empty)".to_string()
                        } else {
                            v
                        }
                    })
                    .collect()
            })
            .collect();
        Ok(DBOutput::Rows { types, rows })
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "orgsql"
    }

    async fn sleep(dur: Duration) {
        tokio::time::sleep(dur).await;
    }
}

fn slt_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/slt");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "slt"))
        .collect();
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread")]
async fn every_slt_file_passes() {
    let spec = OrgSpec {
        seed: 42,
        users: 250,
        events: 3000,
        now: crate::common::fixed_now(),
    };
    let emu = crate::common::emulator(spec, Faults::default(), None).await;
    let complete = std::env::var("SLT_COMPLETE").is_ok_and(|v| v == "1");
    let files = slt_files();
    assert!(!files.is_empty(), "no tests/slt/*.slt files");
    let mut failed = 0;
    for file in &files {
        let config = emu.client_config();
        let mut runner = Runner::new(move || {
            let config = config.clone();
            async move { OrgDb::new(config) }
        });
        runner.with_column_validator(strict_column_validator);
        let name = file.display();
        if complete {
            if let Err(e) = runner
                .update_test_file(
                    file,
                    " ",
                    default_validator,
                    default_normalizer,
                    strict_column_validator,
                )
                .await
            {
                eprintln!("{name}: cannot complete: {e}");
                failed += 1;
            } else {
                println!("{name}: completed");
            }
        } else {
            match runner.run_file_async(file).await {
                Ok(()) => println!("{name}: ok"),
                Err(e) => {
                    eprintln!("{name}: FAILED\n{}\n", e.display(false));
                    failed += 1;
                }
            }
        }
        runner.shutdown_async().await;
    }
    assert_eq!(failed, 0, "{failed} of {} slt files failed", files.len());
}
