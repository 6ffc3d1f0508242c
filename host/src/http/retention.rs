//! `DELETE /api/v1/metrics/{name}?before=<ts>`: drop a metric's old points.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};

use super::extract::{ApiPath, ApiQuery};
use super::query::parse_metric_name;
use super::timestamp::parse_timestamp_text;
use super::{ApiError, AppState, Tenant};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteParams {
    before: Option<String>,
}

#[derive(Serialize)]
pub struct DeleteBody {
    pub metric: String,
    /// Points with a timestamp before this (ms since the epoch) were deleted.
    pub before: i64,
}

pub async fn delete_metric(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    ApiPath(name): ApiPath<String>,
    ApiQuery(params): ApiQuery<DeleteParams>,
) -> Result<Json<DeleteBody>, ApiError> {
    let metric = parse_metric_name(Some(&name))?;
    let before = params.before.ok_or_else(|| {
        ApiError::bad_request(
            "missing_field",
            "`before` is required: points older than it are deleted (ms since the epoch or RFC 3339)",
        )
    })?;
    let before = parse_timestamp_text(&before)
        .map_err(|e| ApiError::bad_request("invalid_timestamp", format!("before: {e}")))?;
    state.reads.delete_before(&tenant, &metric, before).await?;
    Ok(Json(DeleteBody { metric, before }))
}
