//! The schema, created and migrated by the host.
//!
//! `samples` holds one row per point:
//!
//! | column | type | why |
//! | --- | --- | --- |
//! | `tenant`, `metric` | String (LowCardinality on ≥ 21) | leading sort key: every read is one tenant's one metric |
//! | `series` | UInt64 | hash of tenant + metric + dimensions; sort key and sharding key |
//! | `time` | Int64, ms | DateTime64 is missing on 18.16; ms as Int64 works everywhere |
//! | `value` | Float64 | |
//! | `dim_keys`, `dim_values` | Array(String), parallel, sorted by key | `dim_values[indexOf(dim_keys, k)]` is `''` when missing, the model's semantics; filters and groupBy run in SQL |
//!
//! MergeTree, `PARTITION BY` month of `time` (retention drops whole months),
//! `ORDER BY (tenant, metric, series, time)`.
//!
//! With a cluster, `samples_local` is the MergeTree on every shard and
//! `samples` a `Distributed` table over them, sharded by `series`. DDL goes to
//! every shard: with `ON CLUSTER` when the cluster runs distributed DDL
//! (Keeper), or statement by statement to each configured shard URL.
//!
//! Each DDL target records applied versions in `schema_migrations`;
//! migrations are idempotent (`IF NOT EXISTS`), so pods starting together
//! may race without harm.

use clickhouse::Row;
use serde::Deserialize;

use super::error::map_error;
use super::sql::{Sql, push_identifier, qualified};
use crate::storage::StorageError;

/// `major.minor` of the server, read from `SELECT version()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ServerVersion {
    pub major: u32,
    pub minor: u32,
}

impl ServerVersion {
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.trim().split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        Some(Self { major, minor })
    }

    /// LowCardinality(String) is experimental on 18.x and the default
    /// recommendation for low-cardinality strings on current releases.
    pub fn has_low_cardinality(self) -> bool {
        self.major >= 21
    }

    /// Data-skipping `bloom_filter` indexes (absent on 18.16).
    pub fn has_bloom_filter_index(self) -> bool {
        self.major >= 21
    }
}

/// Where DDL and mutations run.
#[derive(Clone)]
pub enum DdlTargets {
    /// One server: its `samples` table is the MergeTree.
    Single(clickhouse::Client),
    /// A cluster whose servers run distributed DDL: `ON CLUSTER` on one.
    OnCluster {
        client: clickhouse::Client,
        cluster: String,
    },
    /// A cluster without distributed DDL: every shard, one by one.
    Shards(Vec<clickhouse::Client>),
}

impl DdlTargets {
    /// Clients to send each statement to.
    pub fn clients(&self) -> Vec<&clickhouse::Client> {
        match self {
            Self::Single(client) | Self::OnCluster { client, .. } => vec![client],
            Self::Shards(clients) => clients.iter().collect(),
        }
    }

    /// ` ON CLUSTER `name`` or nothing.
    pub fn on_cluster(&self) -> String {
        match self {
            Self::OnCluster { cluster, .. } => {
                let mut out = " ON CLUSTER ".to_owned();
                push_identifier(&mut out, cluster);
                out
            }
            _ => String::new(),
        }
    }

    pub fn is_cluster(&self) -> bool {
        !matches!(self, Self::Single(_))
    }
}

/// Table names for one configuration.
#[derive(Clone, Debug)]
pub struct Tables {
    pub database: String,
    /// `samples`: what reads and inserts use (Distributed on a cluster).
    pub samples: String,
    /// The MergeTree that holds the data on each server: what retention
    /// alters and drops partitions of.
    pub samples_local: String,
    /// Bare name of the local table, for `system.parts` lookups.
    pub samples_local_name: &'static str,
    /// Versioned documents shared by all pods (see `shared_state`).
    pub shared_state: String,
    pub shared_state_local: String,
    pub shared_state_local_name: &'static str,
}

impl Tables {
    pub fn new(database: &str, cluster: bool) -> Self {
        let local = if cluster { "samples_local" } else { "samples" };
        let shared_local = if cluster {
            "shared_state_local"
        } else {
            "shared_state"
        };
        Self {
            database: database.to_owned(),
            samples: qualified(database, "samples"),
            samples_local: qualified(database, local),
            samples_local_name: local,
            shared_state: qualified(database, "shared_state"),
            shared_state_local: qualified(database, shared_local),
            shared_state_local_name: shared_local,
        }
    }
}

struct Migration {
    version: u32,
    name: &'static str,
    statements: fn(&MigrationContext<'_>) -> Vec<String>,
}

struct MigrationContext<'a> {
    tables: &'a Tables,
    targets: &'a DdlTargets,
    cluster: Option<&'a str>,
    version: ServerVersion,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "samples MergeTree",
        statements: create_samples_local,
    },
    Migration {
        version: 2,
        name: "samples Distributed over the cluster",
        statements: create_samples_distributed,
    },
    Migration {
        version: 3,
        name: "shared_state for plugins, bindings and sketches",
        statements: create_shared_state,
    },
];

fn create_shared_state(ctx: &MigrationContext<'_>) -> Vec<String> {
    let mut statements = vec![format!(
        "CREATE TABLE IF NOT EXISTS {table}{on_cluster} (\n  \
           kind String,\n  tenant String,\n  name String,\n  meta String,\n  body String,\n  \
           deleted UInt8,\n  updated_ms Int64,\n  writer String\n) \
         ENGINE = ReplacingMergeTree(updated_ms) ORDER BY (kind, tenant, name)",
        table = ctx.tables.shared_state_local,
        on_cluster = ctx.targets.on_cluster(),
    )];
    if let Some(cluster) = ctx.cluster {
        let mut sql = Sql::new("CREATE TABLE IF NOT EXISTS ");
        sql.push(&ctx.tables.shared_state)
            .push(&ctx.targets.on_cluster())
            .push(" AS ")
            .push(&ctx.tables.shared_state_local)
            .push(" ENGINE = Distributed(")
            .string(cluster)
            .push(", ")
            .string(&ctx.tables.database)
            .push(", ")
            .string(ctx.tables.shared_state_local_name)
            .push(", cityHash64(kind, tenant, name))");
        statements.push(sql.into_string());
    }
    statements
}

fn create_samples_local(ctx: &MigrationContext<'_>) -> Vec<String> {
    let name_type = if ctx.version.has_low_cardinality() {
        "LowCardinality(String)"
    } else {
        "String"
    };
    let index = if ctx.version.has_bloom_filter_index() {
        ",\n  INDEX dim_values_bloom dim_values TYPE bloom_filter GRANULARITY 4"
    } else {
        ""
    };
    vec![format!(
        "CREATE TABLE IF NOT EXISTS {table}{on_cluster} (\n  \
           tenant {name_type},\n  metric {name_type},\n  series UInt64,\n  time Int64,\n  \
           value Float64,\n  dim_keys Array(String),\n  dim_values Array(String){index}\n) \
         ENGINE = MergeTree \
         PARTITION BY toYYYYMM(toDateTime(intDiv(time, 1000))) \
         ORDER BY (tenant, metric, series, time)",
        table = ctx.tables.samples_local,
        on_cluster = ctx.targets.on_cluster(),
    )]
}

fn create_samples_distributed(ctx: &MigrationContext<'_>) -> Vec<String> {
    let Some(cluster) = ctx.cluster else {
        return Vec::new();
    };
    let mut sql = Sql::new("CREATE TABLE IF NOT EXISTS ");
    sql.push(&ctx.tables.samples)
        .push(&ctx.targets.on_cluster())
        .push(" AS ")
        .push(&ctx.tables.samples_local)
        .push(" ENGINE = Distributed(")
        .string(cluster)
        .push(", ")
        .string(&ctx.tables.database)
        .push(", ")
        .string(ctx.tables.samples_local_name)
        .push(", series)");
    vec![sql.into_string()]
}

#[derive(Row, Deserialize)]
struct AppliedVersion {
    version: u32,
}

/// Brings every DDL target to the newest schema version.
pub async fn migrate(
    targets: &DdlTargets,
    tables: &Tables,
    cluster: Option<&str>,
    version: ServerVersion,
) -> Result<(), StorageError> {
    let ctx = MigrationContext {
        tables,
        targets,
        cluster,
        version,
    };
    let on_cluster = targets.on_cluster();
    let mut create_db = Sql::new("CREATE DATABASE IF NOT EXISTS ");
    create_db.ident(&tables.database).push(&on_cluster);
    let migrations_table = qualified(&tables.database, "schema_migrations");
    let create_migrations = format!(
        "CREATE TABLE IF NOT EXISTS {migrations_table}{on_cluster} \
         (version UInt32, name String, applied_ms Int64) ENGINE = MergeTree ORDER BY version"
    );
    for client in targets.clients() {
        execute(client, create_db.as_str(), "create database").await?;
        execute(client, &create_migrations, "create schema_migrations").await?;
        let applied: Vec<u32> = client
            .query_raw(&format!("SELECT DISTINCT version FROM {migrations_table}"))
            .fetch_all::<AppliedVersion>()
            .await
            .map_err(|e| map_error(e, "read schema_migrations"))?
            .into_iter()
            .map(|row| row.version)
            .collect();
        for migration in MIGRATIONS {
            if applied.contains(&migration.version) {
                continue;
            }
            for statement in (migration.statements)(&ctx) {
                execute(client, &statement, migration.name).await?;
            }
            let mut record = Sql::new("INSERT INTO ");
            record
                .push(&migrations_table)
                .push(" (version, name, applied_ms) VALUES (")
                .int(i64::from(migration.version))
                .push(", ")
                .string(migration.name)
                .push(", ")
                .int(now_ms())
                .push(")");
            execute(client, record.as_str(), "record migration").await?;
            tracing::info!(
                version = migration.version,
                name = migration.name,
                "ClickHouse migration applied"
            );
        }
    }
    Ok(())
}

async fn execute(client: &clickhouse::Client, sql: &str, doing: &str) -> Result<(), StorageError> {
    client
        .query_raw(sql)
        .execute()
        .await
        .map_err(|e| map_error(e, doing))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_versions_and_gates_features() {
        let old = ServerVersion::parse("18.16.1").unwrap();
        assert!(!old.has_low_cardinality() && !old.has_bloom_filter_index());
        let new = ServerVersion::parse("24.8.4.13").unwrap();
        assert!(new.has_low_cardinality() && new.has_bloom_filter_index());
        assert!(ServerVersion::parse("garbage").is_none());
    }
}
