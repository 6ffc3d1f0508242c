/// Dimension keys starting with this prefix belong to the server.
pub const RESERVED_PREFIX: char = '_';
/// The reserved dimension that carries a metric's tenant. Storage keys data by
/// tenant; this dimension is how queries and results see it.
pub const TENANT_DIMENSION: &str = "_tenant_id";

use compact_str::CompactString;

/// A metric's dimensions, kept sorted by key with unique keys, so that the
/// same set of dimensions always has the same canonical form (the series key).
/// Keys and values of up to 24 bytes are stored inline.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Dimensions(Vec<(CompactString, CompactString)>);

impl Dimensions {
    pub fn new() -> Self {
        Self(Vec::new())
    }

    /// Builds from pairs in any order; a later duplicate key wins. Sorts
    /// and deduplicates in place: given a `Vec` (as the write path's
    /// decoder does), its allocation becomes the dimensions', spare
    /// capacity included, so an enricher's additions usually fit without
    /// a reallocation.
    pub fn from_pairs<K, V>(pairs: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<CompactString>,
        V: Into<CompactString>,
    {
        // A sort of the few pairs a metric has is much cheaper than building
        // a BTreeMap; this runs once per ingested metric. Pairs of the same
        // size as ours collect in place.
        let mut pairs: Vec<(CompactString, CompactString)> = pairs
            .into_iter()
            .map(|(key, value)| (key.into(), value.into()))
            .collect();
        // Stable, so among equal keys the last given is last.
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        // `dedup_by` keeps the first of a run and hands it the later ones:
        // move each later value into it, so the last given wins.
        pairs.dedup_by(|later, kept| {
            if later.0 == kept.0 {
                std::mem::swap(&mut later.1, &mut kept.1);
                true
            } else {
                false
            }
        });
        Self(pairs)
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(k, _)| k.as_str().cmp(key))
            .ok()
            .map(|i| self.0[i].1.as_str())
    }

    /// Inserts or overwrites, keeping the order canonical.
    pub fn insert(&mut self, key: impl Into<CompactString>, value: impl Into<CompactString>) {
        let (key, value) = (key.into(), value.into());
        // An enricher's key often sorts after every key the metric has
        // (`team` after `service`): one comparison instead of a search.
        if self.0.last().is_none_or(|(last, _)| *last < key) {
            self.0.push((key, value));
            return;
        }
        match self
            .0
            .binary_search_by(|(k, _)| k.as_str().cmp(key.as_str()))
        {
            Ok(i) => self.0[i].1 = value,
            Err(i) => self.0.insert(i, (key, value)),
        }
    }

    pub fn remove(&mut self, key: &str) -> Option<String> {
        self.0
            .binary_search_by(|(k, _)| k.as_str().cmp(key))
            .ok()
            .map(|i| self.0.remove(i).1.into_string())
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_pairs(self) -> Vec<(String, String)> {
        self.0
            .into_iter()
            .map(|(key, value)| (key.into_string(), value.into_string()))
            .collect()
    }
}

impl<K: Into<CompactString>, V: Into<CompactString>> FromIterator<(K, V)> for Dimensions {
    fn from_iter<T: IntoIterator<Item = (K, V)>>(iter: T) -> Self {
        Self::from_pairs(iter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_of_insertion_does_not_change_identity() {
        let a = Dimensions::from_pairs([("b", "2"), ("a", "1")]);
        let mut b = Dimensions::new();
        b.insert("a", "1");
        b.insert("b", "2");
        assert_eq!(a, b);
        assert_eq!(a.get("b"), Some("2"));
        assert_eq!(a.get("c"), None);
    }

    #[test]
    fn a_later_duplicate_key_wins() {
        let d = Dimensions::from_pairs([("k", "1"), ("a", "x"), ("k", "2")]);
        assert_eq!(d.len(), 2);
        assert_eq!(d.get("k"), Some("2"));
        let d =
            Dimensions::from_pairs([("k", "1"), ("k", "2"), ("a", "x"), ("k", "3"), ("z", "y")]);
        let pairs: Vec<_> = d.iter().collect();
        assert_eq!(pairs, [("a", "x"), ("k", "3"), ("z", "y")]);
    }

    #[test]
    fn the_given_vec_becomes_the_dimensions_with_its_spare_room() {
        // As most callers give them: `String`s, which become inline
        // strings in the same buffer.
        let mut pairs: Vec<(String, String)> = Vec::with_capacity(8);
        pairs.extend([
            ("b".to_owned(), "2".to_owned()),
            ("a".to_owned(), "1".to_owned()),
        ]);
        let buffer = pairs.as_ptr().cast::<(CompactString, CompactString)>();
        let mut d = Dimensions::from_pairs(pairs);
        d.insert("c", "3");
        assert_eq!(
            d.0.as_ptr(),
            buffer,
            "no second allocation, no reallocation"
        );
        assert_eq!(
            d.iter().collect::<Vec<_>>(),
            [("a", "1"), ("b", "2"), ("c", "3")]
        );
        d.insert("c", "4");
        d.insert("0", "x");
        d.insert("bb", "y");
        let pairs: Vec<_> = d.iter().collect();
        assert_eq!(
            pairs,
            [("0", "x"), ("a", "1"), ("b", "2"), ("bb", "y"), ("c", "4")]
        );
    }
}
