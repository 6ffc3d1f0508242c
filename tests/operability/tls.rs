use std::time::Duration;

use serde_json::json;

use crate::server::{Server, ServerOptions, token};

const HOST: &str = "luminate.test";

struct TestCertificate {
    dir: tempfile::TempDir,
    pem: String,
}

fn self_signed() -> TestCertificate {
    let certified = rcgen::generate_simple_self_signed(vec![HOST.to_owned()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cert.pem"), certified.cert.pem()).unwrap();
    std::fs::write(
        dir.path().join("key.pem"),
        certified.key_pair.serialize_pem(),
    )
    .unwrap();
    TestCertificate {
        pem: certified.cert.pem(),
        dir,
    }
}

fn https_client(server: &Server, certificate: &TestCertificate) -> reqwest::Client {
    reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(certificate.pem.as_bytes()).unwrap())
        // The name on the certificate, pinned to the server's loopback address.
        .resolve(HOST, server.addr)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

#[tokio::test]
async fn serves_https_with_the_configured_certificate_and_refuses_plain_http() {
    let certificate = self_signed();
    let mut options = ServerOptions::default()
        .env(
            "LUMINATE_TLS_CERT",
            certificate.dir.path().join("cert.pem").to_string_lossy(),
        )
        .env(
            "LUMINATE_TLS_KEY",
            certificate.dir.path().join("key.pem").to_string_lossy(),
        );
    options.scheme = "https";
    let server = Server::start(options);
    let client = https_client(&server, &certificate);
    let url = |path: &str| format!("https://{HOST}:{}{path}", server.addr.port());

    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while client
        .get(url("/startupz"))
        .send()
        .await
        .map(|r| r.status())
        .ok()
        != Some(reqwest::StatusCode::OK)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no HTTPS answer:\n{}",
            server.output()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let token = token("acme", "read,write");
    let response = client
        .post(url("/api/v1/write"))
        .bearer_auth(&token)
        .json(&json!({"metrics": [{"name": "over_tls", "value": 1.0}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), reqwest::Version::HTTP_11);
    // Self-metrics stay plain HTTP on their own listener.
    let metrics = reqwest::Client::new()
        .get(server.metrics_url())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("luminate_http_requests_total"));

    // Plain HTTP to the TLS port gets no HTTP answer.
    let plain = reqwest::Client::new()
        .get(format!("http://{}/healthz", server.addr))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(plain.is_err() || plain.unwrap().status() != 200);

    // A client that does not trust the certificate is refused.
    let untrusting = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .resolve(HOST, server.addr)
        .build()
        .unwrap();
    assert!(untrusting.get(url("/healthz")).send().await.is_err());
}

#[tokio::test]
async fn a_missing_key_file_is_a_clear_startup_error() {
    let certificate = self_signed();
    let mut server = Server::start(
        ServerOptions::default()
            .env(
                "LUMINATE_TLS_CERT",
                certificate.dir.path().join("cert.pem").to_string_lossy(),
            )
            .env("LUMINATE_TLS_KEY", "/nonexistent/key.pem"),
    );
    let status = server
        .wait_exit(Duration::from_secs(30))
        .expect("server started without its key");
    assert!(!status.success());
    let output = server.output();
    assert!(output.contains("/nonexistent/key.pem"), "{output}");
}
