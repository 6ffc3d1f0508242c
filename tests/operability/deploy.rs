//! deploy/ is checked here because no container engine or cluster runs on
//! the build machines: Kubernetes manifests against the API schemas
//! (`kubernetes-validate`, installed by scripts/test), the ConfigMap's
//! config through the server's own loader, every `LUMINATE_*` variable
//! against the real settings, and every Grafana query against the metric
//! names the server declares.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn yaml(path: &Path) -> Value {
    let mut parsed: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&read(path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    // Compose files share settings through `<<: *anchor` merge keys.
    parsed.apply_merge().unwrap();
    serde_json::to_value(parsed).expect("YAML maps to JSON")
}

fn k8s(name: &str) -> Value {
    yaml(&deploy_dir().join("k8s").join(name))
}

fn manifest_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(deploy_dir().join("k8s"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .filter(|p| p.file_name().is_some_and(|n| n != "kustomization.yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn kubernetes_manifests_validate_against_the_api_schemas() {
    let files = manifest_files();
    assert!(
        files.len() >= 6,
        "expected the k8s manifests, found {files:?}"
    );
    let output = Command::new("kubernetes-validate")
        .arg("--strict")
        .args(&files)
        .output()
        .unwrap_or_else(|e| {
            panic!("kubernetes-validate is not installed ({e}); scripts/test installs it (pip install kubernetes-validate)")
        });
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{report}");
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy();
        assert!(
            report.contains(&format!("{name} passed")),
            "{name} was not validated against a schema:\n{report}"
        );
    }
}

#[test]
fn kustomization_lists_every_manifest() {
    let kustomization = k8s("kustomization.yaml");
    let listed: BTreeSet<String> = kustomization["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_owned())
        .collect();
    let present: BTreeSet<String> = manifest_files()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(listed, present);
}

#[test]
fn deployment_runs_three_probed_non_root_replicas_with_the_planned_resources() {
    let deployment = k8s("deployment.yaml");
    let spec = &deployment["spec"];
    assert_eq!(spec["replicas"], 3);
    let pod = &spec["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(container["startupProbe"]["httpGet"]["path"], "/startupz");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    let resources = &container["resources"];
    assert_eq!(resources["requests"]["cpu"], "1");
    assert_eq!(resources["requests"]["memory"], "2Gi");
    assert_eq!(resources["limits"]["cpu"], "2");
    assert_eq!(resources["limits"]["memory"], "4Gi");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    // The pod selector, Service, PDB and HPA all point at the same pods.
    let labels = &pod.get("metadata").unwrap_or(&spec["template"]["metadata"])["labels"];
    let app = &spec["template"]["metadata"]["labels"]["app.kubernetes.io/name"];
    assert_eq!(app, "luminate", "{labels}");
    assert_eq!(
        k8s("service.yaml")["spec"]["selector"]["app.kubernetes.io/name"],
        *app
    );
    assert_eq!(
        k8s("pdb.yaml")["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"],
        *app
    );
    assert_eq!(
        k8s("hpa.yaml")["spec"]["scaleTargetRef"]["name"],
        deployment["metadata"]["name"]
    );
}

#[test]
fn autoscaler_scales_three_to_ten_on_cpu_and_memory_with_slow_scale_down() {
    let hpa = k8s("hpa.yaml");
    let spec = &hpa["spec"];
    assert_eq!(spec["minReplicas"], 3);
    assert_eq!(spec["maxReplicas"], 10);
    let target = |resource: &str| {
        spec["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["resource"]["name"] == resource)
            .map(|m| m["resource"]["target"]["averageUtilization"].clone())
    };
    assert_eq!(target("cpu"), Some(70.into()));
    assert_eq!(target("memory"), Some(80.into()));
    assert_eq!(
        spec["behavior"]["scaleDown"]["stabilizationWindowSeconds"],
        300
    );
    let pdb = k8s("pdb.yaml");
    assert!(pdb["spec"]["minAvailable"].as_i64().unwrap() < spec["minReplicas"].as_i64().unwrap());
}

fn configmap_config() -> luminate_host::config::Config {
    let configmap = k8s("configmap.yaml");
    let toml = configmap["data"]["luminate.toml"].as_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("luminate.toml");
    std::fs::write(&path, toml).unwrap();
    luminate_host::config::load(Some(&path), &Default::default())
        .unwrap_or_else(|e| panic!("ConfigMap luminate.toml is rejected by the server: {e}"))
}

#[test]
fn configmap_config_is_accepted_by_the_server_loader() {
    let config = configmap_config();
    assert_eq!(
        config.storage.backend,
        luminate_host::config::StorageBackend::Clickhouse
    );
    // Bound plugins are example plugins the image ships (plugins/<name>/).
    let bindings = &config.plugins.defaults;
    assert!(
        !bindings.validators.is_empty(),
        "the ConfigMap shows a plugin binding"
    );
    for binding in bindings.validators.iter().chain(&bindings.enrichers) {
        let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("plugins")
            .join(&binding.plugin);
        assert!(
            crate_dir.join("Cargo.toml").is_file(),
            "ConfigMap binds {}, which is not in plugins/",
            binding.plugin
        );
    }
    let mount = &k8s("deployment.yaml")["spec"]["template"]["spec"]["containers"][0];
    let args: Vec<&str> = mount["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(
        args.windows(2)
            .any(|w| w == ["--config", "/etc/luminate/luminate.toml"]),
        "{args:?}"
    );
}

#[test]
fn pods_get_their_whole_shutdown_grace_period_before_sigkill() {
    let config = configmap_config();
    let pod = &k8s("deployment.yaml")["spec"]["template"]["spec"];
    let kubernetes_grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap();
    let server_grace = config.lifecycle.grace_period.get().as_secs();
    assert!(
        kubernetes_grace > server_grace,
        "terminationGracePeriodSeconds {kubernetes_grace} must exceed lifecycle.grace_period {server_grace}s"
    );
    assert!(
        config.lifecycle.drain_delay().as_secs() > 0,
        "pods must leave the Service before closing the listener"
    );
}

/// Every `LUMINATE_*` variable used in deploy/ names a real setting: an alias
/// from `config::env_aliases`, or `LUMINATE_<SECTION>__<FIELD>` of a field
/// that exists.
fn assert_names_a_setting(variable: &str, source: &str) {
    let path = match luminate_host::config::env_aliases()
        .iter()
        .find(|(alias, _)| *alias == variable)
    {
        Some((_, path)) => (*path).to_owned(),
        None => variable
            .strip_prefix("LUMINATE_")
            .unwrap()
            .to_ascii_lowercase()
            .replace("__", "."),
    };
    let defaults = serde_json::to_value(luminate_host::config::Config::default()).unwrap();
    let mut node = &defaults;
    for part in path.split('.') {
        node = node.get(part).unwrap_or_else(|| {
            panic!("{source}: {variable} maps to `{path}`, which is not a setting")
        });
    }
}

fn compose_environment(compose: &Value) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for (name, service) in compose["services"].as_object().unwrap() {
        if let Some(env) = service["environment"].as_object() {
            found.extend(env.keys().map(|k| (name.clone(), k.clone())));
        }
    }
    found
}

#[test]
fn compose_files_wire_luminate_to_clickhouse_with_real_settings() {
    let compose = yaml(&deploy_dir().join("docker-compose.yml"));
    let services = compose["services"].as_object().unwrap();
    for required in ["luminate", "clickhouse", "prometheus", "grafana"] {
        assert!(
            services.contains_key(required),
            "service {required} missing"
        );
    }
    let luminate = &services["luminate"];
    assert_eq!(luminate["build"]["dockerfile"], "deploy/Dockerfile");
    assert_eq!(luminate["environment"]["LUMINATE_STORAGE"], "clickhouse");
    assert!(
        luminate["environment"]["LUMINATE_CLICKHOUSE_URL"]
            .as_str()
            .unwrap()
            .starts_with("http://clickhouse:")
    );
    for service in services.values() {
        for port in service["ports"].as_array().into_iter().flatten() {
            assert!(
                port.as_str().unwrap().starts_with("127.0.0.1:"),
                "{port} is published beyond loopback"
            );
        }
    }
    // Volumes mounted from the repository exist.
    for service in services.values() {
        for volume in service["volumes"].as_array().into_iter().flatten() {
            let source = volume.as_str().unwrap().split(':').next().unwrap();
            if source.starts_with("./") {
                assert!(
                    deploy_dir().join(source).exists(),
                    "{source} does not exist"
                );
            }
        }
    }
    for (service, variable) in compose_environment(&compose) {
        if variable.starts_with("LUMINATE_") {
            assert_names_a_setting(&variable, &format!("docker-compose.yml/{service}"));
        }
    }

    let cluster = yaml(&deploy_dir().join("clickhouse/docker-compose.cluster.yml"));
    let mut pods = 0;
    for (service, variable) in compose_environment(&cluster) {
        if variable.starts_with("LUMINATE_") {
            assert_names_a_setting(&variable, &format!("docker-compose.cluster.yml/{service}"));
        }
        if variable == "LUMINATE_CLICKHOUSE_CLUSTER" {
            pods += 1;
            assert_eq!(
                cluster["services"][&service]["environment"][&variable],
                "luminate"
            );
        }
    }
    assert_eq!(pods, 2, "the cluster example runs two Luminate pods");
    let host_pattern = regex::Regex::new(r"<host>([^<]+)</host>").unwrap();
    for file in ["remote_servers.xml", "remote_servers.single-replica.xml"] {
        let xml = read(&deploy_dir().join("clickhouse").join(file));
        assert!(
            xml.contains("<luminate>"),
            "{file} defines the `luminate` cluster"
        );
        for host in host_pattern.captures_iter(&xml) {
            if file.contains("single") {
                assert!(
                    cluster["services"].get(&host[1]).is_some(),
                    "{file}: {} is not a service",
                    &host[1]
                );
            }
        }
    }
}

#[test]
fn scrapers_use_the_metrics_listener_not_the_api_port() {
    let config = configmap_config();
    let metrics_port = config
        .telemetry
        .metrics_listen
        .address()
        .expect("the ConfigMap serves metrics")
        .port();
    assert_ne!(metrics_port, config.listen.port());
    let template = &k8s("deployment.yaml")["spec"]["template"];
    assert_eq!(
        template["metadata"]["annotations"]["prometheus.io/port"],
        metrics_port.to_string()
    );
    let ports = template["spec"]["containers"][0]["ports"]
        .as_array()
        .unwrap();
    assert!(
        ports
            .iter()
            .any(|p| p["containerPort"] == metrics_port && p["name"] == "metrics"),
        "{ports:?}"
    );
    // The Service (what clients reach) does not expose the metrics port.
    for port in k8s("service.yaml")["spec"]["ports"].as_array().unwrap() {
        assert_eq!(port["targetPort"], "http", "{port}");
    }
    let compose = yaml(&deploy_dir().join("docker-compose.yml"));
    let listen = compose["services"]["luminate"]["environment"]["LUMINATE_METRICS_LISTEN"]
        .as_str()
        .unwrap()
        .to_owned();
    let compose_port = listen.rsplit(':').next().unwrap();
    let prometheus = yaml(&deploy_dir().join("prometheus/prometheus.yml"));
    let targets = &prometheus["scrape_configs"][0]["static_configs"][0]["targets"];
    assert_eq!(targets[0], format!("luminate:{compose_port}"));
    let dockerfile = read(&deploy_dir().join("Dockerfile"));
    assert!(dockerfile.contains(&format!("LUMINATE_METRICS_LISTEN=0.0.0.0:{compose_port}")));
}

#[test]
fn deployment_environment_names_real_settings() {
    let deployment = k8s("deployment.yaml");
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    for variable in container["env"].as_array().unwrap() {
        let name = variable["name"].as_str().unwrap();
        assert_names_a_setting(name, "deployment.yaml");
        if let Some(secret) = variable["valueFrom"]["secretKeyRef"].as_object() {
            let key = secret["key"].as_str().unwrap();
            assert!(
                k8s("secret.yaml")["stringData"].get(key).is_some(),
                "{name} reads secret key {key}, which secret.yaml lacks"
            );
        }
    }
}

#[test]
fn dockerfile_is_multi_stage_small_and_non_root() {
    let dockerfile = read(&deploy_dir().join("Dockerfile"));
    let stages: Vec<&str> = dockerfile
        .lines()
        .filter(|l| l.starts_with("FROM "))
        .collect();
    assert!(stages.len() >= 2, "multi-stage build expected: {stages:?}");
    assert!(
        dockerfile.contains("libclang-dev"),
        "RocksDB's bindgen needs libclang"
    );
    let runtime = stages.last().unwrap();
    assert!(
        runtime.contains("distroless") || runtime.contains("slim"),
        "small runtime base expected: {runtime}"
    );
    let user = dockerfile
        .lines()
        .filter_map(|l| l.strip_prefix("USER "))
        .next_back()
        .expect("USER set in the final stage");
    assert!(
        !user.starts_with("root") && !user.starts_with("0"),
        "runs as {user}"
    );
    assert!(dockerfile.contains("--bin luminate"));
}

/// Metric names referenced by a PromQL expression (histogram series
/// suffixes folded back onto their family).
fn metric_names_in(expr: &str) -> BTreeSet<String> {
    let name = regex::Regex::new(r"\b((?:luminate|process)_[a-z0-9_]+)\b").unwrap();
    name.captures_iter(expr)
        .map(|c| {
            let n = &c[1];
            ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| {
                    n.strip_suffix(suffix)
                        .filter(|base| base.ends_with("_seconds"))
                })
                .unwrap_or(n)
                .to_owned()
        })
        .collect()
}

fn dashboard_expressions(node: &Value, out: &mut Vec<String>) {
    match node {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("expr", Value::String(e)) | ("definition", Value::String(e)) => {
                        out.push(e.clone())
                    }
                    _ => dashboard_expressions(value, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| dashboard_expressions(v, out)),
        _ => {}
    }
}

#[test]
fn grafana_dashboard_queries_only_metrics_the_server_exports() {
    let dashboard: Value = serde_json::from_str(&read(
        &deploy_dir().join("grafana/dashboards/luminate.json"),
    ))
    .unwrap();
    let mut expressions = Vec::new();
    dashboard_expressions(&dashboard, &mut expressions);
    assert!(
        expressions.len() >= 15,
        "dashboard has {} queries",
        expressions.len()
    );
    let declared: BTreeSet<&str> = luminate_host::telemetry::metrics()
        .declared_names()
        .iter()
        .map(String::as_str)
        .collect();
    let mut used = BTreeSet::new();
    for expr in &expressions {
        for name in metric_names_in(expr) {
            assert!(
                declared.contains(name.as_str()),
                "dashboard queries `{name}`, which the server does not export:\n{expr}"
            );
            used.insert(name);
        }
    }
    for required in [
        "luminate_http_requests_total",
        "luminate_http_request_duration_seconds",
        "luminate_storage_writes_total",
        "luminate_storage_query_duration_seconds",
        "luminate_rate_limit_rejected_total",
        "luminate_plugin_calls_total",
        "luminate_plugin_errors_total",
        "luminate_plugin_call_duration_seconds",
        "luminate_cardinality_series_estimate",
        "luminate_batch_writer_queue_depth",
    ] {
        assert!(
            used.contains(required),
            "the dashboard does not chart {required}"
        );
    }
    // Panel ids are unique, or Grafana silently drops panels.
    let ids: Vec<i64> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), ids.len());
}

#[test]
fn alert_rules_query_only_metrics_the_server_exports() {
    let rules = yaml(&deploy_dir().join("prometheus/alerts.yml"));
    let declared = luminate_host::telemetry::metrics().declared_names();
    let mut count = 0;
    for group in rules["groups"].as_array().unwrap() {
        for rule in group["rules"].as_array().unwrap() {
            let expr = rule["expr"].as_str().unwrap();
            for name in metric_names_in(expr) {
                assert!(
                    declared.contains(&name),
                    "alert {} uses unknown metric {name}",
                    rule["alert"]
                );
            }
            count += 1;
        }
    }
    assert!(count >= 5);
}

#[test]
fn metric_name_extraction_folds_histogram_series() {
    let names = metric_names_in(
        "histogram_quantile(0.99, sum by (le) (rate(luminate_http_request_duration_seconds_bucket[5m]))) / luminate_storage_writes_total",
    );
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        [
            "luminate_http_request_duration_seconds",
            "luminate_storage_writes_total"
        ]
    );
}
