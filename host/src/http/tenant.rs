//! The one place that decides which tenant a request acts for.
//!
//! Until authentication lands (issue 3), every request acts for
//! `config.default_tenant`. Authentication replaces the body of
//! [`Tenant::from_request_parts`] (verify the bearer token, take the tenant
//! from its `tenant_id` claim); every handler already takes a [`Tenant`], so
//! nothing else changes. Extractors that only read the request head run
//! before the body is read, so a rejection here costs no body bytes.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::{ApiError, AppState};
use crate::model::TenantId;

/// The caller's tenant.
#[derive(Clone, Debug)]
pub struct Tenant(pub TenantId);

impl FromRequestParts<AppState> for Tenant {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        super::request_log::record_tenant(&parts.extensions, state.default_tenant.as_str());
        Ok(Tenant(state.default_tenant.clone()))
    }
}
