//! The per-store resource limiter: the memory cap of one plugin call.
//!
//! wasmtime's own `StoreLimits` would cap memory too, but it cannot tell the
//! host afterwards that the cap was what made the guest fail. A Rust guest
//! whose allocation is refused aborts with a plain `unreachable` trap, so the
//! limiter records the refusal and the runtime reports "memory limit
//! exceeded" instead of an anonymous trap.
//!
//! It also charges every growth to the call's [`MemoryAccount`] (the
//! tenant's share of the server-wide plugin memory budget), released when
//! the store is dropped.

use wasmtime::ResourceLimiter;

use super::memory_budget::{MemoryAccount, Refusal};

/// Most tables a plugin may grow to; generous for any real component.
const MAX_TABLE_ELEMENTS: usize = 100_000;

pub struct CallLimiter {
    max_memory_bytes: usize,
    memory_refused: bool,
    account: MemoryAccount,
    budget_refusal: Option<Refusal>,
}

impl CallLimiter {
    pub fn new(max_memory_bytes: u64, account: MemoryAccount) -> Self {
        Self {
            max_memory_bytes: usize::try_from(max_memory_bytes).unwrap_or(usize::MAX),
            memory_refused: false,
            account,
            budget_refusal: None,
        }
    }

    /// Whether the guest asked for more memory than its cap (or than the
    /// budget had left) during the call.
    pub fn memory_refused(&self) -> bool {
        self.memory_refused
    }

    /// Set when the budget, not the call's own cap, refused a growth.
    pub fn budget_refusal(&self) -> Option<Refusal> {
        self.budget_refusal
    }
}

impl ResourceLimiter for CallLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_memory_bytes {
            self.memory_refused = true;
            return Ok(false);
        }
        let more = desired.saturating_sub(current) as u64;
        if let Err(refusal) = self.account.grow(more) {
            self.memory_refused = true;
            self.budget_refusal = Some(refusal);
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }

    fn instances(&self) -> usize {
        64
    }

    fn tables(&self) -> usize {
        64
    }

    fn memories(&self) -> usize {
        4
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_growth_past_the_cap_and_remembers_it() {
        let mut limiter = CallLimiter::new(1 << 20, MemoryAccount::unbounded());
        assert!(limiter.memory_growing(0, 1 << 20, None).unwrap());
        assert!(!limiter.memory_refused());
        assert!(
            !limiter
                .memory_growing(1 << 20, (1 << 20) + 65_536, None)
                .unwrap()
        );
        assert!(limiter.memory_refused());
        assert_eq!(limiter.budget_refusal(), None);
    }

    #[test]
    fn growth_past_the_tenants_share_is_refused_and_said_so() {
        let budget = super::super::memory_budget::MemoryBudget::new(4 << 20, 2 << 20);
        let tenant = crate::model::TenantId::new("t").unwrap();
        let mut limiter = CallLimiter::new(16 << 20, budget.account(Some(&tenant)));
        assert!(limiter.memory_growing(0, 2 << 20, None).unwrap());
        assert!(!limiter.memory_growing(2 << 20, 3 << 20, None).unwrap());
        assert_eq!(
            limiter.budget_refusal(),
            Some(Refusal::TenantShare(2 << 20))
        );
        drop(limiter);
        assert_eq!(budget.in_use(), 0);
    }
}
