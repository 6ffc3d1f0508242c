//! Per-tenant request and ingest rate limits: one GCRA token bucket
//! (crate `governor`) per tenant and kind of limit. Buckets are independent
//! atomics, so a tenant far over its quota costs the others one failed
//! compare-and-swap of its own, never a shared lock.
//!
//! A bucket belongs to the tenant, not to the tier its token claims: every
//! bucket holds one second of budget, counted in nanoseconds, and the tier
//! only sets what a unit costs (`1 s / quota`). A quota's burst is its rate,
//! so a full bucket is one second of any tier's quota. Switching between
//! tokens with different tiers therefore never refills anything: the budget
//! spent under one tier is spent under the other, and alternating tiers
//! gets at most the larger tier's rate.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use governor::Quota;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::{InMemoryState, NotKeyed};

use super::config::{Limit, LimitsConfig, MAX_RATE, ResolvedLimits};
use crate::model::TenantId;

type Bucket =
    governor::RateLimiter<NotKeyed, InMemoryState, DefaultClock, StateInformationMiddleware>;

/// A bucket's capacity: one second, in nanoseconds (the cells it meters).
const BUDGET_NANOS: u32 = 1_000_000_000;

/// Which rate a decision is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateKind {
    WriteRequests,
    QueryRequests,
    Metrics,
}

impl RateKind {
    /// The name used in errors and in the `RateLimit-Policy` header.
    pub fn name(self) -> &'static str {
        match self {
            RateKind::WriteRequests => "write_requests",
            RateKind::QueryRequests => "query_requests",
            RateKind::Metrics => "metrics",
        }
    }

    /// The config field that sets it.
    pub fn setting(self) -> &'static str {
        match self {
            RateKind::WriteRequests => "write_requests_per_second",
            RateKind::QueryRequests => "query_requests_per_second",
            RateKind::Metrics => "metrics_per_second",
        }
    }
}

/// A positive decision, with what is left (for `RateLimit` headers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Allowance {
    pub kind: RateKind,
    /// Units per second; `None` when the tenant's tier has no such limit.
    pub quota: Option<u32>,
    pub remaining: u32,
    /// Time until the bucket is full again.
    pub reset: Duration,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RateLimitError {
    #[error("{} rate limit exceeded: tier {tier:?} allows {quota} per second; retry in {:.3} s", kind.name(), retry_after.as_secs_f64())]
    Exceeded {
        kind: RateKind,
        quota: u32,
        tier: Arc<str>,
        retry_after: Duration,
    },
    #[error(
        "a batch of {requested} metrics can never fit: tier {tier:?} allows {quota} metrics per second (the bucket's burst); send batches of at most {quota}"
    )]
    BatchTooLarge {
        requested: usize,
        quota: u32,
        tier: Arc<str>,
    },
}

/// A tenant's budgets, one per kind, whatever tier its tokens claim.
struct Buckets {
    write_requests: Bucket,
    query_requests: Bucket,
    metrics: Bucket,
}

impl Buckets {
    fn new() -> Self {
        let second = || {
            let quota = Quota::per_second(NonZeroU32::new(BUDGET_NANOS).unwrap_or(NonZeroU32::MIN));
            governor::RateLimiter::direct(quota).with_middleware::<StateInformationMiddleware>()
        };
        Self {
            write_requests: second(),
            query_requests: second(),
            metrics: second(),
        }
    }
}

/// A tenant's buckets and the limits of the token that last used them.
pub struct TenantRates {
    pub resolved: ResolvedLimits,
    tier_claim: Option<Arc<str>>,
    buckets: Arc<Buckets>,
}

impl TenantRates {
    /// Takes one request of `kind` (`WriteRequests` or `QueryRequests`).
    pub fn check_request(&self, kind: RateKind) -> Result<Allowance, RateLimitError> {
        self.take(kind, 1)
    }

    /// Takes `count` metrics from the ingest bucket: a batch costs its size.
    pub fn check_metrics(&self, count: usize) -> Result<Allowance, RateLimitError> {
        self.take(RateKind::Metrics, count)
    }

    fn take(&self, kind: RateKind, count: usize) -> Result<Allowance, RateLimitError> {
        let l = &self.resolved.limits;
        let (bucket, limit) = match kind {
            RateKind::WriteRequests => (&self.buckets.write_requests, l.write_requests_per_second),
            RateKind::QueryRequests => (&self.buckets.query_requests, l.query_requests_per_second),
            RateKind::Metrics => (&self.buckets.metrics, l.metrics_per_second),
        };
        let Some(quota) = per_second(limit) else {
            return Ok(Allowance {
                kind,
                quota: None,
                remaining: u32::MAX,
                reset: Duration::ZERO,
            });
        };
        // At least 1: quotas are at most MAX_RATE = one per nanosecond.
        let unit_cost = (BUDGET_NANOS / quota).max(1);
        let too_large = || RateLimitError::BatchTooLarge {
            requested: count,
            quota,
            tier: self.resolved.tier.clone(),
        };
        if count == 0 {
            return Ok(Allowance {
                kind,
                quota: Some(quota),
                remaining: quota,
                reset: Duration::ZERO,
            });
        }
        // More units than the quota never fit in one second of budget.
        let Some(cells) = u32::try_from(count)
            .ok()
            .filter(|n| *n <= quota)
            .and_then(|n| n.checked_mul(unit_cost))
            .and_then(NonZeroU32::new)
        else {
            return Err(too_large());
        };
        match bucket.check_n(cells) {
            Ok(Ok(snapshot)) => {
                let left = snapshot.remaining_burst_capacity();
                Ok(Allowance {
                    kind,
                    quota: Some(quota),
                    remaining: left / unit_cost,
                    reset: Duration::from_nanos(u64::from(BUDGET_NANOS.saturating_sub(left))),
                })
            }
            Ok(Err(not_until)) => Err(RateLimitError::Exceeded {
                kind,
                quota,
                tier: self.resolved.tier.clone(),
                retry_after: not_until.wait_time_from(bucket.clock().now()),
            }),
            Err(_insufficient_capacity) => Err(too_large()),
        }
    }
}

/// A finite limit as units per second; `None` for unlimited.
fn per_second(limit: Limit) -> Option<u32> {
    let per_second = limit.max()?;
    // Validated to 1..=MAX_RATE; clamp rather than panic if it was not.
    Some(u32::try_from(per_second.clamp(1, MAX_RATE)).unwrap_or(BUDGET_NANOS))
}

/// All tenants' buckets.
pub struct RateLimiter {
    config: Arc<LimitsConfig>,
    tenants: DashMap<TenantId, Arc<TenantRates>>,
}

impl RateLimiter {
    pub fn new(config: Arc<LimitsConfig>) -> Self {
        Self {
            config,
            tenants: DashMap::new(),
        }
    }

    /// The buckets of `tenant` for a token with `tier_claim`. A token with a
    /// different tier claim than the last one re-resolves the limits (the
    /// cost of a unit); the buckets, and what is left in them, stay.
    pub fn tenant(&self, tenant: &TenantId, tier_claim: Option<&str>) -> Arc<TenantRates> {
        if let Some(rates) = self.tenants.get(tenant)
            && rates.tier_claim.as_deref() == tier_claim
        {
            return rates.clone();
        }
        let resolved = self.config.resolve(tenant.as_str(), tier_claim);
        let mut entry = self.tenants.entry(tenant.clone()).or_insert_with(|| {
            Arc::new(TenantRates {
                resolved: resolved.clone(),
                tier_claim: tier_claim.map(Arc::from),
                buckets: Arc::new(Buckets::new()),
            })
        });
        if entry.tier_claim.as_deref() != tier_claim {
            let buckets = entry.buckets.clone();
            *entry = Arc::new(TenantRates {
                resolved,
                tier_claim: tier_claim.map(Arc::from),
                buckets,
            });
        }
        entry.clone()
    }

    /// The buckets `tenant` was last resolved with (by its latest request),
    /// or those of a token without a tier claim.
    pub fn current(&self, tenant: &TenantId) -> Arc<TenantRates> {
        match self.tenants.get(tenant) {
            Some(rates) => rates.clone(),
            None => self.tenant(tenant, None),
        }
    }

    pub fn config(&self) -> &LimitsConfig {
        &self.config
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::config::{TenantOverride, TierLimits, UNLIMITED_TIER};

    fn tenant(id: &str) -> TenantId {
        TenantId::new(id).unwrap()
    }

    fn limiter() -> RateLimiter {
        let mut c = LimitsConfig::default();
        c.tiers.insert(
            "tiny".into(),
            TierLimits {
                write_requests_per_second: Limit::Max(3),
                query_requests_per_second: Limit::Max(2),
                metrics_per_second: Limit::Max(10),
                ..TierLimits::default()
            },
        );
        c.tenants.insert(
            "vip".into(),
            TenantOverride {
                write_requests_per_second: Some(Limit::Max(5)),
                ..Default::default()
            },
        );
        c.tiers.insert(
            "small".into(),
            TierLimits {
                write_requests_per_second: Limit::Max(5),
                query_requests_per_second: Limit::Max(5),
                metrics_per_second: Limit::Max(50),
                ..TierLimits::default()
            },
        );
        RateLimiter::new(Arc::new(c))
    }

    #[test]
    fn alternating_tier_claims_gets_no_more_than_the_larger_tiers_burst() {
        let l = limiter();
        let a = tenant("a");
        let mut accepted = 0;
        for i in 0..200 {
            let claim = if i % 2 == 0 { "tiny" } else { "small" };
            if l.tenant(&a, Some(claim))
                .check_request(RateKind::WriteRequests)
                .is_ok()
            {
                accepted += 1;
            }
        }
        // "small" allows 5 per second, "tiny" 3: the budget is one second of
        // either, so 5 is the most any mix can take at once.
        assert!((3..=5).contains(&accepted), "accepted {accepted}");
        let mut metrics = 0;
        for i in 0..200 {
            let claim = if i % 2 == 0 { "tiny" } else { "small" };
            if l.tenant(&a, Some(claim)).check_metrics(5).is_ok() {
                metrics += 5;
            }
        }
        assert!((10..=50).contains(&metrics), "metrics {metrics}");
    }

    #[test]
    fn switching_to_a_larger_tier_keeps_the_spent_budget() {
        let l = limiter();
        let a = tenant("a");
        let tiny = l.tenant(&a, Some("tiny"));
        while tiny.check_request(RateKind::QueryRequests).is_ok() {}
        let small = l.tenant(&a, Some("small"));
        let err = small.check_request(RateKind::QueryRequests).unwrap_err();
        assert!(
            matches!(err, RateLimitError::Exceeded { quota: 5, ref tier, .. } if &**tier == "small"),
            "{err:?}"
        );
        // Spending under the larger tier leaves the smaller one nothing either.
        let b = tenant("b");
        for _ in 0..5 {
            l.tenant(&b, Some("small"))
                .check_request(RateKind::WriteRequests)
                .unwrap();
        }
        assert!(
            l.tenant(&b, Some("tiny"))
                .check_request(RateKind::WriteRequests)
                .is_err()
        );
    }

    #[test]
    fn requests_beyond_the_burst_are_refused_with_a_retry_time() {
        let l = limiter();
        let t = l.tenant(&tenant("a"), Some("tiny"));
        for expected_remaining in [2, 1, 0] {
            assert_eq!(
                t.check_request(RateKind::WriteRequests).unwrap().remaining,
                expected_remaining
            );
        }
        match t.check_request(RateKind::WriteRequests).unwrap_err() {
            RateLimitError::Exceeded {
                kind,
                quota,
                retry_after,
                tier,
            } => {
                assert_eq!((kind, quota, &*tier), (RateKind::WriteRequests, 3, "tiny"));
                assert!(retry_after > Duration::ZERO && retry_after <= Duration::from_millis(334));
            }
            other => panic!("{other:?}"),
        }
        // The query bucket is separate.
        assert!(t.check_request(RateKind::QueryRequests).is_ok());
    }

    #[test]
    fn a_batch_costs_its_size_and_one_over_the_burst_never_fits() {
        let l = limiter();
        let t = l.tenant(&tenant("a"), Some("tiny"));
        assert_eq!(t.check_metrics(7).unwrap().remaining, 3);
        assert!(matches!(
            t.check_metrics(4),
            Err(RateLimitError::Exceeded { .. })
        ));
        let err = t.check_metrics(11).unwrap_err();
        assert!(matches!(
            err,
            RateLimitError::BatchTooLarge {
                requested: 11,
                quota: 10,
                ..
            }
        ));
        assert!(err.to_string().contains("at most 10"), "{err}");
    }

    #[test]
    fn tenants_have_separate_buckets() {
        let l = limiter();
        let a = l.tenant(&tenant("a"), Some("tiny"));
        while a.check_request(RateKind::WriteRequests).is_ok() {}
        let b = l.tenant(&tenant("b"), Some("tiny"));
        for _ in 0..3 {
            b.check_request(RateKind::WriteRequests).unwrap();
        }
    }

    #[test]
    fn unlimited_tier_never_refuses() {
        let l = limiter();
        let t = l.tenant(&tenant("a"), Some(UNLIMITED_TIER));
        for _ in 0..10_000 {
            t.check_request(RateKind::WriteRequests).unwrap();
        }
        assert_eq!(t.check_metrics(usize::MAX).unwrap().quota, None);
    }

    #[test]
    fn overrides_win_and_switching_tokens_does_not_refill_buckets() {
        let l = limiter();
        let vip = l.tenant(&tenant("vip"), None);
        assert_eq!(
            vip.check_request(RateKind::WriteRequests).unwrap().quota,
            Some(5)
        );

        // "vip" resolves to the same limits whatever its token's tier claim
        // (the override pins write requests; the claim picks the rest, which
        // for both of these claims is the default tier's).
        let with_claim = l.tenant(&tenant("vip"), Some("free"));
        for _ in 0..4 {
            with_claim.check_request(RateKind::WriteRequests).unwrap();
        }
        let again = l.tenant(&tenant("vip"), None);
        assert!(
            again.check_request(RateKind::WriteRequests).is_err(),
            "bucket was not refilled"
        );

        // A claim that changes the limits re-resolves them, but the bucket
        // keeps what was spent.
        let pro = l.tenant(&tenant("vip"), Some("pro"));
        assert_eq!(pro.resolved.limits.metrics_per_second, Limit::Max(100_000));
        match pro.check_request(RateKind::WriteRequests) {
            Err(RateLimitError::Exceeded { quota: 5, .. }) => {}
            other => panic!("a tier switch refilled the bucket: {other:?}"),
        }
    }
}
