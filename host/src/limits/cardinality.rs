//! Per-tenant series cardinality: HyperLogLog estimates per tenant, per
//! (tenant, metric) and per dimension key, and the series limits.
//!
//! ## Is this series new?
//! A HyperLogLog cannot answer that exactly: "the insert changed a
//! register" misses most new series once the sketch is large (their
//! registers already hold higher values), so a tenant at its limit could
//! keep adding series that never move the sketch. Instead each tenant has
//! an exact set of 64-bit fingerprints (xxh3 of the series key) of the
//! series it was allowed to create. The set is bounded by the tenant's own
//! limit, because nothing past the limit is added (plus the HLL error), so
//! memory is ~16 bytes per allowed series; the unlimited tier is bounded by
//! `max_tracked_series_per_tenant`. A known series is accepted without
//! touching any sketch (the hot path is one hash and one set lookup); a
//! new one is checked against the limits using the HLL estimates and, if
//! accepted, inserted into the set and the sketches.
//!
//! Each tenant's state is split in two (see `tracked`): the write path
//! takes one mutex per batch, where a known series costs a hash and a
//! lookup (nanoseconds), so even a single hot tenant saturates it only far
//! beyond the ingest rate, while a concurrent set would pay an atomic per
//! metric. Counting for reports and copying for persistence happen on
//! blocking threads, off that mutex: they take the changed sketches under
//! a short lock (pointer copies) and work on those. Tenants never share a
//! lock.
//!
//! Bounds: per tenant at most `max_tracked_metrics_per_tenant` metric
//! names have a sketch (a new series of one more name is refused, naming
//! the bound: the per-metric limit cannot be enforced without it, and
//! metric names past tens of thousands are a labelling mistake) and at
//! most `max_tracked_keys_per_tenant` dimension keys; further keys are
//! folded into two sketches (their distinct names and their distinct
//! key=value pairs), because key sketches only feed reports, and refusing
//! data to keep a report detailed would turn a report's bound into a
//! data limit nobody sees coming.
//!
//! Consequences: existing series are always accepted; a series created
//! after the last persisted snapshot and before a crash is "new" again
//! after restart (its HLL insert is idempotent, so estimates do not grow;
//! only if the tenant is at its limit is it refused until the limit
//! allows). Fingerprint collisions (2^-64 per pair) would let a new series
//! pass as known: negligible. Beyond `max_tracked_series_per_tenant`, new
//! series are detected only by the HLL (every unknown series is inserted;
//! limits use the estimate).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use dashmap::DashMap;

use super::config::{CardinalityConfig, Limit, TierLimits};
use super::store::{SketchChanges, SketchStore, SketchStoreError};
use super::tracked::{Live, Tenant, lock, merge_remote};
use crate::model::{Metric, TenantId};

/// Why a metric was refused: it would create a series beyond a limit.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CardinalityError {
    #[error(
        "metric {metric:?} would create a new series beyond max_series_per_metric = {limit} (current estimate {estimate}); existing series of it are still accepted"
    )]
    PerMetric {
        metric: String,
        limit: u64,
        estimate: u64,
    },
    #[error(
        "metric {metric:?} would create a new series beyond the tenant's max_series_per_tenant = {limit} (current estimate {estimate}); existing series are still accepted"
    )]
    PerTenant {
        metric: String,
        limit: u64,
        estimate: u64,
    },
    #[error(
        "metric {metric:?} would be a new metric name beyond limits.cardinality.max_tracked_metrics_per_tenant = {limit} names; existing series are still accepted (put what varies in dimensions, not in the name)"
    )]
    TrackedMetrics { metric: String, limit: usize },
}

impl CardinalityError {
    pub fn code(&self) -> &'static str {
        match self {
            CardinalityError::PerMetric { .. } => "max_series_per_metric",
            CardinalityError::PerTenant { .. } => "max_series_per_tenant",
            CardinalityError::TrackedMetrics { .. } => "max_tracked_metrics_per_tenant",
        }
    }
}

/// New series a write batch may bring and still be checked on the async
/// worker that runs it (about a microsecond each plus a few sketch inserts
/// per dimension); a batch with more moves to a blocking thread.
pub const INLINE_NEW_SERIES: usize = 64;

fn fingerprints(metrics: &[Metric]) -> Vec<u64> {
    let mut buf = Vec::with_capacity(256);
    metrics
        .iter()
        .map(|m| series_fingerprint(m, &mut buf))
        .collect()
}

/// The fingerprint of a series: its metric name and canonical dimensions.
pub fn series_fingerprint(metric: &Metric, buf: &mut Vec<u8>) -> u64 {
    metric.write_series_key(buf);
    xxhash_rust::xxh3::xxh3_64(buf)
}

/// One row of a cardinality report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Estimate {
    pub name: String,
    pub estimate: u64,
}

/// What `GET /api/v1/cardinality` shows a tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardinalityReport {
    pub series: u64,
    pub max_series_per_tenant: Limit,
    pub max_series_per_metric: Limit,
    /// Series per metric, largest first, at most `top_n`.
    pub metrics: Vec<Estimate>,
    pub metrics_total: usize,
    pub max_tracked_metrics: usize,
    /// Distinct values per tracked dimension key, largest first, at most `top_n`.
    pub dimension_keys: Vec<Estimate>,
    /// Tracked keys plus the estimate of keys past the bound.
    pub dimension_keys_total: u64,
    pub max_tracked_keys: usize,
    /// Estimated distinct keys past `max_tracked_keys`, and their distinct
    /// key=value pairs.
    pub untracked_keys: u64,
    pub untracked_values: u64,
}

pub struct CardinalityTracker {
    tenants: DashMap<TenantId, Arc<Tenant>>,
    store: Arc<dyn SketchStore>,
    config: CardinalityConfig,
    /// One persist at a time, so saves of one tenant reach the store in order.
    persisting: tokio::sync::Mutex<()>,
}

impl CardinalityTracker {
    /// Loads every tenant's sketches from `store`. State saved before the
    /// tracking bounds existed is trimmed to them and saved back.
    pub async fn open(
        store: Arc<dyn SketchStore>,
        config: &CardinalityConfig,
    ) -> Result<Self, SketchStoreError> {
        let tenants = DashMap::new();
        let loaded = store.load_all().await?;
        let config = config.clone();
        let (loaded, trimmed) = {
            let config = config.clone();
            tokio::task::spawn_blocking(move || {
                let mut trimmed = Vec::new();
                let mut out = Vec::with_capacity(loaded.len());
                for (tenant, sketches) in loaded {
                    let (live, was_trimmed) = Live::from_snapshot(sketches, &config);
                    if was_trimmed {
                        trimmed.push((tenant.clone(), live.snapshot()));
                    }
                    out.push((tenant, live));
                }
                (out, trimmed)
            })
            .await
            .map_err(|e| SketchStoreError::Io {
                path: "cardinality".into(),
                source: std::io::Error::other(e.to_string()),
            })?
        };
        for (tenant, sketches) in trimmed {
            tracing::warn!(%tenant, limit = config.max_tracked_keys_per_tenant,
                "folded stored dimension keys past limits.cardinality.max_tracked_keys_per_tenant");
            store.save(&tenant, sketches).await?;
        }
        for (tenant, live) in loaded {
            tenants.insert(tenant, Arc::new(Tenant::new(live)));
        }
        Ok(Self {
            tenants,
            store,
            config,
            persisting: tokio::sync::Mutex::new(()),
        })
    }

    fn state(&self, tenant: &TenantId) -> Arc<Tenant> {
        if let Some(s) = self.tenants.get(tenant) {
            return s.clone();
        }
        self.tenants
            .entry(tenant.clone())
            .or_insert_with(|| Arc::new(Tenant::new(Live::new())))
            .clone()
    }

    /// Decides which of `metrics` may be stored under `limits`, recording
    /// the new series of those accepted. Returns the refused ones as
    /// (index into `metrics`, reason), in index order.
    pub fn admit(
        &self,
        tenant: &TenantId,
        limits: &TierLimits,
        metrics: &[Metric],
    ) -> Vec<(usize, CardinalityError)> {
        let fingerprints = fingerprints(metrics);
        let state = self.state(tenant);
        let mut refused = Vec::new();
        let mut live = lock(&state.live);
        let admitted = self.admit_unknown(
            &mut live,
            limits,
            metrics,
            &fingerprints,
            0..metrics.len(),
            &mut refused,
        );
        let estimate = live.series_estimate();
        drop(live);
        self.record(&state, tenant, admitted, estimate, refused)
    }

    /// [`CardinalityTracker::admit`] for the write path: a batch of known
    /// series (the usual case) costs one lock and a lookup per metric, as
    /// there; a batch with more than [`INLINE_NEW_SERIES`] new series is
    /// checked and recorded on a blocking thread, so a tenant sending
    /// never-seen series and keys does not occupy an async worker.
    pub async fn admit_batch(
        self: &Arc<Self>,
        tenant: &TenantId,
        limits: &TierLimits,
        metrics: &[Metric],
    ) -> Vec<(usize, CardinalityError)> {
        let fingerprints = fingerprints(metrics);
        let state = self.state(tenant);
        let mut refused = Vec::new();
        let deferred = {
            let mut live = lock(&state.live);
            let unknown: Vec<usize> = (0..metrics.len())
                .filter(|&i| !live.is_known(fingerprints[i]))
                .collect();
            if unknown.len() <= INLINE_NEW_SERIES {
                let admitted = self.admit_unknown(
                    &mut live,
                    limits,
                    metrics,
                    &fingerprints,
                    unknown.into_iter(),
                    &mut refused,
                );
                let estimate = live.series_estimate();
                drop(live);
                return self.record(&state, tenant, admitted, estimate, refused);
            }
            unknown
        };
        let owned: Vec<Metric> = deferred.iter().map(|&i| metrics[i].clone()).collect();
        let owned_fingerprints: Vec<u64> = deferred.iter().map(|&i| fingerprints[i]).collect();
        let (tracker, tenant, limits) = (self.clone(), tenant.clone(), limits.clone());
        let checked = tokio::task::spawn_blocking(move || {
            let mut live = lock(&state.live);
            let admitted = tracker.admit_unknown(
                &mut live,
                &limits,
                &owned,
                &owned_fingerprints,
                0..owned.len(),
                &mut refused,
            );
            let estimate = live.series_estimate();
            drop(live);
            tracker.record(&state, &tenant, admitted, estimate, refused)
        })
        .await;
        match checked {
            Ok(refused) => refused.into_iter().map(|(j, e)| (deferred[j], e)).collect(),
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }

    /// Checks and records the series at `indices` that `live` does not
    /// know; returns whether any was admitted.
    fn admit_unknown(
        &self,
        live: &mut Live,
        limits: &TierLimits,
        metrics: &[Metric],
        fingerprints: &[u64],
        indices: impl Iterator<Item = usize>,
        refused: &mut Vec<(usize, CardinalityError)>,
    ) -> bool {
        let mut admitted = false;
        for i in indices {
            // Checked again: a series repeated in the batch, or one another
            // request added since, is known by now.
            if live.is_known(fingerprints[i]) {
                continue;
            }
            match live.admit_new(limits, &self.config, &metrics[i], fingerprints[i]) {
                Ok(()) => admitted = true,
                Err(e) => refused.push((i, e)),
            }
        }
        admitted
    }

    fn record(
        &self,
        state: &Tenant,
        tenant: &TenantId,
        admitted: bool,
        series_estimate: u64,
        refused: Vec<(usize, CardinalityError)>,
    ) -> Vec<(usize, CardinalityError)> {
        if admitted {
            state.unsaved.store(true, Ordering::Relaxed);
        }
        let telemetry = crate::telemetry::metrics();
        telemetry.set_cardinality_estimate(tenant.as_str(), series_estimate);
        for (_, e) in &refused {
            telemetry.rate_limit_rejected(tenant.as_str(), e.code());
        }
        refused
    }

    /// The tenant's estimates; `limits` are shown alongside. Counting what
    /// changed since the last report runs on a blocking thread, bounded by
    /// the tracking bounds.
    pub async fn report(
        &self,
        tenant: &TenantId,
        limits: &TierLimits,
        top_n: usize,
    ) -> CardinalityReport {
        let empty = CardinalityReport {
            series: 0,
            max_series_per_tenant: limits.max_series_per_tenant,
            max_series_per_metric: limits.max_series_per_metric,
            metrics: Vec::new(),
            metrics_total: 0,
            max_tracked_metrics: self.config.max_tracked_metrics_per_tenant,
            dimension_keys: Vec::new(),
            dimension_keys_total: 0,
            max_tracked_keys: self.config.max_tracked_keys_per_tenant,
            untracked_keys: 0,
            untracked_values: 0,
        };
        let Some(state) = self.tenants.get(tenant).map(|s| s.clone()) else {
            return empty;
        };
        let fallback = empty.clone();
        let counted = tokio::task::spawn_blocking(move || {
            let mut view = lock(&state.view);
            view.sync(&state.live);
            CardinalityReport {
                series: view.series,
                metrics: top(&view.metrics, top_n),
                metrics_total: view.metrics.len(),
                dimension_keys: top(&view.keys, top_n),
                dimension_keys_total: view.keys.len() as u64 + view.untracked_keys,
                untracked_keys: view.untracked_keys,
                untracked_values: view.untracked_values,
                ..empty
            }
        })
        .await;
        counted.unwrap_or_else(|e| {
            tracing::error!(%e, "counting cardinality sketches failed");
            fallback
        })
    }

    /// Saves what changed in every tenant since the last call; returns how
    /// many tenants were saved.
    pub async fn persist(&self) -> Result<usize, SketchStoreError> {
        let _one_at_a_time = self.persisting.lock().await;
        let states: Vec<(TenantId, Arc<Tenant>)> = self
            .tenants
            .iter()
            .filter(|e| e.value().unsaved.load(Ordering::Relaxed))
            .map(|e| (e.key().clone(), e.value().clone()))
            .collect();
        let mut saved = 0;
        for (tenant, state) in states {
            state.unsaved.store(false, Ordering::Relaxed);
            let taken = state.clone();
            let changes = tokio::task::spawn_blocking(move || {
                let mut view = lock(&taken.view);
                view.sync(&taken.live);
                std::mem::take(&mut view.unsaved)
            })
            .await
            .map_err(|e| SketchStoreError::Io {
                path: "cardinality".into(),
                source: std::io::Error::other(e.to_string()),
            })?;
            if changes.is_empty() {
                continue;
            }
            let changes = Arc::new(changes);
            if let Err(e) = self.store.save_changes(&tenant, changes.clone()).await {
                // Offered again at the next persist, under anything newer.
                let older = Arc::try_unwrap(changes).unwrap_or_else(|a| SketchChanges::clone(&a));
                let mut view = lock(&state.view);
                let newer = std::mem::replace(&mut view.unsaved, older);
                view.unsaved.absorb(newer);
                state.unsaved.store(true, Ordering::Relaxed);
                return Err(e);
            }
            saved += 1;
        }
        Ok(saved)
    }

    /// Folds the stored sketches of every tenant into the live state: for a
    /// shared store, what other pods counted. Returns how many tenants were
    /// merged.
    pub async fn refresh(&self) -> Result<usize, SketchStoreError> {
        let loaded = self.store.load_all().await?;
        let mut merged = 0;
        for (tenant, remote) in loaded {
            let state = self.state(&tenant);
            let config = self.config.clone();
            let result =
                tokio::task::spawn_blocking(move || merge_remote(&state.live, remote, &config))
                    .await;
            match result {
                Ok(Ok(())) => merged += 1,
                Ok(Err(e)) => {
                    tracing::warn!(%tenant, error = %e, "cannot merge another pod's sketches")
                }
                Err(e) => tracing::error!(%tenant, error = %e, "merging sketches panicked"),
            }
        }
        Ok(merged)
    }

    /// Persists changed sketches every `interval` until the tracker is dropped;
    /// with a shared store, also folds in what other pods counted.
    pub fn spawn_persister(self: &Arc<Self>, interval: Duration) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(tracker) = weak.upgrade() else {
                    return;
                };
                if let Err(e) = tracker.persist().await {
                    tracing::error!(error = %e, "could not persist cardinality sketches");
                }
                if tracker.store.is_shared()
                    && let Err(e) = tracker.refresh().await
                {
                    tracing::error!(error = %e, "could not load other pods' sketches");
                }
            }
        })
    }
}

/// The `top_n` largest rows, largest first (ties by name), without sorting
/// the rest.
fn top(estimates: &std::collections::HashMap<Box<str>, u64>, top_n: usize) -> Vec<Estimate> {
    let order = |a: &(&str, u64), b: &(&str, u64)| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0));
    let mut rows: Vec<(&str, u64)> = estimates.iter().map(|(k, v)| (&**k, *v)).collect();
    if top_n == 0 {
        return Vec::new();
    }
    if rows.len() > top_n {
        rows.select_nth_unstable_by(top_n - 1, order);
        rows.truncate(top_n);
    }
    rows.sort_unstable_by(order);
    rows.into_iter()
        .map(|(name, estimate)| Estimate {
            name: name.to_owned(),
            estimate,
        })
        .collect()
}

impl std::fmt::Debug for CardinalityTracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CardinalityTracker")
            .field("tenants", &self.tenants.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use super::*;
    use crate::limits::store::{MemorySketchStore, TenantSketches};
    use crate::model::Dimensions;

    fn metric(name: &str, dims: &[(&str, String)]) -> Metric {
        Metric {
            name: name.into(),
            value: 1.0,
            timestamp_ms: 0,
            dimensions: Dimensions::from_pairs(
                dims.iter().map(|(k, v)| (k.to_string(), v.clone())),
            ),
        }
    }

    fn limits(per_tenant: Limit, per_metric: Limit) -> TierLimits {
        TierLimits {
            max_series_per_tenant: per_tenant,
            max_series_per_metric: per_metric,
            ..TierLimits::unlimited()
        }
    }

    async fn tracker(store: Arc<dyn SketchStore>) -> CardinalityTracker {
        tracker_with(store, CardinalityConfig::default()).await
    }

    async fn tracker_with(
        store: Arc<dyn SketchStore>,
        config: CardinalityConfig,
    ) -> CardinalityTracker {
        CardinalityTracker::open(store, &config).await.unwrap()
    }

    fn tenant(id: &str) -> TenantId {
        TenantId::new(id).unwrap()
    }

    #[tokio::test]
    async fn per_metric_limit_rejects_only_new_series_of_that_metric() {
        let t = tracker(Arc::new(MemorySketchStore::default())).await;
        let l = limits(Limit::Unlimited, Limit::Max(3));
        let user = |i: u32| metric("logins", &[("user", i.to_string())]);
        let first: Vec<Metric> = (0..3).map(user).collect();
        assert!(t.admit(&tenant("a"), &l, &first).is_empty());

        // A batch with an existing series, a new one of the full metric, and
        // a new series of another metric.
        let batch = vec![
            user(1),
            user(99),
            metric("cpu", &[("host", "h1".into())]),
            user(2),
        ];
        let refused = t.admit(&tenant("a"), &l, &batch);
        assert_eq!(refused.len(), 1);
        let (index, err) = &refused[0];
        assert_eq!(*index, 1);
        assert_eq!(err.code(), "max_series_per_metric");
        let msg = err.to_string();
        assert!(
            msg.contains("logins") && msg.contains("= 3") && msg.contains("estimate 3"),
            "{msg}"
        );

        // Another tenant is not affected by a's series.
        assert!(t.admit(&tenant("b"), &l, &[user(99)]).is_empty());
    }

    #[tokio::test]
    async fn per_tenant_limit_counts_series_across_metrics() {
        let t = tracker(Arc::new(MemorySketchStore::default())).await;
        let l = limits(Limit::Max(4), Limit::Unlimited);
        let batch: Vec<Metric> = (0..6)
            .map(|i| metric(&format!("m{}", i % 2), &[("k", i.to_string())]))
            .collect();
        let refused = t.admit(&tenant("a"), &l, &batch);
        assert_eq!(
            refused.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
            vec![4, 5]
        );
        assert_eq!(refused[0].1.code(), "max_series_per_tenant");
        // The four admitted series keep being accepted.
        assert!(t.admit(&tenant("a"), &l, &batch[..4]).is_empty());
    }

    #[tokio::test]
    async fn a_series_repeated_in_one_batch_counts_once() {
        let t = tracker(Arc::new(MemorySketchStore::default())).await;
        let l = limits(Limit::Max(1), Limit::Max(1));
        let m = metric("x", &[("k", "v".into())]);
        assert!(
            t.admit(&tenant("a"), &l, &[m.clone(), m.clone(), m])
                .is_empty()
        );
    }

    #[tokio::test]
    async fn report_lists_the_largest_metrics_and_keys_first() {
        let t = tracker(Arc::new(MemorySketchStore::default())).await;
        let l = TierLimits::unlimited();
        let mut batch = Vec::new();
        for i in 0..1000 {
            batch.push(metric(
                "requests",
                &[("user", i.to_string()), ("region", format!("r{}", i % 3))],
            ));
        }
        for i in 0..10 {
            batch.push(metric("cpu", &[("host", i.to_string())]));
        }
        assert!(t.admit(&tenant("a"), &l, &batch).is_empty());
        let r = t.report(&tenant("a"), &l, 2).await;
        assert_eq!(r.series, 1010);
        assert_eq!(r.metrics_total, 2);
        assert_eq!(
            r.metrics[0],
            Estimate {
                name: "requests".into(),
                estimate: 1000
            }
        );
        assert_eq!(
            r.metrics[1],
            Estimate {
                name: "cpu".into(),
                estimate: 10
            }
        );
        assert_eq!(r.dimension_keys_total, 3);
        assert_eq!(r.dimension_keys.len(), 2, "top 2 of 3 keys");
        assert_eq!(
            r.dimension_keys[0],
            Estimate {
                name: "user".into(),
                estimate: 1000
            }
        );
        assert_eq!(
            r.dimension_keys[1],
            Estimate {
                name: "host".into(),
                estimate: 10
            }
        );
        assert_eq!(t.report(&tenant("nobody"), &l, 5).await.series, 0);
    }

    #[tokio::test]
    async fn sketches_and_known_series_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn SketchStore> =
            Arc::new(crate::limits::store::FileSketchStore::open(dir.path()).unwrap());
        let l = limits(Limit::Unlimited, Limit::Max(100));
        let batch: Vec<Metric> = (0..100)
            .map(|i| metric("m", &[("k", i.to_string())]))
            .collect();
        {
            let t = tracker(store.clone()).await;
            assert!(t.admit(&tenant("a"), &l, &batch).is_empty());
            assert_eq!(t.persist().await.unwrap(), 1);
            assert_eq!(t.persist().await.unwrap(), 0, "nothing changed since");
        }
        let store: Arc<dyn SketchStore> =
            Arc::new(crate::limits::store::FileSketchStore::open(dir.path()).unwrap());
        let t = tracker(store).await;
        assert_eq!(t.report(&tenant("a"), &l, 10).await.series, 100);
        // Existing series are still accepted, a new one is refused.
        assert!(t.admit(&tenant("a"), &l, &batch).is_empty());
        let refused = t.admit(&tenant("a"), &l, &[metric("m", &[("k", "new".into())])]);
        assert_eq!(refused.len(), 1);
    }

    #[tokio::test]
    async fn estimates_are_within_2_percent_at_100k_series() {
        let t = tracker(Arc::new(MemorySketchStore::default())).await;
        let l = TierLimits::unlimited();
        let batch: Vec<Metric> = (0..100_000)
            .map(|i| {
                metric(
                    "api_latency",
                    &[
                        ("user", format!("user-{i}")),
                        ("shard", (i % 7).to_string()),
                    ],
                )
            })
            .collect();
        for chunk in batch.chunks(1000) {
            assert!(t.admit(&tenant("a"), &l, chunk).is_empty());
        }
        let r = t.report(&tenant("a"), &l, 10).await;
        let off = |e: u64| (e as f64 - 100_000.0).abs() / 100_000.0;
        assert!(off(r.series) < 0.02, "tenant estimate {}", r.series);
        assert!(
            off(r.metrics[0].estimate) < 0.02,
            "metric estimate {}",
            r.metrics[0].estimate
        );
        assert!(
            off(r.dimension_keys[0].estimate) < 0.02,
            "user key estimate {:?}",
            r.dimension_keys[0]
        );
        assert_eq!(
            r.dimension_keys[1],
            Estimate {
                name: "shard".into(),
                estimate: 7
            }
        );
    }

    #[tokio::test]
    async fn a_limit_near_100k_is_enforced_within_the_estimate_error() {
        let t = tracker(Arc::new(MemorySketchStore::default())).await;
        let l = limits(Limit::Max(50_000), Limit::Unlimited);
        let batch: Vec<Metric> = (0..60_000)
            .map(|i| metric("m", &[("k", i.to_string())]))
            .collect();
        let mut refused = 0;
        for chunk in batch.chunks(1000) {
            refused += t.admit(&tenant("a"), &l, chunk).len();
        }
        let accepted = 60_000 - refused;
        let off = (accepted as f64 - 50_000.0).abs() / 50_000.0;
        assert!(
            off < 0.02,
            "accepted {accepted} series under a limit of 50000"
        );
    }

    fn bounded(metrics: usize, keys: usize) -> CardinalityConfig {
        CardinalityConfig {
            max_tracked_metrics_per_tenant: metrics,
            max_tracked_keys_per_tenant: keys,
            ..CardinalityConfig::default()
        }
    }

    /// A series of `name` with `keys` dimension keys never seen before.
    fn many_keys_of(name: &str, series: u32, keys: u32) -> Metric {
        let dims: Vec<(String, String)> = (0..keys)
            .map(|k| (format!("k{series}_{k}"), format!("v{k}")))
            .collect();
        Metric {
            name: name.into(),
            value: 1.0,
            timestamp_ms: 0,
            dimensions: Dimensions::from_pairs(dims),
        }
    }

    fn many_keys(series: u32, keys: u32) -> Metric {
        many_keys_of("m", series, keys)
    }

    #[tokio::test]
    async fn a_batch_of_many_new_series_is_checked_off_the_worker_with_the_same_answer() {
        let t = Arc::new(tracker(Arc::new(MemorySketchStore::default())).await);
        let l = limits(Limit::Max(150), Limit::Unlimited);
        let series = |i: usize| metric("m", &[("k", i.to_string())]);
        let known: Vec<Metric> = (0..10).map(series).collect();
        assert!(t.admit_batch(&tenant("a"), &l, &known).await.is_empty());
        // Known and new series interleaved; the new ones past 150 are refused.
        let batch: Vec<Metric> = (0..400)
            .map(|i| {
                if i % 2 == 0 {
                    series(i / 2 % 10)
                } else {
                    series(1000 + i)
                }
            })
            .collect();
        assert!(batch.len() / 2 > INLINE_NEW_SERIES);
        let refused = t.admit_batch(&tenant("a"), &l, &batch).await;
        let new_positions: Vec<usize> = (0..400).filter(|i| i % 2 == 1).collect();
        assert_eq!(
            refused.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
            new_positions[140..].to_vec(),
            "indices point into the caller's batch"
        );
        assert!(
            refused
                .iter()
                .all(|(_, e)| e.code() == "max_series_per_tenant")
        );
        // What was admitted there is known inline now.
        assert!(t.admit(&tenant("a"), &l, &batch[..280]).is_empty());
    }

    #[tokio::test]
    async fn keys_past_the_bound_are_counted_together_not_refused() {
        let t = tracker_with(Arc::new(MemorySketchStore::default()), bounded(100, 10)).await;
        let l = TierLimits::unlimited();
        let batch: Vec<Metric> = (0..100).map(|i| many_keys(i, 20)).collect();
        assert!(
            t.admit(&tenant("a"), &l, &batch).is_empty(),
            "no metric refused"
        );
        let r = t.report(&tenant("a"), &l, 1000).await;
        assert_eq!(
            r.dimension_keys.len(),
            10,
            "only the bound has own sketches"
        );
        assert_eq!(r.max_tracked_keys, 10);
        let near = |e: u64, want: f64| (e as f64 - want).abs() / want < 0.02;
        assert!(near(r.untracked_keys, 1990.0), "{}", r.untracked_keys);
        assert!(
            near(r.dimension_keys_total, 2000.0),
            "{}",
            r.dimension_keys_total
        );
        assert!(near(r.untracked_values, 1990.0), "{}", r.untracked_values);
        assert_eq!(r.series, 100);
    }

    #[tokio::test]
    async fn metric_names_past_the_bound_are_refused_naming_it() {
        let t = tracker_with(Arc::new(MemorySketchStore::default()), bounded(3, 10)).await;
        let l = TierLimits::unlimited();
        let named = |n: &str, v: &str| metric(n, &[("k", v.to_string())]);
        let first = vec![named("a", "1"), named("b", "1"), named("c", "1")];
        assert!(t.admit(&tenant("a"), &l, &first).is_empty());
        let batch = vec![named("d", "1"), named("a", "2"), named("b", "1")];
        let refused = t.admit(&tenant("a"), &l, &batch);
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].0, 0);
        assert_eq!(refused[0].1.code(), "max_tracked_metrics_per_tenant");
        let msg = refused[0].1.to_string();
        assert!(
            msg.contains("\"d\"") && msg.contains("max_tracked_metrics_per_tenant = 3"),
            "{msg}"
        );
        // Another tenant has its own bound.
        assert!(t.admit(&tenant("b"), &l, &batch).is_empty());
    }

    #[tokio::test]
    async fn persisting_writes_what_changed_and_stays_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let open = || -> Arc<dyn SketchStore> {
            Arc::new(crate::limits::store::FileSketchStore::open(dir.path()).unwrap())
        };
        let size = |name: &str| std::fs::metadata(dir.path().join(name)).map_or(0, |m| m.len());
        let l = TierLimits::unlimited();
        let t = tracker_with(open(), bounded(1000, 50)).await;
        let batch: Vec<Metric> = (0..2000)
            .map(|i| many_keys_of(&format!("m{}", i % 500), i, 20))
            .collect();
        for chunk in batch.chunks(100) {
            assert!(t.admit(&tenant("a"), &l, chunk).is_empty());
        }
        assert_eq!(t.persist().await.unwrap(), 1);
        let base = size("a.sketch");
        assert!(
            base > 0 && base < 2 << 20,
            "40 000 keys cost {base} bytes on disk"
        );

        // One new series rewrites its own sketches, not the tenant's.
        let one = metric("m0", &[("k0_0", "new".into())]);
        assert!(t.admit(&tenant("a"), &l, &[one]).is_empty());
        assert_eq!(t.persist().await.unwrap(), 1);
        let journal = size("a.journal");
        assert!(
            journal > 0 && journal < base / 4,
            "journal {journal} vs base {base}"
        );

        // Many rounds of changes: the journal is folded into the base.
        for round in 0..100u32 {
            let m: Vec<Metric> = (0..50)
                .map(|i| metric("m0", &[("k0_0", format!("r{round}-{i}"))]))
                .collect();
            assert!(t.admit(&tenant("a"), &l, &m).is_empty());
            t.persist().await.unwrap();
        }
        let total = size("a.sketch") + size("a.journal");
        assert!(total < 4 << 20, "files grew to {total} bytes");
        let before = t.report(&tenant("a"), &l, 5).await;
        drop(t);

        let t = tracker_with(open(), bounded(1000, 50)).await;
        let after = t.report(&tenant("a"), &l, 5).await;
        assert_eq!(after, before);
        // Every series written before is still known.
        assert!(t.admit(&tenant("a"), &l, &batch).is_empty());
        assert!(
            !t.tenants
                .get(&tenant("a"))
                .unwrap()
                .unsaved
                .load(Ordering::Relaxed)
        );
    }

    #[tokio::test]
    async fn state_saved_before_the_bounds_is_trimmed_on_load() {
        let dir = tempfile::tempdir().unwrap();
        let open = || -> Arc<dyn SketchStore> {
            Arc::new(crate::limits::store::FileSketchStore::open(dir.path()).unwrap())
        };
        let l = TierLimits::unlimited();
        {
            let t = tracker_with(open(), bounded(1000, 1_000_000)).await;
            let batch: Vec<Metric> = (0..500).map(|i| many_keys(i, 20)).collect();
            assert!(t.admit(&tenant("a"), &l, &batch).is_empty());
            t.persist().await.unwrap();
        }
        let untrimmed = std::fs::metadata(dir.path().join("a.sketch"))
            .unwrap()
            .len();
        let t = tracker_with(open(), bounded(1000, 100)).await;
        let trimmed = std::fs::metadata(dir.path().join("a.sketch"))
            .unwrap()
            .len();
        assert!(trimmed * 10 < untrimmed, "{trimmed} vs {untrimmed}");
        let r = t.report(&tenant("a"), &l, 5).await;
        assert_eq!(r.series, 500);
        let off = (r.dimension_keys_total as f64 - 10_000.0).abs() / 10_000.0;
        assert!(off < 0.02, "{}", r.dimension_keys_total);
    }

    /// A store shared by pods, as ClickHouse's `shared_state` is: one
    /// document per (tenant, pod); loading merges all pods' documents.
    struct PodView {
        docs: Arc<Mutex<HashMap<(TenantId, String), TenantSketches>>>,
        pod: String,
    }

    #[async_trait::async_trait]
    impl SketchStore for PodView {
        async fn load_all(&self) -> Result<Vec<(TenantId, TenantSketches)>, SketchStoreError> {
            let docs = self.docs.lock().unwrap();
            let mut merged: HashMap<TenantId, TenantSketches> = HashMap::new();
            for ((tenant, _pod), doc) in docs.iter() {
                match merged.get_mut(tenant) {
                    Some(m) => m.merge(doc).unwrap(),
                    None => {
                        merged.insert(tenant.clone(), doc.clone());
                    }
                }
            }
            Ok(merged.into_iter().collect())
        }

        fn is_shared(&self) -> bool {
            true
        }

        async fn save(
            &self,
            tenant: &TenantId,
            sketches: TenantSketches,
        ) -> Result<(), SketchStoreError> {
            self.docs
                .lock()
                .unwrap()
                .insert((tenant.clone(), self.pod.clone()), sketches);
            Ok(())
        }

        async fn save_changes(
            &self,
            tenant: &TenantId,
            changes: Arc<SketchChanges>,
        ) -> Result<(), SketchStoreError> {
            self.docs
                .lock()
                .unwrap()
                .entry((tenant.clone(), self.pod.clone()))
                .or_insert_with(TenantSketches::empty)
                .apply(&changes);
            Ok(())
        }
    }

    #[tokio::test]
    async fn pods_sharing_a_store_count_each_others_series_against_limits() {
        let docs = Arc::new(Mutex::new(HashMap::new()));
        let pod = |name: &str| -> Arc<dyn SketchStore> {
            Arc::new(PodView {
                docs: docs.clone(),
                pod: name.into(),
            })
        };
        let a = tracker(pod("a")).await;
        let b = tracker(pod("b")).await;
        let l = limits(Limit::Max(10), Limit::Unlimited);
        let batch = |r: std::ops::Range<u32>| -> Vec<Metric> {
            r.map(|i| metric("m", &[("k", i.to_string())])).collect()
        };
        assert!(a.admit(&tenant("t"), &l, &batch(0..6)).is_empty());
        assert!(b.admit(&tenant("t"), &l, &batch(100..104)).is_empty());
        a.persist().await.unwrap();
        b.persist().await.unwrap();
        a.refresh().await.unwrap();
        b.refresh().await.unwrap();

        for t in [&a, &b] {
            assert_eq!(t.report(&tenant("t"), &l, 5).await.series, 10);
            // Every pod accepts series first seen by the other...
            assert!(t.admit(&tenant("t"), &l, &batch(0..6)).is_empty());
            assert!(t.admit(&tenant("t"), &l, &batch(100..104)).is_empty());
            // ...and refuses new ones: the tenant is at 10 across pods.
            assert_eq!(t.admit(&tenant("t"), &l, &batch(200..201)).len(), 1);
        }
        // Refreshing again changes nothing (merges are idempotent).
        a.refresh().await.unwrap();
        assert_eq!(a.report(&tenant("t"), &l, 5).await.series, 10);
    }
}
