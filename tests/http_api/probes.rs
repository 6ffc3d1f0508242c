use serde_json::json;

use crate::common::{TestServer, now_ms};

#[tokio::test]
async fn probes_report_a_ready_server() {
    let server = TestServer::start().await;
    for path in ["/healthz", "/readyz", "/startupz"] {
        assert_eq!(
            server.get(path).await.ok(),
            json!({"status": "ok"}),
            "{path}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn data_survives_a_restart() {
    let server = TestServer::start().await;
    let ts = now_ms() - 1_000;
    server
        .write(json!([
            {"name": "durable", "value": 1.5, "timestamp": ts, "dimensions": {"k": "v"}},
            {"name": "durable", "value": 2.5, "timestamp": ts + 1, "dimensions": {"k": "w"}},
        ]))
        .await
        .ok();
    let server = server.restart().await;
    let body = server
        .query(
            json!({"queryType": "aggregate", "metricName": "durable", "aggregation": "sum",
            "timeRange": {"relative": "1h"}, "groupBy": ["k"]}),
        )
        .await
        .ok();
    assert_eq!(
        body["results"],
        json!([{"k": "v", "value": 1.5}, {"k": "w", "value": 2.5}])
    );
    assert_eq!(
        server.get("/api/v1/metrics").await.ok(),
        json!({"metrics": ["durable"]})
    );
    server.stop().await;
}

#[tokio::test]
async fn the_in_memory_backend_serves_the_same_api() {
    let server = TestServer::start_with(|c| {
        c.storage.backend = luminate_host::config::StorageBackend::Memory;
    })
    .await;
    let ts = now_ms() - 1_000;
    server
        .write(json!([{"name": "mem", "value": 3, "timestamp": ts}]))
        .await
        .ok();
    let body = server
        .query(
            json!({"queryType": "aggregate", "metricName": "mem", "aggregation": "max",
            "timeRange": {"relative": "1h"}}),
        )
        .await
        .ok();
    assert_eq!(body["results"], json!([{"value": 3.0}]));
    assert!(
        std::fs::read_dir(server.data_dir())
            .unwrap()
            .next()
            .is_none(),
        "nothing is written to the data directory"
    );
    server.stop().await;
}
