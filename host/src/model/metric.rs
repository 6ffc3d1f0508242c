use super::Dimensions;

/// One measurement. Validated before it reaches a plugin or a store.
#[derive(Clone, Debug, PartialEq)]
pub struct Metric {
    pub name: String,
    pub value: f64,
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    pub dimensions: Dimensions,
}

impl Metric {
    /// A metric of nothing, which allocates nothing: a placeholder for one
    /// moved out of a batch and back.
    pub fn empty() -> Self {
        Self {
            name: String::new(),
            value: 0.0,
            timestamp_ms: 0,
            dimensions: Dimensions::new(),
        }
    }

    /// Writes the metric's series (name and dimensions) into `buf` in one
    /// canonical form, for hashing: two metrics have the same bytes exactly
    /// when they belong to the same series. The separators are bytes that
    /// valid names and keys never hold (0xff, 0x00); values can hold any
    /// UTF-8 but never 0xff, which is not valid UTF-8.
    pub fn write_series_key(&self, buf: &mut Vec<u8>) {
        buf.clear();
        buf.extend_from_slice(self.name.as_bytes());
        for (k, v) in self.dimensions.iter() {
            buf.push(0xff);
            buf.extend_from_slice(k.as_bytes());
            buf.push(0x00);
            buf.extend_from_slice(v.as_bytes());
        }
    }
}
