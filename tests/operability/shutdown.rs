use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::server::{Server, ServerOptions, token};

fn lifecycle(grace: &str, drain: Option<&str>) -> ServerOptions {
    let options = ServerOptions::default().env("LUMINATE_LIFECYCLE__GRACE_PERIOD", grace);
    match drain {
        Some(delay) => options.env("LUMINATE_LIFECYCLE__DRAIN_DELAY", delay),
        None => options,
    }
}

/// A write whose body arrives in two parts: the request is in flight
/// (its handler is reading the body) between `start` and `finish`.
struct SlowWrite {
    stream: TcpStream,
    rest: Vec<u8>,
}

impl SlowWrite {
    async fn start(server: &Server, token: &str) -> Self {
        let body =
            br#"{"metrics":[{"name":"in_flight_at_shutdown","value":7,"dimensions":{"k":"v"}}]}"#;
        let head = format!(
            "POST /api/v1/write HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nX-Request-Id: slow-write\r\n\r\n",
            server.addr,
            body.len()
        );
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        let (first, rest) = body.split_at(20);
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(first).await.unwrap();
        stream.flush().await.unwrap();
        Self {
            stream,
            rest: rest.to_vec(),
        }
    }

    /// Sends the rest of the body and returns the raw response.
    async fn finish(mut self) -> String {
        self.stream.write_all(&self.rest).await.unwrap();
        let mut response = Vec::new();
        let mut buffer = [0u8; 4096];
        // The server closes the connection after answering (it is draining).
        loop {
            match tokio::time::timeout(Duration::from_secs(10), self.stream.read(&mut buffer)).await
            {
                Ok(Ok(0)) | Err(_) => break,
                Ok(Ok(n)) => {
                    response.extend_from_slice(&buffer[..n]);
                    if String::from_utf8_lossy(&response).contains("\"accepted\"") {
                        break;
                    }
                }
                Ok(Err(e)) => panic!("reading the response: {e}"),
            }
        }
        String::from_utf8_lossy(&response).into_owned()
    }
}

#[tokio::test]
async fn sigterm_drains_in_flight_requests_turns_unready_and_exits_zero() {
    let mut server = Server::start(lifecycle("10s", Some("1500ms")));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    server.wait_started(&client).await;
    assert_eq!(
        client
            .get(server.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let token = token("acme", "read,write");

    let in_flight = SlowWrite::start(&server, &token).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let signalled = Instant::now();
    server.signal("TERM");

    // During the drain delay the listener still answers, and says "not ready".
    let mut readiness = 0;
    while signalled.elapsed() < Duration::from_millis(1200) {
        if let Ok(response) = client.get(server.url("/readyz")).send().await {
            readiness = response.status().as_u16();
            if readiness == 503 {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(readiness, 503, "readiness did not turn false after SIGTERM");
    assert_eq!(
        client
            .get(server.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // After the drain delay, new connections are refused...
    tokio::time::sleep(
        Duration::from_millis(1500).saturating_sub(signalled.elapsed())
            + Duration::from_millis(300),
    )
    .await;
    assert!(
        client.get(server.url("/healthz")).send().await.is_err(),
        "the server still accepts connections after the drain delay"
    );
    // ...while the request that was in flight completes normally.
    let response = in_flight.finish().await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains(r#""accepted":1"#), "{response}");

    let status = server
        .wait_exit(Duration::from_secs(10))
        .expect("the server did not exit within its grace period");
    assert_eq!(status.code(), Some(0), "{}", server.output());
    assert!(signalled.elapsed() < Duration::from_secs(10));
    let logs = server.json_logs();
    assert!(logs.iter().any(|l| l["message"] == "request"
        && l["request_id"] == "slow-write"
        && l["status"] == 200));
    assert!(
        logs.iter().any(|l| l["message"]
            .as_str()
            .unwrap_or("")
            .contains("storage closed")),
        "{logs:#?}"
    );
}

#[tokio::test]
async fn a_request_that_outlives_the_grace_period_does_not_hold_the_exit() {
    let mut server = Server::start(lifecycle("2s", None));
    let client = reqwest::Client::new();
    server.wait_started(&client).await;
    let token = token("acme", "read,write");

    let _stuck = SlowWrite::start(&server, &token).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let signalled = Instant::now();
    server.signal("TERM");
    let status = server
        .wait_exit(Duration::from_secs(6))
        .expect("the server ignored its grace period");
    let took = signalled.elapsed();
    assert!(
        took >= Duration::from_millis(1900),
        "exited after {took:?}, before the grace period"
    );
    assert_eq!(status.code(), Some(0));
}

#[tokio::test]
async fn sigint_stops_the_server_like_sigterm() {
    let mut server = Server::start(lifecycle("5s", None));
    let client = reqwest::Client::new();
    server.wait_started(&client).await;
    server.signal("INT");
    let status = server
        .wait_exit(Duration::from_secs(5))
        .expect("no exit after SIGINT");
    assert_eq!(status.code(), Some(0));
}
