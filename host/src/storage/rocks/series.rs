//! Series identity: which u64 id a (tenant, metric, dimensions) combination
//! has, and whether its index entries are known to be durable.
//!
//! The canonical form of a series is `E(metric) (E(key) E(value))*` with the
//! dimensions in their sorted order (see `keys.rs` for `E`). Its identity in
//! memory is the xxh3-128 hash of the tenant prefix followed by that form: 24
//! bytes per series in the map (about 50 MB for 1 M series), instead of the
//! strings. A 128-bit collision needs ~2^64 series; we accept that risk.

use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;
use rustc_hash::FxBuildHasher;

use super::keys;
use crate::model::Dimensions;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SeriesHash(u64, u64);

impl SeriesHash {
    /// `tenant_and_canonical` is `E(tenant)` followed by the canonical form.
    pub fn of(tenant_and_canonical: &[u8]) -> Self {
        let h = xxhash_rust::xxh3::xxh3_128(tenant_and_canonical);
        Self((h >> 64) as u64, h as u64)
    }
}

/// Appends the canonical form of a series.
pub fn push_canonical(out: &mut Vec<u8>, metric: &str, dimensions: &Dimensions) {
    keys::push_str(out, metric);
    for (k, v) in dimensions.iter() {
        keys::push_str(out, k);
        keys::push_str(out, v);
    }
}

/// Parses a canonical form back into (metric, dimensions).
pub fn parse_canonical(mut bytes: &[u8]) -> Option<(String, Dimensions)> {
    let (metric, rest) = keys::take_str(bytes)?;
    bytes = rest;
    let mut pairs = Vec::new();
    while !bytes.is_empty() {
        let (k, rest) = keys::take_str(bytes)?;
        let (v, rest) = keys::take_str(rest)?;
        pairs.push((k, v));
        bytes = rest;
    }
    Some((metric, Dimensions::from_pairs(pairs)))
}

/// What a writer must do for a series it is about to reference.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resolved {
    /// Index entries are durable; just reference the id.
    Committed(u64),
    /// The id is assigned but no write carrying its index entries has
    /// committed yet: this writer must put them into its own batch (the puts
    /// are idempotent), so its points never outlive their series.
    Uncommitted(u64),
}

/// Bit 63 of a slot marks a series whose index entries are committed.
const COMMITTED: u64 = 1 << 63;

pub struct SeriesRegistry {
    slots: DashMap<SeriesHash, u64, FxBuildHasher>,
    next_id: AtomicU64,
}

impl SeriesRegistry {
    pub fn new() -> Self {
        Self {
            slots: DashMap::with_hasher(FxBuildHasher),
            next_id: AtomicU64::new(1),
        }
    }

    /// Registers a series read back from the index at open.
    pub fn load(&self, hash: SeriesHash, id: u64) {
        self.slots.insert(hash, id | COMMITTED);
        self.next_id.fetch_max(id + 1, Ordering::Relaxed);
    }

    pub fn resolve(&self, hash: SeriesHash) -> Resolved {
        if let Some(slot) = self.slots.get(&hash) {
            return Self::decode(*slot);
        }
        let slot = *self
            .slots
            .entry(hash)
            .or_insert_with(|| self.next_id.fetch_add(1, Ordering::Relaxed));
        Self::decode(slot)
    }

    fn decode(slot: u64) -> Resolved {
        if slot & COMMITTED != 0 {
            Resolved::Committed(slot & !COMMITTED)
        } else {
            Resolved::Uncommitted(slot)
        }
    }

    /// Called after a batch carrying these series' index entries committed.
    pub fn mark_committed(&self, hashes: &[SeriesHash]) {
        for h in hashes {
            if let Some(mut slot) = self.slots.get_mut(h) {
                *slot |= COMMITTED;
            }
        }
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_form_round_trips_hostile_text() {
        let dims = Dimensions::from_pairs([
            ("q".to_string(), "\"quoted\" \\ \0 ünï ^$.*".to_string()),
            ("a".to_string(), "1".to_string()),
        ]);
        let mut buf = Vec::new();
        push_canonical(&mut buf, "m.x:y", &dims);
        assert_eq!(parse_canonical(&buf), Some(("m.x:y".to_string(), dims)));
    }

    #[test]
    fn a_series_stays_uncommitted_until_marked_and_keeps_its_id() {
        let reg = SeriesRegistry::new();
        let h = SeriesHash::of(b"x");
        let Resolved::Uncommitted(id) = reg.resolve(h) else {
            panic!()
        };
        assert_eq!(reg.resolve(h), Resolved::Uncommitted(id));
        reg.mark_committed(&[h]);
        assert_eq!(reg.resolve(h), Resolved::Committed(id));
        let Resolved::Uncommitted(other) = reg.resolve(SeriesHash::of(b"y")) else {
            panic!()
        };
        assert_ne!(id, other);
    }

    #[test]
    fn ids_continue_after_the_highest_loaded_one() {
        let reg = SeriesRegistry::new();
        reg.load(SeriesHash::of(b"a"), 41);
        assert_eq!(reg.resolve(SeriesHash::of(b"b")), Resolved::Uncommitted(42));
        assert_eq!(reg.resolve(SeriesHash::of(b"a")), Resolved::Committed(41));
    }
}
