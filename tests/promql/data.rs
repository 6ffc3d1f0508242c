//! The samples both servers receive: counters (one with a reset),
//! gauges, a classic histogram and series that stop early, every 15 s
//! for an hour that ends a few minutes before the test starts.

use luminate_host::ingest::remote_write::prompb::{Label, Sample, TimeSeries, WriteRequest};
use prost::Message;

pub const INTERVAL_MS: i64 = 15_000;
pub const SAMPLES: i64 = 240;

/// The first sample's time: a minute boundary an hour and five minutes
/// ago, so the data is recent for both servers' admission windows.
pub fn first_sample_ms() -> i64 {
    let now = crate::common::now_ms();
    now - now.rem_euclid(60_000) - 65 * 60_000
}

/// A deterministic pseudo-random stream (an LCG): no dependency, the same
/// data every run.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) as f64 / (1u64 << 31) as f64
    }
}

fn series(labels: &[(&str, &str)], values: impl IntoIterator<Item = (i64, f64)>) -> TimeSeries {
    let mut labels: Vec<Label> = labels
        .iter()
        .map(|(n, v)| Label {
            name: bytes::Bytes::copy_from_slice(n.as_bytes()),
            value: bytes::Bytes::copy_from_slice(v.as_bytes()),
        })
        .collect();
    labels.sort_by(|a, b| a.name.cmp(&b.name));
    TimeSeries {
        labels,
        samples: values
            .into_iter()
            .map(|(timestamp, value)| Sample { value, timestamp })
            .collect(),
        ..Default::default()
    }
}

pub fn write_request(t0: i64) -> WriteRequest {
    let mut noise = Noise(42);
    let times = move |count: i64| (0..count).map(move |i| t0 + i * INTERVAL_MS);
    let mut out = Vec::new();
    for job in ["api", "web"] {
        for instance in ["i1", "i2"] {
            for method in ["GET", "POST"] {
                for status in ["200", "500"] {
                    let mut total = 0.0;
                    let reset =
                        job == "web" && instance == "i2" && method == "GET" && status == "200";
                    let values: Vec<(i64, f64)> = times(SAMPLES)
                        .enumerate()
                        .map(|(i, t)| {
                            total += (noise.next() * 10.0).floor();
                            if reset && i == 120 {
                                total = 3.0;
                            }
                            (t, total)
                        })
                        .collect();
                    out.push(series(
                        &[
                            ("__name__", "http_requests_total"),
                            ("job", job),
                            ("instance", instance),
                            ("method", method),
                            ("status", status),
                        ],
                        values,
                    ));
                }
            }
        }
        let mut count = 0.0;
        let mut sum = 0.0;
        let mut buckets = [0.0f64; 4];
        let mut bucket_values: Vec<Vec<(i64, f64)>> = vec![Vec::new(); 4];
        let mut sums = Vec::new();
        let mut counts = Vec::new();
        for t in times(SAMPLES) {
            for _ in 0..5 {
                let observation = noise.next() * 1.2;
                count += 1.0;
                sum += observation;
                for (i, bound) in [0.1, 0.5, 1.0, f64::INFINITY].iter().enumerate() {
                    if observation <= *bound {
                        buckets[i] += 1.0;
                    }
                }
            }
            for i in 0..4 {
                bucket_values[i].push((t, buckets[i]));
            }
            sums.push((t, sum));
            counts.push((t, count));
        }
        for (i, le) in ["0.1", "0.5", "1", "+Inf"].iter().enumerate() {
            out.push(series(
                &[
                    ("__name__", "request_duration_seconds_bucket"),
                    ("job", job),
                    ("le", le),
                ],
                bucket_values[i].clone(),
            ));
        }
        out.push(series(
            &[("__name__", "request_duration_seconds_sum"), ("job", job)],
            sums,
        ));
        out.push(series(
            &[("__name__", "request_duration_seconds_count"), ("job", job)],
            counts,
        ));
    }
    for (instance, zone) in [("i1", "a"), ("i2", "a"), ("i3", "b"), ("i4", "b")] {
        let base = 40.0 + noise.next() * 20.0;
        let values: Vec<(i64, f64)> = times(SAMPLES)
            .enumerate()
            .map(|(i, t)| (t, base + (i as f64 / 10.0).sin() * 5.0 + noise.next()))
            .collect();
        out.push(series(
            &[
                ("__name__", "node_temperature_celsius"),
                ("instance", instance),
                ("zone", zone),
            ],
            values,
        ));
        let up = if instance == "i4" { 0.0 } else { 1.0 };
        out.push(series(
            &[("__name__", "up"), ("job", "node"), ("instance", instance)],
            times(SAMPLES).map(|t| (t, up)),
        ));
        let memory = 2.0e9 + noise.next() * 1.0e9;
        out.push(series(
            &[("__name__", "memory_bytes"), ("instance", instance)],
            times(SAMPLES).map(|t| (t, memory)),
        ));
    }
    // A series that stops after 40 minutes: lookback and absent().
    out.push(series(
        &[("__name__", "batch_last_run"), ("job", "batch")],
        times(160).map(|t| (t, (t / 1000) as f64)),
    ));
    WriteRequest {
        timeseries: out,
        ..Default::default()
    }
}

/// The request as a remote-write body.
pub fn remote_write_body(t0: i64) -> Vec<u8> {
    snap::raw::Encoder::new()
        .compress_vec(&write_request(t0).encode_to_vec())
        .expect("snappy")
}
