//! A [`MetricsStore`] decorator that records storage metrics for any backend,
//! so backends stay free of telemetry code and every backend is measured the
//! same way.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;

use super::metrics::{StorageOperation, metrics};
use crate::model::{
    AggregateQuery, AggregateResult, Metric, RangeQuery, RateQuery, SeriesResult, TenantId,
};
use crate::storage::{MetricsStore, StorageError};

pub struct InstrumentedStore {
    inner: Arc<dyn MetricsStore>,
}

impl InstrumentedStore {
    pub fn new(inner: Arc<dyn MetricsStore>) -> Self {
        Self { inner }
    }

    /// Wraps `inner` and returns it as a trait object, ready for the router.
    pub fn wrap(inner: Arc<dyn MetricsStore>) -> Arc<dyn MetricsStore> {
        Arc::new(Self::new(inner))
    }
}

async fn timed<T>(
    operation: StorageOperation,
    call: impl Future<Output = Result<T, StorageError>>,
) -> Result<T, StorageError> {
    let started = Instant::now();
    let result = call.await;
    metrics()
        .storage
        .observe_query(operation, started.elapsed(), result.is_ok());
    result
}

#[async_trait]
impl MetricsStore for InstrumentedStore {
    async fn write(&self, tenant: &TenantId, batch: Vec<Metric>) -> Result<(), StorageError> {
        let points = batch.len() as u64;
        let storage = &metrics().storage;
        let timer = storage.write_duration.start_timer();
        let result = self.inner.write(tenant, batch).await;
        drop(timer);
        match &result {
            Ok(()) => storage.writes.inc_by(points),
            Err(_) => storage.write_errors.inc(),
        }
        result
    }

    async fn query_aggregate(
        &self,
        tenant: &TenantId,
        query: &AggregateQuery,
    ) -> Result<AggregateResult, StorageError> {
        timed(
            StorageOperation::Aggregate,
            self.inner.query_aggregate(tenant, query),
        )
        .await
    }

    async fn query_range(
        &self,
        tenant: &TenantId,
        query: &RangeQuery,
    ) -> Result<SeriesResult, StorageError> {
        timed(
            StorageOperation::Range,
            self.inner.query_range(tenant, query),
        )
        .await
    }

    async fn query_rate(
        &self,
        tenant: &TenantId,
        query: &RateQuery,
    ) -> Result<SeriesResult, StorageError> {
        timed(StorageOperation::Rate, self.inner.query_rate(tenant, query)).await
    }

    async fn list_metrics(&self, tenant: &TenantId) -> Result<Vec<String>, StorageError> {
        timed(
            StorageOperation::ListMetrics,
            self.inner.list_metrics(tenant),
        )
        .await
    }

    async fn list_dimension_keys(
        &self,
        tenant: &TenantId,
        metric: &str,
    ) -> Result<Vec<String>, StorageError> {
        timed(
            StorageOperation::ListDimensionKeys,
            self.inner.list_dimension_keys(tenant, metric),
        )
        .await
    }

    async fn list_dimension_values(
        &self,
        tenant: &TenantId,
        metric: &str,
        key: &str,
        limit: usize,
    ) -> Result<Vec<String>, StorageError> {
        timed(
            StorageOperation::ListDimensionValues,
            self.inner.list_dimension_values(tenant, metric, key, limit),
        )
        .await
    }

    async fn delete_before(
        &self,
        tenant: &TenantId,
        metric: &str,
        before_ms: i64,
    ) -> Result<(), StorageError> {
        timed(
            StorageOperation::DeleteBefore,
            self.inner.delete_before(tenant, metric, before_ms),
        )
        .await
    }

    async fn enforce_retention(&self, cutoff_ms: i64) -> Result<(), StorageError> {
        timed(
            StorageOperation::EnforceRetention,
            self.inner.enforce_retention(cutoff_ms),
        )
        .await
    }

    async fn health(&self) -> Result<(), StorageError> {
        self.inner.health().await
    }

    async fn close(&self) -> Result<(), StorageError> {
        self.inner.close().await
    }
}
