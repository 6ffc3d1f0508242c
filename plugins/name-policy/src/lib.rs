//! `name-policy`: enforces a tenant's naming and dimension conventions on
//! the write path. See README.md for the params and a worked example.

use luminate_plugin_sdk::{Config, Metric, Validator, Verdict, export_validator};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};

/// The params, as written in the binding.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Params {
    /// Every metric name must start with this.
    #[serde(default)]
    name_prefix: Option<String>,
    /// Every metric name must end with one of these (`_seconds`, `_bytes`).
    #[serde(default)]
    unit_suffixes: Vec<String>,
    /// Names must be lower snake case: `[a-z][a-z0-9_]*`.
    #[serde(default)]
    snake_case: bool,
    /// Dimensions every metric must carry.
    #[serde(default)]
    required_dimensions: Vec<String>,
    /// Dimensions no metric may carry (typically unbounded ones such as
    /// `user_id` or `request_id`, which blow up cardinality).
    #[serde(default)]
    forbidden_dimensions: Vec<String>,
    /// For these keys, the only values allowed.
    #[serde(default)]
    allowed_values: BTreeMap<String, Vec<String>>,
    /// The longest dimension value, in characters.
    #[serde(default)]
    max_value_length: Option<usize>,
    /// The most dimensions one metric may carry.
    #[serde(default)]
    max_dimensions: Option<usize>,
}

pub struct NamePolicy {
    name_prefix: Option<String>,
    unit_suffixes: Vec<String>,
    snake_case: bool,
    required: Vec<String>,
    forbidden: BTreeSet<String>,
    allowed: BTreeMap<String, BTreeSet<String>>,
    max_value_length: Option<usize>,
    max_dimensions: Option<usize>,
}

impl Validator for NamePolicy {
    /// Every rule reads only the name and the dimensions, so the server
    /// asks about series, not points, and remembers the verdicts.
    const SERIES_ONLY: bool = true;

    fn new(config: &Config) -> Result<Self, String> {
        let p: Params = config.deserialize()?;
        let keys = p
            .required_dimensions
            .iter()
            .chain(&p.forbidden_dimensions)
            .chain(p.allowed_values.keys());
        if let Some(key) = keys.clone().find(|k| k.starts_with('_')) {
            return Err(format!(
                "'{key}' is a reserved dimension: the server owns '_' keys and plugins never see them"
            ));
        }
        if let Some(key) = keys.clone().find(|k| k.is_empty()) {
            return Err(format!("dimension keys must not be empty, got '{key}'"));
        }
        if let Some(key) = p
            .required_dimensions
            .iter()
            .find(|k| p.forbidden_dimensions.contains(k))
        {
            return Err(format!("'{key}' is both required and forbidden"));
        }
        if p.unit_suffixes.iter().any(String::is_empty) {
            return Err("unitSuffixes must not contain an empty suffix".into());
        }
        if p.max_value_length == Some(0) {
            return Err("maxValueLength must be at least 1".into());
        }
        if let Some((key, _)) = p
            .allowed_values
            .iter()
            .find(|(_, values)| values.is_empty())
        {
            return Err(format!(
                "allowedValues.{key} is empty: no metric could pass"
            ));
        }
        Ok(Self {
            name_prefix: p.name_prefix.filter(|prefix| !prefix.is_empty()),
            unit_suffixes: p.unit_suffixes,
            snake_case: p.snake_case,
            required: p.required_dimensions,
            forbidden: p.forbidden_dimensions.into_iter().collect(),
            allowed: p
                .allowed_values
                .into_iter()
                .map(|(key, values)| (key, values.into_iter().collect()))
                .collect(),
            max_value_length: p.max_value_length,
            max_dimensions: p.max_dimensions,
        })
    }

    fn validate(&self, m: &Metric) -> Verdict {
        let problems = self.problems(m);
        if problems.is_empty() {
            Verdict::Accept
        } else {
            Verdict::reject(format!("{}: {}", m.name, problems.join("; ")))
        }
    }
}

impl NamePolicy {
    /// Every rule the metric breaks, so the client can fix them all at once.
    fn problems(&self, m: &Metric) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(prefix) = &self.name_prefix
            && !m.name.starts_with(prefix.as_str())
        {
            problems.push(format!("name must start with '{prefix}'"));
        }
        if !self.unit_suffixes.is_empty()
            && !self
                .unit_suffixes
                .iter()
                .any(|s| m.name.ends_with(s.as_str()))
        {
            problems.push(format!(
                "name must end with a unit suffix ({})",
                self.unit_suffixes.join(", ")
            ));
        }
        if self.snake_case && !is_snake_case(&m.name) {
            problems.push("name must be lower snake case ([a-z][a-z0-9_]*)".into());
        }
        if let Some(max) = self.max_dimensions
            && m.dimensions.len() > max
        {
            problems.push(format!(
                "{} dimensions, at most {max} allowed",
                m.dimensions.len()
            ));
        }
        for key in &self.required {
            if m.dimension(key).is_none() {
                problems.push(format!("missing required dimension '{key}'"));
            }
        }
        for (key, value) in m.dimensions() {
            if self.forbidden.contains(key) {
                problems.push(format!("dimension '{key}' is not allowed"));
            }
            if let Some(allowed) = self.allowed.get(key)
                && !allowed.contains(value)
            {
                problems.push(format!(
                    "{key}='{value}' is not one of {}",
                    allowed.iter().cloned().collect::<Vec<_>>().join(", ")
                ));
            }
            if let Some(max) = self.max_value_length {
                let chars = value.chars().count();
                if chars > max {
                    problems.push(format!(
                        "value of '{key}' is {chars} characters, at most {max} allowed"
                    ));
                }
            }
        }
        problems
    }
}

fn is_snake_case(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z'))
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
}

export_validator!(NamePolicy);

#[cfg(test)]
mod tests {
    use super::*;
    use luminate_plugin_sdk::{PluginError, testing};

    const POLICY: &str = r#"{
        "namePrefix": "shop_",
        "unitSuffixes": ["_seconds", "_bytes", "_total"],
        "snakeCase": true,
        "requiredDimensions": ["service", "env"],
        "forbiddenDimensions": ["user_id"],
        "allowedValues": {"env": ["prod", "staging"]},
        "maxValueLength": 8,
        "maxDimensions": 4
    }"#;

    fn good() -> Metric<'static> {
        Metric::new("shop_checkout_latency_seconds", 0.2)
            .with_dimension("service", "checkout")
            .with_dimension("env", "prod")
    }

    fn reason(params: &str, metric: Metric) -> Option<String> {
        let verdicts = testing::validate::<NamePolicy>(params, &[metric]).unwrap();
        verdicts[0].reason().map(str::to_owned)
    }

    #[test]
    fn accepts_a_metric_that_follows_every_rule() {
        assert_eq!(reason(POLICY, good()), None);
    }

    #[test]
    fn empty_params_accept_everything() {
        assert_eq!(reason("{}", Metric::new("Anything Goes", 1.0)), None);
    }

    #[test]
    fn rejects_a_name_without_the_prefix() {
        let m = Metric {
            name: "checkout_latency_seconds".into(),
            ..good()
        };
        assert_eq!(
            reason(POLICY, m).unwrap(),
            "checkout_latency_seconds: name must start with 'shop_'"
        );
    }

    #[test]
    fn rejects_a_name_without_a_unit_suffix() {
        let m = Metric {
            name: "shop_checkout_latency".into(),
            ..good()
        };
        let reason = reason(POLICY, m).unwrap();
        assert!(
            reason.contains("unit suffix (_seconds, _bytes, _total)"),
            "{reason}"
        );
    }

    #[test]
    fn rejects_a_name_that_is_not_snake_case() {
        let m = Metric {
            name: "shop_Latency_seconds".into(),
            ..good()
        };
        assert!(reason(POLICY, m).unwrap().contains("snake case"));
    }

    #[test]
    fn lists_every_missing_required_dimension() {
        let m = Metric::new("shop_requests_total", 1.0);
        let reason = reason(POLICY, m).unwrap();
        assert!(
            reason.contains("missing required dimension 'service'"),
            "{reason}"
        );
        assert!(
            reason.contains("missing required dimension 'env'"),
            "{reason}"
        );
    }

    #[test]
    fn rejects_a_value_outside_the_allowed_set() {
        let m = good().with_dimension("env", "dev");
        assert!(
            reason(POLICY, m)
                .unwrap()
                .contains("env='dev' is not one of prod, staging")
        );
    }

    #[test]
    fn rejects_a_forbidden_dimension() {
        let m = good().with_dimension("user_id", "42");
        assert!(
            reason(POLICY, m)
                .unwrap()
                .contains("dimension 'user_id' is not allowed")
        );
    }

    #[test]
    fn counts_value_length_in_characters_not_bytes() {
        // 8 characters, 16 bytes.
        let m = good().with_dimension("zone", "ééééé ab");
        assert_eq!(reason(POLICY, m), None);
        let m = good().with_dimension("zone", "ééééé abc");
        assert!(
            reason(POLICY, m)
                .unwrap()
                .contains("9 characters, at most 8")
        );
    }

    #[test]
    fn rejects_too_many_dimensions() {
        let m = good()
            .with_dimension("a", "1")
            .with_dimension("b", "2")
            .with_dimension("c", "3");
        assert!(
            reason(POLICY, m)
                .unwrap()
                .contains("5 dimensions, at most 4")
        );
    }

    #[test]
    fn readme_example_gives_the_documented_reason() {
        let m = Metric::new("checkout_latency", 0.3)
            .with_dimension("service", "checkout")
            .with_dimension("env", "dev")
            .with_dimension("user_id", "42");
        let readme = include_str!("../README.md");
        let reason = reason(POLICY, m).unwrap();
        assert!(readme.contains(&reason), "README must show: {reason}");
    }

    #[test]
    fn judges_each_metric_of_a_batch_on_its_own() {
        let batch = [good(), Metric::new("bad", 1.0), good()];
        let verdicts = testing::validate::<NamePolicy>(POLICY, &batch).unwrap();
        let accepted: Vec<bool> = verdicts.iter().map(Verdict::is_accept).collect();
        assert_eq!(accepted, vec![true, false, true]);
    }

    fn config_error(params: &str) -> String {
        match testing::validate::<NamePolicy>(params, &[]) {
            Err(PluginError::InvalidConfig(message)) => message,
            other => panic!("expected an invalid config, got {other:?}"),
        }
    }

    #[test]
    fn refuses_an_unknown_param() {
        assert!(config_error(r#"{"unitSufixes":["_total"]}"#).contains("unitSufixes"));
    }

    #[test]
    fn refuses_a_param_of_the_wrong_type_naming_it() {
        let message = config_error(r#"{"maxValueLength":"long"}"#);
        assert!(message.contains("maxValueLength"), "{message}");
    }

    #[test]
    fn refuses_reserved_keys_in_the_policy() {
        assert!(config_error(r#"{"requiredDimensions":["_tenant_id"]}"#).contains("reserved"));
    }

    #[test]
    fn refuses_a_key_both_required_and_forbidden() {
        let params = r#"{"requiredDimensions":["team"],"forbiddenDimensions":["team"]}"#;
        assert!(config_error(params).contains("both required and forbidden"));
    }

    #[test]
    fn refuses_an_empty_allowed_set() {
        assert!(config_error(r#"{"allowedValues":{"env":[]}}"#).contains("no metric could pass"));
    }
}
