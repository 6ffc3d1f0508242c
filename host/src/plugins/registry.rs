//! The installed plugins: (scope, name) → the current version.
//!
//! A version is an `Arc<LoadedPlugin>`; installing a new one swaps the map
//! entry under a short write lock. A call holds its own `Arc` from lookup to
//! the end, so in-flight calls finish on the version they started with and
//! the old version is freed when its last call ends.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use serde::Serialize;

use super::abi::PluginKind;
use super::engine::{CallLimits, CompiledPlugin};
use super::logging::LogBudget;
use super::quarantine::BindingHealth;
use crate::model::TenantId;

/// Who owns a plugin: the operator (visible to every tenant) or one tenant.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PluginScope {
    Global,
    Tenant(TenantId),
}

impl PluginScope {
    pub fn label(&self) -> String {
        match self {
            Self::Global => "global".into(),
            Self::Tenant(t) => format!("tenant:{t}"),
        }
    }
}

/// Where a version came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PluginSource {
    /// The watched plugins directory.
    Directory,
    /// `PUT /api/v1/plugins/{name}`.
    Upload,
}

/// One installed version.
pub struct LoadedPlugin {
    /// Unique among every version loaded since the process started: what
    /// the series cache keys answers by, so a new version never sees an
    /// old version's answers.
    pub id: u64,
    pub scope: PluginScope,
    pub name: Arc<str>,
    pub version: Arc<str>,
    /// Hex SHA-256 of the wasm bytes.
    pub hash: String,
    pub kind: PluginKind,
    /// Asked about series rather than points, its answers remembered (see
    /// `series_cache`): the SDK's `SERIES_ONLY`, or the manifest's.
    pub series_only: bool,
    pub limits: CallLimits,
    pub source: PluginSource,
    pub description: Option<String>,
    pub loaded_at_ms: i64,
    pub compiled: CompiledPlugin,
    /// Per (tenant, binding): never shared between tenants.
    pub health: BindingHealth,
    pub log_budget: Arc<LogBudget>,
}

impl LoadedPlugin {
    pub fn next_id() -> u64 {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("scope", &self.scope)
            .field("name", &self.name)
            .field("version", &self.version)
            .field("kind", &self.kind)
            .field("hash", &self.hash)
            .finish_non_exhaustive()
    }
}

/// The last attempt to install a version that did not make it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadFailure {
    pub hash: String,
    pub error: String,
    pub at_ms: i64,
}

#[derive(Default)]
struct Entry {
    current: Option<Arc<LoadedPlugin>>,
    last_failure: Option<LoadFailure>,
    /// Attempts to install that failed, across versions.
    load_failures: u64,
}

#[derive(Default)]
pub struct PluginRegistry {
    entries: RwLock<BTreeMap<(PluginScope, String), Entry>>,
}

/// A listing row's raw material.
pub struct RegistryRow {
    pub scope: PluginScope,
    pub name: String,
    pub current: Option<Arc<LoadedPlugin>>,
    pub last_failure: Option<LoadFailure>,
    pub load_failures: u64,
}

impl PluginRegistry {
    /// The plugin `name` as `tenant` sees it: its own first, then global.
    pub fn resolve(&self, tenant: &TenantId, name: &str) -> Option<Arc<LoadedPlugin>> {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        let own = (PluginScope::Tenant(tenant.clone()), name.to_owned());
        if let Some(plugin) = entries.get(&own).and_then(|e| e.current.clone()) {
            return Some(plugin);
        }
        entries
            .get(&(PluginScope::Global, name.to_owned()))
            .and_then(|e| e.current.clone())
    }

    pub fn get(&self, scope: &PluginScope, name: &str) -> Option<Arc<LoadedPlugin>> {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        entries
            .get(&(scope.clone(), name.to_owned()))
            .and_then(|e| e.current.clone())
    }

    /// Swaps in a new version; returns the one it replaced.
    pub fn install(&self, plugin: Arc<LoadedPlugin>) -> Option<Arc<LoadedPlugin>> {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        let entry = entries
            .entry((plugin.scope.clone(), plugin.name.to_string()))
            .or_default();
        entry.last_failure = None;
        entry.current.replace(plugin)
    }

    /// Records a failed install; the running version (if any) stays.
    pub fn record_failure(&self, scope: &PluginScope, name: &str, failure: LoadFailure) {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        let entry = entries.entry((scope.clone(), name.to_owned())).or_default();
        entry.last_failure = Some(failure);
        entry.load_failures += 1;
    }

    /// The hash of the last failed attempt, to skip recompiling the same bytes.
    pub fn last_failed_hash(&self, scope: &PluginScope, name: &str) -> Option<String> {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        entries
            .get(&(scope.clone(), name.to_owned()))
            .and_then(|e| e.last_failure.as_ref().map(|f| f.hash.clone()))
    }

    pub fn remove(&self, scope: &PluginScope, name: &str) -> Option<Arc<LoadedPlugin>> {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        entries
            .remove(&(scope.clone(), name.to_owned()))
            .and_then(|e| e.current)
    }

    /// Plugins visible to `tenant` (its own and global), or all with `None`.
    pub fn rows(&self, tenant: Option<&TenantId>) -> Vec<RegistryRow> {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        entries
            .iter()
            .filter(|((scope, _), _)| match (tenant, scope) {
                (None, _) | (_, PluginScope::Global) => true,
                (Some(t), PluginScope::Tenant(owner)) => owner == t,
            })
            .map(|((scope, name), e)| RegistryRow {
                scope: scope.clone(),
                name: name.clone(),
                current: e.current.clone(),
                last_failure: e.last_failure.clone(),
                load_failures: e.load_failures,
            })
            .collect()
    }

    /// Names installed from the watched directory.
    pub fn directory_plugins(&self) -> Vec<(String, String)> {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        entries
            .iter()
            .filter_map(|((scope, name), e)| {
                let current = e.current.as_ref()?;
                (*scope == PluginScope::Global && current.source == PluginSource::Directory)
                    .then(|| (name.clone(), current.hash.clone()))
            })
            .collect()
    }
}
