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
//! Each tenant's state sits behind one mutex, taken once per batch: a
//! known series costs a hash and a lookup under it (nanoseconds), so even a
//! single hot tenant saturates the mutex only far beyond the ingest rate,
//! while a concurrent set would pay an atomic per metric. Tenants never
//! share a lock.
//!
//! Consequences: existing series are always accepted; a series created
//! after the last persisted snapshot and before a crash is "new" again
//! after restart (its HLL insert is idempotent, so estimates do not grow;
//! only if the tenant is at its limit is it refused until the limit
//! allows). Fingerprint collisions (2^-64 per pair) would let a new series
//! pass as known: negligible. Beyond `max_tracked_series_per_tenant`, new
//! series are detected only by the HLL (every unknown series is inserted;
//! limits use the estimate).

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasherDefault;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dashmap::DashMap;

use super::config::{Limit, TierLimits};
use super::sketch::{DETAIL_PRECISION, PassThrough, Sketch, TENANT_PRECISION};
use super::store::{SketchStore, SketchStoreError, TenantSketches};
use crate::model::{Metric, TenantId};

type FingerprintSet = HashSet<u64, BuildHasherDefault<PassThrough>>;

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
}

impl CardinalityError {
    pub fn code(&self) -> &'static str {
        match self {
            CardinalityError::PerMetric { .. } => "max_series_per_metric",
            CardinalityError::PerTenant { .. } => "max_series_per_tenant",
        }
    }
}

/// The fingerprint of a series: its metric name and canonical dimensions.
pub fn series_fingerprint(metric: &Metric, buf: &mut Vec<u8>) -> u64 {
    metric.write_series_key(buf);
    xxhash_rust::xxh3::xxh3_64(buf)
}

fn value_fingerprint(value: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(value.as_bytes())
}

struct TenantState {
    known: FingerprintSet,
    series: Sketch,
    metrics: HashMap<String, Sketch>,
    dimension_keys: HashMap<String, Sketch>,
    dirty: bool,
}

impl TenantState {
    fn new() -> Self {
        Self {
            known: FingerprintSet::default(),
            series: Sketch::new(TENANT_PRECISION),
            metrics: HashMap::new(),
            dimension_keys: HashMap::new(),
            dirty: false,
        }
    }

    fn from_snapshot(s: TenantSketches) -> Self {
        let mut known = FingerprintSet::default();
        known.extend(s.known_series);
        Self {
            known,
            series: s.series,
            metrics: s.metrics.into_iter().collect(),
            dimension_keys: s.dimension_keys.into_iter().collect(),
            dirty: false,
        }
    }

    /// Folds stored sketches (e.g. another pod's) into this live state.
    fn merge(&mut self, remote: TenantSketches) -> Result<(), String> {
        self.series.merge(&remote.series)?;
        for (mine, theirs) in [
            (&mut self.metrics, remote.metrics),
            (&mut self.dimension_keys, remote.dimension_keys),
        ] {
            for (name, sketch) in theirs {
                match mine.get_mut(&name) {
                    Some(s) => s.merge(&sketch)?,
                    None => {
                        mine.insert(name, sketch);
                    }
                }
            }
        }
        self.known.extend(remote.known_series);
        Ok(())
    }

    fn snapshot(&self) -> TenantSketches {
        TenantSketches {
            series: self.series.clone(),
            metrics: self
                .metrics
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            dimension_keys: self
                .dimension_keys
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            known_series: self.known.iter().copied().collect(),
        }
    }
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
    /// Distinct values per dimension key, largest first, at most `top_n`.
    pub dimension_keys: Vec<Estimate>,
    pub dimension_keys_total: usize,
}

pub struct CardinalityTracker {
    tenants: DashMap<TenantId, Arc<Mutex<TenantState>>>,
    store: Arc<dyn SketchStore>,
    max_tracked: usize,
}

impl CardinalityTracker {
    /// Loads every tenant's sketches from `store`.
    pub async fn open(
        store: Arc<dyn SketchStore>,
        max_tracked_series_per_tenant: usize,
    ) -> Result<Self, SketchStoreError> {
        let tenants = DashMap::new();
        for (tenant, sketches) in store.load_all().await? {
            tenants.insert(
                tenant,
                Arc::new(Mutex::new(TenantState::from_snapshot(sketches))),
            );
        }
        Ok(Self {
            tenants,
            store,
            max_tracked: max_tracked_series_per_tenant,
        })
    }

    fn state(&self, tenant: &TenantId) -> Arc<Mutex<TenantState>> {
        if let Some(s) = self.tenants.get(tenant) {
            return s.clone();
        }
        self.tenants
            .entry(tenant.clone())
            .or_insert_with(|| Arc::new(Mutex::new(TenantState::new())))
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
        let mut buf = Vec::with_capacity(256);
        let fingerprints: Vec<u64> = metrics
            .iter()
            .map(|m| series_fingerprint(m, &mut buf))
            .collect();
        let state = self.state(tenant);
        let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
        let mut refused = Vec::new();
        for (i, (metric, &fp)) in metrics.iter().zip(&fingerprints).enumerate() {
            if state.known.contains(&fp) {
                continue;
            }
            if let Err(e) = admit_new(&mut state, limits, metric, fp, self.max_tracked) {
                refused.push((i, e));
            }
        }
        let telemetry = crate::telemetry::metrics();
        telemetry.set_cardinality_estimate(tenant.as_str(), state.series.estimate());
        for (_, e) in &refused {
            telemetry.rate_limit_rejected(tenant.as_str(), e.code());
        }
        refused
    }

    /// The tenant's estimates; `limits` are shown alongside.
    pub fn report(
        &self,
        tenant: &TenantId,
        limits: &TierLimits,
        top_n: usize,
    ) -> CardinalityReport {
        let empty = || CardinalityReport {
            series: 0,
            max_series_per_tenant: limits.max_series_per_tenant,
            max_series_per_metric: limits.max_series_per_metric,
            metrics: Vec::new(),
            metrics_total: 0,
            dimension_keys: Vec::new(),
            dimension_keys_total: 0,
        };
        let Some(state) = self.tenants.get(tenant).map(|s| s.clone()) else {
            return empty();
        };
        let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
        let top = |sketches: &mut HashMap<String, Sketch>| {
            let mut rows: Vec<Estimate> = sketches
                .iter_mut()
                .map(|(name, s)| Estimate {
                    name: name.clone(),
                    estimate: s.recount(),
                })
                .collect();
            rows.sort_by(|a, b| {
                b.estimate
                    .cmp(&a.estimate)
                    .then_with(|| a.name.cmp(&b.name))
            });
            rows.truncate(top_n);
            rows
        };
        let series = state.series.recount();
        let metrics_total = state.metrics.len();
        let dimension_keys_total = state.dimension_keys.len();
        CardinalityReport {
            series,
            metrics: top(&mut state.metrics),
            dimension_keys: top(&mut state.dimension_keys),
            metrics_total,
            dimension_keys_total,
            ..empty()
        }
    }

    /// Writes every tenant whose sketches changed since the last call.
    pub async fn persist(&self) -> Result<usize, SketchStoreError> {
        let states: Vec<(TenantId, Arc<Mutex<TenantState>>)> = self
            .tenants
            .iter()
            .map(|e| (e.key().clone(), e.value().clone()))
            .collect();
        let mut saved = 0;
        for (tenant, state) in states {
            let snapshot = {
                let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
                if !s.dirty {
                    continue;
                }
                s.dirty = false;
                s.snapshot()
            };
            if let Err(e) = self.store.save(&tenant, snapshot).await {
                if let Some(s) = self.tenants.get(&tenant) {
                    s.lock().unwrap_or_else(|p| p.into_inner()).dirty = true;
                }
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
            let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
            if let Err(e) = state.merge(remote) {
                tracing::warn!(%tenant, error = %e, "cannot merge another pod's sketches");
                continue;
            }
            merged += 1;
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

fn admit_new(
    state: &mut TenantState,
    limits: &TierLimits,
    metric: &Metric,
    fp: u64,
    max_tracked: usize,
) -> Result<(), CardinalityError> {
    let tracked = state.known.len() < max_tracked;
    if let Limit::Max(limit) = limits.max_series_per_metric {
        let estimate = state.metrics.get(&metric.name).map_or(0, Sketch::estimate);
        if estimate >= limit {
            return Err(CardinalityError::PerMetric {
                metric: metric.name.clone(),
                limit,
                estimate,
            });
        }
    }
    if let Limit::Max(limit) = limits.max_series_per_tenant {
        let estimate = state.series.estimate();
        if estimate >= limit {
            return Err(CardinalityError::PerTenant {
                metric: metric.name.clone(),
                limit,
                estimate,
            });
        }
    }
    let insert = |sketch: &mut Sketch, fp: u64| {
        if tracked {
            sketch.insert_new(fp);
        } else {
            // Untracked: the fingerprint may be known, so keep the estimate
            // honest with a recount now and then (limits read it).
            sketch.insert_maybe_new(fp);
            if sketch.pending() >= 4096 {
                sketch.recount();
            }
        }
    };
    if tracked {
        state.known.insert(fp);
    }
    insert(&mut state.series, fp);
    match state.metrics.get_mut(&metric.name) {
        Some(s) => insert(s, fp),
        None => {
            let mut s = Sketch::new(DETAIL_PRECISION);
            insert(&mut s, fp);
            state.metrics.insert(metric.name.clone(), s);
        }
    }
    // A value is new to a key only when its series is new, but it may well
    // be known (another series has it), so these inserts may repeat.
    for (key, value) in metric.dimensions.iter() {
        let vfp = value_fingerprint(value);
        match state.dimension_keys.get_mut(key) {
            Some(s) => s.insert_maybe_new(vfp),
            None => {
                let mut s = Sketch::new(DETAIL_PRECISION);
                s.insert_maybe_new(vfp);
                state.dimension_keys.insert(key.to_owned(), s);
            }
        }
    }
    state.dirty = true;
    Ok(())
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
    use super::*;
    use crate::limits::store::MemorySketchStore;
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
        CardinalityTracker::open(store, 1_000_000).await.unwrap()
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
        let r = t.report(&tenant("a"), &l, 2);
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
        assert_eq!(t.report(&tenant("nobody"), &l, 5).series, 0);
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
        assert_eq!(t.report(&tenant("a"), &l, 10).series, 100);
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
        let r = t.report(&tenant("a"), &l, 10);
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
            assert_eq!(t.report(&tenant("t"), &l, 5).series, 10);
            // Every pod accepts series first seen by the other...
            assert!(t.admit(&tenant("t"), &l, &batch(0..6)).is_empty());
            assert!(t.admit(&tenant("t"), &l, &batch(100..104)).is_empty());
            // ...and refuses new ones: the tenant is at 10 across pods.
            assert_eq!(t.admit(&tenant("t"), &l, &batch(200..201)).len(), 1);
        }
        // Refreshing again changes nothing (merges are idempotent).
        a.refresh().await.unwrap();
        assert_eq!(a.report(&tenant("t"), &l, 5).series, 10);
    }
}
