//! Every way a token can fail gets a 401 with its own code.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

use crate::common::TestServer;
use crate::support::*;

fn claims() -> serde_json::Value {
    json!({"tenant_id": "acme", "scopes": ["read", "write"], "exp": now_secs() + 3600})
}

async fn metrics_list(server: &TestServer, token: &str) -> crate::common::Reply {
    Client::bearer(server, token).get("/api/v1/metrics").await
}

#[tokio::test]
async fn accepts_a_valid_token() {
    let server = TestServer::start().await;
    metrics_list(&server, &signed(&claims())).await.ok();
    server.stop().await;
}

#[tokio::test]
async fn rejects_request_without_token() {
    let server = TestServer::start().await;
    let client = Client::raw(&server, None);
    assert_unauthorized(&client.get("/api/v1/metrics").await, "missing_token");
    assert_unauthorized(&client.write(series("m", 0..1)).await, "missing_token");
    assert_unauthorized(
        &Client::raw(&server, Some("Bearer ".into()))
            .get("/api/v1/metrics")
            .await,
        "missing_token",
    );
    server.stop().await;
}

#[tokio::test]
async fn rejects_malformed_token() {
    let server = TestServer::start().await;
    for auth in [
        "Bearer not-a-jwt",
        "Bearer a.b",
        "Basic dXNlcjpwYXNz",
        "Bearer !!!.@@@.###",
    ] {
        let reply = Client::raw(&server, Some(auth.into()))
            .get("/api/v1/metrics")
            .await;
        assert_unauthorized(&reply, "malformed_token");
    }
    server.stop().await;
}

#[tokio::test]
async fn rejects_token_with_bad_signature() {
    let server = TestServer::start().await;
    let forged = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims(),
        &EncodingKey::from_secret(b"not-the-server-secret-not-the-server-secret"),
    )
    .unwrap();
    assert_unauthorized(&metrics_list(&server, &forged).await, "invalid_signature");
    server.stop().await;
}

#[tokio::test]
async fn rejects_alg_none() {
    let server = TestServer::start().await;
    let reply = metrics_list(&server, &unsigned(&claims())).await;
    assert_unauthorized(&reply, "algorithm_not_allowed");
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("none")
    );
    server.stop().await;
}

#[tokio::test]
async fn rejects_algorithm_outside_the_allow_list() {
    let server = TestServer::start().await;
    let hs512 = jsonwebtoken::encode(
        &Header::new(Algorithm::HS512),
        &claims(),
        &EncodingKey::from_secret(crate::common::TEST_JWT_SECRET.as_bytes()),
    )
    .unwrap();
    assert_unauthorized(
        &metrics_list(&server, &hs512).await,
        "algorithm_not_allowed",
    );
    server.stop().await;
}

#[tokio::test]
async fn rejects_expired_token() {
    let server = TestServer::start().await;
    let mut c = claims();
    c["exp"] = json!(now_secs() - 3600);
    assert_unauthorized(&metrics_list(&server, &signed(&c)).await, "token_expired");
    server.stop().await;
}

#[tokio::test]
async fn rejects_token_not_yet_valid() {
    let server = TestServer::start().await;
    let mut c = claims();
    c["nbf"] = json!(now_secs() + 600);
    assert_unauthorized(
        &metrics_list(&server, &signed(&c)).await,
        "token_not_yet_valid",
    );
    server.stop().await;
}

#[tokio::test]
async fn rejects_wrong_issuer_and_audience() {
    let server = TestServer::start_with(|c| {
        c.auth.issuer = Some("https://idp.test".into());
        c.auth.audience = Some("luminate".into());
    })
    .await;
    let mut c = claims();
    c["iss"] = json!("https://idp.test");
    c["aud"] = json!(["luminate"]);
    metrics_list(&server, &signed(&c)).await.ok();
    c["iss"] = json!("https://evil.test");
    assert_unauthorized(&metrics_list(&server, &signed(&c)).await, "invalid_issuer");
    c["iss"] = json!("https://idp.test");
    c["aud"] = json!("someone-else");
    assert_unauthorized(
        &metrics_list(&server, &signed(&c)).await,
        "invalid_audience",
    );
    server.stop().await;
}

#[tokio::test]
async fn rejects_token_with_string_exp() {
    let server = TestServer::start().await;
    let mut c = claims();
    c["exp"] = json!("99999999999");
    let reply = metrics_list(&server, &signed(&c)).await;
    assert_unauthorized(&reply, "invalid_claim");
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("exp")
    );
    server.stop().await;
}

#[tokio::test]
async fn rejects_claims_of_the_wrong_type() {
    let server = TestServer::start().await;
    for (claim, value) in [
        ("scopes", json!("read write")),
        ("tenant_id", json!(7)),
        ("tier", json!(["pro"])),
    ] {
        let mut c = claims();
        c[claim] = value;
        let reply = metrics_list(&server, &signed(&c)).await;
        assert_unauthorized(&reply, "invalid_claim");
        assert!(
            reply.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains(claim),
            "{reply:?}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn rejects_token_without_tenant() {
    let server = TestServer::start().await;
    let mut c = claims();
    c.as_object_mut().unwrap().remove("tenant_id");
    assert_unauthorized(&metrics_list(&server, &signed(&c)).await, "missing_tenant");
    server.stop().await;
}

#[tokio::test]
async fn accepts_rs256_es256_eddsa_tokens_from_a_jwks_file_by_kid() {
    let keys = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keys");
    let jwks = keys.join("jwks.json");
    let server = TestServer::start_with(move |c| {
        c.auth
            .algorithms
            .extend([Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA]);
        c.auth.jwks_file = Some(jwks);
    })
    .await;
    let pem = |name: &str| std::fs::read(keys.join(name)).unwrap();
    let sign = |alg, kid: &str, key: EncodingKey| {
        let mut h = Header::new(alg);
        h.kid = Some(kid.into());
        jsonwebtoken::encode(&h, &claims(), &key).unwrap()
    };
    for token in [
        sign(
            Algorithm::RS256,
            "rsa-1",
            EncodingKey::from_rsa_pem(&pem("rsa_private.pem")).unwrap(),
        ),
        sign(
            Algorithm::ES256,
            "ec-1",
            EncodingKey::from_ec_pem(&pem("ec_private.pem")).unwrap(),
        ),
        sign(
            Algorithm::EdDSA,
            "ed-1",
            EncodingKey::from_ed_pem(&pem("ed25519_private.pem")).unwrap(),
        ),
    ] {
        metrics_list(&server, &token).await.ok();
    }
    let unknown = sign(
        Algorithm::RS256,
        "retired",
        EncodingKey::from_rsa_pem(&pem("rsa_private.pem")).unwrap(),
    );
    assert_unauthorized(&metrics_list(&server, &unknown).await, "unknown_key_id");
    let other_key = sign(
        Algorithm::RS256,
        "rsa-1",
        EncodingKey::from_rsa_pem(&pem("rsa_other_private.pem")).unwrap(),
    );
    assert_unauthorized(
        &metrics_list(&server, &other_key).await,
        "invalid_signature",
    );
    server.stop().await;
}

#[tokio::test]
async fn probes_need_no_token() {
    let server = TestServer::start().await;
    let client = Client::raw(&server, None);
    for path in ["/healthz", "/readyz", "/startupz"] {
        assert_eq!(client.get(path).await.status.as_u16(), 200, "{path}");
    }
    server.stop().await;
}

#[tokio::test]
async fn auth_failure_is_answered_before_the_body_is_read() {
    let server = TestServer::start().await;
    // Announce a 50 MB body and send none of it: the 401 must still come.
    let head = "POST /api/v1/write HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 50000000\r\n\r\n";
    let status = crate::support::raw_status(&server.api.base, head).await;
    assert_eq!(status, 401);
    server.stop().await;
}

#[tokio::test]
async fn with_auth_disabled_every_request_is_the_default_tenant() {
    let server = TestServer::start_with(|c| {
        c.auth.enabled = false;
        c.auth.hs256_secret = None;
    })
    .await;
    let anonymous = Client::raw(&server, None);
    anonymous.write(series("m", 0..3)).await.ok();
    let report = anonymous.get("/api/v1/cardinality").await.ok();
    assert_eq!(report["tenant"], "default");
    assert_eq!(report["series"]["estimate"], 3);
    // A token changes nothing: it is not even read.
    let other = Client::bearer(&server, &token("someone-else", &["read"]));
    assert_eq!(
        other.get("/api/v1/cardinality").await.ok()["tenant"],
        "default"
    );
    server.stop().await;
}

/// `Authorization: Basic base64(username:token)`, as agents send it.
fn basic(username: &str, token: &str) -> String {
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{token}"));
    format!("Basic {encoded}")
}

#[tokio::test]
async fn basic_auth_carries_the_token_as_password_for_its_own_tenant_only() {
    let server = TestServer::start().await;
    let acme = token("acme", &["read", "write"]);
    for username in ["", "acme"] {
        let client = Client::raw(&server, Some(basic(username, &acme)));
        let reply = client
            .write(series(&format!("basic_{}", username.len()), 0..2))
            .await;
        assert_eq!(reply.ok()["accepted"], 2);
    }
    let listed = Client::bearer(&server, &acme)
        .get("/api/v1/metrics")
        .await
        .ok();
    assert_eq!(listed["metrics"], json!(["basic_0", "basic_4"]));
    // A username names the tenant the agent means to write to: another
    // tenant's token is refused rather than written to the wrong place.
    let reply = Client::raw(&server, Some(basic("globex", &acme)))
        .write(series("basic_wrong", 0..1))
        .await;
    assert_unauthorized(&reply, "username_not_tenant");
    assert_unauthorized(
        &Client::raw(&server, Some(basic("acme", "not-a-jwt")))
            .get("/api/v1/metrics")
            .await,
        "malformed_token",
    );
    let reply = Client::raw(&server, Some(format!("Token {acme}")))
        .get("/api/v1/metrics")
        .await;
    reply.ok();
    server.stop().await;
}
