//! Failure accounting per plugin version. After `threshold` consecutive
//! failures a plugin is quarantined: the host stops calling it and applies
//! each binding's failure policy as if the call had failed, until a new
//! version is installed (or the operator reinstalls the same one).

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct PluginHealth {
    calls: AtomicU64,
    failures: AtomicU64,
    consecutive_failures: AtomicU32,
    quarantined: AtomicBool,
    last_error: Mutex<Option<String>>,
}

/// A point-in-time copy for listings.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthSnapshot {
    pub calls: u64,
    pub failures: u64,
    pub consecutive_failures: u32,
    pub quarantined: bool,
    pub last_error: Option<String>,
}

impl PluginHealth {
    pub fn is_quarantined(&self) -> bool {
        self.quarantined.load(Ordering::Relaxed)
    }

    pub fn record_success(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.consecutive_failures.store(0, Ordering::Relaxed);
    }

    /// Answers of this version were used without a call (the series
    /// cache): ends a run of failures, counts no call.
    pub fn note_working(&self) {
        if self.consecutive_failures.load(Ordering::Relaxed) != 0 {
            self.consecutive_failures.store(0, Ordering::Relaxed);
        }
    }

    /// Returns true when this failure put the plugin in quarantine.
    pub fn record_failure(&self, error: &str, threshold: u32) -> bool {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.failures.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut last) = self.last_error.lock() {
            *last = Some(error.to_owned());
        }
        let consecutive = self.consecutive_failures.fetch_add(1, Ordering::Relaxed) + 1;
        threshold > 0 && consecutive >= threshold && !self.quarantined.swap(true, Ordering::Relaxed)
    }

    pub fn snapshot(&self) -> HealthSnapshot {
        HealthSnapshot {
            calls: self.calls.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            consecutive_failures: self.consecutive_failures.load(Ordering::Relaxed),
            quarantined: self.is_quarantined(),
            last_error: self.last_error.lock().ok().and_then(|l| l.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quarantines_after_threshold_consecutive_failures_only() {
        let health = PluginHealth::default();
        assert!(!health.record_failure("boom", 3));
        assert!(!health.record_failure("boom", 3));
        health.record_success();
        assert!(!health.record_failure("boom", 3));
        assert!(!health.record_failure("boom", 3));
        health.note_working();
        assert_eq!(health.snapshot().consecutive_failures, 0);
        assert!(!health.record_failure("boom", 3));
        assert!(!health.record_failure("boom", 3));
        assert!(!health.is_quarantined());
        assert!(
            health.record_failure("boom", 3),
            "third in a row quarantines"
        );
        assert!(!health.record_failure("boom", 3), "reported once");
        let snap = health.snapshot();
        assert!(snap.quarantined);
        assert_eq!(snap.failures, 8);
        assert_eq!(snap.calls, 9, "note_working counts no call");
        assert_eq!(snap.last_error.as_deref(), Some("boom"));
    }
}
