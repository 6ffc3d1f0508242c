//! Cardinality sketches in ClickHouse: each pod saves its own view of a
//! tenant as one document (`kind = sketch`, `name` = pod id), and loading
//! merges every pod's view: HyperLogLog sketches union exactly, and the known
//! series sets are unioned. A pod that starts therefore counts the series
//! written through every pod so far.
//!
//! A pod's document holds what it changed since it started (pod ids are
//! new per process): the pod keeps that document in memory, applies each
//! save's changes to it and writes it whole. It is bounded by the tracking
//! bounds of `limits.cardinality` plus the series the pod admitted, and is
//! encoded on a blocking thread.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::limits::store::{SketchChanges, SketchStore, SketchStoreError, TenantSketches};
use crate::model::TenantId;
use crate::storage::clickhouse::{DocumentKind, SharedState};

pub struct ClickHouseSketchStore {
    state: Arc<SharedState>,
    /// This pod's document per tenant.
    own: Arc<Mutex<HashMap<TenantId, TenantSketches>>>,
}

impl ClickHouseSketchStore {
    pub fn new(state: Arc<SharedState>) -> Self {
        Self {
            state,
            own: Arc::default(),
        }
    }

    async fn put(&self, tenant: &TenantId, body: Vec<u8>) -> Result<(), SketchStoreError> {
        self.state
            .put(
                DocumentKind::Sketch,
                Some(tenant),
                self.state.pod_id(),
                "",
                &body,
            )
            .await
            .map_err(unavailable)
    }
}

fn location() -> PathBuf {
    PathBuf::from("clickhouse:shared_state")
}

fn unavailable(e: impl std::fmt::Display) -> SketchStoreError {
    SketchStoreError::Io {
        path: location(),
        source: std::io::Error::other(e.to_string()),
    }
}

fn corrupt(message: impl Into<String>) -> SketchStoreError {
    SketchStoreError::Corrupt {
        path: location(),
        message: message.into(),
    }
}

/// JSON length (u64 LE), the JSON sketches, then the known series
/// fingerprints (u64 LE each): the file store's layout without its magic.
fn encode(sketches: &TenantSketches) -> Result<Vec<u8>, SketchStoreError> {
    let json = serde_json::to_vec(sketches).map_err(|e| corrupt(e.to_string()))?;
    let mut out = Vec::with_capacity(8 + json.len() + sketches.known_series.len() * 8);
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(&json);
    for fingerprint in &sketches.known_series {
        out.extend_from_slice(&fingerprint.to_le_bytes());
    }
    Ok(out)
}

fn decode(bytes: &[u8]) -> Result<TenantSketches, SketchStoreError> {
    let (len, rest) = bytes
        .split_at_checked(8)
        .ok_or_else(|| corrupt("truncated header"))?;
    let len = u64::from_le_bytes(len.try_into().map_err(|_| corrupt("truncated header"))?);
    let len = usize::try_from(len).map_err(|_| corrupt("bad length"))?;
    let (json, fingerprints) = rest
        .split_at_checked(len)
        .ok_or_else(|| corrupt("truncated JSON"))?;
    let mut sketches: TenantSketches =
        serde_json::from_slice(json).map_err(|e| corrupt(e.to_string()))?;
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
impl SketchStore for ClickHouseSketchStore {
    /// Every pod writes here, so each tracker periodically folds in the
    /// others' sketches and limits count series written through any pod.
    fn is_shared(&self) -> bool {
        true
    }

    async fn load_all(&self) -> Result<Vec<(TenantId, TenantSketches)>, SketchStoreError> {
        let documents = self
            .state
            .list(DocumentKind::Sketch)
            .await
            .map_err(unavailable)?;
        // Documents come ordered by tenant, so each tenant's views are adjacent.
        let mut out: Vec<(TenantId, TenantSketches)> = Vec::new();
        for doc in documents {
            let Some(tenant) = doc.tenant else { continue };
            let sketches = match decode(&doc.body) {
                Ok(sketches) => sketches,
                Err(e) => {
                    // As the file store: one unreadable view is skipped; its
                    // series are counted again as they are written.
                    tracing::error!(%tenant, pod = %doc.name, error = %e, "ignoring unreadable sketch");
                    continue;
                }
            };
            match out.last_mut() {
                Some((last, merged)) if *last == tenant => {
                    if let Err(e) = merged.merge(&sketches) {
                        tracing::error!(%tenant, pod = %doc.name, error = %e, "cannot merge sketch");
                    }
                }
                _ => out.push((tenant, sketches)),
            }
        }
        Ok(out)
    }

    async fn save(
        &self,
        tenant: &TenantId,
        sketches: TenantSketches,
    ) -> Result<(), SketchStoreError> {
        let own = self.own.clone();
        let key = tenant.clone();
        let body = tokio::task::spawn_blocking(move || {
            let body = encode(&sketches);
            own.lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(key, sketches);
            body
        })
        .await
        .map_err(unavailable)??;
        self.put(tenant, body).await
    }

    async fn save_changes(
        &self,
        tenant: &TenantId,
        changes: Arc<SketchChanges>,
    ) -> Result<(), SketchStoreError> {
        let own = self.own.clone();
        let key = tenant.clone();
        let body = tokio::task::spawn_blocking(move || {
            let mut own = own.lock().unwrap_or_else(|p| p.into_inner());
            let document = own.entry(key).or_insert_with(TenantSketches::empty);
            // Applied before the put succeeds: a failed put is retried with
            // these changes again, and applying them twice changes nothing.
            document.apply(&changes);
            encode(document)
        })
        .await
        .map_err(unavailable)??;
        self.put(tenant, body).await
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::limits::sketch::{DETAIL_PRECISION, Sketch, TENANT_PRECISION};
    use crate::storage::clickhouse::open_shared_state;
    use crate::storage::clickhouse::testing::require_server;

    fn fingerprint(i: u64) -> u64 {
        xxhash_rust::xxh3::xxh3_64(&i.to_le_bytes())
    }

    fn view(range: std::ops::Range<u64>) -> TenantSketches {
        let mut series = Sketch::new(TENANT_PRECISION);
        let mut metric = Sketch::new(DETAIL_PRECISION);
        for i in range.clone() {
            series.insert_new(fingerprint(i));
            metric.insert_new(fingerprint(i));
        }
        TenantSketches {
            series,
            metrics: BTreeMap::from([("cpu".to_owned(), metric)]),
            known_series: range.map(fingerprint).collect(),
            ..TenantSketches::empty()
        }
    }

    #[tokio::test]
    async fn a_pod_loads_the_union_of_every_pods_sketches() {
        let Some(server) = require_server() else {
            return;
        };
        let config = server.config("sketches");
        let pod1 = ClickHouseSketchStore::new(open_shared_state(&config).await.unwrap());
        let pod2 = ClickHouseSketchStore::new(open_shared_state(&config).await.unwrap());
        let acme = TenantId::new("acme").unwrap();
        let other = TenantId::new("other").unwrap();
        pod1.save(&acme, view(0..500)).await.unwrap();
        pod2.save(&acme, view(250..750)).await.unwrap();
        pod2.save(&other, view(0..10)).await.unwrap();
        // A newer save by the same pod replaces its older view.
        pod1.save(&acme, view(0..600)).await.unwrap();

        let pod3 = ClickHouseSketchStore::new(open_shared_state(&config).await.unwrap());
        let mut loaded = pod3.load_all().await.unwrap();
        assert_eq!(loaded.len(), 2);
        let (tenant, mut merged) = loaded.remove(0);
        assert_eq!(tenant, acme);
        assert_eq!(merged.known_series.len(), 750);
        let estimate = merged.series.recount();
        assert!(
            (740..=760).contains(&estimate),
            "HLL union estimate {estimate}"
        );
        let cpu = merged.metrics.get_mut("cpu").unwrap().recount();
        assert!((740..=760).contains(&cpu), "{cpu}");
        assert_eq!(loaded[0].1.known_series.len(), 10);
    }

    #[tokio::test]
    async fn running_pods_count_each_others_new_series_against_limits() {
        use std::time::Duration;

        use crate::limits::cardinality::CardinalityTracker;
        use crate::limits::config::{Limit, TierLimits};
        use crate::model::{Dimensions, Metric};

        let Some(server) = require_server() else {
            return;
        };
        let config = server.config("live_sketches");
        let pod = async || -> Arc<CardinalityTracker> {
            let store = ClickHouseSketchStore::new(open_shared_state(&config).await.unwrap());
            Arc::new(
                CardinalityTracker::open(Arc::new(store), &Default::default())
                    .await
                    .unwrap(),
            )
        };
        // Both pods are running before either writes: only the periodic
        // refresh, not startup, can tell one about the other's series.
        let (a, b) = (pod().await, pod().await);
        let _persisters = [
            a.spawn_persister(Duration::from_millis(100)),
            b.spawn_persister(Duration::from_millis(100)),
        ];
        let limits = TierLimits {
            max_series_per_tenant: Limit::Max(10),
            ..TierLimits::unlimited()
        };
        let acme = TenantId::new("acme").unwrap();
        let batch = |r: std::ops::Range<u32>| -> Vec<Metric> {
            r.map(|i| Metric {
                name: "cpu".into(),
                value: 1.0,
                timestamp_ms: 0,
                dimensions: Dimensions::from_pairs([("host", i.to_string())]),
            })
            .collect()
        };
        assert!(a.admit(&acme, &limits, &batch(0..6)).is_empty());
        assert!(b.admit(&acme, &limits, &batch(100..104)).is_empty());

        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let mut converged = true;
            for t in [&a, &b] {
                converged &= t.report(&acme, &limits, 5).await.series == 10;
            }
            if converged {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "pods did not converge on 10 series"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // The tenant is at its limit across pods: each refuses a new series.
        assert_eq!(a.admit(&acme, &limits, &batch(200..201)).len(), 1);
        assert_eq!(b.admit(&acme, &limits, &batch(300..301)).len(), 1);
    }
}
