//! Remembers verified tokens so the hot path skips signature checks.
//!
//! Safety: the key is the whole token string (the hash only picks the
//! bucket), so a hash collision can never return another token's
//! principal; only tokens that fully verified are stored; every hit checks
//! `exp` again (with the same leeway as a full verification), so a cached
//! token stops working exactly when an uncached one would. The cache is
//! bounded: when full, expired entries are dropped, and if that is not
//! enough the cache starts over (a burst of re-verifications, never growth).

use std::sync::Arc;

use dashmap::DashMap;
use xxhash_rust::xxh3::Xxh3DefaultBuilder;

use super::Principal;

pub struct TokenCache {
    entries: DashMap<Box<str>, Arc<Principal>, Xxh3DefaultBuilder>,
    capacity: usize,
    leeway_secs: u64,
}

impl TokenCache {
    pub fn new(capacity: usize, leeway_secs: u64) -> Self {
        Self {
            entries: DashMap::with_hasher(Xxh3DefaultBuilder::new()),
            capacity,
            leeway_secs,
        }
    }

    /// The principal of a token verified earlier and still unexpired at `now`.
    pub fn get(&self, token: &str, now: u64) -> Option<Arc<Principal>> {
        let principal = self.entries.get(token)?.value().clone();
        if self.is_live(&principal, now) {
            Some(principal)
        } else {
            self.entries.remove(token);
            None
        }
    }

    pub fn insert(&self, token: &str, principal: Arc<Principal>, now: u64) {
        if self.capacity == 0 {
            return;
        }
        if self.entries.len() >= self.capacity {
            self.entries.retain(|_, p| self.is_live(p, now));
            if self.entries.len() >= self.capacity {
                self.entries.clear();
            }
        }
        self.entries.insert(token.into(), principal);
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn is_live(&self, principal: &Principal, now: u64) -> bool {
        now <= principal.expires_at.saturating_add(self.leeway_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Scopes;
    use crate::model::TenantId;

    fn principal(tenant: &str, expires_at: u64) -> Arc<Principal> {
        Arc::new(Principal {
            tenant: TenantId::new(tenant).unwrap(),
            scopes: Scopes::all(),
            tier: None,
            org_id: None,
            expires_at,
        })
    }

    #[test]
    fn a_cached_token_expires_like_an_uncached_one() {
        let cache = TokenCache::new(10, 60);
        cache.insert("t1", principal("a", 1000), 900);
        assert!(cache.get("t1", 1000).is_some());
        assert!(cache.get("t1", 1060).is_some(), "within leeway");
        assert!(cache.get("t1", 1061).is_none(), "past exp + leeway");
        assert!(cache.is_empty(), "expired entry is dropped on access");
    }

    #[test]
    fn stays_bounded_and_prefers_dropping_expired_entries() {
        let cache = TokenCache::new(3, 0);
        cache.insert("old", principal("a", 10), 0);
        cache.insert("b", principal("b", 100), 0);
        cache.insert("c", principal("c", 100), 0);
        cache.insert("d", principal("d", 100), 50);
        assert_eq!(cache.len(), 3);
        assert!(cache.get("b", 50).is_some() && cache.get("d", 50).is_some());
        for i in 0..100 {
            cache.insert(&format!("x{i}"), principal("x", 100), 50);
            assert!(cache.len() <= 3);
        }
    }

    #[test]
    fn only_the_exact_token_hits() {
        let cache = TokenCache::new(10, 0);
        cache.insert("token-a", principal("a", 100), 0);
        assert!(cache.get("token-b", 0).is_none());
        assert!(cache.get("token-a ", 0).is_none());
    }

    #[test]
    fn zero_capacity_disables_the_cache() {
        let cache = TokenCache::new(0, 0);
        cache.insert("t", principal("a", 100), 0);
        assert!(cache.get("t", 0).is_none());
    }
}
