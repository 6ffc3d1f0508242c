//! State that every pod must see the same way, kept in ClickHouse so pods
//! stay stateless: uploaded plugins, tenants' plugin binding chains, and
//! cardinality sketches.
//!
//! One table, `shared_state`, holds versioned documents keyed by
//! `(kind, tenant, name)`; a write appends a version, a delete appends a
//! tombstone, and readers take the newest version per key with
//! `argMax(…, (updated_ms, writer))`. The engine is `ReplacingMergeTree`, so
//! background merges drop superseded versions; reads never depend on merges
//! having run. On a cluster it is Distributed, sharded by the key, so all
//! versions of one document live on one shard.
//!
//! Pods notice changes by polling [`SharedState::change_token`], a cheap
//! aggregate, and reload only when it moved.
//!
//! These reads span tenants on purpose: a pod loads every tenant's plugins
//! and sketches at start, as the embedded backend reads its directories.
//! They never touch metric data.

use std::time::Duration;

use clickhouse::Row;
use serde::Deserialize;

use super::error::{map_error, timed_out};
use super::sql::Sql;
use crate::model::TenantId;
use crate::storage::StorageError;

/// What a document is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DocumentKind {
    /// `name` = plugin name, `meta` = manifest (TOML), `body` = wasm.
    Plugin,
    /// `name` = "", `body` = the binding set (JSON).
    Bindings,
    /// `name` = the pod that counted, `body` = its sketches of the tenant.
    Sketch,
}

impl DocumentKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Plugin => "plugin",
            Self::Bindings => "bindings",
            Self::Sketch => "sketch",
        }
    }
}

/// The newest version of one document.
#[derive(Clone, Debug, PartialEq)]
pub struct Document {
    /// `None`: global (plugins only).
    pub tenant: Option<TenantId>,
    pub name: String,
    pub meta: String,
    pub body: Vec<u8>,
}

/// Changes whenever any document of a kind is written or deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ChangeToken {
    versions: u64,
    newest_ms: i64,
}

pub struct SharedState {
    client: clickhouse::Client,
    table: String,
    /// Identifies this pod's writes: a tiebreak between equal timestamps,
    /// and the key of its sketches.
    pod_id: String,
    timeout: Duration,
}

#[derive(Row, Deserialize)]
struct DocumentRow {
    tenant: String,
    name: String,
    meta: String,
    body: Vec<u8>,
}

#[derive(Row, Deserialize)]
struct TokenRow {
    versions: u64,
    newest_ms: i64,
}

impl SharedState {
    pub(super) fn new(client: clickhouse::Client, table: String, timeout: Duration) -> Self {
        Self {
            client,
            table,
            pod_id: uuid::Uuid::new_v4().to_string(),
            timeout,
        }
    }

    pub fn pod_id(&self) -> &str {
        &self.pod_id
    }

    /// Stores a new version of a document.
    pub async fn put(
        &self,
        kind: DocumentKind,
        tenant: Option<&TenantId>,
        name: &str,
        meta: &str,
        body: &[u8],
    ) -> Result<(), StorageError> {
        self.append(kind, tenant, name, meta, body, false).await
    }

    /// Deletes a document; returns whether it existed.
    pub async fn delete(
        &self,
        kind: DocumentKind,
        tenant: Option<&TenantId>,
        name: &str,
    ) -> Result<bool, StorageError> {
        let existed = self
            .list(kind)
            .await?
            .iter()
            .any(|doc| doc.tenant.as_ref() == tenant && doc.name == name);
        if existed {
            self.append(kind, tenant, name, "", &[], true).await?;
        }
        Ok(existed)
    }

    /// The newest live version of every document of `kind`, ordered by
    /// tenant (global first) and name.
    pub async fn list(&self, kind: DocumentKind) -> Result<Vec<Document>, StorageError> {
        let mut sql = Sql::new(
            "SELECT tenant, name, argMax(meta, (updated_ms, writer)) AS meta, \
             argMax(body, (updated_ms, writer)) AS body FROM ",
        );
        sql.push(&self.table)
            .push(" WHERE kind = ")
            .string(kind.as_str())
            .push(
                " GROUP BY tenant, name \
                 HAVING argMax(deleted, (updated_ms, writer)) = 0 ORDER BY tenant, name",
            );
        let rows: Vec<DocumentRow> = self.fetch(sql, "list shared state").await?;
        Ok(rows
            .into_iter()
            .filter_map(|row| {
                let tenant = match row.tenant.as_str() {
                    "" => None,
                    id => Some(TenantId::new(id).ok()?),
                };
                Some(Document {
                    tenant,
                    name: row.name,
                    meta: row.meta,
                    body: row.body,
                })
            })
            .collect())
    }

    /// A value that changes when any document of `kind` changes.
    pub async fn change_token(&self, kind: DocumentKind) -> Result<ChangeToken, StorageError> {
        let mut sql = Sql::new("SELECT count() AS versions, max(updated_ms) AS newest_ms FROM ");
        sql.push(&self.table)
            .push(" WHERE kind = ")
            .string(kind.as_str());
        let rows: Vec<TokenRow> = self.fetch(sql, "shared state change token").await?;
        Ok(rows
            .first()
            .map(|row| ChangeToken {
                versions: row.versions,
                newest_ms: row.newest_ms,
            })
            .unwrap_or_default())
    }

    async fn append(
        &self,
        kind: DocumentKind,
        tenant: Option<&TenantId>,
        name: &str,
        meta: &str,
        body: &[u8],
        deleted: bool,
    ) -> Result<(), StorageError> {
        let mut row = Vec::with_capacity(body.len() + meta.len() + 128);
        put_bytes(&mut row, kind.as_str().as_bytes());
        put_bytes(&mut row, tenant.map_or("", TenantId::as_str).as_bytes());
        put_bytes(&mut row, name.as_bytes());
        put_bytes(&mut row, meta.as_bytes());
        put_bytes(&mut row, body);
        row.push(u8::from(deleted));
        row.extend_from_slice(&now_ms().to_le_bytes());
        put_bytes(&mut row, self.pod_id.as_bytes());
        let sql = format!(
            "INSERT INTO {} (kind, tenant, name, meta, body, deleted, updated_ms, writer) FORMAT RowBinary",
            self.table
        );
        let mut insert = self
            .client
            .insert_formatted_with(sql)
            .with_setting("insert_distributed_sync", "1")
            .with_timeouts(Some(self.timeout), Some(self.timeout));
        let attempt = async {
            insert.send(bytes::Bytes::from(row)).await?;
            insert.end().await
        };
        match tokio::time::timeout(self.timeout, attempt).await {
            Ok(result) => result.map_err(|e| map_error(e, "write shared state")),
            Err(_) => Err(timed_out("write shared state")),
        }
    }

    async fn fetch<T>(&self, sql: Sql, doing: &str) -> Result<Vec<T>, StorageError>
    where
        T: clickhouse::RowOwned + clickhouse::RowRead,
    {
        let fetch = self.client.query_raw(sql.as_str()).fetch_all::<T>();
        match tokio::time::timeout(self.timeout, fetch).await {
            Ok(result) => result.map_err(|e| map_error(e, doing)),
            Err(_) => Err(timed_out(doing)),
        }
    }
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    let mut n = bytes.len() as u64;
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
    out.extend_from_slice(bytes);
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
