//! Labels, tags and attributes → [`Dimensions`], the same way for every
//! protocol: keys mapped by [`names::dimension_key`], at most
//! `max_dimensions` kept (the rest counted, never stored, so a million
//! labels cost no memory), and two labels that name the same key (sent
//! twice, or equal after mapping) refused rather than one silently winning.

use compact_str::CompactString;

use super::ItemError;
use super::names;
use crate::model::{Dimensions, ValidationError};

/// Collects one item's dimensions.
pub struct DimensionSet {
    pairs: Vec<(CompactString, CompactString)>,
    count: usize,
    max: usize,
}

impl DimensionSet {
    pub fn new(max_dimensions: usize) -> Self {
        Self {
            pairs: Vec::new(),
            count: 0,
            max: max_dimensions,
        }
    }

    /// Adds `key` (mapped) = `value`.
    pub fn push(&mut self, key: &str, value: &str) {
        self.count += 1;
        if self.count <= self.max {
            self.pairs
                .push((names::dimension_key(key).as_ref().into(), value.into()));
        }
    }

    /// Adds `key` (mapped) = `value` unless a label already set that key:
    /// for dimensions that come from the sender's context (an OTLP
    /// resource) rather than the item itself, which wins.
    pub fn push_default(&mut self, key: &str, value: &str) {
        let key = names::dimension_key(key);
        if !self.pairs.iter().any(|(k, _)| k.as_str() == key.as_ref()) {
            self.count += 1;
            if self.count <= self.max {
                self.pairs.push((key.as_ref().into(), value.into()));
            }
        }
    }

    /// The dimensions, or why the item cannot be stored.
    pub fn finish(self) -> Result<Dimensions, ItemError> {
        if self.count > self.max {
            let e = ValidationError::TooManyDimensions {
                count: self.count,
                max: self.max,
            };
            return Err((e.code(), e.to_string()));
        }
        let sent = self.pairs.len();
        let mut keys: Vec<&str> = self.pairs.iter().map(|(k, _)| k.as_str()).collect();
        keys.sort_unstable();
        if let Some(pair) = keys.windows(2).find(|w| w[0] == w[1]) {
            return Err((
                "duplicate_dimension",
                format!(
                    "dimension {:?} is given twice (keys are compared after mapping, see docs/api.md)",
                    truncate(pair[0])
                ),
            ));
        }
        let dimensions = Dimensions::from_pairs(self.pairs);
        debug_assert_eq!(dimensions.len(), sent);
        Ok(dimensions)
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(pairs: &[(&str, &str)], max: usize) -> Result<Dimensions, &'static str> {
        let mut set = DimensionSet::new(max);
        for (k, v) in pairs {
            set.push(k, v);
        }
        set.finish().map_err(|(code, _)| code)
    }

    #[test]
    fn maps_keys_and_keeps_values() {
        let d = build(&[("host-name", "a"), ("service.name", "api")], 20).unwrap();
        assert_eq!(d.get("host_name"), Some("a"));
        assert_eq!(d.get("service.name"), Some("api"));
    }

    #[test]
    fn duplicates_and_too_many_are_refused() {
        assert_eq!(
            build(&[("a", "1"), ("a", "2")], 20).err(),
            Some("duplicate_dimension")
        );
        assert_eq!(
            build(&[("a-b", "1"), ("a_b", "2")], 20).err(),
            Some("duplicate_dimension")
        );
        assert_eq!(
            build(&[("a", "1"), ("b", "2"), ("c", "3")], 2).err(),
            Some("too_many_dimensions")
        );
    }
}
