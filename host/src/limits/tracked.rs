//! One tenant's cardinality state, split by who touches it:
//!
//! - [`Live`], behind the mutex the write path takes once per batch: the
//!   exact set of known series, the sketches limits read, and which
//!   sketches changed since they were last counted or saved. Sketches are
//!   shared (`Arc`), so taking the changed ones is a pointer copy each; a
//!   writer that touches a sketch while a copy is still being counted
//!   clones it (`Arc::make_mut`), at most once per sketch and round.
//! - [`View`], behind a mutex the write path never takes: the last full
//!   count of every sketch (what reports show) and the changes not yet
//!   saved. [`View::sync`] takes the changes from `Live` under a short lock
//!   and counts them after releasing it, on the caller's blocking thread.
//!
//! The sketches of a tenant are bounded (`max_tracked_metrics_per_tenant`
//! names, `max_tracked_keys_per_tenant` dimension keys plus two sketches
//! for the keys past that bound), so every step here is bounded as well.

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasherDefault;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard};

use super::cardinality::CardinalityError;
use super::config::{CardinalityConfig, Limit, TierLimits};
use super::sketch::{DETAIL_PRECISION, PassThrough, Sketch};
use super::store::{SketchChanges, TenantSketches};
use crate::model::Metric;

type FingerprintSet = HashSet<u64, BuildHasherDefault<PassThrough>>;

/// Locks `m`; a panic elsewhere leaves estimates usable, so poison is ignored.
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn value_fingerprint(value: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(value.as_bytes())
}

fn key_fingerprint(key: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(key.as_bytes())
}

/// A value of an untracked key, told apart from the same value of another key.
fn pair_fingerprint(key: &str, value: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64_with_seed(value.as_bytes(), key_fingerprint(key))
}

#[derive(Clone, Debug)]
enum SketchId {
    Series,
    Metric(Box<str>),
    Key(Box<str>),
    UntrackedKeys,
    UntrackedValues,
}

struct Tracked {
    sketch: Arc<Sketch>,
    /// In `Live::changed` (to be counted).
    listed: bool,
    /// Changed by this process since the last save; merges of other pods'
    /// sketches are counted but not saved again.
    unsaved: bool,
}

impl Tracked {
    fn new(sketch: Sketch) -> Self {
        Self {
            sketch: Arc::new(sketch),
            listed: false,
            unsaved: false,
        }
    }

    fn detail() -> Self {
        Self::new(Sketch::new(DETAIL_PRECISION))
    }
}

/// Lists `t` as changed (once) and hands it out for writing.
fn touch<'a>(
    t: &'a mut Tracked,
    changed: &mut Vec<SketchId>,
    id: impl FnOnce() -> SketchId,
    save: bool,
) -> &'a mut Sketch {
    if !t.listed {
        t.listed = true;
        changed.push(id());
    }
    t.unsaved |= save;
    Arc::make_mut(&mut t.sketch)
}

pub(super) struct Live {
    known: FingerprintSet,
    /// Fingerprints added to `known` since the changes were last taken.
    new_known: Vec<u64>,
    series: Tracked,
    metrics: HashMap<Box<str>, Tracked>,
    keys: HashMap<Box<str>, Tracked>,
    untracked_keys: Tracked,
    untracked_values: Tracked,
    changed: Vec<SketchId>,
    warned_untracked_keys: bool,
}

/// What [`Live::take_changes`] hands to a [`View`].
struct Taken {
    sketches: Vec<(SketchId, Arc<Sketch>, bool)>,
    new_known: Vec<u64>,
}

impl Live {
    pub(super) fn new() -> Self {
        Self {
            known: FingerprintSet::default(),
            new_known: Vec::new(),
            series: Tracked::new(Sketch::new(super::sketch::TENANT_PRECISION)),
            metrics: HashMap::new(),
            keys: HashMap::new(),
            untracked_keys: Tracked::detail(),
            untracked_values: Tracked::detail(),
            changed: Vec::new(),
            warned_untracked_keys: false,
        }
    }

    /// A loaded state, with every sketch listed so the first report counts
    /// it. Keys past the bound (files from before it existed) are folded
    /// into the untracked sketches; returns whether any were.
    pub(super) fn from_snapshot(s: TenantSketches, config: &CardinalityConfig) -> (Self, bool) {
        let mut live = Self::new();
        live.known.extend(s.known_series);
        live.series = Tracked::new(s.series);
        live.metrics = s
            .metrics
            .into_iter()
            .map(|(name, sketch)| (name.into_boxed_str(), Tracked::new(sketch)))
            .collect();
        if let Some(k) = s.untracked_keys {
            live.untracked_keys = Tracked::new(k);
        }
        if let Some(v) = s.untracked_values {
            live.untracked_values = Tracked::new(v);
        }
        let mut trimmed = false;
        for (name, sketch) in s.dimension_keys {
            if live.keys.len() < config.max_tracked_keys_per_tenant {
                live.keys
                    .insert(name.into_boxed_str(), Tracked::new(sketch));
                continue;
            }
            trimmed = true;
            Arc::make_mut(&mut live.untracked_keys.sketch).insert_maybe_new(key_fingerprint(&name));
            // Both use the same precision; a failed merge only loses detail.
            let _ = Arc::make_mut(&mut live.untracked_values.sketch).merge_uncounted(&sketch);
        }
        live.list_everything();
        (live, trimmed)
    }

    fn list_everything(&mut self) {
        let changed = &mut self.changed;
        let mut list = |t: &mut Tracked, id: SketchId| {
            if !t.listed {
                t.listed = true;
                changed.push(id);
            }
        };
        list(&mut self.series, SketchId::Series);
        list(&mut self.untracked_keys, SketchId::UntrackedKeys);
        list(&mut self.untracked_values, SketchId::UntrackedValues);
        for (name, t) in &mut self.metrics {
            list(t, SketchId::Metric(name.clone()));
        }
        for (name, t) in &mut self.keys {
            list(t, SketchId::Key(name.clone()));
        }
    }

    /// The whole state as a store keeps it (after a migration trimmed it).
    pub(super) fn snapshot(&self) -> TenantSketches {
        TenantSketches {
            series: Sketch::clone(&self.series.sketch),
            metrics: self
                .metrics
                .iter()
                .map(|(k, t)| (k.to_string(), Sketch::clone(&t.sketch)))
                .collect(),
            dimension_keys: self
                .keys
                .iter()
                .map(|(k, t)| (k.to_string(), Sketch::clone(&t.sketch)))
                .collect(),
            untracked_keys: Some(Sketch::clone(&self.untracked_keys.sketch)),
            untracked_values: Some(Sketch::clone(&self.untracked_values.sketch)),
            known_series: self.known.iter().copied().collect(),
        }
    }

    pub(super) fn is_known(&self, fingerprint: u64) -> bool {
        self.known.contains(&fingerprint)
    }

    pub(super) fn series_estimate(&self) -> u64 {
        self.series.sketch.estimate()
    }

    /// Checks a series absent from the known set against the limits and,
    /// if it is admitted, records it.
    pub(super) fn admit_new(
        &mut self,
        limits: &TierLimits,
        config: &CardinalityConfig,
        metric: &Metric,
        fp: u64,
    ) -> Result<(), CardinalityError> {
        let tracked = self.known.len() < config.max_tracked_series_per_tenant;
        let metric_sketch = self.metrics.get(metric.name.as_str());
        if metric_sketch.is_none() && self.metrics.len() >= config.max_tracked_metrics_per_tenant {
            return Err(CardinalityError::TrackedMetrics {
                metric: metric.name.clone(),
                limit: config.max_tracked_metrics_per_tenant,
            });
        }
        if let Limit::Max(limit) = limits.max_series_per_metric {
            let estimate = metric_sketch.map_or(0, |t| t.sketch.estimate());
            if estimate >= limit {
                return Err(CardinalityError::PerMetric {
                    metric: metric.name.clone(),
                    limit,
                    estimate,
                });
            }
        }
        if let Limit::Max(limit) = limits.max_series_per_tenant {
            let estimate = self.series.sketch.estimate();
            if estimate >= limit {
                return Err(CardinalityError::PerTenant {
                    metric: metric.name.clone(),
                    limit,
                    estimate,
                });
            }
        }
        let insert = |sketch: &mut Sketch| {
            if tracked {
                sketch.insert_new(fp);
            } else {
                // Untracked: the fingerprint may be known, so keep the
                // estimate honest with a recount now and then (limits read it).
                sketch.insert_maybe_new(fp);
                if sketch.pending() >= 4096 {
                    sketch.recount();
                }
            }
        };
        if tracked {
            self.known.insert(fp);
            self.new_known.push(fp);
        }
        let changed = &mut self.changed;
        insert(touch(&mut self.series, changed, || SketchId::Series, true));
        let name = metric.name.as_str();
        if !self.metrics.contains_key(name) {
            self.metrics.insert(name.into(), Tracked::detail());
        }
        if let Some(t) = self.metrics.get_mut(name) {
            insert(touch(t, changed, || SketchId::Metric(name.into()), true));
        }
        // A value is new to a key only when its series is new, but it may well
        // be known (another series has it), so these inserts may repeat.
        for (key, value) in metric.dimensions.iter() {
            if let Some(t) = self.keys.get_mut(key) {
                touch(t, changed, || SketchId::Key(key.into()), true)
                    .insert_maybe_new(value_fingerprint(value));
            } else if self.keys.len() < config.max_tracked_keys_per_tenant {
                let t = self.keys.entry(key.into()).or_insert_with(Tracked::detail);
                touch(t, changed, || SketchId::Key(key.into()), true)
                    .insert_maybe_new(value_fingerprint(value));
            } else {
                if !self.warned_untracked_keys {
                    self.warned_untracked_keys = true;
                    tracing::warn!(
                        limit = config.max_tracked_keys_per_tenant,
                        "a tenant has more distinct dimension keys than limits.cardinality.max_tracked_keys_per_tenant; \
                         further keys are counted together"
                    );
                }
                touch(
                    &mut self.untracked_keys,
                    changed,
                    || SketchId::UntrackedKeys,
                    true,
                )
                .insert_maybe_new(key_fingerprint(key));
                touch(
                    &mut self.untracked_values,
                    changed,
                    || SketchId::UntrackedValues,
                    true,
                )
                .insert_maybe_new(pair_fingerprint(key, value));
            }
        }
        Ok(())
    }

    fn take_changes(&mut self) -> Taken {
        let ids = std::mem::take(&mut self.changed);
        let mut sketches = Vec::with_capacity(ids.len());
        for id in ids {
            let tracked = match &id {
                SketchId::Series => Some(&mut self.series),
                SketchId::Metric(name) => self.metrics.get_mut(name),
                SketchId::Key(name) => self.keys.get_mut(name),
                SketchId::UntrackedKeys => Some(&mut self.untracked_keys),
                SketchId::UntrackedValues => Some(&mut self.untracked_values),
            };
            let Some(t) = tracked else { continue };
            t.listed = false;
            let save = std::mem::take(&mut t.unsaved);
            sketches.push((id, t.sketch.clone(), save));
        }
        Taken {
            sketches,
            new_known: std::mem::take(&mut self.new_known),
        }
    }
}

/// Folds another pod's sketches into `live`, one sketch per lock, so a
/// writer waits for at most one merge. Merged sketches are counted again
/// but not saved again (they are in the other pod's document).
pub(super) fn merge_remote(
    live: &Mutex<Live>,
    remote: TenantSketches,
    config: &CardinalityConfig,
) -> Result<(), String> {
    {
        let mut l = lock(live);
        let l = &mut *l;
        touch(&mut l.series, &mut l.changed, || SketchId::Series, false).merge(&remote.series)?;
    }
    for (name, sketch) in remote.metrics {
        let mut l = lock(live);
        let l = &mut *l;
        let t = l
            .metrics
            .entry(name.as_str().into())
            .or_insert_with(Tracked::detail);
        touch(t, &mut l.changed, || SketchId::Metric(name.into()), false).merge(&sketch)?;
    }
    for (name, sketch) in remote.dimension_keys {
        let mut l = lock(live);
        let l = &mut *l;
        if l.keys.contains_key(name.as_str()) || l.keys.len() < config.max_tracked_keys_per_tenant {
            let t = l
                .keys
                .entry(name.as_str().into())
                .or_insert_with(Tracked::detail);
            touch(t, &mut l.changed, || SketchId::Key(name.into()), false)
                .merge_uncounted(&sketch)?;
        } else {
            touch(
                &mut l.untracked_keys,
                &mut l.changed,
                || SketchId::UntrackedKeys,
                false,
            )
            .insert_maybe_new(key_fingerprint(&name));
            touch(
                &mut l.untracked_values,
                &mut l.changed,
                || SketchId::UntrackedValues,
                false,
            )
            .merge_uncounted(&sketch)?;
        }
    }
    for (id, sketch) in [
        (SketchId::UntrackedKeys, remote.untracked_keys),
        (SketchId::UntrackedValues, remote.untracked_values),
    ] {
        let Some(sketch) = sketch else { continue };
        let mut l = lock(live);
        let l = &mut *l;
        let t = match id {
            SketchId::UntrackedKeys => &mut l.untracked_keys,
            _ => &mut l.untracked_values,
        };
        touch(t, &mut l.changed, || id, false).merge_uncounted(&sketch)?;
    }
    for chunk in remote.known_series.chunks(1 << 16) {
        lock(live).known.extend(chunk);
    }
    Ok(())
}

/// The counted side of a tenant: what reports read and what is not saved yet.
#[derive(Default)]
pub(super) struct View {
    pub series: u64,
    pub metrics: HashMap<Box<str>, u64>,
    pub keys: HashMap<Box<str>, u64>,
    pub untracked_keys: u64,
    pub untracked_values: u64,
    pub unsaved: SketchChanges,
}

impl View {
    /// Takes what changed in `live` (a short lock) and counts it here.
    pub(super) fn sync(&mut self, live: &Mutex<Live>) {
        let taken = lock(live).take_changes();
        self.unsaved.new_known_series.extend(taken.new_known);
        for (id, shared, save) in taken.sketches {
            let mut copy = Sketch::clone(&shared);
            // Released at once, so a writer touching it next need not clone.
            drop(shared);
            let estimate = copy.recount();
            let saved = save.then_some(copy);
            match id {
                SketchId::Series => {
                    self.series = estimate;
                    if saved.is_some() {
                        self.unsaved.series = saved;
                    }
                }
                SketchId::Metric(name) => {
                    if let Some(s) = saved {
                        self.unsaved.metrics.insert(name.to_string(), s);
                    }
                    self.metrics.insert(name, estimate);
                }
                SketchId::Key(name) => {
                    if let Some(s) = saved {
                        self.unsaved.dimension_keys.insert(name.to_string(), s);
                    }
                    self.keys.insert(name, estimate);
                }
                SketchId::UntrackedKeys => {
                    self.untracked_keys = estimate;
                    if saved.is_some() {
                        self.unsaved.untracked_keys = saved;
                    }
                }
                SketchId::UntrackedValues => {
                    self.untracked_values = estimate;
                    if saved.is_some() {
                        self.unsaved.untracked_values = saved;
                    }
                }
            }
        }
    }
}

/// A tenant's two halves; `view` is locked before `live` when both are.
pub(super) struct Tenant {
    pub live: Mutex<Live>,
    pub view: Mutex<View>,
    /// Set by writers when something is waiting to be saved.
    pub unsaved: AtomicBool,
}

impl Tenant {
    pub(super) fn new(live: Live) -> Self {
        Self {
            live: Mutex::new(live),
            view: Mutex::new(View::default()),
            unsaved: AtomicBool::new(false),
        }
    }
}
