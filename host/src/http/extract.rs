//! Extractors whose every failure (body too large, broken compression,
//! malformed JSON, a bad path or query string) comes back as
//! `{"error":{"code","message"}}` instead of axum's plain-text rejections.
//!
//! The router decompresses bodies before these run and sets the size limit
//! with `DefaultBodyLimit`, so the limit applies to the *decompressed* bytes:
//! a small zip bomb is cut off at the limit and answered 413.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::ApiError;
use super::body_deadline::BodyDeadline;

/// The whole request body, decompressed and within the size limit.
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        read_body(req, state, || {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                "the request body (after decompression) is larger than the configured api.max_body_bytes",
            )
        })
        .await
        .map(RawBody)
    }
}

/// Reads `req`'s whole body; every failure is an [`ApiError`], a body over
/// the route's limit the one `too_large` makes.
pub async fn read_body<S: Send + Sync>(
    req: Request,
    state: &S,
    too_large: impl FnOnce() -> ApiError,
) -> Result<Bytes, ApiError> {
    let deadline = req.extensions().get::<BodyDeadline>().copied();
    Bytes::from_request(req, state)
        .await
        .map_err(|rejection| body_error(rejection, deadline, too_large))
}

fn body_error(
    rejection: BytesRejection,
    deadline: Option<BodyDeadline>,
    too_large: impl FnOnce() -> ApiError,
) -> ApiError {
    if deadline.is_some_and(BodyDeadline::has_passed) {
        ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "body_read_timeout",
            "the request body did not arrive within the configured server.body_read_timeout",
        )
    } else if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        too_large()
    } else {
        // Most often a corrupt gzip/zstd stream or a client that hung up.
        ApiError::bad_request(
            "invalid_body",
            format!("could not read the request body: {}", rejection.body_text()),
        )
    }
}

/// A JSON body parsed into `T`. No `Content-Type` is required, so a plain
/// `curl -d` works.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let RawBody(bytes) = RawBody::from_request(req, state).await?;
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(json_error)
    }
}

/// Malformed JSON and JSON of the wrong shape get distinct codes.
pub fn json_error(e: serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => {
            ApiError::bad_request("malformed_json", format!("the body is not valid JSON: {e}"))
        }
        Category::Data => ApiError::bad_request("invalid_request", e.to_string()),
    }
}

/// Path parameters; an undecodable segment is a 400 in our shape.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(t)| ApiPath(t))
            .map_err(|e| ApiError::bad_request("invalid_path", e.body_text()))
    }
}

/// Query-string parameters; unknown or malformed ones are a 400 in our shape.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(t)| ApiQuery(t))
            .map_err(|e| {
                ApiError::bad_request(
                    "invalid_request",
                    format!("query string: {}", e.body_text()),
                )
            })
    }
}
