//! The request pipelines between the HTTP layer and storage. They speak
//! domain types only (no HTTP, no JSON), so every transport and every test
//! drives the same rules.
//!
//! - [`write`]: built-in validation → registered [`WriteStage`]s (plugin
//!   validators, enrichers, limits) → `MetricsStore::write`.
//! - [`read`]: scope the query to the caller's tenant → storage → (plugin
//!   aggregation).

pub mod read;
pub mod write;

pub use read::{AggregationPlugin, PluginAggregateQuery, QueryLimits, ReadError, ReadPipeline};
pub use write::{Batch, Rejection, WriteError, WriteOutcome, WritePipeline, WriteStage};
