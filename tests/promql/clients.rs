//! The Prometheus API's real clients against Luminate with a token:
//! Debian's `promtool` (2.42; the token as the Basic-auth password in the
//! URL, which is how promtool sends credentials) and the
//! `prometheus-api-client` Python package (a bearer header). Another
//! tenant's token sees none of the data.

use std::process::Command;

use serde_json::Value;

use crate::common::TestServer;
use crate::data::{first_sample_ms, remote_write_body};
use crate::differential::token;

/// Writes the data set for tenant `promql` and returns the evaluation
/// time used below (a minute boundary inside the data).
async fn loaded_server() -> (TestServer, i64) {
    let server = TestServer::start().await;
    let t0 = first_sample_ms();
    let reply = reqwest::Client::new()
        .post(format!("{}/api/v1/push", server.api.base))
        .bearer_auth(token("promql"))
        .header("content-encoding", "snappy")
        .body(remote_write_body(t0))
        .send()
        .await
        .expect("push");
    assert_eq!(reply.status().as_u16(), 204);
    (server, t0 + 50 * 60_000)
}

/// Runs promtool off the runtime (which serves the server under test).
async fn promtool(args: Vec<String>) -> String {
    tokio::task::spawn_blocking(move || {
        let output = Command::new("promtool")
            .args(&args)
            .output()
            .expect("promtool is missing: `apt-get install prometheus` (scripts/test does)");
        assert!(
            output.status.success(),
            "promtool {args:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promtool_queries_instant_range_series_and_labels() {
    let (server, at) = loaded_server().await;
    let host = server.api.base.trim_start_matches("http://").to_owned();
    let url = |tenant: &str| format!("http://{tenant}:{}@{host}/prometheus", token(tenant));
    let seconds = |ms: i64| (ms / 1000).to_string();

    let instant = promtool(vec![
        "query".into(),
        "instant".into(),
        format!("--time={}", seconds(at)),
        url("promql"),
        "count by (zone) (node_temperature_celsius)".into(),
    ])
    .await;
    let mut lines: Vec<&str> = instant.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            format!("{{zone=\"a\"}} => 2 @[{}]", seconds(at)),
            format!("{{zone=\"b\"}} => 2 @[{}]", seconds(at)),
        ]
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>(),
        "{instant}"
    );

    let range = promtool(vec![
        "query".into(),
        "range".into(),
        format!("--start={}", seconds(at - 10 * 60_000)),
        format!("--end={}", seconds(at)),
        "--step=1m".into(),
        url("promql"),
        "up{instance=\"i4\"}".into(),
    ])
    .await;
    assert!(
        range.starts_with("up{instance=\"i4\", job=\"node\"} =>"),
        "{range}"
    );
    assert_eq!(range.matches(" @[").count(), 11, "{range}");
    assert!(range.contains(&format!("0 @[{}]", seconds(at))), "{range}");

    let series = promtool(vec![
        "query".into(),
        "series".into(),
        "--match=up".into(),
        url("promql"),
    ])
    .await;
    assert_eq!(series.lines().count(), 4, "{series}");
    assert!(
        series.contains("{__name__=\"up\", instance=\"i1\", job=\"node\"}"),
        "{series}"
    );

    let labels = promtool(vec![
        "query".into(),
        "labels".into(),
        url("promql"),
        "zone".into(),
    ])
    .await;
    assert_eq!(labels.lines().collect::<Vec<_>>(), ["a", "b"], "{labels}");

    // Another tenant's token: the same queries find nothing.
    let other = promtool(vec![
        "query".into(),
        "series".into(),
        "--match=up".into(),
        url("other"),
    ])
    .await;
    assert_eq!(other.trim(), "", "{other}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_api_client_reads_metrics_values_and_ranges() {
    let (server, at) = loaded_server().await;
    let script = r#"
import datetime, json, os
from prometheus_api_client import PrometheusConnect
def connect(token):
    return PrometheusConnect(url=os.environ["URL"], disable_ssl=True,
                             headers={"Authorization": "Bearer " + token})
prom = connect(os.environ["TOKEN"])
at = float(os.environ["AT"])
out = {
    "names": prom.all_metrics(),
    "zones": prom.get_label_values("zone"),
    "count": prom.custom_query("count(up)", params={"time": at}),
    "range": prom.custom_query_range(
        'up{instance="i1"}',
        start_time=datetime.datetime.fromtimestamp(at - 600),
        end_time=datetime.datetime.fromtimestamp(at),
        step="60"),
    "other": connect(os.environ["OTHER"]).all_metrics(),
}
print(json.dumps(out))
"#;
    let url = format!("{}/prometheus", server.api.base);
    let (token_a, token_b) = (token("promql"), token("other"));
    let at_seconds = (at / 1000).to_string();
    let out: Value = tokio::task::spawn_blocking(move || {
        let output = Command::new("python3")
            .args(["-c", script])
            .envs([
                ("URL", url),
                ("TOKEN", token_a),
                ("OTHER", token_b),
                ("AT", at_seconds),
            ])
            .output()
            .expect("cannot run python3");
        assert!(
            output.status.success(),
            "the prometheus-api-client script failed (`pip install prometheus-api-client`; scripts/test does):\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).expect("the script prints JSON")
    })
    .await
    .unwrap();
    assert_eq!(
        out["names"],
        serde_json::json!([
            "batch_last_run",
            "http_requests_total",
            "memory_bytes",
            "node_temperature_celsius",
            "request_duration_seconds_bucket",
            "request_duration_seconds_count",
            "request_duration_seconds_sum",
            "up"
        ])
    );
    assert_eq!(out["zones"], serde_json::json!(["a", "b"]));
    assert_eq!(out["count"][0]["value"][1], "4", "{}", out["count"]);
    let range = &out["range"][0];
    assert_eq!(range["metric"]["instance"], "i1");
    assert_eq!(
        range["values"].as_array().map(Vec::len),
        Some(11),
        "{range}"
    );
    assert!(
        range["values"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v[1] == "1")
    );
    assert_eq!(out["other"], serde_json::json!([]));
}
