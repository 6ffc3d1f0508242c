//! The command-line faces of auth, with the real binary: `serve --dev`
//! prints a token that works, `luminate token` mints one the server accepts.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::{TEST_JWT_SECRET, TestServer, free_port, luminate_binary};
use crate::support::*;

#[tokio::test]
async fn serve_dev_prints_a_token_that_writes_and_queries() {
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let mut child = Command::new(luminate_binary())
        .args(["serve", "--dev", "--listen", &addr, "--data-dir"])
        .arg(dir.path())
        .env_remove("LUMINATE_JWT_HS256_SECRET")
        .env("LUMINATE_METRICS_LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(token) = line.trim().strip_prefix("export LUMINATE_TOKEN=") {
                let _ = tx.send(token.to_owned());
            }
        }
    });
    let token = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("no token printed");

    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let base = format!("http://{addr}");
    let write = http
        .post(format!("{base}/api/v1/write"))
        .bearer_auth(&token)
        .body(r#"{"metrics":[{"name":"api_latency","value":0.142,"dimensions":{"endpoint":"/api/query"}}]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(write.status().as_u16(), 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    let query = json!({"queryType": "aggregate", "metricName": "api_latency", "aggregation": "p95",
        "timeRange": {"relative": "1h"}, "groupBy": ["endpoint"]});
    loop {
        let r: serde_json::Value = http
            .post(format!("{base}/api/v1/query"))
            .bearer_auth(&token)
            .json(&query)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if r["results"] == json!([{"endpoint": "/api/query", "value": 0.142}]) {
            break;
        }
        assert!(Instant::now() < deadline, "{r}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let anonymous = http
        .get(format!("{base}/api/v1/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test]
async fn luminate_token_mints_what_the_server_accepts() {
    let server = TestServer::start().await;
    let out = Command::new(luminate_binary())
        .args([
            "token", "--tenant", "acme", "--scopes", "read", "--tier", "pro", "--ttl", "10m",
        ])
        .env("LUMINATE_JWT_HS256_SECRET", TEST_JWT_SECRET)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let client = Client::bearer(&server, &token);
    client.get("/api/v1/metrics").await.ok();
    let report = client.get("/api/v1/cardinality").await.ok();
    assert_eq!(
        (report["tenant"].as_str(), report["tier"].as_str()),
        (Some("acme"), Some("pro"))
    );
    // read only: writing is forbidden.
    client
        .write(series("m", 0..1))
        .await
        .assert_error(403, "insufficient_scope");

    let out = Command::new(luminate_binary())
        .args(["token", "--tenant", "acme", "--scopes", "raed"])
        .env("LUMINATE_JWT_HS256_SECRET", TEST_JWT_SECRET)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("raed"));
    server.stop().await;
}

#[test]
fn serve_refuses_to_start_without_a_key_and_says_how_to_fix_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(luminate_binary())
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{}", free_port()),
            "--data-dir",
        ])
        .arg(dir.path())
        .env_remove("LUMINATE_JWT_HS256_SECRET")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("LUMINATE_JWT_HS256_SECRET"), "{stderr}");

    let out = Command::new(luminate_binary())
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{}", free_port()),
            "--data-dir",
        ])
        .arg(dir.path())
        .env("LUMINATE_JWT_HS256_SECRET", "too-short")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("too-short"));
}

#[tokio::test]
async fn sketches_persisted_in_the_background_survive_kill_9() {
    use crate::common::ServerProcess;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("luminate.toml");
    std::fs::write(
        &config,
        "[limits.cardinality]\npersist_interval = \"200ms\"\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let args = ["--config", config.to_str().unwrap()];
    let server = ServerProcess::spawn(&data, &args).await;
    assert_eq!(server.write(series("m", 0..50)).await.ok()["accepted"], 50);
    tokio::time::sleep(Duration::from_millis(800)).await;
    server.kill9();

    let server = ServerProcess::spawn(&data, &args).await;
    let report = server.get("/api/v1/cardinality").await.ok();
    assert_eq!(report["series"]["estimate"], 50, "{report}");
    assert_eq!(
        report["metrics"]["top"],
        json!([{"name": "m", "series": 50}])
    );
}
