//! The estimate against decoding's real peak heap, measured by a counting
//! allocator, for the bodies an attacker would send (many empty messages,
//! packed varints, deep nesting, tiny JSON values) and for realistic ones.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, metric::Data, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;

use super::*;
use crate::ingest::otlp::shape::EXPORT_REQUEST;
use crate::ingest::remote_write::prompb::{Label, Sample, TimeSeries, WriteRequest};
use crate::ingest::remote_write::shape::WRITE_REQUEST;

/// Counts the live heap bytes of the current thread and their peak. Only
/// the measured decoding runs on the measuring thread while it measures.
struct Counting;

thread_local! {
    static LIVE: Cell<i64> = const { Cell::new(0) };
    static PEAK: Cell<i64> = const { Cell::new(0) };
}

fn change(bytes: i64) {
    let _ = LIVE.try_with(|live| {
        let now = live.get() + bytes;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

fn as_i64(size: usize) -> i64 {
    i64::try_from(size).unwrap_or(i64::MAX)
}

// SAFETY: every call is forwarded to `System` unchanged; the counters
// are const-initialised thread-locals without destructors, so touching
// them never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            change(as_i64(layout.size()));
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            change(as_i64(layout.size()));
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        change(-as_i64(layout.size()));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            // A moving realloc holds both blocks for a moment.
            change(as_i64(new_size));
            change(-as_i64(layout.size()));
        }
        new
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

/// The peak of heap bytes that `f` held at once on this thread, beyond
/// what was live when it started (what it returns is freed inside).
fn peak_of<T>(f: impl FnOnce() -> T) -> usize {
    let start = LIVE.with(Cell::get);
    PEAK.with(|peak| peak.set(start));
    drop(f());
    let peak = PEAK.with(Cell::get);
    usize::try_from(peak - start).unwrap_or(0)
}

/// What a real decode may allocate beyond the estimate: a growing `Vec`
/// holds its old and its new buffer while it moves (module docs).
const GROWTH: usize = 3;

#[track_caller]
fn assert_estimate_bounds_peak(what: &str, estimate: usize, peak: usize) {
    assert!(
        peak <= estimate * GROWTH,
        "{what}: decoding peaked at {peak} bytes; estimated {estimate} (× {GROWTH})"
    );
}

fn remote_write_peak(body: &[u8]) -> (usize, usize) {
    let estimate = protobuf(body, &WRITE_REQUEST, usize::MAX).expect("measurable");
    let bytes = Bytes::copy_from_slice(body);
    let peak = peak_of(|| WriteRequest::decode(bytes).expect("decodes"));
    (estimate, peak)
}

fn otlp_peak(body: &[u8]) -> (usize, usize) {
    let estimate = protobuf(body, &EXPORT_REQUEST, usize::MAX).expect("measurable");
    let peak = peak_of(|| ExportMetricsServiceRequest::decode(body).expect("decodes"));
    (estimate, peak)
}

fn otlp_json_peak(body: &[u8]) -> (usize, usize) {
    let estimate = json(body, usize::MAX).expect("measurable");
    let peak = peak_of(|| {
        serde_json::from_slice::<ExportMetricsServiceRequest>(body).expect("deserializes")
    });
    (estimate, peak)
}

/// `count` copies of field `tag` holding an empty message: two bytes each.
fn empty_messages(tag: u8, count: usize) -> Vec<u8> {
    [tag << 3 | 2, 0].repeat(count)
}

/// Field `tag` holding `inner` as a length-delimited message.
fn wrap(tag: u8, inner: &[u8]) -> Vec<u8> {
    let mut out = vec![tag << 3 | 2];
    prost::encoding::encode_varint(inner.len() as u64, &mut out);
    out.extend_from_slice(inner);
    out
}

fn realistic_write_request(series: usize) -> Vec<u8> {
    let label = |name: &str, value: String| Label {
        name: Bytes::copy_from_slice(name.as_bytes()),
        value: Bytes::from(value),
    };
    WriteRequest {
        timeseries: (0..series)
            .map(|i| TimeSeries {
                labels: vec![
                    label("__name__", "http_requests_total".into()),
                    label("instance", format!("host-{}:9100", i % 50)),
                    label("job", "api".into()),
                    label("method", "GET".into()),
                    label("path", format!("/v1/items/{i}")),
                    label("status", "200".into()),
                ],
                samples: vec![Sample {
                    value: i as f64,
                    timestamp: 1_700_000_000_000,
                }],
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
    .encode_to_vec()
}

fn attribute(key: &str, value: String) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value)),
        }),
        ..Default::default()
    }
}

fn realistic_export_request(points: usize) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![
                    attribute("service.name", "checkout".into()),
                    attribute("telemetry.sdk.language", "rust".into()),
                ],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: "http.server.active_requests".into(),
                    data: Some(Data::Gauge(Gauge {
                        data_points: (0..points)
                            .map(|i| NumberDataPoint {
                                attributes: vec![
                                    attribute("http.method", "GET".into()),
                                    attribute("http.route", format!("/v1/items/{i}")),
                                    attribute("host.name", format!("host-{}", i % 50)),
                                ],
                                time_unix_nano: 1_700_000_000_000_000_000,
                                value: Some(number_data_point::Value::AsDouble(i as f64)),
                                ..Default::default()
                            })
                            .collect(),
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

#[test]
fn remote_write_estimates_bound_decoding_for_empty_series_labels_and_deltas() {
    let empty_series = empty_messages(1, 200_000);
    let empty_labels = wrap(1, &empty_messages(1, 200_000));
    // A native histogram whose positive deltas are 200 000 one-byte varints.
    let deltas = wrap(1, &wrap(4, &wrap(12, &vec![2; 200_000])));
    for (what, body) in [
        ("empty series", empty_series),
        ("empty labels", empty_labels),
        ("packed deltas", deltas),
    ] {
        let (estimate, peak) = remote_write_peak(&body);
        assert_estimate_bounds_peak(what, estimate, peak);
        // Each is worth at least 8 bytes of memory per byte on the wire.
        assert!(estimate >= body.len() * 8, "{what}: {estimate}");
    }
}

#[test]
fn remote_write_estimate_of_a_realistic_request_is_close_to_its_decoding() {
    let body = realistic_write_request(10_000);
    let (estimate, peak) = remote_write_peak(&body);
    assert_estimate_bounds_peak("realistic", estimate, peak);
    assert!(
        estimate <= peak * 2,
        "estimated {estimate}, peaked at {peak}"
    );
    // The largest request the default limits allow fits the default budget.
    assert!(estimate < budget(16 << 20) / 4, "{estimate}");
}

#[test]
fn otlp_estimates_bound_decoding_for_empty_messages_and_attributes() {
    let empty_resources = empty_messages(1, 200_000);
    // One gauge point with 200 000 empty attributes.
    let empty_attributes = wrap(
        1,
        &wrap(2, &wrap(2, &wrap(5, &wrap(1, &empty_messages(7, 200_000))))),
    );
    // A resource attribute whose value is 40 arrays deep (80 messages,
    // within prost's recursion limit), each level holding
    // empty values beside the next.
    let mut nested = Vec::new();
    for _ in 0..40 {
        let mut array = empty_messages(1, 1_000);
        array.extend(wrap(1, &wrap(5, &nested)));
        nested = array;
    }
    let nested = wrap(1, &wrap(1, &wrap(1, &wrap(2, &wrap(5, &nested)))));
    // An exponential histogram point whose buckets are 200 000 varints.
    let buckets = wrap(
        1,
        &wrap(
            2,
            &wrap(
                2,
                &wrap(10, &wrap(1, &wrap(8, &wrap(2, &vec![1; 200_000])))),
            ),
        ),
    );
    for (what, body) in [
        ("empty resources", empty_resources),
        ("empty attributes", empty_attributes),
        ("nested arrays", nested),
        ("bucket varints", buckets),
    ] {
        let (estimate, peak) = otlp_peak(&body);
        assert_estimate_bounds_peak(what, estimate, peak);
        assert!(estimate >= body.len() * 8, "{what}: {estimate}");
    }
}

#[test]
fn otlp_estimate_of_a_realistic_request_is_close_to_its_decoding() {
    let body = realistic_export_request(10_000).encode_to_vec();
    let (estimate, peak) = otlp_peak(&body);
    assert_estimate_bounds_peak("realistic", estimate, peak);
    assert!(
        estimate <= peak * 2,
        "estimated {estimate}, peaked at {peak}"
    );
    assert!(estimate < budget(16 << 20) / 4, "{estimate}");
}

#[test]
fn otlp_json_estimates_bound_deserializing_tiny_values() {
    let empty_resources = format!(
        r#"{{"resourceMetrics":[{}]}}"#,
        vec!["{}"; 100_000].join(",")
    );
    let point = r#"{"asInt":"1","attributes":[{"key":"k","value":{"arrayValue":{"values":[{"intValue":"1"},{"intValue":"2"}]}}}]}"#;
    let points = format!(
        r#"{{"resourceMetrics":[{{"scopeMetrics":[{{"metrics":[{{"name":"m","gauge":{{"dataPoints":[{}]}}}}]}}]}}]}}"#,
        vec![point; 10_000].join(",")
    );
    let realistic = serde_json::to_string(&realistic_export_request(2_000)).expect("serializes");
    for (what, body) in [
        ("empty resources", empty_resources),
        ("small points", points),
        ("realistic", realistic),
    ] {
        let (estimate, peak) = otlp_json_peak(body.as_bytes());
        assert_estimate_bounds_peak(what, estimate, peak);
    }
}

#[test]
fn a_body_past_the_budget_is_refused_at_the_first_byte_over_it() {
    let body = empty_messages(1, 1_000_000);
    let error = protobuf(&body, &WRITE_REQUEST, 1 << 20).unwrap_err();
    assert_eq!(error, DecodedSizeError::OverBudget { max: 1 << 20 });
    assert!(
        error.to_string().contains("more than 1048576 bytes"),
        "{error}"
    );
    let json_body = format!("[{}]", vec!["{}"; 1_000_000].join(","));
    assert_eq!(
        json(json_body.as_bytes(), 1 << 20),
        Err(DecodedSizeError::OverBudget { max: 1 << 20 })
    );
}

#[test]
fn what_prost_refuses_the_walk_refuses_too() {
    // A field claiming more bytes than the body holds; a group; a
    // truncated varint; nesting past prost's limit.
    let mut too_deep = Vec::new();
    for _ in 0..(MAX_DEPTH + 1) {
        too_deep = wrap(5, &wrap(1, &too_deep));
    }
    let too_deep = wrap(1, &wrap(1, &wrap(1, &wrap(2, &too_deep))));
    for body in [
        vec![0x0a, 0x05, 0x0a],
        vec![0x0b, 0x0c],
        vec![0x08, 0xff],
        too_deep,
    ] {
        assert!(ExportMetricsServiceRequest::decode(body.as_slice()).is_err());
        assert!(
            matches!(
                protobuf(&body, &EXPORT_REQUEST, usize::MAX),
                Err(DecodedSizeError::Malformed(_))
            ),
            "{body:x?}"
        );
    }
}
