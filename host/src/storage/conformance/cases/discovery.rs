use crate::storage::MetricsStore;
use crate::storage::conformance::fixtures::*;

pub async fn discovery_lists_sorted_metrics_keys_and_values(store: &dyn MetricsStore) {
    let t = tenant("acme");
    store
        .write(
            &t,
            vec![
                metric("zeta", BASE_MS, 1.0, &[("b", "2"), ("a", "1")]),
                metric("alpha", BASE_MS, 1.0, &[("endpoint", "/z")]),
                metric("alpha", BASE_MS, 1.0, &[("endpoint", "/a"), ("host", "h")]),
                metric("alpha", BASE_MS + 1, 1.0, &[("endpoint", "/a")]),
                metric("alpha.b", BASE_MS, 1.0, &[]),
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        store.list_metrics(&t).await.unwrap(),
        vec!["alpha", "alpha.b", "zeta"]
    );
    assert_eq!(
        store.list_dimension_keys(&t, "alpha").await.unwrap(),
        vec!["endpoint", "host"]
    );
    assert_eq!(
        store.list_dimension_keys(&t, "zeta").await.unwrap(),
        vec!["a", "b"]
    );
    assert!(
        store
            .list_dimension_keys(&t, "alpha.b")
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .list_dimension_values(&t, "alpha", "endpoint", 100)
            .await
            .unwrap(),
        vec!["/a", "/z"]
    );
    assert_eq!(
        store
            .list_dimension_values(&t, "alpha", "host", 100)
            .await
            .unwrap(),
        vec!["h"]
    );
}

pub async fn dimension_values_respect_the_limit(store: &dyn MetricsStore) {
    let t = tenant("acme");
    let batch = (0..50)
        .map(|i| metric("m", BASE_MS, 1.0, &[("user", &format!("u{i:03}"))]))
        .collect();
    store.write(&t, batch).await.unwrap();
    let all = store
        .list_dimension_values(&t, "m", "user", 1000)
        .await
        .unwrap();
    assert_eq!(all.len(), 50);
    assert!(all.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(
        store
            .list_dimension_values(&t, "m", "user", 3)
            .await
            .unwrap(),
        vec!["u000", "u001", "u002"]
    );
    assert!(
        store
            .list_dimension_values(&t, "m", "user", 0)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn discovery_of_an_unknown_metric_is_empty(store: &dyn MetricsStore) {
    let t = tenant("acme");
    assert!(store.list_metrics(&t).await.unwrap().is_empty());
    store
        .write(&t, vec![metric("m", BASE_MS, 1.0, &[("k", "v")])])
        .await
        .unwrap();
    assert!(store.list_dimension_keys(&t, "n").await.unwrap().is_empty());
    assert!(
        store
            .list_dimension_values(&t, "n", "k", 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .list_dimension_values(&t, "m", "j", 10)
            .await
            .unwrap()
            .is_empty()
    );
}
