//! The per-store resource limiter: the memory cap of one plugin call.
//!
//! wasmtime's own `StoreLimits` would cap memory too, but it cannot tell the
//! host afterwards that the cap was what made the guest fail. A Rust guest
//! whose allocation is refused aborts with a plain `unreachable` trap, so the
//! limiter records the refusal and the runtime reports "memory limit
//! exceeded" instead of an anonymous trap.

use wasmtime::ResourceLimiter;

/// Most tables a plugin may grow to; generous for any real component.
const MAX_TABLE_ELEMENTS: usize = 100_000;

pub struct CallLimiter {
    max_memory_bytes: usize,
    memory_refused: bool,
}

impl CallLimiter {
    pub fn new(max_memory_bytes: u64) -> Self {
        Self {
            max_memory_bytes: usize::try_from(max_memory_bytes).unwrap_or(usize::MAX),
            memory_refused: false,
        }
    }

    /// Whether the guest asked for more memory than its cap during the call.
    pub fn memory_refused(&self) -> bool {
        self.memory_refused
    }
}

impl ResourceLimiter for CallLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_memory_bytes {
            self.memory_refused = true;
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
        let mut limiter = CallLimiter::new(1 << 20);
        assert!(limiter.memory_growing(0, 1 << 20, None).unwrap());
        assert!(!limiter.memory_refused());
        assert!(
            !limiter
                .memory_growing(1 << 20, (1 << 20) + 65_536, None)
                .unwrap()
        );
        assert!(limiter.memory_refused());
    }
}
