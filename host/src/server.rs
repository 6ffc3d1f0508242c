//! Builds a running server from a [`Config`]: opens storage, assembles the
//! pipelines and the router, binds the listener, starts background work,
//! and shuts all of it down in order. Used by `main` and by the end-to-end
//! tests, so tests run exactly what production runs.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::auth::Verifier;
use crate::config::{Config, LifecycleConfig, StorageBackend};
use crate::http::auth::AccessControl;
use crate::http::shutdown::GraceDeadline;
use crate::http::tls::{TlsError, load_tls_acceptor};
use crate::http::{self, AppState, Lifecycle};
use crate::limits::{
    CardinalityStage, CardinalityTracker, FileSketchStore, LimitsConfig, MemorySketchStore,
    RateLimiter, SketchStore,
};
use crate::model::{TenantId, Validator};
use crate::pipeline::{ReadPipeline, WritePipeline};
use crate::plugins::PluginRuntime;
use crate::plugins::runtime::BackgroundLoad;
use crate::plugins::stage::PluginWriteStage;
use crate::storage::rocks::{RocksOptions, RocksStore};
use crate::storage::{MetricsStore, StorageError};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open storage: {0}")]
    Storage(#[from] StorageError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("{0}")]
    Unsupported(String),
    #[error("cannot start the plugin runtime: {0}")]
    Plugins(#[from] crate::plugins::PluginAdminError),
    /// A configuration problem with keys (exit code 2, like other config errors).
    #[error(transparent)]
    Auth(#[from] crate::auth::KeyError),
    #[error("cannot load cardinality sketches: {0}")]
    Sketches(#[from] crate::limits::SketchStoreError),
}

/// Opens the storage backend the configuration names.
pub async fn open_store(config: &Config) -> Result<Arc<dyn MetricsStore>, StartError> {
    let options = RocksOptions {
        sync_writes: config.storage.sync_writes,
        ..RocksOptions::default()
    };
    let store = match config.storage.backend {
        StorageBackend::Embedded => {
            let dir = config.data_dir.clone();
            std::fs::create_dir_all(&dir).map_err(|e| {
                StartError::Storage(StorageError::Unavailable {
                    message: format!("cannot create data dir {}: {e}", dir.display()),
                    retry_after_secs: 0,
                })
            })?;
            // Opening loads the series map: blocking work.
            tokio::task::spawn_blocking(move || RocksStore::open(&dir, options))
                .await
                .map_err(|e| StartError::Storage(StorageError::Internal(e.to_string())))??
        }
        StorageBackend::Memory => RocksStore::in_memory_with(options)?,
        StorageBackend::Clickhouse => {
            let store =
                crate::storage::clickhouse::ClickHouseStore::open(&config.storage.clickhouse)
                    .await?;
            return Ok(Arc::new(store));
        }
    };
    Ok(Arc::new(store))
}

/// Everything handlers share, built from the config and an open store.
/// Subsystems that join the request path (auth, limits, plugins) are
/// assembled here: write stages go into the write pipeline in order
/// (plugin validators, enrichers, then limits).
pub async fn build_state(
    config: &Config,
    store: Arc<dyn MetricsStore>,
    plugins: Arc<PluginRuntime>,
) -> Result<AppState, StartError> {
    let default_tenant = TenantId::new(&config.default_tenant)
        .map_err(|e| StartError::Unsupported(format!("default_tenant: {e}")))?;
    let (access, rates, cardinality) = auth_and_limits(config, &default_tenant).await?;
    let mut writes = WritePipeline::new(
        Validator::new(config.validation.clone()),
        store.clone(),
        config.api.max_metrics_per_request,
    )
    // Plugin validators and enrichers run before the limits count series.
    .with_stage(Arc::new(PluginWriteStage::new(plugins.clone())));
    if config.limits.enabled {
        writes = writes.with_stage(Arc::new(CardinalityStage::new(cardinality.clone(), rates)));
    }
    let reads = ReadPipeline::new(store.clone(), config.query.limits())
        .with_aggregation_plugins(plugins.clone());
    Ok(AppState {
        writes: Arc::new(writes),
        reads: Arc::new(reads),
        store,
        api: Arc::new(config.api.clone()),
        default_tenant,
        lifecycle: Arc::new(Lifecycle::default()),
        access,
        cardinality,
        cardinality_top_n: config.limits.cardinality.report_top_n,
        promql: config.promql.limits(),
        plugins,
    })
}

/// The token verifier (or the anonymous tenant), the rate buckets and the
/// cardinality tracker with its persisted sketches.
async fn auth_and_limits(
    config: &Config,
    default_tenant: &TenantId,
) -> Result<(AccessControl, Arc<RateLimiter>, Arc<CardinalityTracker>), StartError> {
    let limits = if config.limits.enabled {
        config.limits.clone()
    } else {
        tracing::warn!("limits.enabled = false: no rate or cardinality limits for any tenant");
        LimitsConfig::disabled()
    };
    let rates = Arc::new(RateLimiter::new(Arc::new(limits)));
    let access = if config.auth.enabled {
        AccessControl::new(
            Arc::new(Verifier::from_config(&config.auth)?),
            rates.clone(),
        )
    } else {
        tracing::warn!(tenant = %default_tenant,
            "auth.enabled = false: every request acts as the default tenant with every scope");
        AccessControl::disabled(default_tenant.clone(), rates.clone())
    };
    let sketches: Arc<dyn SketchStore> = match config.storage.backend {
        StorageBackend::Memory => Arc::new(MemorySketchStore::default()),
        StorageBackend::Embedded => {
            Arc::new(FileSketchStore::open(config.data_dir.join("cardinality"))?)
        }
        // Pods share sketches, so limits count series from every pod.
        StorageBackend::Clickhouse => Arc::new(crate::cluster::ClickHouseSketchStore::new(
            crate::storage::clickhouse::open_shared_state(&config.storage.clickhouse).await?,
        )),
    };
    let cardinality =
        Arc::new(CardinalityTracker::open(sketches, &config.limits.cardinality).await?);
    Ok((access, rates, cardinality))
}

/// The plugin runtime with its chains; its plugins compile in the
/// background (see `PluginRuntime::start`), so the listener is bound
/// without waiting for them. On ClickHouse its uploads and chains live
/// there and a background task keeps this pod in step with the others.
async fn start_plugins(
    config: &Config,
) -> Result<(Arc<PluginRuntime>, BackgroundLoad), StartError> {
    if config.storage.backend != StorageBackend::Clickhouse {
        return Ok(PluginRuntime::start(config, None).await?);
    }
    let shared = crate::storage::clickhouse::open_shared_state(&config.storage.clickhouse).await?;
    let repository = Arc::new(crate::cluster::ClickHousePluginRepository::new(shared));
    let (plugins, watcher) = PluginRuntime::start(config, Some(repository.clone())).await?;
    crate::cluster::spawn_plugin_sync(
        &plugins,
        repository,
        config.storage.clickhouse.shared_state_poll.get(),
    );
    Ok((plugins, watcher))
}

/// A server that is accepting requests.
pub struct RunningServer {
    local_addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    metrics_serve: Option<JoinHandle<std::io::Result<()>>>,
    state: AppState,
    shutdown: watch::Sender<bool>,
    serve: JoinHandle<std::io::Result<()>>,
    retention: Option<JoinHandle<()>>,
    _plugin_loading: BackgroundLoad,
    lifecycle: LifecycleConfig,
    sketch_persister: JoinHandle<()>,
}

/// Resolves when `stop` turns true (or its sender is gone).
fn stop_signal(stop: &watch::Receiver<bool>) -> impl Future<Output = ()> + use<> {
    let mut stop = stop.clone();
    async move {
        let _ = stop.wait_for(|stop| *stop).await;
    }
}

/// The listener for `GET /metrics` on `telemetry.metrics_listen`, apart
/// from the API port: the series name tenants and plugins, so only the
/// network that can reach this address (loopback by default) sees them.
async fn bind_metrics_listener(config: &Config) -> Result<Option<TcpListener>, StartError> {
    let Some(addr) = config.telemetry.metrics_listen.address() else {
        return Ok(None);
    };
    TcpListener::bind(addr)
        .await
        .map(Some)
        .map_err(|source| StartError::Bind { addr, source })
}

fn spawn_metrics_listener(
    listener: TcpListener,
    config: &Config,
    stop: &watch::Receiver<bool>,
) -> JoinHandle<std::io::Result<()>> {
    let limits = crate::config::ServerConfig {
        // Scrapers are few; the API's connections are not spent on them.
        max_connections: METRICS_MAX_CONNECTIONS,
        ..config.server.clone()
    };
    let stopped = stop_signal(stop);
    tokio::spawn(async move {
        let router = http::self_metrics::metrics_router();
        http::serve::serve(listener, None, router, &limits, stopped).await
    })
}

/// Connections the metrics listener serves at once.
const METRICS_MAX_CONNECTIONS: usize = 64;

/// Opens storage from `config` and starts serving.
pub async fn start(config: Config) -> Result<RunningServer, StartError> {
    let store = open_store(&config).await?;
    start_with_store(config, store).await
}

/// Starts serving on an already open store (the store is closed on shutdown).
pub async fn start_with_store(
    config: Config,
    store: Arc<dyn MetricsStore>,
) -> Result<RunningServer, StartError> {
    // Every backend is measured the same way, outside the backend.
    let store = crate::telemetry::InstrumentedStore::wrap(store);
    crate::telemetry::metrics().set_label_budget(config.telemetry.max_label_values);
    let tls = match (&config.tls.cert_path, &config.tls.key_path) {
        (Some(cert), Some(key)) => Some(load_tls_acceptor(cert, key)?),
        _ => None,
    };
    let (plugins, plugin_loading) = start_plugins(&config).await?;
    let state = build_state(&config, store.clone(), plugins).await?;
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;
    let local_addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: config.listen,
        source,
    })?;
    let metrics_listener = bind_metrics_listener(&config).await?;
    let metrics_addr = match &metrics_listener {
        Some(listener) => Some(listener.local_addr().map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?),
        None => None,
    };
    let (shutdown, stop) = watch::channel(false);
    let app = http::router(state.clone());
    let stopped = stop_signal(&stop);
    let limits = config.server.clone();
    let serve =
        tokio::spawn(async move { http::serve::serve(listener, tls, app, &limits, stopped).await });
    let metrics_serve =
        metrics_listener.map(|listener| spawn_metrics_listener(listener, &config, &stop));
    let retention = config.retention.period.map(|period| {
        crate::retention::spawn_sweeper(
            store,
            period.get(),
            config.retention.sweep_interval.get(),
            stop,
        )
    });
    let sketch_persister = state
        .cardinality
        .spawn_persister(config.limits.cardinality.persist_interval.get());
    state.lifecycle.mark_started();
    tracing::info!(%local_addr, metrics = ?metrics_addr, backend = ?config.storage.backend, tls = config.tls.enabled(), "luminate is serving");
    Ok(RunningServer {
        local_addr,
        metrics_addr,
        metrics_serve,
        state,
        shutdown,
        serve,
        retention,
        _plugin_loading: plugin_loading,
        lifecycle: config.lifecycle.clone(),
        sketch_persister,
    })
}

impl RunningServer {
    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Where `GET /metrics` is served, unless `telemetry.metrics_listen = "off"`.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Stops in order (see `http::shutdown`): readiness turns false, the
    /// listener keeps accepting for `lifecycle.drain_delay`, then stops;
    /// in-flight requests finish, background work stops, buffers are
    /// flushed and storage is closed, all within `lifecycle.grace_period`.
    /// Requests still running at the deadline are abandoned.
    pub async fn shutdown(self) -> Result<(), StorageError> {
        let deadline = GraceDeadline::start(self.lifecycle.grace_period.get());
        self.state.lifecycle.mark_draining();
        let drain_delay = self.lifecycle.drain_delay();
        tracing::info!(
            grace_period_ms = self.lifecycle.grace_period.get().as_millis() as u64,
            drain_delay_ms = drain_delay.as_millis() as u64,
            "shutting down: readiness is false"
        );
        tokio::time::sleep(drain_delay).await;
        let _ = self.shutdown.send(true);
        tracing::info!("stopped accepting connections; finishing in-flight requests");
        let mut serve = self.serve;
        match tokio::time::timeout_at(deadline.instant(), &mut serve).await {
            Ok(Ok(Ok(()))) => tracing::info!("in-flight requests finished"),
            Ok(Ok(Err(e))) => tracing::warn!(error = %e, "HTTP server stopped with an error"),
            Ok(Err(e)) => tracing::error!(error = %e, "HTTP server task failed"),
            Err(_) => {
                tracing::warn!(
                    in_flight = crate::telemetry::metrics().http.in_flight.get(),
                    "grace period over with requests in flight; abandoning them"
                );
                serve.abort();
            }
        }
        if let Some(mut metrics_serve) = self.metrics_serve
            && tokio::time::timeout_at(deadline.instant(), &mut metrics_serve)
                .await
                .is_err()
        {
            metrics_serve.abort();
        }
        if let Some(retention) = self.retention {
            let _ = tokio::time::timeout_at(deadline.instant(), retention).await;
        }
        self.sketch_persister.abort();
        if let Err(e) = self.state.cardinality.persist().await {
            tracing::error!(error = %e, "could not persist cardinality sketches at shutdown");
        }
        // Flushing gets at least a moment even when draining used the grace period.
        let flush_time = deadline.remaining_at_least(std::time::Duration::from_secs(2));
        match tokio::time::timeout(flush_time, self.state.store.close()).await {
            Ok(Ok(())) => {
                tracing::info!("storage closed");
                Ok(())
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(StorageError::Unavailable {
                message: format!("storage did not close within {flush_time:?}"),
                retry_after_secs: 0,
            }),
        }
    }
}
