//! Query math every backend shares, so that one definition of each
//! semantic (see `model::query`) exists: aggregation folds with exact
//! percentiles, epoch-aligned step buckets, counter rates with resets,
//! grouping, and result ordering with `limit` / `truncated`.
//!
//! A backend that can only fetch raw points (or that wants to post-process
//! what its engine returns) builds the answer with these functions; the
//! RocksDB backend streams points straight into [`Fold`]s.

mod bucket;
mod fold;
mod group;
mod order;
mod rate;
mod series;

pub use bucket::{bucket_start, step_aggregate};
pub use fold::{Fold, percentile_exact, percentile_rank};
pub use group::{group_dimensions, group_of};
pub use order::{finish_rows, finish_series, sort_points};
pub use rate::{IncreaseBuckets, add_increases, series_rate};
pub use series::{SelectedSeries, range_over, rate_over};
