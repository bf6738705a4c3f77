//! The one generic DataFusion table provider. A resource file says what its
//! columns are, which API calls produce its rows and how an API item becomes
//! rows; this file does the rest: schema, pushdown answers, and a lazy scan
//! that streams one batch per page, fans out per user or group with bounded
//! concurrency, and narrows that fan-out by the keys a join has already seen.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::marker::PhantomData;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::BooleanArray;
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::json::ReaderBuilder;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::TableType;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_expr::{EquivalenceProperties, Partitioning, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::filter_pushdown::{
    ChildPushdownResult, FilterPushdownPhase, FilterPushdownPropagation, PushedDown,
};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use futures::stream::{self, BoxStream, StreamExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::filters::{self, Filter, join_key_values, join_key_values_of};
use crate::api::{ApiError, Client, Keep, Orgs, PageItems, PageRequest};

/// Every table's first column, which organization a row is of.
const ORG_ID: &str = "org_id";

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
            // `r#type` in a row declaration is the column `type`.
            name: name.trim_start_matches("r#"),
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

    pub fn float(name: &'static str, description: &'static str) -> Self {
        Self::new(name, DataType::Float64, description)
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

/// A table's row: its columns, generated with the row by `row!`.
pub trait TableRow {
    fn columns() -> Vec<Column>;
}

/// How one page's data becomes a table's rows. `row!` implements it for a
/// row made of one API item (`Row(origin, item: Item)`): a page that is a
/// list of such items makes a row of each, so such a table writes nothing
/// more. A row made otherwise (several of one item, or of a page that is
/// one object) implements it itself.
pub trait FromPage<Data>: Sized {
    /// Append the rows one page's data holds.
    fn push_rows(origin: &Origin, data: Data, rows: &mut Vec<Self>);
}

/// The Rust type a column kind is held in before it becomes Arrow.
#[macro_export]
#[doc(hidden)]
macro_rules! row_type {
    (key) => { String };
    (text) => { Option<String> };
    (flag) => { Option<bool> };
    (count) => { Option<i64> };
    (float) => { Option<f64> };
    (time) => { Option<String> };
    (date) => { Option<String> };
}

/// A table's row, declared once: each column's name, kind (`key`, `text`,
/// `flag`, `count`, `float`, `time`, `date`), where its value comes from, and
/// its description. Generates the row struct, its constructor from the
/// arguments given (`origin` first: every row starts with `org_id`), its
/// columns and, for a row made of one item (taken by value, as a page's
/// items are), `FromPage` for a page of them. For example:
///
/// ```ignore
/// row! {
///     DomainRow(origin, d: ApiDomain) {
///         domain_id: key = d.id, "Domain id";
///         name: text = d.attributes.name, "Domain name, e.g. example.com";
///     }
/// }
/// ```
#[macro_export]
#[doc(hidden)]
macro_rules! row {
    ($row:ident($origin:ident $(, $arg:ident : $ty:ty)* $(,)?) {
        $($column:ident : $kind:ident = $value:expr , $description:literal ;)*
    }) => {
        #[derive(serde::Serialize)]
        pub struct $row {
            org_id: String,
            $($column: $crate::row_type!($kind),)*
        }

        impl $row {
            #[allow(clippy::too_many_arguments, clippy::redundant_field_names)]
            fn new($origin: &$crate::tables::Origin $(, $arg: $ty)*) -> Self {
                Self {
                    org_id: $origin.org_id.to_string(),
                    $($column: $value,)*
                }
            }
        }

        impl $crate::tables::TableRow for $row {
            fn columns() -> Vec<$crate::tables::Column> {
                vec![
                    $crate::tables::Column::org_id(),
                    $($crate::tables::Column::$kind(stringify!($column), $description),)*
                ]
            }
        }

        $crate::row_per_item!($row $(, $arg: $ty)*);
    };
}

/// `FromPage` for a row made of one item: a row of each item of a page.
/// Rows made of more arguments get none (their table says how).
#[macro_export]
#[doc(hidden)]
macro_rules! row_per_item {
    ($row:ident, $arg:ident : $ty:ty) => {
        impl $crate::tables::FromPage<Vec<$ty>> for $row {
            fn push_rows(origin: &$crate::tables::Origin, data: Vec<$ty>, rows: &mut Vec<Self>) {
                rows.extend(data.into_iter().map(|item| Self::new(origin, item)));
            }
        }
    };
    ($row:ident $(, $arg:ident : $ty:ty)*) => {};
}

/// What a scan asks of a resource: the columns it reads, the filters it
/// accepted, and a row limit when every filter was exact; and the filters
/// the table declares, to send them.
pub struct Scan<'a> {
    pub columns: Vec<&'a str>,
    pub filters: &'a [Expr],
    pub limit: Option<usize>,
    pub declared: &'static [Filter],
}

impl<'a> Scan<'a> {
    /// Every row, no column in particular: how a fan-out lists its parents.
    pub fn everything() -> Scan<'static> {
        Scan {
            columns: Vec::new(),
            filters: &[],
            limit: None,
            declared: &[],
        }
    }

    /// The same scan without its LIMIT, for tables that make several rows of
    /// one API item (a LIMIT counts rows, so pages must be full size).
    pub fn without_limit(&self) -> Scan<'a> {
        Scan {
            columns: self.columns.clone(),
            filters: self.filters,
            limit: None,
            declared: self.declared,
        }
    }

    /// The calls that ask `base` for this scan's rows: every declared
    /// filter sent as the API takes it (see `filters::apply`).
    pub fn requests(&self, base: PageRequest) -> Vec<PageRequest> {
        filters::apply(self.declared, self.filters, base)
    }

    /// A fan-out: the parents its declared parent filter names, else
    /// `every` (a listing of them all), and the call made for each.
    pub fn fan_out(&self, every: Parents, child: PageRequest) -> Fetch {
        let parent = self
            .declared
            .iter()
            .find(|f| matches!(f.shape, filters::Shape::Parent));
        let named = parent.and_then(|f| filters::allowed_values(self.filters, f.column));
        // Several calls per parent when a filter's list is split over calls.
        let children = self.requests(child);
        let Some(parent) = parent.filter(|_| !children.is_empty()) else {
            // Contradicting filters: nothing to call.
            return Fetch::Listings(Vec::new());
        };
        Fetch::PerParent(FanOut {
            parents: named.map_or(every, Parents::Ids),
            children,
            param: parent.param,
        })
    }

    /// A bulk fetch in batches of `size`: the parents its declared parent
    /// filter names, else `every`.
    pub fn batched(
        &self,
        every: Parents,
        size: usize,
        request: fn(&[String]) -> PageRequest,
    ) -> Fetch {
        let parent = self
            .declared
            .iter()
            .find(|f| matches!(f.shape, filters::Shape::Parent));
        let named = parent.and_then(|f| filters::allowed_values(self.filters, f.column));
        Fetch::Batched {
            parents: named.map_or(every, Parents::Ids),
            size,
            request,
        }
    }

    pub fn needs(&self, column: &str) -> bool {
        self.columns.contains(&column)
    }

    /// Page size: the API's maximum, or less when a LIMIT needs fewer rows.
    pub fn page_size(&self, api_max: usize) -> usize {
        self.limit.map_or(api_max, |limit| limit.clamp(1, api_max))
    }
}

/// How a scan gets its pages.
pub enum Fetch {
    /// These listings, one after another.
    Listings(Vec<PageRequest>),
    /// One listing per parent (a user, a group), several in flight at once.
    PerParent(FanOut),
    /// `first`; when the API refuses it (401, 403 or 404 on its first page),
    /// `then` instead, and the client notes `note` for the user.
    Fallback {
        first: Box<Fetch>,
        then: Box<Fetch>,
        note: &'static str,
    },
    /// One call per batch of at most `size` parents: a bulk fetch that
    /// takes their ids in its body (`request` makes the call for a batch),
    /// each answer read to its end, one batch after another.
    Batched {
        parents: Parents,
        size: usize,
        request: fn(&[String]) -> PageRequest,
    },
}

impl Fetch {
    /// The calls it makes ("METHOD template?parameters"), in order; a
    /// fan-out's once per parent.
    pub fn endpoints(&self) -> Vec<String> {
        match self {
            Fetch::Listings(requests) => requests.iter().map(PageRequest::described).collect(),
            Fetch::PerParent(fan_out) => {
                let per = match &fan_out.parents {
                    Parents::Ids(ids) => format!("{} named", ids.len()),
                    Parents::ScimDirectories => "each SCIM directory with a token".to_string(),
                    Parents::Listing { requests, .. } => {
                        let listing: Vec<String> =
                            requests.iter().map(PageRequest::described).collect();
                        format!("each of {}", listing.join(" + "))
                    }
                };
                let children: Vec<String> = fan_out
                    .children
                    .iter()
                    .map(PageRequest::described)
                    .collect();
                vec![format!("{} (per parent: {per})", children.join(" + "))]
            }
            Fetch::Fallback { first, then, .. } => {
                let mut endpoints = first.endpoints();
                endpoints.push(format!("(else) {}", then.endpoints().join(" + ")));
                endpoints
            }
            Fetch::Batched {
                parents,
                size,
                request,
            } => {
                let per = match parents {
                    Parents::Ids(ids) => format!("{} named", ids.len()),
                    Parents::ScimDirectories => "of the SCIM directories".to_string(),
                    Parents::Listing { requests, .. } => {
                        let listing: Vec<String> =
                            requests.iter().map(PageRequest::described).collect();
                        format!("of {}", listing.join(" + "))
                    }
                };
                vec![format!(
                    "{} (per batch of up to {size} ids, {per})",
                    request(&[]).described()
                )]
            }
        }
    }
}

impl From<Vec<PageRequest>> for Fetch {
    fn from(requests: Vec<PageRequest>) -> Self {
        Fetch::Listings(requests)
    }
}

/// A fan-out: the parents' ids, and the calls made for each.
pub struct FanOut {
    pub parents: Parents,
    /// The per-parent calls, without the parent's path parameter: one, or
    /// several when a filter's list is split over calls.
    pub children: Vec<PageRequest>,
    /// The path parameter that takes the parent's id, e.g. `accountId`.
    pub param: &'static str,
}

pub enum Parents {
    /// Named by the query (`WHERE account_id IN (...)`, or a join's keys).
    Ids(Vec<String>),
    /// Every SCIM directory the organization's connection has a token for;
    /// none fails the scan, saying how to configure one.
    ScimDirectories,
    /// Every parent a listing returns; `key` is the id field of its items.
    Listing {
        requests: Vec<PageRequest>,
        key: &'static str,
    },
}

/// Where a page came from: its organization and, in a fan-out, its parent's id.
pub struct Origin<'a> {
    pub org_id: &'a str,
    pub parent: Option<&'a str>,
}

impl Origin<'_> {
    /// The parent's id (fan-out tables only; empty otherwise).
    pub fn parent(&self) -> String {
        self.parent.unwrap_or_default().to_string()
    }
}

/// One Admin API resource exposed as a table.
pub trait Resource: Send + Sync + 'static {
    /// A page's `data` as the API sends it.
    type Data: DeserializeOwned + PageItems + Send + Sync + 'static;
    /// One row, declared with `row!`: field names are column names, and
    /// arrow-json maps them strictly. `FromPage` makes them of a page.
    type Row: TableRow + FromPage<Self::Data> + Serialize + Send + 'static;

    const NAME: &'static str;
    const DESCRIPTION: &'static str;
    /// What the table calls the API once for ("user", "group"), if it fans out.
    const FAN_OUT: Option<&'static str> = None;
    /// The columns that identify a row: a scan yields each key once, and
    /// `orgsql diff` compares rows by it.
    const KEY: &'static [&'static str] = &[];
    /// What `orgsql diff` shows beside the key to name the row for a person.
    const LABELS: &'static [super::Label] = &[];
    /// The filters the API applies, as it takes them: the one list that both
    /// answers pushdown and builds the calls.
    const FILTERS: &'static [Filter] = &[];
    /// An append-only history (the audit log): `orgsql diff` leaves it out.
    const HISTORY: bool = false;
    /// How a page holds its data: in the Admin API's envelope (`data`), as
    /// the whole answer, or as a SCIM ListResponse (`Resources`).
    const PAGE: PageShape = PageShape::Envelope;

    fn columns() -> Vec<Column> {
        Self::Row::columns()
    }

    /// The API calls whose pages hold this scan's rows.
    fn fetch(scan: &Scan) -> Fetch;

    /// How a filter reaches the API, from `FILTERS`: `Exact` only when the
    /// API applies it fully.
    fn pushdown(filter: &Expr) -> TableProviderFilterPushDown {
        filters::pushdown(Self::FILTERS, filter)
    }
}

/// The Arrow schema of a resource.
pub fn schema_of<R: Resource>() -> SchemaRef {
    schema_from(R::columns())
}

/// A table's schema from its columns. Descriptions are not attached as field
/// metadata: DataFusion 55 rejects a UNION whose sides' metadata differ, so
/// they live in `tables::catalog()` instead.
pub fn schema_from(columns: Vec<Column>) -> SchemaRef {
    let fields: Vec<Field> = columns
        .into_iter()
        .map(|c| Field::new(c.name, c.data_type, c.nullable))
        .collect();
    Arc::new(Schema::new(fields))
}

/// How an answer holds a page's data (`Resource::PAGE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageShape {
    /// `{"data": ..., "links": ..., "meta": ...}`.
    Envelope,
    /// The answer is the data (`PageRequest::bare`).
    Bare,
    /// A SCIM ListResponse: the data is `Resources`.
    ScimList,
}

/// Decode one page of API JSON into the resource's rows, as a record batch
/// (`None` for an empty page). The same path a live scan takes.
pub fn decode_page<R: Resource>(org_id: &str, body: &[u8]) -> Result<Option<RecordBatch>> {
    let cannot = |e: serde_json::Error| {
        DataFusionError::Execution(format!("{}: cannot decode page: {e}", R::NAME))
    };
    let data: R::Data = match R::PAGE {
        PageShape::Envelope => {
            serde_json::from_slice::<crate::api::Envelope<R::Data>>(body)
                .map_err(cannot)?
                .data
        }
        PageShape::Bare => serde_json::from_slice(body).map_err(cannot)?,
        PageShape::ScimList => {
            #[derive(serde::Deserialize)]
            struct ListResponse {
                #[serde(rename = "Resources", default)]
                resources: Option<serde_json::Value>,
            }
            let list: ListResponse = serde_json::from_slice(body).map_err(cannot)?;
            serde_json::from_value(
                list.resources
                    .unwrap_or(serde_json::Value::Array(Vec::new())),
            )
            .map_err(cannot)?
        }
    };
    let origin = Origin {
        org_id,
        parent: None,
    };
    rows_to_batch::<R>(&schema_of::<R>(), &origin, data)
}

fn rows_to_batch<R: Resource>(
    schema: &SchemaRef,
    origin: &Origin,
    data: R::Data,
) -> Result<Option<RecordBatch>> {
    let mut rows = Vec::new();
    R::Row::push_rows(origin, data, &mut rows);
    rows_of::<R>(schema, rows)
}

/// Rows to one record batch through arrow-json; `None` when there are none.
fn rows_of<R: Resource>(schema: &SchemaRef, rows: Vec<R::Row>) -> Result<Option<RecordBatch>> {
    if rows.is_empty() {
        return Ok(None);
    }
    let mut decoder = ReaderBuilder::new(schema.clone())
        .with_batch_size(rows.len())
        .with_strict_mode(true)
        .build_decoder()?;
    decoder.serialize(&rows)?;
    decoder.flush().map_err(|e| {
        DataFusionError::Execution(format!(
            "table {}: a row does not fit the schema: {e}",
            R::NAME
        ))
    })
}

/// A table backed by one Admin API resource, in every organization of the
/// session.
pub struct ApiTable<R> {
    orgs: Orgs,
    schema: SchemaRef,
    resource: PhantomData<fn() -> R>,
}

impl<R: Resource> ApiTable<R> {
    pub fn new(orgs: Orgs) -> Self {
        Self {
            orgs,
            schema: schema_of::<R>(),
            resource: PhantomData,
        }
    }
}

impl<R> fmt::Debug for ApiTable<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiTable")
            .field("orgs", &self.orgs)
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
        Ok(filters
            .iter()
            .map(|f| match filters::equals_any(f) {
                // Which organizations to read: exact, whatever the table.
                Some((ORG_ID, _)) => TableProviderFilterPushDown::Exact,
                _ => R::pushdown(f),
            })
            .collect())
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let projection = projection.cloned();
        let projected = match &projection {
            Some(indices) => Arc::new(self.schema.project(indices)?),
            None => self.schema.clone(),
        };
        let properties = PlanProperties::new(
            EquivalenceProperties::new(projected),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        Ok(Arc::new(ApiScanExec::<R> {
            orgs: self.orgs.clone(),
            schema: self.schema.clone(),
            projection,
            filters: filters.to_vec(),
            limit,
            join_filters: Vec::new(),
            properties: Arc::new(properties),
            resource: PhantomData,
        }))
    }
}

/// The scan: one partition whose pages are fetched only as DataFusion polls.
/// It also takes the filters a hash join derives from its build side
/// (DataFusion's dynamic filters) and, when they name a column the API can
/// narrow by, asks only for those keys.
struct ApiScanExec<R> {
    orgs: Orgs,
    schema: SchemaRef,
    projection: Option<Vec<usize>>,
    filters: Vec<Expr>,
    limit: Option<usize>,
    join_filters: Vec<Arc<dyn PhysicalExpr>>,
    properties: Arc<PlanProperties>,
    resource: PhantomData<fn() -> R>,
}

impl<R> Clone for ApiScanExec<R> {
    fn clone(&self) -> Self {
        Self {
            orgs: self.orgs.clone(),
            schema: self.schema.clone(),
            projection: self.projection.clone(),
            filters: self.filters.clone(),
            limit: self.limit,
            join_filters: self.join_filters.clone(),
            properties: self.properties.clone(),
            resource: PhantomData,
        }
    }
}

impl<R: Resource> fmt::Debug for ApiScanExec<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiScanExec")
            .field("table", &R::NAME)
            .finish_non_exhaustive()
    }
}

impl<R: Resource> DisplayAs for ApiScanExec<R> {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "ApiScan: table={}", R::NAME)?;
        // Which endpoint the filters choose (join keys may narrow it further).
        let mut endpoints = self.fetch(&self.filters).endpoints();
        endpoints.dedup();
        if let Some(indices) = &self.projection {
            let names: Vec<&str> = indices
                .iter()
                .map(|&i| self.schema.field(i).name().as_str())
                .collect();
            write!(f, ", projection=[{}]", names.join(", "))?;
        }
        if !self.filters.is_empty() {
            let filters: Vec<String> = self.filters.iter().map(ToString::to_string).collect();
            write!(f, ", filters=[{}]", filters.join(", "))?;
        }
        if let Some(limit) = self.limit {
            write!(f, ", limit={limit}")?;
        }
        if !self.join_filters.is_empty() {
            write!(f, ", join_filters={}", self.join_filters.len())?;
        }
        if !endpoints.is_empty() {
            write!(f, ", endpoint={}", endpoints.join(" + "))?;
        }
        let orgs = self.clients().count();
        if self.orgs.len() > 1 {
            write!(f, ", orgs={orgs} of {}", self.orgs.len())?;
        }
        Ok(())
    }
}

impl<R: Resource> ExecutionPlan for ApiScanExec<R> {
    fn name(&self) -> &str {
        "ApiScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        // A hash join computes its dynamic filter only if a node holds it.
        for expr in &self.join_filters {
            if f(expr)? == TreeNodeRecursion::Stop {
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn handle_child_pushdown_result(
        &self,
        phase: FilterPushdownPhase,
        child_pushdown_result: ChildPushdownResult,
        _config: &ConfigOptions,
    ) -> Result<FilterPushdownPropagation<Arc<dyn ExecutionPlan>>> {
        let offered: Vec<Arc<dyn PhysicalExpr>> = child_pushdown_result
            .parent_filters
            .into_iter()
            .map(|f| f.filter)
            .collect();
        // We only narrow API calls by them; DataFusion still applies every one.
        let answers = vec![PushedDown::No; offered.len()];
        if phase != FilterPushdownPhase::Post || offered.is_empty() {
            return Ok(FilterPushdownPropagation::with_parent_pushdown_result(
                answers,
            ));
        }
        let mut node = self.clone();
        node.join_filters.extend(offered);
        Ok(
            FilterPushdownPropagation::with_parent_pushdown_result(answers)
                .with_updated_node(Arc::new(node)),
        )
    }

    fn execute(
        &self,
        _partition: usize,
        _context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let scan = self.clone();
        let projected = self.properties.eq_properties.schema().clone();
        // Deciding the calls waits for the first poll: by then a hash join has
        // built its table and its dynamic filter holds the keys it saw.
        let batches = stream::once(async move { scan.batches() }).flatten();
        let projection = self.projection.clone();
        let batches = batches.map(move |batch| match &projection {
            Some(indices) => Ok(batch?.project(indices)?),
            None => batch,
        });
        let batches = match self.limit {
            Some(limit) => limited(batches.boxed(), limit),
            None => batches.boxed(),
        };
        Ok(Box::pin(RecordBatchStreamAdapter::new(projected, batches)))
    }
}

impl<R: Resource> ApiScanExec<R> {
    /// The scan's filters plus `col IN (keys)` for each join key column the
    /// resource can push to the API, of organization `org_id`'s keys: a join
    /// on org_id pairs each key with its organization, and another's keys
    /// would be calls for people this one does not have. `None` when no key
    /// of this organization passes.
    fn effective_filters(&self, org_id: &str) -> Option<Vec<Expr>> {
        let mut filters = self.filters.clone();
        for expr in &self.join_filters {
            for (column, values) in join_key_values_of(expr, ORG_ID, org_id)? {
                let list = values.into_iter().map(datafusion::prelude::lit).collect();
                let filter = datafusion::prelude::col(column).in_list(list, false);
                if R::pushdown(&filter) != TableProviderFilterPushDown::Unsupported {
                    filters.push(filter);
                }
            }
        }
        Some(filters)
    }

    fn fetch(&self, filters: &[Expr]) -> Fetch {
        let columns = match &self.projection {
            Some(indices) => indices
                .iter()
                .map(|&i| self.schema.field(i).name().as_str())
                .collect(),
            None => self
                .schema
                .fields()
                .iter()
                .map(|f| f.name().as_str())
                .collect(),
        };
        R::fetch(&Scan {
            columns,
            filters,
            limit: self.limit,
            declared: R::FILTERS,
        })
    }

    /// The organizations the scan reads: all, or those its `org_id`
    /// filters allow, and those a join has seen (its keys hold org_id when
    /// it joins on it).
    fn clients(&self) -> impl Iterator<Item = &Client> {
        let mut allowed = filters::allowed_values(&self.filters, ORG_ID);
        for expr in &self.join_filters {
            for (column, values) in join_key_values(expr) {
                if column == ORG_ID {
                    allowed = Some(match allowed {
                        None => values,
                        Some(before) => before.into_iter().filter(|v| values.contains(v)).collect(),
                    });
                }
            }
        }
        self.orgs.clients().filter(move |c| {
            allowed
                .as_ref()
                .is_none_or(|ids| ids.iter().any(|id| id == c.org_id()))
        })
    }

    /// Every organization's batches, the organizations read at the same
    /// time (each within its own budgets).
    fn batches(self) -> BoxStream<'static, Result<RecordBatch>> {
        // Join keys narrow only a fan-out over every parent, where each parent
        // costs a call; a listing returns everything in a few pages, which
        // beats splitting a long key list into calls of ten.
        let streams: Vec<_> = self
            .clients()
            .filter_map(|client| {
                let fetch = match self.fetch(&self.filters) {
                    Fetch::PerParent(FanOut {
                        parents: Parents::Listing { .. },
                        ..
                    }) if !self.join_filters.is_empty() => {
                        // None of the join's keys is this organization's:
                        // none of its rows would join.
                        self.fetch(&self.effective_filters(client.org_id())?)
                    }
                    fetch => fetch,
                };
                Some(batches_of::<R>(client.clone(), self.schema.clone(), fetch))
            })
            .collect();
        stream::select_all(streams).boxed()
    }
}

/// The batches of a fetch.
fn batches_of<R: Resource>(
    client: Client,
    schema: SchemaRef,
    fetch: Fetch,
) -> BoxStream<'static, Result<RecordBatch>> {
    match fetch {
        Fetch::Fallback { first, then, note } => {
            let first = batches_of::<R>(client.clone(), schema.clone(), *first);
            stream::once(async move {
                let mut first = first.peekable();
                let refused = match std::pin::Pin::new(&mut first).peek().await {
                    Some(Err(DataFusionError::External(e))) => {
                        e.downcast_ref::<ApiError>().is_some_and(|e| {
                            matches!(
                                e,
                                ApiError::Status {
                                    status: 401 | 403 | 404,
                                    ..
                                }
                            )
                        })
                    }
                    _ => false,
                };
                if refused {
                    client.notice(note);
                    tracing::warn!(target: "orgsql", "{note}");
                    batches_of::<R>(client, schema, *then)
                } else {
                    first.boxed()
                }
            })
            .flatten()
            .boxed()
        }
        Fetch::Listings(requests) => {
            let org_id = client.org_id().to_string();
            // Each row once: calls that split one filter list can return
            // the same item twice (a user in groups of two chunks), and
            // an item back twice within one listing means a listing that
            // would never end.
            let mut seen = match (!R::KEY.is_empty())
                .then(|| SeenKeys::new(&schema, R::KEY))
                .transpose()
            {
                Ok(seen) => seen,
                Err(e) => return stream::once(async move { Err(e) }).boxed(),
            };
            stream::iter(requests.into_iter().enumerate())
                .flat_map(move |(listing, request)| {
                    let endpoint = request.endpoint();
                    let (schema, org_id) = (schema.clone(), org_id.clone());
                    let convert = move |data: R::Data| {
                        let origin = Origin {
                            org_id: &org_id,
                            parent: None,
                        };
                        rows_to_batch::<R>(&schema, &origin, data).map_err(|e| e.to_string())
                    };
                    client
                        .pages_as(tagged::<R>(request), convert, Some(kept_batches::<R>()))
                        .map(move |page| (listing, endpoint.clone(), page))
                })
                .filter_map(move |(listing, endpoint, page)| {
                    let batch = page
                        .map_err(external)
                        .and_then(|batch| match (batch, seen.as_mut()) {
                            (Some(batch), Some(seen)) => {
                                seen.first_sightings(listing, &endpoint, &batch)
                            }
                            (batch, _) => Ok(batch),
                        })
                        .transpose();
                    futures::future::ready(batch)
                })
                .boxed()
        }
        Fetch::PerParent(fan_out) => fan_out_batches::<R>(client, schema, fan_out),
        Fetch::Batched {
            parents,
            size,
            request,
        } => bulk_batches::<R>(client, schema, parents, size, request),
    }
}

/// A listing's pages decoded into record batches are kept with the cached
/// pages, per table: scanning the same pages again (a check reads the audit
/// log a dozen times) decodes nothing.
fn kept_batches<R: Resource>() -> Keep<Option<RecordBatch>> {
    Keep {
        table: R::NAME,
        copy: Clone::clone,
        size: |batch| batch.as_ref().map_or(0, RecordBatch::get_array_memory_size),
    }
}

/// The keys of the rows a scan has yielded, and the listing each came from.
/// Keys are held as 128-bit hashes: a million rows cost some 30 MB, and two
/// keys meet by chance about once in 10^26 scans of that size.
pub struct SeenKeys {
    columns: Vec<usize>,
    converter: RowConverter,
    hashers: (RandomState, RandomState),
    keys: HashMap<u128, usize>,
}

impl SeenKeys {
    pub fn new(schema: &SchemaRef, key: &[&str]) -> Result<Self> {
        let columns = key
            .iter()
            .map(|name| schema.index_of(name))
            .collect::<std::result::Result<Vec<usize>, _>>()?;
        let fields = columns
            .iter()
            .map(|&i| SortField::new(schema.field(i).data_type().clone()))
            .collect();
        Ok(Self {
            columns,
            converter: RowConverter::new(fields)?,
            hashers: (RandomState::new(), RandomState::new()),
            keys: HashMap::new(),
        })
    }

    /// The rows of `batch` (from listing number `listing`) whose key no other
    /// listing has yielded; `None` if none is new. A key this very listing
    /// has yielded before is an error. Rows whose key holds a NULL are kept.
    pub fn first_sightings(
        &mut self,
        listing: usize,
        endpoint: &str,
        batch: &RecordBatch,
    ) -> Result<Option<RecordBatch>> {
        let arrays: Vec<_> = self
            .columns
            .iter()
            .map(|&i| batch.column(i).clone())
            .collect();
        let rows = self.converter.convert_columns(&arrays)?;
        let mut fresh = Vec::with_capacity(rows.num_rows());
        for (index, row) in rows.iter().enumerate() {
            // A key with a NULL in it names nothing: such a row is kept
            // whatever else came (two products an account uses may both
            // lack a key and a URL).
            if arrays.iter().any(|a| a.is_null(index)) {
                fresh.push(Some(true));
                continue;
            }
            let bytes = row.as_ref();
            let hash = (u128::from(self.hashers.0.hash_one(bytes)) << 64)
                | u128::from(self.hashers.1.hash_one(bytes));
            match self.keys.insert(hash, listing) {
                None => fresh.push(Some(true)),
                Some(earlier) if earlier != listing => fresh.push(Some(false)),
                Some(_) => {
                    let item = self
                        .columns
                        .iter()
                        .map(|&i| {
                            datafusion::arrow::util::display::array_value_to_string(
                                batch.column(i),
                                index,
                            )
                            .unwrap_or_default()
                        })
                        .collect::<Vec<_>>()
                        .join("/");
                    return Err(external(ApiError::RepeatedItem {
                        endpoint: endpoint.to_string(),
                        item,
                    }));
                }
            }
        }
        let fresh = BooleanArray::from(fresh);
        if fresh.true_count() == 0 {
            return Ok(None);
        }
        Ok(Some(filter_record_batch(batch, &fresh)?))
    }
}

fn external(e: ApiError) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

fn tagged<R: Resource>(mut request: PageRequest) -> PageRequest {
    request.table = R::NAME;
    request
}

/// Stop after `limit` rows, cutting the last batch.
fn limited(
    batches: BoxStream<'static, Result<RecordBatch>>,
    limit: usize,
) -> BoxStream<'static, Result<RecordBatch>> {
    batches
        .scan(limit, |remaining, batch| {
            let item = match batch {
                _ if *remaining == 0 => None,
                Ok(batch) => {
                    let take = batch.num_rows().min(*remaining);
                    *remaining -= take;
                    Some(Ok(batch.slice(0, take)))
                }
                Err(e) => Some(Err(e)),
            };
            futures::future::ready(item)
        })
        .boxed()
}

/// One listing per parent, `client.concurrency()` of them in flight, rows in
/// the order the answers come. A parent that is gone (404) has no rows.
fn fan_out_batches<R: Resource>(
    client: Client,
    schema: SchemaRef,
    fan_out: FanOut,
) -> BoxStream<'static, Result<RecordBatch>> {
    let FanOut {
        parents,
        children,
        param,
    } = fan_out;
    let ids = parent_ids::<R>(&client, parents, &children);
    let concurrency = client.concurrency();
    ids.map(move |id| {
        let client = client.clone();
        let requests: Vec<PageRequest> = children
            .iter()
            .map(|child| {
                tagged::<R>(
                    child
                        .clone()
                        .path_param(param, id.as_deref().unwrap_or_default()),
                )
            })
            .collect();
        async move {
            let id = id?;
            let origin = Origin {
                org_id: client.org_id(),
                parent: Some(&id),
            };
            let several = requests.len() > 1;
            let request_is_not_scim = requests
                .iter()
                .all(|r| r.cursor_in != crate::api::CursorIn::StartIndex);
            let mut rows = Vec::new();
            // One after another, in this parent's slot: --concurrency
            // counts parents' calls, and a split must not outrun it.
            for request in requests {
                let mut pages = client.pages::<R::Data>(request);
                while let Some(page) = pages.next().await {
                    match page {
                        Ok(data) => R::Row::push_rows(&origin, data, &mut rows),
                        // A SCIM directory is named by the configuration:
                        // one the API does not know is a mistake to say.
                        Err(ApiError::Status { status: 404, .. }) if request_is_not_scim => {
                            return Ok(Vec::new());
                        }
                        Err(e) => return Err(external(e)),
                    }
                }
            }
            Ok(if several { once_each::<R>(rows) } else { rows })
        }
    })
    // Unordered: a slow answer must not hold a slot that another call could use.
    .buffer_unordered(concurrency)
    // The parents that have answered by now make one batch: a batch per
    // parent would be a few rows each.
    .ready_chunks(concurrency.max(16))
    .filter_map(move |answers| {
        let batch = answers
            .into_iter()
            .collect::<Result<Vec<Vec<R::Row>>>>()
            .and_then(|rows| rows_of::<R>(&schema, rows.into_iter().flatten().collect()));
        futures::future::ready(batch.transpose())
    })
    .boxed()
}

/// The ids of a fan-out's or a bulk fetch's parents, as they come.
fn parent_ids<R: Resource>(
    client: &Client,
    parents: Parents,
    children: &[PageRequest],
) -> BoxStream<'static, Result<String>> {
    let scim = children
        .iter()
        .any(|c| c.cursor_in == crate::api::CursorIn::StartIndex);
    match parents {
        // A SCIM table holds the directories with a token: a directory named
        // without one has no rows here (as an unfiltered scan has none of
        // it), and the user hears which, and how to add its token.
        Parents::Ids(ids) if scim && !client.scim_directories().is_empty() => {
            let configured = client.scim_directories();
            let (read, untokened): (Vec<String>, Vec<String>) =
                ids.into_iter().partition(|id| configured.contains(id));
            for directory in untokened {
                client.notice(format!(
                    "{}: no SCIM token for directory {directory:?}, so none of its rows are \
                     read (tokens are configured for: {}). Add it to the connection in the \
                     config file: [connections.NAME.scim.\"<directory id>\"] with token_env, \
                     token_file or token_command",
                    R::NAME,
                    configured.join(", ")
                ));
            }
            stream::iter(read.into_iter().map(Ok)).boxed()
        }
        Parents::Ids(ids) => stream::iter(ids.into_iter().map(Ok)).boxed(),
        Parents::ScimDirectories => {
            let directories = client.scim_directories();
            if directories.is_empty() {
                let endpoint = children
                    .first()
                    .map(PageRequest::endpoint)
                    .unwrap_or_default();
                return stream::once(async move {
                    Err(external(ApiError::NoScimToken {
                        endpoint,
                        directory: "of this organization".to_string(),
                        configured: Vec::new(),
                    }))
                })
                .boxed();
            }
            stream::iter(directories.into_iter().map(Ok)).boxed()
        }
        Parents::Listing { requests, key } => {
            let client = client.clone();
            let pages = stream::iter(requests)
                .flat_map(move |request| {
                    client.pages::<Vec<serde_json::Value>>(tagged::<R>(request))
                })
                .boxed();
            // The next page of parents is fetched while this one's calls run,
            // so the calls never wait for it.
            read_ahead(pages, 2)
                .flat_map(move |page| {
                    let ids: Vec<Result<String>> = match page {
                        Ok(items) => items
                            .iter()
                            .filter_map(|item| item.get(key)?.as_str().map(|id| Ok(id.to_string())))
                            .collect(),
                        Err(e) => vec![Err(external(e))],
                    };
                    stream::iter(ids)
                })
                .boxed()
        }
    }
}

/// A bulk fetch: the parents in batches of `size`, one call each (read to
/// its end), one batch after another.
fn bulk_batches<R: Resource>(
    client: Client,
    schema: SchemaRef,
    parents: Parents,
    size: usize,
    request: fn(&[String]) -> PageRequest,
) -> BoxStream<'static, Result<RecordBatch>> {
    parent_ids::<R>(&client, parents, &[])
        .chunks(size.max(1))
        .then(move |ids| {
            let client = client.clone();
            let schema = schema.clone();
            async move {
                let ids = ids.into_iter().collect::<Result<Vec<String>>>()?;
                let origin = Origin {
                    org_id: client.org_id(),
                    parent: None,
                };
                let mut rows = Vec::new();
                let mut pages = client.pages::<R::Data>(tagged::<R>(request(&ids)));
                while let Some(page) = pages.next().await {
                    R::Row::push_rows(&origin, page.map_err(external)?, &mut rows);
                }
                rows_of::<R>(&schema, rows)
            }
        })
        .filter_map(|batch| futures::future::ready(batch.transpose()))
        .boxed()
}

/// One parent's rows, each key once: the calls of a split filter list can
/// each return the same item (an API may filter which items it lists, not
/// what an item holds). A key with a NULL in it names nothing: kept.
fn once_each<R: Resource>(rows: Vec<R::Row>) -> Vec<R::Row> {
    if R::KEY.is_empty() {
        return rows;
    }
    let mut seen = HashSet::new();
    rows.into_iter()
        .filter(|row| {
            let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(row) else {
                return true;
            };
            let key: Vec<&serde_json::Value> = R::KEY
                .iter()
                .map(|column| fields.get(*column).unwrap_or(&serde_json::Value::Null))
                .collect();
            key.iter().any(|v| v.is_null())
                || serde_json::to_string(&key).is_ok_and(|key| seen.insert(key))
        })
        .collect()
}

/// Poll `source` in a task of its own, up to `ahead` items before they are
/// asked for. The task ends when the stream ends or its reader goes away.
fn read_ahead<T: Send + 'static>(
    mut source: BoxStream<'static, T>,
    ahead: usize,
) -> BoxStream<'static, T> {
    let (sender, receiver) = tokio::sync::mpsc::channel(ahead.max(1));
    tokio::spawn(async move {
        while let Some(item) = source.next().await {
            if sender.send(item).await.is_err() {
                break;
            }
        }
    });
    stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|item| (item, receiver))
    })
    .boxed()
}
