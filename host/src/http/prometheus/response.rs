//! The Prometheus API's envelope: `{"status":"success","data":…}` or
//! `{"status":"error","errorType":…,"error":…}` with the status codes
//! its documentation gives (400 `bad_data`, 422 `execution`, 503
//! `timeout` and `unavailable`), and samples as `[seconds, "value"]`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value as Json_, json};

use crate::promql::aggregate::format_value;
use crate::promql::{Labels, PromqlError, Value};
use crate::storage::StorageError;

pub fn success(data: Json_) -> Response {
    Json(json!({"status": "success", "data": data})).into_response()
}

pub fn error(e: &PromqlError) -> Response {
    let (status, kind, message) = match e {
        PromqlError::BadData(m) => (StatusCode::BAD_REQUEST, "bad_data", m.clone()),
        PromqlError::Execution(m) => (StatusCode::UNPROCESSABLE_ENTITY, "execution", m.clone()),
        PromqlError::Timeout(_) => (StatusCode::SERVICE_UNAVAILABLE, "timeout", e.to_string()),
        PromqlError::Storage(StorageError::TooLarge(budget)) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "execution",
            budget.to_string(),
        ),
        PromqlError::Storage(StorageError::InvalidQuery(m)) => {
            (StatusCode::BAD_REQUEST, "bad_data", m.clone())
        }
        PromqlError::Storage(StorageError::Unavailable { message, .. }) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            message.clone(),
        ),
        PromqlError::Storage(StorageError::Internal(m)) => {
            tracing::error!(error = %m, "storage failure in a PromQL query");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "storage failure; see the server log".to_owned(),
            )
        }
    };
    (
        status,
        Json(json!({"status": "error", "errorType": kind, "error": message})),
    )
        .into_response()
}

pub fn labels_json(labels: &Labels) -> Json_ {
    let map: Map<String, Json_> = labels
        .iter()
        .map(|(name, value)| (name.to_owned(), Json_::String(value.to_owned())))
        .collect();
    Json_::Object(map)
}

/// `[seconds, "value"]`.
fn sample(t_ms: i64, value: f64) -> Json_ {
    json!([t_ms as f64 / 1e3, format_value(value)])
}

/// An instant query's `data`, evaluated at `t_ms`.
pub fn instant(value: Value, t_ms: i64) -> Json_ {
    match value {
        Value::Scalar(values) => json!({
            "resultType": "scalar",
            "result": sample(t_ms, values.first().copied().unwrap_or(f64::NAN)),
        }),
        Value::String(s) => json!({"resultType": "string", "result": [t_ms as f64 / 1e3, s]}),
        Value::Vector(series) => json!({
            "resultType": "vector",
            "result": series
                .iter()
                .filter_map(|s| {
                    let v = s.values.first().copied().flatten()?;
                    Some(json!({"metric": labels_json(&s.labels), "value": sample(t_ms, v)}))
                })
                .collect::<Vec<_>>(),
        }),
        Value::Matrix(mut series) => {
            series.sort_by(|a, b| a.labels.cmp(&b.labels));
            json!({
                "resultType": "matrix",
                "result": series
                    .iter()
                    .map(|s| json!({
                        "metric": labels_json(&s.labels),
                        "values": s.points.iter().map(|&(t, v)| sample(t, v)).collect::<Vec<_>>(),
                    }))
                    .collect::<Vec<_>>(),
            })
        }
    }
}

/// A range query's `data`: every series with its samples at the steps
/// where it has one, sorted by labels.
pub fn range(value: Value, times: &[i64]) -> Result<Json_, PromqlError> {
    let mut series = match value {
        Value::Vector(series) => series,
        Value::Scalar(values) => vec![crate::promql::StepSeries {
            labels: Labels::default(),
            values: values.into_iter().map(Some).collect(),
        }],
        other => {
            return Err(PromqlError::bad_data(format!(
                "invalid expression type \"{}\" for range query, must be Scalar or instant Vector",
                other.type_name()
            )));
        }
    };
    series.sort_by(|a, b| a.labels.cmp(&b.labels));
    let result: Vec<Json_> = series
        .iter()
        .map(|s| {
            let values: Vec<Json_> = s
                .values
                .iter()
                .zip(times)
                .filter_map(|(v, &t)| v.map(|v| sample(t, v)))
                .collect();
            json!({"metric": labels_json(&s.labels), "values": values})
        })
        .collect();
    Ok(json!({"resultType": "matrix", "result": result}))
}
