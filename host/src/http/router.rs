//! Routes, grouped by the permission they need, so authorization can wrap
//! each group with one `route_layer` (issue 3): `write` for ingestion,
//! `read` for query and discovery, `admin` for deletion. Probes need none.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::middleware;
use axum::routing::{delete, get, post};
use tower_http::decompression::RequestDecompressionLayer;

use super::{
    ApiError, AppState, discovery, influx_write, limits, openapi, otlp_write, probes, query,
    remote_write, request_log, retention, self_metrics, write,
};
use crate::auth::Scope;
use crate::limits::RateKind;

/// Routes that ingest data (scope `write`) whose bodies may carry an HTTP
/// content coding (gzip, zstd).
pub fn write_routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/write", post(write::write))
        .route("/api/v2/write", post(influx_write::write_lines))
        .route("/write", post(influx_write::write_lines))
        .route("/v1/metrics", post(otlp_write::export))
}

/// Prometheus remote write (scope `write`): its body is a snappy block the
/// handler decodes itself, so it is not under the decompression layer.
pub fn remote_write_routes() -> Router<AppState> {
    Router::new().route("/api/v1/push", post(remote_write::push))
}

/// Routes that read data (scope `read`).
pub fn read_routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/query", post(query::query))
        .route("/api/v1/metrics", get(discovery::list_metrics))
        .route(
            "/api/v1/metrics/{name}/dimensions",
            get(discovery::list_dimension_keys),
        )
        .route(
            "/api/v1/metrics/{name}/dimensions/{key}/values",
            get(discovery::list_dimension_values),
        )
        .route("/api/v1/cardinality", get(limits::cardinality))
}

/// Routes that delete or reconfigure (scope `admin`).
pub fn admin_routes() -> Router<AppState> {
    Router::new().route("/api/v1/metrics/{name}", delete(retention::delete_metric))
}

/// Unauthenticated liveness, readiness and startup probes.
pub fn probe_routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(probes::healthz))
        .route("/readyz", get(probes::readyz))
        .route("/startupz", get(probes::startupz))
}

/// Unauthenticated operational endpoints: the API document, and where the
/// self-metrics went (they are on their own listener, see `self_metrics`).
pub fn operations_routes() -> Router<AppState> {
    Router::new()
        .route("/metrics", get(self_metrics::not_on_the_api_port))
        .route("/api/v1/openapi.json", get(openapi::serve_openapi))
}

/// The whole API. Bodies are decompressed (gzip, zstd) before the size limit
/// applies, so the limit caps the decompressed size.
pub fn router(state: AppState) -> Router {
    // Each group is guarded by its scope and request bucket (before the body).
    let access = state.access.clone();
    let api = Router::new()
        .merge(access.protect(write_routes(), Scope::Write, RateKind::WriteRequests))
        .merge(access.protect(read_routes(), Scope::Read, RateKind::QueryRequests))
        .merge(access.protect(
            super::prometheus::routes(),
            Scope::Read,
            RateKind::QueryRequests,
        ))
        .merge(access.protect(admin_routes(), Scope::Admin, RateKind::QueryRequests))
        // Plugin management checks its own caller: the operator token is
        // not a tenant token (see http/plugins.rs).
        .merge(super::plugins::routes())
        .merge(super::bindings::routes())
        .layer(DefaultBodyLimit::max(state.api.max_body_bytes))
        .layer(
            // Only the gzip and zstd decoders are compiled in.
            RequestDecompressionLayer::new().gzip(true).zstd(true),
        )
        .layer(middleware::from_fn(
            super::content_encoding::normalize_content_encoding,
        ));
    let remote_write = access
        .protect(remote_write_routes(), Scope::Write, RateKind::WriteRequests)
        .layer(DefaultBodyLimit::max(state.api.max_body_bytes));
    Router::new()
        .merge(probe_routes())
        .merge(remote_write)
        .merge(operations_routes())
        .merge(api)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        // Outermost: sees the final status of everything above.
        .layer(middleware::from_fn(request_log::observe))
}

async fn not_found() -> ApiError {
    ApiError::not_found("not_found", "no such endpoint; see docs/api.md")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not accept that method; see docs/api.md",
    )
}
