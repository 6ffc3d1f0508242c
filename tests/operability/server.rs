//! Runs the real `luminate` binary on a loopback port and captures its
//! stdout (the JSON log) line by line.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const TEST_SECRET: &str = "operability-test-secret-0123456789abcdef";

/// `<target>/debug/luminate`, next to this test binary's `deps/` folder.
pub fn luminate_binary() -> PathBuf {
    // See tests/common: a copy of this worktree's binary, when the build
    // dir is shared.
    if let Some(path) = std::env::var_os("E2E_LUMINATE_BINARY") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let binary = dir.join(format!("luminate{}", std::env::consts::EXE_SUFFIX));
    assert!(
        binary.is_file(),
        "{} not found: build it with `cargo build -p luminate-host --bin luminate` (cargo test does)",
        binary.display()
    );
    binary
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    /// The metrics listener (`telemetry.metrics_listen`).
    pub metrics_addr: SocketAddr,
    pub scheme: &'static str,
    logs: Arc<Mutex<Vec<String>>>,
    errors: Arc<Mutex<Vec<String>>>,
    _data: tempfile::TempDir,
}

pub struct ServerOptions {
    pub env: Vec<(String, String)>,
    pub args: Vec<String>,
    pub scheme: &'static str,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            env: Vec::new(),
            args: Vec::new(),
            scheme: "http",
        }
    }
}

impl ServerOptions {
    pub fn env(mut self, key: &str, value: impl Into<String>) -> Self {
        self.env.push((key.to_owned(), value.into()));
        self
    }
}

impl Server {
    pub fn start(options: ServerOptions) -> Self {
        let data = tempfile::tempdir().unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let metrics_addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let mut command = Command::new(luminate_binary());
        command
            .arg("serve")
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--data-dir")
            .arg(data.path())
            .args(&options.args)
            .env("LUMINATE_JWT_HS256_SECRET", TEST_SECRET)
            .env("LUMINATE_LOG_FORMAT", "json")
            .env("LUMINATE_LOG_LEVEL", "info")
            .env("LUMINATE_METRICS_LISTEN", metrics_addr.to_string())
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in &options.env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("spawn luminate");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().unwrap();
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let errors = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = errors.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Self {
            child,
            addr,
            metrics_addr,
            scheme: options.scheme,
            logs,
            errors,
            _data: data,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{}", self.scheme, self.addr, path)
    }

    /// `GET /metrics` on the metrics listener (plain HTTP, even with TLS on the API).
    pub fn metrics_url(&self) -> String {
        format!("http://{}/metrics", self.metrics_addr)
    }

    /// Waits until `/startupz` answers 200 (storage and plugins ready).
    pub async fn wait_started(&mut self, client: &reqwest::Client) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(response) = client.get(self.url("/startupz")).send().await
                && response.status() == 200
            {
                return;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "luminate exited with {status} before starting:\n{}",
                    self.output()
                );
            }
            assert!(
                Instant::now() < deadline,
                "luminate did not start:\n{}",
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    /// Everything the process wrote to stdout and stderr, for failure messages.
    pub fn output(&self) -> String {
        let mut all = self.logs();
        all.extend(self.errors.lock().unwrap().iter().cloned());
        all.join("\n")
    }

    /// JSON log lines, parsed; non-JSON lines fail the test, and so do
    /// lines where an event field collides with the `message` key.
    pub fn json_logs(&self) -> Vec<serde_json::Value> {
        self.logs()
            .iter()
            .map(|line| {
                assert!(
                    line.matches("\"message\":").count() <= 1,
                    "a log field named `message` shadows the message: {line}"
                );
                serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line}"))
            })
            .collect()
    }

    /// Waits up to 10 s for a JSON log line that satisfies `wanted`.
    pub async fn wait_for_log(
        &self,
        wanted: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(line) = self.json_logs().into_iter().find(|l| wanted(l)) {
                return line;
            }
            assert!(
                Instant::now() < deadline,
                "log line not found in:\n{}",
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits up to `limit` for the process to exit.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Mints a token with the binary's own `token` command.
pub fn token(tenant: &str, scopes: &str) -> String {
    let output = Command::new(luminate_binary())
        .args(["token", "--tenant", tenant, "--scopes", scopes])
        .env("LUMINATE_JWT_HS256_SECRET", TEST_SECRET)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "luminate token failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}
