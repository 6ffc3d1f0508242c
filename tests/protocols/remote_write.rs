//! Prometheus remote write: Debian's `prometheus` (2.42) scrapes a target
//! this test serves and remote-writes what it scraped to Luminate, with the
//! token as its `basic_auth` password.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use luminate_host::ingest::remote_write::prompb;

use crate::common::{TestServer, free_port, prometheus_binary};
use crate::support::{api_for, stored, token_for};

/// What the target exposes: fixed values, so every stored sample is known.
const EXPOSITION: &str = "\
# TYPE room_temperature_celsius gauge
room_temperature_celsius{room=\"kitchen\"} 21.5
room_temperature_celsius{room=\"cellar\"} 12.25
# TYPE jobs_done_total counter
jobs_done_total{queue=\"high-prio\"} 1027
";

/// Serves [`EXPOSITION`] to every request on a loopback port.
async fn serve_target() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{EXPOSITION}",
                    EXPOSITION.len()
                );
                let _ = conn.write_all(response.as_bytes()).await;
            });
        }
    });
    port
}

/// A `prometheus` process, killed on drop.
struct Prometheus {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_prometheus(target_port: u16, push_url: &str, tenant: &str, token: &str) -> Prometheus {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        r#"
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: rooms
    static_configs:
      - targets: ["127.0.0.1:{target_port}"]
remote_write:
  - url: "{push_url}"
    basic_auth:
      username: "{tenant}"
      password: "{token}"
    queue_config:
      batch_send_deadline: 1s
      min_backoff: 100ms
      retry_on_http_429: true
"#
    );
    let config_path = dir.path().join("prometheus.yml");
    std::fs::write(&config_path, config).unwrap();
    let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
    let child = Command::new(prometheus_binary())
        .arg(format!("--config.file={}", config_path.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{}", free_port()))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("cannot start prometheus");
    Prometheus { child, _dir: dir }
}

fn log_of(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default()
}

#[tokio::test]
async fn prometheus_remote_writes_what_it_scraped_for_its_own_tenant_only() {
    let server = TestServer::start().await;
    let target = serve_target().await;
    let prometheus = start_prometheus(
        target,
        &format!("{}/api/v1/push", server.api.base),
        "prom-a",
        &token_for("prom-a"),
    );
    let a = api_for(&server, "prom-a");
    let instance = format!("127.0.0.1:{target}");

    // Wait until a few scrapes have arrived: every stored sample must be
    // exactly what the target exposes.
    let deadline = Instant::now() + Duration::from_secs(60);
    let temperatures = loop {
        let series = stored(&a, "room_temperature_celsius").await;
        let points = series.as_array().map_or(0, |s| {
            s.iter()
                .map(|s| s["points"].as_array().unwrap().len())
                .min()
                .unwrap_or(0)
        });
        if series.as_array().is_some_and(|s| s.len() == 2) && points >= 3 {
            break series;
        }
        assert!(
            Instant::now() < deadline,
            "prometheus wrote no samples within 60 s; its log:\n{}",
            log_of(prometheus._dir.path())
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let expected_values = |series: &Value, room: &str, value: f64| {
        let series = series
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["dimensions"]["room"] == room)
            .unwrap_or_else(|| panic!("no series for room {room}: {series}"));
        assert_eq!(
            series["dimensions"],
            json!({"instance": instance, "job": "rooms", "room": room})
        );
        let points = series["points"].as_array().unwrap();
        assert!(points.iter().all(|p| p[1] == value), "{series}");
        // Samples keep the scrape's timestamps: a second apart, increasing.
        let times: Vec<i64> = points.iter().map(|p| p[0].as_i64().unwrap()).collect();
        assert!(times.windows(2).all(|w| w[0] < w[1]), "{times:?}");
    };
    expected_values(&temperatures, "kitchen", 21.5);
    expected_values(&temperatures, "cellar", 12.25);

    let jobs = stored(&a, "jobs_done_total").await;
    let jobs = &jobs.as_array().unwrap()[0];
    assert_eq!(
        jobs["dimensions"],
        json!({"instance": instance, "job": "rooms", "queue": "high-prio"})
    );
    assert!(
        jobs["points"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p[1] == 1027.0)
    );
    // Prometheus' own series about the scrape arrive the same way.
    let up = stored(&a, "up").await;
    assert!(
        up[0]["points"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p[1] == 1.0),
        "{up}"
    );

    let b = api_for(&server, "prom-b");
    assert_eq!(b.get("/api/v1/metrics").await.ok()["metrics"], json!([]));
    assert_eq!(stored(&b, "room_temperature_celsius").await, json!([]));
    drop(prometheus);
    server.stop().await;
}

#[tokio::test]
async fn broken_remote_write_bodies_are_final_4xx_answers() {
    let server = TestServer::start().await;
    let a = api_for(&server, "prom-bad");
    let push = |body: &'static [u8], encoding: Option<&'static str>| {
        let mut request = a
            .http
            .post(a.url("/api/v1/push"))
            .header("content-type", "application/x-protobuf")
            .body(body);
        if let Some(encoding) = encoding {
            request = request.header("content-encoding", encoding);
        }
        a.send(request)
    };
    push(b"\xff\xff\xff\xff\xff\xff", Some("snappy"))
        .await
        .assert_error(400, "invalid_snappy");
    // A snappy block that claims to decompress to 100 MB: refused from
    // its header, before anything is allocated.
    push(b"\x80\xc2\xd7\x2f\x00", Some("snappy"))
        .await
        .assert_error(413, "body_too_large");
    // A valid snappy block ("\x02\x04\x08\x01": 2 bytes, a literal) that
    // is not a WriteRequest: a field number 0 is invalid protobuf.
    push(b"\x02\x04\x00\x01", Some("SNAPPY"))
        .await
        .assert_error(400, "invalid_protobuf");
    assert_eq!(push(b"", None).await.status, 204);
    // Snappy is the remote write endpoint's own encoding, no other's.
    let reply = a
        .send(
            a.http
                .post(a.url("/api/v1/write"))
                .header("content-encoding", "snappy")
                .body("{}"),
        )
        .await;
    reply.assert_error(415, "unsupported_content_encoding");
    assert_eq!(a.get("/api/v1/metrics").await.ok()["metrics"], json!([]));
    server.stop().await;
}

fn label(name: &[u8], value: &[u8]) -> prompb::Label {
    prompb::Label {
        name: bytes::Bytes::copy_from_slice(name),
        value: bytes::Bytes::copy_from_slice(value),
    }
}

fn series(labels: Vec<prompb::Label>, samples: &[(f64, i64)]) -> prompb::TimeSeries {
    prompb::TimeSeries {
        labels,
        samples: samples
            .iter()
            .map(|&(value, timestamp)| prompb::Sample { value, timestamp })
            .collect(),
        ..Default::default()
    }
}

#[tokio::test]
async fn bad_series_are_rejected_by_index_and_the_rest_of_the_batch_is_stored() {
    use prost::Message;
    let server = TestServer::start().await;
    let a = api_for(&server, "prom-mixed");
    let now = crate::common::now_ms();
    let request = prompb::WriteRequest {
        timeseries: vec![
            series(
                vec![label(b"__name__", b"good"), label(b"job", b"x")],
                &[(1.0, now - 2_000), (2.0, now - 1_000)],
            ),
            series(
                vec![label(b"__name__", b"bad_utf8"), label(b"job", b"\xff\xfe")],
                &[(1.0, now)],
            ),
            series(
                vec![
                    label(b"__name__", b"dup"),
                    label(b"job", b"a"),
                    label(b"job", b"b"),
                ],
                &[(1.0, now)],
            ),
            // Ten years ago: outside the timestamp window.
            series(
                vec![label(b"__name__", b"ancient")],
                &[(1.0, now - 10 * 365 * 86_400_000)],
            ),
            // A staleness marker is dropped, neither stored nor rejected.
            series(
                vec![label(b"__name__", b"good"), label(b"job", b"stale")],
                &[(f64::from_bits(0x7ff0_0000_0000_0002), now)],
            ),
        ],
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
                .header("content-type", "application/x-protobuf")
                .header("x-prometheus-remote-write-version", "0.1.0")
                .body(body),
        )
        .await;
    reply.assert_error(400, "partial_write");
    let error = &reply.body["error"];
    assert_eq!(
        (error["accepted"].clone(), error["rejected"].clone()),
        (json!(2), json!(3))
    );
    let rejected: Vec<(i64, &str)> = error["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["series"].as_i64().unwrap(), e["code"].as_str().unwrap()))
        .collect();
    assert_eq!(
        rejected[..2],
        [(1, "invalid_utf8"), (2, "duplicate_dimension")]
    );
    assert_eq!(rejected[2].0, 3, "{rejected:?}");
    assert_eq!(
        stored(&a, "good").await,
        json!([{"dimensions": {"job": "x"}, "points": [[now - 2_000, 1.0], [now - 1_000, 2.0]]}])
    );
    server.stop().await;
}
