//! The `[limits]` configuration section: quota tiers, per-tenant overrides
//! and cardinality tracking.
//!
//! ```toml
//! [limits]
//! default_tier = "free"              # for tokens without a `tier` claim
//!
//! [limits.tiers.pro]                 # tweak a shipped tier or define a new one;
//! metrics_per_second = 200000        # missing fields take the design defaults
//! max_series_per_metric = "unlimited"
//!
//! [limits.tenants.acme]              # per-tenant overrides win over any tier
//! tier = "enterprise"
//! max_series_per_tenant = 50000000
//! ```
//!
//! A limit is a positive number or `"unlimited"`.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::config::ConfigDuration;

/// Highest finite rate: governor meters cells in nanoseconds.
pub const MAX_RATE: u64 = 1_000_000_000;

/// The tier shipped for internal tenants and benchmarks: no limits at all.
pub const UNLIMITED_TIER: &str = "unlimited";

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Limit {
    Unlimited,
    Max(u64),
}

impl Limit {
    pub fn max(self) -> Option<u64> {
        match self {
            Limit::Unlimited => None,
            Limit::Max(n) => Some(n),
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Limit::Unlimited => f.write_str(UNLIMITED_TIER),
            Limit::Max(n) => write!(f, "{n}"),
        }
    }
}

impl Serialize for Limit {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Limit::Unlimited => s.serialize_str(UNLIMITED_TIER),
            Limit::Max(n) => s.serialize_u64(*n),
        }
    }
}

impl<'de> Deserialize<'de> for Limit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(n) => Ok(Limit::Max(n)),
            Raw::Text(t) if t == UNLIMITED_TIER => Ok(Limit::Unlimited),
            Raw::Text(t) => t.parse().map(Limit::Max).map_err(|_| {
                serde::de::Error::custom(format!(
                    "a limit must be a non-negative number or \"unlimited\", got {t:?}"
                ))
            }),
        }
    }
}

/// The quotas of one tier.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct TierLimits {
    /// `POST /api/v1/write` requests per second (also the burst).
    pub write_requests_per_second: Limit,
    /// Query, discovery and cardinality requests per second (also the burst).
    pub query_requests_per_second: Limit,
    /// Metrics written per second; a batch costs its size, and a batch
    /// larger than this (the burst) is refused outright.
    pub metrics_per_second: Limit,
    /// Distinct series (metric name + dimensions) per tenant.
    pub max_series_per_tenant: Limit,
    /// Distinct series per (tenant, metric name).
    pub max_series_per_metric: Limit,
    /// Series one PromQL query may read or compute; `"unlimited"` leaves
    /// the server's `promql.max_series`, which no tier can raise.
    pub promql_max_series: Limit,
    /// Samples one PromQL query may hold: raw points read, and series ×
    /// steps of any result (`promql.max_samples` above it).
    pub promql_max_samples: Limit,
    /// Seconds one PromQL query may run (`promql.timeout` above it).
    pub promql_timeout_seconds: Limit,
}

impl Default for TierLimits {
    /// The design's defaults (the `free` tier).
    fn default() -> Self {
        Self {
            write_requests_per_second: Limit::Max(100),
            query_requests_per_second: Limit::Max(50),
            metrics_per_second: Limit::Max(10_000),
            max_series_per_tenant: Limit::Max(100_000),
            max_series_per_metric: Limit::Max(20_000),
            promql_max_series: Limit::Max(10_000),
            promql_max_samples: Limit::Max(5_000_000),
            promql_timeout_seconds: Limit::Max(30),
        }
    }
}

impl TierLimits {
    pub fn unlimited() -> Self {
        Self {
            write_requests_per_second: Limit::Unlimited,
            query_requests_per_second: Limit::Unlimited,
            metrics_per_second: Limit::Unlimited,
            max_series_per_tenant: Limit::Unlimited,
            max_series_per_metric: Limit::Unlimited,
            promql_max_series: Limit::Unlimited,
            promql_max_samples: Limit::Unlimited,
            promql_timeout_seconds: Limit::Unlimited,
        }
    }

    /// The design's defaults with every quota `factor` times larger; the
    /// PromQL timeout is left to the server's.
    fn scaled(factor: u64) -> Self {
        let d = Self::default();
        let scale = |l: Limit| match l {
            Limit::Max(n) => Limit::Max(n * factor),
            Limit::Unlimited => Limit::Unlimited,
        };
        Self {
            write_requests_per_second: scale(d.write_requests_per_second),
            query_requests_per_second: scale(d.query_requests_per_second),
            metrics_per_second: scale(d.metrics_per_second),
            max_series_per_tenant: scale(d.max_series_per_tenant),
            max_series_per_metric: scale(d.max_series_per_metric),
            promql_max_series: scale(d.promql_max_series),
            promql_max_samples: scale(d.promql_max_samples),
            promql_timeout_seconds: Limit::Unlimited,
        }
    }
}

/// Per-tenant settings; every field set here wins over the tenant's tier.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct TenantOverride {
    /// Forces this tier whatever the token's `tier` claim says.
    pub tier: Option<String>,
    pub write_requests_per_second: Option<Limit>,
    pub query_requests_per_second: Option<Limit>,
    pub metrics_per_second: Option<Limit>,
    pub max_series_per_tenant: Option<Limit>,
    pub max_series_per_metric: Option<Limit>,
    pub promql_max_series: Option<Limit>,
    pub promql_max_samples: Option<Limit>,
    pub promql_timeout_seconds: Option<Limit>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct CardinalityConfig {
    /// How often changed sketches are written to the sketch store.
    pub persist_interval: ConfigDuration,
    /// Bound on the exact set of series fingerprints kept per tenant
    /// (8 bytes each, about 16 with the set's overhead). Beyond it, new
    /// series are detected by their effect on the HyperLogLog alone.
    pub max_tracked_series_per_tenant: usize,
    /// Metric names per tenant with their own series sketch (about 300
    /// bytes each while small, up to 12 KiB). A new series of one more name
    /// is refused with code `max_tracked_metrics_per_tenant`.
    pub max_tracked_metrics_per_tenant: usize,
    /// Dimension keys per tenant with their own distinct-values sketch
    /// (same size). Further keys are counted together: their distinct
    /// names and their distinct key=value pairs, in two sketches.
    pub max_tracked_keys_per_tenant: usize,
    /// Default number of entries `GET /api/v1/cardinality` returns per list.
    pub report_top_n: usize,
}

impl Default for CardinalityConfig {
    fn default() -> Self {
        Self {
            persist_interval: ConfigDuration::from_millis(10_000),
            max_tracked_series_per_tenant: 10_000_000,
            max_tracked_metrics_per_tenant: 50_000,
            max_tracked_keys_per_tenant: 10_000,
            report_top_n: 20,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// When false, no tenant has rate or cardinality limits and series are
    /// not tracked (benchmark baselines, trusted single-tenant setups).
    pub enabled: bool,
    /// The tier of tokens without a `tier` claim.
    pub default_tier: String,
    pub tiers: BTreeMap<String, TierLimits>,
    /// Per-tenant overrides, by tenant id.
    pub tenants: BTreeMap<String, TenantOverride>,
    pub cardinality: CardinalityConfig,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        let tiers = BTreeMap::from([
            ("free".to_owned(), TierLimits::default()),
            ("pro".to_owned(), TierLimits::scaled(10)),
            ("enterprise".to_owned(), TierLimits::scaled(100)),
            (UNLIMITED_TIER.to_owned(), TierLimits::unlimited()),
        ]);
        Self {
            enabled: true,
            default_tier: "free".into(),
            tiers,
            tenants: BTreeMap::new(),
            cardinality: CardinalityConfig::default(),
        }
    }
}

impl LimitsConfig {
    /// Every tenant on the `unlimited` tier, whatever tokens say.
    pub fn disabled() -> Self {
        Self {
            enabled: false,
            default_tier: UNLIMITED_TIER.into(),
            tiers: BTreeMap::from([(UNLIMITED_TIER.to_owned(), TierLimits::unlimited())]),
            tenants: BTreeMap::new(),
            cardinality: CardinalityConfig::default(),
        }
    }
}

/// A tenant's effective quotas and where they came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedLimits {
    pub tier: Arc<str>,
    pub limits: TierLimits,
}

impl LimitsConfig {
    /// Checks what serde cannot: tiers named anywhere exist, rates fit.
    pub fn validate(&self) -> Result<(), String> {
        if !self.tiers.contains_key(&self.default_tier) {
            return Err(format!(
                "limits.default_tier {:?} is not a tier in limits.tiers ({})",
                self.default_tier,
                self.tiers.keys().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
        let check_rate = |place: &str, l: Option<Limit>| match l {
            Some(Limit::Max(n)) if n == 0 || n > MAX_RATE => Err(format!(
                "{place}: a rate must be between 1 and {MAX_RATE} per second or \"unlimited\""
            )),
            _ => Ok(()),
        };
        for (name, t) in &self.tiers {
            let place = format!("limits.tiers.{name}");
            check_rate(&place, Some(t.write_requests_per_second))?;
            check_rate(&place, Some(t.query_requests_per_second))?;
            check_rate(&place, Some(t.metrics_per_second))?;
        }
        for (tenant, o) in &self.tenants {
            let place = format!("limits.tenants.{tenant}");
            if let Some(tier) = &o.tier
                && !self.tiers.contains_key(tier)
            {
                return Err(format!(
                    "{place}.tier {tier:?} is not a tier in limits.tiers"
                ));
            }
            check_rate(&place, o.write_requests_per_second)?;
            check_rate(&place, o.query_requests_per_second)?;
            check_rate(&place, o.metrics_per_second)?;
        }
        if self.cardinality.max_tracked_metrics_per_tenant == 0 {
            return Err(
                "limits.cardinality.max_tracked_metrics_per_tenant must be positive".into(),
            );
        }
        if self.cardinality.persist_interval.get().is_zero() {
            return Err("limits.cardinality.persist_interval must be positive".into());
        }
        Ok(())
    }

    /// The limits for `tenant` presenting a token with `tier_claim`:
    /// tenant override's tier, else the claim's tier, else the default tier;
    /// then the override's individual fields on top.
    pub fn resolve(&self, tenant: &str, tier_claim: Option<&str>) -> ResolvedLimits {
        let overrides = self.tenants.get(tenant);
        let wanted = overrides
            .and_then(|o| o.tier.as_deref())
            .or(tier_claim)
            .unwrap_or(&self.default_tier);
        let (tier, base) = match self.tiers.get_key_value(wanted) {
            Some((name, limits)) => (name.as_str(), limits),
            None => {
                tracing::warn!(tenant, tier = wanted, default = %self.default_tier,
                    "token names an unknown tier; using the default tier");
                let name = self.default_tier.as_str();
                (name, self.tiers.get(name).unwrap_or(&FALLBACK))
            }
        };
        let mut limits = base.clone();
        if let Some(o) = overrides {
            let set = |field: &mut Limit, value: Option<Limit>| {
                if let Some(v) = value {
                    *field = v;
                }
            };
            set(
                &mut limits.write_requests_per_second,
                o.write_requests_per_second,
            );
            set(
                &mut limits.query_requests_per_second,
                o.query_requests_per_second,
            );
            set(&mut limits.metrics_per_second, o.metrics_per_second);
            set(&mut limits.max_series_per_tenant, o.max_series_per_tenant);
            set(&mut limits.max_series_per_metric, o.max_series_per_metric);
            set(&mut limits.promql_max_series, o.promql_max_series);
            set(&mut limits.promql_max_samples, o.promql_max_samples);
            set(&mut limits.promql_timeout_seconds, o.promql_timeout_seconds);
        }
        ResolvedLimits {
            tier: Arc::from(tier),
            limits,
        }
    }
}

/// Used only if validation was skipped and the default tier is missing.
static FALLBACK: TierLimits = TierLimits {
    write_requests_per_second: Limit::Max(100),
    query_requests_per_second: Limit::Max(50),
    metrics_per_second: Limit::Max(10_000),
    max_series_per_tenant: Limit::Max(100_000),
    max_series_per_metric: Limit::Max(20_000),
    promql_max_series: Limit::Max(10_000),
    promql_max_samples: Limit::Max(5_000_000),
    promql_timeout_seconds: Limit::Max(30),
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ships_free_pro_enterprise_and_unlimited_tiers() {
        let c = LimitsConfig::default();
        c.validate().unwrap();
        assert_eq!(c.tiers["free"].write_requests_per_second, Limit::Max(100));
        assert_eq!(c.tiers["free"].query_requests_per_second, Limit::Max(50));
        assert_eq!(c.tiers["free"].metrics_per_second, Limit::Max(10_000));
        assert_eq!(c.tiers[UNLIMITED_TIER], TierLimits::unlimited());
        assert!(c.tiers["pro"].metrics_per_second > c.tiers["free"].metrics_per_second);
    }

    #[test]
    fn claim_picks_tier_and_tenant_override_wins() {
        let mut c = LimitsConfig::default();
        c.tenants.insert(
            "acme".into(),
            TenantOverride {
                metrics_per_second: Some(Limit::Max(7)),
                ..TenantOverride::default()
            },
        );
        c.tenants.insert(
            "internal".into(),
            TenantOverride {
                tier: Some(UNLIMITED_TIER.into()),
                ..TenantOverride::default()
            },
        );
        let r = c.resolve("other", None);
        assert_eq!(&*r.tier, "free");
        let r = c.resolve("other", Some("pro"));
        assert_eq!(&*r.tier, "pro");
        assert_eq!(r.limits.metrics_per_second, Limit::Max(100_000));
        let r = c.resolve("acme", Some("pro"));
        assert_eq!(&*r.tier, "pro");
        assert_eq!(r.limits.metrics_per_second, Limit::Max(7));
        assert_eq!(r.limits.write_requests_per_second, Limit::Max(1000));
        let r = c.resolve("internal", Some("free"));
        assert_eq!(r.limits, TierLimits::unlimited());
        let r = c.resolve("acme", None);
        assert_eq!(r.limits.promql_max_series, Limit::Max(10_000));
        c.tenants.get_mut("acme").unwrap().promql_max_series = Some(Limit::Max(5));
        assert_eq!(
            c.resolve("acme", None).limits.promql_max_series,
            Limit::Max(5)
        );
        let r = c.resolve("other", Some("platinum"));
        assert_eq!(&*r.tier, "free", "unknown tier falls back to the default");
    }

    #[test]
    fn validation_names_the_bad_setting() {
        let c = LimitsConfig {
            default_tier: "gold".into(),
            ..LimitsConfig::default()
        };
        assert!(c.validate().unwrap_err().contains("gold"));
        let mut c = LimitsConfig::default();
        c.tiers.get_mut("pro").unwrap().metrics_per_second = Limit::Max(0);
        assert!(c.validate().unwrap_err().contains("limits.tiers.pro"));
        let mut c = LimitsConfig::default();
        c.tenants.insert(
            "a".into(),
            TenantOverride {
                tier: Some("nope".into()),
                ..Default::default()
            },
        );
        assert!(c.validate().unwrap_err().contains("limits.tenants.a.tier"));
    }

    #[test]
    fn limits_parse_from_numbers_and_unlimited() {
        #[derive(Deserialize)]
        struct T {
            a: Limit,
            b: Limit,
        }
        let t: T = toml::from_str("a = 5\nb = \"unlimited\"").unwrap();
        assert_eq!((t.a, t.b), (Limit::Max(5), Limit::Unlimited));
        assert!(toml::from_str::<T>("a = \"lots\"\nb = 1").is_err());
    }
}
