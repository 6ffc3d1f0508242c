//! `POST /api/v1/write`.

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use super::auth::Caller;
use super::extract::{RawBody, json_error};
use super::timestamp::now_ms;
use super::write_body::{WriteBodyError, WriteBodyLimits, decode_write_body};
use super::{ApiError, AppState};
use crate::pipeline::{Rejection, WriteOutcome};

#[derive(Serialize)]
pub struct WriteResponse {
    pub accepted: usize,
    pub rejected: usize,
    pub errors: Vec<RejectionBody>,
}

#[derive(Serialize)]
pub struct RejectionBody {
    pub index: usize,
    pub code: &'static str,
    pub message: String,
}

impl From<WriteOutcome> for WriteResponse {
    fn from(outcome: WriteOutcome) -> Self {
        Self {
            accepted: outcome.accepted,
            rejected: outcome.rejected.len(),
            errors: outcome
                .rejected
                .into_iter()
                .map(
                    |Rejection {
                         index,
                         code,
                         message,
                     }| RejectionBody {
                        index,
                        code,
                        message,
                    },
                )
                .collect(),
        }
    }
}

/// Bodies up to this size are decoded on the async worker (well under a
/// millisecond).
const DECODE_IN_PLACE_BYTES: usize = 256 << 10;

pub async fn write(
    State(state): State<AppState>,
    caller: Caller,
    RawBody(body): RawBody,
) -> Result<Json<WriteResponse>, ApiError> {
    let now = now_ms();
    let limits = WriteBodyLimits {
        max_metrics: state.writes.max_metrics_per_request(),
        max_dimensions: state.writes.max_dimensions(),
    };
    // A large body takes milliseconds of CPU to decode: on the blocking
    // pool, so it cannot stall other requests on this async worker. Small
    // ones are cheaper decoded in place than handed over.
    let items = if body.len() > DECODE_IN_PLACE_BYTES {
        tokio::task::spawn_blocking(move || decode_write_body(&body, now, limits))
            .await
            .map_err(ApiError::internal)??
    } else {
        let items = decode_write_body(&body, now, limits)?;
        drop(body);
        items
    };
    // A batch costs its size, decoded or not: a flood of bad metrics is
    // still a flood.
    if let Err(e) = caller.rates.check_metrics(items.len()) {
        crate::telemetry::metrics().rate_limit_rejected(caller.tenant().as_str(), "metrics");
        return Err(e.into());
    }
    let outcome = state.writes.write(caller.tenant(), items, now).await?;
    crate::telemetry::metrics().ingest.record(
        "json",
        outcome.accepted as u64,
        outcome.rejected.iter().map(|r| r.code),
    );
    Ok(Json(outcome.into()))
}

impl From<WriteBodyError> for ApiError {
    fn from(e: WriteBodyError) -> Self {
        match e {
            WriteBodyError::Json(e) => json_error(e),
            WriteBodyError::TooManyMetrics { .. } => {
                ApiError::bad_request("too_many_metrics", e.to_string())
            }
        }
    }
}
