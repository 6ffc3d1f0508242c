//! WebAssembly plugins (issue 4): a sandboxed runtime, a registry of
//! installed versions, per-tenant bindings with failure policies, and hot
//! reload. The ABI is `plugin-sdk/wit/plugin.wit` (`luminate:plugin@0.1.0`).
//!
//! Invariants:
//! - one `Engine`; each plugin version compiled once; a fresh `Store` per
//!   call with a memory cap and an epoch deadline; WASI linked with nothing
//!   granted;
//! - a plugin failure affects only its call, then the binding's policy
//!   (fail-open / fail-closed) decides; repeated failures quarantine it
//!   for that tenant's binding only, never for another tenant;
//! - one tenant's instances hold at most its share of the pool slots and
//!   of the plugin memory budget;
//! - plugins never see the tenant or reserved (`_`) dimensions and cannot
//!   set them;
//! - the runtime never sees storage or HTTP.
//!
//! - [`runtime`]: [`PluginRuntime`], the facade the server uses.
//! - [`engine`]: the wasmtime engine, compilation and calls.
//! - [`sandbox`]: the store's data and the capability-free WASI context.
//! - [`limits`]: the per-call memory limiter.
//! - [`abi`]: the ABI version check and kind detection.
//! - [`registry`]: installed versions with atomic swap.
//! - [`bindings`]: tenants' chains, params and failure policies.
//! - [`quarantine`]: failure accounting per (tenant, binding).
//! - [`memory_budget`]: the server-wide plugin memory budget and each
//!   tenant's share of it.
//! - `pending_uploads`: places held under the plugin caps by uploads still compiling.
//! - [`reload`]: the watched plugins directory.
//! - [`repository`]: durable storage of uploads and chains.
//! - [`stage`]: where plugins join the write and query pipelines.
//! - [`chain_input`]: a batch packed and hashed once for a whole chain.
//! - [`series_cache`]: answers of series-only plugins, remembered per
//!   tenant, binding, plugin version and series.
//! - [`wire`]: the ABI's columnar layouts (one text, lists of numbers).
//! - [`manifest`], [`config`], [`telemetry`], [`logging`], [`wit`].

pub mod abi;
pub mod bindings;
pub mod chain_input;
pub mod chain_memory;
pub mod config;
pub mod engine;
pub mod limits;
pub mod logging;
pub mod manifest;
pub mod memory_budget;
mod pending_uploads;
pub mod quarantine;
pub mod registry;
pub mod reload;
pub mod repository;
pub mod runtime;
pub mod sandbox;
pub mod series_cache;
pub mod stage;
pub mod telemetry;
pub mod wire;
pub mod wit;

pub use abi::{ABI_VERSION, PluginKind};
pub use bindings::{Binding, BindingSet, FailurePolicy};
pub use config::PluginsConfig;
pub use engine::CallFailure;
pub use manifest::Manifest;
pub use registry::{PluginScope, PluginSource};
pub use repository::{FsPluginRepository, MemoryPluginRepository, PluginRepository};
pub use runtime::{
    AggregationError, DryRunInput, DryRunOutput, EnrichmentStep, PluginAdminError, PluginRuntime,
    StepOutcome,
};
