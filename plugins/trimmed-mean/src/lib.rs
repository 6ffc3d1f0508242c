//! `trimmed-mean`: the mean after dropping the lowest and highest `trim`
//! fraction of the values, robust to outliers (a 10 % trimmed mean ignores
//! the top and bottom tenth). See README.md.

use luminate_plugin_sdk::{Aggregator, Config, Sample, export_aggregator};

pub struct TrimmedMean {
    trim: f64,
}

impl Aggregator for TrimmedMean {
    /// Every value of the group: an exact trimmed mean needs them all.
    type State = Vec<f64>;

    fn new(config: &Config) -> Result<Self, String> {
        let trim = config.get_f64("trim")?.unwrap_or(0.1);
        if !(0.0..0.5).contains(&trim) {
            return Err(format!("trim must be in [0, 0.5), got {trim}"));
        }
        if let Some(key) = config.keys().find(|&k| k != "trim") {
            return Err(format!("unknown param '{key}'"));
        }
        Ok(Self { trim })
    }

    fn update(&self, values: &mut Vec<f64>, samples: &[Sample]) {
        values.extend(samples.iter().map(|s| s.value).filter(|v| !v.is_nan()));
    }

    fn merge(&self, values: &mut Vec<f64>, other: Vec<f64>) {
        values.extend(other);
    }

    fn finish(&self, mut values: Vec<f64>) -> f64 {
        let cut = (values.len() as f64 * self.trim).floor() as usize;
        let kept = values.len() - 2 * cut;
        if kept == 0 {
            return f64::NAN;
        }
        values.sort_unstable_by(f64::total_cmp);
        values[cut..cut + kept].iter().sum::<f64>() / kept as f64
    }
}

export_aggregator!(TrimmedMean);

#[cfg(test)]
mod tests {
    use super::*;
    use luminate_plugin_sdk::{PluginError, testing};

    fn samples(values: &[f64]) -> Vec<Sample> {
        values.iter().map(|&v| Sample::new(0, v)).collect()
    }

    #[test]
    fn drops_the_lowest_and_highest_fraction() {
        // 10 values, trim 0.1: drop 1000 and -50, mean of 1..=8.
        let s = samples(&[3.0, 1000.0, 1.0, 2.0, 4.0, -50.0, 5.0, 6.0, 7.0, 8.0]);
        let mean = testing::aggregate::<TrimmedMean>(r#"{"trim":0.1}"#, &[&s]).unwrap();
        assert_eq!(mean, 4.5);
    }

    #[test]
    fn trim_zero_is_the_plain_mean() {
        let s = samples(&[1.0, 2.0, 6.0]);
        assert_eq!(
            testing::aggregate::<TrimmedMean>(r#"{"trim":0}"#, &[&s]).unwrap(),
            3.0
        );
    }

    #[test]
    fn merging_partitions_gives_the_same_result_as_one_pass() {
        let s = samples(&[9.0, 1.0, 5.0, 3.0, 100.0, 2.0, 4.0, 0.0]);
        let one = testing::aggregate::<TrimmedMean>(r#"{"trim":0.25}"#, &[&s]).unwrap();
        let split =
            testing::aggregate::<TrimmedMean>(r#"{"trim":0.25}"#, &[&s[..3], &s[3..5], &s[5..]])
                .unwrap();
        assert_eq!(one, split);
        assert_eq!(one, (2.0 + 3.0 + 4.0 + 5.0) / 4.0);
    }

    #[test]
    fn an_empty_group_has_no_value() {
        assert!(
            testing::aggregate::<TrimmedMean>("{}", &[&[]])
                .unwrap()
                .is_nan()
        );
    }

    #[test]
    fn refuses_a_trim_of_half_or_more() {
        for params in [
            r#"{"trim":0.5}"#,
            r#"{"trim":-0.1}"#,
            r#"{"trim":"a"}"#,
            r#"{"trimm":0.1}"#,
        ] {
            let err = testing::aggregate::<TrimmedMean>(params, &[]).unwrap_err();
            assert!(
                matches!(err, PluginError::InvalidConfig(_)),
                "{params}: {err:?}"
            );
        }
    }
}
