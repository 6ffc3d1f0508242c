//! Authentication, scopes and request-rate limits as axum middleware.
//!
//! [`AccessControl::protect`] wraps a group of routes that need one scope:
//! it verifies the token (bearer, `Token` or Basic auth, see
//! `auth::credentials`), checks the scope, takes one request from
//! the tenant's bucket for that kind of request, and only then lets the
//! handler run, so nothing (not even the body) is read for a refused
//! request. Handlers get the caller with the [`Caller`] extractor, the one
//! place a request's tenant comes from.

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ApiError;
use crate::auth::{AuthError, Principal, Scope, Scopes, Verifier};
use crate::limits::{Allowance, RateKind, RateLimiter, TenantRates};
use crate::model::TenantId;

/// The authenticated caller of a request and its rate buckets.
#[derive(Clone)]
pub struct Caller {
    pub principal: Arc<Principal>,
    pub rates: Arc<TenantRates>,
}

impl Caller {
    pub fn tenant(&self) -> &TenantId {
        &self.principal.tenant
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| ApiError::internal("route has no AccessControl::protect layer"))
    }
}

/// Everything the guard needs; cheap to clone.
#[derive(Clone)]
pub struct AccessControl {
    identity: Identity,
    rates: Arc<RateLimiter>,
}

/// Where a request's principal comes from.
#[derive(Clone)]
enum Identity {
    /// The token of the request (`auth.enabled = true`).
    Token(Arc<Verifier>),
    /// Everyone is this principal (`auth.enabled = false`).
    Fixed(Arc<Principal>),
}

#[derive(Clone)]
struct Guard {
    access: AccessControl,
    scope: Scope,
    kind: RateKind,
}

impl AccessControl {
    pub fn new(verifier: Arc<Verifier>, rates: Arc<RateLimiter>) -> Self {
        Self {
            identity: Identity::Token(verifier),
            rates,
        }
    }

    /// No authentication: every request acts as `tenant` with every scope.
    pub fn disabled(tenant: TenantId, rates: Arc<RateLimiter>) -> Self {
        Self {
            identity: Identity::Fixed(Arc::new(anonymous(tenant))),
            rates,
        }
    }

    pub fn rates(&self) -> &Arc<RateLimiter> {
        &self.rates
    }

    /// Requires `scope` on every route of `routes` and charges one request
    /// of `kind` to the caller's tenant before the handler runs.
    pub fn protect<S: Clone + Send + Sync + 'static>(
        &self,
        routes: Router<S>,
        scope: Scope,
        kind: RateKind,
    ) -> Router<S> {
        let guard = Guard {
            access: self.clone(),
            scope,
            kind,
        };
        routes.route_layer(axum::middleware::from_fn_with_state(guard, guard_request))
    }

    /// Authenticates and authorises one request (also usable outside axum layers).
    pub fn authorize(
        &self,
        authorization: Option<&HeaderValue>,
        scope: Scope,
    ) -> Result<Caller, AuthError> {
        let principal = match &self.identity {
            Identity::Token(v) => {
                v.verify_authorization(authorization.map(HeaderValue::as_bytes))?
            }
            Identity::Fixed(principal) => principal.clone(),
        };
        principal.require(scope)?;
        let rates = self
            .rates
            .tenant(&principal.tenant, principal.tier.as_deref());
        Ok(Caller { principal, rates })
    }
}

fn anonymous(tenant: TenantId) -> Principal {
    Principal {
        tenant,
        scopes: Scopes::all(),
        tier: None,
        org_id: None,
        expires_at: u64::MAX,
    }
}

async fn guard_request(State(guard): State<Guard>, mut request: Request, next: Next) -> Response {
    let caller = match guard
        .access
        .authorize(request.headers().get(header::AUTHORIZATION), guard.scope)
    {
        Ok(caller) => caller,
        Err(e) => return ApiError::from(e).into_response(),
    };
    super::request_log::record_tenant(request.extensions(), caller.tenant().as_str());
    let allowance = match caller.rates.check_request(guard.kind) {
        Ok(a) => a,
        Err(e) => {
            crate::telemetry::metrics()
                .rate_limit_rejected(caller.tenant().as_str(), guard.kind.name());
            return ApiError::from(e).into_response();
        }
    };
    request.extensions_mut().insert(caller);
    let mut response = next.run(request).await;
    // A handler that hit another limit (the metrics bucket) reports that one.
    if !response.headers().contains_key(RATELIMIT_POLICY) {
        rate_limit_headers(response.headers_mut(), &allowance);
    }
    response
}

/// `RateLimit-Policy` and `RateLimit` (draft-ietf-httpapi-ratelimit-headers):
/// `"write_requests";q=100;w=1` and `"write_requests";r=99;t=1`.
pub fn rate_limit_headers(headers: &mut axum::http::HeaderMap, allowance: &Allowance) {
    let Some(quota) = allowance.quota else { return };
    let name = allowance.kind.name();
    let reset = allowance.reset.as_secs_f64().ceil() as u64;
    if let Ok(v) = HeaderValue::try_from(format!("\"{name}\";q={quota};w=1")) {
        headers.insert(RATELIMIT_POLICY, v);
    }
    if let Ok(v) = HeaderValue::try_from(format!("\"{name}\";r={};t={reset}", allowance.remaining))
    {
        headers.insert(RATELIMIT, v);
    }
}

pub const RATELIMIT_POLICY: header::HeaderName =
    header::HeaderName::from_static("ratelimit-policy");
pub const RATELIMIT: header::HeaderName = header::HeaderName::from_static("ratelimit");

impl From<AuthError> for ApiError {
    /// 401 with `WWW-Authenticate: Bearer error="invalid_token"` for every
    /// authentication failure; 403 with `error="insufficient_scope"` for a
    /// missing scope (RFC 6750 §3).
    fn from(e: AuthError) -> Self {
        let (status, challenge) = match &e {
            AuthError::MissingScope(scope) => (
                StatusCode::FORBIDDEN,
                format!(
                    "Bearer realm=\"luminate\", error=\"insufficient_scope\", scope=\"{scope}\""
                ),
            ),
            _ => (
                StatusCode::UNAUTHORIZED,
                format!(
                    "Bearer realm=\"luminate\", error=\"invalid_token\", error_description=\"{}\"",
                    e.code()
                ),
            ),
        };
        let mut api = ApiError::new(status, e.code(), e.to_string());
        if let Ok(v) = HeaderValue::try_from(challenge) {
            api = api.with_header(header::WWW_AUTHENTICATE, v);
        }
        api
    }
}
