//! Where plugins join the pipelines. Write path: one [`WriteStage`] that
//! runs the tenant's validators, then its enrichers, in chain order; the
//! chain is read once per request, so a binding change applies from the
//! next one. Query path: [`AggregationPlugin`].

use std::sync::Arc;

use async_trait::async_trait;

use super::bindings::Chain;
use super::chain_input::ChainInput;
use super::engine::CallFailure;
use super::runtime::{PluginRuntime, StepOutcome};
use crate::model::{Series, TenantId};
use crate::pipeline::{AggregationPlugin, Batch, ReadError, WriteError, WriteStage};

/// What a write refused while plugins compile at start-up tells the client.
const STARTING_RETRY_AFTER_SECS: u32 = 5;

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
        // At start-up a fail-closed binding whose plugin is still compiling
        // must not turn into rejected metrics the client would not retry.
        if let Some(plugin) = self.runtime.fail_closed_not_loaded(&tenant, &chain) {
            return Err(WriteError::PluginsStarting {
                plugin,
                retry_after_secs: STARTING_RETRY_AFTER_SECS,
            });
        }
        if let Some(memory) = self.runtime.chain_memory(&tenant, &chain) {
            self.runtime.run_remembered(memory, &chain, batch).await;
            return Ok(());
        }
        run_steps(&self.runtime, &chain, batch, &mut ChainInput::default()).await;
        Ok(())
    }
}

/// Runs `chain`'s validators, then its enrichers, over `batch`, each step
/// over the metrics the steps before it kept, as they left them. Returns,
/// after each validator, how many rejections `batch` holds.
pub(super) async fn run_steps(
    runtime: &PluginRuntime,
    chain: &Chain,
    batch: &mut Batch,
    input: &mut ChainInput,
) -> Vec<usize> {
    let tenant = batch.tenant().clone();
    let mut rejected_after_validator = Vec::with_capacity(chain.validators.len());
    for binding in &chain.validators {
        if !batch.is_empty() {
            let outcome = runtime
                .run_validator_in(&tenant, binding, batch.metrics(), input)
                .await;
            if outcome != StepOutcome::AcceptAll {
                input.metrics_changed();
            }
            apply(batch, outcome);
        }
        rejected_after_validator.push(batch.rejections().len());
    }
    for binding in &chain.enrichers {
        if batch.is_empty() {
            break;
        }
        let step = runtime
            .run_enricher_in(&tenant, binding, batch.metrics_mut(), input)
            .await;
        if step.changed || step.outcome != StepOutcome::AcceptAll {
            input.metrics_changed();
        }
        apply(batch, step.outcome);
    }
    rejected_after_validator
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
