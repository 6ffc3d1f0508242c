//! Per-tenant rate limits: 429 with Retry-After and RateLimit headers,
//! batches cost their size, one tenant's flood does not touch another.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::{Reply, TestServer};
use crate::support::*;

fn header<'a>(reply: &'a Reply, name: &str) -> &'a str {
    reply
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

async fn tiny_server() -> TestServer {
    TestServer::start_with(|c| {
        add_tier(c, "tiny", |t| {
            t.write_requests_per_second = max(3);
            t.query_requests_per_second = max(2);
            t.metrics_per_second = max(20);
        });
    })
    .await
}

#[tokio::test]
async fn write_requests_over_the_quota_get_429_with_retry_headers() {
    let server = tiny_server().await;
    let client = Client::bearer(&server, &token_with_tier("acme", ALL, "tiny"));
    let first = client.write(series("m", 0..1)).await;
    assert_eq!(first.status.as_u16(), 200, "{first:?}");
    assert_eq!(
        header(&first, "ratelimit-policy"),
        r#""write_requests";q=3;w=1"#
    );
    assert!(
        header(&first, "ratelimit").starts_with(r#""write_requests";r=2;"#),
        "{first:?}"
    );

    let mut limited = None;
    for _ in 0..5 {
        let r = client.write(series("m", 0..1)).await;
        if r.status.as_u16() == 429 {
            limited = Some(r);
            break;
        }
    }
    let r = limited.expect("the 4th write within a second must be limited");
    r.assert_error(429, "rate_limited");
    let retry: u64 = header(&r, "retry-after").parse().unwrap();
    assert!((1..=1).contains(&retry), "Retry-After {retry}");
    assert_eq!(
        header(&r, "ratelimit-policy"),
        r#""write_requests";q=3;w=1"#
    );
    assert!(header(&r, "ratelimit").starts_with(r#""write_requests";r=0;t="#));
    let e = &r.body["error"];
    assert_eq!(e["limit"], "write_requests_per_second");
    assert_eq!(e["value"], 3);
    assert_eq!(e["tier"], "tiny");
    assert_eq!(e["retry_after_seconds"], 1);
    assert!(e["retry_after_ms"].as_u64().unwrap() <= 1000);

    // Queries have their own bucket.
    let q = json!({"queryType": "aggregate", "metricName": "m", "aggregation": "count", "timeRange": {"relative": "1h"}});
    client.query(q.clone()).await.ok();

    // After the retry time the bucket has refilled.
    tokio::time::sleep(Duration::from_millis(
        e["retry_after_ms"].as_u64().unwrap() + 50,
    ))
    .await;
    client.write(series("m", 0..1)).await.ok();
    server.stop().await;
}

#[tokio::test]
async fn a_batch_costs_its_size_and_one_larger_than_the_burst_is_refused_outright() {
    let server = tiny_server().await;
    let client = Client::bearer(&server, &token_with_tier("acme", ALL, "tiny"));
    client.write(series("m", 0..15)).await.ok();
    let r = client.write(series("m", 0..10)).await;
    r.assert_error(429, "rate_limited");
    assert_eq!(r.body["error"]["limit"], "metrics_per_second");
    assert_eq!(r.body["error"]["value"], 20);
    assert_eq!(header(&r, "ratelimit-policy"), r#""metrics";q=20;w=1"#);

    let r = client.write(series("m", 0..21)).await;
    r.assert_error(413, "batch_exceeds_rate_limit");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("at most 20"),
        "{r:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn request_rate_is_checked_before_the_body_is_read() {
    let server = tiny_server().await;
    let token = token_with_tier("acme", ALL, "tiny");
    let client = Client::bearer(&server, &token);
    while client.write(series("m", 0..1)).await.status.as_u16() != 429 {}
    let head = format!(
        "POST /api/v1/write HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\ncontent-type: application/json\r\ncontent-length: 50000000\r\n\r\n"
    );
    assert_eq!(raw_status(&server.api.base, &head).await, 429);
    server.stop().await;
}

#[tokio::test]
async fn the_tier_claim_picks_quotas_and_a_tenant_override_wins() {
    let server = TestServer::start_with(|c| {
        c.limits.default_tier = "free".into();
        c.limits.tenants.insert(
            "pinned".into(),
            luminate_host::limits::TenantOverride {
                write_requests_per_second: Some(max(7)),
                ..Default::default()
            },
        );
    })
    .await;
    let policy = |r: &Reply| header(r, "ratelimit-policy").to_owned();
    let free = Client::bearer(&server, &token("a", ALL))
        .write(series("m", 0..1))
        .await;
    assert_eq!(policy(&free), r#""write_requests";q=100;w=1"#);
    let pro = Client::bearer(&server, &token_with_tier("b", ALL, "pro"))
        .write(series("m", 0..1))
        .await;
    assert_eq!(policy(&pro), r#""write_requests";q=1000;w=1"#);
    let pinned = Client::bearer(&server, &token_with_tier("pinned", ALL, "pro"))
        .write(series("m", 0..1))
        .await;
    assert_eq!(policy(&pinned), r#""write_requests";q=7;w=1"#);
    let unlimited = Client::bearer(&server, &token_with_tier("c", ALL, "unlimited"))
        .write(series("m", 0..1))
        .await;
    assert_eq!(unlimited.status.as_u16(), 200);
    assert!(unlimited.headers.get("ratelimit-policy").is_none());
    server.stop().await;
}

#[tokio::test]
async fn a_flooding_tenant_does_not_slow_or_limit_another() {
    let server = TestServer::start_with(|c| {
        add_tier(c, "small", |t| {
            t.write_requests_per_second = max(20);
            t.query_requests_per_second = max(20);
            t.metrics_per_second = max(1000);
        });
    })
    .await;
    let flooder = Client::bearer(&server, &token_with_tier("flooder", ALL, "small"));
    let victim = Client::bearer(&server, &token_with_tier("victim", ALL, "small"));

    let flood_until = Instant::now() + Duration::from_secs(3);
    let mut floods = Vec::new();
    for _ in 0..8 {
        let f = flooder.clone();
        floods.push(tokio::spawn(async move {
            let (mut ok, mut limited) = (0u32, 0u32);
            while Instant::now() < flood_until {
                match f.write(series("flood", 0..10)).await.status.as_u16() {
                    200 => ok += 1,
                    429 => limited += 1,
                    other => panic!("flooder got {other}"),
                }
            }
            (ok, limited)
        }));
    }
    // The victim stays within its own quota: 10 writes and 10 queries a second.
    let mut victim_statuses = Vec::new();
    while Instant::now() < flood_until {
        victim_statuses.push(victim.write(series("mine", 0..5)).await.status.as_u16());
        let q = json!({"queryType": "aggregate", "metricName": "mine", "aggregation": "count", "timeRange": {"relative": "1h"}});
        victim_statuses.push(victim.query(q).await.status.as_u16());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (mut ok, mut limited) = (0, 0);
    for f in floods {
        let (o, l) = f.await.unwrap();
        ok += o;
        limited += l;
    }
    assert!(
        limited > ok,
        "the flood must be mostly limited: {ok} ok, {limited} limited"
    );
    assert!(
        victim_statuses.len() >= 10,
        "victim made {} requests",
        victim_statuses.len()
    );
    assert!(
        victim_statuses.iter().all(|s| *s == 200),
        "victim statuses: {victim_statuses:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn alternating_tier_claims_does_not_multiply_the_rate() {
    let server = TestServer::start_with(|c| {
        add_tier(c, "tiny", |t| {
            t.write_requests_per_second = max(3);
            t.query_requests_per_second = max(3);
            t.metrics_per_second = max(20);
        });
        add_tier(c, "small", |t| {
            t.write_requests_per_second = max(5);
            t.query_requests_per_second = max(5);
            t.metrics_per_second = max(50);
        });
    })
    .await;
    let tokens = [
        Client::bearer(&server, &token_with_tier("hopper", ALL, "tiny")),
        Client::bearer(&server, &token_with_tier("hopper", ALL, "small")),
        Client::bearer(&server, &token_with_tier("hopper", ALL, "free")),
    ];
    // 60 writes, each with the next token, as fast as the server answers.
    let started = Instant::now();
    let mut accepted = 0u32;
    for i in 0..60 {
        let reply = tokens[i % 2].write(series("hop", 0..1)).await;
        match reply.status.as_u16() {
            200 => accepted += 1,
            429 => {}
            other => panic!("unexpected {other}: {reply:?}"),
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    // One second of budget at the larger quota (5) plus what refills at
    // that quota while the loop runs: never a fresh burst per switch.
    let bound = 5.0 + 5.0 * elapsed;
    assert!(
        f64::from(accepted) <= bound.floor(),
        "{accepted} writes accepted in {elapsed:.2} s (bound {bound:.1})"
    );
    assert!(accepted >= 3, "only {accepted} accepted");
    // The bucket the tiers spent is also the free tier's: switching to a
    // token with a 100/s quota right after gives only what refilled.
    let started = Instant::now();
    let mut free_accepted = 0u32;
    for _ in 0..100 {
        if tokens[2].write(series("hop", 0..1)).await.status.as_u16() == 200 {
            free_accepted += 1;
        }
    }
    // What refilled, plus what was left under 1/5 s when the loop above
    // stopped (at most one "small" request's cost: 20 free-tier requests).
    let refilled = 100.0 * started.elapsed().as_secs_f64() + 21.0;
    assert!(
        f64::from(free_accepted) <= refilled.ceil(),
        "the free tier got a fresh burst: {free_accepted} accepted, {refilled:.0} refilled"
    );
    server.stop().await;
}
