//! Cardinality tracking under a tenant that writes many series, each with
//! dimension keys nobody used before: the tracking state, the sketch files
//! and the cardinality report stay bounded, and nothing stalls the quiet
//! tenant or the probes.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{Api, now_ms};
use crate::support::Hostile;

/// Series the attacker writes, each with `KEYS_PER_SERIES` new keys: 1.2 M
/// distinct keys, at the free tier's 10 000 metrics/s about 6 s.
const SERIES: usize = 60_000;
const KEYS_PER_SERIES: usize = 20;
const BATCH: usize = 1_000;
const WRITERS: usize = 2;

/// The server's data directory, from its command line.
fn data_dir(pid: u32) -> PathBuf {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    let at = args
        .iter()
        .position(|a| *a == b"--data-dir")
        .expect("the server is started with --data-dir");
    PathBuf::from(String::from_utf8(args[at + 1].to_vec()).unwrap())
}

/// Bytes the attacker's tracking state takes on disk.
fn sketch_bytes(dir: &std::path::Path) -> u64 {
    ["attacker.sketch", "attacker.journal"]
        .iter()
        .map(|f| std::fs::metadata(dir.join(f)).map_or(0, |m| m.len()))
        .sum()
}

fn batch(first: usize) -> Value {
    let ts = now_ms() - 1_000;
    let metrics: Vec<Value> = (first..first + BATCH)
        .map(|s| {
            let dims: serde_json::Map<String, Value> = (0..KEYS_PER_SERIES)
                .map(|k| (format!("k{s}_{k}"), json!("v")))
                .collect();
            // Spread over metrics: the free tier allows 20 000 series per metric.
            let name = format!("explode_{}", s % 10);
            json!({"name": name, "value": 1.0, "timestamp": ts, "dimensions": dims})
        })
        .collect();
    Value::Array(metrics)
}

/// Writes its share of batches, waiting out 429s (the attacker's own rate).
async fn attack(api: Api, writer: usize) -> usize {
    let mut accepted = 0;
    let mut first = writer * BATCH;
    while first < SERIES {
        let reply = api.write(batch(first)).await;
        match reply.status.as_u16() {
            200 => {
                accepted += reply.body["accepted"].as_u64().unwrap_or(0) as usize;
                first += WRITERS * BATCH;
            }
            429 => {
                let wait = reply.body["error"]["retry_after_ms"]
                    .as_u64()
                    .unwrap_or(100);
                tokio::time::sleep(Duration::from_millis(wait)).await;
            }
            other => panic!("attacker write: {other} {}", reply.body),
        }
    }
    accepted
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_seen_dimension_keys_do_not_stall_the_server() {
    // Persisting every second puts the attacker's state through many saves.
    let mut hostile = Hostile::spawn_with(
        &[],
        &[("LUMINATE_LIMITS__CARDINALITY__PERSIST_INTERVAL", "1s")],
    )
    .await;
    let sketches = data_dir(hostile.pid()).join("cardinality");
    let quiet = hostile.start_quiet_load();
    let attacker = hostile.attacker();

    // Probes and reports, timed, while the attack runs.
    let probe = hostile.anonymous();
    let reporter = attacker.clone();
    let watching = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let watch = {
        let watching = watching.clone();
        let sketches = sketches.clone();
        tokio::spawn(async move {
            let (mut healthz, mut report, mut file) = (Duration::ZERO, Duration::ZERO, 0);
            while watching.load(std::sync::atomic::Ordering::Relaxed) {
                let started = Instant::now();
                assert_eq!(probe.get("/healthz").await.status.as_u16(), 200);
                healthz = healthz.max(started.elapsed());
                let started = Instant::now();
                let r = reporter.get("/api/v1/cardinality").await;
                if r.status.as_u16() == 200 {
                    report = report.max(started.elapsed());
                }
                file = file.max(sketch_bytes(&sketches));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            (healthz, report, file)
        })
    };

    let started = Instant::now();
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| tokio::spawn(attack(attacker.clone(), w)))
        .collect();
    let mut accepted = 0;
    for w in writers {
        accepted += w.await.unwrap();
    }
    let attack_time = started.elapsed();
    // Two more persists of what the attack left.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    watching.store(false, std::sync::atomic::Ordering::Relaxed);
    let (healthz, report_time, file_peak) = watch.await.unwrap();
    let report = quiet.stop().await;

    eprintln!(
        "attack {attack_time:?}; /healthz max {healthz:?}; report max {report_time:?}; \
         sketch files peak {} KiB; quiet p99 {:?}; RSS {} MiB",
        file_peak >> 10,
        report.quantile(0.99),
        hostile.rss_bytes() >> 20
    );
    assert_eq!(
        accepted, SERIES,
        "keys past the bound are folded, not refused"
    );
    report.assert_unharmed();
    hostile.assert_alive().await;
    hostile.assert_rss_growth_below(512 << 20);
    // Worst single probe and report (not a p99): before the tracking was
    // bounded they took seconds.
    assert!(
        healthz < Duration::from_millis(500),
        "/healthz took {healthz:?}"
    );
    assert!(
        report_time < Duration::from_secs(1),
        "GET /api/v1/cardinality took {report_time:?}"
    );
    let file_now = sketch_bytes(&sketches);
    assert!(
        file_peak.max(file_now) < 16 << 20,
        "the attacker's sketch files reached {} KiB",
        file_peak.max(file_now) >> 10
    );

    let cardinality = attacker.get("/api/v1/cardinality").await.ok();
    let dims = &cardinality["dimensions"];
    let max_tracked = dims["max_tracked"].as_u64().unwrap();
    assert_eq!(
        dims["top"].as_array().unwrap().len() as u64,
        20.min(max_tracked)
    );
    let untracked = dims["untracked"]["keys"].as_f64().unwrap();
    let expected = (SERIES * KEYS_PER_SERIES) as f64 - max_tracked as f64;
    assert!(
        (untracked - expected).abs() / expected < 0.03,
        "untracked keys estimated at {untracked}, {expected} written: {cardinality}"
    );
}
