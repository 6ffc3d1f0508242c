use crate::model::{Aggregation, Metric, TenantId};
use crate::storage::MetricsStore;
use crate::storage::conformance::fixtures::*;

async fn timestamps(store: &dyn MetricsStore, t: &TenantId, name: &str) -> Vec<i64> {
    let got = store
        .query_range(t, &raw_range(select(name, all_time(), vec![])))
        .await
        .unwrap();
    let mut ts: Vec<i64> = got
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .collect();
    ts.sort_unstable();
    ts
}

fn spread(name: &str) -> Vec<Metric> {
    // Points every 20 minutes over three hours, in two series.
    (0..10)
        .map(|i| {
            metric(
                name,
                BASE_MS + i * 20 * MINUTE,
                i as f64,
                &[("s", if i % 2 == 0 { "a" } else { "b" })],
            )
        })
        .collect()
}

pub async fn delete_before_removes_only_older_points_of_that_metric(store: &dyn MetricsStore) {
    let t = tenant("acme");
    store.write(&t, spread("m")).await.unwrap();
    store.write(&t, spread("keep")).await.unwrap();
    // Mid-hour cutoff, exactly on a point: that point stays (strictly older go).
    let cutoff = BASE_MS + 100 * MINUTE;
    store.delete_before(&t, "m", cutoff).await.unwrap();
    let want: Vec<i64> = (5..10).map(|i| BASE_MS + i * 20 * MINUTE).collect();
    assert_eq!(timestamps(store, &t, "m").await, want);
    assert_eq!(timestamps(store, &t, "keep").await.len(), 10);
    let q = aggregate(select("m", all_time(), vec![]), Aggregation::Min, &[]);
    assert_eq!(
        store.query_aggregate(&t, &q).await.unwrap().rows[0].value,
        5.0
    );
    // Deleting again, or earlier, changes nothing; deleting everything empties it.
    store.delete_before(&t, "m", cutoff).await.unwrap();
    store.delete_before(&t, "m", BASE_MS).await.unwrap();
    assert_eq!(timestamps(store, &t, "m").await, want);
    store.delete_before(&t, "m", BASE_MS + DAY).await.unwrap();
    assert!(timestamps(store, &t, "m").await.is_empty());
    store
        .delete_before(&t, "never-written", BASE_MS)
        .await
        .unwrap();
}

pub async fn enforce_retention_applies_to_every_tenant_and_metric(store: &dyn MetricsStore) {
    let (a, b) = (tenant("a"), tenant("b"));
    store.write(&a, spread("m")).await.unwrap();
    store.write(&a, spread("n")).await.unwrap();
    store.write(&b, spread("m")).await.unwrap();
    let cutoff = BASE_MS + 70 * MINUTE; // keeps 80, 100, ... 180 minutes
    store.enforce_retention(cutoff).await.unwrap();
    let want: Vec<i64> = (4..10).map(|i| BASE_MS + i * 20 * MINUTE).collect();
    assert_eq!(timestamps(store, &a, "m").await, want);
    assert_eq!(timestamps(store, &a, "n").await, want);
    assert_eq!(timestamps(store, &b, "m").await, want);
}

pub async fn writes_after_a_delete_are_visible(store: &dyn MetricsStore) {
    let t = tenant("acme");
    store.write(&t, spread("m")).await.unwrap();
    store.delete_before(&t, "m", BASE_MS + DAY).await.unwrap();
    store
        .write(
            &t,
            vec![metric("m", BASE_MS + 30 * MINUTE, 9.0, &[("s", "a")])],
        )
        .await
        .unwrap();
    assert_eq!(
        timestamps(store, &t, "m").await,
        vec![BASE_MS + 30 * MINUTE]
    );
}
