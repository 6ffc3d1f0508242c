//! Host bindings generated from `plugin-sdk/wit/plugin.wit`, the one ABI
//! file the SDK's guest bindings are generated from too. One module per
//! world; the shared `types` and `host` interfaces are generated once (in
//! `validator_world`) and reused by the others, so one `Linker` serves every
//! plugin kind.

pub mod validator_world {
    wasmtime::component::bindgen!({
        path: "../plugin-sdk/wit",
        world: "validator-plugin",
    });
}

pub mod enricher_world {
    wasmtime::component::bindgen!({
        path: "../plugin-sdk/wit",
        world: "enricher-plugin",
        with: {
            "luminate:plugin/types": super::validator_world::luminate::plugin::types,
            "luminate:plugin/host": super::validator_world::luminate::plugin::host,
        },
    });
}

pub mod aggregator_world {
    wasmtime::component::bindgen!({
        path: "../plugin-sdk/wit",
        world: "aggregator-plugin",
        exports: { default: async },
        with: {
            "luminate:plugin/types": super::validator_world::luminate::plugin::types,
            "luminate:plugin/host": super::validator_world::luminate::plugin::host,
        },
    });
}

pub use aggregator_world::AggregatorPluginPre;
pub use enricher_world::EnricherPluginPre;
pub use validator_world::luminate::plugin::host::{self as host_api, LogLevel};
pub use validator_world::luminate::plugin::types::{
    self as types_api, Enrichment, MetricBatch, PluginError as WitPluginError, Verdict,
};
pub use validator_world::{ValidatorPlugin, ValidatorPluginPre};
