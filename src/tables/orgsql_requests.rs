//! `orgsql_requests`: every API request this session has sent, for every
//! organization, retries included, read from the clients' shared log when a
//! query scans it. Cache hits send nothing and so are not listed.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{
    ArrayRef, Float64Array, Int64Array, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::{MemTable, TableType};
use datafusion::error::Result;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;

use super::provider::{Column, schema_from};
use super::{Kind, TableInfo};
use crate::api::Client;

/// The catalog's entry: the session's own table.
pub fn info() -> TableInfo {
    TableInfo {
        name: "orgsql_requests",
        description: "Every Admin API request this session has sent, retries included (cache hits send none)",
        columns: columns(),
        filters: &[],
        key: &[],
        labels: &[],
        kind: Kind::Session {
            make: |orgs| Arc::new(LogTable::new(orgs.first().clone(), columns(), batch)),
        },
    }
}

fn columns() -> Vec<Column> {
    vec![
        Column::org_id(),
        Column::time("started_at", "When the request was sent"),
        Column::key("method", "HTTP method"),
        Column::key(
            "endpoint",
            "Endpoint path template, without ids, e.g. /admin/v1/orgs/{orgId}/events",
        ),
        Column::count(
            "status",
            "HTTP status; NULL when no answer came (connection error, timeout)",
        ),
        Column::float("duration_ms", "Time to the whole answer, in milliseconds"),
        Column::count("attempt", "1 for the first try, 2 for the first retry, ..."),
        Column::count(
            "rows",
            "Items in the answer's page; NULL for failed requests and counts (no page)",
        ),
        Column::text("table_name", "The table whose scan sent the request"),
        Column::count(
            "bytes",
            "Size of the answer's body; NULL for failed requests",
        ),
        Column::float(
            "wait_ms",
            "Time it waited for its rate budget before it was sent, in milliseconds",
        ),
        Column::text(
            "parameters",
            "What it sent besides the path: the query string and any POST body, without the paging cursor",
        ),
    ]
}

/// A table of one of the session's logs, built from the log as it is when
/// a query scans it: rows this very scan causes come after.
#[derive(Debug)]
pub(super) struct LogTable {
    client: Client,
    schema: SchemaRef,
    batch: fn(&Client, &SchemaRef) -> Result<RecordBatch>,
}

impl LogTable {
    pub(super) fn new(
        client: Client,
        columns: Vec<Column>,
        batch: fn(&Client, &SchemaRef) -> Result<RecordBatch>,
    ) -> Self {
        Self {
            client,
            schema: schema_from(columns),
            batch,
        }
    }
}

#[async_trait]
impl TableProvider for LogTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let batch = (self.batch)(&self.client, &self.schema)?;
        let table = MemTable::try_new(self.schema.clone(), vec![vec![batch]])?;
        table.scan(state, projection, filters, limit).await
    }
}

fn batch(client: &Client, schema: &SchemaRef) -> Result<RecordBatch> {
        let records = client.requests();
        let text = |f: &dyn Fn(&crate::api::RequestRecord) -> Option<String>| -> ArrayRef {
            Arc::new(records.iter().map(f).collect::<StringArray>())
        };
        let count = |f: &dyn Fn(&crate::api::RequestRecord) -> Option<i64>| -> ArrayRef {
            Arc::new(records.iter().map(f).collect::<Int64Array>())
        };
        let columns: Vec<ArrayRef> = vec![
            text(&|r| Some(r.org_id.clone())),
            Arc::new(
                records
                    .iter()
                    .map(|r| Some(r.started_at.timestamp_micros()))
                    .collect::<TimestampMicrosecondArray>()
                    .with_timezone("UTC"),
            ),
            text(&|r| Some(r.method.clone())),
            text(&|r| Some(r.endpoint.to_string())),
            count(&|r| r.status.map(i64::from)),
            Arc::new(
                records
                    .iter()
                    .map(|r| Some(r.duration_ms))
                    .collect::<Float64Array>(),
            ),
            count(&|r| Some(i64::from(r.attempt))),
            count(&|r| r.rows.and_then(|n| i64::try_from(n).ok())),
            text(&|r| (!r.table_name.is_empty()).then(|| r.table_name.to_string())),
            count(&|r| r.bytes.and_then(|n| i64::try_from(n).ok())),
            Arc::new(
                records
                    .iter()
                    .map(|r| Some(r.wait_ms))
                    .collect::<Float64Array>(),
            ),
            text(&|r| Some(r.parameters.clone())),
        ];
        Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

