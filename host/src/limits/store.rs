//! Where cardinality sketches live between restarts: the [`SketchStore`]
//! seam. The embedded deployment keeps, per tenant under
//! `data_dir/cardinality/`, a base file and a journal of the changes since
//! (see [`FileSketchStore`]); a shared store (e.g. ClickHouse) implements the
//! same trait so that every pod loads the union of all pods' sketches
//! ([`Sketch::merge`]) and limits count series written through any pod.
//!
//! Saves carry only what changed ([`SketchChanges`]: the sketches touched
//! since the last save, as whole copies, and the fingerprints of series
//! admitted since), so their cost follows the write rate, not the size of a
//! tenant's state.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::sketch::{Sketch, TENANT_PRECISION};
use crate::model::TenantId;

/// Everything the cardinality tracker knows about one tenant.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TenantSketches {
    pub series: Sketch,
    pub metrics: BTreeMap<String, Sketch>,
    pub dimension_keys: BTreeMap<String, Sketch>,
    /// Distinct names of the keys past `max_tracked_keys_per_tenant`
    /// (absent in files written before that bound existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub untracked_keys: Option<Sketch>,
    /// Distinct (key, value) pairs of those keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub untracked_values: Option<Sketch>,
    /// Exact fingerprints of accepted series (see `cardinality`); stored
    /// outside the JSON part as raw little-endian u64s.
    #[serde(skip)]
    pub known_series: Vec<u64>,
}

/// What changed in a tenant's tracking since its last save: whole copies
/// of the sketches touched (a later copy replaces an earlier one) and the
/// fingerprints of series admitted since.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SketchChanges {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series: Option<Sketch>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metrics: BTreeMap<String, Sketch>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dimension_keys: BTreeMap<String, Sketch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub untracked_keys: Option<Sketch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub untracked_values: Option<Sketch>,
    #[serde(skip)]
    pub new_known_series: Vec<u64>,
}

impl SketchChanges {
    pub fn is_empty(&self) -> bool {
        self.series.is_none()
            && self.metrics.is_empty()
            && self.dimension_keys.is_empty()
            && self.untracked_keys.is_none()
            && self.untracked_values.is_none()
            && self.new_known_series.is_empty()
    }

    /// Puts `newer` on top: its sketches replace these, its series add.
    pub fn absorb(&mut self, newer: SketchChanges) {
        replace(&mut self.series, newer.series);
        self.metrics.extend(newer.metrics);
        self.dimension_keys.extend(newer.dimension_keys);
        replace(&mut self.untracked_keys, newer.untracked_keys);
        replace(&mut self.untracked_values, newer.untracked_values);
        self.new_known_series.extend(newer.new_known_series);
    }
}

fn replace(old: &mut Option<Sketch>, new: Option<Sketch>) {
    if new.is_some() {
        *old = new;
    }
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
    pub fn empty() -> Self {
        Self {
            series: Sketch::new(TENANT_PRECISION),
            metrics: BTreeMap::new(),
            dimension_keys: BTreeMap::new(),
            untracked_keys: None,
            untracked_values: None,
            known_series: Vec::new(),
        }
    }

    /// Brings a saved state up to date with later `changes` (the copies in
    /// `changes` already contain everything of the ones they replace).
    pub fn apply(&mut self, changes: &SketchChanges) {
        if let Some(s) = &changes.series {
            self.series = s.clone();
        }
        for (mine, theirs) in [
            (&mut self.metrics, &changes.metrics),
            (&mut self.dimension_keys, &changes.dimension_keys),
        ] {
            for (name, sketch) in theirs {
                mine.insert(name.clone(), sketch.clone());
            }
        }
        if let Some(s) = &changes.untracked_keys {
            self.untracked_keys = Some(s.clone());
        }
        if let Some(s) = &changes.untracked_values {
            self.untracked_values = Some(s.clone());
        }
        self.known_series
            .extend_from_slice(&changes.new_known_series);
    }

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
        for (mine, theirs) in [
            (&mut self.untracked_keys, &other.untracked_keys),
            (&mut self.untracked_values, &other.untracked_values),
        ] {
            match (mine.as_mut(), theirs) {
                (Some(m), Some(t)) => m.merge_uncounted(t)?,
                (None, Some(t)) => *mine = Some(t.clone()),
                (_, None) => {}
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
    /// Replaces `tenant`'s stored sketches (after a migration trimmed them).
    async fn save(
        &self,
        tenant: &TenantId,
        sketches: TenantSketches,
    ) -> Result<(), SketchStoreError>;

    /// Records what changed since the last save; its cost follows the size
    /// of `changes`. On error nothing is assumed saved: the caller keeps
    /// `changes` and offers them again.
    async fn save_changes(
        &self,
        tenant: &TenantId,
        changes: Arc<SketchChanges>,
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

    async fn save_changes(
        &self,
        tenant: &TenantId,
        changes: Arc<SketchChanges>,
    ) -> Result<(), SketchStoreError> {
        let mut tenants = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
        tenants
            .entry(tenant.clone())
            .or_insert_with(TenantSketches::empty)
            .apply(&changes);
        Ok(())
    }
}

/// Per tenant two files:
/// - `<tenant>.sketch`, the base: magic, JSON length (u64 LE), the JSON
///   sketches, then the known series fingerprints (u64 LE each);
/// - `<tenant>.journal`, the changes saved since the base was written, one
///   record per save: JSON length, fingerprint count and an xxh3 checksum
///   of the rest (u64 LE each), the JSON [`SketchChanges`], the
///   fingerprints.
///
/// A save appends one record and fsyncs it. Once the journal outgrows the
/// base (and [`COMPACT_AFTER_BYTES`]), both are folded into a new base,
/// written to a temporary file, fsynced and renamed, and the journal is
/// removed: the bytes written stay proportional to what changed. A crash
/// leaves a base and a journal whose whole records replay on top of it
/// (replaying a record twice changes nothing); a torn last record is cut
/// off at load. A base written before journals existed loads unchanged.
pub struct FileSketchStore {
    dir: PathBuf,
    /// Saves run one at a time, so a compaction never races an append.
    files: Arc<Mutex<()>>,
}

const MAGIC: &[u8; 8] = b"LUMSKT01";
const SUFFIX: &str = ".sketch";
const JOURNAL_SUFFIX: &str = ".journal";
const RECORD_HEADER: usize = 24;
/// Journals below this size are never compacted: small bases would
/// otherwise be rewritten at almost every save.
pub const COMPACT_AFTER_BYTES: u64 = 1 << 20;

impl FileSketchStore {
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, SketchStoreError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(|source| SketchStoreError::Io {
            path: dir.clone(),
            source,
        })?;
        Ok(Self {
            dir,
            files: Arc::default(),
        })
    }

    fn path_of(&self, tenant: &TenantId) -> PathBuf {
        // Tenant ids are [A-Za-z0-9_.-]{1,64}: no separators, and the suffix
        // keeps `.` and `..` from naming directories.
        self.dir.join(format!("{}{SUFFIX}", tenant.as_str()))
    }

    fn journal_of(&self, tenant: &TenantId) -> PathBuf {
        self.dir
            .join(format!("{}{JOURNAL_SUFFIX}", tenant.as_str()))
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SketchStoreError + '_ {
    move |source| SketchStoreError::Io {
        path: path.to_owned(),
        source,
    }
}

fn join_error(dir: &Path, e: tokio::task::JoinError) -> SketchStoreError {
    SketchStoreError::Io {
        path: dir.to_owned(),
        source: std::io::Error::other(e.to_string()),
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

fn fingerprints_of(bytes: &[u8]) -> Vec<u64> {
    bytes
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
        .collect()
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
    sketches.known_series = fingerprints_of(fingerprints);
    Ok(sketches)
}

/// One journal record for `changes`.
fn encode_record(changes: &SketchChanges) -> Vec<u8> {
    let json = serde_json::to_vec(changes).unwrap_or_default();
    let mut body = Vec::with_capacity(json.len() + changes.new_known_series.len() * 8);
    body.extend_from_slice(&json);
    for fp in &changes.new_known_series {
        body.extend_from_slice(&fp.to_le_bytes());
    }
    let mut out = Vec::with_capacity(RECORD_HEADER + body.len());
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(&(changes.new_known_series.len() as u64).to_le_bytes());
    out.extend_from_slice(&xxhash_rust::xxh3::xxh3_64(&body).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

/// Applies the whole records of `journal` to `base`; returns how many
/// bytes they span (anything after is a torn or corrupt tail).
fn replay(journal: &[u8], base: &mut TenantSketches) -> usize {
    let mut at = 0;
    while let Some(header) = journal.get(at..at + RECORD_HEADER) {
        let word =
            |i: usize| u64::from_le_bytes(header[i * 8..i * 8 + 8].try_into().unwrap_or([0xff; 8]));
        let (json_len, count, checksum) = (word(0), word(1), word(2));
        let body_len = count
            .checked_mul(8)
            .and_then(|n| n.checked_add(json_len))
            .and_then(|n| usize::try_from(n).ok());
        let Some(body) = body_len
            .and_then(|n| journal.get(at + RECORD_HEADER..(at + RECORD_HEADER).checked_add(n)?))
        else {
            break;
        };
        if xxhash_rust::xxh3::xxh3_64(body) != checksum {
            break;
        }
        let (json, fingerprints) = body.split_at(json_len as usize);
        let Ok(mut changes) = serde_json::from_slice::<SketchChanges>(json) else {
            break;
        };
        changes.new_known_series = fingerprints_of(fingerprints);
        base.apply(&changes);
        at += RECORD_HEADER + body.len();
    }
    at
}

fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, SketchStoreError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(path)(e)),
    }
}

/// A tenant's base with its journal replayed; a torn journal tail is cut
/// off so later appends follow whole records.
fn read_tenant(base: &Path, journal: &Path) -> Result<TenantSketches, SketchStoreError> {
    let mut sketches = match read_optional(base)? {
        Some(bytes) => decode(base, &bytes)?,
        None => TenantSketches::empty(),
    };
    if let Some(bytes) = read_optional(journal)? {
        let whole = replay(&bytes, &mut sketches);
        if whole < bytes.len() {
            tracing::warn!(path = %journal.display(), kept = whole, dropped = bytes.len() - whole,
                "cutting a torn or corrupt tail off a cardinality journal");
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(journal)
                .map_err(io(journal))?;
            file.set_len(whole as u64).map_err(io(journal))?;
            file.sync_all().map_err(io(journal))?;
        }
    }
    Ok(sketches)
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Writes `sketches` as the new base and drops the journal it absorbed.
fn write_base(
    dir: &Path,
    base: &Path,
    journal: &Path,
    sketches: &TenantSketches,
) -> Result<(), SketchStoreError> {
    let bytes = encode(sketches);
    let tmp = base.with_extension("sketch.tmp");
    let mut file = std::fs::File::create(&tmp).map_err(io(&tmp))?;
    file.write_all(&bytes).map_err(io(&tmp))?;
    file.sync_all().map_err(io(&tmp))?;
    std::fs::rename(&tmp, base).map_err(io(base))?;
    sync_dir(dir);
    match std::fs::remove_file(journal) {
        Ok(()) => sync_dir(dir),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(journal)(e)),
    }
    Ok(())
}

fn append(journal: &Path, record: &[u8]) -> Result<u64, SketchStoreError> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(journal)
        .map_err(io(journal))?;
    file.write_all(record).map_err(io(journal))?;
    file.sync_data().map_err(io(journal))?;
    Ok(file.metadata().map_err(io(journal))?.len())
}

#[async_trait]
impl SketchStore for FileSketchStore {
    async fn load_all(&self) -> Result<Vec<(TenantId, TenantSketches)>, SketchStoreError> {
        let dir = self.dir.clone();
        let files = self.files.clone();
        tokio::task::spawn_blocking(move || {
            let _files = files.lock().unwrap_or_else(|p| p.into_inner());
            let mut tenants = std::collections::BTreeSet::new();
            for entry in std::fs::read_dir(&dir).map_err(io(&dir))? {
                let path = entry.map_err(io(&dir))?.path();
                let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                    continue;
                };
                let tenant = name
                    .strip_suffix(SUFFIX)
                    .or_else(|| name.strip_suffix(JOURNAL_SUFFIX))
                    .and_then(|t| TenantId::new(t).ok());
                tenants.extend(tenant);
            }
            let store = FileSketchStore {
                dir: dir.clone(),
                files: Arc::default(),
            };
            let mut out = Vec::new();
            for tenant in tenants {
                match read_tenant(&store.path_of(&tenant), &store.journal_of(&tenant)) {
                    Ok(sketches) => out.push((tenant, sketches)),
                    // Losing one tenant's estimates is better than not starting;
                    // they rebuild as series are written again.
                    Err(e) => tracing::error!(error = %e, "ignoring unreadable cardinality sketch"),
                }
            }
            Ok(out)
        })
        .await
        .map_err(|e| join_error(&self.dir, e))?
    }

    async fn save(
        &self,
        tenant: &TenantId,
        sketches: TenantSketches,
    ) -> Result<(), SketchStoreError> {
        let (base, journal) = (self.path_of(tenant), self.journal_of(tenant));
        let dir = self.dir.clone();
        let files = self.files.clone();
        tokio::task::spawn_blocking(move || {
            let _files = files.lock().unwrap_or_else(|p| p.into_inner());
            write_base(&dir, &base, &journal, &sketches)
        })
        .await
        .map_err(|e| join_error(&self.dir, e))?
    }

    async fn save_changes(
        &self,
        tenant: &TenantId,
        changes: Arc<SketchChanges>,
    ) -> Result<(), SketchStoreError> {
        let (base, journal) = (self.path_of(tenant), self.journal_of(tenant));
        let dir = self.dir.clone();
        let files = self.files.clone();
        tokio::task::spawn_blocking(move || {
            let _files = files.lock().unwrap_or_else(|p| p.into_inner());
            let base_len = match std::fs::metadata(&base) {
                Ok(m) => m.len(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    let mut first = read_tenant(&base, &journal)?;
                    first.apply(&changes);
                    return write_base(&dir, &base, &journal, &first);
                }
                Err(e) => return Err(io(&base)(e)),
            };
            let journal_len = append(&journal, &encode_record(&changes))?;
            if journal_len > base_len.max(COMPACT_AFTER_BYTES) {
                let mut whole = read_tenant(&base, &journal)?;
                whole.known_series.sort_unstable();
                whole.known_series.dedup();
                write_base(&dir, &base, &journal, &whole)?;
            }
            Ok(())
        })
        .await
        .map_err(|e| join_error(&self.dir, e))?
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
            known_series: (1..=500).collect(),
            ..TenantSketches::empty()
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

    fn changes(fingerprints: std::ops::Range<u64>) -> Arc<SketchChanges> {
        let mut key = Sketch::new(DETAIL_PRECISION);
        for fp in fingerprints.clone() {
            key.insert_new(xxhash_rust::xxh3::xxh3_64(&fp.to_le_bytes()));
        }
        Arc::new(SketchChanges {
            dimension_keys: BTreeMap::from([("host".to_owned(), key)]),
            new_known_series: fingerprints.collect(),
            ..SketchChanges::default()
        })
    }

    #[tokio::test]
    async fn changes_are_journaled_and_a_torn_tail_is_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileSketchStore::open(dir.path()).unwrap();
        let tenant = TenantId::new("acme").unwrap();
        store.save(&tenant, sample()).await.unwrap();
        store
            .save_changes(&tenant, changes(1000..1010))
            .await
            .unwrap();
        store
            .save_changes(&tenant, changes(1000..1020))
            .await
            .unwrap();
        let journal = dir.path().join("acme.journal");
        let whole = std::fs::metadata(&journal).unwrap().len();
        // A crash in the middle of a third append.
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&journal)
            .unwrap();
        file.write_all(&encode_record(&changes(5000..5100))[..60])
            .unwrap();
        drop(file);

        let (_, mut s) = store.load_all().await.unwrap().pop().unwrap();
        assert_eq!(std::fs::metadata(&journal).unwrap().len(), whole);
        assert_eq!(s.known_series.len(), 500 + 30);
        assert_eq!(
            s.dimension_keys.get_mut("host").unwrap().recount(),
            20,
            "later copy wins"
        );
        assert_eq!(s.metrics.get_mut("cpu").unwrap().recount(), 500);

        // Appends after the cut are read again.
        store
            .save_changes(&tenant, changes(1000..1030))
            .await
            .unwrap();
        let (_, mut s) = store.load_all().await.unwrap().pop().unwrap();
        assert_eq!(s.dimension_keys.get_mut("host").unwrap().recount(), 30);
    }

    #[tokio::test]
    async fn a_journal_larger_than_its_base_is_folded_into_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileSketchStore::open(dir.path()).unwrap();
        let tenant = TenantId::new("acme").unwrap();
        let mut last = 0;
        for round in 0..200u64 {
            last = round * 1000 + 1000;
            store
                .save_changes(&tenant, changes(round * 1000..last))
                .await
                .unwrap();
        }
        let journal = std::fs::metadata(dir.path().join("acme.journal")).map_or(0, |m| m.len());
        let base = std::fs::metadata(dir.path().join("acme.sketch"))
            .unwrap()
            .len();
        assert!(
            journal <= base.max(COMPACT_AFTER_BYTES),
            "journal {journal}, base {base}"
        );
        let (_, mut s) = store.load_all().await.unwrap().pop().unwrap();
        assert_eq!(s.known_series.len() as u64, last);
        let est = s.dimension_keys.get_mut("host").unwrap().recount();
        assert!((est as f64 - 1000.0).abs() < 20.0, "the last copy, {est}");
    }

    #[test]
    fn tenant_ids_cannot_escape_the_directory() {
        let store = FileSketchStore {
            dir: PathBuf::from("/x/cardinality"),
            files: Arc::default(),
        };
        for id in ["..", ".", "a..b"] {
            let p = store.path_of(&TenantId::new(id).unwrap());
            assert_eq!(p.parent(), Some(Path::new("/x/cardinality")), "{p:?}");
        }
    }
}
