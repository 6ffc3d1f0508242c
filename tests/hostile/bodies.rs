//! Bodies that are small on the wire and huge once decoded: a query whose
//! `in` filter lists millions of values, and a write whose one metric has
//! a million dimensions, each gzipped to a few KB, four at a time. Lists
//! past their bound are counted, not kept, and big bodies decode on the
//! blocking pool, so they cost parse time, not memory or async workers.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::{Hostile, end_body_attack};

const ATTACK_TIME: Duration = Duration::from_secs(6);
const ATTACKERS: usize = 4;

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

/// Just under the default 16 MiB body limit once decompressed.
fn huge_in_list_query() -> Vec<u8> {
    let values = vec!["\"v\""; 3_500_000].join(",");
    gzip(
        format!(
            r#"{{"queryType":"aggregate","metricName":"m","aggregation":"count","timeRange":{{"relative":"1h"}},"filters":[{{"key":"k","op":"in","value":[{values}]}}]}}"#
        )
        .as_bytes(),
    )
}

fn million_dimension_write() -> Vec<u8> {
    let dims: Vec<String> = (0..1_000_000).map(|i| format!("\"k{i}\":\"v\"")).collect();
    let ts = crate::common::now_ms();
    gzip(
        format!(
            r#"{{"metrics":[{{"name":"m","value":1,"timestamp":{ts},"dimensions":{{{}}}}},{{"name":"m","value":1,"timestamp":{ts}}}]}}"#,
            dims.join(",")
        )
        .as_bytes(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_that_inflate_to_millions_of_elements_leave_the_quiet_tenant_unharmed() {
    let mut hostile = Hostile::spawn(&[]).await;
    let query = huge_in_list_query();
    let write = million_dimension_write();
    assert!(query.len() < 100_000 && write.len() < 4_000_000);

    let quiet = hostile.start_quiet_load();
    let deadline = Instant::now() + ATTACK_TIME;
    let mut tasks = Vec::new();
    for worker in 0..ATTACKERS {
        let api = hostile.api_for("attacker", &["read", "write"], Some("unlimited"));
        let (query, write) = (query.clone(), write.clone());
        tasks.push(tokio::spawn(async move {
            let mut sent = 0usize;
            while Instant::now() < deadline {
                if (worker + sent).is_multiple_of(2) {
                    let reply = api
                        .post_bytes("/api/v1/query", query.clone(), Some("gzip"))
                        .await;
                    assert_eq!(reply.status.as_u16(), 400, "{}", reply.body);
                    assert_eq!(reply.body["error"]["code"], "invalid_filter");
                } else {
                    let reply = api
                        .post_bytes("/api/v1/write", write.clone(), Some("gzip"))
                        .await;
                    assert_eq!(reply.status.as_u16(), 200, "{}", reply.body);
                    assert_eq!(reply.body["accepted"], 1, "{}", reply.body);
                    assert_eq!(
                        reply.body["errors"][0],
                        json!({"index": 0, "code": "too_many_dimensions",
                            "message": "1000000 dimensions; the limit is 20"})
                    );
                }
                sent += 1;
            }
            sent
        }));
    }
    end_body_attack(tasks, quiet, &mut hostile).await;
    hostile.assert_rss_growth_below(512 << 20);
}
