use serde_json::{Value, json};

use crate::server::{Server, ServerOptions, token};

fn request_line<'a>(logs: &'a [Value], request_id: &str) -> Option<&'a Value> {
    logs.iter()
        .find(|l| l["message"] == "request" && l["request_id"] == request_id)
}

#[tokio::test]
async fn request_id_is_echoed_and_logged_with_tenant_endpoint_status_and_duration() {
    let mut server = Server::start(ServerOptions::default());
    let client = reqwest::Client::new();
    server.wait_started(&client).await;
    let token = token("acme", "read,write");

    let response = client
        .post(server.url("/api/v1/write"))
        .bearer_auth(&token)
        .header("x-request-id", "client-chosen-42")
        .json(&json!({"metrics": [{"name": "logged", "value": 1.0}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-request-id"], "client-chosen-42");

    let line = server
        .wait_for_log(|l| l["message"] == "request" && l["request_id"] == "client-chosen-42")
        .await;
    assert_eq!(line["level"], "INFO");
    assert_eq!(line["tenant_id"], "acme");
    assert_eq!(line["method"], "POST");
    assert_eq!(line["endpoint"], "/api/v1/write");
    assert_eq!(line["status"], 200);
    assert!(line["duration_ms"].as_f64().unwrap() >= 0.0, "{line}");
    assert!(line.get("error_code").is_none(), "{line}");
    assert!(line["timestamp"].is_string());
}

#[tokio::test]
async fn a_missing_or_unusable_request_id_is_replaced_by_a_generated_one() {
    let mut server = Server::start(ServerOptions::default());
    let client = reqwest::Client::new();
    server.wait_started(&client).await;

    let mut generated = Vec::new();
    for supplied in [None, Some("has spaces in it"), Some(&*"x".repeat(200))] {
        let mut request = client.get(server.url("/healthz"));
        if let Some(id) = supplied {
            request = request.header("x-request-id", id);
        }
        let response = request.send().await.unwrap();
        let id = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(id.len(), 32, "{id}");
        assert!(id.chars().all(|c| c.is_ascii_hexdigit()), "{id}");
        generated.push(id);
    }
    generated.sort();
    generated.dedup();
    assert_eq!(generated.len(), 3, "ids are unique");
}

#[tokio::test]
async fn error_responses_are_logged_with_their_error_code() {
    let mut server = Server::start(ServerOptions::default());
    let client = reqwest::Client::new();
    server.wait_started(&client).await;
    let token = token("acme", "read,write");

    let response = client
        .post(server.url("/api/v1/write"))
        .bearer_auth(&token)
        .header("x-request-id", "bad-json-1")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    let line = server
        .wait_for_log(|l| l["request_id"] == "bad-json-1" && l["message"] == "request")
        .await;
    assert_eq!(line["status"], 400);
    assert_eq!(line["error_code"], body["error"]["code"]);
    assert_eq!(line["tenant_id"], "acme");

    let response = client
        .get(server.url("/api/v1/metrics"))
        .header("x-request-id", "no-token-1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    let line = server
        .wait_for_log(|l| l["request_id"] == "no-token-1" && l["message"] == "request")
        .await;
    assert_eq!(line["status"], 401);
    assert_eq!(line["error_code"], body["error"]["code"]);
    assert!(
        line.get("tenant_id").is_none(),
        "unauthenticated requests name no tenant: {line}"
    );
    assert!(request_line(&server.json_logs(), "no-token-1").is_some());
}

#[tokio::test]
async fn dev_mode_logs_are_human_readable_not_json() {
    use std::io::Read;
    let data = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = std::process::Command::new(crate::server::luminate_binary())
        .args([
            "serve",
            "--dev",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(data.path())
        .env_remove("LUMINATE_LOG_FORMAT")
        .env_remove("RUST_LOG")
        .env("LUMINATE_METRICS_LISTEN", "127.0.0.1:0")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let ready = client
            .get(format!("http://127.0.0.1:{port}/startupz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200);
        if ready {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "--dev server did not start"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let serving = stdout
        .lines()
        .find(|l| l.contains("luminate is serving"))
        .unwrap_or_else(|| panic!("no startup line in:\n{stdout}"));
    assert!(
        serde_json::from_str::<Value>(serving).is_err(),
        "--dev logs should be readable lines, got JSON: {serving}"
    );
}
