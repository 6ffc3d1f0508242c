//! The write path: resolve each metric's series, stage index entries for new
//! series, encode one block per (metric, hour bucket), commit one WriteBatch.

use rocksdb::WriteBatch;
use rustc_hash::{FxHashMap, FxHashSet};

use super::keys::{self, CF_INDEX, CF_POINTS, CF_SERIES};
use super::series::{self, Resolved, SeriesHash};
use super::{Inner, block};
use crate::model::{Metric, TenantId};
use crate::storage::StorageError;

/// Index puts for series this batch introduces, plus what to mark committed
/// once the batch is durable.
struct NewSeries<'a> {
    inner: &'a Inner,
    tenant_prefix: &'a [u8],
    staged: FxHashSet<SeriesHash>,
    catalog_keys: Vec<Vec<u8>>,
}

impl NewSeries<'_> {
    fn stage(
        &mut self,
        batch: &mut WriteBatch,
        hash: SeriesHash,
        id: u64,
        canonical: &[u8],
        metric: &Metric,
    ) -> Result<(), StorageError> {
        if !self.staged.insert(hash) {
            return Ok(());
        }
        let inner = self.inner;
        let (series_cf, index_cf) = (inner.cf(CF_SERIES)?, inner.cf(CF_INDEX)?);
        let tp = self.tenant_prefix;
        batch.put_cf(series_cf, keys::series_key(tp, id), canonical);

        let mut put_catalog = |batch: &mut WriteBatch, key: Vec<u8>| {
            if !inner.catalog.is_committed(&key) {
                batch.put_cf(index_cf, &key, b"");
                self.catalog_keys.push(key);
            }
        };
        put_catalog(
            batch,
            keys::index_prefix(tp, keys::KIND_METRIC, &metric.name),
        );
        let key_prefix = keys::index_prefix(tp, keys::KIND_KEY, &metric.name);
        let posting_prefix = keys::index_prefix(tp, keys::KIND_POSTING, &metric.name);
        for (k, v) in metric.dimensions.iter() {
            let mut key = key_prefix.clone();
            keys::push_str(&mut key, k);
            put_catalog(batch, key);

            let mut posting = posting_prefix.clone();
            keys::push_str(&mut posting, k);
            keys::push_str(&mut posting, v);
            keys::push_u64(&mut posting, id);
            batch.put_cf(index_cf, posting, b"");
        }
        Ok(())
    }
}

/// (series id, timestamp, value), as `block::encode` takes them.
type PendingPoint = (u64, i64, f64);

pub fn write(inner: &Inner, tenant: &TenantId, metrics: &[Metric]) -> Result<(), StorageError> {
    if metrics.is_empty() {
        return Ok(());
    }
    let tenant_prefix = keys::tenant_prefix(tenant.as_str());
    let mut batch = WriteBatch::default();
    let mut new_series = NewSeries {
        inner,
        tenant_prefix: &tenant_prefix,
        staged: FxHashSet::default(),
        catalog_keys: Vec::new(),
    };
    let mut blocks: FxHashMap<(&str, i64), Vec<PendingPoint>> = FxHashMap::default();
    let mut canonical = Vec::with_capacity(256);

    for metric in metrics {
        canonical.clear();
        canonical.extend_from_slice(&tenant_prefix);
        series::push_canonical(&mut canonical, &metric.name, &metric.dimensions);
        let hash = SeriesHash::of(&canonical);
        let id = match inner.series.resolve(hash) {
            Resolved::Committed(id) => id,
            Resolved::Uncommitted(id) => {
                let form = &canonical[tenant_prefix.len()..];
                new_series.stage(&mut batch, hash, id, form, metric)?;
                id
            }
        };
        blocks
            .entry((metric.name.as_str(), keys::bucket_of(metric.timestamp_ms)))
            .or_default()
            .push((id, metric.timestamp_ms, metric.value));
    }

    let points_cf = inner.cf(CF_POINTS)?;
    for ((metric, bucket), mut points) in blocks {
        let prefix = keys::points_prefix(&tenant_prefix, metric);
        let key = keys::points_key(&prefix, bucket, inner.next_block_seq());
        batch.put_cf(points_cf, key, block::encode(&mut points));
    }

    inner.db.write_opt(batch, &inner.write_options())?;

    let NewSeries {
        staged,
        catalog_keys,
        ..
    } = new_series;
    let staged: Vec<SeriesHash> = staged.into_iter().collect();
    inner.series.mark_committed(&staged);
    inner.catalog.mark_committed(catalog_keys);
    Ok(())
}
