//! The Prometheus HTTP API under `/prometheus` (scope `read`): what
//! Grafana's Prometheus data source, promtool and client libraries call.
//! Queries are PromQL ([`crate::promql`]); answers use Prometheus'
//! envelope and error types, not Luminate's JSON API shape, because
//! those clients parse them.

mod params;
mod response;

use std::collections::BTreeSet;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::Uri;
use axum::response::Response;
use axum::routing::get;
use promql_parser::parser::Expr;
use serde_json::json;

use self::params::Params;
use self::response::{error, labels_json, success};
use super::AppState;
use super::auth::Caller;
use super::timestamp::now_ms;
use crate::promql::labels::METRIC_NAME;
use crate::promql::plan::{self, Selection};
use crate::promql::{self as promql, PromqlError, PromqlLimits, Steps};

/// Under `/prometheus`, the URL Grafana's data source is given. Written
/// out in full, not nested, so each path reads as it is served (the
/// OpenAPI check reads them).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/prometheus/api/v1/query", get(query).post(query))
        .route(
            "/prometheus/api/v1/query_range",
            get(query_range).post(query_range),
        )
        .route("/prometheus/api/v1/series", get(series).post(series))
        .route("/prometheus/api/v1/labels", get(labels).post(labels))
        .route("/prometheus/api/v1/label/{name}/values", get(label_values))
        .route("/prometheus/api/v1/metadata", get(metadata))
        .route(
            "/prometheus/api/v1/query_exemplars",
            get(exemplars).post(exemplars),
        )
        .route("/prometheus/api/v1/status/buildinfo", get(buildinfo))
}

/// The server's `[promql]` limits, lowered by the caller's tier.
fn limits(state: &AppState, caller: &Caller) -> PromqlLimits {
    state.promql.for_tenant(&caller.rates.resolved.limits)
}

/// The `timeout` parameter, capped by the server's.
fn with_timeout(params: &Params, mut limits: PromqlLimits) -> Result<PromqlLimits, PromqlError> {
    if let Some(ms) = params.duration("timeout")? {
        limits.timeout = limits
            .timeout
            .min(std::time::Duration::from_millis(ms as u64));
    }
    Ok(limits)
}

async fn query(State(state): State<AppState>, caller: Caller, uri: Uri, body: Bytes) -> Response {
    let params = Params::new(&uri, &body);
    let run = async {
        let limits = with_timeout(&params, limits(&state, &caller))?;
        let text = params.required("query")?.to_owned();
        let at = params.time_or("time", now_ms())?;
        let expr = promql::parse(text, &limits).await?;
        let value = promql::evaluate(
            &state.reads,
            caller.tenant(),
            expr,
            Steps::instant(at),
            limits,
        )
        .await?;
        Ok::<_, PromqlError>(response::instant(value, at))
    };
    match run.await {
        Ok(data) => success(data),
        Err(e) => error(&e),
    }
}

async fn query_range(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
    body: Bytes,
) -> Response {
    let params = Params::new(&uri, &body);
    let run = async {
        let limits = with_timeout(&params, limits(&state, &caller))?;
        let text = params.required("query")?.to_owned();
        let start = params
            .get("start")
            .ok_or_else(|| PromqlError::bad_data("invalid parameter \"start\": missing"))
            .and_then(|_| params.time_or("start", 0))?;
        let end = params
            .get("end")
            .ok_or_else(|| PromqlError::bad_data("invalid parameter \"end\": missing"))
            .and_then(|_| params.time_or("end", 0))?;
        let step = params
            .duration("step")?
            .ok_or_else(|| PromqlError::bad_data("invalid parameter \"step\": missing"))?;
        if end < start {
            return Err(PromqlError::bad_data(
                "invalid parameter \"end\": end timestamp must not be before start time",
            ));
        }
        if step <= 0 {
            return Err(PromqlError::bad_data(
                "invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer",
            ));
        }
        if end.saturating_sub(start) / step >= limits.max_steps as i64 {
            return Err(PromqlError::bad_data(format!(
                "exceeded maximum resolution of {} points per timeseries. Try decreasing the query resolution (?step=XX)",
                limits.max_steps
            )));
        }
        let steps = Steps {
            start_ms: start,
            end_ms: end,
            step_ms: step,
        };
        let times: Vec<i64> = steps.times().collect();
        let expr = promql::parse(text, &limits).await?;
        let value = promql::evaluate(&state.reads, caller.tenant(), expr, steps, limits).await?;
        response::range(value, &times)
    };
    match run.await {
        Ok(data) => success(data),
        Err(e) => error(&e),
    }
}

/// The `[start, end]` of the metadata endpoints: the last 24 hours by
/// default, as Grafana asks for its dashboard's range anyway; a longer
/// span is cut to the server's longest query range, ending at `end` (or a
/// day from now, if later).
fn metadata_range(params: &Params, max_range_ms: i64) -> Result<(i64, i64), PromqlError> {
    let end = params.time_or("end", now_ms())?;
    let start = params.time_or("start", end - 86_400_000)?;
    if end < start {
        return Err(PromqlError::bad_data(
            "invalid parameter \"end\": end timestamp must not be before start time",
        ));
    }
    // promtool asks for a year and more either side of now; nothing is
    // stored a day ahead (validation refuses points past an hour).
    let end = end.min(now_ms() + 86_400_000);
    Ok((start.max(end.saturating_sub(max_range_ms - 1)), end))
}

/// The label sets of the series that `match[]` selects in the range.
async fn matched_series(
    state: &AppState,
    caller: &Caller,
    params: &Params,
) -> Result<Vec<promql::Labels>, PromqlError> {
    let (start, end) = metadata_range(params, state.reads.limits().max_range_ms)?;
    let limits = limits(state, caller);
    let mut selections = std::collections::BTreeMap::new();
    for text in params.all("match[]") {
        let expr = promql::parse(text.to_owned(), &limits).await?;
        let Expr::VectorSelector(selector) = expr else {
            return Err(PromqlError::bad_data(format!(
                "invalid parameter \"match[]\": {text:?} is not a series selector"
            )));
        };
        selections.insert(
            selector.to_string(),
            Selection {
                selector,
                start_ms: start,
                end_ms: end,
            },
        );
    }
    let fetched = plan::fetch(&state.reads, caller.tenant(), selections, &limits).await?;
    let set: BTreeSet<promql::Labels> = fetched.into_values().flatten().map(|s| s.labels).collect();
    Ok(set.into_iter().collect())
}

async fn series(State(state): State<AppState>, caller: Caller, uri: Uri, body: Bytes) -> Response {
    let params = Params::new(&uri, &body);
    let run = async {
        if params.all("match[]").is_empty() {
            return Err(PromqlError::bad_data("no match[] parameter provided"));
        }
        let series = matched_series(&state, &caller, &params).await?;
        Ok(json!(series.iter().map(labels_json).collect::<Vec<_>>()))
    };
    match run.await {
        Ok(data) => success(data),
        Err(e) => error(&e),
    }
}

fn read_error(e: crate::pipeline::read::ReadError) -> PromqlError {
    match e {
        crate::pipeline::read::ReadError::Storage(e) => PromqlError::Storage(e),
        other => PromqlError::execution(other.to_string()),
    }
}

async fn labels(State(state): State<AppState>, caller: Caller, uri: Uri, body: Bytes) -> Response {
    let params = Params::new(&uri, &body);
    let run = async {
        let mut names = BTreeSet::new();
        if params.all("match[]").is_empty() {
            let metrics = state
                .reads
                .list_metrics(caller.tenant())
                .await
                .map_err(read_error)?;
            if !metrics.is_empty() {
                names.insert(METRIC_NAME.to_owned());
            }
            for metric in metrics {
                let keys = state
                    .reads
                    .list_dimension_keys(caller.tenant(), &metric)
                    .await
                    .map_err(read_error)?;
                names.extend(keys.into_iter().filter(|k| !k.starts_with('_')));
            }
        } else {
            for labels in matched_series(&state, &caller, &params).await? {
                names.extend(labels.iter().map(|(name, _)| name.to_owned()));
            }
        }
        Ok(json!(names))
    };
    match run.await {
        Ok(data) => success(data),
        Err(e) => error(&e),
    }
}

async fn label_values(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    uri: Uri,
) -> Response {
    let params = Params::new(&uri, b"");
    let run = async {
        let limit = match params.get("limit") {
            Some(text) => text.parse::<usize>().map_err(|_| {
                PromqlError::bad_data(format!("invalid parameter \"limit\": {text:?}"))
            })?,
            None => 0,
        };
        let max = if limit == 0 {
            limits(&state, &caller).max_series
        } else {
            limit
        };
        let mut values = BTreeSet::new();
        if !params.all("match[]").is_empty() {
            for labels in matched_series(&state, &caller, &params).await? {
                if let Some(value) = labels.get(&name) {
                    values.insert(value.to_owned());
                }
            }
        } else if name == METRIC_NAME {
            values.extend(
                state
                    .reads
                    .list_metrics(caller.tenant())
                    .await
                    .map_err(read_error)?,
            );
        } else {
            for metric in state
                .reads
                .list_metrics(caller.tenant())
                .await
                .map_err(read_error)?
            {
                let (found, _) = state
                    .reads
                    .list_dimension_values(caller.tenant(), &metric, &name, max)
                    .await
                    .map_err(read_error)?;
                values.extend(found);
                if values.len() >= max {
                    break;
                }
            }
        }
        Ok(json!(values.into_iter().take(max).collect::<Vec<_>>()))
    };
    match run.await {
        Ok(data) => success(data),
        Err(e) => error(&e),
    }
}

/// Luminate keeps no metric metadata (type, help, unit): an empty map, as
/// Prometheus answers for metrics it has none for.
async fn metadata(_caller: Caller) -> Response {
    success(json!({}))
}

/// Exemplars are not stored.
async fn exemplars(_caller: Caller) -> Response {
    success(json!([]))
}

/// Grafana reads `version` to pick the PromQL features it offers.
async fn buildinfo(_caller: Caller) -> Response {
    success(json!({
        "version": "2.42.0",
        "revision": env!("CARGO_PKG_VERSION"),
        "branch": "luminate",
        "buildUser": "luminate",
        "buildDate": "",
        "goVersion": "",
    }))
}
