//! Every corpus expression against Prometheus and Luminate.

use std::time::{Duration, Instant};

use serde_json::Value;

use luminate_host::storage::clickhouse::testing::require_server;

use crate::common::{ServerProcess, TestServer};
use crate::compare::difference;
use crate::data::{first_sample_ms, remote_write_body};
use crate::prometheus::Prometheus;

const CORPUS: &str = include_str!("corpus.promql");

/// `(expression, instant only)` of every corpus line.
fn corpus() -> Vec<(&'static str, bool)> {
    CORPUS
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| match line.strip_prefix("instant:") {
            Some(expr) => (expr.trim(), true),
            None => (line, false),
        })
        .collect()
}

pub use crate::common::token_for as token;

struct Target {
    base: String,
    token: Option<String>,
    client: reqwest::Client,
}

impl Target {
    async fn get(&self, path: &str, params: &[(&str, String)]) -> Value {
        let mut request = self
            .client
            .get(format!("{}{path}", self.base))
            .query(params);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let reply = request.send().await.expect("request");
        reply.json().await.unwrap_or(Value::Null)
    }

    async fn push(&self, path: &str, body: Vec<u8>) {
        let mut request = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-encoding", "snappy")
            .header("content-type", "application/x-protobuf")
            .header("x-prometheus-remote-write-version", "0.1.0")
            .body(body);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let reply = request.send().await.expect("push");
        let status = reply.status();
        assert!(
            status.is_success(),
            "{path}: {status} {}",
            reply.text().await.unwrap_or_default()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promql_answers_agree_with_prometheus_on_the_embedded_backend() {
    let server = TestServer::start().await;
    agree_with_prometheus(&server.api.base).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promql_answers_agree_with_prometheus_on_clickhouse() {
    let Some(clickhouse) = require_server() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("clickhouse.toml");
    std::fs::write(
        &config,
        "[storage.clickhouse]\ndatabase = \"promql\"\nflush_interval = \"5ms\"\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let config = config.display().to_string();
    let url = clickhouse.url();
    let server = ServerProcess::spawn(
        &data,
        &[
            "--config",
            &config,
            "--storage",
            "clickhouse",
            "--clickhouse-url",
            &url,
        ],
    )
    .await;
    agree_with_prometheus(&server.api.base).await;
}

/// Writes the data set into a fresh Prometheus and into the Luminate at
/// `luminate_base`, then asks both every corpus expression.
async fn agree_with_prometheus(luminate_base: &str) {
    let prometheus = Prometheus::start().await;
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let reference = Target {
        base: prometheus.base.clone(),
        token: None,
        client: client.clone(),
    };
    let luminate = Target {
        base: format!("{luminate_base}/prometheus"),
        token: Some(token("promql")),
        client: client.clone(),
    };
    let t0 = first_sample_ms();
    let body = remote_write_body(t0);
    reference.push("/api/v1/write", body.clone()).await;
    Target {
        base: luminate_base.to_owned(),
        token: luminate.token.clone(),
        client,
    }
    .push("/api/v1/push", body)
    .await;

    let at = t0 + 50 * 60_000 + 7_000;
    let seconds = |ms: i64| format!("{:.3}", ms as f64 / 1e3);
    // Prometheus makes written samples queryable at once; wait for it
    // all the same, in case its head is still starting.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answer = reference
            .get(
                "/api/v1/query",
                &[("query", "count(up)".into()), ("time", seconds(at))],
            )
            .await;
        if answer["data"]["result"][0]["value"][1] == "4" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "prometheus has no data: {answer}\n{}",
            prometheus.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let mut failures = Vec::new();
    let expressions = corpus();
    assert!(
        expressions.len() >= 150,
        "the corpus has {} expressions",
        expressions.len()
    );
    for (expr, instant_only) in &expressions {
        let instant = [("query", expr.to_string()), ("time", seconds(at))];
        let expected = reference.get("/api/v1/query", &instant).await;
        let actual = luminate.get("/api/v1/query", &instant).await;
        if let Some(why) = difference(&expected, &actual) {
            failures.push(format!("instant {expr}: {why}"));
        }
        if *instant_only {
            continue;
        }
        let range = [
            ("query", expr.to_string()),
            ("start", seconds(t0 + 10 * 60_000)),
            ("end", seconds(t0 + 60 * 60_000)),
            ("step", "60".to_owned()),
        ];
        let expected = reference.get("/api/v1/query_range", &range).await;
        let actual = luminate.get("/api/v1/query_range", &range).await;
        if let Some(why) = difference(&expected, &actual) {
            failures.push(format!("range {expr}: {why}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} expressions disagree with Prometheus:\n{}",
        failures.len(),
        expressions.len(),
        failures.join("\n")
    );
}
