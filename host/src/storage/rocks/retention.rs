//! Deleting old points: whole hour buckets go with one range tombstone; the
//! bucket holding the cutoff is rewritten without its older points.

use rocksdb::WriteBatch;

use super::keys::{self, CF_POINTS};
use super::{Inner, block};
use crate::model::TenantId;
use crate::storage::StorageError;

pub fn delete_before(
    inner: &Inner,
    tenant: &TenantId,
    metric: &str,
    before_ms: i64,
) -> Result<(), StorageError> {
    let _serial = inner.maintenance.lock().unwrap_or_else(|p| p.into_inner());
    let prefix = keys::points_prefix(&keys::tenant_prefix(tenant.as_str()), metric);
    delete_prefix_before(inner, &prefix, before_ms)
}

/// Applies the cutoff to every (tenant, metric) that has points, visiting
/// each one with a seek instead of reading its blocks.
pub fn enforce(inner: &Inner, cutoff_ms: i64) -> Result<(), StorageError> {
    let _serial = inner.maintenance.lock().unwrap_or_else(|p| p.into_inner());
    let cf = inner.cf(CF_POINTS)?;
    let mut it = inner.db.raw_iterator_cf(cf);
    it.seek_to_first();
    while let Some(key) = it.key() {
        let metric_prefix = {
            let after_tenant = keys::skip_str(key);
            let rest = after_tenant.and_then(keys::skip_str);
            match rest {
                Some(rest) => key[..key.len() - rest.len()].to_vec(),
                None => return Err(StorageError::Internal("corrupt points key".into())),
            }
        };
        delete_prefix_before(inner, &metric_prefix, cutoff_ms)?;
        it.seek(keys::prefix_end(&metric_prefix));
    }
    it.status()?;
    Ok(())
}

fn delete_prefix_before(inner: &Inner, prefix: &[u8], before_ms: i64) -> Result<(), StorageError> {
    let cf = inner.cf(CF_POINTS)?;
    let edge = keys::bucket_of(before_ms);
    let edge_start = keys::points_bucket_start(prefix, edge);
    let mut batch = WriteBatch::default();
    batch.delete_range_cf(cf, prefix, &edge_start);

    // The edge bucket: drop blocks entirely before the cutoff, rewrite the
    // ones that straddle it under a fresh sequence number.
    let mut opts = rocksdb::ReadOptions::default();
    opts.set_iterate_upper_bound(keys::points_bucket_start(prefix, edge + 1));
    let mut it = inner.db.raw_iterator_cf_opt(cf, opts);
    it.seek(&edge_start);
    while let (Some(key), Some(bytes)) = (it.key(), it.value()) {
        let corrupt = |e: block::CorruptBlock| StorageError::Internal(e.to_string());
        let header = block::header(bytes).map_err(corrupt)?;
        if header.min_ts < before_ms {
            batch.delete_cf(cf, key);
            if header.max_ts >= before_ms {
                let mut kept = Vec::with_capacity(header.count);
                block::decode(bytes, |sid, ts, v| {
                    if ts >= before_ms {
                        kept.push((sid, ts, v));
                    }
                })
                .map_err(corrupt)?;
                let new_key = keys::points_key(prefix, edge, inner.next_block_seq());
                batch.put_cf(cf, new_key, block::encode(&mut kept));
            }
        }
        it.next();
    }
    it.status()?;
    inner.db.write_opt(batch, &inner.write_options())?;
    Ok(())
}
