//! Unit tests of `orgsql::tables::filters` (src/tables/filters.rs).

use datafusion::logical_expr::{Expr, Operator};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::ScalarFunctionExpr;
use datafusion::physical_expr::expressions::{self as physical, InListExpr};
use datafusion::prelude::{col, lit};
use datafusion::scalar::ScalarValue;
use orgsql::tables::filters::*;
use std::sync::Arc;

fn ts(micros: i64) -> Expr {
    Expr::Literal(
        ScalarValue::TimestampMicrosecond(Some(micros), Some("UTC".into())),
        None,
    )
}

#[test]
fn equalities_or_chains_and_in_lists() {
    assert_eq!(
        equals_any(&col("a").eq(lit("x"))),
        Some(("a", vec!["x".to_string()]))
    );
    assert_eq!(
        equals_any(&lit("x").eq(col("a"))),
        Some(("a", vec!["x".to_string()]))
    );
    let or = col("a").eq(lit("x")).or(col("a").eq(lit("y")));
    assert_eq!(
        equals_any(&or),
        Some(("a", vec!["x".to_string(), "y".to_string()]))
    );
    assert_eq!(
        equals_any(&col("a").eq(lit("x")).or(col("b").eq(lit("y")))),
        None
    );
    let list = col("a").in_list(vec![lit("x"), lit("y"), lit("z"), lit("w")], false);
    assert_eq!(equals_any(&list).map(|(_, v)| v.len()), Some(4));
    assert_eq!(equals_any(&col("a").in_list(vec![lit("x")], true)), None);
    assert_eq!(equals_any(&col("a").not_eq(lit("x"))), None);
}

#[test]
fn time_windows_from_every_comparison_shape() {
    let filters = vec![
        col("time").gt_eq(ts(100)),
        ts(900).gt(col("time")),
        col("time").lt(ts(500)),
    ];
    assert_eq!(time_window(&filters, "time"), (Some(100), Some(500)));
    let ns = Expr::Literal(
        ScalarValue::TimestampNanosecond(Some(7_000_999), None),
        None,
    );
    assert_eq!(
        time_bound(&col("time").eq(ns)),
        Some(("time", TimeBound::At(7_000)))
    );
    assert_eq!(time_window(&[col("other").gt(ts(1))], "time"), (None, None));
}

/// A join on (org_id, account_id) with a small build side filters the
/// probe side by `struct(org_id, account_id) IN (...)`: each
/// organization's keys are the pairs of that organization.
#[test]
fn a_join_on_org_id_gives_each_organization_its_own_keys() -> datafusion::error::Result<()> {
    use datafusion::arrow::array::{ArrayRef, StringArray, StructArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::common::config::ConfigOptions;

    let schema = Schema::new(vec![
        Field::new("org_id", DataType::Utf8, false),
        Field::new("account_id", DataType::Utf8, false),
    ]);
    let pair = ScalarFunctionExpr::try_new(
        datafusion::functions::core::r#struct(),
        vec![
            physical::col("org_id", &schema)?,
            physical::col("account_id", &schema)?,
        ],
        &schema,
        Arc::new(ConfigOptions::default()),
    )?;
    let DataType::Struct(fields) = pair.return_type().clone() else {
        panic!("struct() makes a struct");
    };
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec!["org-a", "org-a", "org-b"])),
        Arc::new(StringArray::from(vec!["ann", "bob", "cy"])),
    ];
    let pairs = StructArray::try_new(fields, columns, None)?;
    let filter: Arc<dyn PhysicalExpr> = Arc::new(InListExpr::try_new_from_array(
        Arc::new(pair),
        Arc::new(pairs),
        false,
        &schema,
    )?);
    let sorted = |mut keys: Vec<(String, Vec<String>)>| {
        keys.sort();
        keys
    };
    let keys = |org: &str, accounts: &[&str]| {
        Some(vec![
            (
                "account_id".to_string(),
                accounts.iter().map(ToString::to_string).collect(),
            ),
            ("org_id".to_string(), vec![org.to_string()]),
        ])
    };
    assert_eq!(
        join_key_values_of(&filter, "org_id", "org-a").map(sorted),
        keys("org-a", &["ann", "bob"])
    );
    assert_eq!(
        join_key_values_of(&filter, "org_id", "org-b").map(sorted),
        keys("org-b", &["cy"])
    );
    assert_eq!(join_key_values_of(&filter, "org_id", "org-c"), None);
    // Unscoped, every key (and DataFusion pairs them again).
    let all = sorted(join_key_values(&filter));
    assert_eq!(all[0].1, vec!["ann", "bob", "cy"]);

    // `org_id = 'org-b' AND account_id IN (...)`: nothing of org-a.
    let pinned: Arc<dyn PhysicalExpr> = physical::binary(
        physical::binary(
            physical::col("org_id", &schema)?,
            Operator::Eq,
            physical::lit("org-b"),
            &schema,
        )?,
        Operator::And,
        physical::in_list(
            physical::col("account_id", &schema)?,
            vec![physical::lit("cy")],
            &false,
            &schema,
        )?,
        &schema,
    )?;
    assert_eq!(join_key_values_of(&pinned, "org_id", "org-a"), None);
    assert_eq!(
        join_key_values_of(&pinned, "org_id", "org-b").map(sorted),
        keys("org-b", &["cy"])
    );
    Ok(())
}

#[test]
fn allowed_values_intersect() {
    let filters = vec![
        col("a").in_list(vec![lit("x"), lit("y"), lit("z"), lit("w")], false),
        col("a").eq(lit("y")),
    ];
    assert_eq!(allowed_values(&filters, "a"), Some(vec!["y".to_string()]));
    assert_eq!(allowed_values(&filters, "b"), None);
}
