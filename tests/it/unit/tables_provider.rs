//! Unit tests of `orgsql::tables::provider` (src/tables/provider.rs).

use datafusion::arrow::array::StringArray;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::Result;
use orgsql::tables::provider::*;
use std::sync::Arc;

/// Within one listing a key seen twice is a listing going round, unless
/// the key holds a NULL: that names nothing, and the row is kept.
#[test]
fn a_key_with_a_null_is_never_taken_for_a_repeat() -> Result<()> {
    let schema: SchemaRef = Arc::new(Schema::new(vec![
        Field::new("account_id", DataType::Utf8, false),
        Field::new("url", DataType::Utf8, true),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from(vec!["a", "a", "b"])),
            Arc::new(StringArray::from(vec![None, None, Some("https://x")])),
        ],
    )?;
    let mut seen = SeenKeys::new(&schema, &["account_id", "url"])?;
    let kept = seen.first_sightings(0, "GET /x", &batch)?;
    assert_eq!(kept.map(|b| b.num_rows()), Some(3));
    // The same page again in the same listing: the keyed row repeats.
    assert!(seen.first_sightings(0, "GET /x", &batch).is_err());
    Ok(())
}
