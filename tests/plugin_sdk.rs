//! The SDK's contract, checked on real components built from source by
//! build.rs: every plugin carries the ABI version where the host reads it,
//! and the SDK's glue (params import, batch calls, errors, state bytes,
//! panic logging) behaves under wasmtime as the native tests say.
//!
//! The harness here is deliberately minimal (fresh store per call, WASI
//! context that grants nothing); the server's runtime lives in
//! `host/src/plugins` and has its own tests.

include!(concat!(env!("OUT_DIR"), "/plugins.rs"));

use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

mod validator_world {
    wasmtime::component::bindgen!({ world: "validator-plugin", path: "plugin-sdk/wit" });
}
mod enricher_world {
    wasmtime::component::bindgen!({
        world: "enricher-plugin",
        path: "plugin-sdk/wit",
        with: {
            "luminate:plugin/types": crate::validator_world::luminate::plugin::types,
            "luminate:plugin/host": crate::validator_world::luminate::plugin::host,
        },
    });
}
mod aggregator_world {
    wasmtime::component::bindgen!({
        world: "aggregator-plugin",
        path: "plugin-sdk/wit",
        with: {
            "luminate:plugin/types": crate::validator_world::luminate::plugin::types,
            "luminate:plugin/host": crate::validator_world::luminate::plugin::host,
        },
    });
}

use validator_world::luminate::plugin::host::LogLevel;
use validator_world::luminate::plugin::types::{Enrichment, MetricBatch, PluginError, Verdict};

/// One point of an aggregation, as a test writes it.
#[derive(Clone, Copy)]
struct Sample {
    timestamp_ms: i64,
    value: f64,
}

type Logs = Vec<(LogLevel, String)>;
type CallResult<T> = wasmtime::Result<Result<T, PluginError>>;
type AggregatorExports = aggregator_world::exports::luminate::plugin::aggregator::Guest;
type AggregatorCall<'a> =
    &'a dyn Fn(&AggregatorExports, &mut Store<HostState>) -> CallResult<Vec<u8>>;

struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    params: String,
    logs: Logs,
    limits: StoreLimits,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl validator_world::luminate::plugin::types::Host for HostState {}

impl validator_world::luminate::plugin::host::Host for HostState {
    fn log(&mut self, level: LogLevel, message: String) {
        self.logs.push((level, message));
    }
    fn params(&mut self) -> String {
        self.params.clone()
    }
}

/// One plugin, compiled once; each call gets a fresh store.
struct Harness {
    engine: Engine,
    component: Component,
}

impl Harness {
    fn load(path: &str) -> Self {
        let mut config = Config::new();
        config.wasm_component_model(true);
        let engine = Engine::new(&config).unwrap();
        let component = Component::from_file(&engine, path).unwrap();
        Self { engine, component }
    }

    fn store(&self, params: &str) -> Store<HostState> {
        let state = HostState {
            // Grants nothing: no dirs, no env, no args, no stdio, no network.
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
            params: params.to_string(),
            logs: Vec::new(),
            // The server's default cap.
            limits: StoreLimitsBuilder::new().memory_size(16 << 20).build(),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        store
    }

    fn linker(&self) -> Linker<HostState> {
        let mut linker = Linker::new(&self.engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).unwrap();
        linker
    }

    fn validate(&self, params: &str, metrics: &[Metric]) -> (CallResult<Vec<Verdict>>, Logs) {
        self.validate_packed(params, &pack(metrics))
    }

    /// A call with a batch as given, well-formed or not.
    fn validate_packed(
        &self,
        params: &str,
        batch: &MetricBatch,
    ) -> (CallResult<Vec<Verdict>>, Logs) {
        let mut linker = self.linker();
        validator_world::ValidatorPlugin::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)
            .unwrap();
        let mut store = self.store(params);
        let plugin =
            validator_world::ValidatorPlugin::instantiate(&mut store, &self.component, &linker)
                .unwrap();
        let result = plugin
            .luminate_plugin_validator()
            .call_validate(&mut store, batch);
        (result, std::mem::take(&mut store.data_mut().logs))
    }

    /// Per metric, the `(key, value)` pairs the enricher's answer gives it.
    fn enrich(&self, params: &str, metrics: &[Metric]) -> CallResult<Vec<Vec<(String, String)>>> {
        let mut linker = self.linker();
        enricher_world::EnricherPlugin::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s).unwrap();
        let mut store = self.store(params);
        let plugin =
            enricher_world::EnricherPlugin::instantiate(&mut store, &self.component, &linker)
                .unwrap();
        let answer = plugin
            .luminate_plugin_enricher()
            .call_enrich(&mut store, &pack(metrics))?;
        Ok(answer.map(|e| unpack(&e)))
    }

    /// Runs init/update per partition, merge, finish: each step in its own
    /// fresh store, the state carried as bytes, as the server does.
    fn aggregate(&self, params: &str, partitions: &[&[Sample]]) -> Result<f64, PluginError> {
        let mut linker = self.linker();
        aggregator_world::AggregatorPlugin::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)
            .unwrap();
        let call = |f: AggregatorCall| -> Result<Vec<u8>, PluginError> {
            let mut store = self.store(params);
            let plugin = aggregator_world::AggregatorPlugin::instantiate(
                &mut store,
                &self.component,
                &linker,
            )
            .unwrap();
            f(plugin.luminate_plugin_aggregator(), &mut store).unwrap()
        };
        let mut merged: Option<Vec<u8>> = None;
        for samples in partitions {
            let state = call(&|a, s| a.call_init(s))?;
            let timestamps: Vec<i64> = samples.iter().map(|p| p.timestamp_ms).collect();
            let values: Vec<f64> = samples.iter().map(|p| p.value).collect();
            let state = call(&|a, s| a.call_update(s, &state, &timestamps, &values))?;
            merged = Some(match merged {
                None => state,
                Some(left) => call(&|a, s| a.call_merge(s, &left, &state))?,
            });
        }
        let state = merged.expect("at least one partition");
        let mut store = self.store(params);
        let plugin =
            aggregator_world::AggregatorPlugin::instantiate(&mut store, &self.component, &linker)
                .unwrap();
        plugin
            .luminate_plugin_aggregator()
            .call_finish(&mut store, &state)
            .unwrap()
    }
}

/// A metric as a test writes it; [`pack`] lays a batch of them out as the
/// ABI's `metric-batch`, the way the server does.
struct Metric {
    name: String,
    dimensions: Vec<(String, String)>,
}

fn metric(name: &str, dimensions: &[(&str, &str)]) -> Metric {
    Metric {
        name: name.into(),
        dimensions: dimensions
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

fn pack(metrics: &[Metric]) -> MetricBatch {
    let mut batch = MetricBatch {
        text: String::new(),
        names: Vec::new(),
        values: Vec::new(),
        timestamps_ms: Vec::new(),
        dimension_ends: Vec::new(),
        dimensions: Vec::new(),
    };
    let text = &mut batch.text;
    let mut pair = |s: &str, into: &mut Vec<u32>| {
        into.extend([text.len() as u32, s.len() as u32]);
        text.push_str(s);
    };
    for m in metrics {
        pair(&m.name, &mut batch.names);
        batch.values.push(1.0);
        batch.timestamps_ms.push(1_700_000_000_000);
        for (key, value) in &m.dimensions {
            pair(key, &mut batch.dimensions);
            pair(value, &mut batch.dimensions);
        }
        batch.dimension_ends.push(batch.dimensions.len() as u32 / 4);
    }
    batch
}

/// An enricher's answer, per metric, as the host reads it (panics on a
/// malformed layout: the host's own checks are tested in the runtime).
fn unpack(answer: &Enrichment) -> Vec<Vec<(String, String)>> {
    let text = |at: &[u32]| answer.text[at[0] as usize..][..at[1] as usize].to_owned();
    let mut start = 0;
    answer
        .dimension_ends
        .iter()
        .map(|&end| {
            let dims = answer.dimensions[4 * start..4 * end as usize]
                .chunks_exact(4)
                .map(|q| (text(&q[0..2]), text(&q[2..4])))
                .collect();
            start = end as usize;
            dims
        })
        .collect()
}

/// What a host reads before instantiating: the `luminate-abi` custom
/// section, wherever it sits (in Rust components, in the nested core
/// module).
fn abi_section(path: &str) -> Option<String> {
    let bytes = std::fs::read(path).unwrap();
    for payload in wasmparser::Parser::new(0).parse_all(&bytes) {
        if let wasmparser::Payload::CustomSection(section) = payload.unwrap()
            && section.name() == "luminate-abi"
        {
            return Some(String::from_utf8(section.data().to_vec()).unwrap());
        }
    }
    None
}

#[test]
fn every_sdk_plugin_carries_the_abi_version_in_a_custom_section() {
    let raw = [
        "reserved-keys-enricher",
        "malformed-enricher",
        "wrong-verdict-count",
        "abi-v2",
        "unpacked-abi-noop",
        "span-records-noop",
    ];
    for (name, path) in ALL {
        if raw.contains(name) {
            continue;
        }
        assert_eq!(abi_section(path).as_deref(), Some("0.1.0"), "{name}");
    }
}

#[test]
fn components_without_the_sdk_carry_no_section_unless_they_add_one() {
    assert_eq!(abi_section(WRONG_VERDICT_COUNT), None);
    assert_eq!(abi_section(RESERVED_KEYS_ENRICHER), None);
    assert_eq!(abi_section(ABI_V2).as_deref(), Some("0.2.0"));
}

#[test]
fn exported_interface_names_carry_the_version_and_only_the_plugins_kind() {
    let engine = Engine::default();
    let exports = |path: &str| -> Vec<String> {
        let component = Component::from_file(&engine, path).unwrap();
        component
            .component_type()
            .exports(&engine)
            .map(|(name, _)| name.to_string())
            .collect()
    };
    assert_eq!(
        exports(NAME_POLICY),
        vec!["luminate:plugin/validator@0.1.0"]
    );
    assert_eq!(
        exports(LOOKUP_ENRICHER),
        vec!["luminate:plugin/enricher@0.1.0"]
    );
    assert_eq!(exports(APDEX), vec!["luminate:plugin/aggregator@0.1.0"]);
    assert_eq!(exports(ABI_V2), vec!["luminate:plugin/validator@0.2.0"]);
}

#[test]
fn name_policy_component_rejects_with_reasons_from_its_params() {
    let harness = Harness::load(NAME_POLICY);
    let params = r#"{"requiredDimensions":["service"],"unitSuffixes":["_seconds"]}"#;
    let batch = [
        metric("latency_seconds", &[("service", "api")]),
        metric("latency", &[]),
    ];
    let (result, _) = harness.validate(params, &batch);
    let verdicts = result.unwrap().unwrap();
    assert_eq!(verdicts.len(), 2);
    assert!(matches!(verdicts[0], Verdict::Accept));
    let Verdict::Reject(reason) = &verdicts[1] else {
        panic!("expected a rejection, got {:?}", verdicts[1]);
    };
    assert!(
        reason.contains("missing required dimension 'service'"),
        "{reason}"
    );
    assert!(reason.contains("unit suffix (_seconds)"), "{reason}");
}

#[test]
fn a_malformed_batch_is_a_plugin_error_not_a_trap() {
    let harness = Harness::load(NAME_POLICY);
    let well_formed = pack(&[metric("latency_seconds", &[("service", "é")])]);
    let mut name_past_the_text = well_formed.clone();
    name_past_the_text.names[1] = 1_000;
    let mut value_splits_a_character = well_formed.clone();
    value_splits_a_character.dimensions[3] = 1;
    let mut dimensions_past_the_list = well_formed.clone();
    dimensions_past_the_list.dimension_ends[0] = 2;
    let mut overflowing_offset = well_formed.clone();
    overflowing_offset.names[0] = u32::MAX;
    let mut columns_disagree = well_formed.clone();
    columns_disagree.timestamps_ms.push(0);
    for batch in [
        name_past_the_text,
        value_splits_a_character,
        dimensions_past_the_list,
        overflowing_offset,
        columns_disagree,
    ] {
        let (result, _) = harness.validate_packed("{}", &batch);
        match result.unwrap() {
            Err(PluginError::Failed(message)) => {
                assert!(message.contains("malformed batch"), "{message}")
            }
            other => panic!("expected a plugin error, got {other:?}"),
        }
    }
    let (result, _) = harness.validate_packed("{}", &well_formed);
    assert!(matches!(result.unwrap().unwrap()[..], [Verdict::Accept]));
}

#[test]
fn bad_params_come_back_as_invalid_config_not_a_trap() {
    let harness = Harness::load(NAME_POLICY);
    let (result, _) = harness.validate(r#"{"maxValueLength":"x"}"#, &[metric("m", &[])]);
    match result.unwrap() {
        Err(PluginError::InvalidConfig(message)) => {
            assert!(message.contains("maxValueLength"), "{message}")
        }
        other => panic!("expected invalid-config, got {other:?}"),
    }
}

#[test]
fn lookup_enricher_component_returns_the_tables_dimensions() {
    let harness = Harness::load(LOOKUP_ENRICHER);
    let params = r#"{"lookups":[{"key":"service","table":{"api":{"team":"core","owner":"ana"}}}]}"#;
    let out = harness
        .enrich(
            params,
            &[metric("m", &[("service", "api")]), metric("m", &[])],
        )
        .unwrap()
        .unwrap();
    assert_eq!(
        out,
        vec![
            vec![
                ("owner".into(), "ana".into()),
                ("team".into(), "core".into())
            ],
            vec![]
        ]
    );
}

#[test]
fn apdex_component_merges_states_carried_as_bytes_between_stores() {
    let harness = Harness::load(APDEX);
    let sample = |v: f64| Sample {
        timestamp_ms: 0,
        value: v,
    };
    let a = [sample(0.1), sample(0.4)];
    let b = [sample(0.5), sample(2.0)];
    let score = harness
        .aggregate(r#"{"threshold":0.3}"#, &[&a, &b])
        .unwrap();
    // satisfied 0.1; tolerating 0.4, 0.5 (≤ 1.2); frustrated 2.0.
    assert_eq!(score, (1.0 + 2.0 / 2.0) / 4.0);
}

#[test]
fn trimmed_mean_component_ignores_outliers() {
    let harness = Harness::load(TRIMMED_MEAN);
    let samples: Vec<Sample> = [1.0, 2.0, 3.0, 4.0, 1000.0]
        .iter()
        .map(|&value| Sample {
            timestamp_ms: 0,
            value,
        })
        .collect();
    let mean = harness.aggregate(r#"{"trim":0.2}"#, &[&samples]).unwrap();
    assert_eq!(mean, 3.0);
}

#[test]
fn a_panic_traps_and_its_message_reaches_the_host_log_first() {
    let harness = Harness::load(PANIC_VALIDATOR);
    let (result, logs) = harness.validate("{}", &[metric("boom_total", &[])]);
    assert!(result.is_err(), "a panic must trap");
    assert!(
        logs.iter()
            .any(|(level, message)| matches!(level, LogLevel::Error)
                && message.contains("deliberate panic while validating 'boom_total'")),
        "{logs:?}"
    );
}

#[test]
fn sandbox_probe_reaches_nothing_under_a_context_that_grants_nothing() {
    let harness = Harness::load(SANDBOX_PROBE);
    let (result, _) = harness.validate("{}", &[metric("m", &[])]);
    let verdicts = result.unwrap().unwrap();
    let Verdict::Reject(report) = &verdicts[0] else {
        panic!("the probe always reports");
    };
    let report: serde_json::Value = serde_json::from_str(report).unwrap();
    assert_eq!(report["escaped"], serde_json::json!([]), "{report:#}");
}

// The fixtures do what the runtime's tests rely on.

#[test]
fn infinite_loop_fixture_finishes_when_given_a_spin_count() {
    let harness = Harness::load(INFINITE_LOOP);
    let (result, _) = harness.validate(r#"{"spins":1000}"#, &[metric("m", &[])]);
    assert!(matches!(result.unwrap().unwrap()[..], [Verdict::Accept]));
}

#[test]
fn sleeper_fixture_returns_after_a_short_nap() {
    let harness = Harness::load(SLEEPER);
    let (result, _) = harness.validate(r#"{"ms":1}"#, &[metric("m", &[])]);
    assert!(matches!(result.unwrap().unwrap()[..], [Verdict::Accept]));
}

#[test]
fn memory_bomb_fixture_traps_at_a_16_mib_cap() {
    let harness = Harness::load(MEMORY_BOMB);
    let (result, _) = harness.validate("{}", &[metric("m", &[])]);
    assert!(result.is_err(), "the bomb must trap, got {result:?}");
}

#[test]
fn reserved_keys_fixture_really_returns_reserved_keys() {
    let harness = Harness::load(RESERVED_KEYS_ENRICHER);
    let out = harness.enrich("{}", &[metric("m", &[])]).unwrap().unwrap();
    let keys: Vec<&str> = out[0].iter().map(|(key, _)| key.as_str()).collect();
    assert_eq!(keys, vec!["team", "_tenant_id", "_origin"]);
}

#[test]
fn wrong_verdict_count_fixture_miscounts_both_ways() {
    let harness = Harness::load(WRONG_VERDICT_COUNT);
    let batch = [metric("a", &[]), metric("b", &[])];
    let (more, _) = harness.validate("{}", &batch);
    assert_eq!(more.unwrap().unwrap().len(), 3);
    let (fewer, _) = harness.validate(r#"{"fewer": true}"#, &batch);
    assert_eq!(fewer.unwrap().unwrap().len(), 1);
}
