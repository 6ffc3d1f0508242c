//! The `[plugins]` config section.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::bindings::BindingSet;
use crate::config::ConfigDuration;

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PluginsConfig {
    /// The watched directory for operator (global) plugins:
    /// `<name>.wasm` plus an optional `<name>.toml` manifest.
    /// Defaults to `<data_dir>/plugins`.
    pub dir: Option<PathBuf>,
    /// Watch `dir` and hot-reload changes.
    pub watch: bool,
    /// Memory cap of one call, unless the plugin's manifest sets one.
    pub memory_limit_bytes: u64,
    /// Ceiling for per-plugin memory caps; sizes the instance pool's slots.
    pub max_memory_limit_bytes: u64,
    /// Deadline of one call, unless the plugin's manifest sets one.
    pub deadline: ConfigDuration,
    /// Bound on one aggregation query's plugin time as a whole.
    pub aggregation_budget: ConfigDuration,
    /// Plugin instances alive at once (the pool size); callers beyond it wait.
    pub max_concurrent_calls: u32,
    /// Of those, how many one tenant's calls may hold at once; its further
    /// calls wait for one of its own, so a tenant whose plugin is slow or
    /// loops cannot take the whole pool from the others.
    pub max_concurrent_calls_per_tenant: u32,
    /// Linear memory all plugin instances alive at once may hold together.
    pub memory_budget_bytes: u64,
    /// Of that, how much one tenant's instances may hold; growth past it
    /// fails that tenant's call (and counts towards its binding's
    /// quarantine), never another tenant's.
    pub memory_budget_per_tenant_bytes: u64,
    /// Largest plugin binary accepted (upload or plugins directory). It is
    /// also what bounds one compile's time and memory: wasmtime cannot
    /// cancel a compile once started.
    pub max_plugin_bytes: u64,
    /// Compiles running at once (on the blocking pool); further uploads
    /// wait their turn.
    pub max_concurrent_compiles: u32,
    /// Plugins one tenant may have installed.
    pub max_plugins_per_tenant: u32,
    /// Plugins installed in all, tenants' and global.
    pub max_plugins: u32,
    /// Consecutive failures of one tenant's binding that quarantine the
    /// plugin for that binding; 0 disables quarantine.
    pub quarantine_after: u32,
    /// Log lines per second one plugin may write to the server log.
    pub log_lines_per_second: u32,
    /// Memory for the answers of series-only plugins, across all tenants
    /// (about 110 bytes per series and binding, plus its strings); 0 turns
    /// the cache off, so every metric goes to every plugin.
    pub series_cache_bytes: u64,
    /// The credential for global plugin management (header
    /// `Luminate-Operator-Token`); none disables global uploads via the API.
    pub operator_token: Option<String>,
    /// The chain of every tenant that has none of its own.
    pub defaults: BindingSet,
    /// Per-tenant chains set by the operator; a tenant's own API-set chain wins.
    pub tenants: BTreeMap<String, BindingSet>,
}

impl Default for PluginsConfig {
    fn default() -> Self {
        Self {
            dir: None,
            watch: true,
            memory_limit_bytes: 16 << 20,
            max_memory_limit_bytes: 256 << 20,
            deadline: ConfigDuration::from_millis(50),
            aggregation_budget: ConfigDuration::from_millis(10_000),
            max_concurrent_calls: 64,
            max_concurrent_calls_per_tenant: 16,
            memory_budget_bytes: 1 << 30,
            memory_budget_per_tenant_bytes: 256 << 20,
            max_plugin_bytes: 4 << 20,
            max_concurrent_compiles: 1,
            max_plugins_per_tenant: 16,
            max_plugins: 256,
            quarantine_after: 10,
            log_lines_per_second: 100,
            series_cache_bytes: 64 << 20,
            operator_token: None,
            defaults: BindingSet::default(),
            tenants: BTreeMap::new(),
        }
    }
}

impl PluginsConfig {
    pub fn watched_dir(&self, data_dir: &Path) -> PathBuf {
        self.dir.clone().unwrap_or_else(|| data_dir.join("plugins"))
    }

    /// Where uploaded plugins and tenants' chains are kept.
    pub fn store_dir(data_dir: &Path) -> PathBuf {
        data_dir.join("plugin-store")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::FailurePolicy;

    #[test]
    fn the_plugins_section_reads_from_toml() {
        let config: crate::config::Config = toml::from_str(
            r#"
            [plugins]
            dir = "/srv/plugins"
            deadline = "20ms"
            quarantine_after = 3
            operator_token = "op"

            [[plugins.defaults.validators]]
            plugin = "name-policy"
            params = { requiredDimensions = ["team"] }
            onFailure = "fail-closed"

            [[plugins.tenants.acme.enrichers]]
            plugin = "lookup"
            "#,
        )
        .unwrap();
        let p = config.plugins;
        assert_eq!(p.dir.as_deref(), Some(Path::new("/srv/plugins")));
        assert_eq!(p.deadline.get(), std::time::Duration::from_millis(20));
        assert_eq!(
            p.defaults.validators[0].on_failure,
            FailurePolicy::FailClosed
        );
        assert_eq!(
            p.defaults.validators[0].params["requiredDimensions"][0],
            "team"
        );
        assert_eq!(p.tenants["acme"].enrichers[0].plugin, "lookup");
        assert!(toml::from_str::<crate::config::Config>("[plugins]\ndeadline_ms = 5\n").is_err());
    }
}
