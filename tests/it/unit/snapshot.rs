//! Unit tests of `orgsql::snapshot` (src/snapshot.rs).

use datafusion::catalog::MemorySchemaProvider;
use datafusion::prelude::SessionContext;
use orgsql::snapshot::*;
use orgsql::tables::catalog;
use std::sync::Arc;

/// Two snapshots as schemas of a session, made of SQL.
async fn snapshots(statements: &[&str]) -> SessionContext {
    let ctx = orgsql::bare_context();
    let catalog = ctx.catalog("datafusion").expect("default catalog");
    for name in ["old", "new"] {
        catalog
            .register_schema(name, Arc::new(MemorySchemaProvider::new()))
            .expect("schema");
    }
    for sql in statements {
        let run = async { ctx.sql(sql).await?.collect().await };
        run.await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    ctx
}

#[tokio::test]
async fn labels_are_read_where_the_row_is_and_null_when_missing() {
    let members = "(org_id VARCHAR, group_id VARCHAR, account_id VARCHAR, group_name VARCHAR)";
    let ctx = snapshots(&[
        &format!("CREATE TABLE old.group_members {members}"),
        &format!("CREATE TABLE new.group_members {members}"),
        "INSERT INTO old.group_members VALUES ('o', 'g1', 'u1', 'Ops'), \
         ('o', 'g2', 'u4', 'Gone, \"old\"/x')",
        "INSERT INTO new.group_members VALUES ('o', 'g1', 'u1', ''), \
         ('o', 'g1', 'u2', 'Ops'), ('o', 'g1', 'u3', 'Ops')",
        // Only the new snapshot has users, and not u3.
        "CREATE TABLE new.users (org_id VARCHAR, account_id VARCHAR, email VARCHAR)",
        "INSERT INTO new.users VALUES ('o', 'u2', 'u2@example.com')",
    ])
    .await;
    let changes = diff(&ctx, "old", "new").await.expect("diff");
    let rows = orgsql::cli::output::text_rows(&changes, "NULL").expect("text");
    let row = |change: &str, key: &str, labels: &str, column: [&str; 3]| {
        let mut row = vec!["o", "group_members", change, key, labels];
        row.extend(column);
        row.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let none = ["NULL"; 3];
    assert_eq!(
        rows,
        vec![
            row(
                "added",
                "{group_id: g1, account_id: u2}",
                "{email: u2@example.com, group: Ops}",
                none
            ),
            row(
                "added",
                "{group_id: g1, account_id: u3}",
                "{email: NULL, group: Ops}",
                none
            ),
            // Labels of a removed row are the old snapshot's (no users).
            row(
                "removed",
                "{group_id: g2, account_id: u4}",
                "{email: NULL, group: Gone, \"old\"/x}",
                none
            ),
            // '' is a value, not NULL; the label is the new one.
            row(
                "changed",
                "{group_id: g1, account_id: u1}",
                "{email: NULL, group: }",
                ["group_name", "Ops", ""]
            ),
        ]
    );
    assert_eq!(
        one_sided(&ctx, "old", "new").expect("tables"),
        vec![("users".to_string(), "new".to_string())]
    );
}

/// A label misnamed would fail every diff of its table: each names
/// columns that are there, of a table `diff` compares.
#[test]
fn every_label_reads_columns_that_exist() {
    let has = |table: &str, column: &str| {
        orgsql::tables::find(table).is_some_and(|t| t.columns.iter().any(|c| c.name == column))
    };
    for table in catalog() {
        assert!(
            table.labels.is_empty() || comparable(&table),
            "{}: labels, but diff does not compare it",
            table.name
        );
        for label in table.labels {
            let ok = match label.from {
                orgsql::tables::LabelFrom::Own(column) => has(table.name, column),
                orgsql::tables::LabelFrom::Lookup {
                    by,
                    table: from,
                    key,
                    column,
                } => has(table.name, by) && has(from, key) && has(from, column),
            };
            assert!(ok, "{}: label {}", table.name, label.name);
        }
    }
}
