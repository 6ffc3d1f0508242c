//! Remembered answers of series-only plugins.
//!
//! A validator or enricher that declares `SERIES_ONLY` (the SDK's trait
//! constant, or `series_only` in its manifest) promises that its answer for
//! a metric depends only on the metric's series, its name and dimensions,
//! and on the binding's params: a naming policy, a lookup table. A metrics
//! server sees the same series again and again (every scrape, every flush),
//! so the runtime asks such a plugin only about the series of a batch that
//! it does not remember, once each, and keeps the answers here. A batch whose series are all known costs no plugin call.
//!
//! An answer is keyed by
//! - the tenant: answers are never shared across tenants, even those of a
//!   global plugin bound with the same params;
//! - the binding (its params) and the plugin version, by ids unique to the
//!   process: new params or a reloaded version start afresh, and the old
//!   answers age out;
//! - the series, by xxh3-128 of its canonical bytes
//!   ([`Metric::write_series_key`]), seeded per process: two series of one
//!   tenant sharing an answer would take about 2^64 series.
//!
//! One cache serves the whole process and is bounded in bytes, so memory
//! stays bounded however many tenants and series there are. An answer is
//! remembered from the second time its series is asked about: a
//! doorkeeper (one bit per hashed key, TinyLFU's) notes the first. At high
//! cardinality most series are seen once, and inserting (and evicting)
//! each of them cost more than the cache saved (docs/benchmarks.md); a
//! series that repeats is asked once more, then never. quick_cache's
//! S3-FIFO eviction then keeps series seen repeatedly over one-off ones.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};

use dashmap::DashMap;
use quick_cache::Weighter;
use quick_cache::sync::Cache;
use rustc_hash::FxHashMap;

use super::bindings::ResolvedBinding;
use super::registry::LoadedPlugin;
use crate::model::{Metric, TenantId};

/// One series of one tenant as the cache knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SeriesId(u128);

/// Seeds the series hash per process: a tenant cannot search offline for
/// two of its own series that collide, to have one get the other's
/// remembered verdict.
static SERIES_SEED: LazyLock<u64> = LazyLock::new(rand::random);

impl SeriesId {
    pub fn of_each(metrics: &[Metric]) -> Vec<SeriesId> {
        let mut buf = Vec::with_capacity(256);
        metrics.iter().map(|m| Self::of(m, &mut buf)).collect()
    }

    /// `metric`'s series, with `buf` to write its canonical bytes into.
    pub fn of(metric: &Metric, buf: &mut Vec<u8>) -> SeriesId {
        metric.write_series_key(buf);
        SeriesId(xxhash_rust::xxh3::xxh3_128_with_seed(buf, *SERIES_SEED))
    }
}

/// A plugin's answer about one series, or a whole chain's
/// (`chain_memory`).
#[derive(Clone, Debug, PartialEq)]
pub enum Answer {
    /// A validator's verdict: `None` accepts, else the reason the client
    /// gets (already naming the plugin). For a chain, `None`: accepted, no
    /// dimension added.
    Verdict(Option<Arc<str>>),
    /// An enricher's additions (within the dimension limit); for a chain,
    /// what its enrichers added or overwrote together.
    Additions(Arc<[(Box<str>, Box<str>)]>),
    /// A chain's: its validator at this position rejected the series.
    RejectedBy { validator: usize, reason: Arc<str> },
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct AnswerKey {
    tenant: u64,
    binding: u64,
    plugin: u64,
    series: SeriesId,
}

impl AnswerKey {
    /// 64 well-mixed bits: the series hash is already uniform, and the
    /// ids are spread by odd multipliers.
    fn mixed(&self) -> u64 {
        let series = self.series.0;
        (series as u64)
            ^ ((series >> 64) as u64)
            ^ self.tenant.wrapping_mul(0x9e37_79b9_7f4a_7c15)
            ^ self.binding.wrapping_mul(0xc2b2_ae3d_27d4_eb4f)
            ^ self.plugin.wrapping_mul(0x1656_67b1_9e37_79f9)
    }
}

/// The plugin id of a chain's answers: no plugin version has it (ids count
/// up from 1), so they never meet a single plugin's.
const WHOLE_CHAIN: u64 = u64::MAX;

/// What an entry costs beyond its strings: the key, the value, the cache's
/// own bookkeeping and an allocation header, rounded up.
const ENTRY_BYTES: u64 = 112;

/// 1 MiB and 16 MiB of doorkeeper bits.
const MIN_DOORKEEPER_WORDS: usize = 1 << 17;
const MAX_DOORKEEPER_WORDS: usize = 1 << 21;

#[derive(Clone)]
struct AnswerBytes;

impl Weighter<AnswerKey, Answer> for AnswerBytes {
    fn weight(&self, _: &AnswerKey, answer: &Answer) -> u64 {
        let owned = match answer {
            Answer::Verdict(None) => 0,
            Answer::Verdict(Some(reason)) | Answer::RejectedBy { reason, .. } => 16 + reason.len(),
            Answer::Additions(pairs) => pairs
                .iter()
                .map(|(key, value)| 32 + 2 * 16 + key.len() + value.len())
                .sum(),
        };
        ENTRY_BYTES + owned as u64
    }
}

/// Which keys were asked about once already: a bit per hashed key, all
/// cleared after a quarter of the bits were set so they stay sparse. Sized
/// from the cache (8 bits per entry it can hold, 1-16 MiB), so a working
/// set that fits the cache also fits between two resets and is admitted on
/// its second sighting. A false "seen" only remembers a one-off answer; a
/// lost bit only asks once more.
struct Doorkeeper {
    bits: Box<[AtomicU64]>,
    reset_after: u64,
    first_sightings: AtomicU64,
}

impl Doorkeeper {
    fn for_entries(entries: usize) -> Self {
        let words = (entries / 8)
            .next_power_of_two()
            .clamp(MIN_DOORKEEPER_WORDS, MAX_DOORKEEPER_WORDS);
        Self {
            bits: (0..words).map(|_| AtomicU64::new(0)).collect(),
            reset_after: (words as u64 * 64) / 4,
            first_sightings: AtomicU64::new(0),
        }
    }

    /// Notes `key`; says whether it had been noted before.
    fn seen_before(&self, key: &AnswerKey) -> bool {
        let h = key.mixed();
        // The length is a power of two.
        let word = (h >> 6) as usize & (self.bits.len() - 1);
        let bit = 1u64 << (h & 63);
        if self.bits[word].fetch_or(bit, Ordering::Relaxed) & bit != 0 {
            return true;
        }
        if self.first_sightings.fetch_add(1, Ordering::Relaxed) + 1 >= self.reset_after {
            self.first_sightings.store(0, Ordering::Relaxed);
            for word in self.bits.iter() {
                word.store(0, Ordering::Relaxed);
            }
        }
        false
    }
}

pub struct SeriesCache {
    /// `None` when the operator turned the cache off.
    answers: Option<Cache<AnswerKey, Answer, AnswerBytes>>,
    doorkeeper: Doorkeeper,
    /// Tenants by a number, so a key is fixed-size and cheap to hash.
    tenants: DashMap<TenantId, u64>,
    next_tenant: AtomicU64,
}

impl SeriesCache {
    /// A cache holding at most `bytes` of answers; 0 turns it off.
    pub fn new(bytes: u64) -> Self {
        let estimated_entries = usize::try_from(bytes / ENTRY_BYTES)
            .unwrap_or(usize::MAX)
            .max(16);
        let answers =
            (bytes > 0).then(|| Cache::with_weighter(estimated_entries, bytes, AnswerBytes));
        Self {
            answers,
            doorkeeper: Doorkeeper::for_entries(estimated_entries),
            tenants: DashMap::new(),
            next_tenant: AtomicU64::new(0),
        }
    }

    /// Where `binding`'s answers for `tenant` live, if `plugin` is
    /// series-only and the cache is on.
    pub fn scope(
        &self,
        tenant: &TenantId,
        binding: &ResolvedBinding,
        plugin: &LoadedPlugin,
    ) -> Option<CacheScope<'_>> {
        let answers = self.answers.as_ref()?;
        if !plugin.series_only {
            return None;
        }
        Some(CacheScope {
            answers,
            doorkeeper: &self.doorkeeper,
            tenant: self.tenant_number(tenant),
            binding: binding.id,
            plugin: plugin.id,
        })
    }

    /// Where a whole chain's answers for `tenant` live, if the cache is
    /// on. `chain` identifies every binding (its params) and plugin
    /// version of the chain, in order, so any change starts afresh.
    pub fn chain_scope(&self, tenant: &TenantId, chain: u64) -> Option<CacheScope<'_>> {
        let answers = self.answers.as_ref()?;
        Some(CacheScope {
            answers,
            doorkeeper: &self.doorkeeper,
            tenant: self.tenant_number(tenant),
            binding: chain,
            plugin: WHOLE_CHAIN,
        })
    }

    fn tenant_number(&self, tenant: &TenantId) -> u64 {
        // A lookup first: `entry` would clone the tenant id on every batch.
        if let Some(number) = self.tenants.get(tenant) {
            return *number;
        }
        *self
            .tenants
            .entry(tenant.clone())
            .or_insert_with(|| self.next_tenant.fetch_add(1, Ordering::Relaxed))
    }

    /// Answers held now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.answers.as_ref().map_or(0, Cache::len)
    }
}

/// One binding's answers for one tenant.
pub struct CacheScope<'a> {
    answers: &'a Cache<AnswerKey, Answer, AnswerBytes>,
    doorkeeper: &'a Doorkeeper,
    tenant: u64,
    binding: u64,
    plugin: u64,
}

/// How a metric of a batch gets its answer.
pub enum Known {
    Remembered(Answer),
    /// From the plugin's answer to `Lookup::ask[i]`.
    Asked(usize),
}

/// What the cache knows about a batch, and what is left to ask.
pub struct Lookup {
    /// One per metric of the batch, in order.
    pub per_metric: Vec<Known>,
    /// The metrics to send to the plugin: the first of each distinct series
    /// the cache does not know, in batch order.
    pub ask: Vec<usize>,
}

impl CacheScope<'_> {
    fn key(&self, series: SeriesId) -> AnswerKey {
        AnswerKey {
            tenant: self.tenant,
            binding: self.binding,
            plugin: self.plugin,
            series,
        }
    }

    /// The answer remembered for `series`.
    pub fn get(&self, series: SeriesId) -> Option<Answer> {
        self.answers.get(&self.key(series))
    }

    pub fn lookup(&self, series: &[SeriesId]) -> Lookup {
        let mut per_metric = Vec::with_capacity(series.len());
        let mut ask = Vec::new();
        let mut asked: FxHashMap<SeriesId, usize> = FxHashMap::default();
        for (index, &id) in series.iter().enumerate() {
            match self.answers.get(&self.key(id)) {
                Some(answer) => per_metric.push(Known::Remembered(answer)),
                None => {
                    let slot = *asked.entry(id).or_insert_with(|| {
                        ask.push(index);
                        ask.len() - 1
                    });
                    per_metric.push(Known::Asked(slot));
                }
            }
        }
        Lookup { per_metric, ask }
    }

    /// Notes `series` as asked about; says whether its answer is to be
    /// kept (it was asked about before: see the doorkeeper above).
    pub fn admits(&self, series: SeriesId) -> bool {
        self.doorkeeper.seen_before(&self.key(series))
    }

    /// Keeps `answer`, admitted or not: see [`CacheScope::admits`].
    pub fn insert(&self, series: SeriesId, answer: Answer) {
        self.answers.insert(self.key(series), answer);
    }

    /// Keeps the answer if its series was asked about before (see the
    /// doorkeeper above); builds it only then.
    pub fn remember_with(&self, series: SeriesId, answer: impl FnOnce() -> Answer) {
        let key = self.key(series);
        if self.doorkeeper.seen_before(&key) {
            self.answers.insert(key, answer());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Dimensions;

    fn metric(name: &str, value: f64, dims: &[(&str, &str)]) -> Metric {
        Metric {
            name: name.into(),
            value,
            timestamp_ms: value as i64,
            dimensions: Dimensions::from_pairs(
                dims.iter().map(|(k, v)| (k.to_string(), v.to_string())),
            ),
        }
    }

    #[test]
    fn an_answer_is_remembered_from_its_second_sighting_and_per_scope() {
        let cache = SeriesCache::new(1 << 20);
        let doorkeeper = &cache.doorkeeper;
        let answers = cache.answers.as_ref().unwrap();
        let scope = |tenant| CacheScope {
            answers,
            doorkeeper,
            tenant,
            binding: 1,
            plugin: 1,
        };
        let ids = SeriesId::of_each(&[metric("m", 1.0, &[("a", "1")])]);
        let accept = Answer::Verdict(None);
        let asks = |tenant| scope(tenant).lookup(&ids).ask.len();
        scope(0).remember_with(ids[0], || accept.clone());
        assert_eq!(asks(0), 1, "a first sighting is only noted");
        scope(0).remember_with(ids[0], || accept.clone());
        assert_eq!(asks(0), 0);
        assert_eq!(asks(1), 1, "another tenant's key");
        scope(1).remember_with(ids[0], || accept.clone());
        scope(1).remember_with(ids[0], || accept.clone());
        assert_eq!(asks(1), 0);
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn a_batch_asks_about_each_unknown_series_once() {
        let cache = SeriesCache::new(1 << 20);
        let scope = CacheScope {
            answers: cache.answers.as_ref().unwrap(),
            doorkeeper: &cache.doorkeeper,
            tenant: 0,
            binding: 1,
            plugin: 1,
        };
        let ids = SeriesId::of_each(&[
            metric("m", 1.0, &[("a", "1")]),
            metric("m", 2.0, &[("a", "2")]),
            metric("m", 3.0, &[("a", "1")]),
        ]);
        let lookup = scope.lookup(&ids);
        assert_eq!(lookup.ask, vec![0, 1]);
        let slots: Vec<usize> = lookup
            .per_metric
            .iter()
            .map(|k| match k {
                Known::Asked(slot) => *slot,
                Known::Remembered(_) => usize::MAX,
            })
            .collect();
        assert_eq!(slots, vec![0, 1, 0]);
    }

    #[test]
    fn a_series_is_its_name_and_dimensions_not_its_point() {
        let ids = SeriesId::of_each(&[
            metric("m", 1.0, &[("a", "1"), ("b", "2")]),
            metric("m", 2.0, &[("b", "2"), ("a", "1")]),
            metric("m", 1.0, &[("a", "12")]),
            metric("m", 1.0, &[("a1", "2")]),
            metric("n", 1.0, &[("a", "1"), ("b", "2")]),
        ]);
        assert_eq!(ids[0], ids[1], "same series, other point");
        assert_ne!(ids[2], ids[3], "the separators keep keys and values apart");
        assert_ne!(ids[0], ids[4]);
    }
}
