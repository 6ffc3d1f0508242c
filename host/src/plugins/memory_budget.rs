//! The plugin memory budget: how much linear memory all live plugin
//! instances may hold together, and how much of it one tenant's may.
//!
//! Each call's store reserves from its tenant's share and from the
//! server-wide total as its memories grow (see `limits::CallLimiter`) and
//! gives everything back when the store is dropped. Growth past the
//! tenant's share is that tenant's fault, charged to its binding like any
//! memory cap; growth refused only because the server-wide total is in use
//! is not (other tenants hold it), so it fails the call without counting
//! towards quarantine. The per-tenant share keeps one tenant from taking
//! the whole total: with the defaults (1 GiB, 256 MiB a tenant) at least
//! four tenants must use their whole share at once before a fifth is
//! refused anything.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;

use crate::model::TenantId;

#[derive(Debug)]
pub struct MemoryBudget {
    total_limit: u64,
    tenant_limit: u64,
    used: Arc<AtomicU64>,
    tenants: DashMap<TenantId, Arc<AtomicU64>>,
}

/// Why a reservation was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The tenant's share (`plugins.memory_budget_per_tenant_bytes`).
    TenantShare(u64),
    /// The server-wide total (`plugins.memory_budget_bytes`).
    ServerTotal(u64),
}

impl MemoryBudget {
    pub fn new(total_limit: u64, tenant_limit: u64) -> Self {
        Self {
            total_limit,
            tenant_limit: tenant_limit.min(total_limit),
            used: Arc::new(AtomicU64::new(0)),
            tenants: DashMap::new(),
        }
    }

    /// The account one call's store charges; `None` for the operator's
    /// own calls (dry runs of global plugins), which count only towards
    /// the server-wide total.
    pub fn account(&self, tenant: Option<&TenantId>) -> MemoryAccount {
        let tenant = tenant.map(|tenant| {
            let existing = self.tenants.get(tenant).map(|used| used.clone());
            existing.unwrap_or_else(|| self.tenants.entry(tenant.clone()).or_default().clone())
        });
        MemoryAccount {
            total_limit: self.total_limit,
            tenant_limit: self.tenant_limit,
            used: self.used.clone(),
            tenant,
            reserved: 0,
        }
    }

    /// Bytes reserved by live stores now, across tenants.
    pub fn in_use(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }
}

/// One store's reservations; released when dropped (with the store).
#[derive(Debug)]
pub struct MemoryAccount {
    total_limit: u64,
    tenant_limit: u64,
    used: Arc<AtomicU64>,
    tenant: Option<Arc<AtomicU64>>,
    reserved: u64,
}

/// Adds `bytes` to `counter` unless that passes `limit`.
fn reserve(counter: &AtomicU64, bytes: u64, limit: u64) -> bool {
    counter
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
            used.checked_add(bytes).filter(|&after| after <= limit)
        })
        .is_ok()
}

impl MemoryAccount {
    /// An account outside any budget (tests of the limiter alone).
    pub fn unbounded() -> Self {
        MemoryBudget::new(u64::MAX, u64::MAX).account(None)
    }

    /// Reserves `bytes` more, from the tenant's share first.
    pub fn grow(&mut self, bytes: u64) -> Result<(), Refusal> {
        if let Some(tenant) = &self.tenant
            && !reserve(tenant, bytes, self.tenant_limit)
        {
            return Err(Refusal::TenantShare(self.tenant_limit));
        }
        if !reserve(&self.used, bytes, self.total_limit) {
            if let Some(tenant) = &self.tenant {
                tenant.fetch_sub(bytes, Ordering::AcqRel);
            }
            return Err(Refusal::ServerTotal(self.total_limit));
        }
        self.reserved += bytes;
        Ok(())
    }
}

impl Drop for MemoryAccount {
    fn drop(&mut self) {
        if self.reserved == 0 {
            return;
        }
        self.used.fetch_sub(self.reserved, Ordering::AcqRel);
        if let Some(tenant) = &self.tenant {
            tenant.fetch_sub(self.reserved, Ordering::AcqRel);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_is_held_to_its_share_and_everything_is_released_on_drop() {
        let budget = MemoryBudget::new(300, 200);
        let (a, b) = (TenantId::new("a").unwrap(), TenantId::new("b").unwrap());
        let mut first = budget.account(Some(&a));
        first.grow(150).unwrap();
        let mut second = budget.account(Some(&a));
        assert_eq!(second.grow(100), Err(Refusal::TenantShare(200)));
        assert_eq!(budget.in_use(), 150, "a refused growth reserves nothing");
        let mut other = budget.account(Some(&b));
        other.grow(120).unwrap();
        let mut third = budget.account(Some(&b));
        assert_eq!(third.grow(60), Err(Refusal::ServerTotal(300)));
        assert_eq!(budget.in_use(), 270);
        third.grow(30).unwrap();
        drop((first, second, other, third));
        assert_eq!(budget.in_use(), 0);
        budget.account(Some(&a)).grow(200).unwrap();
    }
}
