//! Storage: one trait, two backends.
//!
//! Invariant: every operation that touches data takes a [`TenantId`], and a
//! backend reads and writes only that tenant's data. The one tenant-agnostic
//! call, [`MetricsStore::enforce_retention`], deletes by age and returns no
//! data. Backends never see wasm or HTTP types.

pub mod clickhouse;
pub mod compute;
#[cfg(any(test, feature = "testing"))]
pub mod conformance;
mod error;
pub mod rocks;

pub use error::StorageError;

use async_trait::async_trait;

use crate::model::{
    AggregateQuery, AggregateResult, Metric, RangeQuery, RateQuery, SeriesResult, TenantId,
};

/// The operations the write, query, discovery and retention paths need.
#[async_trait]
pub trait MetricsStore: Send + Sync + 'static {
    /// Stores validated metrics for `tenant`. When this returns `Ok`, the
    /// metrics are durable: they survive a `kill -9` of the server.
    async fn write(&self, tenant: &TenantId, metrics: Vec<Metric>) -> Result<(), StorageError>;

    async fn query_aggregate(
        &self,
        tenant: &TenantId,
        query: &AggregateQuery,
    ) -> Result<AggregateResult, StorageError>;

    async fn query_range(
        &self,
        tenant: &TenantId,
        query: &RangeQuery,
    ) -> Result<SeriesResult, StorageError>;

    async fn query_rate(
        &self,
        tenant: &TenantId,
        query: &RateQuery,
    ) -> Result<SeriesResult, StorageError>;

    /// Metric names of `tenant`, sorted.
    async fn list_metrics(&self, tenant: &TenantId) -> Result<Vec<String>, StorageError>;

    /// Dimension keys seen on `metric`, sorted.
    async fn list_dimension_keys(
        &self,
        tenant: &TenantId,
        metric: &str,
    ) -> Result<Vec<String>, StorageError>;

    /// Up to `limit` distinct values of `key` on `metric`, sorted.
    async fn list_dimension_values(
        &self,
        tenant: &TenantId,
        metric: &str,
        key: &str,
        limit: usize,
    ) -> Result<Vec<String>, StorageError>;

    /// Deletes `tenant`'s points of `metric` with timestamp `< before_ms`.
    async fn delete_before(
        &self,
        tenant: &TenantId,
        metric: &str,
        before_ms: i64,
    ) -> Result<(), StorageError>;

    /// Deletes every tenant's points older than `cutoff_ms`: the background
    /// retention sweep. It reads nothing back.
    async fn enforce_retention(&self, cutoff_ms: i64) -> Result<(), StorageError>;

    /// Whether the backend answers right now (readiness).
    async fn health(&self) -> Result<(), StorageError>;

    /// Flushes buffers and releases resources; later calls fail.
    async fn close(&self) -> Result<(), StorageError>;
}
