//! Per-metric cost of crossing into a no-op validator, on 1 000-metric
//! batches: the whole write-path step (convert the batch, take a pool
//! slot, hop to the blocking pool, a fresh store + instance, lower the
//! batch into the guest, lift the verdicts). Target: ≤ 100 ns per metric.
//!
//! For scale, the same step with the example plugins `plugin_ingest` binds
//! (`name-policy` validating, `lookup-enricher` adding `team`), each on a
//! 1 000-metric batch, asked about every metric and answered from the
//! series cache.
//!
//! `cargo bench --bench plugin_overhead` (release; prints medians).

include!(concat!(env!("OUT_DIR"), "/plugins.rs"));

// Measure with the allocator the server runs with.
#[global_allocator]
static ALLOCATOR: luminate_host::ServerAllocator = luminate_host::ServerAllocator;

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
        let mut examples = Vec::new();
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
        let binding =
            ResolvedBinding::new("noop".into(), Arc::from("{}"), FailurePolicy::FailClosed);

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

        for (name, path, params) in [
            (
                "name-policy",
                NAME_POLICY,
                r#"{"requiredDimensions":["service","env"],"allowedValues":{"env":["prod","staging"]}}"#,
            ),
            (
                "lookup-enricher",
                LOOKUP_ENRICHER,
                r#"{"lookups":[{"key":"service","table":{"checkout":{"team":"payments"}}}]}"#,
            ),
        ] {
            // Both example plugins are series-only: measured as every
            // metric asked (the cache turned off for this upload) and as
            // answered from memory (the batch's 16 series seen before).
            for (mode, series_only) in [("asked every time", false), ("answered from memory", true)] {
                let installed = format!("{name}-{series_only}");
                runtime
                    .upload(
                        PluginScope::Tenant(tenant.clone()),
                        &installed,
                        Manifest {
                            series_only: Some(series_only),
                            ..Manifest::default()
                        },
                        std::fs::read(path).unwrap(),
                    )
                    .await
                    .unwrap();
                let binding =
                    ResolvedBinding::new(installed, Arc::from(params), FailurePolicy::FailClosed);
                let metrics = batch(BATCH);
                let mut per_metric_ns = Vec::with_capacity(ROUNDS);
                for round in 0..ROUNDS + 2 {
                    // Enrich fresh copies, as requests would; copied untimed.
                    let mut copies = vec![metrics.clone(); CALLS_PER_ROUND];
                    let started = Instant::now();
                    for copy in &mut copies {
                        let outcome = if name == "name-policy" {
                            runtime.run_validator(&tenant, &binding, copy).await
                        } else {
                            runtime.run_enricher(&tenant, &binding, copy).await
                        };
                        assert_eq!(outcome, StepOutcome::AcceptAll);
                    }
                    // The first rounds warm up.
                    if round >= 2 {
                        per_metric_ns.push(
                            started.elapsed().as_secs_f64() * 1e9
                                / (CALLS_PER_ROUND * BATCH) as f64,
                        );
                    }
                }
                examples.push(format!(
                    "{name}, 1 000-metric batch, {mode}: median {:.1} ns/metric",
                    median(per_metric_ns)
                ));
            }
        }
        for line in examples {
            println!("{line}");
        }
    });
}
