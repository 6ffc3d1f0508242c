//! Durable storage of uploaded plugins and tenants' binding chains, so they
//! come back after a restart.
//!
//! Behind a small trait: the embedded server keeps them on disk under the
//! data directory ([`FsPluginRepository`]); a ClickHouse deployment will
//! keep them in ClickHouse so every pod converges on the same set.
//!
//! Disk layout (`root` = `<data_dir>/plugin-store`):
//! ```text
//! global/<name>.wasm + <name>.toml
//! tenants/t_<tenant>/<name>.wasm + <name>.toml
//! bindings/t_<tenant>.json
//! ```
//! Tenant directories are prefixed so no tenant id (`.`, `..`) can name a
//! special path. Files are written to a temporary name, fsynced and renamed.

use std::io::Write;
use std::path::{Path, PathBuf};

use async_trait::async_trait;

use super::bindings::BindingSet;
use super::manifest::{Manifest, is_valid_plugin_name};
use super::registry::PluginScope;
use crate::model::TenantId;

#[derive(Debug, thiserror::Error)]
#[error("plugin repository: {0}")]
pub struct RepositoryError(pub String);

impl From<std::io::Error> for RepositoryError {
    fn from(e: std::io::Error) -> Self {
        Self(e.to_string())
    }
}

#[derive(Clone, Debug)]
pub struct StoredPlugin {
    pub scope: PluginScope,
    pub name: String,
    pub manifest: Manifest,
    pub wasm: bytes::Bytes,
}

#[async_trait]
pub trait PluginRepository: Send + Sync + 'static {
    async fn put_plugin(&self, plugin: &StoredPlugin) -> Result<(), RepositoryError>;
    /// Returns whether something was deleted.
    async fn delete_plugin(&self, scope: &PluginScope, name: &str)
    -> Result<bool, RepositoryError>;
    async fn list_plugins(&self) -> Result<Vec<StoredPlugin>, RepositoryError>;
    async fn put_bindings(
        &self,
        tenant: &TenantId,
        set: &BindingSet,
    ) -> Result<(), RepositoryError>;
    async fn list_bindings(&self) -> Result<Vec<(TenantId, BindingSet)>, RepositoryError>;
}

pub struct FsPluginRepository {
    root: PathBuf,
}

impl FsPluginRepository {
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }

    fn scope_dir(&self, scope: &PluginScope) -> PathBuf {
        match scope {
            PluginScope::Global => self.root.join("global"),
            PluginScope::Tenant(t) => self.root.join("tenants").join(format!("t_{t}")),
        }
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, RepositoryError> + Send + 'static,
) -> Result<T, RepositoryError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| RepositoryError(e.to_string()))?
}

fn write_durably(path: &Path, bytes: &[u8]) -> Result<(), RepositoryError> {
    let dir = path
        .parent()
        .ok_or_else(|| RepositoryError(format!("{} has no parent", path.display())))?;
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension("tmp");
    {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

fn remove_if_exists(path: &Path) -> Result<bool, RepositoryError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e.into()),
    }
}

fn read_scope_dir(
    dir: &Path,
    scope: &PluginScope,
    out: &mut Vec<StoredPlugin>,
) -> Result<(), RepositoryError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    for entry in entries {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("wasm") {
            continue;
        }
        let Some(name) = path.file_stem().and_then(|s| s.to_str()).map(str::to_owned) else {
            continue;
        };
        if !is_valid_plugin_name(&name) {
            continue;
        }
        let wasm = std::fs::read(&path)?;
        let manifest = match std::fs::read_to_string(path.with_extension("toml")) {
            Ok(text) => Manifest::from_toml(&text)
                .map_err(|e| RepositoryError(format!("{}: {e}", path.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Manifest::default(),
            Err(e) => return Err(e.into()),
        };
        out.push(StoredPlugin {
            scope: scope.clone(),
            name,
            manifest,
            wasm: wasm.into(),
        });
    }
    Ok(())
}

#[async_trait]
impl PluginRepository for FsPluginRepository {
    async fn put_plugin(&self, plugin: &StoredPlugin) -> Result<(), RepositoryError> {
        let dir = self.scope_dir(&plugin.scope);
        let name = plugin.name.clone();
        let (wasm, manifest) = (plugin.wasm.clone(), plugin.manifest.to_toml());
        blocking(move || {
            // Each file is replaced atomically; a crash between the two can
            // pair the new manifest with the old wasm, which the next upload
            // repairs. The wasm is the truth: its hash is its identity.
            write_durably(&dir.join(format!("{name}.toml")), manifest.as_bytes())?;
            write_durably(&dir.join(format!("{name}.wasm")), &wasm)
        })
        .await
    }

    async fn delete_plugin(
        &self,
        scope: &PluginScope,
        name: &str,
    ) -> Result<bool, RepositoryError> {
        let dir = self.scope_dir(scope);
        let name = name.to_owned();
        blocking(move || {
            let deleted = remove_if_exists(&dir.join(format!("{name}.wasm")))?;
            remove_if_exists(&dir.join(format!("{name}.toml")))?;
            Ok(deleted)
        })
        .await
    }

    async fn list_plugins(&self) -> Result<Vec<StoredPlugin>, RepositoryError> {
        let root = self.root.clone();
        blocking(move || {
            let mut out = Vec::new();
            read_scope_dir(&root.join("global"), &PluginScope::Global, &mut out)?;
            let tenants = match std::fs::read_dir(root.join("tenants")) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
                Err(e) => return Err(e.into()),
            };
            for entry in tenants {
                let path = entry?.path();
                let Some(tenant) = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.strip_prefix("t_"))
                    .and_then(|t| TenantId::new(t).ok())
                else {
                    continue;
                };
                read_scope_dir(&path, &PluginScope::Tenant(tenant), &mut out)?;
            }
            Ok(out)
        })
        .await
    }

    async fn put_bindings(
        &self,
        tenant: &TenantId,
        set: &BindingSet,
    ) -> Result<(), RepositoryError> {
        let path = self.root.join("bindings").join(format!("t_{tenant}.json"));
        let json = serde_json::to_vec_pretty(set).map_err(|e| RepositoryError(e.to_string()))?;
        blocking(move || write_durably(&path, &json)).await
    }

    async fn list_bindings(&self) -> Result<Vec<(TenantId, BindingSet)>, RepositoryError> {
        let dir = self.root.join("bindings");
        blocking(move || {
            let entries = match std::fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
                Err(e) => return Err(e.into()),
            };
            let mut out = Vec::new();
            for entry in entries {
                let path = entry?.path();
                if path.extension().and_then(|e| e.to_str()) != Some("json") {
                    continue;
                }
                let Some(tenant) = path
                    .file_stem()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.strip_prefix("t_"))
                    .and_then(|t| TenantId::new(t).ok())
                else {
                    continue;
                };
                let set: BindingSet = serde_json::from_slice(&std::fs::read(&path)?)
                    .map_err(|e| RepositoryError(format!("{}: {e}", path.display())))?;
                out.push((tenant, set));
            }
            Ok(out)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn plugins_and_bindings_round_trip_through_disk() {
        let dir = tempfile::tempdir().unwrap();
        let repo = FsPluginRepository::new(dir.path().to_path_buf());
        let tenant = TenantId::new("..").unwrap();
        let plugin = StoredPlugin {
            scope: PluginScope::Tenant(tenant.clone()),
            name: "p".into(),
            manifest: Manifest {
                version: Some("1.0".into()),
                ..Default::default()
            },
            wasm: bytes::Bytes::from_static(b"\0asm"),
        };
        repo.put_plugin(&plugin).await.unwrap();
        repo.put_bindings(&tenant, &BindingSet::default())
            .await
            .unwrap();
        let reopened = FsPluginRepository::new(dir.path().to_path_buf());
        let listed = reopened.list_plugins().await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].scope, PluginScope::Tenant(tenant.clone()));
        assert_eq!(listed[0].manifest.version.as_deref(), Some("1.0"));
        assert_eq!(&listed[0].wasm[..], b"\0asm");
        assert!(
            dir.path()
                .join("tenants")
                .join("t_..")
                .join("p.wasm")
                .exists()
        );
        assert_eq!(reopened.list_bindings().await.unwrap().len(), 1);
        assert!(reopened.delete_plugin(&plugin.scope, "p").await.unwrap());
        assert!(reopened.list_plugins().await.unwrap().is_empty());
    }
}

/// Keeps nothing across restarts: for the memory storage backend, where
/// nothing else survives either.
#[derive(Default)]
pub struct MemoryPluginRepository {
    plugins: std::sync::Mutex<std::collections::BTreeMap<(PluginScope, String), StoredPlugin>>,
    bindings: std::sync::Mutex<std::collections::BTreeMap<TenantId, BindingSet>>,
}

#[async_trait]
impl PluginRepository for MemoryPluginRepository {
    async fn put_plugin(&self, plugin: &StoredPlugin) -> Result<(), RepositoryError> {
        let mut plugins = self.plugins.lock().unwrap_or_else(|p| p.into_inner());
        plugins.insert((plugin.scope.clone(), plugin.name.clone()), plugin.clone());
        Ok(())
    }

    async fn delete_plugin(
        &self,
        scope: &PluginScope,
        name: &str,
    ) -> Result<bool, RepositoryError> {
        let mut plugins = self.plugins.lock().unwrap_or_else(|p| p.into_inner());
        Ok(plugins.remove(&(scope.clone(), name.to_owned())).is_some())
    }

    async fn list_plugins(&self) -> Result<Vec<StoredPlugin>, RepositoryError> {
        let plugins = self.plugins.lock().unwrap_or_else(|p| p.into_inner());
        Ok(plugins.values().cloned().collect())
    }

    async fn put_bindings(
        &self,
        tenant: &TenantId,
        set: &BindingSet,
    ) -> Result<(), RepositoryError> {
        let mut bindings = self.bindings.lock().unwrap_or_else(|p| p.into_inner());
        bindings.insert(tenant.clone(), set.clone());
        Ok(())
    }

    async fn list_bindings(&self) -> Result<Vec<(TenantId, BindingSet)>, RepositoryError> {
        let bindings = self.bindings.lock().unwrap_or_else(|p| p.into_inner());
        Ok(bindings
            .iter()
            .map(|(t, s)| (t.clone(), s.clone()))
            .collect())
    }
}
