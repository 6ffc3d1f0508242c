//! The plugin runtime's counters. They are recorded through the server's
//! one metrics registry (`telemetry::metrics().plugins`), which bounds the
//! `plugin` label; this facade keeps the runtime's call sites
//! (`metrics.calls.with_label_values(&[plugin, outcome]).inc()`) unchanged.

use crate::telemetry::metrics;

#[derive(Clone, Copy)]
enum Family {
    Calls,
    Loads,
    RejectedMetrics,
    Quarantined,
    SeriesCache,
}

/// One counter family of the runtime.
#[derive(Clone, Copy)]
pub struct PluginCounter(Family);

/// A family's counter for one set of label values.
pub struct LabelledCounter<'a> {
    family: Family,
    labels: &'a [&'a str],
}

impl PluginCounter {
    pub fn with_label_values<'a>(&self, labels: &'a [&'a str]) -> LabelledCounter<'a> {
        LabelledCounter {
            family: self.0,
            labels,
        }
    }
}

impl LabelledCounter<'_> {
    pub fn inc(&self) {
        self.inc_by(1);
    }

    pub fn inc_by(&self, count: u64) {
        let plugins = &metrics().plugins;
        let plugin = self.labels.first().copied().unwrap_or("");
        let second = self.labels.get(1).copied().unwrap_or("");
        match self.family {
            Family::Calls => plugins.record_calls(plugin, second, count),
            Family::Loads => plugins.record_load(plugin, second, count),
            Family::RejectedMetrics => plugins.record_rejected_metrics(plugin, second, count),
            Family::Quarantined => plugins.record_quarantine(plugin, count),
            Family::SeriesCache => plugins.record_series_cache(plugin, second, count),
        }
    }
}

#[derive(Clone)]
pub struct PluginMetrics {
    /// Calls by plugin and outcome (`ok` or a failure label).
    pub calls: PluginCounter,
    /// Install attempts by plugin and result (`installed` / `failed`).
    pub loads: PluginCounter,
    /// Metrics rejected by plugins, by plugin and reason.
    pub rejected_metrics: PluginCounter,
    /// Plugins put in quarantine.
    pub quarantined: PluginCounter,
    /// Metrics a series-only plugin's remembered answers covered (`hit`) or
    /// not (`miss`).
    pub series_cache: PluginCounter,
}

impl PluginMetrics {
    /// Every runtime records into the server's registry; `_registry` is
    /// kept so callers that pass one (tests, benches) need not change.
    pub fn new(_registry: &prometheus::Registry) -> Self {
        Self {
            calls: PluginCounter(Family::Calls),
            loads: PluginCounter(Family::Loads),
            rejected_metrics: PluginCounter(Family::RejectedMetrics),
            quarantined: PluginCounter(Family::Quarantined),
            series_cache: PluginCounter(Family::SeriesCache),
        }
    }
}
