//! The agents' protocols under the same attack as `bodies`: bodies at the
//! size limit made of the elements that cost most once decoded (empty
//! protobuf messages, empty JSON objects, `=` pairs on one line), sent
//! four at a time as remote write, OTLP protobuf, OTLP JSON and Influx
//! line protocol. Each is measured before it is decoded and refused, so
//! the server's peak memory stays near what the bodies themselves take.

use std::time::{Duration, Instant};

use crate::support::{Hostile, end_body_attack};

const ATTACK_TIME: Duration = Duration::from_secs(6);
const ATTACKERS: usize = 4;
/// Just under the default 16 MiB body limit.
const DECODED_LEN: usize = 16_000_000;

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

/// Field `tag` holding `inner` as a length-delimited message.
fn wrap(tag: u8, inner: &[u8]) -> Vec<u8> {
    let mut out = vec![tag << 3 | 2];
    prost::encoding::encode_varint(inner.len() as u64, &mut out);
    out.extend_from_slice(inner);
    out
}

/// A `WriteRequest` of eight million empty time series, snappy-compressed.
fn remote_write_of_empty_series() -> Vec<u8> {
    let protobuf = [0x0a, 0x00].repeat(DECODED_LEN / 2);
    snap::raw::Encoder::new()
        .compress_vec(&protobuf)
        .expect("snappy")
}

/// One OTLP gauge point with some eight million empty attributes, gzipped.
fn otlp_point_of_empty_attributes() -> Vec<u8> {
    let attributes = [0x3a, 0x00].repeat(DECODED_LEN / 2 - 16);
    gzip(&wrap(
        1,
        &wrap(2, &wrap(2, &wrap(5, &wrap(1, &attributes)))),
    ))
}

/// OTLP/JSON with five million empty resources, gzipped.
fn otlp_json_of_empty_resources() -> Vec<u8> {
    let resources = vec!["{}"; DECODED_LEN / 3 - 10].join(",");
    gzip(format!(r#"{{"resourceMetrics":[{resources}]}}"#).as_bytes())
}

/// One line with four million tags, then a good line, gzipped.
fn influx_line_of_many_tags() -> Vec<u8> {
    let tags = ",a=b".repeat(DECODED_LEN / 4 - 10);
    gzip(format!("m{tags} v=1\nok v=2\n").as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_bodies_that_decode_to_gigabytes_are_refused_before_decoding() {
    let mut hostile = Hostile::spawn(&[]).await;
    let bodies = [
        (
            "/api/v1/push",
            remote_write_of_empty_series(),
            "snappy",
            "application/x-protobuf",
        ),
        (
            "/v1/metrics",
            otlp_point_of_empty_attributes(),
            "gzip",
            "application/x-protobuf",
        ),
        (
            "/v1/metrics",
            otlp_json_of_empty_resources(),
            "gzip",
            "application/json",
        ),
        (
            "/api/v2/write",
            influx_line_of_many_tags(),
            "gzip",
            "text/plain",
        ),
    ];
    for (_, body, _, _) in &bodies {
        assert!(body.len() < 1 << 20, "{} bytes on the wire", body.len());
    }

    let quiet = hostile.start_quiet_load();
    let deadline = Instant::now() + ATTACK_TIME;
    let mut tasks = Vec::new();
    for worker in 0..ATTACKERS {
        let api = hostile.api_for("attacker", &["read", "write"], Some("unlimited"));
        let bodies = bodies.clone();
        tasks.push(tokio::spawn(async move {
            let mut sent = 0usize;
            while Instant::now() < deadline {
                let (path, body, encoding, content_type) = &bodies[(worker + sent) % bodies.len()];
                let reply = api
                    .send(
                        api.http
                            .post(api.url(path))
                            .header("content-encoding", *encoding)
                            .header("content-type", *content_type)
                            .body(body.clone()),
                    )
                    .await;
                if *path == "/api/v2/write" {
                    // The long line alone is refused; the next is stored.
                    assert_eq!(reply.status.as_u16(), 400, "{path}: {}", reply.body);
                    assert_eq!(reply.body["error"]["code"], "partial_write");
                    assert_eq!(reply.body["error"]["accepted"], 1, "{}", reply.body);
                    assert_eq!(reply.body["error"]["errors"][0]["code"], "line_too_large");
                } else {
                    assert_eq!(reply.status.as_u16(), 413, "{path}: {}", reply.body);
                    assert_eq!(
                        reply.body["error"]["code"], "decoded_too_large",
                        "{path}: {}",
                        reply.body
                    );
                }
                sent += 1;
            }
            sent
        }));
    }
    end_body_attack(tasks, quiet, &mut hostile).await;
    // Four 16 MB bodies in flight, decompressed, and their scans: not the
    // gigabyte each would take decoded.
    hostile.assert_peak_rss_growth_below(384 << 20);
}
