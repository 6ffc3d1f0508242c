//! A valid token without the scope a route needs gets 403.

use serde_json::json;

use crate::common::{Reply, TestServer, now_ms};
use crate::support::*;

#[track_caller]
fn assert_forbidden(reply: &Reply, scope: &str) {
    reply.assert_error(403, "insufficient_scope");
    let challenge = reply
        .headers
        .get("www-authenticate")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(
        challenge.contains(r#"error="insufficient_scope""#)
            && challenge.contains(&format!(r#"scope="{scope}""#)),
        "{challenge}"
    );
}

fn aggregate() -> serde_json::Value {
    json!({"queryType": "aggregate", "metricName": "m", "aggregation": "count", "timeRange": {"relative": "1h"}})
}

#[tokio::test]
async fn read_only_token_cannot_write() {
    let server = TestServer::start().await;
    let reader = Client::bearer(&server, &token("acme", &["read"]));
    assert_forbidden(&reader.write(series("m", 0..1)).await, "write");
    reader.query(aggregate()).await.ok();
    server.stop().await;
}

#[tokio::test]
async fn write_only_token_cannot_query_discover_or_see_cardinality() {
    let server = TestServer::start().await;
    let writer = Client::bearer(&server, &token("acme", &["write"]));
    writer.write(series("m", 0..1)).await.ok();
    assert_forbidden(&writer.query(aggregate()).await, "read");
    for path in [
        "/api/v1/metrics",
        "/api/v1/metrics/m/dimensions",
        "/api/v1/metrics/m/dimensions/series/values",
        "/api/v1/cardinality",
    ] {
        assert_forbidden(&writer.get(path).await, "read");
    }
    server.stop().await;
}

#[tokio::test]
async fn only_admin_can_delete() {
    let server = TestServer::start().await;
    let user = Client::bearer(&server, &token("acme", &["read", "write"]));
    user.write(series("m", 0..3)).await.ok();
    let path = format!("/api/v1/metrics/m?before={}", now_ms() + 60_000);
    assert_forbidden(&user.delete(&path).await, "admin");
    assert_eq!(
        user.get("/api/v1/metrics").await.ok()["metrics"],
        json!(["m"])
    );

    // `admin` alone does not grant reading or writing.
    let admin = Client::bearer(&server, &token("acme", &["admin"]));
    assert_forbidden(&admin.write(series("m", 0..1)).await, "write");
    let reply = admin.delete(&path).await;
    assert!(reply.status.is_success(), "{reply:?}");
    let after = user
        .query(json!({"queryType": "range", "metricName": "m", "timeRange": {"relative": "1h"}}))
        .await
        .ok();
    assert_eq!(after["series"], json!([]));
    server.stop().await;
}
