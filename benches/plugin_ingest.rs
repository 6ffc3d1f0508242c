//! Embedded ingest rate with one validator and one enricher bound, against
//! the same pipeline with no plugins. Target: ≥ 80 % of the no-plugin rate.
//!
//! Both runs use the real write pipeline (built-in validation → stages →
//! `MetricsStore::write`) on embedded RocksDB in a temp dir, no HTTP, with
//! `TASKS` concurrent writers of 1 000-metric batches. The plugins are the
//! example `name-policy` (required dimensions, allowed values) and
//! `lookup-enricher` (service → team). Each configuration runs `RUNS` times
//! on a fresh store; medians are printed.
//!
//! `cargo bench --bench plugin_ingest`

include!(concat!(env!("OUT_DIR"), "/plugins.rs"));

// Measure with the allocator the server runs with.
#[global_allocator]
static ALLOCATOR: luminate_host::ServerAllocator = luminate_host::ServerAllocator;

use std::sync::Arc;
use std::time::Instant;

use luminate_host::model::{Dimensions, Metric, TenantId, ValidationLimits, Validator};
use luminate_host::pipeline::WritePipeline;
use luminate_host::plugins::stage::PluginWriteStage;
use luminate_host::plugins::{
    Binding, BindingSet, FailurePolicy, FsPluginRepository, Manifest, PluginRuntime, PluginScope,
    PluginsConfig,
};
use luminate_host::storage::MetricsStore;
use luminate_host::storage::rocks::{RocksOptions, RocksStore};
use serde_json::json;

const BATCH: usize = 1_000;
const BATCHES_PER_TASK: usize = 100;
const TASKS: usize = 4;
const RUNS: usize = 3;

fn batch(task: usize, b: usize, now: i64) -> Vec<Result<Metric, (&'static str, String)>> {
    (0..BATCH)
        .map(|i| {
            let n = task * 1_000_000 + b * BATCH + i;
            Ok(Metric {
                name: "http_request_duration_seconds".into(),
                value: (n % 1000) as f64 / 1000.0,
                timestamp_ms: now - 60_000 + (n % 50_000) as i64,
                dimensions: Dimensions::from_pairs([
                    (
                        "service".to_owned(),
                        ["checkout", "search", "auth"][n % 3].to_owned(),
                    ),
                    ("env".to_owned(), "prod".to_owned()),
                    ("host".to_owned(), format!("web-{}", n % 200)),
                ]),
            })
        })
        .collect()
}

async fn run(with_plugins: bool) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn MetricsStore> =
        Arc::new(RocksStore::open(dir.path().join("db"), RocksOptions::default()).unwrap());
    let tenant = TenantId::new("bench").unwrap();
    let mut pipeline = WritePipeline::new(
        Validator::new(ValidationLimits::default()),
        store.clone(),
        10_000,
    );
    if with_plugins {
        // The deadline is not what this measures: a loaded machine must not
        // turn a slow batch into a rejection.
        let config = PluginsConfig {
            deadline: luminate_host::config::ConfigDuration::from_millis(5_000),
            ..PluginsConfig::default()
        };
        let runtime = PluginRuntime::with_private_metrics(
            config,
            ValidationLimits::default(),
            Arc::new(FsPluginRepository::new(dir.path().join("plugins"))),
        )
        .unwrap();
        let scope = PluginScope::Tenant(tenant.clone());
        for (name, path) in [("name-policy", NAME_POLICY), ("lookup", LOOKUP_ENRICHER)] {
            runtime
                .upload(
                    scope.clone(),
                    name,
                    Manifest::default(),
                    std::fs::read(path).unwrap(),
                )
                .await
                .unwrap();
        }
        let bindings = BindingSet {
            validators: vec![Binding {
                plugin: "name-policy".into(),
                params: json!({"requiredDimensions": ["service", "env"], "allowedValues": {"env": ["prod", "staging"]}}),
                on_failure: FailurePolicy::FailClosed,
            }],
            enrichers: vec![Binding {
                plugin: "lookup".into(),
                params: json!({"lookups": [{"key": "service", "table": {
                    "checkout": {"team": "payments"}, "search": {"team": "discovery"}, "auth": {"team": "identity"}}}]}),
                on_failure: FailurePolicy::FailClosed,
            }],
        };
        runtime.set_bindings(&tenant, bindings).await.unwrap();
        pipeline = pipeline.with_stage(Arc::new(PluginWriteStage::new(runtime)));
    }
    let pipeline = Arc::new(pipeline);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let batches: Vec<Vec<_>> = (0..TASKS)
        .map(|t| (0..BATCHES_PER_TASK).map(|b| batch(t, b, now)).collect())
        .collect();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for task_batches in batches {
        let (pipeline, tenant) = (pipeline.clone(), tenant.clone());
        tasks.push(tokio::spawn(async move {
            for items in task_batches {
                let outcome = pipeline.write(&tenant, items, now).await.unwrap();
                assert_eq!(outcome.accepted, BATCH, "{:?}", outcome.rejected.first());
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = started.elapsed();
    store.close().await.unwrap();
    (TASKS * BATCHES_PER_TASK * BATCH) as f64 / elapsed.as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    tokio.block_on(async {
        let mut without = Vec::new();
        let mut with = Vec::new();
        for _ in 0..RUNS {
            without.push(run(false).await);
            with.push(run(true).await);
        }
        let (without, with) = (median(without), median(with));
        println!(
            "embedded ingest, no plugins:            median {:.0} metrics/s",
            without
        );
        println!(
            "embedded ingest, validator + enricher:  median {:.0} metrics/s",
            with
        );
        println!("ratio: {:.1} % (target >= 80 %)", 100.0 * with / without);
    });
}
