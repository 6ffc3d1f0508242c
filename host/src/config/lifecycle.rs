use serde::{Deserialize, Serialize};

use super::ConfigDuration;

/// `[lifecycle]`: how the server stops.
///
/// On SIGTERM or SIGINT, readiness turns false at once; the listener keeps
/// accepting for `drain_delay` (so load balancers and Kubernetes endpoints
/// stop routing here first), then stops accepting, lets in-flight requests
/// finish, flushes buffers and closes storage. All of that must fit in
/// `grace_period`, measured from the signal; keep it below the orchestrator's
/// own kill timeout (Kubernetes `terminationGracePeriodSeconds`).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LifecycleConfig {
    pub grace_period: ConfigDuration,
    /// Unset: close the listener as soon as the signal arrives.
    pub drain_delay: Option<ConfigDuration>,
}

impl LifecycleConfig {
    pub fn drain_delay(&self) -> std::time::Duration {
        self.drain_delay
            .map(ConfigDuration::get)
            .unwrap_or_default()
    }
}

impl Default for LifecycleConfig {
    fn default() -> Self {
        Self {
            grace_period: ConfigDuration::from_millis(30_000),
            drain_delay: None,
        }
    }
}
