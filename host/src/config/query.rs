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
    /// Points one query may read from storage (the points of the metric in
    /// the time range, before series filters): its CPU and I/O.
    pub max_points_scanned: u64,
    /// Points a range or rate query may gather for its answer: the selected
    /// series' raw points on the embedded backend, the answer's points on
    /// ClickHouse. Bounds the memory one answer holds.
    pub max_points_returned: u64,
    /// Longest regex filter pattern, in bytes; checked before it is parsed.
    pub max_regex_bytes: usize,
}

impl Default for QueryConfig {
    fn default() -> Self {
        let limits = QueryLimits::default();
        Self {
            max_series: limits.max_series,
            max_range: ConfigDuration::from_millis(limits.max_range_ms as u64),
            max_buckets: limits.max_buckets,
            max_points_scanned: limits.max_points_scanned,
            max_points_returned: limits.max_points_returned,
            max_regex_bytes: limits.max_regex_bytes,
        }
    }
}

impl QueryConfig {
    pub fn limits(&self) -> QueryLimits {
        QueryLimits {
            max_series: self.max_series,
            max_range_ms: self.max_range.as_millis_i64(),
            max_buckets: self.max_buckets,
            max_points_scanned: self.max_points_scanned,
            max_points_returned: self.max_points_returned,
            max_regex_bytes: self.max_regex_bytes,
        }
    }
}
