//! Why a PromQL query failed, in the Prometheus API's terms.

use crate::storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum PromqlError {
    /// The query cannot be run: it does not parse, uses what Luminate
    /// does not support, or has bad parameters (400 `bad_data`).
    #[error("{0}")]
    BadData(String),
    /// The query ran into a rule of evaluation or a limit (422 `execution`).
    #[error("{0}")]
    Execution(String),
    /// The query ran past its time budget (503 `timeout`).
    #[error("query timed out in {0}")]
    Timeout(&'static str),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl PromqlError {
    pub fn bad_data(message: impl Into<String>) -> Self {
        Self::BadData(message.into())
    }

    pub fn execution(message: impl Into<String>) -> Self {
        Self::Execution(message.into())
    }

    /// What Luminate does not evaluate, named.
    pub fn unsupported(construct: impl std::fmt::Display) -> Self {
        Self::BadData(format!(
            "{construct} is not supported by Luminate's PromQL engine"
        ))
    }
}
