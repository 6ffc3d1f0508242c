use serde::{Deserialize, Serialize};

use super::ConfigDuration;
use crate::pipeline::QueryLimits;

/// `[query]`: bounds on what one query may ask for.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct QueryConfig {
    /// Most series or groups in one answer; also the default `limit`.
    pub max_series: usize,
    /// Longest `timeRange` one query may cover.
    pub max_range: ConfigDuration,
    /// Most `step` buckets in one range or rate query.
    pub max_buckets: i64,
}

impl Default for QueryConfig {
    fn default() -> Self {
        let limits = QueryLimits::default();
        Self {
            max_series: limits.max_series,
            max_range: ConfigDuration::from_millis(limits.max_range_ms as u64),
            max_buckets: limits.max_buckets,
        }
    }
}

impl QueryConfig {
    pub fn limits(&self) -> QueryLimits {
        QueryLimits {
            max_series: self.max_series,
            max_range_ms: self.max_range.as_millis_i64(),
            max_buckets: self.max_buckets,
        }
    }
}
