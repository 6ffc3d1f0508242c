//! Rate-limit and cardinality errors as HTTP, and `GET /api/v1/cardinality`.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::{Caller, RATELIMIT, RATELIMIT_POLICY};
use super::{ApiError, AppState};
use crate::limits::{Estimate, Limit, RateLimitError};

impl From<RateLimitError> for ApiError {
    /// Over a rate: 429 with `Retry-After`, `RateLimit-Policy`, `RateLimit`
    /// and a body naming the limit, its value and when to retry. A batch
    /// that can never fit the bucket: 413, since retrying cannot help.
    fn from(e: RateLimitError) -> Self {
        match &e {
            RateLimitError::Exceeded {
                kind,
                quota,
                tier,
                retry_after,
            } => {
                let retry_secs = (retry_after.as_secs_f64().ceil() as u64).max(1);
                let name = kind.name();
                let mut api =
                    ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", e.to_string())
                        .with_detail("limit", json!(kind.setting()))
                        .with_detail("value", json!(quota))
                        .with_detail("tier", json!(&**tier))
                        .with_detail("retry_after_seconds", json!(retry_secs))
                        .with_detail("retry_after_ms", json!(retry_after.as_millis() as u64))
                        .with_header(header::RETRY_AFTER, HeaderValue::from(retry_secs));
                for (h, v) in [
                    (RATELIMIT_POLICY, format!("\"{name}\";q={quota};w=1")),
                    (RATELIMIT, format!("\"{name}\";r=0;t={retry_secs}")),
                ] {
                    if let Ok(v) = HeaderValue::try_from(v) {
                        api = api.with_header(h, v);
                    }
                }
                api
            }
            RateLimitError::BatchTooLarge {
                requested,
                quota,
                tier,
            } => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "batch_exceeds_rate_limit",
                e.to_string(),
            )
            .with_detail("limit", json!("metrics_per_second"))
            .with_detail("value", json!(quota))
            .with_detail("requested", json!(requested))
            .with_detail("tier", json!(&**tier)),
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct CardinalityParams {
    /// How many metrics and dimension keys to list (largest first).
    pub limit: Option<usize>,
}

/// Upper bound on `limit`: a report lists names, not data, but stays small.
pub const MAX_REPORT_ROWS: usize = 10_000;

/// `GET /api/v1/cardinality?limit=N`: the caller's series estimates per
/// metric and distinct-value estimates per dimension key, largest first.
pub async fn cardinality(
    State(state): State<AppState>,
    caller: Caller,
    params: Result<Query<CardinalityParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(params) =
        params.map_err(|e| ApiError::bad_request("invalid_parameter", e.body_text()))?;
    let top_n = params
        .limit
        .unwrap_or(state.cardinality_top_n)
        .min(MAX_REPORT_ROWS);
    let limits = &caller.rates.resolved.limits;
    let report = state
        .cardinality
        .report(caller.tenant(), limits, top_n)
        .await;
    let rows = |rows: &[Estimate], label: &str| -> Vec<Value> {
        rows.iter()
            .map(|r| {
                let mut row = serde_json::Map::new();
                row.insert("name".into(), json!(r.name));
                row.insert(label.into(), json!(r.estimate));
                Value::Object(row)
            })
            .collect()
    };
    let limit = |l: Limit| match l {
        Limit::Unlimited => Value::Null,
        Limit::Max(n) => json!(n),
    };
    Ok(Json(json!({
        "tenant": caller.tenant().as_str(),
        "tier": &*caller.rates.resolved.tier,
        "series": {
            "estimate": report.series,
            "limit": limit(report.max_series_per_tenant),
        },
        "metrics": {
            "limit_per_metric": limit(report.max_series_per_metric),
            "total": report.metrics_total,
            "max_tracked": report.max_tracked_metrics,
            "top": rows(&report.metrics, "series"),
        },
        "dimensions": {
            "total": report.dimension_keys_total,
            "max_tracked": report.max_tracked_keys,
            "untracked": {
                "keys": report.untracked_keys,
                "values": report.untracked_values,
            },
            "top": rows(&report.dimension_keys, "values"),
        },
    })))
}
