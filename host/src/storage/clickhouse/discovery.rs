//! Discovery: metric names, dimension keys and values of one tenant, each a
//! `DISTINCT` over the tenant's (and metric's) prefix of the sort key.
//! ClickHouse orders strings bytewise, as Rust does, so results come sorted.

use clickhouse::Row;
use serde::Deserialize;

use super::ClickHouseStore;
use super::sql::{Sql, push_dimension_value, push_has_dimension};
use crate::model::TenantId;
use crate::storage::StorageError;

#[derive(Row, Deserialize)]
struct Name {
    name: String,
}

pub async fn metrics(
    store: &ClickHouseStore,
    tenant: &TenantId,
) -> Result<Vec<String>, StorageError> {
    let mut sql = Sql::new("SELECT DISTINCT metric AS name FROM ");
    sql.push(&store.tables.samples)
        .push(" WHERE tenant = ")
        .string(tenant.as_str())
        .push(" ORDER BY name");
    names(store, sql, "list metrics").await
}

pub async fn dimension_keys(
    store: &ClickHouseStore,
    tenant: &TenantId,
    metric: &str,
) -> Result<Vec<String>, StorageError> {
    let mut sql = Sql::new("SELECT DISTINCT arrayJoin(dim_keys) AS name FROM ");
    sql.push(&store.tables.samples)
        .push(" WHERE tenant = ")
        .string(tenant.as_str())
        .push(" AND metric = ")
        .string(metric)
        .push(" ORDER BY name");
    names(store, sql, "list dimension keys").await
}

pub async fn dimension_values(
    store: &ClickHouseStore,
    tenant: &TenantId,
    metric: &str,
    key: &str,
    limit: usize,
) -> Result<Vec<String>, StorageError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let mut sql = Sql::new("SELECT DISTINCT ");
    push_dimension_value(&mut sql, key);
    sql.push(" AS name FROM ")
        .push(&store.tables.samples)
        .push(" WHERE tenant = ")
        .string(tenant.as_str())
        .push(" AND metric = ")
        .string(metric)
        .push(" AND ");
    push_has_dimension(&mut sql, key);
    sql.push(" ORDER BY name LIMIT ")
        .int(i64::try_from(limit).unwrap_or(i64::MAX));
    names(store, sql, "list dimension values").await
}

async fn names(
    store: &ClickHouseStore,
    sql: Sql,
    doing: &str,
) -> Result<Vec<String>, StorageError> {
    let rows: Vec<Name> = store.fetch_all(sql, doing).await?;
    Ok(rows.into_iter().map(|row| row.name).collect())
}
