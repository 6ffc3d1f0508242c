//! The series cache against real components compiled from source: a
//! series-only plugin is shown no point and is asked about a series until
//! it repeats (an answer is remembered from the series' second sighting),
//! its answers stay with their tenant, binding and version, and a failure
//! touches only the series it was asked about.

include!(concat!(env!("OUT_DIR"), "/plugins.rs"));

#[path = "common/mod.rs"]
mod common;

use std::path::Path;
use std::sync::Arc;

use luminate_host::model::{Dimensions, Metric, TenantId, ValidationLimits};
use luminate_host::plugins::{
    Binding, BindingSet, FailurePolicy, Manifest, PluginRuntime, PluginScope, PluginsConfig,
    StepOutcome,
};
use serde_json::{Value, json};

fn tenant(id: &str) -> TenantId {
    TenantId::new(id).unwrap()
}

fn metric(name: &str, value: f64, dims: &[(&str, &str)]) -> Metric {
    Metric {
        name: name.into(),
        value,
        timestamp_ms: 1_700_000_000_000 + value as i64,
        dimensions: Dimensions::from_pairs(
            dims.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        ),
    }
}

fn runtime(dir: &Path) -> Arc<PluginRuntime> {
    common::plugin_runtime(dir, PluginsConfig::default())
}

/// A runtime over `dir`, tenant `acme`, and the scope of its own plugins.
fn acme_runtime(dir: &Path) -> (Arc<PluginRuntime>, TenantId, PluginScope) {
    let acme = tenant("acme");
    let scope = PluginScope::Tenant(acme.clone());
    (runtime(dir), acme, scope)
}

fn series_only(on: bool) -> Manifest {
    Manifest {
        series_only: Some(on),
        ..Default::default()
    }
}

async fn install(rt: &PluginRuntime, scope: PluginScope, name: &str, path: &str, m: Manifest) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    rt.upload(scope, name, m, bytes)
        .await
        .unwrap_or_else(|e| panic!("installing {name}: {e}"));
}

fn bind(plugin: &str, params: Value, on_failure: FailurePolicy) -> Binding {
    Binding {
        plugin: plugin.into(),
        params,
        on_failure,
    }
}

async fn bind_validator(rt: &PluginRuntime, t: &TenantId, binding: Binding) {
    rt.set_bindings(
        t,
        BindingSet {
            validators: vec![binding],
            enrichers: vec![],
        },
    )
    .await
    .unwrap();
}

async fn bind_enricher(rt: &PluginRuntime, t: &TenantId, binding: Binding) {
    rt.set_bindings(
        t,
        BindingSet {
            validators: vec![],
            enrichers: vec![binding],
        },
    )
    .await
    .unwrap();
}

/// `echo` installed for `t` with `manifest`, bound as its fail-closed
/// validator with tag `v1`.
async fn bind_echo(rt: &PluginRuntime, t: &TenantId, manifest: Manifest) {
    let scope = PluginScope::Tenant(t.clone());
    install(rt, scope, "echo", ECHO_VALIDATOR, manifest).await;
    bind_validator(
        rt,
        t,
        bind("echo", json!({"tag": "v1"}), FailurePolicy::FailClosed),
    )
    .await;
}

/// The reasons `echo` gave, per metric (`None`: accepted).
async fn echoed(rt: &PluginRuntime, t: &TenantId, metrics: &[Metric]) -> Vec<Option<String>> {
    let chain = rt.chain(t);
    match rt.run_validator(t, &chain.validators[0], metrics).await {
        StepOutcome::AcceptAll => vec![None; metrics.len()],
        StepOutcome::PerMetric(verdicts) => verdicts
            .into_iter()
            .map(|v| v.map(|(code, message)| format!("{code}: {message}")))
            .collect(),
        other => panic!("{other:?}"),
    }
}

fn calls(rt: &PluginRuntime, t: &TenantId, name: &str) -> u64 {
    rt.list(Some(t))
        .into_iter()
        .find(|s| s.name == name)
        .expect("listed")
        .health
        .calls
}

/// Every tenant's calls, as the operator's listing counts them.
fn all_calls(rt: &PluginRuntime, name: &str) -> u64 {
    rt.list(None)
        .into_iter()
        .find(|s| s.name == name)
        .expect("listed")
        .health
        .calls
}

fn rejected(reason: &str) -> Option<String> {
    Some(format!("plugin_rejected: echo: {reason}"))
}

#[tokio::test]
async fn a_series_only_plugin_is_asked_until_a_series_repeats_and_shown_no_point() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let acme = tenant("acme");
    bind_echo(&rt, &acme, series_only(true)).await;

    let a = |value| metric("m", value, &[("host", "a")]);
    let b = |value| metric("m", value, &[("host", "b")]);
    let first = echoed(&rt, &acme, &[a(1.0), a(2.0), b(3.0)]).await;
    assert_eq!(
        first,
        vec![
            rejected("m{host=a} NaN@0 v1"),
            rejected("m{host=a} NaN@0 v1"),
            rejected("m{host=b} NaN@0 v1"),
        ]
    );
    assert_eq!(calls(&rt, &acme, "echo"), 1, "one call for the batch");

    // Seen a second time: asked once more, and remembered.
    let again = echoed(&rt, &acme, &[b(4.0), a(5.0)]).await;
    assert_eq!(again, vec![first[2].clone(), first[0].clone()]);
    assert_eq!(calls(&rt, &acme, "echo"), 2);

    // Known series cost no call and get the same answers.
    let known = echoed(&rt, &acme, &[a(6.0), a(7.0), b(8.0)]).await;
    assert_eq!(known, first);
    assert_eq!(calls(&rt, &acme, "echo"), 2);

    // Only the new series is asked about.
    let mixed = echoed(&rt, &acme, &[a(9.0), metric("m", 10.0, &[("host", "c")])]).await;
    assert_eq!(mixed[0], first[0]);
    assert_eq!(mixed[1], rejected("m{host=c} NaN@0 v1"));
    assert_eq!(calls(&rt, &acme, "echo"), 3);
}

#[tokio::test]
async fn a_plugin_without_the_promise_sees_every_point_every_time() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let acme = tenant("acme");
    bind_echo(&rt, &acme, Manifest::default()).await;
    let batch = [metric("m", 1.0, &[("host", "a")])];
    for _ in 0..2 {
        assert_eq!(
            echoed(&rt, &acme, &batch).await,
            vec![rejected("m{host=a} 1@1700000000001 v1")]
        );
    }
    assert_eq!(calls(&rt, &acme, "echo"), 2);
}

#[tokio::test]
async fn a_dry_run_shows_a_series_only_plugin_what_writes_do() {
    use luminate_host::plugins::{DryRunInput, DryRunOutput};

    let dir = tempfile::tempdir().unwrap();
    let (rt, acme, scope) = acme_runtime(dir.path());
    install(&rt, scope, "echo", ECHO_VALIDATOR, series_only(true)).await;
    let plugin = rt.resolve(&acme, "echo").unwrap();
    let report = rt
        .dry_run(
            Some(&acme),
            plugin,
            Arc::from(r#"{"tag":"dry"}"#),
            DryRunInput::Metrics(vec![metric("m", 1.0, &[("host", "a")])]),
        )
        .await;
    let Ok(DryRunOutput::Verdicts(verdicts)) = report.result else {
        panic!("not verdicts")
    };
    assert_eq!(verdicts, vec![Some("m{host=a} NaN@0 dry".to_owned())]);
}

#[tokio::test]
async fn the_sdk_declares_series_only_and_a_manifest_can_say_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let (rt, acme, scope) = acme_runtime(dir.path());
    let declared = |name: &str| {
        rt.list(Some(&acme))
            .into_iter()
            .find(|s| s.name == name)
            .and_then(|s| s.series_only)
    };
    install(
        &rt,
        scope.clone(),
        "policy",
        NAME_POLICY,
        Manifest::default(),
    )
    .await;
    install(
        &rt,
        scope.clone(),
        "lookup",
        LOOKUP_ENRICHER,
        Manifest::default(),
    )
    .await;
    install(
        &rt,
        scope.clone(),
        "echo",
        ECHO_VALIDATOR,
        Manifest::default(),
    )
    .await;
    install(&rt, scope.clone(), "apdex", APDEX, series_only(true)).await;
    assert_eq!(declared("policy"), Some(true), "SERIES_ONLY = true");
    assert_eq!(declared("lookup"), Some(true), "SERIES_ONLY = true");
    assert_eq!(declared("echo"), Some(false), "the trait's default");
    assert_eq!(declared("apdex"), Some(false), "aggregators get points");
    install(&rt, scope, "policy", NAME_POLICY, series_only(false)).await;
    assert_eq!(declared("policy"), Some(false));
}

#[tokio::test]
async fn answers_are_never_shared_across_tenants() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let (acme, other) = (tenant("acme"), tenant("other"));
    // One global plugin, bound by both tenants with the same params: the
    // one case where sharing answers could even be considered.
    install(
        &rt,
        PluginScope::Global,
        "echo",
        ECHO_VALIDATOR,
        series_only(true),
    )
    .await;
    let binding = bind("echo", json!({"tag": "v1"}), FailurePolicy::FailClosed);
    bind_validator(&rt, &acme, binding.clone()).await;
    bind_validator(&rt, &other, binding).await;
    let batch = [metric("m", 1.0, &[("host", "a")])];
    for _ in 0..3 {
        echoed(&rt, &acme, &batch).await;
    }
    assert_eq!(calls(&rt, &acme, "echo"), 2, "remembered for acme");
    echoed(&rt, &other, &batch).await;
    assert_eq!(all_calls(&rt, "echo"), 3, "other's first batch asks");
    for _ in 0..3 {
        echoed(&rt, &other, &batch).await;
        echoed(&rt, &acme, &batch).await;
    }
    assert_eq!(all_calls(&rt, "echo"), 4, "other's second, then none");
    // Each tenant's listing counts its own calls only.
    assert_eq!(calls(&rt, &acme, "echo"), 2);
    assert_eq!(calls(&rt, &other, "echo"), 2);
}

#[tokio::test]
async fn new_params_or_a_new_version_start_afresh() {
    let dir = tempfile::tempdir().unwrap();
    let (rt, acme, scope) = acme_runtime(dir.path());
    install(
        &rt,
        scope.clone(),
        "echo",
        ECHO_VALIDATOR,
        series_only(true),
    )
    .await;
    let tagged = |tag: &str| bind("echo", json!({"tag": tag}), FailurePolicy::FailClosed);
    bind_validator(&rt, &acme, tagged("v1")).await;
    let batch = [metric("m", 1.0, &[("host", "a")])];
    for _ in 0..3 {
        assert_eq!(
            echoed(&rt, &acme, &batch).await,
            vec![rejected("m{host=a} NaN@0 v1")]
        );
    }
    assert_eq!(calls(&rt, &acme, "echo"), 2, "v1's answer is remembered");
    bind_validator(&rt, &acme, tagged("v2")).await;
    assert_eq!(
        echoed(&rt, &acme, &batch).await,
        vec![rejected("m{host=a} NaN@0 v2")]
    );
    assert_eq!(calls(&rt, &acme, "echo"), 3);
    echoed(&rt, &acme, &batch).await;

    // Same bytes, new version: its health (and call count) start at zero,
    // and it is asked again rather than trusted with the old one's answers.
    let v2 = Manifest {
        version: Some("2".into()),
        series_only: Some(true),
        ..Default::default()
    };
    install(&rt, scope, "echo", ECHO_VALIDATOR, v2).await;
    echoed(&rt, &acme, &batch).await;
    assert_eq!(calls(&rt, &acme, "echo"), 1);
}

#[tokio::test]
async fn a_failed_call_touches_only_the_series_it_was_asked_about() {
    let dir = tempfile::tempdir().unwrap();
    let (rt, acme, scope) = acme_runtime(dir.path());
    // Its own name: the counters below are the process's.
    let name = "echo-fails";
    install(&rt, scope, name, ECHO_VALIDATOR, series_only(true)).await;
    let params = json!({"tag": "v1", "failOn": "boom"});
    let known = metric("m", 1.0, &[("host", "a")]);
    let boom = metric("m", 2.0, &[("host", "boom")]);
    let remembered = Some(format!("plugin_rejected: {name}: m{{host=a}} NaN@0 v1"));

    bind_validator(
        &rt,
        &acme,
        bind(name, params.clone(), FailurePolicy::FailClosed),
    )
    .await;
    // Twice: remembered from the second sighting.
    for _ in 0..2 {
        echoed(&rt, &acme, std::slice::from_ref(&known)).await;
    }
    let verdicts = echoed(&rt, &acme, &[known.clone(), boom.clone()]).await;
    assert_eq!(verdicts[0], remembered, "remembered");
    let failed = verdicts[1].as_deref().unwrap();
    assert!(
        failed.starts_with("plugin_failed:") && failed.contains(&format!("\"{name}\"")),
        "{failed}"
    );
    // Three verdicts, one failure: counted under their own codes.
    assert_eq!(rejected_metrics(name, "plugin_rejected"), 3);
    assert_eq!(rejected_metrics(name, "plugin_failed"), 1);

    // Fail-open accepts what the plugin could not answer, and still
    // applies what it knows.
    bind_validator(&rt, &acme, bind(name, params, FailurePolicy::FailOpen)).await;
    for _ in 0..2 {
        echoed(&rt, &acme, std::slice::from_ref(&known)).await;
    }
    let verdicts = echoed(&rt, &acme, &[known, boom]).await;
    assert_eq!(verdicts, vec![remembered, None]);
    assert_eq!(rejected_metrics(name, "plugin_rejected"), 6);
    assert_eq!(rejected_metrics(name, "plugin_failed"), 1);
}

/// The process's counter `name{plugin, <label>}` now.
fn plugin_counter(name: &str, plugin: &str, label: (&str, &str)) -> u64 {
    let exposition = luminate_host::telemetry::metrics().encode_text();
    exposition
        .lines()
        .find(|line| {
            line.starts_with(&format!("{name}{{"))
                && line.contains(&format!("plugin=\"{plugin}\""))
                && line.contains(&format!("{}=\"{}\"", label.0, label.1))
        })
        .and_then(|line| line.rsplit(' ').next())
        .map_or(0, |value| value.parse().unwrap())
}

/// `luminate_plugin_rejected_metrics_total{plugin, reason}` now.
fn rejected_metrics(plugin: &str, reason: &str) -> u64 {
    plugin_counter(
        "luminate_plugin_rejected_metrics_total",
        plugin,
        ("reason", reason),
    )
}

#[tokio::test]
async fn enrichments_are_remembered_and_an_oversized_one_is_refused_every_time() {
    let dir = tempfile::tempdir().unwrap();
    let (rt, acme, scope) = acme_runtime(dir.path());
    install(
        &rt,
        scope.clone(),
        "lookup",
        LOOKUP_ENRICHER,
        Manifest::default(),
    )
    .await;
    let params = json!({"lookups": [{"key": "service", "table": {
        "checkout": {"team": "payments"}, "search": {"team": "discovery"}}}]});
    bind_enricher(
        &rt,
        &acme,
        bind("lookup", params, FailurePolicy::FailClosed),
    )
    .await;
    let batch = || {
        vec![
            metric("m", 1.0, &[("service", "checkout")]),
            metric("m", 2.0, &[("service", "search")]),
            metric("m", 3.0, &[("service", "checkout")]),
            metric("m", 4.0, &[("service", "other")]),
        ]
    };
    for round in 1..=3 {
        let mut metrics = batch();
        let chain = rt.chain(&acme);
        let outcome = rt
            .run_enricher(&acme, &chain.enrichers[0], &mut metrics)
            .await;
        assert_eq!(outcome, StepOutcome::AcceptAll);
        let teams: Vec<Option<&str>> = metrics.iter().map(|m| m.dimensions.get("team")).collect();
        assert_eq!(
            teams,
            vec![Some("payments"), Some("discovery"), Some("payments"), None],
            "round {round}"
        );
        assert_eq!(metrics[2].value, 3.0, "the point itself is untouched");
        let expected = round.min(2);
        assert_eq!(calls(&rt, &acme, "lookup"), expected, "round {round}");
    }

    // An answer over the dimension limit is refused, not remembered.
    install(&rt, scope, "wide", GIANT_DIMENSIONS, series_only(true)).await;
    bind_enricher(
        &rt,
        &acme,
        bind("wide", json!({"count": 5000}), FailurePolicy::FailOpen),
    )
    .await;
    for round in 1..=3 {
        let mut metrics = vec![metric("a", 1.0, &[]), metric("b", 1.0, &[])];
        let chain = rt.chain(&acme);
        let StepOutcome::PerMetric(verdicts) = rt
            .run_enricher(&acme, &chain.enrichers[0], &mut metrics)
            .await
        else {
            panic!("round {round}")
        };
        assert_eq!(
            verdicts[0].as_ref().map(|v| v.0),
            Some("too_many_dimensions"),
            "round {round}"
        );
        assert!(verdicts[1].is_none() && metrics[0].dimensions.is_empty());
        assert_eq!(calls(&rt, &acme, "wide"), round, "`a` is never remembered");
    }
}

#[tokio::test]
async fn with_the_cache_off_every_metric_goes_to_the_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let rt = common::plugin_runtime(
        dir.path(),
        PluginsConfig {
            series_cache_bytes: 0,
            ..PluginsConfig::default()
        },
    );
    let acme = tenant("acme");
    bind_echo(&rt, &acme, series_only(true)).await;
    let batch = [metric("m", 1.0, &[("host", "a")])];
    for _ in 0..2 {
        assert_eq!(
            echoed(&rt, &acme, &batch).await,
            vec![rejected("m{host=a} NaN@0 v1")],
            "a series-only plugin is shown no point, cache or not"
        );
    }
    assert_eq!(calls(&rt, &acme, "echo"), 2);
}

/// `luminate_plugin_series_cache_total{plugin, result}` now.
fn cache_uses(plugin: &str, result: &str) -> u64 {
    plugin_counter(
        "luminate_plugin_series_cache_total",
        plugin,
        ("result", result),
    )
}

/// The write pipeline with `rt`'s plugin stage, over RocksDB in `dir`.
fn write_pipeline(
    rt: &Arc<PluginRuntime>,
    dir: &Path,
) -> (
    luminate_host::pipeline::WritePipeline,
    Arc<luminate_host::storage::rocks::RocksStore>,
) {
    use luminate_host::storage::rocks::{RocksOptions, RocksStore};
    let store = Arc::new(RocksStore::open(dir.join("data"), RocksOptions::default()).unwrap());
    let pipeline = luminate_host::pipeline::WritePipeline::new(
        luminate_host::model::Validator::new(ValidationLimits::default()),
        store.clone(),
        1_000,
    )
    .with_stage(Arc::new(
        luminate_host::plugins::stage::PluginWriteStage::new(rt.clone()),
    ));
    (pipeline, store)
}

/// Points of `metric` stored for `tenant`, counted by `group_by`.
async fn counts_by(
    store: &luminate_host::storage::rocks::RocksStore,
    tenant: &TenantId,
    metric: &str,
    group_by: &[&str],
) -> Vec<(Vec<Option<String>>, f64)> {
    use luminate_host::model::{AggregateQuery, Aggregation, Selector, TimeRange};
    use luminate_host::storage::MetricsStore;
    let query = AggregateQuery {
        selector: Selector {
            metric: metric.into(),
            range: TimeRange {
                start_ms: 1_600_000_000_000,
                end_ms: 1_800_000_000_000,
            },
            filters: vec![],
            budget: luminate_host::model::QueryBudget::UNLIMITED,
        },
        aggregation: Aggregation::Count,
        group_by: group_by.iter().map(|key| key.to_string()).collect(),
        limit: None,
    };
    store
        .query_aggregate(tenant, &query)
        .await
        .unwrap()
        .rows
        .into_iter()
        .map(|row| (row.group, row.value))
        .collect()
}

/// `policy` (service required) and `lookup` (service → team), both
/// series-only, as `t`'s chain.
async fn bind_policy_and_lookup(rt: &PluginRuntime, t: &TenantId, policy: &str, lookup: &str) {
    rt.set_bindings(
        t,
        BindingSet {
            validators: vec![bind(
                policy,
                json!({"requiredDimensions": ["service"]}),
                FailurePolicy::FailClosed,
            )],
            enrichers: vec![bind(
                lookup,
                json!({"lookups": [{"key": "service", "table": {
                    "checkout": {"team": "payments"}, "search": {"team": "discovery"}}}]}),
                FailurePolicy::FailClosed,
            )],
        },
    )
    .await
    .unwrap();
}

/// Tenant `acme` with `policy` and `lookup` (installed with
/// `lookup_manifest`) bound as its chain (`bind_policy_and_lookup`), and the
/// write pipeline over it.
async fn policy_and_lookup_chain(
    dir: &Path,
    policy: &str,
    lookup: &str,
    lookup_manifest: Manifest,
) -> (
    Arc<PluginRuntime>,
    TenantId,
    luminate_host::pipeline::WritePipeline,
    Arc<luminate_host::storage::rocks::RocksStore>,
) {
    let (rt, acme, scope) = acme_runtime(dir);
    install(&rt, scope.clone(), policy, NAME_POLICY, Manifest::default()).await;
    install(&rt, scope, lookup, LOOKUP_ENRICHER, lookup_manifest).await;
    bind_policy_and_lookup(&rt, &acme, policy, lookup).await;
    let (pipeline, store) = write_pipeline(&rt, dir);
    (rt, acme, pipeline, store)
}

#[tokio::test]
async fn a_chain_of_series_only_plugins_is_remembered_as_one_answer_per_series() {
    let dir = tempfile::tempdir().unwrap();
    // Their own names: the counters are the process's.
    let (policy, lookup) = ("chain-policy", "chain-lookup");
    let (rt, acme, pipeline, store) =
        policy_and_lookup_chain(dir.path(), policy, lookup, Manifest::default()).await;
    let now = 1_700_000_100_000;
    let write = |round: usize| {
        let at = 10.0 * round as f64;
        // Two metrics of one series in a batch share its answer, whether
        // remembered or asked about.
        let items = vec![
            Ok(metric("a_total", at + 1.0, &[("service", "checkout")])),
            Ok(metric("b_total", at + 1.0, &[])),
            Ok(metric("a_total", at + 2.0, &[("service", "checkout")])),
            Ok(metric("b_total", at + 2.0, &[])),
            Ok(metric("c_total", at + 1.0, &[("service", "search")])),
        ];
        pipeline.write(&acme, items, now)
    };
    for round in 1..=4 {
        let outcome = write(round).await.unwrap();
        assert_eq!(outcome.accepted, 3, "round {round}: {outcome:?}");
        let rejected: Vec<(usize, &str)> =
            outcome.rejected.iter().map(|r| (r.index, r.code)).collect();
        assert_eq!(rejected, [(1, "plugin_rejected"), (3, "plugin_rejected")]);
        assert!(
            outcome.rejected[1].message.starts_with("chain-policy: "),
            "round {round}: the remembered reason is the plugin's: {:?}",
            outcome.rejected[1].message
        );
        // Asked about one metric per series, until a series repeats.
        let asked = round.min(2) as u64;
        assert_eq!(calls(&rt, &acme, policy), asked, "round {round}");
        assert_eq!(calls(&rt, &acme, lookup), asked, "round {round}");
    }
    // Every metric counts: rejections, and hits and misses for each plugin.
    assert_eq!(rejected_metrics(policy, "plugin_rejected"), 8);
    for plugin in [policy, lookup] {
        assert_eq!(cache_uses(plugin, "miss"), 10, "{plugin}");
        assert_eq!(cache_uses(plugin, "hit"), 10, "{plugin}");
    }
    // Every point stored with its team, remembered or asked about.
    for (name, team, points) in [("a_total", "payments", 8.0), ("c_total", "discovery", 4.0)] {
        let rows = counts_by(&store, &acme, name, &["team"]).await;
        assert_eq!(rows, vec![(vec![Some(team.to_owned())], points)], "{name}");
    }

    // New bindings (the same params) are a new chain: asked again.
    bind_policy_and_lookup(&rt, &acme, policy, lookup).await;
    write(5).await.unwrap();
    assert_eq!(calls(&rt, &acme, policy), 3);
    assert_eq!(calls(&rt, &acme, lookup), 3);
    // So is a new version of one of its plugins (its calls count afresh).
    let scope = PluginScope::Tenant(acme.clone());
    install(&rt, scope, policy, NAME_POLICY, Manifest::default()).await;
    write(6).await.unwrap();
    assert_eq!(calls(&rt, &acme, policy), 1);
    assert_eq!(calls(&rt, &acme, lookup), 4);
}

/// Tenant `acme`'s chain: the echo validator as `echo` (series-only, its
/// batch failing when a metric has the value `boom`, with `on_failure`),
/// then `lookup` adding `team` to host `a`; and the write pipeline over it.
async fn echo_failing_on_boom_then_lookup(
    dir: &Path,
    echo: &str,
    on_failure: FailurePolicy,
) -> (
    Arc<PluginRuntime>,
    TenantId,
    luminate_host::pipeline::WritePipeline,
) {
    let rt = runtime(dir);
    let acme = tenant("acme");
    let scope = PluginScope::Tenant(acme.clone());
    install(&rt, scope.clone(), echo, ECHO_VALIDATOR, series_only(true)).await;
    install(&rt, scope, "lookup", LOOKUP_ENRICHER, Manifest::default()).await;
    rt.set_bindings(
        &acme,
        BindingSet {
            validators: vec![bind(
                echo,
                json!({"tag": "v1", "failOn": "boom"}),
                on_failure,
            )],
            enrichers: vec![bind(
                "lookup",
                json!({"lookups": [{"key": "host", "table": {"a": {"team": "payments"}}}]}),
                FailurePolicy::FailClosed,
            )],
        },
    )
    .await
    .unwrap();
    let (pipeline, _store) = write_pipeline(&rt, dir);
    (rt, acme, pipeline)
}

#[tokio::test]
async fn a_chain_outcome_is_not_remembered_when_a_step_failed() {
    let dir = tempfile::tempdir().unwrap();
    let echo = "chain-echo";
    let (rt, acme, pipeline) =
        echo_failing_on_boom_then_lookup(dir.path(), echo, FailurePolicy::FailOpen).await;
    let now = 1_700_000_100_000;
    // The validator fails on `boom`; fail-open accepts both metrics
    // unvalidated, which is no answer to remember.
    for round in 1..=3 {
        let items = vec![
            Ok(metric("m", round as f64, &[("host", "a")])),
            Ok(metric("m", round as f64, &[("host", "boom")])),
        ];
        let outcome = pipeline.write(&acme, items, now).await.unwrap();
        assert_eq!(outcome.accepted, 2, "round {round}: {outcome:?}");
        assert_eq!(calls(&rt, &acme, echo), round, "round {round}");
    }
    // Without `boom` the answer is remembered: the failed batches counted
    // as sightings, so the first clean one is kept.
    for round in 4..=6 {
        let items = vec![Ok(metric("m", round as f64, &[("host", "a")]))];
        let outcome = pipeline.write(&acme, items, now).await.unwrap();
        assert_eq!(outcome.rejected.len(), 1, "round {round}: {outcome:?}");
        assert_eq!(
            outcome.rejected[0].message, "chain-echo: m{host=a} NaN@0 v1",
            "round {round}"
        );
        assert_eq!(calls(&rt, &acme, echo), 4, "round {round}");
    }
}

#[tokio::test]
async fn a_chain_with_a_plugin_that_reads_points_remembers_per_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let (rt, acme, pipeline, _store) =
        policy_and_lookup_chain(dir.path(), "policy", "lookup", series_only(false)).await;
    for round in 1..=3 {
        let items = vec![Ok(metric(
            "a_total",
            round as f64,
            &[("service", "checkout")],
        ))];
        let outcome = pipeline
            .write(&acme, items, 1_700_000_100_000)
            .await
            .unwrap();
        assert_eq!(outcome.accepted, 1);
        assert_eq!(calls(&rt, &acme, "policy"), round.min(2), "round {round}");
        assert_eq!(calls(&rt, &acme, "lookup"), round, "round {round}");
    }
}

#[tokio::test]
async fn a_failing_chain_fails_closed_only_for_the_series_it_was_asked_about() {
    let dir = tempfile::tempdir().unwrap();
    let echo = "chain-echo-closed";
    let (rt, acme, pipeline) =
        echo_failing_on_boom_then_lookup(dir.path(), echo, FailurePolicy::FailClosed).await;
    let now = 1_700_000_100_000;
    for round in 1..=2 {
        let items = vec![Ok(metric("m", round as f64, &[("host", "a")]))];
        pipeline.write(&acme, items, now).await.unwrap();
    }
    for round in 3..=4 {
        let items = vec![
            Ok(metric("m", round as f64, &[("host", "a")])),
            Ok(metric("m", round as f64, &[("host", "boom")])),
            Ok(metric("m", round as f64 + 0.5, &[("host", "boom")])),
        ];
        let outcome = pipeline.write(&acme, items, now).await.unwrap();
        let codes: Vec<(usize, &str)> =
            outcome.rejected.iter().map(|r| (r.index, r.code)).collect();
        assert_eq!(
            codes,
            [
                (0, "plugin_rejected"),
                (1, "plugin_failed"),
                (2, "plugin_failed")
            ],
            "round {round}: the remembered series keeps its answer"
        );
        // Asked about `boom` once per batch, and it is never remembered.
        assert_eq!(calls(&rt, &acme, echo), round, "round {round}");
    }
}

#[tokio::test]
async fn every_metric_of_a_batch_longer_than_the_look_ahead_gets_its_own_series_answer() {
    let dir = tempfile::tempdir().unwrap();
    let (policy, lookup) = ("long-batch-policy", "long-batch-lookup");
    let (rt, acme, pipeline, store) =
        policy_and_lookup_chain(dir.path(), policy, lookup, Manifest::default()).await;
    // 37 series, each with its own host; every fourth lacks the service
    // the policy requires, and every fourth has one the table lacks.
    let service = |i: usize| match i % 4 {
        0 => Some("checkout"),
        1 => Some("search"),
        2 => None,
        _ => Some("billing"),
    };
    let hosts: Vec<String> = (0..37).map(|i| format!("h{i:02}")).collect();
    let now = 1_700_000_100_000;
    // Asked about, asked again and admitted, then answered from memory.
    for round in 1..=3 {
        let items = hosts
            .iter()
            .enumerate()
            .map(|(i, host)| {
                let mut dims = vec![("host", host.as_str())];
                dims.extend(service(i).map(|s| ("service", s)));
                Ok(metric("r_total", round as f64, &dims))
            })
            .collect();
        let outcome = pipeline.write(&acme, items, now).await.unwrap();
        let rejected: Vec<usize> = outcome.rejected.iter().map(|r| r.index).collect();
        let expected: Vec<usize> = (0..37).filter(|i| service(*i).is_none()).collect();
        assert_eq!(rejected, expected, "round {round}");
    }
    assert_eq!(
        calls(&rt, &acme, policy),
        2,
        "the third round came from memory"
    );

    let mut rows = counts_by(&store, &acme, "r_total", &["host", "team"]).await;
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    let expected: Vec<(Vec<Option<String>>, f64)> = hosts
        .iter()
        .enumerate()
        .filter_map(|(i, host)| {
            let team = match service(i)? {
                "checkout" => Some("payments".to_owned()),
                "search" => Some("discovery".to_owned()),
                _ => None,
            };
            Some((vec![Some(host.clone()), team], 3.0))
        })
        .collect();
    assert_eq!(rows, expected);
}
