//! Pushdown never changes an answer. Generated predicates over every table's
//! columns, and joins whose keys narrow a fan-out, run twice: live, where
//! filters and join keys reach the emulator (split into calls, case-folded,
//! narrowed, cached), and on an export of the same organization read back
//! with `--snapshot`, where nothing reaches any API. The two must return the
//! same multiset of rows. Seeded, so a failure replays; it prints the SQL and
//! the rows that differ.
//!
//! `cargo test differential` runs seed 1 (1,000 predicates, 100 joins), and a
//! shorter run against an emulator that fails every few requests. More seeds,
//! each also under faults: `ORGSQL_DIFF_SEEDS=1-50 cargo test differential`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::datasource::MemTable;
use datafusion::logical_expr::TableProviderFilterPushDown;
use datafusion::prelude::{SessionContext, col, lit};
use std::time::Duration;

use orgsql::api::{Client, RetryPolicy};
use orgsql::emulator::{Emulator, Faults, OrgSpec};
use orgsql::tables::{Shape, catalog};
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::common::*;

const PREDICATES: usize = 1000;
const JOINS: usize = 100;

/// A column's type and the distinct values the organization holds in it.
struct ColumnValues {
    name: &'static str,
    data_type: DataType,
    /// Whether an equality on it reaches the API.
    pushable: bool,
    /// Distinct non-NULL values, as the tables print them.
    values: Vec<String>,
}

struct TableValues {
    name: &'static str,
    columns: Vec<ColumnValues>,
}

/// Every table's columns and values, read from the snapshot.
async fn table_values(offline: &SessionContext) -> Vec<TableValues> {
    let mut tables = Vec::new();
    for table in catalog() {
        // What the session itself read (its requests, its history's
        // sources: live or a snapshot, read when), not the organization.
        if table.name.starts_with("orgsql_") || table.name == "history_coverage" {
            continue;
        }
        let mut columns = Vec::new();
        for column in &table.columns {
            let sql = format!(
                "SELECT DISTINCT {c} FROM {t} WHERE {c} IS NOT NULL ORDER BY 1",
                c = column.name,
                t = table.name
            );
            let values = crate::common::column(offline, &sql).await;
            let probe = col(column.name).eq(lit("x"));
            let pushable = table.pushdown(&probe) != TableProviderFilterPushDown::Unsupported
                || matches!(
                    column.data_type,
                    DataType::Boolean | DataType::Timestamp(..)
                );
            columns.push(ColumnValues {
                name: column.name,
                data_type: column.data_type.clone(),
                pushable,
                values,
            });
        }
        tables.push(TableValues {
            name: table.name,
            columns,
        });
    }
    tables
}

fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// IN-list lengths: around every API maximum (10, 20, 100) and beyond.
const LIST_SIZES: [usize; 14] = [1, 2, 3, 4, 9, 10, 11, 19, 21, 99, 100, 101, 250, 400];

/// Random predicates over one table's columns, each column named `alias.col`.
struct Predicates<'a> {
    rng: &'a mut ChaCha8Rng,
    alias: &'a str,
}

impl Predicates<'_> {
    fn name(&self, column: &ColumnValues) -> String {
        if self.alias.is_empty() {
            column.name.to_string()
        } else {
            format!("{}.{}", self.alias, column.name)
        }
    }

    /// A predicate of up to `depth` levels of AND / OR / NOT.
    fn predicate(&mut self, table: &TableValues, depth: u32) -> String {
        let roll = self.rng.random_range(0..100);
        if depth == 0 || roll < 60 {
            return self.atom(table);
        }
        match roll {
            60..80 => format!(
                "({} AND {})",
                self.predicate(table, depth - 1),
                self.predicate(table, depth - 1)
            ),
            80..94 => format!(
                "({} OR {})",
                self.predicate(table, depth - 1),
                self.predicate(table, depth - 1)
            ),
            _ => format!("NOT ({})", self.predicate(table, depth - 1)),
        }
    }

    /// One comparison on one column; the columns the API filters on are
    /// chosen half the time, so that most predicates reach it.
    fn atom(&mut self, table: &TableValues) -> String {
        let pushable: Vec<&ColumnValues> = table.columns.iter().filter(|c| c.pushable).collect();
        let column = if !pushable.is_empty() && self.rng.random_bool(0.5) {
            pushable[self.rng.random_range(0..pushable.len())]
        } else {
            &table.columns[self.rng.random_range(0..table.columns.len())]
        };
        let name = self.name(column);
        if self.rng.random_range(0..100) < 5 {
            let not = if self.rng.random_bool(0.5) {
                " NOT"
            } else {
                ""
            };
            return format!("{name} IS{not} NULL");
        }
        match &column.data_type {
            DataType::Boolean => self.boolean(&name),
            DataType::Int64 | DataType::Float64 => self.number(&name, column),
            DataType::Timestamp(TimeUnit::Microsecond, _) => self.time(&name, column),
            DataType::Date32 => self.date(&name, column),
            _ => self.text(&name, column),
        }
    }

    /// A value of the column, sometimes in another case, sometimes absent,
    /// sometimes empty.
    fn text_value(&mut self, column: &ColumnValues) -> String {
        let roll = self.rng.random_range(0..100);
        let real = column.values.choose(self.rng).cloned();
        match (roll, real) {
            (0..70, Some(v)) => v,
            (70..80, Some(v)) => v.to_uppercase(),
            (80..85, Some(v)) => format!("{v} "),
            (85..92, _) => String::new(),
            _ => format!("nosuch-{}", self.rng.random_range(0..1000)),
        }
    }

    fn text_list(&mut self, column: &ColumnValues) -> Vec<String> {
        let size = *LIST_SIZES.choose(self.rng).unwrap_or(&1);
        let mut values: Vec<String> = column.values.clone();
        values.shuffle(self.rng);
        values.truncate(size);
        while values.len() < size {
            let value = self.text_value(column);
            values.push(value);
        }
        // A repeated value and one in another case: one call each at most.
        if size > 2 && self.rng.random_bool(0.3) {
            values.push(values[0].clone());
            values.push(values[1].to_uppercase());
        }
        values.iter().map(|v| quote(v)).collect()
    }

    fn text(&mut self, name: &str, column: &ColumnValues) -> String {
        let value = quote(&self.text_value(column));
        match self.rng.random_range(0..14) {
            0 => format!("{name} = {value}"),
            1 => format!("{value} = {name}"),
            2 => format!("{name} <> {value}"),
            3..=5 => format!("{name} IN ({})", self.text_list(column).join(", ")),
            6 => format!("{name} NOT IN ({})", self.text_list(column).join(", ")),
            7 => format!("{name} IN ({}, NULL)", self.text_list(column).join(", ")),
            8 => {
                let prefix: String = column
                    .values
                    .choose(self.rng)
                    .map(|v| v.chars().take(3).collect())
                    .unwrap_or_default();
                format!("{name} LIKE {}", quote(&format!("{prefix}%")))
            }
            9 => format!("coalesce({name}, '') = {value}"),
            10 => format!("CAST({name} AS VARCHAR) = {value}"),
            11 => {
                let other = quote(&self.text_value(column));
                format!("({name} = {value} OR {name} = {other})")
            }
            12 => format!("lower({name}) = lower({value})"),
            _ => {
                let other = quote(&self.text_value(column));
                format!("{name} BETWEEN {value} AND {other}")
            }
        }
    }

    fn boolean(&mut self, name: &str) -> String {
        match self.rng.random_range(0..8) {
            0 => name.to_string(),
            1 => format!("NOT {name}"),
            2 => format!("{name} = true"),
            3 => format!("{name} = false"),
            4 => format!("false = {name}"),
            5 => format!("{name} IS NOT TRUE"),
            6 => format!("{name} IS DISTINCT FROM false"),
            _ => format!("CAST({name} AS VARCHAR) = 'true'"),
        }
    }

    fn number(&mut self, name: &str, column: &ColumnValues) -> String {
        let value = column
            .values
            .choose(self.rng)
            .cloned()
            .unwrap_or_else(|| "0".to_string());
        match self.rng.random_range(0..5) {
            0 => format!("{name} = {value}"),
            1 => format!("{name} > {value}"),
            2 => format!("{name} <= {value}"),
            3 => format!("{name} IN ({value}, -1)"),
            _ => format!("{name} BETWEEN 0 AND {value}"),
        }
    }

    fn time(&mut self, name: &str, column: &ColumnValues) -> String {
        let mut pick = || {
            column
                .values
                .choose(self.rng)
                .cloned()
                .unwrap_or_else(|| "2026-11-20T12:00:00Z".to_string())
        };
        let (a, b) = (pick(), pick());
        let (low, high) = if a <= b { (a, b) } else { (b, a) };
        let day = &low[..10.min(low.len())];
        match self.rng.random_range(0..11) {
            0 => format!("{name} >= TIMESTAMP '{low}'"),
            1 => format!("{name} > TIMESTAMP '{low}'"),
            2 => format!("{name} < TIMESTAMP '{high}'"),
            3 => format!("TIMESTAMP '{high}' >= {name}"),
            4 => format!("{name} = TIMESTAMP '{low}'"),
            5 => format!("{name} BETWEEN TIMESTAMP '{low}' AND TIMESTAMP '{high}'"),
            6 => format!("CAST({name} AS DATE) = DATE '{day}'"),
            7 => format!("{name} > TIMESTAMP '{high}' - INTERVAL '3 days'"),
            8 => format!("date_trunc('day', {name}) = TIMESTAMP '{day}T00:00:00Z'"),
            9 => format!("({name} >= TIMESTAMP '{low}' AND {name} <= TIMESTAMP '{high}')"),
            _ => format!("{name} >= '{day}'"),
        }
    }

    fn date(&mut self, name: &str, column: &ColumnValues) -> String {
        let value = column
            .values
            .choose(self.rng)
            .cloned()
            .unwrap_or_else(|| "2026-11-20".to_string());
        match self.rng.random_range(0..4) {
            0 => format!("{name} = DATE '{value}'"),
            1 => format!("{name} >= DATE '{value}'"),
            2 => format!("{name} < DATE '{value}'"),
            _ => format!("{name} BETWEEN DATE '{value}' - INTERVAL '30 days' AND DATE '{value}'"),
        }
    }
}

/// Parent table, alias, fan-out table, alias, join columns: joins whose
/// parent side narrows the other side's calls by its keys.
const JOIN_SHAPES: [(&str, &str, &str, &str, &str); 9] = [
    ("users", "u", "user_role_assignments", "r", "account_id"),
    ("users", "u", "user_last_active", "l", "account_id"),
    ("users", "u", "group_members", "m", "account_id"),
    ("users", "u", "user_platform_roles", "p", "account_id"),
    ("users", "u", "user_product_access", "a", "account_id"),
    ("groups", "g", "group_role_assignments", "r", "group_id"),
    ("groups", "g", "group_members", "m", "group_id"),
    ("policies", "p", "policy_resources", "r", "policy_id"),
    (
        "managed_accounts",
        "ma",
        "managed_account_product_access",
        "pa",
        "account_id",
    ),
];

/// The SQL to compare: `PREDICATES` filters spread over the tables, then
/// `JOINS` joins with a filter on the parent side (and now and then on the
/// other), and an unfiltered read of each table now and then, which must
/// not be served the narrowed pages of an earlier query.
fn statements(tables: &[TableValues], seed: u64, predicates: usize, joins: usize) -> Vec<String> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let by_name: BTreeMap<&str, &TableValues> = tables.iter().map(|t| (t.name, t)).collect();
    let mut sql = Vec::new();
    for i in 0..predicates {
        let table = &tables[i % tables.len()];
        let predicate = Predicates {
            rng: &mut rng,
            alias: "",
        }
        .predicate(table, 2);
        sql.push(format!("SELECT * FROM {} WHERE {predicate}", table.name));
        if i % 40 == 39 {
            let table = tables.choose(&mut rng).map_or("users", |t| t.name);
            sql.push(format!("SELECT * FROM {table}"));
        }
    }
    for i in 0..joins {
        let (parent, p, child, c, key) = JOIN_SHAPES[i % JOIN_SHAPES.len()];
        let (Some(parent_values), Some(child_values)) = (by_name.get(parent), by_name.get(child))
        else {
            continue;
        };
        let mut filter = Predicates {
            rng: &mut rng,
            alias: p,
        }
        .predicate(parent_values, 1);
        if rng.random_bool(0.2) {
            let more = Predicates {
                rng: &mut rng,
                alias: c,
            }
            .predicate(child_values, 0);
            filter = format!("{filter} AND {more}");
        }
        sql.push(format!(
            "SELECT {p}.{key}, {c}.* FROM {parent} {p} JOIN {child} {c} \
             ON {p}.org_id = {c}.org_id AND {p}.{key} = {c}.{key} WHERE {filter}"
        ));
    }
    sql
}

/// Rows as sorted text, or the error.
async fn answer(ctx: &SessionContext, sql: &str) -> Result<Vec<Vec<String>>, String> {
    match query(ctx, sql).await {
        Ok(batches) => {
            let mut rows = rows(&batches);
            rows.sort();
            Ok(rows)
        }
        Err(e) => Err(e.to_string()),
    }
}

/// Rows in `a` and not in `b`, as multisets; at most five.
fn missing_from(a: &[Vec<String>], b: &[Vec<String>]) -> Vec<Vec<String>> {
    let mut counts: BTreeMap<&Vec<String>, i64> = BTreeMap::new();
    for row in b {
        *counts.entry(row).or_default() += 1;
    }
    let mut out = Vec::new();
    for row in a {
        let count = counts.entry(row).or_default();
        *count -= 1;
        if *count < 0 && out.len() < 5 {
            out.push(row.clone());
        }
    }
    out
}

/// Runs every statement on both sessions; returns a report of those that
/// differ (empty when none does) and how many both refused.
async fn compare(
    live: &SessionContext,
    offline: &SessionContext,
    sql: &[String],
) -> (String, usize) {
    let mut report = String::new();
    let mut refused = 0;
    let mut differing = 0;
    for statement in sql {
        let (got, expected) = (
            answer(live, statement).await,
            answer(offline, statement).await,
        );
        match (&got, &expected) {
            (Ok(got), Ok(expected)) if got == expected => {}
            (Err(_), Err(_)) => refused += 1,
            _ => {
                differing += 1;
                if differing > 10 {
                    continue;
                }
                let _ = writeln!(report, "\n{statement}");
                match (got, expected) {
                    (Ok(got), Ok(expected)) => {
                        let _ = writeln!(
                            report,
                            "  live {} rows, snapshot {} rows",
                            got.len(),
                            expected.len()
                        );
                        for row in missing_from(&got, &expected) {
                            let _ = writeln!(report, "  only live:     {row:?}");
                        }
                        for row in missing_from(&expected, &got) {
                            let _ = writeln!(report, "  only snapshot: {row:?}");
                        }
                    }
                    (got, expected) => {
                        let said = |answer: &Result<Vec<Vec<String>>, String>| match answer {
                            Ok(rows) => format!("{} rows", rows.len()),
                            Err(e) => e.clone(),
                        };
                        let _ = writeln!(
                            report,
                            "  live: {}\n  snapshot: {}",
                            said(&got),
                            said(&expected)
                        );
                    }
                }
            }
        }
    }
    if differing > 0 {
        report.insert_str(
            0,
            &format!("{differing} of {} statements differ:", sql.len()),
        );
    }
    (report, refused)
}

struct Setup {
    live: Emulator,
    faulty: Emulator,
    /// The export's tables, held in memory: read once, then every
    /// statement costs the same as on any DataFusion table.
    offline: SessionContext,
}

/// Two emulators of one organization, one failing every few requests, and
/// an export of it read back.
async fn setup(seed: u64) -> Setup {
    let org = OrgSpec {
        seed,
        users: 150,
        events: 1500,
        now: fixed_now(),
    };
    let live = emulator(org.clone(), Faults::default(), None).await;
    let faults = Faults {
        fail_every: Some(5),
        ..Faults::default()
    };
    let faulty = emulator(org, faults, None).await;
    let dir = tempfile::tempdir().expect("temp dir");
    export_to(live.client_config(), dir.path(), None).await;
    let snapshot = orgsql::snapshot::context(&dir.path().into())
        .await
        .expect("snapshot");
    let offline = SessionContext::new();
    for table in catalog() {
        // What the session itself read (its requests, its history's
        // sources: live or a snapshot, read when), not the organization.
        if table.name.starts_with("orgsql_") || table.name == "history_coverage" {
            continue;
        }
        let frame = snapshot.table(table.name).await.expect(table.name);
        let schema = frame.schema().inner().clone();
        let batches = frame.collect().await.expect(table.name);
        let memory = MemTable::try_new(schema, vec![batches]).expect("in memory");
        offline
            .register_table(table.name, Arc::new(memory))
            .expect("register");
    }
    Setup {
        live,
        faulty,
        offline,
    }
}

/// One seed: every statement live with the page cache on, and a sample of
/// them against the failing emulator with the cache off (every page asked
/// for, many retried).
async fn check_seed(seed: u64, predicates: usize, joins: usize) {
    let setup = setup(seed).await;
    let tables = table_values(&setup.offline).await;
    let sql = statements(&tables, seed, predicates, joins);
    let live = session(setup.live.client_config());
    let (report, refused) = compare(&live, &setup.offline, &sql).await;
    assert!(report.is_empty(), "seed {seed}: {report}");
    assert!(
        refused * 20 < sql.len(),
        "seed {seed}: {refused} of {} statements were refused on both sides: \
         the generator writes bad SQL",
        sql.len()
    );

    let mut config = setup.faulty.client_config();
    config.cache_ttl = None;
    // Eight calls in flight share the emulator's every-fifth-fails count, so
    // one call can draw several failures in a row: allow it many retries.
    config.retry = RetryPolicy {
        max_attempts: 50,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(2),
    };
    let client = Client::new(config).expect("client");
    let faulty = orgsql::context(&client).expect("session");
    let sample: Vec<String> = sql.iter().step_by(8).cloned().collect();
    let (report, _) = compare(&faulty, &setup.offline, &sample).await;
    assert!(report.is_empty(), "seed {seed}, with faults: {report}");
    assert!(
        setup.faulty.requests("") > 100,
        "the failing emulator was used"
    );
}

/// `ORGSQL_DIFF_SEEDS`: `N` or `A-B`; seed 1 by default.
fn seeds() -> std::ops::RangeInclusive<u64> {
    let text = std::env::var("ORGSQL_DIFF_SEEDS").unwrap_or_default();
    let parse = |s: &str| s.trim().parse::<u64>().ok();
    match text.split_once('-') {
        Some((a, b)) => parse(a).unwrap_or(1)..=parse(b).unwrap_or(1),
        None => {
            let n = parse(&text).unwrap_or(1);
            n..=n
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pushdown_never_changes_an_answer() {
    for seed in seeds() {
        check_seed(seed, PREDICATES, JOINS).await;
    }
}

/// The case that was wrong: a `group_id` list longer than one call takes
/// counts each membership once, at the cost of one call per ten groups.
#[tokio::test(flavor = "multi_thread")]
async fn a_split_group_list_counts_each_membership_once() {
    let org = OrgSpec::default();
    let emu = emulator(org, Faults::default(), None).await;
    let org = emu.org();
    let groups = &org.groups;
    let memberships = |ids: &[&str]| -> usize {
        org.users
            .iter()
            .map(|u| {
                u.groups
                    .iter()
                    .filter(|&&g| ids.contains(&groups[g].id.as_str()))
                    .count()
            })
            .sum()
    };
    let ctx = session(emu.client_config());
    for take in [12, groups.len()] {
        let ids: Vec<&str> = groups.iter().take(take).map(|g| g.id.as_str()).collect();
        let list: Vec<String> = ids.iter().map(|id| quote(id)).collect();
        emu.reset_requests();
        let sql = format!(
            "SELECT count(*), count(DISTINCT (group_id, account_id)) FROM group_members \
             WHERE group_id IN ({})",
            list.join(", ")
        );
        let expected = memberships(&ids).to_string();
        assert_eq!(
            sql_rows(&ctx, &sql).await,
            vec![vec![expected.clone(), expected]]
        );
        // The ids go out sorted, ten a call, each call paging its members
        // 100 at a time: what the count was before duplicates were dropped.
        let mut sorted = ids.clone();
        sorted.sort();
        let pages: usize = sorted
            .chunks(10)
            .map(|chunk| {
                let members = org
                    .users
                    .iter()
                    .filter(|u| {
                        u.groups
                            .iter()
                            .any(|&g| chunk.contains(&groups[g].id.as_str()))
                    })
                    .count();
                members.div_ceil(100).max(1)
            })
            .sum();
        assert_eq!(emu.requests("/users/search") as usize, pages);
    }
}

/// The page cache never hands a narrowed answer to a wider question: after
/// narrowed reads, full reads answer as a session without a cache does.
#[tokio::test(flavor = "multi_thread")]
async fn a_full_read_after_narrowed_ones_is_whole() {
    let emu = emulator(spec(60, 400), Faults::default(), None).await;
    let org = emu.org();
    let cached = session(emu.client_config());
    let first = &org.users[0].account_id;
    let narrowed = [
        format!("SELECT * FROM users WHERE account_id = {}", quote(first)),
        format!(
            "SELECT * FROM user_role_assignments WHERE account_id = {}",
            quote(first)
        ),
        "SELECT r.* FROM users u JOIN user_role_assignments r USING (org_id, account_id) \
         WHERE u.status = 'suspended'"
            .to_string(),
        "SELECT * FROM events WHERE action = 'user_created'".to_string(),
        format!(
            "SELECT * FROM group_members WHERE group_id = {}",
            quote(&org.groups[0].id)
        ),
        "SELECT * FROM users LIMIT 3".to_string(),
    ];
    for sql in &narrowed {
        assert!(!sql_rows(&cached, sql).await.is_empty(), "{sql}");
    }
    let mut config = emu.client_config();
    config.cache_ttl = None;
    let uncached = session(config);
    for table in ["users", "user_role_assignments", "events", "group_members"] {
        let sql = format!("SELECT * FROM {table}");
        let expected = answer(&uncached, &sql).await;
        assert!(expected.as_ref().is_ok_and(|rows| rows.len() > 3), "{sql}");
        assert_eq!(answer(&cached, &sql).await, expected, "{sql}");
    }
}

/// Every filter a table declares is sent: a query using it puts its
/// parameter in front of the API (or, for a fan-out's parent id, calls only
/// that parent), and answers as the export does, where nothing is pushed.
#[tokio::test(flavor = "multi_thread")]
async fn every_declared_filter_reaches_the_api_and_changes_no_answer() {
    let setup = setup(3).await;
    let mut checked = 0;
    for table in catalog() {
        for filter in table.filters {
            let value = crate::common::column(
                &setup.offline,
                &format!(
                    "SELECT CAST({c} AS VARCHAR) FROM {t} WHERE {c} IS NOT NULL ORDER BY 1 LIMIT 1",
                    c = filter.column,
                    t = table.name
                ),
            )
            .await;
            let value = value
                .first()
                .unwrap_or_else(|| panic!("{}.{} holds values", table.name, filter.column));
            let predicate = match filter.shape {
                Shape::Flag => format!("{} = {value}", filter.column),
                Shape::Time { .. } => format!("{} >= TIMESTAMP '{value}'", filter.column),
                _ => format!("{} = {}", filter.column, quote(value)),
            };
            let sql = format!("SELECT * FROM {} WHERE {predicate}", table.name);
            setup.live.reset_requests();
            let mut config = setup.live.client_config();
            config.cache_ttl = None;
            let client = Client::new(config).expect("client");
            let live = orgsql::context(&client).expect("session");
            let (got, expected) = (
                answer(&live, &sql).await,
                answer(&setup.offline, &sql).await,
            );
            assert!(
                got.as_ref().is_ok_and(|rows| !rows.is_empty()),
                "{sql}: {got:?}"
            );
            assert_eq!(got, expected, "{sql}");
            match filter.shape {
                Shape::Parent => {
                    let calls = client
                        .requests()
                        .iter()
                        .filter(|r| r.table_name == table.name)
                        .count();
                    assert_eq!(calls, 1, "{sql}: one call, for the one parent named");
                }
                _ => assert!(
                    setup.live.params_seen().contains(filter.param),
                    "{sql}: {} was not sent; the API saw {:?}",
                    filter.param,
                    setup.live.params_seen()
                ),
            }
            checked += 1;
        }
    }
    assert!(checked >= 25, "{checked} declared filters checked");
}
