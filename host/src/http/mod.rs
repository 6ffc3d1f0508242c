//! HTTP: the only layer that knows HTTP and JSON.

pub mod error;

pub use error::ApiError;
