//! Expensive queries: an attacker sends the costliest regexes and queries
//! the API allows, and some it refuses (a 16 MB regex literal in a 16 KB
//! gzipped body, a pattern escaping its anchors), four at a time, over a
//! store of its own that dwarfs the quiet tenant's. Patterns are bounded
//! before they are parsed, decoding and regex compilation run off the async
//! workers, and a query's cost follows its own tenant's series, so the
//! quiet tenant must not notice.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::now_ms;
use crate::support::Hostile;

/// The attacker's store: series of one metric with five dimensions each,
/// written in two halves around a first series of the quiet tenant's, so
/// the quiet tenant's series ids span the attacker's.
const ATTACKER_SERIES: usize = 40_000;
const ATTACK_TIME: Duration = Duration::from_secs(8);
const ATTACKERS: usize = 4;

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

fn grouped_p99(filter: Value) -> Value {
    json!({"queryType": "aggregate", "metricName": "big", "aggregation": "p99",
        "timeRange": {"relative": "1h"}, "groupBy": ["a", "b", "c", "d", "e"],
        "filters": [filter]})
}

/// Just under the default 4 KiB limit: many alternatives of classes and
/// counted repetitions, a large but bounded program.
fn max_size_regex() -> String {
    let mut pattern = String::from("(?:");
    let mut i = 0;
    while pattern.len() < 4_000 {
        if i > 0 {
            pattern.push('|');
        }
        pattern.push_str(&format!("[a-f]{{1,3}}v{i}[0-9_]?"));
        i += 1;
    }
    pattern.push(')');
    pattern
}

async fn write_attacker_series(api: &crate::common::Api, range: std::ops::Range<usize>) {
    let ts = now_ms() - 60_000;
    let ids: Vec<usize> = range.collect();
    for chunk in ids.chunks(5_000) {
        let metrics: Vec<Value> = chunk
            .iter()
            .map(|i| {
                json!({"name": "big", "value": *i as f64, "timestamp": ts,
                    "dimensions": {"a": format!("a{}", i % 7), "b": format!("b{}", i % 11),
                    "c": format!("c{}", i % 13), "d": format!("d{}", i % 17), "e": format!("e{i}")}})
            })
            .collect();
        let reply = api.write(Value::Array(metrics)).await;
        assert_eq!(reply.status.as_u16(), 200, "{}", reply.body);
        assert_eq!(reply.body["rejected"], 0, "{}", reply.body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expensive_queries_leave_the_quiet_tenant_unharmed() {
    let mut hostile = Hostile::spawn(&[]).await;
    // The unlimited tier: no rate limit stands between the attack and the
    // cost of each query.
    let attacker = || hostile.api_for("attacker", &["read", "write"], Some("unlimited"));
    write_attacker_series(&attacker(), 0..ATTACKER_SERIES / 2).await;
    let early = json!([{"name": "quiet_early", "value": 1.0, "timestamp": now_ms() - 60_000,
        "dimensions": {"host": "early"}}]);
    assert_eq!(hostile.quiet().write(early).await.status.as_u16(), 200);
    write_attacker_series(&attacker(), ATTACKER_SERIES / 2..ATTACKER_SERIES).await;

    // 16 MB of regex literal in 16 KB on the wire: refused by its length
    // before any regex code sees it, and never echoed back.
    let literal = "a".repeat(16_000_000);
    let huge_regex = gzip(
        grouped_p99(json!({"key": "e", "op": "=~", "value": literal}))
            .to_string()
            .as_bytes(),
    );
    drop(literal);
    let queries = [
        grouped_p99(json!({"key": "e", "op": "=~", "value": max_size_regex()})),
        grouped_p99(json!({"key": "e", "op": "=~", "value": "x)|(?:.*"})),
        grouped_p99(json!({"key": "e", "op": "!~", "value": "e1.*"})),
        json!({"queryType": "range", "metricName": "big", "timeRange": {"relative": "1h"}}),
    ];

    let quiet = hostile.start_quiet_load();
    let deadline = Instant::now() + ATTACK_TIME;
    let mut tasks = Vec::new();
    for worker in 0..ATTACKERS {
        let api = attacker();
        let queries = queries.clone();
        let huge_regex = huge_regex.clone();
        tasks.push(tokio::spawn(async move {
            let mut answered = [0usize; 5];
            let mut i = worker;
            while Instant::now() < deadline {
                let which = i % (queries.len() + 1);
                let reply = match queries.get(which) {
                    Some(query) => api.query(query.clone()).await,
                    None => {
                        api.post_bytes("/api/v1/query", huge_regex.clone(), Some("gzip"))
                            .await
                    }
                };
                let expected = match which {
                    1 => 400, // the escaping pattern
                    4 => 400, // the 16 MB pattern
                    _ => 200,
                };
                assert_eq!(
                    reply.status.as_u16(),
                    expected,
                    "query {which}: {}",
                    reply.body
                );
                if expected == 400 {
                    let message = reply.body["error"]["message"].as_str().unwrap_or("");
                    assert!(
                        message.len() < 300,
                        "an error echoed {} bytes",
                        message.len()
                    );
                }
                answered[which] += 1;
                i += 1;
            }
            answered
        }));
    }
    let mut answered = [0usize; 5];
    for task in tasks {
        for (total, n) in answered.iter_mut().zip(task.await.expect("attacker task")) {
            *total += n;
        }
    }
    let report = quiet.stop().await;
    assert!(
        answered.iter().all(|&n| n > 0),
        "every kind of attack ran at least once: {answered:?}"
    );
    report.assert_unharmed();
    hostile.assert_alive().await;
    hostile.assert_rss_growth_below(512 << 20);
}
