use std::fmt;
use std::net::SocketAddr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

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
    /// Where `GET /metrics` is served: an address of its own, apart from
    /// the API port, because the series name tenants and plugins; or `off`.
    pub metrics_listen: MetricsListen,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            log_format: None,
            log_level: "info".into(),
            max_label_values: DEFAULT_LABEL_BUDGET,
            metrics_listen: MetricsListen::Address(SocketAddr::from(([127, 0, 0, 1], 9464))),
        }
    }
}

/// `telemetry.metrics_listen`: an address such as `"0.0.0.0:9464"`, or `"off"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricsListen {
    Off,
    Address(SocketAddr),
}

impl MetricsListen {
    pub fn address(self) -> Option<SocketAddr> {
        match self {
            MetricsListen::Off => None,
            MetricsListen::Address(addr) => Some(addr),
        }
    }
}

impl fmt::Display for MetricsListen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetricsListen::Off => f.write_str("off"),
            MetricsListen::Address(addr) => write!(f, "{addr}"),
        }
    }
}

impl Serialize for MetricsListen {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MetricsListen {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        if text.eq_ignore_ascii_case("off") {
            return Ok(MetricsListen::Off);
        }
        text.parse().map(MetricsListen::Address).map_err(|_| {
            serde::de::Error::custom(format!(
                "telemetry.metrics_listen must be an address such as \"127.0.0.1:9464\" or \"off\", got {text:?}"
            ))
        })
    }
}
