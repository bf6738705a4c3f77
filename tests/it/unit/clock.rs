//! Unit tests of `orgsql::clock` (src/clock.rs).

use chrono::DateTime;
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::error::Result;
use orgsql::clock::*;

#[tokio::test]
async fn every_clock_function_answers_the_fixed_instant() -> Result<()> {
    let ctx = orgsql::bare_context();
    let at = DateTime::from_timestamp(1_796_040_000, 0).unwrap_or_default();
    fix(&ctx, at);
    let batches = ctx
        .sql(
            "SELECT CAST(now() AS VARCHAR) AS a, CAST(current_timestamp AS VARCHAR) AS b, \
             CAST(current_date() AS VARCHAR) AS c, CAST(today() AS VARCHAR) AS d, \
             CAST(now() - interval '7 days' AS VARCHAR) AS e",
        )
        .await?
        .collect()
        .await?;
    let text = pretty_format_batches(&batches)?.to_string();
    let row = text.lines().nth(3).unwrap_or_default();
    assert_eq!(
        row,
        "| 2026-11-30T12:00:00 | 2026-11-30T12:00:00 | 2026-11-30 | 2026-11-30 | 2026-11-23T12:00:00 |",
        "{text}"
    );
    Ok(())
}
