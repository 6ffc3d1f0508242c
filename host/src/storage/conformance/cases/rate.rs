use crate::model::Metric;
use crate::storage::MetricsStore;
use crate::storage::conformance::fixtures::*;
use crate::storage::conformance::oracle;

pub async fn rate_counts_counter_resets_from_zero(store: &dyn MetricsStore) {
    let t = tenant("acme");
    let d = [("job", "api")];
    let at = |m: i64| BASE_MS + m * MINUTE;
    store
        .write(
            &t,
            vec![
                metric("requests_total", at(0), 100.0, &d),
                metric("requests_total", at(1), 160.0, &d), // +60
                metric("requests_total", at(2), 30.0, &d),  // reset: +30
                metric("requests_total", at(3), 90.0, &d),  // +60
                metric("requests_total", at(3) + 30_000, 0.0, &d), // reset to 0: +0
            ],
        )
        .await
        .unwrap();
    let got = store
        .query_rate(
            &t,
            &rate(select("requests_total", all_time(), vec![]), MINUTE),
        )
        .await
        .unwrap();
    assert_eq!(got.series.len(), 1);
    assert_eq!(got.series[0].dimensions, dims(&d));
    assert_eq!(
        got.series[0].points,
        vec![(at(1), 1.0), (at(2), 0.5), (at(3), 1.0)]
    );
    // Two-minute buckets: at(0) and at(1) share one, at(2) and at(3) the next.
    let got = store
        .query_rate(
            &t,
            &rate(select("requests_total", all_time(), vec![]), 2 * MINUTE),
        )
        .await
        .unwrap();
    assert_eq!(got.series[0].points, vec![(at(0), 0.5), (at(2), 0.75)]);
}

pub async fn rate_grouped_sums_the_series_rates(store: &dyn MetricsStore) {
    let t = tenant("acme");
    let at = |m: i64| BASE_MS + m * MINUTE;
    let mut written = Vec::new();
    for (host, dc, step) in [("a", "x", 60.0), ("b", "x", 120.0), ("c", "y", 6.0)] {
        for m in 0..4 {
            written.push(metric(
                "c",
                at(m),
                step * m as f64,
                &[("host", host), ("dc", dc)],
            ));
        }
    }
    written.push(metric("c", at(0), 5.0, &[("host", "lonely"), ("dc", "y")])); // one point: no rate
    store.write(&t, written.clone()).await.unwrap();
    let mut q = rate(select("c", all_time(), vec![]), MINUTE);
    q.group_by = group_keys(&["dc"]);
    let got = store.query_rate(&t, &q).await.unwrap();
    assert_eq!(got.series.len(), 2);
    assert_eq!(got.series[0].dimensions, dims(&[("dc", "x")]));
    assert_eq!(
        got.series[0].points,
        vec![(at(1), 3.0), (at(2), 3.0), (at(3), 3.0)]
    );
    assert_eq!(got.series[1].dimensions, dims(&[("dc", "y")]));
    assert_eq!(
        got.series[1].points,
        vec![(at(1), 0.1), (at(2), 0.1), (at(3), 0.1)]
    );
    oracle::assert_series_match(&got, &oracle::rate(&written, &q), "grouped rate");
}

pub async fn rate_matches_brute_force(store: &dyn MetricsStore) {
    let t = tenant("acme");
    // Counters that mostly grow and sometimes reset.
    let mut written: Vec<Metric> = Vec::new();
    for s in 0..12 {
        let mut value = 0.0;
        for i in 0..80i64 {
            value = if (i * 7 + s) % 23 == 0 {
                (i % 5) as f64
            } else {
                value + ((i * s) % 13) as f64
            };
            let host = format!("h{}", s % 4);
            written.push(metric(
                "ctr",
                BASE_MS + i * 45_000 + s,
                value,
                &[("host", &host), ("s", &s.to_string())],
            ));
        }
    }
    store.write(&t, written.clone()).await.unwrap();
    let window = range(BASE_MS + 5 * MINUTE, BASE_MS + 50 * MINUTE);
    for step in [MINUTE, 5 * MINUTE, HOUR] {
        for group_by in [None, group_keys(&["host"]), group_keys(&["nope"])] {
            let mut q = rate(select("ctr", window, vec![not_eq("s", "3")]), step);
            q.group_by = group_by.clone();
            let got = store.query_rate(&t, &q).await.unwrap();
            oracle::assert_series_match(
                &got,
                &oracle::rate(&written, &q),
                &format!("step {step} by {group_by:?}"),
            );
        }
    }
}
