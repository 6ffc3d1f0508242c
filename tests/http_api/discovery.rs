use serde_json::{Value, json};

use crate::common::{TestServer, now_ms};

async fn seed(server: &TestServer) {
    let ts = now_ms() - 1_000;
    let mut metrics = vec![
        json!({"name": "cpu", "value": 1, "timestamp": ts, "dimensions": {"host": "h1", "dc": "eu"}}),
        json!({"name": "mem", "value": 1, "timestamp": ts, "dimensions": {"host": "h1"}}),
    ];
    for i in 0..25 {
        metrics.push(json!({"name": "cpu", "value": i, "timestamp": ts,
            "dimensions": {"host": format!("h{i:02}"), "core": "0"}}));
    }
    server.write(Value::Array(metrics)).await.ok();
}

#[tokio::test]
async fn lists_metrics_keys_and_values() {
    let server = TestServer::start().await;
    seed(&server).await;
    assert_eq!(
        server.get("/api/v1/metrics").await.ok(),
        json!({"metrics": ["cpu", "mem"]})
    );
    assert_eq!(
        server.get("/api/v1/metrics/cpu/dimensions").await.ok(),
        json!({"metric": "cpu", "dimensions": ["core", "dc", "host"]})
    );
    let body = server
        .get("/api/v1/metrics/cpu/dimensions/dc/values")
        .await
        .ok();
    assert_eq!(
        body,
        json!({"metric": "cpu", "key": "dc", "values": ["eu"], "truncated": false})
    );
    let body = server
        .get("/api/v1/metrics/cpu/dimensions/host/values?limit=5")
        .await
        .ok();
    assert_eq!(body["values"], json!(["h00", "h01", "h02", "h03", "h04"]));
    assert_eq!(body["truncated"], true);
    let body = server
        .get("/api/v1/metrics/cpu/dimensions/host/values?limit=1000")
        .await
        .ok();
    // h00..h24, plus "h1" from the first metric.
    assert_eq!(body["values"].as_array().unwrap().len(), 26);
    assert_eq!(body["truncated"], false);
    server.stop().await;
}

#[tokio::test]
async fn unknown_metrics_have_nothing_to_discover() {
    let server = TestServer::start().await;
    assert_eq!(
        server.get("/api/v1/metrics").await.ok(),
        json!({"metrics": []})
    );
    assert_eq!(
        server.get("/api/v1/metrics/ghost/dimensions").await.ok()["dimensions"],
        json!([])
    );
    assert_eq!(
        server
            .get("/api/v1/metrics/ghost/dimensions/k/values")
            .await
            .ok()["values"],
        json!([])
    );
    server.stop().await;
}

#[tokio::test]
async fn bad_discovery_requests_get_a_400() {
    let server = TestServer::start_with(|c| c.api.max_discovery_values = 100).await;
    seed(&server).await;
    for (path, code) in [
        (
            "/api/v1/metrics/cpu/dimensions/host/values?limit=0",
            "invalid_limit",
        ),
        (
            "/api/v1/metrics/cpu/dimensions/host/values?limit=101",
            "invalid_limit",
        ),
        (
            "/api/v1/metrics/cpu/dimensions/host/values?limit=abc",
            "invalid_limit",
        ),
        (
            "/api/v1/metrics/cpu/dimensions/host/values?other=1",
            "invalid_request",
        ),
        ("/api/v1/metrics/9cpu/dimensions", "invalid_name"),
        (
            "/api/v1/metrics/cpu/dimensions/bad%20key/values",
            "invalid_dimension_key",
        ),
    ] {
        server.get(path).await.assert_error(400, code);
    }
    server.stop().await;
}
