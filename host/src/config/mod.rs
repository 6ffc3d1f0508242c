//! Configuration: defaults, then a TOML file, then `LUMINATE_*` environment
//! variables, then command-line flags; later sources win.
//!
//! Every field is reachable from the environment as
//! `LUMINATE_<SECTION>__<FIELD>` (e.g. `LUMINATE_STORAGE__SYNC_WRITES=true`);
//! a few common ones have short aliases (see [`env_aliases`]).

mod duration;
mod lifecycle;
mod load;
mod promql;
mod query;
mod server;
mod telemetry;
mod tls;

pub use duration::ConfigDuration;
pub use lifecycle::LifecycleConfig;
pub use load::{ConfigError, Overrides, load};
pub use promql::PromqlConfig;
pub use query::QueryConfig;
pub use server::ServerConfig;
pub use telemetry::{MetricsListen, TelemetryConfig};
pub use tls::TlsConfig;

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::model::ValidationLimits;

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub listen: SocketAddr,
    pub server: ServerConfig,
    pub data_dir: PathBuf,
    /// The tenant used when authentication is disabled (development only).
    pub default_tenant: String,
    pub storage: StorageConfig,
    pub api: ApiConfig,
    pub validation: ValidationLimits,
    pub retention: RetentionConfig,
    pub plugins: crate::plugins::PluginsConfig,
    pub query: QueryConfig,
    pub promql: PromqlConfig,
    pub telemetry: TelemetryConfig,
    pub lifecycle: LifecycleConfig,
    pub tls: TlsConfig,
    pub auth: crate::auth::AuthConfig,
    pub limits: crate::limits::LimitsConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
            server: ServerConfig::default(),
            data_dir: PathBuf::from("./data"),
            default_tenant: "default".into(),
            storage: StorageConfig::default(),
            api: ApiConfig::default(),
            validation: ValidationLimits::default(),
            retention: RetentionConfig::default(),
            plugins: crate::plugins::PluginsConfig::default(),
            query: QueryConfig::default(),
            promql: PromqlConfig::default(),
            telemetry: TelemetryConfig::default(),
            lifecycle: LifecycleConfig::default(),
            tls: TlsConfig::default(),
            auth: crate::auth::AuthConfig::default(),
            limits: crate::limits::LimitsConfig::default(),
        }
    }
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum StorageBackend {
    /// RocksDB under `data_dir`: the zero-setup default.
    Embedded,
    /// RocksDB in memory: nothing survives a restart (development, tests).
    Memory,
    /// A ClickHouse server or cluster shared by many stateless pods.
    Clickhouse,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    pub backend: StorageBackend,
    /// fsync the WAL (group commit) before acknowledging a write.
    pub sync_writes: bool,
    pub clickhouse: ClickHouseConfig,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            backend: StorageBackend::Embedded,
            sync_writes: false,
            clickhouse: ClickHouseConfig::default(),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ClickHouseConfig {
    pub url: String,
    pub database: String,
    pub user: String,
    pub password: String,
    /// Name of a cluster in ClickHouse's `remote_servers`; when set, local
    /// tables are created on every shard with a Distributed table over them.
    pub cluster: Option<String>,
    /// Flush the batching writer at this many rows...
    pub flush_max_rows: usize,
    /// ...or after this long, whichever comes first.
    pub flush_interval: ConfigDuration,
    /// Inserts that may run at once; more batches wait in the queue.
    pub max_concurrent_flushes: usize,
    /// An insert or query slower than this fails as "unavailable" (503).
    pub request_timeout: ConfigDuration,
    /// LZ4-compress traffic with ClickHouse: saves network between hosts,
    /// costs CPU when ClickHouse is on the same machine.
    pub compression: bool,
    /// How often a pod polls ClickHouse for plugins and chains changed by
    /// other pods.
    pub shared_state_poll: ConfigDuration,
    /// How long startup waits for ClickHouse to answer before giving up, so
    /// pods and ClickHouse may start in any order.
    pub startup_wait: ConfigDuration,
    /// HTTP URLs of every shard, for DDL and mutations on the local tables
    /// when the cluster cannot run `ON CLUSTER` (no ZooKeeper/Keeper, as on
    /// a bare pair of servers). Empty: DDL uses `ON CLUSTER <cluster>`.
    pub shard_urls: Vec<String>,
}

impl Default for ClickHouseConfig {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:8123".into(),
            database: "luminate".into(),
            user: "default".into(),
            password: String::new(),
            cluster: None,
            flush_max_rows: 100_000,
            flush_interval: ConfigDuration::from_millis(50),
            max_concurrent_flushes: 4,
            request_timeout: ConfigDuration::from_millis(10_000),
            startup_wait: ConfigDuration::from_millis(60_000),
            compression: true,
            shared_state_poll: ConfigDuration::from_millis(1_000),
            shard_urls: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    pub max_metrics_per_request: usize,
    /// Limit on the request body after decompression, in bytes.
    pub max_body_bytes: usize,
    /// Cap on values returned by the dimension-values discovery endpoint.
    pub max_discovery_values: usize,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            max_metrics_per_request: 10_000,
            max_body_bytes: 16 * 1024 * 1024,
            max_discovery_values: 10_000,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionConfig {
    /// Points older than this are deleted in the background; none = keep.
    pub period: Option<ConfigDuration>,
    /// How often the background sweep runs.
    pub sweep_interval: ConfigDuration,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            period: Some(ConfigDuration::from_millis(30 * 86_400_000)),
            sweep_interval: ConfigDuration::from_millis(3_600_000),
        }
    }
}

/// Short environment names for the most used settings, besides the
/// generic `LUMINATE_<SECTION>__<FIELD>` form.
pub fn env_aliases() -> &'static [(&'static str, &'static str)] {
    &[
        ("LUMINATE_LISTEN", "listen"),
        ("LUMINATE_DATA_DIR", "data_dir"),
        ("LUMINATE_STORAGE", "storage.backend"),
        ("LUMINATE_CLICKHOUSE_URL", "storage.clickhouse.url"),
        ("LUMINATE_CLICKHOUSE_CLUSTER", "storage.clickhouse.cluster"),
        ("LUMINATE_METRICS_LISTEN", "telemetry.metrics_listen"),
        ("LUMINATE_MAX_CONNECTIONS", "server.max_connections"),
        ("LUMINATE_LOG_LEVEL", "telemetry.log_level"),
        ("LUMINATE_LOG_FORMAT", "telemetry.log_format"),
        ("LUMINATE_TLS_CERT", "tls.cert_path"),
        ("LUMINATE_TLS_KEY", "tls.key_path"),
        ("LUMINATE_JWT_HS256_SECRET", "auth.hs256_secret"),
    ]
}
