//! `GET /api/v1/openapi.json`: the API's OpenAPI 3.1 document.
//!
//! The document is a committed file, not generated: the handlers are owned
//! by several subsystems and their wire shapes are hand-written serializers,
//! so annotations would duplicate them anyway. Instead the end-to-end tests
//! hold the file to the code: every route of the router is in the document
//! and every documented operation exists, and each documented example
//! request is sent to a real server and must be answered with a documented
//! status and a body that matches the documented schema.

use axum::http::header;
use axum::response::IntoResponse;

pub const OPENAPI_JSON: &str = include_str!("openapi.json");

pub async fn serve_openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI_JSON)
}
