//! Cancel means cancel: a statement is stopped by dropping its task, which
//! takes effect when the task next yields. Scans yield (DataFusion wraps them
//! in `CooperativeExec`), but a cross or nested-loop join can produce
//! billions of rows from inputs it has already read without ever polling a
//! scan again, so Ctrl-C would print "cancelled" while the join went on
//! burning a core. Wrapping those joins in `CooperativeExec` makes them spend
//! tokio's budget for each batch they produce, so they yield too.

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::error::Result;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::coop::CooperativeExec;
use datafusion::physical_plan::joins::{CrossJoinExec, NestedLoopJoinExec};

#[derive(Debug)]
pub struct YieldingJoins;

impl PhysicalOptimizerRule for YieldingJoins {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            if node.is::<CrossJoinExec>() || node.is::<NestedLoopJoinExec>() {
                let wrapped: Arc<dyn ExecutionPlan> = Arc::new(CooperativeExec::new(node));
                Ok(Transformed::yes(wrapped))
            } else {
                Ok(Transformed::no(node))
            }
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "yielding_joins"
    }

    fn schema_check(&self) -> bool {
        true
    }
}
