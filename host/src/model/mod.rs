//! The domain: what a metric, a tenant and a query are. No I/O, no HTTP, no
//! storage; every other subsystem speaks these types.

mod anchored_regex;
mod dimensions;
mod duration;
mod metric;
mod query;
mod tenant;
mod validation;

pub use anchored_regex::{AnchoredRegex, RegexError, RegexLimits};
pub use dimensions::{Dimensions, RESERVED_PREFIX, TENANT_DIMENSION};
pub use duration::{DurationError, parse_duration_ms};
pub use metric::Metric;
pub use query::{
    AggregateQuery, AggregateResult, AggregateRow, Aggregation, BudgetExceeded, Filter, FilterOp,
    QueryBudget, RangeQuery, RateQuery, Selector, Series, SeriesResult, TimeRange,
};
pub use tenant::{TenantId, TenantIdError};
pub use validation::{ValidationError, ValidationLimits, Validator};
pub(crate) use validation::{is_valid_key, is_valid_name};
