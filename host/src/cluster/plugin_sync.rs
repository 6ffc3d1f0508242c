//! Each pod follows the plugin repository in ClickHouse: it polls a cheap
//! change token and, when it moved, installs uploads it lacks or whose
//! content changed, removes uploads deleted elsewhere, and applies chains
//! that differ from the ones it applied last. All pods therefore converge on
//! the same plugin versions within one poll interval plus a compile.
//!
//! Plugins from a pod's own plugins directory are that pod's business and
//! are never touched.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::model::TenantId;
use crate::plugins::bindings::BindingSet;
use crate::plugins::manifest::content_hash;
use crate::plugins::registry::{PluginScope, PluginSource};
use crate::plugins::repository::PluginRepository;
use crate::plugins::runtime::PluginRuntime;

use super::ClickHousePluginRepository;

/// Starts following `repository`; the task ends when the runtime is dropped.
pub fn spawn_plugin_sync(
    runtime: &Arc<PluginRuntime>,
    repository: Arc<ClickHousePluginRepository>,
    interval: Duration,
) -> tokio::task::JoinHandle<()> {
    let runtime = Arc::downgrade(runtime);
    tokio::spawn(async move {
        let mut follower = Follower {
            runtime,
            repository,
            applied_bindings: HashMap::new(),
        };
        // `restore` at startup applied the repository's chains already.
        if let Ok(chains) = follower.repository.list_bindings().await {
            follower.applied_bindings = chains.into_iter().collect();
        }
        let mut last_token = None;
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if follower.runtime.strong_count() == 0 {
                return;
            }
            let token = match follower.repository.change_token().await {
                Ok(token) => token,
                Err(e) => {
                    tracing::debug!(error = %e, "plugin sync: repository unreachable");
                    continue;
                }
            };
            if last_token == Some(token) {
                continue;
            }
            if follower.sync().await {
                last_token = Some(token);
            }
        }
    })
}

struct Follower {
    runtime: Weak<PluginRuntime>,
    repository: Arc<ClickHousePluginRepository>,
    applied_bindings: HashMap<TenantId, BindingSet>,
}

impl Follower {
    /// One pass; `false` when the repository could not be read (retry).
    async fn sync(&mut self) -> bool {
        let Some(runtime) = self.runtime.upgrade() else {
            return true;
        };
        let stored = match self.repository.list_plugins().await {
            Ok(stored) => stored,
            Err(e) => {
                tracing::warn!(error = %e, "plugin sync: cannot list plugins");
                return false;
            }
        };
        let mut present: HashSet<(PluginScope, String)> = HashSet::new();
        for plugin in stored {
            present.insert((plugin.scope.clone(), plugin.name.clone()));
            let current = runtime.get(&plugin.scope, &plugin.name);
            if current
                .as_ref()
                .is_some_and(|c| c.source == PluginSource::Directory)
            {
                continue;
            }
            if current.is_some_and(|c| c.hash == content_hash(&plugin.wasm)) {
                continue;
            }
            let name = plugin.name.clone();
            match runtime
                .install(
                    plugin.scope,
                    &plugin.name,
                    plugin.manifest,
                    plugin.wasm,
                    PluginSource::Upload,
                )
                .await
            {
                Ok(loaded) => {
                    tracing::info!(plugin = %name, hash = %loaded.hash, "plugin sync: installed")
                }
                Err(e) => tracing::warn!(plugin = %name, error = %e, "plugin sync: install failed"),
            }
        }
        for summary in runtime.list(None) {
            let key = (summary.scope.clone(), summary.name.clone());
            if summary.source == Some(PluginSource::Upload) && !present.contains(&key) {
                // Deleted by another pod: the repository has no copy, so
                // `delete` only unloads it here.
                match runtime.delete(&key.0, &key.1).await {
                    Ok(()) => tracing::info!(plugin = %key.1, "plugin sync: removed"),
                    Err(e) => {
                        tracing::warn!(plugin = %key.1, error = %e, "plugin sync: remove failed")
                    }
                }
            }
        }
        let chains = match self.repository.list_bindings().await {
            Ok(chains) => chains,
            Err(e) => {
                tracing::warn!(error = %e, "plugin sync: cannot list bindings");
                return false;
            }
        };
        for (tenant, set) in chains {
            if self.applied_bindings.get(&tenant) == Some(&set) {
                continue;
            }
            // `set_bindings` checks the chain against this pod's plugins and
            // stores it again (same content, so other pods see no change).
            match runtime.set_bindings(&tenant, set.clone()).await {
                Ok(()) => {
                    self.applied_bindings.insert(tenant, set);
                }
                Err(e) => tracing::warn!(%tenant, error = %e, "plugin sync: chain not applied"),
            }
        }
        true
    }
}
