//! Embedded ingest rate with one validator and one enricher bound, against
//! the same pipeline with no plugins. Target: ≥ 80 % of the no-plugin rate.
//!
//! Every run uses the real write pipeline (built-in validation → stages →
//! `MetricsStore::write`) on embedded RocksDB in a temp dir, no HTTP, with
//! `TASKS` concurrent writers of 1 000-metric batches. The plugins are the
//! example `name-policy` (required dimensions, allowed values) and
//! `lookup-enricher` (service → team), both series-only.
//!
//! Two workloads:
//! - `repeating`: 600 series written again and again (4 million metrics
//!   a run), as scrapes and
//!   flushes do: the series cache answers all but the first sight of each;
//! - `all new`: every metric a series never seen before (a million
//!   series, a million metrics a run), the cache's worst case: every metric is asked about, plus
//!   the lookups.
//!
//! and four pipelines: no plugins; the plugins with the series cache (the
//! default); the plugins with it off (`series_cache_bytes = 0`), every
//! metric sent to both plugins; and no plugins with every metric already
//! carrying the `team` the enricher adds, which shows what storing the
//! enricher's output costs by itself. Each configuration runs `RUNS` times on a
//! fresh store, each run paired with a no-plugin run just before it, each
//! after one untimed warm-up batch per writer (a run is a fraction of a
//! second: a cold pool slot's page faults would otherwise weigh like a
//! steady-state cost). Printed: median rates and the median of the pairs'
//! ratios, with every pair's ratio.
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
const TASKS: usize = 4;
const RUNS: usize = 7;

#[derive(Clone, Copy, PartialEq)]
enum Workload {
    Repeating,
    AllNew,
}

impl Workload {
    /// Batches per writer: a repeating run goes five times as fast, so it
    /// writes four times as much to last long enough to measure.
    fn batches_per_task(self) -> usize {
        match self {
            Workload::Repeating => 1_000,
            Workload::AllNew => 250,
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Plugins {
    None,
    Remembered,
    EveryCall,
    /// No plugins, but every metric arrives with the `team` the enricher
    /// would add: what storing the enricher's output costs by itself.
    NoneTeamAlreadySet,
}

fn batch(
    workload: Workload,
    plugins: Plugins,
    task: usize,
    b: usize,
    now: i64,
) -> Vec<Result<Metric, (&'static str, String)>> {
    (0..BATCH)
        .map(|i| {
            let n = task * 1_000_000 + b * BATCH + i;
            let host = match workload {
                Workload::Repeating => format!("web-{}", n % 200),
                Workload::AllNew => format!("web-{n}"),
            };
            let (service, team) = [
                ("checkout", "payments"),
                ("search", "discovery"),
                ("auth", "identity"),
            ][n % 3];
            // As the write path's decoder builds them (a map's size is
            // not known up front).
            let mut dimensions = Vec::with_capacity(8);
            dimensions.extend([
                ("service".to_owned(), service.to_owned()),
                ("env".to_owned(), "prod".to_owned()),
                ("host".to_owned(), host),
            ]);
            if plugins == Plugins::NoneTeamAlreadySet {
                dimensions.push(("team".to_owned(), team.to_owned()));
            }
            Ok(Metric {
                name: "http_request_duration_seconds".into(),
                value: (n % 1000) as f64 / 1000.0,
                timestamp_ms: now - 60_000 + (n % 50_000) as i64,
                dimensions: Dimensions::from_pairs(dimensions),
            })
        })
        .collect()
}

async fn run(workload: Workload, plugins: Plugins) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn MetricsStore> =
        Arc::new(RocksStore::open(dir.path().join("db"), RocksOptions::default()).unwrap());
    let tenant = TenantId::new("bench").unwrap();
    let mut pipeline = WritePipeline::new(
        Validator::new(ValidationLimits::default()),
        store.clone(),
        10_000,
    );
    if matches!(plugins, Plugins::Remembered | Plugins::EveryCall) {
        // The deadline is not what this measures: a loaded machine must not
        // turn a slow batch into a rejection.
        let config = PluginsConfig {
            deadline: luminate_host::config::ConfigDuration::from_millis(5_000),
            series_cache_bytes: match plugins {
                Plugins::EveryCall => 0,
                _ => PluginsConfig::default().series_cache_bytes,
            },
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
    // One untimed batch per writer first, as a server that has been
    // running would be: its pool slots touched, its stores' first writes
    // behind it. For `repeating` this also shows the cache its series, as a
    // server sees them on the first scrape; `all new` warm-up series are
    // never written again.
    for task in 0..TASKS {
        let warm_up = batch(workload, plugins, task, workload.batches_per_task(), now);
        pipeline.write(&tenant, warm_up, now).await.unwrap();
    }
    // Each writer builds its own batches, untimed, as a request's task
    // decodes its own body: metrics built on one thread and freed on others
    // cost far more to free than they do in the server.
    let ready = Arc::new(tokio::sync::Barrier::new(TASKS + 1));
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let (pipeline, tenant, ready) = (pipeline.clone(), tenant.clone(), ready.clone());
        tasks.push(tokio::spawn(async move {
            let batches: Vec<_> = (0..workload.batches_per_task())
                .map(|b| batch(workload, plugins, task, b, now))
                .collect();
            ready.wait().await;
            for items in batches {
                let outcome = pipeline.write(&tenant, items, now).await.unwrap();
                assert_eq!(outcome.accepted, BATCH, "{:?}", outcome.rejected.first());
            }
        }));
    }
    ready.wait().await;
    let started = Instant::now();
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = started.elapsed();
    store.close().await.unwrap();
    (TASKS * workload.batches_per_task() * BATCH) as f64 / elapsed.as_secs_f64()
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
        for (workload, label) in [
            (Workload::Repeating, "repeating (600 series)"),
            (Workload::AllNew, "all new (1 000 000 series)"),
        ] {
            let configs = [
                (Plugins::Remembered, "validator + enricher, cache on: "),
                (Plugins::EveryCall, "validator + enricher, cache off:"),
                (Plugins::NoneTeamAlreadySet, "no plugins, team already set:  "),
            ];
            // Each run of a configuration is paired with a no-plugin run
            // right before it: this machine's speed drifts between runs,
            // so the ratio of a pair is steadier than a ratio of medians.
            let mut none = Vec::new();
            let mut rates = vec![Vec::new(); configs.len()];
            let mut ratios = vec![Vec::new(); configs.len()];
            for _ in 0..RUNS {
                for (i, (plugins, _)) in configs.iter().enumerate() {
                    let base = run(workload, Plugins::None).await;
                    let rate = run(workload, *plugins).await;
                    none.push(base);
                    rates[i].push(rate);
                    ratios[i].push(100.0 * rate / base);
                }
            }
            println!("{label}:");
            println!(
                "  no plugins:                       median {:.0} metrics/s",
                median(none)
            );
            for (i, (plugins, name)) in configs.iter().enumerate() {
                let target = if *plugins == Plugins::Remembered {
                    " (target >= 80 %)"
                } else {
                    ""
                };
                let mut sorted = ratios[i].clone();
                sorted.sort_by(|a, b| a.total_cmp(b));
                println!(
                    "  {name}  median {:.0} metrics/s; paired ratio median {:.1} %{target} (runs: {})",
                    median(rates[i].clone()),
                    median(ratios[i].clone()),
                    sorted.iter().map(|r| format!("{r:.1}")).collect::<Vec<_>>().join(" ")
                );
            }
        }
    });
}
