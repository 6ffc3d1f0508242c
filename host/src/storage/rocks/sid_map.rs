//! A map from series id to a small number, the per-point lookup of every
//! query. A plain hash probe per point was most of an aggregate's cost at a
//! million points, so ids map through small pages instead: two loads.
//!
//! Ids come from one counter for the whole store, so one tenant's ids are
//! spread among every other tenant's. The map covers only the ids of the
//! query's tenant (`lo..hi`, read from its own keys) and allocates a page
//! only where one of its series lands: memory follows the series the query
//! touches, never the size of the store.

use rustc_hash::FxHashMap;

const PAGE_BITS: u32 = 6;
const PAGE_LEN: usize = 1 << PAGE_BITS;
/// Widest id span served by pages (its page table is 4 bytes per 64 ids:
/// 1 MiB here); a wider tenant falls back to hashing every id.
const PAGED_SPAN_LIMIT: u64 = 1 << 24;
const ABSENT: u32 = u32::MAX;
const NO_PAGE: u32 = u32::MAX;

pub struct SidMap {
    base: u64,
    /// For each page of ids from `base`, its index in `pages`, or `NO_PAGE`.
    page_of: Vec<u32>,
    pages: Vec<[u32; PAGE_LEN]>,
    sparse: FxHashMap<u64, u32>,
}

impl SidMap {
    /// A map for ids in `lo..hi`; ids outside still work, hashed.
    pub fn new(lo: u64, hi: u64) -> Self {
        let span = hi.saturating_sub(lo);
        let pages = if span <= PAGED_SPAN_LIMIT {
            span.div_ceil(PAGE_LEN as u64) as usize
        } else {
            0
        };
        Self {
            base: lo,
            page_of: vec![NO_PAGE; pages],
            pages: Vec::new(),
            sparse: FxHashMap::default(),
        }
    }

    #[inline]
    fn page_slot(&self, id: u64) -> Option<usize> {
        let offset = id.checked_sub(self.base)?;
        let page = usize::try_from(offset >> PAGE_BITS).ok()?;
        (page < self.page_of.len()).then_some(page)
    }

    #[inline]
    pub fn get(&self, id: u64) -> Option<u32> {
        match self.page_slot(id) {
            Some(page) => {
                let index = self.page_of[page];
                if index == NO_PAGE {
                    return None;
                }
                let v = self.pages[index as usize][(id - self.base) as usize & (PAGE_LEN - 1)];
                (v != ABSENT).then_some(v)
            }
            None => self.sparse.get(&id).copied(),
        }
    }

    /// `value` must not be `u32::MAX`.
    #[inline]
    pub fn insert(&mut self, id: u64, value: u32) {
        debug_assert_ne!(value, ABSENT);
        match self.page_slot(id) {
            Some(page) => {
                if self.page_of[page] == NO_PAGE {
                    self.page_of[page] = self.pages.len() as u32;
                    self.pages.push([ABSENT; PAGE_LEN]);
                }
                let index = self.page_of[page] as usize;
                self.pages[index][(id - self.base) as usize & (PAGE_LEN - 1)] = value;
            }
            None => {
                self.sparse.insert(id, value);
            }
        }
    }

    /// Bytes held, for tests of what a query costs.
    #[cfg(test)]
    fn footprint(&self) -> usize {
        self.page_of.len() * 4 + self.pages.len() * PAGE_LEN * 4 + self.sparse.len() * 16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paged_and_sparse_ids_behave_alike() {
        for (lo, hi) in [(0, 10), (5, 1_000), (0, PAGED_SPAN_LIMIT + 1)] {
            let mut m = SidMap::new(lo, hi);
            assert_eq!(m.get(7), None);
            m.insert(7, 7);
            m.insert(u64::MAX, 1); // beyond any span: still stored
            m.insert(0, 2);
            assert_eq!(m.get(7), Some(7));
            assert_eq!(m.get(u64::MAX), Some(1));
            assert_eq!(m.get(0), Some(2));
            assert_eq!(m.get(8), None);
            assert_eq!(m.get(900), None);
        }
    }

    #[test]
    fn memory_follows_the_ids_inserted_not_the_span() {
        // A tenant with 100 series spread over 10 M ids of other tenants.
        let mut m = SidMap::new(0, 10_000_000);
        for i in 0..100u64 {
            m.insert(i * 100_000, i as u32);
        }
        assert!(m.footprint() < (1 << 20), "{}", m.footprint());
        for i in 0..100u64 {
            assert_eq!(m.get(i * 100_000), Some(i as u32));
        }
    }
}
