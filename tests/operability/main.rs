//! End-to-end operability tests: the real `luminate` binary on loopback.
//! Self-metrics, request ids and logs, graceful shutdown, TLS, the OpenAPI
//! document, and the deploy/ artifacts.

mod api_fuzz;
mod deploy;
mod docs;
mod logs;
mod openapi;
/// Path constants of the components the root build.rs compiles.
mod plugins {
    include!(concat!(env!("OUT_DIR"), "/plugins.rs"));
}
mod schema;
mod self_metrics;
mod server;
mod shutdown;
mod tls;
