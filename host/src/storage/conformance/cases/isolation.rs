use crate::model::{AggregateRow, Aggregation};
use crate::storage::MetricsStore;
use crate::storage::conformance::fixtures::*;

pub async fn tenant_b_sees_nothing_of_tenant_a_through_any_operation(store: &dyn MetricsStore) {
    let (a, b) = (tenant("tenant-a"), tenant("tenant-b"));
    let d = [("endpoint", "/secret"), ("user", "alice")];
    let a_points = vec![
        metric("api_latency", BASE_MS, 1.0, &d),
        metric("api_latency", BASE_MS + MINUTE, 3.0, &d),
        metric("a_only", BASE_MS, 5.0, &d),
    ];
    store.write(&a, a_points).await.unwrap();
    // B writes the very same series with other values: it must not merge.
    store
        .write(&b, vec![metric("api_latency", BASE_MS, 100.0, &d)])
        .await
        .unwrap();

    let sel = |name: &str| select(name, all_time(), vec![]);
    for name in ["a_only", "api_latency"] {
        let q = aggregate(sel(name), Aggregation::Count, &["endpoint"]);
        let got_b = store.query_aggregate(&b, &q).await.unwrap();
        let want: Vec<AggregateRow> = if name == "a_only" {
            vec![]
        } else {
            vec![AggregateRow {
                group: vec![Some("/secret".into())],
                value: 1.0,
            }]
        };
        assert_eq!(got_b.rows, want, "{name}");
    }
    assert!(
        store
            .query_range(&b, &raw_range(sel("a_only")))
            .await
            .unwrap()
            .series
            .is_empty()
    );
    assert!(
        store
            .query_rate(&b, &rate(sel("a_only"), MINUTE))
            .await
            .unwrap()
            .series
            .is_empty()
    );
    let b_range = store
        .query_range(&b, &raw_range(sel("api_latency")))
        .await
        .unwrap();
    assert_eq!(b_range.series.len(), 1);
    assert_eq!(b_range.series[0].points, vec![(BASE_MS, 100.0)]);
    let filtered = select("a_only", all_time(), vec![eq("user", "alice")]);
    assert!(
        store
            .query_aggregate(&b, &aggregate(filtered, Aggregation::Sum, &[]))
            .await
            .unwrap()
            .rows
            .is_empty()
    );

    assert_eq!(store.list_metrics(&b).await.unwrap(), vec!["api_latency"]);
    assert!(
        store
            .list_dimension_keys(&b, "a_only")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .list_dimension_values(&b, "a_only", "user", 10)
            .await
            .unwrap()
            .is_empty()
    );

    // B's deletes and a retention sweep that keeps everything leave A intact.
    store
        .delete_before(&b, "api_latency", BASE_MS + DAY)
        .await
        .unwrap();
    store
        .delete_before(&b, "a_only", BASE_MS + DAY)
        .await
        .unwrap();
    store.enforce_retention(BASE_MS - DAY).await.unwrap();
    let q = aggregate(sel("api_latency"), Aggregation::Sum, &[]);
    assert_eq!(
        store.query_aggregate(&a, &q).await.unwrap().rows[0].value,
        4.0
    );
    let q = aggregate(sel("a_only"), Aggregation::Sum, &[]);
    assert_eq!(
        store.query_aggregate(&a, &q).await.unwrap().rows[0].value,
        5.0
    );
    assert!(
        store
            .query_aggregate(&b, &aggregate(sel("api_latency"), Aggregation::Sum, &[]))
            .await
            .unwrap()
            .rows
            .is_empty()
    );
    assert_eq!(
        store.list_metrics(&a).await.unwrap(),
        vec!["a_only", "api_latency"]
    );
}

pub async fn tenants_whose_ids_prefix_each_other_stay_apart(store: &dyn MetricsStore) {
    let ids = ["a", "ab", "a.b", "a-", "a_", "A", "b"];
    for (i, id) in ids.iter().enumerate() {
        let t = tenant(id);
        store
            .write(
                &t,
                vec![metric("m", BASE_MS, (i + 1) as f64, &[("k", "v")])],
            )
            .await
            .unwrap();
    }
    for (i, id) in ids.iter().enumerate() {
        let t = tenant(id);
        let q = aggregate(select("m", all_time(), vec![]), Aggregation::Sum, &["k"]);
        let rows = store.query_aggregate(&t, &q).await.unwrap().rows;
        assert_eq!(
            rows,
            vec![AggregateRow {
                group: vec![Some("v".into())],
                value: (i + 1) as f64
            }],
            "tenant {id}"
        );
        assert_eq!(store.list_metrics(&t).await.unwrap(), vec!["m"]);
    }
    store
        .delete_before(&tenant("a"), "m", BASE_MS + 1)
        .await
        .unwrap();
    for id in &ids[1..] {
        let q = aggregate(select("m", all_time(), vec![]), Aggregation::Count, &[]);
        assert_eq!(
            store
                .query_aggregate(&tenant(id), &q)
                .await
                .unwrap()
                .rows
                .len(),
            1,
            "tenant {id}"
        );
    }
}
