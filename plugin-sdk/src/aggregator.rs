use crate::{Config, PluginError, Sample, State};

/// A query-path aggregate, streamed like a SQL aggregate function: the
/// server calls `init` for each group, `update` with batches of the group's
/// samples (in no particular order), `merge` to combine partial states
/// (from other batches, shards or time ranges) and `finish` for the number.
///
/// Each of those is a separate call into a fresh sandbox: between calls the
/// state lives in the server as bytes ([`State::to_bytes`]). So `update` and
/// `merge` must not depend on the order samples arrive in.
pub trait Aggregator: Sized {
    /// The partial aggregate, serialised between calls.
    type State: State + Default;

    /// Reads the query's params; an `Err` is reported as an invalid config.
    fn new(config: &Config) -> Result<Self, String>;

    /// The state of an empty group.
    fn init(&self) -> Self::State {
        Self::State::default()
    }

    /// Folds samples into the state.
    fn update(&self, state: &mut Self::State, samples: &[Sample]);

    /// Folds another partial state into `state`.
    fn merge(&self, state: &mut Self::State, other: Self::State);

    /// The group's result. The server only finishes groups that have
    /// samples and refuses a non-finite result as a plugin fault; `NaN`
    /// is for the empty state (which native tests can reach).
    fn finish(&self, state: Self::State) -> f64;
}

fn build<A: Aggregator>(config: &Config) -> Result<A, PluginError> {
    A::new(config).map_err(PluginError::InvalidConfig)
}

fn decode<S: State>(bytes: &[u8]) -> Result<S, PluginError> {
    S::from_bytes(bytes).map_err(|e| PluginError::Failed(format!("aggregator state: {e}")))
}

pub(crate) fn init<A: Aggregator>(config: &Config) -> Result<Vec<u8>, PluginError> {
    Ok(build::<A>(config)?.init().to_bytes())
}

pub(crate) fn update<A: Aggregator>(
    config: &Config,
    state: &[u8],
    samples: &[Sample],
) -> Result<Vec<u8>, PluginError> {
    let aggregator = build::<A>(config)?;
    let mut state = decode::<A::State>(state)?;
    aggregator.update(&mut state, samples);
    Ok(state.to_bytes())
}

pub(crate) fn merge<A: Aggregator>(
    config: &Config,
    left: &[u8],
    right: &[u8],
) -> Result<Vec<u8>, PluginError> {
    let aggregator = build::<A>(config)?;
    let mut state = decode::<A::State>(left)?;
    aggregator.merge(&mut state, decode(right)?);
    Ok(state.to_bytes())
}

pub(crate) fn finish<A: Aggregator>(config: &Config, state: &[u8]) -> Result<f64, PluginError> {
    let aggregator = build::<A>(config)?;
    Ok(aggregator.finish(decode(state)?))
}
