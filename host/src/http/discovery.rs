//! Discovery: which metrics, dimension keys and values a tenant has.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};

use super::extract::{ApiPath, ApiQuery};
use super::query::parse_metric_name;
use super::{ApiError, AppState, Tenant};

/// Values returned when the request gives no `limit`.
const DEFAULT_VALUES_LIMIT: usize = 1_000;

#[derive(Serialize)]
pub struct MetricsBody {
    pub metrics: Vec<String>,
}

pub async fn list_metrics(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
) -> Result<Json<MetricsBody>, ApiError> {
    let metrics = state.reads.list_metrics(&tenant).await?;
    Ok(Json(MetricsBody { metrics }))
}

#[derive(Serialize)]
pub struct DimensionsBody {
    pub metric: String,
    pub dimensions: Vec<String>,
}

pub async fn list_dimension_keys(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<DimensionsBody>, ApiError> {
    let metric = parse_metric_name(Some(&name))?;
    let dimensions = state.reads.list_dimension_keys(&tenant, &metric).await?;
    Ok(Json(DimensionsBody { metric, dimensions }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValuesParams {
    /// Text, so that a bad number is answered by us, not by serde's message.
    limit: Option<String>,
}

#[derive(Serialize)]
pub struct ValuesBody {
    pub metric: String,
    pub key: String,
    pub values: Vec<String>,
    pub truncated: bool,
}

pub async fn list_dimension_values(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    ApiPath((name, key)): ApiPath<(String, String)>,
    ApiQuery(params): ApiQuery<ValuesParams>,
) -> Result<Json<ValuesBody>, ApiError> {
    let metric = parse_metric_name(Some(&name))?;
    if key.len() > 100 || !crate::model::is_valid_key(&key) {
        return Err(ApiError::bad_request(
            "invalid_dimension_key",
            "the dimension key must match ^[a-zA-Z_][a-zA-Z0-9_.]*$",
        ));
    }
    let max = state.api.max_discovery_values;
    let limit = match params.limit.as_deref() {
        None => DEFAULT_VALUES_LIMIT.min(max),
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => n,
            _ => {
                return Err(ApiError::bad_request(
                    "invalid_limit",
                    format!("limit must be an integer from 1 to {max}"),
                ));
            }
        },
    };
    let (values, truncated) = state
        .reads
        .list_dimension_values(&tenant, &metric, &key, limit)
        .await?;
    Ok(Json(ValuesBody {
        metric,
        key,
        values,
        truncated,
    }))
}
