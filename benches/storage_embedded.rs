//! In-process benchmark of the embedded RocksDB store (no HTTP).
//!
//! `cargo bench --bench storage_embedded` runs, with a fixed data set:
//! 1. ingest: 1 000 000 points over 100 000 series (dimensions `endpoint`
//!    ×20, `host` ×50, `user` unique), batches of 1 000, 8 concurrent tasks;
//! 2. queries, each repeated: p95 grouped by `endpoint` (the target query),
//!    p95 by `host` with a regex filter, and count grouped by the
//!    100 000-valued `user`;
//! 3. cardinality, in a fresh child process so its RSS is its own:
//!    1 000 000 points over 1 000 000 distinct series, then RSS.
//!
//! Batches of phase 1 are built before timing; phase 3 builds them inside
//! the timed loop (as a server would), so its rate includes that work.

// Measure with the allocator the server runs with.
#[global_allocator]
static ALLOCATOR: luminate_host::ServerAllocator = luminate_host::ServerAllocator;

use std::sync::Arc;
use std::time::{Duration, Instant};

use luminate_host::model::{
    AggregateQuery, Aggregation, Dimensions, Filter, Metric, Selector, TenantId, TimeRange,
};
use luminate_host::storage::MetricsStore;
use luminate_host::storage::rocks::{RocksOptions, RocksStore};

const BASE_MS: i64 = 1_700_000_000_000;
const POINTS: usize = 1_000_000;
const SERIES: usize = 100_000;
const BATCH: usize = 1_000;
const TASKS: usize = 8;
const QUERY_RUNS: usize = 30;

/// CPU seconds this process used so far (all threads, RocksDB's included):
/// on a shared box the wall clock mostly measures the neighbours.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the
    // 12th and 13th of them, in clock ticks (100 per second on Linux).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Deterministic pseudo-random values (xorshift), so runs compare.
fn value_of(i: usize) -> f64 {
    let mut x = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    (x % 100_000) as f64 / 100.0
}

/// Point `i` of a data set with `distinct_series` series: series `i %
/// distinct_series`, ten seconds between a series' rounds.
fn point(i: usize, distinct_series: usize) -> Metric {
    let s = i % distinct_series;
    let round = (i / distinct_series) as i64;
    Metric {
        name: "api_latency".into(),
        value: value_of(i),
        timestamp_ms: BASE_MS + round * 10_000 + (s % 1_000) as i64,
        dimensions: Dimensions::from_pairs([
            (
                "endpoint".to_string(),
                format!("/api/v1/endpoint-{}", s % 20),
            ),
            ("host".to_string(), format!("host-{:02}", s % 50)),
            ("user".to_string(), format!("user-{s:07}")),
        ]),
    }
}

fn batches(points: usize, series: usize) -> Vec<Vec<Metric>> {
    (0..points / BATCH)
        .map(|b| {
            (b * BATCH..(b + 1) * BATCH)
                .map(|i| point(i, series))
                .collect()
        })
        .collect()
}

/// Wall time and CPU seconds of the ingest.
async fn ingest(
    store: &Arc<RocksStore>,
    tenant: &TenantId,
    prebuilt: Option<Vec<Vec<Metric>>>,
    series: usize,
) -> (Duration, f64) {
    let started = Instant::now();
    let cpu = cpu_seconds();
    let prebuilt = prebuilt.map(|b| Arc::new(std::sync::Mutex::new(b)));
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let (store, tenant, prebuilt) = (store.clone(), tenant.clone(), prebuilt.clone());
            tokio::spawn(async move {
                let mut b = task;
                while b < POINTS / BATCH {
                    let batch = match &prebuilt {
                        Some(all) => std::mem::take(&mut all.lock().unwrap()[b]),
                        None => (b * BATCH..(b + 1) * BATCH)
                            .map(|i| point(i, series))
                            .collect(),
                    };
                    store.write(&tenant, batch).await.expect("write");
                    b += TASKS;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("ingest task");
    }
    (started.elapsed(), cpu_seconds() - cpu)
}

fn percentile(sorted_ms: &[f64], q: f64) -> f64 {
    sorted_ms[((q * sorted_ms.len() as f64) as usize).min(sorted_ms.len() - 1)]
}

async fn time_query(store: &RocksStore, tenant: &TenantId, name: &str, query: &AggregateQuery) {
    let mut rows = 0;
    for _ in 0..3 {
        rows = store
            .query_aggregate(tenant, query)
            .await
            .expect("query")
            .rows
            .len();
    }
    let mut ms = Vec::with_capacity(QUERY_RUNS);
    let cpu = cpu_seconds();
    for _ in 0..QUERY_RUNS {
        let started = Instant::now();
        let result = store.query_aggregate(tenant, query).await.expect("query");
        ms.push(started.elapsed().as_secs_f64() * 1e3);
        assert_eq!(result.rows.len(), rows);
    }
    let cpu_ms = (cpu_seconds() - cpu) * 1e3 / QUERY_RUNS as f64;
    ms.sort_by(f64::total_cmp);
    println!(
        "query {name:<44} groups {rows:>6}  p50 {:>7.1} ms  p95 {:>7.1} ms  max {:>7.1} ms  cpu/query {cpu_ms:>7.1} ms  ({QUERY_RUNS} runs)",
        percentile(&ms, 0.5),
        percentile(&ms, 0.95),
        ms[ms.len() - 1]
    );
}

fn aggregate(aggregation: Aggregation, group_by: &str, filters: Vec<Filter>) -> AggregateQuery {
    AggregateQuery {
        selector: Selector {
            metric: "api_latency".into(),
            range: TimeRange {
                start_ms: BASE_MS - 3_600_000,
                end_ms: BASE_MS + 3_600_000,
            },
            filters,
            budget: luminate_host::model::QueryBudget::UNLIMITED,
        },
        aggregation,
        group_by: vec![group_by.to_string()],
        limit: None,
    }
}

async fn main_phase() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tenant = TenantId::new("bench").expect("tenant");
    let store = Arc::new(RocksStore::open(dir.path(), RocksOptions::default()).expect("open"));
    println!(
        "storage_embedded: {POINTS} points, {SERIES} series, batches of {BATCH}, {TASKS} tasks, on disk, sync_writes=false"
    );
    let prebuilt = batches(POINTS, SERIES);
    let (elapsed, cpu) = ingest(&store, &tenant, Some(prebuilt), SERIES).await;
    println!(
        "ingest  {:>10.0} points/s  ({:.2} s wall, {cpu:.2} CPU-s; {} series)  RSS {:.0} MiB",
        POINTS as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64(),
        store.series_count().await.expect("count"),
        rss_mib()
    );
    time_query(
        &store,
        &tenant,
        "p95 by endpoint (1M points, 100k series)",
        &aggregate(Aggregation::Percentile(0.95), "endpoint", vec![]),
    )
    .await;
    let api =
        Filter::regex("endpoint".into(), "/api/v1/endpoint-1.*".into(), false).expect("regex");
    time_query(
        &store,
        &tenant,
        "p95 by host, endpoint =~ endpoint-1.*",
        &aggregate(Aggregation::Percentile(0.95), "host", vec![api]),
    )
    .await;
    time_query(
        &store,
        &tenant,
        "count by user (100k groups)",
        &aggregate(Aggregation::Count, "user", vec![]),
    )
    .await;
    println!("RSS after queries {:.0} MiB", rss_mib());
    store.close().await.expect("close");
}

async fn cardinality_phase() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tenant = TenantId::new("bench").expect("tenant");
    let store = Arc::new(RocksStore::open(dir.path(), RocksOptions::default()).expect("open"));
    let (elapsed, cpu) = ingest(&store, &tenant, None, POINTS).await;
    println!(
        "cardinality: {} distinct series ingested at {:.0} points/s ({cpu:.2} CPU-s; batches built in the loop)  RSS {:.0} MiB",
        store.series_count().await.expect("count"),
        POINTS as f64 / elapsed.as_secs_f64(),
        rss_mib()
    );
    time_query(
        &store,
        &tenant,
        "p95 by endpoint (1M points, 1M series)",
        &aggregate(Aggregation::Percentile(0.95), "endpoint", vec![]),
    )
    .await;
    println!("cardinality: RSS after query {:.0} MiB", rss_mib());
    store.close().await.expect("close");
    drop(store);
    // Reopening rebuilds the in-memory series map from the index.
    let (started, cpu) = (Instant::now(), cpu_seconds());
    let store = RocksStore::open(dir.path(), RocksOptions::default()).expect("reopen");
    println!(
        "cardinality: reopen with {} series took {:.2} s ({:.2} CPU-s)",
        store.series_count().await.expect("count"),
        started.elapsed().as_secs_f64(),
        cpu_seconds() - cpu
    );
}

#[tokio::main]
async fn main() {
    if std::env::var_os("LUMINATE_BENCH_CARDINALITY").is_some() {
        cardinality_phase().await;
        return;
    }
    main_phase().await;
    if std::env::var_os("LUMINATE_BENCH_SKIP_CARDINALITY").is_some() {
        return;
    }
    // A fresh process, so the RSS reported is that of 1M series alone.
    let exe = std::env::current_exe().expect("current exe");
    let status = std::process::Command::new(exe)
        .env("LUMINATE_BENCH_CARDINALITY", "1")
        .status()
        .expect("spawn cardinality phase");
    assert!(status.success(), "cardinality phase failed");
}
