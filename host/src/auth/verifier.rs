//! Turns a bearer token into a [`Principal`], or says exactly why not.
//!
//! Order of checks: shape → `alg` against the allow-list (before any key is
//! touched) → key selection by algorithm and `kid` → signature (via
//! `jsonwebtoken`) → claims ([`ClaimsPolicy`]). Verified tokens are cached
//! (see [`TokenCache`]) so the write path does not pay for a signature check
//! on every request.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::cache::TokenCache;
use super::config::AuthConfig;
use super::credentials::parse_authorization;
use super::keys::{KeyError, KeySet};
use super::{AuthError, ClaimsPolicy, Principal};

/// Tokens longer than this are refused before any parsing (a JWT with the
/// claims we use is a few hundred bytes; RS512 with many claims stays < 4 KiB).
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

pub struct Verifier {
    keys: KeySet,
    policy: ClaimsPolicy,
    cache: TokenCache,
    /// Per allowed algorithm: signature-only validation. Claims are checked
    /// by [`ClaimsPolicy`], which is strict about types.
    signature_checks: HashMap<Algorithm, Validation>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("keys", &self.keys)
            .field("policy", &self.policy)
            .field("cached_tokens", &self.cache.len())
            .finish()
    }
}

#[derive(Deserialize)]
struct RawHeader {
    alg: Value,
    #[serde(default)]
    kid: Option<Value>,
    #[serde(default)]
    crit: Option<Value>,
}

impl Verifier {
    pub fn from_config(config: &AuthConfig) -> Result<Self, KeyError> {
        let keys = KeySet::from_config(config)?;
        let leeway_secs = config.leeway.get().as_secs();
        let signature_checks = keys
            .allowed()
            .iter()
            .map(|&alg| {
                let mut v = Validation::new(alg);
                v.required_spec_claims.clear();
                v.validate_exp = false;
                v.validate_nbf = false;
                v.validate_aud = false;
                v.leeway = 0;
                (alg, v)
            })
            .collect();
        Ok(Self {
            keys,
            policy: ClaimsPolicy {
                leeway_secs,
                issuer: config.issuer.clone(),
                audience: config.audience.clone(),
            },
            cache: TokenCache::new(config.token_cache_size, leeway_secs),
            signature_checks,
        })
    }

    /// Verifies the value of an `Authorization` header (`None` when absent):
    /// a bearer token, `Token <token>`, or the token as the password of
    /// Basic auth. A Basic username, when not empty, must be the token's
    /// tenant: it catches an agent configured with another tenant's token.
    pub fn verify_authorization(&self, header: Option<&[u8]>) -> Result<Arc<Principal>, AuthError> {
        let credentials = parse_authorization(header)?;
        let principal = self.verify(&credentials.token)?;
        match credentials.username.as_deref() {
            Some(user) if !user.is_empty() && user != principal.tenant.as_str() => {
                Err(AuthError::UsernameNotTenant)
            }
            _ => Ok(principal),
        }
    }

    /// Verifies a compact JWS token.
    pub fn verify(&self, token: &str) -> Result<Arc<Principal>, AuthError> {
        let now = now_secs();
        if let Some(principal) = self.cache.get(token, now) {
            return Ok(principal);
        }
        let principal = Arc::new(self.verify_uncached(token, now)?);
        self.cache.insert(token, principal.clone(), now);
        Ok(principal)
    }

    fn verify_uncached(&self, token: &str, now: u64) -> Result<Principal, AuthError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::MalformedToken("the token is too long"));
        }
        let mut parts = token.split('.');
        let (Some(header), Some(_payload), Some(_signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(AuthError::MalformedToken(
                "expected three base64url parts separated by dots",
            ));
        };
        let header = URL_SAFE_NO_PAD
            .decode(header)
            .map_err(|_| AuthError::MalformedToken("the header is not base64url"))?;
        let header: RawHeader = serde_json::from_slice(&header)
            .map_err(|_| AuthError::MalformedToken("the header is not a JSON object with `alg`"))?;
        let alg_name = header.alg.as_str().ok_or(AuthError::MalformedToken(
            "the header's `alg` is not a string",
        ))?;
        let algorithm = match alg_name.parse::<Algorithm>() {
            Ok(alg) if self.keys.is_allowed(alg) => alg,
            _ => {
                return Err(AuthError::AlgorithmNotAllowed {
                    alg: alg_name.chars().take(32).collect(),
                });
            }
        };
        if header.crit.is_some() {
            // RFC 7515 §4.1.11: extensions we do not understand must fail.
            return Err(AuthError::MalformedToken(
                "critical header extensions (crit) are not supported",
            ));
        }
        let kid = match &header.kid {
            None | Some(Value::Null) => None,
            Some(Value::String(kid)) => Some(kid.as_str()),
            Some(_) => {
                return Err(AuthError::MalformedToken(
                    "the header's `kid` is not a string",
                ));
            }
        };
        let validation =
            self.signature_checks
                .get(&algorithm)
                .ok_or(AuthError::AlgorithmNotAllowed {
                    alg: alg_name.into(),
                })?;

        let mut claims: Option<Map<String, Value>> = None;
        for key in self.keys.candidates(algorithm, kid)? {
            match jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, validation) {
                Ok(data) => {
                    claims = Some(data.claims);
                    break;
                }
                Err(e) => match e.kind() {
                    ErrorKind::InvalidSignature => continue,
                    ErrorKind::Base64(_) => {
                        return Err(AuthError::MalformedToken("a part is not base64url"));
                    }
                    ErrorKind::Json(_) | ErrorKind::Utf8(_) => {
                        return Err(AuthError::MalformedToken(
                            "the payload is not a JSON object",
                        ));
                    }
                    ErrorKind::InvalidToken => {
                        return Err(AuthError::MalformedToken("the token is not a compact JWS"));
                    }
                    other => {
                        // A key that cannot verify (bad key data) or a
                        // provider failure: log the detail, tell the client
                        // only that the signature did not verify.
                        tracing::warn!(key = %key.source_name, error = ?other, "token verification failed");
                        continue;
                    }
                },
            }
        }
        let claims = claims.ok_or(AuthError::BadSignature)?;
        self.policy.check(&claims, now)
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
