//! `GET /metrics`: Luminate's own metrics in the Prometheus text format.
//! Unauthenticated, like the probes: scrapers run inside the cluster and the
//! series carry no tenant data beyond tenant ids.

use axum::http::header;
use axum::response::IntoResponse;

use crate::telemetry::metrics;
use crate::telemetry::metrics::TEXT_CONTENT_TYPE;

pub async fn serve_metrics() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, TEXT_CONTENT_TYPE)],
        metrics().encode_text(),
    )
}
