use crate::model::{Aggregation, BudgetExceeded, QueryBudget, RangeQuery, Selector};
use crate::storage::conformance::fixtures::*;
use crate::storage::{MetricsStore, StorageError};

/// 10 series × 100 points of `m`, one write, one hour.
async fn thousand_points(store: &dyn MetricsStore) {
    let mut written = Vec::new();
    for s in 0..10 {
        let series = format!("s{s}");
        for i in 0..100 {
            written.push(metric("m", BASE_MS + i, 1.0, &[("series", &series)]));
        }
    }
    store.write(&tenant("acme"), written).await.unwrap();
}

fn within(mut selector: Selector, max_points_scanned: u64, max_points_returned: u64) -> Selector {
    selector.budget = QueryBudget {
        max_points_scanned,
        max_points_returned,
    };
    selector
}

fn raw_range(selector: Selector) -> RangeQuery {
    RangeQuery {
        selector,
        step: None,
        group_by: None,
        limit: None,
        sorted: true,
    }
}

pub async fn a_query_reading_past_its_points_budget_is_too_large(store: &dyn MetricsStore) {
    thousand_points(store).await;
    let t = tenant("acme");
    let tight = aggregate(
        within(select("m", all_time(), vec![]), 500, u64::MAX),
        Aggregation::Sum,
        &["series"],
    );
    let got = store.query_aggregate(&t, &tight).await;
    assert!(
        matches!(
            got,
            Err(StorageError::TooLarge(BudgetExceeded::PointsScanned {
                max: 500
            }))
        ),
        "{got:?}"
    );
    let got = store
        .query_range(&t, &raw_range(tight.selector.clone()))
        .await;
    assert!(
        matches!(
            got,
            Err(StorageError::TooLarge(BudgetExceeded::PointsScanned { .. }))
        ),
        "{got:?}"
    );

    let roomy = aggregate(
        within(select("m", all_time(), vec![]), 1_000_000, u64::MAX),
        Aggregation::Sum,
        &[],
    );
    let rows = store.query_aggregate(&t, &roomy).await.unwrap().rows;
    assert_eq!(rows[0].value, 1000.0);
}

pub async fn a_range_answer_past_its_points_budget_is_too_large(store: &dyn MetricsStore) {
    thousand_points(store).await;
    let t = tenant("acme");
    let got = store
        .query_range(
            &t,
            &raw_range(within(select("m", all_time(), vec![]), u64::MAX, 999)),
        )
        .await;
    assert!(
        matches!(
            got,
            Err(StorageError::TooLarge(BudgetExceeded::PointsReturned {
                max: 999
            }))
        ),
        "{got:?}"
    );
    // The same budget holds one series' 100 points.
    let one = store
        .query_range(
            &t,
            &raw_range(within(
                select("m", all_time(), vec![eq("series", "s3")]),
                u64::MAX,
                999,
            )),
        )
        .await
        .unwrap();
    assert_eq!(one.series[0].points.len(), 100);
}
