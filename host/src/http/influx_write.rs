//! `POST /api/v2/write` (InfluxDB 2 clients, Telegraf `outputs.influxdb_v2`)
//! and `POST /write` (InfluxDB 1.x clients): Influx line protocol into the
//! one write pipeline.
//!
//! Answers as InfluxDB does where clients act on it: 204 with no body when
//! every point was stored; 400 when some were not (the others are stored;
//! clients do not retry a 400, and should not, since the stored points
//! would be written twice); 413 for a body with too many points (Telegraf
//! splits the batch and retries); 429 and 503 for retryable conditions.
//! Error bodies have our shape, with the line number of every rejection.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::agent_write::{decode_off_worker, partial_write, write_decoded};
use super::auth::Caller;
use super::extract::{ApiQuery, RawBody};
use super::timestamp::now_ms;
use super::{ApiError, AppState};
use crate::ingest::influx::{InfluxLimits, Precision, decode_lines};

/// Query parameters. `bucket`, `org`, `orgID` (v2) and `db`, `rp`,
/// `consistency` (v1) are accepted and ignored: the token decides the tenant.
#[derive(Deserialize)]
pub struct WriteParams {
    precision: Option<String>,
}

pub async fn write_lines(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<WriteParams>,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let precision = match params.precision.as_deref() {
        None | Some("") => Precision::Nanoseconds,
        Some(text) => Precision::parse(text).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_precision",
                format!(
                    "precision {:?} is not one of ns, us, ms, s (or n, u, m, h)",
                    text.chars().take(16).collect::<String>()
                ),
            )
        })?,
    };
    let now = now_ms();
    let limits = InfluxLimits {
        max_points: state.writes.max_metrics_per_request(),
        max_dimensions: state.writes.max_dimensions(),
    };
    // Line protocol is not compressed by the protocol: the JSON API's
    // threshold would do, the shared one is smaller and only costs a hop.
    let decoded = decode_off_worker(body.len(), move || {
        decode_lines(&body, precision, now, limits)
    })
    .await?;
    match write_decoded(&state, &caller, "influx", decoded, now).await? {
        Some((outcome, origins)) if !outcome.rejected.is_empty() => {
            Err(partial_write(&outcome, &origins, "line"))
        }
        _ => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}
