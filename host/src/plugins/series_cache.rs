//! Remembered answers of series-only plugins.
//!
//! A validator or enricher that declares `SERIES_ONLY` (the SDK's trait
//! constant, or `series_only` in its manifest) promises that its answer for
//! a metric depends only on the metric's series, its name and dimensions,
//! and on the binding's params: a naming policy, a lookup table. A metrics
//! server sees the same series again and again (every scrape, every flush),
//! so the runtime asks such a plugin once per distinct series and keeps the
//! answer here. A batch whose series are all known costs no plugin call.
//!
//! An answer is keyed by
//! - the tenant: answers are never shared across tenants, even those of a
//!   global plugin bound with the same params;
//! - the binding (its params) and the plugin version, by ids unique to the
//!   process: new params or a reloaded version start afresh, and the old
//!   answers age out;
//! - the series, by xxh3-128 of its canonical bytes
//!   ([`Metric::write_series_key`]): two series of one tenant sharing an
//!   answer would take about 2^64 series.
//!
//! One cache serves the whole process and is bounded in bytes, so memory
//! stays bounded however many tenants and series there are. quick_cache's
//! S3-FIFO eviction keeps series seen repeatedly over one-off ones, so a
//! burst of new series does not flush the steady working set.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

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

impl SeriesId {
    pub fn of_each(metrics: &[Metric]) -> Vec<SeriesId> {
        let mut buf = Vec::with_capacity(256);
        metrics
            .iter()
            .map(|m| {
                m.write_series_key(&mut buf);
                SeriesId(xxhash_rust::xxh3::xxh3_128(&buf))
            })
            .collect()
    }
}

/// A plugin's answer about one series.
#[derive(Clone, Debug, PartialEq)]
pub enum Answer {
    /// A validator's verdict: `None` accepts, else the reason the client
    /// gets (already naming the plugin).
    Verdict(Option<Arc<str>>),
    /// An enricher's additions (within the dimension limit).
    Additions(Arc<[(Box<str>, Box<str>)]>),
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct AnswerKey {
    tenant: u64,
    binding: u64,
    plugin: u64,
    series: SeriesId,
}

/// What an entry costs beyond its strings: the key, the value, the cache's
/// own bookkeeping and an allocation header, rounded up.
const ENTRY_BYTES: u64 = 112;

#[derive(Clone)]
struct AnswerBytes;

impl Weighter<AnswerKey, Answer> for AnswerBytes {
    fn weight(&self, _: &AnswerKey, answer: &Answer) -> u64 {
        let owned = match answer {
            Answer::Verdict(None) => 0,
            Answer::Verdict(Some(reason)) => 16 + reason.len(),
            Answer::Additions(pairs) => pairs
                .iter()
                .map(|(key, value)| 32 + 2 * 16 + key.len() + value.len())
                .sum(),
        };
        ENTRY_BYTES + owned as u64
    }
}

pub struct SeriesCache {
    /// `None` when the operator turned the cache off.
    answers: Option<Cache<AnswerKey, Answer, AnswerBytes>>,
    /// Tenants by a number, so a key is fixed-size and cheap to hash.
    tenants: DashMap<TenantId, u64>,
    next_tenant: AtomicU64,
}

impl SeriesCache {
    /// A cache holding at most `bytes` of answers; 0 turns it off.
    pub fn new(bytes: u64) -> Self {
        let answers = (bytes > 0).then(|| {
            let estimated_entries = usize::try_from(bytes / ENTRY_BYTES)
                .unwrap_or(usize::MAX)
                .max(16);
            Cache::with_weighter(estimated_entries, bytes, AnswerBytes)
        });
        Self {
            answers,
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
            tenant: self.tenant_number(tenant),
            binding: binding.id,
            plugin: plugin.id,
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
    pub fn len(&self) -> usize {
        self.answers.as_ref().map_or(0, Cache::len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes held now, as the bound counts them.
    pub fn weight(&self) -> u64 {
        self.answers.as_ref().map_or(0, Cache::weight)
    }
}

/// One binding's answers for one tenant.
pub struct CacheScope<'a> {
    answers: &'a Cache<AnswerKey, Answer, AnswerBytes>,
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

    pub fn remember(&self, series: SeriesId, answer: Answer) {
        self.answers.insert(self.key(series), answer);
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
