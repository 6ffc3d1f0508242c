//! Aggregate, range and rate queries: select series through the postings,
//! scan the metric's blocks in range once, and hand the numbers to
//! `storage::compute`.

use rustc_hash::FxHashMap;

use super::Inner;
use super::select::{Reader, Selection};
use crate::model::{
    AggregateQuery, AggregateResult, AggregateRow, RangeQuery, RateQuery, SeriesResult, TenantId,
};
use crate::storage::StorageError;
use crate::storage::compute::{self, Fold, SelectedSeries};

/// A series' slot in the aggregate: its group index, or excluded. (The
/// map's own "absent" is `u32::MAX`.)
const EXCLUDED: u32 = u32::MAX - 1;

pub fn aggregate(
    inner: &Inner,
    tenant: &TenantId,
    q: &AggregateQuery,
) -> Result<AggregateResult, StorageError> {
    let reader = Reader::new(inner, tenant);
    let metric = &q.selector.metric;

    // The index side (filters, groups) and the points side are independent
    // scans of the same snapshot: run them on two threads, buffering the
    // points as (series, value) until the groups are known.
    let (index, points) = std::thread::scope(|scope| {
        let index = scope.spawn(|| -> Result<_, StorageError> {
            let selection = reader.select(metric, &q.selector.filters)?;
            let grouper = reader.grouper(metric, &q.group_by)?;
            Ok((selection, grouper))
        });
        let mut points: Vec<(u64, f64)> = Vec::new();
        let scanned =
            reader.scan_points(metric, q.selector.range, |sid, _, v| points.push((sid, v)));
        let index = index
            .join()
            .map_err(|_| StorageError::Internal("index scan panicked".into()));
        (index, scanned.map(|()| points))
    });
    let (selection, grouper) = index??;
    let points = points?;

    // Resolve each series once; the per-point cost is then one array load.
    let mut slot_of_series = reader.sid_map();
    let mut slot_of_group: FxHashMap<Vec<u32>, u32> = FxHashMap::default();
    let mut groups: Vec<(Vec<u32>, Fold)> = Vec::new();
    let mut scratch = Vec::with_capacity(q.group_by.len());
    for (sid, value) in points {
        let slot = match slot_of_series.get(sid) {
            Some(slot) => slot,
            None => {
                let slot = if selection.admits(sid) {
                    grouper.group_of(sid, &mut scratch);
                    match slot_of_group.get(&scratch) {
                        Some(&slot) => slot,
                        None => {
                            let slot = groups.len() as u32;
                            groups.push((scratch.clone(), Fold::new(q.aggregation)));
                            slot_of_group.insert(scratch.clone(), slot);
                            slot
                        }
                    }
                } else {
                    EXCLUDED
                };
                slot_of_series.insert(sid, slot);
                slot
            }
        };
        if slot != EXCLUDED {
            groups[slot as usize].1.push(value);
        }
    }

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

/// Every admitted series' points in range, with its dimensions.
fn selected_series(
    reader: &Reader<'_>,
    selector: &crate::model::Selector,
    selection: &Selection,
) -> Result<Vec<SelectedSeries>, StorageError> {
    let mut points: FxHashMap<u64, Vec<(i64, f64)>> = FxHashMap::default();
    reader.scan_points(&selector.metric, selector.range, |sid, ts, v| {
        if selection.admits(sid) {
            points.entry(sid).or_default().push((ts, v));
        }
    })?;
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
