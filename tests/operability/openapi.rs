//! The committed OpenAPI document (host/src/http/openapi.json) is held to
//! the code: the routes match both ways, and every documented example is
//! answered by a real server as documented.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use crate::schema::Checker;
use crate::server::{Server, ServerOptions, token};

const METHODS: [&str; 5] = ["get", "post", "put", "delete", "patch"];

// Paths of the plugins built from source by build.rs (for upload examples).
include!(concat!(env!("OUT_DIR"), "/plugins.rs"));

fn document() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/host/src/http/openapi.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn documented_operations(document: &Value) -> BTreeSet<(String, String)> {
    let mut operations = BTreeSet::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in METHODS {
            if item.get(method).is_some() {
                operations.insert((path.clone(), method.to_owned()));
            }
        }
    }
    operations
}

/// `(path, method)` of every `.route("...", ...)` call in the host's sources.
fn routed_operations() -> BTreeSet<(String, String)> {
    let route = regex::Regex::new(r#"\.route\(\s*"([^"]+)"\s*,"#).unwrap();
    let method = regex::Regex::new(r"(?:^|[^A-Za-z0-9_])(get|post|put|delete|patch)\s*\(").unwrap();
    let mut operations = BTreeSet::new();
    let mut stack = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("host/src")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let source = std::fs::read_to_string(&path).unwrap();
            for found in route.captures_iter(&source) {
                // The method router is the rest of the call: up to the
                // parenthesis that closes `.route(`.
                let start = found.get(0).unwrap().end();
                let mut depth = 1;
                let mut end = start;
                for (i, c) in source[start..].char_indices() {
                    match c {
                        '(' => depth += 1,
                        ')' => {
                            depth -= 1;
                            if depth == 0 {
                                end = start + i;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                let methods: Vec<String> = method
                    .captures_iter(&source[start..end])
                    .map(|m| m[1].to_owned())
                    .collect();
                assert!(
                    !methods.is_empty(),
                    "{}: no method for route {}",
                    path.display(),
                    &found[1]
                );
                for m in methods {
                    operations.insert((found[1].to_owned(), m));
                }
            }
        }
    }
    operations
}

#[test]
fn every_route_in_the_code_is_documented_and_every_documented_route_is_routed() {
    let documented = documented_operations(&document());
    let routed = routed_operations();
    let undocumented: Vec<_> = routed.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&routed).collect();
    assert!(
        undocumented.is_empty() && unrouted.is_empty(),
        "routes missing from openapi.json: {undocumented:?}\ndocumented but not routed: {unrouted:?}"
    );
}

fn required_scopes(document: &Value, operation: &Value) -> Option<Vec<String>> {
    let security = operation.get("security").unwrap_or(&document["security"]);
    let requirement = security.as_array().unwrap().first()?;
    Some(
        requirement["bearer"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect(),
    )
}

fn example_url(server: &Server, path: &str, operation: &Value) -> String {
    let mut url_path = path.to_owned();
    let mut query = Vec::new();
    for parameter in operation["parameters"].as_array().into_iter().flatten() {
        let name = parameter["name"].as_str().unwrap();
        let Some(example) = parameter.get("example") else {
            assert_ne!(
                parameter["required"], true,
                "{path}: required parameter {name} has no example"
            );
            continue;
        };
        let text = match example {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        match parameter["in"].as_str().unwrap() {
            "path" => url_path = url_path.replace(&format!("{{{name}}}"), &text),
            "query" => query.push(format!("{name}={text}")),
            _ => {}
        }
    }
    // An operation with its own `servers` is on the metrics listener.
    let mut url = match operation.get("servers") {
        Some(_) => format!("http://{}{url_path}", server.metrics_addr),
        None => server.url(&url_path),
    };
    if !query.is_empty() {
        url = format!("{url}?{}", query.join("&"));
    }
    url
}

#[tokio::test]
async fn documented_examples_are_answered_with_documented_statuses_and_shapes() {
    let document = document();
    let checker = Checker {
        document: &document,
    };
    let mut server = Server::start(ServerOptions::default());
    let client = reqwest::Client::new();
    server.wait_started(&client).await;

    let served: Value = client
        .get(server.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        served, document,
        "the served document is the committed file"
    );

    // Writes first (they create what the reads discover), deletes last.
    let mut operations: Vec<(String, String)> =
        documented_operations(&document).into_iter().collect();
    // Writes and uploads first (they create what reads discover and
    // bindings bind), then bindings, reads, and deletes last.
    let rank = |(path, method): &(String, String)| match method.as_str() {
        _ if path.ends_with("/write") => 0,
        "put" if path.starts_with("/api/v1/plugins/") => 1,
        "put" => 2,
        "delete" if path.starts_with("/api/v1/plugins/") => 5,
        "delete" => 4,
        _ => 3,
    };
    operations.sort_by_key(rank);

    let mut problems = Vec::new();
    for (path, method) in &operations {
        let operation = &document["paths"][path][method];
        let url = example_url(&server, path, operation);
        let mut request = client.request(method.to_uppercase().parse().unwrap(), &url);
        if let Some(scopes) = required_scopes(&document, operation) {
            let scopes = if scopes.is_empty() {
                "read".to_owned()
            } else {
                scopes.join(",")
            };
            request = request.bearer_auth(token("openapi-examples", &scopes));
        }
        if let Some(example) = operation.pointer("/requestBody/content/application~1json/example") {
            request = request.json(example);
        }
        if let Some(plugin) = operation
            .pointer("/requestBody/x-example-plugin")
            .and_then(Value::as_str)
        {
            let (_, path) = ALL
                .iter()
                .find(|(name, _)| *name == plugin)
                .expect("a plugin built by build.rs");
            request = request
                .header("content-type", "application/wasm")
                .body(std::fs::read(path).unwrap());
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16().to_string();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body = response.text().await.unwrap();
        let context = format!("{} {path} -> {status}", method.to_uppercase());
        let successes: Vec<&String> = operation["responses"]
            .as_object()
            .unwrap()
            .keys()
            .filter(|code| code.starts_with('2'))
            .collect();
        if !successes.contains(&&status) {
            problems.push(format!(
                "{context}: the example should get one of {successes:?}; body: {body}"
            ));
            continue;
        }
        let documented = &operation["responses"][&status]["content"];
        if documented.is_null() {
            assert!(
                body.is_empty(),
                "{context}: documented without a body, got {body}"
            );
            continue;
        }
        if let Some(schema) = documented.pointer("/application~1json/schema") {
            assert!(
                content_type.starts_with("application/json"),
                "{context}: content-type {content_type}"
            );
            let value: Value =
                serde_json::from_str(&body).unwrap_or_else(|e| panic!("{context}: {e}: {body}"));
            checker.check(schema, &value, "body", &mut problems);
            if let Some(example) = documented.pointer("/application~1json/example") {
                checker.check(
                    schema,
                    example,
                    &format!("{context} documented example"),
                    &mut problems,
                );
            }
        } else {
            let documented_type = documented
                .as_object()
                .and_then(|c| c.keys().next())
                .unwrap_or_else(|| panic!("{context}: no documented content: {documented}"));
            assert!(
                content_type.starts_with(documented_type.as_str()),
                "{context}: {content_type}"
            );
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[tokio::test]
async fn every_documented_operation_exists_on_a_live_server() {
    let document = document();
    let mut server = Server::start(ServerOptions::default());
    let client = reqwest::Client::new();
    server.wait_started(&client).await;
    for (path, method) in documented_operations(&document) {
        let operation = &document["paths"][&path][&method];
        let url = example_url(&server, &path, operation);
        let response = client
            .request(method.to_uppercase().parse().unwrap(), &url)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body = response.text().await.unwrap();
        assert!(
            status != 404 && status != 405
                || !(body.contains("not_found") || body.contains("method_not_allowed")),
            "{} {path} is documented but the server does not route it ({status}: {body})",
            method.to_uppercase()
        );
        assert!(
            operation["responses"].get(status.to_string()).is_some(),
            "{} {path} without a token answers {status}, which is not documented",
            method.to_uppercase()
        );
    }
}
