//! End-to-end load generator: writes N metrics over M unique series with C
//! concurrent connections in batches of B, then replays a fixed set of
//! queries, and prints throughput, latency percentiles and the server's RSS.
//!
//! The data set and the queries are fixed (seeded), so runs compare; only
//! timestamps move with the clock, because the server accepts points within
//! [now - 7d, now + 1h].
//!
//! ```text
//! cargo build --release -p luminate-host --bin luminate
//! cargo bench --bench loadgen -- [--metrics 1000000] [--series 100000] \
//!     [--batch 1000] [--connections 8] [--url http://127.0.0.1:8080]
//! ```
//! Without `--url` it starts `<target>/release/luminate` on a temp dir
//! (embedded RocksDB) and reports its RSS.
//!
//! `--protocol` chooses the encoding of the same data set: `json` (the
//! JSON API), `remote-write` (Prometheus remote write 1.0: one time series
//! per sample, as Prometheus batches fresh samples, snappy), `otlp` (OTLP
//! protobuf, one gauge point per metric, grouped by series) or `influx`
//! (line protocol, ms precision). `--write-path` and `--ready-path` point
//! it at another server that speaks the protocol, e.g. VictoriaMetrics:
//!
//! ```text
//! cargo bench --bench loadgen -- --protocol remote-write --url http://127.0.0.1:8428 \
//!     --write-path /api/v1/write --ready-path /health --query-runs 0
//! ```
//!
//! `--plugins` first uploads the example `name-policy` and `lookup-enricher`
//! as the tenant's own plugins and binds them (a validator and an
//! enricher, as issue 4's ingest target has it), through the admin API.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::{Value, json};

include!(concat!(env!("OUT_DIR"), "/plugins.rs"));

#[derive(Parser, Debug, Clone)]
#[command(about = "Luminate end-to-end load generator")]
struct Args {
    /// Metrics to write.
    #[arg(long, default_value_t = 1_000_000)]
    metrics: usize,
    /// Unique series they spread over.
    #[arg(long, default_value_t = 100_000)]
    series: usize,
    /// Metrics per write request.
    #[arg(long, default_value_t = 1_000)]
    batch: usize,
    /// Concurrent connections (one writer task each).
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// How often each query of the fixed set is replayed.
    #[arg(long, default_value_t = 30)]
    query_runs: usize,
    /// Seed of the data set.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// gzip request bodies.
    #[arg(long)]
    gzip: bool,
    /// Target a running server instead of starting one.
    #[arg(long)]
    url: Option<String>,
    /// Bearer token to send (for servers with authentication).
    #[arg(long, env = "LUMINATE_TOKEN")]
    token: Option<String>,
    /// The server binary to start [default: <target>/release/luminate].
    #[arg(long)]
    binary: Option<PathBuf>,
    /// Extra arguments for the started server (repeatable).
    #[arg(long = "server-arg", allow_hyphen_values = true)]
    server_args: Vec<String>,
    /// Extra environment for the started server, KEY=VALUE (repeatable),
    /// e.g. LUMINATE_AUTH__ENABLED=false to measure without authentication.
    #[arg(long = "server-env", value_parser = parse_env_pair)]
    server_env: Vec<(String, String)>,
    /// Bind the example validator (`name-policy`) and enricher
    /// (`lookup-enricher`) to the tenant before writing.
    #[arg(long)]
    plugins: bool,
    /// The write protocol (the encoding of the same data set).
    #[arg(long, value_enum, default_value_t = Protocol::Json)]
    protocol: Protocol,
    /// The write endpoint [default: the protocol's path on Luminate].
    #[arg(long)]
    write_path: Option<String>,
    /// The readiness probe, answered 2xx when the server is ready.
    #[arg(long, default_value = "/readyz")]
    ready_path: String,
    /// cargo bench passes --bench; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Json,
    RemoteWrite,
    Otlp,
    Influx,
}

impl Protocol {
    fn path(self) -> &'static str {
        match self {
            Self::Json => "/api/v1/write",
            Self::RemoteWrite => "/api/v1/push",
            Self::Otlp => "/v1/metrics",
            Self::Influx => "/api/v2/write?precision=ms",
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Self::Json => "application/json",
            Self::RemoteWrite | Self::Otlp => "application/x-protobuf",
            Self::Influx => "text/plain; charset=utf-8",
        }
    }

    /// The body's own compression, beside HTTP's (`--gzip`).
    fn content_encoding(self) -> Option<&'static str> {
        (self == Self::RemoteWrite).then_some("snappy")
    }
}

fn parse_env_pair(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("expected KEY=VALUE, got {text:?}"))
}

/// The HS256 secret the started server verifies tokens with.
const BENCH_SECRET: &str = "luminate-loadgen-secret-0123456789abcdef";

/// xorshift64*: a tiny deterministic generator, so the data set is fixed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

const REGIONS: [&str; 5] = ["eu-west", "eu-central", "us-east", "us-west", "ap-south"];
const ENDPOINTS: usize = 20;

/// Series `s` has dimensions endpoint (20 values), region (5) and a unique
/// customer id, so there are exactly `series` unique combinations.
fn write_series(out: &mut String, s: usize) {
    let _ = write!(
        out,
        r#"{{"endpoint":"/api/v1/e{}","region":"{}","customer":"c{:06}"}}"#,
        s % ENDPOINTS,
        REGIONS[s % REGIONS.len()],
        s
    );
}

/// One point of the data set.
struct Point {
    series: usize,
    value: f64,
    ts: i64,
}

/// Pre-built request bodies: serialisation is not part of the measurement.
fn build_bodies(args: &Args, base_ts: i64, span_ms: i64) -> Vec<Vec<u8>> {
    let mut rng = Rng(args.seed.max(1));
    let mut bodies = Vec::with_capacity(args.metrics.div_ceil(args.batch));
    let mut k = 0usize;
    while k < args.metrics {
        let n = args.batch.min(args.metrics - k);
        let points: Vec<Point> = (k..k + n)
            .map(|i| Point {
                // Every series appears; the rest of the points go to random series.
                series: if i < args.series {
                    i
                } else {
                    (rng.next() % args.series as u64) as usize
                },
                // Latency-like values: mostly small, a long tail.
                value: 0.005 + rng.unit().powi(4) * 2.0,
                ts: base_ts + (i as i64 * span_ms) / args.metrics.max(1) as i64,
            })
            .collect();
        let bytes = match args.protocol {
            Protocol::Json => json_body(&points),
            Protocol::RemoteWrite => remote_write_body(&points),
            Protocol::Otlp => otlp_body(&points),
            Protocol::Influx => influx_body(&points),
        };
        bodies.push(if args.gzip { gzip(&bytes) } else { bytes });
        k += n;
    }
    bodies
}

/// The series' dimensions: endpoint (20 values), region (5) and a unique
/// customer id, so there are exactly `series` unique combinations.
fn dimensions(series: usize) -> [(&'static str, String); 3] {
    [
        ("customer", format!("c{series:06}")),
        ("endpoint", format!("/api/v1/e{}", series % ENDPOINTS)),
        ("region", REGIONS[series % REGIONS.len()].to_owned()),
    ]
}

fn json_body(points: &[Point]) -> Vec<u8> {
    let mut body = String::with_capacity(points.len() * 140);
    body.push_str(r#"{"metrics":["#);
    for (j, p) in points.iter().enumerate() {
        if j > 0 {
            body.push(',');
        }
        let _ = write!(
            body,
            r#"{{"name":"api_latency","value":{:.6},"timestamp":{},"dimensions":"#,
            p.value, p.ts
        );
        write_series(&mut body, p.series);
        body.push('}');
    }
    body.push_str("]}");
    body.into_bytes()
}

fn remote_write_body(points: &[Point]) -> Vec<u8> {
    use luminate_host::ingest::remote_write::prompb;
    use prost::Message;
    let label = |name: &str, value: &str| prompb::Label {
        name: name.as_bytes().to_vec().into(),
        value: value.as_bytes().to_vec().into(),
    };
    let request = prompb::WriteRequest {
        timeseries: points
            .iter()
            .map(|p| {
                let mut labels = vec![label("__name__", "api_latency")];
                labels.extend(dimensions(p.series).iter().map(|(k, v)| label(k, v)));
                prompb::TimeSeries {
                    labels,
                    samples: vec![prompb::Sample {
                        value: p.value,
                        timestamp: p.ts,
                    }],
                    ..Default::default()
                }
            })
            .collect(),
        ..Default::default()
    };
    snap::raw::Encoder::new()
        .compress_vec(&request.encode_to_vec())
        .expect("snappy")
}

fn otlp_body(points: &[Point]) -> Vec<u8> {
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
    use opentelemetry_proto::tonic::metrics::v1::{
        Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, metric, number_data_point,
    };
    use prost::Message;
    let data_points = points
        .iter()
        .map(|p| NumberDataPoint {
            attributes: dimensions(p.series)
                .into_iter()
                .map(|(key, value)| KeyValue {
                    key: key.to_owned(),
                    value: Some(AnyValue {
                        value: Some(any_value::Value::StringValue(value)),
                    }),
                    ..Default::default()
                })
                .collect(),
            time_unix_nano: p.ts as u64 * 1_000_000,
            value: Some(number_data_point::Value::AsDouble(p.value)),
            ..Default::default()
        })
        .collect();
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: "api_latency".to_owned(),
                    data: Some(metric::Data::Gauge(Gauge { data_points })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

/// The points an OTLP answer's partial success counts as rejected.
fn otlp_rejected(reply: &[u8]) -> u64 {
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;
    use prost::Message;
    ExportMetricsServiceResponse::decode(reply)
        .ok()
        .and_then(|reply| reply.partial_success)
        .map_or(0, |partial| partial.rejected_data_points.max(0) as u64)
}

/// Measurement `api` and field `latency` make the metric `api_latency`.
fn influx_body(points: &[Point]) -> Vec<u8> {
    let mut body = String::with_capacity(points.len() * 100);
    for p in points {
        body.push_str("api");
        for (key, value) in dimensions(p.series) {
            let _ = write!(body, ",{key}={value}");
        }
        let _ = writeln!(body, " latency={:.6} {}", p.value, p.ts);
    }
    body.into_bytes()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// The fixed query set: (label, request body).
fn queries() -> Vec<(&'static str, Value)> {
    let range = json!({"relative": "2h"});
    vec![
        (
            "aggregate p95 by endpoint (all points)",
            json!({"queryType": "aggregate", "metricName": "api_latency", "aggregation": "p95",
                "timeRange": range, "groupBy": ["endpoint"]}),
        ),
        (
            "aggregate count by region",
            json!({"queryType": "aggregate", "metricName": "api_latency", "aggregation": "count",
                "timeRange": range, "groupBy": ["region"]}),
        ),
        (
            "aggregate avg by endpoint, region = eu-west",
            json!({"queryType": "aggregate", "metricName": "api_latency", "aggregation": "avg",
                "timeRange": range, "groupBy": ["endpoint"],
                "filters": [{"key": "region", "op": "=", "value": "eu-west"}]}),
        ),
        (
            "aggregate max, endpoint =~ /api/v1/e1.*",
            json!({"queryType": "aggregate", "metricName": "api_latency", "aggregation": "max",
                "timeRange": range,
                "filters": [{"key": "endpoint", "op": "=~", "value": "/api/v1/e1.*"}]}),
        ),
        (
            "range 1m avg by region",
            json!({"queryType": "range", "metricName": "api_latency", "aggregation": "avg",
                "step": "1m", "timeRange": range, "groupBy": ["region"]}),
        ),
        (
            "range raw, one customer",
            json!({"queryType": "range", "metricName": "api_latency", "timeRange": range,
                "filters": [{"key": "customer", "op": "=", "value": "c000042"}]}),
        ),
    ]
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((q * sorted.len() as f64).floor() as usize).min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

struct Server {
    child: Child,
    _dir: tempfile::TempDir,
}

/// CPU seconds (user + system, all threads) a process has used so far.
/// On this shared 2-core box the wall clock mostly measures the neighbours;
/// CPU time says what the work itself costs.
fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces): state is the
    // first, utime the 12th, stime the 13th.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / clock_ticks_per_second())
}

fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

impl Server {
    fn cpu_seconds(&self) -> Option<f64> {
        cpu_seconds(&self.child.id().to_string())
    }

    fn rss_mib(&self) -> Option<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb / 1024.0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// Starts the server binary; returns it, its URL and (when the binary has
/// authentication) a token for a tenant on the `unlimited` tier.
fn start_server(args: &Args) -> (Server, String, Option<String>) {
    let binary = args.binary.clone().unwrap_or_else(|| {
        let exe = std::env::current_exe().unwrap();
        exe.parent().unwrap().parent().unwrap().join("luminate")
    });
    assert!(
        binary.is_file(),
        "{} not found: run `cargo build --release -p luminate-host --bin luminate` first, or pass --url",
        binary.display()
    );
    let has_auth = Command::new(&binary)
        .args(["token", "--help"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let mut env: Vec<(String, String)> = Vec::new();
    let mut token = None;
    if has_auth {
        env.push(("LUMINATE_JWT_HS256_SECRET".into(), BENCH_SECRET.into()));
        let out = Command::new(&binary)
            .args([
                "token",
                "--tenant",
                "loadgen",
                "--scopes",
                "read,write,admin",
            ])
            .args(["--tier", "unlimited", "--ttl", "12h"])
            .envs(env.iter().cloned())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "luminate token failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        token = Some(String::from_utf8_lossy(&out.stdout).trim().to_owned());
    }
    env.extend(args.server_env.iter().cloned());
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let child = Command::new(&binary)
        .args(["serve", "--listen", &listen, "--data-dir"])
        .arg(dir.path())
        .args(&args.server_args)
        .envs(env)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    eprintln!(
        "started {} on {listen} (data in {}){}",
        binary.display(),
        dir.path().display(),
        if has_auth {
            ", authenticating as tenant loadgen (tier unlimited)"
        } else {
            ""
        }
    );
    (
        Server { child, _dir: dir },
        format!("http://{listen}"),
        token,
    )
}

async fn wait_ready(client: &reqwest::Client, url: &str, ready_path: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        if let Ok(r) = client.get(format!("{url}{ready_path}")).send().await
            && r.status().is_success()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("server at {url} not ready");
}

/// The data set's teams: each endpoint belongs to one of four.
const TEAMS: [&str; 4] = ["payments", "discovery", "identity", "platform"];

/// Uploads the example validator and enricher as the tenant's plugins and
/// binds them: every metric must carry `endpoint` and `region`, `region`
/// must be a known one, and `team` is looked up from `endpoint`.
async fn bind_example_plugins(client: &reqwest::Client, url: &str, auth: Option<&str>) {
    let send = |request: reqwest::RequestBuilder| async {
        let request = match auth {
            Some(auth) => request.header("authorization", auth),
            None => request,
        };
        let response = request.send().await.expect("admin request failed");
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        assert!(status.is_success(), "{status}: {body}");
    };
    for (name, path) in [
        ("name-policy", NAME_POLICY),
        ("lookup-enricher", LOOKUP_ENRICHER),
    ] {
        let wasm = std::fs::read(path).unwrap();
        send(
            client
                .put(format!("{url}/api/v1/plugins/{name}"))
                .body(wasm),
        )
        .await;
    }
    let table: serde_json::Map<String, Value> = (0..ENDPOINTS)
        .map(|e| {
            (
                format!("/api/v1/e{e}"),
                json!({"team": TEAMS[e % TEAMS.len()]}),
            )
        })
        .collect();
    let bindings = json!({
        "validators": [{"plugin": "name-policy", "onFailure": "fail-closed", "params": {
            "requiredDimensions": ["endpoint", "region"],
            "allowedValues": {"region": REGIONS},
        }}],
        "enrichers": [{"plugin": "lookup-enricher", "onFailure": "fail-closed", "params": {
            "lookups": [{"key": "endpoint", "table": table}],
        }}],
    });
    send(client.put(format!("{url}/api/v1/bindings")).json(&bindings)).await;
    eprintln!("bound name-policy (validator) and lookup-enricher (enricher)");
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    assert!(
        !(args.gzip && args.protocol.content_encoding().is_some()),
        "--gzip does not apply to {:?}: its body is compressed already",
        args.protocol
    );
    let (server, url, minted) = match &args.url {
        Some(url) => (None, url.trim_end_matches('/').to_owned(), None),
        None => {
            let (s, u, t) = start_server(&args);
            (Some(s), u, t)
        }
    };
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(args.connections)
        .timeout(Duration::from_secs(300))
        .build()
        .unwrap();
    wait_ready(&client, &url, &args.ready_path).await;
    let auth = args.token.clone().or(minted).map(|t| format!("Bearer {t}"));

    if args.plugins {
        bind_example_plugins(&client, &url, auth.as_deref()).await;
    }

    // Points spread over the last hour (ending a minute ago).
    let span_ms = 3_600_000;
    let base_ts = now_ms() - span_ms - 60_000;
    let started = Instant::now();
    let bodies = Arc::new(build_bodies(&args, base_ts, span_ms));
    let bytes: usize = bodies.iter().map(Vec::len).sum();
    eprintln!(
        "data set: {} metrics, {} series, {} requests, {:.1} MB of {}{:?}, built in {:.1}s",
        args.metrics,
        args.series,
        bodies.len(),
        bytes as f64 / 1e6,
        if args.gzip { "gzipped " } else { "" },
        args.protocol,
        started.elapsed().as_secs_f64()
    );

    let next = Arc::new(AtomicUsize::new(0));
    let server_cpu_before = server.as_ref().and_then(Server::cpu_seconds);
    let client_cpu_before = cpu_seconds("self");
    let ingest_start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.connections {
        let (client, bodies, next, auth, gz, protocol) = (
            client.clone(),
            bodies.clone(),
            next.clone(),
            auth.clone(),
            args.gzip,
            args.protocol,
        );
        let write_url = format!(
            "{url}{}",
            args.write_path.as_deref().unwrap_or(protocol.path())
        );
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut rejected = 0u64;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(body) = bodies.get(i) else { break };
                let mut request = client
                    .post(&write_url)
                    .header("content-type", protocol.content_type())
                    .body(body.clone());
                if let Some(encoding) = protocol.content_encoding() {
                    request = request.header("content-encoding", encoding);
                } else if gz {
                    request = request.header("content-encoding", "gzip");
                }
                if let Some(auth) = &auth {
                    request = request.header("authorization", auth);
                }
                let t = Instant::now();
                let response = request.send().await.expect("write failed");
                let status = response.status();
                let reply = response.bytes().await.unwrap_or_default();
                latencies.push(t.elapsed());
                assert!(
                    status.is_success(),
                    "write answered {status}: {}",
                    String::from_utf8_lossy(&reply)
                );
                // Remote write and Influx answer a rejection with a 4xx,
                // which the assert above catches.
                rejected += match protocol {
                    Protocol::Otlp => otlp_rejected(&reply),
                    _ => serde_json::from_slice::<Value>(&reply)
                        .ok()
                        .and_then(|reply| reply["rejected"].as_u64())
                        .unwrap_or(0),
                };
            }
            (latencies, rejected)
        }));
    }
    let mut latencies = Vec::new();
    let mut rejected = 0;
    for t in tasks {
        let (l, r) = t.await.unwrap();
        latencies.extend(l);
        rejected += r;
    }
    let ingest = ingest_start.elapsed();
    let server_cpu = server
        .as_ref()
        .and_then(Server::cpu_seconds)
        .zip(server_cpu_before)
        .map(|(after, before)| after - before);
    let client_cpu = cpu_seconds("self")
        .zip(client_cpu_before)
        .map(|(after, before)| after - before);
    latencies.sort();
    println!(
        "\n== ingest ({} connections, batches of {})",
        args.connections, args.batch
    );
    println!(
        "  {} metrics in {:.2} s = {:.0} metrics/s ({} rejected)",
        args.metrics,
        ingest.as_secs_f64(),
        args.metrics as f64 / ingest.as_secs_f64(),
        rejected
    );
    println!(
        "  request latency: p50 {}  p95 {}  p99 {}  max {}",
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.95)),
        ms(percentile(&latencies, 0.99)),
        ms(latencies.last().copied().unwrap_or_default())
    );
    let millions = args.metrics as f64 / 1e6;
    if let Some(cpu) = server_cpu {
        println!(
            "  server CPU: {cpu:.2} s = {:.2} CPU-s per million metrics",
            cpu / millions
        );
    }
    if let Some(cpu) = client_cpu {
        println!(
            "  load generator CPU: {cpu:.2} s = {:.2} CPU-s per million metrics",
            cpu / millions
        );
    }
    if let (Some(s), Some(c)) = (server_cpu, client_cpu) {
        println!(
            "  => with 2 idle cores for client + server: about {:.0} metrics/s",
            2.0 * args.metrics as f64 / (s + c)
        );
    }
    if let Some(rss) = server.as_ref().and_then(Server::rss_mib) {
        println!("  server RSS after ingest: {rss:.0} MiB");
    }

    if args.query_runs == 0 {
        return;
    }
    println!(
        "\n== queries ({} runs each, after 1 warm-up)",
        args.query_runs
    );
    for (label, query) in queries() {
        let mut times = Vec::with_capacity(args.query_runs);
        let mut cpu_start = None;
        let mut summary = String::new();
        for run in 0..=args.query_runs {
            let mut request = client.post(format!("{url}/api/v1/query")).json(&query);
            if let Some(auth) = &auth {
                request = request.header("authorization", auth);
            }
            if run == 1 {
                cpu_start = server.as_ref().and_then(Server::cpu_seconds);
            }
            let t = Instant::now();
            let response = request.send().await.expect("query failed");
            let status = response.status();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            let elapsed = t.elapsed();
            assert!(status.is_success(), "{label}: {status} {body}");
            if run == 0 {
                let results = body["results"].as_array().or(body["series"].as_array());
                summary = format!("{} rows", results.map_or(0, Vec::len));
            } else {
                times.push(elapsed);
            }
        }
        times.sort();
        let cpu_per_query = server
            .as_ref()
            .and_then(Server::cpu_seconds)
            .zip(cpu_start)
            .map(|(after, before)| {
                format!(
                    "{:.1} ms CPU/query",
                    (after - before) * 1e3 / args.query_runs.max(1) as f64
                )
            })
            .unwrap_or_default();
        println!(
            "  {label:<45} p50 {:>10}  p95 {:>10}  {cpu_per_query:>18}  ({summary})",
            ms(percentile(&times, 0.5)),
            ms(percentile(&times, 0.95)),
        );
    }
    if let Some(rss) = server.as_ref().and_then(Server::rss_mib) {
        println!("\n  server RSS after queries: {rss:.0} MiB");
    }
}
