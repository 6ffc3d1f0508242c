//! Luminate on ClickHouse, end to end: real `clickhouse-server` processes on
//! loopback and the real `luminate` binary as stateless pods.
//!
//! Under `CI=true` a missing ClickHouse fails these tests; elsewhere they
//! skip with a loud message (see `storage::clickhouse::testing`).

include!(concat!(env!("OUT_DIR"), "/plugins.rs"));

#[path = "../common/mod.rs"]
mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use luminate_host::storage::clickhouse::testing::{
    ClickHouseServer, TwoShardCluster, require_cluster, require_server,
};
use serde_json::{Value, json};

use common::{ServerProcess, now_ms};

/// A pod: `luminate serve --storage clickhouse` with a config file for what
/// has no flag (the shard URLs for per-shard DDL, a short flush interval).
async fn pod(
    dir: &Path,
    name: &str,
    url: &str,
    cluster: Option<&TwoShardCluster>,
) -> ServerProcess {
    let mut toml =
        String::from("[storage.clickhouse]\ndatabase = \"e2e\"\nflush_interval = \"5ms\"\n");
    if let Some(cluster) = cluster {
        let shards: Vec<String> = cluster
            .shard_urls()
            .iter()
            .map(|u| format!("{u:?}"))
            .collect();
        toml.push_str(&format!("shard_urls = [{}]\n", shards.join(", ")));
    }
    let config = dir.join(format!("{name}.toml"));
    std::fs::write(&config, toml).unwrap();
    let data = dir.join(name);
    std::fs::create_dir_all(&data).unwrap();
    let mut args = vec![
        "--config".to_owned(),
        config.display().to_string(),
        "--storage".to_owned(),
        "clickhouse".to_owned(),
        "--clickhouse-url".to_owned(),
        url.to_owned(),
    ];
    if let Some(cluster) = cluster {
        args.push("--clickhouse-cluster".to_owned());
        args.push(cluster.name.clone());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ServerProcess::spawn(&data, &args).await
}

/// 3 000 points over 60 series, with dimensions that make groups uneven, a
/// counter per series for rates, and a hostile value.
fn workload(base_ts: i64) -> Vec<Vec<Value>> {
    let mut batches = Vec::new();
    for batch in 0..10 {
        let metrics: Vec<Value> = (0..300)
            .map(|i| {
                let n = batch * 300 + i;
                let series = n % 60;
                let endpoint = ["/api", "/login", "/a'b\\c; DROP TABLE samples --"][series % 3];
                let mut dims = json!({"host": format!("h{series:02}"), "endpoint": endpoint});
                if series % 4 == 0 {
                    dims["region"] = json!("eu");
                }
                json!({
                    "name": "http_latency",
                    // Quarters are exact in binary, so sums do not depend
                    // on the order shards add them in and results compare
                    // exactly with the single node's.
                    "value": ((n * 7919) % 1000) as f64 / 4.0,
                    "timestamp": base_ts + (n / 60) as i64 * 1_000,
                    "dimensions": dims,
                })
            })
            .chain((0..60).map(|series| {
                json!({
                    "name": "requests_total",
                    "value": ((batch * 13 + series) % 50) as f64,
                    "timestamp": base_ts + batch as i64 * 5_000,
                    "dimensions": {"host": format!("h{series:02}")},
                })
            }))
            .collect();
        batches.push(metrics);
    }
    batches
}

fn queries(base_ts: i64) -> Vec<Value> {
    let range = json!({"start": base_ts - 60_000, "end": base_ts + 3_600_000});
    vec![
        json!({"queryType": "aggregate", "metricName": "http_latency", "aggregation": "p95",
               "timeRange": range, "groupBy": ["endpoint"]}),
        json!({"queryType": "aggregate", "metricName": "http_latency", "aggregation": "count",
               "timeRange": range, "groupBy": ["region", "endpoint"], "limit": 3}),
        json!({"queryType": "aggregate", "metricName": "http_latency", "aggregation": "avg",
               "timeRange": range, "filters": [{"key": "host", "op": "=~", "value": "h0[0-4]"}]}),
        json!({"queryType": "range", "metricName": "http_latency", "timeRange": range,
               "step": "10s", "aggregation": "max", "groupBy": ["endpoint"]}),
        json!({"queryType": "rate", "metricName": "requests_total", "timeRange": range,
               "step": "10s", "groupBy": ["host"], "limit": 5}),
    ]
}

async fn write_all(pod: &ServerProcess, batches: &[Vec<Value>]) {
    for batch in batches {
        let reply = pod.write(Value::Array(batch.clone())).await.ok();
        assert_eq!(reply["accepted"], batch.len(), "{reply}");
    }
}

fn local_rows(server: &ClickHouseServer) -> u64 {
    server
        .query("SELECT count() FROM e2e.samples_local")
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metrics_written_through_one_pod_are_read_through_another_across_two_shards() {
    let Some(cluster) = require_cluster("luminate_e2e") else {
        return;
    };
    let Some(single) = require_server() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // Each pod talks to a different shard's server; neither keeps state.
    let pod1 = pod(dir.path(), "pod1", &cluster.shards[0].url(), Some(&cluster)).await;
    let pod2 = pod(dir.path(), "pod2", &cluster.shards[1].url(), Some(&cluster)).await;
    let reference = pod(dir.path(), "single", &single.url(), None).await;

    let base_ts = now_ms() - 600_000;
    let batches = workload(base_ts);
    write_all(&pod1, &batches).await;
    write_all(&reference, &batches).await;

    let per_shard = [
        local_rows(&cluster.shards[0]),
        local_rows(&cluster.shards[1]),
    ];
    assert!(
        per_shard.iter().all(|n| *n > 0),
        "every shard holds data: {per_shard:?}"
    );
    assert_eq!(per_shard.iter().sum::<u64>(), 3_600);

    for query in queries(base_ts) {
        let through_pod2 = pod2.query(query.clone()).await.ok();
        let on_one_node = reference.query(query.clone()).await.ok();
        assert_eq!(through_pod2, on_one_node, "{query}");
        assert_ne!(
            through_pod2,
            pod2.query(json!({"queryType": "aggregate", "metricName": "none",
            "aggregation": "count", "timeRange": {"relative": "1h"}}))
                .await
                .ok()
        );
    }
    let metrics = pod2.get("/api/v1/metrics").await.ok();
    assert_eq!(metrics, reference.get("/api/v1/metrics").await.ok());
    assert!(metrics.to_string().contains("requests_total"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_answer_503_while_clickhouse_is_down_and_recover_without_a_restart() {
    let Some(mut clickhouse) = require_server() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let luminate = pod(dir.path(), "pod", &clickhouse.url(), None).await;
    let point = |v: f64| json!([{"name": "up", "value": v, "timestamp": now_ms() - 1_000}]);
    luminate.write(point(1.0)).await.ok();
    assert_eq!(luminate.get("/readyz").await.status, 200);

    clickhouse.kill();
    let reply = luminate.write(point(2.0)).await;
    reply.assert_error(503, "storage_unavailable");
    let retry_after = reply
        .headers
        .get("retry-after")
        .expect("Retry-After on 503");
    assert!(retry_after.to_str().unwrap().parse::<u64>().unwrap() >= 1);
    assert_eq!(luminate.get("/readyz").await.status, 503);
    assert_eq!(
        luminate.get("/healthz").await.status,
        200,
        "alive while not ready"
    );

    clickhouse.restart().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while luminate.get("/readyz").await.status != 200 {
        assert!(Instant::now() < deadline, "readiness did not come back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    luminate.write(point(3.0)).await.ok();
    let count = luminate
        .query(
            json!({"queryType": "aggregate", "metricName": "up", "aggregation": "count",
                      "timeRange": {"relative": "1h"}}),
        )
        .await
        .ok();
    assert_eq!(count["results"][0]["value"], 2.0, "{count}");
}

/// The row for plugin `name` in a pod's plugin list, if any.
async fn listed_hash(pod: &ServerProcess, name: &str) -> Option<String> {
    let list = pod.get("/api/v1/plugins").await.ok();
    list["plugins"]
        .as_array()?
        .iter()
        .find(|p| p["name"] == name)
        .and_then(|p| p["hash"].as_str().map(str::to_owned))
}

async fn eventually<T: PartialEq + std::fmt::Debug>(
    what: &str,
    want: T,
    mut probe: impl AsyncFnMut() -> T,
) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let got = probe().await;
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: still {got:?} after 5 s, want {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_plugin_uploaded_through_one_pod_reaches_every_pod_within_seconds() {
    let Some(cluster) = require_cluster("luminate_plugins") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let pod1 = pod(dir.path(), "pod1", &cluster.shards[0].url(), Some(&cluster)).await;
    let pod2 = pod(dir.path(), "pod2", &cluster.shards[1].url(), Some(&cluster)).await;

    let wasm = std::fs::read(NAME_POLICY).unwrap();
    let uploaded = pod1
        .send(pod1.http.put(pod1.url("/api/v1/plugins/policy")).body(wasm))
        .await;
    assert_eq!(uploaded.status.as_u16(), 200, "{uploaded:?}");
    let hash = uploaded.body["hash"].as_str().unwrap().to_owned();
    eventually("pod 2 sees the upload", Some(hash.clone()), async || {
        listed_hash(&pod2, "policy").await
    })
    .await;

    // A new version through pod 2 replaces the old one on pod 1.
    let v2 = std::fs::read(NOOP_VALIDATOR).unwrap();
    let replaced = pod2
        .send(pod2.http.put(pod2.url("/api/v1/plugins/policy")).body(v2))
        .await;
    assert_eq!(replaced.status.as_u16(), 200, "a replacement: {replaced:?}");
    let hash2 = replaced.body["hash"].as_str().unwrap().to_owned();
    assert_ne!(hash, hash2);
    eventually("pod 1 runs the new version", Some(hash2), async || {
        listed_hash(&pod1, "policy").await
    })
    .await;

    // A pod started later loads it too, and a delete reaches everyone.
    let pod3 = pod(dir.path(), "pod3", &cluster.shards[0].url(), Some(&cluster)).await;
    assert!(listed_hash(&pod3, "policy").await.is_some());
    assert_eq!(
        pod1.delete("/api/v1/plugins/policy").await.status.as_u16(),
        204
    );
    for (name, pod) in [("pod 2", &pod2), ("pod 3", &pod3)] {
        eventually(name, None, async || listed_hash(pod, "policy").await).await;
    }
}
