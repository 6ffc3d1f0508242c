//! Influx line protocol: the `influxdb-client` package (PyPI) against
//! `POST /api/v2/write`, and v1-style requests against `POST /write`.

use serde_json::json;

use crate::common::{TestServer, now_ms};
use crate::support::{api_for, run_python, stored, token_for};

/// Writes two points with the client's `Point` builder (ms precision), then
/// a line-protocol batch (ns precision) with a malformed line and a string
/// field; prints the status and body of the error that batch gets.
const INFLUX_CLIENT: &str = r#"
import json, os
from influxdb_client import InfluxDBClient, Point, WritePrecision
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.rest import ApiException

ts = int(os.environ["TS_MS"])
with InfluxDBClient(url=os.environ["URL"], token=os.environ["TOKEN"], org="ignored") as client:
    write = client.write_api(write_options=SYNCHRONOUS)
    write.write(bucket="ignored", record=[
        Point("cpu").tag("host", "a").tag("cpu-id", "0")
            .field("usage_idle", 97.5).field("usage_user", 2).field("up", True)
            .time(ts, WritePrecision.MS),
        Point("cpu").tag("host", "b").field("usage_idle", 50.25).time(ts + 1000, WritePrecision.MS),
    ], write_precision=WritePrecision.MS)
    ns = (ts + 2000) * 1000000
    lines = f"mem free=1024i {ns}\nthis is not line protocol\nmem label=\"x\",used=3u {ns}"
    try:
        write.write(bucket="ignored", record=lines, write_precision=WritePrecision.NS)
        print(json.dumps({"status": None}))
    except ApiException as e:
        print(json.dumps({"status": e.status, "body": json.loads(e.body)}))
"#;

#[tokio::test]
async fn influxdb_client_writes_read_back_exactly_for_its_own_tenant() {
    let server = TestServer::start().await;
    let ts = now_ms() - 60_000;
    let outcome = run_python(
        "influxdb_client",
        "influxdb-client",
        INFLUX_CLIENT,
        &[
            ("URL", server.api.base.clone()),
            ("TOKEN", token_for("influx-a")),
            ("TS_MS", ts.to_string()),
        ],
    )
    .await;

    // The bad batch: a 400 naming the lines, while its good lines are stored.
    assert_eq!(outcome["status"], 400, "{outcome}");
    let error = &outcome["body"]["error"];
    assert_eq!(error["code"], "partial_write", "{outcome}");
    assert_eq!(
        (error["accepted"].clone(), error["rejected"].clone()),
        (json!(2), json!(2))
    );
    let rejections: Vec<(i64, &str)> = error["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["line"].as_i64().unwrap(), e["code"].as_str().unwrap()))
        .collect();
    assert_eq!(
        rejections,
        [(2, "invalid_line_protocol"), (3, "string_field")]
    );
    assert!(
        error["message"].as_str().unwrap().contains("line 2:"),
        "{outcome}"
    );

    let a = api_for(&server, "influx-a");
    assert_eq!(
        stored(&a, "cpu_usage_idle").await,
        json!([
            {"dimensions": {"cpu_id": "0", "host": "a"}, "points": [[ts, 97.5]]},
            {"dimensions": {"host": "b"}, "points": [[ts + 1000, 50.25]]},
        ])
    );
    assert_eq!(
        stored(&a, "cpu_usage_user").await,
        json!([{"dimensions": {"cpu_id": "0", "host": "a"}, "points": [[ts, 2.0]]}])
    );
    assert_eq!(
        stored(&a, "cpu_up").await,
        json!([{"dimensions": {"cpu_id": "0", "host": "a"}, "points": [[ts, 1.0]]}])
    );
    assert_eq!(
        stored(&a, "mem_free").await,
        json!([{"dimensions": {}, "points": [[ts + 2000, 1024.0]]}])
    );
    assert_eq!(
        stored(&a, "mem_used").await,
        json!([{"dimensions": {}, "points": [[ts + 2000, 3.0]]}])
    );

    let b = api_for(&server, "influx-b");
    assert_eq!(b.get("/api/v1/metrics").await.ok()["metrics"], json!([]));
    assert_eq!(stored(&b, "cpu_usage_idle").await, json!([]));
    server.stop().await;
}

fn basic(tenant: &str) -> String {
    use base64::Engine;
    let credentials = format!("{tenant}:{}", token_for(tenant));
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(credentials)
    )
}

#[tokio::test]
async fn v1_write_takes_basic_auth_and_precision() {
    let server = TestServer::start().await;
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let url = |query: &str| format!("{}/write?db=telegraf&rp=autogen{query}", server.api.base);
    let ts_s = now_ms() / 1000 - 60;
    let response = http
        .post(url("&precision=s"))
        .header("authorization", basic("influx-v1"))
        .body(format!("disk,path=/ used_percent=41.5 {ts_s}\n"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert!(response.bytes().await.unwrap().is_empty());
    assert_eq!(
        stored(&api_for(&server, "influx-v1"), "disk_used_percent").await,
        json!([{"dimensions": {"path": "/"}, "points": [[ts_s * 1000, 41.5]]}])
    );

    let response = http
        .post(url("&precision=fortnights"))
        .header("authorization", basic("influx-v1"))
        .body("m v=1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_precision");

    // Nothing to write (blank lines, comments) is not an error.
    let response = http
        .post(url(""))
        .header("authorization", basic("influx-v1"))
        .body("\n# nothing\n")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);

    let response = http.post(url("")).body("m v=1").send().await.unwrap();
    assert_eq!(response.status(), 401);
    server.stop().await;
}

#[tokio::test]
async fn more_points_than_a_request_may_hold_is_413_and_stores_nothing() {
    let server = TestServer::start_with(|c| c.api.max_metrics_per_request = 3).await;
    let a = api_for(&server, "influx-big");
    let reply = a
        .send(
            a.http
                .post(a.url("/api/v2/write"))
                .body("m a=1,b=2\nm c=3,d=4\n"),
        )
        .await;
    reply.assert_error(413, "too_many_metrics");
    assert_eq!(a.get("/api/v1/metrics").await.ok()["metrics"], json!([]));
    server.stop().await;
}
