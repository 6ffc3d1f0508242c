use crate::metric::is_reserved_key;
use crate::{Config, Dimension, Metric, PluginError};

/// A write-path enrichment: per metric, dimensions to add or overwrite.
///
/// Keys starting with `_` belong to the server; returning one is a plugin
/// fault (the SDK reports it before the server would refuse it).
pub trait Enricher: Sized {
    /// `true` if the additions depend only on the metric's name and
    /// dimensions (and the params), never on its value or timestamp: a
    /// lookup table. The server then asks once per distinct series of a
    /// batch, and from a series' second sighting remembers the additions for
    /// that tenant, plugin version and params.
    /// Such a plugin is always shown `value` NaN and `timestamp_ms` 0, by
    /// the server and by [`testing`](crate::testing) alike.
    const SERIES_ONLY: bool = false;

    /// Reads the params; an `Err` is reported as an invalid config.
    fn new(config: &Config) -> Result<Self, String>;

    /// The dimensions to add to `metric`; an existing key is overwritten.
    /// Return an empty `Vec` to leave the metric as it is.
    fn enrich(&self, metric: &Metric) -> Vec<Dimension<'_>>;

    /// Enriches a whole batch; override to share work across metrics. Must
    /// return exactly one list per metric, in order.
    fn enrich_batch(&self, metrics: &[Metric]) -> Result<Vec<Vec<Dimension<'_>>>, PluginError> {
        Ok(metrics.iter().map(|m| self.enrich(m)).collect())
    }
}

/// One `enrich` call as the server makes it. The additions may borrow
/// from the enricher (its lookup tables), so `read` sees them while the
/// enricher is alive: the export packs them from there without copying
/// each string first.
pub(crate) fn run_with<E: Enricher, R>(
    config: &Config,
    metrics: &[Metric<'_>],
    read: impl FnOnce(&[Vec<Dimension<'_>>]) -> R,
) -> Result<R, PluginError> {
    let enricher = E::new(config).map_err(PluginError::InvalidConfig)?;
    let additions = enricher.enrich_batch(metrics)?;
    if additions.len() != metrics.len() {
        return Err(PluginError::Failed(format!(
            "enrich_batch returned {} results for {} metrics",
            additions.len(),
            metrics.len()
        )));
    }
    if let Some(d) = additions.iter().flatten().find(|d| is_reserved_key(&d.key)) {
        return Err(PluginError::Failed(format!(
            "enricher tried to set reserved dimension '{}': keys starting with '_' belong to the server",
            d.key
        )));
    }
    Ok(read(&additions))
}

/// [`run_with`], keeping owned copies of the additions (native tests).
pub(crate) fn run<E: Enricher>(
    config: &Config,
    metrics: &[Metric<'_>],
) -> Result<Vec<Vec<Dimension<'static>>>, PluginError> {
    run_with::<E, _>(config, metrics, |additions| {
        additions
            .iter()
            .map(|dims| dims.iter().cloned().map(Dimension::into_owned).collect())
            .collect()
    })
}
