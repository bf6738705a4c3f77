//! `history_coverage`: which periods the session's history covers, source
//! by source (its own log, live or a snapshot's, and `--history`'s
//! exports), and the gaps between them that no source covers.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, StringArray, TimestampMicrosecondArray, Int64Array};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::{MemTable, TableType};
use datafusion::error::Result;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;

use super::grants_history::{data_end, read_logs};
use super::provider::{Column, schema_from};
use super::{Kind, TableInfo};

pub const NAME: &str = "history_coverage";

pub fn info() -> TableInfo {
    TableInfo {
        name: NAME,
        description: "What the history (grants_history, grants_at, grants_during) covers: one row per audit log it reads and one per gap between them",
        columns: columns(),
        filters: &[],
        key: &[],
        labels: &[],
        kind: Kind::View {
            over: &["events", "event_context"],
            make: |sides| Ok(Arc::new(HistoryCoverage { sides })),
            pushdown: |_| TableProviderFilterPushDown::Unsupported,
        },
    }
}

fn columns() -> Vec<Column> {
    vec![
        Column::org_id(),
        Column::key(
            "kind",
            "source (an audit log the history reads) or gap (a period no source covers)",
        ),
        Column::text(
            "source",
            "live, snapshot (the session's own log) or an export folder given to --history; NULL for a gap",
        ),
        Column::time(
            "covered_from",
            "A source: its earliest grant event (NULL: none); a gap: where the covered period before it ends",
        ),
        Column::time(
            "covered_to",
            "A source: when it was read (now, or its export time); a gap: where the next source's grant events begin",
        ),
        Column::count(
            "events",
            "Grant events read from the source (an event two sources hold counts in each); 0 for a gap",
        ),
    ]
}

#[derive(Debug)]
struct HistoryCoverage {
    sides: Vec<Arc<dyn TableProvider>>,
}

#[async_trait]
impl TableProvider for HistoryCoverage {
    fn schema(&self) -> SchemaRef {
        schema_from(columns())
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let end = data_end(state)?;
        let mut symbols = crate::history::Symbols::default();
        let (events, event_context) = (self.sides[0].clone(), self.sides[1].clone());
        let logs = read_logs(state, end, events, event_context, &mut symbols).await?;
        let mut rows = Vec::new();
        for (org_id, log) in &logs {
            for period in log.coverage(end).periods {
                rows.push((org_id.clone(), period));
            }
        }
        let schema = self.schema();
        let columns: Vec<ArrayRef> = vec![
            Arc::new(rows.iter().map(|(o, _)| Some(o.as_str())).collect::<StringArray>()),
            Arc::new(
                rows.iter()
                    .map(|(_, p)| Some(if p.source.is_some() { "source" } else { "gap" }))
                    .collect::<StringArray>(),
            ),
            Arc::new(rows.iter().map(|(_, p)| p.source.as_deref()).collect::<StringArray>()),
            Arc::new(
                rows.iter()
                    .map(|(_, p)| p.from)
                    .collect::<TimestampMicrosecondArray>()
                    .with_timezone("UTC"),
            ),
            Arc::new(
                rows.iter()
                    .map(|(_, p)| Some(p.to))
                    .collect::<TimestampMicrosecondArray>()
                    .with_timezone("UTC"),
            ),
            Arc::new(
                rows.iter()
                    .map(|(_, p)| Some(p.events as i64))
                    .collect::<Int64Array>(),
            ),
        ];
        let batch = RecordBatch::try_new(schema.clone(), columns)?;
        MemTable::try_new(schema, vec![vec![batch]])?
            .scan(state, projection, filters, limit)
            .await
    }
}
