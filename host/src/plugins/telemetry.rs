//! The plugin runtime's own counters, in the server's Prometheus registry.

use prometheus::{IntCounterVec, Opts, Registry};

#[derive(Clone)]
pub struct PluginMetrics {
    /// Calls by plugin and outcome (`ok` or a failure label).
    pub calls: IntCounterVec,
    /// Install attempts by plugin and result (`installed` / `failed`).
    pub loads: IntCounterVec,
    /// Metrics rejected by plugins, by plugin and reason.
    pub rejected_metrics: IntCounterVec,
    /// Plugins put in quarantine.
    pub quarantined: IntCounterVec,
}

impl PluginMetrics {
    /// Registers in `registry`; a second registration (e.g. several servers
    /// in one test process) keeps working with unregistered counters.
    pub fn new(registry: &Registry) -> Self {
        let vec = |name: &str, help: &str, labels: &[&str]| {
            let counter = IntCounterVec::new(Opts::new(name, help), labels)
                .unwrap_or_else(|e| unreachable!("static metric definition is valid: {e}"));
            let _ = registry.register(Box::new(counter.clone()));
            counter
        };
        Self {
            calls: vec(
                "luminate_plugin_calls_total",
                "Plugin calls by outcome.",
                &["plugin", "outcome"],
            ),
            loads: vec(
                "luminate_plugin_loads_total",
                "Plugin install attempts by result.",
                &["plugin", "result"],
            ),
            rejected_metrics: vec(
                "luminate_plugin_rejected_metrics_total",
                "Metrics rejected on the write path by plugins.",
                &["plugin", "reason"],
            ),
            quarantined: vec(
                "luminate_plugin_quarantined_total",
                "Times a plugin was quarantined.",
                &["plugin"],
            ),
        }
    }
}
