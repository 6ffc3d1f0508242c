//! Where plugins join the pipelines. Write path: one [`WriteStage`] that
//! runs the tenant's validators, then its enrichers, in chain order; the
//! chain is read once per request, so a binding change applies from the
//! next one. Query path: [`AggregationPlugin`].

use std::sync::Arc;

use async_trait::async_trait;

use super::chain_input::ChainInput;
use super::engine::CallFailure;
use super::runtime::{PluginRuntime, StepOutcome};
use crate::model::{Series, TenantId};
use crate::pipeline::{AggregationPlugin, Batch, ReadError, WriteError, WriteStage};

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
        let mut input = ChainInput::default();
        for binding in &chain.validators {
            if batch.is_empty() {
                return Ok(());
            }
            let outcome = self
                .runtime
                .run_validator_in(&tenant, binding, batch.metrics(), &mut input)
                .await;
            if outcome != StepOutcome::AcceptAll {
                input.metrics_changed();
            }
            apply(batch, outcome);
        }
        for binding in &chain.enrichers {
            if batch.is_empty() {
                return Ok(());
            }
            let step = self
                .runtime
                .run_enricher_in(&tenant, binding, batch.metrics_mut(), &mut input)
                .await;
            if step.changed || step.outcome != StepOutcome::AcceptAll {
                input.metrics_changed();
            }
            apply(batch, step.outcome);
        }
        Ok(())
    }
}

/// The query path: `"aggregation": {"plugin": ..., "params": ...}`. The read
/// pipeline fetches each group's raw points (a grouped range query, which
/// every backend supports) and the runtime streams them through the plugin.
#[async_trait]
impl AggregationPlugin for PluginRuntime {
    async fn aggregate(
        &self,
        tenant: &TenantId,
        plugin: &str,
        params_json: &str,
        groups: &[Series],
    ) -> Result<Vec<f64>, ReadError> {
        let points = groups.iter().map(|g| g.points.clone()).collect();
        PluginRuntime::aggregate(self, tenant, plugin, Arc::from(params_json), points)
            .await
            .map_err(|e| {
                let code = match e.failure {
                    CallFailure::NotInstalled => "unknown_plugin",
                    CallFailure::WrongKind { .. } => "wrong_plugin_kind",
                    _ => "plugin_failed",
                };
                ReadError::Plugin {
                    code,
                    message: e.to_string(),
                }
            })
    }
}
