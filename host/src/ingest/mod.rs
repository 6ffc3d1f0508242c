//! Decoders for the agents' wire formats: Prometheus remote write, OTLP
//! metrics and Influx line protocol. Each turns a request body
//! into the same [`DecodedMetric`] items as `POST /api/v1/write`, with a
//! per-item error where an item cannot be a metric, so every protocol goes
//! through the one write pipeline. No HTTP types here; the handlers in
//! `http/` decide status codes.
//!
//! - [`names`]: the one rule that maps foreign metric and label names onto
//!   the names the write path accepts.
//! - [`dimension_set`]: labels/tags → [`Dimensions`](crate::model::Dimensions)
//!   with the dimension limit and duplicate checks every protocol shares.
//! - [`decoded_size`]: what a body will take in memory once decoded,
//!   measured before decoding, so a small body cannot decode into a huge
//!   one.
//! - [`remote_write`]: Prometheus remote write 1.0 (snappy + protobuf).
//! - [`otlp`]: OTLP metrics (protobuf or JSON), histograms and summaries
//!   translated as Prometheus does.
//! - [`influx`]: Influx line protocol (v1 `/write`, v2 `/api/v2/write`).

pub mod decoded_size;
pub mod dimension_set;
pub mod influx;
pub mod names;
pub mod otlp;
pub mod remote_write;

use crate::pipeline::write::DecodedMetric;

/// A per-item problem: `(code, message)`, as the write pipeline reports it.
pub type ItemError = (&'static str, String);

/// Decoded items and, for each, where it came from in the request (a line
/// number, a time series' position): `origins[i]` belongs to `items[i]`.
#[derive(Debug, Default)]
pub struct Decoded {
    pub items: Vec<DecodedMetric>,
    pub origins: Vec<u32>,
}

impl Decoded {
    fn push(&mut self, item: DecodedMetric, origin: u32) {
        self.items.push(item);
        self.origins.push(origin);
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// What the decoders' unit tests compare: per item, its origin and either
/// `(name, value, timestamp, "k=v,...")` or the rejection's code.
#[cfg(test)]
pub(crate) mod summary {
    use super::Decoded;

    pub type Item = Result<(String, f64, i64, String), &'static str>;

    pub fn summary(d: &Decoded) -> Vec<(u32, Item)> {
        d.items
            .iter()
            .zip(&d.origins)
            .map(|(item, &origin)| {
                let item = item
                    .as_ref()
                    .map(|m| {
                        let dims: Vec<String> = m
                            .dimensions
                            .iter()
                            .map(|(k, v)| format!("{k}={v}"))
                            .collect();
                        (m.name.clone(), m.value, m.timestamp_ms, dims.join(","))
                    })
                    .map_err(|(code, _)| *code);
                (origin, item)
            })
            .collect()
    }

    pub fn ok(name: &str, value: f64, ts: i64, dims: &str) -> Item {
        Ok((name.into(), value, ts, dims.into()))
    }
}
