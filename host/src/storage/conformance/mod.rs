//! The backend conformance suite: one set of cases that every
//! [`MetricsStore`] must pass, so the embedded and ClickHouse backends answer
//! every query the same way. Compiled for tests and with the `testing`
//! feature.
//!
//! Run it for a backend with [`conformance_suite!`](crate::conformance_suite),
//! giving a factory that returns a fresh, empty store; every case becomes
//! its own `#[tokio::test]`:
//!
//! ```ignore
//! mod clickhouse_conformance {
//!     luminate_host::conformance_suite!(|| async {
//!         let server = start_clickhouse().await;           // kept alive by the guard
//!         let store = ClickHouseStore::connect(server.url()).await.unwrap();
//!         luminate_host::storage::conformance::StoreUnderTest::keeping(store, server)
//!     });
//! }
//! ```
//!
//! Expected answers come from [`oracle`], a deliberately naive brute-force
//! evaluation of the same query over the written metrics, independent of
//! `storage::compute`.

pub mod cases;
pub mod fixtures;
pub mod oracle;

use std::any::Any;

use crate::storage::MetricsStore;

/// A store under test plus whatever must outlive it (a temp dir, a server).
pub struct StoreUnderTest {
    store: Box<dyn MetricsStore>,
    _keep: Box<dyn Any + Send + Sync>,
}

impl StoreUnderTest {
    pub fn new(store: impl MetricsStore) -> Self {
        Self::keeping(store, ())
    }

    /// `guard` is dropped after the store.
    pub fn keeping(store: impl MetricsStore, guard: impl Any + Send + Sync) -> Self {
        Self {
            store: Box::new(store),
            _keep: Box::new(guard),
        }
    }

    pub fn store(&self) -> &dyn MetricsStore {
        self.store.as_ref()
    }
}

/// Expands to one `#[tokio::test]` per conformance case. `$factory` is
/// called once per test: `$factory().await` must yield a [`StoreUnderTest`]
/// wrapping a fresh, empty store.
#[macro_export]
macro_rules! conformance_suite {
    ($factory:expr) => {
        $crate::conformance_suite!(@cases $factory;
            writes_then_reads_raw_points,
            every_aggregation_matches_brute_force,
            percentiles_are_exact_ranks_not_interpolations,
            group_by_puts_series_missing_the_key_in_a_first_none_group,
            group_by_several_keys_matches_brute_force,
            unknown_metric_and_empty_range_answer_nothing,
            metrics_sharing_a_name_prefix_do_not_mix,
            filter_eq_and_not_eq_treat_a_missing_key_as_empty,
            filter_regex_is_anchored_and_not_regex_matches_missing_keys,
            filter_in_matches_any_listed_value,
            filters_combine_as_and,
            filters_on_a_key_no_series_has,
            every_filter_op_matches_brute_force,
            range_returns_raw_points_per_series_in_time_order,
            range_with_step_aggregates_epoch_aligned_buckets,
            range_grouped_merges_series_per_group,
            range_matches_brute_force,
            time_range_is_half_open_for_every_query,
            points_across_many_hours_and_days,
            rate_counts_counter_resets_from_zero,
            rate_grouped_sums_the_series_rates,
            rate_matches_brute_force,
            limit_keeps_the_first_results_and_flags_truncation,
            discovery_lists_sorted_metrics_keys_and_values,
            dimension_values_respect_the_limit,
            discovery_of_an_unknown_metric_is_empty,
            delete_before_removes_only_older_points_of_that_metric,
            enforce_retention_applies_to_every_tenant_and_metric,
            writes_after_a_delete_are_visible,
            tenant_b_sees_nothing_of_tenant_a_through_any_operation,
            tenants_whose_ids_prefix_each_other_stay_apart,
            hostile_names_and_values_round_trip,
            twenty_thousand_series_stay_correct,
            empty_write_is_accepted_and_changes_nothing,
            a_step_that_is_not_positive_is_an_invalid_query,
            health_answers_and_close_fails_later_calls,
            a_query_reading_past_its_points_budget_is_too_large,
            a_range_answer_past_its_points_budget_is_too_large,
        );
    };
    (@cases $factory:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let under_test = ($factory)().await;
                $crate::storage::conformance::cases::$case(under_test.store()).await;
            }
        )*
    };
}
