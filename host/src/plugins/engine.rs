//! The one wasmtime `Engine`, and how a plugin is compiled and called.
//!
//! - Component model, epoch interruption and the pooling allocator; a
//!   semaphore with one permit per pool slot so callers queue instead of
//!   failing when every slot is busy (cf. wasmtime's fast_instantiation
//!   example).
//! - Each plugin version is compiled once into an `InstancePre`.
//! - Every call gets a FRESH `Store` with its own memory cap and epoch
//!   deadline, so nothing leaks between tenants or requests and a trap, a
//!   timeout or an exhausted memory affects only that call.
//! - Calls are async (wasmtime runs the guest on a fiber) and run on the
//!   request's own task: no hop to another thread, which cost more than a
//!   small batch's whole call. A running guest yields to the executor at
//!   every epoch tick, so its wasm holds a worker thread for at most one
//!   tick at a time, and its deadline is checked at each tick (cf. Spin,
//!   wasmtime's `epoch_deadline_async_yield_and_update`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::component::{
    Component, ComponentExportIndex, ComponentType, InstancePre, Lift, Linker,
};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, Trap,
    UpdateDeadline,
};

use super::abi::{self, AbiError, PluginKind};
use super::logging::{LogBudget, PluginLogger, truncate};
use super::memory_budget::{MemoryBudget, Refusal};
use super::sandbox::{CallState, sandboxed_linker};
use super::wire::{Enrichment, EnrichmentLayoutError, WireBatch};
use super::wit::{self, AggregatorPluginPre, EnricherPluginPre, ValidatorPluginPre};

/// How often the epoch advances: the longest a guest runs before it yields
/// to the executor, and the granularity of deadlines.
const EPOCH_TICK: Duration = Duration::from_millis(2);
/// Longest reason or error text kept from a plugin, in bytes.
const MAX_TEXT_BYTES: usize = 1024;
/// Samples per aggregator `update` call.
const SAMPLES_PER_UPDATE: usize = 8192;
/// Largest aggregator state carried between calls.
const MAX_STATE_BYTES: usize = 1 << 20;
/// What one component may hold, and so what one pool slot is sized for.
/// A Rust `wasm32-wasip2` component uses about half of each.
pub const CORE_INSTANCES_PER_COMPONENT: u32 = 16;
pub const MEMORIES_PER_COMPONENT: u32 = 2;
pub const TABLES_PER_COMPONENT: u32 = 8;

#[derive(Clone, Debug)]
pub struct EngineSettings {
    /// Pool slots: component instances alive at once.
    pub max_instances: u32,
    /// The largest memory cap any plugin may have (sizes the pool's slots).
    pub max_memory_bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Abi(#[from] AbiError),
    #[error("the component does not compile: {0}")]
    Compile(String),
    #[error(
        "the component needs more than one plugin instance slot holds \
         ({CORE_INSTANCES_PER_COMPONENT} core instances, {MEMORIES_PER_COMPONENT} memories, \
         {TABLES_PER_COMPONENT} tables): {0}"
    )]
    ExceedsSlot(String),
    #[error("the component needs imports this server does not provide: {0}")]
    Link(String),
}

/// Why one plugin call failed. Each is contained to that call.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CallFailure {
    #[error("exceeded its deadline of {0:?}")]
    Timeout(Duration),
    #[error("exceeded its memory limit of {0} bytes")]
    MemoryLimit(u64),
    #[error(
        "exceeded this tenant's share of the plugin memory budget \
         (plugins.memory_budget_per_tenant_bytes = {0})"
    )]
    TenantMemoryShare(u64),
    #[error(
        "could not grow its memory: the server's plugin memory budget \
         (plugins.memory_budget_bytes = {0}) is in use; retry later"
    )]
    ServerMemoryBudget(u64),
    #[error("is not loaded yet: the server is starting and compiles its plugins")]
    NotReady,
    #[error("trapped: {0}")]
    Trap(String),
    #[error("reported invalid config: {0}")]
    InvalidConfig(String),
    #[error("reported failure: {0}")]
    Failed(String),
    #[error("returned {got} results for {expected} inputs")]
    WrongLength { expected: usize, got: usize },
    #[error("returned invalid output: {0}")]
    InvalidOutput(String),
    #[error("is quarantined after repeated failures")]
    Quarantined,
    #[error("is not installed")]
    NotInstalled,
    #[error("is a {actual}, but is bound as a {expected}")]
    WrongKind {
        expected: PluginKind,
        actual: PluginKind,
    },
    #[error("could not be instantiated: {0}")]
    Instantiate(String),
}

impl CallFailure {
    /// A stable label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Timeout(_) => "timeout",
            Self::MemoryLimit(_) => "memory_limit",
            Self::TenantMemoryShare(_) => "tenant_memory_share",
            Self::ServerMemoryBudget(_) => "server_memory_budget",
            Self::NotReady => "not_ready",
            Self::Trap(_) => "trap",
            Self::InvalidConfig(_) => "invalid_config",
            Self::Failed(_) => "failed",
            Self::WrongLength { .. } => "wrong_length",
            Self::InvalidOutput(_) => "invalid_output",
            Self::Quarantined => "quarantined",
            Self::NotInstalled => "not_installed",
            Self::WrongKind { .. } => "wrong_kind",
            Self::Instantiate(_) => "instantiate",
        }
    }

    /// Failures charged to the binding that made the call count towards
    /// its quarantine: everything the plugin, its params or the tenant's
    /// data caused, instantiation included (every component fits a pool
    /// slot by construction, so only the component itself can make it
    /// fail). Not counted: what other tenants cause (the server-wide
    /// memory budget in use) and what is no call at all.
    pub fn is_plugin_fault(&self) -> bool {
        !matches!(
            self,
            Self::Quarantined
                | Self::NotInstalled
                | Self::NotReady
                | Self::WrongKind { .. }
                | Self::ServerMemoryBudget(_)
        )
    }
}

/// What a call may use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallLimits {
    pub memory_bytes: u64,
    pub deadline: Duration,
}

enum KindPre {
    Validator(ValidatorPluginPre<CallState>),
    Enricher(EnricherPluginPre<CallState>),
    Aggregator(AggregatorPluginPre<CallState>),
}

/// One plugin version, compiled and linked once, instantiated per call.
pub struct CompiledPlugin {
    kind: PluginKind,
    pre: KindPre,
    /// The batch function (`validate` / `enrich`), called with a
    /// [`WireBatch`] that the caller built once for the whole chain.
    batch_entry: Option<ComponentExportIndex>,
    /// What the SDK's section says (see [`abi::SdkSections`]); a manifest
    /// may override it.
    declares_series_only: bool,
}

impl CompiledPlugin {
    pub fn kind(&self) -> PluginKind {
        self.kind
    }

    pub fn declares_series_only(&self) -> bool {
        self.declares_series_only && self.kind != PluginKind::Aggregator
    }
}

/// Who is calling and with what: the per-call context.
pub struct CallContext {
    /// Charged for the store's memory: the calling tenant's share (none
    /// for the operator) of `memory_budget`.
    pub tenant: Option<crate::model::TenantId>,
    pub memory_budget: Arc<MemoryBudget>,
    pub plugin: Arc<str>,
    pub version: Arc<str>,
    pub limits: CallLimits,
    pub params: Arc<str>,
    pub log_budget: Arc<LogBudget>,
    /// Return the plugin's log lines to the caller (dry runs).
    pub capture_logs: bool,
}

/// A finished call's log lines, when captured.
pub type CapturedLogs = Vec<(wit::LogLevel, String)>;

pub struct PluginEngine {
    engine: Engine,
    linker: Linker<CallState>,
    slots: Arc<Semaphore>,
    /// Held for its `Drop`, which stops the ticking thread.
    _ticker: EpochTicker,
}

impl PluginEngine {
    pub fn new(settings: &EngineSettings) -> wasmtime::Result<Self> {
        let instances = settings.max_instances.max(1);
        let mut pool = PoolingAllocationConfig::default();
        // The totals are the per-component maxima times the slots, so any
        // component that compiles (wasmtime checks these maxima then) fits
        // a slot, and as many instances as there are slots always fit: one
        // tenant's component cannot take more than its own slot's share.
        pool.total_component_instances(instances)
            .total_core_instances(instances.saturating_mul(CORE_INSTANCES_PER_COMPONENT))
            .total_memories(instances.saturating_mul(MEMORIES_PER_COMPONENT))
            .total_tables(instances.saturating_mul(TABLES_PER_COMPONENT))
            .max_core_instances_per_component(CORE_INSTANCES_PER_COMPONENT)
            .max_memories_per_component(MEMORIES_PER_COMPONENT)
            .max_tables_per_component(TABLES_PER_COMPONENT)
            // Every call runs on a fiber, whose stack comes from the pool.
            .total_stacks(instances)
            .max_memory_size(usize::try_from(settings.max_memory_bytes).unwrap_or(usize::MAX))
            .linear_memory_keep_resident(keep_resident_bytes())
            .table_keep_resident(64 << 10)
            .pagemap_scan(wasmtime::Enabled::Auto);
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            // Plugins are called one at a time per store (`call_async`),
            // never concurrently. Without this each store set up the
            // component-model-async state and, on drop, disposed of its
            // idle worker fiber by resuming it with an error, which
            // captures a backtrace when RUST_BACKTRACE is set: 14 µs per
            // call instead of 16-21 (docs/benchmarks.md).
            .concurrency_support(false)
            // One compile is one thread (on the blocking pool, one at a time
            // by default): Cranelift's own parallelism would take every core
            // from the requests for as long as an upload compiles.
            .parallel_compilation(false)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config)?;
        let linker = sandboxed_linker(&engine)?;
        let ticker = EpochTicker::start(&engine);
        Ok(Self {
            engine,
            linker,
            slots: Arc::new(Semaphore::new(instances as usize)),
            _ticker: ticker,
        })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Waits for a free pool slot; hold the permit for the whole call.
    pub async fn acquire_slot(&self) -> OwnedSemaphorePermit {
        // The semaphore is never closed, so acquiring cannot fail.
        match self.slots.clone().acquire_owned().await {
            Ok(permit) => permit,
            Err(_) => unreachable!("the plugin slot semaphore is never closed"),
        }
    }

    /// Checks the ABI, compiles and links. CPU-heavy: call it off the
    /// request path (the blocking pool).
    pub fn compile(
        &self,
        bytes: &[u8],
        declared_kind: Option<PluginKind>,
    ) -> Result<CompiledPlugin, LoadError> {
        let sections = abi::precheck(bytes)?;
        let component = Component::new(&self.engine, bytes).map_err(compile_error)?;
        let kind = abi::detect_kind(&self.engine, &component)?;
        if let Some(declared) = declared_kind
            && declared != kind
        {
            return Err(AbiError::KindMismatch {
                declared,
                detected: kind,
            }
            .into());
        }
        let instance_pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::Link(format!("{e:#}")))?;
        let link = |e: wasmtime::Error| LoadError::Link(format!("{e:#}"));
        let pre = match kind {
            PluginKind::Validator => {
                KindPre::Validator(ValidatorPluginPre::new(instance_pre).map_err(link)?)
            }
            PluginKind::Enricher => {
                KindPre::Enricher(EnricherPluginPre::new(instance_pre).map_err(link)?)
            }
            PluginKind::Aggregator => {
                KindPre::Aggregator(AggregatorPluginPre::new(instance_pre).map_err(link)?)
            }
        };
        let batch_entry = match kind {
            PluginKind::Validator => Some("validate"),
            PluginKind::Enricher => Some("enrich"),
            PluginKind::Aggregator => None,
        }
        .map(|function| {
            let interface = format!("{}/{kind}@{}", abi::ABI_PACKAGE, abi::ABI_VERSION);
            component
                .get_export_index(None, &interface)
                .and_then(|i| component.get_export_index(Some(&i), function))
                .ok_or_else(|| LoadError::Link(format!("{interface} does not export {function}")))
        })
        .transpose()?;
        Ok(CompiledPlugin {
            kind,
            pre,
            batch_entry,
            declares_series_only: sections.series_only,
        })
    }

    /// A fresh store whose deadline starts now: on the write path that one
    /// deadline covers instantiation (which runs the component's start
    /// code) and the call together.
    fn store(&self, cx: &CallContext) -> Store<CallState> {
        let mut logger =
            PluginLogger::new(cx.plugin.clone(), cx.version.clone(), cx.log_budget.clone());
        if cx.capture_logs {
            logger = logger.capturing();
        }
        let state = CallState::new(
            cx.limits.memory_bytes,
            cx.memory_budget.account(cx.tenant.as_ref()),
            cx.params.clone(),
            logger,
        );
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limiter);
        // At every tick: past the deadline, trap; otherwise let the
        // executor run other tasks, then carry on. tokio's own yield (not
        // wasmtime's immediate re-wake) lets the worker poll its I/O and
        // timer drivers first, so other requests' sockets and timers move
        // while a plugin runs.
        store.epoch_deadline_callback(|store| {
            Ok(if Instant::now() >= store.data().deadline_at {
                UpdateDeadline::Interrupt
            } else {
                UpdateDeadline::YieldCustom(1, Box::pin(tokio::task::yield_now()))
            })
        });
        Self::arm_deadline(&mut store, cx.limits.deadline);
        store
    }

    /// Starts the clock of one export call (or an instantiation).
    fn arm_deadline(store: &mut Store<CallState>, deadline: Duration) {
        store.data_mut().deadline_at = Instant::now() + deadline;
        store.set_epoch_deadline(1);
    }

    /// Validates a batch: exactly one verdict per metric.
    pub async fn validate(
        &self,
        plugin: &CompiledPlugin,
        cx: &CallContext,
        metrics: &WireBatch,
    ) -> (Result<Vec<Option<String>>, CallFailure>, CapturedLogs) {
        let (KindPre::Validator(pre), Some(entry)) = (&plugin.pre, &plugin.batch_entry) else {
            return (
                Err(wrong_kind(PluginKind::Validator, plugin.kind)),
                Vec::new(),
            );
        };
        let mut store = self.store(cx);
        let result = async {
            let verdicts: Vec<wit::Verdict> =
                call_batch(&mut store, cx, pre.instance_pre(), entry, metrics).await?;
            if verdicts.len() != metrics.len() {
                return Err(CallFailure::WrongLength {
                    expected: metrics.len(),
                    got: verdicts.len(),
                });
            }
            Ok(verdicts
                .into_iter()
                .map(|v| match v {
                    wit::Verdict::Accept => None,
                    wit::Verdict::Reject(reason) => {
                        Some(truncate(&reason, MAX_TEXT_BYTES).to_owned())
                    }
                })
                .collect())
        }
        .await;
        (result, store.data_mut().logger.take_captured())
    }

    /// Enriches a batch: per metric, the dimensions to add or overwrite,
    /// with the answer's layout checked. The caller checks the dimensions
    /// against the host's rules.
    pub async fn enrich(
        &self,
        plugin: &CompiledPlugin,
        cx: &CallContext,
        metrics: &WireBatch,
        max_dimensions_per_metric: usize,
    ) -> (Result<Enrichment, CallFailure>, CapturedLogs) {
        let (KindPre::Enricher(pre), Some(entry)) = (&plugin.pre, &plugin.batch_entry) else {
            return (
                Err(wrong_kind(PluginKind::Enricher, plugin.kind)),
                Vec::new(),
            );
        };
        let mut store = self.store(cx);
        let result = async {
            let added: wit::Enrichment =
                call_batch(&mut store, cx, pre.instance_pre(), entry, metrics).await?;
            Enrichment::check(added, metrics.len(), max_dimensions_per_metric).map_err(
                |e| match e {
                    EnrichmentLayoutError::WrongLength { expected, got } => {
                        CallFailure::WrongLength { expected, got }
                    }
                    EnrichmentLayoutError::Malformed(message) => {
                        CallFailure::InvalidOutput(message)
                    }
                },
            )
        }
        .await;
        (result, store.data_mut().logger.take_captured())
    }

    /// Streams each group's samples through init → update… → finish, one
    /// number per group. One store serves the whole query (one tenant, one
    /// request); `budget` bounds the query as a whole: every export call's
    /// deadline is the plugin's own or what is left of the budget,
    /// whichever is sooner, so neither one large group nor a plugin asking
    /// for long calls can run past it.
    pub async fn aggregate(
        &self,
        plugin: &CompiledPlugin,
        cx: &CallContext,
        groups: &[Vec<(i64, f64)>],
        budget: Duration,
    ) -> (Result<Vec<f64>, CallFailure>, CapturedLogs) {
        let KindPre::Aggregator(pre) = &plugin.pre else {
            return (
                Err(wrong_kind(PluginKind::Aggregator, plugin.kind)),
                Vec::new(),
            );
        };
        let started = Instant::now();
        // The next call's deadline, or the budget's timeout once it is spent.
        let next_deadline = || match budget.checked_sub(started.elapsed()) {
            Some(left) if !left.is_zero() => Ok(cx.limits.deadline.min(left)),
            _ => Err(CallFailure::Timeout(budget)),
        };
        let failed = |store: &Store<CallState>, e| {
            if started.elapsed() >= budget {
                CallFailure::Timeout(budget)
            } else {
                classify(store, cx, e)
            }
        };
        let mut store = self.store(cx);
        let result = async {
            let instance = pre
                .instantiate_async(&mut store)
                .await
                .map_err(|e| instantiate_failure(&store, cx, e))?;
            let api = instance.luminate_plugin_aggregator();
            let mut out = Vec::with_capacity(groups.len());
            let mut timestamps = Vec::with_capacity(SAMPLES_PER_UPDATE);
            let mut values = Vec::with_capacity(SAMPLES_PER_UPDATE);
            for group in groups {
                Self::arm_deadline(&mut store, next_deadline()?);
                let mut state = api
                    .call_init(&mut store)
                    .await
                    .map_err(|e| failed(&store, e))?
                    .map_err(plugin_error)?;
                for chunk in group.chunks(SAMPLES_PER_UPDATE) {
                    check_state(&state)?;
                    timestamps.clear();
                    values.clear();
                    for &(timestamp_ms, value) in chunk {
                        timestamps.push(timestamp_ms);
                        values.push(value);
                    }
                    Self::arm_deadline(&mut store, next_deadline()?);
                    state = api
                        .call_update(&mut store, &state, &timestamps, &values)
                        .await
                        .map_err(|e| failed(&store, e))?
                        .map_err(plugin_error)?;
                }
                check_state(&state)?;
                Self::arm_deadline(&mut store, next_deadline()?);
                let value = api
                    .call_finish(&mut store, &state)
                    .await
                    .map_err(|e| failed(&store, e))?
                    .map_err(plugin_error)?;
                out.push(value);
            }
            Ok(out)
        }
        .await;
        (result, store.data_mut().logger.take_captured())
    }
}

/// How much of a pool slot's memory stays mapped between calls; the rest
/// is decommitted (`madvise`), and touching it again costs a page fault
/// per page, which dominated small calls. Nothing of one call is visible
/// to the next either way: the kept part is reset to the module's initial
/// image.
///
/// With Linux's `PAGEMAP_SCAN` (6.7+) wasmtime resets only the pages a call
/// dirtied, so keeping a whole typical call (stack, a 1 000-metric batch,
/// its decoded views: under 2 MiB) resident is cheap; 8 MiB measured no
/// faster. It costs RSS: at most this much per pool slot that has been
/// used (`plugins.max_concurrent_calls`, 64 by default: 128 MiB), only
/// what calls actually touched. Without `PAGEMAP_SCAN`, the first N bytes
/// are reset with memset whether the call touched them or not, so keep
/// only the first MiB.
fn keep_resident_bytes() -> usize {
    if PoolingAllocationConfig::is_pagemap_scan_available() {
        2 << 20
    } else {
        1 << 20
    }
}

/// Instantiates a write-path plugin and calls its batch function
/// (`validate` / `enrich`, both `func(batch: metric-batch) ->
/// result<R, plugin-error>`) in `store`, whose deadline covers both steps.
async fn call_batch<R>(
    store: &mut Store<CallState>,
    cx: &CallContext,
    pre: &InstancePre<CallState>,
    entry: &ComponentExportIndex,
    metrics: &WireBatch,
) -> Result<R, CallFailure>
where
    R: ComponentType + Lift + Send + Sync + 'static,
{
    let instance = pre
        .instantiate_async(&mut *store)
        .await
        .map_err(|e| instantiate_failure(store, cx, e))?;
    let function = instance
        .get_typed_func::<(&wit::MetricBatch,), (Result<R, wit::WitPluginError>,)>(
            &mut *store,
            entry,
        )
        .map_err(|e| CallFailure::Instantiate(format!("{e:#}")))?;
    let (answer,) = function
        .call_async(&mut *store, (metrics.as_wit(),))
        .await
        .map_err(|e| classify(store, cx, e))?;
    answer.map_err(plugin_error)
}

/// wasmtime checks a component against the pool's per-component maxima
/// as it compiles; that refusal is the component's size, not its code.
fn compile_error(e: wasmtime::Error) -> LoadError {
    let message = truncate(&format!("{e:#}"), MAX_TEXT_BYTES).to_owned();
    if message.contains("pooling allocator") {
        LoadError::ExceedsSlot(message)
    } else {
        LoadError::Compile(message)
    }
}

fn check_state(state: &[u8]) -> Result<(), CallFailure> {
    if state.len() > MAX_STATE_BYTES {
        return Err(CallFailure::InvalidOutput(format!(
            "aggregate state of {} bytes; the limit is {MAX_STATE_BYTES}",
            state.len()
        )));
    }
    Ok(())
}

fn wrong_kind(expected: PluginKind, actual: PluginKind) -> CallFailure {
    CallFailure::WrongKind { expected, actual }
}

fn plugin_error(e: wit::WitPluginError) -> CallFailure {
    match e {
        wit::WitPluginError::InvalidConfig(m) => {
            CallFailure::InvalidConfig(truncate(&m, MAX_TEXT_BYTES).to_owned())
        }
        wit::WitPluginError::Failed(m) => {
            CallFailure::Failed(truncate(&m, MAX_TEXT_BYTES).to_owned())
        }
    }
}

/// Instantiation runs the component's start code too, so it can trap,
/// time out or exhaust memory like a call.
fn instantiate_failure(
    store: &Store<CallState>,
    cx: &CallContext,
    e: wasmtime::Error,
) -> CallFailure {
    if e.downcast_ref::<Trap>().is_some() || store.data().limiter.memory_refused() {
        return classify(store, cx, e);
    }
    CallFailure::Instantiate(truncate(&format!("{e:#}"), MAX_TEXT_BYTES).to_owned())
}

fn classify(store: &Store<CallState>, cx: &CallContext, e: wasmtime::Error) -> CallFailure {
    if let Some(Trap::Interrupt) = e.downcast_ref::<Trap>() {
        return CallFailure::Timeout(cx.limits.deadline);
    }
    if store.data().limiter.memory_refused() {
        return match store.data().limiter.budget_refusal() {
            Some(Refusal::TenantShare(limit)) => CallFailure::TenantMemoryShare(limit),
            Some(Refusal::ServerTotal(limit)) => CallFailure::ServerMemoryBudget(limit),
            None => CallFailure::MemoryLimit(cx.limits.memory_bytes),
        };
    }
    CallFailure::Trap(truncate(&format!("{e:#}"), MAX_TEXT_BYTES).to_owned())
}

/// Advances the engine's epoch on its own thread; stops when dropped.
struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    fn start(engine: &Engine) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let weak = engine.weak();
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("plugin-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    match weak.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            })
            .ok();
        if thread.is_none() {
            tracing::error!(
                "could not start the plugin epoch thread; plugin deadlines will not fire"
            );
        }
        Self { stop, thread }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine() -> PluginEngine {
        PluginEngine::new(&EngineSettings {
            max_instances: 2,
            max_memory_bytes: 16 << 20,
        })
        .unwrap()
    }

    /// A component of `n` instances of an empty core module, as text.
    fn component_with_core_instances(n: u32) -> String {
        let instances: String = (0..n)
            .map(|i| format!("(core instance $i{i} (instantiate $m))"))
            .collect();
        format!("(component (core module $m) {instances})")
    }

    #[test]
    fn a_component_larger_than_a_pool_slot_is_refused_when_compiled() {
        let engine = engine();
        let fits = component_with_core_instances(CORE_INSTANCES_PER_COMPONENT);
        Component::new(engine.engine(), fits)
            .map_err(compile_error)
            .unwrap();
        let too_many = component_with_core_instances(CORE_INSTANCES_PER_COMPONENT + 1);
        let error = Component::new(engine.engine(), too_many)
            .map_err(compile_error)
            .err()
            .unwrap();
        assert!(matches!(error, LoadError::ExceedsSlot(_)), "{error}");
        assert!(error.to_string().contains("16 core instances"), "{error}");
    }
}

#[cfg(test)]
mod compile_bound {
    use super::*;

    /// A component whose core module is `bytes` of code: functions of
    /// 64 KiB of arithmetic each, the shape that costs Cranelift most per
    /// byte among valid code (long bodies, many live values).
    fn component_of_code(bytes: usize) -> String {
        let per_function = 64 << 10;
        // `local.get 0 local.get 0 i32.add local.set 0` is 7 bytes.
        let body = "local.get 0 local.get 0 i32.add local.set 0 ".repeat(per_function / 7);
        let functions: String = (0..bytes / per_function)
            .map(|i| format!("(func $f{i} (param i32) (result i32) {body} local.get 0)"))
            .collect();
        format!("(component (core module {functions}))")
    }

    /// What one compile at the size cap costs: run with `--ignored`
    /// (it takes seconds); the figure is in docs/operations.md.
    #[test]
    #[ignore]
    fn measure_a_compile_at_the_size_cap() {
        let engine = PluginEngine::new(&EngineSettings {
            max_instances: 1,
            max_memory_bytes: 16 << 20,
        })
        .unwrap();
        let text = component_of_code(4 << 20);
        let started = Instant::now();
        Component::new(engine.engine(), &text).unwrap();
        eprintln!(
            "compiling 4 MiB of code took {:?} (single-threaded)",
            started.elapsed()
        );
    }
}
