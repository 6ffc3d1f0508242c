//! Reading one tenant's keys under one snapshot: which series a query's
//! filters admit, which group each series falls in (both from the inverted
//! postings, never from the points), and the scan over a metric's blocks.

use rocksdb::{DB, ReadOptions, SnapshotWithThreadMode};
use rustc_hash::{FxHashMap, FxHashSet};

use super::keys::{self, CF_INDEX, CF_POINTS, CF_SERIES, KIND_POSTING};
use super::sid_map::SidMap;
use super::{Inner, block, series};
use crate::model::{
    BudgetExceeded, Dimensions, Filter, FilterOp, QueryBudget, TenantId, TimeRange,
};
use crate::storage::StorageError;

/// A consistent, tenant-scoped view: every key it reads starts with the
/// tenant's prefix, and all reads of one query see the same snapshot (so a
/// point is never visible without its series' postings).
pub struct Reader<'a> {
    inner: &'a Inner,
    snapshot: SnapshotWithThreadMode<'a, DB>,
    tenant_prefix: Vec<u8>,
}

impl<'a> Reader<'a> {
    pub fn new(inner: &'a Inner, tenant: &TenantId) -> Self {
        Self {
            inner,
            snapshot: inner.db.snapshot(),
            tenant_prefix: keys::tenant_prefix(tenant.as_str()),
        }
    }

    /// A map for this tenant's series ids: `series` keys are ordered by id
    /// within the tenant, so its first and last key bound every id a point
    /// of this snapshot can carry. Two seeks, whatever the store holds.
    pub fn sid_map(&self) -> Result<SidMap, StorageError> {
        let cf = self.inner.cf(CF_SERIES)?;
        let id_at = |key: Option<&[u8]>| {
            key.and_then(|k| k.strip_prefix(self.tenant_prefix.as_slice()))
                .and_then(keys::read_u64)
        };
        let mut it = self.snapshot.raw_iterator_cf(cf);
        it.seek(&self.tenant_prefix);
        let first = id_at(it.key());
        it.seek_for_prev(keys::prefix_end(&self.tenant_prefix));
        let last = id_at(it.key());
        it.status()?;
        Ok(match (first, last) {
            (Some(lo), Some(hi)) => SidMap::new(lo, hi.saturating_add(1)),
            _ => SidMap::new(0, 0),
        })
    }

    pub fn tenant_prefix(&self) -> &[u8] {
        &self.tenant_prefix
    }

    /// Calls `visit(suffix, value)` for every key of `cf` starting with
    /// `prefix` (which must start with this tenant's prefix), in key order,
    /// until it returns false.
    pub fn scan(
        &self,
        cf: &str,
        prefix: &[u8],
        start: Option<&[u8]>,
        end: Option<Vec<u8>>,
        mut visit: impl FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), StorageError> {
        debug_assert!(prefix.starts_with(&self.tenant_prefix));
        let mut opts = ReadOptions::default();
        opts.set_iterate_upper_bound(end.unwrap_or_else(|| keys::prefix_end(prefix)));
        let mut it = self.snapshot.raw_iterator_cf_opt(self.inner.cf(cf)?, opts);
        it.seek(start.unwrap_or(prefix));
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            let Some(suffix) = k.strip_prefix(prefix) else {
                break;
            };
            if !visit(suffix, v) {
                break;
            }
            it.next();
        }
        it.status()?;
        Ok(())
    }

    /// Up to `limit` distinct values of `key` on `metric`, sorted: one seek
    /// per value over the postings, however many series share it.
    pub fn distinct_values(
        &self,
        metric: &str,
        key: &str,
        limit: usize,
    ) -> Result<Vec<String>, StorageError> {
        let prefix = self.posting_prefix(metric, key);
        let mut opts = ReadOptions::default();
        opts.set_iterate_upper_bound(keys::prefix_end(&prefix));
        let mut it = self
            .snapshot
            .raw_iterator_cf_opt(self.inner.cf(CF_INDEX)?, opts);
        it.seek(&prefix);
        let mut out = Vec::new();
        while out.len() < limit {
            let Some(suffix) = it.key().and_then(|k| k.strip_prefix(prefix.as_slice())) else {
                break;
            };
            let (value, rest) = keys::take_str(suffix)
                .ok_or_else(|| StorageError::Internal("corrupt posting key".into()))?;
            let mut next = prefix.clone();
            next.extend_from_slice(&suffix[..suffix.len() - rest.len()]);
            out.push(value);
            it.seek(keys::prefix_end(&next));
        }
        it.status()?;
        Ok(out)
    }

    fn posting_prefix(&self, metric: &str, key: &str) -> Vec<u8> {
        let mut p = keys::index_prefix(&self.tenant_prefix, KIND_POSTING, metric);
        keys::push_str(&mut p, key);
        p
    }

    /// Series ids having `key = value`.
    fn postings_of(
        &self,
        metric: &str,
        key: &str,
        value: &str,
        into: &mut FxHashSet<u64>,
    ) -> Result<(), StorageError> {
        let mut prefix = self.posting_prefix(metric, key);
        keys::push_str(&mut prefix, value);
        self.scan(CF_INDEX, &prefix, None, None, |suffix, _| {
            into.extend(keys::read_u64(suffix));
            true
        })
    }

    /// Every (value, series id) posting of `key`, grouped by value: calls
    /// `visit(value, is_new_value, sid)`, decoding each value once.
    fn postings_by_value(
        &self,
        metric: &str,
        key: &str,
        mut visit: impl FnMut(&str, bool, u64),
    ) -> Result<(), StorageError> {
        let prefix = self.posting_prefix(metric, key);
        let mut last_raw: Vec<u8> = Vec::new();
        let mut last_value = String::new();
        let mut corrupt = false;
        self.scan(CF_INDEX, &prefix, None, None, |suffix, _| {
            let Some(split) = suffix.len().checked_sub(8) else {
                corrupt = true;
                return false;
            };
            let (raw, sid) = suffix.split_at(split);
            let fresh = raw != last_raw.as_slice();
            if fresh {
                match keys::take_str(raw) {
                    Some((v, _)) => last_value = v,
                    None => {
                        corrupt = true;
                        return false;
                    }
                }
                last_raw.clear();
                last_raw.extend_from_slice(raw);
            }
            visit(&last_value, fresh, keys::read_u64(sid).unwrap_or_default());
            true
        })?;
        if corrupt {
            return Err(StorageError::Internal("corrupt posting key".into()));
        }
        Ok(())
    }

    /// Which series the filters admit (filters are ANDed).
    pub fn select(&self, metric: &str, filters: &[Filter]) -> Result<Selection, StorageError> {
        let mut selection = Selection::default();
        for filter in filters {
            let key = filter.key.as_str();
            let mut set = FxHashSet::default();
            match &filter.op {
                FilterOp::Eq(v) if !v.is_empty() => {
                    self.postings_of(metric, key, v, &mut set)?;
                    selection.allow(set);
                }
                FilterOp::NotEq(v) if !v.is_empty() => {
                    self.postings_of(metric, key, v, &mut set)?;
                    selection.deny(set);
                }
                FilterOp::In(values) if !values.iter().any(String::is_empty) => {
                    for v in values {
                        self.postings_of(metric, key, v, &mut set)?;
                    }
                    selection.allow(set);
                }
                _ => {
                    // General case (regexes, or "" standing for a missing
                    // key): one pass over the key's postings, testing each
                    // distinct value once. Series lacking the key are
                    // admitted exactly when the filter matches "".
                    let missing_matches = filter.matches(None);
                    let mut keep = false;
                    self.postings_by_value(metric, key, |value, fresh, sid| {
                        if fresh {
                            keep = filter.matches(Some(value)) != missing_matches;
                        }
                        if keep {
                            set.insert(sid);
                        }
                    })?;
                    if missing_matches {
                        selection.deny(set);
                    } else {
                        selection.allow(set);
                    }
                }
            }
        }
        Ok(selection)
    }

    /// For each group-by key, which value each series has.
    pub fn grouper(&self, metric: &str, group_by: &[String]) -> Result<Grouper, StorageError> {
        let mut keys = Vec::with_capacity(group_by.len());
        for key in group_by {
            let mut of_series = FxHashMap::default();
            let mut values: Vec<String> = Vec::new();
            self.postings_by_value(metric, key, |value, fresh, sid| {
                if fresh {
                    values.push(value.to_owned());
                }
                of_series.insert(sid, (values.len() - 1) as u32);
            })?;
            keys.push(KeyValues { of_series, values });
        }
        Ok(Grouper { keys })
    }

    /// Calls `visit(series_id, ts, value)` for every point of `metric` in
    /// `range`, reading only the hour buckets the range overlaps, until
    /// `visit` returns false (the rest of that block is skipped). Stops with
    /// `TooLarge` before decoding a block that would take the points read
    /// past `budget` (each block's header holds its count).
    pub fn scan_points(
        &self,
        metric: &str,
        range: TimeRange,
        budget: &QueryBudget,
        mut visit: impl FnMut(u64, i64, f64) -> bool,
    ) -> Result<(), StorageError> {
        if range.start_ms >= range.end_ms {
            return Ok(());
        }
        let prefix = keys::points_prefix(&self.tenant_prefix, metric);
        let start = keys::points_bucket_start(&prefix, keys::bucket_of(range.start_ms));
        let end = keys::points_bucket_start(&prefix, keys::bucket_of(range.end_ms - 1) + 1);
        let mut failure = None;
        let mut scanned: u64 = 0;
        let mut going = true;
        self.scan(
            CF_POINTS,
            &prefix,
            Some(start.as_slice()),
            Some(end),
            |_, bytes| {
                let result = block::header(bytes)
                    .map_err(ScanFailure::Corrupt)
                    .and_then(|h| {
                        if h.max_ts < range.start_ms || h.min_ts >= range.end_ms {
                            return Ok(());
                        }
                        scanned = scanned.saturating_add(h.count as u64);
                        budget.check_scanned(scanned).map_err(ScanFailure::Budget)?;
                        let whole = h.min_ts >= range.start_ms && h.max_ts < range.end_ms;
                        block::decode(bytes, |sid, ts, v| {
                            if going && (whole || range.contains(ts)) {
                                going = visit(sid, ts, v);
                            }
                        })
                        .map_err(ScanFailure::Corrupt)
                    });
                match result {
                    Ok(()) => going,
                    Err(e) => {
                        failure = Some(e);
                        false
                    }
                }
            },
        )?;
        match failure {
            Some(ScanFailure::Corrupt(e)) => Err(StorageError::Internal(e.to_string())),
            Some(ScanFailure::Budget(e)) => Err(StorageError::TooLarge(e)),
            None => Ok(()),
        }
    }

    /// The dimensions of each series id (ids unknown here are left out).
    pub fn dimensions_of(&self, ids: &[u64]) -> Result<FxHashMap<u64, Dimensions>, StorageError> {
        let cf = self.inner.cf(CF_SERIES)?;
        let mut sorted = ids.to_vec();
        sorted.sort_unstable();
        let keys: Vec<Vec<u8>> = sorted
            .iter()
            .map(|&id| keys::series_key(&self.tenant_prefix, id))
            .collect();
        let mut out = FxHashMap::default();
        for (id, got) in sorted
            .iter()
            .zip(self.snapshot.multi_get_cf(keys.iter().map(|k| (cf, k))))
        {
            if let Some(bytes) = got? {
                let (_, dims) = series::parse_canonical(&bytes)
                    .ok_or_else(|| StorageError::Internal("corrupt series entry".into()))?;
                out.insert(*id, dims);
            }
        }
        Ok(out)
    }
}

enum ScanFailure {
    Corrupt(block::CorruptBlock),
    Budget(BudgetExceeded),
}

/// Allowed and denied series ids; a series passes when it is in every allow
/// set (if any) and in no deny set.
#[derive(Default)]
pub struct Selection {
    allow: Option<FxHashSet<u64>>,
    deny: FxHashSet<u64>,
}

impl Selection {
    fn allow(&mut self, set: FxHashSet<u64>) {
        self.allow = Some(match self.allow.take() {
            None => set,
            Some(mut prev) => {
                prev.retain(|id| set.contains(id));
                prev
            }
        });
    }

    fn deny(&mut self, set: FxHashSet<u64>) {
        if self.deny.is_empty() {
            self.deny = set;
        } else {
            self.deny.extend(set);
        }
    }

    #[inline]
    pub fn admits(&self, id: u64) -> bool {
        self.allow.as_ref().is_none_or(|a| a.contains(&id)) && !self.deny.contains(&id)
    }

    /// True when no series can pass: the scan can be skipped.
    pub fn is_empty(&self) -> bool {
        self.allow.as_ref().is_some_and(|a| a.is_empty())
    }
}

/// One group-by key: each series' value index. Hashed, not paged: it is
/// read once per series, not once per point.
struct KeyValues {
    of_series: FxHashMap<u64, u32>,
    values: Vec<String>,
}

/// Maps a series id to its group: one value index per group-by key.
pub struct Grouper {
    keys: Vec<KeyValues>,
}

/// Marks a series lacking a group-by key.
pub const MISSING: u32 = u32::MAX;

impl Grouper {
    pub fn group_of(&self, id: u64, out: &mut Vec<u32>) {
        out.clear();
        out.extend(
            self.keys
                .iter()
                .map(|k| k.of_series.get(&id).copied().unwrap_or(MISSING)),
        );
    }

    pub fn values(&self, group: &[u32]) -> Vec<Option<String>> {
        group
            .iter()
            .zip(&self.keys)
            .map(|(&i, k)| (i != MISSING).then(|| k.values[i as usize].clone()))
            .collect()
    }
}
