//! [`PluginRuntime`]: the one object the rest of the server talks to. It
//! ties the engine, the registry, the bindings, the repository and the
//! failure policy together, and runs every wasm call on the caller's task
//! while holding one of the engine's pool slots.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use dashmap::DashMap;
use futures::FutureExt as _;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::abi::PluginKind;
use super::bindings::{
    BindingError, BindingSet, BindingStore, Chain, FailurePolicy, ResolvedBinding,
};
use super::chain_input::ChainInput;
use super::config::PluginsConfig;
use super::engine::{
    CallContext, CallFailure, CallLimits, CapturedLogs, CompiledPlugin, EngineSettings, LoadError,
    PluginEngine,
};
use super::logging::LogBudget;
use super::manifest::{Manifest, ManifestError, content_hash, hash_version, is_valid_plugin_name};
use super::memory_budget::MemoryBudget;
use super::pending_uploads::{PendingUploads, Reservation};
use super::quarantine::{BindingHealth, HealthSnapshot, QUERY_PATH};
use super::registry::{LoadFailure, LoadedPlugin, PluginRegistry, PluginScope, PluginSource};
use super::repository::{PluginRepository, RepositoryError, StoredPlugin};
use super::series_cache::{Answer, Known, Lookup, SeriesCache};
use super::telemetry::PluginMetrics;
use super::wire::{Enrichment, Shown, WireBatch};
use crate::model::{Metric, RESERVED_PREFIX, TenantId, ValidationLimits, Validator};
use crate::telemetry::PluginHook;

/// The most `plugins.max_plugin_bytes` may be set to, and what the upload
/// route reads at most before the configured cap is checked.
pub const MAX_PLUGIN_BYTES: usize = 32 << 20;

/// Which cap on the number of plugins an upload hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginCountLimit {
    PerTenant(u32),
    Server(u32),
}

impl std::fmt::Display for PluginCountLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::PerTenant(max) => write!(
                f,
                "this tenant has {max} plugins installed; the limit is plugins.max_plugins_per_tenant = {max}"
            ),
            Self::Server(max) => write!(
                f,
                "the server has {max} plugins installed; the limit is plugins.max_plugins = {max}"
            ),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PluginAdminError {
    #[error(
        "plugin name {0:?} must be 1-64 characters of [a-z0-9_-], starting with a letter or digit"
    )]
    InvalidName(String),
    #[error("the plugin is {size} bytes; the limit is plugins.max_plugin_bytes = {limit}")]
    TooLarge { size: usize, limit: u64 },
    #[error("{0}; delete one first")]
    TooManyPlugins(PluginCountLimit),
    #[error("plugin {plugin:?} refused the binding's params: {message}")]
    RejectedParams { plugin: String, message: String },
    #[error("plugin {0:?} is not loaded yet: the server is starting and compiles its plugins")]
    Starting(String),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("memory_limit_bytes {asked} exceeds the server's ceiling of {max}")]
    MemoryCeiling { asked: u64, max: u64 },
    #[error("plugin {name:?} was refused: {error}")]
    Load { name: String, error: LoadError },
    #[error("plugin {0:?} is not installed")]
    NotFound(String),
    #[error("plugin {0:?} comes from the plugins directory; remove its file there instead")]
    ManagedByDirectory(String),
    #[error(transparent)]
    Bindings(#[from] BindingError),
    #[error(transparent)]
    Repository(#[from] RepositoryError),
    #[error("the plugin runtime failed to start: {0}")]
    Startup(String),
}

/// A plugin failure on the query path; names the plugin.
#[derive(Debug, thiserror::Error)]
#[error("aggregation plugin {plugin:?} {failure}")]
pub struct AggregationError {
    pub plugin: String,
    pub failure: CallFailure,
}

/// What one step of the write chain decided, per metric of its input.
#[derive(Debug, PartialEq)]
pub enum StepOutcome {
    /// Every metric goes on (also: fail-open after a failure).
    AcceptAll,
    /// `Some((code, message))` rejects the metric at that position.
    PerMetric(Vec<Option<(&'static str, String)>>),
    /// Fail-closed after a failure: every metric is rejected.
    RejectAll { code: &'static str, message: String },
}

/// What one enricher of the chain did.
#[derive(Debug, PartialEq)]
pub struct EnrichmentStep {
    pub outcome: StepOutcome,
    /// Some metric got dimensions: the packed batch is stale.
    pub changed: bool,
}

/// Rejection codes the write path reports.
pub mod codes {
    /// A validator's verdict.
    pub const PLUGIN_REJECTED: &str = "plugin_rejected";
    /// A fail-closed binding whose plugin failed.
    pub const PLUGIN_FAILED: &str = "plugin_failed";
    /// Enrichment would exceed the dimension limit.
    pub const TOO_MANY_DIMENSIONS: &str = "too_many_dimensions";
}

/// One listing row.
#[derive(Clone, Debug)]
pub struct PluginSummary {
    pub name: String,
    pub scope: PluginScope,
    pub kind: Option<PluginKind>,
    pub version: Option<String>,
    pub hash: Option<String>,
    pub source: Option<PluginSource>,
    pub description: Option<String>,
    pub limits: Option<CallLimits>,
    pub series_only: Option<bool>,
    pub loaded_at_ms: Option<i64>,
    pub health: HealthSnapshot,
    pub log_lines_dropped: u64,
    pub bindings: Vec<String>,
    pub last_load_failure: Option<LoadFailure>,
    pub load_failures: u64,
}

impl PluginSummary {
    pub fn status(&self) -> &'static str {
        match (
            &self.version,
            self.health.quarantined,
            &self.last_load_failure,
        ) {
            (None, _, _) => "failed",
            (Some(_), true, _) => "quarantined",
            (Some(_), false, Some(_)) => "active-with-failed-update",
            (Some(_), false, None) => "active",
        }
    }
}

/// Sample input of a dry run.
pub enum DryRunInput {
    Metrics(Vec<Metric>),
    Groups(Vec<Vec<(i64, f64)>>),
}

pub enum DryRunOutput {
    /// Per metric: `None` accept, `Some(reason)` reject.
    Verdicts(Vec<Option<String>>),
    /// Per metric: the dimensions the enricher would set.
    Enrichments(Vec<Vec<(String, String)>>),
    /// Per group: the aggregate.
    Values(Vec<f64>),
}

pub struct DryRunReport {
    pub plugin: String,
    pub version: String,
    pub kind: PluginKind,
    pub result: Result<DryRunOutput, CallFailure>,
    pub logs: CapturedLogs,
    pub duration: Duration,
}

pub struct PluginRuntime {
    engine: Arc<PluginEngine>,
    /// What live instances' memories may hold, in all and per tenant.
    memory_budget: Arc<MemoryBudget>,
    /// Compiles running at once (`max_concurrent_compiles`).
    compiles: Arc<Semaphore>,
    /// Every stored and directory plugin has been compiled (or refused)
    /// since start-up; until then a binding's missing plugin may still
    /// come.
    ready: AtomicBool,
    /// Each tenant's share of the engine's pool slots
    /// (`max_concurrent_calls_per_tenant`), taken before a slot.
    tenant_slots: DashMap<TenantId, Arc<Semaphore>>,
    registry: PluginRegistry,
    /// New names being uploaded, counted against the plugin caps.
    pending_uploads: PendingUploads,
    bindings: BindingStore,
    repository: Arc<dyn PluginRepository>,
    config: PluginsConfig,
    validator: Validator,
    pub(super) metrics: PluginMetrics,
    pub(super) series_cache: SeriesCache,
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl PluginRuntime {
    pub fn new(
        config: PluginsConfig,
        validation: ValidationLimits,
        repository: Arc<dyn PluginRepository>,
        prometheus: &prometheus::Registry,
    ) -> Result<Arc<Self>, PluginAdminError> {
        let engine = PluginEngine::new(&EngineSettings {
            max_instances: config.max_concurrent_calls,
            max_memory_bytes: config.max_memory_limit_bytes.max(config.memory_limit_bytes),
        })
        .map_err(|e| PluginAdminError::Startup(format!("{e:#}")))?;
        Ok(Arc::new(Self {
            engine: Arc::new(engine),
            memory_budget: Arc::new(MemoryBudget::new(
                config.memory_budget_bytes,
                config.memory_budget_per_tenant_bytes,
            )),
            compiles: Arc::new(Semaphore::new(
                config.max_concurrent_compiles.max(1) as usize
            )),
            ready: AtomicBool::new(true),
            tenant_slots: DashMap::new(),
            registry: PluginRegistry::default(),
            pending_uploads: PendingUploads::default(),
            bindings: BindingStore::new(config.defaults.clone(), config.tenants.clone()),
            repository,
            validator: Validator::new(validation),
            metrics: PluginMetrics::new(prometheus),
            series_cache: SeriesCache::new(config.series_cache_bytes),
            config,
        }))
    }

    /// The server's runtime: tenants' chains restored from the repository
    /// (on disk, or in memory for the memory backend) at once; uploads
    /// compiled and the plugins directory scanned (and watched, when
    /// configured) in the background, so the server listens and answers
    /// its probes while plugins compile. Until that is done
    /// [`is_ready`](Self::is_ready) is false and a binding whose plugin is
    /// not loaded yet fails with [`CallFailure::NotReady`].
    /// `shared` replaces the local repository when pods share one (ClickHouse).
    pub async fn start(
        config: &crate::config::Config,
        shared: Option<Arc<dyn PluginRepository>>,
    ) -> Result<(Arc<Self>, BackgroundLoad), PluginAdminError> {
        use crate::config::StorageBackend;
        let in_memory = config.storage.backend == StorageBackend::Memory;
        let repository: Arc<dyn PluginRepository> = match shared {
            Some(shared) => shared,
            None if in_memory => Arc::new(super::repository::MemoryPluginRepository::default()),
            None => Arc::new(super::repository::FsPluginRepository::new(
                PluginsConfig::store_dir(&config.data_dir),
            )),
        };
        let runtime = Self::new(
            config.plugins.clone(),
            config.validation.clone(),
            repository,
            prometheus::default_registry(),
        )?;
        runtime.ready.store(false, Ordering::Release);
        for (tenant, set) in runtime.repository.list_bindings().await? {
            runtime.bindings.set(tenant, set);
        }
        let stored = runtime.repository.list_plugins().await?;
        // The memory backend has no data directory to default to.
        let dir = match (&config.plugins.dir, in_memory) {
            (Some(dir), _) => Some(dir.clone()),
            (None, false) => Some(config.plugins.watched_dir(&config.data_dir)),
            (None, true) => None,
        }
        .filter(|_| config.plugins.watch);
        let watcher = Arc::new(std::sync::Mutex::new(None));
        let task = tokio::spawn({
            let runtime = runtime.clone();
            let watcher = watcher.clone();
            async move {
                let started = Instant::now();
                let count = stored.len();
                runtime.install_stored(stored).await;
                if let Some(dir) = dir {
                    match runtime.watch_directory(&dir).await {
                        Ok(started) => {
                            *watcher.lock().unwrap_or_else(|p| p.into_inner()) = Some(started);
                        }
                        Err(error) => {
                            tracing::error!(%error, dir = %dir.display(), "cannot watch the plugins directory");
                        }
                    }
                }
                runtime.ready.store(true, Ordering::Release);
                tracing::info!(
                    stored = count,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "plugins loaded"
                );
            }
        });
        Ok((runtime, BackgroundLoad { task, watcher }))
    }

    /// Start-up's plugins are all compiled (or refused).
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// While starting, the first fail-closed binding of `chain` whose
    /// plugin is not loaded yet. Fail-open ones need no answer: their
    /// metrics are written without the plugin.
    pub fn fail_closed_not_loaded(&self, tenant: &TenantId, chain: &Chain) -> Option<String> {
        if self.is_ready() {
            return None;
        }
        chain
            .validators
            .iter()
            .chain(chain.enrichers.iter())
            .filter(|binding| binding.on_failure == FailurePolicy::FailClosed)
            .find(|binding| self.registry.resolve(tenant, &binding.plugin).is_none())
            .map(|binding| binding.plugin.clone())
    }

    /// A runtime whose counters go to a registry of its own (tests, benches,
    /// several servers in one process).
    pub fn with_private_metrics(
        config: PluginsConfig,
        validation: ValidationLimits,
        repository: Arc<dyn PluginRepository>,
    ) -> Result<Arc<Self>, PluginAdminError> {
        Self::new(config, validation, repository, &prometheus::Registry::new())
    }

    pub(super) fn max_dimensions(&self) -> usize {
        self.validator.limits().max_dimensions
    }

    pub fn config(&self) -> &PluginsConfig {
        &self.config
    }

    /// Reinstalls uploaded plugins and tenants' chains from the repository.
    /// A plugin that no longer loads (e.g. after a server upgrade changed the
    /// ABI) is listed as failed; the others start.
    pub async fn restore(&self) -> Result<(), PluginAdminError> {
        self.install_stored(self.repository.list_plugins().await?)
            .await;
        for (tenant, set) in self.repository.list_bindings().await? {
            self.bindings.set(tenant, set);
        }
        Ok(())
    }

    /// Installs uploads kept in the repository. One that no longer loads is
    /// listed as failed (its install records why); the others start.
    async fn install_stored(&self, stored: Vec<StoredPlugin>) {
        for stored in stored {
            let _ = self
                .install(
                    stored.scope,
                    &stored.name,
                    stored.manifest,
                    stored.wasm,
                    PluginSource::Upload,
                )
                .await;
        }
    }

    /// Checks and compiles (off the request path) without installing.
    pub async fn prepare(
        &self,
        scope: PluginScope,
        name: &str,
        manifest: Manifest,
        wasm: Bytes,
        source: PluginSource,
    ) -> Result<LoadedPlugin, PluginAdminError> {
        if !is_valid_plugin_name(name) {
            return Err(PluginAdminError::InvalidName(
                name.chars().take(80).collect(),
            ));
        }
        let limit = self.config.max_plugin_bytes;
        if wasm.len() as u64 > limit {
            return Err(PluginAdminError::TooLarge {
                size: wasm.len(),
                limit,
            });
        }
        manifest.check()?;
        let memory_bytes = manifest
            .memory_limit_bytes
            .unwrap_or(self.config.memory_limit_bytes);
        if memory_bytes
            > self
                .config
                .max_memory_limit_bytes
                .max(self.config.memory_limit_bytes)
        {
            return Err(PluginAdminError::MemoryCeiling {
                asked: memory_bytes,
                max: self.config.max_memory_limit_bytes,
            });
        }
        let hash = content_hash(&wasm);
        let engine = self.engine.clone();
        let declared = manifest.kind;
        // wasmtime cannot cancel a compile, so its time and memory are
        // bounded by the size cap above and by how many run at once: the
        // others wait here, holding nothing but their upload's bytes.
        let permit = match self.compiles.clone().acquire_owned().await {
            Ok(permit) => permit,
            Err(_) => unreachable!("the compile semaphore is never closed"),
        };
        let compiled = tokio::task::spawn_blocking(move || {
            let compiled = engine.compile(&wasm, declared);
            drop(permit);
            compiled
        })
        .await
        .map_err(|e| LoadError::Compile(format!("the compiler panicked: {e}")))
        .and_then(|r| r);
        let compiled: CompiledPlugin = match compiled {
            Ok(compiled) => compiled,
            Err(error) => {
                tracing::warn!(plugin = name, scope = %scope.label(), %hash, %error, "plugin refused; the running version (if any) stays");
                self.metrics
                    .loads
                    .with_label_values(&[name, "failed"])
                    .inc();
                self.registry.record_failure(
                    &scope,
                    name,
                    LoadFailure {
                        hash,
                        error: error.to_string(),
                        at_ms: now_ms(),
                    },
                );
                return Err(PluginAdminError::Load {
                    name: name.to_owned(),
                    error,
                });
            }
        };
        let kind = compiled.kind();
        let series_only = kind != PluginKind::Aggregator
            && manifest
                .series_only
                .unwrap_or(compiled.declares_series_only());
        Ok(LoadedPlugin {
            id: LoadedPlugin::next_id(),
            scope,
            name: Arc::from(name),
            version: Arc::from(
                manifest
                    .version
                    .clone()
                    .unwrap_or_else(|| hash_version(&hash)),
            ),
            kind,
            series_only,
            hash,
            limits: CallLimits {
                memory_bytes,
                deadline: manifest.deadline().unwrap_or(self.config.deadline.get()),
            },
            source,
            description: manifest.description.clone(),
            loaded_at_ms: now_ms(),
            compiled,
            health: BindingHealth::default(),
            log_budget: Arc::new(LogBudget::new(self.config.log_lines_per_second)),
        })
    }

    /// Swaps a prepared version in; calls already running keep theirs.
    pub fn activate(&self, plugin: LoadedPlugin) -> Arc<LoadedPlugin> {
        let plugin = Arc::new(plugin);
        let previous = self.registry.install(plugin.clone());
        self.metrics
            .loads
            .with_label_values(&[&plugin.name, "installed"])
            .inc();
        tracing::info!(
            plugin = %plugin.name,
            scope = %plugin.scope.label(),
            version = %plugin.version,
            kind = %plugin.kind,
            previous = previous.as_ref().map(|p| p.version.to_string()),
            "plugin installed"
        );
        plugin
    }

    pub async fn install(
        &self,
        scope: PluginScope,
        name: &str,
        manifest: Manifest,
        wasm: impl Into<Bytes>,
        source: PluginSource,
    ) -> Result<Arc<LoadedPlugin>, PluginAdminError> {
        let prepared = self
            .prepare(scope, name, manifest, wasm.into(), source)
            .await?;
        Ok(self.activate(prepared))
    }

    /// An upload: checked and compiled, stored durably, then swapped in.
    pub async fn upload(
        &self,
        scope: PluginScope,
        name: &str,
        manifest: Manifest,
        wasm: impl Into<Bytes>,
    ) -> Result<Arc<LoadedPlugin>, PluginAdminError> {
        let wasm: Bytes = wasm.into();
        if let Some(current) = self.registry.get(&scope, name)
            && current.source == PluginSource::Directory
        {
            return Err(PluginAdminError::ManagedByDirectory(name.to_owned()));
        }
        let _place = self.reserve_plugin_place(&scope, name)?;
        let prepared = self
            .prepare(
                scope.clone(),
                name,
                manifest.clone(),
                wasm.clone(),
                PluginSource::Upload,
            )
            .await?;
        self.repository
            .put_plugin(&StoredPlugin {
                scope,
                name: name.to_owned(),
                manifest,
                wasm,
            })
            .await?;
        Ok(self.activate(prepared))
    }

    /// A new name must fit the tenant's and the server's plugin counts,
    /// uploads still compiling included; its place is held until the
    /// returned reservation drops.
    fn reserve_plugin_place(
        &self,
        scope: &PluginScope,
        name: &str,
    ) -> Result<Reservation<'_>, PluginAdminError> {
        let rows = self.registry.rows(None);
        if rows
            .iter()
            .any(|row| row.scope == *scope && row.name == name)
        {
            return Ok(self.pending_uploads.none());
        }
        self.pending_uploads.reserve(scope, name, |pending| {
            let per_tenant = self.config.max_plugins_per_tenant;
            if let PluginScope::Tenant(_) = scope
                && rows.iter().filter(|row| row.scope == *scope).count() + pending.in_scope
                    >= per_tenant as usize
            {
                return Err(PluginAdminError::TooManyPlugins(
                    PluginCountLimit::PerTenant(per_tenant),
                ));
            }
            let server = self.config.max_plugins;
            if rows.len() + pending.in_all >= server as usize {
                return Err(PluginAdminError::TooManyPlugins(PluginCountLimit::Server(
                    server,
                )));
            }
            Ok(())
        })
    }

    pub async fn delete(&self, scope: &PluginScope, name: &str) -> Result<(), PluginAdminError> {
        match self.registry.get(scope, name) {
            Some(current) if current.source == PluginSource::Directory => {
                return Err(PluginAdminError::ManagedByDirectory(name.to_owned()));
            }
            _ => {}
        }
        let stored = self.repository.delete_plugin(scope, name).await?;
        let loaded = self.registry.remove(scope, name);
        if !stored && loaded.is_none() {
            return Err(PluginAdminError::NotFound(name.to_owned()));
        }
        tracing::info!(plugin = name, scope = %scope.label(), "plugin deleted");
        Ok(())
    }

    /// Removes a directory plugin whose file is gone.
    pub(crate) fn unload_directory_plugin(&self, name: &str) {
        if self.registry.remove(&PluginScope::Global, name).is_some() {
            tracing::info!(plugin = name, "plugin file removed; plugin unloaded");
        }
    }

    pub(crate) fn registry(&self) -> &PluginRegistry {
        &self.registry
    }

    pub fn get(&self, scope: &PluginScope, name: &str) -> Option<Arc<LoadedPlugin>> {
        self.registry.get(scope, name)
    }

    pub fn resolve(&self, tenant: &TenantId, name: &str) -> Option<Arc<LoadedPlugin>> {
        self.registry.resolve(tenant, name)
    }

    /// Plugins visible to `tenant` (own + global), or all of them.
    pub fn list(&self, tenant: Option<&TenantId>) -> Vec<PluginSummary> {
        self.registry
            .rows(tenant)
            .into_iter()
            .map(|row| {
                let current = row.current.as_ref();
                PluginSummary {
                    bindings: self.bindings.bound_by(&row.name),
                    kind: current.map(|p| p.kind),
                    version: current.map(|p| p.version.to_string()),
                    hash: current.map(|p| p.hash.clone()),
                    source: current.map(|p| p.source),
                    description: current.and_then(|p| p.description.clone()),
                    limits: current.map(|p| p.limits.clone()),
                    series_only: current.map(|p| p.series_only),
                    loaded_at_ms: current.map(|p| p.loaded_at_ms),
                    // A tenant sees its own use of a plugin only.
                    health: current
                        .map(|p| match tenant {
                            Some(tenant) => p.health.snapshot_for(tenant),
                            None => p.health.snapshot(),
                        })
                        .unwrap_or_default(),
                    log_lines_dropped: current.map(|p| p.log_budget.dropped()).unwrap_or(0),
                    name: row.name,
                    scope: row.scope,
                    last_load_failure: row.last_failure,
                    load_failures: row.load_failures,
                }
            })
            .collect()
    }

    pub fn chain(&self, tenant: &TenantId) -> Arc<Chain> {
        self.bindings.chain(tenant)
    }

    /// Replaces `tenant`'s chain, effective from its next request. Every
    /// plugin named must be visible to the tenant and of the right kind,
    /// and must accept the binding's params: each is configured once with
    /// them here (an empty batch, under the tenant's share of the pool and
    /// the call's deadline), so params it reports as invalid are refused
    /// now, with its message, rather than failing every write later. Only
    /// an `invalid-config` answer refuses; a probe that fails otherwise
    /// (a plugin that loops even on nothing) says nothing about the params.
    ///
    /// The tenant's bindings start with a clean health: what quarantined
    /// the old ones was their params.
    pub async fn set_bindings(
        &self,
        tenant: &TenantId,
        set: BindingSet,
    ) -> Result<(), PluginAdminError> {
        set.check()?;
        for (list, expected) in [
            (&set.validators, PluginKind::Validator),
            (&set.enrichers, PluginKind::Enricher),
        ] {
            for binding in list {
                let Some(plugin) = self.registry.resolve(tenant, &binding.plugin) else {
                    if !self.is_ready() {
                        return Err(PluginAdminError::Starting(binding.plugin.clone()));
                    }
                    return Err(BindingError::UnknownPlugin(binding.plugin.clone()).into());
                };
                if plugin.kind != expected {
                    return Err(BindingError::WrongKind {
                        plugin: binding.plugin.clone(),
                        expected: expected.as_str(),
                        actual: plugin.kind.as_str(),
                    }
                    .into());
                }
                self.check_params(tenant, &plugin, Arc::from(binding.params.to_string()))
                    .await?;
            }
        }
        self.repository.put_bindings(tenant, &set).await?;
        self.bindings.set(tenant.clone(), set);
        for row in self.registry.rows(Some(tenant)) {
            if let Some(plugin) = row.current {
                plugin.health.retire_tenant(tenant);
            }
        }
        Ok(())
    }

    /// Configures `plugin` with `params` on an empty batch (see
    /// [`set_bindings`](Self::set_bindings)).
    async fn check_params(
        &self,
        tenant: &TenantId,
        plugin: &LoadedPlugin,
        params: Arc<str>,
    ) -> Result<(), PluginAdminError> {
        let cx = self.context(Some(tenant), plugin, params, false);
        let empty = WireBatch::shown(&[], Shown::to(plugin));
        let result = match plugin.kind {
            PluginKind::Validator => self
                .with_slot(
                    Some(tenant),
                    plugin,
                    self.engine.validate(&plugin.compiled, &cx, &empty),
                )
                .await
                .0
                .map(drop),
            PluginKind::Enricher => self
                .enrich_checked(Some(tenant), plugin, &cx, &empty)
                .await
                .0
                .map(drop),
            PluginKind::Aggregator => Ok(()),
        };
        match result {
            Err(CallFailure::InvalidConfig(message)) => Err(PluginAdminError::RejectedParams {
                plugin: plugin.name.to_string(),
                message,
            }),
            Err(failure) => {
                tracing::info!(plugin = %plugin.name, %tenant, %failure, "binding's params probe failed; the params are not refused");
                Ok(())
            }
            Ok(()) => Ok(()),
        }
    }

    /// Runs one plugin call on this task while holding a pool slot. A
    /// panic in the host while it runs (never expected: the engine turns
    /// every guest fault into a `CallFailure`) fails that call, not the
    /// request's task.
    ///
    /// If the caller's future is dropped mid-call (the client went away),
    /// wasmtime unwinds the guest, the store and both permits are released,
    /// and the call is counted with outcome `cancelled`.
    async fn with_slot<T>(
        &self,
        tenant: Option<&TenantId>,
        plugin: &LoadedPlugin,
        work: impl Future<Output = (Result<T, CallFailure>, CapturedLogs)>,
    ) -> (Result<T, CallFailure>, CapturedLogs) {
        let mut unfinished = Unfinished {
            metrics: &self.metrics,
            plugin: &plugin.name,
            armed: true,
        };
        // The tenant's share first: a tenant over it waits for its own
        // calls, never holding a pool slot meanwhile.
        let _share = match tenant {
            Some(tenant) => Some(self.tenant_share(tenant).await),
            None => None,
        };
        let _slot = self.engine.acquire_slot().await;
        let done = match std::panic::AssertUnwindSafe(work).catch_unwind().await {
            Ok(done) => done,
            Err(_) => (
                Err(CallFailure::Trap(
                    "the host failed while running the plugin".into(),
                )),
                Vec::new(),
            ),
        };
        unfinished.armed = false;
        done
    }

    /// One enricher call and the host's checks of its answer: the layout
    /// (in the engine), then reserved keys and dimension rules. Only an
    /// answer that passes both is ever applied or shown.
    async fn enrich_checked(
        &self,
        caller: Option<&TenantId>,
        plugin: &LoadedPlugin,
        cx: &CallContext,
        batch: &WireBatch,
    ) -> (Result<Enrichment, CallFailure>, CapturedLogs) {
        let max_per_metric = self.validator.limits().max_dimensions;
        let (result, logs) = self
            .with_slot(
                caller,
                plugin,
                self.engine
                    .enrich(&plugin.compiled, cx, batch, max_per_metric),
            )
            .await;
        let checked =
            result.and_then(|added| check_enrichment(&self.validator, &added).map(|()| added));
        (checked, logs)
    }

    async fn tenant_share(&self, tenant: &TenantId) -> OwnedSemaphorePermit {
        // A lookup first: `entry` would clone the tenant id on every call.
        let existing = self.tenant_slots.get(tenant).map(|share| share.clone());
        let share = match existing {
            Some(share) => share,
            None => self
                .tenant_slots
                .entry(tenant.clone())
                .or_insert_with(|| {
                    let permits = self.config.max_concurrent_calls_per_tenant.max(1) as usize;
                    Arc::new(Semaphore::new(permits))
                })
                .clone(),
        };
        // The semaphore is never closed, so acquiring cannot fail.
        match share.acquire_owned().await {
            Ok(permit) => permit,
            Err(_) => unreachable!("a tenant's slot semaphore is never closed"),
        }
    }

    fn context(
        &self,
        tenant: Option<&TenantId>,
        plugin: &LoadedPlugin,
        params: Arc<str>,
        capture_logs: bool,
    ) -> CallContext {
        CallContext {
            tenant: tenant.cloned(),
            memory_budget: self.memory_budget.clone(),
            plugin: plugin.name.clone(),
            version: plugin.version.clone(),
            limits: plugin.limits.clone(),
            params,
            log_budget: plugin.log_budget.clone(),
            capture_logs,
        }
    }

    /// Finds the bound plugin, refusing mis-kinded ones and ones this
    /// binding of this tenant has quarantined.
    pub(super) fn bound_plugin(
        &self,
        tenant: &TenantId,
        binding: &ResolvedBinding,
        kind: PluginKind,
    ) -> Result<Arc<LoadedPlugin>, CallFailure> {
        let plugin = self
            .registry
            .resolve(tenant, &binding.plugin)
            .ok_or(if self.is_ready() {
                CallFailure::NotInstalled
            } else {
                CallFailure::NotReady
            })?;
        if plugin.kind != kind {
            return Err(CallFailure::WrongKind {
                expected: kind,
                actual: plugin.kind,
            });
        }
        if plugin.health.is_quarantined(tenant, binding.id) {
            return Err(CallFailure::Quarantined);
        }
        Ok(plugin)
    }

    /// Counts a call's outcome, in the health of the (tenant, binding)
    /// that made it only.
    fn record(
        &self,
        plugin: &LoadedPlugin,
        tenant: &TenantId,
        binding: u64,
        outcome: Result<(), &CallFailure>,
    ) {
        match outcome {
            Ok(()) => {
                plugin.health.of(tenant, binding).record_success();
                self.metrics
                    .calls
                    .with_label_values(&[&plugin.name, "ok"])
                    .inc();
            }
            Err(failure) => {
                self.metrics
                    .calls
                    .with_label_values(&[&plugin.name, failure.label()])
                    .inc();
                if !failure.is_plugin_fault() {
                    return;
                }
                tracing::warn!(plugin = %plugin.name, version = %plugin.version, %tenant, %failure, "plugin call failed");
                if plugin
                    .health
                    .of(tenant, binding)
                    .record_failure(&failure.to_string(), self.config.quarantine_after)
                {
                    self.metrics
                        .quarantined
                        .with_label_values(&[&plugin.name])
                        .inc();
                    tracing::error!(
                        plugin = %plugin.name,
                        version = %plugin.version,
                        %tenant,
                        failures = self.config.quarantine_after,
                        "plugin quarantined for one tenant's binding after consecutive failures; a new version or new bindings lift it"
                    );
                }
            }
        }
    }

    /// The failure policy, applied to a failed step.
    fn on_failure(
        &self,
        binding: &ResolvedBinding,
        kind: PluginKind,
        failure: &CallFailure,
        input: &mut ChainInput,
    ) -> StepOutcome {
        // The batch's outcome is now the policy's, not only the plugins'.
        input.failed = true;
        match binding.on_failure {
            FailurePolicy::FailOpen => StepOutcome::AcceptAll,
            FailurePolicy::FailClosed => {
                self.metrics
                    .rejected_metrics
                    .with_label_values(&[&binding.plugin, codes::PLUGIN_FAILED])
                    .inc();
                StepOutcome::RejectAll {
                    code: codes::PLUGIN_FAILED,
                    message: format!(
                        "{kind} plugin {:?} {failure}; its binding is fail-closed",
                        binding.plugin
                    ),
                }
            }
        }
    }

    /// One validator of a tenant's chain over a batch.
    pub async fn run_validator(
        &self,
        tenant: &TenantId,
        binding: &ResolvedBinding,
        metrics: &[Metric],
    ) -> StepOutcome {
        self.run_validator_in(tenant, binding, metrics, &mut ChainInput::default())
            .await
    }

    /// [`run_validator`](Self::run_validator) as one step of a chain, which
    /// packs and hashes the batch once for all its plugins. A series-only
    /// plugin is asked only about the series the cache does not know.
    pub async fn run_validator_in(
        &self,
        tenant: &TenantId,
        binding: &ResolvedBinding,
        metrics: &[Metric],
        input: &mut ChainInput,
    ) -> StepOutcome {
        let plugin = match self.bound_plugin(tenant, binding, PluginKind::Validator) {
            Ok(plugin) => plugin,
            Err(failure) => {
                self.metrics
                    .calls
                    .with_label_values(&[&binding.plugin, failure.label()])
                    .inc();
                return self.on_failure(binding, PluginKind::Validator, &failure, input);
            }
        };
        let remembered = self.remembered_answers(tenant, binding, &plugin, input);
        let verdicts: Vec<Option<(&'static str, String)>> = match remembered {
            None => {
                let wire = input.packed(metrics, Shown::to(&plugin));
                match self.validate_call(tenant, binding, &plugin, wire).await {
                    Err(failure) => {
                        return self.on_failure(binding, PluginKind::Validator, &failure, input);
                    }
                    Ok(verdicts) => verdicts
                        .into_iter()
                        .map(|v| {
                            v.map(|reason| {
                                (
                                    codes::PLUGIN_REJECTED,
                                    format!("{}: {reason}", binding.plugin),
                                )
                            })
                        })
                        .collect(),
                }
            }
            Some(scope) => {
                let series = input.series(metrics);
                let lookup = scope.lookup(series);
                self.count_lookup(&plugin, &lookup);
                let fresh = if lookup.ask.is_empty() {
                    answered_from_memory(&plugin, tenant, binding).await;
                    Ok(Vec::new())
                } else {
                    let wire = WireBatch::series_of(metrics, &lookup.ask);
                    self.validate_call(tenant, binding, &plugin, &wire)
                        .await
                        .map(|verdicts| {
                            verdicts
                                .into_iter()
                                .zip(&lookup.ask)
                                .map(|(verdict, &index)| {
                                    let reason = verdict.map(|reason| {
                                        Arc::from(format!("{}: {reason}", binding.plugin))
                                    });
                                    scope.remember_with(series[index], || {
                                        Answer::Verdict(reason.clone())
                                    });
                                    reason
                                })
                                .collect::<Vec<_>>()
                        })
                };
                let on_failure = fresh
                    .as_ref()
                    .err()
                    .map(|failure| self.on_failure(binding, PluginKind::Validator, failure, input));
                let rejected = |reason: &Arc<str>| (codes::PLUGIN_REJECTED, reason.to_string());
                lookup
                    .per_metric
                    .into_iter()
                    .map(|known| match (known, &fresh, &on_failure) {
                        (Known::Remembered(Answer::Verdict(reason)), _, _) => {
                            reason.as_ref().map(rejected)
                        }
                        (Known::Asked(slot), Ok(fresh), _) => {
                            fresh.get(slot).and_then(Option::as_ref).map(rejected)
                        }
                        (
                            Known::Asked(_),
                            Err(_),
                            Some(StepOutcome::RejectAll { code, message }),
                        ) => Some((*code, message.clone())),
                        // Fail-open; or an answer of the other kind,
                        // which a binding's keys never hold.
                        _ => None,
                    })
                    .collect()
            }
        };
        if verdicts.iter().all(Option::is_none) {
            return StepOutcome::AcceptAll;
        }
        // Failures were counted by `on_failure`, under their own code.
        let rejected = verdicts
            .iter()
            .filter(|v| matches!(v, Some((code, _)) if *code == codes::PLUGIN_REJECTED))
            .count() as u64;
        if rejected > 0 {
            self.metrics
                .rejected_metrics
                .with_label_values(&[&binding.plugin, codes::PLUGIN_REJECTED])
                .inc_by(rejected);
        }
        StepOutcome::PerMetric(verdicts)
    }

    /// One validator call, timed and recorded (health, counters).
    async fn validate_call(
        &self,
        tenant: &TenantId,
        binding: &ResolvedBinding,
        plugin: &LoadedPlugin,
        batch: &WireBatch,
    ) -> Result<Vec<Option<String>>, CallFailure> {
        let cx = self.context(Some(tenant), plugin, binding.params_json.clone(), false);
        let call = self.with_slot(
            Some(tenant),
            plugin,
            self.engine.validate(&plugin.compiled, &cx, batch),
        );
        self.timed(tenant, binding, plugin, PluginHook::Validate, async {
            call.await.0
        })
        .await
    }

    /// One enricher call with the host's checks of its answer, timed and
    /// recorded (health, counters).
    async fn enrich_call(
        &self,
        tenant: &TenantId,
        binding: &ResolvedBinding,
        plugin: &LoadedPlugin,
        batch: &WireBatch,
    ) -> Result<Enrichment, CallFailure> {
        let cx = self.context(Some(tenant), plugin, binding.params_json.clone(), false);
        let call = self.enrich_checked(Some(tenant), plugin, &cx, batch);
        self.timed(tenant, binding, plugin, PluginHook::Enrich, async {
            call.await.0
        })
        .await
    }

    /// Times a write-path call and records its outcome in the plugin's
    /// health and the counters.
    async fn timed<T>(
        &self,
        tenant: &TenantId,
        binding: &ResolvedBinding,
        plugin: &LoadedPlugin,
        hook: PluginHook,
        call: impl Future<Output = Result<T, CallFailure>>,
    ) -> Result<T, CallFailure> {
        let started = std::time::Instant::now();
        let result = call.await;
        crate::telemetry::metrics()
            .plugins
            .observe_duration(&plugin.name, hook, started.elapsed());
        self.record(plugin, tenant, binding.id, result.as_ref().map(|_| ()));
        result
    }

    /// Where `binding`'s answers live, unless its plugin is not
    /// series-only, the cache is off, or the chain keeps its own answers
    /// (`ChainInput::asking_every_plugin`).
    fn remembered_answers(
        &self,
        tenant: &TenantId,
        binding: &ResolvedBinding,
        plugin: &LoadedPlugin,
        input: &ChainInput,
    ) -> Option<super::series_cache::CacheScope<'_>> {
        if input.ask_every_plugin {
            return None;
        }
        self.series_cache.scope(tenant, binding, plugin)
    }

    pub(super) fn count_cache_use(&self, plugin: &LoadedPlugin, remembered: usize, asked: usize) {
        for (result, count) in [("hit", remembered), ("miss", asked)] {
            if count > 0 {
                self.metrics
                    .series_cache
                    .with_label_values(&[&plugin.name, result])
                    .inc_by(count as u64);
            }
        }
    }

    /// Counts how `lookup` answers a batch for `plugin`.
    fn count_lookup(&self, plugin: &LoadedPlugin, lookup: &Lookup) {
        let asked = lookup
            .per_metric
            .iter()
            .filter(|k| matches!(k, Known::Asked(_)))
            .count();
        self.count_cache_use(plugin, lookup.per_metric.len() - asked, asked);
    }

    /// One enricher of a tenant's chain; edits `metrics` in place. Output
    /// that breaks the host's rules (a reserved `_` key, an invalid key or
    /// value) fails the whole call: a plugin can never set the tenant or any
    /// reserved dimension.
    pub async fn run_enricher(
        &self,
        tenant: &TenantId,
        binding: &ResolvedBinding,
        metrics: &mut [Metric],
    ) -> StepOutcome {
        self.run_enricher_in(tenant, binding, metrics, &mut ChainInput::default())
            .await
            .outcome
    }

    /// [`run_enricher`](Self::run_enricher) as one step of a chain; says
    /// whether any metric changed, i.e. whether `input` is now stale for
    /// the plugins after this one. A series-only plugin is asked only about
    /// the series the cache does not know.
    pub async fn run_enricher_in(
        &self,
        tenant: &TenantId,
        binding: &ResolvedBinding,
        metrics: &mut [Metric],
        input: &mut ChainInput,
    ) -> EnrichmentStep {
        let unchanged = |outcome| EnrichmentStep {
            outcome,
            changed: false,
        };
        let plugin = match self.bound_plugin(tenant, binding, PluginKind::Enricher) {
            Ok(plugin) => plugin,
            Err(failure) => {
                self.metrics
                    .calls
                    .with_label_values(&[&binding.plugin, failure.label()])
                    .inc();
                return unchanged(self.on_failure(binding, PluginKind::Enricher, &failure, input));
            }
        };
        let max_dimensions = self.validator.limits().max_dimensions;
        let adding = AddingDimensions {
            plugin: &binding.plugin,
            max_dimensions,
        };
        let mut verdicts = Vec::with_capacity(metrics.len());
        let mut changed = false;
        let remembered = self.remembered_answers(tenant, binding, &plugin, input);
        match remembered {
            None => {
                let wire = input.packed(metrics, Shown::to(&plugin));
                let added = match self.enrich_call(tenant, binding, &plugin, wire).await {
                    Ok(added) => added,
                    Err(failure) => {
                        return unchanged(self.on_failure(
                            binding,
                            PluginKind::Enricher,
                            &failure,
                            input,
                        ));
                    }
                };
                for (index, metric) in metrics.iter_mut().enumerate() {
                    let verdict = adding.apply(metric, added.count(index), || added.of(index));
                    changed |= verdict == Ok(true);
                    verdicts.push(verdict.err());
                }
            }
            Some(scope) => {
                let series = input.series(metrics);
                let lookup = scope.lookup(series);
                self.count_lookup(&plugin, &lookup);
                let fresh: Result<Option<Enrichment>, CallFailure> = if lookup.ask.is_empty() {
                    answered_from_memory(&plugin, tenant, binding).await;
                    Ok(None)
                } else {
                    let wire = WireBatch::series_of(metrics, &lookup.ask);
                    self.enrich_call(tenant, binding, &plugin, &wire)
                        .await
                        .map(Some)
                };
                if let Ok(Some(added)) = &fresh {
                    // An answer over the limit is refused, never remembered.
                    for (slot, &index) in lookup.ask.iter().enumerate() {
                        if added.count(slot) <= max_dimensions {
                            scope.remember_with(series[index], || {
                                Answer::Additions(
                                    added.of(slot).map(|(k, v)| (k.into(), v.into())).collect(),
                                )
                            });
                        }
                    }
                }
                let on_failure = fresh
                    .as_ref()
                    .err()
                    .map(|failure| self.on_failure(binding, PluginKind::Enricher, failure, input));
                for (metric, known) in metrics.iter_mut().zip(lookup.per_metric) {
                    let verdict = match (known, &fresh, &on_failure) {
                        (Known::Remembered(Answer::Additions(pairs)), _, _) => {
                            adding.apply(metric, pairs.len(), || {
                                pairs.iter().map(|(k, v)| (&**k, &**v))
                            })
                        }
                        (Known::Asked(slot), Ok(Some(added)), _) => {
                            adding.apply(metric, added.count(slot), || added.of(slot))
                        }
                        (
                            Known::Asked(_),
                            Err(_),
                            Some(StepOutcome::RejectAll { code, message }),
                        ) => Err((*code, message.clone())),
                        // Fail-open; or an answer of the other kind, which
                        // a binding's keys never hold.
                        _ => Ok(false),
                    };
                    changed |= verdict == Ok(true);
                    verdicts.push(verdict.err());
                }
            }
        }
        EnrichmentStep {
            outcome: if verdicts.iter().any(Option::is_some) {
                StepOutcome::PerMetric(verdicts)
            } else {
                StepOutcome::AcceptAll
            },
            changed,
        }
    }

    /// Streams each group's points through the aggregator `name`, as
    /// `tenant` sees it, with the query's `params` (a JSON object text).
    pub async fn aggregate(
        &self,
        tenant: &TenantId,
        name: &str,
        params_json: Arc<str>,
        groups: Vec<Vec<(i64, f64)>>,
    ) -> Result<Vec<f64>, AggregationError> {
        let fail = |failure| AggregationError {
            plugin: name.to_owned(),
            failure,
        };
        // One health per tenant and version on the query path, whatever
        // the query's params.
        let binding = ResolvedBinding {
            id: QUERY_PATH,
            plugin: name.to_owned(),
            params_json: params_json.clone(),
            on_failure: FailurePolicy::FailClosed,
        };
        let plugin = self
            .bound_plugin(tenant, &binding, PluginKind::Aggregator)
            .map_err(fail)?;
        let cx = self.context(Some(tenant), &plugin, params_json, false);
        let budget = self.config.aggregation_budget.get();
        let started = std::time::Instant::now();
        let (result, _) = self
            .with_slot(
                Some(tenant),
                &plugin,
                self.engine
                    .aggregate(&plugin.compiled, &cx, &groups, budget),
            )
            .await;
        crate::telemetry::metrics().plugins.observe_duration(
            &plugin.name,
            crate::telemetry::PluginHook::Aggregate,
            started.elapsed(),
        );
        // Params the plugin calls invalid are this query's mistake, answered
        // to it; they say nothing about the plugin's health.
        if !matches!(result, Err(CallFailure::InvalidConfig(_))) {
            self.record(&plugin, tenant, QUERY_PATH, result.as_ref().map(|_| ()));
        }
        // A non-finite result is the plugin's "no value" (the SDK's
        // convention for NaN); the query API renders it as null.
        let values = result.map_err(fail)?;
        Ok(values)
    }

    /// Runs a plugin on sample input and stores nothing; quarantine and
    /// error counts are left alone, so testing a broken plugin is harmless.
    /// `caller` is the tenant asking (its share of the pool applies), or
    /// none for the operator.
    pub async fn dry_run(
        &self,
        caller: Option<&TenantId>,
        plugin: Arc<LoadedPlugin>,
        params_json: Arc<str>,
        input: DryRunInput,
    ) -> DryRunReport {
        let started = Instant::now();
        let cx = self.context(caller, &plugin, params_json, true);
        let (result, logs) = match input {
            DryRunInput::Metrics(metrics) => {
                let batch = WireBatch::shown(&metrics, Shown::to(&plugin));
                match plugin.kind {
                    PluginKind::Validator => {
                        let (r, logs) = self
                            .with_slot(
                                caller,
                                &plugin,
                                self.engine.validate(&plugin.compiled, &cx, &batch),
                            )
                            .await;
                        (r.map(DryRunOutput::Verdicts), logs)
                    }
                    PluginKind::Enricher => {
                        let (r, logs) = self.enrich_checked(caller, &plugin, &cx, &batch).await;
                        (
                            r.map(|added| {
                                DryRunOutput::Enrichments(
                                    (0..added.len())
                                        .map(|metric| {
                                            added
                                                .of(metric)
                                                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                                                .collect()
                                        })
                                        .collect(),
                                )
                            }),
                            logs,
                        )
                    }
                    PluginKind::Aggregator => {
                        let groups =
                            vec![metrics.iter().map(|m| (m.timestamp_ms, m.value)).collect()];
                        let budget = self.config.aggregation_budget.get();
                        let (r, logs) = self
                            .with_slot(
                                caller,
                                &plugin,
                                self.engine
                                    .aggregate(&plugin.compiled, &cx, &groups, budget),
                            )
                            .await;
                        (r.map(DryRunOutput::Values), logs)
                    }
                }
            }
            DryRunInput::Groups(groups) => {
                if plugin.kind != PluginKind::Aggregator {
                    (
                        Err(CallFailure::WrongKind {
                            expected: PluginKind::Aggregator,
                            actual: plugin.kind,
                        }),
                        Vec::new(),
                    )
                } else {
                    let budget = self.config.aggregation_budget.get();
                    let (r, logs) = self
                        .with_slot(
                            caller,
                            &plugin,
                            self.engine
                                .aggregate(&plugin.compiled, &cx, &groups, budget),
                        )
                        .await;
                    (r.map(DryRunOutput::Values), logs)
                }
            }
        };
        DryRunReport {
            plugin: plugin.name.to_string(),
            version: plugin.version.to_string(),
            kind: plugin.kind,
            result,
            logs,
            duration: started.elapsed(),
        }
    }

    /// Starts watching the plugins directory (after a first full scan).
    pub async fn watch_directory(
        self: &Arc<Self>,
        dir: &Path,
    ) -> Result<super::reload::DirectoryWatcher, PluginAdminError> {
        super::reload::DirectoryWatcher::start(self.clone(), dir.to_path_buf()).await
    }
}

/// Start-up's plugin loading (see [`PluginRuntime::start`]); dropping it
/// stops the loading and the directory watcher.
pub struct BackgroundLoad {
    task: tokio::task::JoinHandle<()>,
    watcher: Arc<std::sync::Mutex<Option<super::reload::DirectoryWatcher>>>,
}

impl Drop for BackgroundLoad {
    fn drop(&mut self) {
        self.task.abort();
        self.watcher
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
    }
}

/// Counts a call whose future was dropped before it finished.
struct Unfinished<'a> {
    metrics: &'a PluginMetrics,
    plugin: &'a str,
    armed: bool,
}

impl Drop for Unfinished<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.metrics
                .calls
                .with_label_values(&[self.plugin, "cancelled"])
                .inc();
        }
    }
}

/// A step answered without a call. It shows the plugin working (its
/// answers are in use), so it ends a run of consecutive failures as a
/// successful call would: without it, once the series of other tenants
/// were remembered, one tenant's series that makes a global plugin fail
/// could quarantine it for everyone. It never waits either, so a loop of
/// such steps (a client sending known series as fast as it can) would never
/// give its thread back: take from tokio's cooperative budget as its own
/// I/O does.
async fn answered_from_memory(plugin: &LoadedPlugin, tenant: &TenantId, binding: &ResolvedBinding) {
    plugin.health.of(tenant, binding.id).note_working();
    tokio::task::consume_budget().await;
}

/// Applies one enricher's additions to metrics, within the dimension limit.
pub(super) struct AddingDimensions<'a> {
    /// Named in the rejection.
    pub plugin: &'a str,
    pub max_dimensions: usize,
}

impl AddingDimensions<'_> {
    /// `count` additions, read through `pairs` only when they fit: `Ok`
    /// says whether the metric changed, `Err` rejects it.
    pub(super) fn apply<'p, I>(
        &self,
        metric: &mut Metric,
        count: usize,
        pairs: impl FnOnce() -> I,
    ) -> Result<bool, (&'static str, String)>
    where
        I: Iterator<Item = (&'p str, &'p str)>,
    {
        let too_many = |count: usize| {
            Err((
                codes::TOO_MANY_DIMENSIONS,
                format!(
                    "enrichment by {:?} gives {count} dimensions; the limit is {}",
                    self.plugin, self.max_dimensions
                ),
            ))
        };
        if count == 0 {
            return Ok(false);
        }
        // Checked before inserting: an enricher may return millions.
        if count > self.max_dimensions {
            return too_many(metric.dimensions.len() + count);
        }
        if metric.dimensions.len() + count <= self.max_dimensions {
            // Cannot exceed the limit: edit in place, no copy.
            for (key, value) in pairs() {
                metric.dimensions.insert(key, value);
            }
            return Ok(true);
        }
        // Overwritten keys do not count: apply to a copy, then decide.
        let mut enriched = metric.dimensions.clone();
        for (key, value) in pairs() {
            enriched.insert(key, value);
        }
        if enriched.len() > self.max_dimensions {
            return too_many(enriched.len());
        }
        metric.dimensions = enriched;
        Ok(true)
    }
}

/// Enricher output the host refuses: a reserved (`_`) key, or a key or
/// value that client input could not have either.
fn check_enrichment(validator: &Validator, added: &Enrichment) -> Result<(), CallFailure> {
    for (key, value) in added.all() {
        if key.starts_with(RESERVED_PREFIX) {
            return Err(CallFailure::InvalidOutput(format!(
                "tried to set the reserved dimension {:?}",
                super::logging::truncate(key, 64)
            )));
        }
        validator
            .validate_dimension(key, value)
            .map_err(|e| CallFailure::InvalidOutput(e.to_string()))?;
    }
    Ok(())
}
