//! Native test helpers: run your plugin exactly as the server's calls do
//! (params → `new` → batch, with the SDK's checks), without wasm.
//!
//! ```
//! use luminate_plugin_sdk::{testing, Config, Metric, Validator, Verdict};
//!
//! struct NoNegatives;
//! impl Validator for NoNegatives {
//!     fn new(_: &Config) -> Result<Self, String> { Ok(Self) }
//!     fn validate(&self, m: &Metric) -> Verdict {
//!         if m.value < 0.0 { Verdict::reject("negative") } else { Verdict::Accept }
//!     }
//! }
//!
//! let verdicts = testing::validate::<NoNegatives>("{}", &[Metric::new("x", -1.0)]).unwrap();
//! assert_eq!(verdicts, vec![Verdict::reject("negative")]);
//! ```

use crate::{
    Aggregator, Config, Dimension, Enricher, Metric, PluginError, Sample, Validator, Verdict,
};

fn config(params_json: &str) -> Result<Config, PluginError> {
    Config::from_json(params_json).map_err(PluginError::InvalidConfig)
}

/// A plugin that declares `SERIES_ONLY` is shown its metrics as the server
/// shows them: value NaN, timestamp 0. A plugin that breaks its promise
/// then fails its own tests instead of misbehaving in production.
fn as_shown<'a>(series_only: bool, metrics: &[Metric<'a>]) -> Vec<Metric<'a>> {
    metrics
        .iter()
        .map(|m| {
            let mut shown = m.clone();
            if series_only {
                shown.value = f64::NAN;
                shown.timestamp_ms = 0;
            }
            shown
        })
        .collect()
}

/// One `validate` call with these params (JSON text).
pub fn validate<V: Validator>(
    params_json: &str,
    metrics: &[Metric],
) -> Result<Vec<Verdict>, PluginError> {
    let shown = as_shown(V::SERIES_ONLY, metrics);
    crate::validator::run::<V>(&config(params_json)?, &shown)
}

/// One `enrich` call with these params (JSON text).
pub fn enrich<E: Enricher>(
    params_json: &str,
    metrics: &[Metric<'_>],
) -> Result<Vec<Vec<Dimension<'static>>>, PluginError> {
    let shown = as_shown(E::SERIES_ONLY, metrics);
    crate::enricher::run::<E>(&config(params_json)?, &shown)
}

/// One `enrich` call, applied: the metrics as the server would store them
/// (added keys inserted, existing keys overwritten, still sorted).
pub fn enrich_and_apply<'a, E: Enricher>(
    params_json: &str,
    metrics: &[Metric<'a>],
) -> Result<Vec<Metric<'a>>, PluginError> {
    let additions = enrich::<E>(params_json, metrics)?;
    Ok(metrics
        .iter()
        .zip(additions)
        .map(|(metric, dims)| {
            dims.into_iter()
                .fold(metric.clone(), |m, d| m.with_dimension(d.key, d.value))
        })
        .collect())
}

/// A whole aggregation as the server runs it: each partition is folded
/// into its own state (`init` + `update`), the states are merged left to
/// right, then finished. Every step goes through the state's bytes, as it
/// does between the server's calls, so a state that does not round-trip
/// fails here.
pub fn aggregate<A: Aggregator>(
    params_json: &str,
    partitions: &[&[Sample]],
) -> Result<f64, PluginError> {
    let config = config(params_json)?;
    let mut merged: Option<Vec<u8>> = None;
    for samples in partitions {
        let state = crate::aggregator::init::<A>(&config)?;
        let state = crate::aggregator::update::<A>(&config, &state, samples)?;
        merged = Some(match merged {
            None => state,
            Some(left) => crate::aggregator::merge::<A>(&config, &left, &state)?,
        });
    }
    let state = match merged {
        Some(state) => state,
        None => crate::aggregator::init::<A>(&config)?,
    };
    crate::aggregator::finish::<A>(&config, &state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::State;

    struct RequireTeam;
    impl Validator for RequireTeam {
        fn new(config: &Config) -> Result<Self, String> {
            match config.get_str("mode")? {
                Some("strict") | None => Ok(Self),
                Some(other) => Err(format!("unknown mode '{other}'")),
            }
        }
        fn validate(&self, m: &Metric) -> Verdict {
            match m.dimension("team") {
                Some(_) => Verdict::Accept,
                None => Verdict::reject("needs team"),
            }
        }
    }

    /// Declares `SERIES_ONLY`, then reports the value and timestamp it saw.
    struct ShowsWhatItSees;
    impl Validator for ShowsWhatItSees {
        const SERIES_ONLY: bool = true;
        fn new(_: &Config) -> Result<Self, String> {
            Ok(Self)
        }
        fn validate(&self, m: &Metric) -> Verdict {
            Verdict::reject(format!("{} at {}", m.value, m.timestamp_ms))
        }
    }

    #[test]
    fn a_series_only_plugin_is_shown_no_value_or_timestamp() {
        let metrics = [Metric::new("x", -1.0).at(5), Metric::new("y", 2.0)];
        let verdicts = validate::<ShowsWhatItSees>("{}", &metrics).unwrap();
        assert_eq!(verdicts, vec![Verdict::reject("NaN at 0"); 2]);
    }

    struct Shortchanged;
    impl Validator for Shortchanged {
        fn new(_: &Config) -> Result<Self, String> {
            Ok(Self)
        }
        fn validate(&self, _: &Metric) -> Verdict {
            Verdict::Accept
        }
        fn validate_batch(&self, _: &[Metric]) -> Result<Vec<Verdict>, PluginError> {
            Ok(vec![Verdict::Accept])
        }
    }

    struct SetsTenant;
    impl Enricher for SetsTenant {
        fn new(_: &Config) -> Result<Self, String> {
            Ok(Self)
        }
        fn enrich(&self, _: &Metric) -> Vec<Dimension<'_>> {
            vec![
                Dimension::new("team", "core"),
                Dimension::new("_tenant_id", "other"),
            ]
        }
    }

    struct AddsRegion;
    impl Enricher for AddsRegion {
        fn new(_: &Config) -> Result<Self, String> {
            Ok(Self)
        }
        fn enrich(&self, _: &Metric) -> Vec<Dimension<'_>> {
            vec![Dimension::new("region", "eu")]
        }
    }

    #[derive(Default)]
    struct MeanState(f64, u64);
    impl State for MeanState {
        fn encode(&self, out: &mut Vec<u8>) {
            (self.0, self.1).encode(out);
        }
        fn decode(input: &mut &[u8]) -> Result<Self, crate::state::StateError> {
            let (sum, n) = <(f64, u64)>::decode(input)?;
            Ok(Self(sum, n))
        }
    }
    struct Mean;
    impl Aggregator for Mean {
        type State = MeanState;
        fn new(_: &Config) -> Result<Self, String> {
            Ok(Self)
        }
        fn update(&self, state: &mut MeanState, samples: &[Sample]) {
            for s in samples {
                state.0 += s.value;
                state.1 += 1;
            }
        }
        fn merge(&self, state: &mut MeanState, other: MeanState) {
            state.0 += other.0;
            state.1 += other.1;
        }
        fn finish(&self, state: MeanState) -> f64 {
            if state.1 == 0 {
                f64::NAN
            } else {
                state.0 / state.1 as f64
            }
        }
    }

    #[test]
    fn validate_returns_one_verdict_per_metric_in_order() {
        let metrics = [
            Metric::new("a", 1.0).with_dimension("team", "x"),
            Metric::new("b", 1.0),
        ];
        let verdicts = validate::<RequireTeam>("{}", &metrics).unwrap();
        assert_eq!(
            verdicts,
            vec![Verdict::Accept, Verdict::reject("needs team")]
        );
    }

    #[test]
    fn a_config_error_from_new_is_an_invalid_config() {
        let err = validate::<RequireTeam>(r#"{"mode":"lax"}"#, &[]).unwrap_err();
        assert_eq!(err, PluginError::InvalidConfig("unknown mode 'lax'".into()));
        let err = validate::<RequireTeam>(r#"{"mode":1}"#, &[]).unwrap_err();
        assert!(matches!(err, PluginError::InvalidConfig(m) if m.contains("'mode'")));
    }

    #[test]
    fn a_batch_override_with_the_wrong_count_is_a_plugin_failure() {
        let metrics = [Metric::new("a", 1.0), Metric::new("b", 1.0)];
        let err = validate::<Shortchanged>("{}", &metrics).unwrap_err();
        assert_eq!(
            err,
            PluginError::Failed("validate_batch returned 1 verdicts for 2 metrics".into())
        );
    }

    #[test]
    fn an_enricher_setting_a_reserved_key_is_a_plugin_failure() {
        let err = enrich::<SetsTenant>("{}", &[Metric::new("a", 1.0)]).unwrap_err();
        assert!(matches!(err, PluginError::Failed(m) if m.contains("'_tenant_id'")));
    }

    #[test]
    fn enrich_and_apply_adds_and_overwrites() {
        let metrics = [Metric::new("a", 1.0)
            .with_dimension("region", "us")
            .with_dimension("host", "h")];
        let out = enrich_and_apply::<AddsRegion>("{}", &metrics).unwrap();
        assert_eq!(out[0].dimension("region"), Some("eu"));
        assert_eq!(out[0].dimension("host"), Some("h"));
    }

    #[test]
    fn aggregate_merges_partitions_through_bytes() {
        let a = [Sample::new(0, 1.0), Sample::new(1, 2.0)];
        let b = [Sample::new(2, 6.0)];
        assert_eq!(aggregate::<Mean>("{}", &[&a, &b]).unwrap(), 3.0);
        assert!(aggregate::<Mean>("{}", &[]).unwrap().is_nan());
    }

    #[test]
    fn a_corrupt_state_is_a_plugin_failure() {
        let config = Config::empty();
        let err = crate::aggregator::finish::<Mean>(&config, &[1, 2, 3]).unwrap_err();
        assert!(matches!(err, PluginError::Failed(m) if m.contains("aggregator state")));
    }
}
