//! Tokens and a client that sends exactly the `Authorization` header a test
//! asks for (the shared `Api` authenticates as the default test tenant).

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use luminate_host::config::Config;
use luminate_host::limits::{Limit, TierLimits};
use serde_json::{Value, json};

use crate::common::{Api, Reply, TEST_JWT_SECRET, TestServer};

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// An HS256 token signed with the test servers' secret, with these claims.
pub fn signed(claims: &Value) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(TEST_JWT_SECRET.as_bytes()),
    )
    .unwrap()
}

/// A valid token for `tenant` with `scopes` (e.g. `["read","write"]`).
pub fn token(tenant: &str, scopes: &[&str]) -> String {
    signed(&json!({"tenant_id": tenant, "scopes": scopes, "exp": now_secs() + 3600}))
}

pub fn token_with_tier(tenant: &str, scopes: &[&str], tier: &str) -> String {
    signed(&json!({"tenant_id": tenant, "scopes": scopes, "tier": tier, "exp": now_secs() + 3600}))
}

/// An unsigned (`alg: none`) token.
pub fn unsigned(claims: &Value) -> String {
    format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

pub const ALL: &[&str] = &["read", "write", "admin"];

/// Sends requests with `Authorization: <authorization>` (or none).
#[derive(Clone)]
pub struct Client {
    pub api: Api,
    pub authorization: Option<String>,
}

impl Client {
    pub fn bearer(server: &TestServer, token: &str) -> Self {
        Self::raw(server, Some(format!("Bearer {token}")))
    }

    pub fn raw(server: &TestServer, authorization: Option<String>) -> Self {
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        Self {
            api: Api {
                base: server.api.base.clone(),
                http,
            },
            authorization,
        }
    }

    fn with_auth(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.authorization {
            Some(value) => request.header("authorization", value),
            None => request,
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        let r = self.with_auth(self.api.http.get(self.api.url(path)));
        self.api.send(r).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        let r = self.with_auth(self.api.http.delete(self.api.url(path)));
        self.api.send(r).await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Reply {
        let r = self
            .with_auth(self.api.http.post(self.api.url(path)))
            .header("content-type", "application/json")
            .body(serde_json::to_vec(body).unwrap());
        self.api.send(r).await
    }

    pub async fn write(&self, metrics: Value) -> Reply {
        self.post_json("/api/v1/write", &json!({ "metrics": metrics }))
            .await
    }

    pub async fn query(&self, query: Value) -> Reply {
        self.post_json("/api/v1/query", &query).await
    }
}

/// `n` metrics of `name`, one series each (`series` dimension 0..n).
pub fn series(name: &str, range: std::ops::Range<usize>) -> Value {
    let ts = crate::common::now_ms() - 1_000;
    Value::Array(
        range
            .map(|i| json!({"name": name, "value": i, "timestamp": ts, "dimensions": {"series": i.to_string()}}))
            .collect(),
    )
}

/// Adds a tier to the server's config.
pub fn add_tier(config: &mut Config, name: &str, adjust: impl FnOnce(&mut TierLimits)) {
    let mut tier = TierLimits::unlimited();
    adjust(&mut tier);
    config.limits.tiers.insert(name.into(), tier);
}

pub fn max(n: u64) -> Limit {
    Limit::Max(n)
}

/// Asserts a 401 with the Bearer challenge and the given error code.
#[track_caller]
pub fn assert_unauthorized(reply: &Reply, code: &str) {
    reply.assert_error(401, code);
    let challenge = reply
        .headers
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(
        challenge.starts_with("Bearer ") && challenge.contains(r#"error="invalid_token""#),
        "WWW-Authenticate: {challenge:?}"
    );
}

/// Sends `head` (request line and headers, no body) over a raw TCP
/// connection and returns the response status, failing if none comes
/// within 5 s: proof that the server answered without reading a body.
pub async fn raw_status(base: &str, head: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(head.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 1024];
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), tcp.read(&mut buf))
        .await
        .expect("no answer without the body: the server waited for it")
        .unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    text.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}
