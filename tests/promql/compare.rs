//! Two Prometheus API answers compared as sets of series, values within
//! float tolerance.

use std::collections::BTreeMap;

use serde_json::Value;

/// `(seconds, value)` samples per label set (as canonical JSON text).
type Samples = BTreeMap<String, Vec<(f64, f64)>>;

fn value_of(text: &Value) -> f64 {
    match text.as_str() {
        Some("NaN") => f64::NAN,
        Some("+Inf") => f64::INFINITY,
        Some("-Inf") => f64::NEG_INFINITY,
        Some(s) => s.parse().unwrap_or(f64::NAN),
        None => f64::NAN,
    }
}

fn sample(pair: &Value) -> (f64, f64) {
    (pair[0].as_f64().unwrap_or(f64::NAN), value_of(&pair[1]))
}

/// The result type and its samples, or the error type.
pub fn normalize(answer: &Value) -> Result<(String, Samples), String> {
    if answer["status"] != "success" {
        return Err(answer["errorType"].as_str().unwrap_or("?").to_owned());
    }
    let data = &answer["data"];
    let kind = data["resultType"].as_str().unwrap_or("").to_owned();
    let mut samples = Samples::new();
    match kind.as_str() {
        "scalar" | "string" => {
            samples.insert("{}".into(), vec![sample(&data["result"])]);
        }
        _ => {
            for series in data["result"].as_array().into_iter().flatten() {
                let key = serde_json::to_string(&series["metric"]).unwrap_or_default();
                let points = match series.get("value") {
                    Some(v) => vec![sample(v)],
                    None => series["values"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(sample)
                        .collect(),
                };
                samples.insert(key, points);
            }
        }
    }
    Ok((kind, samples))
}

fn close(a: f64, b: f64) -> bool {
    if a.is_nan() || b.is_nan() {
        return a.is_nan() && b.is_nan();
    }
    if a.is_infinite() || b.is_infinite() {
        return a == b;
    }
    (a - b).abs() <= 1e-6 * a.abs().max(b.abs()).max(1.0)
}

/// Why two answers differ, or `None`.
pub fn difference(expected: &Value, actual: &Value) -> Option<String> {
    let (expected, actual) = (normalize(expected), normalize(actual));
    match (&expected, &actual) {
        (Err(e), Err(a)) if e == a || (e == "bad_data" && a == "execution") => None,
        (Ok((ek, es)), Ok((ak, as_))) => {
            if ek != ak {
                return Some(format!("result type {ak}, Prometheus {ek}"));
            }
            if es.keys().ne(as_.keys()) {
                let missing: Vec<_> = es
                    .keys()
                    .filter(|k| !as_.contains_key(*k))
                    .take(3)
                    .collect();
                let extra: Vec<_> = as_
                    .keys()
                    .filter(|k| !es.contains_key(*k))
                    .take(3)
                    .collect();
                return Some(format!(
                    "series differ ({} vs Prometheus' {}): missing {missing:?}, extra {extra:?}",
                    as_.len(),
                    es.len()
                ));
            }
            for (key, e) in es {
                let a = &as_[key];
                if e.len() != a.len() {
                    return Some(format!(
                        "{key}: {} samples, Prometheus {}",
                        a.len(),
                        e.len()
                    ));
                }
                for (e, a) in e.iter().zip(a) {
                    if e.0 != a.0 || !close(e.1, a.1) {
                        return Some(format!("{key}: sample {a:?}, Prometheus {e:?}"));
                    }
                }
            }
            None
        }
        _ => Some(
            format!("answer {actual:?}, Prometheus {expected:?}")
                .chars()
                .take(600)
                .collect(),
        ),
    }
}
