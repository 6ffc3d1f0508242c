//! `apdex`: the Apdex score of latencies against a target threshold T.
//! Satisfied: value ≤ T; tolerating: T < value ≤ 4T; frustrated: the rest.
//! Score = (satisfied + tolerating / 2) / total, from 0 (all frustrated)
//! to 1 (all satisfied). See README.md.

use luminate_plugin_sdk::state::StateError;
use luminate_plugin_sdk::{Aggregator, Config, Sample, State, export_aggregator};

pub struct Apdex {
    satisfied_up_to: f64,
    tolerating_up_to: f64,
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Counts {
    satisfied: u64,
    tolerating: u64,
    total: u64,
}

impl State for Counts {
    fn encode(&self, out: &mut Vec<u8>) {
        (self.satisfied, self.tolerating, self.total).encode(out);
    }
    fn decode(input: &mut &[u8]) -> Result<Self, StateError> {
        let (satisfied, tolerating, total) = State::decode(input)?;
        Ok(Self {
            satisfied,
            tolerating,
            total,
        })
    }
}

impl Aggregator for Apdex {
    type State = Counts;

    fn new(config: &Config) -> Result<Self, String> {
        let threshold = config
            .get_f64("threshold")?
            .ok_or("missing param 'threshold': the target T, in the unit of the values")?;
        if threshold <= 0.0 {
            return Err(format!("threshold must be positive, got {threshold}"));
        }
        let factor = config.get_f64("toleratingFactor")?.unwrap_or(4.0);
        if factor < 1.0 {
            return Err(format!("toleratingFactor must be at least 1, got {factor}"));
        }
        for key in config.keys() {
            if key != "threshold" && key != "toleratingFactor" {
                return Err(format!("unknown param '{key}'"));
            }
        }
        Ok(Self {
            satisfied_up_to: threshold,
            tolerating_up_to: threshold * factor,
        })
    }

    fn update(&self, counts: &mut Counts, samples: &[Sample]) {
        // A NaN is no measurement at all: it is not counted.
        for value in samples.iter().map(|s| s.value).filter(|v| !v.is_nan()) {
            counts.total += 1;
            if value <= self.satisfied_up_to {
                counts.satisfied += 1;
            } else if value <= self.tolerating_up_to {
                counts.tolerating += 1;
            }
        }
    }

    fn merge(&self, counts: &mut Counts, other: Counts) {
        counts.satisfied += other.satisfied;
        counts.tolerating += other.tolerating;
        counts.total += other.total;
    }

    fn finish(&self, counts: Counts) -> f64 {
        if counts.total == 0 {
            return f64::NAN;
        }
        (counts.satisfied as f64 + counts.tolerating as f64 / 2.0) / counts.total as f64
    }
}

export_aggregator!(Apdex);

#[cfg(test)]
mod tests {
    use super::*;
    use luminate_plugin_sdk::{PluginError, testing};

    fn samples(values: &[f64]) -> Vec<Sample> {
        values
            .iter()
            .enumerate()
            .map(|(i, &v)| Sample::new(i as i64 * 1000, v))
            .collect()
    }

    #[test]
    fn scores_satisfied_tolerating_and_frustrated() {
        // T = 0.5: 0.1 and 0.5 satisfied, 0.6 and 2.0 tolerating, 2.1 frustrated.
        let s = samples(&[0.1, 0.5, 0.6, 2.0, 2.1]);
        let score = testing::aggregate::<Apdex>(r#"{"threshold":0.5}"#, &[&s]).unwrap();
        assert_eq!(score, (2.0 + 2.0 / 2.0) / 5.0);
    }

    #[test]
    fn merging_partitions_gives_the_same_score_as_one_pass() {
        let all = samples(&[0.1, 0.2, 0.9, 1.5, 3.0, 0.3, 0.7]);
        let one = testing::aggregate::<Apdex>(r#"{"threshold":0.4}"#, &[&all]).unwrap();
        let split =
            testing::aggregate::<Apdex>(r#"{"threshold":0.4}"#, &[&all[..2], &[], &all[2..]])
                .unwrap();
        assert_eq!(one, split);
        // T = 0.4, 4T = 1.6: satisfied 0.1 0.2 0.3, tolerating 0.9 1.5 0.7, frustrated 3.0.
        assert_eq!(one, (3.0 + 3.0 / 2.0) / 7.0);
    }

    #[test]
    fn a_custom_tolerating_factor_moves_the_frustrated_bound() {
        let s = samples(&[1.0, 2.5]);
        let params = r#"{"threshold":1,"toleratingFactor":2}"#;
        assert_eq!(testing::aggregate::<Apdex>(params, &[&s]).unwrap(), 0.5);
    }

    #[test]
    fn an_empty_group_has_no_score() {
        assert!(
            testing::aggregate::<Apdex>(r#"{"threshold":1}"#, &[&[]])
                .unwrap()
                .is_nan()
        );
    }

    #[test]
    fn nan_values_are_not_counted() {
        let s = samples(&[0.1, f64::NAN]);
        assert_eq!(
            testing::aggregate::<Apdex>(r#"{"threshold":1}"#, &[&s]).unwrap(),
            1.0
        );
    }

    #[test]
    fn refuses_a_missing_or_non_positive_threshold() {
        for params in [
            r#"{}"#,
            r#"{"threshold":0}"#,
            r#"{"threshold":"fast"}"#,
            r#"{"treshold":1}"#,
        ] {
            let err = testing::aggregate::<Apdex>(params, &[]).unwrap_err();
            assert!(
                matches!(err, PluginError::InvalidConfig(_)),
                "{params}: {err:?}"
            );
        }
    }
}
