//! Uploaded plugins and binding chains in ClickHouse, so every pod loads the
//! same ones. Plugins are documents of kind `plugin` (manifest as TOML in
//! `meta`, the component in `body`); chains are documents of kind `bindings`
//! (JSON).

use std::sync::Arc;

use async_trait::async_trait;

use crate::model::TenantId;
use crate::plugins::bindings::BindingSet;
use crate::plugins::manifest::{Manifest, is_valid_plugin_name};
use crate::plugins::registry::PluginScope;
use crate::plugins::repository::{PluginRepository, RepositoryError, StoredPlugin};
use crate::storage::clickhouse::{ChangeToken, DocumentKind, SharedState};

pub struct ClickHousePluginRepository {
    state: Arc<SharedState>,
}

impl ClickHousePluginRepository {
    pub fn new(state: Arc<SharedState>) -> Self {
        Self { state }
    }

    /// Changes whenever any pod stores or deletes a plugin or a chain.
    pub async fn change_token(&self) -> Result<(ChangeToken, ChangeToken), RepositoryError> {
        let plugins = self
            .state
            .change_token(DocumentKind::Plugin)
            .await
            .map_err(err)?;
        let bindings = self
            .state
            .change_token(DocumentKind::Bindings)
            .await
            .map_err(err)?;
        Ok((plugins, bindings))
    }
}

fn err(e: crate::storage::StorageError) -> RepositoryError {
    RepositoryError(e.to_string())
}

fn tenant_of(scope: &PluginScope) -> Option<&TenantId> {
    match scope {
        PluginScope::Global => None,
        PluginScope::Tenant(tenant) => Some(tenant),
    }
}

#[async_trait]
impl PluginRepository for ClickHousePluginRepository {
    async fn put_plugin(&self, plugin: &StoredPlugin) -> Result<(), RepositoryError> {
        self.state
            .put(
                DocumentKind::Plugin,
                tenant_of(&plugin.scope),
                &plugin.name,
                &plugin.manifest.to_toml(),
                &plugin.wasm,
            )
            .await
            .map_err(err)
    }

    async fn delete_plugin(
        &self,
        scope: &PluginScope,
        name: &str,
    ) -> Result<bool, RepositoryError> {
        self.state
            .delete(DocumentKind::Plugin, tenant_of(scope), name)
            .await
            .map_err(err)
    }

    async fn list_plugins(&self) -> Result<Vec<StoredPlugin>, RepositoryError> {
        let documents = self.state.list(DocumentKind::Plugin).await.map_err(err)?;
        let mut plugins = Vec::with_capacity(documents.len());
        for doc in documents {
            if !is_valid_plugin_name(&doc.name) {
                continue;
            }
            let manifest = match Manifest::from_toml(&doc.meta) {
                Ok(manifest) => manifest,
                Err(e) => {
                    tracing::error!(plugin = %doc.name, error = %e, "stored manifest unreadable; plugin skipped");
                    continue;
                }
            };
            plugins.push(StoredPlugin {
                scope: doc.tenant.map_or(PluginScope::Global, PluginScope::Tenant),
                name: doc.name,
                manifest,
                wasm: doc.body.into(),
            });
        }
        Ok(plugins)
    }

    async fn put_bindings(
        &self,
        tenant: &TenantId,
        set: &BindingSet,
    ) -> Result<(), RepositoryError> {
        let json = serde_json::to_vec(set).map_err(|e| RepositoryError(e.to_string()))?;
        self.state
            .put(DocumentKind::Bindings, Some(tenant), "", "", &json)
            .await
            .map_err(err)
    }

    async fn list_bindings(&self) -> Result<Vec<(TenantId, BindingSet)>, RepositoryError> {
        let documents = self.state.list(DocumentKind::Bindings).await.map_err(err)?;
        let mut out = Vec::with_capacity(documents.len());
        for doc in documents {
            let Some(tenant) = doc.tenant else { continue };
            match serde_json::from_slice::<BindingSet>(&doc.body) {
                Ok(set) => out.push((tenant, set)),
                Err(e) => {
                    tracing::error!(%tenant, error = %e, "stored bindings unreadable; skipped")
                }
            }
        }
        Ok(out)
    }
}
