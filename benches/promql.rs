//! PromQL query latency side by side (issue 15): one data set, written by
//! Prometheus remote write into Luminate, VictoriaMetrics and Prometheus,
//! then two dashboard queries over 1 h at a 1 m step, each answered
//! `--runs` times by every server in a rotating order; prints the medians
//! and checks Luminate's answers against Prometheus'.
//!
//! ```text
//! scripts/bench-promql target/release/luminate      # starts all three
//! cargo bench --bench promql -- --luminate URL --token JWT \
//!     --victoria URL --prometheus URL
//! ```
//!
//! The data set: `--series` series with `--points` points in all, half of
//! them `http_requests_total{endpoint, instance}` counters and half the
//! `http_request_duration_seconds_bucket{endpoint, instance, le}` series of
//! histograms with ten buckets; 20 endpoints. Each series has its points a
//! minute apart (a 1 m scrape interval) and starts at one of 51 minutes of
//! the hour, so every step of the query sees about a fifth of the series
//! (short-lived, high-cardinality series, as per-customer labels give).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use luminate_host::ingest::remote_write::prompb;
use prost::Message;
use serde_json::Value;

#[derive(Parser, Debug)]
#[command(about = "PromQL latency: Luminate, VictoriaMetrics and Prometheus on the same data")]
struct Args {
    /// Luminate's base URL (the Prometheus API is under /prometheus).
    #[arg(long)]
    luminate: String,
    /// A token of Luminate's tenant with the read and write scopes.
    #[arg(long)]
    token: String,
    /// VictoriaMetrics' base URL.
    #[arg(long)]
    victoria: String,
    /// Prometheus' base URL (started with --web.enable-remote-write-receiver).
    #[arg(long)]
    prometheus: String,
    /// Unique series in the data set.
    #[arg(long, default_value_t = 100_000)]
    series: usize,
    /// Points in the data set.
    #[arg(long, default_value_t = 1_000_000)]
    points: usize,
    /// How often each server answers each query.
    #[arg(long, default_value_t = 15)]
    runs: usize,
    /// Concurrent write requests while loading.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// cargo bench passes --bench; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

const ENDPOINTS: usize = 20;
const LE: [&str; 10] = [
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf",
];
const STEP_MS: i64 = 60_000;
const SPAN_MS: i64 = 3_600_000;
/// Minutes a series may start at after the hour's beginning.
const START_MINUTES: usize = 51;
/// Series per remote-write request (each with all its samples).
const SERIES_PER_REQUEST: usize = 100;

const QUERIES: [(&str, &str); 2] = [
    (
        "sum by rate",
        "sum by (endpoint) (rate(http_requests_total[5m]))",
    ),
    (
        "histogram_quantile",
        "histogram_quantile(0.95, sum by (le, endpoint) (rate(http_request_duration_seconds_bucket[5m])))",
    ),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum System {
    Luminate,
    VictoriaMetrics,
    Prometheus,
}

const SYSTEMS: [System; 3] = [
    System::Luminate,
    System::VictoriaMetrics,
    System::Prometheus,
];

struct Target {
    system: System,
    write_url: String,
    query_url: String,
    auth: Option<String>,
}

fn targets(args: &Args) -> Vec<Target> {
    let base = |url: &str| url.trim_end_matches('/').to_owned();
    SYSTEMS
        .iter()
        .map(|&system| {
            let (write_url, query_url, auth) = match system {
                System::Luminate => (
                    format!("{}/api/v1/push", base(&args.luminate)),
                    format!("{}/prometheus/api/v1/query_range", base(&args.luminate)),
                    Some(format!("Bearer {}", args.token)),
                ),
                System::VictoriaMetrics => (
                    format!("{}/api/v1/write", base(&args.victoria)),
                    // nocache: every run computes, as Luminate's and Prometheus' do.
                    format!("{}/api/v1/query_range?nocache=1", base(&args.victoria)),
                    None,
                ),
                System::Prometheus => (
                    format!("{}/api/v1/write", base(&args.prometheus)),
                    format!("{}/api/v1/query_range", base(&args.prometheus)),
                    None,
                ),
            };
            Target {
                system,
                write_url,
                query_url,
                auth,
            }
        })
        .collect()
}

/// One series of the data set: its labels and its samples' values.
fn series(
    index: usize,
    half: usize,
    points_per_series: usize,
) -> (Vec<(&'static str, String)>, Vec<f64>) {
    if index < half {
        let labels = vec![
            ("__name__", "http_requests_total".to_owned()),
            ("endpoint", format!("/api/e{}", index % ENDPOINTS)),
            ("instance", format!("i{index:06}")),
        ];
        let start = (index % 1000) as f64;
        let increment = 1.0 + (index % 7) as f64;
        let values = (0..points_per_series)
            .map(|k| start + k as f64 * increment)
            .collect();
        (labels, values)
    } else {
        let bucket = index - half;
        let histogram = bucket / LE.len();
        let le = bucket % LE.len();
        let labels = vec![
            (
                "__name__",
                "http_request_duration_seconds_bucket".to_owned(),
            ),
            ("endpoint", format!("/api/e{}", histogram % ENDPOINTS)),
            ("instance", format!("h{histogram:06}")),
            ("le", LE[le].to_owned()),
        ];
        // Cumulative over `le` and over time: observations per minute × the
        // share of them at or below this bound.
        let per_minute = 10 + (histogram % 5) as u64;
        let share = [1u64, 2, 4, 8, 12, 15, 17, 18, 19, 20][le];
        let values = (0..points_per_series)
            .map(|k| (k as u64 * per_minute * share / 20) as f64)
            .collect();
        (labels, values)
    }
}

/// The first sample's time of the series of `group` (a counter, or all
/// the buckets of one histogram).
fn first_sample_ms(group: usize, hour_start_ms: i64) -> i64 {
    hour_start_ms + ((group * 7) % START_MINUTES) as i64 * STEP_MS
}

fn request_bodies(args: &Args, hour_start_ms: i64) -> Vec<Vec<u8>> {
    let points_per_series = (args.points / args.series).max(1);
    let half = args.series / 2;
    let mut bodies = Vec::new();
    let mut timeseries = Vec::with_capacity(SERIES_PER_REQUEST);
    for index in 0..args.series {
        let (labels, values) = series(index, half, points_per_series);
        let group = if index < half {
            index
        } else {
            (index - half) / LE.len()
        };
        let first = first_sample_ms(group, hour_start_ms);
        timeseries.push(prompb::TimeSeries {
            labels: labels
                .into_iter()
                .map(|(name, value)| prompb::Label {
                    name: name.as_bytes().to_vec().into(),
                    value: value.into_bytes().into(),
                })
                .collect(),
            samples: values
                .into_iter()
                .enumerate()
                .map(|(k, value)| prompb::Sample {
                    value,
                    timestamp: first + k as i64 * STEP_MS,
                })
                .collect(),
            ..Default::default()
        });
        if timeseries.len() == SERIES_PER_REQUEST || index + 1 == args.series {
            let request = prompb::WriteRequest {
                timeseries: std::mem::take(&mut timeseries),
                ..Default::default()
            };
            let protobuf = request.encode_to_vec();
            bodies.push(
                snap::raw::Encoder::new()
                    .compress_vec(&protobuf)
                    .expect("snappy compresses any input"),
            );
        }
    }
    bodies
}

async fn load(
    client: &reqwest::Client,
    target: &Target,
    bodies: Arc<Vec<Vec<u8>>>,
    connections: usize,
) -> Duration {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (client, bodies, next) = (client.clone(), bodies.clone(), next.clone());
        let (url, auth) = (target.write_url.clone(), target.auth.clone());
        tasks.push(tokio::spawn(async move {
            while let Some(body) = bodies.get(next.fetch_add(1, Ordering::Relaxed)) {
                let mut request = client
                    .post(&url)
                    .header("content-type", "application/x-protobuf")
                    .header("content-encoding", "snappy")
                    .header("x-prometheus-remote-write-version", "0.1.0")
                    .body(body.clone());
                if let Some(auth) = &auth {
                    request = request.header("authorization", auth);
                }
                let response = request.send().await.expect("write failed");
                let status = response.status();
                let text = response.text().await.unwrap_or_default();
                assert!(status.is_success(), "{url} answered {status}: {text}");
            }
        }));
    }
    for task in tasks {
        task.await.expect("writer panicked");
    }
    started.elapsed()
}

/// One answer: its series, each as its labels and (time, value) pairs.
type Matrix = BTreeMap<String, Vec<(f64, f64)>>;

async fn query(
    client: &reqwest::Client,
    target: &Target,
    promql: &str,
    start_ms: i64,
    end_ms: i64,
) -> (Duration, Matrix) {
    let params = [
        ("query", promql.to_owned()),
        ("start", format!("{}", start_ms / 1000)),
        ("end", format!("{}", end_ms / 1000)),
        ("step", format!("{}", STEP_MS / 1000)),
    ];
    let mut request = client.post(&target.query_url).form(&params);
    if let Some(auth) = &target.auth {
        request = request.header("authorization", auth);
    }
    let started = Instant::now();
    let response = request.send().await.expect("query failed");
    let status = response.status();
    let body = response.bytes().await.expect("query answer");
    let elapsed = started.elapsed();
    let answer: Value = serde_json::from_slice(&body).expect("query answer is JSON");
    assert!(
        status.is_success() && answer["status"] == "success",
        "{:?} answered {status}: {answer}",
        target.system
    );
    (elapsed, matrix(&answer))
}

fn matrix(answer: &Value) -> Matrix {
    let mut out = Matrix::new();
    for series in answer["data"]["result"].as_array().into_iter().flatten() {
        let labels = series["metric"].to_string();
        let values = series["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|pair| {
                let time = pair[0].as_f64()?;
                let value = pair[1].as_str()?.parse::<f64>().ok()?;
                Some((time, value))
            })
            .collect();
        out.insert(labels, values);
    }
    out
}

/// Where Luminate's answer differs from Prometheus' (relative 1e-9), if anywhere.
fn difference(luminate: &Matrix, prometheus: &Matrix) -> Option<String> {
    if luminate.len() != prometheus.len() {
        return Some(format!(
            "{} series against Prometheus' {}",
            luminate.len(),
            prometheus.len()
        ));
    }
    for ((labels, ours), (their_labels, theirs)) in luminate.iter().zip(prometheus) {
        if labels != their_labels {
            return Some(format!("series {labels} against {their_labels}"));
        }
        if ours.len() != theirs.len() {
            return Some(format!(
                "{labels}: {} points against {}",
                ours.len(),
                theirs.len()
            ));
        }
        for (a, b) in ours.iter().zip(theirs) {
            let close = (a.1 - b.1).abs() <= 1e-9 * a.1.abs().max(b.1.abs()).max(1.0)
                || (a.1.is_nan() && b.1.is_nan());
            if a.0 != b.0 || !close {
                return Some(format!("{labels} at {}: {} against {}", a.0, a.1, b.1));
            }
        }
    }
    None
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    assert!(
        args.series >= 2 * LE.len() && args.runs > 0,
        "too small a data set"
    );
    assert!(
        args.points / args.series <= SPAN_MS as usize / STEP_MS as usize - START_MINUTES + 1,
        "at most 10 points per series fit the hour"
    );
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(600))
        .build()
        .expect("HTTP client");
    let targets = targets(&args);
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64;
    // The hour ends two minutes ago, on a minute: every server has the
    // whole of it (VictoriaMetrics hides its last 30 s by default).
    let end_ms = (now_ms - 2 * STEP_MS) / STEP_MS * STEP_MS;
    let hour_start_ms = end_ms - SPAN_MS;
    let bodies = Arc::new(request_bodies(&args, hour_start_ms));
    println!(
        "data set: {} series, {} points each, {} remote-write requests",
        args.series,
        (args.points / args.series).max(1),
        bodies.len()
    );
    for target in &targets {
        let took = load(&client, target, bodies.clone(), args.connections).await;
        println!("loaded {:?} in {:.1} s", target.system, took.as_secs_f64());
    }
    // VictoriaMetrics makes recent rows searchable on its own schedule.
    client
        .get(format!(
            "{}/internal/force_flush",
            args.victoria.trim_end_matches('/')
        ))
        .send()
        .await
        .expect("VictoriaMetrics force_flush");

    println!("load average before the queries: {}", load_average());
    let mut times: BTreeMap<(usize, System), Vec<Duration>> = BTreeMap::new();
    let mut answers: BTreeMap<(usize, System), Matrix> = BTreeMap::new();
    for run in 0..args.runs {
        for (q, (_, promql)) in QUERIES.iter().enumerate() {
            for i in 0..targets.len() {
                let target = &targets[(i + run) % targets.len()];
                let (took, answer) = query(&client, target, promql, hour_start_ms, end_ms).await;
                times.entry((q, target.system)).or_default().push(took);
                answers.insert((q, target.system), answer);
            }
        }
    }
    println!("load average after the queries: {}", load_average());

    for (q, (name, promql)) in QUERIES.iter().enumerate() {
        println!("\n{name}: {promql}");
        let medians: BTreeMap<System, Duration> = SYSTEMS
            .iter()
            .map(|&s| (s, median(times[&(q, s)].clone())))
            .collect();
        for system in SYSTEMS {
            let answer = &answers[&(q, system)];
            let points: usize = answer.values().map(Vec::len).sum();
            println!(
                "  {:<16} median {:>10}  ({} series, {} points)",
                format!("{system:?}"),
                ms(medians[&system]),
                answer.len(),
                points
            );
        }
        let ratio = medians[&System::Luminate].as_secs_f64()
            / medians[&System::VictoriaMetrics].as_secs_f64();
        println!("  Luminate / VictoriaMetrics: {ratio:.2}× the time");
        match difference(
            &answers[&(q, System::Luminate)],
            &answers[&(q, System::Prometheus)],
        ) {
            None => println!("  Luminate's answer equals Prometheus'"),
            Some(d) => println!("  Luminate's answer DIFFERS from Prometheus': {d}"),
        }
    }
}
