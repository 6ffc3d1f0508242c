//! Tokens per tenant, a reader of stored points, and a runner for the
//! Python clients.

use std::process::Command;

use serde_json::{Value, json};

use crate::common::Api;

pub use crate::common::{api_for, token_for};

/// Every raw point of `metric` in the last day, as
/// `[{"dimensions": {...}, "points": [[ts, value], ...]}, ...]` ordered by
/// dimensions, reserved (`_`) dimensions left out.
pub async fn stored(api: &Api, metric: &str) -> Value {
    let reply = api
        .query(json!({
            "queryType": "range",
            "metricName": metric,
            "timeRange": {"relative": "1d"},
        }))
        .await
        .ok();
    let mut series: Vec<Value> = reply["series"]
        .as_array()
        .unwrap_or_else(|| panic!("no series in {reply}"))
        .iter()
        .map(|s| {
            let dimensions: serde_json::Map<String, Value> = s["dimensions"]
                .as_object()
                .unwrap()
                .iter()
                .filter(|(k, _)| !k.starts_with('_'))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            json!({"dimensions": dimensions, "points": s["points"]})
        })
        .collect();
    series.sort_by_key(|s| s["dimensions"].to_string());
    Value::Array(series)
}

/// Runs `script` with `python3` (off the runtime, which serves the server
/// under test), after checking that it can import `module`, the client
/// under test; its stdout must be one JSON document.
pub async fn run_python(
    module: &str,
    package: &str,
    script: &str,
    env: &[(&str, String)],
) -> Value {
    let (module, package, script) = (module.to_owned(), package.to_owned(), script.to_owned());
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let found = Command::new("python3")
            .args(["-c", &format!("import {module}")])
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            found,
            "the Python package {package} is not installed: `pip install {package}` (scripts/test does)"
        );
        let output = Command::new("python3")
            .args(["-c", &script])
            .envs(env)
            .output()
            .expect("cannot run python3");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "the {package} script failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_str(stdout.trim())
            .unwrap_or_else(|e| panic!("the script printed no JSON ({e}): {stdout}"))
    })
    .await
    .unwrap()
}
