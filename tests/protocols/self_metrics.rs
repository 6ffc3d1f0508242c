//! Every protocol is counted in the same self-metric, labelled by protocol.

use prost::Message;
use serde_json::json;

use crate::common::{TestServer, now_ms};
use crate::support::api_for;

/// The value of `series` (exact label set) in a scrape, if present.
fn sample(scrape: &str, series: &str) -> Option<f64> {
    scrape
        .lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

#[tokio::test]
async fn each_protocol_counts_its_metrics_under_its_own_label() {
    let server = TestServer::start().await;
    let a = api_for(&server, "self-metrics");
    let now = now_ms();

    let request = luminate_host::ingest::remote_write::prompb::WriteRequest {
        timeseries: vec![luminate_host::ingest::remote_write::prompb::TimeSeries {
            labels: vec![luminate_host::ingest::remote_write::prompb::Label {
                name: bytes::Bytes::from_static(b"__name__"),
                value: bytes::Bytes::from_static(b"rw"),
            }],
            samples: vec![luminate_host::ingest::remote_write::prompb::Sample {
                value: 1.0,
                timestamp: now,
            }],
            ..Default::default()
        }],
        metadata: vec![],
    };
    let body = snap::raw::Encoder::new()
        .compress_vec(&request.encode_to_vec())
        .unwrap();
    let reply = a
        .send(
            a.http
                .post(a.url("/api/v1/push"))
                .header("content-encoding", "snappy")
                .body(body),
        )
        .await;
    assert_eq!(reply.status, 204, "{reply:?}");

    let otlp = json!({"resourceMetrics": [{"scopeMetrics": [{"metrics": [
        {"name": "otlp", "gauge": {"dataPoints": [{"asDouble": 1.0, "timeUnixNano": (now * 1_000_000).to_string()}]}}
    ]}]}]});
    a.post_json("/v1/metrics", &otlp).await.ok();

    let reply = a
        .send(
            a.http
                .post(a.url("/api/v2/write?precision=ms"))
                .body(format!("influx v=1 {now}\ninflux s=\"text\" {now}")),
        )
        .await;
    reply.assert_error(400, "partial_write");

    let scrape = reqwest::get(format!("http://{}/metrics", server.metrics_addr()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for protocol in ["remote_write", "otlp", "influx"] {
        let accepted = format!(
            r#"luminate_ingest_metrics_total{{code="",outcome="accepted",protocol="{protocol}"}}"#
        );
        assert!(
            sample(&scrape, &accepted).is_some_and(|n| n >= 1.0),
            "no {accepted} in:\n{scrape}"
        );
    }
    let rejected = r#"luminate_ingest_metrics_total{code="string_field",outcome="rejected",protocol="influx"}"#;
    assert!(
        sample(&scrape, rejected).is_some_and(|n| n >= 1.0),
        "{scrape}"
    );
    server.stop().await;
}
