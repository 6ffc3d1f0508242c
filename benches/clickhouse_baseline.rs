//! What ClickHouse itself does with the load generator's rows: the baseline
//! the ClickHouse backend is measured against (docs/benchmarks.md).
//!
//! It creates Luminate's own schema (through `ClickHouseStore::open`) in a
//! separate database, inserts exactly the rows `benches/loadgen.rs`
//! generates (same seed, series, values, batches, connections) straight
//! into ClickHouse over HTTP as `JSONEachRow`, then times the hand-written
//! SQL equivalent of loadgen's "aggregate p95 by endpoint" query.
//!
//! ```text
//! scripts/bench-clickhouse        # this, then loadgen against --storage clickhouse
//! cargo bench --bench clickhouse_baseline -- --clickhouse-url http://127.0.0.1:8123
//! ```

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use luminate_host::config::ClickHouseConfig;
use luminate_host::storage::MetricsStore;
use luminate_host::storage::clickhouse::ClickHouseStore;

#[derive(Parser, Debug)]
#[command(about = "Raw ClickHouse baseline for the Luminate ClickHouse backend")]
struct Args {
    #[arg(long)]
    clickhouse_url: String,
    /// Database for the baseline's copy of the schema (dropped first).
    #[arg(long, default_value = "luminate_baseline")]
    database: String,
    #[arg(long, default_value_t = 1_000_000)]
    metrics: usize,
    #[arg(long, default_value_t = 100_000)]
    series: usize,
    #[arg(long, default_value_t = 1_000)]
    batch: usize,
    #[arg(long, default_value_t = 8)]
    connections: usize,
    #[arg(long, default_value_t = 30)]
    query_runs: usize,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// cargo bench passes --bench; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

/// loadgen's generator, unchanged, so both runs write identical rows.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

const REGIONS: [&str; 5] = ["eu-west", "eu-central", "us-east", "us-west", "ap-south"];
const ENDPOINTS: usize = 20;

/// The same rows as loadgen's bodies, as `JSONEachRow` for the `samples`
/// table (dimension keys sorted, as Luminate stores them).
fn build_bodies(args: &Args, base_ts: i64, span_ms: i64) -> Vec<Vec<u8>> {
    let mut rng = Rng(args.seed.max(1));
    let mut bodies = Vec::new();
    let mut k = 0usize;
    while k < args.metrics {
        let n = args.batch.min(args.metrics - k);
        let mut body = String::with_capacity(n * 200);
        for j in 0..n {
            let i = k + j;
            let series = if i < args.series {
                i
            } else {
                (rng.next() % args.series as u64) as usize
            };
            let value = 0.005 + rng.unit().powi(4) * 2.0;
            let ts = base_ts + (i as i64 * span_ms) / args.metrics.max(1) as i64;
            let _ = writeln!(
                body,
                r#"{{"tenant":"default","metric":"api_latency","series":{series},"time":{ts},"value":{value:.6},"dim_keys":["customer","endpoint","region"],"dim_values":["c{series:06}","/api/v1/e{}","{}"]}}"#,
                series % ENDPOINTS,
                REGIONS[series % REGIONS.len()],
            );
        }
        bodies.push(body.into_bytes());
        k += n;
    }
    bodies
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((q * sorted.len() as f64).floor() as usize).min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let http = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(args.connections)
        .build()
        .unwrap();
    let url = args.clickhouse_url.trim_end_matches('/').to_owned();
    let post = |sql: String| {
        let http = http.clone();
        let url = url.clone();
        async move {
            let response = http
                .post(&url)
                .body(sql)
                .send()
                .await
                .expect("ClickHouse unreachable");
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            assert!(status.is_success(), "ClickHouse answered {status}: {text}");
            text
        }
    };
    let version = post("SELECT version()".into()).await;
    post(format!("DROP TABLE IF EXISTS `{}`.samples", args.database)).await;
    // Luminate's own schema, created the way the backend creates it.
    let store = ClickHouseStore::open(&ClickHouseConfig {
        url: url.clone(),
        database: args.database.clone(),
        ..ClickHouseConfig::default()
    })
    .await
    .expect("create the baseline schema");
    store.close().await.ok();

    let span_ms = 3_600_000;
    let base_ts = now_ms() - span_ms - 60_000;
    let bodies = Arc::new(build_bodies(&args, base_ts, span_ms));
    let bytes: usize = bodies.iter().map(Vec::len).sum();
    println!(
        "ClickHouse {} | {} rows, {} series, {} inserts of {}, {} connections, {:.1} MB JSONEachRow",
        version.trim(),
        args.metrics,
        args.series,
        bodies.len(),
        args.batch,
        args.connections,
        bytes as f64 / 1e6
    );

    let insert = format!(
        "{url}/?query=INSERT%20INTO%20`{}`.samples%20FORMAT%20JSONEachRow",
        args.database
    );
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.connections {
        let (http, insert, bodies, next) =
            (http.clone(), insert.clone(), bodies.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(body) = bodies.get(i) else { break };
                let response = http
                    .post(&insert)
                    .body(body.clone())
                    .send()
                    .await
                    .expect("insert");
                let status = response.status();
                let text = response.text().await.unwrap_or_default();
                assert!(status.is_success(), "insert answered {status}: {text}");
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let elapsed = started.elapsed();
    println!(
        "\n== raw ClickHouse ingest (HTTP JSONEachRow)\n  {:.0} rows/s ({} rows in {:.2} s)",
        args.metrics as f64 / elapsed.as_secs_f64(),
        args.metrics,
        elapsed.as_secs_f64()
    );

    // loadgen's "aggregate p95 by endpoint (all points)", by hand, over the
    // same window ({"relative": "2h"}).
    let end = now_ms();
    let sql = format!(
        "SELECT dim_values[indexOf(dim_keys, 'endpoint')] AS endpoint, \
         quantileExact(0.95)(value) AS p95 FROM `{}`.samples \
         WHERE tenant = 'default' AND metric = 'api_latency' AND time >= {} AND time < {} \
         GROUP BY endpoint ORDER BY endpoint FORMAT JSON",
        args.database,
        end - 7_200_000,
        end
    );
    let mut times = Vec::new();
    for run in 0..=args.query_runs {
        let t = Instant::now();
        post(sql.clone()).await;
        if run > 0 {
            times.push(t.elapsed()); // the first run warms caches
        }
    }
    times.sort();
    println!(
        "\n== hand-written SQL: p95 by endpoint, {} runs\n  p50 {}  p95 {}",
        args.query_runs,
        ms(percentile(&times, 0.5)),
        ms(percentile(&times, 0.95))
    );
}
