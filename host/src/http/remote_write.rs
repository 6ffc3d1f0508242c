//! `POST /api/v1/push`: Prometheus remote write 1.0 into the one write
//! pipeline. The path is Cortex's and Mimir's, where remote-write users
//! look for it (`/api/v1/write` is our JSON API).
//!
//! The body is a snappy block, sent with `Content-Encoding: snappy`. That
//! coding is the protocol's own framing, not an HTTP transfer coding we
//! undo for every route: this route sits outside the decompression layer
//! and decodes the block itself, so the decompressed size is checked
//! against `api.max_body_bytes` from the block's header before anything is
//! allocated.
//!
//! Status codes follow what Prometheus does with them: 204 when every
//! sample was stored; a 4xx is dropped by Prometheus without a retry (a
//! bad body, or `partial_write` when some samples were rejected and the
//! others stored, so a retry would store those twice); 5xx is retried
//! with backoff, and 429 too when the queue's `retry_on_http_429` is set.
//! Nothing the client sends can make it retry forever.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::agent_write::{decode_off_worker, partial_write, write_decoded};
use super::auth::Caller;
use super::extract::RawBody;
use super::timestamp::now_ms;
use super::{ApiError, AppState};
use crate::ingest::decoded_size;
use crate::ingest::remote_write::{RemoteWriteLimits, decode_remote_write};

pub async fn push(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    check_encoding(&headers)?;
    if body.is_empty() {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let now = now_ms();
    let limits = RemoteWriteLimits {
        max_samples: state.writes.max_metrics_per_request(),
        max_dimensions: state.writes.max_dimensions(),
        max_decoded_bytes: state.api.max_body_bytes,
        max_decoded_memory: decoded_size::budget(state.api.max_body_bytes),
    };
    let decoded = decode_off_worker(body.len(), move || decode_remote_write(&body, limits)).await?;
    match write_decoded(&state, &caller, "remote_write", decoded, now).await? {
        Some((outcome, origins)) if !outcome.rejected.is_empty() => {
            Err(partial_write(&outcome, &origins, "series"))
        }
        _ => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}

/// Remote write bodies are snappy blocks; `Content-Encoding` may say so
/// (Prometheus does) or be absent. Anything else is not remote write.
fn check_encoding(headers: &HeaderMap) -> Result<(), ApiError> {
    let mut values = headers.get_all(header::CONTENT_ENCODING).iter();
    let ok = match (values.next(), values.next()) {
        (None, _) => true,
        (Some(value), None) => value
            .to_str()
            .is_ok_and(|v| v.trim().eq_ignore_ascii_case("snappy")),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_content_encoding",
            "remote write bodies are snappy blocks: send Content-Encoding: snappy (or none)",
        ))
    }
}
