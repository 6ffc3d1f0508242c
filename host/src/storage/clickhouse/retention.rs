//! Deleting old points. Whole months past the cutoff go with
//! `DROP PARTITION` (instant, no rewrite); the rest of the cutoff month, and
//! per-metric deletes, with an `ALTER TABLE … DELETE` mutation. Mutations are
//! asynchronous in ClickHouse, so each call waits until its mutations are
//! done: when it returns, the points are gone.
//!
//! Both run against the local MergeTree on every DDL target (each shard).

use std::time::Duration;

use clickhouse::Row;
use serde::Deserialize;

use super::ClickHouseStore;
use super::error::timed_out;
use super::sql::Sql;
use crate::model::TenantId;
use crate::storage::StorageError;

/// How long to wait for a mutation to finish before reporting failure.
const MUTATION_WAIT: Duration = Duration::from_secs(120);

#[derive(Row, Deserialize)]
struct Count {
    count: u64,
}

#[derive(Row, Deserialize)]
struct Partition {
    partition: String,
}

pub async fn delete_before(
    store: &ClickHouseStore,
    tenant: &TenantId,
    metric: &str,
    before_ms: i64,
) -> Result<(), StorageError> {
    let mut condition = Sql::new("tenant = ");
    condition
        .string(tenant.as_str())
        .push(" AND metric = ")
        .string(metric)
        .push(" AND time < ")
        .int(before_ms);
    delete_where(store, condition.as_str()).await
}

pub async fn enforce(store: &ClickHouseStore, cutoff_ms: i64) -> Result<(), StorageError> {
    let local = store.tables.samples_local.clone();
    for client in store.ddl.clients() {
        let mut sql = Sql::new("SELECT DISTINCT partition FROM system.parts WHERE database = ");
        sql.string(&store.tables.database)
            .push(" AND table = ")
            .string(store.tables.samples_local_name)
            .push(" AND active");
        let partitions: Vec<Partition> = store.fetch_all_on(client, sql, "list partitions").await?;
        for partition in partitions {
            let Some(month) = partition.partition.trim_matches('\'').parse::<u32>().ok() else {
                continue;
            };
            if month_end_ms(month).is_some_and(|end| end <= cutoff_ms) {
                let mut drop = Sql::new("ALTER TABLE ");
                drop.push(&local)
                    .push(&store.ddl.on_cluster())
                    .push(" DROP PARTITION ")
                    .int(i64::from(month));
                store.execute_on(client, drop, "drop partition").await?;
                tracing::info!(month, "retention dropped a partition");
            }
        }
    }
    let mut condition = Sql::new("time < ");
    condition.int(cutoff_ms);
    delete_where(store, condition.as_str()).await
}

/// Runs `ALTER TABLE local DELETE WHERE condition` where rows match, and
/// waits for the mutation. `condition` is SQL built with escaped values.
async fn delete_where(store: &ClickHouseStore, condition: &str) -> Result<(), StorageError> {
    let mut count = Sql::new("SELECT count() AS count FROM ");
    count
        .push(&store.tables.samples)
        .push(" WHERE ")
        .push(condition);
    let matching: Vec<Count> = store.fetch_all(count, "count rows to delete").await?;
    if matching.first().is_none_or(|row| row.count == 0) {
        return Ok(());
    }
    for client in store.ddl.clients() {
        let mut delete = Sql::new("ALTER TABLE ");
        delete
            .push(&store.tables.samples_local)
            .push(&store.ddl.on_cluster())
            .push(" DELETE WHERE ")
            .push(condition);
        store.execute_on(client, delete, "delete mutation").await?;
        wait_for_mutations(store, client).await?;
    }
    Ok(())
}

async fn wait_for_mutations(
    store: &ClickHouseStore,
    client: &clickhouse::Client,
) -> Result<(), StorageError> {
    let started = tokio::time::Instant::now();
    let mut pause = Duration::from_millis(20);
    loop {
        let mut sql = Sql::new("SELECT count() AS count FROM system.mutations WHERE database = ");
        sql.string(&store.tables.database)
            .push(" AND table = ")
            .string(store.tables.samples_local_name)
            .push(" AND is_done = 0");
        let pending: Vec<Count> = store.fetch_all_on(client, sql, "wait for mutation").await?;
        if pending.first().is_none_or(|row| row.count == 0) {
            return Ok(());
        }
        if started.elapsed() > MUTATION_WAIT {
            return Err(timed_out("delete mutation"));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(500));
    }
}

/// The first millisecond after month `yyyymm` (UTC), the partition's end.
fn month_end_ms(yyyymm: u32) -> Option<i64> {
    let (year, month) = ((yyyymm / 100) as i32, (yyyymm % 100) as u8);
    let (year, month) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    let month = time::Month::try_from(month).ok()?;
    let date = time::Date::from_calendar_date(year, month, 1).ok()?;
    Some(date.midnight().assume_utc().unix_timestamp() * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn month_end_is_the_first_instant_of_the_next_month() {
        assert_eq!(month_end_ms(197001), Some(31 * 86_400_000));
        assert_eq!(month_end_ms(202312), Some(1_704_067_200_000)); // 2024-01-01
        assert_eq!(month_end_ms(202313), None);
    }
}
