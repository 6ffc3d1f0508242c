//! Luminate: a multi-tenant metrics server.
//!
//! A table of contents; see docs/architecture.md for the map and invariants.
//!
//! - [`model`]: metrics, tenants, queries and validation; no I/O.
//! - [`config`]: settings from file, environment and flags.
//! - [`storage`]: the `MetricsStore` trait and its backends.
//! - [`http`]: the API; the only layer that knows HTTP and JSON.
//! - [`ingest`]: decoders for the agents' protocols (Influx line protocol, ...).
//! - [`auth`]: JWT verification and scopes.
//! - [`cluster`]: state shared by stateless pods over ClickHouse.
//! - [`limits`]: per-tenant rate limits and cardinality.
//! - [`plugins`]: sandboxed WebAssembly plugins.
//! - [`telemetry`]: the server's own metrics and logs.
//! - [`pipeline`]: the write and read paths between HTTP and storage.
//! - [`server`]: assembles and runs the server (used by `main` and tests).
//! - [`retention`]: the background retention sweep.

pub mod auth;
pub mod cluster;
pub mod config;
pub mod http;
pub mod ingest;
pub mod limits;
pub mod model;
pub mod pipeline;
pub mod plugins;
pub mod promql;
pub mod retention;
pub mod server;
pub mod storage;
pub mod telemetry;

/// The allocator the `luminate` binary runs with, and that benchmarks
/// must use to measure what the server does (`#[global_allocator] static A:
/// ServerAllocator = ServerAllocator;`). Every write allocates a few
/// strings per metric on one worker thread and frees them on another (the
/// storage pool): glibc's malloc spent a third of an ingest profile there,
/// much of it waiting on arena locks, and its per-thread arenas kept RSS
/// high after bursts. mimalloc's thread-local free lists avoid both.
pub use mimalloc::MiMalloc as ServerAllocator;
