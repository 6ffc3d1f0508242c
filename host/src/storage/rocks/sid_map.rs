//! A map from series id to a small number, the per-point lookup of every
//! query. Series ids are dense (one counter for the whole store), so below a
//! bound the map is a plain array: one load per point instead of a hash
//! probe, which is most of an aggregate's cost at a million points.

use rustc_hash::FxHashMap;

/// Up to this many ids (16 MiB of u32) a query uses an array.
const DENSE_LIMIT: u64 = 1 << 22;
const ABSENT: u32 = u32::MAX;

pub struct SidMap {
    dense: Vec<u32>,
    sparse: FxHashMap<u64, u32>,
}

impl SidMap {
    /// `id_bound` is one past the largest id the query can meet.
    pub fn new(id_bound: u64) -> Self {
        let dense_len = if id_bound <= DENSE_LIMIT {
            id_bound as usize
        } else {
            0
        };
        Self {
            dense: vec![ABSENT; dense_len],
            sparse: FxHashMap::default(),
        }
    }

    #[inline]
    pub fn get(&self, id: u64) -> Option<u32> {
        match self.dense.get(id as usize) {
            Some(&v) => (v != ABSENT).then_some(v),
            None => self.sparse.get(&id).copied(),
        }
    }

    /// `value` must not be `u32::MAX`.
    #[inline]
    pub fn insert(&mut self, id: u64, value: u32) {
        debug_assert_ne!(value, ABSENT);
        match self.dense.get_mut(id as usize) {
            Some(slot) => *slot = value,
            None => {
                self.sparse.insert(id, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_and_sparse_ids_behave_alike() {
        for bound in [10, DENSE_LIMIT + 1] {
            let mut m = SidMap::new(bound);
            assert_eq!(m.get(3), None);
            m.insert(3, 7);
            m.insert(u64::MAX, 1); // beyond any bound: still stored
            assert_eq!(m.get(3), Some(7));
            assert_eq!(m.get(u64::MAX), Some(1));
            assert_eq!(m.get(4), None);
        }
    }
}
