//! The plugin admin API:
//! - `GET /api/v1/plugins`: plugins with version, hash, status, bindings
//!   and error counts;
//! - `PUT /api/v1/plugins/{name}`: body = the component's bytes; optional
//!   manifest in `Plugin-Version`, `Plugin-Kind`, `Plugin-Memory-Limit-Bytes`,
//!   `Plugin-Deadline-Ms`, `Plugin-Description` headers;
//! - `DELETE /api/v1/plugins/{name}`;
//! - `POST /api/v1/plugins/{name}/test`: a dry run on sample input.
//!
//! A tenant's admin (scope `admin`) manages the tenant's own plugins; the
//! operator (header `Luminate-Operator-Token`, checked against
//! `plugins.operator_token`) manages global ones.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::extract::{RawBody, read_body};
use super::{ApiError, AppState};
use crate::auth::Scope;
use crate::limits::RateKind;
use crate::model::{Dimensions, Metric, TenantId, Validator};
use crate::plugins::abi::AbiError;
use crate::plugins::bindings::BindingError;
use crate::plugins::engine::LoadError;
use crate::plugins::runtime::{MAX_PLUGIN_BYTES, PluginSummary};
use crate::plugins::{
    AggregationError, DryRunInput, DryRunOutput, Manifest, PluginAdminError, PluginKind,
    PluginScope,
};

pub const OPERATOR_TOKEN_HEADER: &str = "luminate-operator-token";
/// Most sample metrics (or points) in one dry run.
const MAX_DRY_RUN_ITEMS: usize = 10_000;

/// Plugin management routes. They check their own caller ([`PluginManager`])
/// because the operator credential is not a tenant token.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/plugins", get(list))
        .route(
            "/api/v1/plugins/{name}",
            put(upload)
                .delete(remove)
                .layer(DefaultBodyLimit::max(MAX_PLUGIN_BYTES)),
        )
        .route("/api/v1/plugins/{name}/test", post(dry_run))
}

/// Who is managing plugins.
#[derive(Clone, Debug)]
pub enum PluginManager {
    /// The operator: global plugins, every tenant's listing.
    Operator,
    /// A tenant's admin: that tenant's plugins.
    TenantAdmin(TenantId),
}

impl PluginManager {
    pub fn scope(&self) -> PluginScope {
        match self {
            Self::Operator => PluginScope::Global,
            Self::TenantAdmin(t) => PluginScope::Tenant(t.clone()),
        }
    }
}

/// The one check for "this caller is the tenant's admin": a verified token
/// with scope `admin` (or, with authentication disabled, the default
/// tenant). Like the guarded route groups, it charges one request to the
/// tenant's bucket.
pub async fn require_tenant_admin(
    parts: &mut Parts,
    state: &AppState,
) -> Result<TenantId, ApiError> {
    let caller = state
        .access
        .authorize(parts.headers.get(header::AUTHORIZATION), Scope::Admin)?;
    caller.rates.check_request(RateKind::QueryRequests)?;
    Ok(caller.tenant().clone())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl FromRequestParts<AppState> for PluginManager {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(given) = parts.headers.get(OPERATOR_TOKEN_HEADER) {
            let expected = state
                .plugins
                .config()
                .operator_token
                .as_deref()
                .unwrap_or("");
            if !expected.is_empty() && constant_time_eq(given.as_bytes(), expected.as_bytes()) {
                return Ok(Self::Operator);
            }
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_operator_token",
                "the operator token is wrong, or operator access is not configured",
            ));
        }
        Ok(Self::TenantAdmin(require_tenant_admin(parts, state).await?))
    }
}

impl From<PluginAdminError> for ApiError {
    fn from(e: PluginAdminError) -> Self {
        let message = e.to_string();
        match e {
            PluginAdminError::InvalidName(_) => {
                ApiError::bad_request("invalid_plugin_name", message)
            }
            PluginAdminError::TooLarge { .. } => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "plugin_too_large", message)
            }
            PluginAdminError::TooManyPlugins(_) => {
                ApiError::new(StatusCode::CONFLICT, "too_many_plugins", message)
            }
            PluginAdminError::RejectedParams { .. } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_plugin_params",
                message,
            ),
            PluginAdminError::Starting(_) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "plugins_starting", message)
                    .with_header(header::RETRY_AFTER, HeaderValue::from(5u32))
            }
            PluginAdminError::Manifest(_) => ApiError::bad_request("invalid_manifest", message),
            PluginAdminError::MemoryCeiling { .. } => {
                ApiError::bad_request("invalid_manifest", message)
            }
            PluginAdminError::Load { error, .. } => {
                let code = match error {
                    LoadError::Abi(AbiError::VersionMismatch { .. }) => "abi_mismatch",
                    LoadError::Abi(_) => "not_a_plugin",
                    LoadError::Compile(_) => "invalid_component",
                    LoadError::ExceedsSlot(_) => "plugin_exceeds_instance_slot",
                    LoadError::Link(_) => "unsupported_imports",
                };
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
            }
            PluginAdminError::NotFound(_) => ApiError::not_found("plugin_not_found", message),
            PluginAdminError::ManagedByDirectory(_) => {
                ApiError::new(StatusCode::CONFLICT, "managed_by_directory", message)
            }
            PluginAdminError::Bindings(b) => match b {
                BindingError::Invalid(_) => ApiError::bad_request("invalid_bindings", message),
                BindingError::UnknownPlugin(_) => {
                    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "unknown_plugin", message)
                }
                BindingError::WrongKind { .. } => ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "wrong_plugin_kind",
                    message,
                ),
            },
            PluginAdminError::Repository(e) => ApiError::internal(e),
            PluginAdminError::Startup(e) => ApiError::internal(e),
        }
    }
}

/// A failing aggregation plugin is the tenant's own code, not a server
/// fault: 422, naming the plugin.
impl From<AggregationError> for ApiError {
    fn from(e: AggregationError) -> Self {
        let code = match e.failure {
            crate::plugins::CallFailure::NotInstalled => "unknown_plugin",
            crate::plugins::CallFailure::WrongKind { .. } => "wrong_plugin_kind",
            _ => "plugin_failed",
        };
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, e.to_string())
    }
}

fn summary_json(s: &PluginSummary, viewer: &PluginManager) -> Value {
    // A tenant sees only its own tenant (and the defaults) among the
    // bindings of a global plugin, never other tenants.
    let bindings: Vec<&String> = match viewer {
        PluginManager::Operator => s.bindings.iter().collect(),
        PluginManager::TenantAdmin(t) => s
            .bindings
            .iter()
            .filter(|b| *b == "*" || *b == t.as_str())
            .collect(),
    };
    json!({
        "name": s.name,
        "scope": match &s.scope { PluginScope::Global => "global", PluginScope::Tenant(_) => "tenant" },
        "status": s.status(),
        "kind": s.kind.map(PluginKind::as_str),
        "version": s.version,
        "hash": s.hash,
        "source": s.source,
        "description": s.description,
        "memoryLimitBytes": s.limits.as_ref().map(|l| l.memory_bytes),
        "deadlineMs": s.limits.as_ref().map(|l| l.deadline.as_millis() as u64),
        "seriesOnly": s.series_only,
        "loadedAtMs": s.loaded_at_ms,
        "bindings": bindings,
        "calls": s.health.calls,
        "errors": s.health.failures,
        "consecutiveFailures": s.health.consecutive_failures,
        "quarantined": s.health.quarantined,
        "quarantinedBindings": s.health.quarantined_bindings,
        "lastError": s.health.last_error,
        "logLinesDropped": s.log_lines_dropped,
        "loadFailures": s.load_failures,
        "lastLoadFailure": s.last_load_failure.as_ref().map(|f| json!({
            "hash": f.hash, "error": f.error, "atMs": f.at_ms,
        })),
    })
}

async fn list(State(state): State<AppState>, manager: PluginManager) -> Json<Value> {
    let tenant = match &manager {
        PluginManager::Operator => None,
        PluginManager::TenantAdmin(t) => Some(t),
    };
    let plugins: Vec<Value> = state
        .plugins
        .list(tenant)
        .iter()
        .map(|s| summary_json(s, &manager))
        .collect();
    Json(json!({ "plugins": plugins }))
}

fn header(headers: &HeaderMap, name: &str) -> Result<Option<String>, ApiError> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => v.to_str().map(|s| Some(s.trim().to_owned())).map_err(|_| {
            ApiError::bad_request(
                "invalid_manifest",
                format!("header {name} must be visible ASCII"),
            )
        }),
    }
}

fn numeric_header(headers: &HeaderMap, name: &str) -> Result<Option<u64>, ApiError> {
    header(headers, name)?
        .map(|v| {
            v.parse::<u64>().map_err(|_| {
                ApiError::bad_request(
                    "invalid_manifest",
                    format!("header {name} must be an integer"),
                )
            })
        })
        .transpose()
}

fn boolean_header(headers: &HeaderMap, name: &str) -> Result<Option<bool>, ApiError> {
    header(headers, name)?
        .map(|v| match v.to_ascii_lowercase().as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(ApiError::bad_request(
                "invalid_manifest",
                format!("header {name} must be true or false"),
            )),
        })
        .transpose()
}

fn manifest_from_headers(headers: &HeaderMap) -> Result<Manifest, ApiError> {
    let kind = header(headers, "plugin-kind")?
        .map(|k| {
            PluginKind::parse(&k).ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_manifest",
                    "header Plugin-Kind must be validator, enricher or aggregator",
                )
            })
        })
        .transpose()?;
    let manifest = Manifest {
        version: header(headers, "plugin-version")?,
        kind,
        memory_limit_bytes: numeric_header(headers, "plugin-memory-limit-bytes")?,
        deadline_ms: numeric_header(headers, "plugin-deadline-ms")?,
        series_only: boolean_header(headers, "plugin-series-only")?,
        description: header(headers, "plugin-description")?,
    };
    manifest.check().map_err(PluginAdminError::from)?;
    Ok(manifest)
}

/// An uploaded component's bytes. Past the route's ceiling the answer is
/// `plugin_too_large`, like a binary over `plugins.max_plugin_bytes`.
struct PluginBinary(Bytes);

impl<S: Send + Sync> FromRequest<S> for PluginBinary {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        read_body(req, state, || {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "plugin_too_large",
                format!("a plugin binary may be at most {MAX_PLUGIN_BYTES} bytes (plugins.max_plugin_bytes)"),
            )
        })
        .await
        .map(PluginBinary)
    }
}

async fn upload(
    State(state): State<AppState>,
    manager: PluginManager,
    Path(name): Path<String>,
    headers: HeaderMap,
    PluginBinary(body): PluginBinary,
) -> Result<Response, ApiError> {
    if body.is_empty() {
        return Err(ApiError::bad_request(
            "empty_body",
            "the body must be the plugin's .wasm bytes",
        ));
    }
    let manifest = manifest_from_headers(&headers)?;
    let scope = manager.scope();
    let installed = state.plugins.upload(scope, &name, manifest, body).await?;
    let summary = state
        .plugins
        .list(match &manager {
            PluginManager::Operator => None,
            PluginManager::TenantAdmin(t) => Some(t),
        })
        .into_iter()
        .find(|s| s.name == *installed.name && s.scope == installed.scope);
    let body = summary
        .map(|s| summary_json(&s, &manager))
        .unwrap_or(Value::Null);
    // 200 whether the name is new or not: PUT installs this version.
    Ok((StatusCode::OK, Json(body)).into_response())
}

async fn remove(
    State(state): State<AppState>,
    manager: PluginManager,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.plugins.delete(&manager.scope(), &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DryRunMetric {
    name: String,
    value: f64,
    /// Milliseconds since the epoch; defaults to 0.
    #[serde(default)]
    timestamp: i64,
    #[serde(default)]
    dimensions: std::collections::BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DryRunPoint {
    #[serde(default)]
    timestamp: i64,
    value: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DryRunRequest {
    #[serde(default)]
    params: Option<Value>,
    /// For validators and enrichers (and, as one group, aggregators).
    #[serde(default)]
    metrics: Option<Vec<DryRunMetric>>,
    /// For aggregators: groups of points.
    #[serde(default)]
    groups: Option<Vec<Vec<DryRunPoint>>>,
}

async fn dry_run(
    State(state): State<AppState>,
    manager: PluginManager,
    Path(name): Path<String>,
    RawBody(body): RawBody,
) -> Result<Json<Value>, ApiError> {
    let request: DryRunRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request("invalid_json", format!("invalid dry-run body: {e}")))?;
    let plugin = match &manager {
        PluginManager::Operator => state.plugins.get(&PluginScope::Global, &name),
        PluginManager::TenantAdmin(t) => state.plugins.resolve(t, &name),
    }
    .ok_or_else(|| {
        ApiError::not_found(
            "plugin_not_found",
            format!("plugin {name:?} is not installed"),
        )
    })?;
    let params = request.params.unwrap_or_else(|| json!({}));
    if !params.is_object() {
        return Err(ApiError::bad_request(
            "invalid_params",
            "params must be a JSON object",
        ));
    }
    let input = match (request.metrics, request.groups) {
        (Some(metrics), None) => {
            if metrics.len() > MAX_DRY_RUN_ITEMS {
                return Err(ApiError::bad_request(
                    "too_many_metrics",
                    format!("at most {MAX_DRY_RUN_ITEMS} metrics"),
                ));
            }
            let validator = Validator::default();
            let mut checked = Vec::with_capacity(metrics.len());
            for (index, m) in metrics.into_iter().enumerate() {
                let metric = Metric {
                    name: m.name,
                    value: m.value,
                    timestamp_ms: m.timestamp,
                    dimensions: Dimensions::from_pairs(m.dimensions),
                };
                // The shape rules apply; the timestamp window does not.
                validator
                    .validate(&metric, metric.timestamp_ms)
                    .map_err(|e| ApiError::from(e).with_detail("index", json!(index)))?;
                checked.push(metric);
            }
            DryRunInput::Metrics(checked)
        }
        (None, Some(groups)) => {
            if groups.iter().map(Vec::len).sum::<usize>() > MAX_DRY_RUN_ITEMS {
                return Err(ApiError::bad_request(
                    "too_many_points",
                    format!("at most {MAX_DRY_RUN_ITEMS} points"),
                ));
            }
            DryRunInput::Groups(
                groups
                    .into_iter()
                    .map(|g| g.into_iter().map(|p| (p.timestamp, p.value)).collect())
                    .collect(),
            )
        }
        _ => {
            return Err(ApiError::bad_request(
                "invalid_dry_run",
                "give exactly one of `metrics` (validators, enrichers) or `groups` (aggregators)",
            ));
        }
    };
    let caller = match &manager {
        PluginManager::Operator => None,
        PluginManager::TenantAdmin(t) => Some(t),
    };
    let report = state
        .plugins
        .dry_run(caller, plugin, Arc::from(params.to_string()), input)
        .await;
    let logs: Vec<Value> = report
        .logs
        .iter()
        .map(|(level, message)| json!({ "level": format!("{level:?}").to_ascii_lowercase(), "message": message }))
        .collect();
    let (ok, result) = match report.result {
        Ok(DryRunOutput::Verdicts(verdicts)) => (
            true,
            json!({ "verdicts": verdicts.into_iter().map(|v| match v {
                None => json!({ "verdict": "accept" }),
                Some(reason) => json!({ "verdict": "reject", "reason": reason }),
            }).collect::<Vec<_>>() }),
        ),
        Ok(DryRunOutput::Enrichments(added)) => (
            true,
            json!({ "enrichments": added.into_iter().map(|dims| {
                dims.into_iter().map(|(k, v)| (k, Value::String(v))).collect::<serde_json::Map<String, Value>>()
            }).collect::<Vec<_>>() }),
        ),
        Ok(DryRunOutput::Values(values)) => (true, json!({ "values": values })),
        Err(failure) => (
            false,
            json!({ "error": { "code": failure.label(), "message": format!("plugin {name:?} {failure}") } }),
        ),
    };
    Ok(Json(json!({
        "plugin": report.plugin,
        "version": report.version,
        "kind": report.kind.as_str(),
        "ok": ok,
        "result": result,
        "logs": logs,
        "durationMs": report.duration.as_secs_f64() * 1000.0,
    })))
}
