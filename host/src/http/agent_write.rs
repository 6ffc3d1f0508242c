//! What the agents' protocols (remote write, OTLP, Influx line protocol)
//! share once their body is decoded: the tenant's metrics bucket, the one
//! write pipeline, self-metrics labelled by protocol, and the answer when
//! some items were rejected.

use serde_json::json;

use super::auth::Caller;
use super::{ApiError, AppState};
use crate::ingest::Decoded;
use crate::pipeline::WriteOutcome;

/// Bodies up to this size (as received) are decoded on the async worker;
/// larger ones on the blocking pool, so decoding one cannot stall the other
/// requests of its worker. Compressed protobuf expands about tenfold, so
/// this is well under the JSON API's threshold.
pub const DECODE_IN_PLACE_BYTES: usize = 64 << 10;

/// Runs `decode` in place for a small body, on the blocking pool otherwise.
pub async fn decode_off_worker<T, E>(
    body_len: usize,
    decode: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, ApiError>
where
    T: Send + 'static,
    E: Send + 'static,
    ApiError: From<E>,
{
    if body_len > DECODE_IN_PLACE_BYTES {
        Ok(tokio::task::spawn_blocking(decode)
            .await
            .map_err(ApiError::internal)??)
    } else {
        Ok(decode()?)
    }
}

/// A decoded body's items through the tenant's metrics bucket (a batch
/// costs its size, rejected items included) and the write pipeline.
/// `None` when the body held no items. `origins` come back for the answer.
pub async fn write_decoded(
    state: &AppState,
    caller: &Caller,
    protocol: &'static str,
    decoded: Decoded,
    now_ms: i64,
) -> Result<Option<(WriteOutcome, Vec<u32>)>, ApiError> {
    if decoded.is_empty() {
        return Ok(None);
    }
    if let Err(e) = caller.rates.check_metrics(decoded.len()) {
        crate::telemetry::metrics().rate_limit_rejected(caller.tenant().as_str(), "metrics");
        return Err(e.into());
    }
    let Decoded { items, origins } = decoded;
    let outcome = state.writes.write(caller.tenant(), items, now_ms).await?;
    crate::telemetry::metrics().ingest.record(
        protocol,
        outcome.accepted as u64,
        outcome.rejected.iter().map(|r| r.code),
    );
    Ok(Some((outcome, origins)))
}

/// Rejections listed in a `partial_write` body; `rejected` says how many
/// there were.
pub const MAX_LISTED: usize = 100;

/// 400 `partial_write`: some items were rejected, the others are stored.
/// Agents do not retry a 400, so nothing is written twice. The message
/// names the first rejection (what agents log) and the body lists the
/// first [`MAX_LISTED`], each with its origin in the request, named
/// `origin` (`line`, `series`): `origins[i]` is the origin of item `i`.
pub fn partial_write(outcome: &WriteOutcome, origins: &[u32], origin: &'static str) -> ApiError {
    let origin_of = |index: usize| origins.get(index).copied().unwrap_or(0);
    let (first_origin, first_message) = outcome
        .rejected
        .first()
        .map_or((0, ""), |r| (origin_of(r.index), r.message.as_str()));
    let message = format!(
        "partial write: {} stored, {} rejected; {origin} {first_origin}: {first_message}",
        outcome.accepted,
        outcome.rejected.len(),
    );
    let errors: Vec<_> = outcome
        .rejected
        .iter()
        .take(MAX_LISTED)
        .map(|r| json!({origin: origin_of(r.index), "code": r.code, "message": r.message}))
        .collect();
    ApiError::bad_request("partial_write", message)
        .with_detail("accepted", json!(outcome.accepted))
        .with_detail("rejected", json!(outcome.rejected.len()))
        .with_detail("errors", json!(errors))
}
