//! Shared helpers for the end-to-end tests: a real server on a loopback
//! port (in-process, or the real `luminate` binary in a child process) and
//! a small JSON client.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use luminate_host::config::{Config, MetricsListen, StorageBackend};
use luminate_host::server::{self, RunningServer};
use reqwest::StatusCode;
use serde_json::Value;
use tempfile::TempDir;

/// Milliseconds since the epoch, as the server sees it.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The HS256 secret of every test server.
pub const TEST_JWT_SECRET: &str = "luminate-test-secret-0123456789abcdef";
/// The tenant [`Api`] authenticates as by default.
pub const TEST_TENANT: &str = "test";

/// A token for `TEST_TENANT` with every scope on the `unlimited` tier.
pub fn test_token() -> String {
    token_for(TEST_TENANT)
}

/// A token for `tenant` with every scope on the `unlimited` tier.
pub fn token_for(tenant: &str) -> String {
    let spec = luminate_host::auth::TokenSpec {
        tenant: luminate_host::model::TenantId::new(tenant).unwrap(),
        scopes: luminate_host::auth::Scopes::all(),
        tier: Some("unlimited".into()),
        org_id: None,
        ttl: Duration::from_secs(24 * 3600),
    };
    let secret = luminate_host::auth::Secret::new(TEST_JWT_SECRET);
    luminate_host::auth::mint::mint_with_secret(&secret, None, None, &spec).unwrap()
}

/// A JSON client of `server` acting for `tenant` (every scope, the
/// `unlimited` tier).
pub fn api_for(server: &TestServer, tenant: &str) -> Api {
    let addr = server
        .api
        .base
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    Api::with_token(addr, &token_for(tenant))
}

/// The configuration every test server starts from: loopback, a port of the
/// OS's choosing, embedded RocksDB in `data_dir`, no background sweep,
/// tokens signed with [`TEST_JWT_SECRET`].
pub fn test_config(data_dir: &Path) -> Config {
    let mut config = Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        data_dir: data_dir.to_owned(),
        ..Config::default()
    };
    config.storage.backend = StorageBackend::Embedded;
    config.retention.period = None;
    config.auth.hs256_secret = Some(luminate_host::auth::Secret::new(TEST_JWT_SECRET));
    // Tests run many servers at once: each scrape port is the OS's choice.
    config.telemetry.metrics_listen = MetricsListen::Address(SocketAddr::from(([127, 0, 0, 1], 0)));
    config
}

/// A JSON client for one server.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
}

/// A response: status and parsed JSON body (`Value::Null` when not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl Reply {
    /// The `error.code` of an error reply.
    pub fn error_code(&self) -> &str {
        self.body["error"]["code"]
            .as_str()
            .unwrap_or("<no error code>")
    }

    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status.as_u16(), status, "{self:?}");
        assert_eq!(self.error_code(), code, "{self:?}");
        assert!(
            self.body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "an error needs a message: {self:?}"
        );
    }

    #[track_caller]
    pub fn ok(self) -> Value {
        assert_eq!(self.status, StatusCode::OK, "{self:?}");
        self.body
    }
}

impl Api {
    /// A client that authenticates as [`TEST_TENANT`] (every scope, unlimited tier).
    pub fn new(addr: SocketAddr) -> Self {
        Self::with_token(addr, &test_token())
    }

    /// A client that sends `token` as its bearer token.
    pub fn with_token(addr: SocketAddr, token: &str) -> Self {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
        Self {
            base: format!("http://{addr}"),
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(60))
                .default_headers(headers)
                .build()
                .unwrap(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        let response = request.send().await.expect("request failed");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("reading the body failed");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            body,
            headers,
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(self.http.get(self.url(path))).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.send(self.http.delete(self.url(path))).await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Reply {
        self.post_bytes(path, serde_json::to_vec(body).unwrap(), None)
            .await
    }

    pub async fn post_bytes(&self, path: &str, body: Vec<u8>, encoding: Option<&str>) -> Reply {
        let mut request = self
            .http
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body);
        if let Some(encoding) = encoding {
            request = request.header("content-encoding", encoding);
        }
        self.send(request).await
    }

    /// Writes `metrics` (a JSON array) and returns the reply.
    pub async fn write(&self, metrics: Value) -> Reply {
        self.post_json("/api/v1/write", &serde_json::json!({ "metrics": metrics }))
            .await
    }

    pub async fn query(&self, query: Value) -> Reply {
        self.post_json("/api/v1/query", &query).await
    }
}

/// A server running in this process, on embedded RocksDB in a temp dir.
pub struct TestServer {
    pub api: Api,
    running: Option<RunningServer>,
    config: Config,
    dir: TempDir,
}

/// Plugins compile in the background after the listener is bound (as
/// `/readyz` reports); tests start from a ready server, as a load balancer
/// would send traffic.
async fn wait_for_plugins(running: &RunningServer) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !running.state().plugins.is_ready() {
        assert!(
            std::time::Instant::now() < deadline,
            "plugins did not load within 60 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts with the test config changed by `adjust`.
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config(dir.path());
        adjust(&mut config);
        let running = server::start(config.clone())
            .await
            .expect("server failed to start");
        wait_for_plugins(&running).await;
        Self {
            api: Api::new(running.local_addr()),
            running: Some(running),
            config,
            dir,
        }
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Where the self-metrics listener (`GET /metrics`) is bound.
    pub fn metrics_addr(&self) -> SocketAddr {
        self.running
            .as_ref()
            .and_then(RunningServer::metrics_addr)
            .expect("the test server has a metrics listener")
    }

    /// Shuts down cleanly and starts again on the same data directory and config.
    pub async fn restart(mut self) -> Self {
        self.running.take().unwrap().shutdown().await.unwrap();
        let running = server::start(self.config.clone())
            .await
            .expect("restart failed");
        wait_for_plugins(&running).await;
        self.api = Api::new(running.local_addr());
        self.running = Some(running);
        self
    }

    pub async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown().await.unwrap();
        }
    }
}

impl std::ops::Deref for TestServer {
    type Target = Api;
    fn deref(&self) -> &Api {
        &self.api
    }
}

/// The `luminate` binary cargo built next to this test executable
/// (`<target>/debug/luminate`). `scripts/test` builds it before the tests;
/// by hand: `cargo build -p luminate-host --bin luminate`.
pub fn luminate_binary() -> PathBuf {
    // A build dir shared by several worktrees can have another one's binary
    // at the usual place: `E2E_LUMINATE_BINARY` names a copy of one's own.
    if let Some(path) = std::env::var_os("E2E_LUMINATE_BINARY") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test executable lives in <target>/<profile>/deps");
    let binary = profile_dir.join("luminate");
    assert!(
        binary.is_file(),
        "{} is missing: run `cargo build -p luminate-host --bin luminate` first (scripts/test does)",
        binary.display()
    );
    binary
}

/// The real `luminate` binary running as a child process.
pub struct ServerProcess {
    pub api: Api,
    child: Child,
}

impl ServerProcess {
    /// Starts `luminate serve` on `data_dir` with a free loopback port and
    /// waits until `/startupz` answers 200.
    pub async fn spawn(data_dir: &Path, extra_args: &[&str]) -> Self {
        Self::spawn_with_env(data_dir, extra_args, &[]).await
    }

    /// [`ServerProcess::spawn`] with extra environment variables (e.g. `LUMINATE_*` settings).
    pub async fn spawn_with_env(
        data_dir: &Path,
        extra_args: &[&str],
        envs: &[(&str, &str)],
    ) -> Self {
        let port = free_port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let child = Command::new(luminate_binary())
            .arg("serve")
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--data-dir")
            .arg(data_dir)
            .args(extra_args)
            .env("LUMINATE_JWT_HS256_SECRET", TEST_JWT_SECRET)
            .env("LUMINATE_METRICS_LISTEN", "127.0.0.1:0")
            .env("RUST_LOG", "warn")
            .envs(envs.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("cannot start luminate");
        let process = Self {
            api: Api::new(addr),
            child,
        };
        process.wait_started().await;
        process
    }

    async fn wait_started(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            // Started, and (as tests expect) done compiling its plugins,
            // which happens after the listener is bound.
            if let Ok(r) = self.api.http.get(self.api.url("/startupz")).send().await
                && r.status() == StatusCode::OK
                && r.json::<Value>()
                    .await
                    .is_ok_and(|body| body["plugins"] != "loading")
            {
                return;
            }
            assert!(Instant::now() < deadline, "luminate did not start in time");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill9(mut self) {
        self.child.kill().expect("kill -9 failed");
        self.child.wait().unwrap();
    }

    /// SIGTERM, then the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        self.child.wait().unwrap()
    }
}

impl std::ops::Deref for ServerProcess {
    type Target = Api;
    fn deref(&self) -> &Api {
        &self.api
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port nobody listens on right now.
/// Debian's `prometheus` (or `$PROMETHEUS_BIN`): the remote-write client
/// of tests/protocols and the PromQL reference of tests/promql.
pub fn prometheus_binary() -> PathBuf {
    let path = std::env::var_os("PROMETHEUS_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/prometheus"));
    assert!(
        path.exists(),
        "{} is missing: `apt-get install prometheus` (scripts/test does)",
        path.display()
    );
    path
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A plugin runtime with its own metrics registry, keeping uploaded plugins
/// under `dir`: what the plugin tests drive directly, without a server.
pub fn plugin_runtime(
    dir: &Path,
    config: luminate_host::plugins::PluginsConfig,
) -> std::sync::Arc<luminate_host::plugins::PluginRuntime> {
    luminate_host::plugins::PluginRuntime::with_private_metrics(
        config,
        luminate_host::model::ValidationLimits::default(),
        std::sync::Arc::new(luminate_host::plugins::FsPluginRepository::new(
            dir.join("plugin-store"),
        )),
    )
    .unwrap()
}

/// The entry for plugin `name` in a `GET /api/v1/plugins` answer (`null` if absent).
pub fn listed(list: &Value, name: &str) -> Value {
    list["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .cloned()
        .unwrap_or(Value::Null)
}
