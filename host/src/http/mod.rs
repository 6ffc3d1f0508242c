//! HTTP: the only layer that knows HTTP and JSON. Handlers decode requests
//! into domain types, call a pipeline, and encode the answer; every error
//! leaves through [`ApiError`].
//!
//! - [`router`]: routes, grouped by the scope they need, and the body layers.
//! - [`state`]: what handlers share ([`AppState`]) and the lifecycle flags.
//! - [`tenant`]: the ONE place that decides which tenant a request acts for.
//! - [`content_encoding`]: request `Content-Encoding` in any letter case, or 415.
//! - [`extract`]: extractors that answer every failure in our error shape.
//! - [`write`] + [`write_body`]: `POST /api/v1/write` and its fast decoder.
//! - The agents' protocols, decoded by `crate::ingest`: [`remote_write`]
//!   (`POST /api/v1/push`), [`otlp_write`] (`POST /v1/metrics`),
//!   [`influx_write`] (`POST /api/v2/write` and `/write`); [`agent_write`]:
//!   what they share (the pipeline, self-metrics, the partial-write answer).
//! - [`query`]: `POST /api/v1/query` (aggregate, range, rate).
//! - [`discovery`]: metric names, dimension keys and values.
//! - [`retention`]: `DELETE /api/v1/metrics/{name}`.
//! - [`plugins`] + [`bindings`]: plugin management and tenants' plugin chains.
//! - [`probes`]: `/healthz`, `/readyz`, `/startupz`.
//! - [`timestamp`]: RFC 3339 or ms timestamps in requests.
//! - [`auth`]: token, scope and request-rate checks as route layers; [`Caller`](auth::Caller).
//! - [`limits`]: rate-limit errors as 429/413, `GET /api/v1/cardinality`.
//! - [`request_log`]: request ids, one log line and metrics sample per request.
//! - [`self_metrics`]: `GET /metrics`; [`openapi`]: `GET /api/v1/openapi.json`.
//! - [`serve`]: the accept loop with the connection bounds of `[server]`;
//!   [`body_deadline`]: the whole-body read deadline.
//! - [`shutdown`]: stop signals and the grace period; [`tls`]: HTTPS.

pub mod agent_write;
pub mod auth;
pub mod bindings;
pub mod body_deadline;
pub mod content_encoding;
pub mod discovery;
pub mod error;
pub mod extract;
pub mod influx_write;
pub mod limits;
pub mod openapi;
pub mod otlp_write;
pub mod plugins;
pub mod probes;
pub mod prometheus;
pub mod query;
pub mod query_body;
pub mod remote_write;
pub mod request_log;
pub mod retention;
pub mod router;
pub mod self_metrics;
pub mod serve;
pub mod shutdown;
pub mod state;
pub mod tenant;
pub mod timestamp;
pub mod tls;
pub mod write;
pub mod write_body;

pub use error::ApiError;
pub use router::router;
pub use state::{AppState, Lifecycle};
pub use tenant::Tenant;
