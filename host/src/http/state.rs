use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::config::ApiConfig;
use crate::model::TenantId;
use crate::pipeline::{ReadPipeline, WritePipeline};
use crate::storage::MetricsStore;

/// What every handler can reach. Cheap to clone (a few `Arc`s); subsystems
/// that join later (auth, limits, plugins, telemetry) add one field each.
#[derive(Clone)]
pub struct AppState {
    pub writes: Arc<WritePipeline>,
    pub reads: Arc<ReadPipeline>,
    pub store: Arc<dyn MetricsStore>,
    pub api: Arc<ApiConfig>,
    /// The tenant every request acts for until authentication decides it.
    pub default_tenant: TenantId,
    pub lifecycle: Arc<Lifecycle>,
    pub plugins: Arc<crate::plugins::PluginRuntime>,
    /// Authentication, scopes and request-rate limits (route layers).
    pub access: super::auth::AccessControl,
    /// Series estimates for `GET /api/v1/cardinality`; persisted on shutdown.
    pub cardinality: Arc<crate::limits::CardinalityTracker>,
    pub cardinality_top_n: usize,
    /// The server's bounds on a PromQL query (`[promql]`), before the
    /// caller's tier lowers them.
    pub promql: crate::promql::PromqlLimits,
}

/// Startup and shutdown flags the probes report.
#[derive(Debug, Default)]
pub struct Lifecycle {
    started: AtomicBool,
    draining: AtomicBool,
}

impl Lifecycle {
    /// Initialisation is done: storage is open and the listener is bound.
    pub fn mark_started(&self) {
        self.started.store(true, Ordering::Release);
    }

    pub fn is_started(&self) -> bool {
        self.started.load(Ordering::Acquire)
    }

    /// Shutdown has begun: readiness turns false so load balancers move away.
    pub fn mark_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }
}
