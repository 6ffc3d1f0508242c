//! Luminate's own Prometheus metrics.
//!
//! One process-wide registry behind [`metrics()`]. Subsystems record through
//! the small typed handles below (`metrics().storage.writes.inc_by(n)`,
//! `metrics().rate_limit_rejected(&tenant, "write_requests")`) and never see a
//! `prometheus` type, so the exposition format can change in one place.
//!
//! Every label set is bounded: label values are route templates, fixed
//! enums, `&'static str` codes, or tenant/plugin names admitted through a
//! [`LabelBudget`] that folds everything past its cap into `"_other"`. No
//! label ever carries a metric name, a dimension or a raw path.

use std::cell::RefCell;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use dashmap::DashSet;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// The label value that stands for every tenant or plugin past the budget.
pub const OVERFLOW_LABEL: &str = "_other";

/// Default cap on distinct `tenant` (and, separately, `plugin`) label values.
pub const DEFAULT_LABEL_BUDGET: usize = 1000;

/// The content type of [`Metrics::encode_text`].
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

static METRICS: OnceLock<Metrics> = OnceLock::new();

/// The process-wide metrics; created (and registered) on first use.
pub fn metrics() -> &'static Metrics {
    METRICS.get_or_init(Metrics::new)
}

/// Every metric Luminate exports about itself.
pub struct Metrics {
    registry: Registry,
    pub http: HttpMetrics,
    pub ingest: IngestMetrics,
    pub storage: StorageMetrics,
    pub batch_writer: BatchWriterMetrics,
    pub plugins: PluginMetrics,
    rate_limit_rejected: IntCounterVec,
    cardinality_estimate: IntGaugeVec,
    tenants: LabelBudget,
    declared: Vec<String>,
}

impl Metrics {
    fn new() -> Self {
        let registry = Registry::new();
        let reg = Registrar {
            registry: &registry,
            names: RefCell::new(Vec::new()),
        };
        let build_info = reg.gauge_vec(
            "luminate_build_info",
            "Always 1; the labels carry the running version.",
            &["version"],
        );
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        #[cfg(target_os = "linux")]
        {
            // process_cpu_seconds_total, process_resident_memory_bytes,
            // process_open_fds, ...: what the dashboard's saturation row reads.
            use prometheus::core::Collector;
            let process = prometheus::process_collector::ProcessCollector::for_self();
            reg.names
                .borrow_mut()
                .extend(process.desc().iter().map(|d| d.fq_name.clone()));
            if let Err(e) = registry.register(Box::new(process)) {
                tracing::warn!(error = %e, "process metrics unavailable");
            }
        }
        let mut metrics = Self {
            http: HttpMetrics::new(&reg),
            ingest: IngestMetrics::new(&reg),
            storage: StorageMetrics::new(&reg),
            batch_writer: BatchWriterMetrics::new(&reg),
            plugins: PluginMetrics::new(&reg),
            rate_limit_rejected: reg.counter_vec(
                "luminate_rate_limit_rejected_total",
                "Requests or metrics rejected by a per-tenant limit, by tenant and limit.",
                &["tenant", "limit"],
            ),
            cardinality_estimate: reg.gauge_vec(
                "luminate_cardinality_series_estimate",
                "HyperLogLog estimate of the unique series a tenant has written.",
                &["tenant"],
            ),
            tenants: LabelBudget::new(DEFAULT_LABEL_BUDGET),
            declared: Vec::new(),
            registry: Registry::new(),
        };
        metrics.declared = reg.names.take();
        metrics.registry = registry;
        metrics
    }

    /// Sets how many distinct tenant and plugin label values are kept before
    /// the rest are folded into [`OVERFLOW_LABEL`]. Call once at startup.
    pub fn set_label_budget(&self, max_values: usize) {
        self.tenants.set_cap(max_values);
        self.plugins.names.set_cap(max_values);
    }

    /// A request or batch was refused by `limit` (e.g. `"write_requests"`,
    /// `"metrics_per_second"`, `"series_per_tenant"`).
    pub fn rate_limit_rejected(&self, tenant: &str, limit: &'static str) {
        self.rate_limit_rejected
            .with_label_values(&[self.tenants.admit(tenant), limit])
            .inc();
    }

    /// The latest unique-series estimate for `tenant`.
    pub fn set_cardinality_estimate(&self, tenant: &str, estimate: u64) {
        self.cardinality_estimate
            .with_label_values(&[self.tenants.admit(tenant)])
            .set(i64::try_from(estimate).unwrap_or(i64::MAX));
    }

    /// Everything in the Prometheus text exposition format.
    pub fn encode_text(&self) -> String {
        let mut buffer = Vec::new();
        let families = self.registry.gather();
        if let Err(e) = TextEncoder::new().encode(&families, &mut buffer) {
            tracing::error!(error = %e, "encoding metrics failed");
        }
        String::from_utf8(buffer).unwrap_or_default()
    }

    /// The name of every family this server can export, whether or not it
    /// has samples yet (dashboards and alerts are checked against it).
    pub fn declared_names(&self) -> &[String] {
        &self.declared
    }

    /// The families that have samples right now.
    pub fn family_names(&self) -> Vec<String> {
        self.registry
            .gather()
            .iter()
            .map(|family| family.name().to_owned())
            .collect()
    }
}

/// The HTTP layer's request counters; recorded by the request-logging layer.
pub struct HttpMetrics {
    requests: IntCounterVec,
    duration: HistogramVec,
    pub in_flight: Gauge,
    pub connections_open: Gauge,
}

impl HttpMetrics {
    fn new(reg: &Registrar) -> Self {
        Self {
            requests: reg.counter_vec(
                "luminate_http_requests_total",
                "HTTP requests by route template, method and status.",
                &["endpoint", "method", "status"],
            ),
            duration: reg.histogram_vec(
                "luminate_http_request_duration_seconds",
                "Time from request to response headers, by route template and method.",
                &["endpoint", "method"],
                vec![
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                    10.0, 30.0,
                ],
            ),
            in_flight: Gauge(reg.gauge(
                "luminate_http_requests_in_flight",
                "Requests being served right now.",
            )),
            connections_open: Gauge(reg.gauge(
                "luminate_http_connections_open",
                "Client connections open right now (API and metrics listeners), TLS handshakes included.",
            )),
        }
    }

    /// `endpoint` must be a route template (or a fixed word such as
    /// `"unmatched"`), never a raw path.
    pub fn observe(&self, endpoint: &str, method: &str, status: u16, elapsed: Duration) {
        let method = normalize_method(method);
        self.requests
            .with_label_values(&[endpoint, method, status_label(status)])
            .inc();
        self.duration
            .with_label_values(&[endpoint, method])
            .observe(elapsed.as_secs_f64());
    }
}

/// Metrics received on the write path, by outcome.
pub struct IngestMetrics {
    outcomes: IntCounterVec,
}

impl IngestMetrics {
    fn new(reg: &Registrar) -> Self {
        let outcomes = reg.counter_vec(
            "luminate_ingest_metrics_total",
            "Metrics received on the write path, by protocol, outcome and rejection code.",
            &["protocol", "outcome", "code"],
        );
        Self { outcomes }
    }

    /// One batch's outcome: how many were accepted, and each rejection's
    /// code. `protocol` is a fixed name (`json`, `influx`, ...).
    pub fn record(
        &self,
        protocol: &'static str,
        accepted: u64,
        rejected_codes: impl Iterator<Item = &'static str>,
    ) {
        if accepted > 0 {
            self.outcomes
                .with_label_values(&[protocol, "accepted", ""])
                .inc_by(accepted);
        }
        for code in rejected_codes {
            self.outcomes
                .with_label_values(&[protocol, "rejected", code])
                .inc();
        }
    }
}

/// Storage operations, whatever the backend.
pub struct StorageMetrics {
    /// Points stored (acknowledged durable).
    pub writes: Counter,
    pub write_errors: Counter,
    pub write_duration: Histogram,
    query_duration: HistogramVec,
    query_errors: IntCounterVec,
}

/// The storage read/delete operations timed by
/// `luminate_storage_query_duration_seconds`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageOperation {
    Aggregate,
    Range,
    Rate,
    ListMetrics,
    ListDimensionKeys,
    ListDimensionValues,
    DeleteBefore,
    EnforceRetention,
}

impl StorageOperation {
    pub const fn label(self) -> &'static str {
        match self {
            Self::Aggregate => "aggregate",
            Self::Range => "range",
            Self::Rate => "rate",
            Self::ListMetrics => "list_metrics",
            Self::ListDimensionKeys => "list_dimension_keys",
            Self::ListDimensionValues => "list_dimension_values",
            Self::DeleteBefore => "delete_before",
            Self::EnforceRetention => "enforce_retention",
        }
    }
}

impl StorageMetrics {
    fn new(reg: &Registrar) -> Self {
        Self {
            writes: Counter(reg.counter(
                "luminate_storage_writes_total",
                "Metric points acknowledged as durably stored.",
            )),
            write_errors: Counter(reg.counter(
                "luminate_storage_write_errors_total",
                "Storage write calls that failed.",
            )),
            write_duration: Histogram(reg.histogram(
                "luminate_storage_write_duration_seconds",
                "Time of one storage write call (one batch).",
                latency_buckets(),
            )),
            query_duration: reg.histogram_vec(
                "luminate_storage_query_duration_seconds",
                "Time of storage reads and deletes, by operation.",
                &["operation"],
                latency_buckets(),
            ),
            query_errors: reg.counter_vec(
                "luminate_storage_query_errors_total",
                "Storage reads and deletes that failed, by operation.",
                &["operation"],
            ),
        }
    }

    pub fn observe_query(&self, operation: StorageOperation, elapsed: Duration, ok: bool) {
        self.query_duration
            .with_label_values(&[operation.label()])
            .observe(elapsed.as_secs_f64());
        if !ok {
            self.query_errors
                .with_label_values(&[operation.label()])
                .inc();
        }
    }
}

/// The ClickHouse batching writer.
pub struct BatchWriterMetrics {
    /// Rows waiting to be flushed.
    pub queue_depth: Gauge,
    pub flush_duration: Histogram,
    flushes: IntCounterVec,
}

impl BatchWriterMetrics {
    fn new(reg: &Registrar) -> Self {
        Self {
            queue_depth: Gauge(reg.gauge(
                "luminate_batch_writer_queue_depth",
                "Rows buffered in the batching writer, not yet flushed.",
            )),
            flush_duration: Histogram(reg.histogram(
                "luminate_batch_writer_flush_duration_seconds",
                "Time of one flush of the batching writer.",
                latency_buckets(),
            )),
            flushes: reg.counter_vec(
                "luminate_batch_writer_flushes_total",
                "Flushes of the batching writer, by outcome (ok, error).",
                &["outcome"],
            ),
        }
    }

    pub fn flushed(&self, elapsed: Duration, ok: bool) {
        self.flush_duration.observe(elapsed);
        self.flushes
            .with_label_values(&[if ok { "ok" } else { "error" }])
            .inc();
    }
}

/// Which plugin export was called.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PluginHook {
    Validate,
    Enrich,
    Aggregate,
}

impl PluginHook {
    pub const fn label(self) -> &'static str {
        match self {
            Self::Validate => "validate",
            Self::Enrich => "enrich",
            Self::Aggregate => "aggregate",
        }
    }
}

/// Plugin calls, failures, durations, loads, rejections and quarantines, by
/// plugin name (admitted through the label budget).
pub struct PluginMetrics {
    calls: IntCounterVec,
    errors: IntCounterVec,
    duration: HistogramVec,
    loads: IntCounterVec,
    rejected_metrics: IntCounterVec,
    quarantined: IntCounterVec,
    series_cache: IntCounterVec,
    names: LabelBudget,
}

impl PluginMetrics {
    fn new(reg: &Registrar) -> Self {
        Self {
            calls: reg.counter_vec(
                "luminate_plugin_calls_total",
                "Plugin calls (one per batch), by plugin and outcome (ok or the failure).",
                &["plugin", "outcome"],
            ),
            errors: reg.counter_vec(
                "luminate_plugin_errors_total",
                "Failed plugin calls, by plugin and kind (trap, timeout, memory_limit, ...).",
                &["plugin", "kind"],
            ),
            duration: reg.histogram_vec(
                "luminate_plugin_call_duration_seconds",
                "Time of one plugin call including the wait for a pool slot, by plugin and hook.",
                &["plugin", "hook"],
                vec![
                    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                    0.01, 0.025, 0.05, 0.1, 0.25,
                ],
            ),
            loads: reg.counter_vec(
                "luminate_plugin_loads_total",
                "Plugin installs and reloads, by plugin and result (installed, failed).",
                &["plugin", "result"],
            ),
            rejected_metrics: reg.counter_vec(
                "luminate_plugin_rejected_metrics_total",
                "Metrics rejected on the write path by plugins, by plugin and reason code.",
                &["plugin", "reason"],
            ),
            quarantined: reg.counter_vec(
                "luminate_plugin_quarantined_total",
                "Times a plugin was quarantined after consecutive failures.",
                &["plugin"],
            ),
            series_cache: reg.counter_vec(
                "luminate_plugin_series_cache_total",
                "Metrics a series-only plugin's remembered answers covered (hit) or not (miss: asked about, once per distinct series of a batch), by plugin.",
                &["plugin", "result"],
            ),
            names: LabelBudget::new(DEFAULT_LABEL_BUDGET),
        }
    }

    /// `count` calls of `plugin` that ended with `outcome`: `"ok"`, or a
    /// fixed failure label (which also counts as an error of that kind).
    pub fn record_calls(&self, plugin: &str, outcome: &str, count: u64) {
        let plugin = self.names.admit(plugin);
        self.calls
            .with_label_values(&[plugin, outcome])
            .inc_by(count);
        // A call cancelled by its request going away is not the plugin's
        // failure: it is counted, but not as an error (alerts watch those).
        if outcome != "ok" && outcome != "cancelled" {
            self.errors
                .with_label_values(&[plugin, outcome])
                .inc_by(count);
        }
    }

    /// How long one call of `hook` on `plugin` took.
    pub fn observe_duration(&self, plugin: &str, hook: PluginHook, elapsed: Duration) {
        self.duration
            .with_label_values(&[self.names.admit(plugin), hook.label()])
            .observe(elapsed.as_secs_f64());
    }

    /// An install or reload attempt: `result` is `"installed"` or `"failed"`.
    pub fn record_load(&self, plugin: &str, result: &str, count: u64) {
        self.loads
            .with_label_values(&[self.names.admit(plugin), result])
            .inc_by(count);
    }

    /// `count` metrics rejected by `plugin` for `reason` (a fixed code).
    pub fn record_rejected_metrics(&self, plugin: &str, reason: &str, count: u64) {
        self.rejected_metrics
            .with_label_values(&[self.names.admit(plugin), reason])
            .inc_by(count);
    }

    pub fn record_series_cache(&self, plugin: &str, result: &str, count: u64) {
        self.series_cache
            .with_label_values(&[self.names.admit(plugin), result])
            .inc_by(count);
    }

    pub fn record_quarantine(&self, plugin: &str, count: u64) {
        self.quarantined
            .with_label_values(&[self.names.admit(plugin)])
            .inc_by(count);
    }
}

/// A monotonically increasing count.
#[derive(Clone)]
pub struct Counter(IntCounter);

impl Counter {
    pub fn inc(&self) {
        self.0.inc();
    }
    pub fn inc_by(&self, n: u64) {
        self.0.inc_by(n);
    }
    pub fn get(&self) -> u64 {
        self.0.get()
    }
}

/// A value that goes up and down.
#[derive(Clone)]
pub struct Gauge(IntGauge);

impl Gauge {
    pub fn set(&self, value: i64) {
        self.0.set(value);
    }
    pub fn add(&self, n: i64) {
        self.0.add(n);
    }
    pub fn sub(&self, n: i64) {
        self.0.sub(n);
    }
    pub fn get(&self) -> i64 {
        self.0.get()
    }
}

/// A latency distribution.
#[derive(Clone)]
pub struct Histogram(prometheus::Histogram);

impl Histogram {
    pub fn observe(&self, elapsed: Duration) {
        self.0.observe(elapsed.as_secs_f64());
    }

    /// Observes the time from now until the returned guard is dropped.
    pub fn start_timer(&self) -> HistogramTimer<'_> {
        HistogramTimer {
            histogram: self,
            started: Instant::now(),
        }
    }
}

pub struct HistogramTimer<'a> {
    histogram: &'a Histogram,
    started: Instant,
}

impl Drop for HistogramTimer<'_> {
    fn drop(&mut self) {
        self.histogram.observe(self.started.elapsed());
    }
}

/// Caps the distinct values one label may take: the first `cap` values are
/// kept as they are, later ones become [`OVERFLOW_LABEL`]. A tenant flood
/// can therefore never blow up the server's own series count.
struct LabelBudget {
    admitted: DashSet<Box<str>>,
    cap: AtomicUsize,
}

impl LabelBudget {
    fn new(cap: usize) -> Self {
        Self {
            admitted: DashSet::new(),
            cap: AtomicUsize::new(cap),
        }
    }

    fn set_cap(&self, cap: usize) {
        self.cap.store(cap, Ordering::Relaxed);
    }

    fn admit<'a>(&self, value: &'a str) -> &'a str {
        if self.admitted.contains(value) {
            return value;
        }
        // Racing inserts may overshoot the cap by a few; that is still bounded.
        if self.admitted.len() < self.cap.load(Ordering::Relaxed) {
            self.admitted.insert(value.into());
            value
        } else {
            OVERFLOW_LABEL
        }
    }
}

/// Registration helpers: a name clash is a programming error caught by the
/// unit tests, so it is logged rather than propagated.
struct Registrar<'a> {
    registry: &'a Registry,
    names: RefCell<Vec<String>>,
}

impl Registrar<'_> {
    fn register<C: prometheus::core::Collector + Clone + 'static>(&self, collector: C) -> C {
        self.names
            .borrow_mut()
            .extend(collector.desc().iter().map(|desc| desc.fq_name.clone()));
        if let Err(e) = self.registry.register(Box::new(collector.clone())) {
            tracing::error!(error = %e, "metric registration failed");
        }
        collector
    }

    fn counter(&self, name: &str, help: &str) -> IntCounter {
        self.register(IntCounter::with_opts(Opts::new(name, help)).expect("valid metric name"))
    }

    fn counter_vec(&self, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
        self.register(IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric name"))
    }

    fn gauge(&self, name: &str, help: &str) -> IntGauge {
        self.register(IntGauge::with_opts(Opts::new(name, help)).expect("valid metric name"))
    }

    fn gauge_vec(&self, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
        self.register(IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric name"))
    }

    fn histogram(&self, name: &str, help: &str, buckets: Vec<f64>) -> prometheus::Histogram {
        let opts = HistogramOpts::new(name, help).buckets(buckets);
        self.register(prometheus::Histogram::with_opts(opts).expect("valid metric name"))
    }

    fn histogram_vec(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
        buckets: Vec<f64>,
    ) -> HistogramVec {
        let opts = HistogramOpts::new(name, help).buckets(buckets);
        self.register(HistogramVec::new(opts, labels).expect("valid metric name"))
    }
}

fn latency_buckets() -> Vec<f64> {
    vec![
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
        5.0, 10.0,
    ]
}

/// Methods outside the standard set share one label value.
fn normalize_method(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "PATCH" => "PATCH",
        "OPTIONS" => "OPTIONS",
        _ => "OTHER",
    }
}

/// Status codes as static strings, so recording allocates nothing.
fn status_label(status: u16) -> &'static str {
    const CODES: &[(u16, &str)] = &[
        (200, "200"),
        (201, "201"),
        (202, "202"),
        (204, "204"),
        (206, "206"),
        (301, "301"),
        (302, "302"),
        (304, "304"),
        (400, "400"),
        (401, "401"),
        (403, "403"),
        (404, "404"),
        (405, "405"),
        (406, "406"),
        (408, "408"),
        (409, "409"),
        (411, "411"),
        (413, "413"),
        (415, "415"),
        (422, "422"),
        (429, "429"),
        (499, "499"),
        (500, "500"),
        (501, "501"),
        (502, "502"),
        (503, "503"),
        (504, "504"),
    ];
    match CODES.iter().find(|(code, _)| *code == status) {
        Some((_, label)) => label,
        None => match status {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_budget_folds_values_past_the_cap_into_other() {
        let budget = LabelBudget::new(2);
        assert_eq!(budget.admit("a"), "a");
        assert_eq!(budget.admit("b"), "b");
        assert_eq!(budget.admit("c"), OVERFLOW_LABEL);
        assert_eq!(budget.admit("a"), "a", "admitted values stay admitted");
    }

    #[test]
    fn every_required_family_is_registered_under_its_documented_name() {
        let m = metrics();
        m.http
            .observe("/api/v1/write", "POST", 200, Duration::from_millis(3));
        m.storage.writes.inc_by(3);
        m.storage
            .observe_query(StorageOperation::Aggregate, Duration::from_millis(1), true);
        m.rate_limit_rejected("tenant-a", "write_requests");
        m.plugins.record_calls("name-policy", "trap", 1);
        m.plugins.observe_duration(
            "name-policy",
            PluginHook::Validate,
            Duration::from_micros(40),
        );
        m.set_cardinality_estimate("tenant-a", 42);
        m.batch_writer.queue_depth.set(7);
        let names = m.family_names();
        for required in [
            "luminate_http_requests_total",
            "luminate_http_request_duration_seconds",
            "luminate_storage_writes_total",
            "luminate_storage_query_duration_seconds",
            "luminate_rate_limit_rejected_total",
            "luminate_plugin_calls_total",
            "luminate_plugin_errors_total",
            "luminate_plugin_call_duration_seconds",
            "luminate_cardinality_series_estimate",
            "luminate_batch_writer_queue_depth",
            "luminate_build_info",
        ] {
            assert!(names.iter().any(|n| n == required), "{required} missing");
        }
        let text = m.encode_text();
        assert!(text.contains(
            r#"luminate_http_requests_total{endpoint="/api/v1/write",method="POST",status="200"}"#
        ));
        assert!(text.contains(r#"luminate_cardinality_series_estimate{tenant="tenant-a"} 42"#));
    }

    #[test]
    fn unknown_methods_and_statuses_map_to_fixed_labels() {
        assert_eq!(normalize_method("BREW"), "OTHER");
        assert_eq!(status_label(418), "4xx");
        assert_eq!(status_label(429), "429");
        assert_eq!(status_label(599), "5xx");
    }
}
