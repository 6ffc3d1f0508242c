//! The background retention sweep: every `retention.sweep_interval`, delete
//! every tenant's points older than `retention.period`.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use crate::storage::MetricsStore;

/// Starts the sweep; it runs once right away (catching up after downtime),
/// then every `interval`, until `shutdown` turns true.
pub fn spawn_sweeper(
    store: Arc<dyn MetricsStore>,
    period: Duration,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let period_ms = i64::try_from(period.as_millis()).unwrap_or(i64::MAX);
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval.max(Duration::from_millis(10)));
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = shutdown.wait_for(|stop| *stop) => return,
            }
            let cutoff_ms = unix_now_ms().saturating_sub(period_ms);
            let started = std::time::Instant::now();
            match store.enforce_retention(cutoff_ms).await {
                Ok(()) => tracing::info!(
                    cutoff_ms,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "retention sweep done"
                ),
                Err(e) => {
                    tracing::warn!(error = %e, "retention sweep failed; will retry next interval")
                }
            }
        }
    })
}

fn unix_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
