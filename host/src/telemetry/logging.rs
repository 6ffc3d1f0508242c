//! Structured logs through `tracing`: one JSON object per line on stdout in
//! server mode (for log shippers), human-readable lines in `--dev`.

use serde::{Deserialize, Serialize};
use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line: `timestamp`, `level`, `target`, `message`,
    /// the event's fields at the top level, and the current span (which
    /// carries the `request_id`) under `span`.
    Json,
    /// Colourless, multi-field human output for a terminal.
    Pretty,
}

#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    #[error("invalid log filter {filter:?}: {message}")]
    InvalidFilter { filter: String, message: String },
    #[error("a global logger is already installed")]
    AlreadyInstalled,
}

/// Installs the global subscriber. `filter` uses `RUST_LOG` syntax
/// (`info`, `luminate_host=debug,warn`); the `RUST_LOG` environment
/// variable, when set, wins so an operator can raise verbosity without
/// touching the config.
pub fn init(format: LogFormat, filter: &str) -> Result<(), LoggingError> {
    let directives = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| filter.to_owned());
    let env_filter = EnvFilter::try_new(&directives).map_err(|e| LoggingError::InvalidFilter {
        filter: directives.clone(),
        message: e.to_string(),
    })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(env_filter)
        .with_writer(std::io::stdout);
    let installed = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Pretty => builder.with_target(false).compact().try_init(),
    };
    installed.map_err(|_| LoggingError::AlreadyInstalled)
}
