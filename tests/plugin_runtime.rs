//! The plugin runtime against real components compiled from source (the
//! example plugins and the hostile fixtures, built by the root build.rs):
//! containment, failure policies, quarantine, the ABI check, hot reload,
//! durability and version swaps. HTTP-level behaviour is in plugin_api.rs.

include!(concat!(env!("OUT_DIR"), "/plugins.rs"));

#[path = "common/mod.rs"]
mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use luminate_host::model::{Dimensions, Metric, TenantId, ValidationLimits};
use luminate_host::plugins::{
    Binding, BindingSet, CallFailure, FailurePolicy, Manifest, PluginAdminError, PluginRuntime,
    PluginScope, PluginSource, PluginsConfig, StepOutcome,
};
use serde_json::{Value, json};

fn wasm(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn tenant(id: &str) -> TenantId {
    TenantId::new(id).unwrap()
}

fn metric(name: &str, dims: &[(&str, &str)]) -> Metric {
    Metric {
        name: name.into(),
        value: 0.25,
        timestamp_ms: 1_700_000_000_000,
        dimensions: Dimensions::from_pairs(
            dims.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        ),
    }
}

fn runtime(dir: &Path) -> Arc<PluginRuntime> {
    common::plugin_runtime(dir, PluginsConfig::default())
}

/// A deadline for plugins that legitimately do a lot (megabytes of output,
/// dozens of probes), so a loaded machine does not turn them into timeouts.
fn slow_ok() -> Manifest {
    Manifest {
        deadline_ms: Some(2_000),
        ..Default::default()
    }
}

async fn install_slow(rt: &PluginRuntime, owner: &TenantId, name: &str, path: &str) {
    rt.upload(
        PluginScope::Tenant(owner.clone()),
        name,
        slow_ok(),
        wasm(path),
    )
    .await
    .unwrap_or_else(|e| panic!("installing {name}: {e}"));
}

async fn install_for(rt: &PluginRuntime, owner: &TenantId, name: &str, path: &str) {
    rt.upload(
        PluginScope::Tenant(owner.clone()),
        name,
        Manifest::default(),
        wasm(path),
    )
    .await
    .unwrap_or_else(|e| panic!("installing {name}: {e}"));
}

/// Installs `path` for `owner` with a 400 ms deadline, bound as its only
/// fail-open validator: for the tests that let a looping plugin time out.
async fn bind_looping_validator(
    rt: &PluginRuntime,
    owner: &TenantId,
    name: &str,
    manifest: Manifest,
) {
    rt.upload(
        PluginScope::Tenant(owner.clone()),
        name,
        Manifest {
            deadline_ms: Some(400),
            ..manifest
        },
        wasm(INFINITE_LOOP),
    )
    .await
    .unwrap();
    bind_validators(
        rt,
        owner,
        vec![bind(name, json!({}), FailurePolicy::FailOpen)],
    )
    .await;
}

fn bind(plugin: &str, params: Value, on_failure: FailurePolicy) -> Binding {
    Binding {
        plugin: plugin.into(),
        params,
        on_failure,
    }
}

async fn bind_validators(rt: &PluginRuntime, t: &TenantId, validators: Vec<Binding>) {
    rt.set_bindings(
        t,
        BindingSet {
            validators,
            enrichers: vec![],
        },
    )
    .await
    .unwrap();
}

async fn bind_enrichers(rt: &PluginRuntime, t: &TenantId, enrichers: Vec<Binding>) {
    rt.set_bindings(
        t,
        BindingSet {
            validators: vec![],
            enrichers,
        },
    )
    .await
    .unwrap();
}

async fn validate(rt: &PluginRuntime, t: &TenantId, metrics: &[Metric]) -> StepOutcome {
    let chain = rt.chain(t);
    rt.run_validator(t, &chain.validators[0], metrics).await
}

fn summary(
    rt: &PluginRuntime,
    t: &TenantId,
    name: &str,
) -> luminate_host::plugins::runtime::PluginSummary {
    rt.list(Some(t))
        .into_iter()
        .find(|s| s.name == name)
        .expect("listed")
}

#[tokio::test]
async fn example_validator_rejects_against_its_policy_with_the_plugin_named() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let acme = tenant("acme");
    install_for(&rt, &acme, "name-policy", NAME_POLICY).await;
    bind_validators(
        &rt,
        &acme,
        vec![bind(
            "name-policy",
            json!({"requiredDimensions": ["service"]}),
            FailurePolicy::FailClosed,
        )],
    )
    .await;
    let outcome = validate(
        &rt,
        &acme,
        &[metric("ok", &[("service", "api")]), metric("bad", &[])],
    )
    .await;
    let StepOutcome::PerMetric(verdicts) = outcome else {
        panic!("{outcome:?}")
    };
    assert!(verdicts[0].is_none());
    let (code, message) = verdicts[1].as_ref().unwrap();
    assert_eq!(*code, "plugin_rejected");
    assert!(
        message.starts_with("name-policy:") && message.contains("service"),
        "{message}"
    );
}

#[tokio::test]
async fn infinite_loop_is_stopped_by_the_deadline_and_fail_closed_names_the_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let acme = tenant("acme");
    install_for(&rt, &acme, "spin", INFINITE_LOOP).await;
    bind_validators(
        &rt,
        &acme,
        vec![bind("spin", json!({}), FailurePolicy::FailClosed)],
    )
    .await;
    let started = Instant::now();
    let outcome = validate(&rt, &acme, &[metric("m", &[])]).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let StepOutcome::RejectAll { code, message } = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(code, "plugin_failed");
    assert!(
        message.contains("\"spin\"") && message.contains("deadline"),
        "{message}"
    );
    let s = summary(&rt, &acme, "spin");
    assert_eq!((s.health.calls, s.health.failures), (1, 1));
}

/// Calls run on the caller's task; a guest that never returns must still
/// give its thread back at every epoch tick, long enough for the worker to
/// run its timers and I/O. On a runtime with one worker thread, a task that
/// sleeps 1 ms at a time keeps waking on time while the looping call runs:
/// its longest wait is a few ticks, far below the plugin's deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_looping_plugin_yields_its_thread_to_other_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let acme = tenant("acme");
    bind_looping_validator(&rt, &acme, "spin", Manifest::default()).await;
    let call_done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let done = call_done.clone();
    let sleeper = tokio::spawn(async move {
        let mut wakes = 0u32;
        let mut longest_wait = Duration::ZERO;
        while !done.load(std::sync::atomic::Ordering::Relaxed) {
            let asleep = Instant::now();
            tokio::time::sleep(Duration::from_millis(1)).await;
            longest_wait = longest_wait.max(asleep.elapsed());
            wakes += 1;
        }
        (wakes, longest_wait)
    });
    let call = {
        let (rt, acme) = (rt.clone(), acme.clone());
        tokio::spawn(async move {
            let started = Instant::now();
            let outcome = validate(&rt, &acme, &[metric("m", &[])]).await;
            (outcome, started.elapsed())
        })
    };
    let (outcome, took) = tokio::time::timeout(Duration::from_secs(10), call)
        .await
        .expect("the deadline stops the call")
        .unwrap();
    call_done.store(true, std::sync::atomic::Ordering::Relaxed);
    let (wakes, longest_wait) = sleeper.await.unwrap();
    assert_eq!(
        outcome,
        StepOutcome::AcceptAll,
        "fail-open after the timeout"
    );
    let error = summary(&rt, &acme, "spin").health.last_error.unwrap();
    assert!(error.contains("deadline"), "{error}");
    assert!(took >= Duration::from_millis(400), "{took:?}");
    assert!(wakes > 20, "the sleeper woke {wakes} times in {took:?}");
    assert!(
        longest_wait < Duration::from_millis(60),
        "the sleeper waited {longest_wait:?} for a 1 ms sleep"
    );
}

/// A tenant's calls hold at most its share of the pool: with a pool of 4
/// and a share of 2, a tenant whose looping plugin is called 6 times at
/// once leaves 2 slots free, and another tenant's call goes straight
/// through. With a share as large as the pool, the same call waits until
/// the looping calls hit their deadline: the setup really does starve the
/// pool, and the share is what prevents it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_tenants_slow_plugin_cannot_take_the_whole_pool() {
    async fn other_tenants_wait(share: u32) -> Duration {
        let dir = tempfile::tempdir().unwrap();
        let rt = common::plugin_runtime(
            dir.path(),
            PluginsConfig {
                max_concurrent_calls: 4,
                max_concurrent_calls_per_tenant: share,
                ..PluginsConfig::default()
            },
        );
        let (hog, other) = (tenant("hog"), tenant("other"));
        bind_looping_validator(&rt, &hog, "spin", Manifest::default()).await;
        install_for(&rt, &other, "noop", NOOP_VALIDATOR).await;
        bind_validators(
            &rt,
            &other,
            vec![bind("noop", json!({}), FailurePolicy::FailClosed)],
        )
        .await;
        let looping: Vec<_> = (0..6)
            .map(|_| {
                let (rt, hog) = (rt.clone(), hog.clone());
                tokio::spawn(async move { validate(&rt, &hog, &[metric("m", &[])]).await })
            })
            .collect();
        // Let the looping calls take their slots.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let started = Instant::now();
        let outcome = validate(&rt, &other, &[metric("m", &[])]).await;
        let waited = started.elapsed();
        assert_eq!(outcome, StepOutcome::AcceptAll);
        for call in looping {
            call.await.unwrap();
        }
        waited
    }
    let with_share = other_tenants_wait(2).await;
    let without = other_tenants_wait(4).await;
    assert!(
        with_share < Duration::from_millis(150),
        "with a share of 2 the other tenant waited {with_share:?}"
    );
    assert!(
        without > Duration::from_millis(250),
        "with no effective share the other tenant waited only {without:?}: the test does not starve the pool"
    );
}

/// A request that goes away mid-call (its future dropped, as when a client
/// disconnects) stops its plugin call: the guest is unwound, its pool slot
/// and its tenant's share are released at once (the pool here has one
/// slot, so the next call would otherwise wait for the deadline), and the
/// call is counted as `cancelled`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_request_releases_its_slot_and_counts_as_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    let rt = common::plugin_runtime(
        dir.path(),
        PluginsConfig {
            max_concurrent_calls: 1,
            max_concurrent_calls_per_tenant: 1,
            ..PluginsConfig::default()
        },
    );
    let acme = tenant("acme");
    bind_looping_validator(&rt, &acme, "cancelled-spin", Manifest::default()).await;
    let looping = {
        let (rt, acme) = (rt.clone(), acme.clone());
        tokio::spawn(async move { validate(&rt, &acme, &[metric("m", &[])]).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    looping.abort();
    assert!(looping.await.unwrap_err().is_cancelled());

    install_for(&rt, &acme, "after", NOOP_VALIDATOR).await;
    bind_validators(
        &rt,
        &acme,
        vec![bind("after", json!({}), FailurePolicy::FailClosed)],
    )
    .await;
    let started = Instant::now();
    let outcome = validate(&rt, &acme, &[metric("m", &[])]).await;
    assert_eq!(outcome, StepOutcome::AcceptAll);
    assert!(
        started.elapsed() < Duration::from_millis(200),
        "the next call waited {:?} for the only slot",
        started.elapsed()
    );
    let exposition = luminate_host::telemetry::metrics().encode_text();
    assert!(
        exposition
            .lines()
            .any(|line| line.starts_with("luminate_plugin_calls_total")
                && line.contains("outcome=\"cancelled\"")
                && line.contains("plugin=\"cancelled-spin\"")),
        "no cancelled call counted"
    );
    assert!(
        !exposition
            .lines()
            .any(|line| line.starts_with("luminate_plugin_errors_total")
                && line.contains("plugin=\"cancelled-spin\"")),
        "a cancelled call is not the plugin's error"
    );
}

#[tokio::test]
async fn memory_bomb_hits_the_cap_and_fail_open_accepts_and_counts() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let acme = tenant("acme");
    install_for(&rt, &acme, "bomb", MEMORY_BOMB).await;
    bind_validators(
        &rt,
        &acme,
        vec![bind("bomb", json!({}), FailurePolicy::FailOpen)],
    )
    .await;
    assert_eq!(
        validate(&rt, &acme, &[metric("m", &[])]).await,
        StepOutcome::AcceptAll
    );
    let s = summary(&rt, &acme, "bomb");
    assert_eq!(s.health.failures, 1);
    assert!(
        s.health
            .last_error
            .as_deref()
            .unwrap()
            .contains("memory limit"),
        "{:?}",
        s.health.last_error
    );
}

#[tokio::test]
async fn a_panic_traps_only_its_own_call() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let acme = tenant("acme");
    install_for(&rt, &acme, "panicky", PANIC_VALIDATOR).await;
    install_for(&rt, &acme, "noop", NOOP_VALIDATOR).await;
    bind_validators(
        &rt,
        &acme,
        vec![bind("panicky", json!({}), FailurePolicy::FailClosed)],
    )
    .await;
    let outcome = validate(&rt, &acme, &[metric("m", &[])]).await;
    assert!(
        matches!(&outcome, StepOutcome::RejectAll { message, .. } if message.contains("trapped")),
        "{outcome:?}"
    );
    bind_validators(
        &rt,
        &acme,
        vec![bind("noop", json!({}), FailurePolicy::FailClosed)],
    )
    .await;
    assert_eq!(
        validate(&rt, &acme, &[metric("m", &[])]).await,
        StepOutcome::AcceptAll
    );
}

#[tokio::test]
async fn giant_output_is_cut_to_a_bounded_reason() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let acme = tenant("acme");
    install_slow(&rt, &acme, "giant", GIANT_OUTPUT).await;
    // 4 MB fits under the 16 MiB cap, so the host receives it.
    bind_validators(
        &rt,
        &acme,
        vec![bind(
            "giant",
            json!({"bytes": 4_000_000}),
            FailurePolicy::FailClosed,
        )],
    )
    .await;
    let StepOutcome::PerMetric(verdicts) = validate(&rt, &acme, &[metric("m", &[])]).await else {
        panic!()
    };
    let (_, reason) = verdicts[0].as_ref().unwrap();
    assert!(reason.len() <= 1100, "{}", reason.len());
    // 100 MiB does not fit: the allocation fails inside the plugin.
    bind_validators(
        &rt,
        &acme,
        vec![bind("giant", json!({}), FailurePolicy::FailClosed)],
    )
    .await;
    let outcome = validate(&rt, &acme, &[metric("m", &[])]).await;
    assert!(
        matches!(outcome, StepOutcome::RejectAll { .. }),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn sandbox_grants_no_files_sockets_env_or_clock() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let acme = tenant("acme");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    install_slow(&rt, &acme, "probe", SANDBOX_PROBE).await;
    bind_validators(
        &rt,
        &acme,
        vec![bind(
            "probe",
            json!({"port": port}),
            FailurePolicy::FailClosed,
        )],
    )
    .await;
    let outcome = validate(&rt, &acme, &[metric("m", &[])]).await;
    let StepOutcome::PerMetric(verdicts) = outcome else {
        panic!("{outcome:?}")
    };
    let (_, reason) = verdicts[0].as_ref().unwrap();
    let report: Value = serde_json::from_str(reason.trim_start_matches("probe: ")).unwrap();
    assert_eq!(report["escaped"], json!([]), "{report:#}");
    assert_eq!(report["wall_clock_ms"], json!(0), "{report:#}");
    listener.set_nonblocking(true).unwrap();
    assert!(
        listener.accept().is_err(),
        "the plugin reached a loopback socket"
    );
    assert!(!Path::new("/tmp/luminate-sandbox-probe").exists());
}

#[tokio::test]
async fn wrong_number_of_verdicts_is_a_plugin_failure_not_a_misattribution() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let acme = tenant("acme");
    install_for(&rt, &acme, "miscount", WRONG_VERDICT_COUNT).await;
    for params in [json!({}), json!({"fewer": true})] {
        bind_validators(
            &rt,
            &acme,
            vec![bind("miscount", params, FailurePolicy::FailClosed)],
        )
        .await;
        let outcome = validate(&rt, &acme, &[metric("a", &[]), metric("b", &[])]).await;
        assert!(
            matches!(&outcome, StepOutcome::RejectAll { message, .. } if message.contains("results for 2 inputs")),
            "{outcome:?}"
        );
    }
}

#[tokio::test]
async fn enricher_cannot_set_reserved_dimensions() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let acme = tenant("acme");
    install_for(&rt, &acme, "sneaky", RESERVED_KEYS_ENRICHER).await;
    bind_enrichers(
        &rt,
        &acme,
        vec![bind("sneaky", json!({}), FailurePolicy::FailOpen)],
    )
    .await;
    let mut metrics = vec![metric("m", &[("service", "api")])];
    let before = metrics.clone();
    let chain = rt.chain(&acme);
    let outcome = rt
        .run_enricher(&acme, &chain.enrichers[0], &mut metrics)
        .await;
    assert_eq!(
        outcome,
        StepOutcome::AcceptAll,
        "fail-open keeps the metric"
    );
    assert_eq!(metrics, before, "nothing the plugin returned was applied");
    let s = summary(&rt, &acme, "sneaky");
    assert!(s.health.last_error.unwrap().contains("reserved dimension"));

    bind_enrichers(
        &rt,
        &acme,
        vec![bind("sneaky", json!({}), FailurePolicy::FailClosed)],
    )
    .await;
    let chain = rt.chain(&acme);
    let outcome = rt
        .run_enricher(&acme, &chain.enrichers[0], &mut metrics)
        .await;
    assert!(
        matches!(outcome, StepOutcome::RejectAll { .. }),
        "{outcome:?}"
    );
}

/// The host reads an enricher's answer only after checking its layout: a
/// malformed one fails the call (the policy applies) and nothing of it is
/// applied, whatever the fault.
#[tokio::test]
async fn a_malformed_enrichment_fails_the_call_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let acme = tenant("acme");
    install_for(&rt, &acme, "malformed", MALFORMED_ENRICHER).await;
    let batch = || vec![metric("a", &[("service", "api")]), metric("b", &[])];
    let enrich = async |params: Value, policy: FailurePolicy| {
        bind_enrichers(&rt, &acme, vec![bind("malformed", params, policy)]).await;
        let mut metrics = batch();
        let chain = rt.chain(&acme);
        let outcome = rt
            .run_enricher(&acme, &chain.enrichers[0], &mut metrics)
            .await;
        (outcome, metrics)
    };
    let (outcome, metrics) = enrich(json!({}), FailurePolicy::FailClosed).await;
    assert_eq!(outcome, StepOutcome::AcceptAll, "the well-formed answer");
    assert_eq!(metrics[1].dimensions.get("team"), Some("é"));
    for (fault, expected) in [
        ("past-the-text", "outside the text"),
        ("splits-a-character", "splits a character"),
        ("backwards", "goes back"),
        ("too-few", "results for 2 inputs"),
        ("not-in-fours", "four per dimension"),
    ] {
        let (outcome, metrics) = enrich(json!({ "fault": fault }), FailurePolicy::FailOpen).await;
        assert_eq!(outcome, StepOutcome::AcceptAll, "{fault}: fail-open");
        assert_eq!(metrics, batch(), "{fault}: nothing applied");
        let error = summary(&rt, &acme, "malformed").health.last_error.unwrap();
        assert!(error.contains(expected), "{fault}: {error}");
        let (outcome, _) = enrich(json!({ "fault": fault }), FailurePolicy::FailClosed).await;
        let StepOutcome::RejectAll { message, .. } = outcome else {
            panic!("{fault}: {outcome:?}")
        };
        assert!(message.contains("\"malformed\""), "{message}");
    }
}

#[tokio::test]
async fn example_enricher_adds_dimensions_from_its_lookup_table() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let acme = tenant("acme");
    install_for(&rt, &acme, "lookup", LOOKUP_ENRICHER).await;
    let params =
        json!({"lookups": [{"key": "service", "table": {"checkout": {"team": "payments"}}}]});
    bind_enrichers(
        &rt,
        &acme,
        vec![bind("lookup", params, FailurePolicy::FailClosed)],
    )
    .await;
    let mut metrics = vec![
        metric("a", &[("service", "checkout")]),
        metric("b", &[("service", "other")]),
    ];
    let chain = rt.chain(&acme);
    assert_eq!(
        rt.run_enricher(&acme, &chain.enrichers[0], &mut metrics)
            .await,
        StepOutcome::AcceptAll
    );
    assert_eq!(metrics[0].dimensions.get("team"), Some("payments"));
    assert_eq!(metrics[1].dimensions.get("team"), None);
}

#[tokio::test]
async fn giant_dimension_sets_are_refused_per_metric() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let acme = tenant("acme");
    install_for(&rt, &acme, "wide", GIANT_DIMENSIONS).await;
    bind_enrichers(
        &rt,
        &acme,
        vec![bind(
            "wide",
            json!({"count": 5000}),
            FailurePolicy::FailOpen,
        )],
    )
    .await;
    let mut metrics = vec![metric("a", &[]), metric("b", &[])];
    let chain = rt.chain(&acme);
    let StepOutcome::PerMetric(verdicts) = rt
        .run_enricher(&acme, &chain.enrichers[0], &mut metrics)
        .await
    else {
        panic!()
    };
    assert_eq!(verdicts[0].as_ref().unwrap().0, "too_many_dimensions");
    assert!(verdicts[1].is_none());
    assert!(metrics[0].dimensions.is_empty());
}

#[tokio::test]
async fn quarantine_after_consecutive_failures_until_a_new_version() {
    let dir = tempfile::tempdir().unwrap();
    let rt = common::plugin_runtime(
        dir.path(),
        PluginsConfig {
            quarantine_after: 3,
            ..Default::default()
        },
    );
    let acme = tenant("acme");
    install_for(&rt, &acme, "panicky", PANIC_VALIDATOR).await;
    bind_validators(
        &rt,
        &acme,
        vec![bind("panicky", json!({}), FailurePolicy::FailClosed)],
    )
    .await;
    for _ in 0..3 {
        validate(&rt, &acme, &[metric("m", &[])]).await;
    }
    let s = summary(&rt, &acme, "panicky");
    assert!(s.health.quarantined);
    assert_eq!(s.status(), "quarantined");
    let outcome = validate(&rt, &acme, &[metric("m", &[])]).await;
    assert!(
        matches!(&outcome, StepOutcome::RejectAll { message, .. } if message.contains("quarantined")),
        "{outcome:?}"
    );
    assert_eq!(
        summary(&rt, &acme, "panicky").health.calls,
        3,
        "a quarantined plugin is not called"
    );
    install_for(&rt, &acme, "panicky", NOOP_VALIDATOR).await;
    assert_eq!(
        validate(&rt, &acme, &[metric("m", &[])]).await,
        StepOutcome::AcceptAll
    );
}

#[tokio::test]
async fn abi_mismatch_is_refused_clearly_and_the_running_version_stays() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let acme = tenant("acme");
    install_for(&rt, &acme, "policy", NOOP_VALIDATOR).await;
    let before = rt.resolve(&acme, "policy").unwrap().hash.clone();
    let err = rt
        .upload(
            PluginScope::Tenant(acme.clone()),
            "policy",
            Manifest::default(),
            wasm(ABI_V2),
        )
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, PluginAdminError::Load { .. }));
    assert!(
        message.contains("0.2.0") && message.contains("0.1.0"),
        "{message}"
    );
    assert_eq!(rt.resolve(&acme, "policy").unwrap().hash, before);
    let s = summary(&rt, &acme, "policy");
    assert_eq!(s.status(), "active-with-failed-update");
    assert!(s.last_load_failure.unwrap().error.contains("0.2.0"));
    // Refused uploads are not stored: a restart brings back the old one.
    let again = runtime(dir.path());
    again.restore().await.unwrap();
    assert_eq!(again.resolve(&acme, "policy").unwrap().hash, before);
}

#[tokio::test]
async fn a_core_module_or_garbage_is_not_a_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let scope = PluginScope::Global;
    for bytes in [b"\0asm\x01\0\0\0".to_vec(), b"not wasm at all".to_vec()] {
        let err = rt
            .upload(scope.clone(), "x", Manifest::default(), bytes)
            .await
            .unwrap_err();
        assert!(matches!(err, PluginAdminError::Load { .. }), "{err}");
    }
}

#[tokio::test]
async fn uploads_and_chains_survive_a_restart_and_stay_per_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let (acme, other) = (tenant("acme"), tenant("other"));
    {
        let rt = runtime(dir.path());
        install_for(&rt, &acme, "policy", NAME_POLICY).await;
        bind_validators(
            &rt,
            &acme,
            vec![bind(
                "policy",
                json!({"requiredDimensions": ["x"]}),
                FailurePolicy::FailClosed,
            )],
        )
        .await;
    }
    let rt = runtime(dir.path());
    rt.restore().await.unwrap();
    assert!(rt.resolve(&acme, "policy").is_some());
    assert!(
        rt.resolve(&other, "policy").is_none(),
        "a tenant's plugin is its own"
    );
    assert_eq!(rt.chain(&acme).validators[0].plugin, "policy");
    assert!(rt.chain(&other).validators.is_empty());
    assert!(matches!(
        validate(&rt, &acme, &[metric("m", &[])]).await,
        StepOutcome::PerMetric(_)
    ));
}

#[tokio::test]
async fn in_flight_calls_finish_on_the_version_they_started_with() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let acme = tenant("acme");
    let slow = Manifest {
        version: Some("slow".into()),
        ..Default::default()
    };
    bind_looping_validator(&rt, &acme, "v", slow).await;
    let first = rt.resolve(&acme, "v").unwrap();
    let call = {
        let (rt, acme) = (rt.clone(), acme.clone());
        tokio::spawn(async move { validate(&rt, &acme, &[metric("m", &[])]).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let fast = Manifest {
        version: Some("fast".into()),
        ..Default::default()
    };
    rt.upload(
        PluginScope::Tenant(acme.clone()),
        "v",
        fast,
        wasm(NOOP_VALIDATOR),
    )
    .await
    .unwrap();
    assert_eq!(call.await.unwrap(), StepOutcome::AcceptAll);
    // The in-flight call ran (and timed out on) the first version...
    assert_eq!(first.health.snapshot().failures, 1);
    // ...and the next call runs the new one.
    assert_eq!(
        validate(&rt, &acme, &[metric("m", &[])]).await,
        StepOutcome::AcceptAll
    );
    let current = rt.resolve(&acme, "v").unwrap();
    assert_eq!(&*current.version, "fast");
    assert_eq!(current.health.snapshot().calls, 1);
    assert_eq!(current.health.snapshot().failures, 0);
}

#[tokio::test]
async fn other_tenants_keep_succeeding_while_hostile_plugins_run() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let (evil, good) = (tenant("evil"), tenant("good"));
    for (name, path) in [
        ("spin", INFINITE_LOOP),
        ("bomb", MEMORY_BOMB),
        ("panicky", PANIC_VALIDATOR),
    ] {
        install_for(&rt, &evil, name, path).await;
    }
    install_for(&rt, &good, "policy", NAME_POLICY).await;
    bind_validators(
        &rt,
        &good,
        vec![bind(
            "policy",
            json!({"requiredDimensions": ["service"]}),
            FailurePolicy::FailClosed,
        )],
    )
    .await;
    let mut hostile = Vec::new();
    for name in ["spin", "bomb", "panicky", "spin", "bomb", "spin"] {
        let (rt, evil) = (rt.clone(), evil.clone());
        hostile.push(tokio::spawn(async move {
            let binding = luminate_host::plugins::bindings::ResolvedBinding::new(
                name.into(),
                Arc::from("{}"),
                FailurePolicy::FailClosed,
            );
            for _ in 0..3 {
                let outcome = rt.run_validator(&evil, &binding, &[metric("m", &[])]).await;
                assert!(
                    matches!(outcome, StepOutcome::RejectAll { .. }),
                    "{outcome:?}"
                );
            }
        }));
    }
    for i in 0..200 {
        let outcome = validate(
            &rt,
            &good,
            &[metric("m", &[("service", "api")]), metric("n", &[])],
        )
        .await;
        let StepOutcome::PerMetric(verdicts) = outcome else {
            panic!("call {i}: {outcome:?}")
        };
        assert!(verdicts[0].is_none() && verdicts[1].is_some(), "call {i}");
    }
    for task in hostile {
        task.await.unwrap();
    }
    assert_eq!(summary(&rt, &good, "policy").health.failures, 0);
}

#[tokio::test]
async fn one_group_cannot_run_past_the_aggregation_budget_whatever_deadline_the_plugin_asks() {
    let dir = tempfile::tempdir().unwrap();
    let budget = Duration::from_millis(300);
    let rt = common::plugin_runtime(
        dir.path(),
        PluginsConfig {
            aggregation_budget: luminate_host::config::ConfigDuration::from_millis(300),
            ..PluginsConfig::default()
        },
    );
    let acme = tenant("acme");
    // The longest per-call deadline a manifest may ask for.
    rt.upload(
        PluginScope::Tenant(acme.clone()),
        "hostile",
        Manifest {
            deadline_ms: Some(60_000),
            ..Default::default()
        },
        wasm(HOSTILE_AGGREGATOR),
    )
    .await
    .unwrap();
    let started = Instant::now();
    let err = rt
        .aggregate(
            &acme,
            "hostile",
            Arc::from(r#"{"mode":"update-loops"}"#),
            vec![vec![(1, 1.0), (2, 2.0)]],
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err.failure, CallFailure::Timeout(d) if d == budget),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the looping update ran {:?} against a {budget:?} budget",
        started.elapsed()
    );
}

#[tokio::test]
async fn aggregator_streams_each_group_and_hostile_ones_are_contained() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let acme = tenant("acme");
    install_for(&rt, &acme, "apdex", APDEX).await;
    install_for(&rt, &acme, "hostile", HOSTILE_AGGREGATOR).await;
    // T = 0.5: 0.1 satisfied, 1.0 tolerating, 5.0 frustrated.
    let groups = vec![vec![(1, 0.1), (2, 1.0), (3, 5.0), (4, 0.2)], vec![(1, 9.0)]];
    let scores = rt
        .aggregate(
            &acme,
            "apdex",
            Arc::from(r#"{"threshold":0.5}"#),
            groups.clone(),
        )
        .await
        .unwrap();
    assert_eq!(scores, vec![(2.0 + 0.5) / 4.0, 0.0]);
    let many: Vec<(i64, f64)> = (0..50_000).map(|i| (i, 0.1)).collect();
    assert_eq!(
        rt.aggregate(
            &acme,
            "apdex",
            Arc::from(r#"{"threshold":0.5}"#),
            vec![many]
        )
        .await
        .unwrap(),
        vec![1.0]
    );

    let err = rt
        .aggregate(
            &acme,
            "hostile",
            Arc::from(r#"{"mode":"update-loops"}"#),
            groups.clone(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err.failure, CallFailure::Timeout(_)), "{err}");
    let err = rt
        .aggregate(
            &acme,
            "hostile",
            Arc::from(r#"{"mode":"finish-panics"}"#),
            groups.clone(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err.failure, CallFailure::Trap(_)), "{err}");
    // NaN is a plugin's "no value"; the query API answers it as null.
    let values = rt
        .aggregate(
            &acme,
            "hostile",
            Arc::from(r#"{"mode":"finish-value","value":"nan"}"#),
            groups.clone(),
        )
        .await
        .unwrap();
    assert!(values.iter().all(|v| v.is_nan()), "{values:?}");
    let err = rt
        .aggregate(
            &acme,
            "hostile",
            Arc::from(r#"{"mode":"state-grows"}"#),
            groups.clone(),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("hostile"), "{err}");
    let err = rt
        .aggregate(&acme, "nope", Arc::from("{}"), groups.clone())
        .await
        .unwrap_err();
    assert!(matches!(err.failure, CallFailure::NotInstalled));
    let err = rt
        .aggregate(&acme, "hostile", Arc::from("{}"), groups)
        .await
        .map(|v| v.len());
    assert_eq!(
        err.unwrap(),
        2,
        "the same plugin still works after its failures"
    );
}

async fn eventually<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn drop_in(dir: &Path, name: &str, bytes: &[u8]) {
    let tmp = dir.join(format!(".{name}.partial"));
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, dir.join(name)).unwrap();
}

#[tokio::test]
async fn hot_reload_installs_replaces_refuses_and_unloads_from_the_watched_dir() {
    let dir = tempfile::tempdir().unwrap();
    let watched = dir.path().join("plugins");
    let rt = runtime(dir.path());
    let _watcher = rt.watch_directory(&watched).await.unwrap();
    let acme = tenant("acme");

    drop_in(&watched, "guard.wasm", &wasm(NOOP_VALIDATOR));
    let first = eventually("first install", || rt.resolve(&acme, "guard")).await;
    assert_eq!(first.source, PluginSource::Directory);

    std::fs::write(
        watched.join("guard.toml"),
        "version = \"2.0.0\"\ndeadline_ms = 20\n",
    )
    .unwrap();
    drop_in(&watched, "guard.wasm", &wasm(NAME_POLICY));
    let second = eventually("replacement", || {
        rt.resolve(&acme, "guard")
            .filter(|p| &*p.version == "2.0.0")
    })
    .await;
    assert_eq!(second.limits.deadline, Duration::from_millis(20));
    assert_ne!(second.hash, first.hash);

    drop_in(&watched, "guard.wasm", &wasm(ABI_V2));
    let failure = eventually("refusal", || {
        rt.list(None)
            .into_iter()
            .find(|s| s.name == "guard")
            .and_then(|s| s.last_load_failure)
    })
    .await;
    assert!(failure.error.contains("0.2.0"), "{}", failure.error);
    assert_eq!(
        rt.resolve(&acme, "guard").unwrap().hash,
        second.hash,
        "the running version stays"
    );

    std::fs::remove_file(watched.join("guard.wasm")).unwrap();
    eventually("unload", || {
        rt.resolve(&acme, "guard").is_none().then_some(())
    })
    .await;
}

#[tokio::test]
async fn reloading_every_second_under_load_fails_no_call() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let acme = tenant("acme");
    install_for(&rt, &acme, "policy", NAME_POLICY).await;
    bind_validators(
        &rt,
        &acme,
        vec![bind(
            "policy",
            json!({"requiredDimensions": ["service"]}),
            FailurePolicy::FailClosed,
        )],
    )
    .await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for _ in 0..4 {
        let (rt, acme, stop) = (rt.clone(), acme.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let batch: Vec<Metric> = (0..100)
                .map(|_| metric("m", &[("service", "api")]))
                .collect();
            let mut calls = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let outcome = validate(&rt, &acme, &batch).await;
                assert_eq!(outcome, StepOutcome::AcceptAll, "call {calls}");
                calls += 1;
            }
            calls
        }));
    }
    for round in 0..4 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let manifest = Manifest {
            version: Some(format!("r{round}")),
            ..Default::default()
        };
        rt.upload(
            PluginScope::Tenant(acme.clone()),
            "policy",
            manifest,
            wasm(NAME_POLICY),
        )
        .await
        .unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total = 0;
    for w in writers {
        total += w.await.unwrap();
    }
    assert!(total > 0);
    assert_eq!(&*rt.resolve(&acme, "policy").unwrap().version, "r3");
}

/// The chain both pipeline tests write through: `policy` (needs a
/// `service`) drops metrics without one, the first `lookup` adds `team`,
/// the second keys on that `team` to add `owner`. `series_only` says how
/// both plugins are installed: asked about every metric, or answered from
/// the series cache.
async fn policy_then_two_lookups(
    dir: &Path,
    series_only: bool,
) -> (
    Arc<PluginRuntime>,
    TenantId,
    luminate_host::pipeline::WritePipeline,
    Arc<luminate_host::storage::rocks::RocksStore>,
) {
    use luminate_host::model::Validator;
    use luminate_host::pipeline::WritePipeline;
    use luminate_host::plugins::stage::PluginWriteStage;
    use luminate_host::storage::rocks::{RocksOptions, RocksStore};

    let rt = runtime(dir);
    let acme = tenant("acme");
    for (name, path) in [("policy", NAME_POLICY), ("lookup", LOOKUP_ENRICHER)] {
        let manifest = Manifest {
            series_only: Some(series_only),
            ..Default::default()
        };
        rt.upload(
            PluginScope::Tenant(acme.clone()),
            name,
            manifest,
            wasm(path),
        )
        .await
        .unwrap();
    }
    let lookup = |key: &str, from: &str, to: Value| {
        bind(
            "lookup",
            json!({"lookups": [{"key": key, "table": {from: to}}]}),
            FailurePolicy::FailClosed,
        )
    };
    rt.set_bindings(
        &acme,
        BindingSet {
            validators: vec![bind(
                "policy",
                json!({"requiredDimensions": ["service"]}),
                FailurePolicy::FailClosed,
            )],
            enrichers: vec![
                lookup("service", "checkout", json!({"team": "payments"})),
                lookup("team", "payments", json!({"owner": "alice"})),
            ],
        },
    )
    .await
    .unwrap();
    let store = Arc::new(RocksStore::open(dir.join("data"), RocksOptions::default()).unwrap());
    let pipeline = WritePipeline::new(
        Validator::new(ValidationLimits::default()),
        store.clone(),
        1_000,
    )
    .with_stage(Arc::new(PluginWriteStage::new(rt.clone())));
    (rt, acme, pipeline, store)
}

#[tokio::test]
async fn each_plugin_of_a_chain_sees_the_batch_as_the_steps_before_left_it() {
    use luminate_host::storage::MetricsStore;

    let dir = tempfile::tempdir().unwrap();
    // Asked about every metric: the packed batch is shared, then repacked
    // after each step that changed the metrics. The validator drops the
    // middle metric, so the enrichers get a shorter batch.
    let (_rt, acme, pipeline, store) = policy_then_two_lookups(dir.path(), false).await;
    let items = vec![
        Ok(metric("a_total", &[("service", "checkout")])),
        Ok(metric("b_total", &[])),
        Ok(metric("c_total", &[("service", "checkout")])),
    ];
    let outcome = pipeline
        .write(&acme, items, 1_700_000_000_000)
        .await
        .unwrap();
    assert_eq!(outcome.accepted, 2, "{outcome:?}");
    assert_eq!(
        outcome
            .rejected
            .iter()
            .map(|r| (r.index, r.code))
            .collect::<Vec<_>>(),
        vec![(1, "plugin_rejected")]
    );
    for name in ["a_total", "c_total"] {
        for (key, value) in [("team", "payments"), ("owner", "alice")] {
            assert_eq!(
                store
                    .list_dimension_values(&acme, name, key, 10)
                    .await
                    .unwrap(),
                vec![value.to_owned()],
                "{name} {key}"
            );
        }
    }
}

#[tokio::test]
async fn a_chain_through_the_write_pipeline_stores_the_same_with_answers_remembered() {
    use luminate_host::model::{AggregateQuery, Aggregation, Selector, TimeRange};
    use luminate_host::storage::MetricsStore;

    let dir = tempfile::tempdir().unwrap();
    // The same chain answered from the series cache: the second enricher's
    // series are the metrics as the first left them.
    let (rt, acme, pipeline, store) = policy_then_two_lookups(dir.path(), true).await;
    let calls = |name: &str| summary(&rt, &acme, name).health.calls;
    let point = |name: &str, value: f64, dims: &[(&str, &str)]| Metric {
        value,
        timestamp_ms: 1_700_000_000_000 + value as i64,
        ..metric(name, dims)
    };
    let now = 1_700_000_100_000;
    for round in 0..4 {
        // Points at their own timestamps: each round adds two.
        let at = 10.0 * round as f64;
        let items = vec![
            Ok(point("a_total", at + 1.0, &[("service", "checkout")])),
            Ok(point("b_total", at + 1.0, &[])),
            Ok(point("a_total", at + 2.0, &[("service", "checkout")])),
        ];
        let outcome = pipeline.write(&acme, items, now).await.unwrap();
        assert_eq!(outcome.accepted, 2, "round {round}: {outcome:?}");
        assert_eq!(outcome.rejected[0].index, 1, "round {round}");
    }
    // Two calls per binding (a series is remembered from its second
    // sighting); the later rounds were answered from memory.
    assert_eq!(calls("policy"), 2);
    assert_eq!(calls("lookup"), 4, "two bindings, two calls each");

    let query = AggregateQuery {
        selector: Selector {
            metric: "a_total".into(),
            range: TimeRange {
                start_ms: 1_600_000_000_000,
                end_ms: 1_800_000_000_000,
            },
            filters: vec![],
            budget: luminate_host::model::QueryBudget::UNLIMITED,
        },
        aggregation: Aggregation::Count,
        group_by: vec!["service".into(), "team".into(), "owner".into()],
        limit: None,
    };
    let result = store.query_aggregate(&acme, &query).await.unwrap();
    let rows: Vec<(Vec<Option<String>>, f64)> = result
        .rows
        .into_iter()
        .map(|r| (r.group, r.value))
        .collect();
    let group = ["checkout", "payments", "alice"].map(|v| Some(v.to_owned()));
    assert_eq!(
        rows,
        vec![(group.to_vec(), 8.0)],
        "every round stored both points with both enrichments"
    );
}

/// A runtime whose global plugins quarantine after three failures.
fn quick_quarantine(dir: &Path) -> Arc<PluginRuntime> {
    common::plugin_runtime(
        dir,
        PluginsConfig {
            quarantine_after: 3,
            ..Default::default()
        },
    )
}

fn operator_summary(
    rt: &PluginRuntime,
    name: &str,
) -> luminate_host::plugins::runtime::PluginSummary {
    rt.list(None)
        .into_iter()
        .find(|s| s.name == name)
        .expect("listed")
}

#[tokio::test]
async fn one_tenants_failures_never_quarantine_a_global_plugin_for_another_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let rt = quick_quarantine(dir.path());
    let (attacker, quiet) = (tenant("attacker"), tenant("quiet"));
    rt.upload(
        PluginScope::Global,
        "echo",
        Manifest::default(),
        wasm(ECHO_VALIDATOR),
    )
    .await
    .unwrap();
    // The same global plugin and params for both; only the attacker's data
    // makes it fail.
    let binding = bind(
        "echo",
        json!({"failOn": "boom", "tag": "t"}),
        FailurePolicy::FailClosed,
    );
    bind_validators(&rt, &attacker, vec![binding.clone()]).await;
    bind_validators(&rt, &quiet, vec![binding]).await;
    for _ in 0..10 {
        let outcome = validate(&rt, &attacker, &[metric("m", &[("secret", "boom")])]).await;
        assert!(
            matches!(outcome, StepOutcome::RejectAll { .. }),
            "{outcome:?}"
        );
        let outcome = validate(&rt, &quiet, &[metric("m", &[("host", "a")])]).await;
        assert!(
            matches!(&outcome, StepOutcome::PerMetric(v) if v[0].as_ref().is_some_and(|(code, _)| *code == "plugin_rejected")),
            "the quiet tenant's calls still run: {outcome:?}"
        );
    }
    let attackers = summary(&rt, &attacker, "echo");
    assert!(attackers.health.quarantined, "quarantined for its binding");
    assert!(attackers.health.last_error.unwrap().contains("boom"));
    assert_eq!(attackers.health.calls, 3, "not called once quarantined");
    let quiets = summary(&rt, &quiet, "echo");
    assert!(!quiets.health.quarantined);
    assert_eq!(quiets.status(), "active");
    assert_eq!((quiets.health.calls, quiets.health.failures), (10, 0));
    assert_eq!(
        quiets.health.last_error, None,
        "never another tenant's text"
    );
    let operator = operator_summary(&rt, "echo");
    assert_eq!(operator.health.quarantined_bindings, 1);
    assert_eq!(operator.health.calls, 13);
    // Binding anew (e.g. with fixed params) lifts the attacker's own
    // quarantine and keeps its counts.
    bind_validators(
        &rt,
        &attacker,
        vec![bind("echo", json!({"tag": "t"}), FailurePolicy::FailClosed)],
    )
    .await;
    let outcome = validate(&rt, &attacker, &[metric("m", &[("secret", "boom")])]).await;
    assert!(matches!(outcome, StepOutcome::PerMetric(_)), "{outcome:?}");
    assert_eq!(summary(&rt, &attacker, "echo").health.calls, 4);
}

#[tokio::test]
async fn one_tenants_timeouts_never_quarantine_another_tenants_binding() {
    let dir = tempfile::tempdir().unwrap();
    let rt = quick_quarantine(dir.path());
    let (attacker, quiet) = (tenant("attacker"), tenant("quiet"));
    rt.upload(
        PluginScope::Global,
        "spin",
        Manifest {
            deadline_ms: Some(100),
            ..Default::default()
        },
        wasm(INFINITE_LOOP),
    )
    .await
    .unwrap();
    // The attacker's params make it loop past its deadline; the quiet
    // tenant's make it finish.
    bind_validators(
        &rt,
        &attacker,
        vec![bind("spin", json!({}), FailurePolicy::FailClosed)],
    )
    .await;
    bind_validators(
        &rt,
        &quiet,
        vec![bind(
            "spin",
            json!({"spins": 1000}),
            FailurePolicy::FailClosed,
        )],
    )
    .await;
    for _ in 0..4 {
        validate(&rt, &attacker, &[metric("m", &[])]).await;
    }
    assert!(summary(&rt, &attacker, "spin").health.quarantined);
    assert_eq!(
        validate(&rt, &quiet, &[metric("m", &[])]).await,
        StepOutcome::AcceptAll
    );
    let quiets = summary(&rt, &quiet, "spin");
    assert!(!quiets.health.quarantined);
    assert_eq!(quiets.health.last_error, None);
}

#[tokio::test]
async fn params_a_plugin_calls_invalid_are_refused_when_bound_with_its_message() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let acme = tenant("acme");
    rt.upload(
        PluginScope::Global,
        "spin",
        Manifest::default(),
        wasm(INFINITE_LOOP),
    )
    .await
    .unwrap();
    let refused = rt
        .set_bindings(
            &acme,
            BindingSet {
                validators: vec![bind(
                    "spin",
                    json!({"spins": "many"}),
                    FailurePolicy::FailClosed,
                )],
                enrichers: vec![],
            },
        )
        .await
        .unwrap_err();
    match &refused {
        PluginAdminError::RejectedParams { plugin, message } => {
            assert_eq!(plugin, "spin");
            assert!(
                message.contains("spins"),
                "the plugin's own message: {message}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(rt.chain(&acme).is_empty(), "nothing was bound");
    // A plugin that loops even on an empty batch says nothing about its
    // params: the binding stands (and fails at write time, for its tenant).
    bind_validators(
        &rt,
        &acme,
        vec![bind("spin", json!({}), FailurePolicy::FailOpen)],
    )
    .await;
    assert_eq!(rt.chain(&acme).validators.len(), 1);
    assert_eq!(
        operator_summary(&rt, "spin").health.calls,
        0,
        "the bind-time probe counts as no call"
    );
}

#[tokio::test]
async fn one_tenants_failing_aggregations_never_quarantine_another_tenants() {
    let dir = tempfile::tempdir().unwrap();
    let rt = quick_quarantine(dir.path());
    let (attacker, quiet) = (tenant("attacker"), tenant("quiet"));
    rt.upload(
        PluginScope::Global,
        "hostile",
        Manifest {
            deadline_ms: Some(100),
            ..Default::default()
        },
        wasm(HOSTILE_AGGREGATOR),
    )
    .await
    .unwrap();
    let groups = vec![vec![(1, 1.0), (2, 2.0)]];
    for _ in 0..4 {
        let error = rt
            .aggregate(
                &attacker,
                "hostile",
                Arc::from(r#"{"mode":"finish-panics"}"#),
                groups.clone(),
            )
            .await
            .unwrap_err();
        assert!(error.to_string().contains("hostile"), "{error}");
    }
    let error = rt
        .aggregate(&attacker, "hostile", Arc::from("{}"), groups.clone())
        .await
        .unwrap_err();
    assert_eq!(error.failure, CallFailure::Quarantined);
    assert_eq!(
        rt.aggregate(&quiet, "hostile", Arc::from("{}"), groups.clone())
            .await
            .unwrap(),
        vec![2.0]
    );
    let quiets = summary(&rt, &quiet, "hostile");
    assert!(!quiets.health.quarantined);
    assert_eq!(quiets.health.last_error, None);
    // Params the plugin calls invalid are the query's mistake: answered,
    // never counted.
    let other = tenant("other");
    for _ in 0..4 {
        let error = rt
            .aggregate(
                &other,
                "hostile",
                Arc::from(r#"{"mode":"state-grows","bytes":"lots"}"#),
                groups.clone(),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(error.failure, CallFailure::InvalidConfig(_)),
            "{error}"
        );
    }
    assert_eq!(summary(&rt, &other, "hostile").health.failures, 0);
}

#[tokio::test]
async fn a_tenant_past_its_memory_share_fails_alone_and_names_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let rt = common::plugin_runtime(
        dir.path(),
        PluginsConfig {
            memory_limit_bytes: 64 << 20,
            memory_budget_bytes: 96 << 20,
            memory_budget_per_tenant_bytes: 24 << 20,
            ..Default::default()
        },
    );
    let (attacker, quiet) = (tenant("attacker"), tenant("quiet"));
    install_slow(&rt, &attacker, "bomb", MEMORY_BOMB).await;
    bind_validators(
        &rt,
        &attacker,
        vec![bind("bomb", json!({}), FailurePolicy::FailClosed)],
    )
    .await;
    install_for(&rt, &quiet, "noop", NOOP_VALIDATOR).await;
    bind_validators(
        &rt,
        &quiet,
        vec![bind("noop", json!({}), FailurePolicy::FailClosed)],
    )
    .await;
    // The attacker's bombs at once, the quiet tenant's calls in between.
    let bombs: Vec<_> = (0..4)
        .map(|_| {
            let (rt, attacker) = (rt.clone(), attacker.clone());
            tokio::spawn(async move { validate(&rt, &attacker, &[metric("m", &[])]).await })
        })
        .collect();
    let bombs = async {
        let mut outcomes = Vec::new();
        for bomb in bombs {
            outcomes.push(bomb.await.unwrap());
        }
        outcomes
    };
    let quiet_calls = async {
        let mut outcomes = Vec::new();
        for _ in 0..20 {
            outcomes.push(validate(&rt, &quiet, &[metric("m", &[])]).await);
        }
        outcomes
    };
    let (bombed, quiet_outcomes) = tokio::join!(bombs, quiet_calls);
    for outcome in bombed {
        assert!(
            matches!(&outcome, StepOutcome::RejectAll { message, .. }
                if message.contains("plugins.memory_budget_per_tenant_bytes")),
            "{outcome:?}"
        );
    }
    assert!(
        quiet_outcomes.iter().all(|o| *o == StepOutcome::AcceptAll),
        "{quiet_outcomes:?}"
    );
    assert_eq!(summary(&rt, &quiet, "noop").health.failures, 0);
}

#[tokio::test]
async fn uploads_are_capped_in_size_and_in_number_with_the_limit_named() {
    let dir = tempfile::tempdir().unwrap();
    let rt = common::plugin_runtime(
        dir.path(),
        PluginsConfig {
            max_plugins_per_tenant: 2,
            max_plugins: 3,
            max_plugin_bytes: 1 << 20,
            ..Default::default()
        },
    );
    let (acme, other) = (tenant("acme"), tenant("other"));
    let noop = wasm(NOOP_VALIDATOR);
    assert!(noop.len() < 1 << 20, "the fixture fits the cap");
    let upload = |owner: &TenantId, name: &'static str, wasm: Vec<u8>| {
        rt.upload(
            PluginScope::Tenant(owner.clone()),
            name,
            Manifest::default(),
            wasm,
        )
    };
    let too_big = [noop.clone(), vec![0; 1 << 20]].concat();
    let error = upload(&acme, "big", too_big).await.unwrap_err();
    assert!(
        error
            .to_string()
            .contains("plugins.max_plugin_bytes = 1048576"),
        "{error}"
    );
    for name in ["one", "two"] {
        upload(&acme, name, noop.clone()).await.unwrap();
    }
    // Replacing one is no new plugin.
    upload(&acme, "two", noop.clone()).await.unwrap();
    let error = upload(&acme, "three", noop.clone()).await.unwrap_err();
    assert!(
        error
            .to_string()
            .contains("plugins.max_plugins_per_tenant = 2"),
        "{error}"
    );
    upload(&other, "one", noop.clone()).await.unwrap();
    let error = upload(&other, "two", noop.clone()).await.unwrap_err();
    assert!(
        error.to_string().contains("plugins.max_plugins = 3"),
        "{error}"
    );
}

#[tokio::test]
async fn uploads_racing_for_the_last_place_cannot_both_take_it() {
    let dir = tempfile::tempdir().unwrap();
    let rt = common::plugin_runtime(
        dir.path(),
        PluginsConfig {
            max_plugins_per_tenant: 1,
            ..Default::default()
        },
    );
    let acme = tenant("acme");
    let noop = wasm(NOOP_VALIDATOR);
    let upload = |name: &'static str| {
        rt.upload(
            PluginScope::Tenant(acme.clone()),
            name,
            Manifest::default(),
            noop.clone(),
        )
    };
    // Both are counted before either has compiled.
    let (first, second) = tokio::join!(upload("first"), upload("second"));
    let refused: Vec<String> = [&first, &second]
        .iter()
        .filter_map(|outcome| outcome.as_ref().err().map(|e| e.to_string()))
        .collect();
    assert_eq!(
        refused.len(),
        1,
        "exactly one takes the place: {first:?} / {second:?}"
    );
    assert!(
        refused[0].contains("plugins.max_plugins_per_tenant = 1"),
        "{refused:?}"
    );
    // A refused upload gives its place back; the winner can be replaced.
    let winner = if first.is_ok() { "first" } else { "second" };
    upload(winner).await.unwrap();
}

#[tokio::test]
async fn stored_plugins_compile_after_start_and_fail_closed_bindings_wait_for_them() {
    let dir = tempfile::tempdir().unwrap();
    let acme = tenant("acme");
    {
        let rt = runtime(dir.path());
        install_for(&rt, &acme, "policy", NAME_POLICY).await;
        bind_validators(
            &rt,
            &acme,
            vec![bind(
                "policy",
                json!({"requiredDimensions": ["team"]}),
                FailurePolicy::FailClosed,
            )],
        )
        .await;
    }
    let config = common::test_config(dir.path());
    let (rt, _loading) = PluginRuntime::start(&config, None).await.unwrap();
    // The chains are back at once; the plugin is still compiling.
    let chain = rt.chain(&acme);
    assert_eq!(chain.validators.len(), 1);
    assert!(!rt.is_ready(), "start returns before plugins compile");
    assert_eq!(
        rt.fail_closed_not_loaded(&acme, &chain).as_deref(),
        Some("policy")
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while !rt.is_ready() {
        assert!(Instant::now() < deadline, "plugins never loaded");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(rt.fail_closed_not_loaded(&acme, &chain), None);
    assert!(matches!(
        validate(&rt, &acme, &[metric("m", &[])]).await,
        StepOutcome::PerMetric(_)
    ));
}
