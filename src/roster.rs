//! `--roster people.csv`: an HR roster as the table `roster`, so people can
//! be joined to accounts on email (case-insensitive). The Admin API has no
//! managers and no employment status; an HR system does.
//!
//! A roster is a CSV file with a header line. Columns, in any order:
//! `email` (required), `name`, `manager_email`, `department`,
//! `employment_status` (`active`, `on_leave` or `terminated`) and `end_date`
//! (`YYYY-MM-DD`). Anything else in it is refused, with the line, rather
//! than half-read: a misspelt column would otherwise vanish silently.

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Date32Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::MemTable;
use datafusion::error::{DataFusionError, Result};
use datafusion::prelude::SessionContext;

/// The table's name in a session.
pub const TABLE: &str = "roster";

/// The columns a roster may have, in the table's order.
pub const COLUMNS: [&str; 6] = [
    "email",
    "name",
    "manager_email",
    "department",
    "employment_status",
    "end_date",
];

/// The values `employment_status` may take.
pub const STATUSES: [&str; 3] = ["active", "on_leave", "terminated"];

/// One person of the roster.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Person {
    pub email: String,
    pub name: Option<String>,
    pub manager_email: Option<String>,
    pub department: Option<String>,
    pub employment_status: Option<String>,
    pub end_date: Option<chrono::NaiveDate>,
}

/// A roster that cannot be read, and where.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RosterError(String);

fn bad(path: &Path, line: u64, what: impl std::fmt::Display) -> RosterError {
    RosterError(format!("{}:{line}: {what}", path.display()))
}

/// A person's email on `line` of a people file (a roster, an identity
/// provider's export): present, an address, and not on an earlier line
/// (`seen`, case-insensitively); else what is wrong.
pub(crate) fn new_email(
    email: Option<String>,
    line: u64,
    seen: &mut std::collections::HashMap<String, u64>,
) -> Result<String, String> {
    let email = email.ok_or("no email")?;
    if !email.contains('@') {
        return Err(format!("{email:?} is not an email address"));
    }
    if let Some(first) = seen.insert(email.to_lowercase(), line) {
        return Err(format!(
            "{email} is already on line {first} (emails match case-insensitively)"
        ));
    }
    Ok(email)
}

/// The people of a roster file, checked: every row has an email, each
/// email once (case-insensitively), known statuses, real dates.
pub fn read(path: &Path) -> Result<Vec<Person>, RosterError> {
    let bytes = std::fs::read(path).map_err(|e| RosterError(format!("{}: {e}", path.display())))?;
    let text = crate::sheet::text(&bytes);
    let mut reader = crate::sheet::reader(text);
    let mut lines = crate::sheet::Lines::new(text);
    let header = match reader.headers() {
        Ok(header) => crate::sheet::cells(header),
        Err(e) => {
            let (line, what) = lines.error(&e);
            return Err(bad(path, line, what));
        }
    };
    let mut at = [None; COLUMNS.len()];
    for (i, name) in header.iter().map(|h| h.to_lowercase()).enumerate() {
        let Some(slot) = COLUMNS.iter().position(|c| *c == name) else {
            return Err(bad(
                path,
                1,
                format!(
                    "unknown column {name:?}; a roster has {}",
                    COLUMNS.join(", ")
                ),
            ));
        };
        if at[slot].replace(i).is_some() {
            return Err(bad(path, 1, format!("column {name} appears twice")));
        }
    }
    if at[0].is_none() {
        return Err(bad(
            path,
            1,
            "no email column; a roster has email and optionally name, manager_email, \
             department, employment_status, end_date",
        ));
    }
    let mut people: Vec<Person> = Vec::new();
    let mut seen: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let (line, what) = lines.error(&e);
            bad(path, line, what)
        })?;
        let line = lines.at(record.position());
        let cells = crate::sheet::cells(&record);
        if cells.is_empty() {
            continue; // A spreadsheet's trailing empty rows.
        }
        if cells.len() > header.len() {
            return Err(bad(
                path,
                line,
                format!(
                    "{} cells where the header has {}",
                    cells.len(),
                    header.len()
                ),
            ));
        }
        let cell = |slot: usize| -> Option<String> {
            at[slot]
                .and_then(|i| cells.get(i))
                .filter(|v| !v.is_empty())
                .cloned()
        };
        let email = new_email(cell(0), line, &mut seen).map_err(|what| bad(path, line, what))?;
        let employment_status = cell(4).map(|s| s.to_lowercase());
        if let Some(status) = employment_status
            .as_deref()
            .filter(|s| !STATUSES.contains(s))
        {
            return Err(bad(
                path,
                line,
                format!(
                    "employment_status {status:?} is not one of {}",
                    STATUSES.join(", ")
                ),
            ));
        }
        let end_date = cell(5)
            .map(|d| {
                chrono::NaiveDate::parse_from_str(&d, "%Y-%m-%d").map_err(|_| {
                    bad(
                        path,
                        line,
                        format!("end_date {d:?} is not a date (YYYY-MM-DD)"),
                    )
                })
            })
            .transpose()?;
        people.push(Person {
            email,
            name: cell(1),
            manager_email: cell(2),
            department: cell(3),
            employment_status,
            end_date,
        });
    }
    Ok(people)
}

/// The roster as one batch of the table's schema.
pub fn batch(people: &[Person]) -> Result<RecordBatch> {
    let text = |f: fn(&Person) -> Option<&str>| -> ArrayRef {
        Arc::new(people.iter().map(f).collect::<StringArray>())
    };
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    let days = people
        .iter()
        .map(|p| p.end_date.map(|d| (d - epoch).num_days() as i32))
        .collect::<Date32Array>();
    let fields = COLUMNS
        .iter()
        .map(|name| {
            let kind = if *name == "end_date" {
                DataType::Date32
            } else {
                DataType::Utf8
            };
            Field::new(*name, kind, *name != "email")
        })
        .collect::<Vec<_>>();
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        vec![
            text(|p| Some(p.email.as_str())),
            text(|p| p.name.as_deref()),
            text(|p| p.manager_email.as_deref()),
            text(|p| p.department.as_deref()),
            text(|p| p.employment_status.as_deref()),
            Arc::new(days),
        ],
    )?)
}

/// Read `path` and register it as the table `roster` of `ctx`.
pub fn register(ctx: &SessionContext, path: &Path) -> Result<()> {
    let people = read(path).map_err(|e| DataFusionError::External(Box::new(e)))?;
    let batch = batch(&people)?;
    let table = MemTable::try_new(batch.schema(), vec![vec![batch]])?;
    ctx.register_table(TABLE, Arc::new(table))?;
    Ok(())
}
