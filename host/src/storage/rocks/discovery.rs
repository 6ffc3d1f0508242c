//! Metric names and dimension keys, read from the catalog entries that new
//! series write, and dimension values, read from the postings (so discovery
//! never touches points).

use super::Inner;
use super::keys::{self, CF_INDEX, KIND_KEY, KIND_METRIC};
use super::select::Reader;
use crate::model::TenantId;
use crate::storage::StorageError;

fn list(reader: &Reader<'_>, prefix: &[u8], limit: usize) -> Result<Vec<String>, StorageError> {
    let mut out = Vec::new();
    let mut corrupt = false;
    if limit == 0 {
        return Ok(out);
    }
    reader.scan(CF_INDEX, prefix, None, None, |suffix, _| {
        match keys::take_str(suffix) {
            Some((s, _)) => out.push(s),
            None => corrupt = true,
        }
        !corrupt && out.len() < limit
    })?;
    if corrupt {
        return Err(StorageError::Internal("corrupt catalog key".into()));
    }
    Ok(out)
}

pub fn metrics(inner: &Inner, tenant: &TenantId) -> Result<Vec<String>, StorageError> {
    let reader = Reader::new(inner, tenant);
    let mut prefix = reader.tenant_prefix().to_vec();
    prefix.push(KIND_METRIC);
    list(&reader, &prefix, usize::MAX)
}

pub fn keys(inner: &Inner, tenant: &TenantId, metric: &str) -> Result<Vec<String>, StorageError> {
    let reader = Reader::new(inner, tenant);
    let prefix = keys::index_prefix(reader.tenant_prefix(), KIND_KEY, metric);
    list(&reader, &prefix, usize::MAX)
}

pub fn values(
    inner: &Inner,
    tenant: &TenantId,
    metric: &str,
    key: &str,
    limit: usize,
) -> Result<Vec<String>, StorageError> {
    Reader::new(inner, tenant).distinct_values(metric, key, limit)
}
