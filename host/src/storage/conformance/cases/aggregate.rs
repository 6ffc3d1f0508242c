use crate::model::{AggregateRow, Aggregation};
use crate::storage::MetricsStore;
use crate::storage::conformance::fixtures::*;
use crate::storage::conformance::oracle;

pub async fn writes_then_reads_raw_points(store: &dyn MetricsStore) {
    let t = tenant("acme");
    let written = vec![
        metric("api_latency", BASE_MS + 2_000, 0.25, &[("endpoint", "/a")]),
        metric("api_latency", BASE_MS + 1_000, 0.5, &[("endpoint", "/a")]),
        metric("api_latency", BASE_MS + 1_500, 1.5, &[("endpoint", "/b")]),
    ];
    store.write(&t, written.clone()).await.unwrap();
    let q = raw_range(select("api_latency", all_time(), vec![]));
    let got = store.query_range(&t, &q).await.unwrap();
    assert!(!got.truncated);
    assert_eq!(got.series.len(), 2);
    assert_eq!(got.series[0].dimensions, dims(&[("endpoint", "/a")]));
    assert_eq!(
        got.series[0].points,
        vec![(BASE_MS + 1_000, 0.5), (BASE_MS + 2_000, 0.25)]
    );
    assert_eq!(got.series[1].dimensions, dims(&[("endpoint", "/b")]));
    assert_eq!(got.series[1].points, vec![(BASE_MS + 1_500, 1.5)]);
    oracle::assert_series_match(&got, &oracle::range(&written, &q), "raw points");
}

pub async fn every_aggregation_matches_brute_force(store: &dyn MetricsStore) {
    let t = tenant("acme");
    let written = random_metrics("latency", 40, 60, 7);
    for chunk in written.chunks(500) {
        store.write(&t, chunk.to_vec()).await.unwrap();
    }
    for agg in every_aggregation() {
        for group_by in [&[][..], &["endpoint"][..], &["region"][..]] {
            let q = aggregate(select("latency", all_time(), vec![]), agg, group_by);
            let got = store.query_aggregate(&t, &q).await.unwrap();
            let want = oracle::aggregate(&written, &q);
            assert!(!want.rows.is_empty());
            oracle::assert_rows_match(&got, &want, &format!("{agg:?} by {group_by:?}"));
        }
    }
}

pub async fn percentiles_are_exact_ranks_not_interpolations(store: &dyn MetricsStore) {
    let t = tenant("acme");
    // 1..=100 written in a scrambled order over several series and batches.
    let values: Vec<f64> = (0..100).map(|i| ((i * 37) % 100 + 1) as f64).collect();
    for (i, chunk) in values.chunks(30).enumerate() {
        let batch = chunk
            .iter()
            .enumerate()
            .map(|(j, v)| {
                metric(
                    "m",
                    BASE_MS + (i * 30 + j) as i64,
                    *v,
                    &[("s", &format!("{}", j % 4))],
                )
            })
            .collect();
        store.write(&t, batch).await.unwrap();
    }
    // rank = min(floor(q * n), n - 1) over the sorted values 1..=100.
    for (q, expected) in [
        (0.0, 1.0),
        (0.5, 51.0),
        (0.9, 91.0),
        (0.95, 96.0),
        (0.99, 100.0),
        (0.999, 100.0),
        (1.0, 100.0),
        (0.505, 51.0),
    ] {
        let query = aggregate(
            select("m", all_time(), vec![]),
            Aggregation::Percentile(q),
            &[],
        );
        let got = store.query_aggregate(&t, &query).await.unwrap();
        assert_eq!(
            got.rows,
            vec![AggregateRow {
                group: vec![],
                value: expected
            }],
            "p{}",
            q * 100.0
        );
    }
}

pub async fn group_by_puts_series_missing_the_key_in_a_first_none_group(store: &dyn MetricsStore) {
    let t = tenant("acme");
    store
        .write(
            &t,
            vec![
                metric("m", BASE_MS, 1.0, &[("endpoint", "/b")]),
                metric("m", BASE_MS, 2.0, &[("endpoint", "/a")]),
                metric("m", BASE_MS, 4.0, &[("host", "h1")]),
                metric("m", BASE_MS, 8.0, &[]),
                metric("m", BASE_MS, 16.0, &[("endpoint", "/a"), ("host", "h2")]),
            ],
        )
        .await
        .unwrap();
    let q = aggregate(
        select("m", all_time(), vec![]),
        Aggregation::Sum,
        &["endpoint"],
    );
    let got = store.query_aggregate(&t, &q).await.unwrap();
    let row = |g: Option<&str>, value| AggregateRow {
        group: vec![g.map(String::from)],
        value,
    };
    assert_eq!(
        got.rows,
        vec![row(None, 12.0), row(Some("/a"), 18.0), row(Some("/b"), 1.0)]
    );
    assert!(!got.truncated);
}

pub async fn group_by_several_keys_matches_brute_force(store: &dyn MetricsStore) {
    let t = tenant("acme");
    let written = random_metrics("latency", 30, 20, 11);
    store.write(&t, written.clone()).await.unwrap();
    for group_by in [
        &["endpoint", "region"][..],
        &["region", "endpoint", "host"][..],
        &["nope", "region"][..],
    ] {
        for agg in [
            Aggregation::Count,
            Aggregation::Max,
            Aggregation::Percentile(0.99),
        ] {
            let q = aggregate(select("latency", all_time(), vec![]), agg, group_by);
            let got = store.query_aggregate(&t, &q).await.unwrap();
            oracle::assert_rows_match(
                &got,
                &oracle::aggregate(&written, &q),
                &format!("{agg:?} by {group_by:?}"),
            );
        }
    }
}

pub async fn unknown_metric_and_empty_range_answer_nothing(store: &dyn MetricsStore) {
    let t = tenant("acme");
    store
        .write(&t, vec![metric("m", BASE_MS, 1.0, &[("k", "v")])])
        .await
        .unwrap();
    let q = aggregate(select("other", all_time(), vec![]), Aggregation::Count, &[]);
    assert!(store.query_aggregate(&t, &q).await.unwrap().rows.is_empty());
    let before = range(BASE_MS - HOUR, BASE_MS);
    let q = aggregate(select("m", before, vec![]), Aggregation::Count, &["k"]);
    assert!(store.query_aggregate(&t, &q).await.unwrap().rows.is_empty());
    let empty = range(BASE_MS, BASE_MS);
    let q = raw_range(select("m", empty, vec![]));
    assert!(store.query_range(&t, &q).await.unwrap().series.is_empty());
    let q = rate(select("other", all_time(), vec![]), MINUTE);
    assert!(store.query_rate(&t, &q).await.unwrap().series.is_empty());
}

pub async fn metrics_sharing_a_name_prefix_do_not_mix(store: &dyn MetricsStore) {
    let t = tenant("acme");
    let names = ["cpu", "cpu_total", "cpu.user", "cpu:rate", "cp"];
    let batch = names
        .iter()
        .enumerate()
        .map(|(i, n)| metric(n, BASE_MS, (i + 1) as f64, &[("k", "v")]))
        .collect();
    store.write(&t, batch).await.unwrap();
    for (i, n) in names.iter().enumerate() {
        let q = aggregate(select(n, all_time(), vec![]), Aggregation::Sum, &[]);
        let got = store.query_aggregate(&t, &q).await.unwrap();
        assert_eq!(
            got.rows,
            vec![AggregateRow {
                group: vec![],
                value: (i + 1) as f64
            }],
            "{n}"
        );
    }
}
