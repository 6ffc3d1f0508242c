use serde::{Deserialize, Serialize};

use crate::telemetry::LogFormat;
use crate::telemetry::metrics::DEFAULT_LABEL_BUDGET;

/// `[telemetry]`: logs and self-metrics.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// `json` or `pretty`; unset means JSON in server mode, pretty in `--dev`.
    pub log_format: Option<LogFormat>,
    /// A `RUST_LOG`-style filter; the `RUST_LOG` variable wins when set.
    pub log_level: String,
    /// Distinct tenant (and plugin) label values kept on self-metrics before
    /// the rest are reported as `_other`.
    pub max_label_values: usize,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            log_format: None,
            log_level: "info".into(),
            max_label_values: DEFAULT_LABEL_BUDGET,
        }
    }
}
