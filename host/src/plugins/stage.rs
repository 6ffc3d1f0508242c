//! The plugins' place on the write path: one [`WriteStage`] that runs the
//! tenant's validators, then its enrichers, in chain order. The chain is
//! read once per request, so a binding change applies from the next one.

use std::sync::Arc;

use async_trait::async_trait;

use super::runtime::{PluginRuntime, StepOutcome};
use crate::pipeline::{Batch, WriteError, WriteStage};

pub struct PluginWriteStage {
    runtime: Arc<PluginRuntime>,
}

impl PluginWriteStage {
    pub fn new(runtime: Arc<PluginRuntime>) -> Self {
        Self { runtime }
    }
}

fn apply(batch: &mut Batch, outcome: StepOutcome) {
    match outcome {
        StepOutcome::AcceptAll => {}
        StepOutcome::PerMetric(mut verdicts) => {
            batch.reject_where(|pos, _| verdicts.get_mut(pos).and_then(Option::take));
        }
        StepOutcome::RejectAll { code, message } => {
            batch.reject_where(|_, _| Some((code, message.clone())));
        }
    }
}

#[async_trait]
impl WriteStage for PluginWriteStage {
    fn name(&self) -> &str {
        "plugins"
    }

    async fn run(&self, batch: &mut Batch) -> Result<(), WriteError> {
        let tenant = batch.tenant().clone();
        let chain = self.runtime.chain(&tenant);
        if chain.is_empty() {
            return Ok(());
        }
        for binding in &chain.validators {
            if batch.is_empty() {
                return Ok(());
            }
            let outcome = self.runtime.run_validator(&tenant, binding, batch.metrics()).await;
            apply(batch, outcome);
        }
        for binding in &chain.enrichers {
            if batch.is_empty() {
                return Ok(());
            }
            let outcome = self
                .runtime
                .run_enricher(&tenant, binding, batch.metrics_mut())
                .await;
            apply(batch, outcome);
        }
        Ok(())
    }
}
