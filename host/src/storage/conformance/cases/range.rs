use crate::model::{Aggregation, Metric, RangeQuery};
use crate::storage::MetricsStore;
use crate::storage::conformance::fixtures::*;
use crate::storage::conformance::oracle;

pub async fn range_returns_raw_points_per_series_in_time_order(store: &dyn MetricsStore) {
    let t = tenant("acme");
    let a = [("host", "a")];
    let b = [("host", "b")];
    // Out of order, across batches and hours.
    store
        .write(
            &t,
            vec![
                metric("m", BASE_MS + 2 * HOUR, 3.0, &a),
                metric("m", BASE_MS, 1.0, &b),
            ],
        )
        .await
        .unwrap();
    store
        .write(
            &t,
            vec![
                metric("m", BASE_MS + 10, 2.0, &a),
                metric("m", BASE_MS + 5, 0.5, &a),
            ],
        )
        .await
        .unwrap();
    let got = store
        .query_range(&t, &raw_range(select("m", all_time(), vec![])))
        .await
        .unwrap();
    assert_eq!(got.series.len(), 2);
    assert_eq!(got.series[0].dimensions, dims(&a));
    assert_eq!(
        got.series[0].points,
        vec![
            (BASE_MS + 5, 0.5),
            (BASE_MS + 10, 2.0),
            (BASE_MS + 2 * HOUR, 3.0)
        ]
    );
    assert_eq!(got.series[1].points, vec![(BASE_MS, 1.0)]);
}

pub async fn range_with_step_aggregates_epoch_aligned_buckets(store: &dyn MetricsStore) {
    let t = tenant("acme");
    let d = [("host", "a")];
    let start = BASE_MS + 7 * MINUTE + 13_000; // not aligned to the step
    store
        .write(
            &t,
            vec![
                metric("m", start, 1.0, &d),
                metric("m", start + 10_000, 3.0, &d),
                metric("m", start + 50_000, 5.0, &d), // next minute
                metric("m", start + 5 * MINUTE, 7.0, &d),
            ],
        )
        .await
        .unwrap();
    let mut q = raw_range(select("m", all_time(), vec![]));
    q.step = Some((MINUTE, Aggregation::Sum));
    let got = store.query_range(&t, &q).await.unwrap();
    let minute = |ts: i64| ts - ts.rem_euclid(MINUTE);
    assert_eq!(
        got.series[0].points,
        vec![
            (minute(start), 4.0),
            (minute(start) + MINUTE, 5.0),
            (minute(start) + 5 * MINUTE, 7.0)
        ]
    );
    q.step = Some((HOUR, Aggregation::Max));
    let got = store.query_range(&t, &q).await.unwrap();
    assert_eq!(got.series[0].points, vec![(BASE_MS, 7.0)]);
}

pub async fn range_grouped_merges_series_per_group(store: &dyn MetricsStore) {
    let t = tenant("acme");
    store
        .write(
            &t,
            vec![
                metric("m", BASE_MS + 3, 3.0, &[("dc", "x"), ("host", "a")]),
                metric("m", BASE_MS + 1, 1.0, &[("dc", "x"), ("host", "b")]),
                metric("m", BASE_MS + 2, 2.0, &[("host", "c")]),
            ],
        )
        .await
        .unwrap();
    let mut q = raw_range(select("m", all_time(), vec![]));
    q.group_by = group_keys(&["dc"]);
    let got = store.query_range(&t, &q).await.unwrap();
    assert_eq!(got.series.len(), 2);
    assert_eq!(got.series[0].dimensions, dims(&[]));
    assert_eq!(got.series[0].points, vec![(BASE_MS + 2, 2.0)]);
    assert_eq!(got.series[1].dimensions, dims(&[("dc", "x")]));
    assert_eq!(
        got.series[1].points,
        vec![(BASE_MS + 1, 1.0), (BASE_MS + 3, 3.0)]
    );
    q.step = Some((MINUTE, Aggregation::Avg));
    let got = store.query_range(&t, &q).await.unwrap();
    assert_eq!(got.series[1].points, vec![(BASE_MS, 2.0)]);
}

pub async fn range_matches_brute_force(store: &dyn MetricsStore) {
    let t = tenant("acme");
    let written: Vec<Metric> = random_metrics("latency", 25, 30, 5);
    store.write(&t, written.clone()).await.unwrap();
    let window = range(BASE_MS + 20 * MINUTE, BASE_MS + 150 * MINUTE);
    let steps = [
        None,
        Some((MINUTE * 7, Aggregation::Avg)),
        Some((HOUR, Aggregation::Percentile(0.9))),
        Some((1_000, Aggregation::Count)),
    ];
    for step in steps {
        for group_by in [
            None,
            group_keys(&["endpoint"]),
            group_keys(&["region", "host"]),
        ] {
            let q = RangeQuery {
                selector: select("latency", window, vec![not_eq("host", "host-1")]),
                step,
                group_by: group_by.clone(),
                limit: None,
                sorted: true,
            };
            let got = store.query_range(&t, &q).await.unwrap();
            oracle::assert_series_match(
                &got,
                &oracle::range(&written, &q),
                &format!("step {step:?} by {group_by:?}"),
            );
        }
    }
}

pub async fn time_range_is_half_open_for_every_query(store: &dyn MetricsStore) {
    let t = tenant("acme");
    let d = [("k", "v")];
    let (start, end) = (BASE_MS + 30 * MINUTE, BASE_MS + 90 * MINUTE);
    store
        .write(
            &t,
            vec![
                metric("c", start - 1, 1.0, &d),
                metric("c", start, 10.0, &d),
                metric("c", start + 1, 20.0, &d),
                metric("c", end - 1, 40.0, &d),
                metric("c", end, 1000.0, &d),
            ],
        )
        .await
        .unwrap();
    let sel = || select("c", range(start, end), vec![]);
    let got = store
        .query_aggregate(&t, &aggregate(sel(), Aggregation::Count, &[]))
        .await
        .unwrap();
    assert_eq!(got.rows[0].value, 3.0);
    let got = store.query_range(&t, &raw_range(sel())).await.unwrap();
    assert_eq!(
        got.series[0].points,
        vec![(start, 10.0), (start + 1, 20.0), (end - 1, 40.0)]
    );
    // The rate sees only in-range points: 10 -> 20 -> 40, none of the outliers.
    let got = store.query_rate(&t, &rate(sel(), 2 * HOUR)).await.unwrap();
    let total: f64 = got.series[0].points.iter().map(|p| p.1).sum();
    assert!(oracle::close(total * 7_200.0, 30.0), "{got:?}");
}

pub async fn points_across_many_hours_and_days(store: &dyn MetricsStore) {
    let t = tenant("acme");
    let written: Vec<Metric> = (0..200)
        .map(|i| {
            metric(
                "m",
                BASE_MS - 5 * DAY + i * 71 * MINUTE,
                i as f64,
                &[("h", if i % 2 == 0 { "a" } else { "b" })],
            )
        })
        .collect();
    for chunk in written.chunks(17) {
        store.write(&t, chunk.to_vec()).await.unwrap();
    }
    let windows = [
        all_time(),
        range(BASE_MS - 3 * DAY + 17, BASE_MS - DAY - 5 * MINUTE),
        range(BASE_MS - 5 * DAY, BASE_MS - 5 * DAY + HOUR),
    ];
    for window in windows {
        for agg in [
            Aggregation::Count,
            Aggregation::Sum,
            Aggregation::Percentile(0.5),
        ] {
            let q = aggregate(select("m", window, vec![]), agg, &["h"]);
            let got = store.query_aggregate(&t, &q).await.unwrap();
            oracle::assert_rows_match(
                &got,
                &oracle::aggregate(&written, &q),
                &format!("{agg:?} in {window:?}"),
            );
        }
        let mut q = raw_range(select("m", window, vec![]));
        q.step = Some((DAY, Aggregation::Sum));
        let got = store.query_range(&t, &q).await.unwrap();
        oracle::assert_series_match(
            &got,
            &oracle::range(&written, &q),
            &format!("daily sums in {window:?}"),
        );
    }
}

pub async fn limit_keeps_the_first_results_and_flags_truncation(store: &dyn MetricsStore) {
    let t = tenant("acme");
    let written: Vec<Metric> = (0..5)
        .flat_map(|i| {
            let host = format!("h{i}");
            (0..3).map(move |j| {
                metric(
                    "m",
                    BASE_MS + j * MINUTE,
                    (j + i) as f64,
                    &[("host", &host)],
                )
            })
        })
        .collect();
    store.write(&t, written.clone()).await.unwrap();
    for limit in [0, 1, 4, 5, 6] {
        let mut q = aggregate(select("m", all_time(), vec![]), Aggregation::Sum, &["host"]);
        q.limit = Some(limit);
        let got = store.query_aggregate(&t, &q).await.unwrap();
        assert_eq!(got.rows.len(), limit.min(5));
        assert_eq!(got.truncated, limit < 5, "aggregate limit {limit}");
        oracle::assert_rows_match(&got, &oracle::aggregate(&written, &q), "aggregate limit");

        let mut q = raw_range(select("m", all_time(), vec![]));
        q.limit = Some(limit);
        let got = store.query_range(&t, &q).await.unwrap();
        assert_eq!(got.truncated, limit < 5, "range limit {limit}");
        oracle::assert_series_match(&got, &oracle::range(&written, &q), "range limit");

        let mut q = rate(select("m", all_time(), vec![]), MINUTE);
        q.limit = Some(limit);
        let got = store.query_rate(&t, &q).await.unwrap();
        assert_eq!(got.truncated, limit < 5, "rate limit {limit}");
        oracle::assert_series_match(&got, &oracle::rate(&written, &q), "rate limit");
    }
}
