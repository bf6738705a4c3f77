//! A session clock fixed at one instant: `now()`, `current_timestamp`,
//! `current_date` and `today()` answer the demo organization's "now"
//! (`emulator::DEMO_NOW`), so its "last 7 days" are the same days in every
//! run, and the demo's answers (and the README's) never drift with the
//! real clock.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{ScalarValue, internal_err};
use datafusion::error::Result;
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};
use datafusion::prelude::SessionContext;

/// Replace the session's clock functions with ones that answer `at`.
pub fn fix(ctx: &SessionContext, at: DateTime<Utc>) {
    let time_zone = ctx
        .copied_config()
        .options()
        .execution
        .time_zone
        .as_deref()
        .map(Arc::from);
    for date in [false, true] {
        ctx.register_udf(ScalarUDF::from(FixedClock {
            at,
            date,
            time_zone: time_zone.clone(),
            signature: Signature::nullary(Volatility::Stable),
            aliases: if date {
                vec!["today".to_string()]
            } else {
                vec!["current_timestamp".to_string()]
            },
        }));
    }
}

/// Give the session back the real clock (DataFusion's own functions), for
/// a snapshot judged against today on purpose (`--wall-clock`).
pub fn wall(ctx: &SessionContext) {
    let config = ctx.copied_config();
    ctx.register_udf(
        datafusion::functions::datetime::now(config.options())
            .as_ref()
            .clone(),
    );
    ctx.register_udf(
        datafusion::functions::datetime::current_date()
            .as_ref()
            .clone(),
    );
}

/// `now()` (or, `date`, `current_date()`) at a fixed instant; folded into a
/// literal when the statement is planned, as DataFusion's own are, so a
/// filter like `time > now() - interval '7 days'` still reaches the API.
#[derive(Debug, PartialEq, Eq, Hash)]
struct FixedClock {
    at: DateTime<Utc>,
    date: bool,
    time_zone: Option<Arc<str>>,
    signature: Signature,
    aliases: Vec<String>,
}

impl FixedClock {
    fn value(&self) -> ScalarValue {
        if self.date {
            let days = self.at.date_naive() - chrono::NaiveDate::default();
            ScalarValue::Date32(i32::try_from(days.num_days()).ok())
        } else {
            ScalarValue::TimestampNanosecond(self.at.timestamp_nanos_opt(), self.time_zone.clone())
        }
    }
}

impl ScalarUDFImpl for FixedClock {
    fn name(&self) -> &str {
        if self.date { "current_date" } else { "now" }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_field_from_args(&self, _args: ReturnFieldArgs) -> Result<FieldRef> {
        Ok(Field::new(self.name(), self.value().data_type(), false).into())
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        internal_err!("return_field_from_args answers instead")
    }

    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        Ok(ColumnarValue::Scalar(self.value()))
    }

    fn simplify(&self, _args: Vec<Expr>, _info: &SimplifyContext) -> Result<ExprSimplifyResult> {
        Ok(ExprSimplifyResult::Simplified(Expr::Literal(
            self.value(),
            None,
        )))
    }

    fn aliases(&self) -> &[String] {
        &self.aliases
    }
}
