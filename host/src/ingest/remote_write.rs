//! Prometheus remote write 1.0 → metrics.
//!
//! A body is a snappy block (not the framed stream format) holding a
//! protobuf `WriteRequest` (types generated from `host/proto/prometheus`).
//! Each sample of each time series becomes one metric: `__name__` is the
//! name, the other labels the dimensions (names mapped by
//! [`names`](super::names)), and the sample keeps its timestamp (ms).
//!
//! NaN samples are dropped, not stored and not rejected: Prometheus sends
//! a staleness marker (a NaN with a special bit pattern) when a series
//! disappears, and a NaN cannot be aggregated; Luminate has no staleness
//! handling to feed it to. ±Inf is refused by validation like any other
//! non-finite value. Native histograms and exemplars are not stored: a
//! series that holds only histograms is one rejected item; exemplars are
//! ignored.

use prost::Message;

use super::decoded_size::{self, DecodedSizeError};
use super::dimension_set::DimensionSet;
use super::{Decoded, ItemError, names};
use crate::model::Metric;

/// The types of `host/proto/prometheus/*.proto`, generated in the build.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod prompb {
    include!(concat!(env!("OUT_DIR"), "/prometheus.rs"));
}

/// What one body may hold.
#[derive(Clone, Copy, Debug)]
pub struct RemoteWriteLimits {
    /// Samples per request (`api.max_metrics_per_request`).
    pub max_samples: usize,
    /// Labels per series besides `__name__` (`validation.max_dimensions`).
    pub max_dimensions: usize,
    /// The protobuf's size once decompressed (`api.max_body_bytes`),
    /// checked against the length the snappy block declares before
    /// anything is allocated.
    pub max_decoded_bytes: usize,
    /// The memory the decoded `WriteRequest` may take, measured on the
    /// protobuf before it is decoded ([`decoded_size`]).
    pub max_decoded_memory: usize,
}

/// Why a whole body was refused. Prometheus drops a batch answered with a
/// 4xx, so each of these is final for that batch.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RemoteWriteError {
    #[error(
        "the body is not a snappy block (remote write uses snappy's block format, not the framed one): {0}"
    )]
    Snappy(String),
    #[error("the body decompresses to {len} bytes; the limit is {max} (api.max_body_bytes)")]
    TooLarge { len: usize, max: usize },
    #[error("the body is not a protobuf WriteRequest: {0}")]
    Protobuf(String),
    #[error("{0}")]
    DecodedTooLarge(DecodedSizeError),
    #[error(
        "the request holds {count} samples; the limit is {max} per request (api.max_metrics_per_request)"
    )]
    TooManySamples { count: usize, max: usize },
}

/// Which fields of a `WriteRequest` allocate once decoded, for
/// [`decoded_size`]. Labels are `bytes` slices of the body: only the
/// `Label` structs count.
pub(crate) mod shape {
    use std::mem::size_of;

    use super::prompb::{
        BucketSpan, Exemplar, Histogram, Label, MetricMetadata, Sample, TimeSeries, WriteRequest,
    };
    use crate::ingest::decoded_size::{Field, ScalarWire, Shape};

    pub static WRITE_REQUEST: Shape = Shape {
        size: size_of::<WriteRequest>(),
        fields: &[
            (1, Field::Message(&TIME_SERIES)),
            (3, Field::Message(&METRIC_METADATA)),
        ],
    };

    static TIME_SERIES: Shape = Shape {
        size: size_of::<TimeSeries>(),
        fields: &[
            (1, Field::Message(&LABEL)),
            (2, Field::Message(&SAMPLE)),
            (3, Field::Message(&EXEMPLAR)),
            (4, Field::Message(&HISTOGRAM)),
        ],
    };

    static LABEL: Shape = Shape {
        size: size_of::<Label>(),
        fields: &[],
    };

    static SAMPLE: Shape = Shape {
        size: size_of::<Sample>(),
        fields: &[],
    };

    static EXEMPLAR: Shape = Shape {
        size: size_of::<Exemplar>(),
        fields: &[(1, Field::Message(&LABEL))],
    };

    const DELTAS: Field = Field::Scalars {
        element: 8,
        wire: ScalarWire::Varint,
    };
    const COUNTS: Field = Field::Scalars {
        element: 8,
        wire: ScalarWire::Fixed64,
    };

    static HISTOGRAM: Shape = Shape {
        size: size_of::<Histogram>(),
        fields: &[
            (8, Field::Message(&BUCKET_SPAN)),
            (9, DELTAS),
            (10, COUNTS),
            (11, Field::Message(&BUCKET_SPAN)),
            (12, DELTAS),
            (13, COUNTS),
        ],
    };

    static BUCKET_SPAN: Shape = Shape {
        size: size_of::<BucketSpan>(),
        fields: &[],
    };

    const TEXT: Field = Field::Text { element: 0 };

    static METRIC_METADATA: Shape = Shape {
        size: size_of::<MetricMetadata>(),
        fields: &[(2, TEXT), (4, TEXT), (5, TEXT)],
    };
}

/// The label that names the metric.
const NAME_LABEL: &str = "__name__";

/// Decodes a remote write body. Each item's origin is the index of its
/// time series in the request.
pub fn decode_remote_write(
    body: &[u8],
    limits: RemoteWriteLimits,
) -> Result<Decoded, RemoteWriteError> {
    let len =
        snap::raw::decompress_len(body).map_err(|e| RemoteWriteError::Snappy(e.to_string()))?;
    if len > limits.max_decoded_bytes {
        return Err(RemoteWriteError::TooLarge {
            len,
            max: limits.max_decoded_bytes,
        });
    }
    let protobuf = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| RemoteWriteError::Snappy(e.to_string()))?;
    decoded_size::protobuf(&protobuf, &shape::WRITE_REQUEST, limits.max_decoded_memory).map_err(
        |e| match e {
            DecodedSizeError::Malformed(why) => RemoteWriteError::Protobuf(why),
            over => RemoteWriteError::DecodedTooLarge(over),
        },
    )?;
    // Labels are `bytes` (see types.proto): from a `Bytes` buffer they are
    // slices of it, not copies.
    let request = prompb::WriteRequest::decode(bytes::Bytes::from(protobuf))
        .map_err(|e| RemoteWriteError::Protobuf(e.to_string()))?;
    let count: usize = request
        .timeseries
        .iter()
        .map(|series| series.samples.len().max(1))
        .sum();
    if count > limits.max_samples {
        return Err(RemoteWriteError::TooManySamples {
            count,
            max: limits.max_samples,
        });
    }
    let mut decoded = Decoded::default();
    decoded.items.reserve(count);
    decoded.origins.reserve(count);
    for (index, series) in request.timeseries.into_iter().enumerate() {
        let origin = u32::try_from(index).unwrap_or(u32::MAX);
        let labels = series_labels(&series.labels, limits.max_dimensions);
        if series.samples.is_empty() {
            decoded.push(Err(empty_series(&series)), origin);
            continue;
        }
        for sample in &series.samples {
            if sample.value.is_nan() {
                continue;
            }
            let item = labels.clone().map(|(name, dimensions)| Metric {
                name,
                value: sample.value,
                timestamp_ms: sample.timestamp,
                dimensions,
            });
            decoded.push(item, origin);
        }
    }
    Ok(decoded)
}

/// The metric name and dimensions of a series, or why it has none.
fn series_labels(
    labels: &[prompb::Label],
    max_dimensions: usize,
) -> Result<(String, crate::model::Dimensions), ItemError> {
    let mut name = None;
    let mut dimensions = DimensionSet::new(max_dimensions);
    for label in labels {
        let (Ok(label_name), Ok(value)) = (
            std::str::from_utf8(&label.name),
            std::str::from_utf8(&label.value),
        ) else {
            return Err((
                "invalid_utf8",
                "a label name or value of the series is not valid UTF-8".to_owned(),
            ));
        };
        if label_name == NAME_LABEL {
            if name.replace(value).is_some() {
                return Err((
                    "duplicate_dimension",
                    "label __name__ is given twice".to_owned(),
                ));
            }
        } else {
            dimensions.push(label_name, value);
        }
    }
    let name = name.ok_or_else(|| {
        (
            "missing_name",
            "the series has no __name__ label".to_owned(),
        )
    })?;
    Ok((names::metric_name(name).into_owned(), dimensions.finish()?))
}

fn empty_series(series: &prompb::TimeSeries) -> ItemError {
    if series.histograms.is_empty() {
        ("empty_series", "the series holds no samples".to_owned())
    } else {
        (
            "unsupported_histogram",
            "native histograms are not supported; send classic histograms (_bucket, _sum, _count)"
                .to_owned(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::prompb::{Histogram, Label, Sample, TimeSeries, WriteRequest};
    use super::*;
    use crate::ingest::summary::{ok, summary};

    const LIMITS: RemoteWriteLimits = RemoteWriteLimits {
        max_samples: 100,
        max_dimensions: 3,
        max_decoded_bytes: 1 << 20,
        max_decoded_memory: 4 << 20,
    };

    fn label(name: &str, value: &str) -> Label {
        Label {
            name: bytes::Bytes::copy_from_slice(name.as_bytes()),
            value: bytes::Bytes::copy_from_slice(value.as_bytes()),
        }
    }

    fn series(labels: &[(&str, &str)], samples: &[(f64, i64)]) -> TimeSeries {
        TimeSeries {
            labels: labels.iter().map(|(n, v)| label(n, v)).collect(),
            samples: samples
                .iter()
                .map(|&(value, timestamp)| Sample { value, timestamp })
                .collect(),
            ..Default::default()
        }
    }

    fn body(timeseries: Vec<TimeSeries>) -> Vec<u8> {
        let request = WriteRequest {
            timeseries,
            metadata: vec![],
        };
        snap::raw::Encoder::new()
            .compress_vec(&request.encode_to_vec())
            .unwrap()
    }

    /// Prometheus' staleness marker (`value.StaleNaN`).
    const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

    #[test]
    fn samples_become_metrics_with_their_labels_and_timestamps() {
        let d = decode_remote_write(
            &body(vec![
                series(
                    &[("__name__", "up"), ("job", "node"), ("instance", "a:9100")],
                    &[(1.0, 1_000), (0.0, 2_000)],
                ),
                series(
                    &[("__name__", "http.duration"), ("le", "+Inf")],
                    &[
                        (f64::from_bits(STALE_NAN), 3_000),
                        (f64::NAN, 4_000),
                        (5.5, 5_000),
                    ],
                ),
            ]),
            LIMITS,
        )
        .unwrap();
        assert_eq!(
            summary(&d),
            vec![
                (0, ok("up", 1.0, 1_000, "instance=a:9100,job=node")),
                (0, ok("up", 0.0, 2_000, "instance=a:9100,job=node")),
                (1, ok("http.duration", 5.5, 5_000, "le=+Inf")),
            ]
        );
    }

    #[test]
    fn series_that_cannot_be_metrics_are_items_of_their_own() {
        let histogram_only = TimeSeries {
            labels: vec![label("__name__", "h")],
            histograms: vec![Histogram::default()],
            ..Default::default()
        };
        let d = decode_remote_write(
            &body(vec![
                series(&[("job", "x")], &[(1.0, 1)]),
                series(&[("__name__", "a"), ("__name__", "b")], &[(1.0, 1)]),
                series(&[("__name__", "a"), ("k", "1"), ("k", "2")], &[(1.0, 1)]),
                series(
                    &[
                        ("__name__", "a"),
                        ("a", "1"),
                        ("b", "2"),
                        ("c", "3"),
                        ("d", "4"),
                    ],
                    &[(1.0, 1)],
                ),
                histogram_only,
                series(&[("__name__", "ok"), ("_private", "v")], &[(2.0, 7)]),
                TimeSeries {
                    labels: vec![
                        label("__name__", "bad"),
                        Label {
                            name: bytes::Bytes::from_static(b"k"),
                            value: bytes::Bytes::from_static(b"\xff"),
                        },
                    ],
                    ..series(&[], &[(1.0, 1)])
                },
            ]),
            LIMITS,
        )
        .unwrap();
        assert_eq!(
            summary(&d),
            vec![
                (0, Err("missing_name")),
                (1, Err("duplicate_dimension")),
                (2, Err("duplicate_dimension")),
                (3, Err("too_many_dimensions")),
                (4, Err("unsupported_histogram")),
                (5, ok("ok", 2.0, 7, "key_private=v")),
                (6, Err("invalid_utf8")),
            ]
        );
    }

    #[test]
    fn broken_bodies_are_refused_whole() {
        let err = |b: &[u8]| decode_remote_write(b, LIMITS).unwrap_err();
        assert!(matches!(
            err(b"\xff\xff\xff\xff\xff\xff"),
            RemoteWriteError::Snappy(_)
        ));
        // Snappy's framed format is not what remote write sends.
        let mut framed = snap::write::FrameEncoder::new(Vec::new());
        std::io::Write::write_all(&mut framed, b"hello").unwrap();
        let framed = framed.into_inner().unwrap();
        assert!(matches!(err(&framed), RemoteWriteError::Snappy(_)));
        let good = WriteRequest {
            timeseries: vec![series(&[("__name__", "a")], &[(1.0, 1)])],
            metadata: vec![],
        }
        .encode_to_vec();
        let truncated = snap::raw::Encoder::new()
            .compress_vec(&good[..good.len() - 3])
            .unwrap();
        assert!(matches!(err(&truncated), RemoteWriteError::Protobuf(_)));
    }

    #[test]
    fn the_declared_length_is_checked_before_decompressing() {
        // A snappy block starts with its decompressed length (a varint):
        // claim 100 MB with a few bytes.
        let mut bomb = Vec::new();
        let mut len = 100_000_000u64;
        while len >= 0x80 {
            bomb.push((len as u8) | 0x80);
            len >>= 7;
        }
        bomb.push(len as u8);
        bomb.extend_from_slice(b"\x00");
        assert_eq!(
            decode_remote_write(&bomb, LIMITS).unwrap_err(),
            RemoteWriteError::TooLarge {
                len: 100_000_000,
                max: 1 << 20
            }
        );
    }

    #[test]
    fn too_many_samples_are_refused_before_any_is_decoded() {
        let limits = RemoteWriteLimits {
            max_samples: 2,
            ..LIMITS
        };
        let three = body(vec![series(
            &[("__name__", "a")],
            &[(1.0, 1), (2.0, 2), (3.0, 3)],
        )]);
        assert_eq!(
            decode_remote_write(&three, limits).unwrap_err(),
            RemoteWriteError::TooManySamples { count: 3, max: 2 }
        );
    }
}
