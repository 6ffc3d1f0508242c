//! PromQL: the query language of Prometheus' HTTP API, which Grafana,
//! promtool and alerting tools speak. Expressions are parsed by
//! GreptimeTeam's `promql-parser` (Prometheus' grammar) and evaluated
//! here, with Prometheus 2.x's semantics, in three steps:
//!
//! 1. [`plan`]: which series each selector needs over which time range;
//! 2. [`plan::fetch`]: those series, read through the read pipeline, so
//!    tenant scoping and budgets are the JSON API's;
//! 3. [`eval`]: the expression over the query's steps, CPU only, on the
//!    blocking pool, within series, point and time limits.
//!
//! What is not evaluated (subqueries, native histograms, a few functions)
//! is refused as `bad_data`, naming the construct.

pub mod aggregate;
pub mod binary;
pub mod error;
pub mod eval;
pub mod functions;
pub mod histogram;
pub mod labels;
pub mod plan;
pub mod range_functions;
pub mod value;

use std::time::{Duration, Instant};

use promql_parser::parser::Expr;

pub use error::PromqlError;
pub use labels::Labels;
pub use value::{RawSeries, StepSeries, Steps, Value};

use crate::limits::{Limit, TierLimits};
use crate::model::TenantId;
use crate::pipeline::read::ReadPipeline;

/// Bounds on one PromQL query: the server's (`[promql]`), lowered by the
/// tenant's tier ([`PromqlLimits::for_tenant`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PromqlLimits {
    /// Longest expression text, in bytes: parsing (and the parser's regex
    /// compiles) is bounded by it.
    pub max_query_bytes: usize,
    /// Most series read or computed.
    pub max_series: usize,
    /// Most samples held: raw points read, and series × steps of any
    /// result.
    pub max_samples: usize,
    /// Most steps of a range query (Prometheus refuses more than 11 000).
    pub max_steps: usize,
    /// Evaluation time (the `timeout` parameter may lower it).
    pub timeout: Duration,
    /// How far back an instant selector looks for a sample.
    pub lookback: Duration,
}

impl Default for PromqlLimits {
    /// Prometheus' own defaults where it has them (50M samples, 2 minutes,
    /// 5 minutes of lookback, 11 000 steps).
    fn default() -> Self {
        Self {
            max_query_bytes: 64 << 10,
            max_series: 1_000_000,
            max_samples: 50_000_000,
            max_steps: 11_000,
            timeout: Duration::from_secs(120),
            lookback: Duration::from_secs(300),
        }
    }
}

impl PromqlLimits {
    /// These limits, lowered to what `tier` allows.
    pub fn for_tenant(&self, tier: &TierLimits) -> Self {
        let cap = |server: usize, tier: Limit| match tier.max() {
            Some(n) => server.min(usize::try_from(n).unwrap_or(usize::MAX)),
            None => server,
        };
        Self {
            max_series: cap(self.max_series, tier.promql_max_series),
            max_samples: cap(self.max_samples, tier.promql_max_samples),
            timeout: match tier.promql_timeout_seconds.max() {
                Some(seconds) => self.timeout.min(Duration::from_secs(seconds)),
                None => self.timeout,
            },
            ..*self
        }
    }
}

/// Parses `text`, on the blocking pool: the parser compiles the
/// expression's regexes.
pub async fn parse(text: String, limits: &PromqlLimits) -> Result<Expr, PromqlError> {
    if text.len() > limits.max_query_bytes {
        return Err(PromqlError::bad_data(format!(
            "the query is {} bytes long; the limit is {}",
            text.len(),
            limits.max_query_bytes
        )));
    }
    tokio::task::spawn_blocking(move || promql_parser::parser::parse(&text))
        .await
        .map_err(|e| PromqlError::execution(format!("the parser stopped: {e}")))?
        .map_err(|e| PromqlError::bad_data(format!("invalid parameter \"query\": {e}")))
}

/// Evaluates `expr` at `steps` over `tenant`'s data.
pub async fn evaluate(
    reads: &ReadPipeline,
    tenant: &TenantId,
    expr: Expr,
    steps: Steps,
    limits: PromqlLimits,
) -> Result<Value, PromqlError> {
    if steps.len() > limits.max_steps {
        return Err(PromqlError::bad_data(format!(
            "exceeded maximum resolution of {} points per timeseries. Try decreasing the query resolution (?step=XX)",
            limits.max_steps
        )));
    }
    let deadline = Instant::now() + limits.timeout;
    let lookback_ms = eval::duration_ms(limits.lookback);
    let selections = plan::selections(&expr, &steps, lookback_ms)?;
    let fetched = tokio::time::timeout_at(
        deadline.into(),
        plan::fetch(reads, tenant, selections, &limits),
    )
    .await
    .map_err(|_| PromqlError::Timeout("query preparation"))??;
    tokio::task::spawn_blocking(move || {
        // An instant query's vector is answered in evaluation order, which
        // for Prometheus is its selectors' label order (and `sort()` breaks
        // ties by it). Storage does not sort PromQL's reads, so instant
        // queries sort them here; a range query's answer is sorted by
        // labels at the end anyway.
        let mut fetched = fetched;
        if steps.len() == 1 {
            for series in fetched.values_mut() {
                series.sort_unstable_by(|a, b| a.labels.cmp(&b.labels));
            }
        }
        let evaluator = eval::Evaluator {
            steps: &steps,
            lookback_ms,
            fetched: &fetched,
            limits: eval::EvalLimits {
                max_series: limits.max_series,
                max_samples: limits.max_samples,
                deadline,
            },
        };
        evaluator.eval(&expr)
    })
    .await
    .map_err(|e| PromqlError::execution(format!("the evaluation stopped: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::LimitsConfig;

    #[test]
    fn a_tier_lowers_the_servers_limits_and_never_raises_them() {
        let server = PromqlLimits {
            max_series: 20_000,
            ..PromqlLimits::default()
        };
        let tiers = LimitsConfig::default().tiers;
        let free = server.for_tenant(&tiers["free"]);
        assert_eq!(free.max_series, 10_000);
        assert_eq!(free.max_samples, 5_000_000);
        assert_eq!(free.timeout, Duration::from_secs(30));
        let pro = server.for_tenant(&tiers["pro"]);
        assert_eq!(
            pro.max_series, 20_000,
            "pro's 100 000 is above the server's"
        );
        assert_eq!(pro.max_samples, 50_000_000);
        assert_eq!(pro.timeout, server.timeout);
        assert_eq!(server.for_tenant(&TierLimits::unlimited()), server);
        let tight = TierLimits {
            promql_timeout_seconds: Limit::Max(1),
            ..TierLimits::unlimited()
        };
        assert_eq!(server.for_tenant(&tight).timeout, Duration::from_secs(1));
        assert_eq!(
            server.for_tenant(&tight).max_query_bytes,
            server.max_query_bytes
        );
    }
}
