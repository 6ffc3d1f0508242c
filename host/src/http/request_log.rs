//! The outermost layer: gives every request an id, and when it ends records
//! one log line and one metrics sample.
//!
//! The log line (`message = "request"`) carries `request_id`, `tenant_id`
//! (when authenticated), `method`, `endpoint` (the route template),
//! `path`, `status`, `error_code` (when the response is an error) and
//! `duration_ms`. Probes and `/metrics` log at debug level so that
//! orchestrator polling does not drown the log.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::http::{Extensions, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use super::error::ErrorCode;
use crate::telemetry::{RequestId, metrics};

pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The `endpoint` label of requests that matched no route: one value, so
/// scanners probing random paths cannot create series.
pub const UNMATCHED_ENDPOINT: &str = "unmatched";

/// Facts that inner layers learn and the request log reports.
#[derive(Clone, Default)]
pub struct RequestLogContext {
    tenant: Arc<OnceLock<String>>,
}

impl RequestLogContext {
    fn tenant(&self) -> Option<&str> {
        self.tenant.get().map(String::as_str)
    }
}

/// Notes the authenticated tenant of the request whose extensions these
/// are, for its log line. Called by the auth layer; a no-op outside the
/// request-log layer (e.g. in unit tests of a bare router).
pub fn record_tenant(extensions: &Extensions, tenant: &str) {
    if let Some(context) = extensions.get::<RequestLogContext>() {
        let _ = context.tenant.set(tenant.to_owned());
    }
}

/// `axum::middleware::from_fn(request_log::observe)`, added with
/// `Router::layer` after every other layer so that it sees the final status
/// of everything, including auth and rate-limit rejections.
pub async fn observe(mut request: Request, next: Next) -> Response {
    let request_id = RequestId::from_client_or_generate(
        request
            .headers()
            .get(&X_REQUEST_ID)
            .map(HeaderValue::as_bytes),
    );
    let context = RequestLogContext::default();
    request.extensions_mut().insert(request_id.clone());
    request.extensions_mut().insert(context.clone());
    let mut in_flight = InFlight::start(
        request_id.clone(),
        context,
        request
            .extensions()
            .get::<MatchedPath>()
            .map_or(UNMATCHED_ENDPOINT.to_owned(), |p| p.as_str().to_owned()),
        request.method().as_str().to_owned(),
        request.uri().path().to_owned(),
    );

    let span = tracing::info_span!("request", request_id = %request_id);
    let mut response = next.run(request).instrument(span).await;

    if let Ok(value) = HeaderValue::from_str(request_id.as_str()) {
        response.headers_mut().insert(X_REQUEST_ID, value);
    }
    let error_code = response.extensions().get::<ErrorCode>().map(|c| c.0);
    in_flight.finish(response.status().as_u16(), error_code);
    response
}

/// Counts the request as in flight until it completes or is dropped; a
/// request dropped before its response (the client went away) is recorded
/// with nginx's 499.
struct InFlight {
    request_id: RequestId,
    context: RequestLogContext,
    endpoint: String,
    method: String,
    path: String,
    started: Instant,
    finished: bool,
}

const CLIENT_CLOSED_REQUEST: u16 = 499;

impl InFlight {
    fn start(
        request_id: RequestId,
        context: RequestLogContext,
        endpoint: String,
        method: String,
        path: String,
    ) -> Self {
        metrics().http.in_flight.add(1);
        Self {
            request_id,
            context,
            endpoint,
            method,
            path,
            started: Instant::now(),
            finished: false,
        }
    }

    fn finish(&mut self, status: u16, error_code: Option<&'static str>) {
        self.finished = true;
        let elapsed = self.started.elapsed();
        metrics()
            .http
            .observe(&self.endpoint, &self.method, status, elapsed);
        self.log(status, error_code, elapsed);
    }

    fn log(&self, status: u16, error_code: Option<&'static str>, elapsed: Duration) {
        macro_rules! request_line {
            ($level:expr) => {
                tracing::event!(
                    $level,
                    request_id = %self.request_id,
                    tenant_id = self.context.tenant(),
                    method = %self.method,
                    endpoint = %self.endpoint,
                    path = %self.path,
                    status,
                    error_code,
                    duration_ms = elapsed.as_secs_f64() * 1000.0,
                    "request"
                )
            };
        }
        if status >= 500 {
            request_line!(tracing::Level::WARN);
        } else if is_polling_endpoint(&self.endpoint) {
            request_line!(tracing::Level::DEBUG);
        } else {
            request_line!(tracing::Level::INFO);
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        metrics().http.in_flight.sub(1);
        if !self.finished {
            self.finished = true;
            let elapsed = self.started.elapsed();
            metrics()
                .http
                .observe(&self.endpoint, &self.method, CLIENT_CLOSED_REQUEST, elapsed);
            self.log(
                CLIENT_CLOSED_REQUEST,
                Some("client_closed_request"),
                elapsed,
            );
        }
    }
}

fn is_polling_endpoint(endpoint: &str) -> bool {
    matches!(endpoint, "/healthz" | "/readyz" | "/startupz" | "/metrics")
}
