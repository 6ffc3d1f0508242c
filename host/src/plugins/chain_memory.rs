//! A whole chain's answers, remembered per series.
//!
//! When every plugin of a tenant's chain is series-only, the chain as a
//! whole answers for a series, not a point: whether one of its validators
//! rejects it, and what its enrichers, in order, add to it. The write stage
//! then looks each metric's series up once for the whole chain rather than
//! once per plugin (at high cardinality each lookup is a few cache misses,
//! which cost more than the plugins' answers saved: docs/benchmarks.md), and
//! runs the chain's steps, asking every plugin, over one metric of each
//! series it does not know.
//!
//! Answers live in the one bounded series cache, under a key naming every
//! binding (its params) and plugin version of the chain in order, so any
//! change to the chain starts afresh; the doorkeeper admits them on their
//! second sighting, as any other. An outcome is remembered only when no
//! step applied its failure policy to the batch, and only as "accepted,
//! with these dimensions added" or "rejected by this validator": any other
//! rejection (an enrichment over the dimension limit) is asked about again.

use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::abi::PluginKind;
use super::bindings::Chain;
use super::chain_input::ChainInput;
use super::registry::LoadedPlugin;
use super::runtime::{AddingDimensions, PluginRuntime, codes};
use super::series_cache::{Answer, CacheScope, LOOK_AHEAD, SeriesId};
use crate::model::{Dimensions, Metric};
use crate::pipeline::Batch;

/// A chain whose answers can be remembered, as resolved for one batch.
pub struct ChainMemory<'a> {
    scope: CacheScope<'a>,
    /// Every binding and plugin version of the chain, hashed: its key.
    identity: u64,
    /// Validators first, in chain order.
    plugins: Vec<Arc<LoadedPlugin>>,
}

/// What the chain did to the metric of an unknown series it was asked
/// about.
enum Fate {
    /// Accepted: the metric, as the enrichers left it, is back in the batch.
    Kept,
    Rejected {
        code: &'static str,
        message: String,
        /// The validator that rejected it, if one did.
        validator: Option<usize>,
    },
}

/// Dimensions `enriched` has that `original` has not, or with another value:
/// what the chain's enrichers added or overwrote.
fn added(original: &Dimensions, enriched: &Dimensions) -> Vec<(String, String)> {
    enriched
        .iter()
        .filter(|&(key, value)| original.get(key) != Some(value))
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect()
}

/// `asked`'s outcome per metric: kept ones are moved back to their place in
/// `metrics` (`ask[i]` holds the place of `asked`'s metric `i`).
fn sort_out(
    asked: Batch,
    rejected_after_validator: &[usize],
    ask: &[(usize, SeriesId)],
    metrics: &mut [Metric],
) -> Vec<Fate> {
    let (indices, kept, rejected) = asked.into_parts();
    let mut fates: Vec<Option<Fate>> = Vec::new();
    fates.resize_with(ask.len(), || None);
    for (slot, metric) in indices.into_iter().zip(kept) {
        let slot = slot as usize;
        if let (Some(fate), Some(&(position, _))) = (fates.get_mut(slot), ask.get(slot)) {
            metrics[position] = metric;
            *fate = Some(Fate::Kept);
        }
    }
    for (nth, rejection) in rejected.into_iter().enumerate() {
        let validator = rejected_after_validator
            .iter()
            .position(|&count| nth < count)
            .filter(|_| rejection.code == codes::PLUGIN_REJECTED);
        if let Some(fate) = fates.get_mut(rejection.index) {
            *fate = Some(Fate::Rejected {
                code: rejection.code,
                message: rejection.message,
                validator,
            });
        }
    }
    fates
        .into_iter()
        .map(|fate| {
            // A batch keeps or rejects every metric it was given.
            debug_assert!(fate.is_some());
            fate.unwrap_or(Fate::Rejected {
                code: codes::PLUGIN_FAILED,
                message: "the plugin chain lost this metric".into(),
                validator: None,
            })
        })
        .collect()
}

impl PluginRuntime {
    /// `chain`'s remembered answers for `tenant`, when the cache is on and
    /// every plugin of the chain is installed, healthy, of the right kind
    /// and series-only. Otherwise each step runs on its own, and deals with
    /// its plugin's absence or failure.
    pub(super) fn chain_memory(
        &self,
        tenant: &crate::model::TenantId,
        chain: &Chain,
    ) -> Option<ChainMemory<'_>> {
        let steps = chain
            .validators
            .iter()
            .map(|binding| (binding, PluginKind::Validator))
            .chain(
                chain
                    .enrichers
                    .iter()
                    .map(|binding| (binding, PluginKind::Enricher)),
            );
        let mut plugins = Vec::with_capacity(chain.validators.len() + chain.enrichers.len());
        // Which step is a validator is part of the chain.
        let mut identity = (chain.validators.len() as u64).to_le_bytes().to_vec();
        for (binding, kind) in steps {
            let plugin = self.bound_plugin(tenant, binding, kind).ok()?;
            if !plugin.series_only {
                return None;
            }
            identity.extend(binding.id.to_le_bytes());
            identity.extend(plugin.id.to_le_bytes());
            plugins.push(plugin);
        }
        let identity = xxhash_rust::xxh3::xxh3_64(&identity);
        let scope = self.series_cache.chain_scope(tenant, identity)?;
        Some(ChainMemory {
            scope,
            identity,
            plugins,
        })
    }

    /// Runs `chain` over `batch`: remembered answers for the series it
    /// knows, the chain's steps over one metric of each series it does not.
    /// One pass hashes, looks up and applies, metric by metric, while the
    /// metric's strings are in the CPU's cache: a second pass over a batch
    /// of a thousand metrics found them evicted.
    pub(super) async fn run_remembered(
        &self,
        memory: ChainMemory<'_>,
        chain: &Chain,
        batch: &mut Batch,
    ) {
        let enrichers = chain
            .enrichers
            .iter()
            .map(|binding| binding.plugin.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let adding = AddingDimensions {
            plugin: &enrichers,
            max_dimensions: self.max_dimensions(),
        };
        // The steps count the rejections of the metrics they are asked
        // about; these are the rest.
        let mut rejected_by = vec![0u64; chain.validators.len()];
        let mut verdicts: Vec<Option<(&'static str, String)>> = Vec::new();
        let mut reject = |position: usize, verdict: (&'static str, String)| {
            if verdicts.len() <= position {
                verdicts.resize_with(position + 1, || None);
            }
            verdicts[position] = Some(verdict);
        };

        // Per unknown series, the first of its metrics: what the chain is
        // asked about. Per metric of an unknown series, its position and
        // its series' slot in `ask`.
        let mut ask: Vec<(usize, SeriesId)> = Vec::new();
        let mut slots: FxHashMap<SeriesId, usize> = FxHashMap::default();
        let mut waiting: Vec<(usize, usize)> = Vec::new();
        let mut buf = Vec::with_capacity(256);
        let metrics = batch.metrics_mut();
        // The series of the metrics from `position` on, up to LOOK_AHEAD of
        // them, each at its position modulo LOOK_AHEAD.
        let mut upcoming = [SeriesId::default(); LOOK_AHEAD];
        let mut hash_ahead = |position: usize, metric: &Metric, upcoming: &mut [SeriesId]| {
            let series = SeriesId::of(metric, &mut buf);
            memory.scope.prefetch(series);
            upcoming[position % LOOK_AHEAD] = series;
        };
        for (position, metric) in metrics.iter().enumerate().take(LOOK_AHEAD) {
            hash_ahead(position, metric, &mut upcoming);
        }
        for position in 0..metrics.len() {
            let series = upcoming[position % LOOK_AHEAD];
            if let Some(ahead) = metrics.get(position + LOOK_AHEAD) {
                hash_ahead(position + LOOK_AHEAD, ahead, &mut upcoming);
            }
            let metric = &mut metrics[position];
            let outcome = match memory.scope.get(series) {
                None => {
                    let slot = *slots.entry(series).or_insert_with(|| {
                        ask.push((position, series));
                        ask.len() - 1
                    });
                    waiting.push((position, slot));
                    continue;
                }
                // A chain's "accepted as it is": a single plugin's verdict
                // never sits under a chain's key.
                Some(Answer::Verdict(_)) => Ok(false),
                Some(Answer::Additions(pairs)) => adding.apply(metric, pairs.len(), || {
                    pairs.iter().map(|(key, value)| (&**key, &**value))
                }),
                Some(Answer::RejectedBy { validator, reason }) => {
                    if let Some(count) = rejected_by.get_mut(*validator) {
                        *count += 1;
                    }
                    Err((codes::PLUGIN_REJECTED, reason.to_string()))
                }
            };
            if let Err(verdict) = outcome {
                reject(position, verdict);
            }
        }
        let total = batch.metrics().len();
        for plugin in &memory.plugins {
            self.count_cache_use(plugin, total - waiting.len(), waiting.len());
        }

        if ask.is_empty() {
            // As a successful call would: see `answered_from_memory`.
            let bindings = chain.validators.iter().chain(chain.enrichers.iter());
            for (plugin, binding) in memory.plugins.iter().zip(bindings) {
                plugin.health.of(batch.tenant(), binding.id).note_working();
            }
            tokio::task::consume_budget().await;
        } else {
            // What a series is as it comes, kept only for answers the
            // doorkeeper admits: at high cardinality most series are seen
            // once, and copying them would cost more than the plugins do.
            let originals: Vec<Option<Dimensions>> = ask
                .iter()
                .map(|&(position, series)| {
                    memory
                        .scope
                        .admits(series)
                        .then(|| batch.metrics()[position].dimensions.clone())
                })
                .collect();
            // The metrics asked about move to the steps and back, uncopied.
            let metrics = batch.metrics_mut();
            let asked = ask
                .iter()
                .map(|&(position, _)| std::mem::replace(&mut metrics[position], Metric::empty()))
                .collect();
            let mut asked = Batch::new(batch.tenant().clone(), asked);
            let mut input = ChainInput::asking_every_plugin();
            let rejected_after_validator =
                super::stage::run_steps(self, chain, &mut asked, &mut input).await;
            let fates = sort_out(asked, &rejected_after_validator, &ask, batch.metrics_mut());

            // The steps looked their plugins up again: a version installed
            // meanwhile answered under this chain's key, so remember nothing
            // unless the chain is still the one the key names.
            let same_chain = || {
                self.chain_memory(batch.tenant(), chain)
                    .is_some_and(|now| now.identity == memory.identity)
            };
            if !input.failed && originals.iter().any(Option::is_some) && same_chain() {
                for ((fate, original), &(position, series)) in
                    fates.iter().zip(&originals).zip(&ask)
                {
                    let Some(original) = original else { continue };
                    let answer = match fate {
                        Fate::Kept => {
                            let added = added(original, &batch.metrics()[position].dimensions);
                            if added.is_empty() {
                                Answer::Verdict(None)
                            } else {
                                Answer::Additions(
                                    added
                                        .into_iter()
                                        .map(|(key, value)| (key.into(), value.into()))
                                        .collect(),
                                )
                            }
                        }
                        Fate::Rejected {
                            message,
                            validator: Some(validator),
                            ..
                        } => Answer::RejectedBy {
                            validator: *validator,
                            reason: message.as_str().into(),
                        },
                        Fate::Rejected { .. } => continue,
                    };
                    memory.scope.insert(series, answer);
                }
            }

            // The other metrics of each series asked about: what the chain
            // did to the first.
            let mut additions: Vec<Option<Vec<(String, String)>>> = Vec::new();
            additions.resize_with(ask.len(), || None);
            for (position, slot) in waiting {
                let first = ask[slot].0;
                if first == position {
                    // Kept: it is back in place. Otherwise a placeholder is,
                    // which must not be stored.
                    match fates.get(slot) {
                        Some(Fate::Kept) => {}
                        Some(Fate::Rejected { code, message, .. }) => {
                            reject(position, (*code, message.clone()));
                        }
                        None => reject(
                            position,
                            (
                                codes::PLUGIN_FAILED,
                                "the plugin chain lost this metric".into(),
                            ),
                        ),
                    }
                    continue;
                }
                let outcome = match fates.get(slot) {
                    Some(Fate::Kept) => {
                        let metrics = batch.metrics_mut();
                        let added = additions[slot].get_or_insert_with(|| {
                            added(&metrics[position].dimensions, &metrics[first].dimensions)
                        });
                        adding
                            .apply(&mut metrics[position], added.len(), || {
                                added
                                    .iter()
                                    .map(|(key, value)| (key.as_str(), value.as_str()))
                            })
                            .map(|_| ())
                    }
                    Some(Fate::Rejected {
                        code,
                        message,
                        validator,
                    }) => {
                        if let Some(count) = validator.and_then(|v| rejected_by.get_mut(v)) {
                            *count += 1;
                        }
                        Err((*code, message.clone()))
                    }
                    None => Ok(()),
                };
                if let Err(verdict) = outcome {
                    reject(position, verdict);
                }
            }
        }

        for (binding, count) in chain.validators.iter().zip(rejected_by) {
            if count > 0 {
                self.metrics
                    .rejected_metrics
                    .with_label_values(&[&binding.plugin, codes::PLUGIN_REJECTED])
                    .inc_by(count);
            }
        }
        if !verdicts.is_empty() {
            batch.reject_where(|position, _| verdicts.get_mut(position).and_then(Option::take));
        }
    }
}
