//! Where cardinality sketches live between restarts: the [`SketchStore`]
//! seam. The embedded deployment keeps one file per tenant under
//! `data_dir/cardinality/`; a shared store (e.g. ClickHouse) can implement
//! the same trait so that every pod loads the union of all pods' sketches
//! ([`Sketch::merge`]) and limits count series written through any pod.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::sketch::Sketch;
use crate::model::TenantId;

/// Everything the cardinality tracker knows about one tenant.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TenantSketches {
    pub series: Sketch,
    pub metrics: BTreeMap<String, Sketch>,
    pub dimension_keys: BTreeMap<String, Sketch>,
    /// Exact fingerprints of accepted series (see `cardinality`); stored
    /// outside the JSON part as raw little-endian u64s.
    #[serde(skip)]
    pub known_series: Vec<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum SketchStoreError {
    #[error("sketch store I/O on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("sketch file {path} is corrupt: {message}")]
    Corrupt { path: PathBuf, message: String },
}

impl TenantSketches {
    /// Folds `other` in: sketches become the union (HyperLogLog merges are
    /// idempotent, so folding the same state twice changes nothing) and the
    /// known series are the union of both sets.
    pub fn merge(&mut self, other: &TenantSketches) -> Result<(), String> {
        self.series.merge(&other.series)?;
        for (mine, theirs) in [
            (&mut self.metrics, &other.metrics),
            (&mut self.dimension_keys, &other.dimension_keys),
        ] {
            for (name, sketch) in theirs {
                match mine.get_mut(name) {
                    Some(s) => s.merge(sketch)?,
                    None => {
                        mine.insert(name.clone(), sketch.clone());
                    }
                }
            }
        }
        let mut known: std::collections::HashSet<u64> = self.known_series.drain(..).collect();
        known.extend(other.known_series.iter().copied());
        self.known_series = known.into_iter().collect();
        Ok(())
    }
}

/// A store shared by several server processes (pods) keeps one document
/// per (tenant, pod); `load_all` returns, per tenant, the merge of all
/// pods' documents (see [`TenantSketches::merge`]), and each pod's `save`
/// replaces only its own document.
#[async_trait]
pub trait SketchStore: Send + Sync + 'static {
    /// Every tenant's sketches (merged over pods for a shared store).
    async fn load_all(&self) -> Result<Vec<(TenantId, TenantSketches)>, SketchStoreError>;

    /// Whether other processes write to this store too; the tracker then
    /// folds their sketches in periodically, so limits count series
    /// written through any pod.
    fn is_shared(&self) -> bool {
        false
    }
    /// Replaces `tenant`'s stored sketches.
    async fn save(
        &self,
        tenant: &TenantId,
        sketches: TenantSketches,
    ) -> Result<(), SketchStoreError>;
}

/// Keeps sketches in memory: for the in-memory storage backend and tests.
#[derive(Default)]
pub struct MemorySketchStore {
    tenants: Mutex<HashMap<TenantId, TenantSketches>>,
}

#[async_trait]
impl SketchStore for MemorySketchStore {
    async fn load_all(&self) -> Result<Vec<(TenantId, TenantSketches)>, SketchStoreError> {
        let tenants = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
        Ok(tenants
            .iter()
            .map(|(t, s)| (t.clone(), s.clone()))
            .collect())
    }

    async fn save(
        &self,
        tenant: &TenantId,
        sketches: TenantSketches,
    ) -> Result<(), SketchStoreError> {
        let mut tenants = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
        tenants.insert(tenant.clone(), sketches);
        Ok(())
    }
}

/// One file per tenant: `<tenant>.sketch` = magic, JSON length (u64 LE),
/// the JSON sketches, then the known series fingerprints (u64 LE each).
/// Written to a temporary file, fsynced and renamed, so a crash leaves the
/// previous version or the new one, never half of one.
pub struct FileSketchStore {
    dir: PathBuf,
}

const MAGIC: &[u8; 8] = b"LUMSKT01";
const SUFFIX: &str = ".sketch";

impl FileSketchStore {
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, SketchStoreError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(|source| SketchStoreError::Io {
            path: dir.clone(),
            source,
        })?;
        Ok(Self { dir })
    }

    fn path_of(&self, tenant: &TenantId) -> PathBuf {
        // Tenant ids are [A-Za-z0-9_.-]{1,64}: no separators, and the suffix
        // keeps `.` and `..` from naming directories.
        self.dir.join(format!("{}{SUFFIX}", tenant.as_str()))
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SketchStoreError + '_ {
    move |source| SketchStoreError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The byte form of a tenant's sketches (files, and documents of a shared store).
pub fn encode(sketches: &TenantSketches) -> Vec<u8> {
    let json = serde_json::to_vec(sketches).unwrap_or_default();
    let mut out = Vec::with_capacity(16 + json.len() + sketches.known_series.len() * 8);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(&json);
    for fp in &sketches.known_series {
        out.extend_from_slice(&fp.to_le_bytes());
    }
    out
}

/// Reads [`encode`]'s output; `path` names the source in errors.
pub fn decode(path: &Path, bytes: &[u8]) -> Result<TenantSketches, SketchStoreError> {
    let corrupt = |message: &str| SketchStoreError::Corrupt {
        path: path.to_owned(),
        message: message.to_owned(),
    };
    let rest = bytes
        .strip_prefix(MAGIC)
        .ok_or_else(|| corrupt("bad magic"))?;
    let (len, rest) = rest
        .split_at_checked(8)
        .ok_or_else(|| corrupt("truncated header"))?;
    let len = u64::from_le_bytes(len.try_into().map_err(|_| corrupt("truncated header"))?);
    let len = usize::try_from(len).map_err(|_| corrupt("bad length"))?;
    let (json, fingerprints) = rest
        .split_at_checked(len)
        .ok_or_else(|| corrupt("truncated JSON"))?;
    let mut sketches: TenantSketches =
        serde_json::from_slice(json).map_err(|e| corrupt(&e.to_string()))?;
    if fingerprints.len() % 8 != 0 {
        return Err(corrupt("truncated fingerprints"));
    }
    sketches.known_series = fingerprints
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
        .collect();
    Ok(sketches)
}

#[async_trait]
impl SketchStore for FileSketchStore {
    async fn load_all(&self) -> Result<Vec<(TenantId, TenantSketches)>, SketchStoreError> {
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            for entry in std::fs::read_dir(&dir).map_err(io(&dir))? {
                let path = entry.map_err(io(&dir))?.path();
                let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                    continue;
                };
                let Some(tenant) = name
                    .strip_suffix(SUFFIX)
                    .and_then(|t| TenantId::new(t).ok())
                else {
                    continue;
                };
                let bytes = std::fs::read(&path).map_err(io(&path))?;
                match decode(&path, &bytes) {
                    Ok(sketches) => out.push((tenant, sketches)),
                    // Losing one tenant's estimates is better than not starting;
                    // they rebuild as series are written again.
                    Err(e) => tracing::error!(error = %e, "ignoring unreadable cardinality sketch"),
                }
            }
            Ok(out)
        })
        .await
        .map_err(|e| SketchStoreError::Io {
            path: self.dir.clone(),
            source: std::io::Error::other(e.to_string()),
        })?
    }

    async fn save(
        &self,
        tenant: &TenantId,
        sketches: TenantSketches,
    ) -> Result<(), SketchStoreError> {
        let path = self.path_of(tenant);
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || {
            let bytes = encode(&sketches);
            let tmp = path.with_extension("sketch.tmp");
            let mut file = std::fs::File::create(&tmp).map_err(io(&tmp))?;
            file.write_all(&bytes).map_err(io(&tmp))?;
            file.sync_all().map_err(io(&tmp))?;
            std::fs::rename(&tmp, &path).map_err(io(&path))?;
            if let Ok(d) = std::fs::File::open(&dir) {
                let _ = d.sync_all();
            }
            Ok(())
        })
        .await
        .map_err(|e| SketchStoreError::Io {
            path: self.dir.clone(),
            source: std::io::Error::other(e.to_string()),
        })?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::sketch::{DETAIL_PRECISION, TENANT_PRECISION};

    fn sample() -> TenantSketches {
        let mut series = Sketch::new(TENANT_PRECISION);
        let mut metric = Sketch::new(DETAIL_PRECISION);
        for fp in 1..=500u64 {
            let fp = xxhash_rust::xxh3::xxh3_64(&fp.to_le_bytes());
            series.insert_new(fp);
            metric.insert_new(fp);
        }
        TenantSketches {
            series,
            metrics: BTreeMap::from([("cpu".to_owned(), metric)]),
            dimension_keys: BTreeMap::new(),
            known_series: (1..=500).collect(),
        }
    }

    #[tokio::test]
    async fn file_store_round_trips_and_ignores_corrupt_files() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileSketchStore::open(dir.path()).unwrap();
        let tenant = TenantId::new("acme").unwrap();
        store.save(&tenant, sample()).await.unwrap();
        std::fs::write(dir.path().join("broken.sketch"), b"LUMSKT01\xff").unwrap();

        let reopened = FileSketchStore::open(dir.path()).unwrap();
        let mut all = reopened.load_all().await.unwrap();
        assert_eq!(all.len(), 1);
        let (t, mut s) = all.pop().unwrap();
        assert_eq!(t, tenant);
        assert_eq!(s.known_series, (1..=500).collect::<Vec<u64>>());
        assert_eq!(s.series.recount(), 500);
        assert_eq!(s.metrics.get_mut("cpu").unwrap().recount(), 500);
    }

    #[test]
    fn tenant_ids_cannot_escape_the_directory() {
        let store = FileSketchStore {
            dir: PathBuf::from("/x/cardinality"),
        };
        for id in ["..", ".", "a..b"] {
            let p = store.path_of(&TenantId::new(id).unwrap());
            assert_eq!(p.parent(), Some(Path::new("/x/cardinality")), "{p:?}");
        }
    }
}
