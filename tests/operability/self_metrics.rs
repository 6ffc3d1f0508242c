use std::collections::BTreeSet;

use serde_json::json;

use crate::server::{Server, ServerOptions, token};

/// `name{labels}` of every sample in a Prometheus text exposition.
fn series(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.rsplit_once(' ').map(|(key, _)| key.to_owned()))
        .collect()
}

fn sample(text: &str, key: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|rest| rest.strip_prefix(' ')))
        .map(|v| v.parse().unwrap())
}

async fn scrape(client: &reqwest::Client, server: &Server) -> String {
    let response = client.get(server.metrics_url()).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    response.text().await.unwrap()
}

/// Writes, queries and discovers `names`, and probes some unknown paths.
async fn traffic(client: &reqwest::Client, server: &Server, token: &str, names: &[String]) {
    for name in names {
        let body = json!({"metrics": [
            {"name": name, "value": 1.5, "dimensions": {"host": format!("h-{name}")}},
            {"name": "1-not-a-name", "value": 1.0}
        ]});
        let response = client
            .post(server.url("/api/v1/write"))
            .bearer_auth(token)
            .header("x-request-id", format!("req-{name}"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
        let response = client
            .get(server.url(&format!("/api/v1/metrics/{name}/dimensions")))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let query = json!({"queryType": "aggregate", "metricName": name, "aggregation": "sum", "timeRange": {"relative": "1h"}});
        let response = client
            .post(server.url("/api/v1/query"))
            .bearer_auth(token)
            .json(&query)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
        let response = client
            .get(server.url(&format!("/scanner/{name}/wp-login.php")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404);
    }
}

#[tokio::test]
async fn metrics_expose_required_series_whose_label_sets_do_not_grow_with_traffic() {
    let mut server = Server::start(ServerOptions::default());
    let client = reqwest::Client::new();
    server.wait_started(&client).await;
    let token = token("acme", "read,write");
    // The scrape itself is a request: let its own series exist from the start.
    scrape(&client, &server).await;

    let first: Vec<String> = (0..3).map(|i| format!("alpha_{i}")).collect();
    traffic(&client, &server, &token, &first).await;
    let after_first = scrape(&client, &server).await;

    let second: Vec<String> = (0..12).map(|i| format!("beta_{i}")).collect();
    traffic(&client, &server, &token, &second).await;
    let after_second = scrape(&client, &server).await;

    // Fifteen metric names, fifteen raw paths and request ids later, the
    // server's own series are the same set: only the counts moved.
    let (before, after) = (series(&after_first), series(&after_second));
    let appeared: Vec<_> = after.difference(&before).collect();
    let vanished: Vec<_> = before.difference(&after).collect();
    assert!(
        appeared.is_empty() && vanished.is_empty(),
        "series appeared: {appeared:#?}\nseries vanished: {vanished:#?}"
    );
    for raw in ["alpha_", "beta_", "wp-login", "req-"] {
        assert!(
            !after_second.contains(raw),
            "a raw value leaked into a label: {raw}"
        );
    }

    let requests = |endpoint: &str, method: &str, status: u16| {
        sample(
            &after_second,
            &format!(r#"luminate_http_requests_total{{endpoint="{endpoint}",method="{method}",status="{status}"}}"#),
        )
        .unwrap_or(0.0)
    };
    assert_eq!(requests("/api/v1/write", "POST", 200), 15.0);
    assert_eq!(requests("/api/v1/query", "POST", 200), 15.0);
    assert_eq!(
        requests("/api/v1/metrics/{name}/dimensions", "GET", 200),
        15.0
    );
    assert_eq!(requests("unmatched", "GET", 404), 15.0);
    assert!(
        sample(
            &after_second,
            r#"luminate_http_request_duration_seconds_count{endpoint="/api/v1/write",method="POST"}"#
        ) == Some(15.0)
    );
    assert!(sample(&after_second, "luminate_storage_writes_total").unwrap() >= 15.0);
    assert_eq!(
        sample(
            &after_second,
            r#"luminate_ingest_metrics_total{code="invalid_name",outcome="rejected",protocol="json"}"#
        ),
        Some(15.0)
    );
    assert!(
        sample(
            &after_second,
            r#"luminate_storage_query_duration_seconds_count{operation="aggregate"}"#
        )
        .unwrap()
            >= 15.0
    );
    for family in [
        "luminate_http_requests_in_flight",
        "luminate_batch_writer_queue_depth",
        "luminate_build_info",
        "process_resident_memory_bytes",
    ] {
        assert!(
            after_second.contains(&format!("# TYPE {family} ")),
            "{family} missing"
        );
    }
}

#[tokio::test]
async fn the_metrics_listener_needs_no_token_and_serves_nothing_else() {
    let mut server = Server::start(ServerOptions::default());
    let client = reqwest::Client::new();
    server.wait_started(&client).await;
    let text = scrape(&client, &server).await;
    assert!(text.contains("# TYPE luminate_http_requests_total counter"));
    assert!(text.contains("# TYPE luminate_http_connections_open gauge"));
    let other = client
        .get(format!(
            "http://{}/api/v1/openapi.json",
            server.metrics_addr
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 404);
}

#[tokio::test]
async fn anonymous_metrics_on_the_api_port_name_no_tenant() {
    let mut server = Server::start(ServerOptions::default());
    let client = reqwest::Client::new();
    server.wait_started(&client).await;
    let token = token("secret-tenant-7f3a", "read,write");
    let body = json!({"metrics": [{"name": "m", "value": 1.0, "dimensions": {"host": "a"}}]});
    let response = client
        .post(server.url("/api/v1/write"))
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // The tenant is in the self-metrics, on the metrics listener...
    let scraped = scrape(&client, &server).await;
    assert!(
        scraped.contains(r#"tenant="secret-tenant-7f3a""#),
        "{scraped}"
    );
    // ...and nowhere an anonymous client of the API port can look.
    for path in ["/metrics", "/metrics/", "/api/v1/metrics"] {
        let response = client.get(server.url(path)).send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        assert!(
            !text.contains("secret-tenant-7f3a"),
            "{path} ({status}) named the tenant: {text}"
        );
        assert!(status == 404 || status == 401, "{path}: {status} {text}");
    }
    let response = client.get(server.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 404);
    let error: serde_json::Value = response.json().await.unwrap();
    assert_eq!(error["error"]["code"], "not_found");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("telemetry.metrics_listen"),
        "{error}"
    );
}

#[tokio::test]
async fn rate_limit_rejections_and_cardinality_estimates_are_counted_per_tenant() {
    let mut server = Server::start(ServerOptions::default().env(
        "LUMINATE_LIMITS__TIERS__FREE__WRITE_REQUESTS_PER_SECOND",
        "2",
    ));
    let client = reqwest::Client::new();
    server.wait_started(&client).await;
    let token = token("acme", "read,write");
    let mut rejected = 0;
    for i in 0..10 {
        let body = json!({"metrics": [{"name": "limited", "value": 1.0, "dimensions": {"host": format!("h{i}")}}]});
        let response = client
            .post(server.url("/api/v1/write"))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .unwrap();
        match response.status().as_u16() {
            200 => {}
            429 => rejected += 1,
            other => panic!("unexpected {other}: {}", response.text().await.unwrap()),
        }
    }
    assert!(
        rejected >= 5,
        "only {rejected} of 10 writes were limited at 2/s"
    );
    let text = scrape(&client, &server).await;
    assert_eq!(
        sample(
            &text,
            r#"luminate_rate_limit_rejected_total{limit="write_requests",tenant="acme"}"#
        ),
        Some(rejected as f64)
    );
    assert_eq!(
        sample(
            &text,
            r#"luminate_http_requests_total{endpoint="/api/v1/write",method="POST",status="429"}"#
        ),
        Some(rejected as f64)
    );
    let limited = server
        .wait_for_log(|l| l["message"] == "request" && l["status"] == 429)
        .await;
    assert_eq!(limited["tenant_id"], "acme", "{limited}");
    assert_eq!(limited["error_code"], "rate_limited", "{limited}");
    let accepted = 10 - rejected;
    assert_eq!(
        sample(
            &text,
            r#"luminate_cardinality_series_estimate{tenant="acme"}"#
        ),
        Some(accepted as f64),
        "one new series per accepted write"
    );
}

#[tokio::test]
async fn batch_writer_reports_flushes_and_an_empty_queue_against_real_clickhouse() {
    use luminate_host::storage::clickhouse::testing::require_server;
    let Some(clickhouse) = require_server() else {
        return;
    };
    let mut options =
        ServerOptions::default().env("LUMINATE_STORAGE__CLICKHOUSE__DATABASE", "ops_metrics");
    options.args = vec![
        "--storage".into(),
        "clickhouse".into(),
        "--clickhouse-url".into(),
        clickhouse.url(),
    ];
    let mut server = Server::start(options);
    let client = reqwest::Client::new();
    server.wait_started(&client).await;
    let token = token("acme", "read,write");
    for i in 0..5 {
        let body = json!({"metrics": [{"name": "ch_written", "value": i as f64, "dimensions": {"host": "a"}}]});
        let response = client
            .post(server.url("/api/v1/write"))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    }
    let text = scrape(&client, &server).await;
    let flushes = sample(
        &text,
        r#"luminate_batch_writer_flushes_total{outcome="ok"}"#,
    )
    .unwrap_or(0.0);
    assert!(flushes >= 1.0, "no successful flush recorded:\n{text}");
    assert_eq!(
        sample(&text, "luminate_batch_writer_flush_duration_seconds_count"),
        Some(flushes)
    );
    // Every write was acknowledged, so nothing is left queued.
    assert_eq!(
        sample(&text, "luminate_batch_writer_queue_depth"),
        Some(0.0)
    );
    assert_eq!(sample(&text, "luminate_storage_writes_total"), Some(5.0));
}
