//! Kubernetes-style probes. None of them needs a tenant or a token.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::AppState;

/// The process is alive and serving HTTP.
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Storage answers, the plugins loaded at start-up are compiled and the
/// server is not shutting down.
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    if state.lifecycle.is_draining() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "draining"})),
        );
    }
    if !state.plugins.is_ready() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(
                json!({"status": "starting", "reason": "plugins are still compiling", "plugins": "loading"}),
            ),
        );
    }
    match state.store.health().await {
        Ok(()) => (StatusCode::OK, Json(json!({"status": "ok"}))),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "unavailable", "reason": "storage is not answering"})),
            )
        }
    }
}

/// Initialisation (storage open, listener bound) is done. Plugins compile
/// after that, so a slow compile never trips a start-up probe; while they
/// do, the answer says `"plugins": "loading"` (and `/readyz` waits for them).
pub async fn startupz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    if !state.lifecycle.is_started() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "starting"})),
        );
    }
    if state.plugins.is_ready() {
        (StatusCode::OK, Json(json!({"status": "ok"})))
    } else {
        (
            StatusCode::OK,
            Json(json!({"status": "ok", "plugins": "loading"})),
        )
    }
}
