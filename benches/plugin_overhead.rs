//! Per-metric cost of crossing into a no-op validator, on 1 000-metric
//! batches: the whole write-path step (convert the batch, take a pool
//! slot, hop to the blocking pool, a fresh store + instance, lower the
//! batch into the guest, lift the verdicts). Target: ≤ 100 ns per metric.
//!
//! `cargo bench --bench plugin_overhead` (release; prints medians).

include!(concat!(env!("OUT_DIR"), "/plugins.rs"));

use std::sync::Arc;
use std::time::{Duration, Instant};

use luminate_host::model::{Dimensions, Metric, TenantId, ValidationLimits};
use luminate_host::plugins::bindings::ResolvedBinding;
use luminate_host::plugins::{
    FailurePolicy, FsPluginRepository, Manifest, PluginRuntime, PluginScope, PluginsConfig,
    StepOutcome,
};

const BATCH: usize = 1_000;
const ROUNDS: usize = 30;
const CALLS_PER_ROUND: usize = 20;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn batch(n: usize) -> Vec<Metric> {
    (0..n)
        .map(|i| Metric {
            name: "http_request_duration_seconds".into(),
            value: i as f64 * 0.001,
            timestamp_ms: 1_700_000_000_000 + i as i64,
            dimensions: Dimensions::from_pairs([
                ("service".to_owned(), "checkout".to_owned()),
                ("host".to_owned(), format!("web-{}", i % 16)),
                ("env".to_owned(), "prod".to_owned()),
            ]),
        })
        .collect()
}

fn main() {
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    tokio.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let runtime = PluginRuntime::with_private_metrics(
            PluginsConfig::default(),
            ValidationLimits::default(),
            Arc::new(FsPluginRepository::new(dir.path().to_path_buf())),
        )
        .unwrap();
        let tenant = TenantId::new("bench").unwrap();
        let bytes = std::fs::read(NOOP_VALIDATOR).unwrap();
        runtime
            .upload(PluginScope::Tenant(tenant.clone()), "noop", Manifest::default(), bytes)
            .await
            .unwrap();
        let binding = ResolvedBinding {
            plugin: "noop".into(),
            params_json: Arc::from("{}"),
            on_failure: FailurePolicy::FailClosed,
        };

        for (label, size) in [("1 000-metric batch", BATCH), ("1-metric batch (fixed cost)", 1)] {
            let metrics = batch(size);
            for _ in 0..50 {
                assert_eq!(runtime.run_validator(&tenant, &binding, &metrics).await, StepOutcome::AcceptAll);
            }
            let mut per_metric_ns = Vec::with_capacity(ROUNDS);
            let mut per_call_us = Vec::with_capacity(ROUNDS);
            for _ in 0..ROUNDS {
                let started = Instant::now();
                for _ in 0..CALLS_PER_ROUND {
                    let outcome = runtime.run_validator(&tenant, &binding, &metrics).await;
                    assert_eq!(outcome, StepOutcome::AcceptAll);
                }
                let per_call: Duration = started.elapsed() / CALLS_PER_ROUND as u32;
                per_call_us.push(per_call.as_secs_f64() * 1e6);
                per_metric_ns.push(per_call.as_secs_f64() * 1e9 / size as f64);
            }
            println!(
                "noop validator, {label}: median {:.1} ns/metric, {:.1} us/call ({ROUNDS} rounds x {CALLS_PER_ROUND} calls)",
                median(per_metric_ns),
                median(per_call_us)
            );
        }
    });
}
