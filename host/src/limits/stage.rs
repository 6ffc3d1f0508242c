//! The cardinality limits as a step of the write pipeline. It runs after
//! validation and the plugin stages (enrichers may add dimensions, so the
//! series are final here) and right before storage.

use std::sync::Arc;

use async_trait::async_trait;

use super::{CardinalityTracker, RateLimiter};
use crate::pipeline::{Batch, WriteError, WriteStage};

pub struct CardinalityStage {
    tracker: Arc<CardinalityTracker>,
    rates: Arc<RateLimiter>,
}

impl CardinalityStage {
    pub fn new(tracker: Arc<CardinalityTracker>, rates: Arc<RateLimiter>) -> Self {
        Self { tracker, rates }
    }
}

#[async_trait]
impl WriteStage for CardinalityStage {
    fn name(&self) -> &str {
        "cardinality"
    }

    async fn run(&self, batch: &mut Batch) -> Result<(), WriteError> {
        // The request's guard resolved this tenant's limits (tier claim and
        // overrides) a moment ago; the batch does not carry the token.
        let rates = self.rates.current(batch.tenant());
        let refused = self
            .tracker
            .admit_batch(batch.tenant(), &rates.resolved.limits, batch.metrics())
            .await;
        if refused.is_empty() {
            return Ok(());
        }
        let mut refused = refused.into_iter().peekable();
        batch.reject_where(|pos, _| {
            if refused.peek().is_some_and(|(i, _)| *i == pos) {
                refused.next().map(|(_, e)| (e.code(), e.to_string()))
            } else {
                None
            }
        });
        Ok(())
    }
}
