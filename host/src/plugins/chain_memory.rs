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

use super::abi::PluginKind;
use super::bindings::Chain;
use super::chain_input::ChainInput;
use super::registry::LoadedPlugin;
use super::runtime::{AddingDimensions, PluginRuntime, codes};
use super::series_cache::{Answer, CacheScope, Known, SeriesId};
use crate::model::Dimensions;
use crate::pipeline::{Batch, Rejection};

/// A chain whose answers can be remembered, as resolved for one batch.
pub struct ChainMemory<'a> {
    scope: CacheScope<'a>,
    /// Validators first, in chain order.
    plugins: Vec<Arc<LoadedPlugin>>,
}

/// What the chain did to one metric it was asked about.
enum Fate {
    /// Accepted, with the dimensions its enrichers added or overwrote.
    Kept(Vec<(String, String)>),
    Rejected {
        code: &'static str,
        message: String,
        /// The validator that rejected it, if one did.
        validator: Option<usize>,
    },
}

impl Fate {
    /// Sorts `asked`'s outcome by metric: each was kept (its dimensions
    /// compared with the metric as it came, `original(i)`) or rejected.
    fn of_each<'d>(
        asked: Batch,
        rejected_after_validator: &[usize],
        original: impl Fn(usize) -> &'d Dimensions,
    ) -> Vec<Fate> {
        let (indices, kept, rejected) = asked.into_parts();
        let mut fates: Vec<Option<Fate>> = Vec::new();
        fates.resize_with(kept.len() + rejected.len(), || None);
        for (index, metric) in indices.into_iter().zip(kept) {
            let index = index as usize;
            let before = original(index);
            let added = metric
                .dimensions
                .iter()
                .filter(|&(key, value)| before.get(key) != Some(value))
                .map(|(key, value)| (key.to_owned(), value.to_owned()))
                .collect();
            fates[index] = Some(Fate::Kept(added));
        }
        for (
            nth,
            Rejection {
                index,
                code,
                message,
            },
        ) in rejected.into_iter().enumerate()
        {
            let validator = rejected_after_validator
                .iter()
                .position(|&count| nth < count)
                .filter(|_| code == codes::PLUGIN_REJECTED);
            fates[index] = Some(Fate::Rejected {
                code,
                message,
                validator,
            });
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

    fn answer(&self) -> Option<Answer> {
        match self {
            Fate::Kept(added) if added.is_empty() => Some(Answer::Verdict(None)),
            Fate::Kept(added) => Some(Answer::Additions(
                added
                    .iter()
                    .map(|(key, value)| (key.as_str().into(), value.as_str().into()))
                    .collect(),
            )),
            Fate::Rejected {
                message,
                validator: Some(validator),
                ..
            } => Some(Answer::RejectedBy {
                validator: *validator,
                reason: message.as_str().into(),
            }),
            Fate::Rejected { .. } => None,
        }
    }
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
        let scope = self
            .series_cache
            .chain_scope(tenant, xxhash_rust::xxh3::xxh3_64(&identity))?;
        Some(ChainMemory { scope, plugins })
    }

    /// Runs `chain` over `batch`: remembered answers for the series it
    /// knows, the chain's steps over one metric of each series it does not.
    pub(super) async fn run_remembered(
        &self,
        memory: ChainMemory<'_>,
        chain: &Chain,
        batch: &mut Batch,
    ) {
        let series = SeriesId::of_each(batch.metrics());
        let lookup = memory.scope.lookup(&series);
        for plugin in &memory.plugins {
            self.count_cache_use(plugin, &lookup);
        }
        let mut fates = Vec::new();
        if lookup.ask.is_empty() {
            // As a successful call would: see `answered_from_memory`.
            for plugin in &memory.plugins {
                plugin.health.note_working();
            }
            tokio::task::consume_budget().await;
        } else {
            let asked = lookup
                .ask
                .iter()
                .map(|&position| batch.metrics()[position].clone())
                .collect();
            let mut asked = Batch::new(batch.tenant().clone(), asked);
            let mut input = ChainInput::asking_every_plugin();
            let rejected_after_validator =
                super::stage::run_steps(self, chain, &mut asked, &mut input).await;
            fates = Fate::of_each(asked, &rejected_after_validator, |slot| {
                &batch.metrics()[lookup.ask[slot]].dimensions
            });
            if !input.failed {
                for (fate, &position) in fates.iter().zip(&lookup.ask) {
                    if let Some(answer) = fate.answer() {
                        memory.scope.remember_with(series[position], || answer);
                    }
                }
            }
        }

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
        // The steps counted the rejections of the metrics they were asked
        // about; these are the rest.
        let mut rejected_by = vec![0u64; chain.validators.len()];
        let mut verdicts = Vec::with_capacity(batch.metrics().len());
        for (position, (metric, known)) in batch
            .metrics_mut()
            .iter_mut()
            .zip(lookup.per_metric)
            .enumerate()
        {
            let verdict = match known {
                // A chain's "accepted as it is": a single plugin's verdict
                // never sits under a chain's key.
                Known::Remembered(Answer::Verdict(_)) => None,
                Known::Remembered(Answer::Additions(pairs)) => adding
                    .apply(metric, pairs.len(), || {
                        pairs.iter().map(|(key, value)| (&**key, &**value))
                    })
                    .err(),
                Known::Remembered(Answer::RejectedBy { validator, reason }) => {
                    if let Some(count) = rejected_by.get_mut(validator) {
                        *count += 1;
                    }
                    Some((codes::PLUGIN_REJECTED, reason.to_string()))
                }
                Known::Asked(slot) => match fates.get(slot) {
                    Some(Fate::Kept(added)) => adding
                        .apply(metric, added.len(), || {
                            added
                                .iter()
                                .map(|(key, value)| (key.as_str(), value.as_str()))
                        })
                        .err(),
                    Some(Fate::Rejected {
                        code,
                        message,
                        validator,
                    }) => {
                        if lookup.ask[slot] != position
                            && let Some(count) = validator.and_then(|v| rejected_by.get_mut(v))
                        {
                            *count += 1;
                        }
                        Some((*code, message.clone()))
                    }
                    None => None,
                },
            };
            verdicts.push(verdict);
        }
        for (binding, count) in chain.validators.iter().zip(rejected_by) {
            if count > 0 {
                self.metrics
                    .rejected_metrics
                    .with_label_values(&[&binding.plugin, codes::PLUGIN_REJECTED])
                    .inc_by(count);
            }
        }
        if verdicts.iter().any(Option::is_some) {
            batch.reject_where(|position, _| verdicts.get_mut(position).and_then(Option::take));
        }
    }
}
