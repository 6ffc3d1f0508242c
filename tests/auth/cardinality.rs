//! Series limits and estimates over HTTP.

use serde_json::{Value, json};

use crate::common::{TestServer, now_ms};
use crate::support::*;

fn limited(per_tenant: u64, per_metric: u64) -> impl FnOnce(&mut luminate_host::config::Config) {
    move |c| {
        add_tier(c, "capped", |t| {
            t.max_series_per_tenant = max(per_tenant);
            t.max_series_per_metric = max(per_metric);
        });
    }
}

#[tokio::test]
async fn cardinality_limit_rejects_only_new_series_with_a_clear_message() {
    let server = TestServer::start_with(limited(1000, 5)).await;
    let client = Client::bearer(&server, &token_with_tier("acme", ALL, "capped"));
    assert_eq!(
        client.write(series("logins", 0..5)).await.ok()["accepted"],
        5
    );

    let ts = now_ms() - 500;
    let batch = json!([
        {"name": "logins", "value": 1, "timestamp": ts, "dimensions": {"series": "3"}},
        {"name": "logins", "value": 1, "timestamp": ts, "dimensions": {"series": "new-one"}},
        {"name": "cpu", "value": 1, "timestamp": ts, "dimensions": {"host": "h1"}},
        {"name": "logins", "value": 1, "timestamp": ts, "dimensions": {"series": "0"}},
    ]);
    let reply = client.write(batch).await.ok();
    assert_eq!(reply["accepted"], 3, "{reply}");
    assert_eq!(reply["rejected"], 1);
    let error = &reply["errors"][0];
    assert_eq!(error["index"], 1);
    assert_eq!(error["code"], "max_series_per_metric");
    let message = error["message"].as_str().unwrap();
    for part in ["logins", "max_series_per_metric = 5", "estimate 5"] {
        assert!(message.contains(part), "{part:?} missing in {message:?}");
    }
    // Existing series keep being accepted.
    assert_eq!(
        client.write(series("logins", 0..5)).await.ok()["accepted"],
        5
    );
    server.stop().await;
}

#[tokio::test]
async fn tenant_series_limit_applies_across_metrics() {
    let server = TestServer::start_with(limited(6, 1000)).await;
    let client = Client::bearer(&server, &token_with_tier("acme", ALL, "capped"));
    client.write(series("a", 0..4)).await.ok();
    let reply = client.write(series("b", 0..4)).await.ok();
    assert_eq!(reply["accepted"], 2);
    assert_eq!(reply["errors"][0]["code"], "max_series_per_tenant");
    assert!(
        reply["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("\"b\"")
    );
    // Another tenant on the same tier has its own budget.
    let other = Client::bearer(&server, &token_with_tier("other", ALL, "capped"));
    assert_eq!(other.write(series("b", 0..6)).await.ok()["accepted"], 6);
    server.stop().await;
}

#[tokio::test]
async fn cardinality_report_lists_what_is_exploding_first() {
    let server = TestServer::start().await;
    let client = Client::bearer(&server, &token("acme", ALL));
    let ts = now_ms() - 1_000;
    let mut metrics = Vec::new();
    for i in 0..300 {
        metrics.push(json!({"name": "requests", "value": 1, "timestamp": ts,
            "dimensions": {"user_id": format!("u{i}"), "region": format!("r{}", i % 3)}}));
    }
    for i in 0..4 {
        metrics.push(json!({"name": "cpu", "value": 1, "timestamp": ts, "dimensions": {"host": format!("h{i}")}}));
    }
    client.write(Value::Array(metrics)).await.ok();
    let report = client.get("/api/v1/cardinality?limit=2").await.ok();
    assert_eq!(report["series"]["estimate"], 304);
    assert_eq!(report["metrics"]["total"], 2);
    assert_eq!(
        report["metrics"]["top"],
        json!([{"name": "requests", "series": 300}, {"name": "cpu", "series": 4}])
    );
    assert_eq!(report["dimensions"]["total"], 3);
    assert_eq!(
        report["dimensions"]["top"],
        json!([{"name": "user_id", "values": 300}, {"name": "host", "values": 4}])
    );
    let bad = client.get("/api/v1/cardinality?limit=lots").await;
    bad.assert_error(400, "invalid_parameter");
    server.stop().await;
}

#[tokio::test]
async fn sketches_survive_a_restart() {
    let server = TestServer::start_with(limited(1000, 10)).await;
    let client = Client::bearer(&server, &token_with_tier("acme", ALL, "capped"));
    client.write(series("m", 0..10)).await.ok();
    let server = server.restart().await;
    let client = Client::bearer(&server, &token_with_tier("acme", ALL, "capped"));
    let report = client.get("/api/v1/cardinality").await.ok();
    assert_eq!(report["series"]["estimate"], 10, "{report}");
    // Known series still pass, a new one is still refused after the restart.
    assert_eq!(client.write(series("m", 0..10)).await.ok()["accepted"], 10);
    let reply = client.write(series("m", 10..11)).await.ok();
    assert_eq!(reply["errors"][0]["code"], "max_series_per_metric");
    server.stop().await;
}

#[tokio::test]
async fn estimates_are_within_2_percent_at_100k_series() {
    let server = TestServer::start().await;
    let client = Client::bearer(&server, &token_with_tier("acme", ALL, "unlimited"));
    for start in (0..100_000).step_by(5_000) {
        let reply = client
            .write(series("api_latency", start..start + 5_000))
            .await
            .ok();
        assert_eq!(reply["accepted"], 5_000);
    }
    let report = client.get("/api/v1/cardinality").await.ok();
    let off = |v: &Value| (v.as_f64().unwrap() - 100_000.0).abs() / 100_000.0;
    assert!(off(&report["series"]["estimate"]) < 0.02, "{report}");
    assert!(
        off(&report["metrics"]["top"][0]["series"]) < 0.02,
        "{report}"
    );
    assert!(
        off(&report["dimensions"]["top"][0]["values"]) < 0.02,
        "{report}"
    );
    server.stop().await;
}

#[tokio::test]
async fn tracking_is_bounded_per_tenant_keys_folded_and_metric_names_refused() {
    let server = TestServer::start_with(|c| {
        c.limits.cardinality.max_tracked_keys_per_tenant = 10;
        c.limits.cardinality.max_tracked_metrics_per_tenant = 2;
    })
    .await;
    let client = Client::bearer(&server, &token_with_tier("acme", ALL, "unlimited"));
    let ts = now_ms() - 1_000;
    // 50 series, each with 20 dimension keys nobody used before.
    let metrics: Vec<Value> = (0..50)
        .map(|s| {
            let dims: serde_json::Map<String, Value> = (0..20)
                .map(|k| (format!("k{s}_{k}"), json!(format!("v{k}"))))
                .collect();
            json!({"name": "requests", "value": 1, "timestamp": ts, "dimensions": dims})
        })
        .collect();
    let reply = client.write(Value::Array(metrics)).await.ok();
    assert_eq!(
        reply["accepted"], 50,
        "keys past the bound are not refused: {reply}"
    );

    let report = client.get("/api/v1/cardinality?limit=100").await.ok();
    let dims = &report["dimensions"];
    assert_eq!(dims["max_tracked"], 10, "{report}");
    assert_eq!(dims["top"].as_array().unwrap().len(), 10, "{report}");
    let near = |v: &Value, want: f64| (v.as_f64().unwrap() - want).abs() / want < 0.02;
    assert!(near(&dims["untracked"]["keys"], 990.0), "{report}");
    assert!(near(&dims["untracked"]["values"], 990.0), "{report}");
    assert!(near(&dims["total"], 1000.0), "{report}");
    assert_eq!(report["metrics"]["max_tracked"], 2);

    // A second metric name fits, a third is refused by name and bound.
    let reply = client.write(series("cpu", 0..2)).await.ok();
    assert_eq!(reply["accepted"], 2, "{reply}");
    let reply = client.write(series("disk", 0..1)).await.ok();
    assert_eq!(reply["rejected"], 1, "{reply}");
    let error = &reply["errors"][0];
    assert_eq!(error["code"], "max_tracked_metrics_per_tenant");
    let message = error["message"].as_str().unwrap();
    for part in [
        "\"disk\"",
        "limits.cardinality.max_tracked_metrics_per_tenant = 2",
    ] {
        assert!(message.contains(part), "{part:?} missing in {message:?}");
    }
    // Existing series of tracked names are still accepted.
    assert_eq!(client.write(series("cpu", 0..2)).await.ok()["accepted"], 2);
    server.stop().await;
}
