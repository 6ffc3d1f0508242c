//! Process-level tests: the real `luminate` binary in a child process,
//! killed with SIGKILL or SIGTERM, started again on the same data.

#[path = "../common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::Mutex;

use common::{ServerProcess, luminate_binary, now_ms};

const BATCH: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_during_concurrent_writes_loses_no_acknowledged_metric() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::spawn(dir.path(), &[]).await;
    let acknowledged: Arc<Mutex<Vec<String>>> = Arc::default();
    let base_ts = now_ms() - 60_000;
    let mut writers = Vec::new();
    for writer in 0..6 {
        let api = server.api.clone();
        let acknowledged = acknowledged.clone();
        writers.push(tokio::spawn(async move {
            for seq in 0.. {
                let batch_id = format!("w{writer}-{seq}");
                let metrics: Vec<Value> = (0..BATCH)
                    .map(|i| {
                        json!({"name": "crash_test", "value": i, "timestamp": base_ts + i as i64,
                        "dimensions": {"batch": batch_id, "i": i.to_string()}})
                    })
                    .collect();
                let body = serde_json::to_vec(&json!({ "metrics": metrics })).unwrap();
                let sent = api
                    .http
                    .post(api.url("/api/v1/write"))
                    .body(body)
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status() == 200 => match r.json::<Value>().await {
                        Ok(v) if v["accepted"] == BATCH => acknowledged.lock().await.push(batch_id),
                        Ok(v) => panic!("unexpected reply {v}"),
                        Err(_) => return, // killed mid-response: not acknowledged
                    },
                    Ok(r) => panic!("unexpected status {}", r.status()),
                    Err(_) => return, // the server is gone
                }
            }
        }));
    }
    // Let the writers get going, then kill without warning.
    let started = std::time::Instant::now();
    while acknowledged.lock().await.len() < 30 && started.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.kill9();
    for w in writers {
        w.await.unwrap();
    }
    let acknowledged = acknowledged.lock().await.clone();
    assert!(
        acknowledged.len() >= 30,
        "only {} batches acknowledged",
        acknowledged.len()
    );

    let server = ServerProcess::spawn(dir.path(), &[]).await;
    let body = server
        .query(
            json!({"queryType": "aggregate", "metricName": "crash_test", "aggregation": "count",
            "timeRange": {"relative": "1h"}, "groupBy": ["batch"], "limit": 100_000}),
        )
        .await
        .ok();
    let stored: BTreeMap<String, f64> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["batch"].as_str().unwrap().to_owned(),
                r["value"].as_f64().unwrap(),
            )
        })
        .collect();
    for batch in &acknowledged {
        assert_eq!(
            stored.get(batch),
            Some(&(BATCH as f64)),
            "acknowledged batch {batch} lost"
        );
    }
}

#[tokio::test]
async fn sigterm_exits_cleanly_and_data_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::spawn(dir.path(), &[]).await;
    let ts = now_ms() - 1_000;
    server
        .write(json!([{"name": "restart_me", "value": 42, "timestamp": ts}]))
        .await
        .ok();
    let status = server.terminate();
    assert!(status.success(), "exit status {status:?}");
    let server = ServerProcess::spawn(dir.path(), &[]).await;
    let body = server
        .query(json!({"queryType": "range", "metricName": "restart_me", "timeRange": {"relative": "1h"}}))
        .await
        .ok();
    assert_eq!(body["series"][0]["points"], json!([[ts, 42.0]]));
}

#[test]
fn invalid_configuration_exits_with_code_2_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("luminate.toml");
    std::fs::write(&file, "listn = \"127.0.0.1:1\"\n").unwrap();
    let out = Command::new(luminate_binary())
        .args(["serve", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("listn"), "{stderr}");

    let out = Command::new(luminate_binary())
        .args(["serve", "--config"])
        .arg(dir.path().join("missing.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.toml"));

    let out = Command::new(luminate_binary())
        .args(["serve"])
        .env("LUMINATE_API__MAX_BODY_BYTES", "lots")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(stderr.contains("max_body_bytes"), "{stderr}");

    let out = Command::new(luminate_binary())
        .args(["serve", "--listen", "nowhere"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "a bad flag is a usage error too"
    );
}
