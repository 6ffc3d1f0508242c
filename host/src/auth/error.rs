//! Why a request was not authenticated or not authorised. Each variant has
//! its own stable `code`; messages name the problem (which claim, which
//! algorithm) and never include key material, secrets or the token.

use super::Scope;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error(
        "no token: send `Authorization: Bearer <token>`, or the token as the Basic auth password"
    )]
    MissingToken,
    #[error("malformed token: {0}")]
    MalformedToken(&'static str),
    #[error("token algorithm {alg:?} is not allowed by this server")]
    AlgorithmNotAllowed { alg: String },
    #[error("no key with id {kid:?} is configured for algorithm {alg}")]
    UnknownKey { kid: String, alg: &'static str },
    #[error("token signature does not verify")]
    BadSignature,
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet (nbf is in the future)")]
    NotYetValid,
    #[error("token issuer (iss) is not the one this server accepts")]
    WrongIssuer,
    #[error("token audience (aud) does not include this server")]
    WrongAudience,
    #[error("claim `{claim}` has the wrong type: expected {expected}")]
    InvalidClaim {
        claim: &'static str,
        expected: &'static str,
    },
    #[error("required claim `{0}` is missing")]
    MissingClaim(&'static str),
    #[error("token has no tenant: the `tenant_id` claim is required")]
    MissingTenant,
    #[error("claim `tenant_id` must be 1-64 characters of [A-Za-z0-9_.-]")]
    InvalidTenant,
    #[error("the Basic auth username must be empty or the token's tenant")]
    UsernameNotTenant,
    #[error("this request needs the `{0}` scope, which the token does not grant")]
    MissingScope(Scope),
}

impl AuthError {
    /// The stable, machine-readable code of this failure.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::MissingToken => "missing_token",
            AuthError::MalformedToken(_) => "malformed_token",
            AuthError::AlgorithmNotAllowed { .. } => "algorithm_not_allowed",
            AuthError::UnknownKey { .. } => "unknown_key_id",
            AuthError::BadSignature => "invalid_signature",
            AuthError::Expired => "token_expired",
            AuthError::NotYetValid => "token_not_yet_valid",
            AuthError::WrongIssuer => "invalid_issuer",
            AuthError::WrongAudience => "invalid_audience",
            AuthError::InvalidClaim { .. } => "invalid_claim",
            AuthError::MissingClaim(_) => "missing_claim",
            AuthError::MissingTenant => "missing_tenant",
            AuthError::InvalidTenant => "invalid_tenant",
            AuthError::UsernameNotTenant => "username_not_tenant",
            AuthError::MissingScope(_) => "insufficient_scope",
        }
    }

    /// Whether this is an authorisation failure (a valid token lacking a
    /// scope, 403) rather than an authentication failure (401).
    pub fn is_forbidden(&self) -> bool {
        matches!(self, AuthError::MissingScope(_))
    }
}
