//! The columnar block: the points of one write batch that share a tenant,
//! metric and hour bucket, stored under one key.
//!
//! Layout (all integers varint unless noted):
//! `version(u8) count min_ts(i64 LE) max_ts(i64 LE) sid_bytes ts_bytes`
//! then the three columns, points sorted by (series id, timestamp):
//! series ids as deltas, timestamps as zigzag deltas from the previous point,
//! values as raw little-endian f64. Deltas keep ids and times to one or two
//! bytes each; RocksDB's LZ4/ZSTD then compresses the block as a whole.
//! `min_ts`/`max_ts` let a query skip blocks outside its range unread.

const VERSION: u8 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockHeader {
    pub count: usize,
    pub min_ts: i64,
    pub max_ts: i64,
}

#[derive(Debug, thiserror::Error)]
#[error("corrupt point block: {0}")]
pub struct CorruptBlock(&'static str);

fn push_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[inline]
fn read_varint(bytes: &[u8], pos: &mut usize) -> Result<u64, CorruptBlock> {
    let mut v = 0u64;
    let mut shift = 0;
    loop {
        let b = *bytes.get(*pos).ok_or(CorruptBlock("truncated varint"))?;
        *pos += 1;
        v |= u64::from(b & 0x7F) << shift;
        if b < 0x80 {
            return Ok(v);
        }
        shift += 7;
        if shift > 63 {
            return Err(CorruptBlock("varint too long"));
        }
    }
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Encodes `points` (series id, timestamp, value); sorts them in place.
pub fn encode(points: &mut [(u64, i64, f64)]) -> Vec<u8> {
    points.sort_unstable_by_key(|p| (p.0, p.1));
    let min_ts = points.iter().map(|p| p.1).min().unwrap_or(0);
    let max_ts = points.iter().map(|p| p.1).max().unwrap_or(0);

    let mut sids = Vec::with_capacity(points.len() * 2);
    let mut times = Vec::with_capacity(points.len() * 2);
    let (mut prev_sid, mut prev_ts) = (0u64, min_ts);
    for &(sid, ts, _) in points.iter() {
        push_varint(&mut sids, sid - prev_sid);
        push_varint(&mut times, zigzag(ts.wrapping_sub(prev_ts)));
        prev_sid = sid;
        prev_ts = ts;
    }

    let mut out = Vec::with_capacity(32 + sids.len() + times.len() + points.len() * 8);
    out.push(VERSION);
    push_varint(&mut out, points.len() as u64);
    out.extend_from_slice(&min_ts.to_le_bytes());
    out.extend_from_slice(&max_ts.to_le_bytes());
    push_varint(&mut out, sids.len() as u64);
    push_varint(&mut out, times.len() as u64);
    out.extend_from_slice(&sids);
    out.extend_from_slice(&times);
    for &(_, _, v) in points.iter() {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

struct Layout {
    header: BlockHeader,
    sids: usize,
    times: usize,
    values: usize,
}

fn layout(bytes: &[u8]) -> Result<Layout, CorruptBlock> {
    if bytes.first() != Some(&VERSION) {
        return Err(CorruptBlock("unknown version"));
    }
    let mut pos = 1;
    let count = read_varint(bytes, &mut pos)? as usize;
    let fixed = |pos: usize| -> Result<i64, CorruptBlock> {
        let raw = bytes
            .get(pos..pos + 8)
            .ok_or(CorruptBlock("truncated header"))?;
        Ok(i64::from_le_bytes(
            raw.try_into().map_err(|_| CorruptBlock("header"))?,
        ))
    };
    let min_ts = fixed(pos)?;
    let max_ts = fixed(pos + 8)?;
    pos += 16;
    let sid_len = read_varint(bytes, &mut pos)? as usize;
    let ts_len = read_varint(bytes, &mut pos)? as usize;
    let sids = pos;
    let times = sids.checked_add(sid_len).ok_or(CorruptBlock("length"))?;
    let values = times.checked_add(ts_len).ok_or(CorruptBlock("length"))?;
    let end = count
        .checked_mul(8)
        .and_then(|n| n.checked_add(values))
        .ok_or(CorruptBlock("length"))?;
    if end != bytes.len() {
        return Err(CorruptBlock("length mismatch"));
    }
    Ok(Layout {
        header: BlockHeader {
            count,
            min_ts,
            max_ts,
        },
        sids,
        times,
        values,
    })
}

pub fn header(bytes: &[u8]) -> Result<BlockHeader, CorruptBlock> {
    Ok(layout(bytes)?.header)
}

/// Calls `visit(series_id, timestamp, value)` for every point, in stored order.
pub fn decode(bytes: &[u8], mut visit: impl FnMut(u64, i64, f64)) -> Result<(), CorruptBlock> {
    let l = layout(bytes)?;
    let (mut sid_pos, mut ts_pos) = (l.sids, l.times);
    let sid_end = l.times;
    let ts_end = l.values;
    let (mut sid, mut ts) = (0u64, l.header.min_ts);
    for (i, raw) in bytes[l.values..].chunks_exact(8).enumerate() {
        sid = sid.wrapping_add(read_varint(&bytes[..sid_end], &mut sid_pos)?);
        ts = ts.wrapping_add(unzigzag(read_varint(&bytes[..ts_end], &mut ts_pos)?));
        let value = f64::from_le_bytes(raw.try_into().map_err(|_| CorruptBlock("value"))?);
        debug_assert!(i < l.header.count);
        visit(sid, ts, value);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_points_sorted_by_series_then_time() {
        let mut points = vec![
            (7, 1_700_000_000_500, 1.5),
            (3, 1_700_000_000_000, -0.0),
            (7, 1_700_000_000_100, f64::MAX),
            (3, -5, f64::MIN_POSITIVE),
            (u64::MAX, i64::MAX, 2.0),
            (0, i64::MIN, 3.0),
        ];
        let bytes = encode(&mut points.clone());
        points.sort_by_key(|p| (p.0, p.1));
        let mut back = Vec::new();
        decode(&bytes, |s, t, v| back.push((s, t, v))).unwrap();
        assert_eq!(back.len(), points.len());
        for (a, b) in back.iter().zip(&points) {
            assert_eq!((a.0, a.1, a.2.to_bits()), (b.0, b.1, b.2.to_bits()));
        }
        let h = header(&bytes).unwrap();
        assert_eq!((h.count, h.min_ts, h.max_ts), (6, i64::MIN, i64::MAX));
    }

    #[test]
    fn rejects_truncated_or_foreign_bytes() {
        let bytes = encode(&mut [(1, 10, 1.0), (2, 20, 2.0)]);
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut], |_, _, _| {}).is_err(), "cut at {cut}");
        }
        assert!(header(b"\x09garbage").is_err());
    }
}
