//! The one generic DataFusion table provider. A resource file says what its
//! columns are, which API calls produce its rows and how an API item becomes
//! rows; this file does the rest: schema, pushdown answers, lazy streaming scan.

use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::json::ReaderBuilder;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::TableType;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_expr::LexOrdering;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};
use futures::StreamExt;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::api::{Client, PageRequest};

/// One table column: its name, Arrow type, whether it may be NULL, and the
/// description `\d` shows.
#[derive(Debug, Clone)]
pub struct Column {
    pub name: &'static str,
    pub data_type: DataType,
    pub nullable: bool,
    pub description: &'static str,
}

impl Column {
    fn new(name: &'static str, data_type: DataType, description: &'static str) -> Self {
        Self {
            name,
            data_type,
            nullable: true,
            description,
        }
    }

    /// Text.
    pub fn text(name: &'static str, description: &'static str) -> Self {
        Self::new(name, DataType::Utf8, description)
    }

    /// Text the API always gives (ids): a missing one fails the query.
    pub fn key(name: &'static str, description: &'static str) -> Self {
        Self {
            nullable: false,
            ..Self::text(name, description)
        }
    }

    pub fn flag(name: &'static str, description: &'static str) -> Self {
        Self::new(name, DataType::Boolean, description)
    }

    pub fn count(name: &'static str, description: &'static str) -> Self {
        Self::new(name, DataType::Int64, description)
    }

    /// A point in time, microseconds, UTC.
    pub fn time(name: &'static str, description: &'static str) -> Self {
        Self::new(
            name,
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            description,
        )
    }

    /// A calendar date the API gives as `yyyy-MM-dd`.
    pub fn date(name: &'static str, description: &'static str) -> Self {
        Self::new(name, DataType::Date32, description)
    }

    /// Every table's first column.
    pub fn org_id() -> Self {
        Self::key("org_id", "Organization id (UUID) the row belongs to")
    }
}

/// What a scan asks of a resource: the columns it reads, the filters it
/// accepted, and a row limit when every filter was exact.
pub struct Scan<'a> {
    pub columns: Vec<&'a str>,
    pub filters: &'a [Expr],
    pub limit: Option<usize>,
}

impl Scan<'_> {
    pub fn needs(&self, column: &str) -> bool {
        self.columns.contains(&column)
    }

    /// Page size: the API's maximum, or less when a LIMIT needs fewer rows.
    pub fn page_size(&self, api_max: usize) -> usize {
        self.limit.map_or(api_max, |limit| limit.clamp(1, api_max))
    }
}

/// One Admin API resource exposed as a table.
pub trait Resource: Send + Sync + 'static {
    /// A page's `data` as the API sends it.
    type Data: DeserializeOwned + Send + 'static;
    /// One row; field names are column names (arrow-json maps them).
    type Row: Serialize + Send + 'static;

    const NAME: &'static str;
    const DESCRIPTION: &'static str;

    fn columns() -> Vec<Column>;

    /// The API calls whose pages hold this scan's rows.
    fn requests(scan: &Scan) -> Vec<PageRequest>;

    /// Append the rows one page's data holds.
    fn push_rows(org_id: &str, data: Self::Data, rows: &mut Vec<Self::Row>);

    /// How a filter reaches the API: `Exact` only when the API applies it fully.
    fn pushdown(_filter: &Expr) -> TableProviderFilterPushDown {
        TableProviderFilterPushDown::Unsupported
    }
}

/// The Arrow schema of a resource; descriptions travel as field metadata.
pub fn schema_of<R: Resource>() -> SchemaRef {
    let fields: Vec<Field> = R::columns()
        .into_iter()
        .map(|c| {
            Field::new(c.name, c.data_type, c.nullable).with_metadata(HashMap::from([(
                "description".to_string(),
                c.description.to_string(),
            )]))
        })
        .collect();
    Arc::new(Schema::new(fields).with_metadata(HashMap::from([(
        "description".to_string(),
        R::DESCRIPTION.to_string(),
    )])))
}

/// Decode one page of API JSON into the resource's rows, as a record batch
/// (`None` for an empty page). The same path a live scan takes.
pub fn decode_page<R: Resource>(org_id: &str, body: &[u8]) -> Result<Option<RecordBatch>> {
    let page: crate::api::Envelope<R::Data> = serde_json::from_slice(body)
        .map_err(|e| DataFusionError::Execution(format!("{}: cannot decode page: {e}", R::NAME)))?;
    rows_to_batch::<R>(&schema_of::<R>(), org_id, page.data)
}

fn rows_to_batch<R: Resource>(
    schema: &SchemaRef,
    org_id: &str,
    data: R::Data,
) -> Result<Option<RecordBatch>> {
    let mut rows = Vec::new();
    R::push_rows(org_id, data, &mut rows);
    if rows.is_empty() {
        return Ok(None);
    }
    let mut decoder = ReaderBuilder::new(schema.clone())
        .with_batch_size(rows.len())
        .build_decoder()?;
    decoder.serialize(&rows)?;
    decoder.flush().map_err(|e| {
        DataFusionError::Execution(format!(
            "table {}: a row does not fit the schema: {e}",
            R::NAME
        ))
    })
}

/// A table backed by one Admin API resource.
pub struct ApiTable<R> {
    client: Client,
    schema: SchemaRef,
    resource: PhantomData<fn() -> R>,
}

impl<R: Resource> ApiTable<R> {
    pub fn new(client: Client) -> Self {
        Self {
            client,
            schema: schema_of::<R>(),
            resource: PhantomData,
        }
    }
}

impl<R> fmt::Debug for ApiTable<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiTable")
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl<R: Resource> TableProvider for ApiTable<R> {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(filters.iter().map(|f| R::pushdown(f)).collect())
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let fields = self.schema.fields();
        let columns = match projection {
            Some(indices) => indices.iter().map(|&i| fields[i].name().as_str()).collect(),
            None => fields.iter().map(|f| f.name().as_str()).collect(),
        };
        let requests = R::requests(&Scan {
            columns,
            filters,
            limit,
        });
        let partition = Arc::new(ApiPartition::<R> {
            client: self.client.clone(),
            schema: self.schema.clone(),
            requests,
            resource: PhantomData,
        });
        let exec = StreamingTableExec::try_new(
            self.schema.clone(),
            vec![partition],
            projection,
            Vec::<LexOrdering>::new(),
            false,
            limit,
        )?;
        Ok(Arc::new(exec))
    }
}

/// The scan's single partition: the requests' pages, one after another,
/// fetched only as DataFusion polls for the next batch.
struct ApiPartition<R> {
    client: Client,
    schema: SchemaRef,
    requests: Vec<PageRequest>,
    resource: PhantomData<fn() -> R>,
}

impl<R> fmt::Debug for ApiPartition<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiPartition")
            .field("requests", &self.requests.len())
            .finish_non_exhaustive()
    }
}

impl<R: Resource> PartitionStream for ApiPartition<R> {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let client = self.client.clone();
        let org_id = client.org_id().to_string();
        let schema = self.schema.clone();
        let pages = futures::stream::iter(self.requests.clone())
            .flat_map(move |request| client.pages::<R::Data>(request));
        let batches = pages.filter_map(move |page| {
            let result = page
                .map_err(|e| DataFusionError::External(Box::new(e)))
                .and_then(|data| rows_to_batch::<R>(&schema, &org_id, data))
                .transpose();
            futures::future::ready(result)
        });
        Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), batches))
    }
}
