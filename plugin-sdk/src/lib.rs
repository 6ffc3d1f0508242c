//! Write Luminate plugins as plain Rust.
//!
//! A plugin is a WebAssembly component that the Luminate server runs in a
//! sandbox. With this crate you never see the component model: implement one
//! of three traits and call its export macro once.
//!
//! | you write | trait | macro | runs on |
//! | --- | --- | --- | --- |
//! | a policy check | [`Validator`] | [`export_validator!`] | the write path, after built-in validation |
//! | extra dimensions | [`Enricher`] | [`export_enricher!`] | the write path, after the validators |
//! | a custom aggregate | [`Aggregator`] | [`export_aggregator!`] | the query path, per group |
//!
//! ```
//! use luminate_plugin_sdk::{export_validator, Config, Metric, Validator, Verdict};
//!
//! struct RequireTeam { key: String }
//!
//! impl Validator for RequireTeam {
//!     fn new(config: &Config) -> Result<Self, String> {
//!         Ok(Self { key: config.get("key").unwrap_or("team").to_string() })
//!     }
//!     fn validate(&self, m: &Metric) -> Verdict {
//!         match m.dimension(&self.key) {
//!             Some(_) => Verdict::Accept,
//!             None => Verdict::reject(format!("{} needs a '{}' dimension", m.name, self.key)),
//!         }
//!     }
//! }
//! export_validator!(RequireTeam);
//! # fn main() {}
//! ```
//!
//! Build it with `cargo build --target wasm32-wasip2 --release`; the
//! `.wasm` file under `target/wasm32-wasip2/release/` is the plugin. Test it
//! natively with `cargo test` through [`testing`]: on non-wasm targets the
//! host is never called (logs go to stderr, params are what the test passes).
//!
//! The crate embeds the ABI version ([`ABI_VERSION`]) in every plugin so the
//! server refuses a plugin built for another ABI before running it; see
//! [`abi`].

pub mod abi;
mod aggregator;
mod batch;
mod config;
mod enricher;
mod export;
mod host;
pub mod log;
mod metric;
pub mod state;
pub mod testing;
mod validator;
mod verdict;

pub use abi::ABI_VERSION;
pub use aggregator::Aggregator;
pub use config::Config;
pub use enricher::Enricher;
pub use metric::{Dimension, Metric, Sample};
pub use state::State;
pub use validator::Validator;
pub use verdict::{PluginError, Verdict};

/// What the export macros expand to. Not part of the API: it changes with
/// the generated bindings.
#[doc(hidden)]
pub mod __private {
    pub use crate::abi::abi_version_bytes;
    pub use crate::export::bindings::{aggregator, enricher, validator};
    pub use crate::export::glue::*;
}
