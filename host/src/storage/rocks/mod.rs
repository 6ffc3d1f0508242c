//! The embedded RocksDB backend: the zero-setup default.
//!
//! Design in one paragraph (the key layout is in `keys.rs` and
//! docs/architecture.md): a series is identified by the hash of its tenant,
//! metric and sorted dimensions and gets a u64 id; an inverted index maps
//! (metric, key, value) to series ids. Points of one write batch are stored
//! as one columnar block per (tenant, metric, hour), so ingest costs one
//! RocksDB put per batch and bucket, and a query scans only its metric's
//! buckets in range, then maps series ids to groups through the postings.
//! A new series' index entries go into the same `WriteBatch` as the first
//! points that reference it, so no acknowledged point can outlive its series.
//! All RocksDB work runs on tokio's blocking pool.

mod block;
mod catalog;
mod discovery;
mod keys;
mod open;
mod query;
mod retention;
mod select;
mod series;
mod sid_map;
mod write;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use rocksdb::{ColumnFamily, DB, Env, WriteOptions};
use tokio::sync::RwLock;

use self::catalog::CatalogCache;
use self::series::SeriesRegistry;
use super::{MetricsStore, StorageError};
use crate::model::{
    AggregateQuery, AggregateResult, Metric, RangeQuery, RateQuery, SeriesResult, TenantId,
};

/// Tuning for [`RocksStore`]. `Default` suits a small server.
#[derive(Clone, Debug)]
pub struct RocksOptions {
    /// fsync the WAL before a write returns (RocksDB group-commits
    /// concurrent writers into one fsync). Without it a write is in the WAL
    /// (OS page cache) when it returns: it survives `kill -9` of the process,
    /// not a power loss.
    pub sync_writes: bool,
    /// Shared LRU cache for data, index and filter blocks.
    pub block_cache_bytes: usize,
    /// Total memtable budget across column families.
    pub write_buffer_bytes: usize,
    /// How many catalog keys (metric names, dimension keys/values) to
    /// remember as already written.
    pub catalog_cache_entries: usize,
}

impl Default for RocksOptions {
    fn default() -> Self {
        Self {
            sync_writes: false,
            block_cache_bytes: 128 << 20,
            write_buffer_bytes: 256 << 20,
            catalog_cache_entries: 200_000,
        }
    }
}

/// A [`MetricsStore`] on RocksDB, on disk or in memory.
pub struct RocksStore {
    /// `None` once closed. Every operation holds a read guard while it runs,
    /// so `close` waits for in-flight work before releasing the database.
    state: Arc<RwLock<Option<Inner>>>,
}

pub(crate) struct Inner {
    db: DB,
    series: SeriesRegistry,
    catalog: CatalogCache,
    sync_writes: bool,
    /// High bits of every block sequence number; see `open::next_boot`.
    boot: u64,
    block_seq: AtomicU64,
    /// Serialises deletes: two concurrent rewrites of one edge bucket would
    /// otherwise both re-insert its surviving points.
    maintenance: std::sync::Mutex<()>,
    /// Declared after `db` so it is dropped after it.
    env: Option<Env>,
}

impl Inner {
    fn cf(&self, name: &str) -> Result<&ColumnFamily, StorageError> {
        open::cf(&self.db, name)
    }

    fn write_options(&self) -> WriteOptions {
        let mut wo = WriteOptions::default();
        wo.set_sync(self.sync_writes);
        wo
    }

    fn next_block_seq(&self) -> u64 {
        (self.boot << 40) | self.block_seq.fetch_add(1, Ordering::Relaxed)
    }
}

impl RocksStore {
    /// Opens (or creates) a persistent store at `path`. Blocks while it loads
    /// the series map (about 1.6 CPU-s per million series); call it at
    /// startup or from a blocking context.
    pub fn open(path: impl AsRef<Path>, options: RocksOptions) -> Result<Self, StorageError> {
        Self::open_with_env(path.as_ref(), &options, None)
    }

    /// A store whose files live in memory (RocksDB's `MemEnv`): nothing
    /// survives dropping it. For development and tests.
    pub fn in_memory() -> Result<Self, StorageError> {
        Self::in_memory_with(RocksOptions::default())
    }

    /// `sync_writes` is ignored: there is no disk to sync to (and RocksDB's
    /// `MemEnv` cannot sync its WAL).
    pub fn in_memory_with(options: RocksOptions) -> Result<Self, StorageError> {
        let env = Env::mem_env()?;
        let options = RocksOptions {
            sync_writes: false,
            ..options
        };
        Self::open_with_env(&PathBuf::from("/luminate-in-memory"), &options, Some(env))
    }

    fn open_with_env(
        path: &Path,
        options: &RocksOptions,
        env: Option<Env>,
    ) -> Result<Self, StorageError> {
        let db = open::open_db(path, options, env.as_ref())?;
        let boot = open::next_boot(&db)?;
        let series = SeriesRegistry::new();
        open::load_series(&db, &series)?;
        let inner = Inner {
            db,
            series,
            catalog: CatalogCache::new(options.catalog_cache_entries),
            sync_writes: options.sync_writes,
            boot,
            block_seq: AtomicU64::new(0),
            maintenance: std::sync::Mutex::new(()),
            env,
        };
        Ok(Self {
            state: Arc::new(RwLock::new(Some(inner))),
        })
    }

    /// Number of distinct series across all tenants (known in memory).
    pub async fn series_count(&self) -> Result<usize, StorageError> {
        self.run(|inner| Ok(inner.series.len())).await
    }

    /// Runs blocking RocksDB work on the blocking pool while holding the
    /// state's read guard.
    async fn run<T, F>(&self, work: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T, StorageError> + Send + 'static,
    {
        let guard = self.state.clone().read_owned().await;
        tokio::task::spawn_blocking(move || match guard.as_ref() {
            Some(inner) => work(inner),
            None => Err(closed()),
        })
        .await
        .map_err(|e| StorageError::Internal(format!("storage task failed: {e}")))?
    }
}

fn closed() -> StorageError {
    StorageError::Unavailable {
        message: "the store is closed".into(),
        retry_after_secs: 5,
    }
}

#[async_trait]
impl MetricsStore for RocksStore {
    async fn write(&self, tenant: &TenantId, metrics: Vec<Metric>) -> Result<(), StorageError> {
        let tenant = tenant.clone();
        // The batch comes back to be freed on the request's task, usually
        // the thread that decoded it. Freed on the storage pool, each of
        // its strings was a cross-thread free, which costs mimalloc several
        // times a local one (docs/benchmarks.md, plugin ingest).
        let written = self
            .run(move |inner| write::write(inner, &tenant, &metrics).map(|()| metrics))
            .await?;
        drop(written);
        Ok(())
    }

    async fn query_aggregate(
        &self,
        tenant: &TenantId,
        query: &AggregateQuery,
    ) -> Result<AggregateResult, StorageError> {
        let (tenant, query) = (tenant.clone(), query.clone());
        self.run(move |inner| query::aggregate(inner, &tenant, &query))
            .await
    }

    async fn query_range(
        &self,
        tenant: &TenantId,
        query: &RangeQuery,
    ) -> Result<SeriesResult, StorageError> {
        let (tenant, query) = (tenant.clone(), query.clone());
        self.run(move |inner| query::range(inner, &tenant, &query))
            .await
    }

    async fn query_rate(
        &self,
        tenant: &TenantId,
        query: &RateQuery,
    ) -> Result<SeriesResult, StorageError> {
        let (tenant, query) = (tenant.clone(), query.clone());
        self.run(move |inner| query::rate(inner, &tenant, &query))
            .await
    }

    async fn list_metrics(&self, tenant: &TenantId) -> Result<Vec<String>, StorageError> {
        let tenant = tenant.clone();
        self.run(move |inner| discovery::metrics(inner, &tenant))
            .await
    }

    async fn list_dimension_keys(
        &self,
        tenant: &TenantId,
        metric: &str,
    ) -> Result<Vec<String>, StorageError> {
        let (tenant, metric) = (tenant.clone(), metric.to_owned());
        self.run(move |inner| discovery::keys(inner, &tenant, &metric))
            .await
    }

    async fn list_dimension_values(
        &self,
        tenant: &TenantId,
        metric: &str,
        key: &str,
        limit: usize,
    ) -> Result<Vec<String>, StorageError> {
        let (tenant, metric, key) = (tenant.clone(), metric.to_owned(), key.to_owned());
        self.run(move |inner| discovery::values(inner, &tenant, &metric, &key, limit))
            .await
    }

    async fn delete_before(
        &self,
        tenant: &TenantId,
        metric: &str,
        before_ms: i64,
    ) -> Result<(), StorageError> {
        let (tenant, metric) = (tenant.clone(), metric.to_owned());
        self.run(move |inner| retention::delete_before(inner, &tenant, &metric, before_ms))
            .await
    }

    async fn enforce_retention(&self, cutoff_ms: i64) -> Result<(), StorageError> {
        self.run(move |inner| retention::enforce(inner, cutoff_ms))
            .await
    }

    async fn health(&self) -> Result<(), StorageError> {
        self.run(|inner| {
            inner.db.get(b"meta/boot")?;
            Ok(())
        })
        .await
    }

    async fn close(&self) -> Result<(), StorageError> {
        let inner = self.state.write().await.take();
        let Some(inner) = inner else {
            return Ok(());
        };
        tokio::task::spawn_blocking(move || {
            if inner.env.is_some() {
                return Ok(()); // in memory: nothing to make durable
            }
            // Flushing memtables makes the next open fast (no WAL replay).
            inner.db.flush_wal(true)?;
            for name in [keys::CF_SERIES, keys::CF_INDEX, keys::CF_POINTS] {
                inner.db.flush_cf(inner.cf(name)?)?;
            }
            drop(inner);
            Ok(())
        })
        .await
        .map_err(|e| StorageError::Internal(format!("storage task failed: {e}")))?
    }
}
