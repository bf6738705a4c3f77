//! `--idp users.csv`: an identity provider's user export (Okta or Microsoft
//! Entra ID) as the table `idp_users`, and, when it has a groups column, as
//! `idp_group_members`: the identity provider's word on who is active,
//! for reconciliation without a SCIM token. Emails join accounts
//! case-insensitively.
//!
//! Columns are matched by name, case-insensitively, whichever vendor wrote
//! the file; other columns (a vendor's many more) are ignored:
//! - email: `email`, `primary email` (Okta), `mail` (Entra), `profile.email`,
//!   `login` (Okta), `username`, `userPrincipalName` (Entra): the first
//!   non-empty of those present, in that order;
//! - status: `status` (Okta: ACTIVE, PROVISIONED, RECOVERY, PASSWORD_RESET,
//!   PASSWORD_EXPIRED, LOCKED_OUT are active; STAGED, SUSPENDED,
//!   DEPROVISIONED inactive; also `active`, `inactive`, `enabled`,
//!   `disabled`) or `accountEnabled` (Entra: true or false);
//! - name: `display name`, `displayName`, `name`, else `first name` and
//!   `last name` (Okta) or `givenName` and `surname` (Entra);
//! - groups (optional): `groups`, `group` or `memberOf`, names separated
//!   by `;` or `|`.
//!
//! A row without an email, with one that is not an address or is already
//! on an earlier line, or with a status not listed, is refused with its
//! line: a half-read export would make accounts look absent.

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::MemTable;
use datafusion::error::{DataFusionError, Result};
use datafusion::prelude::SessionContext;

/// The tables' names in a session.
pub const USERS: &str = "idp_users";
pub const GROUP_MEMBERS: &str = "idp_group_members";

/// Email columns, by priority.
const EMAIL: [&str; 7] = [
    "email",
    "primary email",
    "mail",
    "profile.email",
    "login",
    "username",
    "userprincipalname",
];
const STATUS: [&str; 2] = ["status", "accountenabled"];
const NAME: [&str; 3] = ["display name", "displayname", "name"];
const GIVEN: [&str; 2] = ["first name", "givenname"];
const FAMILY: [&str; 2] = ["last name", "surname"];
const GROUPS: [&str; 3] = ["groups", "group", "memberof"];

/// Statuses that mean the identity provider lets the person sign in.
const ACTIVE: [&str; 9] = [
    "active",
    "provisioned",
    "recovery",
    "password_reset",
    "password_expired",
    "locked_out",
    "enabled",
    "true",
    "yes",
];
/// Statuses that mean it does not.
const INACTIVE: [&str; 7] = [
    "inactive",
    "staged",
    "suspended",
    "deprovisioned",
    "disabled",
    "false",
    "no",
];

/// One person of the export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdpUser {
    pub email: String,
    pub name: Option<String>,
    /// `active` or `inactive`.
    pub status: &'static str,
    /// The status as the file gives it.
    pub idp_status: String,
    pub groups: Vec<String>,
    pub line: u64,
}

/// An export that cannot be read, and where.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct IdpError(String);

fn bad(path: &Path, line: u64, what: impl std::fmt::Display) -> IdpError {
    IdpError(format!("{}:{line}: {what}", path.display()))
}

/// The people of an export, checked; and whether it has a groups column.
pub fn read(path: &Path) -> Result<(Vec<IdpUser>, bool), IdpError> {
    let bytes = std::fs::read(path).map_err(|e| IdpError(format!("{}: {e}", path.display())))?;
    let text = crate::sheet::text(&bytes);
    let mut reader = crate::sheet::reader(text);
    let mut lines = crate::sheet::Lines::new(text);
    let header: Vec<String> = match reader.headers() {
        Ok(header) => crate::sheet::cells(header)
            .iter()
            .map(|h| h.trim().to_lowercase())
            .collect(),
        Err(e) => {
            let (line, what) = lines.error(&e);
            return Err(bad(path, line, what));
        }
    };
    let find = |names: &[&str]| -> Vec<usize> {
        names
            .iter()
            .filter_map(|n| header.iter().position(|h| h == n))
            .collect()
    };
    let emails = find(&EMAIL);
    let status = find(&STATUS).first().copied();
    let (name, given, family, groups) = (
        find(&NAME).first().copied(),
        find(&GIVEN).first().copied(),
        find(&FAMILY).first().copied(),
        find(&GROUPS).first().copied(),
    );
    if emails.is_empty() {
        return Err(bad(
            path,
            1,
            format!(
                "no email column; an identity provider export has one of: {}",
                EMAIL.join(", ")
            ),
        ));
    }
    let Some(status) = status else {
        return Err(bad(
            path,
            1,
            "no status column; an export has status (Okta) or accountEnabled (Entra ID)",
        ));
    };
    let mut people = Vec::new();
    let mut seen: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let (line, what) = lines.error(&e);
            bad(path, line, what)
        })?;
        let line = lines.at(record.position());
        let cells = crate::sheet::cells(&record);
        if cells.iter().all(String::is_empty) {
            continue; // A spreadsheet's trailing empty rows.
        }
        let cell = |i: Option<usize>| -> Option<String> {
            i.and_then(|i| cells.get(i))
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let email = emails.iter().find_map(|&i| cell(Some(i)));
        let email = crate::roster::new_email(email, line, &mut seen)
            .map_err(|what| bad(path, line, what))?;
        let given_status = cell(Some(status)).unwrap_or_default();
        let lower = given_status.to_lowercase().replace([' ', '-'], "_");
        let normalized = if ACTIVE.contains(&lower.as_str()) {
            "active"
        } else if INACTIVE.contains(&lower.as_str()) {
            "inactive"
        } else {
            return Err(bad(
                path,
                line,
                format!(
                    "status {given_status:?} is not one of {} (active) or {} (inactive)",
                    ACTIVE.join(", "),
                    INACTIVE.join(", ")
                ),
            ));
        };
        let name = cell(name).or_else(|| {
            let parts: Vec<String> = [cell(given), cell(family)].into_iter().flatten().collect();
            (!parts.is_empty()).then(|| parts.join(" "))
        });
        let groups = cell(groups)
            .map(|g| {
                g.split([';', '|'])
                    .map(str::trim)
                    .filter(|g| !g.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        people.push(IdpUser {
            email,
            name,
            status: normalized,
            idp_status: given_status,
            groups,
            line,
        });
    }
    Ok((people, groups.is_some()))
}

fn text_array<'a>(values: impl Iterator<Item = Option<&'a str>>) -> ArrayRef {
    Arc::new(values.collect::<StringArray>())
}

/// Read `path` and register `idp_users` (and `idp_group_members` when it
/// has a groups column) in `ctx`.
pub fn register(ctx: &SessionContext, path: &Path) -> Result<()> {
    let (people, has_groups) = read(path).map_err(|e| DataFusionError::External(Box::new(e)))?;
    let users = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("email", DataType::Utf8, false),
            Field::new("name", DataType::Utf8, true),
            Field::new("status", DataType::Utf8, false),
            Field::new("idp_status", DataType::Utf8, false),
            Field::new("line", DataType::Int64, false),
        ])),
        vec![
            text_array(people.iter().map(|p| Some(p.email.as_str()))),
            text_array(people.iter().map(|p| p.name.as_deref())),
            text_array(people.iter().map(|p| Some(p.status))),
            text_array(people.iter().map(|p| Some(p.idp_status.as_str()))),
            Arc::new(people.iter().map(|p| p.line as i64).collect::<Int64Array>()),
        ],
    )?;
    ctx.register_table(
        USERS,
        Arc::new(MemTable::try_new(users.schema(), vec![vec![users]])?),
    )?;
    if has_groups {
        let pairs: Vec<(&str, &str)> = people
            .iter()
            .flat_map(|p| p.groups.iter().map(move |g| (p.email.as_str(), g.as_str())))
            .collect();
        let members = RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("email", DataType::Utf8, false),
                Field::new("group_name", DataType::Utf8, false),
            ])),
            vec![
                text_array(pairs.iter().map(|(e, _)| Some(*e))),
                text_array(pairs.iter().map(|(_, g)| Some(*g))),
            ],
        )?;
        ctx.register_table(
            GROUP_MEMBERS,
            Arc::new(MemTable::try_new(members.schema(), vec![vec![members]])?),
        )?;
    }
    Ok(())
}
