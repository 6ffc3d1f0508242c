//! The decoder for `POST /api/v1/write` bodies.
//!
//! One pass over the bytes, straight into [`Metric`]s: no intermediate
//! `serde_json::Value`, no second parse. A metric with a field of the wrong
//! type (`"value":"abc"`, a missing name, a number as a dimension value) does
//! not fail the request: the decoder consumes it and yields a per-metric
//! error, so the rest of the batch is still stored. Only JSON that is not
//! JSON, or an envelope of the wrong shape, fails the whole request.

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;

use compact_str::CompactString;
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::model::{Dimensions, Metric, ValidationError};
use crate::pipeline::write::DecodedMetric;

/// Why a whole write body was refused.
#[derive(Debug, thiserror::Error)]
pub enum WriteBodyError {
    #[error("{0}")]
    Json(serde_json::Error),
    #[error("the batch holds more than {max} metrics, the limit per request")]
    TooManyMetrics { max: usize },
}

/// What one body may hold.
#[derive(Clone, Copy, Debug)]
pub struct WriteBodyLimits {
    /// Metrics per request; decoding stops (without parsing the rest) past it.
    pub max_metrics: usize,
    /// Dimensions per metric (`validation.max_dimensions`): a metric with
    /// more is rejected by index, and the ones past the limit are counted
    /// but never kept, so a million dimensions cost no memory.
    pub max_dimensions: usize,
}

/// Decodes `{"metrics":[...]}`. Metrics without a timestamp get `now_ms`.
pub fn decode_write_body(
    bytes: &[u8],
    now_ms: i64,
    limits: WriteBodyLimits,
) -> Result<Vec<DecodedMetric>, WriteBodyError> {
    let max_metrics = limits.max_metrics;
    let overflow = Cell::new(false);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let envelope = EnvelopeSeed {
        now_ms,
        limits,
        overflow: &overflow,
    };
    let result = envelope.deserialize(&mut de).and_then(|items| {
        de.end()?;
        Ok(items)
    });
    match result {
        Ok(items) => Ok(items),
        Err(_) if overflow.get() => Err(WriteBodyError::TooManyMetrics { max: max_metrics }),
        Err(e) => Err(WriteBodyError::Json(e)),
    }
}

struct EnvelopeSeed<'a> {
    now_ms: i64,
    limits: WriteBodyLimits,
    overflow: &'a Cell<bool>,
}

impl<'de> DeserializeSeed<'de> for EnvelopeSeed<'_> {
    type Value = Vec<DecodedMetric>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for EnvelopeSeed<'_> {
    type Value = Vec<DecodedMetric>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(r#"an object {"metrics":[...]}"#)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut metrics = None;
        while let Some(FieldKey(key)) = map.next_key()? {
            match &*key {
                "metrics" if metrics.is_none() => {
                    metrics = Some(map.next_value_seed(MetricsSeed {
                        now_ms: self.now_ms,
                        limits: self.limits,
                        overflow: self.overflow,
                    })?)
                }
                "metrics" => return Err(de::Error::duplicate_field("metrics")),
                other => return Err(de::Error::unknown_field(other, &["metrics"])),
            }
        }
        metrics.ok_or_else(|| de::Error::missing_field("metrics"))
    }
}

struct MetricsSeed<'a> {
    now_ms: i64,
    limits: WriteBodyLimits,
    overflow: &'a Cell<bool>,
}

impl<'de> DeserializeSeed<'de> for MetricsSeed<'_> {
    type Value = Vec<DecodedMetric>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for MetricsSeed<'_> {
    type Value = Vec<DecodedMetric>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of metrics")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let max_metrics = self.limits.max_metrics;
        let mut items = Vec::with_capacity(max_metrics.min(1024));
        while let Some(item) = seq.next_element_seed(MetricSeed {
            now_ms: self.now_ms,
            max_dimensions: self.limits.max_dimensions,
        })? {
            if items.len() == max_metrics {
                self.overflow.set(true);
                return Err(de::Error::custom("too many metrics"));
            }
            items.push(item);
        }
        Ok(items)
    }
}

/// A field name, borrowed from the body when it has no escapes (no
/// allocation for the four field names of every metric).
struct FieldKey<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for FieldKey<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(FieldKeyVisitor)
    }
}

struct FieldKeyVisitor;

impl<'de> Visitor<'de> for FieldKeyVisitor {
    type Value = FieldKey<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(FieldKey(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(FieldKey(Cow::Owned(v.to_owned())))
    }
}

/// Any JSON value, read shallowly: nested arrays and objects are skipped,
/// only their kind is kept (for error messages).
enum Shallow {
    Null,
    Bool,
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(CompactString),
    Array,
    Object,
}

impl Shallow {
    fn kind(&self) -> &'static str {
        match self {
            Shallow::Null => "null",
            Shallow::Bool => "a boolean",
            Shallow::Int(_) | Shallow::UInt(_) | Shallow::Float(_) => "a number",
            Shallow::Str(_) => "a string",
            Shallow::Array => "an array",
            Shallow::Object => "an object",
        }
    }
}

impl<'de> Deserialize<'de> for Shallow {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ShallowVisitor)
    }
}

struct ShallowVisitor;

impl<'de> Visitor<'de> for ShallowVisitor {
    type Value = Shallow;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E>(self) -> Result<Shallow, E> {
        Ok(Shallow::Null)
    }
    fn visit_none<E>(self) -> Result<Shallow, E> {
        Ok(Shallow::Null)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Shallow, E> {
        Ok(Shallow::Bool)
    }
    fn visit_i64<E>(self, v: i64) -> Result<Shallow, E> {
        Ok(Shallow::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Shallow, E> {
        Ok(Shallow::UInt(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Shallow, E> {
        Ok(Shallow::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Shallow, E> {
        Ok(Shallow::Str(v.into()))
    }
    fn visit_string<E>(self, v: String) -> Result<Shallow, E> {
        Ok(Shallow::Str(v.into()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Shallow, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Shallow::Array)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Shallow, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Shallow::Object)
    }
}

/// A per-metric problem: `(code, message)`.
type ItemError = (&'static str, String);

struct MetricSeed {
    now_ms: i64,
    max_dimensions: usize,
}

impl<'de> DeserializeSeed<'de> for MetricSeed {
    type Value = DecodedMetric;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl MetricSeed {
    fn not_an_object(kind: &str) -> DecodedMetric {
        Err((
            "invalid_metric",
            format!("each metric must be a JSON object, got {kind}"),
        ))
    }
}

impl<'de> Visitor<'de> for MetricSeed {
    type Value = DecodedMetric;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a metric object")
    }

    fn visit_unit<E>(self) -> Result<DecodedMetric, E> {
        Ok(Self::not_an_object("null"))
    }
    fn visit_bool<E>(self, _: bool) -> Result<DecodedMetric, E> {
        Ok(Self::not_an_object("a boolean"))
    }
    fn visit_i64<E>(self, _: i64) -> Result<DecodedMetric, E> {
        Ok(Self::not_an_object("a number"))
    }
    fn visit_u64<E>(self, _: u64) -> Result<DecodedMetric, E> {
        Ok(Self::not_an_object("a number"))
    }
    fn visit_f64<E>(self, _: f64) -> Result<DecodedMetric, E> {
        Ok(Self::not_an_object("a number"))
    }
    fn visit_str<E>(self, _: &str) -> Result<DecodedMetric, E> {
        Ok(Self::not_an_object("a string"))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<DecodedMetric, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Self::not_an_object("an array"))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<DecodedMetric, A::Error> {
        let mut name: Option<String> = None;
        let mut value: Option<f64> = None;
        let mut timestamp: Option<i64> = None;
        let mut dimensions: Option<Dimensions> = None;
        let mut first_error: Option<ItemError> = None;
        let mut seen = [false; 4];
        let note = |e: ItemError, first: &mut Option<ItemError>| {
            first.get_or_insert(e);
        };
        while let Some(FieldKey(key)) = map.next_key()? {
            let slot = match &*key {
                "name" => 0,
                "value" => 1,
                "timestamp" => 2,
                "dimensions" => 3,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    note(
                        (
                            "unknown_field",
                            format!(
                                "unknown field {:?}; a metric has name, value, timestamp and dimensions",
                                truncate(&key)
                            ),
                        ),
                        &mut first_error,
                    );
                    continue;
                }
            };
            if std::mem::replace(&mut seen[slot], true) {
                map.next_value::<IgnoredAny>()?;
                note(
                    ("duplicate_field", format!("field {key:?} appears twice")),
                    &mut first_error,
                );
                continue;
            }
            match slot {
                0 => match map.next_value::<Shallow>()? {
                    Shallow::Str(s) => name = Some(s.into_string()),
                    other => note(
                        (
                            "invalid_name",
                            format!("name must be a string, got {}", other.kind()),
                        ),
                        &mut first_error,
                    ),
                },
                1 => match map.next_value::<Shallow>()? {
                    Shallow::Int(i) => value = Some(i as f64),
                    Shallow::UInt(u) => value = Some(u as f64),
                    Shallow::Float(f) => value = Some(f),
                    other => note(
                        (
                            "invalid_value",
                            format!("value must be a number, got {}", other.kind()),
                        ),
                        &mut first_error,
                    ),
                },
                2 => match map.next_value::<Shallow>()? {
                    Shallow::Int(i) => timestamp = Some(i),
                    Shallow::UInt(u) => match i64::try_from(u) {
                        Ok(i) => timestamp = Some(i),
                        Err(_) => note(timestamp_error("a number out of range"), &mut first_error),
                    },
                    Shallow::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => {
                        timestamp = Some(f as i64)
                    }
                    Shallow::Null => {}
                    other => note(timestamp_error(other.kind()), &mut first_error),
                },
                _ => match map
                    .next_value_seed(DimensionsVisitor {
                        max: self.max_dimensions,
                    })?
                    .0
                {
                    Ok(d) => dimensions = Some(d),
                    Err(e) => note(e, &mut first_error),
                },
            }
        }
        if let Some(e) = first_error {
            return Ok(Err(e));
        }
        let Some(name) = name else {
            return Ok(Err(("missing_name", "the metric has no name".into())));
        };
        let Some(value) = value else {
            return Ok(Err(("missing_value", "the metric has no value".into())));
        };
        Ok(Ok(Metric {
            name,
            value,
            timestamp_ms: timestamp.unwrap_or(self.now_ms),
            dimensions: dimensions.unwrap_or_default(),
        }))
    }
}

fn timestamp_error(kind: &str) -> ItemError {
    (
        "invalid_timestamp",
        format!("timestamp must be an integer number of milliseconds since the epoch, got {kind}"),
    )
}

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

/// `dimensions`: an object of string values, or null for none.
struct DimensionsField(Result<Dimensions, ItemError>);

/// Keeps at most `max` dimensions.
struct DimensionsVisitor {
    max: usize,
}

impl<'de> DeserializeSeed<'de> for DimensionsVisitor {
    type Value = DimensionsField;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<DimensionsField, D::Error> {
        d.deserialize_any(self)
    }
}

impl DimensionsVisitor {
    fn wrong(kind: &str) -> DimensionsField {
        DimensionsField(Err((
            "invalid_dimensions",
            format!("dimensions must be an object of string values, got {kind}"),
        )))
    }
}

impl<'de> Visitor<'de> for DimensionsVisitor {
    type Value = DimensionsField;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object of string values")
    }
    fn visit_unit<E>(self) -> Result<DimensionsField, E> {
        Ok(DimensionsField(Ok(Dimensions::new())))
    }
    fn visit_bool<E>(self, _: bool) -> Result<DimensionsField, E> {
        Ok(Self::wrong("a boolean"))
    }
    fn visit_i64<E>(self, _: i64) -> Result<DimensionsField, E> {
        Ok(Self::wrong("a number"))
    }
    fn visit_u64<E>(self, _: u64) -> Result<DimensionsField, E> {
        Ok(Self::wrong("a number"))
    }
    fn visit_f64<E>(self, _: f64) -> Result<DimensionsField, E> {
        Ok(Self::wrong("a number"))
    }
    fn visit_str<E>(self, _: &str) -> Result<DimensionsField, E> {
        Ok(Self::wrong("a string"))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<DimensionsField, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Self::wrong("an array"))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<DimensionsField, A::Error> {
        let mut pairs = Vec::with_capacity(map.size_hint().unwrap_or(8).min(self.max));
        let mut error = None;
        let mut count = 0usize;
        loop {
            if count >= self.max {
                // Past the limit the metric is rejected anyway: count the
                // rest without keeping (or allocating) any of it.
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {
                    count += 1;
                }
                break;
            }
            let Some(key) = map.next_key::<CompactString>()? else {
                break;
            };
            count += 1;
            match map.next_value::<Shallow>()? {
                Shallow::Str(v) => pairs.push((key, v)),
                other => {
                    error.get_or_insert_with(|| {
                        (
                            "invalid_dimensions",
                            format!(
                                "dimension {:?} must have a string value, got {}",
                                truncate(&key),
                                other.kind()
                            ),
                        )
                    });
                }
            }
        }
        if count > self.max {
            let too_many = ValidationError::TooManyDimensions {
                count,
                max: self.max,
            };
            return Ok(DimensionsField(Err((
                too_many.code(),
                too_many.to_string(),
            ))));
        }
        Ok(DimensionsField(match error {
            Some(e) => Err(e),
            None => Ok(Dimensions::from_pairs(pairs)),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    fn limits(max_metrics: usize) -> WriteBodyLimits {
        WriteBodyLimits {
            max_metrics,
            max_dimensions: 20,
        }
    }

    fn decode(body: &str) -> Result<Vec<DecodedMetric>, WriteBodyError> {
        decode_write_body(body.as_bytes(), NOW, limits(3))
    }

    fn codes(body: &str) -> Vec<Option<&'static str>> {
        decode(body)
            .unwrap()
            .into_iter()
            .map(|r| r.err().map(|(c, _)| c))
            .collect()
    }

    #[test]
    fn decodes_a_full_metric_and_fills_missing_timestamps() {
        let items = decode(
            r#"{"metrics":[{"name":"a","value":1.5,"timestamp":7,"dimensions":{"k":"v","b":"\u00e9"}},{"name":"b","value":2}]}"#,
        )
        .unwrap();
        let first = items[0].as_ref().unwrap();
        assert_eq!(
            (first.name.as_str(), first.value, first.timestamp_ms),
            ("a", 1.5, 7)
        );
        assert_eq!(first.dimensions.get("b"), Some("é"));
        let second = items[1].as_ref().unwrap();
        assert_eq!((second.timestamp_ms, second.dimensions.len()), (NOW, 0));
    }

    #[test]
    fn wrong_types_are_per_metric_errors() {
        let body = r#"{"metrics":[
            {"name":"a","value":"abc"},
            {"value":1},
            {"name":1,"value":1},
            {"name":"a"},
            {"name":"a","value":1,"timestamp":"x"},
            {"name":"a","value":1,"dimensions":{"k":1}},
            {"name":"a","value":1,"dimensions":[]},
            {"name":"a","value":1,"extra":{"nested":[1,2]}},
            {"name":"a","value":1,"value":2},
            [1,2],
            "x",
            {"name":"ok","value":1,"timestamp":1.0e3,"dimensions":null}
        ]}"#;
        let got = decode_write_body(body.as_bytes(), NOW, limits(100))
            .unwrap()
            .into_iter()
            .map(|r| r.err().map(|(c, _)| c))
            .collect::<Vec<_>>();
        assert_eq!(
            got,
            vec![
                Some("invalid_value"),
                Some("missing_name"),
                Some("invalid_name"),
                Some("missing_value"),
                Some("invalid_timestamp"),
                Some("invalid_dimensions"),
                Some("invalid_dimensions"),
                Some("unknown_field"),
                Some("duplicate_field"),
                Some("invalid_metric"),
                Some("invalid_metric"),
                None,
            ]
        );
    }

    #[test]
    fn whole_body_problems_fail_the_request() {
        for bad in [
            "",
            "{",
            "[]",
            "{}",
            r#"{"metrics":{}}"#,
            r#"{"metrics":[],"x":1}"#,
            r#"{"metrics":[{"name":"a","value":1}]} trailing"#,
            r#"{"metrics":[{"name":"a","value":1e999}]}"#,
        ] {
            assert!(
                matches!(decode(bad), Err(WriteBodyError::Json(_))),
                "{bad:?}"
            );
        }
        assert_eq!(codes(r#"{"metrics":[]}"#), vec![]);
    }

    #[test]
    fn stops_at_the_metric_limit() {
        let body = r#"{"metrics":[{"name":"a","value":1},{"name":"a","value":1},{"name":"a","value":1},{"name":"a","value":1}]}"#;
        assert!(matches!(
            decode(body),
            Err(WriteBodyError::TooManyMetrics { max: 3 })
        ));
    }

    #[test]
    fn dimensions_past_the_limit_reject_the_metric_without_being_kept() {
        let many: Vec<String> = (0..100_000).map(|i| format!("\"k{i}\":\"v\"")).collect();
        let body = format!(
            r#"{{"metrics":[{{"name":"a","value":1,"dimensions":{{{}}}}},{{"name":"b","value":1,"dimensions":{{"k":"v"}}}}]}}"#,
            many.join(",")
        );
        let items = decode_write_body(body.as_bytes(), NOW, limits(10)).unwrap();
        let (code, message) = items[0].as_ref().unwrap_err();
        assert_eq!(*code, "too_many_dimensions");
        assert_eq!(message, "100000 dimensions; the limit is 20");
        assert_eq!(items[1].as_ref().unwrap().dimensions.len(), 1);
    }
}
