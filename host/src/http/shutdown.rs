//! What stopping the server needs besides the serve loop: the stop signals,
//! and the grace-period clock that bounds the drain and the storage close.
//!
//! The order (see `server::RunningServer::shutdown`): readiness turns false
//! at once; the listener keeps accepting for `lifecycle.drain_delay` so load
//! balancers and Kubernetes endpoints notice the failing `/readyz` first;
//! then the listener closes, in-flight requests finish, background work
//! stops, buffers are flushed and storage is closed. All of it is bounded by
//! `lifecycle.grace_period`, counted from the signal.

use std::time::Duration;

use tokio::time::Instant;

/// Which signal asked the server to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopSignal {
    Terminate,
    Interrupt,
}

/// Resolves on the first SIGTERM or SIGINT (Ctrl-C elsewhere).
pub async fn stop_signal() -> StopSignal {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut terminate), Ok(mut interrupt)) => tokio::select! {
                _ = terminate.recv() => StopSignal::Terminate,
                _ = interrupt.recv() => StopSignal::Interrupt,
            },
            (Err(e), _) | (_, Err(e)) => {
                tracing::error!(error = %e, "cannot install signal handlers; only Ctrl-C stops the server");
                let _ = tokio::signal::ctrl_c().await;
                StopSignal::Interrupt
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        StopSignal::Interrupt
    }
}

/// The end of the grace period.
#[derive(Clone, Copy, Debug)]
pub struct GraceDeadline(Instant);

impl GraceDeadline {
    /// Starts the clock now.
    pub fn start(grace_period: Duration) -> Self {
        Self(Instant::now() + grace_period)
    }

    pub fn instant(self) -> Instant {
        self.0
    }

    /// Time left, but at least `floor`: flushing storage gets a last chance
    /// even when draining used up the whole grace period.
    pub fn remaining_at_least(self, floor: Duration) -> Duration {
        self.0.saturating_duration_since(Instant::now()).max(floor)
    }
}
