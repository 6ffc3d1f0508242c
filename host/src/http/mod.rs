//! HTTP: the only layer that knows HTTP and JSON.

pub mod error;
pub mod openapi;
pub mod request_log;
pub mod self_metrics;
pub mod shutdown;
pub mod tls;

pub use error::ApiError;
