//! Micro-benchmark of what authentication and limits add to a request, in
//! process (no HTTP): token verification (cached and not), the rate-limit
//! check, and cardinality tracking per metric for known and new series.
//! The end-to-end comparison is `loadgen` with and without `--no-auth`.
//!
//! ```text
//! cargo bench --bench auth_limits
//! ```

// Measure with the allocator the server runs with.
#[global_allocator]
static ALLOCATOR: luminate_host::ServerAllocator = luminate_host::ServerAllocator;

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use luminate_host::auth::{AuthConfig, PublicKeyConfig, Secret, Verifier};
use luminate_host::limits::{
    CardinalityTracker, LimitsConfig, MemorySketchStore, RateKind, RateLimiter, TierLimits,
};
use luminate_host::model::{Dimensions, Metric, TenantId};
use serde_json::json;

const SECRET: &str = "bench-secret-0123456789-0123456789-abcdef";

/// Runs `f` repeatedly for about `budget` and returns the median of 7
/// rounds in ns per call.
fn measure(name: &str, per_call: u64, mut f: impl FnMut()) {
    let mut calls = 1u64;
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(50) {
        f();
        calls += 1;
    }
    let mut rounds = Vec::new();
    for _ in 0..7 {
        let t = Instant::now();
        for _ in 0..calls {
            f();
        }
        rounds.push(t.elapsed().as_nanos() as f64 / (calls * per_call) as f64);
    }
    rounds.sort_by(f64::total_cmp);
    println!("{name:<55} {:>10.1} ns", rounds[3]);
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn metric(name: &str, i: usize) -> Metric {
    Metric {
        name: name.into(),
        value: 1.0,
        timestamp_ms: 0,
        dimensions: Dimensions::from_pairs([
            ("host".to_string(), format!("host-{}", i % 100)),
            ("user".to_string(), format!("user-{i}")),
            ("region".to_string(), format!("r{}", i % 5)),
        ]),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let keys = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keys");
    let claims = json!({"tenant_id": "bench", "scopes": ["read", "write"], "tier": "unlimited", "exp": now() + 3600});
    let hs = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    let rsa_private = std::fs::read(keys.join("rsa_private.pem")).unwrap();
    let rs = jsonwebtoken::encode(
        &Header::new(Algorithm::RS256),
        &claims,
        &EncodingKey::from_rsa_pem(&rsa_private).unwrap(),
    )
    .unwrap();
    let config = |cache: usize| AuthConfig {
        algorithms: vec![Algorithm::HS256, Algorithm::RS256],
        hs256_secret: Some(Secret::new(SECRET)),
        public_keys: vec![PublicKeyConfig {
            algorithm: Algorithm::RS256,
            path: keys.join("rsa_public.pem"),
            kid: None,
        }],
        token_cache_size: cache,
        ..AuthConfig::default()
    };
    let cached = Verifier::from_config(&config(1000)).unwrap();
    let uncached = Verifier::from_config(&config(0)).unwrap();
    let bearer = format!("Bearer {hs}");

    println!("per call (median of 7 rounds):");
    measure("verify HS256, cached (Authorization header)", 1, || {
        black_box(
            cached
                .verify_authorization(Some(bearer.as_bytes()))
                .unwrap(),
        );
    });
    measure("verify HS256, uncached", 1, || {
        black_box(uncached.verify(&hs).unwrap());
    });
    measure("verify RS256, uncached", 1, || {
        black_box(uncached.verify(&rs).unwrap());
    });

    let mut limits = LimitsConfig::default();
    limits.tiers.insert(
        "huge".into(),
        TierLimits {
            write_requests_per_second: luminate_host::limits::Limit::Max(1_000_000_000),
            ..TierLimits::default()
        },
    );
    let rates = RateLimiter::new(Arc::new(limits));
    let tenant = TenantId::new("bench").unwrap();
    measure(
        "rate: resolve tenant + request check, unlimited tier",
        1,
        || {
            let t = rates.tenant(&tenant, Some("unlimited"));
            black_box(t.check_request(RateKind::WriteRequests).unwrap());
        },
    );
    let limited = TenantId::new("limited").unwrap();
    measure(
        "rate: resolve tenant + request check, limited tier",
        1,
        || {
            let t = rates.tenant(&limited, Some("huge"));
            black_box(t.check_request(RateKind::WriteRequests).unwrap());
        },
    );

    let tracker =
        CardinalityTracker::open(Arc::new(MemorySketchStore::default()), &Default::default())
            .await
            .unwrap();
    let unlimited = TierLimits::unlimited();
    let batches: Vec<Vec<Metric>> = (0..100)
        .map(|b| {
            (0..1000)
                .map(|i| metric("api_latency", b * 1000 + i))
                .collect()
        })
        .collect();
    let t = Instant::now();
    for batch in &batches {
        black_box(tracker.admit(&tenant, &unlimited, batch));
    }
    println!(
        "{:<55} {:>10.1} ns",
        "cardinality: new series, per metric (100k series)",
        t.elapsed().as_nanos() as f64 / 100_000.0
    );
    let mut next = 0;
    measure(
        "cardinality: known series, per metric (batch of 1000)",
        1000,
        || {
            black_box(tracker.admit(&tenant, &unlimited, &batches[next % 100]));
            next += 1;
        },
    );
}
