//! HTTP: the only layer that knows HTTP and JSON.

pub mod auth;
pub mod error;
pub mod limits;

pub use error::ApiError;
