use std::time::{Duration, Instant};

use luminate_host::config::ConfigDuration;
use serde_json::{Value, json};

use crate::common::{TestServer, now_ms};

async fn count(server: &TestServer, name: &str) -> f64 {
    let body = server
        .query(json!({"queryType":"aggregate","metricName":name,"aggregation":"count","timeRange":{"relative":"7d"}}))
        .await
        .ok();
    body["results"][0]["value"].as_f64().unwrap_or(0.0)
}

#[tokio::test]
async fn delete_removes_points_before_the_cutoff_only() {
    let server = TestServer::start().await;
    let now = now_ms();
    let old: Vec<Value> = (0..10)
        .map(|i| json!({"name": "gone", "value": i, "timestamp": now - 3_600_000 - i * 1_000}))
        .collect();
    let recent: Vec<Value> = (0..5)
        .map(|i| json!({"name": "gone", "value": i, "timestamp": now - 60_000 + i * 1_000}))
        .collect();
    server.write(Value::Array(old)).await.ok();
    server.write(Value::Array(recent)).await.ok();
    let other = json!([{"name": "kept", "value": 1, "timestamp": now - 3_600_000 - 5_000}]);
    server.write(other).await.ok();
    let cutoff = now - 30 * 60_000;
    let reply = server
        .delete(&format!("/api/v1/metrics/gone?before={cutoff}"))
        .await
        .ok();
    assert_eq!(reply, json!({"metric": "gone", "before": cutoff}));
    assert_eq!(count(&server, "gone").await, 5.0);
    assert_eq!(
        count(&server, "kept").await,
        1.0,
        "other metrics are untouched"
    );
    // RFC 3339 works too.
    server
        .delete("/api/v1/metrics/gone?before=2100-01-01T00:00:00Z")
        .await
        .ok();
    assert_eq!(count(&server, "gone").await, 0.0);
    server.stop().await;
}

#[tokio::test]
async fn delete_needs_a_valid_cutoff_and_name() {
    let server = TestServer::start().await;
    server
        .delete("/api/v1/metrics/m")
        .await
        .assert_error(400, "missing_field");
    server
        .delete("/api/v1/metrics/m?before=soon")
        .await
        .assert_error(400, "invalid_timestamp");
    server
        .delete("/api/v1/metrics/1m?before=5")
        .await
        .assert_error(400, "invalid_name");
    server.stop().await;
}

#[tokio::test]
async fn the_background_sweep_enforces_the_retention_period() {
    let server = TestServer::start_with(|c| {
        c.retention.period = Some(ConfigDuration::from_millis(2 * 86_400_000));
        c.retention.sweep_interval = ConfigDuration::from_millis(200);
    })
    .await;
    let now = now_ms();
    server
        .write(json!([
            {"name": "aged", "value": 1, "timestamp": now - 3 * 86_400_000},
            {"name": "aged", "value": 2, "timestamp": now - 3 * 86_400_000 + 1},
            {"name": "aged", "value": 3, "timestamp": now - 60_000},
        ]))
        .await
        .ok();
    let deadline = Instant::now() + Duration::from_secs(20);
    while count(&server, "aged").await != 1.0 {
        assert!(
            Instant::now() < deadline,
            "the sweep did not delete old points"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.stop().await;
}
