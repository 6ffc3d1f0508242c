//! A write batch as a chain's plugins see it: packed for the ABI, and
//! hashed by series for the series cache. Each is built at most once and
//! shared by the chain's calls for as long as the metrics stay as they are.

use super::series_cache::SeriesId;
use super::wire::{Shown, WireBatch};
use crate::model::Metric;

#[derive(Default)]
pub struct ChainInput {
    packed: Option<(Shown, WireBatch)>,
    series: Option<Vec<SeriesId>>,
    /// Steps ask their plugins about every metric, without each plugin's
    /// remembered answers: the chain's own are kept instead
    /// (`chain_memory`).
    pub(crate) ask_every_plugin: bool,
    /// A step applied its binding's failure policy: the batch's outcome
    /// is not (only) the plugins' answer, and must not be remembered.
    pub(crate) failed: bool,
}

impl ChainInput {
    /// For metrics whose chain answer is not remembered: ask each plugin.
    pub(crate) fn asking_every_plugin() -> Self {
        Self {
            ask_every_plugin: true,
            ..Self::default()
        }
    }

    /// The batch as a plugin is `shown` it; repacked when the previous
    /// plugin was shown it otherwise (rare: a chain mixing series-only
    /// plugins, without the cache, with others).
    pub fn packed(&mut self, metrics: &[Metric], shown: Shown) -> &WireBatch {
        // A stale batch would attribute answers to the wrong metrics.
        if self
            .packed
            .as_ref()
            .is_some_and(|(_, p)| p.len() != metrics.len())
        {
            debug_assert!(false, "the packed batch does not match the metrics");
            self.packed = None;
        }
        if self.packed.as_ref().is_some_and(|(s, _)| *s != shown) {
            self.packed = None;
        }
        &self
            .packed
            .get_or_insert_with(|| (shown, WireBatch::shown(metrics, shown)))
            .1
    }

    pub fn series(&mut self, metrics: &[Metric]) -> &[SeriesId] {
        if self
            .series
            .as_ref()
            .is_some_and(|s| s.len() != metrics.len())
        {
            debug_assert!(false, "the series ids do not match the metrics");
            self.series = None;
        }
        self.series
            .get_or_insert_with(|| SeriesId::of_each(metrics))
    }

    /// A step changed the metrics (a rejection shifts positions, an
    /// enrichment changes dimensions): the next plugin must see them as
    /// they are now.
    pub fn metrics_changed(&mut self) {
        self.packed = None;
        self.series = None;
    }
}
