//! A series' labels as PromQL sees them: the metric's dimensions plus
//! `__name__`, sorted by name, no empty values (an empty label is no
//! label in Prometheus).

use crate::model::Dimensions;

/// The label that holds the metric name.
pub const METRIC_NAME: &str = "__name__";

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Labels(Vec<(String, String)>);

impl Labels {
    /// The labels of `metric`'s series with `dimensions`.
    pub fn of_series(metric: &str, dimensions: &Dimensions) -> Self {
        let mut labels = Self(
            dimensions
                .iter()
                .filter(|(_, value)| !value.is_empty())
                .map(|(key, value)| (key.to_owned(), value.to_owned()))
                .collect(),
        );
        labels.set(METRIC_NAME, metric);
        labels
    }

    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut labels = Self::default();
        for (name, value) in pairs {
            labels.set(name, value);
        }
        labels
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.position(name).ok().map(|i| self.0[i].1.as_str())
    }

    /// The value of `name`, `""` when it is not set (as matchers read it).
    pub fn value(&self, name: &str) -> &str {
        self.get(name).unwrap_or("")
    }

    /// Sets `name` to `value`; an empty value removes the label.
    pub fn set(&mut self, name: &str, value: &str) {
        match (self.position(name), value.is_empty()) {
            (Ok(i), true) => {
                self.0.remove(i);
            }
            (Ok(i), false) => value.clone_into(&mut self.0[i].1),
            (Err(_), true) => {}
            (Err(i), false) => self.0.insert(i, (name.to_owned(), value.to_owned())),
        }
    }

    pub fn remove(&mut self, name: &str) {
        if let Ok(i) = self.position(name) {
            self.0.remove(i);
        }
    }

    /// Without `__name__`: what functions and arithmetic return.
    pub fn without_name(mut self) -> Self {
        self.remove(METRIC_NAME);
        self
    }

    /// Only the labels in `names` (`by`, `on`).
    pub fn keep(&self, names: &[String]) -> Self {
        Self(
            self.0
                .iter()
                .filter(|(name, _)| names.iter().any(|n| n == name))
                .cloned()
                .collect(),
        )
    }

    /// All but the labels in `names` and `__name__` (`without`, `ignoring`).
    pub fn drop(&self, names: &[String]) -> Self {
        Self(
            self.0
                .iter()
                .filter(|(name, _)| name != METRIC_NAME && !names.iter().any(|n| n == name))
                .cloned()
                .collect(),
        )
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn position(&self, name: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(n, _)| n.as_str().cmp(name))
    }
}

impl std::fmt::Display for Labels {
    /// `{a="1", b="2"}`, as Prometheus prints label sets in errors.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("{")?;
        for (i, (name, value)) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{name}={value:?}")?;
        }
        f.write_str("}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_labels_carry_the_name_and_skip_empty_values() {
        let dims = Dimensions::from_pairs([("host", "a"), ("empty", ""), ("zone", "z")]);
        let labels = Labels::of_series("up", &dims);
        let pairs: Vec<_> = labels.iter().collect();
        assert_eq!(pairs, [("__name__", "up"), ("host", "a"), ("zone", "z")]);
        assert_eq!(labels.value("missing"), "");
    }

    #[test]
    fn keep_and_drop_select_labels_and_drop_removes_the_name() {
        let labels = Labels::from_pairs([("__name__", "m"), ("a", "1"), ("b", "2")]);
        assert_eq!(
            labels.keep(&["a".into(), "__name__".into()]),
            Labels::from_pairs([("__name__", "m"), ("a", "1")])
        );
        assert_eq!(labels.drop(&["a".into()]), Labels::from_pairs([("b", "2")]));
        let mut set = labels.clone();
        set.set("a", "");
        set.set("c", "3");
        assert_eq!(set.to_string(), r#"{__name__="m", b="2", c="3"}"#);
    }
}
