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
//! One table serves the whole process and is bounded in bytes, so memory
//! stays bounded however many tenants and series there are. An answer is
//! remembered from the second time its series is asked about: a
//! doorkeeper (one bit per hashed key, TinyLFU's) notes the first. At high
//! cardinality most series are seen once, and inserting (and evicting)
//! each of them cost more than the cache saved (docs/benchmarks.md); a
//! series that repeats is asked once more, then never.
//!
//! The table is read once per metric of every batch, on every core, so a
//! lookup is one cache line and writes nothing: a set of four slots, each
//! a 128-bit fingerprint of the key and the number of its answer, read
//! with plain loads. A general-purpose concurrent cache (quick_cache, until
//! it measured as most of the plugin step at 100 000 series) takes a lock,
//! probes an index, follows it to the entry and counts a reference: four
//! lines, two of them written, which two cores pass back and forth.
//! Answers themselves are few (a team per service, a reason per broken
//! rule), so each distinct one is stored once per owner and stays hot.
//! Numbers only grow within a generation; when the answers fill their half
//! of the budget, a new, empty generation takes over, and batches still
//! reading the old one finish on it (no third is started while they do,
//! so memory stays within twice the budget for that long). One owner may
//! fill a quarter of the answers at most: a tenant whose answers are all
//! distinct stops being remembered rather than making everyone start over. A slot's answer names its owner and is
//! checked on every hit, so two keys sharing a fingerprint could at worst
//! mix two series of one owner: never two tenants, bindings or chains.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, PoisonError, RwLock, Weak};

use dashmap::DashMap;
use rustc_hash::FxHashMap;

use super::bindings::ResolvedBinding;
use super::registry::LoadedPlugin;
use crate::model::{Metric, TenantId};

/// One series of one tenant as the cache knows it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
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
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
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

impl Answer {
    /// Bytes it holds beyond its own size.
    fn owned_bytes(&self) -> usize {
        match self {
            Answer::Verdict(None) => 0,
            Answer::Verdict(Some(reason)) | Answer::RejectedBy { reason, .. } => 16 + reason.len(),
            Answer::Additions(pairs) => pairs
                .iter()
                .map(|(key, value)| 32 + 2 * 16 + key.len() + value.len())
                .sum(),
        }
    }
}

/// Whose answers: one binding of one plugin version for one tenant, or one
/// tenant's whole chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Owner {
    tenant: u64,
    binding: u64,
    plugin: u64,
}

/// An owner's series, as the table finds it: `low` picks the set (and 31
/// more bits are kept in the slot), `high` is kept whole.
#[derive(Clone, Copy)]
struct Fingerprint {
    low: u64,
    high: u64,
}

impl Owner {
    /// The series hash is already uniform and keyed per process; the ids
    /// are spread by odd multipliers, and each owner's fingerprints are its
    /// series hashes moved by the same bijection, so within one owner two
    /// series share a fingerprint only if they share a hash.
    fn fingerprint(&self, series: SeriesId) -> Fingerprint {
        let owner = self.tenant.wrapping_mul(0x9e37_79b9_7f4a_7c15)
            ^ self.binding.wrapping_mul(0xc2b2_ae3d_27d4_eb4f)
            ^ self.plugin.wrapping_mul(0x1656_67b1_9e37_79f9);
        Fingerprint {
            low: (series.0 as u64) ^ owner,
            // 0 marks an empty slot.
            high: (((series.0 >> 64) as u64) ^ owner.rotate_left(32)).max(1),
        }
    }
}

/// The plugin id of a chain's answers: no plugin version has it (ids count
/// up from 1), so they never meet a single plugin's.
const WHOLE_CHAIN: u64 = u64::MAX;

/// What storing a distinct answer costs beyond its strings: it is held
/// twice (by number, and by value to find its number), in two tables that
/// grow by doubling, so each copy is counted at about twice its slot.
const STORED_BYTES: u64 = 2 * 2 * (std::mem::size_of::<Stored>() as u64 + 16);

/// The part of the answers' bytes one owner may fill: a tenant whose
/// plugins give many distinct answers (a reason naming each new metric)
/// then stops being remembered instead of starting a new generation, which
/// would forget every other tenant's answers too.
const OWNER_SHARE: u64 = 4;

/// 1 MiB and 16 MiB of doorkeeper bits.
const MIN_DOORKEEPER_WORDS: usize = 1 << 17;
const MAX_DOORKEEPER_WORDS: usize = 1 << 21;

/// Which keys were asked about once already: a bit per hashed key, all
/// cleared after a quarter of the bits were set so they stay sparse. Sized
/// from the table (8 bits per slot, 1-16 MiB), so a working set that fits
/// the table also fits between two resets and is admitted on its second
/// sighting. A false "seen" only remembers a one-off answer; a lost bit
/// only asks once more.
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
    fn seen_before(&self, key: Fingerprint) -> bool {
        let h = key.low ^ key.high;
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

/// How many metrics ahead of the one being answered a pass over a batch
/// has the CPU fetch a series' slots (`CacheScope::prefetch`): at high
/// cardinality each set is a miss to memory, which the work on the metrics
/// between then hides.
pub const LOOK_AHEAD: usize = 8;

/// Slots per set: four of 16 bytes fill one 64-byte cache line.
const WAYS: usize = 4;

#[derive(Default)]
struct Slot {
    /// `Fingerprint::high`; 0 when empty.
    high: AtomicU64,
    /// The answer's number in the high half; in the low half 31 bits of
    /// `Fingerprint::low` (those above the set index) with the lowest bit
    /// set, so a slot being written (0) never matches.
    answer: AtomicU64,
}

#[derive(Default)]
#[repr(align(64))]
struct Set([Slot; WAYS]);

fn prefetch(set: &Set) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint: it never faults, reads nothing into the
    // program and changes no state; `set` is a live reference besides.
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>(std::ptr::from_ref(set).cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = set;
}

fn low_check(key: Fingerprint) -> u64 {
    (key.low >> 32) | 1
}

/// An answer and whose it is.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Stored {
    owner: Owner,
    answer: Answer,
}

impl Stored {
    /// What keeping it costs, counted against the budget.
    fn bytes(&self) -> u64 {
        STORED_BYTES + self.answer.owned_bytes() as u64
    }
}

/// Distinct answers by value, and the bytes they hold, in all and per
/// owner.
#[derive(Default)]
struct Numbering {
    numbers: FxHashMap<Stored, u32>,
    bytes: u64,
    owners: FxHashMap<Owner, u64>,
}

/// Why an answer got no number.
#[derive(Debug, PartialEq)]
enum Unnumbered {
    /// The generation's answers are full: a new generation will take it.
    Full,
    /// Its owner holds its share already: it is not remembered.
    OwnerFull,
}

/// The table and the answers it numbers, until they fill up.
struct Generation {
    sets: Box<[Set]>,
    answers: boxcar::Vec<Stored>,
    numbering: Mutex<Numbering>,
}

impl Generation {
    fn new(sets: usize) -> Self {
        Self {
            sets: (0..sets).map(|_| Set::default()).collect(),
            answers: boxcar::Vec::new(),
            numbering: Mutex::new(Numbering::default()),
        }
    }

    fn set(&self, key: Fingerprint) -> &Set {
        // The length is a power of two.
        &self.sets[key.low as usize & (self.sets.len() - 1)]
    }

    fn find(&self, key: Fingerprint) -> Option<&Stored> {
        let check = low_check(key);
        let number = self.set(key).0.iter().find_map(|slot| {
            if slot.high.load(Ordering::Acquire) != key.high {
                return None;
            }
            let answer = slot.answer.load(Ordering::Acquire);
            (answer & u64::from(u32::MAX) == check).then_some(answer >> 32)
        })?;
        self.answers.get(usize::try_from(number).ok()?)
    }

    /// The number of `stored`, numbering it if it is new and fits in
    /// `budget` bytes of answers (and its owner in its share of them).
    fn number(&self, stored: &Stored, budget: u64) -> Result<u32, Unnumbered> {
        let mut numbering = self
            .numbering
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(&number) = numbering.numbers.get(stored) {
            return Ok(number);
        }
        let cost = stored.bytes();
        let owned = numbering.owners.get(&stored.owner).copied().unwrap_or(0);
        if owned + cost > budget / OWNER_SHARE {
            return Err(Unnumbered::OwnerFull);
        }
        if numbering.bytes + cost > budget {
            return Err(Unnumbered::Full);
        }
        let number = u32::try_from(self.answers.count()).map_err(|_| Unnumbered::Full)?;
        let pushed = self.answers.push(stored.clone());
        // Pushes happen under this lock, so the next index is the count.
        debug_assert_eq!(pushed, number as usize);
        numbering.numbers.insert(stored.clone(), number);
        numbering.bytes += cost;
        *numbering.owners.entry(stored.owner).or_default() += cost;
        Ok(number)
    }

    /// Points `key`'s slot at answer `number`: the slot that holds `key`
    /// already, else an empty one, else one of the set picked by the key.
    /// A reader racing the write sees the old slot, an empty one or a
    /// mismatch, never another key's answer under this key's fingerprint
    /// (short of a 31-bit coincidence, and then only within one owner).
    fn put(&self, key: Fingerprint, number: u32) {
        let set = &self.set(key).0;
        let slot = set
            .iter()
            .find(|slot| slot.high.load(Ordering::Relaxed) == key.high)
            .or_else(|| {
                set.iter()
                    .find(|slot| slot.high.load(Ordering::Relaxed) == 0)
            })
            .unwrap_or(&set[(key.high >> 62) as usize % WAYS]);
        slot.answer.store(0, Ordering::Release);
        slot.high.store(key.high, Ordering::Release);
        slot.answer
            .store(u64::from(number) << 32 | low_check(key), Ordering::Release);
    }

    #[cfg(test)]
    fn held(&self) -> usize {
        self.sets
            .iter()
            .flat_map(|set| &set.0)
            .filter(|slot| slot.high.load(Ordering::Relaxed) != 0)
            .count()
    }
}

/// How the byte budget is split: half for the table, half for answers.
#[derive(Clone, Copy)]
struct Sizes {
    sets: usize,
    answer_bytes: u64,
}

pub struct SeriesCache {
    /// `None` when the operator turned the cache off.
    sizes: Option<Sizes>,
    /// `None` until the first answer is kept: a server without series-only
    /// plugins never pays for the table.
    current: RwLock<Option<Arc<Generation>>>,
    /// The generation replaced last, while batches still read it. Its lock
    /// is held by a renewal.
    retired: Mutex<Weak<Generation>>,
    doorkeeper: Doorkeeper,
    /// Tenants by a number, so a key is fixed-size and cheap to hash.
    tenants: DashMap<TenantId, u64>,
    next_tenant: AtomicU64,
}

impl SeriesCache {
    /// A cache holding at most about `bytes`; 0 turns it off.
    pub fn new(bytes: u64) -> Self {
        Self::with_sizes((bytes > 0).then(|| {
            let sets = usize::try_from(bytes / 2 / std::mem::size_of::<Set>() as u64)
                .unwrap_or(usize::MAX)
                .max(1);
            // A power of two at most that, so a set is picked with a mask.
            let sets = 1 << sets.ilog2();
            Sizes {
                sets,
                answer_bytes: bytes / 2,
            }
        }))
    }

    fn with_sizes(sizes: Option<Sizes>) -> Self {
        Self {
            doorkeeper: Doorkeeper::for_entries(sizes.map_or(0, |s| s.sets * WAYS)),
            sizes,
            current: RwLock::new(None),
            retired: Mutex::new(Weak::new()),
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
        if !plugin.series_only {
            return None;
        }
        self.scope_of(Owner {
            tenant: self.tenant_number(tenant),
            binding: binding.id,
            plugin: plugin.id,
        })
    }

    /// Where a whole chain's answers for `tenant` live, if the cache is
    /// on. `chain` identifies every binding (its params) and plugin
    /// version of the chain, in order, so any change starts afresh.
    pub fn chain_scope(&self, tenant: &TenantId, chain: u64) -> Option<CacheScope<'_>> {
        self.scope_of(Owner {
            tenant: self.tenant_number(tenant),
            binding: chain,
            plugin: WHOLE_CHAIN,
        })
    }

    fn scope_of(&self, owner: Owner) -> Option<CacheScope<'_>> {
        self.sizes?;
        Some(CacheScope {
            cache: self,
            generation: self.current(),
            owner,
        })
    }

    fn current(&self) -> Option<Arc<Generation>> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Keeps `stored` for `key` in the current generation; starts a new
    /// one when the answers have filled theirs.
    fn keep(&self, key: Fingerprint, stored: &Stored) {
        let Some(sizes) = self.sizes else { return };
        if stored.bytes() > sizes.answer_bytes / OWNER_SHARE {
            return;
        }
        let Some(generation) = self.current().or_else(|| self.renew(None, sizes)) else {
            return;
        };
        match generation.number(stored, sizes.answer_bytes) {
            Ok(number) => return generation.put(key, number),
            Err(Unnumbered::OwnerFull) => return,
            Err(Unnumbered::Full) => {}
        }
        if let Some(generation) = self.renew(Some(&generation), sizes)
            && let Ok(number) = generation.number(stored, sizes.answer_bytes)
        {
            generation.put(key, number);
        }
    }

    /// Replaces `stale` (the generation found full, or none yet) with a
    /// new one, unless another call already did; returns the current one.
    /// Returns none while the generation replaced last is still read by a
    /// batch: at most two are alive, so memory stays within twice the
    /// budget, and for as long as a batch's plugin calls take.
    fn renew(&self, stale: Option<&Arc<Generation>>, sizes: Sizes) -> Option<Arc<Generation>> {
        // One renewal at a time: each builds a table of half the budget.
        let mut retired = self.retired.lock().unwrap_or_else(PoisonError::into_inner);
        let current = self.current();
        let renewed = match (&current, stale) {
            (Some(current), Some(stale)) => !Arc::ptr_eq(current, stale),
            (current, None) => current.is_some(),
            (None, Some(_)) => false,
        };
        if renewed {
            return current;
        }
        if retired.strong_count() > 0 {
            return None;
        }
        // Built before the write lock: readers wait only for the swap.
        let fresh = Arc::new(Generation::new(sizes.sets));
        let replaced = self
            .current
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .replace(fresh.clone());
        *retired = replaced.as_ref().map_or_else(Weak::new, Arc::downgrade);
        Some(fresh)
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
        self.current().map_or(0, |generation| generation.held())
    }
}

/// One owner's answers: a binding's for one tenant, or a chain's. Reads
/// see the generation that was current when the scope was made.
pub struct CacheScope<'a> {
    cache: &'a SeriesCache,
    generation: Option<Arc<Generation>>,
    owner: Owner,
}

/// How a metric of a batch gets its answer.
pub enum Known<'a> {
    Remembered(&'a Answer),
    /// From the plugin's answer to `Lookup::ask[i]`.
    Asked(usize),
}

/// What the cache knows about a batch, and what is left to ask.
pub struct Lookup<'a> {
    /// One per metric of the batch, in order.
    pub per_metric: Vec<Known<'a>>,
    /// The metrics to send to the plugin: the first of each distinct series
    /// the cache does not know, in batch order.
    pub ask: Vec<usize>,
}

impl CacheScope<'_> {
    /// The answer remembered for `series`.
    pub fn get(&self, series: SeriesId) -> Option<&Answer> {
        let stored = self
            .generation
            .as_ref()?
            .find(self.owner.fingerprint(series))?;
        (stored.owner == self.owner).then_some(&stored.answer)
    }

    /// Has the CPU start loading `series`'s slots, so that a `get` a few
    /// metrics later finds them in its cache rather than in memory.
    pub fn prefetch(&self, series: SeriesId) {
        if let Some(generation) = &self.generation {
            prefetch(generation.set(self.owner.fingerprint(series)));
        }
    }

    pub fn lookup(&self, series: &[SeriesId]) -> Lookup<'_> {
        let mut per_metric = Vec::with_capacity(series.len());
        let mut ask = Vec::new();
        let mut asked: FxHashMap<SeriesId, usize> = FxHashMap::default();
        for &ahead in series.iter().take(LOOK_AHEAD) {
            self.prefetch(ahead);
        }
        for (index, &id) in series.iter().enumerate() {
            if let Some(&ahead) = series.get(index + LOOK_AHEAD) {
                self.prefetch(ahead);
            }
            match self.get(id) {
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
        self.cache
            .doorkeeper
            .seen_before(self.owner.fingerprint(series))
    }

    /// Keeps `answer`, admitted or not: see [`CacheScope::admits`].
    pub fn insert(&self, series: SeriesId, answer: Answer) {
        let stored = Stored {
            owner: self.owner,
            answer,
        };
        self.cache.keep(self.owner.fingerprint(series), &stored);
    }

    /// Keeps the answer if its series was asked about before (see the
    /// doorkeeper above); builds it only then.
    pub fn remember_with(&self, series: SeriesId, answer: impl FnOnce() -> Answer) {
        if self.admits(series) {
            self.insert(series, answer());
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

    fn scope(cache: &SeriesCache, tenant: u64, binding: u64) -> CacheScope<'_> {
        cache
            .scope_of(Owner {
                tenant,
                binding,
                plugin: 1,
            })
            .expect("the cache is on")
    }

    fn series(count: usize) -> Vec<SeriesId> {
        let metrics: Vec<Metric> = (0..count)
            .map(|i| metric("m", 1.0, &[("i", &i.to_string())]))
            .collect();
        SeriesId::of_each(&metrics)
    }

    fn reason(text: &str) -> Answer {
        Answer::Verdict(Some(text.into()))
    }

    #[test]
    fn an_answer_is_remembered_from_its_second_sighting_and_per_scope() {
        let cache = SeriesCache::new(1 << 20);
        let scope = |tenant| scope(&cache, tenant, 1);
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
        let scope = scope(&cache, 0, 1);
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

    #[test]
    fn series_with_one_answer_share_its_storage() {
        let cache = SeriesCache::new(1 << 20);
        let ids = series(100);
        for &id in &ids {
            scope(&cache, 0, 1).insert(id, reason("too long"));
        }
        let generation = cache.current().expect("a generation");
        assert_eq!(generation.answers.count(), 1);
        assert_eq!(generation.held(), 100);
        let scope = scope(&cache, 0, 1);
        assert!(
            ids.iter()
                .all(|&id| scope.get(id) == Some(&reason("too long")))
        );
    }

    #[test]
    fn a_full_set_forgets_a_series_and_never_answers_for_another() {
        let cache = SeriesCache::with_sizes(Some(Sizes {
            sets: 1,
            answer_bytes: 1 << 20,
        }));
        let ids = series(6);
        let answers: Vec<Answer> = (0..6).map(|i| reason(&i.to_string())).collect();
        for (&id, answer) in ids.iter().zip(&answers) {
            scope(&cache, 0, 1).insert(id, answer.clone());
        }
        let scope = scope(&cache, 0, 1);
        let found: Vec<Option<&Answer>> = ids.iter().map(|&id| scope.get(id)).collect();
        assert!(found.iter().flatten().count() <= WAYS);
        assert!(found[5].is_some(), "the last one in is kept");
        for (found, answer) in found.iter().zip(&answers) {
            assert!(found.is_none_or(|found| found == answer));
        }
    }

    /// Keeps a distinct answer for each of `ids`, spread over eight owners
    /// (tenants 0-7) so that no owner reaches its share first.
    fn fill(cache: &SeriesCache, ids: &[SeriesId]) {
        for (i, &id) in ids.iter().enumerate() {
            scope(cache, i as u64 % 8, 1).insert(id, reason(&format!("reason number {i}")));
        }
    }

    #[test]
    fn answers_past_their_budget_start_a_new_generation() {
        let cache = SeriesCache::new(1 << 17);
        let budget = cache.sizes.expect("on").answer_bytes;
        let ids = series(2_000);
        assert!(
            cache.current().is_none(),
            "no table before the first answer"
        );
        fill(&cache, &ids);
        let generation = cache.current().expect("a generation");
        let held = generation.numbering.lock().unwrap().bytes;
        assert!(held <= budget, "{held} bytes of answers, budget {budget}");
        assert!(
            generation.answers.count() < 2_000,
            "older generations were dropped"
        );
        let last = ids.len() - 1;
        assert_eq!(
            scope(&cache, last as u64 % 8, 1).get(ids[last]),
            Some(&reason(&format!("reason number {last}")))
        );
        assert_eq!(
            scope(&cache, 0, 1).get(ids[0]),
            None,
            "forgotten with its generation"
        );
    }

    #[test]
    fn one_owner_past_its_share_is_not_remembered_and_forgets_nobody_else() {
        let cache = SeriesCache::new(1 << 17);
        let ids = series(2_000);
        scope(&cache, 1, 1).insert(ids[0], reason("tenant 1's"));
        for (i, &id) in ids.iter().enumerate() {
            scope(&cache, 0, 1).insert(id, reason(&format!("reason number {i}")));
        }
        let generation = cache.current().expect("a generation");
        let budget = cache.sizes.expect("on").answer_bytes;
        let held = generation.numbering.lock().unwrap().bytes;
        assert!(held <= budget / OWNER_SHARE + STORED_BYTES + 64);
        assert_eq!(scope(&cache, 1, 1).get(ids[0]), Some(&reason("tenant 1's")));
        assert_eq!(scope(&cache, 0, 1).get(ids[1_999]), None, "past its share");
        assert!(
            scope(&cache, 0, 1).get(ids[0]).is_some(),
            "within its share"
        );
    }

    #[test]
    fn no_third_generation_while_a_batch_still_reads_the_first() {
        let cache = SeriesCache::new(1 << 17);
        let ids = series(6_000);
        fill(&cache, &ids[..10]);
        // A batch that began on the first generation, still running.
        let reading_first = scope(&cache, 0, 1);
        let first = cache.current().expect("a generation");
        fill(&cache, &ids[10..2_000]);
        let second = cache.current().expect("a generation");
        assert!(!Arc::ptr_eq(&first, &second), "the first filled up");
        drop(first);
        fill(&cache, &ids[2_000..4_000]);
        let still = cache.current().expect("a generation");
        assert!(
            Arc::ptr_eq(&second, &still),
            "no third while the first is read"
        );
        assert!(reading_first.get(ids[0]).is_some());
        drop((reading_first, still));
        fill(&cache, &ids[4_000..]);
        let third = cache.current().expect("a generation");
        assert!(
            !Arc::ptr_eq(&second, &third),
            "a third once the first is gone"
        );
    }

    #[test]
    fn a_slot_never_answers_for_another_owner() {
        let cache = SeriesCache::new(1 << 20);
        let ids = series(1);
        scope(&cache, 0, 1).insert(ids[0], reason("tenant 0's"));
        let tenant_1 = scope(&cache, 1, 1);
        // Point tenant 1's slot for the series at tenant 0's answer, as two
        // owners' fingerprints colliding would.
        let generation = cache.current().expect("a generation");
        generation.put(tenant_1.owner.fingerprint(ids[0]), 0);
        let tenant_1 = scope(&cache, 1, 1);
        assert_eq!(tenant_1.get(ids[0]), None);
        assert_eq!(scope(&cache, 0, 1).get(ids[0]), Some(&reason("tenant 0's")));
    }

    #[test]
    fn racing_writers_never_make_a_reader_see_another_series_answer() {
        // Two sets, so the writers keep overwriting each other's slots.
        let cache = SeriesCache::with_sizes(Some(Sizes {
            sets: 2,
            answer_bytes: 1 << 20,
        }));
        let ids = series(64);
        let answers: Vec<Answer> = (0..64).map(|i| reason(&i.to_string())).collect();
        let hits = AtomicU64::new(0);
        std::thread::scope(|threads| {
            for writer in 0..2 {
                let (cache, ids, answers, hits) = (&cache, &ids, &answers, &hits);
                threads.spawn(move || {
                    for round in 0..2_000 {
                        for (i, (&id, answer)) in ids.iter().zip(answers).enumerate() {
                            if (i + round + writer) % 2 == 0 {
                                scope(cache, 0, 1).insert(id, answer.clone());
                            }
                            if let Some(found) = scope(cache, 0, 1).get(id) {
                                assert_eq!(found, answer, "series {i}");
                                hits.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                });
            }
        });
        assert!(hits.into_inner() > 0, "the readers found answers");
    }
}
