//! The verification keys and the algorithm allow-list.
//!
//! Every key is bound at load time to exactly one algorithm, taken from the
//! configuration (or the JWKS entry), never from a token. A token's `alg`
//! header only selects among keys already bound to that algorithm, so an
//! RSA public key can never be used as an HMAC secret (the classic
//! algorithm-confusion attack), and `none` is never accepted because it is
//! not an algorithm any key can have.

use std::path::Path;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};

use super::AuthError;
use super::config::AuthConfig;

/// HMAC secrets shorter than the hash output are brute-forceable (RFC 7518 §3.2).
pub const MIN_HS256_SECRET_BYTES: usize = 32;

/// Problems with configured keys, reported at start-up. Messages name the
/// file or setting, never the key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("auth.algorithms is empty: list the algorithms tokens may use")]
    EmptyAllowList,
    #[error("auth: {source_name} is for {alg}, which is not in auth.algorithms")]
    NotAllowed {
        source_name: String,
        alg: &'static str,
    },
    #[error(
        "auth.hs256_secret (LUMINATE_JWT_HS256_SECRET) must be at least {MIN_HS256_SECRET_BYTES} bytes"
    )]
    WeakSecret,
    #[error("auth: cannot read {source_name}: {message}")]
    Unreadable {
        source_name: String,
        message: String,
    },
    #[error("auth: {source_name} is not a valid {alg} key: {message}")]
    Invalid {
        source_name: String,
        alg: &'static str,
        message: String,
    },
    #[error(
        "auth: no verification key is configured; set auth.hs256_secret (or LUMINATE_JWT_HS256_SECRET), auth.public_keys or auth.jwks_file"
    )]
    NoKeys,
}

/// One key, bound to one algorithm.
pub struct VerificationKey {
    pub algorithm: Algorithm,
    pub kid: Option<String>,
    /// Where the key came from, for logs (never its content).
    pub source_name: String,
    pub(super) key: DecodingKey,
}

impl std::fmt::Debug for VerificationKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerificationKey")
            .field("algorithm", &self.algorithm)
            .field("kid", &self.kid)
            .field("source", &self.source_name)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
pub struct KeySet {
    allowed: Vec<Algorithm>,
    keys: Vec<VerificationKey>,
}

impl KeySet {
    pub fn from_config(config: &AuthConfig) -> Result<Self, KeyError> {
        if config.algorithms.is_empty() {
            return Err(KeyError::EmptyAllowList);
        }
        let mut set = KeySet {
            allowed: config.algorithms.clone(),
            keys: Vec::new(),
        };
        if let Some(secret) = &config.hs256_secret {
            if secret.expose().len() < MIN_HS256_SECRET_BYTES {
                return Err(KeyError::WeakSecret);
            }
            set.push_checked(VerificationKey {
                algorithm: Algorithm::HS256,
                kid: None,
                source_name: "auth.hs256_secret".into(),
                key: DecodingKey::from_secret(secret.expose()),
            })?;
        }
        for (i, pk) in config.public_keys.iter().enumerate() {
            let source_name = format!("auth.public_keys[{i}] ({})", pk.path.display());
            let pem = read(&pk.path, &source_name)?;
            let key =
                decoding_key_from_pem(pk.algorithm, &pem).map_err(|message| KeyError::Invalid {
                    source_name: source_name.clone(),
                    alg: algorithm_name(pk.algorithm),
                    message,
                })?;
            set.push_checked(VerificationKey {
                algorithm: pk.algorithm,
                kid: pk.kid.clone(),
                source_name,
                key,
            })?;
        }
        if let Some(path) = &config.jwks_file {
            set.load_jwks(path)?;
        }
        if set.keys.is_empty() {
            return Err(KeyError::NoKeys);
        }
        Ok(set)
    }

    fn push_checked(&mut self, key: VerificationKey) -> Result<(), KeyError> {
        if !self.allowed.contains(&key.algorithm) {
            return Err(KeyError::NotAllowed {
                source_name: key.source_name,
                alg: algorithm_name(key.algorithm),
            });
        }
        self.keys.push(key);
        Ok(())
    }

    /// Loads every JWKS entry whose algorithm is allowed. An identity
    /// provider's set often carries keys for other algorithms or uses
    /// (encryption); those are skipped, not fatal.
    fn load_jwks(&mut self, path: &Path) -> Result<(), KeyError> {
        let source_name = format!("auth.jwks_file ({})", path.display());
        let text = read(path, &source_name)?;
        let set: JwkSet = serde_json::from_slice(&text).map_err(|e| KeyError::Invalid {
            source_name: source_name.clone(),
            alg: "JWKS",
            message: e.to_string(),
        })?;
        for (i, jwk) in set.keys.iter().enumerate() {
            let entry = format!("{source_name} key {i}");
            let kid = jwk.common.key_id.clone();
            if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
                tracing::info!(key = %entry, ?kid, "skipping JWKS key: its use is encryption");
                continue;
            }
            let Some(algorithm) = jwk_algorithm(jwk) else {
                tracing::warn!(key = %entry, ?kid, "skipping JWKS key: no signing algorithm");
                continue;
            };
            if !self.allowed.contains(&algorithm) {
                tracing::info!(key = %entry, ?kid, alg = algorithm_name(algorithm), "skipping JWKS key: algorithm not allowed");
                continue;
            }
            let key = DecodingKey::from_jwk(jwk).map_err(|e| KeyError::Invalid {
                source_name: entry.clone(),
                alg: algorithm_name(algorithm),
                message: e.to_string(),
            })?;
            self.keys.push(VerificationKey {
                algorithm,
                kid,
                source_name: entry,
                key,
            });
        }
        Ok(())
    }

    pub fn is_allowed(&self, algorithm: Algorithm) -> bool {
        self.allowed.contains(&algorithm)
    }

    pub fn allowed(&self) -> &[Algorithm] {
        &self.allowed
    }

    /// The keys a token signed with `algorithm` (and carrying `kid`) may be
    /// verified with. A `kid` that names a key selects only that key; a
    /// token without `kid`, or one naming no configured key while keys
    /// without a `kid` exist, tries the keys of that algorithm without one
    /// and then the rest.
    pub fn candidates(
        &self,
        algorithm: Algorithm,
        kid: Option<&str>,
    ) -> Result<Vec<&VerificationKey>, AuthError> {
        let for_alg = || self.keys.iter().filter(move |k| k.algorithm == algorithm);
        if let Some(kid) = kid {
            let named: Vec<_> = for_alg()
                .filter(|k| k.kid.as_deref() == Some(kid))
                .collect();
            if !named.is_empty() {
                return Ok(named);
            }
            let anonymous: Vec<_> = for_alg().filter(|k| k.kid.is_none()).collect();
            if anonymous.is_empty() {
                return Err(AuthError::UnknownKey {
                    kid: kid.chars().take(64).collect(),
                    alg: algorithm_name(algorithm),
                });
            }
            return Ok(anonymous);
        }
        let mut keys: Vec<_> = for_alg().filter(|k| k.kid.is_none()).collect();
        keys.extend(for_alg().filter(|k| k.kid.is_some()));
        if keys.is_empty() {
            return Err(AuthError::UnknownKey {
                kid: String::new(),
                alg: algorithm_name(algorithm),
            });
        }
        Ok(keys)
    }
}

fn read(path: &Path, source_name: &str) -> Result<Vec<u8>, KeyError> {
    std::fs::read(path).map_err(|e| KeyError::Unreadable {
        source_name: source_name.to_owned(),
        message: e.to_string(),
    })
}

fn decoding_key_from_pem(algorithm: Algorithm, pem: &[u8]) -> Result<DecodingKey, String> {
    use Algorithm::*;
    let key = match algorithm {
        RS256 | RS384 | RS512 | PS256 | PS384 | PS512 => DecodingKey::from_rsa_pem(pem),
        ES256 | ES384 => DecodingKey::from_ec_pem(pem),
        EdDSA => DecodingKey::from_ed_pem(pem),
        HS256 | HS384 | HS512 => {
            return Err("HMAC keys are secrets, not PEM public keys; use auth.hs256_secret".into());
        }
        _ => return Err("this algorithm is not supported".into()),
    };
    key.map_err(|e| e.to_string())
}

/// The algorithm a JWKS entry is for: its `alg` when present, otherwise the
/// one its key type and curve imply. `oct` (shared secret) entries need an
/// explicit `alg`.
fn jwk_algorithm(jwk: &Jwk) -> Option<Algorithm> {
    if let Some(alg) = &jwk.common.key_algorithm {
        return alg.to_string().parse().ok();
    }
    match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Some(Algorithm::RS256),
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => Some(Algorithm::ES256),
            EllipticCurve::P384 => Some(Algorithm::ES384),
            _ => None,
        },
        AlgorithmParameters::OctetKeyPair(p) => {
            (p.curve == EllipticCurve::Ed25519).then_some(Algorithm::EdDSA)
        }
        _ => None,
    }
}

pub fn algorithm_name(algorithm: Algorithm) -> &'static str {
    use Algorithm::*;
    match algorithm {
        HS256 => "HS256",
        HS384 => "HS384",
        HS512 => "HS512",
        ES256 => "ES256",
        ES384 => "ES384",
        RS256 => "RS256",
        RS384 => "RS384",
        RS512 => "RS512",
        PS256 => "PS256",
        PS384 => "PS384",
        PS512 => "PS512",
        EdDSA => "EdDSA",
        _ => "unsupported",
    }
}
