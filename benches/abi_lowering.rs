//! What the ABI's batch layout costs: one no-op validator call on a
//! 1 000-metric batch (3 dimensions each), lowered three ways:
//!
//! - `columnar`: `luminate:plugin@0.1.0` as it is, a `metric-batch` of all
//!   text in one `string` and every other column a list of numbers, into
//!   the SDK's `noop-validator` fixture. Each list crosses as one copy; the
//!   time includes the SDK decoding the batch into borrowed `Metric` views
//!   (bounds and UTF-8 boundary checks).
//! - `span records`: the layout before that
//!   (`tests/fixtures/plugins/span-records-noop/wit`), one text but metrics
//!   and dimensions as lists of records of spans, which the canonical ABI
//!   lowers field by field.
//! - `unpacked`: the first layout
//!   (`tests/fixtures/plugins/unpacked-abi-noop/wit`), a `list<metric>` of
//!   records holding strings. The canonical ABI calls the guest's
//!   `cabi_realloc` for every string: 1 + 2 × dimensions per metric.
//!
//! Only the call is timed (a fresh store and instance per call, as the
//! server does, created outside the timing), through plain wasmtime: this
//! isolates the ABI from the server's runtime (see `plugin_overhead` for the
//! whole write-path step).
//!
//! `cargo bench --bench abi_lowering`

include!(concat!(env!("OUT_DIR"), "/plugins.rs"));

use std::time::Instant;

use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

mod packed {
    wasmtime::component::bindgen!({ world: "validator-plugin", path: "plugin-sdk/wit" });
}
mod span_records {
    wasmtime::component::bindgen!({
        world: "span-records",
        path: "tests/fixtures/plugins/span-records-noop/wit",
    });
}
mod unpacked {
    wasmtime::component::bindgen!({
        world: "unpacked",
        path: "tests/fixtures/plugins/unpacked-abi-noop/wit",
    });
}

const BATCH: usize = 1_000;
const CALLS: usize = 200;

struct Sandbox {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for Sandbox {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl packed::luminate::plugin::types::Host for Sandbox {}

impl packed::luminate::plugin::host::Host for Sandbox {
    fn log(&mut self, _: packed::luminate::plugin::host::LogLevel, _: String) {}
    fn params(&mut self) -> String {
        "{}".into()
    }
}

fn store(engine: &Engine) -> Store<Sandbox> {
    Store::new(
        engine,
        Sandbox {
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
        },
    )
}

fn dimensions(i: usize) -> [(String, String); 3] {
    [
        ("env".into(), "prod".into()),
        ("host".into(), format!("web-{}", i % 16)),
        ("service".into(), "checkout".into()),
    ]
}

/// Median of `CALLS` timed calls, in ns per metric.
fn median_ns_per_metric(mut call: impl FnMut() -> u128) -> u128 {
    let mut times: Vec<u128> = (0..CALLS).map(|_| call()).collect();
    times.sort_unstable();
    times[CALLS / 2] / BATCH as u128
}

fn bench_unpacked(engine: &Engine) -> u128 {
    use unpacked::luminate::unpacked::types::{Dimension, Metric};
    let batch: Vec<Metric> = (0..BATCH)
        .map(|i| Metric {
            name: "http_request_duration_seconds".into(),
            value: 0.25,
            timestamp_ms: 1_700_000_000_000,
            dimensions: dimensions(i)
                .into_iter()
                .map(|(key, value)| Dimension { key, value })
                .collect(),
        })
        .collect();
    let component = Component::from_file(engine, UNPACKED_ABI_NOOP).unwrap();
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).unwrap();
    let pre = unpacked::UnpackedPre::new(linker.instantiate_pre(&component).unwrap()).unwrap();
    median_ns_per_metric(|| {
        let mut store = store(engine);
        let plugin = pre.instantiate(&mut store).unwrap();
        let start = Instant::now();
        let verdicts = plugin
            .luminate_unpacked_validator()
            .call_validate(&mut store, &batch)
            .unwrap();
        let elapsed = start.elapsed().as_nanos();
        assert_eq!(verdicts.len(), BATCH);
        elapsed
    })
}

fn bench_columnar(engine: &Engine) -> u128 {
    let mut batch = packed::luminate::plugin::types::MetricBatch {
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
    for i in 0..BATCH {
        pair("http_request_duration_seconds", &mut batch.names);
        batch.values.push(0.25);
        batch.timestamps_ms.push(1_700_000_000_000);
        for (key, value) in dimensions(i) {
            pair(&key, &mut batch.dimensions);
            pair(&value, &mut batch.dimensions);
        }
        batch.dimension_ends.push(batch.dimensions.len() as u32 / 4);
    }
    let component = Component::from_file(engine, NOOP_VALIDATOR).unwrap();
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).unwrap();
    packed::ValidatorPlugin::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s).unwrap();
    let pre = packed::ValidatorPluginPre::new(linker.instantiate_pre(&component).unwrap()).unwrap();
    median_ns_per_metric(|| {
        let mut store = store(engine);
        let plugin = pre.instantiate(&mut store).unwrap();
        let start = Instant::now();
        let verdicts = plugin
            .luminate_plugin_validator()
            .call_validate(&mut store, &batch)
            .unwrap()
            .unwrap();
        let elapsed = start.elapsed().as_nanos();
        assert_eq!(verdicts.len(), BATCH);
        elapsed
    })
}

fn bench_span_records(engine: &Engine) -> u128 {
    use span_records::luminate::span_records::types::{
        MetricBatch, PackedDimension, PackedMetric, Span,
    };
    let mut text = String::new();
    let mut span = |s: &str| {
        let offset = text.len() as u32;
        text.push_str(s);
        Span {
            offset,
            len: s.len() as u32,
        }
    };
    let mut metrics = Vec::with_capacity(BATCH);
    let mut packed_dimensions = Vec::new();
    for i in 0..BATCH {
        let name = span("http_request_duration_seconds");
        let first_dimension = packed_dimensions.len() as u32;
        for (key, value) in dimensions(i) {
            packed_dimensions.push(PackedDimension {
                key: span(&key),
                value: span(&value),
            });
        }
        metrics.push(PackedMetric {
            name,
            value: 0.25,
            timestamp_ms: 1_700_000_000_000,
            first_dimension,
            dimension_count: 3,
        });
    }
    let batch = MetricBatch {
        text,
        metrics,
        dimensions: packed_dimensions,
    };
    let component = Component::from_file(engine, SPAN_RECORDS_NOOP).unwrap();
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).unwrap();
    let pre =
        span_records::SpanRecordsPre::new(linker.instantiate_pre(&component).unwrap()).unwrap();
    median_ns_per_metric(|| {
        let mut store = store(engine);
        let plugin = pre.instantiate(&mut store).unwrap();
        let start = Instant::now();
        let verdicts = plugin
            .luminate_span_records_validator()
            .call_validate(&mut store, &batch)
            .unwrap();
        let elapsed = start.elapsed().as_nanos();
        assert_eq!(verdicts.len(), BATCH);
        elapsed
    })
}

fn main() {
    let engine = Engine::default();
    println!("no-op validator, {BATCH} metrics × 3 dimensions, median of {CALLS} calls");
    println!(
        "columnar, the ABI (text + lists of numbers, SDK decode): {:>6} ns/metric",
        bench_columnar(&engine)
    );
    println!(
        "span records      (text + lists of span records):        {:>6} ns/metric",
        bench_span_records(&engine)
    );
    println!(
        "unpacked          (list<metric> of strings):             {:>6} ns/metric",
        bench_unpacked(&engine)
    );
}
