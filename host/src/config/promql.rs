use serde::{Deserialize, Serialize};

use super::ConfigDuration;
use crate::promql::PromqlLimits;

/// `[promql]`: the server's bounds on one query of the Prometheus API.
/// A tenant's tier or override may lower `max_series`, `max_samples` and
/// `timeout` (`promql_max_series`, `promql_max_samples`,
/// `promql_timeout_seconds`), never raise them.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PromqlConfig {
    /// Longest expression text, in bytes (parsing is bounded by it).
    pub max_query_bytes: usize,
    /// Series one query may read or compute.
    pub max_series: usize,
    /// Samples one query may hold: the raw points it reads, and series ×
    /// steps of any result (Prometheus' `--query.max-samples`).
    pub max_samples: usize,
    /// Steps of a range query (Prometheus refuses more than 11 000).
    pub max_steps: usize,
    /// How long one query may run (Prometheus' `--query.timeout`); the
    /// `timeout` parameter may shorten it.
    pub timeout: ConfigDuration,
    /// How far back an instant selector looks for a sample
    /// (Prometheus' `--query.lookback-delta`).
    pub lookback_delta: ConfigDuration,
}

impl Default for PromqlConfig {
    fn default() -> Self {
        let limits = PromqlLimits::default();
        Self {
            max_query_bytes: limits.max_query_bytes,
            max_series: limits.max_series,
            max_samples: limits.max_samples,
            max_steps: limits.max_steps,
            timeout: ConfigDuration::from_millis(limits.timeout.as_millis() as u64),
            lookback_delta: ConfigDuration::from_millis(limits.lookback.as_millis() as u64),
        }
    }
}

impl PromqlConfig {
    pub fn limits(&self) -> PromqlLimits {
        PromqlLimits {
            max_query_bytes: self.max_query_bytes,
            max_series: self.max_series,
            max_samples: self.max_samples,
            max_steps: self.max_steps,
            timeout: self.timeout.get(),
            lookback: self.lookback_delta.get(),
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.max_query_bytes == 0
            || self.max_series == 0
            || self.max_samples == 0
            || self.max_steps == 0
            || self.timeout.get().is_zero()
            || self.lookback_delta.get().is_zero()
        {
            return Err("every promql.* setting must be positive".into());
        }
        Ok(())
    }
}
