//! Plugin attacks: a tenant feeds a global plugin bad params or hostile
//! data, runs a memory bomb of its own, or uploads oversized or too many
//! plugins, while the quiet tenant writes through the same global plugin.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{Api, Reply, listed, now_ms};
use crate::plugins::{INFINITE_LOOP, MEMORY_BOMB, NOOP_VALIDATOR};
use crate::support::Hostile;

fn wasm(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A server whose operator installed `spin` (the infinite-loop fixture)
/// as a global plugin and bound it fail-closed for the quiet tenant with
/// params that make it finish; the attacker may bind it too.
async fn with_global_spin(dir: &tempfile::TempDir) -> Hostile {
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::write(plugins.join("spin.wasm"), wasm(INFINITE_LOOP)).unwrap();
    let config = dir.path().join("luminate.toml");
    std::fs::write(
        &config,
        format!(
            r#"
            [plugins]
            dir = "{}"
            quarantine_after = 3

            [[plugins.tenants.quiet.validators]]
            plugin = "spin"
            params = {{ spins = 1000 }}
            onFailure = "fail-closed"
            "#,
            plugins.display()
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap().to_owned();
    Hostile::spawn(&["--config", &config]).await
}

async fn put_bindings(api: &Api, body: Value) -> Reply {
    api.send(api.http.put(api.url("/api/v1/bindings")).json(&body))
        .await
}

async fn upload(api: &Api, name: &str, body: Vec<u8>, headers: &[(&str, &str)]) -> Reply {
    let mut request = api
        .http
        .put(api.url(&format!("/api/v1/plugins/{name}")))
        .body(body);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    api.send(request).await
}

fn batch(n: usize) -> Value {
    let ts = now_ms();
    Value::Array(
        (0..n)
            .map(|i| json!({"name": "attack", "value": 1.0, "timestamp": ts - i as i64}))
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attackers_faults_in_a_global_plugin_never_reach_the_quiet_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let mut hostile = with_global_spin(&dir).await;
    let attacker = hostile.attacker();
    let quiet = hostile.start_quiet_load();

    // Bad params are refused when bound, with the plugin's own message.
    let reply = put_bindings(
        &attacker,
        json!({"validators": [{"plugin": "spin", "params": {"spins": "lots"}, "onFailure": "fail-closed"}]}),
    )
    .await;
    reply.assert_error(422, "invalid_plugin_params");
    // Params that make the global plugin loop past its deadline on the
    // attacker's own writes: its binding is quarantined, nobody else's.
    put_bindings(
        &attacker,
        json!({"validators": [{"plugin": "spin", "params": {}, "onFailure": "fail-closed"}]}),
    )
    .await
    .ok();
    for _ in 0..3 {
        let writes = (0..4).map(|_| {
            let attacker = attacker.clone();
            async move { attacker.write(batch(50)).await }
        });
        for reply in futures_join(writes).await {
            let body = reply.ok();
            assert_eq!(body["accepted"], 0, "{body}");
            assert_eq!(body["errors"][0]["code"], "plugin_failed", "{body}");
        }
    }
    let row = listed(&attacker.get("/api/v1/plugins").await.ok(), "spin");
    assert_eq!(row["quarantined"], true, "{row}");

    // Its own memory bomb with the largest memory cap, many at once: held
    // to its share of the plugin memory budget.
    upload(
        &attacker,
        "bomb",
        wasm(MEMORY_BOMB),
        &[
            ("plugin-memory-limit-bytes", "268435456"),
            ("plugin-deadline-ms", "2000"),
        ],
    )
    .await
    .ok();
    put_bindings(
        &attacker,
        json!({"validators": [{"plugin": "bomb", "onFailure": "fail-closed"}]}),
    )
    .await
    .ok();
    let writes = (0..16).map(|_| {
        let attacker = attacker.clone();
        async move { attacker.write(batch(1)).await }
    });
    for reply in futures_join(writes).await {
        let body = reply.ok();
        assert_eq!(body["errors"][0]["code"], "plugin_failed", "{body}");
    }

    let report = quiet.stop().await;
    report.assert_unharmed();
    hostile.assert_alive().await;
    hostile.assert_rss_growth_below(512 << 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attacker_cannot_upload_oversized_or_too_many_plugins() {
    let mut hostile = Hostile::spawn(&[]).await;
    let attacker = hostile.attacker();
    let quiet = hostile.start_quiet_load();
    let noop = wasm(NOOP_VALIDATOR);
    let oversized = [noop.clone(), vec![0; 5 << 20]].concat();
    upload(&attacker, "big", oversized, &[])
        .await
        .assert_error(413, "plugin_too_large");
    for i in 0..16 {
        upload(&attacker, &format!("p{i}"), noop.clone(), &[])
            .await
            .ok();
    }
    let reply = upload(&attacker, "p16", noop.clone(), &[]).await;
    reply.assert_error(409, "too_many_plugins");
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("plugins.max_plugins_per_tenant"),
        "{reply:?}"
    );
    // Let the quiet tenant be measured a little after the last compile.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let report = quiet.stop().await;
    report.assert_unharmed();
    hostile.assert_alive().await;
    hostile.assert_rss_growth_below(512 << 20);
}

/// Runs requests at once (no `futures` dependency in the tests).
async fn futures_join<F>(requests: impl Iterator<Item = F>) -> Vec<Reply>
where
    F: std::future::Future<Output = Reply> + Send + 'static,
{
    let tasks: Vec<_> = requests.map(tokio::spawn).collect();
    let mut replies = Vec::with_capacity(tasks.len());
    for task in tasks {
        replies.push(task.await.unwrap());
    }
    replies
}
