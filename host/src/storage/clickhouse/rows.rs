//! The row layout of the `samples` table and its RowBinary encoding.
//!
//! Rows are encoded by the request task that owns the metrics, so the
//! batching writer only concatenates bytes and ClickHouse parses the
//! cheapest input format it has.

use xxhash_rust::xxh3::Xxh3;

use crate::model::{Metric, TenantId};

/// Columns in the order [`encode_row`] writes them.
pub const INSERT_COLUMNS: &str = "tenant, metric, series, time, value, dim_keys, dim_values";

/// A series' identity: tenant, metric and canonical dimensions. Lengths are
/// hashed before bytes so no two different series share an encoding (a value
/// may contain any byte, NUL included). It is also the sharding key, so one
/// series always lands on one shard.
pub fn series_id(tenant: &TenantId, metric: &Metric) -> u64 {
    let mut hasher = Xxh3::new();
    let mut part = |bytes: &[u8]| {
        hasher.update(&(bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
    };
    part(tenant.as_str().as_bytes());
    part(metric.name.as_bytes());
    for (key, value) in metric.dimensions.iter() {
        part(key.as_bytes());
        part(value.as_bytes());
    }
    hasher.digest()
}

/// Appends one row in RowBinary: strings as LEB128 length + bytes, numbers
/// little-endian, arrays as LEB128 count + elements. Keys come out sorted
/// because `Dimensions` is canonical, which is what lookups by `indexOf`
/// and ordering by `(dim_keys, dim_values)` rely on.
pub fn encode_row(out: &mut Vec<u8>, tenant: &TenantId, metric: &Metric) {
    put_string(out, tenant.as_str());
    put_string(out, &metric.name);
    out.extend_from_slice(&series_id(tenant, metric).to_le_bytes());
    out.extend_from_slice(&metric.timestamp_ms.to_le_bytes());
    out.extend_from_slice(&metric.value.to_le_bytes());
    put_varint(out, metric.dimensions.len() as u64);
    for (key, _) in metric.dimensions.iter() {
        put_string(out, key);
    }
    put_varint(out, metric.dimensions.len() as u64);
    for (_, value) in metric.dimensions.iter() {
        put_string(out, value);
    }
}

fn put_string(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Dimensions;

    fn metric(dims: &[(&str, &str)]) -> Metric {
        Metric {
            name: "m".into(),
            value: 1.0,
            timestamp_ms: 0,
            dimensions: Dimensions::from_pairs(
                dims.iter().map(|(k, v)| (k.to_string(), v.to_string())),
            ),
        }
    }

    #[test]
    fn series_id_does_not_collide_when_bytes_shift_between_fields() {
        let t = TenantId::new("t").unwrap();
        assert_ne!(
            series_id(&t, &metric(&[("a", "b\0c")])),
            series_id(&t, &metric(&[("a", "b"), ("c", "")]))
        );
        assert_eq!(
            series_id(&t, &metric(&[("a", "1")])),
            series_id(&t, &metric(&[("a", "1")]))
        );
    }

    #[test]
    fn varints_are_leb128() {
        let mut out = Vec::new();
        put_varint(&mut out, 300);
        assert_eq!(out, [0xAC, 0x02]);
    }
}
