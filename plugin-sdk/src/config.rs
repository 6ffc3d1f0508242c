use serde::de::DeserializeOwned;
use serde_json::Value;

/// A plugin's params: the JSON object of the binding on the write path
/// (`{"plugin":"name-policy","params":{...}}`), of the query on the query
/// path (`"aggregation":{"plugin":"apdex","params":{...}}`). `{}` if none.
///
/// Read single values with [`get`](Self::get) and the typed getters, or the
/// whole object into your own `#[derive(Deserialize)]` struct with
/// [`deserialize`](Self::deserialize). Errors are messages that name the
/// param; return them from `new` and the server reports an invalid config.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Always a JSON object.
    params: Value,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            params: Value::Object(Default::default()),
        }
    }
}

impl Config {
    /// Params from JSON text, which must be an object. This is what the
    /// plugin receives from the server; in tests, build configs with it.
    pub fn from_json(json: &str) -> Result<Self, String> {
        match serde_json::from_str::<Value>(json) {
            Ok(params @ Value::Object(_)) => Ok(Self { params }),
            Ok(other) => Err(format!(
                "params must be a JSON object, got {}",
                json_kind(&other)
            )),
            Err(e) => Err(format!("params are not valid JSON: {e}")),
        }
    }

    /// No params at all (`{}`).
    pub fn empty() -> Self {
        Self::default()
    }

    fn object(&self) -> Option<&serde_json::Map<String, Value>> {
        self.params.as_object()
    }

    pub fn is_empty(&self) -> bool {
        self.object().is_none_or(|o| o.is_empty())
    }

    pub fn contains(&self, key: &str) -> bool {
        self.params.get(key).is_some()
    }

    /// The top-level param names.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.object()
            .into_iter()
            .flat_map(|o| o.keys().map(String::as_str))
    }

    /// The string value of param `key`; `None` if it is missing or not a
    /// string (use [`get_as`](Self::get_as) to be strict about types).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.params.get(key).and_then(Value::as_str)
    }

    /// Param `key` as any deserialisable type: numbers, lists, nested
    /// lookup tables (`HashMap<String, HashMap<String, String>>`), your own
    /// structs. `Ok(None)` if missing (or `null`), `Err` if of the wrong shape.
    pub fn get_as<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, String> {
        match self.params.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => deserialize_value(value)
                .map(Some)
                .map_err(|e| format!("param '{key}': {e}")),
        }
    }

    /// Param `key` as a string, `Err` if present but not a string.
    pub fn get_str(&self, key: &str) -> Result<Option<&str>, String> {
        match self.params.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(format!(
                "param '{key}': expected a string, got {}",
                json_kind(other)
            )),
        }
    }

    /// Param `key` as a finite number (integers are accepted).
    pub fn get_f64(&self, key: &str) -> Result<Option<f64>, String> {
        match self.get_as::<f64>(key)? {
            Some(x) if !x.is_finite() => Err(format!("param '{key}': must be finite")),
            other => Ok(other),
        }
    }

    /// Param `key` as a non-negative integer.
    pub fn get_u64(&self, key: &str) -> Result<Option<u64>, String> {
        self.get_as(key)
    }

    /// Param `key` as an integer.
    pub fn get_i64(&self, key: &str) -> Result<Option<i64>, String> {
        self.get_as(key)
    }

    pub fn get_bool(&self, key: &str) -> Result<Option<bool>, String> {
        self.get_as(key)
    }

    /// Param `key` as a list of strings.
    pub fn get_str_list(&self, key: &str) -> Result<Option<Vec<String>>, String> {
        self.get_as(key)
    }

    /// The whole params object as `T`, typically a
    /// `#[derive(Deserialize)] #[serde(deny_unknown_fields)]` struct. The
    /// error names the path of the offending value (`tables.service`).
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T, String> {
        serde_path_to_error::deserialize(&self.params).map_err(|e| {
            let path = e.path().to_string();
            if path == "." {
                format!("params: {}", e.inner())
            } else {
                format!("param '{path}': {}", e.inner())
            }
        })
    }
}

fn deserialize_value<T: DeserializeOwned>(value: &Value) -> Result<T, String> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            e.inner().to_string()
        } else {
            format!("at '{path}': {}", e.inner())
        }
    })
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn from_json_refuses_a_non_object() {
        let err = Config::from_json("[1,2]").unwrap_err();
        assert!(err.contains("JSON object"), "{err}");
        assert!(
            Config::from_json("{")
                .unwrap_err()
                .contains("not valid JSON")
        );
    }

    #[test]
    fn get_reads_strings_and_ignores_other_types() {
        let c = Config::from_json(r#"{"key":"team","n":3}"#).unwrap();
        assert_eq!(c.get("key"), Some("team"));
        assert_eq!(c.get("n"), None);
        assert_eq!(c.get("missing"), None);
    }

    #[test]
    fn typed_getters_report_wrong_types_with_the_param_name() {
        let c = Config::from_json(r#"{"threshold":"fast","n":3,"flag":true}"#).unwrap();
        let err = c.get_f64("threshold").unwrap_err();
        assert!(err.contains("'threshold'"), "{err}");
        assert_eq!(c.get_f64("n").unwrap(), Some(3.0));
        assert_eq!(c.get_u64("n").unwrap(), Some(3));
        assert_eq!(c.get_bool("flag").unwrap(), Some(true));
        assert_eq!(c.get_f64("missing").unwrap(), None);
        assert!(c.get_str("n").unwrap_err().contains("expected a string"));
    }

    #[test]
    fn get_as_reads_nested_lookup_tables() {
        let c = Config::from_json(r#"{"tables":{"service":{"api":"core"}}}"#).unwrap();
        let tables: HashMap<String, HashMap<String, String>> = c.get_as("tables").unwrap().unwrap();
        assert_eq!(tables["service"]["api"], "core");
    }

    #[test]
    fn get_as_error_names_the_nested_path() {
        let c = Config::from_json(r#"{"tables":{"service":{"api":7}}}"#).unwrap();
        let err = c
            .get_as::<HashMap<String, HashMap<String, String>>>("tables")
            .unwrap_err();
        assert!(
            err.contains("'tables'") && err.contains("service.api"),
            "{err}"
        );
    }

    #[test]
    fn deserialize_error_names_the_path() {
        #[derive(serde::Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Params {
            limits: Limits,
        }
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Limits {
            max: u32,
        }
        let c = Config::from_json(r#"{"limits":{"max":-1}}"#).unwrap();
        let err = c.deserialize::<Params>().unwrap_err();
        assert!(err.contains("limits.max"), "{err}");
        let c = Config::from_json(r#"{"limitz":{}}"#).unwrap();
        assert!(c.deserialize::<Params>().unwrap_err().contains("limitz"));
    }

    #[test]
    fn non_finite_numbers_cannot_arrive_but_huge_ones_are_fine() {
        let c = Config::from_json(r#"{"x":1e308}"#).unwrap();
        assert_eq!(c.get_f64("x").unwrap(), Some(1e308));
    }
}
