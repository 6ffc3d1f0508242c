//! Influx line protocol → metrics.
//!
//! `cpu,host=a usage_idle=97.5,usage_user=2i 1700000000000000000` becomes
//! two metrics, `cpu_usage_idle` and `cpu_usage_user`, each with the
//! dimension `host=a` (names mapped by [`names`](super::names)). Floats,
//! integers and unsigned integers are stored as numbers, booleans as 1 and
//! 0; a string field cannot be a metric value and is rejected as its own
//! item. Lines are parsed by InfluxData's `influxdb-line-protocol` crate
//! (the parser of InfluxDB 3, a port of the Go one); a line it refuses is
//! one rejected item, and the other lines are still stored. Every item
//! carries its line number (1-based, counting the body's physical lines).

use std::borrow::Cow;

use influxdb_line_protocol::{FieldValue, ParsedLine};

use self::plain::{PlainLine, PlainValue};
use super::dimension_set::DimensionSet;
use super::{Decoded, ItemError, names};
use crate::model::{Dimensions, Metric};

pub mod plain;

/// The unit of the timestamps in a body (`precision` query parameter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precision {
    Nanoseconds,
    Microseconds,
    Milliseconds,
    Seconds,
    Minutes,
    Hours,
}

impl Precision {
    /// The spellings of InfluxDB 2 (`ns`, `us`, `ms`, `s`) and 1.x (`n`,
    /// `u`, `ms`, `s`, `m`, `h`), accepted on both endpoints.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "ns" | "n" => Self::Nanoseconds,
            "us" | "u" | "µ" | "µs" => Self::Microseconds,
            "ms" => Self::Milliseconds,
            "s" => Self::Seconds,
            "m" => Self::Minutes,
            "h" => Self::Hours,
            _ => return None,
        })
    }

    /// `timestamp` in this unit as milliseconds since the epoch (rounded
    /// down), or `None` when that does not fit.
    fn to_millis(self, timestamp: i64) -> Option<i64> {
        match self {
            Self::Nanoseconds => Some(timestamp.div_euclid(1_000_000)),
            Self::Microseconds => Some(timestamp.div_euclid(1_000)),
            Self::Milliseconds => Some(timestamp),
            Self::Seconds => timestamp.checked_mul(1_000),
            Self::Minutes => timestamp.checked_mul(60_000),
            Self::Hours => timestamp.checked_mul(3_600_000),
        }
    }
}

/// What one body may hold.
#[derive(Clone, Copy, Debug)]
pub struct InfluxLimits {
    /// Items (one per field) per request; decoding stops past it.
    pub max_points: usize,
    /// Tags per line (`validation.max_dimensions`).
    pub max_dimensions: usize,
}

/// Why a whole body was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InfluxError {
    #[error(
        "the body holds more than {max} points (one per field), the limit per request (api.max_metrics_per_request)"
    )]
    TooManyPoints { max: usize },
}

/// Decodes a line-protocol body. Lines without a timestamp get `now_ms`.
pub fn decode_lines(
    body: &[u8],
    precision: Precision,
    now_ms: i64,
    limits: InfluxLimits,
) -> Result<Decoded, InfluxError> {
    let mut decoded = Decoded::default();
    // Only a body with more '=' than a line may hold needs each line's
    // counted (see `Lines::decode`).
    let equals = body.iter().filter(|&&b| b == b'=').count();
    let mut line = Lines {
        precision,
        now_ms,
        limits,
        check_line_size: equals > limits.max_dimensions + limits.max_points,
        plain: PlainLine::default(),
        out: &mut decoded,
    };
    match std::str::from_utf8(body) {
        // Without a quote or a backslash no newline is escaped or quoted:
        // lines end at every newline, found by memchr, not by the crate's
        // character-by-character scanner.
        Ok(text) if !body.iter().any(|&b| b == b'"' || b == b'\\') => {
            for (i, physical) in text.split('\n').enumerate() {
                line.decode(physical, u32::try_from(i + 1).unwrap_or(u32::MAX))?;
            }
        }
        // The crate's splitter knows that a newline inside a quoted string
        // field does not end the line.
        Ok(text) => {
            let mut number = 1u32;
            for physical in influxdb_line_protocol::split_lines(text) {
                line.decode(physical, number)?;
                number = number.saturating_add(1 + newlines(physical));
            }
        }
        // A line with bytes that are not UTF-8 is refused on its own; the
        // others are still read (each up to its newline).
        Err(_) => {
            for (i, physical) in body.split(|&b| b == b'\n').enumerate() {
                let number = u32::try_from(i + 1).unwrap_or(u32::MAX);
                match std::str::from_utf8(physical) {
                    Ok(text) => line.decode(text, number)?,
                    Err(_) => line.reject(
                        (
                            "invalid_line_protocol",
                            "the line is not valid UTF-8".to_owned(),
                        ),
                        number,
                    )?,
                }
            }
        }
    }
    Ok(decoded)
}

fn newlines(text: &str) -> u32 {
    u32::try_from(text.bytes().filter(|&b| b == b'\n').count()).unwrap_or(u32::MAX)
}

struct Lines<'a, 'b> {
    precision: Precision,
    now_ms: i64,
    limits: InfluxLimits,
    /// Whether a line may have more '=' than it may hold.
    check_line_size: bool,
    /// The plain-line reader's buffers, reused from line to line.
    plain: PlainLine<'b>,
    out: &'a mut Decoded,
}

impl<'b> Lines<'_, 'b> {
    fn decode(&mut self, text: &'b str, number: u32) -> Result<(), InfluxError> {
        // Parsing allocates per tag and field, some 20 times their bytes
        // for `,a=1`: a line's `=` signs bound how many it holds, so one
        // that could hold more than a request may use is refused unparsed.
        let pairs = if self.check_line_size {
            text.bytes().filter(|&b| b == b'=').count()
        } else {
            0
        };
        let max_pairs = self.limits.max_dimensions + self.limits.max_points;
        if pairs > max_pairs {
            return self.reject(
                (
                    "line_too_large",
                    format!(
                        "the line has {pairs} '=' signs; a line holds at most {max_pairs} tags and fields (validation.max_dimensions + api.max_metrics_per_request)"
                    ),
                ),
                number,
            );
        }
        let mut plain = std::mem::take(&mut self.plain);
        if plain::parse(text, &mut plain).is_some() {
            let outcome = self.plain_line(&plain, number);
            self.plain = plain;
            return outcome;
        }
        self.plain = plain;
        // `parse_lines` skips blank lines and `#` comments.
        for parsed in influxdb_line_protocol::parse_lines(text) {
            match parsed {
                Ok(parsed) => self.line(&parsed, number)?,
                Err(e) => self.reject(("invalid_line_protocol", e.to_string()), number)?,
            }
        }
        Ok(())
    }

    fn reject(&mut self, error: ItemError, number: u32) -> Result<(), InfluxError> {
        self.push(Err(error), number)
    }

    fn push(
        &mut self,
        item: crate::pipeline::write::DecodedMetric,
        number: u32,
    ) -> Result<(), InfluxError> {
        if self.out.len() == self.limits.max_points {
            return Err(InfluxError::TooManyPoints {
                max: self.limits.max_points,
            });
        }
        self.out.push(item, number);
        Ok(())
    }

    fn plain_line(&mut self, line: &PlainLine<'_>, number: u32) -> Result<(), InfluxError> {
        let fields = line.fields.iter().map(|&(field, value)| {
            let value = match value {
                PlainValue::F64(v) => v,
                PlainValue::I64(v) => v as f64,
                PlainValue::U64(v) => v as f64,
                PlainValue::Bool(v) => f64::from(u8::from(v)),
            };
            (field, Ok(value))
        });
        self.items(
            line.measurement,
            line.tags.iter().copied(),
            fields,
            line.timestamp,
            number,
        )
    }

    fn line(&mut self, line: &ParsedLine<'_>, number: u32) -> Result<(), InfluxError> {
        let tags = line
            .series
            .tag_set
            .iter()
            .flatten()
            .map(|(key, value)| (key.as_str(), value.as_str()));
        let fields = line
            .field_set
            .iter()
            .map(|(field, value)| (field.as_str(), number_of(field.as_str(), value)));
        self.items(
            line.series.measurement.as_str(),
            tags,
            fields,
            line.timestamp,
            number,
        )
    }

    /// One item per field, named `<measurement>_<field>`, with the tags as
    /// dimensions.
    fn items<'l>(
        &mut self,
        measurement: &str,
        tags: impl Iterator<Item = (&'l str, &'l str)>,
        fields: impl Iterator<Item = (&'l str, Result<f64, ItemError>)>,
        timestamp: Option<i64>,
        number: u32,
    ) -> Result<(), InfluxError> {
        let timestamp_ms = match timestamp {
            None => Ok(self.now_ms),
            Some(ts) => self.precision.to_millis(ts).ok_or_else(|| {
                (
                    "invalid_timestamp",
                    format!("timestamp {ts} in {:?} does not fit", self.precision),
                )
            }),
        };
        let mut set = DimensionSet::new(self.limits.max_dimensions);
        for (key, value) in tags {
            set.push(key, value);
        }
        let mut dimensions = set.finish();
        let mut fields = fields.peekable();
        while let Some((field, value)) = fields.next() {
            // Most lines have one field: it takes the dimensions, the
            // others get copies.
            let dimensions = if fields.peek().is_some() {
                dimensions.clone()
            } else {
                std::mem::replace(&mut dimensions, Ok(Dimensions::default()))
            };
            let item = timestamp_ms.clone().and_then(|timestamp_ms| {
                let value = value?;
                Ok(Metric {
                    name: metric_name(measurement, field),
                    value,
                    timestamp_ms,
                    dimensions: dimensions?,
                })
            });
            self.push(item, number)?;
        }
        Ok(())
    }
}

/// `<measurement>_<field>`, mapped by [`names::metric_name`]; one
/// allocation when the name needs no mapping.
fn metric_name(measurement: &str, field: &str) -> String {
    let joined = format!("{measurement}_{field}");
    if let Cow::Owned(mapped) = names::metric_name(&joined) {
        mapped
    } else {
        joined
    }
}

fn number_of(field: &str, value: &FieldValue<'_>) -> Result<f64, ItemError> {
    match value {
        FieldValue::F64(v) => Ok(*v),
        FieldValue::I64(v) => Ok(*v as f64),
        FieldValue::U64(v) => Ok(*v as f64),
        FieldValue::Boolean(v) => Ok(if *v { 1.0 } else { 0.0 }),
        FieldValue::String(_) => Err((
            "string_field",
            format!(
                "field {:?} is a string; only float, integer, unsigned and boolean fields are stored",
                field.chars().take(64).collect::<String>()
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::summary::{ok, summary};

    const NOW: i64 = 1_800_000_000_000;
    const LIMITS: InfluxLimits = InfluxLimits {
        max_points: 100,
        max_dimensions: 3,
    };

    fn decode(body: &str, precision: Precision) -> Decoded {
        decode_lines(body.as_bytes(), precision, NOW, LIMITS).unwrap()
    }

    #[test]
    fn fields_become_metrics_and_tags_dimensions() {
        let d = decode(
            "cpu,host=a,cpu-id=0 usage_idle=97.5,usage_user=2i,up=true,big=7u 1700000000000000000\n\
             \n\
             # a comment\n\
             mem free=0.5,ok=false\n",
            Precision::Nanoseconds,
        );
        assert_eq!(
            summary(&d),
            vec![
                (
                    1,
                    ok("cpu_usage_idle", 97.5, 1_700_000_000_000, "cpu_id=0,host=a")
                ),
                (
                    1,
                    ok("cpu_usage_user", 2.0, 1_700_000_000_000, "cpu_id=0,host=a")
                ),
                (1, ok("cpu_up", 1.0, 1_700_000_000_000, "cpu_id=0,host=a")),
                (1, ok("cpu_big", 7.0, 1_700_000_000_000, "cpu_id=0,host=a")),
                (4, ok("mem_free", 0.5, NOW, "")),
                (4, ok("mem_ok", 0.0, NOW, "")),
            ]
        );
    }

    #[test]
    fn precision_scales_timestamps_to_milliseconds() {
        for (precision, ts, ms) in [
            (
                Precision::Nanoseconds,
                1_700_000_000_123_456_789i64,
                1_700_000_000_123,
            ),
            (
                Precision::Microseconds,
                1_700_000_000_123_456,
                1_700_000_000_123,
            ),
            (
                Precision::Milliseconds,
                1_700_000_000_123,
                1_700_000_000_123,
            ),
            (Precision::Seconds, 1_700_000_000, 1_700_000_000_000),
            (Precision::Minutes, 28_333_333, 1_699_999_980_000),
            (Precision::Hours, 472_222, 1_699_999_200_000),
            (Precision::Nanoseconds, -1, -1),
        ] {
            let d = decode(&format!("m v=1 {ts}"), precision);
            assert_eq!(
                d.items[0].as_ref().unwrap().timestamp_ms,
                ms,
                "{precision:?}"
            );
        }
        let d = decode("m v=1 9223372036854775807", Precision::Hours);
        assert_eq!(summary(&d), vec![(1, Err("invalid_timestamp"))]);
        for (text, precision) in [
            ("ns", Precision::Nanoseconds),
            ("u", Precision::Microseconds),
            ("h", Precision::Hours),
        ] {
            assert_eq!(Precision::parse(text), Some(precision));
        }
        assert_eq!(Precision::parse("d"), None);
    }

    #[test]
    fn bad_lines_and_string_fields_are_items_with_their_line_numbers() {
        let d = decode(
            "good v=1\n\
             not line protocol\n\
             s text=\"multi\nline\",n=2\n\
             after v=3\n\
             dup,a=1,a=2 v=4\n\
             many,a=1,b=2,c=3,d=4 v=5\n",
            Precision::Nanoseconds,
        );
        assert_eq!(
            summary(&d),
            vec![
                (1, ok("good_v", 1.0, NOW, "")),
                (2, Err("invalid_line_protocol")),
                (3, Err("string_field")),
                (3, ok("s_n", 2.0, NOW, "")),
                (5, ok("after_v", 3.0, NOW, "")),
                (6, Err("duplicate_dimension")),
                (7, Err("too_many_dimensions")),
            ]
        );
    }

    #[test]
    fn lines_that_are_not_utf8_are_refused_alone() {
        let body = b"a v=1\nb,t=\xff v=2\nc v=3\n";
        let d = decode_lines(body, Precision::Nanoseconds, NOW, LIMITS).unwrap();
        assert_eq!(
            summary(&d),
            vec![
                (1, ok("a_v", 1.0, NOW, "")),
                (2, Err("invalid_line_protocol")),
                (3, ok("c_v", 3.0, NOW, "")),
            ]
        );
    }

    #[test]
    fn plain_bodies_number_and_decode_lines_as_the_crate_does() {
        // No quote or backslash: lines are split at each newline and
        // plain lines read without the crate; the rest still goes to it.
        let d = decode(
            "good,h=a v=1,w=2i 1000000\n\
             \n\
             # a comment\n\
             not line protocol\n\
             \tindented v=3\n\
             dup,a=1,a=2 v=4\n\
             flags ok=T,no=false,big=7u\n",
            Precision::Milliseconds,
        );
        assert_eq!(
            summary(&d),
            vec![
                (1, ok("good_v", 1.0, 1_000_000, "h=a")),
                (1, ok("good_w", 2.0, 1_000_000, "h=a")),
                (4, Err("invalid_line_protocol")),
                (5, ok("indented_v", 3.0, NOW, "")),
                (6, Err("duplicate_dimension")),
                (7, ok("flags_ok", 1.0, NOW, "")),
                (7, ok("flags_no", 0.0, NOW, "")),
                (7, ok("flags_big", 7.0, NOW, "")),
            ]
        );
    }

    #[test]
    fn a_line_that_could_hold_more_than_a_request_is_refused_unparsed() {
        let limits = InfluxLimits {
            max_points: 6,
            max_dimensions: 1,
        };
        // Seven '=' fit (1 tag + 6 fields); eight do not, escaped or not.
        let body = b"m,a=1 x=1,y=2\nm,a=1 x=1,y=2,z=3,w=4,v=5,u\\==7\nm,a=1 x=1,y=\"=\"\nn v=1";
        let d = decode_lines(body, Precision::Nanoseconds, NOW, limits).unwrap();
        assert_eq!(
            summary(&d),
            vec![
                (1, ok("m_x", 1.0, NOW, "a=1")),
                (1, ok("m_y", 2.0, NOW, "a=1")),
                (2, Err("line_too_large")),
                (3, ok("m_x", 1.0, NOW, "a=1")),
                (3, Err("string_field")),
                (4, ok("n_v", 1.0, NOW, "")),
            ]
        );
    }

    #[test]
    fn stops_at_the_point_limit() {
        let limits = InfluxLimits {
            max_points: 3,
            max_dimensions: 3,
        };
        assert!(decode_lines(b"m a=1,b=2,c=3", Precision::Nanoseconds, NOW, limits).is_ok());
        assert_eq!(
            decode_lines(b"m a=1,b=2\nm c=3,d=4", Precision::Nanoseconds, NOW, limits).err(),
            Some(InfluxError::TooManyPoints { max: 3 })
        );
    }

    #[test]
    fn names_outside_the_rules_are_mapped() {
        let d = decode("disk-io,_path=/ read-bytes=1", Precision::Nanoseconds);
        assert_eq!(
            summary(&d),
            vec![(1, ok("disk_io_read_bytes", 1.0, NOW, "key_path=/"))]
        );
    }
}
