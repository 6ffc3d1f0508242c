//! Tenant A can never read, discover, delete or infer tenant B's data.

use serde_json::{Value, json};

use crate::common::{TestServer, now_ms};
use crate::support::*;

struct Tenants {
    server: TestServer,
    alice: Client,
    bob: Client,
}

/// Alice stores `secret_metric` (and a shared metric name `shared`); Bob
/// stores only `shared` with different values.
async fn seeded() -> Tenants {
    let server = TestServer::start().await;
    let alice = Client::bearer(&server, &token("alice", ALL));
    let bob = Client::bearer(&server, &token("bob", ALL));
    let ts = now_ms() - 1_000;
    alice
        .write(json!([
            {"name": "secret_metric", "value": 4242.25, "timestamp": ts, "dimensions": {"customer": "alice-customer"}},
            {"name": "shared", "value": 31337.5, "timestamp": ts, "dimensions": {"team": "alice-team"}},
        ]))
        .await
        .ok();
    bob.write(json!([{"name": "shared", "value": 1, "timestamp": ts, "dimensions": {"team": "bob-team"}}]))
        .await
        .ok();
    Tenants { server, alice, bob }
}

/// Nothing of Alice's data in `body`. (Bob may echo the metric name he
/// asked about, so only a list of metric names is checked for it.)
fn assert_no_trace_of_alice(body: &Value) {
    let text = body.to_string();
    for secret in ["alice", "31337.5", "4242.25"] {
        assert!(!text.contains(secret), "{secret:?} leaked into {text}");
    }
}

fn aggregate(metric: &str, extra: Value) -> Value {
    let mut q = json!({"queryType": "aggregate", "metricName": metric, "aggregation": "sum",
        "timeRange": {"relative": "1h"}});
    for (k, v) in extra.as_object().unwrap() {
        q[k] = v.clone();
    }
    q
}

#[tokio::test]
async fn tenant_b_cannot_discover_tenant_a_metrics() {
    let t = seeded().await;
    let metrics = t.bob.get("/api/v1/metrics").await.ok();
    assert_eq!(metrics["metrics"], json!(["shared"]));
    for path in [
        "/api/v1/metrics/secret_metric/dimensions",
        "/api/v1/metrics/secret_metric/dimensions/customer/values",
        "/api/v1/metrics/shared/dimensions/team/values",
        "/api/v1/cardinality",
    ] {
        let reply = t.bob.get(path).await;
        assert!(
            reply.status.is_success() || reply.status.as_u16() == 404,
            "{path}: {reply:?}"
        );
        assert_no_trace_of_alice(&reply.body);
    }
    for path in [
        "/api/v1/metrics/secret_metric/dimensions",
        "/api/v1/metrics/secret_metric/dimensions/customer/values",
    ] {
        let reply = t.bob.get(path).await;
        let listed = reply.body.get("dimensions").or(reply.body.get("values"));
        assert!(listed.is_none_or(|l| l == &json!([])), "{path}: {reply:?}");
    }
    let card = t.bob.get("/api/v1/cardinality").await.ok();
    assert!(!card.to_string().contains("secret_metric"), "{card}");
    let values = t
        .bob
        .get("/api/v1/metrics/shared/dimensions/team/values")
        .await
        .ok();
    assert_eq!(values["values"], json!(["bob-team"]));
    // Alice sees her own.
    let metrics = t.alice.get("/api/v1/metrics").await.ok();
    assert_eq!(metrics["metrics"], json!(["secret_metric", "shared"]));
    t.server.stop().await;
}

#[tokio::test]
async fn tenant_b_cannot_read_tenant_a_data_by_query() {
    let t = seeded().await;
    for q in [
        aggregate("secret_metric", json!({})),
        aggregate("shared", json!({"groupBy": ["team"]})),
        json!({"queryType": "range", "metricName": "secret_metric", "timeRange": {"relative": "1h"}}),
        json!({"queryType": "range", "metricName": "shared", "timeRange": {"relative": "1h"}}),
        json!({"queryType": "rate", "metricName": "shared", "step": "1m", "timeRange": {"relative": "1h"}}),
    ] {
        let reply = t.bob.query(q.clone()).await;
        assert_eq!(reply.status.as_u16(), 200, "{q}: {reply:?}");
        assert_no_trace_of_alice(&reply.body);
    }
    let sum = t.bob.query(aggregate("shared", json!({}))).await.ok();
    assert_eq!(sum["results"][0]["value"], 1.0, "{sum}");
    t.server.stop().await;
}

#[tokio::test]
async fn regex_filters_on_tenant_id_only_match_the_callers_tenant() {
    let t = seeded().await;
    for (op, value) in [
        ("=~", json!(".*")),
        ("=~", json!("alice")),
        ("=", json!("alice")),
        ("!=", json!("bob")),
        ("!~", json!("bob")),
        ("in", json!(["alice", "bob"])),
    ] {
        let q = aggregate(
            "shared",
            json!({"filters": [{"key": "_tenant_id", "op": op, "value": value}]}),
        );
        let reply = t.bob.query(q.clone()).await;
        assert_eq!(reply.status.as_u16(), 200, "{q}: {reply:?}");
        assert_no_trace_of_alice(&reply.body);
    }
    // `=~ ".*"` matches Bob's own data, and nothing else.
    let q = aggregate(
        "shared",
        json!({"filters": [{"key": "_tenant_id", "op": "=~", "value": ".*"}]}),
    );
    assert_eq!(t.bob.query(q).await.ok()["results"][0]["value"], 1.0);
    t.server.stop().await;
}

#[tokio::test]
async fn group_by_tenant_id_shows_only_the_callers_tenant() {
    let t = seeded().await;
    let reply = t
        .bob
        .query(aggregate("shared", json!({"groupBy": ["_tenant_id"]})))
        .await
        .ok();
    assert_eq!(
        reply["results"],
        json!([{"_tenant_id": "bob", "value": 1.0}]),
        "{reply}"
    );
    let range = t
        .bob
        .query(json!({"queryType": "range", "metricName": "shared", "timeRange": {"relative": "1h"}, "groupBy": ["_tenant_id"]}))
        .await;
    assert_no_trace_of_alice(&range.body);
    t.server.stop().await;
}

#[tokio::test]
async fn tenant_b_cannot_delete_tenant_a_data() {
    let t = seeded().await;
    let before = now_ms() + 60_000;
    for metric in ["secret_metric", "shared"] {
        let reply = t
            .bob
            .delete(&format!("/api/v1/metrics/{metric}?before={before}"))
            .await;
        assert!(
            reply.status.is_success() || reply.status.as_u16() == 404,
            "{reply:?}"
        );
    }
    let secret = t
        .alice
        .query(aggregate("secret_metric", json!({})))
        .await
        .ok();
    assert_eq!(secret["results"][0]["value"], 4242.25);
    let shared = t.alice.query(aggregate("shared", json!({}))).await.ok();
    assert_eq!(shared["results"][0]["value"], 31337.5);
    // Bob's own delete worked on his data only.
    let bobs = t.bob.query(aggregate("shared", json!({}))).await.ok();
    assert!(
        bobs["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["value"] != 1.0),
        "{bobs}"
    );
    t.server.stop().await;
}

#[tokio::test]
async fn clients_cannot_write_into_another_tenant_with_reserved_dimensions() {
    let t = seeded().await;
    let reply = t
        .bob
        .write(json!([
            {"name": "shared", "value": 5, "dimensions": {"_tenant_id": "alice"}},
            {"name": "shared", "value": 6, "dimensions": {"team": "bob-team"}},
        ]))
        .await
        .ok();
    assert_eq!(reply["accepted"], 1);
    assert_eq!(reply["errors"][0]["index"], 0);
    let shared = t.alice.query(aggregate("shared", json!({}))).await.ok();
    assert_eq!(
        shared["results"][0]["value"], 31337.5,
        "nothing reached alice"
    );
    t.server.stop().await;
}

#[tokio::test]
async fn the_cardinality_report_covers_only_the_callers_series() {
    let t = seeded().await;
    let bob = t.bob.get("/api/v1/cardinality").await.ok();
    assert_eq!(bob["tenant"], "bob");
    assert_eq!(bob["series"]["estimate"], 1);
    assert_no_trace_of_alice(&bob);
    let alice = t.alice.get("/api/v1/cardinality").await.ok();
    assert_eq!(alice["series"]["estimate"], 2);
    t.server.stop().await;
}
