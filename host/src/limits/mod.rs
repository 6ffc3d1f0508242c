//! Per-tenant limits: request and ingest rates, series cardinality.
//!
//! - [`config`]: the `[limits]` section: tiers (`free`, `pro`,
//!   `enterprise`, `unlimited`), the default tier, per-tenant overrides.
//! - [`rate`]: token buckets (governor) per tenant for write requests,
//!   query requests and metrics.
//! - [`cardinality`]: series limits and estimates (HyperLogLog).
//! - [`sketch`]: the HyperLogLog++ sketch wrapper.
//! - [`tracked`]: one tenant's sketches, split between the write path
//!   and the counting/persisting side.
//! - [`store`]: the [`SketchStore`] seam that persists sketches.
//! - [`stage`]: cardinality limits as a write-pipeline stage.
//!
//! Nothing here knows HTTP: errors are typed and mapped in `http/`.

pub mod cardinality;
pub mod config;
pub mod rate;
pub mod sketch;
pub mod stage;
pub mod store;
mod tracked;

pub use cardinality::{CardinalityError, CardinalityReport, CardinalityTracker, Estimate};
pub use config::{Limit, LimitsConfig, ResolvedLimits, TenantOverride, TierLimits, UNLIMITED_TIER};
pub use rate::{Allowance, RateKind, RateLimitError, RateLimiter, TenantRates};
pub use stage::CardinalityStage;
pub use store::{
    FileSketchStore, MemorySketchStore, SketchChanges, SketchStore, SketchStoreError,
    TenantSketches,
};
