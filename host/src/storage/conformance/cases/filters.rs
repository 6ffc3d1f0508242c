use crate::model::{Aggregation, Filter, Metric, TenantId};
use crate::storage::MetricsStore;
use crate::storage::conformance::fixtures::*;
use crate::storage::conformance::oracle;

/// Four series: `/api` on h1, `/api/v2` on h2, `/web` without host, and
/// one with no dimensions. Values are distinct powers of two so a sum
/// names exactly which series matched.
async fn four_series(store: &dyn MetricsStore) -> TenantId {
    let t = tenant("acme");
    store
        .write(
            &t,
            vec![
                metric("m", BASE_MS, 1.0, &[("endpoint", "/api"), ("host", "h1")]),
                metric(
                    "m",
                    BASE_MS,
                    2.0,
                    &[("endpoint", "/api/v2"), ("host", "h2")],
                ),
                metric("m", BASE_MS, 4.0, &[("endpoint", "/web")]),
                metric("m", BASE_MS, 8.0, &[]),
            ],
        )
        .await
        .unwrap();
    t
}

async fn matched_sum(store: &dyn MetricsStore, t: &TenantId, filters: Vec<Filter>) -> f64 {
    let q = aggregate(select("m", all_time(), filters), Aggregation::Sum, &[]);
    let got = store.query_aggregate(t, &q).await.unwrap();
    got.rows.first().map_or(0.0, |r| r.value)
}

pub async fn filter_eq_and_not_eq_treat_a_missing_key_as_empty(store: &dyn MetricsStore) {
    let t = four_series(store).await;
    assert_eq!(matched_sum(store, &t, vec![eq("host", "h1")]).await, 1.0);
    assert_eq!(
        matched_sum(store, &t, vec![not_eq("host", "h1")]).await,
        2.0 + 4.0 + 8.0
    );
    // "" is what a missing key reads as.
    assert_eq!(
        matched_sum(store, &t, vec![eq("host", "")]).await,
        4.0 + 8.0
    );
    assert_eq!(
        matched_sum(store, &t, vec![not_eq("host", "")]).await,
        1.0 + 2.0
    );
    assert_eq!(matched_sum(store, &t, vec![eq("host", "h3")]).await, 0.0);
}

pub async fn filter_regex_is_anchored_and_not_regex_matches_missing_keys(store: &dyn MetricsStore) {
    let t = four_series(store).await;
    // Anchored: "api" does not match "/api"; "/api.*" matches both api series.
    assert_eq!(
        matched_sum(store, &t, vec![matches("endpoint", "api")]).await,
        0.0
    );
    assert_eq!(
        matched_sum(store, &t, vec![matches("endpoint", "/api.*")]).await,
        3.0
    );
    assert_eq!(
        matched_sum(store, &t, vec![matches("endpoint", "/api")]).await,
        1.0
    );
    assert_eq!(
        matched_sum(store, &t, vec![matches("endpoint", "/(web|api)")]).await,
        5.0
    );
    // A missing key reads as "", which "/api.*" does not match.
    assert_eq!(
        matched_sum(store, &t, vec![not_matches("endpoint", "/api.*")]).await,
        4.0 + 8.0
    );
    assert_eq!(
        matched_sum(store, &t, vec![matches("endpoint", ".*")]).await,
        15.0
    );
    assert_eq!(
        matched_sum(store, &t, vec![matches("endpoint", ".+")]).await,
        7.0
    );
    assert_eq!(
        matched_sum(store, &t, vec![not_matches("endpoint", ".*")]).await,
        0.0
    );
}

pub async fn filter_in_matches_any_listed_value(store: &dyn MetricsStore) {
    let t = four_series(store).await;
    assert_eq!(
        matched_sum(store, &t, vec![one_of("host", &["h1", "h2"])]).await,
        3.0
    );
    assert_eq!(
        matched_sum(store, &t, vec![one_of("host", &["h2", "nope"])]).await,
        2.0
    );
    assert_eq!(
        matched_sum(store, &t, vec![one_of("host", &["h1", ""])]).await,
        1.0 + 4.0 + 8.0
    );
    assert_eq!(matched_sum(store, &t, vec![one_of("host", &[])]).await, 0.0);
}

pub async fn filters_combine_as_and(store: &dyn MetricsStore) {
    let t = four_series(store).await;
    let both = vec![matches("endpoint", "/api.*"), not_eq("host", "h1")];
    assert_eq!(matched_sum(store, &t, both).await, 2.0);
    let disjoint = vec![eq("host", "h1"), eq("host", "h2")];
    assert_eq!(matched_sum(store, &t, disjoint).await, 0.0);
    let same = vec![eq("host", "h1"), one_of("endpoint", &["/api", "/web"])];
    assert_eq!(matched_sum(store, &t, same).await, 1.0);
}

pub async fn filters_on_a_key_no_series_has(store: &dyn MetricsStore) {
    let t = four_series(store).await;
    assert_eq!(matched_sum(store, &t, vec![eq("zone", "a")]).await, 0.0);
    assert_eq!(
        matched_sum(store, &t, vec![not_eq("zone", "a")]).await,
        15.0
    );
    assert_eq!(
        matched_sum(store, &t, vec![matches("zone", "")]).await,
        15.0
    );
    assert_eq!(
        matched_sum(store, &t, vec![not_matches("zone", "a.*")]).await,
        15.0
    );
    assert_eq!(
        matched_sum(store, &t, vec![one_of("zone", &[""])]).await,
        15.0
    );
}

pub async fn every_filter_op_matches_brute_force(store: &dyn MetricsStore) {
    let t = tenant("acme");
    let mut written: Vec<Metric> = random_metrics("latency", 35, 10, 3);
    written.extend(random_metrics("other", 5, 5, 4));
    store.write(&t, written.clone()).await.unwrap();
    let cases: Vec<Vec<Filter>> = vec![
        vec![eq("endpoint", "/api/query")],
        vec![eq("endpoint", "/a.b")],
        vec![matches("endpoint", "/a.b")],
        vec![matches("endpoint", "/a\\+b")],
        vec![matches("endpoint", "/a+b")],
        vec![not_eq("endpoint", "/healthz")],
        vec![not_matches("endpoint", "/api/.*")],
        vec![matches("host", "host-[0-2]")],
        vec![one_of("region", &["eu", "mars"])],
        vec![one_of("region", &["", "eu"])],
        vec![
            not_eq("region", "us"),
            matches("endpoint", ".*write|.*query"),
        ],
        vec![eq("series", "s3")],
        vec![matches("series", "s1[0-9]"), not_eq("host", "host-2")],
    ];
    for filters in cases {
        let desc = format!("{filters:?}");
        for group_by in [&[][..], &["host"][..]] {
            let q = aggregate(
                select("latency", all_time(), filters.clone()),
                Aggregation::Count,
                group_by,
            );
            let got = store.query_aggregate(&t, &q).await.unwrap();
            oracle::assert_rows_match(&got, &oracle::aggregate(&written, &q), &desc);
        }
        let q = raw_range(select("latency", all_time(), filters.clone()));
        let got = store.query_range(&t, &q).await.unwrap();
        oracle::assert_series_match(&got, &oracle::range(&written, &q), &desc);
    }
}
