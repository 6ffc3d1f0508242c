//! Failure accounting per (tenant, binding) of a plugin version. After
//! `threshold` consecutive failures of one tenant's binding, that binding
//! is quarantined: the host stops calling the plugin for it and applies the
//! binding's failure policy as if the call had failed, until a new version
//! is installed (or the operator reinstalls the same one) or the tenant
//! binds it anew.
//!
//! Health is never shared between tenants: a global plugin one tenant
//! feeds bad params or hostile data fails, and is quarantined, for that
//! tenant only, and its error text is shown to that tenant (and the
//! operator) only.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use dashmap::DashMap;

use crate::model::TenantId;

/// The query path has no binding: a tenant's aggregation calls of one
/// version share this one (binding ids start at 1).
pub const QUERY_PATH: u64 = 0;

/// Where a tenant's replaced bindings' counts go: no binding gets this id.
const RETIRED: u64 = u64::MAX;

/// Which health a call counts towards.
pub type HealthKey = (TenantId, u64);

/// The health of every (tenant, binding) that used one plugin version.
/// When a tenant binds anew its entries fold into one without quarantine
/// ([`retire_tenant`]), so their number is bounded by the bindings that
/// exist plus two per tenant.
///
/// [`retire_tenant`]: BindingHealth::retire_tenant
#[derive(Debug, Default)]
pub struct BindingHealth {
    entries: DashMap<HealthKey, Arc<PluginHealth>>,
}

impl BindingHealth {
    /// The health of one (tenant, binding), created on first use.
    pub fn of(&self, tenant: &TenantId, binding: u64) -> Arc<PluginHealth> {
        // A lookup first: the key is owned, so `entry` would always build one.
        let key = (tenant.clone(), binding);
        if let Some(health) = self.entries.get(&key) {
            return health.clone();
        }
        self.entries.entry(key).or_default().clone()
    }

    pub fn is_quarantined(&self, tenant: &TenantId, binding: u64) -> bool {
        self.entries
            .get(&(tenant.clone(), binding))
            .is_some_and(|h| h.is_quarantined())
    }

    /// A tenant's bindings were replaced, so their ids are not used any
    /// more: their counts and last error fold into one entry that no call
    /// looks up, and their quarantine ends with them. The query path's
    /// entry stays.
    pub fn retire_tenant(&self, tenant: &TenantId) {
        let retired = self.of(tenant, RETIRED);
        self.entries.retain(|(owner, binding), health| {
            let replaced = owner == tenant && *binding != RETIRED && *binding != QUERY_PATH;
            if replaced {
                retired.absorb(health);
            }
            !replaced
        });
    }

    /// Every tenant's use summed up, for the operator.
    pub fn snapshot(&self) -> HealthSnapshot {
        self.summed(|_| true)
    }

    /// One tenant's use only: no count or error text of another tenant.
    pub fn snapshot_for(&self, tenant: &TenantId) -> HealthSnapshot {
        self.summed(|owner| owner == tenant)
    }

    fn summed(&self, include: impl Fn(&TenantId) -> bool) -> HealthSnapshot {
        let mut sum = HealthSnapshot::default();
        let mut latest_error_at = 0;
        for entry in self.entries.iter() {
            if !include(&entry.key().0) {
                continue;
            }
            let one = entry.value().snapshot();
            sum.calls += one.calls;
            sum.failures += one.failures;
            sum.consecutive_failures = sum.consecutive_failures.max(one.consecutive_failures);
            if one.quarantined {
                sum.quarantined = true;
                sum.quarantined_bindings += 1;
            }
            let at = entry.value().last_error_seq.load(Ordering::Relaxed);
            if one.last_error.is_some() && at >= latest_error_at {
                latest_error_at = at;
                sum.last_error = one.last_error;
            }
        }
        sum
    }
}

#[derive(Debug, Default)]
pub struct PluginHealth {
    calls: AtomicU64,
    failures: AtomicU64,
    consecutive_failures: AtomicU32,
    quarantined: AtomicBool,
    last_error: Mutex<Option<String>>,
    /// When `last_error` was set, in [`ERRORS`] order: which of several
    /// bindings' errors is the latest.
    last_error_seq: AtomicU64,
}

/// Orders last errors across bindings.
static ERRORS: AtomicU64 = AtomicU64::new(1);

/// A point-in-time copy for listings.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthSnapshot {
    pub calls: u64,
    pub failures: u64,
    pub consecutive_failures: u32,
    pub quarantined: bool,
    /// How many (tenant, binding)s are quarantined; at most 1 for one.
    pub quarantined_bindings: u32,
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
        self.last_error_seq
            .store(ERRORS.fetch_add(1, Ordering::Relaxed), Ordering::Relaxed);
        let consecutive = self.consecutive_failures.fetch_add(1, Ordering::Relaxed) + 1;
        threshold > 0 && consecutive >= threshold && !self.quarantined.swap(true, Ordering::Relaxed)
    }

    /// Adds `other`'s counts and takes its last error if it is newer.
    fn absorb(&self, other: &PluginHealth) {
        self.calls
            .fetch_add(other.calls.load(Ordering::Relaxed), Ordering::Relaxed);
        self.failures
            .fetch_add(other.failures.load(Ordering::Relaxed), Ordering::Relaxed);
        let at = other.last_error_seq.load(Ordering::Relaxed);
        if at > self.last_error_seq.load(Ordering::Relaxed)
            && let Ok(theirs) = other.last_error.lock()
            && let Ok(mut ours) = self.last_error.lock()
        {
            ours.clone_from(&theirs);
            self.last_error_seq.store(at, Ordering::Relaxed);
        }
    }

    pub fn snapshot(&self) -> HealthSnapshot {
        HealthSnapshot {
            calls: self.calls.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            consecutive_failures: self.consecutive_failures.load(Ordering::Relaxed),
            quarantined: self.is_quarantined(),
            quarantined_bindings: u32::from(self.is_quarantined()),
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

    #[test]
    fn one_tenants_failures_stay_in_its_own_health() {
        let book = BindingHealth::default();
        let (a, b) = (TenantId::new("a").unwrap(), TenantId::new("b").unwrap());
        for _ in 0..3 {
            book.of(&a, 1).record_failure("a's secret", 3);
        }
        book.of(&b, 1).record_success();
        assert!(book.is_quarantined(&a, 1));
        assert!(!book.is_quarantined(&b, 1));
        assert!(!book.is_quarantined(&a, 2), "another binding of a");
        let seen_by_b = book.snapshot_for(&b);
        assert_eq!((seen_by_b.calls, seen_by_b.failures), (1, 0));
        assert!(!seen_by_b.quarantined);
        assert_eq!(seen_by_b.last_error, None);
        let operator = book.snapshot();
        assert_eq!((operator.calls, operator.quarantined_bindings), (4, 1));
        assert_eq!(operator.last_error.as_deref(), Some("a's secret"));
        book.retire_tenant(&a);
        assert!(!book.is_quarantined(&a, 1));
        let retired = book.snapshot_for(&a);
        assert_eq!((retired.calls, retired.failures), (3, 3));
        assert!(!retired.quarantined);
        assert_eq!(retired.last_error.as_deref(), Some("a's secret"));
    }
}
