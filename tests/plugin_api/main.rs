//! The plugin API and plugins on the request path, end to end: a real
//! server on loopback, real components compiled from source (root
//! build.rs), spoken to over HTTP.

include!(concat!(env!("OUT_DIR"), "/plugins.rs"));

#[path = "../common/mod.rs"]
mod common;

use std::time::Duration;

use common::{Api, Reply, TEST_JWT_SECRET, TestServer, listed, now_ms};
use serde_json::{Value, json};

const OPERATOR_TOKEN: &str = "operator-secret-for-tests";

/// A client for `tenant` whose token carries `scopes` (e.g. "read,write").
fn client_as(server: &TestServer, tenant: &str, scopes: &str) -> Api {
    let spec = luminate_host::auth::TokenSpec {
        tenant: luminate_host::model::TenantId::new(tenant).unwrap(),
        scopes: luminate_host::auth::Scopes::parse_list(scopes).unwrap(),
        tier: Some("unlimited".into()),
        org_id: None,
        ttl: Duration::from_secs(3600),
    };
    let secret = luminate_host::auth::Secret::new(TEST_JWT_SECRET);
    let token = luminate_host::auth::mint::mint_with_secret(&secret, None, None, &spec).unwrap();
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse().unwrap(),
    );
    Api {
        base: server.api.base.clone(),
        http: reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(60))
            .default_headers(headers)
            .build()
            .unwrap(),
    }
}

fn wasm(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

async fn upload(api: &Api, name: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut request = api
        .http
        .put(api.url(&format!("/api/v1/plugins/{name}")))
        .body(wasm(path));
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    api.send(request).await
}

async fn put_bindings(api: &Api, body: Value) -> Reply {
    api.send(api.http.put(api.url("/api/v1/bindings")).json(&body))
        .await
}

fn point(name: &str, value: f64, dims: Value) -> Value {
    json!({"name": name, "value": value, "timestamp": now_ms() - 1_000, "dimensions": dims})
}

#[tokio::test]
async fn a_bare_upload_gets_its_kind_from_exports_and_its_version_from_its_hash() {
    let server = TestServer::start().await;
    let reply = upload(&server, "name-policy", NAME_POLICY, &[]).await;
    assert_eq!(reply.status.as_u16(), 200, "{reply:?}");
    assert_eq!(reply.body["kind"], "validator");
    assert_eq!(reply.body["status"], "active");
    let hash = reply.body["hash"].as_str().unwrap().to_owned();
    assert_eq!(hash.len(), 64);
    assert_eq!(reply.body["version"], format!("sha256:{}", &hash[..12]));
    let list = server.get("/api/v1/plugins").await.ok();
    let row = listed(&list, "name-policy");
    assert_eq!(row["hash"], hash.as_str());
    assert_eq!(row["scope"], "tenant");
    assert_eq!(row["errors"], 0);
    assert_eq!(row["seriesOnly"], true, "the SDK's SERIES_ONLY");

    let reply = upload(
        &server,
        "name-policy",
        NAME_POLICY,
        &[
            ("plugin-version", "1.4.2"),
            ("plugin-deadline-ms", "20"),
            ("plugin-kind", "validator"),
            ("plugin-series-only", "false"),
        ],
    )
    .await;
    assert_eq!(reply.status.as_u16(), 200, "a new version: {reply:?}");
    assert_eq!(reply.body["version"], "1.4.2");
    assert_eq!(reply.body["deadlineMs"], 20);
    assert_eq!(reply.body["seriesOnly"], false, "the header overrides it");
    upload(&server, "x", NAME_POLICY, &[("plugin-kind", "enricher")])
        .await
        .assert_error(422, "not_a_plugin");
    upload(&server, "Bad.Name", NAME_POLICY, &[])
        .await
        .assert_error(400, "invalid_plugin_name");
    upload(&server, "x", NAME_POLICY, &[("plugin-deadline-ms", "soon")])
        .await
        .assert_error(400, "invalid_manifest");
    upload(
        &server,
        "x",
        NAME_POLICY,
        &[("plugin-series-only", "maybe")],
    )
    .await
    .assert_error(400, "invalid_manifest");
    server.stop().await;
}

#[tokio::test]
async fn an_upload_for_another_abi_is_refused_and_the_running_version_stays() {
    let server = TestServer::start().await;
    let first = upload(&server, "policy", NAME_POLICY, &[]).await.body;
    let reply = upload(&server, "policy", ABI_V2, &[]).await;
    reply.assert_error(422, "abi_mismatch");
    let message = reply.body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("0.2.0") && message.contains("0.1.0"),
        "{message}"
    );
    let row = listed(&server.get("/api/v1/plugins").await.ok(), "policy");
    assert_eq!(row["hash"], first["hash"]);
    assert_eq!(row["status"], "active-with-failed-update");
    assert!(
        row["lastLoadFailure"]["error"]
            .as_str()
            .unwrap()
            .contains("0.2.0")
    );
    server.stop().await;
}

#[tokio::test]
async fn validators_then_enrichers_run_on_writes_and_apdex_answers_grouped_filtered_queries() {
    let server = TestServer::start().await;
    upload(&server, "name-policy", NAME_POLICY, &[]).await;
    upload(&server, "lookup", LOOKUP_ENRICHER, &[]).await;
    upload(&server, "apdex", APDEX, &[]).await;
    let bindings = json!({
        "validators": [{"plugin": "name-policy", "params": {"requiredDimensions": ["service"]}, "onFailure": "fail-closed"}],
        "enrichers": [{"plugin": "lookup", "params": {"lookups": [{"key": "service",
            "table": {"checkout": {"team": "payments"}, "search": {"team": "discovery"}}}]}}]
    });
    assert_eq!(
        put_bindings(&server, bindings.clone()).await.ok(),
        bindings_with_defaults(&bindings)
    );
    assert_eq!(
        server.get("/api/v1/bindings").await.ok(),
        bindings_with_defaults(&bindings)
    );

    let metrics = json!([
        point(
            "latency",
            0.1,
            json!({"service": "checkout", "endpoint": "/pay"})
        ),
        point("latency", 0.2, json!({"endpoint": "/nowhere"})),
        point(
            "latency",
            0.9,
            json!({"service": "checkout", "endpoint": "/pay"})
        ),
        point(
            "latency",
            2.0,
            json!({"service": "search", "endpoint": "/find"})
        ),
        point(
            "latency",
            0.1,
            json!({"service": "search", "endpoint": "/find"})
        ),
    ]);
    let reply = server.write(metrics).await.ok();
    assert_eq!(reply["accepted"], 4);
    assert_eq!(reply["errors"][0]["index"], 1);
    assert_eq!(reply["errors"][0]["code"], "plugin_rejected");
    assert!(
        reply["errors"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("name-policy:")
    );

    let query = json!({"queryType": "aggregate", "metricName": "latency", "timeRange": {"relative": "1h"},
        "aggregation": {"plugin": "apdex", "params": {"threshold": 0.3}}, "groupBy": ["team"]});
    let body = server.query(query.clone()).await.ok();
    let results = body["results"].as_array().unwrap();
    // T = 0.3: payments {0.1 satisfied, 0.9 tolerating} = 0.75;
    // discovery {2.0 frustrated, 0.1 satisfied} = 0.5.
    assert_eq!(results.len(), 2, "{body}");
    assert_eq!(results[0]["team"], "discovery");
    assert_eq!(results[0]["value"], 0.5);
    assert_eq!(results[1]["team"], "payments");
    assert_eq!(results[1]["value"], 0.75);

    let mut filtered = query.clone();
    filtered["filters"] = json!([{"key": "endpoint", "op": "=", "value": "/find"}]);
    filtered["groupBy"] = json!(["endpoint"]);
    let body = server.query(filtered).await.ok();
    assert_eq!(
        body["results"],
        json!([{"endpoint": "/find", "value": 0.5}])
    );

    let mut bad = query.clone();
    bad["aggregation"]["params"] = json!({});
    let reply = server.query(bad).await;
    reply.assert_error(422, "plugin_failed");
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("apdex")
    );
    server.stop().await;
}

fn bindings_with_defaults(b: &Value) -> Value {
    let mut b = b.clone();
    for list in ["validators", "enrichers"] {
        for binding in b[list].as_array_mut().unwrap() {
            if binding.get("onFailure").is_none() {
                binding["onFailure"] = json!("fail-open");
            }
        }
    }
    b
}

#[tokio::test]
async fn bindings_must_name_installed_plugins_of_the_right_kind() {
    let server = TestServer::start().await;
    upload(&server, "lookup", LOOKUP_ENRICHER, &[]).await;
    put_bindings(&server, json!({"validators": [{"plugin": "nope"}]}))
        .await
        .assert_error(422, "unknown_plugin");
    put_bindings(&server, json!({"validators": [{"plugin": "lookup"}]}))
        .await
        .assert_error(422, "wrong_plugin_kind");
    put_bindings(
        &server,
        json!({"validators": [{"plugin": "lookup", "onFailure": "maybe"}]}),
    )
    .await
    .assert_error(400, "invalid_bindings");
    put_bindings(
        &server,
        json!({"enrichers": [{"plugin": "lookup", "params": [1]}]}),
    )
    .await
    .assert_error(400, "invalid_bindings");
    assert_eq!(
        server.get("/api/v1/bindings").await.ok(),
        json!({"validators": [], "enrichers": []})
    );
    server.stop().await;
}

#[tokio::test]
async fn fail_closed_rejects_with_the_plugin_named_and_fail_open_stores() {
    let server = TestServer::start().await;
    upload(
        &server,
        "spin",
        INFINITE_LOOP,
        &[("plugin-deadline-ms", "20")],
    )
    .await;
    put_bindings(
        &server,
        json!({"validators": [{"plugin": "spin", "onFailure": "fail-closed"}]}),
    )
    .await
    .ok();
    let reply = server
        .write(json!([
            point("a", 1.0, json!({})),
            point("b", 1.0, json!({}))
        ]))
        .await
        .ok();
    assert_eq!(reply["accepted"], 0);
    for (i, error) in reply["errors"].as_array().unwrap().iter().enumerate() {
        assert_eq!(error["index"], i);
        assert_eq!(error["code"], "plugin_failed");
        let message = error["message"].as_str().unwrap();
        assert!(
            message.contains("\"spin\"") && message.contains("deadline"),
            "{message}"
        );
    }
    put_bindings(
        &server,
        json!({"validators": [{"plugin": "spin", "onFailure": "fail-open"}]}),
    )
    .await
    .ok();
    let reply = server
        .write(json!([
            point("a", 1.0, json!({})),
            point("b", 1.0, json!({}))
        ]))
        .await
        .ok();
    assert_eq!(reply["accepted"], 2, "{reply}");
    let row = listed(&server.get("/api/v1/plugins").await.ok(), "spin");
    assert_eq!(row["errors"], 2);
    assert!(row["lastError"].as_str().unwrap().contains("deadline"));
    server.stop().await;
}

#[tokio::test]
async fn a_dry_run_answers_per_kind_and_stores_nothing() {
    let server = TestServer::start().await;
    upload(&server, "policy", NAME_POLICY, &[]).await;
    upload(&server, "lookup", LOOKUP_ENRICHER, &[]).await;
    upload(&server, "apdex", APDEX, &[]).await;
    let sample = json!([{"name": "latency", "value": 0.1, "dimensions": {"service": "checkout"}},
                        {"name": "latency", "value": 0.1}]);
    let body = server
        .post_json(
            "/api/v1/plugins/policy/test",
            &json!({"params": {"requiredDimensions": ["service"]}, "metrics": sample}),
        )
        .await
        .ok();
    assert_eq!(body["ok"], true);
    assert_eq!(body["result"]["verdicts"][0], json!({"verdict": "accept"}));
    assert_eq!(body["result"]["verdicts"][1]["verdict"], "reject");
    let body = server
        .post_json(
            "/api/v1/plugins/lookup/test",
            &json!({"params": {"lookups": [{"key": "service", "table": {"checkout": {"team": "payments"}}}]}, "metrics": sample}),
        )
        .await
        .ok();
    assert_eq!(
        body["result"]["enrichments"],
        json!([{"team": "payments"}, {}])
    );
    let body = server
        .post_json(
            "/api/v1/plugins/apdex/test",
            &json!({"params": {"threshold": 1.0}, "groups": [[{"value": 0.5}, {"value": 2.0}], [{"value": 9.0}]]}),
        )
        .await
        .ok();
    assert_eq!(body["result"]["values"], json!([0.75, 0.0]));
    let body = server
        .post_json(
            "/api/v1/plugins/apdex/test",
            &json!({"groups": [[{"value": 1.0}]]}),
        )
        .await
        .ok();
    assert_eq!(body["ok"], false);
    assert_eq!(body["result"]["error"]["code"], "invalid_config");
    server
        .post_json("/api/v1/plugins/nope/test", &json!({"metrics": []}))
        .await
        .assert_error(404, "plugin_not_found");
    server
        .post_json(
            "/api/v1/plugins/policy/test",
            &json!({"metrics": [], "groups": []}),
        )
        .await
        .assert_error(400, "invalid_dry_run");
    assert_eq!(
        server.get("/api/v1/metrics").await.ok()["metrics"],
        json!([]),
        "a dry run stores nothing"
    );
    assert_eq!(
        listed(&server.get("/api/v1/plugins").await.ok(), "apdex")["calls"],
        0
    );
    server.stop().await;
}

#[tokio::test]
async fn deleting_a_plugin_leaves_its_bindings_to_their_failure_policy() {
    let server = TestServer::start().await;
    upload(&server, "policy", NAME_POLICY, &[]).await;
    put_bindings(
        &server,
        json!({"validators": [{"plugin": "policy", "onFailure": "fail-closed"}]}),
    )
    .await
    .ok();
    let reply = server.delete("/api/v1/plugins/policy").await;
    assert_eq!(reply.status.as_u16(), 204, "{reply:?}");
    server
        .delete("/api/v1/plugins/policy")
        .await
        .assert_error(404, "plugin_not_found");
    let reply = server.write(json!([point("a", 1.0, json!({}))])).await.ok();
    assert_eq!(reply["errors"][0]["code"], "plugin_failed");
    assert!(
        reply["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("not installed")
    );
    assert!(listed(&server.get("/api/v1/plugins").await.ok(), "policy").is_null());
    server.stop().await;
}

#[tokio::test]
async fn uploaded_plugins_and_bindings_survive_a_restart() {
    let server = TestServer::start().await;
    let first = upload(&server, "policy", NAME_POLICY, &[("plugin-version", "7")])
        .await
        .body;
    put_bindings(
        &server,
        json!({"validators": [{"plugin": "policy", "params": {"requiredDimensions": ["service"]},
        "onFailure": "fail-closed"}]}),
    )
    .await
    .ok();
    let server = server.restart().await;
    let row = listed(&server.get("/api/v1/plugins").await.ok(), "policy");
    assert_eq!(row["hash"], first["hash"]);
    assert_eq!(row["version"], "7");
    let reply = server.write(json!([point("a", 1.0, json!({}))])).await.ok();
    assert_eq!(reply["errors"][0]["code"], "plugin_rejected", "{reply}");
    server.stop().await;
}

#[tokio::test]
async fn global_plugins_need_the_operator_token() {
    let server =
        TestServer::start_with(|c| c.plugins.operator_token = Some(OPERATOR_TOKEN.into())).await;
    let wrong = [("luminate-operator-token", "guess")];
    upload(&server, "shared", NAME_POLICY, &wrong)
        .await
        .assert_error(401, "invalid_operator_token");
    let operator = [("luminate-operator-token", OPERATOR_TOKEN)];
    let reply = upload(&server, "shared", NAME_POLICY, &operator).await;
    assert_eq!(reply.status.as_u16(), 200, "{reply:?}");
    assert_eq!(reply.body["scope"], "global");
    // Tenants see and bind global plugins, but cannot delete them.
    assert_eq!(
        listed(&server.get("/api/v1/plugins").await.ok(), "shared")["scope"],
        "global"
    );
    put_bindings(&server, json!({"validators": [{"plugin": "shared"}]}))
        .await
        .ok();
    server
        .delete("/api/v1/plugins/shared")
        .await
        .assert_error(404, "plugin_not_found");
    let reply = server
        .send(
            server
                .http
                .delete(server.url("/api/v1/plugins/shared"))
                .header("luminate-operator-token", OPERATOR_TOKEN),
        )
        .await;
    assert_eq!(reply.status.as_u16(), 204);
    server.stop().await;
}

#[tokio::test]
async fn reloading_the_watched_dir_every_second_under_full_write_load_drops_no_request() {
    let plugins_dir = tempfile::tempdir().unwrap();
    let dir = plugins_dir.path().to_path_buf();
    let drop_in = |version: u32| {
        std::fs::write(
            dir.join(".policy.toml"),
            format!("version = \"v{version}\"\n"),
        )
        .unwrap();
        std::fs::rename(dir.join(".policy.toml"), dir.join("policy.toml")).unwrap();
        std::fs::write(dir.join(".policy.wasm"), wasm(NAME_POLICY)).unwrap();
        std::fs::rename(dir.join(".policy.wasm"), dir.join("policy.wasm")).unwrap();
    };
    drop_in(0);
    let server =
        TestServer::start_with(|c| c.plugins.dir = Some(plugins_dir.path().to_path_buf())).await;
    assert_eq!(
        listed(&server.get("/api/v1/plugins").await.ok(), "policy")["source"],
        "directory"
    );
    put_bindings(
        &server,
        json!({"validators": [{"plugin": "policy", "params": {"requiredDimensions": ["service"]},
        "onFailure": "fail-closed"}]}),
    )
    .await
    .ok();

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..4 {
        let (api, stop) = (server.api.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let mut requests = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let batch: Vec<Value> = (0..100)
                    .map(|i| {
                        point(
                            "load",
                            i as f64,
                            json!({"service": "api", "writer": w.to_string()}),
                        )
                    })
                    .collect();
                let reply = api.write(Value::Array(batch)).await.ok();
                assert_eq!(
                    reply["accepted"], 100,
                    "request {requests} of writer {w}: {reply}"
                );
                requests += 1;
            }
            requests
        }));
    }
    for version in 1..=4 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        drop_in(version);
    }
    // Compiling happens off the request path and may lag the drops under
    // this load; writers keep going until the last version is live.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while listed(&server.get("/api/v1/plugins").await.ok(), "policy")["version"] != "v4" {
        assert!(
            std::time::Instant::now() < deadline,
            "the last version never went live"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total = 0;
    for writer in writers {
        total += writer.await.unwrap();
    }
    assert!(total >= 8, "only {total} requests under load");
    let row = listed(&server.get("/api/v1/plugins").await.ok(), "policy");
    assert_eq!(row["errors"], 0, "{row}");
    assert_eq!(row["loadFailures"], 0, "{row}");
    server.stop().await;
}

#[tokio::test]
async fn managing_plugins_and_bindings_needs_scope_admin() {
    let server = TestServer::start().await;
    let writer = client_as(&server, "acme", "read,write");
    upload(&writer, "policy", NAME_POLICY, &[])
        .await
        .assert_error(403, "insufficient_scope");
    writer
        .get("/api/v1/plugins")
        .await
        .assert_error(403, "insufficient_scope");
    put_bindings(&writer, json!({}))
        .await
        .assert_error(403, "insufficient_scope");
    let anonymous = Api {
        base: server.api.base.clone(),
        http: reqwest::Client::new(),
    };
    assert_eq!(anonymous.get("/api/v1/bindings").await.status.as_u16(), 401);
    server.stop().await;
}

#[tokio::test]
async fn a_tenant_never_sees_or_binds_another_tenants_plugins() {
    let server = TestServer::start().await;
    let (acme, globex) = (
        client_as(&server, "acme", "admin,write"),
        client_as(&server, "globex", "admin,write"),
    );
    assert_eq!(
        upload(&acme, "policy", NAME_POLICY, &[])
            .await
            .status
            .as_u16(),
        200
    );
    assert!(listed(&globex.get("/api/v1/plugins").await.ok(), "policy").is_null());
    put_bindings(&globex, json!({"validators": [{"plugin": "policy"}]}))
        .await
        .assert_error(422, "unknown_plugin");
    globex
        .delete("/api/v1/plugins/policy")
        .await
        .assert_error(404, "plugin_not_found");
    globex
        .post_json("/api/v1/plugins/policy/test", &json!({"metrics": []}))
        .await
        .assert_error(404, "plugin_not_found");
    // Same name, another tenant: two independent plugins.
    assert_eq!(
        upload(&globex, "policy", LOOKUP_ENRICHER, &[])
            .await
            .status
            .as_u16(),
        200
    );
    assert_eq!(
        listed(&acme.get("/api/v1/plugins").await.ok(), "policy")["kind"],
        "validator"
    );
    assert_eq!(
        listed(&globex.get("/api/v1/plugins").await.ok(), "policy")["kind"],
        "enricher"
    );
    server.stop().await;
}

#[tokio::test]
async fn hostile_plugins_are_contained_while_another_tenants_writes_keep_succeeding() {
    let server = TestServer::start().await;
    let evil = client_as(&server, "evil", "admin,write");
    let good = client_as(&server, "good", "admin,write,read");
    for (name, path) in [
        ("spin", INFINITE_LOOP),
        ("bomb", MEMORY_BOMB),
        ("panicky", PANIC_VALIDATOR),
        ("probe", SANDBOX_PROBE),
    ] {
        // The probe tries dozens of things; a loaded machine must not time it out.
        let headers: &[(&str, &str)] = if name == "probe" {
            &[("plugin-deadline-ms", "2000")]
        } else {
            &[]
        };
        assert_eq!(
            upload(&evil, name, path, headers).await.status.as_u16(),
            200
        );
    }
    upload(
        &evil,
        "giant",
        GIANT_OUTPUT,
        // A generous deadline: producing and copying megabytes on a loaded
        // machine must not turn this into a timeout test.
        &[
            ("plugin-memory-limit-bytes", "67108864"),
            ("plugin-deadline-ms", "2000"),
        ],
    )
    .await;
    upload(&evil, "sneaky", RESERVED_KEYS_ENRICHER, &[]).await;
    upload(&good, "policy", NAME_POLICY, &[]).await;
    put_bindings(
        &good,
        json!({"validators": [{"plugin": "policy", "params": {"requiredDimensions": ["service"]},
        "onFailure": "fail-closed"}]}),
    )
    .await
    .ok();
    put_bindings(
        &evil,
        json!({
            "validators": [
                {"plugin": "bomb", "onFailure": "fail-open"},
                {"plugin": "panicky", "onFailure": "fail-open"},
                {"plugin": "spin", "onFailure": "fail-open"},
                {"plugin": "giant", "params": {"bytes": 4000000}, "onFailure": "fail-open"}
            ],
            "enrichers": [{"plugin": "sneaky", "onFailure": "fail-closed"}]
        }),
    )
    .await
    .ok();

    let hostile = {
        let evil = evil.clone();
        tokio::spawn(async move {
            for _ in 0..5 {
                let batch = json!([
                    point("x", 1.0, json!({"service": "a"})),
                    point("y", 1.0, json!({"service": "a"}))
                ]);
                let reply = evil.write(batch).await.ok();
                assert_eq!(reply["accepted"], 0, "{reply}");
                // giant-output rejects the first metric with a 4 MB reason, cut short.
                assert_eq!(reply["errors"][0]["code"], "plugin_rejected", "{reply}");
                assert!(reply["errors"][0]["message"].as_str().unwrap().len() < 2048);
                // The enricher tried `_tenant_id`: refused, and its binding is fail-closed.
                assert_eq!(reply["errors"][1]["code"], "plugin_failed", "{reply}");
                assert!(
                    reply["errors"][1]["message"]
                        .as_str()
                        .unwrap()
                        .contains("reserved dimension"),
                    "{reply}"
                );
            }
        })
    };
    for i in 0..30 {
        let reply = good
            .write(json!([
                point("ok", i as f64, json!({"service": "api"})),
                point("bad", 1.0, json!({}))
            ]))
            .await
            .ok();
        assert_eq!(reply["accepted"], 1, "request {i}: {reply}");
        assert_eq!(reply["errors"][0]["index"], 1);
    }
    hostile.await.unwrap();

    // The probe saw nothing of the host.
    let body = evil
        .post_json(
            "/api/v1/plugins/probe/test",
            &json!({"metrics": [{"name": "m", "value": 1.0}]}),
        )
        .await
        .ok();
    let report: Value =
        serde_json::from_str(body["result"]["verdicts"][0]["reason"].as_str().unwrap()).unwrap();
    assert_eq!(report["escaped"], json!([]), "{report:#}");
    // No plugin could move a metric into another tenant or set `_` keys.
    let good_metrics = good.get("/api/v1/metrics").await.ok();
    assert_eq!(good_metrics["metrics"], json!(["ok"]));
    let evil_plugins = evil.get("/api/v1/plugins").await.ok();
    for name in ["spin", "bomb", "panicky", "sneaky"] {
        assert!(
            listed(&evil_plugins, name)["errors"].as_u64().unwrap() > 0,
            "{name}: {evil_plugins:#}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn operator_default_chain_applies_until_a_tenant_sets_its_own() {
    let plugins_dir = tempfile::tempdir().unwrap();
    std::fs::write(
        plugins_dir.path().join("house-rules.wasm"),
        wasm(NAME_POLICY),
    )
    .unwrap();
    let server = TestServer::start_with(|c| {
        c.plugins.dir = Some(plugins_dir.path().to_path_buf());
        c.plugins.defaults =
            serde_json::from_value(json!({"validators": [{"plugin": "house-rules",
            "params": {"requiredDimensions": ["team"]}, "onFailure": "fail-closed"}]}))
            .unwrap();
    })
    .await;
    let reply = server.write(json!([point("a", 1.0, json!({}))])).await.ok();
    assert_eq!(reply["errors"][0]["code"], "plugin_rejected", "{reply}");
    assert_eq!(
        server.get("/api/v1/bindings").await.ok()["validators"][0]["plugin"],
        "house-rules"
    );
    let row = listed(&server.get("/api/v1/plugins").await.ok(), "house-rules");
    assert_eq!(
        (row["scope"].as_str(), row["bindings"].clone()),
        (Some("global"), json!(["*"]))
    );
    put_bindings(&server, json!({"validators": []})).await.ok();
    let reply = server.write(json!([point("a", 1.0, json!({}))])).await.ok();
    assert_eq!(reply["accepted"], 1, "{reply}");
    server.stop().await;
}

#[tokio::test]
async fn bindings_whose_params_the_plugin_rejects_are_refused_with_its_message() {
    let server = TestServer::start().await;
    upload(&server, "policy", NAME_POLICY, &[]).await.ok();
    let reply = put_bindings(
        &server,
        json!({"validators": [{"plugin": "policy",
            "params": {"requiredDimensions": ["team"], "forbiddenDimensions": ["team"]},
            "onFailure": "fail-closed"}]}),
    )
    .await;
    reply.assert_error(422, "invalid_plugin_params");
    let message = reply.body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("\"policy\"") && message.contains("both required and forbidden"),
        "{message}"
    );
    assert_eq!(
        server.get("/api/v1/bindings").await.ok()["validators"],
        json!([]),
        "nothing was bound"
    );
    let reply = server.write(json!([point("a", 1.0, json!({}))])).await.ok();
    assert_eq!(reply["accepted"], 1, "{reply}");
    server.stop().await;
}

#[tokio::test]
async fn probes_report_plugins_once_they_are_compiled() {
    let server = TestServer::start().await;
    let startup = server.get("/startupz").await.ok();
    assert_eq!(startup, json!({"status": "ok"}), "no plugin is loading");
    assert_eq!(server.get("/readyz").await.ok()["status"], "ok");
    server.stop().await;
}

#[tokio::test]
async fn bodies_past_a_plugin_routes_limit_answer_in_the_json_error_shape() {
    let server = TestServer::start().await;
    let admin = client_as(&server, "acme", "read,write,admin");
    // Past the upload route's ceiling the body is cut off before the runtime
    // sees it; the answer is still the upload's own error.
    let ceiling = luminate_host::plugins::runtime::MAX_PLUGIN_BYTES;
    let oversized = admin
        .send(
            admin
                .http
                .put(admin.url("/api/v1/plugins/huge"))
                .body(vec![0u8; ceiling + 1]),
        )
        .await;
    oversized.assert_error(413, "plugin_too_large");
    // Bindings and dry runs share the API's body limit.
    let max_body = luminate_host::config::Config::default().api.max_body_bytes;
    let padded = format!("{{\"validators\":[],\"pad\":\"{}\"}}", " ".repeat(max_body));
    let bindings = admin
        .send(
            admin
                .http
                .put(admin.url("/api/v1/bindings"))
                .body(padded.clone()),
        )
        .await;
    bindings.assert_error(413, "body_too_large");
    let dry_run = admin
        .send(
            admin
                .http
                .post(admin.url("/api/v1/plugins/huge/test"))
                .body(padded),
        )
        .await;
    dry_run.assert_error(413, "body_too_large");
    server.stop().await;
}
