//! Running as many stateless pods over one ClickHouse: the state a single
//! server keeps in its data directory lives in ClickHouse instead
//! (`storage::clickhouse::SharedState`), and each pod follows it.
//!
//! - [`plugin_repository`]: uploaded plugins and binding chains as shared
//!   documents, behind the runtime's `PluginRepository` seam.
//! - [`plugin_sync`]: each pod polls for changes and installs, replaces or
//!   removes uploads and chains, so all pods converge within a poll interval.
//! - [`sketch_store`]: cardinality sketches, one document per tenant and pod,
//!   merged on load, behind the limits' `SketchStore` seam.
//!
//! Only glue lives here: the storage layer sees documents (bytes), the
//! plugin runtime and the limits see their own traits.

pub mod plugin_repository;
pub mod plugin_sync;
pub mod sketch_store;

pub use plugin_repository::ClickHousePluginRepository;
pub use plugin_sync::spawn_plugin_sync;
pub use sketch_store::ClickHouseSketchStore;
