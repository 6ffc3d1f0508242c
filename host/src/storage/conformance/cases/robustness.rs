use crate::model::{Aggregation, Metric};
use crate::storage::conformance::fixtures::*;
use crate::storage::conformance::oracle;
use crate::storage::{MetricsStore, StorageError};

pub async fn hostile_names_and_values_round_trip(store: &dyn MetricsStore) {
    let t = tenant("acme");
    let long = "ü".repeat(512); // 1024 bytes
    let values = [
        "it's \"quoted\"",
        "back\\slash\\",
        "ünïcødé ✓ 日本語 🚀",
        "nul\0inside",
        "new\nline\ttab",
        "^regex.*meta[chars]+(a|b)?$",
        "'; DROP TABLE metrics; --",
        "%s%n{}",
        " leading and trailing ",
        long.as_str(),
    ];
    let names = ["weird.name:with_colons", "_underscore", "UPPER.lower"];
    let mut written = Vec::new();
    for name in names {
        for (i, v) in values.iter().enumerate() {
            written.push(metric(
                name,
                BASE_MS + i as i64,
                i as f64,
                &[("v", v), ("k.with.dots", v)],
            ));
        }
    }
    store.write(&t, written.clone()).await.unwrap();

    let mut want_names: Vec<&str> = names.to_vec();
    want_names.sort_unstable();
    assert_eq!(store.list_metrics(&t).await.unwrap(), want_names);
    let mut want_values: Vec<String> = values.iter().map(|v| v.to_string()).collect();
    want_values.sort();
    for name in names {
        assert_eq!(
            store
                .list_dimension_values(&t, name, "v", 100)
                .await
                .unwrap(),
            want_values
        );
        assert_eq!(
            store.list_dimension_keys(&t, name).await.unwrap(),
            vec!["k.with.dots", "v"]
        );
        for (i, v) in values.iter().enumerate() {
            let q = aggregate(
                select(name, all_time(), vec![eq("v", v)]),
                Aggregation::Sum,
                &["k.with.dots"],
            );
            let rows = store.query_aggregate(&t, &q).await.unwrap().rows;
            assert_eq!(rows.len(), 1, "{v:?}");
            assert_eq!(rows[0].group, vec![Some(v.to_string())]);
            assert_eq!(rows[0].value, i as f64);
            let escaped = regex::escape(v);
            let q = raw_range(select(name, all_time(), vec![matches("v", &escaped)]));
            let got = store.query_range(&t, &q).await.unwrap();
            assert_eq!(got.series.len(), 1, "{v:?}");
            assert_eq!(
                got.series[0].dimensions,
                dims(&[("k.with.dots", v), ("v", v)])
            );
        }
    }
    let q = raw_range(select(
        names[0],
        all_time(),
        vec![not_matches("v", ".*\\\\.*")],
    ));
    oracle::assert_series_match(
        &store.query_range(&t, &q).await.unwrap(),
        &oracle::range(&written, &q),
        "no backslash",
    );
}

pub async fn twenty_thousand_series_stay_correct(store: &dyn MetricsStore) {
    let t = tenant("acme");
    let n = 20_000;
    let written: Vec<Metric> = (0..n)
        .flat_map(|i| {
            let user = format!("user-{i:05}");
            let shard = format!("shard-{}", i % 16);
            [0, 1].map(|p| {
                metric(
                    "req",
                    BASE_MS + p * MINUTE + (i as i64 % 1000),
                    (i * 2 + p as usize) as f64,
                    &[("user", &user), ("shard", &shard)],
                )
            })
        })
        .collect();
    for chunk in written.chunks(1000) {
        store.write(&t, chunk.to_vec()).await.unwrap();
    }
    let q = aggregate(
        select("req", all_time(), vec![]),
        Aggregation::Count,
        &["user"],
    );
    let got = store.query_aggregate(&t, &q).await.unwrap();
    assert_eq!(got.rows.len(), n);
    assert!(got.rows.iter().all(|r| r.value == 2.0));
    for agg in [Aggregation::Sum, Aggregation::Percentile(0.99)] {
        let q = aggregate(
            select("req", all_time(), vec![matches("user", "user-1.*7")]),
            agg,
            &["shard"],
        );
        let got = store.query_aggregate(&t, &q).await.unwrap();
        oracle::assert_rows_match(
            &got,
            &oracle::aggregate(&written, &q),
            &format!("{agg:?} by shard"),
        );
    }
    let mut q = raw_range(select("req", all_time(), vec![not_eq("shard", "shard-3")]));
    q.limit = Some(10);
    let got = store.query_range(&t, &q).await.unwrap();
    oracle::assert_series_match(&got, &oracle::range(&written, &q), "range limit 10");
    assert_eq!(
        store
            .list_dimension_values(&t, "req", "user", 5)
            .await
            .unwrap()
            .len(),
        5
    );
    assert_eq!(
        store
            .list_dimension_values(&t, "req", "shard", 100)
            .await
            .unwrap()
            .len(),
        16
    );
}

pub async fn empty_write_is_accepted_and_changes_nothing(store: &dyn MetricsStore) {
    let t = tenant("acme");
    store.write(&t, vec![]).await.unwrap();
    assert!(store.list_metrics(&t).await.unwrap().is_empty());
}

pub async fn health_answers_and_close_fails_later_calls(store: &dyn MetricsStore) {
    let t = tenant("acme");
    store.health().await.unwrap();
    store
        .write(&t, vec![metric("m", BASE_MS, 1.0, &[])])
        .await
        .unwrap();
    store.close().await.unwrap();
    let write = store.write(&t, vec![metric("m", BASE_MS, 1.0, &[])]).await;
    assert!(
        matches!(write, Err(StorageError::Unavailable { .. })),
        "{write:?}"
    );
    assert!(store.health().await.is_err());
    assert!(store.list_metrics(&t).await.is_err());
}

pub async fn a_step_that_is_not_positive_is_an_invalid_query(store: &dyn MetricsStore) {
    let t = tenant("acme");
    store
        .write(&t, vec![metric("m", BASE_MS, 1.0, &[])])
        .await
        .unwrap();
    for step in [0, -MINUTE] {
        let mut q = raw_range(select("m", all_time(), vec![]));
        q.step = Some((step, Aggregation::Sum));
        let got = store.query_range(&t, &q).await;
        assert!(
            matches!(got, Err(StorageError::InvalidQuery(_))),
            "range step {step}: {got:?}"
        );
        let got = store
            .query_rate(&t, &rate(select("m", all_time(), vec![]), step))
            .await;
        assert!(
            matches!(got, Err(StorageError::InvalidQuery(_))),
            "rate step {step}: {got:?}"
        );
    }
}
