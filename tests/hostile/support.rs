//! The attack bench: a real server process, a quiet tenant whose requests
//! are timed while an attack runs, and the server's memory.

#![allow(dead_code)] // each attack uses a part of the bench

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::sync::MutexGuard;
use tokio::task::JoinHandle;

use crate::common::{Api, ServerProcess, TEST_JWT_SECRET, now_ms};

/// The bound on the quiet tenant's p99 while an attack runs.
pub const QUIET_P99_BOUND: Duration = Duration::from_millis(250);
/// The quiet tenant's tenant id.
pub const QUIET_TENANT: &str = "quiet";
/// The attacking tenant's tenant id.
pub const ATTACKER_TENANT: &str = "attacker";

/// One measured server at a time: attacks and latency bounds are sized for
/// a server that has the machine to itself.
static ONE_SERVER_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A real `luminate` process under attack.
pub struct Hostile {
    pub server: ServerProcess,
    pub addr: SocketAddr,
    rss_at_start: u64,
    peak_rss_at_start: u64,
    _dir: TempDir,
    _turn: MutexGuard<'static, ()>,
}

impl Hostile {
    /// Starts `luminate serve` with `extra_args` on a fresh data directory.
    pub async fn spawn(extra_args: &[&str]) -> Self {
        Self::spawn_with(extra_args, &[]).await
    }

    /// Starts `luminate serve` with `extra_args` and environment `envs`.
    pub async fn spawn_with(extra_args: &[&str], envs: &[(&str, &str)]) -> Self {
        let turn = ONE_SERVER_AT_A_TIME.lock().await;
        let dir = tempfile::tempdir().unwrap();
        let server = ServerProcess::spawn_with_env(dir.path(), extra_args, envs).await;
        let addr = server
            .api
            .base
            .trim_start_matches("http://")
            .parse()
            .expect("the test server listens on a socket address");
        let rss_at_start = rss_bytes(server.pid());
        let peak_rss_at_start = peak_rss_bytes(server.pid());
        Self {
            server,
            addr,
            rss_at_start,
            peak_rss_at_start,
            _dir: dir,
            _turn: turn,
        }
    }

    /// A client for `tenant` with `scopes` (e.g. `["read", "write"]`) on `tier`.
    pub fn api_for(&self, tenant: &str, scopes: &[&str], tier: Option<&str>) -> Api {
        Api::with_token(self.addr, &token(tenant, scopes, tier))
    }

    /// The quiet tenant: read and write, on the `unlimited` tier so that
    /// only the attack can make it fail.
    pub fn quiet(&self) -> Api {
        self.api_for(QUIET_TENANT, &["read", "write"], Some("unlimited"))
    }

    /// The attacker: every scope, on the default (free) tier.
    pub fn attacker(&self) -> Api {
        self.api_for(ATTACKER_TENANT, &["read", "write", "admin"], None)
    }

    /// A client that sends no credentials at all.
    pub fn anonymous(&self) -> Api {
        Api {
            base: format!("http://{}", self.addr),
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.server.pid()
    }

    /// The server's resident memory now.
    pub fn rss_bytes(&self) -> u64 {
        rss_bytes(self.pid())
    }

    /// Starts the quiet tenant's load: a small write and a query,
    /// alternately, every [`QuietLoad::PAUSE`], until [`QuietLoad::stop`].
    pub fn start_quiet_load(&self) -> QuietLoad {
        QuietLoad::start(self.quiet())
    }

    /// Asserts the server is still running and answers its liveness probe.
    pub async fn assert_alive(&mut self) {
        assert!(self.server.is_running(), "the server process died");
        let reply = self.anonymous().get("/healthz").await;
        assert_eq!(reply.status.as_u16(), 200, "/healthz: {reply:?}");
    }

    /// Asserts the server's RSS grew by less than `bound` since it started.
    #[track_caller]
    pub fn assert_rss_growth_below(&self, bound: u64) {
        let now = self.rss_bytes();
        let growth = now.saturating_sub(self.rss_at_start);
        assert!(
            growth < bound,
            "RSS grew by {} MiB (from {} MiB to {} MiB), bound {} MiB",
            growth >> 20,
            self.rss_at_start >> 20,
            now >> 20,
            bound >> 20
        );
    }
}

impl Hostile {
    /// Asserts the server's peak RSS (its high-water mark, so a spike that
    /// was freed again still counts) grew by less than `bound`.
    #[track_caller]
    pub fn assert_peak_rss_growth_below(&self, bound: u64) {
        let peak = peak_rss_bytes(self.pid());
        let growth = peak.saturating_sub(self.peak_rss_at_start);
        assert!(
            growth < bound,
            "peak RSS grew by {} MiB (from {} MiB to {} MiB), bound {} MiB",
            growth >> 20,
            self.peak_rss_at_start >> 20,
            peak >> 20,
            bound >> 20
        );
    }
}

/// An HS256 token signed with the test servers' secret.
pub fn token(tenant: &str, scopes: &[&str], tier: Option<&str>) -> String {
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let mut claims = json!({"tenant_id": tenant, "scopes": scopes, "exp": exp});
    if let Some(tier) = tier {
        claims["tier"] = json!(tier);
    }
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(TEST_JWT_SECRET.as_bytes()),
    )
    .unwrap()
}

/// Resident set size of process `pid`, from `/proc/PID/status`.
pub fn rss_bytes(pid: u32) -> u64 {
    status_kib(pid, "VmRSS:")
}

/// Peak resident set size of process `pid` since it started.
pub fn peak_rss_bytes(pid: u32) -> u64 {
    status_kib(pid, "VmHWM:")
}

/// A `kB` line of `/proc/PID/status`, in bytes.
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map_or(0, |kib| kib * 1024)
}

/// The quiet tenant's requests while an attack runs.
/// Waits for the attackers' tasks (each returns the requests it sent),
/// then holds the attack to what every body attack must show: it ran (two
/// requests per attacker at least), the quiet tenant was unharmed and the
/// server is alive.
pub async fn end_body_attack(
    tasks: Vec<JoinHandle<usize>>,
    quiet: QuietLoad,
    hostile: &mut Hostile,
) {
    let attackers = tasks.len();
    let mut sent = 0;
    for task in tasks {
        sent += task.await.expect("attacker task");
    }
    let report = quiet.stop().await;
    assert!(
        sent >= attackers * 2,
        "the attack barely ran: {sent} requests"
    );
    report.assert_unharmed();
    hostile.assert_alive().await;
}

pub struct QuietLoad {
    running: Arc<AtomicBool>,
    task: JoinHandle<QuietReport>,
}

impl QuietLoad {
    /// Time between the quiet tenant's requests.
    pub const PAUSE: Duration = Duration::from_millis(20);

    fn start(api: Api) -> Self {
        let running = Arc::new(AtomicBool::new(true));
        let task = tokio::spawn(quiet_loop(api, running.clone()));
        Self { running, task }
    }

    /// Stops the load and returns what the quiet tenant saw.
    pub async fn stop(self) -> QuietReport {
        self.running.store(false, Ordering::Relaxed);
        self.task.await.expect("the quiet load panicked")
    }
}

/// What the quiet tenant saw.
#[derive(Debug, Default)]
pub struct QuietReport {
    pub latencies: Vec<Duration>,
    pub errors: Vec<String>,
    pub points_written: usize,
}

impl QuietReport {
    /// The `q` quantile of the quiet tenant's request latencies.
    pub fn quantile(&self, q: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len().max(1));
        sorted.get(rank - 1).copied().unwrap_or_default()
    }

    /// The quiet tenant made requests, none failed, and its p99 stayed
    /// under [`QUIET_P99_BOUND`].
    #[track_caller]
    pub fn assert_unharmed(&self) {
        // Shown with --nocapture: the quiet tenant's latency under each attack.
        eprintln!(
            "quiet tenant: {} requests, p50 {:?}, p99 {:?}, max {:?}, {} errors",
            self.latencies.len(),
            self.quantile(0.5),
            self.quantile(0.99),
            self.quantile(1.0),
            self.errors.len()
        );
        assert!(
            self.latencies.len() >= 10,
            "the quiet tenant made only {} requests: it was stalled",
            self.latencies.len()
        );
        assert!(
            self.errors.is_empty(),
            "the quiet tenant saw {} errors, first: {:?}",
            self.errors.len(),
            self.errors.first()
        );
        let p99 = self.quantile(0.99);
        assert!(
            p99 < QUIET_P99_BOUND,
            "the quiet tenant's p99 was {p99:?} over {} requests (bound {QUIET_P99_BOUND:?}, p50 {:?}, max {:?})",
            self.latencies.len(),
            self.quantile(0.5),
            self.quantile(1.0)
        );
    }
}

async fn quiet_loop(api: Api, running: Arc<AtomicBool>) -> QuietReport {
    let mut report = QuietReport::default();
    let mut round = 0usize;
    while running.load(Ordering::Relaxed) {
        let started = Instant::now();
        let outcome = if round.is_multiple_of(2) {
            quiet_write(&api, round).await
        } else {
            quiet_query(&api).await
        };
        report.latencies.push(started.elapsed());
        match outcome {
            Ok(points) => report.points_written += points,
            Err(e) => report.errors.push(e),
        }
        round += 1;
        tokio::time::sleep(QuietLoad::PAUSE).await;
    }
    // The quiet tenant's data is all there after the attack.
    if let Err(e) = quiet_check_stored(&api, report.points_written).await {
        report.errors.push(e);
    }
    report
}

const QUIET_METRIC: &str = "quiet_requests";
const QUIET_BATCH: usize = 10;

async fn quiet_write(api: &Api, round: usize) -> Result<usize, String> {
    let ts = now_ms();
    let metrics: Vec<Value> = (0..QUIET_BATCH)
        .map(|i| {
            json!({"name": QUIET_METRIC, "value": 1.0, "timestamp": ts - i as i64,
                   "dimensions": {"host": format!("h{}", (round + i) % 5)}})
        })
        .collect();
    let reply = send(
        api.http
            .post(api.url("/api/v1/write"))
            .json(&json!({ "metrics": metrics })),
    )
    .await?;
    if reply.0 != 200 || reply.1["accepted"] != json!(QUIET_BATCH) {
        return Err(format!("write: {} {}", reply.0, reply.1));
    }
    Ok(QUIET_BATCH)
}

async fn quiet_query(api: &Api) -> Result<usize, String> {
    let query = json!({"queryType": "aggregate", "metricName": QUIET_METRIC,
        "aggregation": "count", "timeRange": {"relative": "1h"}, "groupBy": ["host"]});
    let reply = send(api.http.post(api.url("/api/v1/query")).json(&query)).await?;
    if reply.0 != 200 {
        return Err(format!("query: {} {}", reply.0, reply.1));
    }
    Ok(0)
}

async fn quiet_check_stored(api: &Api, expected: usize) -> Result<(), String> {
    let query = json!({"queryType": "aggregate", "metricName": QUIET_METRIC,
        "aggregation": "count", "timeRange": {"relative": "1h"}});
    let reply = send(api.http.post(api.url("/api/v1/query")).json(&query)).await?;
    let stored = reply.1["results"][0]["value"].as_f64().unwrap_or(0.0) as usize;
    if reply.0 != 200 || stored != expected {
        return Err(format!(
            "after the attack the quiet tenant has {stored} points stored, {expected} acknowledged: {} {}",
            reply.0, reply.1
        ));
    }
    Ok(())
}

/// Status and JSON body, or the transport error as text.
async fn send(request: reqwest::RequestBuilder) -> Result<(u16, Value), String> {
    let response = request
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .map_err(|e| format!("transport: {e}"))?;
    let status = response.status().as_u16();
    let bytes = response
        .bytes()
        .await
        .map_err(|e| format!("reading the body: {e}"))?;
    Ok((
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    ))
}
