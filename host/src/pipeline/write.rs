//! The write path: built-in validation, then the registered stages, then
//! storage. Metrics that fail a step are reported with their index in the
//! request and never reach the next step; the rest are stored.
//!
//! Stages are how other subsystems join the write path without touching it:
//! plugin validators and enrichers (issue 4) and cardinality limits (issue 3)
//! each implement [`WriteStage`] and are registered in order with
//! [`WritePipeline::with_stage`]. A stage sees only metrics that passed every
//! earlier step.

use std::sync::Arc;

use async_trait::async_trait;

use crate::model::{Metric, TenantId, Validator};
use crate::storage::{MetricsStore, StorageError};

/// Why one metric of a request was not stored.
#[derive(Clone, Debug, PartialEq)]
pub struct Rejection {
    /// Position of the metric in the request's `metrics` array.
    pub index: usize,
    /// Stable machine-readable reason, e.g. `invalid_name`.
    pub code: &'static str,
    pub message: String,
}

/// What went wrong with a whole write request. Per-metric problems are
/// [`Rejection`]s instead.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("the batch holds no metrics")]
    EmptyBatch,
    #[error("the batch holds {count} metrics; the limit is {max} per request")]
    TooManyMetrics { count: usize, max: usize },
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A fail-closed binding's plugin is still being compiled at start-up.
    #[error(
        "plugin {plugin:?} of a fail-closed binding is not loaded yet: the server is starting; retry later"
    )]
    PluginsStarting {
        plugin: String,
        retry_after_secs: u32,
    },
}

/// The metrics of one request on their way through the write path.
pub struct Batch {
    tenant: TenantId,
    metrics: Vec<Metric>,
    /// `indices[i]` is the request index of `metrics[i]`.
    indices: Vec<u32>,
    rejected: Vec<Rejection>,
}

impl Batch {
    /// A batch of `metrics` of `tenant`, their request indices their
    /// positions: for a stage that runs steps over a part of its batch.
    pub fn new(tenant: TenantId, metrics: Vec<Metric>) -> Self {
        Self {
            tenant,
            indices: (0..metrics.len() as u32).collect(),
            metrics,
            rejected: Vec::new(),
        }
    }

    /// The rejections so far, in the order they were made.
    pub fn rejections(&self) -> &[Rejection] {
        &self.rejected
    }

    /// The request indices of the metrics still in the batch, the metrics,
    /// and the rejections.
    pub fn into_parts(self) -> (Vec<u32>, Vec<Metric>, Vec<Rejection>) {
        (self.indices, self.metrics, self.rejected)
    }

    /// The tenant every metric of the batch belongs to; stages cannot change it.
    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    /// The metrics still in the batch, in request order.
    pub fn metrics(&self) -> &[Metric] {
        &self.metrics
    }

    /// For enrichers. The host, not the caller, must make sure no reserved
    /// (`_`) dimension is added: use `Validator::validate_dimension` and
    /// refuse keys starting with `RESERVED_PREFIX`.
    pub fn metrics_mut(&mut self) -> &mut [Metric] {
        &mut self.metrics
    }

    /// Removes every metric for which `verdict` returns a reason, recording
    /// the rejection under the metric's request index. `verdict` gets the
    /// metric's position in [`Batch::metrics`] (as used by batch-wide
    /// verdict lists) and the metric itself. Keeps the order of the rest.
    pub fn reject_where(
        &mut self,
        mut verdict: impl FnMut(usize, &Metric) -> Option<(&'static str, String)>,
    ) {
        let mut keep = 0;
        for pos in 0..self.metrics.len() {
            match verdict(pos, &self.metrics[pos]) {
                Some((code, message)) => self.rejected.push(Rejection {
                    index: self.indices[pos] as usize,
                    code,
                    message,
                }),
                None => {
                    self.metrics.swap(keep, pos);
                    self.indices.swap(keep, pos);
                    keep += 1;
                }
            }
        }
        self.metrics.truncate(keep);
        self.indices.truncate(keep);
    }

    pub fn is_empty(&self) -> bool {
        self.metrics.is_empty()
    }
}

/// One step of the write path after built-in validation.
#[async_trait]
pub trait WriteStage: Send + Sync + 'static {
    /// Shown in logs and errors.
    fn name(&self) -> &str;

    /// Rejects metrics (with [`Batch::reject_where`]), edits them, or fails
    /// the whole request. Runs only when the batch is not empty.
    async fn run(&self, batch: &mut Batch) -> Result<(), WriteError>;
}

/// The outcome of a write request whose batch as a whole was acceptable.
#[derive(Debug, Default, PartialEq)]
pub struct WriteOutcome {
    pub accepted: usize,
    /// Sorted by index.
    pub rejected: Vec<Rejection>,
}

/// A metric as decoded from the request, or why it could not be decoded
/// (a wrong type, a missing field).
pub type DecodedMetric = Result<Metric, (&'static str, String)>;

pub struct WritePipeline {
    validator: Validator,
    stages: Vec<Arc<dyn WriteStage>>,
    store: Arc<dyn MetricsStore>,
    max_metrics_per_request: usize,
}

impl WritePipeline {
    pub fn new(
        validator: Validator,
        store: Arc<dyn MetricsStore>,
        max_metrics_per_request: usize,
    ) -> Self {
        Self {
            validator,
            stages: Vec::new(),
            store,
            max_metrics_per_request,
        }
    }

    /// Appends a stage; stages run in the order they were added.
    pub fn with_stage(mut self, stage: Arc<dyn WriteStage>) -> Self {
        self.stages.push(stage);
        self
    }

    pub fn max_metrics_per_request(&self) -> usize {
        self.max_metrics_per_request
    }

    /// Dimensions per metric that validation accepts.
    pub fn max_dimensions(&self) -> usize {
        self.validator.limits().max_dimensions
    }

    /// Runs `items` (in request order) through the write path for `tenant`.
    /// `now_ms` is the server time used for the timestamp window.
    pub async fn write(
        &self,
        tenant: &TenantId,
        items: Vec<DecodedMetric>,
        now_ms: i64,
    ) -> Result<WriteOutcome, WriteError> {
        if items.is_empty() {
            return Err(WriteError::EmptyBatch);
        }
        if items.len() > self.max_metrics_per_request {
            return Err(WriteError::TooManyMetrics {
                count: items.len(),
                max: self.max_metrics_per_request,
            });
        }
        let mut batch = Batch {
            tenant: tenant.clone(),
            metrics: Vec::with_capacity(items.len()),
            indices: Vec::with_capacity(items.len()),
            rejected: Vec::new(),
        };
        for (index, item) in items.into_iter().enumerate() {
            let checked = item.and_then(|metric| match self.validator.validate(&metric, now_ms) {
                Ok(()) => Ok(metric),
                Err(e) => Err((e.code(), e.to_string())),
            });
            match checked {
                Ok(metric) => {
                    batch.metrics.push(metric);
                    batch.indices.push(index as u32);
                }
                Err((code, message)) => batch.rejected.push(Rejection {
                    index,
                    code,
                    message,
                }),
            }
        }
        for stage in &self.stages {
            if batch.is_empty() {
                break;
            }
            stage.run(&mut batch).await?;
        }
        let accepted = batch.metrics.len();
        if accepted > 0 {
            self.store.write(tenant, batch.metrics).await?;
        }
        let mut rejected = batch.rejected;
        rejected.sort_by_key(|r| r.index);
        Ok(WriteOutcome { accepted, rejected })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AggregateQuery, Aggregation, Dimensions, Selector, TimeRange};
    use crate::storage::rocks::RocksStore;

    const NOW: i64 = 1_800_000_000_000;

    fn metric(name: &str, value: f64) -> DecodedMetric {
        Ok(Metric {
            name: name.into(),
            value,
            timestamp_ms: NOW,
            dimensions: Dimensions::new(),
        })
    }

    /// Rejects negative values, like a plugin validator would.
    struct NoNegatives;

    #[async_trait]
    impl WriteStage for NoNegatives {
        fn name(&self) -> &str {
            "no-negatives"
        }
        async fn run(&self, batch: &mut Batch) -> Result<(), WriteError> {
            batch.reject_where(|_, m| {
                (m.value < 0.0).then(|| ("plugin_rejected", format!("{} is negative", m.value)))
            });
            Ok(())
        }
    }

    /// Adds a dimension, like an enricher would.
    struct AddTeam;

    #[async_trait]
    impl WriteStage for AddTeam {
        fn name(&self) -> &str {
            "add-team"
        }
        async fn run(&self, batch: &mut Batch) -> Result<(), WriteError> {
            for m in batch.metrics_mut() {
                m.dimensions.insert("team", "core");
            }
            Ok(())
        }
    }

    #[tokio::test]
    async fn stages_run_in_order_on_what_validation_let_through() {
        let store: Arc<dyn MetricsStore> = Arc::new(RocksStore::in_memory().unwrap());
        let pipeline = WritePipeline::new(Validator::default(), store.clone(), 100)
            .with_stage(Arc::new(NoNegatives))
            .with_stage(Arc::new(AddTeam));
        let tenant = TenantId::new("t").unwrap();
        let items = vec![
            metric("ok", 1.0),
            metric("ok", -1.0),
            metric("1bad", 1.0),
            Err(("invalid_value", "value must be a number".into())),
            metric("ok", 2.0),
        ];
        let outcome = pipeline.write(&tenant, items, NOW).await.unwrap();
        assert_eq!(outcome.accepted, 2);
        let rejected: Vec<(usize, &str)> =
            outcome.rejected.iter().map(|r| (r.index, r.code)).collect();
        assert_eq!(
            rejected,
            vec![
                (1, "plugin_rejected"),
                (2, "invalid_name"),
                (3, "invalid_value")
            ]
        );
        let query = AggregateQuery {
            selector: Selector {
                metric: "ok".into(),
                range: TimeRange {
                    start_ms: NOW - 1,
                    end_ms: NOW + 1,
                },
                filters: vec![],
                budget: crate::model::QueryBudget::UNLIMITED,
            },
            aggregation: Aggregation::Sum,
            group_by: vec!["team".into()],
            limit: None,
        };
        let result = store.query_aggregate(&tenant, &query).await.unwrap();
        assert_eq!(result.rows.len(), 1);
        assert_eq!(result.rows[0].group, vec![Some("core".to_string())]);
        assert_eq!(result.rows[0].value, 3.0);
    }

    #[tokio::test]
    async fn whole_batch_limits_are_checked_first() {
        let store: Arc<dyn MetricsStore> = Arc::new(RocksStore::in_memory().unwrap());
        let pipeline = WritePipeline::new(Validator::default(), store, 2);
        let tenant = TenantId::new("t").unwrap();
        let three = vec![metric("a", 1.0), metric("a", 1.0), metric("a", 1.0)];
        assert!(matches!(
            pipeline.write(&tenant, three, NOW).await,
            Err(WriteError::TooManyMetrics { count: 3, max: 2 })
        ));
        assert!(matches!(
            pipeline.write(&tenant, vec![], NOW).await,
            Err(WriteError::EmptyBatch)
        ));
    }
}
