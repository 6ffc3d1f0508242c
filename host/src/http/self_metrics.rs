//! `GET /metrics`: Luminate's own metrics in the Prometheus text format.
//!
//! Served only on the metrics listener (`telemetry.metrics_listen`), never
//! on the API port: the series carry tenant ids and plugin names, and the
//! endpoint needs no credential (scrapers hold none), so who may read it is
//! decided by who can reach that address.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use super::ApiError;
use crate::telemetry::metrics;
use crate::telemetry::metrics::TEXT_CONTENT_TYPE;

/// The whole metrics listener: `GET /metrics`, and 404 for anything else.
pub fn metrics_router() -> Router {
    Router::new()
        .route("/metrics", get(serve_metrics))
        .fallback(|| async { ApiError::not_found("not_found", "only GET /metrics is served here") })
}

pub async fn serve_metrics() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, TEXT_CONTENT_TYPE)],
        metrics().encode_text(),
    )
}

/// `/metrics` on the API port: a pointer to where the metrics are.
pub async fn not_on_the_api_port() -> ApiError {
    ApiError::not_found(
        "not_found",
        "self-metrics are served on the metrics listener (telemetry.metrics_listen, default 127.0.0.1:9464), not on the API port",
    )
}
