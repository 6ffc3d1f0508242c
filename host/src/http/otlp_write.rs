//! `POST /v1/metrics`: OTLP/HTTP metrics, protobuf or JSON (the request's
//! `Content-Type`), gzip or not, into the one write pipeline.
//!
//! Answers as the OTLP specification asks, so SDKs and the Collector act
//! on them: 200 with an `ExportMetricsServiceResponse` in the request's
//! encoding, whose `partialSuccess` counts the data points that were
//! rejected (the others are stored) and names the first reasons. A body
//! that cannot be decoded is a 400 in our error shape; exporters retry
//! only 429, 502, 503 and 504 (our rate limits and storage outages), so
//! nothing else is sent twice.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use prost::Message;
use serde_json::json;

use super::agent_write::{decode_off_worker, write_decoded};
use super::auth::Caller;
use super::extract::RawBody;
use super::timestamp::now_ms;
use super::{ApiError, AppState};
use crate::ingest::decoded_size;
use crate::ingest::otlp::{OtlpEncoding, OtlpLimits, decode_otlp};
use crate::pipeline::WriteOutcome;
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceResponse,
};

/// Reasons named in a partial success's message.
const MAX_NAMED: usize = 5;

pub async fn export(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let encoding = encoding_of(&headers)?;
    let now = now_ms();
    let limits = OtlpLimits {
        max_points: state.writes.max_metrics_per_request(),
        max_dimensions: state.writes.max_dimensions(),
        max_decoded_memory: decoded_size::budget(state.api.max_body_bytes),
    };
    let decoded =
        decode_off_worker(body.len(), move || decode_otlp(&body, encoding, limits)).await?;
    let partial = write_decoded(&state, &caller, "otlp", decoded, now)
        .await?
        .and_then(|(outcome, origins)| partial_success(&outcome, &origins));
    Ok(answer(encoding, partial))
}

/// `application/x-protobuf` (also when absent, the protocol's default) or
/// `application/json`, parameters ignored.
fn encoding_of(headers: &HeaderMap) -> Result<OtlpEncoding, ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(OtlpEncoding::Protobuf);
    };
    let essence = value
        .to_str()
        .ok()
        .and_then(|v| v.split(';').next())
        .map(str::trim)
        .unwrap_or_default();
    if essence.eq_ignore_ascii_case("application/x-protobuf") {
        Ok(OtlpEncoding::Protobuf)
    } else if essence.eq_ignore_ascii_case("application/json") {
        Ok(OtlpEncoding::Json)
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "OTLP bodies are application/x-protobuf or application/json",
        ))
    }
}

/// The partial success of a write with rejections: data points (not
/// items: a histogram point is several) and the first reasons.
fn partial_success(outcome: &WriteOutcome, origins: &[u32]) -> Option<ExportMetricsPartialSuccess> {
    if outcome.rejected.is_empty() {
        return None;
    }
    let origin_of = |index: usize| origins.get(index).copied().unwrap_or(0);
    // Rejections are sorted by item, and a point's items are adjacent.
    let mut points = 0i64;
    let mut last = None;
    let mut reasons = Vec::new();
    for rejection in &outcome.rejected {
        let point = origin_of(rejection.index);
        if last != Some(point) {
            points += 1;
            last = Some(point);
            if reasons.len() < MAX_NAMED {
                reasons.push(format!(
                    "data point {point}: {} ({})",
                    rejection.message, rejection.code
                ));
            }
        }
    }
    Some(ExportMetricsPartialSuccess {
        rejected_data_points: points,
        error_message: format!(
            "{points} data points rejected, the others stored; {}",
            reasons.join("; ")
        ),
    })
}

fn answer(encoding: OtlpEncoding, partial: Option<ExportMetricsPartialSuccess>) -> Response {
    match encoding {
        OtlpEncoding::Protobuf => {
            let body = ExportMetricsServiceResponse {
                partial_success: partial,
            }
            .encode_to_vec();
            (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/x-protobuf"),
                )],
                body,
            )
                .into_response()
        }
        // OTLP/JSON writes 64-bit integers as strings.
        OtlpEncoding::Json => axum::Json(match partial {
            None => json!({}),
            Some(p) => json!({"partialSuccess": {
                "rejectedDataPoints": p.rejected_data_points.to_string(),
                "errorMessage": p.error_message,
            }}),
        })
        .into_response(),
    }
}
