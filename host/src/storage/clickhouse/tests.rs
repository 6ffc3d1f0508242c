//! The ClickHouse backend against real `clickhouse-server` processes.
//! The shared conformance suite checks the trait's semantics; these cases
//! check what is particular to ClickHouse: escaping, SQL-side semantics,
//! batching, failure and recovery, retention, and the cluster layout.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::ClickHouseStore;
use super::testing::{ClickHouseServer, TwoShardCluster, require_cluster, require_server};
use crate::model::{
    AggregateQuery, Aggregation, Dimensions, Filter, FilterOp, Metric, RangeQuery, RateQuery,
    Selector, TenantId, TimeRange,
};
use crate::storage::{MetricsStore, StorageError};

/// One server for the whole test binary; each test uses its own database.
fn shared_server() -> Option<&'static ClickHouseServer> {
    static SERVER: OnceLock<Option<ClickHouseServer>> = OnceLock::new();
    SERVER.get_or_init(require_server).as_ref()
}

fn fresh_database(prefix: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

async fn store() -> Option<ClickHouseStore> {
    let server = shared_server()?;
    Some(
        ClickHouseStore::open(&server.config(&fresh_database("t")))
            .await
            .expect("open store"),
    )
}

fn tenant(id: &str) -> TenantId {
    TenantId::new(id).unwrap()
}

fn metric(name: &str, ts: i64, value: f64, dims: &[(&str, &str)]) -> Metric {
    Metric {
        name: name.to_owned(),
        value,
        timestamp_ms: ts,
        dimensions: dims_of(dims),
    }
}

fn dims_of(dims: &[(&str, &str)]) -> Dimensions {
    Dimensions::from_pairs(dims.iter().map(|(k, v)| (k.to_string(), v.to_string())))
}

fn selector(name: &str, filters: Vec<Filter>) -> Selector {
    Selector {
        metric: name.to_owned(),
        range: TimeRange {
            start_ms: 0,
            end_ms: i64::MAX,
        },
        filters,
        budget: crate::model::QueryBudget::UNLIMITED,
    }
}

fn eq(key: &str, value: &str) -> Filter {
    Filter {
        key: key.to_owned(),
        op: FilterOp::Eq(value.to_owned()),
    }
}

const HOSTILE: &[&str] = &[
    "'; DROP TABLE samples; --",
    "quote'single",
    "quote\"double",
    "back\\slash\\",
    "nul\0byte",
    "new\nline\ttab",
    "question?mark ?? ?fields",
    "`backtick`",
    "ünïcødé 🚀 日本",
    "{param:String}",
];

#[tokio::test]
async fn hostile_metric_names_and_dimensions_round_trip_exactly() {
    let Some(store) = store().await else { return };
    let t = tenant("hostile");
    let mut metrics = Vec::new();
    for (i, text) in HOSTILE.iter().enumerate() {
        metrics.push(metric(
            text,
            1_000 + i as i64,
            i as f64,
            &[(text, text), ("k", text)],
        ));
    }
    store.write(&t, metrics).await.unwrap();

    let mut expected: Vec<String> = HOSTILE.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(store.list_metrics(&t).await.unwrap(), expected);

    for (i, text) in HOSTILE.iter().enumerate() {
        let mut keys = vec![text.to_string(), "k".to_string()];
        keys.sort();
        keys.dedup();
        assert_eq!(
            store.list_dimension_keys(&t, text).await.unwrap(),
            keys,
            "{text:?}"
        );
        assert_eq!(
            store
                .list_dimension_values(&t, text, text, 10)
                .await
                .unwrap(),
            vec![text.to_string()]
        );
        let result = store
            .query_range(
                &t,
                &RangeQuery {
                    selector: selector(text, vec![eq("k", text), eq(text, text)]),
                    step: None,
                    group_by: None,
                    limit: None,
                    sorted: true,
                },
            )
            .await
            .unwrap();
        assert_eq!(result.series.len(), 1, "{text:?}");
        assert_eq!(
            result.series[0].dimensions,
            dims_of(&[(text, text), ("k", text)])
        );
        assert_eq!(result.series[0].points, vec![(1_000 + i as i64, i as f64)]);
        // The text as a regex literal: escaped for the regex, then for SQL.
        let regex = Filter::regex("k".into(), regex::escape(text), false).unwrap();
        let counted = store
            .query_aggregate(
                &t,
                &AggregateQuery {
                    selector: selector(text, vec![regex]),
                    aggregation: Aggregation::Count,
                    group_by: vec![text.to_string()],
                    limit: None,
                },
            )
            .await
            .unwrap();
        assert_eq!(counted.rows.len(), 1, "{text:?}");
        assert_eq!(counted.rows[0].group, vec![Some(text.to_string())]);
        assert_eq!(counted.rows[0].value, 1.0);
    }
    // The table survived every attempt.
    assert_eq!(store.list_metrics(&t).await.unwrap().len(), HOSTILE.len());
}

#[tokio::test]
async fn percentiles_equal_the_model_rank_definition() {
    let Some(store) = store().await else { return };
    let t = tenant("pct");
    let values: Vec<f64> = (0..37).map(|i| ((i * 7919) % 101) as f64 / 4.0).collect();
    let metrics = values
        .iter()
        .enumerate()
        .map(|(i, v)| metric("latency", i as i64, *v, &[("host", "a")]))
        .collect();
    store.write(&t, metrics).await.unwrap();
    let mut sorted = values.clone();
    sorted.sort_by(f64::total_cmp);
    for q in [0.0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 1.0] {
        let rank = ((q * sorted.len() as f64).floor() as usize).min(sorted.len() - 1);
        let result = store
            .query_aggregate(
                &t,
                &AggregateQuery {
                    selector: selector("latency", vec![]),
                    aggregation: Aggregation::Percentile(q),
                    group_by: vec![],
                    limit: None,
                },
            )
            .await
            .unwrap();
        assert_eq!(result.rows.len(), 1);
        assert_eq!(result.rows[0].value, sorted[rank], "q = {q}");
    }
    let bad = store
        .query_aggregate(
            &t,
            &AggregateQuery {
                selector: selector("latency", vec![]),
                aggregation: Aggregation::Percentile(1.5),
                group_by: vec![],
                limit: None,
            },
        )
        .await;
    assert!(matches!(bad, Err(StorageError::InvalidQuery(_))));
}

#[tokio::test]
async fn group_by_sorts_missing_first_and_limit_sets_truncated() {
    let Some(store) = store().await else { return };
    let t = tenant("grp");
    store
        .write(
            &t,
            vec![
                metric("req", 1, 1.0, &[("host", "b")]),
                metric("req", 2, 2.0, &[("host", "a")]),
                metric("req", 3, 4.0, &[("host", "a"), ("zone", "x")]),
                metric("req", 4, 8.0, &[("zone", "x")]),
            ],
        )
        .await
        .unwrap();
    let query = |limit| AggregateQuery {
        selector: selector("req", vec![]),
        aggregation: Aggregation::Sum,
        group_by: vec!["host".into()],
        limit,
    };
    let all = store.query_aggregate(&t, &query(None)).await.unwrap();
    let groups: Vec<(Option<String>, f64)> = all
        .rows
        .iter()
        .map(|r| (r.group[0].clone(), r.value))
        .collect();
    assert_eq!(
        groups,
        vec![
            (None, 8.0),
            (Some("a".into()), 6.0),
            (Some("b".into()), 1.0)
        ]
    );
    assert!(!all.truncated);
    let two = store.query_aggregate(&t, &query(Some(2))).await.unwrap();
    assert_eq!(two.rows.len(), 2);
    assert!(two.truncated);
    let three = store.query_aggregate(&t, &query(Some(3))).await.unwrap();
    assert!(!three.truncated);
}

#[tokio::test]
async fn regex_is_anchored_and_negations_match_missing_dimensions() {
    let Some(store) = store().await else { return };
    let t = tenant("rx");
    store
        .write(
            &t,
            vec![
                metric("m", 1, 1.0, &[("path", "/api/users")]),
                metric("m", 2, 1.0, &[("path", "/api")]),
                metric("m", 3, 1.0, &[("path", "x/api")]),
                metric("m", 4, 1.0, &[]),
            ],
        )
        .await
        .unwrap();
    let count = |filter: Filter| {
        let store = &store;
        let t = t.clone();
        async move {
            store
                .query_aggregate(
                    &t,
                    &AggregateQuery {
                        selector: selector("m", vec![filter]),
                        aggregation: Aggregation::Count,
                        group_by: vec![],
                        limit: None,
                    },
                )
                .await
                .unwrap()
                .rows
                .first()
                .map_or(0.0, |r| r.value)
        }
    };
    assert_eq!(
        count(Filter::regex("path".into(), "/api.*".into(), false).unwrap()).await,
        2.0
    );
    assert_eq!(
        count(Filter::regex("path".into(), "api".into(), false).unwrap()).await,
        0.0
    );
    assert_eq!(
        count(Filter::regex("path".into(), "/api.*".into(), true).unwrap()).await,
        2.0
    );
    let not_eq = Filter {
        key: "path".into(),
        op: FilterOp::NotEq("/api".into()),
    };
    assert_eq!(count(not_eq).await, 3.0);
    let missing_is_empty = Filter {
        key: "path".into(),
        op: FilterOp::In(vec!["".into(), "/api".into()]),
    };
    assert_eq!(count(missing_is_empty).await, 2.0);
}

#[tokio::test]
async fn step_buckets_are_epoch_aligned_and_rate_handles_counter_resets() {
    let Some(store) = store().await else { return };
    let t = tenant("rate");
    // A counter sampled every 500 ms that resets to 1 at 2500.
    let counter = [
        (0, 0.0),
        (500, 10.0),
        (1000, 20.0),
        (1500, 40.0),
        (2000, 50.0),
        (2500, 1.0),
        (3000, 11.0),
    ];
    let mut metrics: Vec<Metric> = counter
        .iter()
        .map(|(ts, v)| metric("c", 10_000 + ts, *v, &[("host", "a")]))
        .collect();
    metrics.push(metric("c", 10_500, 100.0, &[("host", "b")]));
    metrics.push(metric("c", 11_000, 130.0, &[("host", "b")]));
    store.write(&t, metrics).await.unwrap();

    let rate = store
        .query_rate(
            &t,
            &RateQuery {
                selector: selector("c", vec![eq("host", "a")]),
                step_ms: 1000,
                group_by: None,
                limit: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(rate.series.len(), 1);
    // Bucket 10000: +10 (500). 11000: +10 +20. 12000: +10 +1 (reset). 13000: +10.
    assert_eq!(
        rate.series[0].points,
        vec![
            (10_000, 10.0),
            (11_000, 30.0),
            (12_000, 11.0),
            (13_000, 10.0)
        ]
    );
    let grouped = store
        .query_rate(
            &t,
            &RateQuery {
                selector: selector("c", vec![]),
                step_ms: 1000,
                group_by: Some(vec![]),
                limit: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(grouped.series.len(), 1);
    assert_eq!(grouped.series[0].dimensions, Dimensions::new());
    assert_eq!(grouped.series[0].points[1], (11_000, 60.0));

    let stepped = store
        .query_range(
            &t,
            &RangeQuery {
                selector: selector("c", vec![]),
                step: Some((1000, Aggregation::Max)),
                group_by: Some(vec!["host".into()]),
                limit: Some(1),
                sorted: true,
            },
        )
        .await
        .unwrap();
    assert!(stepped.truncated);
    assert_eq!(stepped.series[0].dimensions, dims_of(&[("host", "a")]));
    assert_eq!(
        stepped.series[0].points,
        vec![
            (10_000, 10.0),
            (11_000, 40.0),
            (12_000, 50.0),
            (13_000, 11.0)
        ]
    );
}

#[tokio::test]
async fn tenants_never_see_each_other() {
    let Some(store) = store().await else { return };
    let (a, b) = (tenant("alpha"), tenant("beta"));
    store
        .write(&a, vec![metric("shared", 1, 1.0, &[("k", "a")])])
        .await
        .unwrap();
    store
        .write(&b, vec![metric("shared", 1, 2.0, &[("k", "b")])])
        .await
        .unwrap();
    assert_eq!(
        store
            .list_dimension_values(&b, "shared", "k", 10)
            .await
            .unwrap(),
        vec!["b"]
    );
    let sum = store
        .query_aggregate(
            &b,
            &AggregateQuery {
                selector: selector("shared", vec![]),
                aggregation: Aggregation::Sum,
                group_by: vec![],
                limit: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(sum.rows[0].value, 2.0);
    store.delete_before(&b, "shared", 10).await.unwrap();
    assert!(store.list_metrics(&b).await.unwrap().is_empty());
    assert_eq!(store.list_metrics(&a).await.unwrap(), vec!["shared"]);
}

const DAY_MS: i64 = 86_400_000;

#[tokio::test]
async fn retention_drops_old_months_and_deletes_the_rest_before_the_cutoff() {
    let Some(store) = store().await else { return };
    let t = tenant("ret");
    let jan_2024 = 1_704_067_200_000; // 2024-01-01
    let metrics = vec![
        metric("m", jan_2024 - 40 * DAY_MS, 1.0, &[]), // November 2023
        metric("m", jan_2024 + DAY_MS, 2.0, &[]),      // January 2
        metric("m", jan_2024 + 20 * DAY_MS, 3.0, &[]), // January 21
    ];
    store.write(&t, metrics).await.unwrap();
    store
        .enforce_retention(jan_2024 + 10 * DAY_MS)
        .await
        .unwrap();
    let left = store
        .query_range(
            &t,
            &RangeQuery {
                selector: selector("m", vec![]),
                step: None,
                group_by: None,
                limit: None,
                sorted: true,
            },
        )
        .await
        .unwrap();
    assert_eq!(left.series[0].points, vec![(jan_2024 + 20 * DAY_MS, 3.0)]);
}

#[tokio::test]
async fn concurrent_writes_are_batched_and_each_acknowledged_after_insert() {
    let Some(server) = shared_server() else {
        return;
    };
    let mut config = server.config(&fresh_database("batch"));
    config.flush_interval = crate::config::ConfigDuration::from_millis(200);
    config.flush_max_rows = 1_000_000;
    // The other tests run with LZ4; this one without.
    config.compression = false;
    let store = std::sync::Arc::new(ClickHouseStore::open(&config).await.unwrap());
    let t = tenant("batch");
    let mut tasks = Vec::new();
    for i in 0..50 {
        let store = store.clone();
        let t = t.clone();
        tasks.push(tokio::spawn(async move {
            let metrics = (0..20)
                .map(|j| metric("m", i * 100 + j, 1.0, &[]))
                .collect();
            store.write(&t, metrics).await
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert!(store.queued_rows() > 0, "writes should wait in the batch");
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(store.queued_rows(), 0);
    // Every acknowledged row is readable, from one insert (one part).
    let parts = server
        .query(&format!(
            "SELECT count() FROM system.parts WHERE database = '{}' AND table = 'samples' AND active",
            config.database
        ))
        .unwrap();
    assert_eq!(parts.trim(), "1");
    let count = store
        .query_aggregate(
            &t,
            &AggregateQuery {
                selector: selector("m", vec![]),
                aggregation: Aggregation::Count,
                group_by: vec![],
                limit: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(count.rows[0].value, 1000.0);
}

#[tokio::test]
async fn writes_fail_as_unavailable_while_clickhouse_is_down_and_recover_after() {
    let Some(mut server) = require_server() else {
        return;
    };
    let mut config = server.config("outage");
    config.request_timeout = crate::config::ConfigDuration::from_millis(2_000);
    let store = ClickHouseStore::open(&config).await.unwrap();
    let t = tenant("outage");
    store
        .write(&t, vec![metric("m", 1, 1.0, &[])])
        .await
        .unwrap();
    assert!(store.health().await.is_ok());

    server.kill();
    let failed = store.write(&t, vec![metric("m", 2, 2.0, &[])]).await;
    assert!(
        matches!(failed, Err(StorageError::Unavailable { .. })),
        "{failed:?}"
    );
    assert!(matches!(
        store.health().await,
        Err(StorageError::Unavailable { .. })
    ));
    assert_eq!(store.queued_rows(), 0);

    server.restart().unwrap();
    store
        .write(&t, vec![metric("m", 3, 3.0, &[])])
        .await
        .unwrap();
    assert!(store.health().await.is_ok());
    let points = store
        .query_range(
            &t,
            &RangeQuery {
                selector: selector("m", vec![]),
                step: None,
                group_by: None,
                limit: None,
                sorted: true,
            },
        )
        .await
        .unwrap();
    assert_eq!(points.series[0].points, vec![(1, 1.0), (3, 3.0)]);
}

#[tokio::test]
async fn opening_waits_for_a_clickhouse_that_starts_later() {
    let Some(mut server) = require_server() else {
        return;
    };
    server.kill();
    let config = server.config("late");
    let opening = tokio::spawn(async move { ClickHouseStore::open(&config).await });
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(!opening.is_finished(), "open should wait, not fail");
    server.restart().unwrap();
    let store = opening
        .await
        .unwrap()
        .expect("open after ClickHouse came up");
    assert!(store.health().await.is_ok());
}

#[tokio::test]
async fn cluster_spreads_series_over_both_shards_and_answers_like_one_node() {
    let Some(cluster) = require_cluster("luminate_test") else {
        return;
    };
    let Some(single) = store().await else { return };
    let clustered = ClickHouseStore::open(&cluster.config("pods"))
        .await
        .unwrap();
    let t = tenant("acme");
    let metrics: Vec<Metric> = (0..200)
        .map(|i| {
            let host = format!("h{}", i % 20);
            let zone = if i % 3 == 0 { "eu" } else { "us" };
            metric(
                "cpu",
                1_000 * i,
                (i % 17) as f64,
                &[("host", &host), ("zone", zone)],
            )
        })
        .collect();
    clustered.write(&t, metrics.clone()).await.unwrap();
    single.write(&t, metrics).await.unwrap();

    let rows_per_shard: Vec<u64> = shard_counts(&cluster, "pods");
    assert!(rows_per_shard.iter().all(|n| *n > 0), "{rows_per_shard:?}");
    assert_eq!(rows_per_shard.iter().sum::<u64>(), 200);

    for aggregation in [
        Aggregation::Count,
        Aggregation::Sum,
        Aggregation::Percentile(0.95),
    ] {
        let query = AggregateQuery {
            selector: selector("cpu", vec![]),
            aggregation,
            group_by: vec!["zone".into()],
            limit: None,
        };
        assert_eq!(
            clustered.query_aggregate(&t, &query).await.unwrap(),
            single.query_aggregate(&t, &query).await.unwrap()
        );
    }
    let rate = RateQuery {
        selector: selector("cpu", vec![]),
        step_ms: 10_000,
        group_by: Some(vec!["zone".into()]),
        limit: None,
    };
    assert_eq!(
        clustered.query_rate(&t, &rate).await.unwrap(),
        single.query_rate(&t, &rate).await.unwrap()
    );
    clustered.delete_before(&t, "cpu", 100_000).await.unwrap();
    assert_eq!(shard_counts(&cluster, "pods").iter().sum::<u64>(), 100);
}

fn shard_counts(cluster: &TwoShardCluster, database: &str) -> Vec<u64> {
    cluster
        .shards
        .iter()
        .map(|shard| {
            shard
                .query(&format!("SELECT count() FROM `{database}`.samples_local"))
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        })
        .collect()
}

#[tokio::test]
async fn shared_state_written_by_one_pod_is_seen_by_another_on_a_cluster() {
    use super::{DocumentKind, SharedState};
    let Some(cluster) = require_cluster("luminate_shared") else {
        return;
    };
    let pod1 = ClickHouseStore::open(&cluster.config("shared"))
        .await
        .unwrap();
    // The second pod talks to the other shard's server.
    let mut second = cluster.config("shared");
    second.url = cluster.shards[1].url();
    let pod2 = ClickHouseStore::open(&second).await.unwrap();
    let (one, two): (std::sync::Arc<SharedState>, _) = (pod1.shared_state(), pod2.shared_state());
    assert_ne!(one.pod_id(), two.pod_id());

    let before = two.change_token(DocumentKind::Plugin).await.unwrap();
    let wasm: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let acme = tenant("acme");
    one.put(
        DocumentKind::Plugin,
        None,
        "global-one",
        "version = \"1\"",
        &wasm,
    )
    .await
    .unwrap();
    one.put(
        DocumentKind::Plugin,
        Some(&acme),
        "it's \\ odd",
        "",
        b"\0asm",
    )
    .await
    .unwrap();
    two.put(
        DocumentKind::Plugin,
        None,
        "global-one",
        "version = \"2\"",
        b"v2",
    )
    .await
    .unwrap();
    assert_ne!(
        two.change_token(DocumentKind::Plugin).await.unwrap(),
        before
    );

    let seen = two.list(DocumentKind::Plugin).await.unwrap();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(
        (seen[0].tenant.clone(), seen[0].name.as_str()),
        (None, "global-one")
    );
    assert_eq!(seen[0].meta, "version = \"2\"");
    assert_eq!(seen[0].body, b"v2");
    assert_eq!(seen[1].tenant, Some(acme.clone()));
    assert_eq!(seen[1].name, "it's \\ odd");
    assert_eq!(seen[1].body, b"\0asm");

    assert!(
        two.delete(DocumentKind::Plugin, None, "global-one")
            .await
            .unwrap()
    );
    assert!(
        !two.delete(DocumentKind::Plugin, None, "global-one")
            .await
            .unwrap()
    );
    let after = one.list(DocumentKind::Plugin).await.unwrap();
    assert_eq!(after.len(), 1);

    // Sketches: one document per (tenant, pod); every pod reads all of them.
    one.put(DocumentKind::Sketch, Some(&acme), one.pod_id(), "", &wasm)
        .await
        .unwrap();
    two.put(DocumentKind::Sketch, Some(&acme), two.pod_id(), "", b"pod2")
        .await
        .unwrap();
    let sketches = one.list(DocumentKind::Sketch).await.unwrap();
    assert_eq!(sketches.len(), 2);
    assert!(sketches.iter().any(|d| d.body == wasm));
    // Documents are stored on the shards, not only on the node that took them.
    let per_shard: Vec<u64> = cluster
        .shards
        .iter()
        .map(|s| {
            s.query("SELECT count() FROM shared.shared_state_local")
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        })
        .collect();
    assert!(per_shard.iter().sum::<u64>() >= 6, "{per_shard:?}");
}

/// The shared backend conformance suite, unchanged, against ClickHouse: each
/// case gets an empty database on the shared server.
mod conformance {
    use super::*;
    use crate::storage::conformance::StoreUnderTest;

    async fn fresh_store() -> StoreUnderTest {
        let server = shared_server().expect(
            "clickhouse-server is not installed; scripts/test installs it (apt-get install clickhouse-server)",
        );
        let store = ClickHouseStore::open(&server.config(&fresh_database("conf")))
            .await
            .expect("open store");
        StoreUnderTest::new(store)
    }

    crate::conformance_suite!(fresh_store);
}
