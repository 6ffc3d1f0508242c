//! The ClickHouse backend: many stateless Luminate pods over one ClickHouse
//! server or cluster.
//!
//! - [`schema`]: tables, versioned migrations, cluster DDL.
//! - [`sql`]: SQL text with every value escaped.
//! - [`rows`]: the row layout and its RowBinary encoding.
//! - [`writer`]: the batching writer (acknowledges only inserted rows).
//! - [`query`]: aggregate, range and rate queries, computed in SQL.
//! - [`discovery`], [`retention`], [`health`]: the rest of the trait.
//! - [`shared_state`]: plugins, bindings and sketches shared by all pods.
//! - `testing`: real `clickhouse-server` processes for tests.

mod discovery;
mod error;
mod health;
mod query;
mod retention;
mod rows;
mod schema;
mod shared_state;
mod sql;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
#[cfg(test)]
mod tests;
mod writer;

pub use schema::ServerVersion;
pub use shared_state::{ChangeToken, Document, DocumentKind, SharedState};

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use clickhouse::Row;
use serde::Deserialize;

use self::error::{map_error, timed_out, unavailable};
use self::schema::{DdlTargets, Tables};
use self::sql::Sql;
use self::writer::{BatchWriter, WriterSettings};
use crate::config::ClickHouseConfig;
use crate::model::{
    AggregateQuery, AggregateResult, Metric, QueryBudget, RangeQuery, RateQuery, SeriesResult,
    TenantId,
};
use crate::storage::{MetricsStore, StorageError};

pub struct ClickHouseStore {
    client: clickhouse::Client,
    tables: Tables,
    ddl: DdlTargets,
    writer: BatchWriter,
    version: ServerVersion,
    request_timeout: Duration,
    closed: AtomicBool,
    shared_state: Arc<SharedState>,
}

#[derive(Row, Deserialize)]
struct VersionRow {
    version: String,
}

impl ClickHouseStore {
    /// Connects, reads the server version and migrates the schema. Fails as
    /// `Unavailable` when ClickHouse does not answer.
    pub async fn open(config: &ClickHouseConfig) -> Result<Self, StorageError> {
        let client = make_client(config, &config.url);
        let request_timeout = config.request_timeout.get();
        let version_text =
            wait_for_server(&client, request_timeout, config.startup_wait.get()).await?;
        let version = ServerVersion::parse(&version_text).ok_or_else(|| {
            StorageError::Internal(format!("unrecognised ClickHouse version {version_text:?}"))
        })?;
        let cluster = config.cluster.as_deref().filter(|name| !name.is_empty());
        let (ddl, tables) = topology(config, &client);
        schema::migrate(&ddl, &tables, cluster, version).await?;

        let mut insert_settings = Vec::new();
        if ddl.is_cluster() {
            // The insert returns only when every shard has its rows, so a 200
            // means inserted, not "spooled on this node for later".
            insert_settings.push(("insert_distributed_sync".to_owned(), "1".to_owned()));
        }
        let writer = BatchWriter::start(
            client.clone(),
            WriterSettings {
                flush_max_rows: config.flush_max_rows.max(1),
                flush_interval: config.flush_interval.get(),
                max_concurrent_flushes: config.max_concurrent_flushes.max(1),
                request_timeout,
                insert_sql: format!(
                    "INSERT INTO {} ({}) FORMAT RowBinary",
                    tables.samples,
                    rows::INSERT_COLUMNS
                ),
                insert_settings,
            },
        );
        tracing::info!(version = %version_text, cluster = ?cluster, "ClickHouse storage ready");
        let shared_state = Arc::new(SharedState::new(
            client.clone(),
            tables.shared_state.clone(),
            request_timeout,
        ));
        Ok(Self {
            shared_state,
            client,
            tables,
            ddl,
            writer,
            version,
            request_timeout,
            closed: AtomicBool::new(false),
        })
    }

    /// Rows accepted by the writer and not yet inserted: for telemetry.
    pub fn queued_rows(&self) -> usize {
        self.writer.queued_rows()
    }

    /// Plugins, bindings and sketches every pod shares, in the same
    /// ClickHouse; the plugin repository and sketch store build on it.
    pub fn shared_state(&self) -> Arc<SharedState> {
        self.shared_state.clone()
    }

    pub fn server_version(&self) -> ServerVersion {
        self.version
    }

    fn check_open(&self) -> Result<(), StorageError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(unavailable("the ClickHouse store is closed"));
        }
        Ok(())
    }

    async fn fetch_all<T>(&self, sql: Sql, doing: &str) -> Result<Vec<T>, StorageError>
    where
        T: clickhouse::RowOwned + clickhouse::RowRead,
    {
        self.check_open()?;
        self.fetch_all_on(&self.client, sql, doing).await
    }

    /// A read bounded by the query's budget: ClickHouse stops reading past
    /// `max_points_scanned` rows (every row is one point), server-side.
    async fn fetch_all_within<T>(
        &self,
        sql: Sql,
        doing: &str,
        budget: &QueryBudget,
    ) -> Result<Vec<T>, StorageError>
    where
        T: clickhouse::RowOwned + clickhouse::RowRead,
    {
        self.check_open()?;
        let mut query = self.client.query_raw(sql.as_str());
        if budget.max_points_scanned < u64::MAX {
            query = query
                .with_setting("max_rows_to_read", budget.max_points_scanned.to_string())
                .with_setting("read_overflow_mode", "throw");
        }
        match tokio::time::timeout(self.request_timeout, query.fetch_all::<T>()).await {
            Ok(result) => result.map_err(|e| error::map_query_error(e, doing, Some(budget))),
            Err(_) => Err(timed_out(doing)),
        }
    }

    async fn fetch_all_on<T>(
        &self,
        client: &clickhouse::Client,
        sql: Sql,
        doing: &str,
    ) -> Result<Vec<T>, StorageError>
    where
        T: clickhouse::RowOwned + clickhouse::RowRead,
    {
        let fetch = client.query_raw(sql.as_str()).fetch_all::<T>();
        match tokio::time::timeout(self.request_timeout, fetch).await {
            Ok(result) => result.map_err(|e| map_error(e, doing)),
            Err(_) => Err(timed_out(doing)),
        }
    }

    async fn execute_on(
        &self,
        client: &clickhouse::Client,
        sql: Sql,
        doing: &str,
    ) -> Result<(), StorageError> {
        // Mutations are awaited by polling `system.mutations` (retention.rs),
        // which works on every version and keeps this call short.
        let query = client.query_raw(sql.as_str());
        match tokio::time::timeout(self.request_timeout, query.execute()).await {
            Ok(result) => result.map_err(|e| map_error(e, doing)),
            Err(_) => Err(timed_out(doing)),
        }
    }
}

/// Where DDL goes and what the tables are called, from the configuration.
fn topology(config: &ClickHouseConfig, client: &clickhouse::Client) -> (DdlTargets, Tables) {
    let ddl = match config.cluster.as_deref().filter(|name| !name.is_empty()) {
        None => DdlTargets::Single(client.clone()),
        Some(name) if config.shard_urls.is_empty() => DdlTargets::OnCluster {
            client: client.clone(),
            cluster: name.to_owned(),
        },
        Some(_) => DdlTargets::Shards(
            config
                .shard_urls
                .iter()
                .map(|url| make_client(config, url))
                .collect(),
        ),
    };
    let tables = Tables::new(&config.database, ddl.is_cluster());
    (ddl, tables)
}

/// The shared state alone (plugins, bindings, sketches), for the subsystems
/// that keep it in ClickHouse; creates the schema when needed.
pub async fn open_shared_state(
    config: &ClickHouseConfig,
) -> Result<Arc<SharedState>, StorageError> {
    let client = make_client(config, &config.url);
    let request_timeout = config.request_timeout.get();
    let version_text = wait_for_server(&client, request_timeout, config.startup_wait.get()).await?;
    let version = ServerVersion::parse(&version_text).ok_or_else(|| {
        StorageError::Internal(format!("unrecognised ClickHouse version {version_text:?}"))
    })?;
    let cluster = config.cluster.as_deref().filter(|name| !name.is_empty());
    let (ddl, tables) = topology(config, &client);
    schema::migrate(&ddl, &tables, cluster, version).await?;
    Ok(Arc::new(SharedState::new(
        client,
        tables.shared_state,
        request_timeout,
    )))
}

/// Reads `version()`, retrying while ClickHouse is unavailable for up to
/// `wait`: a pod may start before the server does.
async fn wait_for_server(
    client: &clickhouse::Client,
    request_timeout: Duration,
    wait: Duration,
) -> Result<String, StorageError> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut pause = Duration::from_millis(100);
    loop {
        let attempt = tokio::time::timeout(
            request_timeout,
            client
                .query_raw("SELECT version() AS version")
                .fetch_one::<VersionRow>(),
        )
        .await
        .map_err(|_| timed_out("read server version"))
        .and_then(|r| r.map_err(|e| map_error(e, "read server version")));
        match attempt {
            Ok(row) => return Ok(row.version),
            Err(StorageError::Unavailable { message, .. })
                if tokio::time::Instant::now() + pause < deadline =>
            {
                tracing::warn!(reason = %message, "waiting for ClickHouse");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
            Err(e) => return Err(e),
        }
    }
}

fn make_client(config: &ClickHouseConfig, url: &str) -> clickhouse::Client {
    // Validation asks the server to describe tables with a setting 18.16
    // does not know; rows here are encoded and decoded by hand-checked types.
    // The server stops a query at the same bound the client waits, so a
    // query the client gave up on does not keep burning ClickHouse's CPU.
    let max_seconds = config.request_timeout.get().as_secs().max(1);
    clickhouse::Client::default()
        .with_url(url)
        .with_user(&config.user)
        .with_password(&config.password)
        .with_validation(false)
        .with_compression(if config.compression {
            clickhouse::Compression::Lz4
        } else {
            clickhouse::Compression::None
        })
        .with_setting("max_execution_time", max_seconds.to_string())
}

#[async_trait]
impl MetricsStore for ClickHouseStore {
    async fn write(&self, tenant: &TenantId, metrics: Vec<Metric>) -> Result<(), StorageError> {
        self.check_open()?;
        let mut bytes = Vec::with_capacity(metrics.len() * 96);
        for metric in &metrics {
            rows::encode_row(&mut bytes, tenant, metric);
        }
        self.writer.write(metrics.len(), bytes).await
    }

    async fn query_aggregate(
        &self,
        tenant: &TenantId,
        query: &AggregateQuery,
    ) -> Result<AggregateResult, StorageError> {
        query::aggregate(self, tenant, query).await
    }

    async fn query_range(
        &self,
        tenant: &TenantId,
        query: &RangeQuery,
    ) -> Result<SeriesResult, StorageError> {
        query::range(self, tenant, query).await
    }

    async fn query_rate(
        &self,
        tenant: &TenantId,
        query: &RateQuery,
    ) -> Result<SeriesResult, StorageError> {
        query::rate(self, tenant, query).await
    }

    async fn list_metrics(&self, tenant: &TenantId) -> Result<Vec<String>, StorageError> {
        discovery::metrics(self, tenant).await
    }

    async fn list_dimension_keys(
        &self,
        tenant: &TenantId,
        metric: &str,
    ) -> Result<Vec<String>, StorageError> {
        discovery::dimension_keys(self, tenant, metric).await
    }

    async fn list_dimension_values(
        &self,
        tenant: &TenantId,
        metric: &str,
        key: &str,
        limit: usize,
    ) -> Result<Vec<String>, StorageError> {
        discovery::dimension_values(self, tenant, metric, key, limit).await
    }

    async fn delete_before(
        &self,
        tenant: &TenantId,
        metric: &str,
        before_ms: i64,
    ) -> Result<(), StorageError> {
        self.check_open()?;
        retention::delete_before(self, tenant, metric, before_ms).await
    }

    async fn enforce_retention(&self, cutoff_ms: i64) -> Result<(), StorageError> {
        self.check_open()?;
        retention::enforce(self, cutoff_ms).await
    }

    async fn health(&self) -> Result<(), StorageError> {
        self.check_open()?;
        health::check(self).await
    }

    async fn close(&self) -> Result<(), StorageError> {
        self.closed.store(true, Ordering::Release);
        self.writer.close().await;
        Ok(())
    }
}
