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

/// A query past its tenant's series limit (422, as Prometheus answers a
/// query past its limits).
pub fn too_many_series(max: usize) -> PromqlError {
    PromqlError::execution(format!(
        "the query selects more than {max} series, the limit per query (promql.max_series, or the tenant's promql_max_series): narrow its selectors"
    ))
}

/// A query past its tenant's samples limit, in Prometheus' words.
pub fn too_many_samples(max: usize) -> PromqlError {
    PromqlError::execution(format!(
        "query processing would load too many samples into memory in query execution: more than {max} (promql.max_samples, or the tenant's promql_max_samples); use a shorter range, a larger step or fewer series"
    ))
}
