//! Real `clickhouse-server` processes for tests: one server, or two servers
//! as the two shards of a cluster. Each runs from a minimal config in its own
//! temporary directory, on free loopback ports, and is killed on drop.
//!
//! When the binary is missing, [`require_server`] panics under `CI=true` (a
//! missing ClickHouse is a failure there) and otherwise returns `None` after
//! a loud message, so developer machines without ClickHouse can skip.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::config::ClickHouseConfig;

/// Where Debian installs the server; override with `CLICKHOUSE_SERVER_BIN`.
pub const DEFAULT_SERVER_BIN: &str = "/usr/sbin/clickhouse-server";

pub fn server_binary() -> PathBuf {
    std::env::var_os("CLICKHOUSE_SERVER_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_SERVER_BIN))
}

/// Whether tests may skip for lack of ClickHouse: never under `CI=true`.
pub fn skip_allowed() -> bool {
    !std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// A running server, or `None` (skip) when the binary is missing outside CI.
pub fn require_server() -> Option<ClickHouseServer> {
    if !server_binary().exists() {
        assert!(
            skip_allowed(),
            "CI=true and {} is missing: run scripts/test, which installs it",
            server_binary().display()
        );
        eprintln!(
            "\n!!! SKIPPING ClickHouse test: {} not found (scripts/test installs it) !!!\n",
            server_binary().display()
        );
        return None;
    }
    Some(ClickHouseServer::start(None).unwrap_or_else(|e| panic!("clickhouse-server: {e}")))
}

/// Two shards, or `None` (skip) as [`require_server`].
pub fn require_cluster(name: &str) -> Option<TwoShardCluster> {
    require_server_binary()?;
    Some(TwoShardCluster::start(name).unwrap_or_else(|e| panic!("clickhouse cluster: {e}")))
}

fn require_server_binary() -> Option<()> {
    if server_binary().exists() {
        return Some(());
    }
    assert!(
        skip_allowed(),
        "CI=true and {} is missing",
        server_binary().display()
    );
    eprintln!("\n!!! SKIPPING ClickHouse cluster test: clickhouse-server not found !!!\n");
    None
}

pub struct ClickHouseServer {
    child: Child,
    pub http_port: u16,
    pub tcp_port: u16,
    dir: tempfile::TempDir,
}

/// One shard's address in a `remote_servers` section.
struct ShardAddress {
    tcp_port: u16,
}

impl ClickHouseServer {
    /// Starts a server; `cluster` adds a `remote_servers` section naming the
    /// given shards (this server should be one of them).
    fn start_with_ports(
        http_port: u16,
        tcp_port: u16,
        cluster: Option<(&str, &[ShardAddress])>,
    ) -> Result<Self, String> {
        let dir = tempfile::Builder::new()
            .prefix("luminate-clickhouse-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let config_path = write_config(dir.path(), http_port, tcp_port, cluster)?;
        let child = spawn_server(dir.path(), &config_path)?;
        let mut server = Self {
            child,
            http_port,
            tcp_port,
            dir,
        };
        server.wait_ready(Duration::from_secs(60))?;
        Ok(server)
    }

    pub fn start(cluster: Option<&str>) -> Result<Self, String> {
        let (http_port, tcp_port) = (free_port()?, free_port()?);
        let shards = [ShardAddress { tcp_port }];
        Self::start_with_ports(http_port, tcp_port, cluster.map(|name| (name, &shards[..])))
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// A config for a database of its own on this server, with a small
    /// flush interval so tests run fast.
    pub fn config(&self, database: &str) -> ClickHouseConfig {
        ClickHouseConfig {
            url: self.url(),
            database: database.to_owned(),
            flush_interval: crate::config::ConfigDuration::from_millis(5),
            ..ClickHouseConfig::default()
        }
    }

    /// Runs `sql` over HTTP and returns the body (TabSeparated by default).
    pub fn query(&self, sql: &str) -> Result<String, String> {
        http_post(self.http_port, sql)
    }

    /// Kills the server (as a crash would); [`Self::restart`] brings it back
    /// on the same ports and data.
    pub fn kill(&mut self) {
        // Closing the guard's stdin makes it SIGKILL the server.
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }

    pub fn restart(&mut self) -> Result<(), String> {
        self.kill();
        let config_path = self.dir.path().join("config.xml");
        self.child = spawn_server(self.dir.path(), &config_path)?;
        self.wait_ready(Duration::from_secs(60))
    }

    fn wait_ready(&mut self, limit: Duration) -> Result<(), String> {
        let started = Instant::now();
        loop {
            if let Ok(answer) = http_post(self.http_port, "select 1")
                && answer.trim() == "1"
            {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "clickhouse-server exited with {status}; log: {}",
                    self.log_tail()
                ));
            }
            if started.elapsed() > limit {
                return Err(format!(
                    "clickhouse-server not ready in {limit:?}; log: {}",
                    self.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log_tail(&self) -> String {
        let mut text = String::new();
        for name in ["stdout.log", "server.err.log"] {
            if let Ok(content) = std::fs::read_to_string(self.dir.path().join(name)) {
                let start = content.len().saturating_sub(2000);
                text.push_str(content.get(start..).unwrap_or(""));
            }
        }
        text
    }
}

impl Drop for ClickHouseServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Two servers, each a shard of cluster `name`, both knowing the cluster.
pub struct TwoShardCluster {
    pub name: String,
    pub shards: [ClickHouseServer; 2],
}

impl TwoShardCluster {
    pub fn start(name: &str) -> Result<Self, String> {
        let ports = [(free_port()?, free_port()?), (free_port()?, free_port()?)];
        let addresses = [
            ShardAddress {
                tcp_port: ports[0].1,
            },
            ShardAddress {
                tcp_port: ports[1].1,
            },
        ];
        let first =
            ClickHouseServer::start_with_ports(ports[0].0, ports[0].1, Some((name, &addresses)))?;
        let second =
            ClickHouseServer::start_with_ports(ports[1].0, ports[1].1, Some((name, &addresses)))?;
        Ok(Self {
            name: name.to_owned(),
            shards: [first, second],
        })
    }

    pub fn shard_urls(&self) -> Vec<String> {
        self.shards.iter().map(ClickHouseServer::url).collect()
    }

    /// A config that reaches the cluster through shard 0 and runs DDL on
    /// each shard (these servers have no Keeper for `ON CLUSTER`).
    pub fn config(&self, database: &str) -> ClickHouseConfig {
        ClickHouseConfig {
            cluster: Some(self.name.clone()),
            shard_urls: self.shard_urls(),
            ..self.shards[0].config(database)
        }
    }
}

/// Starts the server under a small `sh` guard that SIGKILLs it when the
/// guard's stdin closes, i.e. when this handle drops or the test process
/// ends in any way, so no server outlives its test (statics never drop).
/// The guard exits when the server does, so a failed start is seen at once.
fn spawn_server(dir: &Path, config_path: &Path) -> Result<Child, String> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("stdout.log"))
        .map_err(|e| e.to_string())?;
    let log_err = log.try_clone().map_err(|e| e.to_string())?;
    Command::new("sh")
        .arg("-c")
        .arg(r#"exec 3<&0; "$@" & pid=$!; (cat <&3 >/dev/null; kill -9 "$pid" 2>/dev/null) & exec 3<&-; wait "$pid""#)
        .arg("clickhouse-guard")
        .arg(server_binary())
        .arg(format!("--config-file={}", config_path.display()))
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(log)
        .stderr(log_err)
        .spawn()
        .map_err(|e| format!("spawn {}: {e}", server_binary().display()))
}

fn write_config(
    dir: &Path,
    http_port: u16,
    tcp_port: u16,
    cluster: Option<(&str, &[ShardAddress])>,
) -> Result<PathBuf, String> {
    for sub in ["data", "tmp", "user_files", "format_schemas"] {
        std::fs::create_dir_all(dir.join(sub)).map_err(|e| e.to_string())?;
    }
    let remote_servers = match cluster {
        None => String::new(),
        Some((name, shards)) => {
            let shards: String = shards
                .iter()
                .map(|s| {
                    format!(
                        "<shard><replica><host>127.0.0.1</host><port>{}</port></replica></shard>",
                        s.tcp_port
                    )
                })
                .collect();
            format!("<remote_servers><{name}>{shards}</{name}></remote_servers>")
        }
    };
    let users = std::env::var("CLICKHOUSE_USERS_XML")
        .unwrap_or_else(|_| "/etc/clickhouse-server/users.xml".to_owned());
    let d = dir.display();
    let config = format!(
        r#"<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>{d}/server.log</log><errorlog>{d}/server.err.log</errorlog></logger>
  <http_port>{http_port}</http_port>
  <tcp_port>{tcp_port}</tcp_port>
  <listen_host>127.0.0.1</listen_host>
  <path>{d}/data/</path>
  <tmp_path>{d}/tmp/</tmp_path>
  <user_files_path>{d}/user_files/</user_files_path>
  <format_schema_path>{d}/format_schemas/</format_schema_path>
  <users_config>{users}</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>67108864</mark_cache_size>
  <max_server_memory_usage_to_ram_ratio>0.3</max_server_memory_usage_to_ram_ratio>
  {remote_servers}
</yandex>
"#
    );
    let path = dir.join("config.xml");
    std::fs::write(&path, config).map_err(|e| e.to_string())?;
    Ok(path)
}

/// A free loopback port: bound, read, released. A race with another process
/// is possible but unlikely; the server start then fails loudly.
pub fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

/// A minimal blocking HTTP POST, so the harness needs no async runtime.
fn http_post(port: u16, sql: &str) -> Result<String, String> {
    use std::io::{Read, Write};
    let mut stream =
        std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    let request = format!(
        "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{sql}",
        sql.len()
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .map_err(|e| e.to_string())?;
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("malformed HTTP response")?;
    let head = String::from_utf8_lossy(&response[..split]).to_ascii_lowercase();
    let body = &response[split + 4..];
    let body = if head.contains("transfer-encoding: chunked") {
        dechunk(body)
    } else {
        body.to_vec()
    };
    let body = String::from_utf8_lossy(&body).into_owned();
    if head.starts_with("http/1.1 200") || head.starts_with("http/1.0 200") {
        Ok(body)
    } else {
        Err(body)
    }
}

fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = rest.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&rest[..line_end])
            .ok()
            .and_then(|s| usize::from_str_radix(s.trim(), 16).ok());
        let after = &rest[line_end + 2..];
        match size {
            Some(size) if size > 0 && after.len() >= size => {
                out.extend_from_slice(&after[..size]);
                rest = after[size..]
                    .strip_prefix(b"\r\n")
                    .unwrap_or(&after[size..]);
            }
            _ => break,
        }
    }
    out
}
