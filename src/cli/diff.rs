//! `orgsql diff OLD NEW`: what changed between two snapshots.

use std::sync::Arc;

use crate::storage::Location;

use anyhow::Result;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, MapArray, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use super::At;
use super::files::Output;
use super::output::Format;

#[derive(clap::Args)]
pub struct DiffArgs {
    /// The earlier snapshot (a folder, or s3://, gs://, az://)
    pub old: Location,
    /// The later snapshot
    pub new: Location,
    /// How the changes are printed
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Exit 1 when anything changed, 0 when nothing did (as `git diff
    /// --exit-code`); an error is 2 either way
    #[arg(long)]
    pub exit_code: bool,
}

/// `orgsql diff OLD NEW`: the changes, printed in --format. Whether
/// anything changed.
pub async fn run(args: &DiffArgs, output: &Output) -> Result<bool> {
    let format = output
        .format(args.format, Format::EXTENSIONS)
        .map_err(anyhow::Error::msg)?;
    let ctx = crate::bare_context();
    for (name, dir) in [("old", &args.old), ("new", &args.new)] {
        crate::snapshot::attach(&ctx, name, dir).await.at("diff")?;
    }
    // An export of some tables: what is not compared is said, not hidden.
    let one_sided = crate::snapshot::one_sided(&ctx, "old", "new").at("diff")?;
    for (schema, dir) in [("old", &args.old), ("new", &args.new)] {
        let tables: Vec<&str> = one_sided
            .iter()
            .filter(|(_, holder)| holder == schema)
            .map(|(table, _)| table.as_str())
            .collect();
        if !tables.is_empty() {
            eprintln!(
                "note: not compared, only {dir} holds them: {}",
                tables.join(", ")
            );
        }
    }
    let changes = crate::snapshot::diff(&ctx, "old", "new").await.at("diff")?;
    let changed = changes.iter().any(|b| b.num_rows() > 0);
    let schema: SchemaRef = Arc::new(crate::snapshot::diff_schema());
    // CSV has no maps: the key and labels are written as JSON objects, each
    // value whole whatever it holds (`/`, `,`, quotes).
    let (schema, changes) = match format {
        Format::Csv => maps_as_json(&schema, &changes).at("diff")?,
        _ => (schema, changes),
    };
    let mut stdout = std::io::stdout().lock();
    match &output.path {
        Some(path) => crate::cli::files::write_file(path, format, &schema, &changes),
        None => crate::cli::output::print(&mut stdout, format, &schema, &changes, None),
    }
    .at("diff")?;
    Ok(changed)
}

/// The batches with each map column as text: a JSON object a row.
fn maps_as_json(
    schema: &SchemaRef,
    batches: &[RecordBatch],
) -> datafusion::error::Result<(SchemaRef, Vec<RecordBatch>)> {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Map(..) => Field::new(f.name(), DataType::Utf8, f.is_nullable()),
            _ => f.as_ref().clone(),
        })
        .collect();
    let text_schema = Arc::new(Schema::new(fields));
    let mut converted = Vec::new();
    for batch in batches {
        let columns: Vec<ArrayRef> = batch
            .columns()
            .iter()
            .map(|column| match column.as_map_opt() {
                Some(map) => Arc::new(json_objects(map)) as ArrayRef,
                None => column.clone(),
            })
            .collect();
        converted.push(RecordBatch::try_new(text_schema.clone(), columns)?);
    }
    Ok((text_schema, converted))
}

/// Each entry of a map of text as a JSON object, in the map's order.
fn json_objects(map: &MapArray) -> StringArray {
    let keys = map.keys().as_string_opt::<i32>();
    let values = map.values().as_string_opt::<i32>();
    let text = |array: Option<&datafusion::arrow::array::StringArray>, i: usize| match array {
        Some(array) if array.is_valid(i) => serde_json::Value::from(array.value(i)),
        _ => serde_json::Value::Null,
    };
    let offsets = map.value_offsets();
    (0..map.len())
        .map(|row| {
            map.is_valid(row).then(|| {
                let (start, end) = (offsets[row] as usize, offsets[row + 1] as usize);
                let fields: Vec<String> = (start..end)
                    .map(|i| format!("{}:{}", text(keys, i), text(values, i)))
                    .collect();
                format!("{{{}}}", fields.join(","))
            })
        })
        .collect()
}
