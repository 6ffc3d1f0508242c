//! Aggregate, range and rate queries, each one SQL statement computed by
//! ClickHouse: filters, step buckets, aggregations, counter resets, grouping,
//! ordering and the limit. Rust only reshapes the returned rows.
//!
//! Each statement asks for `limit + 1` rows so `truncated` is exact.

use clickhouse::Row;
use serde::Deserialize;

use super::ClickHouseStore;
use super::sql::{
    Sql, aggregate_expr, bucket_expr, push_dimension_value, push_has_dimension,
    push_selector_condition,
};
use crate::model::{
    AggregateQuery, AggregateResult, AggregateRow, Dimensions, QueryBudget, RangeQuery, RateQuery,
    Series, SeriesResult, TenantId,
};
use crate::storage::StorageError;

#[derive(Row, Deserialize)]
struct GroupValueRow {
    present: Vec<u8>,
    values: Vec<String>,
    value: f64,
}

#[derive(Row, Deserialize)]
struct SeriesRow {
    keys: Vec<String>,
    values: Vec<String>,
    points: Vec<(i64, f64)>,
}

pub async fn aggregate(
    store: &ClickHouseStore,
    tenant: &TenantId,
    query: &AggregateQuery,
) -> Result<AggregateResult, StorageError> {
    let value = aggregate_expr(query.aggregation, "value")?;
    let mut sql = Sql::new("SELECT ");
    if query.group_by.is_empty() {
        sql.push("emptyArrayUInt8() AS g_present, emptyArrayString() AS g_values, ");
    } else {
        sql.push("[");
        for (i, key) in query.group_by.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            push_has_dimension(&mut sql, key);
        }
        sql.push("] AS g_present, [");
        for (i, key) in query.group_by.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            push_dimension_value(&mut sql, key);
        }
        sql.push("] AS g_values, ");
    }
    sql.push(&value)
        .push(" AS agg_value FROM ")
        .push(&store.tables.samples);
    sql.push(" WHERE ");
    push_selector_condition(&mut sql, tenant, &query.selector);
    if query.group_by.is_empty() {
        // One group, and none at all when nothing matched.
        sql.push(" GROUP BY tenant");
    } else {
        sql.push(" GROUP BY g_present, g_values ORDER BY ");
        // A missing value (present = 0) sorts before any present one.
        for i in 1..=query.group_by.len() {
            if i > 1 {
                sql.push(", ");
            }
            sql.push(&format!("g_present[{i}], g_values[{i}]"));
        }
    }
    push_limit(&mut sql, query.limit);
    let rows: Vec<GroupValueRow> = store
        .fetch_all_within(sql, "aggregate query", &query.selector.budget)
        .await?;
    let mut rows: Vec<AggregateRow> = rows
        .into_iter()
        .map(|row| AggregateRow {
            group: row
                .present
                .iter()
                .zip(row.values)
                .map(|(present, value)| (*present != 0).then_some(value))
                .collect(),
            value: row.value,
        })
        .collect();
    let truncated = truncate(&mut rows, query.limit);
    Ok(AggregateResult { rows, truncated })
}

pub async fn range(
    store: &ClickHouseStore,
    tenant: &TenantId,
    query: &RangeQuery,
) -> Result<SeriesResult, StorageError> {
    let group_by = query.group_by.as_deref();
    let mut sql = Sql::new("SELECT ");
    match query.step {
        None => {
            push_series_columns(&mut sql, group_by);
            sql.push(", arraySort(groupArray((time, value))) AS points FROM ")
                .push(&store.tables.samples)
                .push(" WHERE ");
            push_selector_condition(&mut sql, tenant, &query.selector);
            sql.push(" GROUP BY s_keys, s_values");
        }
        Some((step_ms, aggregation)) => {
            check_step(step_ms)?;
            let value = aggregate_expr(aggregation, "value")?;
            sql.push("s_keys, s_values, arraySort(groupArray((b_time, b_value))) AS points FROM (SELECT ");
            push_series_columns(&mut sql, group_by);
            sql.push(", ")
                .push(&bucket_expr("time", step_ms))
                .push(" AS b_time, ")
                .push(&value)
                .push(" AS b_value FROM ")
                .push(&store.tables.samples)
                .push(" WHERE ");
            push_selector_condition(&mut sql, tenant, &query.selector);
            sql.push(" GROUP BY s_keys, s_values, b_time) GROUP BY s_keys, s_values");
        }
    }
    finish_series_query(
        store,
        sql,
        query.limit,
        &query.selector.budget,
        "range query",
    )
    .await
}

pub async fn rate(
    store: &ClickHouseStore,
    tenant: &TenantId,
    query: &RateQuery,
) -> Result<SeriesResult, StorageError> {
    check_step(query.step_ms)?;
    let step_seconds = query.step_ms as f64 / 1000.0;
    // Innermost: each series' points in time order. Middle: one increase per
    // point after the first (the value itself after a counter reset), in the
    // bucket of the later point, summed per group and bucket. Outer: one row
    // per group with its points.
    let mut sql = Sql::new(
        "SELECT s_keys, s_values, arraySort(groupArray((b_time, b_rate))) AS points FROM (\
         SELECT s_keys, s_values, tupleElement(increase, 1) AS b_time, \
         sum(tupleElement(increase, 2)) / ",
    );
    sql.float(step_seconds).push(" AS b_rate FROM (SELECT ");
    push_series_columns(&mut sql, query.group_by.as_deref());
    sql.push(", arraySort(groupArray((time, value))) AS pts FROM ")
        .push(&store.tables.samples)
        .push(" WHERE ");
    push_selector_condition(&mut sql, tenant, &query.selector);
    sql.push(" GROUP BY series, dim_keys, dim_values) ARRAY JOIN arrayMap(i -> (")
        .push(&bucket_expr("tupleElement(pts[i], 1)", query.step_ms))
        .push(
            ", if(tupleElement(pts[i], 2) >= tupleElement(pts[i - 1], 2), \
             tupleElement(pts[i], 2) - tupleElement(pts[i - 1], 2), tupleElement(pts[i], 2))), \
             arraySlice(arrayEnumerate(pts), 2)) AS increase \
             GROUP BY s_keys, s_values, b_time) GROUP BY s_keys, s_values",
        );
    finish_series_query(
        store,
        sql,
        query.limit,
        &query.selector.budget,
        "rate query",
    )
    .await
}

fn check_step(step_ms: i64) -> Result<(), StorageError> {
    if step_ms <= 0 {
        return Err(StorageError::InvalidQuery(format!(
            "step must be positive, got {step_ms} ms"
        )));
    }
    Ok(())
}

/// `s_keys, s_values`: the dimensions a result series carries. Without
/// groupBy, a series' own; with groupBy, the group keys the series has, in
/// key order so they are canonical `Dimensions`.
fn push_series_columns(sql: &mut Sql, group_by: Option<&[String]>) {
    let Some(keys) = group_by else {
        sql.push("dim_keys AS s_keys, dim_values AS s_values");
        return;
    };
    let mut keys: Vec<&String> = keys.iter().collect();
    keys.sort();
    keys.dedup();
    if keys.is_empty() {
        sql.push("emptyArrayString() AS s_keys, emptyArrayString() AS s_values");
        return;
    }
    let mut present = Sql::new("[");
    for (i, key) in keys.iter().enumerate() {
        if i > 0 {
            present.push(", ");
        }
        push_has_dimension(&mut present, key);
    }
    present.push("]");
    sql.push("arrayFilter((k, p) -> p, [");
    for (i, key) in keys.iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        sql.string(key);
    }
    sql.push("], ").push(present.as_str()).push(") AS s_keys, ");
    sql.push("arrayFilter((v, p) -> p, [");
    for (i, key) in keys.iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        push_dimension_value(sql, key);
    }
    sql.push("], ").push(present.as_str()).push(") AS s_values");
}

/// Orders series by their dimensions as `Dimensions` orders them: pairwise,
/// key then value.
async fn finish_series_query(
    store: &ClickHouseStore,
    mut sql: Sql,
    limit: Option<usize>,
    budget: &QueryBudget,
    doing: &str,
) -> Result<SeriesResult, StorageError> {
    sql.push(" ORDER BY arrayMap((k, v) -> (k, v), s_keys, s_values)");
    push_limit(&mut sql, limit);
    let rows: Vec<SeriesRow> = store.fetch_all_within(sql, doing, budget).await?;
    // ClickHouse computed the answer, bounded by rows read; hold the answer
    // itself to the budget too before it is reshaped and serialized.
    let points: u64 = rows.iter().map(|row| row.points.len() as u64).sum();
    budget.check_returned(points)?;
    let mut series: Vec<Series> = rows
        .into_iter()
        .map(|row| Series {
            dimensions: Dimensions::from_pairs(row.keys.into_iter().zip(row.values)),
            points: row.points,
        })
        .collect();
    let truncated = truncate(&mut series, limit);
    Ok(SeriesResult { series, truncated })
}

fn push_limit(sql: &mut Sql, limit: Option<usize>) {
    if let Some(limit) = limit {
        let fetch = i64::try_from(limit)
            .unwrap_or(i64::MAX - 1)
            .saturating_add(1);
        sql.push(" LIMIT ").int(fetch);
    }
}

fn truncate<T>(rows: &mut Vec<T>, limit: Option<usize>) -> bool {
    match limit {
        Some(limit) if rows.len() > limit => {
            rows.truncate(limit);
            true
        }
        _ => false,
    }
}
