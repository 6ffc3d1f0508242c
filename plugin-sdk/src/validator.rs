use crate::{Config, Metric, PluginError, Verdict};

/// A write-path policy: accepts or rejects each metric of a batch.
///
/// The server builds the validator from the binding's params once per batch
/// (a fresh sandbox per call keeps tenants apart, so nothing survives
/// between batches), then asks for one verdict per metric.
pub trait Validator: Sized {
    /// `true` if a verdict depends only on the metric's name and dimensions
    /// (and the params), never on its value or timestamp: a naming or
    /// dimension policy. The server then asks once per distinct series of a
    /// batch, and from a series' second sighting remembers the verdict for
    /// that tenant, plugin version and params, so a series it remembers
    /// costs no call. To keep the promise checkable,
    /// such a plugin is always shown `value` NaN and `timestamp_ms` 0, by
    /// the server and by [`testing`](crate::testing) alike.
    const SERIES_ONLY: bool = false;

    /// Reads the params. An `Err` is reported as an invalid config, and the
    /// binding's failure policy decides what happens to the batch.
    fn new(config: &Config) -> Result<Self, String>;

    /// Decides about one metric. Reject reasons go to the client.
    fn validate(&self, metric: &Metric) -> Verdict;

    /// Decides about a whole batch; override to share work across metrics.
    /// Must return exactly one verdict per metric, in order.
    fn validate_batch(&self, metrics: &[Metric]) -> Result<Vec<Verdict>, PluginError> {
        Ok(metrics.iter().map(|m| self.validate(m)).collect())
    }
}

/// One `validate` call as the server makes it.
pub(crate) fn run<V: Validator>(
    config: &Config,
    metrics: &[Metric],
) -> Result<Vec<Verdict>, PluginError> {
    let validator = V::new(config).map_err(PluginError::InvalidConfig)?;
    let verdicts = validator.validate_batch(metrics)?;
    if verdicts.len() != metrics.len() {
        return Err(PluginError::Failed(format!(
            "validate_batch returned {} verdicts for {} metrics",
            verdicts.len(),
            metrics.len()
        )));
    }
    Ok(verdicts)
}
