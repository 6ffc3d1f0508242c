//! Remembers which catalog keys (metric names, dimension keys and values)
//! are already durable, so a new series does not re-put them. Only a cache:
//! a key missing here is simply written again (the put is idempotent), so the
//! cache is bounded instead of growing with every distinct dimension value.

use dashmap::DashSet;
use rustc_hash::FxBuildHasher;

pub struct CatalogCache {
    committed: DashSet<Box<[u8]>, FxBuildHasher>,
    capacity: usize,
}

impl CatalogCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            committed: DashSet::with_hasher(FxBuildHasher),
            capacity,
        }
    }

    pub fn is_committed(&self, key: &[u8]) -> bool {
        self.committed.contains(key)
    }

    /// Called after the batch holding these keys committed.
    pub fn mark_committed(&self, keys: Vec<Vec<u8>>) {
        for k in keys {
            if self.committed.len() >= self.capacity {
                return;
            }
            self.committed.insert(k.into_boxed_slice());
        }
    }
}
