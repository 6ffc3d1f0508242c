//! Hot reload of the watched plugins directory.
//!
//! `notify` reports changes; after a short quiet period the directory is
//! rescanned. Every `<name>.wasm` (with its optional `<name>.toml`) whose
//! content changed is checked and compiled on the blocking pool — never on
//! the request path — and swapped in atomically. A file that fails to
//! compile or fails the ABI check leaves the running version in place; the
//! failure is logged, counted and shown in the plugin list. A removed file
//! unloads its plugin.
//!
//! Write new files atomically (write elsewhere, then `mv` in); a
//! half-written file fails to compile, is reported, and is retried as soon
//! as its content changes again.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

use super::manifest::{Manifest, content_hash, is_valid_plugin_name};
use super::registry::{LoadFailure, PluginScope, PluginSource};
use super::runtime::{PluginAdminError, PluginRuntime};

/// Changes closer together than this are handled in one rescan.
const QUIET_PERIOD: Duration = Duration::from_millis(100);

/// Keeps watching while alive.
pub struct DirectoryWatcher {
    _watcher: notify::RecommendedWatcher,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for DirectoryWatcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct PluginFile {
    name: String,
    /// Hash of the wasm and the manifest text together.
    fingerprint: String,
    wasm: bytes::Bytes,
    manifest: Result<Manifest, String>,
}

fn read_dir(dir: &Path) -> std::io::Result<Vec<PluginFile>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("wasm") || !path.is_file() {
            continue;
        }
        let Some(name) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        // Hidden files are the half-written ones of an atomic drop-in.
        if name.starts_with('.') {
            continue;
        }
        if !is_valid_plugin_name(name) {
            tracing::warn!(file = %path.display(), "ignoring plugin file: names are [a-z0-9][a-z0-9_-]*");
            continue;
        }
        let wasm = match std::fs::read(&path) {
            Ok(wasm) => wasm,
            // Deleted between listing and reading: the next event rescans.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let manifest_text = match std::fs::read_to_string(path.with_extension("toml")) {
            Ok(text) => Some(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        let fingerprint = format!(
            "{}:{}",
            content_hash(&wasm),
            content_hash(manifest_text.as_deref().unwrap_or("").as_bytes())
        );
        let manifest = match &manifest_text {
            Some(text) => Manifest::from_toml(text).map_err(|e| e.to_string()),
            None => Ok(Manifest::default()),
        };
        out.push(PluginFile {
            name: name.to_owned(),
            fingerprint,
            wasm: wasm.into(),
            manifest,
        });
    }
    Ok(out)
}

/// What the watcher has seen: name → fingerprint of the last attempt.
type Seen = HashMap<String, String>;

async fn rescan(runtime: &PluginRuntime, dir: &Path, seen: &mut Seen) {
    let listing = {
        let dir = dir.to_path_buf();
        tokio::task::spawn_blocking(move || read_dir(&dir)).await
    };
    let files = match listing {
        Ok(Ok(files)) => files,
        Ok(Err(e)) => {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot read the plugins directory");
            return;
        }
        Err(e) => {
            tracing::warn!(error = %e, "plugin directory scan failed");
            return;
        }
    };
    let present: Vec<String> = files.iter().map(|f| f.name.clone()).collect();
    for file in files {
        if seen.get(&file.name) == Some(&file.fingerprint) {
            continue;
        }
        seen.insert(file.name.clone(), file.fingerprint.clone());
        let manifest = match file.manifest {
            Ok(manifest) => manifest,
            Err(error) => {
                tracing::warn!(plugin = %file.name, %error, "plugin manifest refused; the running version (if any) stays");
                runtime.registry().record_failure(
                    &PluginScope::Global,
                    &file.name,
                    LoadFailure {
                        hash: content_hash(&file.wasm),
                        error,
                        at_ms: super::runtime::now_ms(),
                    },
                );
                continue;
            }
        };
        // Failures are recorded (log, metric, list) by the runtime.
        let _ = runtime
            .install(
                PluginScope::Global,
                &file.name,
                manifest,
                file.wasm,
                PluginSource::Directory,
            )
            .await;
    }
    let gone: Vec<String> = seen
        .keys()
        .filter(|n| !present.contains(n))
        .cloned()
        .collect();
    for name in gone {
        seen.remove(&name);
        runtime.unload_directory_plugin(&name);
    }
}

impl DirectoryWatcher {
    pub async fn start(
        runtime: Arc<PluginRuntime>,
        dir: PathBuf,
    ) -> Result<Self, PluginAdminError> {
        std::fs::create_dir_all(&dir).map_err(|e| {
            PluginAdminError::Startup(format!("cannot create {}: {e}", dir.display()))
        })?;
        let mut seen = Seen::new();
        rescan(&runtime, &dir, &mut seen).await;

        let (tx, mut rx) = mpsc::unbounded_channel::<()>();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                if event.is_ok() {
                    let _ = tx.send(());
                }
            })
            .map_err(|e| {
                PluginAdminError::Startup(format!("cannot watch {}: {e}", dir.display()))
            })?;
        watcher
            .watch(&dir, RecursiveMode::NonRecursive)
            .map_err(|e| {
                PluginAdminError::Startup(format!("cannot watch {}: {e}", dir.display()))
            })?;
        tracing::info!(dir = %dir.display(), "watching the plugins directory");

        let task = tokio::spawn(async move {
            while rx.recv().await.is_some() {
                tokio::time::sleep(QUIET_PERIOD).await;
                while rx.try_recv().is_ok() {}
                rescan(&runtime, &dir, &mut seen).await;
            }
        });
        Ok(Self {
            _watcher: watcher,
            task,
        })
    }
}
