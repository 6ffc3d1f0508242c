use std::io::Write;

use serde_json::{Value, json};

use crate::common::{TestServer, now_ms};

fn metric(name: &str, value: f64, dims: Value) -> Value {
    json!({"name": name, "value": value, "timestamp": now_ms() - 1_000, "dimensions": dims})
}

async fn count(server: &TestServer, name: &str) -> f64 {
    let body = server
        .query(json!({"queryType":"aggregate","metricName":name,"aggregation":"count","timeRange":{"relative":"7d"}}))
        .await
        .ok();
    body["results"][0]["value"].as_f64().unwrap_or(0.0)
}

#[tokio::test]
async fn accepts_a_batch_and_reports_counts() {
    let server = TestServer::start().await;
    let reply = server
        .write(json!([
            metric("api_latency", 0.1, json!({"endpoint": "/a"})),
            metric("api_latency", 0.2, json!({"endpoint": "/b"})),
        ]))
        .await
        .ok();
    assert_eq!(reply, json!({"accepted": 2, "rejected": 0, "errors": []}));
    assert_eq!(count(&server, "api_latency").await, 2.0);
    server.stop().await;
}

#[tokio::test]
async fn a_missing_timestamp_means_the_server_time() {
    let server = TestServer::start().await;
    let before = now_ms();
    server
        .write(json!([{"name": "no_ts", "value": 1}]))
        .await
        .ok();
    let after = now_ms();
    let body = server
        .query(json!({"queryType":"range","metricName":"no_ts","timeRange":{"relative":"1m"}}))
        .await
        .ok();
    let ts = body["series"][0]["points"][0][0].as_i64().unwrap();
    assert!(
        (before..=after).contains(&ts),
        "{ts} not in [{before}, {after}]"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_partial_batch_stores_the_good_metrics_and_reports_each_bad_one() {
    let server = TestServer::start().await;
    let reply = server
        .write(json!([
            metric("partial", 1.0, json!({})),
            {"name": "partial", "value": "abc"},
            metric("partial", 2.0, json!({})),
            metric("9bad", 1.0, json!({})),
            {"value": 1},
            metric("partial", 3.0, json!({"_tenant_id": "someone-else"})),
            metric("partial", 4.0, json!({"k": "v"})),
        ]))
        .await
        .ok();
    assert_eq!(reply["accepted"], 3);
    assert_eq!(reply["rejected"], 4);
    let errors: Vec<(u64, &str)> = reply["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["index"].as_u64().unwrap(), e["code"].as_str().unwrap()))
        .collect();
    assert_eq!(
        errors,
        vec![
            (1, "invalid_value"),
            (3, "invalid_name"),
            (4, "missing_name"),
            (5, "reserved_dimension_key"),
        ]
    );
    for e in reply["errors"].as_array().unwrap() {
        assert!(!e["message"].as_str().unwrap().is_empty());
    }
    assert_eq!(count(&server, "partial").await, 3.0);
    server.stop().await;
}

#[tokio::test]
async fn every_validation_rule_rejects_with_its_own_code() {
    let server = TestServer::start().await;
    let now = now_ms();
    let many_dims: serde_json::Map<String, Value> =
        (0..21).map(|i| (format!("k{i}"), json!("v"))).collect();
    let cases: Vec<(Value, &str)> = vec![
        (json!({"name": "1abc", "value": 1}), "invalid_name"),
        (json!({"name": "a-b", "value": 1}), "invalid_name"),
        (json!({"name": "", "value": 1}), "invalid_name"),
        (json!({"name": 5, "value": 1}), "invalid_name"),
        (
            json!({"name": "a".repeat(201), "value": 1}),
            "name_too_long",
        ),
        (json!({"value": 1}), "missing_name"),
        (json!({"name": "a"}), "missing_value"),
        (json!({"name": "a", "value": "abc"}), "invalid_value"),
        (json!({"name": "a", "value": null}), "invalid_value"),
        (
            json!({"name": "a", "value": 1, "dimensions": many_dims}),
            "too_many_dimensions",
        ),
        (
            json!({"name": "a", "value": 1, "dimensions": {"9k": "v"}}),
            "invalid_dimension_key",
        ),
        (
            json!({"name": "a", "value": 1, "dimensions": {"k-x": "v"}}),
            "invalid_dimension_key",
        ),
        (
            json!({"name": "a", "value": 1, "dimensions": {"k".repeat(101): "v"}}),
            "dimension_key_too_long",
        ),
        (
            json!({"name": "a", "value": 1, "dimensions": {"_tenant_id": "b"}}),
            "reserved_dimension_key",
        ),
        (
            json!({"name": "a", "value": 1, "dimensions": {"_x": "b"}}),
            "reserved_dimension_key",
        ),
        (
            json!({"name": "a", "value": 1, "dimensions": {"k": ""}}),
            "empty_dimension_value",
        ),
        (
            json!({"name": "a", "value": 1, "dimensions": {"k": "v".repeat(1025)}}),
            "dimension_value_too_long",
        ),
        (
            json!({"name": "a", "value": 1, "dimensions": {"k": 1}}),
            "invalid_dimensions",
        ),
        (
            json!({"name": "a", "value": 1, "dimensions": ["k"]}),
            "invalid_dimensions",
        ),
        (
            json!({"name": "a", "value": 1, "timestamp": now - 8 * 86_400_000}),
            "timestamp_out_of_range",
        ),
        (
            json!({"name": "a", "value": 1, "timestamp": now + 2 * 3_600_000}),
            "timestamp_out_of_range",
        ),
        (
            json!({"name": "a", "value": 1, "timestamp": "yesterday"}),
            "invalid_timestamp",
        ),
        (
            json!({"name": "a", "value": 1, "timestamp": 1.5}),
            "invalid_timestamp",
        ),
        (
            json!({"name": "a", "value": 1, "tags": {}}),
            "unknown_field",
        ),
        (json!("a string"), "invalid_metric"),
        (json!([1, 2]), "invalid_metric"),
        (json!(null), "invalid_metric"),
    ];
    let batch: Vec<Value> = cases.iter().map(|(m, _)| m.clone()).collect();
    let reply = server.write(Value::Array(batch)).await.ok();
    assert_eq!(reply["accepted"], 0);
    assert_eq!(reply["rejected"], cases.len());
    for (i, (sent, code)) in cases.iter().enumerate() {
        let error = &reply["errors"][i];
        assert_eq!(error["index"], i, "{error}");
        assert_eq!(error["code"], *code, "metric {sent} got {error}");
    }
    // The limits at the edge are accepted.
    let edge_dims: serde_json::Map<String, Value> = (0..20)
        .map(|i| (format!("{}{i:02}", "k".repeat(98)), json!("v".repeat(1024))))
        .collect();
    let reply = server
        .write(json!([
            {"name": "a".repeat(200), "value": 1, "dimensions": edge_dims},
            {"name": "ok", "value": -1e300, "timestamp": now - 7 * 86_400_000 + 60_000},
            {"name": "ok", "value": 0, "timestamp": now + 3_600_000 - 60_000},
        ]))
        .await
        .ok();
    assert_eq!(reply["accepted"], 3, "{reply}");
    server.stop().await;
}

#[tokio::test]
async fn validation_limits_come_from_config() {
    let server = TestServer::start_with(|c| {
        c.validation.max_dimensions = 1;
        c.validation.max_name_bytes = 5;
    })
    .await;
    let reply = server
        .write(json!([
            {"name": "a", "value": 1, "dimensions": {"x": "1", "y": "2"}},
            {"name": "abcdef", "value": 1},
            {"name": "abc", "value": 1, "dimensions": {"x": "1"}},
        ]))
        .await
        .ok();
    assert_eq!(reply["accepted"], 1);
    assert_eq!(reply["errors"][0]["code"], "too_many_dimensions");
    assert_eq!(reply["errors"][1]["code"], "name_too_long");
    server.stop().await;
}

#[tokio::test]
async fn malformed_requests_get_a_400_in_the_error_shape() {
    let server = TestServer::start().await;
    let cases: Vec<(&str, &str)> = vec![
        ("", "malformed_json"),
        ("not json", "malformed_json"),
        (r#"{"metrics":[{"name":"a","value":1}"#, "malformed_json"),
        (
            r#"{"metrics":[{"name":"a","value":1}]} {}"#,
            "malformed_json",
        ),
        (
            r#"{"metrics":[{"name":"a","value":1e999}]}"#,
            "malformed_json",
        ),
        ("[]", "invalid_request"),
        ("{}", "invalid_request"),
        ("null", "invalid_request"),
        (r#"{"metrics":{}}"#, "invalid_request"),
        (r#"{"metrics":[],"extra":1}"#, "invalid_request"),
        (r#"{"metrics":[]}"#, "empty_batch"),
    ];
    for (body, code) in cases {
        let reply = server
            .post_bytes("/api/v1/write", body.as_bytes().to_vec(), None)
            .await;
        assert_eq!(reply.status, 400, "{body:?}: {reply:?}");
        assert_eq!(reply.error_code(), code, "{body:?}: {reply:?}");
    }
    // Invalid UTF-8 inside a string.
    let mut bytes = br#"{"metrics":[{"name":""#.to_vec();
    bytes.extend_from_slice(&[0xff, 0xfe]);
    bytes.extend_from_slice(br#"","value":1}]}"#);
    server
        .post_bytes("/api/v1/write", bytes, None)
        .await
        .assert_error(400, "malformed_json");
    server.stop().await;
}

#[tokio::test]
async fn more_metrics_than_the_limit_is_refused_whole() {
    let server = TestServer::start_with(|c| c.api.max_metrics_per_request = 5).await;
    let six: Vec<Value> = (0..6)
        .map(|i| metric("many", i as f64, json!({})))
        .collect();
    server
        .write(Value::Array(six))
        .await
        .assert_error(400, "too_many_metrics");
    assert_eq!(count(&server, "many").await, 0.0);
    let five: Vec<Value> = (0..5)
        .map(|i| metric("many", i as f64, json!({})))
        .collect();
    assert_eq!(server.write(Value::Array(five)).await.ok()["accepted"], 5);
    server.stop().await;
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn batch_bytes(name: &str, n: usize) -> Vec<u8> {
    let metrics: Vec<Value> = (0..n)
        .map(|i| metric(name, i as f64, json!({"i": i.to_string()})))
        .collect();
    serde_json::to_vec(&json!({ "metrics": metrics })).unwrap()
}

#[tokio::test]
async fn gzip_and_zstd_bodies_are_decompressed() {
    let server = TestServer::start().await;
    let reply = server
        .post_bytes("/api/v1/write", gzip(&batch_bytes("gz", 50)), Some("gzip"))
        .await
        .ok();
    assert_eq!(reply["accepted"], 50);
    let zstd_body = zstd::encode_all(&batch_bytes("zs", 40)[..], 3).unwrap();
    let reply = server
        .post_bytes("/api/v1/write", zstd_body, Some("zstd"))
        .await
        .ok();
    assert_eq!(reply["accepted"], 40);
    assert_eq!(count(&server, "gz").await, 50.0);
    assert_eq!(count(&server, "zs").await, 40.0);
    server.stop().await;
}

#[tokio::test]
async fn a_body_over_the_limit_gets_413_even_when_compressed_small() {
    let server = TestServer::start_with(|c| c.api.max_body_bytes = 64 * 1024).await;
    let plain = batch_bytes("big", 2_000);
    assert!(plain.len() > 64 * 1024);
    server
        .post_bytes("/api/v1/write", plain.clone(), None)
        .await
        .assert_error(413, "body_too_large");
    // A zip bomb: 50 MB of whitespace inside valid JSON, about 50 KB gzipped.
    let mut bomb = br#"{"metrics":[{"name":"bomb","value":1}"#.to_vec();
    bomb.extend(std::iter::repeat_n(b' ', 50 << 20));
    bomb.extend_from_slice(b"]}");
    let compressed = gzip(&bomb);
    assert!(compressed.len() < 64 * 1024, "{}", compressed.len());
    server
        .post_bytes("/api/v1/write", compressed, Some("gzip"))
        .await
        .assert_error(413, "body_too_large");
    let zstd_bomb = zstd::encode_all(&bomb[..], 3).unwrap();
    server
        .post_bytes("/api/v1/write", zstd_bomb, Some("zstd"))
        .await
        .assert_error(413, "body_too_large");
    assert_eq!(count(&server, "bomb").await, 0.0);
    // Under the limit after decompression is fine.
    let ok = gzip(&batch_bytes("big", 100));
    assert_eq!(
        server
            .post_bytes("/api/v1/write", ok, Some("gzip"))
            .await
            .ok()["accepted"],
        100
    );
    server.stop().await;
}

#[tokio::test]
async fn broken_or_unknown_encodings_are_refused() {
    let server = TestServer::start().await;
    server
        .post_bytes("/api/v1/write", b"not gzip at all".to_vec(), Some("gzip"))
        .await
        .assert_error(400, "invalid_body");
    server
        .post_bytes("/api/v1/write", b"not zstd".to_vec(), Some("zstd"))
        .await
        .assert_error(400, "invalid_body");
    server
        .post_bytes("/api/v1/write", batch_bytes("br", 1), Some("br"))
        .await
        .assert_error(415, "unsupported_content_encoding");
    let reply = server
        .post_bytes("/api/v1/write", batch_bytes("id", 1), Some("identity"))
        .await
        .ok();
    assert_eq!(reply["accepted"], 1);
    server.stop().await;
}

#[tokio::test]
async fn content_codings_match_in_any_letter_case() {
    let server = TestServer::start().await;
    for (i, coding) in ["GZIP", "Gzip", "x-gzip"].into_iter().enumerate() {
        let name = format!("gz_case_{i}");
        let reply = server
            .post_bytes("/api/v1/write", gzip(&batch_bytes(&name, 3)), Some(coding))
            .await;
        assert_eq!(reply.status, 200, "{coding}: {:?}", reply.body);
        assert_eq!(reply.body["accepted"], 3, "{coding}");
    }
    let zstd_body = zstd::encode_all(&batch_bytes("zs_case", 2)[..], 3).unwrap();
    let reply = server
        .post_bytes("/api/v1/write", zstd_body, Some("ZSTD"))
        .await
        .ok();
    assert_eq!(reply["accepted"], 2);
    // Unsupported codings, whatever their case, answer in the error shape
    // and name what is supported.
    for coding in ["BR", "deflate", "gzip, zstd"] {
        let reply = server
            .post_bytes("/api/v1/write", batch_bytes("nope", 1), Some(coding))
            .await;
        reply.assert_error(415, "unsupported_content_encoding");
        let message = reply.body["error"]["message"].as_str().unwrap();
        assert!(message.contains("gzip, zstd or identity"), "{message}");
    }
    assert_eq!(count(&server, "nope").await, 0.0);
    server.stop().await;
}

#[tokio::test]
async fn any_content_type_is_read_as_json() {
    let server = TestServer::start().await;
    let reply = server
        .send(
            server
                .http
                .post(server.url("/api/v1/write"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(batch_bytes("ct", 3)),
        )
        .await
        .ok();
    assert_eq!(reply["accepted"], 3);
    server.stop().await;
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_in_the_error_shape() {
    let server = TestServer::start().await;
    server
        .get("/api/v1/nope")
        .await
        .assert_error(404, "not_found");
    server
        .get("/api/v1/write")
        .await
        .assert_error(405, "method_not_allowed");
    server.stop().await;
}
