//! The conformance suite against both RocksDB modes, plus what only the
//! embedded backend promises: persistence across reopen, safe concurrent
//! creation of one series, and synchronous writes.

use std::sync::Arc;

use super::{RocksOptions, RocksStore};
use crate::model::Aggregation;
use crate::storage::MetricsStore;
use crate::storage::conformance::StoreUnderTest;
use crate::storage::conformance::fixtures::*;

mod in_memory {
    use super::*;
    crate::conformance_suite!(|| async { StoreUnderTest::new(RocksStore::in_memory().unwrap()) });
}

mod on_disk {
    use super::*;
    crate::conformance_suite!(|| async {
        let dir = tempfile::tempdir().unwrap();
        let store = RocksStore::open(dir.path(), RocksOptions::default()).unwrap();
        StoreUnderTest::keeping(store, dir)
    });
}

#[tokio::test]
async fn data_and_series_survive_close_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let t = tenant("acme");
    {
        let store = RocksStore::open(dir.path(), RocksOptions::default()).unwrap();
        store
            .write(&t, vec![metric("m", BASE_MS, 1.0, &[("k", "a")])])
            .await
            .unwrap();
        store.close().await.unwrap();
    }
    {
        // Reopen without close: the WAL alone must bring the write back.
        let store = RocksStore::open(dir.path(), RocksOptions::default()).unwrap();
        assert_eq!(store.series_count().await.unwrap(), 1);
        store
            .write(&t, vec![metric("m", BASE_MS + 1, 2.0, &[("k", "a")])])
            .await
            .unwrap();
        store
            .write(&t, vec![metric("m", BASE_MS + 2, 4.0, &[("k", "b")])])
            .await
            .unwrap();
        drop(store);
    }
    let store = RocksStore::open(dir.path(), RocksOptions::default()).unwrap();
    // The known series kept its id (no duplicate), the new one got a fresh one.
    assert_eq!(store.series_count().await.unwrap(), 2);
    let q = aggregate(select("m", all_time(), vec![]), Aggregation::Sum, &["k"]);
    let rows = store.query_aggregate(&t, &q).await.unwrap().rows;
    assert_eq!(
        rows.iter().map(|r| r.value).collect::<Vec<_>>(),
        vec![3.0, 4.0]
    );
    let got = store
        .query_range(&t, &raw_range(select("m", all_time(), vec![])))
        .await
        .unwrap();
    assert_eq!(got.series.len(), 2);
    assert_eq!(
        store.list_dimension_values(&t, "m", "k", 10).await.unwrap(),
        vec!["a", "b"]
    );
    // New series after reopen do not reuse ids of old ones.
    store
        .write(&t, vec![metric("m", BASE_MS + 3, 8.0, &[("k", "c")])])
        .await
        .unwrap();
    let rows = store.query_aggregate(&t, &q).await.unwrap().rows;
    assert_eq!(
        rows.iter().map(|r| r.value).collect::<Vec<_>>(),
        vec![3.0, 4.0, 8.0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_creating_the_same_series_agree_on_one_id() {
    let dir = tempfile::tempdir().unwrap();
    let t = tenant("acme");
    let store = Arc::new(RocksStore::open(dir.path(), RocksOptions::default()).unwrap());
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let (store, t) = (store.clone(), t.clone());
            tokio::spawn(async move {
                for round in 0..50i64 {
                    // Every writer creates the same 20 new series each round.
                    let batch = (0..20)
                        .map(|s| {
                            metric(
                                "m",
                                BASE_MS + round * 1_000 + w,
                                1.0,
                                &[("s", &format!("{round}-{s}"))],
                            )
                        })
                        .collect();
                    store.write(&t, batch).await.unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    assert_eq!(store.series_count().await.unwrap(), 50 * 20);
    let q = aggregate(select("m", all_time(), vec![]), Aggregation::Count, &["s"]);
    let rows = store.query_aggregate(&t, &q).await.unwrap().rows;
    assert_eq!(rows.len(), 1000);
    assert!(
        rows.iter().all(|r| r.value == 8.0),
        "every series has one point per writer"
    );
    drop(store);
    // After a restart every point still resolves to a known series.
    let store = RocksStore::open(dir.path(), RocksOptions::default()).unwrap();
    assert_eq!(store.series_count().await.unwrap(), 1000);
    let rows = store.query_aggregate(&t, &q).await.unwrap().rows;
    assert_eq!(rows.len(), 1000);
    assert!(rows.iter().all(|r| r.group[0].is_some()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_writes_mode_stores_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let t = tenant("acme");
    let opts = RocksOptions {
        sync_writes: true,
        ..RocksOptions::default()
    };
    let store = Arc::new(RocksStore::open(dir.path(), opts.clone()).unwrap());
    let tasks: Vec<_> = (0..4)
        .map(|i| {
            let (store, t) = (store.clone(), t.clone());
            tokio::spawn(async move {
                store
                    .write(&t, vec![metric("m", BASE_MS + i, 1.0, &[])])
                    .await
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    drop(store);
    let store = RocksStore::open(dir.path(), opts).unwrap();
    let q = aggregate(select("m", all_time(), vec![]), Aggregation::Count, &[]);
    assert_eq!(
        store.query_aggregate(&t, &q).await.unwrap().rows[0].value,
        4.0
    );
}

#[tokio::test]
async fn in_memory_stores_share_nothing() {
    let t = tenant("acme");
    let a = RocksStore::in_memory().unwrap();
    let b = RocksStore::in_memory().unwrap();
    a.write(&t, vec![metric("m", BASE_MS, 1.0, &[])])
        .await
        .unwrap();
    assert!(b.list_metrics(&t).await.unwrap().is_empty());
}

const KILL9_DIR_ENV: &str = "LUMINATE_TEST_KILL9_DIR";
const KILL9_BATCH: usize = 500;

/// The child half of `acknowledged_writes_survive_kill_9`: writes batches
/// forever, printing each acknowledgement. Does nothing when run directly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run as a child process by acknowledged_writes_survive_kill_9"]
async fn kill9_child_writes_until_killed() {
    use std::io::Write;
    let Some(dir) = std::env::var_os(KILL9_DIR_ENV) else {
        return;
    };
    let store = RocksStore::open(dir, RocksOptions::default()).unwrap();
    let t = tenant("acme");
    for b in 0.. {
        let batch = (0..KILL9_BATCH)
            .map(|i| {
                metric(
                    "m",
                    BASE_MS + (b * KILL9_BATCH + i) as i64,
                    1.0,
                    &[("s", &format!("{}", (b * 7 + i) % 3000))],
                )
            })
            .collect();
        store.write(&t, batch).await.unwrap();
        let mut out = std::io::stdout().lock();
        writeln!(out, "acked {}", b + 1).unwrap();
        out.flush().unwrap();
    }
}

#[tokio::test]
async fn acknowledged_writes_survive_kill_9() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "storage::rocks::tests::kill9_child_writes_until_killed",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(KILL9_DIR_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut acked = 0;
    for line in std::io::BufReader::new(child.stdout.take().unwrap()).lines() {
        if let Some(n) = line.unwrap().strip_prefix("acked ") {
            acked = n.parse::<usize>().unwrap();
            if acked >= 40 {
                child.kill().unwrap(); // SIGKILL: no destructor, no flush
                break;
            }
        }
    }
    child.wait().unwrap();
    assert!(acked >= 40, "child stopped after {acked} batches");
    let store = RocksStore::open(dir.path(), RocksOptions::default()).unwrap();
    let q = aggregate(select("m", all_time(), vec![]), Aggregation::Count, &[]);
    let stored = store
        .query_aggregate(&tenant("acme"), &q)
        .await
        .unwrap()
        .rows[0]
        .value as usize;
    assert!(
        stored >= acked * KILL9_BATCH,
        "{stored} points stored, {acked} batches acknowledged"
    );
    let by_series = aggregate(select("m", all_time(), vec![]), Aggregation::Count, &["s"]);
    let rows = store
        .query_aggregate(&tenant("acme"), &by_series)
        .await
        .unwrap()
        .rows;
    assert!(
        rows.iter().all(|r| r.group[0].is_some()),
        "a point whose series is unknown"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenants_query_budget_never_pays_for_another_tenants_points() {
    let store = RocksStore::in_memory().unwrap();
    let (big, small) = (tenant("big"), tenant("small"));
    let crowd: Vec<_> = (0..5_000)
        .map(|i| {
            let series = format!("s{i}");
            metric("m", BASE_MS + i, 1.0, &[("k", &series)])
        })
        .collect();
    store.write(&big, crowd).await.unwrap();
    let own: Vec<_> = (0..10)
        .map(|i| metric("m", BASE_MS + i, 2.0, &[("k", "mine")]))
        .collect();
    store.write(&small, own).await.unwrap();
    store
        .write(&big, vec![metric("m", BASE_MS, 1.0, &[("k", "late")])])
        .await
        .unwrap();

    let mut selector = select("m", all_time(), vec![]);
    selector.budget = crate::model::QueryBudget {
        max_points_scanned: 20,
        max_points_returned: 20,
    };
    let q = aggregate(selector.clone(), Aggregation::Sum, &["k"]);
    let rows = store.query_aggregate(&small, &q).await.unwrap().rows;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].value, 20.0);
    let range = crate::model::RangeQuery {
        selector,
        step: None,
        group_by: None,
        limit: None,
        sorted: true,
    };
    let series = store.query_range(&small, &range).await.unwrap().series;
    assert_eq!(series[0].points.len(), 10);
    assert!(store.query_aggregate(&big, &q).await.is_err());
}
