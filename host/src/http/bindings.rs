//! `GET` / `PUT /api/v1/bindings`: a tenant's own plugin chain (scope
//! `admin`). A `PUT` replaces the whole chain and applies from the next
//! request.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::Value;

use super::extract::RawBody;
use super::plugins::PluginManager;
use super::{ApiError, AppState};
use crate::model::TenantId;
use crate::plugins::BindingSet;

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/bindings", get(show).put(replace))
}

fn tenant_of(manager: PluginManager) -> Result<TenantId, ApiError> {
    match manager {
        PluginManager::TenantAdmin(t) => Ok(t),
        PluginManager::Operator => Err(ApiError::bad_request(
            "tenant_required",
            "bindings belong to a tenant; call with the tenant's admin token (operator chains live in config)",
        )),
    }
}

fn to_json(set: &BindingSet) -> Json<Value> {
    Json(serde_json::to_value(set).unwrap_or(Value::Null))
}

async fn show(
    State(state): State<AppState>,
    manager: PluginManager,
) -> Result<Json<Value>, ApiError> {
    let tenant = tenant_of(manager)?;
    Ok(to_json(&state.plugins.chain(&tenant).set))
}

async fn replace(
    State(state): State<AppState>,
    manager: PluginManager,
    RawBody(body): RawBody,
) -> Result<Json<Value>, ApiError> {
    let tenant = tenant_of(manager)?;
    let set: BindingSet = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request("invalid_bindings", format!("invalid bindings body: {e}"))
    })?;
    state.plugins.set_bindings(&tenant, set.clone()).await?;
    Ok(to_json(&set))
}
