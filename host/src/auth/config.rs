//! The `[auth]` configuration section.
//!
//! ```toml
//! [auth]
//! algorithms = ["HS256", "RS256"]      # the allow-list; nothing else verifies
//! hs256_secret = "..."                 # or LUMINATE_JWT_HS256_SECRET
//! issuer = "https://idp.example.com"   # optional: then `iss` is required
//! audience = "luminate"                # optional: then `aud` is required
//! leeway = "60s"
//! jwks_file = "/etc/luminate/jwks.json"
//! [[auth.public_keys]]
//! algorithm = "RS256"
//! path = "/etc/luminate/rsa.pem"
//! kid = "2026-01"                      # optional
//! ```

use std::fmt;
use std::path::PathBuf;

use jsonwebtoken::Algorithm;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::config::ConfigDuration;

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// When false, every request acts as `default_tenant` with every scope.
    /// For local experiments only; the server logs a warning at start.
    pub enabled: bool,
    /// The algorithms a token may be signed with. A token's `alg` header only
    /// selects among keys configured for an allowed algorithm; it never
    /// chooses how a key is interpreted.
    pub algorithms: Vec<Algorithm>,
    /// Shared secret for HS256 (at least 32 bytes).
    pub hs256_secret: Option<Secret>,
    /// Public keys in PEM files, each for one algorithm.
    pub public_keys: Vec<PublicKeyConfig>,
    /// A JWKS file (`{"keys":[...]}`); tokens pick a key by `kid`.
    pub jwks_file: Option<PathBuf>,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    /// Allowed clock skew for `exp` and `nbf`.
    pub leeway: ConfigDuration,
    /// How many verified tokens to remember (0 disables the cache).
    pub token_cache_size: usize,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            algorithms: vec![Algorithm::HS256],
            hs256_secret: None,
            public_keys: Vec::new(),
            jwks_file: None,
            issuer: None,
            audience: None,
            leeway: ConfigDuration::from_millis(60_000),
            token_cache_size: 100_000,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PublicKeyConfig {
    pub algorithm: Algorithm,
    pub path: PathBuf,
    /// When set, only tokens whose header carries this `kid` use this key.
    #[serde(default)]
    pub kid: Option<String>,
}

/// A secret that never appears in logs or `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(<{} bytes, redacted>)", self.0.len())
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_is_redacted_in_debug_output() {
        let c = AuthConfig {
            hs256_secret: Some(Secret::new("super-secret-value-that-is-long-enough")),
            ..AuthConfig::default()
        };
        let shown = format!("{c:?}");
        assert!(!shown.contains("super-secret"), "{shown}");
        assert!(shown.contains("redacted"));
    }
}
