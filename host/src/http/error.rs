//! The one place where errors become HTTP responses. Every layer has its own
//! typed error; each converts into [`ApiError`], whose `IntoResponse` writes
//! `{"error":{"code":"...","message":"..."}}` with the right status.
//! Internal errors are logged in full and answered with a generic message.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::model::ValidationError;
use crate::storage::StorageError;

/// The `code` of an error response, kept in the response's extensions so the
/// request log can report it without parsing the body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErrorCode(pub &'static str);

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Extra response headers (e.g. `Retry-After`, `WWW-Authenticate`).
    pub headers: Vec<(header::HeaderName, HeaderValue)>,
    /// Extra fields merged into the `error` object (e.g. a rate limit's details).
    pub details: Option<serde_json::Map<String, serde_json::Value>>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            headers: Vec::new(),
            details: None,
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    /// A server-side fault: the detail is logged, the client sees a generic message.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal server error; see the server log",
        )
    }

    pub fn with_header(mut self, name: header::HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    pub fn with_detail(mut self, key: &str, value: serde_json::Value) -> Self {
        self.details
            .get_or_insert_with(serde_json::Map::new)
            .insert(key.to_owned(), value);
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = serde_json::Map::new();
        error.insert("code".into(), json!(self.code));
        error.insert("message".into(), json!(self.message));
        if let Some(details) = self.details {
            error.extend(details);
        }
        let mut response = (self.status, Json(json!({ "error": error }))).into_response();
        response.extensions_mut().insert(ErrorCode(self.code));
        for (name, value) in self.headers {
            response.headers_mut().insert(name, value);
        }
        response
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::Unavailable {
                message,
                retry_after_secs,
            } => {
                tracing::warn!(reason = %message, "storage unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "storage_unavailable",
                    format!("storage is unavailable, retry later: {message}"),
                )
                .with_header(header::RETRY_AFTER, HeaderValue::from(retry_after_secs))
            }
            StorageError::InvalidQuery(message) => ApiError::bad_request("invalid_query", message),
            StorageError::TooLarge(e) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "query_too_large",
                e.to_string(),
            ),
            StorageError::Internal(detail) => ApiError::internal(detail),
        }
    }
}

impl From<ValidationError> for ApiError {
    fn from(e: ValidationError) -> Self {
        ApiError::bad_request(e.code(), e.to_string())
    }
}

impl From<crate::ingest::influx::InfluxError> for ApiError {
    /// 413, as InfluxDB answers: Telegraf splits the batch and retries.
    fn from(e: crate::ingest::influx::InfluxError) -> Self {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_metrics",
            e.to_string(),
        )
    }
}

impl From<crate::ingest::remote_write::RemoteWriteError> for ApiError {
    /// Every one is a 4xx: Prometheus drops the batch rather than retrying
    /// a body that can never be stored.
    fn from(e: crate::ingest::remote_write::RemoteWriteError) -> Self {
        use crate::ingest::remote_write::RemoteWriteError;
        let (status, code) = match &e {
            RemoteWriteError::Snappy(_) => (StatusCode::BAD_REQUEST, "invalid_snappy"),
            RemoteWriteError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
            RemoteWriteError::Protobuf(_) => (StatusCode::BAD_REQUEST, "invalid_protobuf"),
            RemoteWriteError::DecodedTooLarge(_) => {
                (StatusCode::PAYLOAD_TOO_LARGE, "decoded_too_large")
            }
            RemoteWriteError::TooManySamples { .. } => {
                (StatusCode::PAYLOAD_TOO_LARGE, "too_many_metrics")
            }
        };
        ApiError::new(status, code, e.to_string())
    }
}

impl From<crate::ingest::otlp::OtlpError> for ApiError {
    /// 4xx: OTLP exporters retry only 429, 502, 503 and 504.
    fn from(e: crate::ingest::otlp::OtlpError) -> Self {
        use crate::ingest::otlp::OtlpError;
        let (status, code) = match &e {
            OtlpError::Protobuf(_) => (StatusCode::BAD_REQUEST, "invalid_protobuf"),
            OtlpError::Json(_) => (StatusCode::BAD_REQUEST, "malformed_json"),
            OtlpError::TooManyPoints { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "too_many_metrics"),
            OtlpError::DecodedTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "decoded_too_large"),
        };
        ApiError::new(status, code, e.to_string())
    }
}

impl From<crate::pipeline::WriteError> for ApiError {
    fn from(e: crate::pipeline::WriteError) -> Self {
        use crate::pipeline::WriteError;
        match e {
            WriteError::EmptyBatch => ApiError::bad_request("empty_batch", e.to_string()),
            WriteError::TooManyMetrics { .. } => {
                ApiError::bad_request("too_many_metrics", e.to_string())
            }
            WriteError::Storage(e) => e.into(),
            WriteError::PluginsStarting {
                retry_after_secs, ..
            } => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "plugins_starting",
                e.to_string(),
            )
            .with_header(header::RETRY_AFTER, HeaderValue::from(retry_after_secs)),
        }
    }
}

impl From<crate::pipeline::ReadError> for ApiError {
    fn from(e: crate::pipeline::ReadError) -> Self {
        use crate::pipeline::ReadError;
        match e {
            ReadError::Invalid { code, message } => ApiError::bad_request(code, message),
            ReadError::PluginsUnavailable => {
                ApiError::bad_request("plugins_unavailable", e.to_string())
            }
            ReadError::Plugin { code, message } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
            }
            ReadError::Storage(e) => e.into(),
        }
    }
}
