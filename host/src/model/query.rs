//! Queries as the storage layer receives them: already parsed, validated and
//! scoped. The HTTP layer builds these; backends only execute them.
//!
//! Semantics every backend must share (the conformance suite checks them):
//! - Time ranges are half-open, `[start_ms, end_ms)`.
//! - A dimension a series does not have reads as the empty string, so
//!   `key != "x"` and `key !~ "x"` match series without `key`.
//! - Regexes are anchored: `=~ "api.*"` must match the whole value.
//! - Step buckets are aligned to the epoch: a point at `ts` falls in bucket
//!   `ts - ts.rem_euclid(step_ms)`, and the bucket's timestamp is its start.
//! - Results are ordered: aggregate rows by group values (a missing value
//!   sorts first), series by their dimensions. `limit` keeps the first
//!   `limit` and sets `truncated` when more existed.
//! - Storage never sees a reserved (`_`) key in filters or groupBy: the query
//!   layer resolves `_tenant_id` against the caller's tenant first.

use super::Dimensions;
use super::anchored_regex::{AnchoredRegex, RegexError, RegexLimits};

/// `[start_ms, end_ms)` in milliseconds since the epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeRange {
    pub start_ms: i64,
    pub end_ms: i64,
}

impl TimeRange {
    pub fn contains(&self, ts_ms: i64) -> bool {
        ts_ms >= self.start_ms && ts_ms < self.end_ms
    }
}

#[derive(Clone, Debug)]
pub enum FilterOp {
    Eq(String),
    NotEq(String),
    Regex(AnchoredRegex),
    NotRegex(AnchoredRegex),
    In(Vec<String>),
}

#[derive(Clone, Debug)]
pub struct Filter {
    pub key: String,
    pub op: FilterOp,
}

impl Filter {
    /// Whether a series whose value for `key` is `value` (None when the
    /// series lacks the key) passes this filter.
    pub fn matches(&self, value: Option<&str>) -> bool {
        let v = value.unwrap_or("");
        match &self.op {
            FilterOp::Eq(want) => v == want,
            FilterOp::NotEq(want) => v != want,
            FilterOp::Regex(regex) => regex.is_match(v),
            FilterOp::NotRegex(regex) => !regex.is_match(v),
            FilterOp::In(set) => set.iter().any(|s| s == v),
        }
    }

    /// An anchored regex filter within the default [`RegexLimits`].
    pub fn regex(key: String, pattern: String, negate: bool) -> Result<Self, RegexError> {
        Self::regex_within(key, pattern, negate, &RegexLimits::default())
    }

    /// An anchored regex filter. Compiling costs up to milliseconds of CPU:
    /// call it off the async workers.
    pub fn regex_within(
        key: String,
        pattern: String,
        negate: bool,
        limits: &RegexLimits,
    ) -> Result<Self, RegexError> {
        let regex = AnchoredRegex::new(pattern, limits)?;
        let op = if negate {
            FilterOp::NotRegex(regex)
        } else {
            FilterOp::Regex(regex)
        };
        Ok(Self { key, op })
    }
}

/// Built-in aggregations.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Aggregation {
    Count,
    Sum,
    Avg,
    Min,
    Max,
    /// Exact percentile with `q` in `[0, 1]`: the value at 0-based rank
    /// `min(floor(q * n), n - 1)` of the sorted values. This is ClickHouse's
    /// `quantileExact`, so every backend returns the same number.
    Percentile(f64),
}

/// What a query reads: one metric of the caller's tenant, in a time range,
/// narrowed by filters, within a budget.
#[derive(Clone, Debug)]
pub struct Selector {
    pub metric: String,
    pub range: TimeRange,
    pub filters: Vec<Filter>,
    /// Set by the read pipeline from the server's limits.
    pub budget: QueryBudget,
}

/// What one query may cost a backend. Both bounds count points, which every
/// backend can count before it has done (or kept) more work than allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueryBudget {
    /// Points read from storage, before filtering by series: the CPU and
    /// I/O of the query (`query.max_points_scanned`).
    pub max_points_scanned: u64,
    /// Points in a range or rate answer: raw points, or buckets with a
    /// step (`query.max_points_returned`).
    pub max_points_returned: u64,
}

impl QueryBudget {
    /// For tests and tools that run storage directly.
    pub const UNLIMITED: Self = Self {
        max_points_scanned: u64::MAX,
        max_points_returned: u64::MAX,
    };

    pub fn check_scanned(&self, points: u64) -> Result<(), BudgetExceeded> {
        if points > self.max_points_scanned {
            return Err(BudgetExceeded::PointsScanned {
                max: self.max_points_scanned,
            });
        }
        Ok(())
    }

    pub fn check_returned(&self, points: u64) -> Result<(), BudgetExceeded> {
        if points > self.max_points_returned {
            return Err(BudgetExceeded::PointsReturned {
                max: self.max_points_returned,
            });
        }
        Ok(())
    }
}

/// Which part of a [`QueryBudget`] a query would overrun.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BudgetExceeded {
    #[error(
        "the query reads more than {max} points; the limit is query.max_points_scanned: narrow the time range or the metric's filters"
    )]
    PointsScanned { max: u64 },
    #[error(
        "the answer holds more than {max} points; the limit is query.max_points_returned: use a larger step, fewer series (filters, limit) or a shorter time range"
    )]
    PointsReturned { max: u64 },
}

#[derive(Clone, Debug)]
pub struct AggregateQuery {
    pub selector: Selector,
    pub aggregation: Aggregation,
    pub group_by: Vec<String>,
    pub limit: Option<usize>,
}

/// Raw points per series, or, with `step`, one aggregated point per bucket.
/// With `group_by`, series are merged per group (raw points of a group are
/// all its series' points, sorted by time).
#[derive(Clone, Debug)]
pub struct RangeQuery {
    pub selector: Selector,
    pub step: Option<(i64, Aggregation)>,
    pub group_by: Option<Vec<String>>,
    pub limit: Option<usize>,
    /// Whether the series come sorted by their dimensions, which also
    /// decides which `limit` series are kept: the JSON API's answers.
    /// PromQL orders its own results, so its reads leave it off and
    /// skip the sort; a backend may sort anyway.
    pub sorted: bool,
}

/// Per-second rate of counters in `step_ms` buckets. Between consecutive
/// points of one series the increase is `v - prev`, or `v` when `v < prev`
/// (a counter reset); it counts in the bucket of the later point, and the
/// bucket's rate is its increase divided by the step in seconds. With
/// `group_by`, rates of a group's series are summed per bucket.
#[derive(Clone, Debug)]
pub struct RateQuery {
    pub selector: Selector,
    pub step_ms: i64,
    pub group_by: Option<Vec<String>>,
    pub limit: Option<usize>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct AggregateRow {
    /// One entry per `group_by` key, in the query's order.
    pub group: Vec<Option<String>>,
    pub value: f64,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct AggregateResult {
    pub rows: Vec<AggregateRow>,
    pub truncated: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// All of the series' dimensions, or, for a grouped query, the group's.
    pub dimensions: Dimensions,
    /// `(timestamp_ms, value)`, ascending by time.
    pub points: Vec<(i64, f64)>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct SeriesResult {
    pub series: Vec<Series>,
    pub truncated: bool,
}
