//! The one place that decides which tenant a request acts for: the verified
//! token's `tenant_id` (see [`super::auth`]), or `default_tenant` when
//! authentication is disabled. The guard layer has already authenticated
//! the request before any handler (and so this extractor) runs.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::auth::Caller;
use super::{ApiError, AppState};
use crate::model::TenantId;

/// The caller's tenant.
#[derive(Clone, Debug)]
pub struct Tenant(pub TenantId);

impl FromRequestParts<AppState> for Tenant {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        Ok(Tenant(caller.tenant().clone()))
    }
}
