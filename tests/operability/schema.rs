//! A small JSON Schema checker for the subset the OpenAPI document uses:
//! `$ref`, `type` (one or a list), `required`, `properties`,
//! `additionalProperties`, `items`, `enum`, `oneOf`/`anyOf`, `minItems`.

use serde_json::Value;

pub struct Checker<'a> {
    pub document: &'a Value,
}

impl Checker<'_> {
    fn resolve<'s>(&'s self, schema: &'s Value) -> &'s Value {
        match schema.get("$ref").and_then(Value::as_str) {
            Some(reference) => {
                let pointer = reference.trim_start_matches('#');
                self.document
                    .pointer(pointer)
                    .unwrap_or_else(|| panic!("dangling $ref {reference}"))
            }
            None => schema,
        }
    }

    /// Every place where `value` breaks `schema`, as `path: problem`.
    pub fn check(&self, schema: &Value, value: &Value, path: &str, problems: &mut Vec<String>) {
        let schema = self.resolve(schema);
        if let Some(alternatives) = schema.get("oneOf").or_else(|| schema.get("anyOf")) {
            let matches = alternatives.as_array().unwrap().iter().any(|alt| {
                let mut inner = Vec::new();
                self.check(alt, value, path, &mut inner);
                inner.is_empty()
            });
            if !matches {
                problems.push(format!("{path}: matches none of the alternatives: {value}"));
            }
            return;
        }
        if let Some(types) = schema.get("type") {
            let allowed: Vec<&str> = match types {
                Value::String(t) => vec![t.as_str()],
                Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
                _ => vec![],
            };
            let actual = match value {
                Value::Null => "null",
                Value::Bool(_) => "boolean",
                Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
                Value::Number(_) => "number",
                Value::String(_) => "string",
                Value::Array(_) => "array",
                Value::Object(_) => "object",
            };
            let ok =
                allowed.contains(&actual) || (actual == "integer" && allowed.contains(&"number"));
            if !ok {
                problems.push(format!("{path}: is {actual}, documented as {allowed:?}"));
                return;
            }
        }
        if let Some(options) = schema.get("enum").and_then(Value::as_array)
            && !options.contains(value)
        {
            problems.push(format!("{path}: {value} is not one of {options:?}"));
        }
        if let Value::Object(object) = value {
            for required in schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let key = required.as_str().unwrap();
                if !object.contains_key(key) {
                    problems.push(format!("{path}: required field `{key}` missing"));
                }
            }
            let properties = schema.get("properties").and_then(Value::as_object);
            for (key, field) in object {
                let field_path = format!("{path}.{key}");
                match properties.and_then(|p| p.get(key)) {
                    Some(field_schema) => self.check(field_schema, field, &field_path, problems),
                    None => match schema.get("additionalProperties") {
                        Some(Value::Bool(false)) => {
                            problems.push(format!("{field_path}: undocumented field"))
                        }
                        Some(extra @ Value::Object(_)) => {
                            self.check(extra, field, &field_path, problems)
                        }
                        _ => {}
                    },
                }
            }
        }
        if let Value::Array(items) = value {
            if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
                && (items.len() as u64) < min
            {
                problems.push(format!("{path}: fewer than {min} items"));
            }
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    self.check(item_schema, item, &format!("{path}[{i}]"), problems);
                }
            }
        }
    }
}
