//! Minting HS256 tokens for people (`luminate token`, `serve --dev`) and tests.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{EncodingKey, Header};
use serde::Serialize;

use super::Scopes;
use super::config::{AuthConfig, Secret};
use super::keys::MIN_HS256_SECRET_BYTES;
use crate::model::TenantId;

#[derive(Debug, thiserror::Error)]
pub enum MintError {
    #[error("no HS256 secret is configured: set auth.hs256_secret or LUMINATE_JWT_HS256_SECRET")]
    NoSecret,
    #[error("the HS256 secret must be at least {MIN_HS256_SECRET_BYTES} bytes")]
    WeakSecret,
    #[error("HS256 is not in auth.algorithms, so the server would refuse the token")]
    HsNotAllowed,
    #[error("signing failed: {0}")]
    Signing(String),
}

/// What a minted token says.
#[derive(Clone, Debug)]
pub struct TokenSpec {
    pub tenant: TenantId,
    pub scopes: Scopes,
    pub tier: Option<String>,
    pub org_id: Option<String>,
    pub ttl: Duration,
}

#[derive(Serialize)]
struct MintedClaims<'a> {
    tenant_id: &'a str,
    scopes: Vec<&'static str>,
    exp: u64,
    iat: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    tier: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    org_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<&'a str>,
}

/// Mints a token the server configured with `config` accepts: signed with
/// its HS256 secret and carrying its `iss`/`aud` when those are required.
pub fn mint_hs256(config: &AuthConfig, spec: &TokenSpec) -> Result<String, MintError> {
    if !config.algorithms.contains(&jsonwebtoken::Algorithm::HS256) {
        return Err(MintError::HsNotAllowed);
    }
    let secret = config.hs256_secret.as_ref().ok_or(MintError::NoSecret)?;
    mint_with_secret(
        secret,
        config.issuer.as_deref(),
        config.audience.as_deref(),
        spec,
    )
}

pub fn mint_with_secret(
    secret: &Secret,
    issuer: Option<&str>,
    audience: Option<&str>,
    spec: &TokenSpec,
) -> Result<String, MintError> {
    if secret.expose().len() < MIN_HS256_SECRET_BYTES {
        return Err(MintError::WeakSecret);
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let claims = MintedClaims {
        tenant_id: spec.tenant.as_str(),
        scopes: spec.scopes.iter().map(|s| s.as_str()).collect(),
        exp: now.saturating_add(spec.ttl.as_secs()),
        iat: now,
        tier: spec.tier.as_deref(),
        org_id: spec.org_id.as_deref(),
        iss: issuer,
        aud: audience,
    };
    jsonwebtoken::encode(
        &Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.expose()),
    )
    .map_err(|e| MintError::Signing(e.to_string()))
}

/// A random secret for `serve --dev` when none is configured: 32 random
/// bytes, hex-encoded (64 characters).
pub fn random_secret() -> Secret {
    let bytes: [u8; 32] = rand::random();
    Secret::new(bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
}
