//! Self-observability: the server's own Prometheus metrics and structured
//! logs (issue 6). No HTTP types here: `http/self_metrics.rs` serves the
//! metrics and `http/request_log.rs` records one line per request.
//!
//! - [`metrics`]: the registry and the typed handles every subsystem records
//!   through (`telemetry::metrics().storage.writes.inc_by(n)`).
//! - [`logging`]: JSON logs in server mode, pretty logs in `--dev`.
//! - [`request_id`]: the id that ties a request's log lines together.
//! - [`instrumented_store`]: storage metrics for any backend, as a decorator.

pub mod instrumented_store;
pub mod logging;
pub mod metrics;
pub mod request_id;

pub use instrumented_store::InstrumentedStore;
pub use logging::LogFormat;
pub use metrics::{PluginHook, StorageOperation, metrics};
pub use request_id::RequestId;
