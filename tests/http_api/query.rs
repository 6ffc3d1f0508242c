use serde_json::{Value, json};

use crate::common::{TestServer, now_ms};

const MINUTE: i64 = 60_000;

/// A fixed data set: `latency` on three endpoints with known values, and a
/// counter with a reset. Returns the minute-aligned base timestamp.
struct Data {
    base: i64,
    a: Vec<f64>,
    b: Vec<f64>,
    c: Vec<f64>,
}

async fn load(server: &TestServer) -> Data {
    let base = (now_ms() - 30 * MINUTE) / MINUTE * MINUTE;
    let a: Vec<f64> = (0..100).map(|i| i as f64 / 100.0).collect();
    let b: Vec<f64> = (1..=50).map(|i| i as f64 * 2.0).collect();
    let c: Vec<f64> = vec![7.0; 10];
    let mut metrics = Vec::new();
    for (endpoint, region, values) in [("/a", "eu", &a), ("/b", "us", &b), ("/c", "eu", &c)] {
        for (i, v) in values.iter().enumerate() {
            metrics.push(
                json!({"name": "latency", "value": v, "timestamp": base + i as i64 * 1_000,
                "dimensions": {"endpoint": endpoint, "region": region}}),
            );
        }
    }
    // A point without an endpoint: groups and filters treat it as "".
    metrics.push(
        json!({"name": "latency", "value": 1000.0, "timestamp": base,
        "dimensions": {"region": "us"}}),
    );
    // Counters: host h1 has a reset at 40 s.
    for (t, v) in [
        (0, 0.0),
        (10, 10.0),
        (20, 20.0),
        (30, 30.0),
        (40, 5.0),
        (50, 15.0),
        (70, 25.0),
    ] {
        metrics.push(
            json!({"name": "requests_total", "value": v, "timestamp": base + t * 1_000,
            "dimensions": {"host": "h1", "region": "eu"}}),
        );
    }
    for (t, v) in [(0, 100.0), (30, 160.0), (70, 220.0)] {
        metrics.push(
            json!({"name": "requests_total", "value": v, "timestamp": base + t * 1_000,
            "dimensions": {"host": "h2", "region": "eu"}}),
        );
    }
    let reply = server.write(Value::Array(metrics)).await.ok();
    assert_eq!(reply["rejected"], 0, "{reply}");
    Data { base, a, b, c }
}

fn percentile(values: &[f64], q: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((q * sorted.len() as f64).floor() as usize).min(sorted.len() - 1);
    sorted[rank]
}

fn aggregate(metric: &str, aggregation: &str, extra: Value) -> Value {
    let mut q = json!({"queryType": "aggregate", "metricName": metric, "aggregation": aggregation,
        "timeRange": {"relative": "1h"}});
    for (k, v) in extra.as_object().unwrap() {
        q[k] = v.clone();
    }
    q
}

fn approx(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// `results` as (group value of `key`, value) pairs.
fn rows(body: &Value, key: &str) -> Vec<(Value, f64)> {
    body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r[key].clone(), r["value"].as_f64().unwrap()))
        .collect()
}

#[tokio::test]
async fn aggregates_grouped_by_a_dimension() {
    let server = TestServer::start().await;
    let data = load(&server).await;
    let all: Vec<f64> = data
        .a
        .iter()
        .chain(&data.b)
        .chain(&data.c)
        .copied()
        .chain([1000.0])
        .collect();
    type Agg = fn(&[f64]) -> f64;
    let cases: Vec<(&str, Agg)> = vec![
        ("count", |v| v.len() as f64),
        ("sum", |v| v.iter().sum()),
        ("avg", |v| v.iter().sum::<f64>() / v.len() as f64),
        ("min", |v| v.iter().copied().fold(f64::INFINITY, f64::min)),
        ("max", |v| {
            v.iter().copied().fold(f64::NEG_INFINITY, f64::max)
        }),
        ("p50", |v| percentile(v, 0.5)),
        ("p95", |v| percentile(v, 0.95)),
        ("p99.9", |v| percentile(v, 0.999)),
        ("p0", |v| percentile(v, 0.0)),
        ("p100", |v| percentile(v, 1.0)),
    ];
    for (name, f) in cases {
        let body = server
            .query(aggregate("latency", name, json!({"groupBy": ["endpoint"]})))
            .await
            .ok();
        let got = rows(&body, "endpoint");
        // Missing endpoint sorts first and shows as null.
        let expected = [
            (Value::Null, f(&[1000.0])),
            (json!("/a"), f(&data.a)),
            (json!("/b"), f(&data.b)),
            (json!("/c"), f(&data.c)),
        ];
        assert_eq!(got.len(), 4, "{name}: {body}");
        for ((gk, gv), (ek, ev)) in got.iter().zip(&expected) {
            assert_eq!(gk, ek, "{name}: {body}");
            assert!(approx(*gv, *ev), "{name} {ek}: got {gv}, want {ev}");
        }
        assert_eq!(body["truncated"], false);
        let ungrouped = server
            .query(aggregate("latency", name, json!({})))
            .await
            .ok();
        let v = ungrouped["results"][0]["value"].as_f64().unwrap();
        assert!(
            approx(v, f(&all)),
            "{name} ungrouped: got {v}, want {}",
            f(&all)
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn filters_select_series() {
    let server = TestServer::start().await;
    load(&server).await;
    let endpoints = |body: Value| -> Vec<Value> {
        body["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["endpoint"].clone())
            .collect()
    };
    let cases = vec![
        (
            json!([{"key": "endpoint", "op": "=", "value": "/a"}]),
            vec![json!("/a")],
        ),
        (
            json!([{"key": "endpoint", "op": "!=", "value": "/a"}]),
            vec![Value::Null, json!("/b"), json!("/c")],
        ),
        (
            json!([{"key": "endpoint", "op": "=~", "value": "/(a|b)"}]),
            vec![json!("/a"), json!("/b")],
        ),
        // Anchored: "/" alone does not match "/a".
        (
            json!([{"key": "endpoint", "op": "=~", "value": "/"}]),
            vec![],
        ),
        (
            json!([{"key": "endpoint", "op": "!~", "value": "/[ab]"}]),
            vec![Value::Null, json!("/c")],
        ),
        (
            json!([{"key": "endpoint", "op": "in", "value": ["/a", "/c", "/zzz"]}]),
            vec![json!("/a"), json!("/c")],
        ),
        (
            json!([{"key": "region", "op": "=", "value": "eu"}, {"key": "endpoint", "op": "!=", "value": "/c"}]),
            vec![json!("/a")],
        ),
        (
            json!([{"key": "endpoint", "op": "=", "value": ""}]),
            vec![Value::Null],
        ),
        (
            json!([{"key": "nosuchkey", "op": "=", "value": "x"}]),
            vec![],
        ),
    ];
    for (filters, expected) in cases {
        let body = server
            .query(aggregate(
                "latency",
                "count",
                json!({"groupBy": ["endpoint"], "filters": filters}),
            ))
            .await
            .ok();
        assert_eq!(
            endpoints(body.clone()),
            expected,
            "filters {filters}: {body}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn limit_truncates_and_says_so() {
    let server = TestServer::start().await;
    load(&server).await;
    let body = server
        .query(aggregate(
            "latency",
            "count",
            json!({"groupBy": ["endpoint"], "limit": 2}),
        ))
        .await
        .ok();
    assert_eq!(body["results"].as_array().unwrap().len(), 2);
    assert_eq!(body["truncated"], true);
    let body = server
        .query(aggregate(
            "latency",
            "count",
            json!({"groupBy": ["endpoint"], "limit": 4}),
        ))
        .await
        .ok();
    assert_eq!(body["truncated"], false);
    let body = server
        .query(json!({"queryType": "range", "metricName": "latency", "timeRange": {"relative": "1h"}, "limit": 1}))
        .await
        .ok();
    assert_eq!(body["series"].as_array().unwrap().len(), 1);
    assert_eq!(body["truncated"], true);
    server.stop().await;
}

#[tokio::test]
async fn group_by_several_dimensions() {
    let server = TestServer::start().await;
    load(&server).await;
    let body = server
        .query(aggregate(
            "latency",
            "count",
            json!({"groupBy": ["region", "endpoint"]}),
        ))
        .await
        .ok();
    let got: Vec<(Value, Value, f64)> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["region"].clone(),
                r["endpoint"].clone(),
                r["value"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (json!("eu"), json!("/a"), 100.0),
            (json!("eu"), json!("/c"), 10.0),
            (json!("us"), Value::Null, 1.0),
            (json!("us"), json!("/b"), 50.0),
        ]
    );
    server.stop().await;
}

#[tokio::test]
async fn range_returns_raw_points_per_series() {
    let server = TestServer::start().await;
    let data = load(&server).await;
    let body = server
        .query(
            json!({"queryType": "range", "metricName": "latency", "timeRange": {"relative": "1h"},
            "filters": [{"key": "endpoint", "op": "in", "value": ["/c", "/b"]}]}),
        )
        .await
        .ok();
    let series = body["series"].as_array().unwrap();
    assert_eq!(series.len(), 2, "{body}");
    assert_eq!(
        series[0]["dimensions"],
        json!({"endpoint": "/b", "region": "us"})
    );
    assert_eq!(
        series[1]["dimensions"],
        json!({"endpoint": "/c", "region": "eu"})
    );
    let points: Vec<(i64, f64)> = series[1]["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_i64().unwrap(), p[1].as_f64().unwrap()))
        .collect();
    let expected: Vec<(i64, f64)> = data
        .c
        .iter()
        .enumerate()
        .map(|(i, v)| (data.base + i as i64 * 1_000, *v))
        .collect();
    assert_eq!(points, expected);
    server.stop().await;
}

#[tokio::test]
async fn range_with_step_aggregates_each_bucket() {
    let server = TestServer::start().await;
    let data = load(&server).await;
    let body = server
        .query(json!({"queryType": "range", "metricName": "latency", "timeRange": {"relative": "1h"},
            "step": "1m", "aggregation": "max", "filters": [{"key": "endpoint", "op": "=", "value": "/a"}]}))
        .await
        .ok();
    let points = body["series"][0]["points"].as_array().unwrap();
    let first_max = data.a[..60].iter().copied().fold(f64::MIN, f64::max);
    let second_max = data.a[60..].iter().copied().fold(f64::MIN, f64::max);
    assert_eq!(points.len(), 2, "{body}");
    assert_eq!(points[0][0], data.base);
    assert!(approx(points[0][1].as_f64().unwrap(), first_max));
    assert_eq!(points[1][0], data.base + MINUTE);
    assert!(approx(points[1][1].as_f64().unwrap(), second_max));
    // Grouped by region, buckets merge the region's series.
    let body = server
        .query(
            json!({"queryType": "range", "metricName": "latency", "timeRange": {"relative": "1h"},
            "step": "1m", "aggregation": "count", "groupBy": ["region"]}),
        )
        .await
        .ok();
    let series = body["series"].as_array().unwrap();
    assert_eq!(series[0]["dimensions"], json!({"region": "eu"}));
    assert_eq!(
        series[0]["points"],
        json!([[data.base, 70.0], [data.base + MINUTE, 40.0]])
    );
    assert_eq!(series[1]["dimensions"], json!({"region": "us"}));
    assert_eq!(series[1]["points"], json!([[data.base, 51.0]]));
    server.stop().await;
}

#[tokio::test]
async fn rate_handles_counter_resets() {
    let server = TestServer::start().await;
    let data = load(&server).await;
    let body = server
        .query(json!({"queryType": "rate", "metricName": "requests_total", "timeRange": {"relative": "1h"},
            "step": "1m", "filters": [{"key": "host", "op": "=", "value": "h1"}]}))
        .await
        .ok();
    let points = body["series"][0]["points"].as_array().unwrap();
    // Increases 10+10+10+5(reset)+10 = 45 in the first minute, 10 in the second.
    assert_eq!(points[0][0], data.base);
    assert!(
        approx(points[0][1].as_f64().unwrap(), 45.0 / 60.0),
        "{body}"
    );
    assert_eq!(points[1][0], data.base + MINUTE);
    assert!(
        approx(points[1][1].as_f64().unwrap(), 10.0 / 60.0),
        "{body}"
    );
    // Per group, the series' rates add up: h2 adds 60 then 60.
    let body = server
        .query(json!({"queryType": "rate", "metricName": "requests_total", "timeRange": {"relative": "1h"},
            "step": "1m", "groupBy": ["region"]}))
        .await
        .ok();
    let points = body["series"][0]["points"].as_array().unwrap();
    assert_eq!(body["series"][0]["dimensions"], json!({"region": "eu"}));
    assert!(
        approx(points[0][1].as_f64().unwrap(), 105.0 / 60.0),
        "{body}"
    );
    assert!(
        approx(points[1][1].as_f64().unwrap(), 70.0 / 60.0),
        "{body}"
    );
    server.stop().await;
}

#[tokio::test]
async fn absolute_time_ranges_take_rfc3339_or_ms() {
    let server = TestServer::start().await;
    let data = load(&server).await;
    let start = time::OffsetDateTime::from_unix_timestamp_nanos(data.base as i128 * 1_000_000)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let body = server
        .query(
            json!({"queryType": "aggregate", "metricName": "latency", "aggregation": "count",
            "timeRange": {"start": start, "end": data.base + 30_000},
            "filters": [{"key": "endpoint", "op": "=", "value": "/a"}]}),
        )
        .await
        .ok();
    // Half-open: [base, base+30s) holds points 0..30.
    assert_eq!(body["results"][0]["value"], 30.0);
    server.stop().await;
}

#[tokio::test]
async fn the_tenant_dimension_is_the_callers_own() {
    let server = TestServer::start().await;
    load(&server).await;
    let body = server
        .query(aggregate(
            "latency",
            "count",
            json!({"groupBy": ["_tenant_id"]}),
        ))
        .await
        .ok();
    assert_eq!(
        body["results"],
        json!([{"_tenant_id": crate::common::TEST_TENANT, "value": 161.0}])
    );
    for (op, value) in [
        ("=", json!("other")),
        ("=~", json!("oth.*")),
        ("in", json!(["x", "y"])),
        ("!=", json!(crate::common::TEST_TENANT)),
    ] {
        let body = server
            .query(aggregate(
                "latency",
                "count",
                json!({"filters": [{"key": "_tenant_id", "op": op, "value": value}]}),
            ))
            .await
            .ok();
        assert_eq!(body["results"], json!([]), "{op} {value}");
    }
    let body = server
        .query(aggregate(
            "latency",
            "count",
            json!({"filters": [{"key": "_tenant_id", "op": "=~", "value": ".*"}]}),
        ))
        .await
        .ok();
    assert_eq!(body["results"][0]["value"], 161.0);
    server.stop().await;
}

#[tokio::test]
async fn bad_queries_get_a_clear_400() {
    let server = TestServer::start().await;
    load(&server).await;
    let base = aggregate("latency", "avg", json!({}));
    let with = |patch: Value| {
        let mut q = base.clone();
        for (k, v) in patch.as_object().unwrap() {
            q[k] = v.clone();
        }
        q
    };
    let cases = vec![
        (
            with(json!({"aggregation": "median"})),
            "invalid_aggregation",
        ),
        (with(json!({"aggregation": "p101"})), "invalid_aggregation"),
        (
            with(json!({"queryType": "histogram"})),
            "invalid_query_type",
        ),
        (with(json!({"metricName": "no spaces"})), "invalid_name"),
        (
            with(json!({"timeRange": {"relative": "5 minutes"}})),
            "invalid_duration",
        ),
        (
            with(json!({"timeRange": {"start": 2_000, "end": 1_000}})),
            "invalid_time_range",
        ),
        (
            with(json!({"timeRange": {"start": "not a time"}})),
            "invalid_time_range",
        ),
        (
            with(json!({"timeRange": {"relative": "1000w"}})),
            "time_range_too_large",
        ),
        (
            with(json!({"filters": [{"key": "a", "op": "=~", "value": "(unclosed"}]})),
            "invalid_regex",
        ),
        (
            with(json!({"filters": [{"key": "a", "op": "like", "value": "x"}]})),
            "invalid_filter",
        ),
        (with(json!({"limit": 0})), "invalid_limit"),
        (with(json!({"limit": -1})), "invalid_request"),
        (with(json!({"groupBy": "endpoint"})), "invalid_request"),
        (with(json!({"unknown": 1})), "invalid_request"),
        (
            json!({"queryType": "range", "metricName": "latency", "timeRange": {"relative": "7d"}, "step": "1s", "aggregation": "avg"}),
            "too_many_buckets",
        ),
        (
            json!({"queryType": "rate", "metricName": "latency", "timeRange": {"relative": "1h"}}),
            "missing_field",
        ),
    ];
    for (query, code) in cases {
        server.query(query.clone()).await.assert_error(400, code);
    }
    server
        .post_bytes("/api/v1/query", b"{not json".to_vec(), None)
        .await
        .assert_error(400, "malformed_json");
    server
        .post_json(
            "/api/v1/query",
            &json!({"queryType": "aggregate", "metricName": "latency",
            "aggregation": {"plugin": "apdex"}, "timeRange": {"relative": "1h"}}),
        )
        .await
        .assert_error(422, "unknown_plugin");
    server.stop().await;
}

#[tokio::test]
async fn a_metric_with_no_data_answers_empty() {
    let server = TestServer::start().await;
    let body = server
        .query(aggregate(
            "nothing_here",
            "count",
            json!({"groupBy": ["x"]}),
        ))
        .await
        .ok();
    assert_eq!(body["results"], json!([]));
    let body = server
        .query(json!({"queryType": "range", "metricName": "nothing_here", "timeRange": {"relative": "1h"}}))
        .await
        .ok();
    assert_eq!(body, json!({"series": [], "truncated": false}));
    server.stop().await;
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

#[tokio::test]
async fn queries_past_the_point_budgets_get_a_422_naming_the_limit() {
    let server = TestServer::start_with(|c| {
        c.query.max_points_scanned = 1_000;
        c.query.max_points_returned = 50;
    })
    .await;
    load(&server).await;
    // 161 latency points: within the scan budget.
    let body = server
        .query(aggregate("latency", "count", json!({})))
        .await
        .ok();
    assert_eq!(body["results"][0]["value"], 161.0);
    let raw =
        json!({"queryType": "range", "metricName": "latency", "timeRange": {"relative": "1h"}});
    let reply = server.query(raw.clone()).await;
    reply.assert_error(422, "query_too_large");
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("query.max_points_returned"),
        "{}",
        reply.body
    );
    // One endpoint's 10 points fit.
    let mut narrow = raw;
    narrow["filters"] = json!([{"key": "endpoint", "op": "=", "value": "/c"}]);
    let body = server.query(narrow).await.ok();
    assert_eq!(body["series"][0]["points"].as_array().unwrap().len(), 10);
    server.stop().await;

    let server = TestServer::start_with(|c| c.query.max_points_scanned = 100).await;
    load(&server).await;
    let reply = server
        .query(aggregate(
            "latency",
            "count",
            json!({"groupBy": ["endpoint"]}),
        ))
        .await;
    reply.assert_error(422, "query_too_large");
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("query.max_points_scanned"),
        "{}",
        reply.body
    );
    server.stop().await;
}

#[tokio::test]
async fn hostile_regexes_and_huge_lists_are_refused_cheaply_and_not_echoed() {
    let server = TestServer::start().await;
    load(&server).await;
    let with_filter = |filter: Value| aggregate("latency", "count", json!({"filters": [filter]}));

    let huge = "a".repeat(1 << 20);
    let reply = server
        .query(with_filter(
            json!({"key": "endpoint", "op": "=~", "value": huge}),
        ))
        .await;
    reply.assert_error(400, "regex_too_large");
    let message = reply.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("query.max_regex_bytes"), "{message}");
    assert!(
        message.len() < 300,
        "the pattern was echoed: {} bytes",
        message.len()
    );

    // Closing the anchoring group would match every value.
    for escape in ["x)|(?:.*", "[[a]x)|(?:.*]"] {
        server
            .query(with_filter(
                json!({"key": "endpoint", "op": "=~", "value": escape}),
            ))
            .await
            .assert_error(400, "invalid_regex");
    }
    let anchored = server
        .query(with_filter(
            json!({"key": "endpoint", "op": "=~", "value": "/a|/b"}),
        ))
        .await
        .ok();
    assert_eq!(anchored["results"][0]["value"], 150.0);

    // Two million `in` values in a small gzipped body: counted, not kept.
    let values = vec!["\"v\""; 2_000_000].join(",");
    let body = format!(
        r#"{{"queryType":"aggregate","metricName":"latency","aggregation":"count","timeRange":{{"relative":"1h"}},"filters":[{{"key":"endpoint","op":"in","value":[{values}]}}]}}"#
    );
    let reply = server
        .post_bytes("/api/v1/query", gzip(body.as_bytes()), Some("gzip"))
        .await;
    reply.assert_error(400, "invalid_filter");
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not 2000000"),
        "{}",
        reply.body
    );

    let keys: Vec<String> = (0..100).map(|i| format!("k{i}")).collect();
    server
        .query(aggregate("latency", "count", json!({"groupBy": keys})))
        .await
        .assert_error(400, "invalid_group_by");
    let reply = server
        .query(aggregate(
            "latency",
            "count",
            json!({"filters": [{"key": "a", "op": 5, "value": "x"}]}),
        ))
        .await;
    reply.assert_error(400, "invalid_request");
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("filters[0].op"),
        "{}",
        reply.body
    );
    server.stop().await;
}
