//! Aggregate, range and rate queries: select series through the postings,
//! scan the metric's blocks in range once, and hand the numbers to
//! `storage::compute`.

use rustc_hash::FxHashMap;

use super::Inner;
use super::select::{Grouper, Reader, Selection};
use super::sid_map::SidMap;
use crate::model::{
    AggregateQuery, AggregateResult, AggregateRow, RangeQuery, RateQuery, SeriesResult, TenantId,
};
use crate::storage::StorageError;
use crate::storage::compute::{self, Fold, SelectedSeries};

/// A series' slot in the aggregate: its group index, or excluded. (The
/// map's own "absent" is `u32::MAX`.)
const EXCLUDED: u32 = u32::MAX - 1;

/// Points an aggregate buffers while its index is still being read
/// (16 bytes each).
const MAX_WAITING_POINTS: usize = 1 << 20;

pub fn aggregate(
    inner: &Inner,
    tenant: &TenantId,
    q: &AggregateQuery,
) -> Result<AggregateResult, StorageError> {
    let reader = Reader::new(inner, tenant);
    let metric = &q.selector.metric;
    let mut slot_of_series = Some(reader.sid_map()?);

    // The index side (filters, groups) and the points side are independent
    // scans of the same snapshot: run them on two threads. Points read
    // before the index is ready wait as (series, value); from then on each
    // point is folded as it is read, so memory does not follow the scan.
    let (groups, grouper) = std::thread::scope(|scope| {
        let index = scope.spawn(|| -> Result<_, StorageError> {
            let selection = reader.select(metric, &q.selector.filters)?;
            let grouper = reader.grouper(metric, &q.group_by)?;
            Ok((selection, grouper))
        });
        let mut phase = Phase::Indexing {
            index: Some(index),
            waiting: Vec::new(),
        };
        let mut folder: Option<Folder> = None;
        let mut index_failure = None;
        let scanned =
            reader.scan_points(metric, q.selector.range, &q.selector.budget, |sid, _, v| {
                match &mut phase {
                    Phase::Folding => {
                        if let Some(folder) = folder.as_mut() {
                            folder.push(sid, v);
                        }
                        true
                    }
                    Phase::Indexing { index, waiting } => {
                        waiting.push((sid, v));
                        // Past a bound the scan waits for the index
                        // rather than buffer more: a slow index must not
                        // turn the aggregate back into a copy of every point.
                        let ready = waiting.len().is_multiple_of(4096)
                            && (waiting.len() >= MAX_WAITING_POINTS
                                || index.as_ref().is_some_and(|i| i.is_finished()));
                        if !ready {
                            return true;
                        }
                        match join_index(index.take()) {
                            Ok((selection, grouper)) => {
                                let mut f =
                                    Folder::new(selection, grouper, slot_of_series.take(), q);
                                for (sid, v) in waiting.drain(..) {
                                    f.push(sid, v);
                                }
                                folder = Some(f);
                                phase = Phase::Folding;
                                true
                            }
                            Err(e) => {
                                index_failure = Some(e);
                                false
                            }
                        }
                    }
                }
            });
        if let Some(e) = index_failure {
            return Err(e);
        }
        scanned?;
        if let Phase::Indexing { index, waiting } = phase {
            let (selection, grouper) = join_index(index)?;
            let mut f = Folder::new(selection, grouper, slot_of_series.take(), q);
            for (sid, v) in waiting {
                f.push(sid, v);
            }
            folder = Some(f);
        }
        let folder = folder
            .ok_or_else(|| StorageError::Internal("aggregate finished without its index".into()))?;
        Ok((folder.groups, folder.grouper))
    })?;

    let rows = groups
        .into_iter()
        .filter_map(|(group, fold)| {
            fold.finish().map(|value| AggregateRow {
                group: grouper.values(&group),
                value,
            })
        })
        .collect();
    Ok(compute::finish_rows(rows, q.limit))
}

type Index = (Selection, Grouper);

enum Phase<'scope> {
    Indexing {
        index: Option<std::thread::ScopedJoinHandle<'scope, Result<Index, StorageError>>>,
        waiting: Vec<(u64, f64)>,
    },
    Folding,
}

fn join_index(
    index: Option<std::thread::ScopedJoinHandle<'_, Result<Index, StorageError>>>,
) -> Result<Index, StorageError> {
    index
        .ok_or_else(|| StorageError::Internal("index scan joined twice".into()))?
        .join()
        .map_err(|_| StorageError::Internal("index scan panicked".into()))?
}

/// Folds points into their groups, resolving each series once; the
/// per-point cost is then one map lookup.
struct Folder {
    selection: Selection,
    grouper: Grouper,
    slot_of_series: SidMap,
    slot_of_group: FxHashMap<Vec<u32>, u32>,
    groups: Vec<(Vec<u32>, Fold)>,
    scratch: Vec<u32>,
    aggregation: crate::model::Aggregation,
}

impl Folder {
    fn new(
        selection: Selection,
        grouper: Grouper,
        slot_of_series: Option<SidMap>,
        q: &AggregateQuery,
    ) -> Self {
        Self {
            selection,
            grouper,
            slot_of_series: slot_of_series.unwrap_or_else(|| SidMap::new(0, 0)),
            slot_of_group: FxHashMap::default(),
            groups: Vec::new(),
            scratch: Vec::with_capacity(q.group_by.len()),
            aggregation: q.aggregation,
        }
    }

    #[inline]
    fn push(&mut self, sid: u64, value: f64) {
        let slot = match self.slot_of_series.get(sid) {
            Some(slot) => slot,
            None => {
                let slot = self.resolve(sid);
                self.slot_of_series.insert(sid, slot);
                slot
            }
        };
        if slot != EXCLUDED {
            self.groups[slot as usize].1.push(value);
        }
    }

    fn resolve(&mut self, sid: u64) -> u32 {
        if !self.selection.admits(sid) {
            return EXCLUDED;
        }
        self.grouper.group_of(sid, &mut self.scratch);
        if let Some(&slot) = self.slot_of_group.get(&self.scratch) {
            return slot;
        }
        let slot = self.groups.len() as u32;
        self.groups
            .push((self.scratch.clone(), Fold::new(self.aggregation)));
        self.slot_of_group.insert(self.scratch.clone(), slot);
        slot
    }
}

/// Every admitted series' points in range, with its dimensions. What is
/// kept is bounded by `max_points_returned`.
fn selected_series(
    reader: &Reader<'_>,
    selector: &crate::model::Selector,
    selection: &Selection,
) -> Result<Vec<SelectedSeries>, StorageError> {
    let mut points: FxHashMap<u64, Vec<(i64, f64)>> = FxHashMap::default();
    let mut kept: u64 = 0;
    let mut over = None;
    reader.scan_points(
        &selector.metric,
        selector.range,
        &selector.budget,
        |sid, ts, v| {
            if !selection.admits(sid) {
                return true;
            }
            kept += 1;
            if let Err(e) = selector.budget.check_returned(kept) {
                over = Some(e);
                return false;
            }
            points.entry(sid).or_default().push((ts, v));
            true
        },
    )?;
    if let Some(e) = over {
        return Err(StorageError::TooLarge(e));
    }
    let ids: Vec<u64> = points.keys().copied().collect();
    let mut dims = reader.dimensions_of(&ids)?;
    points
        .into_iter()
        .map(|(id, points)| {
            let dimensions = dims
                .remove(&id)
                .ok_or_else(|| StorageError::Internal(format!("points of unknown series {id}")))?;
            Ok(SelectedSeries { dimensions, points })
        })
        .collect()
}

pub fn range(
    inner: &Inner,
    tenant: &TenantId,
    q: &RangeQuery,
) -> Result<SeriesResult, StorageError> {
    if q.step.is_some_and(|(step_ms, _)| step_ms <= 0) {
        return Err(StorageError::InvalidQuery("step must be positive".into()));
    }
    let reader = Reader::new(inner, tenant);
    let selection = reader.select(&q.selector.metric, &q.selector.filters)?;
    if selection.is_empty() {
        return Ok(SeriesResult::default());
    }
    let series = selected_series(&reader, &q.selector, &selection)?;
    Ok(compute::range_over(
        series,
        q.step,
        q.group_by.as_deref(),
        q.limit,
        q.sorted,
    ))
}

pub fn rate(inner: &Inner, tenant: &TenantId, q: &RateQuery) -> Result<SeriesResult, StorageError> {
    if q.step_ms <= 0 {
        return Err(StorageError::InvalidQuery("step must be positive".into()));
    }
    let reader = Reader::new(inner, tenant);
    let selection = reader.select(&q.selector.metric, &q.selector.filters)?;
    if selection.is_empty() {
        return Ok(SeriesResult::default());
    }
    let series = selected_series(&reader, &q.selector, &selection)?;
    Ok(compute::rate_over(
        series,
        q.step_ms,
        q.group_by.as_deref(),
        q.limit,
    ))
}
