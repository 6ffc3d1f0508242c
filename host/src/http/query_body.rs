//! The body of `POST /api/v1/query`, deserialized in one pass into typed,
//! bounded fields.
//!
//! No field is read as a generic `serde_json::Value`: a 16 KB gzipped body
//! can hold millions of array elements, and a `Value` tree of them costs
//! hundreds of MB. Lists keep at most their limit and only count the rest,
//! skipping it unread (no allocation), so the parser can still say "N
//! filters; the limit is 64". Where a scalar is expected, nested arrays and
//! objects are skipped and only their kind is kept for the error message.
//! The plugin aggregation's free-form `params` object is the one nested
//! value kept, with a bounded number of nodes.

use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// Most filters in one query.
pub const MAX_FILTERS: usize = 64;
/// Most `groupBy` keys.
pub const MAX_GROUP_BY: usize = 20;
/// Most values in one `in` filter.
pub const MAX_IN_VALUES: usize = 1_000;
/// Most JSON values (objects, arrays, scalars) in a plugin aggregation's
/// `params`.
pub const MAX_PARAMS_NODES: usize = 1_000;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QueryRequest {
    pub query_type: Option<String>,
    pub metric_name: Option<String>,
    pub aggregation: Option<AggregationBody>,
    pub time_range: Option<TimeRangeBody>,
    pub group_by: Option<Bounded<String, MAX_GROUP_BY>>,
    #[serde(default)]
    pub filters: Bounded<FilterBody, MAX_FILTERS>,
    pub step: Option<String>,
    pub limit: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeRangeBody {
    pub relative: Option<String>,
    pub start: Option<Scalar>,
    pub end: Option<Scalar>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterBody {
    pub key: String,
    pub op: String,
    pub value: FilterValue,
}

/// Up to `N` items, and how many the body held in all.
#[derive(Debug)]
pub struct Bounded<T, const N: usize> {
    pub items: Vec<T>,
    pub total: usize,
}

impl<T, const N: usize> Default for Bounded<T, N> {
    fn default() -> Self {
        Self {
            items: Vec::new(),
            total: 0,
        }
    }
}

impl<T, const N: usize> Bounded<T, N> {
    pub fn overflowed(&self) -> bool {
        self.total > N
    }
}

impl<'de, T: Deserialize<'de>, const N: usize> Deserialize<'de> for Bounded<T, N> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct BoundedVisitor<T, const N: usize>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>, const N: usize> Visitor<'de> for BoundedVisitor<T, N> {
            type Value = Bounded<T, N>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "a list of at most {N} items")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::new();
                while items.len() < N {
                    match seq.next_element()? {
                        Some(item) => items.push(item),
                        None => {
                            let total = items.len();
                            return Ok(Bounded { items, total });
                        }
                    }
                }
                let mut total = items.len();
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    total += 1;
                }
                Ok(Bounded { items, total })
            }
        }

        d.deserialize_seq(BoundedVisitor(PhantomData))
    }
}

/// A JSON value where a scalar is expected; arrays and objects are skipped.
#[derive(Clone, Debug, PartialEq)]
pub enum Scalar {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    Str(String),
    Array,
    Object,
}

impl Scalar {
    /// As a `Value` (nested kinds become their name), for the helpers that
    /// read scalars of either type.
    pub fn to_value(&self) -> Value {
        match self {
            Scalar::Null => Value::Null,
            Scalar::Bool(b) => Value::Bool(*b),
            Scalar::Number(n) => Value::Number(n.clone()),
            Scalar::Str(s) => Value::String(s.clone()),
            Scalar::Array => Value::String("an array".into()),
            Scalar::Object => Value::String("an object".into()),
        }
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Scalar, E> {
        Ok(Scalar::Null)
    }
    fn visit_none<E>(self) -> Result<Scalar, E> {
        Ok(Scalar::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Scalar, E> {
        Ok(Scalar::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Scalar, E> {
        Ok(Scalar::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Scalar, E> {
        Ok(Scalar::Number(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
        serde_json::Number::from_f64(v)
            .map(Scalar::Number)
            .ok_or_else(|| E::custom("a number must be finite"))
    }
    fn visit_str<E>(self, v: &str) -> Result<Scalar, E> {
        Ok(Scalar::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Scalar, E> {
        Ok(Scalar::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar::Array)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Object)
    }
}

/// A filter's `value`: a string, or for `in` a list of strings.
#[derive(Debug)]
pub enum FilterValue {
    Scalar(Scalar),
    List(InValues),
}

/// The strings of an `in` filter, up to [`MAX_IN_VALUES`].
#[derive(Debug, Default)]
pub struct InValues {
    pub values: Vec<String>,
    pub total: usize,
    /// Whether some element was not a string.
    pub non_string: bool,
}

impl<'de> Deserialize<'de> for FilterValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct FilterValueVisitor;

        impl<'de> Visitor<'de> for FilterValueVisitor {
            type Value = FilterValue;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or a list of strings")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<FilterValue, A::Error> {
                let mut list = InValues::default();
                while let Some(item) = seq.next_element::<Scalar>()? {
                    list.total += 1;
                    match item {
                        Scalar::Str(s) if list.values.len() < MAX_IN_VALUES => list.values.push(s),
                        Scalar::Str(_) => {}
                        _ => list.non_string = true,
                    }
                }
                Ok(FilterValue::List(list))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<FilterValue, A::Error> {
                ScalarVisitor.visit_map(map).map(FilterValue::Scalar)
            }
            fn visit_unit<E>(self) -> Result<FilterValue, E> {
                Ok(FilterValue::Scalar(Scalar::Null))
            }
            fn visit_bool<E>(self, v: bool) -> Result<FilterValue, E> {
                Ok(FilterValue::Scalar(Scalar::Bool(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<FilterValue, E> {
                Ok(FilterValue::Scalar(Scalar::Number(v.into())))
            }
            fn visit_u64<E>(self, v: u64) -> Result<FilterValue, E> {
                Ok(FilterValue::Scalar(Scalar::Number(v.into())))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<FilterValue, E> {
                ScalarVisitor.visit_f64(v).map(FilterValue::Scalar)
            }
            fn visit_str<E>(self, v: &str) -> Result<FilterValue, E> {
                Ok(FilterValue::Scalar(Scalar::Str(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<FilterValue, E> {
                Ok(FilterValue::Scalar(Scalar::Str(v)))
            }
        }

        d.deserialize_any(FilterValueVisitor)
    }
}

/// `aggregation`: a built-in's name, or `{"plugin":..,"params":{..}}`.
#[derive(Debug)]
pub enum AggregationBody {
    Builtin(Scalar),
    Plugin(PluginSpec),
}

#[derive(Debug, Default)]
pub struct PluginSpec {
    pub plugin: Option<Scalar>,
    /// `None` when absent or null.
    pub params: Option<Value>,
    /// Something other than `plugin` and an object (or null) `params`.
    pub malformed: bool,
}

impl<'de> Deserialize<'de> for AggregationBody {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct AggregationVisitor;

        impl<'de> Visitor<'de> for AggregationVisitor {
            type Value = AggregationBody;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an aggregation name or {\"plugin\":..,\"params\":{..}}")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<AggregationBody, A::Error> {
                let mut spec = PluginSpec::default();
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "plugin" if spec.plugin.is_none() => spec.plugin = Some(map.next_value()?),
                        "params" if spec.params.is_none() => {
                            let nodes = std::cell::Cell::new(0);
                            match map.next_value_seed(BoundedJson { nodes: &nodes })? {
                                Value::Null => {}
                                params @ Value::Object(_) => spec.params = Some(params),
                                _ => spec.malformed = true,
                            }
                        }
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                            spec.malformed = true;
                        }
                    }
                }
                Ok(AggregationBody::Plugin(spec))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<AggregationBody, A::Error> {
                ScalarVisitor.visit_seq(seq).map(AggregationBody::Builtin)
            }
            fn visit_unit<E>(self) -> Result<AggregationBody, E> {
                Ok(AggregationBody::Builtin(Scalar::Null))
            }
            fn visit_bool<E>(self, v: bool) -> Result<AggregationBody, E> {
                Ok(AggregationBody::Builtin(Scalar::Bool(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<AggregationBody, E> {
                Ok(AggregationBody::Builtin(Scalar::Number(v.into())))
            }
            fn visit_u64<E>(self, v: u64) -> Result<AggregationBody, E> {
                Ok(AggregationBody::Builtin(Scalar::Number(v.into())))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<AggregationBody, E> {
                ScalarVisitor.visit_f64(v).map(AggregationBody::Builtin)
            }
            fn visit_str<E>(self, v: &str) -> Result<AggregationBody, E> {
                Ok(AggregationBody::Builtin(Scalar::Str(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<AggregationBody, E> {
                Ok(AggregationBody::Builtin(Scalar::Str(v)))
            }
        }

        d.deserialize_any(AggregationVisitor)
    }
}

/// Any JSON value of at most [`MAX_PARAMS_NODES`] values in all; past
/// that, deserialization fails (the depth is bounded by serde_json's own
/// recursion limit).
struct BoundedJson<'a> {
    nodes: &'a std::cell::Cell<usize>,
}

impl BoundedJson<'_> {
    fn count<E: de::Error>(&self) -> Result<(), E> {
        let n = self.nodes.get() + 1;
        self.nodes.set(n);
        if n > MAX_PARAMS_NODES {
            return Err(E::custom(format_args!(
                "params holds more than {MAX_PARAMS_NODES} values, the limit"
            )));
        }
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for BoundedJson<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for BoundedJson<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        self.count()?;
        Ok(Value::Null)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        self.count()?;
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        self.count()?;
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        self.count()?;
        Ok(Value::Number(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        self.count()?;
        serde_json::Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("a number must be finite"))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        self.count()?;
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        self.count()?;
        Ok(Value::String(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        self.count()?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(BoundedJson { nodes: self.nodes })? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        self.count()?;
        let mut object = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(BoundedJson { nodes: self.nodes })?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_keep_their_limit_and_count_the_rest() {
        let many: Vec<String> = (0..100).map(|i| format!("k{i}")).collect();
        let body = serde_json::json!({"groupBy": many, "filters": []});
        let q: QueryRequest = serde_json::from_value(body).unwrap();
        let group_by = q.group_by.unwrap();
        assert_eq!((group_by.items.len(), group_by.total), (MAX_GROUP_BY, 100));
        assert!(group_by.overflowed());
    }

    #[test]
    fn a_huge_in_list_keeps_only_its_limit() {
        let body = format!(
            r#"{{"filters":[{{"key":"k","op":"in","value":[{}]}}]}}"#,
            vec!["\"v\""; 200_000].join(",")
        );
        let q: QueryRequest = serde_json::from_str(&body).unwrap();
        let FilterValue::List(list) = &q.filters.items[0].value else {
            panic!()
        };
        assert_eq!((list.values.len(), list.total), (MAX_IN_VALUES, 200_000));
        assert!(list.values.capacity() <= 2 * MAX_IN_VALUES);
    }

    #[test]
    fn nested_values_where_scalars_belong_are_skipped() {
        let q: QueryRequest =
            serde_json::from_str(r#"{"timeRange":{"start":[[1,2],[3]],"end":{"a":[1]}}}"#).unwrap();
        let range = q.time_range.unwrap();
        assert_eq!(
            (range.start, range.end),
            (Some(Scalar::Array), Some(Scalar::Object))
        );
    }

    #[test]
    fn plugin_params_are_bounded() {
        let small = r#"{"aggregation":{"plugin":"p","params":{"a":[1,2,{"b":null}]}}}"#;
        let q: QueryRequest = serde_json::from_str(small).unwrap();
        let Some(AggregationBody::Plugin(spec)) = q.aggregation else {
            panic!()
        };
        assert_eq!(
            spec.params.unwrap().to_string(),
            r#"{"a":[1,2,{"b":null}]}"#
        );
        let big = format!(
            r#"{{"aggregation":{{"plugin":"p","params":{{"a":[{}]}}}}}}"#,
            vec!["1"; 5_000].join(",")
        );
        let err = serde_json::from_str::<QueryRequest>(&big).unwrap_err();
        assert!(err.to_string().contains("params holds more than"), "{err}");
    }
}
