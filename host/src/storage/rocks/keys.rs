//! Byte layout of every RocksDB key. Keeping it in one file is what makes the
//! tenant-isolation argument checkable: every key starts with the encoded
//! tenant, and the encoding is prefix-free, so a scan bounded by one tenant's
//! prefix can never reach another tenant's keys.
//!
//! Strings are written with an order-preserving, prefix-free escape: `0x00`
//! becomes `0x00 0xFF` and the string ends with `0x00 0x01`. Byte order of the
//! encodings is the byte order of the strings (so scans come back sorted the
//! way Rust sorts `String`s), and no encoding is a proper prefix of another
//! (so `"a"` never matches the prefix of `"ab"` or `"a\0"`).
//!
//! Column families and their keys (`E(x)` is the escaped string, `sid` a
//! big-endian u64 series id, `bucket` a big-endian sign-flipped i64 hour):
//!
//! | CF | key | value |
//! | --- | --- | --- |
//! | `series` | `E(tenant) sid` | `E(metric) (E(key) E(value))*`: the series' canonical form |
//! | `index` | `E(tenant) 0x01 E(metric)` | empty: metric catalog |
//! | `index` | `E(tenant) 0x02 E(metric) E(key)` | empty: dimension keys |
//! | `index` | `E(tenant) 0x04 E(metric) E(key) E(value) sid` | empty: inverted postings; also the source of distinct values (one seek per value) |
//! | `points` | `E(tenant) E(metric) bucket seq` | a columnar block (see `block.rs`) |
//! | `default` | `meta/…` | store metadata (boot counter) |

pub const CF_SERIES: &str = "series";
pub const CF_INDEX: &str = "index";
pub const CF_POINTS: &str = "points";

pub const KIND_METRIC: u8 = 0x01;
pub const KIND_KEY: u8 = 0x02;
// 0x03 is unused: distinct values come from the postings, so a new series
// with a never-seen value costs one put less per dimension.
pub const KIND_POSTING: u8 = 0x04;

/// Points are grouped into one-hour buckets so a query reads only the buckets
/// its time range overlaps and retention drops whole buckets.
pub const BUCKET_MS: i64 = 3_600_000;

/// Appends the escaped, terminated form of `s`.
pub fn push_str(out: &mut Vec<u8>, s: &str) {
    for &b in s.as_bytes() {
        out.push(b);
        if b == 0 {
            out.push(0xFF);
        }
    }
    out.extend_from_slice(&[0x00, 0x01]);
}

/// Reads one escaped string from the front of `bytes`; returns it and the rest.
pub fn take_str(bytes: &[u8]) -> Option<(String, &[u8])> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == 0 {
            match bytes.get(i + 1)? {
                0x01 => return Some((String::from_utf8(out).ok()?, &bytes[i + 2..])),
                0xFF => {
                    out.push(0);
                    i += 2;
                    continue;
                }
                _ => return None,
            }
        }
        out.push(b);
        i += 1;
    }
    None
}

/// Skips one escaped string; cheaper than [`take_str`] when the text is not needed.
pub fn skip_str(bytes: &[u8]) -> Option<&[u8]> {
    let mut i = 0;
    while i + 1 < bytes.len() {
        if bytes[i] == 0 {
            match bytes[i + 1] {
                0x01 => return Some(&bytes[i + 2..]),
                0xFF => i += 2,
                _ => return None,
            }
        } else {
            i += 1;
        }
    }
    None
}

pub fn push_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_be_bytes());
}

pub fn read_u64(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?))
}

pub fn bucket_of(ts_ms: i64) -> i64 {
    ts_ms.div_euclid(BUCKET_MS)
}

/// Big-endian with the sign bit flipped, so byte order is numeric order.
pub fn push_bucket(out: &mut Vec<u8>, bucket: i64) {
    out.extend_from_slice(&((bucket as u64) ^ (1 << 63)).to_be_bytes());
}

#[cfg(test)]
pub fn read_bucket(bytes: &[u8]) -> Option<i64> {
    Some((read_u64(bytes)? ^ (1 << 63)) as i64)
}

pub fn tenant_prefix(tenant: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(tenant.len() + 2);
    push_str(&mut out, tenant);
    out
}

/// The smallest key greater than every key that starts with `prefix`.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return end;
        }
    }
    // All 0xFF (never produced by our encodings): no finite upper bound;
    // the longest key we write is far shorter than this.
    vec![0xFF; 4096]
}

pub fn series_key(tenant_prefix: &[u8], sid: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(tenant_prefix.len() + 8);
    k.extend_from_slice(tenant_prefix);
    push_u64(&mut k, sid);
    k
}

/// `E(tenant) kind E(metric)`: the start of every index key of one metric.
pub fn index_prefix(tenant_prefix: &[u8], kind: u8, metric: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(tenant_prefix.len() + metric.len() + 3);
    k.extend_from_slice(tenant_prefix);
    k.push(kind);
    push_str(&mut k, metric);
    k
}

/// `E(tenant) E(metric)`: the start of every points key of one metric.
pub fn points_prefix(tenant_prefix: &[u8], metric: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(tenant_prefix.len() + metric.len() + 2);
    k.extend_from_slice(tenant_prefix);
    push_str(&mut k, metric);
    k
}

pub fn points_bucket_start(points_prefix: &[u8], bucket: i64) -> Vec<u8> {
    let mut k = Vec::with_capacity(points_prefix.len() + 16);
    k.extend_from_slice(points_prefix);
    push_bucket(&mut k, bucket);
    k
}

pub fn points_key(points_prefix: &[u8], bucket: i64, seq: u64) -> Vec<u8> {
    let mut k = points_bucket_start(points_prefix, bucket);
    push_u64(&mut k, seq);
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(s: &str) -> Vec<u8> {
        let mut v = Vec::new();
        push_str(&mut v, s);
        v
    }

    #[test]
    fn escaped_strings_keep_order_and_are_prefix_free() {
        let words = [
            "",
            "a",
            "a\0",
            "a\0b",
            "a\u{1}",
            "ab",
            "b",
            "é",
            "\0",
            "\u{10FFFF}",
        ];
        for x in words {
            for y in words {
                assert_eq!(enc(x).cmp(&enc(y)), x.cmp(y), "{x:?} vs {y:?}");
                if x != y {
                    assert!(!enc(y).starts_with(&enc(x)), "{x:?} prefixes {y:?}");
                }
            }
            let mut buf = enc(x);
            buf.extend_from_slice(b"tail");
            let (back, rest) = take_str(&buf).unwrap();
            assert_eq!(back, x);
            assert_eq!(rest, b"tail");
            assert_eq!(skip_str(&buf).unwrap(), b"tail");
        }
    }

    #[test]
    fn one_tenant_prefix_never_covers_another_tenant() {
        let a = tenant_prefix("a");
        let ab = tenant_prefix("ab");
        assert!(!ab.starts_with(&a));
        let end = prefix_end(&a);
        assert!(ab.as_slice() >= end.as_slice() || ab.as_slice() < a.as_slice());
    }

    #[test]
    fn buckets_sort_numerically_across_zero() {
        let mut prev = Vec::new();
        for b in [i64::MIN, -2, -1, 0, 1, 2, i64::MAX] {
            let mut k = Vec::new();
            push_bucket(&mut k, b);
            assert!(k > prev);
            assert_eq!(read_bucket(&k), Some(b));
            prev = k;
        }
        assert_eq!(bucket_of(-1), -1);
        assert_eq!(bucket_of(BUCKET_MS), 1);
    }
}
