//! `orgsql_listings`: every listing this session has read, for every
//! organization: its pages, items, requests and retries, whether it was read
//! to its end, and the API's count before and after it where the API counts
//! the same filters. Read from the clients' shared log when a query scans it.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, BooleanArray, Int64Array, StringArray, TimestampMicrosecondArray};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::Result;

use super::orgsql_requests::LogTable;
use super::provider::Column;
use super::{Kind, TableInfo};
use crate::api::{Client, ListingRecord};

/// The catalog's entry: the session's own table.
pub fn info() -> TableInfo {
    TableInfo {
        name: "orgsql_listings",
        description: "Every listing this session has read: pages, items, requests, retries, read to its end, and the API's counts beside the items",
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
        Column::time("started_at", "When the listing began"),
        Column::text("table_name", "The table whose scan read it"),
        Column::key("endpoint", "METHOD and path template of its pages"),
        Column::text(
            "parameters",
            "What each page sent besides the path: query string and POST body, without the cursor",
        ),
        Column::count("pages", "Pages read"),
        Column::count(
            "items",
            "Items the pages held (a table may make several rows of one item, or none)",
        ),
        Column::count(
            "requests",
            "Requests sent for it, retries and counts included (cached pages send none)",
        ),
        Column::count("retries", "Requests sent again after a failure or a 429"),
        Column::count("cached_pages", "Pages the session cache held"),
        Column::flag(
            "read_to_end",
            "The last page said there is no next one; false when the scan stopped early (LIMIT) or failed",
        ),
        Column::text(
            "count_endpoint",
            "The endpoint that counts the same filters; NULL when the API has none for this call",
        ),
        Column::count("count_before", "The API's count just before the first page"),
        Column::count("count_after", "The API's count just after the last page"),
        Column::text("count_note", "Why there is no count, when there is none"),
        Column::key(
            "verdict",
            "complete, read to its end (no count), not read to its end, changed while read, or incomplete",
        ),
    ]
}

fn batch(client: &Client, schema: &SchemaRef) -> Result<RecordBatch> {
        let records = client.listings();
        let text = |f: &dyn Fn(&ListingRecord) -> Option<String>| -> ArrayRef {
            Arc::new(records.iter().map(f).collect::<StringArray>())
        };
        let count = |f: &dyn Fn(&ListingRecord) -> Option<u64>| -> ArrayRef {
            Arc::new(
                records
                    .iter()
                    .map(|r| f(r).and_then(|n| i64::try_from(n).ok()))
                    .collect::<Int64Array>(),
            )
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
            text(&|r| (!r.table_name.is_empty()).then(|| r.table_name.to_string())),
            text(&|r| Some(r.endpoint.clone())),
            text(&|r| Some(r.parameters.clone())),
            count(&|r| Some(r.pages)),
            count(&|r| Some(r.items)),
            count(&|r| Some(r.requests)),
            count(&|r| Some(r.retries)),
            count(&|r| Some(r.cached_pages)),
            Arc::new(
                records
                    .iter()
                    .map(|r| Some(r.read_to_end))
                    .collect::<BooleanArray>(),
            ),
            text(&|r| r.count_endpoint.clone()),
            count(&|r| r.count_before),
            count(&|r| r.count_after),
            text(&|r| r.count_note.clone()),
            text(&|r| Some(r.verdict().words().to_string())),
        ];
        Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

